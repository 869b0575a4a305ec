//! Services from a base64 docker compose: create, read, update, generated variables and
//! URLs.

use super::*;

/// ServicesController::create_service, first-pass `$allowedFields`.
pub(super) const SERVICE_CREATE_KEYS: &[&str] = &[
    "project_uuid",
    "server_uuid",
    "environment_name",
    "environment_uuid",
    "destination_uuid",
    "name",
    "description",
    "docker_compose_raw",
    "type",
    "instant_deploy",
    "urls",
    "force_domain_override",
    "is_container_label_escape_enabled",
    "tags",
];
pub(super) const SERVICE_UPDATE_KEYS: &[&str] = &[
    "name",
    "description",
    "docker_compose_raw",
    "urls",
    "force_domain_override",
    "instant_deploy",
    "connect_to_docker_network",
    "is_container_label_escape_enabled",
];
pub(super) fn service_json(r: &Resource, status: &str) -> Value {
    // ServicesController::service_by_uuid: no top-level `fqdn`; each compose service is an
    // application (or a database) with its own `fqdn`.
    let (applications, databases) = compose_services(&r.compose);
    let databases: Vec<Value> = databases
        .into_iter()
        .map(|name| json!({ "name": name, "status": status, "exclude_from_status": false }))
        .collect();
    let applications: Vec<Value> = applications
        .into_iter()
        .map(|name| {
            let fqdn =
                (name == r.url_service && !r.domains.is_empty()).then(|| r.domains.join(","));
            json!({ "name": name, "status": status, "fqdn": fqdn, "exclude_from_status": false })
        })
        .collect();
    json!({
        "id": r.id,
        "uuid": r.uuid,
        "name": r.name,
        "description": r.description,
        "environment_id": r.environment_id,
        "server_id": 1,
        "destination_id": 1,
        "destination_type": "App\\Models\\StandaloneDocker",
        "connect_to_docker_network": false,
        "is_container_label_escape_enabled": true,
        "config_hash": format!("{:x}", r.compose.len()),
        // Shown to tokens with `read:sensitive` (`removeSensitiveData`), as the
        // simulator's values are: the compose as the parser stored it.
        "docker_compose_raw": r.compose,
        "status": status,
        "server_status": true,
        "created_at": TIMESTAMP,
        "updated_at": TIMESTAMP,
        "applications": applications,
        "databases": databases,
    })
}

/// The service names of a compose file.
/// The compose services Coolify made applications, and those it made databases.
pub(super) fn compose_services(compose: &str) -> (Vec<String>, Vec<String>) {
    let doc = serde_yaml::from_str::<serde_yaml::Value>(compose).unwrap_or_default();
    let applications = parser::applications(&doc);
    let databases = doc
        .get("services")
        .and_then(|s| s.as_mapping())
        .into_iter()
        .flat_map(|m| m.keys())
        .filter_map(|k| k.as_str().map(str::to_owned))
        .filter(|name| !applications.contains(name))
        .collect();
    (applications, databases)
}

/// Runs the parser's env step over `compose` for service `uuid`: the magic variables it
/// generates and the rows for the compose's references (`parser::environment_rows`),
/// each created when missing.
pub(super) fn parse_envs(s: &mut Store, uuid: &str, compose: &str) {
    let doc = serde_yaml::from_str::<serde_yaml::Value>(compose).unwrap_or_default();
    let generated = generated_envs(compose)
        .into_iter()
        .map(|(key, value)| parser::ParsedEnv {
            key,
            value: Some(value),
            overwrite: false,
        });
    let rows: Vec<parser::ParsedEnv> = generated.chain(parser::environment_rows(&doc)).collect();
    for row in rows {
        let list = s.envs.entry(uuid.to_owned()).or_default();
        match list.iter_mut().find(|e| e["key"] == row.key.as_str()) {
            Some(existing) if row.overwrite => {
                existing["value"] = json!(row.value);
                existing["real_value"] = json!(row.value);
            }
            Some(_) => {}
            None => {
                s.next += 1;
                let mut env = new_env(s.next, &row.key, "", false);
                env["value"] = json!(row.value);
                env["real_value"] = json!(row.value);
                s.envs.entry(uuid.to_owned()).or_default().push(env);
            }
        }
    }
}

/// The variables Coolify's compose parser creates for a service (`serviceParser` in
/// bootstrap/helpers/parsers.php, values from `generateEnvValue` in
/// bootstrap/helpers/shared.php): every `${SERVICE_<COMMAND>_<NAME>}` the compose refers
/// to, created once and never regenerated. URL and FQDN values are left empty here.
pub(super) fn generated_envs(compose: &str) -> Vec<(String, String)> {
    static MAGIC: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        regex::Regex::new(r"\$\{?(SERVICE_[A-Za-z0-9_]+)").expect("valid pattern")
    });
    let mut found: Vec<(String, String)> = Vec::new();
    for capture in MAGIC.captures_iter(compose) {
        let key = capture[1].to_owned();
        if found.iter().any(|(k, _)| *k == key) {
            continue;
        }
        let value = if key.starts_with("SERVICE_FQDN_") || key.starts_with("SERVICE_URL_") {
            String::new()
        } else {
            // A deterministic stand-in for the random value; what matters is that it is
            // kept, not what it is.
            format!("generated-{:016x}", {
                let mut h: u64 = 0xcbf2_9ce4_8422_2325;
                for b in key.bytes().chain(compose.len().to_le_bytes()) {
                    h = (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3);
                }
                h
            })
        };
        found.push((key, value));
    }
    found
}

/// Decodes and checks `docker_compose_raw`; returns the YAML and its service names.
pub(super) fn decode_compose(raw: &str) -> Result<(String, Vec<String>), Response> {
    let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(raw.trim()) else {
        return Err(invalid(
            "docker_compose_raw",
            json!("The docker_compose_raw should be base64 encoded."),
        ));
    };
    let Ok(text) = String::from_utf8(bytes) else {
        return Err(invalid(
            "docker_compose_raw",
            json!("The docker_compose_raw should be base64 encoded."),
        ));
    };
    let doc = serde_yaml::from_str::<serde_yaml::Value>(&text).unwrap_or_default();
    let has_services = doc
        .get("services")
        .and_then(|s| s.as_mapping())
        .is_some_and(|m| !m.is_empty());
    if !has_services {
        return Err(invalid(
            "docker_compose_raw",
            json!("Invalid docker-compose file: it has no services."),
        ));
    }
    if let Some(problem) = parser::injection_problem(&doc) {
        return Err(invalid("docker_compose_raw", json!(problem)));
    }
    // `urls` can name only what the parser made a ServiceApplication.
    let services = parser::applications(&doc);
    Ok((stored_compose(&text), services))
}

/// The compose as Coolify keeps it: its parser dumps the document it parsed back into
/// `docker_compose_raw`, without the `content` of file volumes (coollabsio/coolify
/// bootstrap/helpers/parsers.php, `serviceParser`: `data_forget($yaml,
/// 'services.*.volumes.*.content')`, then `$resource->docker_compose_raw =
/// Yaml::dump($yaml, 10, 2)`). Comments, quoting and layout are gone; what reads it back
/// gets another text for the same document. Symfony's dumper is not byte-for-byte
/// serde_yaml's: the simulator only promises "another text, same document".
pub(super) fn stored_compose(text: &str) -> String {
    let Ok(mut doc) = serde_yaml::from_str::<serde_yaml::Value>(text) else {
        return text.to_owned();
    };
    if let Some(services) = doc
        .get_mut("services")
        .and_then(serde_yaml::Value::as_mapping_mut)
    {
        for (_, service) in services.iter_mut() {
            if let Some(volumes) = service
                .get_mut("volumes")
                .and_then(serde_yaml::Value::as_sequence_mut)
            {
                for volume in volumes.iter_mut() {
                    if let Some(volume) = volume.as_mapping_mut() {
                        volume.remove("content");
                    }
                }
            }
        }
    }
    serde_yaml::to_string(&doc).unwrap_or_else(|_| text.to_owned())
}

/// Checks `urls` against the compose service names; returns the domains.
pub(super) fn service_urls(
    body: &serde_json::Map<String, Value>,
    services: &[String],
) -> Result<Option<(String, Vec<String>)>, Response> {
    let Some(urls) = body.get("urls") else {
        return Ok(None);
    };
    let Some(list) = urls.as_array() else {
        return Err(invalid("urls", json!(["The urls field must be an array."])));
    };
    // ServicesController::applyServiceUrls: problems come back as a plain list.
    let mut problems = Vec::new();
    let mut chosen = None;
    for (index, entry) in list.iter().enumerate() {
        if !entry.is_object()
            || entry
                .as_object()
                .is_some_and(|o| o.keys().any(|k| k != "name" && k != "url"))
        {
            return Err(invalid(
                &format!("urls.{index}"),
                json!([
                    "An item in the urls array has invalid fields. Only name and url fields are supported."
                ]),
            ));
        }
        let name = entry["name"].as_str().unwrap_or_default();
        let url = entry["url"].as_str().unwrap_or_default();
        if name.is_empty() {
            problems.push("Service container name is required to apply URLs.".to_owned());
            continue;
        }
        problems.extend(rules::domain_problems(url));
        if !services.iter().any(|s| s == name) {
            problems.push(format!("Service container with '{name}' not found."));
            continue;
        }
        let domains = rules::split_domains(url)
            .iter()
            .map(|d| rules::normalize_domain(d))
            .collect();
        chosen = Some((name.to_owned(), domains));
    }
    if !problems.is_empty() {
        return Err((
            StatusCode::UNPROCESSABLE_ENTITY,
            axum::Json(json!({ "message": "Validation failed.", "errors": problems })),
        )
            .into_response());
    }
    Ok(chosen)
}

pub(super) async fn create_service(
    State(sim): State<Coolify>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Err(r) = sim.enter("create_service", &method, &uri, &headers).await {
        return r;
    }
    let body = match json_body(&headers, &body) {
        Ok(b) => b,
        Err(r) => return r,
    };
    // ServicesController::create_service, first pass: allow-list and rules in one bag.
    let mut errors = Errors::default();
    rules::not_allowed(&body, SERVICE_CREATE_KEYS, &mut errors);
    rules::optional_string(&body, "name", Some(255), false, &mut errors);
    rules::optional_string(&body, "description", None, true, &mut errors);
    rules::required_string(&body, "project_uuid", &mut errors);
    rules::required_string(&body, "server_uuid", &mut errors);
    rules::optional_string(&body, "destination_uuid", None, true, &mut errors);
    rules::boolean(&body, "instant_deploy", &mut errors);
    rules::boolean(&body, "force_domain_override", &mut errors);
    if !body.contains_key("type") && !body.contains_key("docker_compose_raw") {
        errors.add(
            "docker_compose_raw",
            "The docker compose raw field is required when type is not present.",
        );
    }
    if let Some(r) = errors.response() {
        return r;
    }
    if body.contains_key("type") && body.contains_key("docker_compose_raw") {
        return message(
            StatusCode::UNPROCESSABLE_ENTITY,
            "You cannot provide both service type and docker_compose_raw. Use one or the other.",
        );
    }
    let force = body
        .get("force_domain_override")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let instant = body
        .get("instant_deploy")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    sim.with(|s| {
        let (environment_id, server) = match placement(s, &body) {
            Ok(p) => p,
            Err(r) => return r,
        };
        let destination = match choose_destination(s, &server, &body) {
            Ok(d) => d,
            Err(r) => return r,
        };
        let (compose, services) = match decode_compose(&str_field(&body, "docker_compose_raw")) {
            Ok(c) => c,
            Err(r) => return r,
        };
        // URLs are applied after the service exists; on a problem it is deleted again.
        let (url_service, domains) = match service_urls(&body, &services) {
            Ok(urls) => urls.unwrap_or_default(),
            Err(r) => return r,
        };
        if !force && let Some(conflict) = domain_conflicts(&sim, s, &domains, "") {
            return conflict;
        }
        s.next += 1;
        let id = s.next;
        let resource = Resource {
            kind: Kind::Service,
            id,
            uuid: uuid(id),
            name: Some(str_field(&body, "name"))
                .filter(|n| !n.is_empty())
                .unwrap_or_else(|| format!("service-{}", uuid(id + 7)[..10].to_owned())),
            description: s
                .next_description
                .take()
                .unwrap_or_else(|| str_field(&body, "description")),
            environment_id,
            destination,
            domains: domains.clone(),
            image: String::new(),
            tag: String::new(),
            ports_exposes: String::new(),
            compose: compose.clone(),
            url_service,
            started: instant.then(Instant::now),
            deleting: None,
        };
        s.envs.insert(resource.uuid.clone(), Vec::new());
        parse_envs(s, &resource.uuid, &compose);
        let created = json!({ "uuid": resource.uuid, "domains": if domains.is_empty() { vec![] } else { vec![domains.join(",")] } });
        s.resources.insert(resource.uuid.clone(), resource);
        (StatusCode::CREATED, axum::Json(created)).into_response()
    })
}

/// `GET /services`: every service of the team, unpaged (`ServicesController::services`).
pub(super) async fn list_services(
    State(sim): State<Coolify>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    if let Err(r) = sim.enter("list_services", &method, &uri, &headers).await {
        return r;
    }
    sim.with(|s| {
        let all: Vec<Value> = s
            .resources
            .keys()
            .filter_map(|uuid| sim.live(s, uuid, Kind::Service))
            .map(|r| service_json(&r, &sim.status_of(s, &r)))
            .collect();
        axum::Json(all).into_response()
    })
}

pub(super) async fn get_service(
    State(sim): State<Coolify>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    Path(uuid): Path<String>,
) -> Response {
    if let Err(r) = sim.enter("get_service", &method, &uri, &headers).await {
        return r;
    }
    sim.with(|s| match sim.live(s, &uuid, Kind::Service) {
        Some(r) => axum::Json(service_json(&r, &sim.status_of(s, &r))).into_response(),
        None => message(StatusCode::NOT_FOUND, "Service not found."),
    })
}

pub(super) async fn update_service(
    State(sim): State<Coolify>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    Path(uuid): Path<String>,
    body: Bytes,
) -> Response {
    if let Err(r) = sim.enter("update_service", &method, &uri, &headers).await {
        return r;
    }
    let body = match json_body(&headers, &body) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let unknown = unknown_keys(&body, SERVICE_UPDATE_KEYS);
    if !unknown.is_empty() {
        return not_allowed(&unknown);
    }
    sim.with(|s| {
        let Some(mut r) = sim.live(s, &uuid, Kind::Service) else {
            return message(StatusCode::NOT_FOUND, "Service not found.");
        };
        let mut services = compose_services(&r.compose).0;
        if let Some(raw) = body.get("docker_compose_raw").and_then(Value::as_str) {
            match decode_compose(raw) {
                Ok((compose, names)) => {
                    // The parser runs again: missing rows are created, existing ones
                    // keep their values.
                    parse_envs(s, &uuid, &compose);
                    r.compose = compose;
                    services = names;
                }
                Err(response) => return response,
            }
        }
        if body.contains_key("urls") {
            match service_urls(&body, &services) {
                Ok(urls) => {
                    let (url_service, domains) = urls.unwrap_or_default();
                    let force = body
                        .get("force_domain_override")
                        .and_then(Value::as_bool)
                        .unwrap_or(false);
                    if !force && let Some(conflict) = domain_conflicts(&sim, s, &domains, &uuid) {
                        return conflict;
                    }
                    r.domains = domains;
                    r.url_service = url_service;
                }
                Err(response) => return response,
            }
        }
        if let Some(name) = body.get("name").and_then(Value::as_str) {
            r.name = name.to_owned();
        }
        if let Some(description) = body.get("description").and_then(Value::as_str) {
            r.description = description.to_owned();
        }
        if body.get("instant_deploy").and_then(Value::as_bool) == Some(true) {
            r.started = Some(Instant::now());
        }
        let domains = r.domains.clone();
        s.resources.insert(uuid.clone(), r);
        axum::Json(json!({ "uuid": uuid, "domains": domains })).into_response()
    })
}
