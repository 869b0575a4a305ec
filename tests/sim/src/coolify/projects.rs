//! Projects and their environments.

use super::*;

pub(super) fn project_json(p: &Project) -> Value {
    json!({ "id": p.id, "uuid": p.uuid, "name": p.name, "description": p.description })
}

pub(super) fn environment_json(e: &Environment, project: &Project) -> Value {
    json!({ "id": e.id, "uuid": e.uuid, "name": e.name, "project_id": project.id, "created_at": TIMESTAMP, "updated_at": TIMESTAMP, "description": e.description })
}

pub(super) async fn list_projects(
    State(sim): State<Coolify>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    if let Err(r) = sim.enter("list_projects", &method, &uri, &headers).await {
        return r;
    }
    axum::Json(Value::Array(
        sim.with(|s| s.projects.iter().map(project_json).collect()),
    ))
    .into_response()
}

pub(super) async fn create_project(
    State(sim): State<Coolify>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Err(r) = sim.enter("create_project", &method, &uri, &headers).await {
        return r;
    }
    let body = match json_body(&headers, &body) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let unknown = unknown_keys(&body, &["name", "description"]);
    if !unknown.is_empty() {
        return not_allowed(&unknown);
    }
    // ProjectController::create_project: `nameRules()` and `descriptionRules()`, on the
    // name as the global `TrimStrings` middleware left it.
    let name = str_field(&body, "name").trim().to_owned();
    let mut errors = Errors::default();
    if let Some(problem) = rules::name_problem(&name) {
        errors.add("name", problem);
    }
    if let Some(problem) = rules::description_problem(&str_field(&body, "description")) {
        errors.add("description", problem);
    }
    if let Some(r) = errors.response() {
        return r;
    }
    sim.with(|s| {
        s.next += 1;
        let id = s.next;
        s.next += 1;
        // Coolify creates a `production` environment with every project.
        let production = Environment {
            id: s.next,
            uuid: uuid(s.next),
            name: "production".to_owned(),
            description: String::new(),
        };
        let project = Project {
            id,
            uuid: uuid(id),
            name,
            description: str_field(&body, "description"),
            environments: vec![production],
        };
        let created = json!({ "uuid": project.uuid });
        s.projects.push(project);
        (StatusCode::CREATED, axum::Json(created)).into_response()
    })
}

pub(super) fn find_project<'a>(s: &'a mut Store, uuid: &str) -> Option<&'a mut Project> {
    s.projects.iter_mut().find(|p| p.uuid == uuid)
}

pub(super) async fn get_project(
    State(sim): State<Coolify>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    Path(project): Path<String>,
) -> Response {
    if let Err(r) = sim.enter("get_project", &method, &uri, &headers).await {
        return r;
    }
    sim.with(|s| match find_project(s, &project) {
        Some(p) => {
            let mut body = project_json(p);
            body["environments"] = p
                .environments
                .iter()
                .map(|e| environment_json(e, p))
                .collect();
            axum::Json(body).into_response()
        }
        None => message(StatusCode::NOT_FOUND, "Project not found."),
    })
}

/// `DELETE /projects/{uuid}` (coollabsio/coolify v4.3.10
/// app/Http/Controllers/Api/ProjectController.php `delete_project`): 404 "Project not
/// found.", then 400 "Project has resources, so it cannot be deleted." unless
/// `Project::isEmpty()` (app/Models/Project.php: no application, database or service in
/// any of its environments; environments alone do not count), then the project goes with
/// its environments (`Project::booted`, `deleting`).
pub(super) async fn delete_project(
    State(sim): State<Coolify>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    Path(project): Path<String>,
) -> Response {
    if let Err(r) = sim.enter("delete_project", &method, &uri, &headers).await {
        return r;
    }
    // A resource whose queued deletion ran is gone (see `Coolify::resources`).
    let now = std::time::Instant::now();
    let delay = sim.timing().delete_delay;
    sim.with(|s| {
        let Some(index) = s.projects.iter().position(|p| p.uuid == project) else {
            return message(StatusCode::NOT_FOUND, "Project not found.");
        };
        let environments: Vec<u64> = s.projects[index]
            .environments
            .iter()
            .map(|e| e.id)
            .collect();
        if s.resources
            .values()
            .filter(|r| r.deleting.is_none_or(|d| now < d + delay))
            .any(|r| environments.contains(&r.environment_id))
        {
            return message(
                StatusCode::BAD_REQUEST,
                "Project has resources, so it cannot be deleted.",
            );
        }
        s.projects.remove(index);
        message(StatusCode::OK, "Project deleted.")
    })
}

pub(super) async fn list_environments(
    State(sim): State<Coolify>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    Path(project): Path<String>,
) -> Response {
    if let Err(r) = sim
        .enter("list_environments", &method, &uri, &headers)
        .await
    {
        return r;
    }
    sim.with(|s| match find_project(s, &project) {
        Some(p) => axum::Json(
            p.environments
                .iter()
                .map(|e| json!({ "id": e.id, "name": e.name, "uuid": e.uuid }))
                .collect::<Value>(),
        )
        .into_response(),
        None => message(StatusCode::NOT_FOUND, "Project not found."),
    })
}

pub(super) async fn create_environment(
    State(sim): State<Coolify>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    Path(project): Path<String>,
    body: Bytes,
) -> Response {
    if let Err(r) = sim
        .enter("create_environment", &method, &uri, &headers)
        .await
    {
        return r;
    }
    let body = match json_body(&headers, &body) {
        Ok(b) => b,
        Err(r) => return r,
    };
    // ProjectController::create_environment: `$allowedFields = ['name']` (a description
    // is set only by `update_environment`).
    let unknown = unknown_keys(&body, &["name"]);
    if !unknown.is_empty() {
        return not_allowed(&unknown);
    }
    // `TrimStrings` (global middleware), then `Environment::customizeName` when stored:
    // lower case, `/` replaced by `-` (app/Models/Environment.php).
    let name = str_field(&body, "name").trim().to_owned();
    // ProjectController::create_environment: the same `nameRules()` as a project.
    if let Some(problem) = rules::name_problem(&name) {
        let mut errors = Errors::default();
        errors.add("name", problem);
        if let Some(r) = errors.response() {
            return r;
        }
    }
    sim.with(|s| {
        s.next += 1;
        let id = s.next;
        let Some(p) = find_project(s, &project) else {
            return message(StatusCode::NOT_FOUND, "Project not found.");
        };
        // The duplicate check compares the name as sent; the unique index then meets
        // the stored form (a 500 in the real server).
        if p.environments.iter().any(|e| e.name == name) {
            return message(
                StatusCode::CONFLICT,
                "Environment with this name already exists.",
            );
        }
        let stored = name.to_lowercase().replace('/', "-");
        if p.environments.iter().any(|e| e.name == stored) {
            return message(StatusCode::INTERNAL_SERVER_ERROR, "Server Error");
        }
        let environment = Environment {
            id,
            uuid: uuid(id),
            name: stored,
            description: String::new(),
        };
        let created = json!({ "uuid": environment.uuid });
        p.environments.push(environment);
        (StatusCode::CREATED, axum::Json(created)).into_response()
    })
}

/// `PATCH /projects/{uuid}/environments/{environment}` (v4.3.10
/// `ProjectController::update_environment`): `name` (optional, `nameRules`) and
/// `description` (`descriptionRules()`), unknown fields refused; 404 for the project or
/// the environment (by name, then uuid); 200 with `{uuid, name, description}`.
pub(super) async fn update_environment(
    State(sim): State<Coolify>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    Path((project, environment)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    if let Err(r) = sim
        .enter("update_environment", &method, &uri, &headers)
        .await
    {
        return r;
    }
    let body = match json_body(&headers, &body) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let unknown = unknown_keys(&body, &["name", "description"]);
    if !unknown.is_empty() {
        return not_allowed(&unknown);
    }
    let mut errors = Errors::default();
    let name = body.get("name").map(|_| str_field(&body, "name"));
    if let Some(problem) = name.as_deref().and_then(rules::name_problem) {
        errors.add("name", problem);
    }
    let description = body
        .get("description")
        .map(|_| str_field(&body, "description"));
    if let Some(problem) = description.as_deref().and_then(rules::description_problem) {
        errors.add("description", problem);
    }
    if let Some(r) = errors.response() {
        return r;
    }
    sim.with(|s| {
        let Some(p) = find_project(s, &project) else {
            return message(StatusCode::NOT_FOUND, "Project not found.");
        };
        let Some(e) = p
            .environments
            .iter_mut()
            .find(|e| e.name == environment || e.uuid == environment)
        else {
            return message(StatusCode::NOT_FOUND, "Environment not found.");
        };
        if let Some(name) = name {
            e.name = name;
        }
        if let Some(description) = description {
            e.description = description;
        }
        axum::Json(json!({ "uuid": e.uuid, "name": e.name, "description": e.description }))
            .into_response()
    })
}

/// `DELETE /projects/{uuid}/environments/{environment}` (v4.3.10
/// `ProjectController::delete_environment`): 404 for the project or the environment,
/// then 400 "Environment has resources, so it cannot be deleted." unless
/// `Environment::isEmpty()` (app/Models/Environment.php: no application, database or
/// service in it), else 200 "Environment deleted.".
pub(super) async fn delete_environment(
    State(sim): State<Coolify>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    Path((project, environment)): Path<(String, String)>,
) -> Response {
    if let Err(r) = sim
        .enter("delete_environment", &method, &uri, &headers)
        .await
    {
        return r;
    }
    let now = std::time::Instant::now();
    let delay = sim.timing().delete_delay;
    sim.with(|s| {
        let Some(index) = s.projects.iter().position(|p| p.uuid == project) else {
            return message(StatusCode::NOT_FOUND, "Project not found.");
        };
        let Some(position) = s.projects[index]
            .environments
            .iter()
            .position(|e| e.name == environment || e.uuid == environment)
        else {
            return message(StatusCode::NOT_FOUND, "Environment not found.");
        };
        let id = s.projects[index].environments[position].id;
        if s.resources
            .values()
            .filter(|r| r.deleting.is_none_or(|d| now < d + delay))
            .any(|r| r.environment_id == id)
        {
            return message(
                StatusCode::BAD_REQUEST,
                "Environment has resources, so it cannot be deleted.",
            );
        }
        s.projects[index].environments.remove(position);
        message(StatusCode::OK, "Environment deleted.")
    })
}

pub(super) async fn get_environment(
    State(sim): State<Coolify>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    Path((project, environment)): Path<(String, String)>,
) -> Response {
    if let Err(r) = sim.enter("get_environment", &method, &uri, &headers).await {
        return r;
    }
    sim.with(|s| {
        let Some(p) = s.projects.iter().find(|p| p.uuid == project).cloned() else {
            return message(StatusCode::NOT_FOUND, "Project not found.");
        };
        let Some(e) = p
            .environments
            .iter()
            .find(|e| e.name == environment || e.uuid == environment)
        else {
            return message(StatusCode::NOT_FOUND, "Environment not found.");
        };
        let uuids: Vec<(String, Kind)> = s
            .resources
            .values()
            .filter(|r| r.environment_id == e.id)
            .map(|r| (r.uuid.clone(), r.kind))
            .collect();
        let mut applications = Vec::new();
        let mut services = Vec::new();
        for (uuid, kind) in uuids {
            if let Some(r) = sim.live(s, &uuid, kind) {
                let status = sim.status_of(s, &r);
                match kind {
                    Kind::Application => applications.push(application_json(&r, &status)),
                    Kind::Service => services.push(service_json(&r, &status)),
                }
            }
        }
        let mut body = environment_json(e, &p);
        for key in ["postgresqls", "redis", "mongodbs", "mysqls", "mariadbs"] {
            body[key] = json!([]);
        }
        body["applications"] = Value::Array(applications);
        body["services"] = Value::Array(services);
        axum::Json(body).into_response()
    })
}
