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
    axum::Json(Value::Array(sim.with(|s| s.servers.clone()))).into_response()
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
