//! `env:` and `secrets:`: variable names and values Coolify keeps as written.

use super::*;

pub(super) const SECRET_KEYS: &[&str] = &["name", "generate"];

/// Coolify generates these per service; a spec that sets them fights Coolify.
/// Every `SERVICE_` variable is Coolify's: its compose parser generates `SERVICE_FQDN_*`,
/// `SERVICE_URL_*`, `SERVICE_PASSWORD_*`, `SERVICE_USER_*`, `SERVICE_BASE64_*` and more
/// (coollabsio/coolify bootstrap/helpers/parsers.php), and a spec value under that prefix
/// would replace a generated password under an existing volume.
pub(super) const RESERVED_ENV_PREFIXES: &[&str] = &["SERVICE_"];

impl Reader<'_> {
    pub(super) fn env_key(&mut self, key: &str, field: &str) -> bool {
        if !is_env_key(key) {
            let location = self.map.key(field);
            self.diags.push_with_hint(location, field, format!("{key:?} is not a valid environment variable name"), Some("start with a letter or `_`, then letters, digits, `_` or `.` (Coolify's rule), at most 255 characters".to_owned()));
            return false;
        }
        if let Some(prefix) = RESERVED_ENV_PREFIXES.iter().find(|p| key.starts_with(*p)) {
            let location = self.map.key(field);
            self.diags.push_with_hint(
                location,
                field,
                format!("{key:?} is reserved"),
                Some(format!(
                    "Coolify generates `{prefix}*` variables itself; choose another name"
                )),
            );
            return false;
        }
        true
    }

    pub(super) fn env(&mut self, top: &Mapping) -> BTreeMap<String, String> {
        let mut env = BTreeMap::new();
        let Some(value) = Self::get(top, "env") else {
            return env;
        };
        let Some(mapping) = self.mapping(value, "env") else {
            return env;
        };
        for (key, value) in mapping {
            let Some(key) = key.as_str() else {
                self.error(
                    "env",
                    format!("variable names must be strings, found {}", describe(key)),
                );
                continue;
            };
            let field = child("env", key);
            let key_ok = self.env_key(key, &field);
            let text = match value {
                Value::String(s) => Some(s.clone()),
                // Whole numbers convert without loss; decimals and booleans do not (`1.10`
                // would become "1.1", `yes`/`on` differ between YAML versions).
                Value::Number(n) if !n.is_f64() => Some(n.to_string()),
                other => {
                    self.error_with_hint(
                        &field,
                        format!("expected a string, found {}", describe(other)),
                        Some(format!(
                            "quote the value so it is passed exactly: {key}: \"...\""
                        )),
                    );
                    None
                }
            };
            // Coolify trims every request's strings and turns "" into null (the
            // `TrimStrings` and `ConvertEmptyStringsToNull` middleware, global in
            // app/Http/Kernel.php), and trims a variable's value again when it stores and
            // reads it (`EnvironmentVariable::value()`): such a value would read back
            // different, and every apply would send it again.
            let text = text.filter(|text| {
                if text.is_empty() {
                    self.error_with_hint(
                        &field,
                        "is empty; Coolify stores an empty value as no value",
                        Some("give it a value, or leave the variable out".to_owned()),
                    );
                    return false;
                }
                if text.trim() != text {
                    self.error_with_hint(
                        &field,
                        "starts or ends with whitespace, which Coolify removes",
                        Some(
                            "remove it (a YAML `|` block ends with a newline: write `|-`)"
                                .to_owned(),
                        ),
                    );
                    return false;
                }
                true
            });
            if key_ok && let Some(text) = text {
                env.insert(key.to_owned(), text);
            }
        }
        env
    }

    /// `secrets: [API_KEY, {name: DATABASE_URL, generate: false}]`: the names, sorted,
    /// and those that must be provided (never generated).
    pub(super) fn secrets(
        &mut self,
        top: &Mapping,
        env: &BTreeMap<String, String>,
    ) -> (Vec<String>, Vec<String>) {
        let mut names: Vec<String> = Vec::new();
        let mut required: Vec<String> = Vec::new();
        let Some(value) = Self::get(top, "secrets") else {
            return (names, required);
        };
        let Value::Sequence(items) = value else {
            self.error_with_hint(
                "secrets",
                format!("expected a list of names, found {}", describe(value)),
                Some("write `secrets: [DATABASE_URL, API_KEY]`".into()),
            );
            return (names, required);
        };
        for (index, value) in items.iter().enumerate() {
            let field = item("secrets", index);
            let (name, generate) = match value {
                Value::String(name) => (name.clone(), true),
                Value::Mapping(mapping) => {
                    self.known_keys(mapping, &field, SECRET_KEYS);
                    let Some(name) = self.required_string(mapping, &field, "name") else {
                        continue;
                    };
                    let generate = match Self::get(mapping, "generate") {
                        None => true,
                        Some(Value::Bool(b)) => *b,
                        Some(other) => {
                            self.error(
                                &format!("{field}.generate"),
                                format!("expected true or false, found {}", describe(other)),
                            );
                            continue;
                        }
                    };
                    (name, generate)
                }
                other => {
                    self.error_with_hint(
                        &field,
                        format!("expected a secret name, found {}", describe(other)),
                        Some("write a name, or `{name: DATABASE_URL, generate: false}` for one that must be provided".into()),
                    );
                    continue;
                }
            };
            let name = name.as_str();
            if !self.env_key(name, &field) {
                continue;
            }
            if names.iter().any(|n| n == name) {
                self.error(&field, format!("{name:?} is listed twice"));
                continue;
            }
            if env.contains_key(name) {
                self.error_with_hint(
                    &field,
                    format!("{name:?} is also set in `env`"),
                    Some(
                        "a variable is either plain (`env`) or secret (`secrets`), not both".into(),
                    ),
                );
                continue;
            }
            names.push(name.to_owned());
            if !generate {
                required.push(name.to_owned());
            }
        }
        names.sort();
        required.sort();
        (names, required)
    }
}

pub fn is_env_key(key: &str) -> bool {
    let mut bytes = key.bytes();
    key.len() <= 255
        && bytes
            .next()
            .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.')
}
