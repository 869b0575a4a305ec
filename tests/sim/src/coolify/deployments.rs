//! Deployments: `POST /deploy` (GET is 405), the lifecycle queued → in_progress →
//! finished | failed with configurable timing, the dedupe quirk, listing.

use super::*;

pub(super) fn deployment_status(d: &Deployment, timing: &Timing, now: Instant) -> &'static str {
    match d.start {
        Some(start) if now >= start + timing.building => {
            if d.fails {
                "failed"
            } else {
                "finished"
            }
        }
        Some(start) if now >= start => "in_progress",
        _ => "queued",
    }
}

/// Starts every deployment when Coolify's queue would have: after `timing.queued` (the
/// queue worker picking it up), as soon as `next_queuable` holds: no other deployment of
/// the same application is in progress, and fewer than the server's `concurrent_builds`
/// are (bootstrap/helpers/applications.php, `queue_application_deployment`,
/// `next_queuable`); a finished build starts the queued ones oldest first
/// (`queue_next_deployment`). Computed from the rows alone, so every reader sees the same
/// schedule; a row added later only changes what has not started yet.
pub(super) fn schedule(s: &mut Store, timing: &Timing) {
    let limit = |server: &str| {
        s.servers
            .iter()
            .find(|v| v["uuid"] == server)
            .and_then(|v| v["settings"]["concurrent_builds"].as_u64())
            .unwrap_or(2) as usize
    };
    let limits: Vec<usize> = s.deployments.iter().map(|d| limit(&d.server)).collect();
    let deployments = &mut s.deployments;
    for d in deployments.iter_mut() {
        d.start = None;
    }
    let ready = |d: &Deployment| d.created + timing.queued;
    let Some(mut now) = deployments.iter().map(ready).min() else {
        return;
    };
    loop {
        for i in 0..deployments.len() {
            if deployments[i].start.is_some() || ready(&deployments[i]) > now {
                continue;
            }
            let running = |o: &Deployment| {
                o.start
                    .is_some_and(|start| start <= now && now < start + timing.building)
            };
            let (app, server) = (&deployments[i].application_uuid, &deployments[i].server);
            let app_busy = deployments
                .iter()
                .any(|o| running(o) && &o.application_uuid == app);
            let building = deployments
                .iter()
                .filter(|o| running(o) && &o.server == server)
                .count();
            if !app_busy && building < limits[i] {
                deployments[i].start = Some(now);
            }
        }
        let next = deployments
            .iter()
            .map(|d| match d.start {
                None => ready(d),
                Some(start) => start + timing.building,
            })
            .filter(|t| *t > now)
            .min();
        match next {
            Some(t) => now = t,
            None => break,
        }
    }
}

/// What `queue_application_deployment` did.
pub(super) enum Outcome {
    Queued(String),
    /// A deployment of the same application and commit is queued or running, and the
    /// call was not forced: no row is created.
    Skipped,
    /// The server already has `deployment_queue_limit` deployments queued: no row is
    /// created, and the whole `POST /deploy` is answered 429 with `Retry-After: 60`
    /// (`DeployController::by_uuids`).
    Full,
}

/// The uuid of the server a destination belongs to.
pub(super) fn server_of(s: &Store, destination: &str) -> String {
    s.destinations
        .iter()
        .find(|(_, list)| list.iter().any(|d| d["uuid"] == destination))
        .map(|(server, _)| server.clone())
        .unwrap_or_default()
}

/// `queue_application_deployment` (bootstrap/helpers/applications.php): de-duplicates on
/// application, commit (`HEAD` for docker images), pull request and tag unless forced.
pub(super) fn queue_deployment(
    s: &mut Store,
    r: &Resource,
    timing: &Timing,
    force: bool,
) -> Outcome {
    let now = Instant::now();
    let server = server_of(s, &r.destination);
    let queue_limit = s
        .servers
        .iter()
        .find(|v| v["uuid"] == server.as_str())
        .and_then(|v| v["settings"]["deployment_queue_limit"].as_u64())
        .unwrap_or(25) as usize;
    let queued = s
        .deployments
        .iter()
        .filter(|d| d.server == server && deployment_status(d, timing, now) == "queued")
        .count();
    if queued >= queue_limit {
        return Outcome::Full;
    }
    let running = s.deployments.iter().any(|d| {
        d.application_uuid == r.uuid
            && matches!(deployment_status(d, timing, now), "queued" | "in_progress")
    });
    if running && !force {
        return Outcome::Skipped;
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
        start: None,
        server,
        fails,
        force,
        image: image_reference(&r.image, &r.tag),
    });
    Outcome::Queued(id)
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
                    // StartService::run parses the compose first (`$service->parse()`):
                    // rows deleted since its last parse come back.
                    parse_envs(s, uuid, &r.compose);
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
                        Outcome::Queued(id) => deployments.push(json!({ "message": format!("Application {} deployment queued.", r.name), "resource_uuid": uuid, "deployment_uuid": id })),
                        Outcome::Skipped => deployments.push(json!({ "message": "Deployment already queued for this commit.", "resource_uuid": uuid, "deployment_uuid": fresh })),
                        Outcome::Full => {
                            let mut full = message(StatusCode::TOO_MANY_REQUESTS, "Deployment queue is full. Please wait for existing deployments to complete.");
                            full.headers_mut().insert("retry-after", axum::http::HeaderValue::from_static("60"));
                            return full;
                        }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn row(s: &mut Store, app: &str, server: &str, created: Instant) {
        s.next += 1;
        s.deployments.push(Deployment {
            id: s.next,
            uuid: format!("d{}", s.next),
            application_uuid: app.to_owned(),
            application_name: app.to_owned(),
            created,
            start: None,
            server: server.to_owned(),
            fails: false,
            force: true,
            image: String::new(),
        });
    }

    fn store(builds: u64) -> Store {
        let mut s = Store::default();
        for server in ["s1", "s2"] {
            s.servers
                .push(json!({ "uuid": server, "settings": { "concurrent_builds": builds } }));
        }
        s
    }

    const SECOND: Duration = Duration::from_secs(1);

    fn timing() -> Timing {
        Timing {
            queued: Duration::ZERO,
            building: 10 * SECOND,
            ..Timing::default()
        }
    }

    fn starts(s: &Store, t0: Instant) -> Vec<Option<u64>> {
        s.deployments
            .iter()
            .map(|d| d.start.map(|t| (t - t0).as_secs()))
            .collect()
    }

    #[test]
    fn a_server_builds_at_most_its_concurrent_builds_and_starts_the_oldest_next() {
        let t0 = Instant::now();
        let mut s = store(2);
        for (i, app) in ["a", "b", "c", "d"].iter().enumerate() {
            row(&mut s, app, "s1", t0 + i as u32 * SECOND / 10);
        }
        // Another server has slots of its own.
        row(&mut s, "e", "s2", t0 + SECOND);
        schedule(&mut s, &timing());
        assert_eq!(
            starts(&s, t0),
            [Some(0), Some(0), Some(10), Some(10), Some(1)]
        );
        let d = &s.deployments[2];
        assert_eq!(deployment_status(d, &timing(), t0 + 5 * SECOND), "queued");
        assert_eq!(
            deployment_status(d, &timing(), t0 + 11 * SECOND),
            "in_progress"
        );
        assert_eq!(
            deployment_status(d, &timing(), t0 + 21 * SECOND),
            "finished"
        );
    }

    #[test]
    fn a_forced_deployment_waits_for_its_application_s_running_one() {
        let t0 = Instant::now();
        let mut s = store(5);
        row(&mut s, "a", "s1", t0);
        row(&mut s, "a", "s1", t0 + SECOND);
        // Another application is not held back by a's queue.
        row(&mut s, "b", "s1", t0 + 2 * SECOND);
        schedule(&mut s, &timing());
        assert_eq!(starts(&s, t0), [Some(0), Some(10), Some(2)]);
    }

    #[test]
    fn no_build_slot_keeps_deployments_queued() {
        let t0 = Instant::now();
        let mut s = store(0);
        row(&mut s, "a", "s1", t0);
        schedule(&mut s, &timing());
        assert_eq!(starts(&s, t0), [None]);
    }
}
