//! What a provider returns, made safe before the engine stores, compares or prints it:
//! the credentials and secret values the host holds are redacted wherever they could be
//! stored or printed (a provider that echoes its own token, or an API that reflects it,
//! never gets it into the state or a log);
//! texts meant for one line (errors, progress messages, names, ids) have their control
//! characters made visible (no forged lines, no terminal escapes) and a bounded length;
//! documents (`live`, `outputs`) have a bounded size.

use super::types::{Progress, ProviderError, Resource, ResourcePage};

/// Longest message (error or progress) kept, in characters.
pub const MAX_MESSAGE: usize = 2_000;
/// Longest id, name or owner tag, in characters.
pub const MAX_FIELD: usize = 512;
/// Largest `live` document, as JSON bytes.
pub const MAX_LIVE: usize = 4 << 20;
/// Largest `outputs` document (it is stored), as JSON bytes.
pub const MAX_OUTPUTS: usize = 64 << 10;

/// One line of text from outside: control characters (newlines, carriage returns,
/// escapes, C1 controls) shown as `\n`, `\r`, `\x1b`, `\u{9b}`; at most `max`
/// characters, the rest counted.
pub fn one_line(text: &str, max: usize) -> String {
    let mut out = String::with_capacity(text.len().min(max + 32));
    let mut chars = text.chars();
    for c in chars.by_ref().take(max) {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push(' '),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c if (0x80..0xa0).contains(&(c as u32)) => {
                out.push_str(&format!("\\u{{{:x}}}", c as u32));
            }
            c => out.push(c),
        }
    }
    let rest = chars.count();
    if rest > 0 {
        out.push_str(&format!("… ({rest} more characters)"));
    }
    out
}

/// Applies what this module promises to a provider's answer.
pub(crate) trait Returned: Sized {
    fn tidied(self, redact: &dyn Fn(&str) -> String) -> Result<Self, ProviderError>;
}

impl Returned for ProviderError {
    fn tidied(self, redact: &dyn Fn(&str) -> String) -> Result<Self, ProviderError> {
        let tidy = |m: String| one_line(&redact(&m), MAX_MESSAGE);
        Ok(match self {
            ProviderError::Transient {
                message,
                retry_after,
            } => ProviderError::Transient {
                message: tidy(message),
                retry_after,
            },
            ProviderError::Permanent(m) => ProviderError::Permanent(tidy(m)),
            ProviderError::NotFound(m) => ProviderError::NotFound(tidy(m)),
            ProviderError::Unauthorized(m) => ProviderError::Unauthorized(tidy(m)),
            ProviderError::InvalidConfig(m) => ProviderError::InvalidConfig(tidy(m)),
        })
    }
}

/// Every string in `value`, redacted.
pub fn redact_json(value: &mut serde_json::Value, redact: &dyn Fn(&str) -> String) {
    match value {
        serde_json::Value::String(s) => {
            let clean = redact(s);
            if clean != *s {
                *s = clean;
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(|v| redact_json(v, redact)),
        serde_json::Value::Object(map) => {
            for v in map.values_mut() {
                redact_json(v, redact);
            }
        }
        _ => {}
    }
}

fn bounded(what: &str, value: &serde_json::Value, max: usize) -> Result<(), ProviderError> {
    let size = value.to_string().len();
    if size > max {
        return Err(ProviderError::Permanent(format!(
            "the provider returned a `{what}` document of {size} bytes; at most {max} are accepted"
        )));
    }
    Ok(())
}

/// The longest owner tag Fabrik writes (`orchestrator/owner.rs` `MAX_LEN`).
const MAX_OWNER: usize = 100;

/// An owner tag is compared with the one the engine expects before anything is done to
/// it: one shaped like the tags Fabrik writes (`fabrik:`, at most 100 bytes, the
/// project-name alphabet and `:`, `/`, `~`, and `@` before an environment) is kept byte
/// for byte, so that neither
/// redaction (a secret equal to the app's name) nor escaping can make Fabrik's own tag
/// look foreign, or a foreign one look like Fabrik's. Anything else is redacted, made one
/// line and quoted: it can never equal a tag Fabrik writes.
fn owner_field(tag: &str, redact: &dyn Fn(&str) -> String) -> String {
    let shaped = tag.starts_with("fabrik:")
        && tag.len() <= MAX_OWNER
        && tag.chars().all(|c| {
            c.is_alphanumeric() || matches!(c, '.' | '_' | '-' | ' ' | ':' | '/' | '~' | '@')
        });
    if shaped {
        tag.to_owned()
    } else {
        format!("\"{}\"", one_line(&redact(tag), MAX_FIELD))
    }
}

impl Returned for Resource {
    fn tidied(mut self, redact: &dyn Fn(&str) -> String) -> Result<Self, ProviderError> {
        bounded("live", &self.live, MAX_LIVE)?;
        bounded("outputs", &self.outputs, MAX_OUTPUTS)?;
        // `live` is compared with what the app wants (its secret values included), never
        // stored or printed: bounded, not redacted. `outputs` are stored.
        redact_json(&mut self.outputs, redact);
        let field = |text: &str| one_line(&redact(text), MAX_FIELD);
        Ok(Resource {
            kind: field(&self.kind),
            id: field(&self.id),
            name: field(&self.name),
            owner: self.owner.as_deref().map(|tag| owner_field(tag, redact)),
            live: self.live,
            outputs: self.outputs,
        })
    }
}

impl Returned for Progress {
    fn tidied(self, redact: &dyn Fn(&str) -> String) -> Result<Self, ProviderError> {
        Ok(Progress {
            state: self.state,
            message: self.message.map(|m| one_line(&redact(&m), MAX_MESSAGE)),
        })
    }
}

impl Returned for ResourcePage {
    fn tidied(self, redact: &dyn Fn(&str) -> String) -> Result<Self, ProviderError> {
        Ok(ResourcePage {
            resources: self
                .resources
                .into_iter()
                .map(|r| r.tidied(redact))
                .collect::<Result<_, _>>()?,
            next: self.next.map(|n| one_line(&n, MAX_FIELD)),
        })
    }
}

impl<T: Returned> Returned for Option<T> {
    fn tidied(self, redact: &dyn Fn(&str) -> String) -> Result<Self, ProviderError> {
        self.map(|v| v.tidied(redact)).transpose()
    }
}

impl Returned for () {
    fn tidied(self, _: &dyn Fn(&str) -> String) -> Result<Self, ProviderError> {
        Ok(())
    }
}

/// A provider call's result, tidied: its value, or its error.
pub(crate) fn tidied<T: Returned>(
    result: Result<T, ProviderError>,
    redact: &dyn Fn(&str) -> String,
) -> Result<T, ProviderError> {
    match result {
        Ok(value) => value.tidied(redact),
        Err(error) => Err(error.tidied(redact)?),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_shown_not_obeyed() {
        assert_eq!(
            one_line("bad\ntest-api: COMPLETE\r\x1b[2K\u{9b}x\ttab", 100),
            "bad\\ntest-api: COMPLETE\\r\\x1b[2K\\u{9b}x tab"
        );
        assert_eq!(one_line("abcdef", 3), "abc… (3 more characters)");
        assert_eq!(one_line("héllo", 10), "héllo");
    }

    #[test]
    fn what_a_provider_returns_is_redacted_and_bounded() {
        let redact = |t: &str| t.replace("tok-123", "[redacted]");
        let resource = Resource {
            kind: "dns-record".to_owned(),
            id: "id\n1".to_owned(),
            name: "n".to_owned(),
            owner: Some("fabrik:p/a".to_owned()),
            live: serde_json::json!({ "echo": ["Bearer tok-123"] }),
            outputs: serde_json::json!({ "token": "tok-123" }),
        };
        let tidy = resource.tidied(&redact).expect("tidied");
        assert_eq!(tidy.id, "id\\n1");
        assert_eq!(tidy.outputs["token"], "[redacted]");
        assert_eq!(
            tidy.live["echo"][0], "Bearer tok-123",
            "compared, never stored"
        );
        let huge = Resource {
            kind: "k".to_owned(),
            id: "i".to_owned(),
            name: "n".to_owned(),
            owner: None,
            live: serde_json::Value::Null,
            outputs: serde_json::json!({ "blob": "x".repeat(MAX_OUTPUTS) }),
        };
        let refused = huge.tidied(&redact).expect_err("too large");
        assert!(
            refused.to_string().contains("`outputs` document of"),
            "{refused}"
        );
        let error = ProviderError::Permanent(format!("tok-123 {}", "y".repeat(30_000)));
        let tidy = error.tidied(&redact).expect("tidied").to_string();
        assert!(
            tidy.starts_with("[redacted] yyy") && tidy.len() < MAX_MESSAGE + 64,
            "{}",
            tidy.len()
        );
    }
}
