//! Projects and environments: found or created (one per name, the oldest), and
//! deleted when Fabrik made them and they are empty.

use fabrik_provider_sdk::error::permanent;
use fabrik_provider_sdk::{Method, ProviderError, Resource};
use serde_json::{Value, json};

use crate::api;
use crate::state::{STATE, client};

/// The project's uuid; created when `create` is set.
/// The uuid of the project `name` from the projects already read (the prefetch): never a
/// call of its own.
pub(crate) fn cached_project_uuid(name: &str) -> Option<String> {
    STATE
        .with(|s| oldest_named(s.projects.as_ref()?, name))
        .ok()
        .flatten()
}

pub(crate) fn project_uuid(name: &str, create: bool) -> Result<Option<String>, ProviderError> {
    let cached = STATE.with(|s| s.projects.clone())?;
    let projects = match cached {
        Some(projects) => projects,
        None => {
            let projects = api::json(&client()?, Method::Get, "/projects", None)?;
            STATE.with(|s| s.projects = Some(projects.clone()))?;
            projects
        }
    };
    if let Some(uuid) = oldest_named(&projects, name) {
        return Ok(Some(uuid));
    }
    if !create {
        return Ok(None);
    }
    // Coolify's project names are not unique: another app of the apply may have
    // created it since this instance read the list (the host runs the first create of
    // a role alone for that reason). Two applies in two processes can still race here;
    // every reader then uses the oldest of the name.
    let projects = api::json(&client()?, Method::Get, "/projects", None)?;
    STATE.with(|s| s.projects = Some(projects.clone()))?;
    if let Some(uuid) = oldest_named(&projects, name) {
        // Not there when this instance first read the list: another app of the apply
        // created it a moment ago, with its `production` environment.
        STATE.with(|s| s.new_projects.insert(uuid.clone()))?;
        return Ok(Some(uuid));
    }
    let created = api::json(
        &client()?,
        Method::Post,
        "/projects",
        Some(&json!({ "name": name, "description": CREATED_BY_FABRIK })),
    )?;
    let uuid = created["uuid"].as_str().map(str::to_owned);
    if let Some(uuid) = &uuid {
        STATE.with(|state| {
            state.new_projects.insert(uuid.clone());
            if let Some(Value::Array(all)) = state.projects.as_mut() {
                all.push(json!({ "name": name, "uuid": uuid }));
            }
        })?;
    }
    Ok(uuid)
}

/// The uuid of the oldest project named `name` (the lowest id; list order otherwise).
pub(crate) fn oldest_named(projects: &Value, name: &str) -> Option<String> {
    projects
        .as_array()?
        .iter()
        .filter(|p| p["name"].as_str() == Some(name))
        .min_by_key(|p| p["id"].as_u64().unwrap_or(u64::MAX))
        .and_then(|p| p["uuid"].as_str())
        .map(str::to_owned)
}

/// Makes sure `environment` exists in the project. Coolify creates `production` with
/// every project (coollabsio/coolify app/Models/Project.php, `booted`: `static::created`
/// creates the `production` Environment), so a project this instance just created is
/// not asked.
pub(crate) fn ensure_environment(project: &str, environment: &str) -> Result<(), ProviderError> {
    let known = STATE.with(|state| {
        (environment == "production" && state.new_projects.contains(project))
            || state
                .environments
                .contains(&(project.to_owned(), environment.to_owned()))
    })?;
    if known {
        return Ok(());
    }
    let list = api::json(
        &client()?,
        Method::Get,
        &format!("/projects/{project}/environments"),
        None,
    )?;
    if list
        .as_array()
        .is_some_and(|all| all.iter().any(|e| e["name"].as_str() == Some(environment)))
    {
        return Ok(());
    }
    match api::call(
        &client()?,
        Method::Post,
        &format!("/projects/{project}/environments"),
        Some(&json!({ "name": environment })),
    ) {
        // Marked as Fabrik's, so that `destroy` may remove it once empty: the create
        // takes only a name (`ProjectController::create_environment`), the description
        // is set by `update_environment`.
        Ok(_) => api::call(
            &client()?,
            Method::Patch,
            &format!("/projects/{project}/environments/{environment}"),
            Some(&json!({ "description": CREATED_BY_FABRIK })),
        )
        .map(drop)
        .map_err(|f| f.error),
        Err(f) if f.status == 409 => Ok(()),
        Err(f) => Err(f.error),
    }
}

/// The Coolify page of the project `project` (a uuid) in the web UI: the API's base URL
/// without its `/api/v1` (routes/web.php, `project/{project_uuid}`). The resource's own
/// page also needs its environment's uuid, which costs a call: the project page lists
/// it one click away.
pub(crate) fn project_page(project: &str) -> Option<String> {
    let api = client().ok()?;
    let base = api.base().trim_end_matches('/');
    let origin = base
        .strip_suffix("/api/v1")
        .or_else(|| base.strip_suffix("/api"))
        .unwrap_or(base);
    Some(format!("{origin}/project/{project}"))
}

/// `resource` with the page of its project among its outputs, when it is known without
/// a call.
pub(crate) fn with_page(mut resource: Resource, project: Option<&str>) -> Resource {
    if let Some(page) = project.and_then(project_page)
        && let Ok(mut outputs) = serde_json::from_str::<Value>(&resource.outputs)
        && let Some(map) = outputs.as_object_mut()
    {
        map.insert("page".to_owned(), json!(page));
        resource.outputs = outputs.to_string();
    }
    resource
}

/// What a project Fabrik created says in its description (`nameRules`' sibling
/// `descriptionRules()` admits no `:`, so a project cannot carry an owner tag).
pub(crate) const CREATED_BY_FABRIK: &str = "Created by fabrik";

/// The project `name` as `lookup("project", …)` returns it (for `destroy`): its uuid and
/// whether Fabrik created it (`created_by_fabrik` in outputs); never owned by an app.
pub(crate) fn project_resource(name: &str) -> Result<Option<Resource>, ProviderError> {
    let Some(uuid) = project_uuid(name, false)? else {
        return Ok(None);
    };
    let project = match api::call(&client()?, Method::Get, &format!("/projects/{uuid}"), None) {
        Ok(reply) => reply.json()?,
        Err(f) if f.status == 404 => return Ok(None),
        Err(f) => return Err(f.error),
    };
    let description = project["description"].as_str().unwrap_or_default();
    Ok(Some(Resource {
        kind: "project".to_owned(),
        id: uuid.clone(),
        name: name.to_owned(),
        owner: None,
        live: json!({ "description": description }).to_string(),
        outputs: json!({ "uuid": uuid, "created_by_fabrik": description == CREATED_BY_FABRIK })
            .to_string(),
    }))
}

/// The environment `project/environment` as `lookup("environment", …)` returns it (for
/// `destroy`): id `<project uuid>/<environment name>`, and whether Fabrik created it.
pub(crate) fn environment_resource(name: &str) -> Result<Option<Resource>, ProviderError> {
    let Some((project, environment)) = name.split_once('/') else {
        return Err(permanent(format!(
            "an environment is named `project/environment`, not `{name}`"
        )));
    };
    let Some(uuid) = project_uuid(project, false)? else {
        return Ok(None);
    };
    let path = format!("/projects/{uuid}/{environment}");
    let found = match api::call(&client()?, Method::Get, &path, None) {
        Ok(reply) => reply.json()?,
        Err(f) if f.status == 404 => return Ok(None),
        Err(f) => return Err(f.error),
    };
    let description = found["description"].as_str().unwrap_or_default();
    Ok(Some(Resource {
        kind: "environment".to_owned(),
        id: format!("{uuid}/{environment}"),
        name: name.to_owned(),
        owner: None,
        live: json!({ "description": description }).to_string(),
        outputs: json!({ "created_by_fabrik": description == CREATED_BY_FABRIK }).to_string(),
    }))
}

/// Deletes an environment Fabrik created, if Coolify finds it empty (400 otherwise,
/// `Environment::isEmpty()`, `ProjectController::delete_environment`).
pub(crate) fn delete_environment(id: &str) -> Result<(), ProviderError> {
    let Some((uuid, environment)) = id.split_once('/') else {
        return Err(permanent(format!("`{id}` is not an environment's id")));
    };
    let path = format!("/projects/{uuid}/{environment}");
    let found = match api::call(&client()?, Method::Get, &path, None) {
        Ok(reply) => reply.json()?,
        Err(f) if f.status == 404 => return Err(ProviderError::NotFound(path)),
        Err(f) => return Err(f.error),
    };
    if found["description"].as_str() != Some(CREATED_BY_FABRIK) {
        return Err(permanent(format!(
            "refusing to delete environment `{environment}`: Fabrik did not create it"
        )));
    }
    let path = format!("/projects/{uuid}/environments/{environment}");
    match api::call(&client()?, Method::Delete, &path, None) {
        Ok(_) => Ok(()),
        Err(f) if f.status == 404 => Err(ProviderError::NotFound(path)),
        Err(f) if f.status == 400 => Err(permanent("it holds other resources".to_owned())),
        Err(f) => Err(f.error),
    }
}

/// Deletes a project Fabrik created, if Coolify finds it empty: Coolify itself refuses a
/// project with any application, database or service in it (400, `Project::isEmpty()`,
/// app/Http/Controllers/Api/ProjectController.php `delete_project`), which this passes on
/// as a permanent error; a project someone else created is never deleted.
pub(crate) fn delete_project(uuid: &str) -> Result<(), ProviderError> {
    let path = format!("/projects/{uuid}");
    let project = match api::call(&client()?, Method::Get, &path, None) {
        Ok(reply) => reply.json()?,
        Err(f) if f.status == 404 => return Err(ProviderError::NotFound(path)),
        Err(f) => return Err(f.error),
    };
    let description = project["description"].as_str().unwrap_or_default();
    if description != CREATED_BY_FABRIK {
        return Err(permanent(format!(
            "refusing to delete project `{}`: Fabrik did not create it (its description is {description:?})",
            project["name"].as_str().unwrap_or("?")
        )));
    }
    // Coolify deletes a project's environments with it, and counts only applications,
    // databases and services as contents (`Project::isEmpty`): an environment someone
    // added (it may hold shared variables) keeps the project.
    let others: Vec<&str> = project["environments"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e["name"].as_str())
        .filter(|name| *name != "production")
        .collect();
    if !others.is_empty() {
        return Err(permanent(format!(
            "it holds other environments ({})",
            others.join(", ")
        )));
    }
    match api::call(&client()?, Method::Delete, &path, None) {
        Ok(_) => Ok(()),
        Err(f) if f.status == 404 => Err(ProviderError::NotFound(path)),
        Err(f) if f.status == 400 => Err(permanent("it holds other resources".to_owned())),
        Err(f) => Err(f.error),
    }
}
