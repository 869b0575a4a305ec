//! `GET /version`, `/health`, servers and their destinations.

use super::*;

/// A destination as `DestinationsController::transform` shows it.
pub(super) fn destination_json(id: u64, server_uuid: &str, server: &str, network: &str) -> Value {
    json!({
        "uuid": uuid(id),
        "name": format!("{server}-{network}"),
        "network": network,
        "type": "standalone",
        "server_uuid": server_uuid,
        "created_at": TIMESTAMP,
        "updated_at": TIMESTAMP,
    })
}

pub(super) async fn version(
    State(sim): State<Coolify>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    if let Err(r) = sim.enter("version", &method, &uri, &headers).await {
        return r;
    }
    (
        StatusCode::OK,
        [("content-type", "text/html; charset=UTF-8")],
        VERSION,
    )
        .into_response()
}

pub(super) async fn health() -> Response {
    (StatusCode::OK, "OK").into_response()
}

pub(super) async fn list_servers(
    State(sim): State<Coolify>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    if let Err(r) = sim.enter("list_servers", &method, &uri, &headers).await {
        return r;
    }
    // `ServersController::servers` selects id, name, uuid, ip, user, port, description and
    // the settings: not the proxy.
    let servers = sim.with(|s| {
        s.servers
            .iter()
            .map(|v| {
                let mut v = v.clone();
                if let Some(o) = v.as_object_mut() {
                    o.remove("proxy");
                }
                v
            })
            .collect()
    });
    axum::Json(Value::Array(servers)).into_response()
}

/// `ServersController::server_by_uuid`: the whole server, with its proxy.
pub(super) async fn get_server(
    State(sim): State<Coolify>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    Path(uuid): Path<String>,
) -> Response {
    if let Err(r) = sim.enter("get_server", &method, &uri, &headers).await {
        return r;
    }
    sim.with(
        |s| match s.servers.iter().find(|v| v["uuid"] == uuid.as_str()) {
            Some(server) => axum::Json(server.clone()).into_response(),
            None => message(StatusCode::NOT_FOUND, "Server not found."),
        },
    )
}

/// `DestinationsController::index_by_server`.
pub(super) async fn list_destinations(
    State(sim): State<Coolify>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    Path(server): Path<String>,
) -> Response {
    if let Err(r) = sim
        .enter("list_destinations", &method, &uri, &headers)
        .await
    {
        return r;
    }
    sim.with(|s| match s.destinations.get(&server) {
        Some(list) => axum::Json(Value::Array(list.clone())).into_response(),
        None => message(
            StatusCode::NOT_FOUND,
            "No query results for model [App\\Models\\Server].",
        ),
    })
}
