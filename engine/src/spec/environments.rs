//! `environments:`: one spec, several deployments of one app (staging, production,
//! previews). Each entry overrides what differs; everything else is shared. An entry whose
//! name ends in `*` stands for every name it matches (`preview-*`: `preview-123`), with
//! `{{ env }}` in its domain and Coolify environment replaced by the name.
//!
//! The effective document of an environment is the spec without `environments`, the
//! entry's fields merged in (mappings key by key, anything else replaced), then validated
//! as a spec of its own: its problems are located where they are written, in the entry
//! when the entry wrote the field.

use serde_yaml::{Mapping, Value};

use super::diagnostic::{Diagnostics, Location};
use super::locate::{SourceMap, child};

/// The fields an environment may override.
pub const KEYS: &[&str] = &[
    "domain",
    "server",
    "env",
    "secrets",
    "coolify",
    "healthcheck",
    "rollback",
    "monitor",
];

/// Overrides of these mappings are merged key by key into the spec's.
const MERGED: &[&str] = &["env", "coolify", "healthcheck", "rollback", "monitor"];

/// The longest environment name: with the app name, it must fit an owner tag within
/// Cloudflare's 100-character comment limit (see `orchestrator::owner`).
pub const MAX_NAME_LEN: usize = 15;

/// The longest `app@environment`: as long as an app name may be, so that owner tags and
/// the prefix `fabrik gc` lists by are what they are without environments.
pub const MAX_KEY_LEN: usize = 63;

/// What `{{ env }}` stands for in an environment's domain and Coolify environment.
const PLACEHOLDERS: &[&str] = &["{{ env }}", "{{env}}"];

/// What a valid environment name looks like, for hints.
pub const NAME_HINT: &str = "use 1 to 15 lowercase letters, digits and hyphens, not starting or ending with a hyphen; a name ending in `*` (`preview-*`) stands for every name it starts";

/// An entry's name: one environment, or a pattern standing for many.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EnvironmentName {
    Named(String),
    /// `prefix*`: any valid name that starts with `prefix` and is longer.
    Pattern {
        prefix: String,
    },
}

impl EnvironmentName {
    pub fn parse(text: &str) -> Option<Self> {
        match text.strip_suffix('*') {
            Some(prefix) => {
                let valid = prefix.len() < MAX_NAME_LEN
                    && prefix
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                    && !prefix.starts_with('-');
                valid.then(|| Self::Pattern {
                    prefix: prefix.to_owned(),
                })
            }
            None => is_environment_name(text).then(|| Self::Named(text.to_owned())),
        }
    }

    /// Whether `name` is this environment, or one this pattern stands for.
    pub fn matches(&self, name: &str) -> bool {
        match self {
            Self::Named(own) => own == name,
            Self::Pattern { prefix } => {
                name.len() > prefix.len() && name.starts_with(prefix) && is_environment_name(name)
            }
        }
    }

    pub fn is_pattern(&self) -> bool {
        matches!(self, Self::Pattern { .. })
    }

    /// Two names this entry stands for (one for a named environment): a pattern is
    /// validated with both, and must give them different domains and places.
    fn samples(&self) -> Vec<String> {
        match self {
            Self::Named(name) => vec![name.clone()],
            Self::Pattern { prefix } => {
                let trimmed = prefix.trim_end_matches('-');
                let shortest = if trimmed.is_empty() {
                    "1".to_owned()
                } else {
                    format!("{trimmed}-1")
                };
                // The longest name it stands for too: its domain label must fit 63
                // characters, and its owner tag the provider's limit.
                let longest = format!("{prefix}{}", "9".repeat(MAX_NAME_LEN - prefix.len()));
                vec![shortest, longest]
            }
        }
    }
}

impl std::fmt::Display for EnvironmentName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Named(name) => f.write_str(name),
            Self::Pattern { prefix } => write!(f, "{prefix}*"),
        }
    }
}

/// Whether `value` is a valid environment name: a short lowercase DNS label.
pub fn is_environment_name(value: &str) -> bool {
    !value.is_empty()
        && value.len() <= MAX_NAME_LEN
        && value
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !value.starts_with('-')
        && !value.ends_with('-')
}

/// One entry of `environments:`, as written.
#[derive(Debug, Clone)]
pub struct Entry {
    pub name: EnvironmentName,
    /// The key as written, for field paths (`environments.<written>.domain`).
    pub written: String,
    overrides: Mapping,
    location: Location,
}

impl Entry {
    /// The names this entry is validated with (see [`EnvironmentName::samples`]).
    pub fn samples(&self) -> Vec<String> {
        self.name.samples()
    }

    pub fn location(&self) -> Location {
        self.location
    }
}

/// Reads `environments` of the spec's `top` mapping: `None` when the spec has none (it is
/// one deployment, as it always was). Every problem of the entries themselves is
/// reported; an entry with one is left out.
pub fn read(top: &Mapping, map: &SourceMap, diags: &mut Diagnostics) -> Option<Vec<Entry>> {
    let value = top.get("environments").filter(|v| !v.is_null())?;
    let Value::Mapping(entries) = value else {
        diags.push_with_hint(
            map.value("environments"),
            "environments",
            "expected a mapping of environment names to what differs in each",
            Some("write `environments:` then `staging:` with, indented under it, `domain: staging.example.com`"),
        );
        return Some(Vec::new());
    };
    if entries.is_empty() {
        diags.push_with_hint(
            map.value("environments"),
            "environments",
            "names no environment",
            Some("name at least one (`staging: {domain: staging.example.com}`), or remove `environments`"),
        );
    }
    let mut read = Vec::new();
    for (key, value) in entries {
        let Some(written) = key.as_str() else {
            diags.push(
                map.value("environments"),
                "environments",
                "environment names must be strings",
            );
            continue;
        };
        let path = child("environments", written);
        let Some(name) = EnvironmentName::parse(written) else {
            diags.push_with_hint(
                map.key(&path),
                &path,
                format!("{written:?} is not a valid environment name"),
                Some(NAME_HINT),
            );
            continue;
        };
        let overrides = match value {
            Value::Null => Mapping::new(),
            Value::Mapping(m) => m.clone(),
            _ => {
                diags.push(
                    map.value(&path),
                    &path,
                    "expected a mapping of the fields this environment overrides",
                );
                continue;
            }
        };
        let mut valid = true;
        for key in overrides.keys() {
            let field = child(&path, key.as_str().unwrap_or("?"));
            if key.as_str().is_some_and(|k| KEYS.contains(&k)) {
                continue;
            }
            valid = false;
            let shared = key.as_str().is_some_and(|k| {
                ["name", "template", "source", "port", "notify", "hooks"].contains(&k)
            });
            let hint = if shared {
                "every environment deploys the same app from the same source: this field is the spec's, shared by all".to_owned()
            } else {
                format!("an environment can override: {}", KEYS.join(", "))
            };
            diags.push_with_hint(
                map.key(&field),
                &field,
                "cannot differ between environments",
                Some(hint),
            );
        }
        if valid {
            read.push(Entry {
                name,
                written: written.to_owned(),
                overrides,
                location: map.key(&path),
            });
        }
    }
    Some(read)
}

/// The spec's document as environment `name` of `entry` sees it, and where each of its
/// fields is written.
pub fn effective(top: &Mapping, map: &SourceMap, entry: &Entry, name: &str) -> (Value, SourceMap) {
    let mut doc = top.clone();
    doc.remove("environments");
    let mut located = map.clone();
    let from = child("environments", &entry.written);
    for (key, value) in &entry.overrides {
        let Some(key) = key.as_str() else { continue };
        let merged = match (MERGED.contains(&key), doc.get(key), value) {
            (true, Some(Value::Mapping(base)), Value::Mapping(over)) => {
                let mut base = base.clone();
                for (k, v) in over {
                    base.insert(k.clone(), v.clone());
                    if let Some(k) = k.as_str() {
                        located.graft(&child(&child(&from, key), k), &child(key, k));
                    }
                }
                Value::Mapping(base)
            }
            _ => {
                located.graft(&child(&from, key), key);
                value.clone()
            }
        };
        doc.insert(Value::from(key), merged);
    }
    // Coolify's environment is the app's environment unless the spec says otherwise: two
    // environments in one Coolify environment would share resource names.
    let coolify = doc
        .entry(Value::from("coolify"))
        .or_insert_with(|| Value::Mapping(Mapping::new()));
    if let Value::Mapping(coolify) = coolify
        && coolify.get("environment").is_none_or(Value::is_null)
    {
        coolify.insert(Value::from("environment"), Value::from(name));
    }
    for (key, inner) in [("domain", None), ("coolify", Some("environment"))] {
        let slot = match inner {
            None => doc.get_mut(key),
            Some(inner) => doc
                .get_mut(key)
                .and_then(Value::as_mapping_mut)
                .and_then(|m| m.get_mut(inner)),
        };
        if let Some(Value::String(text)) = slot {
            for placeholder in PLACEHOLDERS {
                *text = text.replace(placeholder, name);
            }
        }
    }
    (Value::Mapping(doc), located)
}

/// Which entry `name` is: a named environment first, else the first pattern it matches.
pub fn find<'a>(entries: &'a [Entry], name: &str) -> Option<&'a Entry> {
    entries
        .iter()
        .find(|e| !e.name.is_pattern() && e.name.matches(name))
        .or_else(|| entries.iter().find(|e| e.name.matches(name)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_patterns() {
        assert_eq!(
            EnvironmentName::parse("staging"),
            Some(EnvironmentName::Named("staging".into()))
        );
        let preview = EnvironmentName::parse("preview-*").expect("a pattern");
        assert!(preview.matches("preview-123"));
        assert!(!preview.matches("preview-"));
        assert!(!preview.matches("staging"));
        assert!(!preview.matches("preview-UPPER"));
        assert!(!preview.matches(&format!("preview-{}", "x".repeat(MAX_NAME_LEN))));
        for bad in [
            "",
            "Prod",
            "-a",
            "a-",
            "a*b",
            "a b",
            &"x".repeat(MAX_NAME_LEN + 1),
        ] {
            assert_eq!(EnvironmentName::parse(bad), None, "{bad:?}");
        }
        assert_eq!(preview.samples(), vec!["preview-1", "preview-9999999"]);
        assert_eq!(
            EnvironmentName::parse("*").map(|p| p.samples()),
            Some(vec!["1".to_owned(), "9".repeat(MAX_NAME_LEN)])
        );
    }

    #[test]
    fn an_environment_merges_mappings_and_replaces_the_rest() {
        let text = "name: api\ndomain: api.example.com\nenv:\n  A: '1'\n  B: '2'\nsecrets: [S]\nenvironments:\n  preview-*:\n    domain: '{{ env }}.preview.example.com'\n    env:\n      B: '3'\n    secrets: [T]\n";
        let top: Mapping = serde_yaml::from_str(text).expect("yaml");
        let map = SourceMap::parse(text).expect("yaml");
        let mut diags = Diagnostics::new(std::path::Path::new("x.yaml"));
        let entries = read(&top, &map, &mut diags).expect("environments");
        assert!(diags.is_empty());
        let entry = find(&entries, "preview-7").expect("the pattern matches");
        let (doc, located) = effective(&top, &map, entry, "preview-7");
        let expected: Value = serde_yaml::from_str(
            "name: api\ndomain: preview-7.preview.example.com\nenv: {A: '1', B: '3'}\nsecrets: [T]\ncoolify: {environment: preview-7}\n",
        )
        .expect("yaml");
        assert_eq!(doc, expected);
        assert_eq!(located.value("domain").line, 9, "where the entry writes it");
        assert_eq!(located.value("env.B").line, 11);
        assert_eq!(located.value("env.A").line, 4, "the spec's own");
        assert_eq!(located.value("secrets[0]").line, 12);
    }

    #[test]
    fn shared_fields_cannot_be_overridden() {
        let text = "environments:\n  staging:\n    source: {image: x}\n    domian: a.example.com\n";
        let top: Mapping = serde_yaml::from_str(text).expect("yaml");
        let map = SourceMap::parse(text).expect("yaml");
        let mut diags = Diagnostics::new(std::path::Path::new("x.yaml"));
        let entries = read(&top, &map, &mut diags).expect("environments");
        assert!(entries.is_empty());
        let found = diags.into_sorted();
        assert_eq!(found.len(), 2, "{found:?}");
        assert_eq!(found[0].field, "environments.staging.source");
        assert_eq!(found[0].location.line, 3);
        assert_eq!(found[1].field, "environments.staging.domian");
    }
}
