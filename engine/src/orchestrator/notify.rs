//! Webhooks: an event `POST`ed when a run ends (complete, failed, rolled back), as
//! Fabrik's JSON document or as the message a Slack or Discord webhook accepts. A
//! delivery is retried on network errors, 429 and 5xx, with a timeout per attempt; it
//! never changes the run's result. The body passes through the redactor first.

use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};

use super::events::{Observer, RunEvent, Warning};
use super::hidden::Hidden;
use super::outcome::Outcome;
use crate::domain::{RunOrigin, State};
use crate::retry::Backoff;
use crate::spec::model::{NotifyEvent, Webhook, WebhookFormat, WebhookTarget};
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
    pub format: WebhookFormat,
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
        let format = webhook
            .format
            .unwrap_or_else(|| WebhookFormat::detect(url.expose_secret()));
        Ok(Self {
            label,
            url,
            on: webhook.on.clone(),
            format,
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
    project: &str,
    notifier: &Notifier,
    observer: &dyn Observer,
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
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    let at = crate::domain::timestamp::rfc3339(&now.to_string()).unwrap_or_default();
    let redact = |text: &str| hidden.redact(text);
    let message = Message {
        project,
        outcome,
        event,
        redact: &redact,
    };
    let document = message.document(origin, &at);
    let bodies: Vec<String> = targets
        .iter()
        .map(|endpoint| message.body(endpoint.format, &document))
        .collect();
    let deliveries = futures::future::join_all(
        targets
            .iter()
            .zip(&bodies)
            .map(|(endpoint, body)| notifier.deliver(endpoint, body)),
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
        observer.event(&outcome.app, outcome.run_id.as_deref(), &event);
    }
    warnings
}

/// A run's end told to a person in a chat.
struct Message<'a> {
    project: &'a str,
    outcome: &'a Outcome,
    event: NotifyEvent,
    /// Applied to every text before a format escapes or cuts it.
    redact: &'a dyn Fn(&str) -> String,
}

/// Discord refuses a `content` over 2,000 characters.
const DISCORD_LIMIT: usize = 2000;

impl Message<'_> {
    /// The JSON format's document, every text in it redacted.
    fn document(&self, origin: &RunOrigin, at: &str) -> serde_json::Value {
        let outcome = self.outcome;
        let rollback = outcome.rollback.as_ref();
        let (app, environment) = crate::domain::split_key(&outcome.app);
        let mut document = serde_json::json!({
            "event": self.event.as_str(),
            "project": self.project,
            "app": app,
            "environment": environment,
            "run_id": outcome.run_id,
            "origin": origin.as_str(),
            "restores_run": origin.restores(),
            "state": outcome.state,
            "url": outcome.url,
            "page": outcome.page,
            "spec_hash": outcome.spec_hash,
            "reason": outcome.reason(),
            "undone": rollback.map_or_else(Vec::new, |r| r.undone.iter().map(ToString::to_string).collect()),
            "left": rollback.map_or_else(Vec::new, |r| r.left.iter().map(ToString::to_string).collect()),
            "warnings": outcome.warnings.iter().map(ToString::to_string).collect::<Vec<_>>(),
            "at": at,
        });
        crate::plugins::returned::redact_json(&mut document, self.redact);
        document
    }

    /// The body sent in `format`. Redact, then bound, then escape: every text is redacted
    /// before a format escapes or cuts it (Slack's `&amp;` would split a secret holding
    /// `&`); the finished body is redacted once more, the last line of defence.
    fn body(&self, format: WebhookFormat, document: &serde_json::Value) -> String {
        let body = match format {
            WebhookFormat::Json => document.clone(),
            WebhookFormat::Slack => serde_json::json!({ "text": self.slack() }),
            WebhookFormat::Discord => {
                serde_json::json!({ "content": self.discord(), "allowed_mentions": { "parse": [] } })
            }
        };
        (self.redact)(&body.to_string())
    }

    /// `deployed`, `failed`, `failed and was rolled back`.
    fn verb(&self) -> &'static str {
        match self.event {
            NotifyEvent::Complete => "deployed",
            NotifyEvent::Failed => "failed",
            NotifyEvent::RolledBack => "failed and was rolled back",
        }
    }

    /// The lines after the first: why, what was undone or left, the warnings.
    fn details(&self) -> Vec<String> {
        let mut lines = Vec::new();
        if let Some(reason) = self.outcome.reason() {
            lines.push(format!("what went wrong: {reason}"));
        }
        if let Some(rollback) = &self.outcome.rollback {
            lines.extend(rollback.undone.iter().map(|u| format!("undone: {u}")));
            lines.extend(rollback.left.iter().map(|l| format!("left in place: {l}")));
        }
        lines.extend(
            self.outcome
                .warnings
                .iter()
                .map(|w| format!("warning: {w}")),
        );
        lines
    }

    /// ` · in Coolify: <page>` when the page is known.
    fn page(&self, link: impl Fn(&str) -> String) -> String {
        self.outcome
            .page
            .as_deref()
            .map(|p| format!(" · in Coolify: {}", link(p)))
            .unwrap_or_default()
    }

    fn run(&self) -> String {
        self.outcome
            .run_id
            .as_deref()
            .map(|r| format!(", run {r}"))
            .unwrap_or_default()
    }

    /// Slack's mrkdwn: `*bold*`, `<url|text>`; `&`, `<` and `>` escaped in text.
    fn slack(&self) -> String {
        let escape = |t: &str| {
            (self.redact)(t)
                .replace('&', "&amp;")
                .replace('<', "&lt;")
                .replace('>', "&gt;")
        };
        let mut text = format!(
            "{} *{}* {}: {} (project {}{})",
            self.icon(),
            escape(&self.outcome.app),
            self.verb(),
            format_args!("<{}|{}>", self.outcome.url, escape(&self.outcome.url)),
            escape(self.project),
            escape(&self.run()),
        );
        text.push_str(&self.page(|p| format!("<{p}|{}>", escape(p))));
        for line in self.details() {
            text.push('\n');
            text.push_str(&escape(&line));
        }
        text
    }

    /// Discord's Markdown: `**bold**`, a bare URL (Discord links it). Text that is not
    /// Fabrik's own (a reason quoting what the app answered, a provider's message) has
    /// Markdown's punctuation escaped: `[docs](https://elsewhere)` in an app's error page
    /// must not become a link whose text hides where it goes.
    fn discord(&self) -> String {
        let escape = |t: &str| {
            let t = (self.redact)(t);
            let mut out = String::with_capacity(t.len());
            for c in t.chars() {
                if "\\*_~`|<>[]()#".contains(c) {
                    out.push('\\');
                }
                out.push(c);
            }
            out
        };
        let mut text = format!(
            "{} **{}** {}: {} (project {}{})",
            self.icon(),
            escape(&self.outcome.app),
            self.verb(),
            self.outcome.url,
            escape(self.project),
            escape(&self.run()),
        );
        text.push_str(&self.page(str::to_owned));
        for line in self.details() {
            text.push('\n');
            text.push_str(&escape(&line));
        }
        if text.chars().count() > DISCORD_LIMIT {
            text = text.chars().take(DISCORD_LIMIT - 1).collect();
            text.push('…');
        }
        text
    }

    fn icon(&self) -> &'static str {
        match self.event {
            NotifyEvent::Complete => "✅",
            NotifyEvent::Failed => "❌",
            NotifyEvent::RolledBack => "↩️",
        }
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
            format: None,
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

    #[test]
    fn the_format_is_found_from_the_url_unless_given() {
        for (url, format) in [
            (
                "https://hooks.slack.com/services/T0/B0/x",
                WebhookFormat::Slack,
            ),
            (
                "https://discord.com/api/webhooks/1/x",
                WebhookFormat::Discord,
            ),
            (
                "https://discordapp.com/api/webhooks/1/x",
                WebhookFormat::Discord,
            ),
            ("https://discord.com/channels/1", WebhookFormat::Json),
            ("https://hooks.example.com/deploys", WebhookFormat::Json),
            ("not a url", WebhookFormat::Json),
        ] {
            assert_eq!(WebhookFormat::detect(url), format, "{url}");
        }
        let forced = Webhook {
            target: WebhookTarget::Url("https://hooks.slack.com/services/x".to_owned()),
            on: vec![],
            format: Some(WebhookFormat::Json),
        };
        let endpoint = Endpoint::resolve(&forced, |_| None).expect("resolves");
        assert_eq!(endpoint.format, WebhookFormat::Json);
    }

    fn outcome(state: State) -> Outcome {
        Outcome {
            attempted: false,
            app: "shop<1>".to_owned(),
            state,
            url: "https://shop.example.com/health".to_owned(),
            changed: true,
            run_id: Some("abc".to_owned()),
            spec_hash: "sha256:00".to_owned(),
            failure: None,
            rollback: None,
            warnings: vec![],
            page: None,
        }
    }

    #[test]
    fn chat_messages_name_the_app_the_outcome_and_the_url() {
        let done = outcome(State::Complete);
        let message = Message {
            project: "acme",
            outcome: &done,
            event: NotifyEvent::Complete,
            redact: &str::to_owned,
        };
        assert_eq!(
            message.slack(),
            "✅ *shop&lt;1&gt;* deployed: <https://shop.example.com/health|https://shop.example.com/health> (project acme, run abc)"
        );
        assert_eq!(
            message.discord(),
            "✅ **shop\\<1\\>** deployed: https://shop.example.com/health (project acme, run abc)"
        );
        // What the app said is text, never a masked link (issue 28, point 7).
        let mut hostile = outcome(State::Failed);
        hostile.warnings = vec![Warning::NotDelivered {
            target: "x".to_owned(),
            problem: "see [the docs](https://evil.example/login)".to_owned(),
        }];
        let message = Message {
            project: "acme",
            outcome: &hostile,
            event: NotifyEvent::Failed,
            redact: &str::to_owned,
        };
        let discord = message.discord();
        assert!(!discord.contains("[the docs](https"), "{discord}");
        assert!(
            discord.contains("\\[the docs\\]\\(https://evil.example/login\\)"),
            "{discord}"
        );
        let mut long = outcome(State::Failed);
        long.warnings = vec![Warning::NotDelivered {
            target: "x".to_owned(),
            problem: "y".repeat(5000),
        }];
        let message = Message {
            project: "acme",
            outcome: &long,
            event: NotifyEvent::Failed,
            redact: &str::to_owned,
        };
        let discord = message.discord();
        assert_eq!(discord.chars().count(), DISCORD_LIMIT);
        assert!(discord.ends_with('…'));
    }

    /// Issue 28, point 3: a secret made of any character class (markup, quotes,
    /// controls, newlines, the app's name) reaches no sink, whole or in the spelling a
    /// sink's escaping gives it: every sink redacts before it escapes or cuts.
    #[test]
    fn no_sink_shows_a_secret_whatever_its_characters() {
        use proptest::prelude::*;
        use proptest::test_runner::{Config, TestRunner};

        let piece = prop_oneof![
            "[A-Za-z0-9]{4,8}",
            proptest::sample::select(vec![
                "&",
                "<",
                ">",
                "&amp;",
                "*",
                "_",
                "~",
                "`",
                "|",
                "[",
                "](",
                ")",
                "#",
                "\\",
                "\"",
                "'",
                "\t",
                "\r",
                "\u{1b}[2K",
                "\n",
                "\u{85}",
                " ",
                "shop<1>",
                "…",
            ])
            .prop_map(str::to_owned),
        ];
        let secret = proptest::collection::vec(piece, 2..7)
            .prop_map(|pieces| pieces.concat())
            // A random run that fixed text does not contain (a "secret" spelled by the
            // message's own words and markup reveals nothing), long enough to redact.
            .prop_filter("needs a random run", |s| {
                const FIXED: &str = "shop<1> failed deployed rolled back project acme run abc https://shop.example.com/health warning could not tell x after what went wrong";
                s.len() >= crate::secrets::REDACT_MIN
                    && s.as_bytes().windows(4).any(|w| {
                        w.iter().all(u8::is_ascii_alphanumeric)
                            && !FIXED.contains(std::str::from_utf8(w).unwrap_or_default())
                    })
            });
        let mut runner = TestRunner::new(Config {
            cases: 400,
            failure_persistence: None,
            ..Config::default()
        });
        runner
            .run(&(secret, 0usize..2100), |(secret, filler)| {
                let mut redactor = crate::secrets::Redactor::default();
                redactor.add(&SecretString::from(secret.clone()));
                let redact = |t: &str| redactor.redact(t);
                let mut failed = outcome(State::Failed);
                failed.warnings = vec![
                    Warning::NotDelivered {
                        target: "x".to_owned(),
                        problem: format!("{}{secret} after", "y".repeat(filler)),
                    },
                    Warning::WebhookUnusable {
                        problem: format!("<{secret}>"),
                    },
                ];
                let message = Message {
                    project: "acme",
                    outcome: &failed,
                    event: NotifyEvent::Failed,
                    redact: &redact,
                };
                let document = message.document(&RunOrigin::Apply, "2026-12-05T00:00:00Z");
                let text = format!("answer: {}{secret}", "z".repeat(filler % 130));
                let sinks = [
                    message.body(WebhookFormat::Json, &document),
                    message.body(WebhookFormat::Slack, &document),
                    message.body(WebhookFormat::Discord, &document),
                    crate::plugins::returned::one_line(&redact(&text), 200),
                    super::super::verify::excerpt(&redact(&text)),
                ];
                let slack = secret
                    .replace('&', "&amp;")
                    .replace('<', "&lt;")
                    .replace('>', "&gt;");
                let discord: String = secret
                    .chars()
                    .flat_map(|c| {
                        let escaped = "\\*_~`|<>[]()#".contains(c);
                        escaped.then_some('\\').into_iter().chain([c])
                    })
                    .collect();
                let json = |t: &str| {
                    serde_json::to_string(t)
                        .unwrap_or_default()
                        .trim_matches('"')
                        .to_owned()
                };
                let flat: String = secret
                    .chars()
                    .map(|c| if c.is_control() { ' ' } else { c })
                    .collect();
                for sink in &sinks {
                    for form in [&secret, &slack, &discord, &flat] {
                        prop_assert!(
                            !sink.contains(form.as_str()) && !sink.contains(&json(form)),
                            "{form:?} in {sink:?}"
                        );
                    }
                }
                Ok(())
            })
            .expect("no sink shows a secret");
    }
}
