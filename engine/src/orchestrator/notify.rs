//! Webhooks: a JSON event `POST`ed when a run ends (complete, failed, rolled back). A
//! delivery is retried on network errors, 429 and 5xx, with a timeout per attempt; it
//! never changes the run's result. The body passes through the redactor first.

use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};

use super::apply::Context;
use super::events::{RunEvent, Warning};
use super::outcome::Outcome;
use super::run::Hidden;
use crate::domain::{RunOrigin, State};
use crate::retry::Backoff;
use crate::spec::model::{NotifyEvent, Webhook, WebhookTarget};
/// Time allowed per attempt.
const TIMEOUT: Duration = Duration::from_secs(10);

/// A webhook whose URL is known.
#[derive(Debug, Clone)]
pub struct Endpoint {
    /// How the user recognises it in messages: the host, or the variable's name, never a
    /// URL that may be a credential.
    pub label: String,
    pub url: SecretString,
    pub on: Vec<NotifyEvent>,
}

impl Endpoint {
    /// Resolves `webhook`'s URL; `lookup` reads a variable (environment, then `.env`).
    pub fn resolve(
        webhook: &Webhook,
        lookup: impl Fn(&str) -> Option<SecretString>,
    ) -> Result<Self, String> {
        let (label, url) = match &webhook.target {
            WebhookTarget::Url(url) => {
                let host = url::Url::parse(url)
                    .ok()
                    .and_then(|u| u.host_str().map(str::to_owned))
                    .unwrap_or_default();
                (format!("webhook {host}"), SecretString::from(url.clone()))
            }
            WebhookTarget::UrlEnv(name) => {
                let url = lookup(name).ok_or_else(|| {
                    format!("webhook `${name}`: the variable is not set (environment or .env)")
                })?;
                if let Some(problem) =
                    crate::spec::validate::webhook_url_problem(url.expose_secret())
                {
                    return Err(format!("webhook `${name}`: its value {problem}"));
                }
                (format!("webhook ${name}"), url)
            }
        };
        Ok(Self {
            label,
            url,
            on: webhook.on.clone(),
        })
    }

    pub fn wants(&self, event: NotifyEvent) -> bool {
        self.on.is_empty() || self.on.contains(&event)
    }
}

/// Delivers events; one per apply, shared by its apps.
#[derive(Debug, Clone)]
pub struct Notifier {
    client: reqwest::Client,
    backoff: Backoff,
}

impl Default for Notifier {
    fn default() -> Self {
        Self::new(Backoff::WEBHOOK)
    }
}

impl Notifier {
    /// A notifier retrying as `backoff` says.
    pub fn new(backoff: Backoff) -> Self {
        let client = reqwest::Client::builder()
            .timeout(TIMEOUT)
            .user_agent(concat!("fabrik/", env!("CARGO_PKG_VERSION")))
            // A webhook that redirects elsewhere is not followed: the body could leave
            // for a host the user did not name.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap_or_default();
        Self { client, backoff }
    }

    /// Posts `body` (already redacted) to `endpoint`, retrying transient failures.
    /// Returns how many attempts it took, or why it gave up.
    pub async fn deliver(&self, endpoint: &Endpoint, body: &str) -> Result<u32, String> {
        let (result, attempts) = self
            .backoff
            .run(
                async || self.post(endpoint, body).await,
                |failure| failure.transient.then_some(failure.retry_after),
                |_, _, _| {},
            )
            .await;
        match result {
            Ok(()) => Ok(attempts),
            Err(failure) if failure.transient => {
                Err(format!("{} (after {attempts} attempts)", failure.message))
            }
            Err(failure) => Err(failure.message),
        }
    }

    async fn post(&self, endpoint: &Endpoint, body: &str) -> Result<(), Delivery> {
        let sent = self
            .client
            .post(endpoint.url.expose_secret())
            .header("content-type", "application/json")
            .body(body.to_owned())
            .send()
            .await;
        let failed = |message: String| Delivery {
            message,
            transient: true,
            retry_after: None,
        };
        match sent {
            Ok(response) if response.status().is_success() => Ok(()),
            Ok(response) => {
                let status = response.status();
                Err(Delivery {
                    message: format!("answered {}", status.as_u16()),
                    transient: status.as_u16() == 429 || status.is_server_error(),
                    retry_after: response
                        .headers()
                        .get("retry-after")
                        .and_then(|v| v.to_str().ok())
                        .and_then(crate::retry::parse_retry_after),
                })
            }
            Err(e) if e.is_timeout() => {
                Err(failed(format!("no answer within {} s", TIMEOUT.as_secs())))
            }
            // reqwest's message can contain the URL, which may be a credential.
            Err(e) if e.is_connect() => Err(failed("cannot connect".to_owned())),
            Err(_) => Err(failed("the request failed".to_owned())),
        }
    }
}

/// One failed delivery attempt.
struct Delivery {
    message: String,
    transient: bool,
    retry_after: Option<Duration>,
}

/// Tells the webhooks how the run ended. Never changes the result: a failed delivery is
/// a warning.
pub(crate) async fn tell_webhooks(
    ctx: &Context<'_>,
    outcome: &Outcome,
    origin: &RunOrigin,
    endpoints: &[Endpoint],
    hidden: &Hidden,
) -> Vec<Warning> {
    let event = match outcome.state {
        State::Complete => NotifyEvent::Complete,
        State::RolledBack => NotifyEvent::RolledBack,
        _ => NotifyEvent::Failed,
    };
    let targets: Vec<&Endpoint> = endpoints.iter().filter(|e| e.wants(event)).collect();
    if targets.is_empty() {
        return Vec::new();
    }
    let at = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    let rollback = outcome.rollback.as_ref();
    let body = serde_json::json!({
        "event": event.as_str(),
        "project": ctx.project.name,
        "app": outcome.app,
        "run_id": outcome.run_id,
        "origin": origin.as_str(),
        "restores_run": origin.restores(),
        "state": outcome.state,
        "url": outcome.url,
        "spec_hash": outcome.spec_hash,
        "reason": outcome.reason(),
        "undone": rollback.map_or_else(Vec::new, |r| r.undone.iter().map(ToString::to_string).collect()),
        "left": rollback.map_or_else(Vec::new, |r| r.left.iter().map(ToString::to_string).collect()),
        "warnings": outcome.warnings.iter().map(ToString::to_string).collect::<Vec<_>>(),
        "at": at,
    });
    let body = hidden.redact(&body.to_string());
    let deliveries = futures::future::join_all(
        targets
            .iter()
            .map(|endpoint| ctx.notifier.deliver(endpoint, &body)),
    )
    .await;
    let mut warnings = Vec::new();
    for (endpoint, delivered) in targets.iter().zip(deliveries) {
        let event = match delivered {
            Ok(attempts) => RunEvent::Notified {
                target: endpoint.label.clone(),
                event,
                attempts,
            },
            Err(problem) => {
                let warning = Warning::NotDelivered {
                    target: endpoint.label.clone(),
                    problem,
                };
                warnings.push(warning.clone());
                RunEvent::Warning { warning }
            }
        };
        ctx.observer
            .event(&outcome.app, outcome.run_id.as_deref(), &event);
    }
    warnings
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_url_from_a_variable_is_labelled_by_the_variable_only() {
        let webhook = Webhook {
            target: WebhookTarget::UrlEnv("CHAT_HOOK".to_owned()),
            on: vec![NotifyEvent::Failed],
        };
        let endpoint = Endpoint::resolve(&webhook, |_| {
            Some(SecretString::from(
                "https://chat.example.com/hook/T0K3N".to_owned(),
            ))
        })
        .expect("resolves");
        assert_eq!(endpoint.label, "webhook $CHAT_HOOK");
        assert!(endpoint.wants(NotifyEvent::Failed));
        assert!(!endpoint.wants(NotifyEvent::Complete));
        let missing = Endpoint::resolve(&webhook, |_| None).expect_err("unset");
        assert!(missing.contains("`$CHAT_HOOK`"), "{missing}");
        let bad = Endpoint::resolve(&webhook, |_| Some(SecretString::from("ftp://x".to_owned())))
            .expect_err("bad");
        assert!(!bad.contains("ftp://x"), "the value is never quoted: {bad}");
    }
}
