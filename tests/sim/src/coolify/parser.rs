//! What Coolify's compose parser makes of a service's compose (coollabsio/coolify
//! v4.3.10, bootstrap/helpers/parsers.php, `serviceParser`), beyond validation.
//!
//! An independent port of the engine's `spec::database_image`: the simulator must not
//! share Fabrik's reading of Coolify, or a mistake in it could never fail a test.

use serde_yaml::Value;

/// `DATABASE_DOCKER_IMAGES` (bootstrap/helpers/constants.php), by last path segment.
const DATABASES: &[&str] = &[
    "mariadb",
    "mongodb",
    "redis",
    "mysql",
    "mysql-server",
    "postgis",
    "postgres",
    "postgresql",
    "mongo",
    "memcached",
    "couchdb",
    "neo4j",
    "influxdb",
    "clickhouse-server",
    "timescaledb",
    "timescaledb-ha",
    "pgvector",
];

/// `isDatabaseImageWithContext`'s `$knownApplicationPatterns` (docker.php).
const APPLICATIONS: &[&str] = &[
    "supertokens/supertokens-mysql",
    "supertokens/supertokens-postgresql",
    "supertokens/supertokens-mongodb",
    "registry.supertokens.io/supertokens",
    "metabase/metabase",
    "amancevice/superset",
    "nocodb/nocodb",
    "ghcr.io/umami-software/umami",
    "infisical/infisical",
    "postgrest/postgrest",
    "supabase/postgres-meta",
    "bluewaveuptime/uptime_redis",
];

/// The compose services that become `ServiceApplication`s (the others become
/// `ServiceDatabase`s, which `urls` cannot name).
pub(super) fn applications(doc: &Value) -> Vec<String> {
    doc.get("services")
        .and_then(Value::as_mapping)
        .map(|services| {
            services
                .iter()
                .filter(|(_, body)| {
                    !body
                        .get("image")
                        .and_then(Value::as_str)
                        .is_some_and(|image| is_database_image(image, body))
                })
                .filter_map(|(name, _)| name.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// `isDatabaseImage($image, $service)` (bootstrap/helpers/docker.php).
fn is_database_image(image: &str, service: &Value) -> bool {
    let name = image.split(':').next().unwrap_or_default();
    let base = name.rsplit('/').next().unwrap_or_default();
    if !DATABASES.contains(&base) {
        return false;
    }
    if APPLICATIONS.iter().any(|p| name.contains(p)) {
        return false;
    }
    let text = |v: &Value| match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Sequence(_) | Value::Mapping(_) => "Array".to_owned(),
        _ => String::new(),
    };
    // `foreach` over a list gives its items, over a mapping its values.
    let values = |key: &str| -> Vec<String> {
        match service.get(key) {
            Some(Value::Sequence(list)) => list.iter().map(text).collect(),
            Some(Value::Mapping(map)) => map.values().map(text).collect(),
            _ => Vec::new(),
        }
    };
    let any = |hay: &[String], needles: &[&str]| {
        hay.iter()
            .any(|h| needles.iter().any(|n| h.to_uppercase().contains(n)))
    };
    let ports = values("ports");
    let env = values("environment");
    let test = match service.get("healthcheck").and_then(|h| h.get("test")) {
        Some(Value::Sequence(parts)) => parts.iter().map(text).collect::<Vec<_>>().join(" "),
        Some(Value::String(s)) => s.clone(),
        _ => String::new(),
    };
    let test = [test];
    let db_port = any(
        &ports,
        &[
            "3306", "5432", "27017", "6379", "8086", "9200", "7687", "8123",
        ],
    );
    let db_env = any(
        &env,
        &[
            "MYSQL_ROOT_PASSWORD",
            "POSTGRES_PASSWORD",
            "MONGO_INITDB_ROOT_PASSWORD",
            "REDIS_PASSWORD",
        ],
    );
    let app_env = any(&env, &["SERVICE_FQDN", "API_KEYS", "APP_", "APPLICATION_"]);
    let db_check = any(
        &test,
        &["PG_ISREADY", "MYSQLADMIN PING", "MONGO", "REDIS-CLI PING"],
    );
    let app_check = any(
        &test,
        &[
            "CURL", "WGET", "HTTP://", "HTTPS://", "/HEALTH", "/API/", "/HELLO",
        ],
    );
    let depends_on_db = service
        .get("depends_on")
        .and_then(Value::as_mapping)
        .is_some_and(|m| {
            m.keys().filter_map(Value::as_str).any(|k| {
                ["mysql", "postgres", "mongo", "redis", "mariadb"]
                    .iter()
                    .any(|d| k.contains(d))
            })
        });
    if (app_env && depends_on_db) || app_check {
        false
    } else if (db_port && db_check) || db_env {
        true
    } else {
        !depends_on_db
    }
}

/// An env row the parser writes for a reference in a service's `environment`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct ParsedEnv {
    pub key: String,
    /// The value it gets when created (a reference's default), else none (null).
    pub value: Option<String>,
    /// Written at every parse (`updateOrCreate`), not only when missing (`firstOrCreate`).
    pub overwrite: bool,
}

/// The env rows `serviceParser` creates for the `environment` values of every compose
/// service that start with `$` (parsers.php, the `$normalEnvironments` loop): `K: ${K}`
/// makes row K, `K: ${V:-default}` row V with its default (and rows for references
/// nested in the default), a bare `$V` row V; `K: ${SERVICE_…}` makes row K with that
/// text, rewritten at every parse. Rows are created only when missing: a value set since
/// stays. The parser runs on create, on a PATCH of the compose and on every start.
pub(super) fn environment_rows(doc: &Value) -> Vec<ParsedEnv> {
    let mut rows: Vec<ParsedEnv> = Vec::new();
    let mut push = |key: &str, value: Option<&str>, overwrite: bool| {
        if !key.is_empty() && !rows.iter().any(|r| r.key == key) {
            rows.push(ParsedEnv {
                key: key.to_owned(),
                value: value.map(str::to_owned),
                overwrite,
            });
        }
    };
    let services = doc.get("services").and_then(Value::as_mapping);
    for body in services.into_iter().flat_map(|m| m.values()) {
        let pairs: Vec<(String, String)> = match body.get("environment") {
            Some(Value::Mapping(map)) => map
                .iter()
                .filter_map(|(k, v)| Some((k.as_str()?.to_owned(), v.as_str()?.to_owned())))
                .collect(),
            Some(Value::Sequence(list)) => list
                .iter()
                .filter_map(|item| item.as_str()?.split_once('='))
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect(),
            _ => Vec::new(),
        };
        for (key, value) in pairs {
            // Magic variables are the magic-variable system's (`generated_envs`).
            if key.starts_with("SERVICE_") || value.starts_with("SERVICE_") {
                continue;
            }
            let parsed = replace_variables(&value);
            if parsed.starts_with("SERVICE_") {
                push(&key, Some(&value), true);
                continue;
            }
            if !value.starts_with('$') {
                continue;
            }
            if key == parsed {
                push(&key, None, false);
                continue;
            }
            match balanced(&value, 0) {
                Some((content, _)) => match split_operator(&content) {
                    Some((name, default)) => {
                        push(&name, Some(&default), false);
                        let mut at = 0;
                        while let Some((nested, end)) = balanced(&default, at) {
                            let (name, default) = match split_operator(&nested) {
                                Some((name, default)) => (name, Some(default)),
                                None => (nested, None),
                            };
                            if !name.starts_with("SERVICE_URL_")
                                && !name.starts_with("SERVICE_FQDN_")
                            {
                                push(&name, default.as_deref(), false);
                            }
                            at = end + 1;
                        }
                    }
                    None => push(&content, None, false),
                },
                // The old behaviour for input without balanced braces.
                None => {
                    let cut = [(":-", ':'), ("-", '-'), (":?", ':'), ("?", '?')]
                        .into_iter()
                        .find(|(op, _)| value.contains(op));
                    match cut {
                        Some((op, before)) => {
                            let text = replace_variables(&value);
                            let name = text.split(before).next().unwrap_or_default();
                            let default = text.split_once(op).map_or("", |(_, d)| d);
                            push(name, Some(default), false);
                        }
                        None => push(&replace_variables(&value), None, false),
                    }
                }
            }
        }
    }
    rows
}

/// `replaceVariables` (bootstrap/helpers/services.php) for a value starting with `$`.
fn replace_variables(value: &str) -> String {
    if value.starts_with("${") {
        if let Some((content, _)) = balanced(value, 0) {
            return content;
        }
        let before = value.split('}').next().unwrap_or_default();
        return before.replacen('$', "", 1).replacen('{', "", 1);
    }
    value.strip_prefix('$').unwrap_or(value).to_owned()
}

/// `extractBalancedBraceContent`: the text inside the first balanced `{…}` at or after
/// `from`, and the index of its closing brace.
fn balanced(text: &str, from: usize) -> Option<(String, usize)> {
    let bytes = text.as_bytes();
    let open = from + text.get(from..)?.find('{')?;
    let mut depth = 1;
    let mut at = open + 1;
    while at < bytes.len() && depth > 0 {
        match bytes[at] {
            b'{' => depth += 1,
            b'}' => depth -= 1,
            _ => {}
        }
        at += 1;
    }
    (depth == 0).then(|| (text[open + 1..at - 1].to_owned(), at - 1))
}

/// `splitOnOperatorOutsideNested`: the name and default around the first `:-`, `-`,
/// `:?` or `?` outside nested braces.
fn split_operator(content: &str) -> Option<(String, String)> {
    let mut depth = 0i32;
    for (i, c) in content.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            _ if depth == 0 => {
                for op in [":-", "-", ":?", "?"] {
                    if content[i..].starts_with(op) {
                        return Some((content[..i].to_owned(), content[i + op.len()..].to_owned()));
                    }
                }
            }
            _ => {}
        }
    }
    None
}

/// `validateDockerComposeForInjection` (bootstrap/helpers/parsers.php), run on create and
/// on a PATCH of the compose before anything is saved: service names and volume sources
/// and targets must pass `validateShellSafePath` (bootstrap/helpers/shared.php). The
/// message for `errors.docker_compose_raw`, if one fails. Environment-variable sources of
/// the long syntax (`${VAR}`, `${VAR:-default}`, `${VAR}/path`) are allowed.
pub(super) fn injection_problem(doc: &Value) -> Option<String> {
    static VARIABLE_SOURCE: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        regex::Regex::new(r"^\$\{[a-zA-Z_][a-zA-Z0-9_]*\}[/\w.\-]*$|^\$\{[^}]+:-[^}]*\}$")
            .expect("valid pattern")
    });
    const UNSAFE: &[(&str, &str)] = &[
        ("`", "backtick (command substitution)"),
        ("$(", "command substitution"),
        (
            "${",
            "variable substitution with potential command injection",
        ),
        ("|", "pipe operator"),
        ("&", "background/AND operator"),
        (";", "command separator"),
        ("\n", "newline (command separator)"),
        ("\r", "carriage return"),
        ("\t", "tab (token separator)"),
        (">", "output redirection"),
        ("<", "input redirection"),
    ];
    let check = |text: &str, context: &str| {
        UNSAFE.iter().find(|(bad, _)| text.contains(bad)).map(|(bad, why)| {
            format!(
                "Invalid {context}: contains forbidden character '{bad}' ({why}). Shell metacharacters are not allowed for security reasons."
            )
        })
    };
    let services = doc.get("services").and_then(Value::as_mapping)?;
    for (name, body) in services {
        let name = name.as_str().unwrap_or_default();
        if let Some(problem) = check(name, "service name") {
            return Some(format!(
                "Invalid Docker Compose service name: {problem} Service names must not contain shell metacharacters."
            ));
        }
        let volumes = body.get("volumes").and_then(Value::as_sequence);
        for volume in volumes.into_iter().flatten() {
            let problem = match volume {
                // parseDockerVolumeString checks the source (unless it is a variable with a
                // default) and the target; the whole string is a close stand-in.
                Value::String(text) if !text.starts_with("${") => check(text, "volume source"),
                Value::Mapping(m) => {
                    let source = m.get("source").and_then(Value::as_str).unwrap_or_default();
                    let variable = VARIABLE_SOURCE.is_match(source);
                    (!variable)
                        .then(|| check(source, "volume source"))
                        .flatten()
                        .or_else(|| {
                            m.get("target")
                                .and_then(Value::as_str)
                                .and_then(|t| check(t, "volume target"))
                        })
                }
                _ => None,
            };
            if let Some(problem) = problem {
                return Some(format!(
                    "Invalid Docker volume definition: {problem} Please use safe path names without shell metacharacters."
                ));
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(compose: &str) -> Vec<(String, Option<String>)> {
        environment_rows(&serde_yaml::from_str(compose).expect("yaml"))
            .into_iter()
            .map(|r| (r.key, r.value))
            .collect()
    }

    #[test]
    fn references_in_the_environment_become_rows() {
        let found = rows(
            "services:\n  app:\n    environment:\n      API_KEY: ${API_KEY}\n      MODE: ${APP_MODE:-fast}\n      NESTED: ${A:-${B:-x}}\n      PLAIN: hello\n      LITERAL: $$HOME\n      LIST_ITEM: 'a ${NOT_FIRST}'\n  db:\n    environment: ['PASSWORD=${DB_PASSWORD:?required}']\n",
        );
        assert_eq!(
            found,
            [
                ("API_KEY".to_owned(), None),
                ("APP_MODE".to_owned(), Some("fast".to_owned())),
                ("A".to_owned(), Some("${B:-x}".to_owned())),
                ("B".to_owned(), Some("x".to_owned())),
                // `$$` is Compose's escape; the parser reads it as a reference.
                ("$HOME".to_owned(), None),
                ("DB_PASSWORD".to_owned(), Some("required".to_owned())),
            ]
        );
    }
}
