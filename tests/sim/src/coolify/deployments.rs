//! Deployments: `POST /deploy` (GET is 405), the lifecycle queued → in_progress →
//! finished | failed with configurable timing, the dedupe quirk, listing.

use super::*;

pub(super) fn deployment_status(d: &Deployment, timing: &Timing, now: Instant) -> &'static str {
    let age = now.saturating_duration_since(d.created);
    if age < timing.queued {
        "queued"
    } else if age < timing.queued + timing.building {
        "in_progress"
    } else if d.fails {
        "failed"
    } else {
        "finished"
    }
}

/// What `queue_application_deployment` did.
pub(super) enum Queued {
    Queued(String),
    /// A deployment of the same application and commit is queued or running, and the
    /// call was not forced: no row is created.
    Skipped,
}

/// `queue_application_deployment` (bootstrap/helpers/applications.php): de-duplicates on
/// application, commit (`HEAD` for docker images), pull request and tag unless forced.
pub(super) fn queue_deployment(
    s: &mut Store,
    r: &Resource,
    timing: &Timing,
    force: bool,
) -> Queued {
    let now = Instant::now();
    let running = s.deployments.iter().any(|d| {
        d.application_uuid == r.uuid
            && matches!(deployment_status(d, timing, now), "queued" | "in_progress")
    });
    if running && !force {
        return Queued::Skipped;
    }
    let fails = match s.fail_next.iter().position(|n| *n == r.name) {
        Some(position) => {
            s.fail_next.remove(position);
            true
        }
        None => false,
    };
    s.next += 1;
    let id = uuid_for_env(s.next.wrapping_mul(31));
    s.deployments.push(Deployment {
        id: s.next,
        uuid: id.clone(),
        application_uuid: r.uuid.clone(),
        application_name: r.name.clone(),
        created: now,
        fails,
        force,
        image: image_reference(&r.image, &r.tag),
    });
    Queued::Queued(id)
}

pub(super) async fn deploy_get() -> Response {
    (
        StatusCode::METHOD_NOT_ALLOWED,
        [("allow", "POST")],
        axum::Json(json!({ "message": "This endpoint has changed to a POST request." })),
    )
        .into_response()
}

pub(super) async fn deploy(
    State(sim): State<Coolify>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    Query(query): Query<BTreeMap<String, String>>,
    body: Bytes,
) -> Response {
    if let Err(r) = sim.enter("deploy", &method, &uri, &headers).await {
        return r;
    }
    // Parameters come in the query string or a JSON body.
    let mut params: serde_json::Map<String, Value> = query
        .into_iter()
        .map(|(k, v)| (k, Value::String(v)))
        .collect();
    if !body.is_empty() {
        match json_body(&headers, &body) {
            Ok(b) => params.extend(b),
            Err(r) => return r,
        }
    }
    let text = |k: &str| {
        params
            .get(k)
            .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned))
            .unwrap_or_default()
    };
    let (uuids, tag) = (text("uuid"), text("tag"));
    if !uuids.is_empty() && !tag.is_empty() {
        return message(
            StatusCode::BAD_REQUEST,
            "You can only use uuid or tag, not both.",
        );
    }
    if uuids.is_empty() {
        return message(StatusCode::BAD_REQUEST, "You must provide uuid or tag.");
    }
    let force = matches!(text("force").as_str(), "true" | "1");
    let timing = sim.timing();
    // A service's deploy parses its compose and starts it over SSH before the answer
    // (`DeployController::deploy_resource` → `StartService::run`, synchronous for
    // services; applications are queued): that takes `Timing::service_deploy_answer`.
    let is_service = sim.with(|s| {
        uuids.split(',').any(|u| {
            s.resources
                .get(u.trim())
                .is_some_and(|r| r.kind == Kind::Service)
        })
    });
    if is_service && !timing.service_deploy_answer.is_zero() {
        tokio::time::sleep(timing.service_deploy_answer).await;
    }
    sim.with(|s| {
        let mut deployments = Vec::new();
        for uuid in uuids.split(',').map(str::trim) {
            let Some(r) = sim.live(s, uuid, Kind::Application).or_else(|| sim.live(s, uuid, Kind::Service)) else {
                continue;
            };
            match r.kind {
                Kind::Service => {
                    if let Some(service) = s.resources.get_mut(uuid) {
                        service.started = Some(Instant::now());
                    }
                    deployments.push(json!({ "message": format!("Service {} started. It could take a while, be patient.", r.name), "resource_uuid": uuid }));
                }
                Kind::Application => {
                    // DeployController::deploy_resource answers with the uuid it generated
                    // even when the queue skipped: a uuid that was never stored.
                    s.next += 1;
                    let fresh = uuid_for_env(s.next.wrapping_mul(31));
                    match queue_deployment(s, &r, &timing, force) {
                        Queued::Queued(id) => deployments.push(json!({ "message": format!("Application {} deployment queued.", r.name), "resource_uuid": uuid, "deployment_uuid": id })),
                        Queued::Skipped => deployments.push(json!({ "message": "Deployment already queued for this commit.", "resource_uuid": uuid, "deployment_uuid": fresh })),
                    }
                }
            }
        }
        if deployments.is_empty() {
            return message(StatusCode::NOT_FOUND, "No resources found.");
        }
        axum::Json(json!({ "deployments": deployments })).into_response()
    })
}

pub(super) fn deployment_json(d: &Deployment, timing: &Timing) -> Value {
    let status = deployment_status(d, timing, Instant::now());
    json!({
        "id": d.id,
        "application_id": d.application_uuid,
        "deployment_uuid": d.uuid,
        "pull_request_id": 0,
        "force_rebuild": d.force,
        "commit": "HEAD",
        "status": status,
        "is_webhook": false,
        "is_api": true,
        "created_at": TIMESTAMP,
        "updated_at": TIMESTAMP,
        "restart_only": false,
        "git_type": "",
        "server_id": 1,
        "application_name": d.application_name,
        "server_name": "localhost",
        "deployment_url": format!("/project/deployment/{}", d.uuid),
        "destination_id": "1",
    })
}

pub(super) async fn get_deployment(
    State(sim): State<Coolify>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    Path(uuid): Path<String>,
) -> Response {
    if let Err(r) = sim.enter("get_deployment", &method, &uri, &headers).await {
        return r;
    }
    let timing = sim.timing();
    sim.with(|s| match s.deployments.iter().find(|d| d.uuid == uuid) {
        Some(d) => axum::Json(deployment_json(d, &timing)).into_response(),
        None => message(StatusCode::NOT_FOUND, "Deployment not found."),
    })
}

pub(super) async fn list_app_deployments(
    State(sim): State<Coolify>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    Path(uuid): Path<String>,
    Query(query): Query<BTreeMap<String, String>>,
) -> Response {
    if let Err(r) = sim
        .enter("list_app_deployments", &method, &uri, &headers)
        .await
    {
        return r;
    }
    let skip = query
        .get("skip")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0usize);
    let take = query
        .get("take")
        .and_then(|v| v.parse().ok())
        .unwrap_or(10usize);
    let timing = sim.timing();
    sim.with(|s| {
        if sim.live(s, &uuid, Kind::Application).is_none() {
            return message(StatusCode::NOT_FOUND, "Application not found");
        }
        let all: Vec<&Deployment> = s
            .deployments
            .iter()
            .rev()
            .filter(|d| d.application_uuid == uuid)
            .collect();
        let page: Vec<Value> = all
            .iter()
            .skip(skip)
            .take(take)
            .map(|d| deployment_json(d, &timing))
            .collect();
        axum::Json(json!({ "count": all.len(), "deployments": page })).into_response()
    })
}
