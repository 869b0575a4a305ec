//! The env rows Coolify's compose parser creates by itself for a service.
//!
//! `serviceParser` (coollabsio/coolify v4.3.10, bootstrap/helpers/parsers.php, the
//! `$normalEnvironments` loop) reads every `environment` value of every compose service
//! that starts with `$` and creates a row for the variable it names, when missing:
//! `K: ${K}` row K, `K: ${V:-default}` row V (and rows for references nested in the
//! default), a bare `$V` (Compose's `$$` escape too) row V; `K: ${SERVICE_…}` row K. It
//! runs on create, on a PATCH of the compose and at every start. Deleting such a row is
//! undone at the next start, so these keys are never deleted and, where Fabrik did not
//! write them, never reported as set by hand.

use std::collections::BTreeSet;

use serde_yaml::Value;

/// The keys the parser creates rows for in `compose` (nothing if it does not parse).
pub fn parser_keys(compose: &str) -> BTreeSet<String> {
    let doc: Value = serde_yaml::from_str(compose).unwrap_or_default();
    let mut keys = BTreeSet::new();
    let services = doc.get("services").and_then(Value::as_mapping);
    for body in services.into_iter().flat_map(|m| m.values()) {
        let pairs: Vec<(&str, &str)> = match body.get("environment") {
            Some(Value::Mapping(map)) => map
                .iter()
                .filter_map(|(k, v)| Some((k.as_str()?, v.as_str()?)))
                .collect(),
            Some(Value::Sequence(list)) => list
                .iter()
                .filter_map(|item| item.as_str()?.split_once('='))
                .collect(),
            _ => Vec::new(),
        };
        for (key, value) in pairs {
            if key.starts_with("SERVICE_") || value.starts_with("SERVICE_") {
                continue;
            }
            let name = variable(value);
            if name.starts_with("SERVICE_") {
                keys.insert(key.to_owned());
                continue;
            }
            if !value.starts_with('$') {
                continue;
            }
            if key == name {
                keys.insert(name);
                continue;
            }
            let Some((content, _)) = braced(value, 0) else {
                // No balanced braces: the name is cut before the first operator found,
                // tried in this order.
                let cut = [(":-", ':'), ("-", '-'), (":?", ':'), ("?", '?')]
                    .into_iter()
                    .find(|(op, _)| value.contains(op));
                keys.insert(match cut {
                    Some((_, c)) => name.split(c).next().unwrap_or_default().to_owned(),
                    None => name,
                });
                continue;
            };
            match split_default(&content) {
                Some((name, default)) => {
                    keys.insert(name);
                    let mut at = 0;
                    while let Some((nested, end)) = braced(&default, at) {
                        let name = split_default(&nested).map_or(nested, |(name, _)| name);
                        if !name.starts_with("SERVICE_URL_") && !name.starts_with("SERVICE_FQDN_") {
                            keys.insert(name);
                        }
                        at = end + 1;
                    }
                }
                None => {
                    keys.insert(content);
                }
            }
        }
    }
    keys.retain(|k| !k.is_empty());
    keys
}

/// `replaceVariables` (bootstrap/helpers/services.php): the name a value refers to.
fn variable(value: &str) -> String {
    if value.starts_with("${") {
        if let Some((content, _)) = braced(value, 0) {
            return content;
        }
        let before = value.split('}').next().unwrap_or_default();
        return before.replacen('$', "", 1).replacen('{', "", 1);
    }
    value.strip_prefix('$').unwrap_or(value).to_owned()
}

/// `extractBalancedBraceContent`: the text of the first balanced `{…}` from `from`, and
/// where it closes.
fn braced(text: &str, from: usize) -> Option<(String, usize)> {
    let open = from + text.get(from..)?.find('{')?;
    let mut depth = 0usize;
    for (i, c) in text[open..].char_indices() {
        match c {
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    return Some((text[open + 1..open + i].to_owned(), open + i));
                }
            }
            _ => {}
        }
    }
    None
}

/// `splitOnOperatorOutsideNested`: name and default around the first `:-`, `-`, `:?` or
/// `?` outside nested braces.
fn split_default(content: &str) -> Option<(String, String)> {
    let mut depth = 0i32;
    for (i, c) in content.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            _ if depth == 0 => {
                if let Some(op) = [":-", "-", ":?", "?"]
                    .into_iter()
                    .find(|op| content[i..].starts_with(op))
                {
                    return Some((content[..i].to_owned(), content[i + op.len()..].to_owned()));
                }
            }
            _ => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_parser_s_keys_are_the_references_of_environment_values() {
        let compose = "services:\n  app:\n    environment:\n      API_KEY: ${API_KEY}\n      MODE: ${APP_MODE:-fast}\n      NESTED: ${A:-${B:-x}}\n      PLAIN: hello\n      PRICE: $$5 off\n      LATER: 'a ${NOT_FIRST}'\n      URL: ${SERVICE_URL_APP}\n  db:\n    environment: ['PASSWORD=${DB_PASSWORD:?required}', 'X=$$Y-z']\n";
        let keys: Vec<String> = parser_keys(compose).into_iter().collect();
        assert_eq!(
            keys,
            [
                "$5 off",
                "$Y",
                "A",
                "API_KEY",
                "APP_MODE",
                "B",
                "DB_PASSWORD",
                "URL"
            ]
        );
        assert!(parser_keys("not: [valid").is_empty());
    }
}
