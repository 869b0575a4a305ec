//! Compose's variable interpolation, as compose-go's `template` package does it before
//! anything reads a value: `$$` is a literal `$`; `$NAME` and `${NAME}` substitute;
//! `${NAME:-default}` / `${NAME-default}` fall back when the variable is unset or empty /
//! unset; `${NAME:+other}` / `${NAME+other}` substitute `other` when it is set and
//! non-empty / set; `${NAME:?message}` / `${NAME?message}` stop Compose. Defaults nest
//! (`${A:-${B}}`); a `${` that does not parse stops Compose ("invalid interpolation
//! format"); a `$` before anything else stays as it is. Keys are not interpolated.

use std::collections::BTreeMap;

/// Variables the shell on the server sets for `docker compose` itself: Compose takes
/// the process environment before `.env`, so a spec's `env` of the same name is not what
/// Compose reads, and their values on the server are unknown here.
const SERVER_SHELL: &[&str] = &[
    "HOME",
    "PATH",
    "PWD",
    "OLDPWD",
    "USER",
    "LOGNAME",
    "SHELL",
    "HOSTNAME",
    "LANG",
    "TERM",
    "SHLVL",
    "MAIL",
    "TMPDIR",
    "XDG_RUNTIME_DIR",
    "SSH_CONNECTION",
    "SSH_CLIENT",
    "SSH_TTY",
    "DOCKER_HOST",
    "DOCKER_CONFIG",
    "COMPOSE_PROJECT_NAME",
    "COMPOSE_FILE",
];

/// The variables Compose would see for one reading of the document.
pub(super) struct Variables<'a> {
    /// What the server's `.env` holds in this reading.
    pub values: &'a BTreeMap<String, String>,
    /// Every variable whose value Fabrik knows (the spec's `env`). Any other (a secret,
    /// a variable Coolify adds, one set by hand on the server) has a value this check
    /// cannot see, so a checked key may not use it.
    pub known: &'a BTreeMap<String, String>,
}

/// Why a value could not be read as Compose would read it.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Unreadable {
    /// Compose would refuse the document ("invalid interpolation format").
    Syntax(String),
    /// The value depends on a variable whose value is not in the spec.
    Unknown(String),
    /// The value depends on several variables.
    Several(Vec<String>),
}

impl Unreadable {
    pub(super) fn describe(&self, text: &str) -> String {
        match self {
            Unreadable::Syntax(problem) => format!(
                "`{}` is not valid Compose interpolation: {problem}",
                text.escape_debug()
            ),
            Unreadable::Unknown(name) => format!(
                "`{}` uses `${name}`, whose value is not in the spec (a secret, or a variable set on the server), so what Compose makes of it cannot be checked; write the value, or put it in `env`",
                text.escape_debug()
            ),
            Unreadable::Several(names) => format!(
                "`{}` uses several variables ({}), so every combination of them set or removed on the server would have to be checked; use one",
                text.escape_debug(),
                names.join(", ")
            ),
        }
    }
}

/// `text` as Compose reads it with `variables`. A value that uses more than one
/// variable is refused: the two readings (the spec's value, or removed) cover every
/// state of one variable, not every combination of several (`${A:+${B:-/}}etc`).
pub(super) fn interpolate(text: &str, variables: &Variables) -> Result<String, Unreadable> {
    let used = used_variables(text);
    if used.len() > 1 {
        return Err(Unreadable::Several(used));
    }
    substitute(text, variables)
}

/// The names a text refers to (`$NAME`, `${NAME…}`, nested ones included).
fn used_variables(text: &str) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'$' {
            if bytes.get(i + 1) == Some(&b'$') {
                i += 2;
                continue;
            }
            let start = if bytes.get(i + 1) == Some(&b'{') {
                i + 2
            } else {
                i + 1
            };
            let len = name_length(&text[start..]);
            if len > 0 {
                let name = text[start..start + len].to_owned();
                if !names.contains(&name) {
                    names.push(name);
                }
            }
        }
        i += 1;
    }
    names
}

fn substitute(text: &str, variables: &Variables) -> Result<String, Unreadable> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
        } else if let Some(inner) = after.strip_prefix('{') {
            let close = closing_brace(inner)
                .ok_or_else(|| Unreadable::Syntax("a `${` is never closed".to_owned()))?;
            if inner[..close].contains("$$") {
                return Err(Unreadable::Syntax(
                    "`$$` inside `${…}`, which Compose does not read as a literal `$` there"
                        .to_owned(),
                ));
            }
            out.push_str(&braced(&inner[..close], variables)?);
            rest = &inner[close + 1..];
        } else {
            let name_len = name_length(after);
            if name_len == 0 {
                out.push('$');
                rest = after;
            } else {
                out.push_str(&lookup(&after[..name_len], variables)?.unwrap_or_default());
                rest = &after[name_len..];
            }
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// The index of the `}` that closes a `${`, counting nested `${ … }` as compose-go
/// does; a `$$` inside is refused by the caller (compose-go's brace matching counts
/// `$${` as an opener where its substitution does not).
fn closing_brace(inner: &str) -> Option<usize> {
    let mut depth = 0usize;
    let bytes = inner.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'$' if bytes.get(i + 1) == Some(&b'{') => {
                depth += 1;
                i += 1;
            }
            b'}' if depth == 0 => return Some(i),
            b'}' => depth -= 1,
            _ => {}
        }
        i += 1;
    }
    None
}

/// Compose's variable names: `[_a-zA-Z][_a-zA-Z0-9]*`.
fn name_length(text: &str) -> usize {
    let mut chars = text.char_indices();
    match chars.next() {
        Some((_, c)) if c == '_' || c.is_ascii_alphabetic() => {}
        _ => return 0,
    }
    chars
        .find(|(_, c)| !(*c == '_' || c.is_ascii_alphanumeric()))
        .map_or(text.len(), |(i, _)| i)
}

/// The value of `name`, or `None` when it is unset in this reading.
fn lookup(name: &str, variables: &Variables) -> Result<Option<String>, Unreadable> {
    if !variables.known.contains_key(name) || SERVER_SHELL.contains(&name) {
        return Err(Unreadable::Unknown(name.to_owned()));
    }
    Ok(variables.values.get(name).cloned())
}

/// The body of `${…}`.
fn braced(body: &str, variables: &Variables) -> Result<String, Unreadable> {
    let name_len = name_length(body);
    if name_len == 0 {
        return Err(Unreadable::Syntax(format!(
            "`${{{body}}}` does not start with a variable name"
        )));
    }
    let (name, operator) = body.split_at(name_len);
    let value = lookup(name, variables)?;
    let (colon, operator) = match operator.strip_prefix(':') {
        Some(rest) => (true, rest),
        None => (false, operator),
    };
    // `:` means "unset or empty", no `:` means "unset".
    let present = match (&value, colon) {
        (Some(v), true) => !v.is_empty(),
        (Some(_), false) => true,
        (None, _) => false,
    };
    let mut chars = operator.chars();
    let Some(kind) = chars.next() else {
        if colon {
            return Err(Unreadable::Syntax(format!("`${{{body}}}` ends after `:`")));
        }
        return Ok(value.unwrap_or_default());
    };
    let argument = chars.as_str();
    match kind {
        '-' if present => Ok(value.unwrap_or_default()),
        '-' => substitute(argument, variables),
        '+' if present => substitute(argument, variables),
        '+' => Ok(String::new()),
        '?' if present => Ok(value.unwrap_or_default()),
        // Compose stops with the message: nothing runs, so nothing reaches the host.
        '?' => Ok(String::new()),
        _ => Err(Unreadable::Syntax(format!(
            "`${{{body}}}` has `{kind}` where `-`, `+` or `?` belongs"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str, values: &[(&str, &str)], known: &[&str]) -> Result<String, Unreadable> {
        let values: BTreeMap<String, String> = values
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        let known: BTreeMap<String, String> = known
            .iter()
            .map(|k| ((*k).to_owned(), String::new()))
            .collect();
        substitute(
            text,
            &Variables {
                values: &values,
                known: &known,
            },
        )
    }

    #[test]
    fn substitutes_as_compose_does() {
        let set = [("A", "/"), ("E", "")];
        let known = ["A", "E", "U"];
        for (text, expected) in [
            ("plain", "plain"),
            ("$$HOME", "$HOME"),
            ("$$$$", "$$"),
            ("${A}x", "/x"),
            ("$A:/h", "/:/h"),
            ("$A-x", "/-x"),
            ("${U:-/}", "/"),
            ("${E:-/}", "/"),
            ("${E-/}", ""),
            ("${U-/etc}", "/etc"),
            ("${A:+yes}", "yes"),
            ("${E:+yes}", ""),
            ("${E+yes}", "yes"),
            ("${U:-${A}}", "/"),
            ("${U:-${U:-${A}etc}}", "/etc"),
            ("${U:?required}", ""),
            ("cost $5", "cost $5"),
            ("$", "$"),
            ("a$-b", "a$-b"),
        ] {
            assert_eq!(read(text, &set, &known).as_deref(), Ok(expected), "{text}");
        }
    }

    /// Review of issue 28's fix: what the two readings or the brace matching missed.
    #[test]
    fn refuses_what_two_readings_cannot_cover() {
        let values: BTreeMap<String, String> = [("A", "x"), ("B", "/"), ("HOME", "data")]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        let variables = Variables {
            values: &values,
            known: &values,
        };
        assert!(matches!(
            interpolate("${A:+${B:-/}}etc", &variables),
            Err(Unreadable::Several(_))
        ));
        assert!(matches!(
            interpolate("${B:-$${}}etc", &variables),
            Err(Unreadable::Syntax(_))
        ));
        // The server's shell sets HOME for Compose, whatever the spec's env says.
        assert_eq!(
            interpolate("$HOME", &variables),
            Err(Unreadable::Unknown("HOME".to_owned()))
        );
        assert_eq!(interpolate("${B}x$$y", &variables).as_deref(), Ok("/x$y"));
    }

    #[test]
    fn refuses_what_compose_refuses_and_what_cannot_be_known() {
        assert!(matches!(read("${", &[], &[]), Err(Unreadable::Syntax(_))));
        assert!(matches!(
            read("${1A}", &[], &[]),
            Err(Unreadable::Syntax(_))
        ));
        assert!(matches!(
            read("${A:}", &[], &["A"]),
            Err(Unreadable::Syntax(_))
        ));
        assert!(matches!(
            read("${A!x}", &[], &["A"]),
            Err(Unreadable::Syntax(_))
        ));
        assert_eq!(
            read("${SECRET:-/srv}", &[], &["A"]),
            Err(Unreadable::Unknown("SECRET".to_owned()))
        );
        assert_eq!(
            read("${A:-$SECRET}", &[], &["A"]),
            Err(Unreadable::Unknown("SECRET".to_owned()))
        );
    }
}
