//! Applications: create, read, update, delete (deletes are queued, as Coolify's
//! `DeleteResourceJob`), with placement and domain checks.

use super::*;

pub(super) fn application_json(r: &Resource, status: &str) -> Value {
    let (image, tag) = (&r.image, &r.tag);
    json!({
        "id": r.id,
        "uuid": r.uuid,
        "name": r.name,
        "description": r.description,
        "fqdn": r.domains.join(","),
        "status": status,
        "build_pack": "dockerimage",
        "docker_registry_image_name": image,
        "docker_registry_image_tag": tag,
        "git_repository": "coollabsio/coolify",
        "git_branch": "main",
        "ports_exposes": r.ports_exposes,
        "environment_id": r.environment_id,
        "destination_id": 1,
        "health_check_enabled": false,
        "health_check_path": "/",
        "created_at": TIMESTAMP,
        "updated_at": TIMESTAMP,
    })
}

/// Resolves project, environment and server of a create request.
pub(super) fn placement(
    s: &Store,
    body: &serde_json::Map<String, Value>,
) -> Result<(u64, String), Response> {
    let project = str_field(body, "project_uuid");
    let Some(p) = s.projects.iter().find(|p| p.uuid == project) else {
        return Err(message(StatusCode::NOT_FOUND, "Project not found."));
    };
    let (name, env_uuid) = (
        str_field(body, "environment_name"),
        str_field(body, "environment_uuid"),
    );
    if name.is_empty() && env_uuid.is_empty() {
        return Err(message(
            StatusCode::UNPROCESSABLE_ENTITY,
            "You need to provide at least one of environment_name or environment_uuid.",
        ));
    }
    let Some(e) = p.environments.iter().find(|e| {
        (!name.is_empty() && e.name == name) || (!env_uuid.is_empty() && e.uuid == env_uuid)
    }) else {
        return Err(message(StatusCode::NOT_FOUND, "Environment not found."));
    };
    let server = str_field(body, "server_uuid");
    if !s.servers.iter().any(|v| v["uuid"] == server) {
        return Err(message(StatusCode::NOT_FOUND, "Server not found."));
    }
    Ok((e.id, server))
}

/// The destination a create lands on (ApplicationsController::create_application and
/// ServicesController::create_service, "destination" block): the only one, whatever was
/// sent; with several, `destination_uuid` must name one of them.
pub(super) fn choose_destination(
    s: &Store,
    server: &str,
    body: &serde_json::Map<String, Value>,
) -> Result<String, Response> {
    let destinations = s.destinations.get(server).cloned().unwrap_or_default();
    let uuid_of = |d: &Value| d["uuid"].as_str().unwrap_or_default().to_owned();
    match destinations.as_slice() {
        [] => Err(message(
            StatusCode::BAD_REQUEST,
            "Server has no destinations.",
        )),
        [only] => Ok(uuid_of(only)),
        several => {
            if !body.contains_key("destination_uuid") {
                return Err(message(
                    StatusCode::BAD_REQUEST,
                    "Server has multiple destinations and you do not set destination_uuid.",
                ));
            }
            let wanted = str_field(body, "destination_uuid");
            several
                .iter()
                .find(|d| d["uuid"] == wanted.as_str())
                .map(uuid_of)
                .ok_or_else(|| {
                    invalid(
                        "destination_uuid",
                        json!("Provided destination_uuid does not belong to the specified server."),
                    )
                })
        }
    }
}

/// The reference the deploy job pulls (`ApplicationDeploymentJob::generate_image_names`).
pub(super) fn image_reference(name: &str, tag: &str) -> String {
    let tag = if tag.is_empty() { "latest" } else { tag };
    match tag.strip_prefix("sha256-") {
        Some(hex) => format!("{}@sha256:{hex}", name.trim_end_matches("@sha256")),
        None => format!("{name}:{tag}"),
    }
}

/// 409 if another resource already serves one of `domains`.
pub(super) fn domain_conflicts(
    sim: &Coolify,
    s: &Store,
    domains: &[String],
    except: &str,
) -> Option<Response> {
    let conflicts: Vec<Value> = s
        .resources
        .values()
        .filter(|r| r.uuid != except && r.deleting.is_none())
        .flat_map(|r| {
            domains.iter().filter(|d| r.domains.contains(d)).map(move |d| {
                json!({
                    "domain": d,
                    "resource_name": r.name,
                    "resource_uuid": r.uuid,
                    "resource_type": if r.kind == Kind::Application { "application" } else { "service" },
                    "message": format!("Domain {d} is already in use by {}", r.name),
                })
            })
        })
        .collect();
    let _ = sim;
    (!conflicts.is_empty()).then(|| {
        (StatusCode::CONFLICT, axum::Json(json!({
            "message": "Domain conflicts detected. Use force_domain_override=true to proceed.",
            "conflicts": conflicts,
            "warning": "Using the same domain for multiple resources can cause routing conflicts and unpredictable behavior.",
        })))
            .into_response()
    })
}

pub(super) async fn create_application(
    State(sim): State<Coolify>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Err(r) = sim
        .enter("create_application", &method, &uri, &headers)
        .await
    {
        return r;
    }
    let body = match json_body(&headers, &body) {
        Ok(b) => b,
        Err(r) => return r,
    };
    // ApplicationsController::create_application: the allow-list and the basic rules
    // answer together, in one bag.
    let mut errors = Errors::default();
    rules::not_allowed(&body, rules::APPLICATION_CREATE_FIELDS, &mut errors);
    rules::optional_string(&body, "name", Some(255), false, &mut errors);
    rules::optional_string(&body, "description", None, true, &mut errors);
    rules::required_string(&body, "project_uuid", &mut errors);
    rules::required_string(&body, "server_uuid", &mut errors);
    rules::optional_string(&body, "environment_name", None, true, &mut errors);
    rules::optional_string(&body, "environment_uuid", None, true, &mut errors);
    rules::optional_string(&body, "destination_uuid", None, false, &mut errors);
    rules::boolean(&body, "autogenerate_domain", &mut errors);
    if let Some(r) = errors.response() {
        return r;
    }
    sim.with(|s| {
        let (environment_id, server) = match placement(s, &body) {
            Ok(p) => p,
            Err(r) => return r,
        };
        let destination = match choose_destination(s, &server, &body) {
            Ok(d) => d,
            Err(r) => return r,
        };
        // The dockerimage variant's own validator runs after the lookups.
        let mut errors = Errors::default();
        let image = str_field(&body, "docker_registry_image_name");
        match body.get("docker_registry_image_name") {
            None | Some(Value::Null) => {
                errors.add("docker_registry_image_name", "This field is required.")
            }
            Some(_) => {
                if let Some(problem) = rules::image_format_problem(&image) {
                    errors.add("docker_registry_image_name", problem);
                }
            }
        }
        let tag = body
            .get("docker_registry_image_tag")
            .and_then(Value::as_str);
        if let Some(problem) = tag.and_then(rules::image_tag_problem) {
            errors.add("docker_registry_image_tag", problem);
        }
        let ports = str_field(&body, "ports_exposes");
        if let Some(problem) = body
            .get("ports_exposes")
            .and_then(Value::as_str)
            .and_then(rules::ports_problem)
        {
            errors.add("ports_exposes", problem);
        }
        let domains_text = str_field(&body, "domains");
        for problem in rules::domain_problems(&domains_text) {
            errors.add("domains", problem);
        }
        if let Some(r) = errors.response() {
            return r;
        }
        let domains: Vec<String> = rules::split_domains(&domains_text)
            .iter()
            .map(|d| rules::normalize_domain(d))
            .collect();
        let force = body
            .get("force_domain_override")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        if !force && let Some(conflict) = domain_conflicts(&sim, s, &domains, "") {
            return conflict;
        }
        s.next += 1;
        let id = s.next;
        let (image, tag) = rules::parse_image(&image, tag);
        let resource = Resource {
            kind: Kind::Application,
            id,
            uuid: uuid(id),
            name: Some(str_field(&body, "name"))
                .filter(|n| !n.is_empty())
                .unwrap_or_else(|| format!("docker-image-{}", uuid(id + 11))),
            description: str_field(&body, "description"),
            environment_id,
            destination,
            domains: domains.clone(),
            image,
            tag,
            ports_exposes: ports,
            compose: String::new(),
            url_service: String::new(),
            started: None,
            deleting: None,
        };
        let created = json!({
            "uuid": resource.uuid,
            "domains": if domains.is_empty() { Value::Null } else { json!(domains.join(",")) },
        });
        s.resources.insert(resource.uuid.clone(), resource);
        (StatusCode::CREATED, axum::Json(created)).into_response()
    })
}

/// `GET /applications`: every application of the team, unpaged
/// (`ApplicationsController::applications`).
pub(super) async fn list_applications(
    State(sim): State<Coolify>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    if let Err(r) = sim
        .enter("list_applications", &method, &uri, &headers)
        .await
    {
        return r;
    }
    sim.with(|s| {
        let all: Vec<Value> = s
            .resources
            .keys()
            .filter_map(|uuid| sim.live(s, uuid, Kind::Application))
            .map(|r| application_json(&r, &sim.status_of(s, &r)))
            .collect();
        axum::Json(all).into_response()
    })
}

pub(super) async fn get_application(
    State(sim): State<Coolify>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    Path(uuid): Path<String>,
) -> Response {
    if let Err(r) = sim.enter("get_application", &method, &uri, &headers).await {
        return r;
    }
    sim.with(|s| match sim.live(s, &uuid, Kind::Application) {
        Some(r) => axum::Json(application_json(&r, &sim.status_of(s, &r))).into_response(),
        None => message(StatusCode::NOT_FOUND, "Application not found"),
    })
}

pub(super) async fn update_application(
    State(sim): State<Coolify>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    Path(uuid): Path<String>,
    body: Bytes,
) -> Response {
    if let Err(r) = sim
        .enter("update_application", &method, &uri, &headers)
        .await
    {
        return r;
    }
    let body = match json_body(&headers, &body) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let timing = sim.timing();
    sim.with(|s| {
        let Some(mut r) = sim.live(s, &uuid, Kind::Application) else {
            return message(StatusCode::NOT_FOUND, "Application not found");
        };
        // ApplicationsController::update_by_uuid, in its order: the ports check, then
        // the domains (errors as a plain list, then conflicts), then the allow-list merged
        // with sharedDataApplications() in one bag.
        if let Some(ports) = body.get("ports_exposes").and_then(Value::as_str)
            && !ports
                .split(',')
                .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
        {
            return invalid(
                "ports_exposes",
                json!("The ports_exposes should be a comma separated list of numbers."),
            );
        }
        let mut new_domains = None;
        // Domains are checked and stored only where the server's proxy should run
        // (`Server::isProxyShouldRun`: a proxy type other than NONE, not a build server);
        // elsewhere they are dropped without a word.
        let server = server_of(s, &r.destination);
        let proxied = s
            .servers
            .iter()
            .find(|v| v["uuid"] == server.as_str())
            .is_none_or(|v| {
                !v["proxy"]["type"]
                    .as_str()
                    .is_some_and(|t| t.eq_ignore_ascii_case("none"))
                    && v["settings"]["is_build_server"] != true
            });
        if let Some(text) = body
            .get("domains")
            .and_then(Value::as_str)
            .filter(|_| proxied)
        {
            let problems = rules::domain_problems(text);
            if !problems.is_empty() {
                return (
                    StatusCode::UNPROCESSABLE_ENTITY,
                    axum::Json(json!({ "message": "Validation failed.", "errors": problems })),
                )
                    .into_response();
            }
            let domains: Vec<String> = rules::split_domains(text)
                .iter()
                .map(|d| rules::normalize_domain(d))
                .collect();
            let force = body
                .get("force_domain_override")
                .and_then(Value::as_bool)
                .unwrap_or(false);
            if !force && let Some(conflict) = domain_conflicts(&sim, s, &domains, &uuid) {
                return conflict;
            }
            new_domains = Some(domains);
        }
        let mut errors = Errors::default();
        rules::not_allowed(&body, &rules::application_update_fields(), &mut errors);
        rules::optional_string(&body, "name", Some(255), false, &mut errors);
        rules::optional_string(&body, "description", None, true, &mut errors);
        let name = body
            .get("docker_registry_image_name")
            .and_then(Value::as_str);
        if let Some(problem) = name.and_then(rules::image_name_problem) {
            errors.add("docker_registry_image_name", problem);
        }
        let tag = body
            .get("docker_registry_image_tag")
            .and_then(Value::as_str);
        if let Some(problem) = tag.and_then(rules::image_tag_problem) {
            errors.add("docker_registry_image_tag", problem);
        }
        if let Some(problem) = body
            .get("ports_exposes")
            .and_then(Value::as_str)
            .and_then(rules::ports_problem)
        {
            errors.add("ports_exposes", problem);
        }
        if let Some(response) = errors.response() {
            return response;
        }
        // Stored as sent: PATCH does not parse image references.
        if let Some(name) = name {
            r.image = name.to_owned();
        }
        if let Some(tag) = tag {
            r.tag = tag.to_owned();
        }
        if let Some(domains) = new_domains {
            r.domains = domains;
        }
        if let Some(ports) = body.get("ports_exposes").and_then(Value::as_str) {
            r.ports_exposes = ports.to_owned();
        }
        if let Some(name) = body.get("name").and_then(Value::as_str) {
            r.name = name.to_owned();
        }
        if let Some(description) = body.get("description").and_then(Value::as_str) {
            r.description = description.to_owned();
        }
        let instant = body.get("instant_deploy").and_then(Value::as_bool) == Some(true);
        s.resources.insert(uuid.clone(), r.clone());
        if instant && let Outcome::Skipped = queue_deployment(s, &r, &timing, false) {
            return axum::Json(json!({ "message": "Deployment already queued for this commit." }))
                .into_response();
        }
        axum::Json(json!({ "uuid": uuid })).into_response()
    })
}

pub(super) async fn delete_resource(
    State(sim): State<Coolify>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    Path(uuid): Path<String>,
    Query(query): Query<BTreeMap<String, String>>,
) -> Response {
    let kind = if uri.path().contains("/services/") {
        Kind::Service
    } else {
        Kind::Application
    };
    let operation = if kind == Kind::Service {
        "delete_service"
    } else {
        "delete_application"
    };
    if let Err(r) = sim.enter(operation, &method, &uri, &headers).await {
        return r;
    }
    sim.with(|s| {
        if sim
            .live(s, &uuid, kind)
            .is_none_or(|r| r.deleting.is_some())
        {
            return message(
                StatusCode::NOT_FOUND,
                if kind == Kind::Service {
                    "Service not found."
                } else {
                    "Application not found"
                },
            );
        }
        let job_fails = std::mem::take(&mut s.fail_next_deletion);
        if let Some(r) = s.resources.get_mut(&uuid).filter(|_| !job_fails) {
            r.deleting = Some(Instant::now());
        }
        s.deletions.push(Deletion {
            uuid: uuid.clone(),
            // Every delete flag defaults to true.
            delete_volumes: query.get("delete_volumes").is_none_or(|v| v != "false"),
        });
        let what = if kind == Kind::Service {
            "Service"
        } else {
            "Application"
        };
        axum::Json(json!({ "message": format!("{what} deletion request queued.") })).into_response()
    })
}

pub(super) fn kind_of(uri: &Uri) -> Kind {
    if uri.path().contains("/services/") {
        Kind::Service
    } else {
        Kind::Application
    }
}
