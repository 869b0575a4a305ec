//! Webhooks: a JSON event `POST`ed when a run ends (complete, failed, rolled back). A
//! delivery is retried on network errors, 429 and 5xx, with a timeout per attempt; it
//! never changes the run's result. The body passes through the redactor first.

use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};

use crate::spec::model::{NotifyEvent, Webhook, WebhookTarget};

/// Attempts per delivery.
const ATTEMPTS: u32 = 3;
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
    backoff: Duration,
}

impl Default for Notifier {
    fn default() -> Self {
        Self::new(Duration::from_millis(500))
    }
}

impl Notifier {
    /// `backoff` is the pause before the second attempt; it doubles after that.
    pub fn new(backoff: Duration) -> Self {
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
        let mut wait = self.backoff;
        let mut last = String::new();
        for attempt in 1..=ATTEMPTS {
            let sent = self
                .client
                .post(endpoint.url.expose_secret())
                .header("content-type", "application/json")
                .body(body.to_owned())
                .send()
                .await;
            let retry_after = match sent {
                Ok(response) if response.status().is_success() => return Ok(attempt),
                Ok(response) => {
                    let status = response.status();
                    last = format!("answered {}", status.as_u16());
                    if !(status.as_u16() == 429 || status.is_server_error()) {
                        return Err(last);
                    }
                    response
                        .headers()
                        .get("retry-after")
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.trim().parse::<u64>().ok())
                        .map(|s| Duration::from_secs(s.min(10)))
                }
                Err(e) if e.is_timeout() => {
                    last = format!("no answer within {} s", TIMEOUT.as_secs());
                    None
                }
                // reqwest's message can contain the URL, which may be a credential.
                Err(e) if e.is_connect() => {
                    last = "cannot connect".to_owned();
                    None
                }
                Err(_) => {
                    last = "the request failed".to_owned();
                    None
                }
            };
            if attempt < ATTEMPTS {
                tokio::time::sleep(retry_after.unwrap_or(wait)).await;
                wait *= 2;
            }
        }
        Err(format!("{last} (after {ATTEMPTS} attempts)"))
    }
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
