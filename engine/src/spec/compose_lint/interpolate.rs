//! Compose's variable interpolation, as compose-go's `template` package does it before
//! anything reads a value: `$$` is a literal `$`; `$NAME` and `${NAME}` substitute;
//! `${NAME:-default}` / `${NAME-default}` fall back when the variable is unset or empty /
//! unset; `${NAME:+other}` / `${NAME+other}` substitute `other` when it is set and
//! non-empty / set; `${NAME:?message}` / `${NAME?message}` stop Compose. Defaults nest
//! (`${A:-${B}}`); a `${` that does not parse stops Compose ("invalid interpolation
//! format"); a `$` before anything else stays as it is. Keys are not interpolated.

use std::collections::BTreeMap;

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
        }
    }
}

/// `text` as Compose reads it with `variables`.
pub(super) fn interpolate(text: &str, variables: &Variables) -> Result<String, Unreadable> {
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

/// The index of the `}` that closes a `${`, counting nested `${ … }`.
fn closing_brace(inner: &str) -> Option<usize> {
    let mut depth = 0usize;
    let bytes = inner.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'$' if bytes.get(i + 1) == Some(&b'$') => i += 1,
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
    if !variables.known.contains_key(name) {
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
        '-' => interpolate(argument, variables),
        '+' if present => interpolate(argument, variables),
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
        interpolate(
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
