//! How Coolify's compose parser tells a database from an application.
//!
//! Coolify turns each service of a compose document into a `ServiceApplication` or a
//! `ServiceDatabase` (coollabsio/coolify v4.3.10, bootstrap/helpers/parsers.php,
//! `serviceParser`: `isDatabaseImage($image, $service)`). A database gets no domain:
//! `urls` naming it are refused ("Service container with '…' not found.",
//! `ServicesController::applyServiceUrls`), and a service created with them is deleted
//! again. So the service a template routes the app's domain to must not be one Coolify
//! takes for a database; validation says so before anything is sent.
//!
//! A port of `isDatabaseImage` and `isDatabaseImageWithContext`
//! (bootstrap/helpers/docker.php) with `DATABASE_DOCKER_IMAGES`
//! (bootstrap/helpers/constants.php), as of v4.3.10; other releases have other lists.

use serde_yaml::Value;

/// `DATABASE_DOCKER_IMAGES` (constants.php): compared by the last path segment.
const DATABASE_IMAGES: &[&str] = &[
    "bitnami/mariadb",
    "bitnami/mongodb",
    "bitnami/redis",
    "bitnamilegacy/mariadb",
    "bitnamilegacy/mongodb",
    "bitnamilegacy/redis",
    "bitnamisecure/mariadb",
    "bitnamisecure/mongodb",
    "bitnamisecure/redis",
    "mysql",
    "bitnami/mysql",
    "bitnamilegacy/mysql",
    "bitnamisecure/mysql",
    "mysql/mysql-server",
    "mariadb",
    "postgis/postgis",
    "postgres",
    "bitnami/postgresql",
    "bitnamilegacy/postgresql",
    "bitnamisecure/postgresql",
    "supabase/postgres",
    "elestio/postgres",
    "mongo",
    "redis",
    "memcached",
    "couchdb",
    "neo4j",
    "influxdb",
    "clickhouse/clickhouse-server",
    "timescaledb/timescaledb",
    "timescaledb",
    "timescaledb-ha",
    "pgvector/pgvector",
];

/// Images whose names contain a database's but which are applications
/// (`isDatabaseImageWithContext`'s `$knownApplicationPatterns`, matched as substrings).
const APPLICATION_PATTERNS: &[&str] = &[
    "supertokens/supertokens-mysql",
    "supertokens/supertokens-postgresql",
    "supertokens/supertokens-mongodb",
    "registry.supertokens.io/supertokens/supertokens-mysql",
    "registry.supertokens.io/supertokens/supertokens-postgresql",
    "registry.supertokens.io/supertokens/supertokens-mongodb",
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

const DATABASE_PORTS: &[&str] = &[
    "3306", "5432", "27017", "6379", "8086", "9200", "7687", "8123",
];

/// Whether Coolify makes the compose service `body` with `image` a `ServiceDatabase`.
pub fn is_database(image: &str, body: &Value) -> bool {
    // The name is what precedes the first `:` (so a registry port cuts it short, as it
    // does in Coolify), and only its last path segment is compared.
    let name = image.split(':').next().unwrap_or(image);
    let base = name.rsplit('/').next().unwrap_or(name);
    let known = DATABASE_IMAGES
        .iter()
        .any(|db| db.rsplit('/').next() == Some(base));
    known && with_context(name, body)
}

/// `isDatabaseImageWithContext`: a known database image is an application after all when
/// the service looks like one.
fn with_context(name: &str, body: &Value) -> bool {
    if APPLICATION_PATTERNS.iter().any(|p| name.contains(p)) {
        return false;
    }
    // PHP's `(string)` of a mapping is "Array": a long-syntax port never matches.
    let has_db_port = items(body.get("ports"))
        .iter()
        .any(|port| DATABASE_PORTS.iter().any(|db| port.contains(db)));
    // The values of `environment` are read: `KEY=value` items of a list, the values of a
    // mapping (not its keys).
    let environment: Vec<String> = items(body.get("environment"))
        .iter()
        .map(|e| e.to_ascii_uppercase())
        .collect();
    let env_has = |needles: &[&str]| {
        environment
            .iter()
            .any(|e| needles.iter().any(|n| e.contains(n)))
    };
    let has_db_env = env_has(&[
        "MYSQL_ROOT_PASSWORD",
        "POSTGRES_PASSWORD",
        "MONGO_INITDB_ROOT_PASSWORD",
        "REDIS_PASSWORD",
    ]);
    let has_app_env = env_has(&["SERVICE_FQDN", "API_KEYS", "APP_", "APPLICATION_"]);
    let healthcheck = match body.get("healthcheck").and_then(|h| h.get("test")) {
        Some(Value::Sequence(parts)) => parts
            .iter()
            .filter_map(scalar)
            .collect::<Vec<_>>()
            .join(" "),
        Some(Value::String(text)) => text.clone(),
        _ => String::new(),
    }
    .to_ascii_uppercase();
    let has_db_healthcheck = ["PG_ISREADY", "MYSQLADMIN PING", "MONGO", "REDIS-CLI PING"]
        .iter()
        .any(|n| healthcheck.contains(n));
    let has_app_healthcheck = [
        "CURL", "WGET", "HTTP://", "HTTPS://", "/HEALTH", "/API/", "/HELLO",
    ]
    .iter()
    .any(|n| healthcheck.contains(n));
    // Only a mapping's keys are service names; a list's keys are its indices.
    let depends_on_databases = body
        .get("depends_on")
        .and_then(Value::as_mapping)
        .is_some_and(|m| {
            m.keys().filter_map(Value::as_str).any(|name| {
                ["mysql", "postgres", "mongo", "redis", "mariadb"]
                    .iter()
                    .any(|db| name.contains(db))
            })
        });
    if has_app_env && depends_on_databases {
        return false;
    }
    if has_app_healthcheck {
        return false;
    }
    if has_db_port && has_db_healthcheck {
        return true;
    }
    if has_db_env {
        return true;
    }
    !depends_on_databases
}

/// The entries of a list or the values of a mapping, as PHP's `(string)` shows them.
fn items(value: Option<&Value>) -> Vec<String> {
    let values: Vec<&Value> = match value {
        Some(Value::Sequence(list)) => list.iter().collect(),
        Some(Value::Mapping(map)) => map.values().collect(),
        _ => Vec::new(),
    };
    values
        .into_iter()
        .map(|v| scalar(v).unwrap_or_else(|| "Array".to_owned()))
        .collect()
}

fn scalar(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(if *b { "1" } else { "" }.to_owned()),
        Value::Null => Some(String::new()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn service(yaml: &str) -> Value {
        serde_yaml::from_str(yaml).expect("yaml")
    }

    #[test]
    fn known_database_images_are_databases_unless_the_service_looks_like_an_app() {
        let plain = service("{}");
        for image in [
            "postgres:16",
            "docker.io/library/postgres:16-alpine",
            "redis",
            "ghcr.io/x/mariadb:11",
            "bitnami/postgresql:16",
        ] {
            assert!(is_database(image, &plain), "{image}");
        }
        for image in [
            "ghcr.io/acme/api:1.4",
            "postgrest/postgrest:v12",
            "nginx:1.27",
            "ghcr.io/acme/postgres-api:1",
            // A registry port ends the name at its colon, as in Coolify.
            "registry.local:5000/postgres:16",
        ] {
            assert!(!is_database(image, &plain), "{image}");
        }
        // An HTTP health check makes it an application.
        let http = service("{healthcheck: {test: [CMD, curl, -f, 'http://localhost/health']}}");
        assert!(!is_database("redis:7", &http));
        // App-like variables and a dependency on a database do too.
        let app = service(
            "{environment: [APP_KEY=x], depends_on: {postgres: {condition: service_started}}}",
        );
        assert!(!is_database("redis:7", &app));
        // A dependency alone, named as a mapping key, does; as a list item it does not.
        let mapping = service("{depends_on: {mysql: {}}}");
        assert!(!is_database("redis:7", &mapping));
        let list = service("{depends_on: [mysql]}");
        assert!(is_database("redis:7", &list));
        // Database variables win over a dependency.
        let env = service("{environment: ['POSTGRES_PASSWORD=x'], depends_on: {mysql: {}}}");
        assert!(is_database("postgres:16", &env));
        // Only the values of a mapping are read.
        let keys = service("{environment: {POSTGRES_PASSWORD: x}, depends_on: {mysql: {}}}");
        assert!(!is_database("postgres:16", &keys));
    }
}
