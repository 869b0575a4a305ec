//! `notify:`: the webhooks told how a run ended.

use super::*;

pub(super) const WEBHOOK_KEYS: &[&str] = &["url", "url_env", "on", "format"];

impl Reader<'_> {
    pub(super) fn notify(&mut self, top: &Mapping) -> Notify {
        let mut notify = Notify::default();
        let Some(value) = Self::get(top, "notify") else {
            return notify;
        };
        let Value::Sequence(items) = value else {
            self.error_with_hint(
                "notify",
                format!("expected a list of webhooks, found {}", describe(value)),
                Some("write `notify: [{ url: https://hooks.example.com/deploys }]`".into()),
            );
            return notify;
        };
        for (index, value) in items.iter().enumerate() {
            let path = item("notify", index);
            if let Some(webhook) = self.webhook(value, &path) {
                notify.webhooks.push(webhook);
            }
        }
        notify
    }

    pub(super) fn webhook(&mut self, value: &Value, path: &str) -> Option<Webhook> {
        let mapping = self.mapping(value, path)?;
        self.known_keys(mapping, path, WEBHOOK_KEYS);
        let url = self.string(mapping, path, "url");
        let url_env = self.string(mapping, path, "url_env");
        let on = self.events(mapping, path);
        let format = match self.string(mapping, path, "format") {
            None => Some(None),
            Some(name) => match WebhookFormat::parse(&name) {
                Some(format) => Some(Some(format)),
                None => {
                    self.error_with_hint(
                        &child(path, "format"),
                        format!("{name:?} is not a webhook format"),
                        Some(format!(
                            "use one of {}; without `format` it is found from the URL",
                            WebhookFormat::NAMES.join(", ")
                        )),
                    );
                    None
                }
            },
        };
        let target = match (url, url_env) {
            (Some(_), Some(_)) => {
                self.error_with_hint(
                    path,
                    "sets both `url` and `url_env`",
                    Some("write the URL, or name the variable that holds it".into()),
                );
                return None;
            }
            (None, None) => {
                self.error_with_hint(
                    path,
                    "names no URL",
                    Some("set `url: https://...`, or `url_env: VARIABLE` for a URL that is itself a credential".into()),
                );
                return None;
            }
            (Some(url), None) => match webhook_url_problem(&url) {
                Some(problem) => {
                    self.error(&child(path, "url"), format!("{url:?} {problem}"));
                    return None;
                }
                None => WebhookTarget::Url(url),
            },
            (None, Some(name)) => {
                if !is_env_key(&name) {
                    self.error(
                        &child(path, "url_env"),
                        format!("{name:?} is not a variable name"),
                    );
                    return None;
                }
                WebhookTarget::UrlEnv(name)
            }
        };
        Some(Webhook {
            target,
            on: on?,
            format: format?,
        })
    }

    pub(super) fn events(&mut self, mapping: &Mapping, path: &str) -> Option<Vec<NotifyEvent>> {
        let field = child(path, "on");
        let Some(value) = Self::get(mapping, "on") else {
            return Some(Vec::new());
        };
        let Value::Sequence(items) = value else {
            self.error_with_hint(
                &field,
                format!("expected a list of events, found {}", describe(value)),
                Some(format!("write `on: [{}]`", NotifyEvent::NAMES.join(", "))),
            );
            return None;
        };
        let mut events = Vec::new();
        for (index, value) in items.iter().enumerate() {
            match value.as_str().and_then(NotifyEvent::parse) {
                Some(event) if !events.contains(&event) => events.push(event),
                Some(_) => {}
                None => {
                    let shown = value
                        .as_str()
                        .map_or_else(|| describe(value).to_owned(), |v| format!("{v:?}"));
                    self.error_with_hint(
                        &item(&field, index),
                        format!("{shown} is not an event"),
                        Some(format!("use one of {}", NotifyEvent::NAMES.join(", "))),
                    );
                    return None;
                }
            }
        }
        Some(events)
    }
}

/// Why `url` cannot receive webhooks, if it cannot.
pub fn webhook_url_problem(url: &str) -> Option<&'static str> {
    let Ok(parsed) = url::Url::parse(url) else {
        return Some("is not a URL");
    };
    if !matches!(parsed.scheme(), "https" | "http") {
        return Some("must be an `https://` (or `http://`) URL");
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Some("has no host");
    }
    None
}
