//! Environment variables of applications and services: list, bulk upsert by key, delete.

use super::*;

pub(super) const ENV_ITEM_FLAGS: &[&str] = &[
    "is_preview",
    "is_literal",
    "is_multiline",
    "is_shown_once",
    "is_runtime",
    "is_buildtime",
];

/// A new env var row with the defaults of a create (`is_runtime`/`is_buildtime` true).
pub(super) fn new_env(id: u64, key: &str, value: &str, preview: bool) -> Value {
    json!({
        "id": id, "uuid": uuid_for_env(id), "key": key, "value": value, "real_value": value,
        "is_preview": preview, "is_literal": false, "is_multiline": false, "is_shown_once": false,
        "is_runtime": true, "is_buildtime": true, "comment": null, "is_shared": false,
        "version": VERSION, "created_at": TIMESTAMP, "updated_at": TIMESTAMP,
    })
}

pub(super) async fn list_envs(
    State(sim): State<Coolify>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    Path(uuid): Path<String>,
) -> Response {
    if let Err(r) = sim.enter("list_envs", &method, &uri, &headers).await {
        return r;
    }
    let kind = kind_of(&uri);
    sim.with(|s| match sim.live(s, &uuid, kind) {
        // ApplicationsController::envs: the non-preview rows, then the preview rows.
        Some(_) => {
            let list = s.envs.get(&uuid).cloned().unwrap_or_default();
            let (preview, plain): (Vec<Value>, Vec<Value>) =
                list.into_iter().partition(|e| e["is_preview"] == true);
            axum::Json(Value::Array(plain.into_iter().chain(preview).collect())).into_response()
        }
        None => message(
            StatusCode::NOT_FOUND,
            if kind == Kind::Service {
                "Service not found."
            } else {
                "Application not found"
            },
        ),
    })
}

pub(super) async fn bulk_envs(
    State(sim): State<Coolify>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    Path(uuid): Path<String>,
    body: Bytes,
) -> Response {
    if let Err(r) = sim.enter("bulk_envs", &method, &uri, &headers).await {
        return r;
    }
    let body = match json_body(&headers, &body) {
        Ok(b) => b,
        Err(r) => return r,
    };
    // ApplicationsController::create_bulk_envs (and the services' twin): `data` must be a
    // non-empty list; other top-level keys and unknown item keys are ignored.
    let Some(items) = body
        .get("data")
        .and_then(Value::as_array)
        .filter(|d| !d.is_empty())
        .cloned()
    else {
        return message(StatusCode::BAD_REQUEST, "Bulk data is required.");
    };
    let kind = kind_of(&uri);
    sim.with(|s| {
        if sim.live(s, &uuid, kind).is_none() {
            return message(
                StatusCode::NOT_FOUND,
                if kind == Kind::Service {
                    "Service not found."
                } else {
                    "Application not found"
                },
            );
        }
        let mut next = s.next;
        let list = s.envs.entry(uuid.clone()).or_default();
        let mut upserted = Vec::new();
        // Items are validated and saved one by one, without a transaction: the first bad
        // item answers 422 with its errors under the item's own field names, and the
        // items before it stay saved.
        for item in &items {
            let key = item["key"].as_str().unwrap_or_default().trim().to_owned();
            let mut errors = Errors::default();
            if let Some(problem) = rules::env_key_problem(&key) {
                errors.add("key", problem);
            }
            if !matches!(
                item.get("value"),
                None | Some(Value::Null | Value::String(_))
            ) {
                errors.add("value", "The value field must be a string.");
            }
            for flag in ENV_ITEM_FLAGS {
                if !matches!(item.get(*flag), None | Some(Value::Bool(_))) {
                    errors.add(
                        flag,
                        format!(
                            "The {} field must be true or false.",
                            flag.replace('_', " ")
                        ),
                    );
                }
            }
            if let Some(response) = errors.response() {
                s.next = next;
                return response;
            }
            let preview = item["is_preview"].as_bool().unwrap_or(false);
            // What is stored (coollabsio/coolify v4.3.10): the global `TrimStrings` and
            // `ConvertEmptyStringsToNull` middleware (app/Http/Kernel.php) trim every
            // string of the request and make "" null; `EnvironmentVariable::value()`
            // trims again when it stores.
            let value = match item["value"].as_str().map(str::trim) {
                Some("") | None => Value::Null,
                Some(trimmed) => json!(trimmed),
            };
            let position = list.iter().position(|e| {
                e["key"] == key.as_str() && e["is_preview"].as_bool().unwrap_or(false) == preview
            });
            let env = match position {
                Some(position) => {
                    // Found: the value is always overwritten (null if left out), these
                    // three flags reset to what was sent; the others change only when sent.
                    let env = &mut list[position];
                    env["value"] = value.clone();
                    env["real_value"] = value.clone();
                    for flag in ["is_literal", "is_multiline", "is_shown_once"] {
                        env[flag] = json!(item[flag].as_bool().unwrap_or(false));
                    }
                    for flag in ["is_runtime", "is_buildtime"] {
                        if let Some(v) = item[flag].as_bool() {
                            env[flag] = json!(v);
                        }
                    }
                    if let Some(comment) = item.get("comment") {
                        env["comment"] = comment.clone();
                    }
                    env.clone()
                }
                None => {
                    next += 1;
                    let mut env = new_env(next, &key, value.as_str().unwrap_or_default(), preview);
                    env["value"] = value.clone();
                    env["real_value"] = value.clone();
                    for flag in ENV_ITEM_FLAGS {
                        if let Some(v) = item[*flag].as_bool() {
                            env[*flag] = json!(v);
                        }
                    }
                    list.push(env.clone());
                    // EnvironmentVariable::booted, `created`: an application's new
                    // non-preview variable gets a preview copy (updates and deletes are
                    // not mirrored).
                    if kind == Kind::Application
                        && !preview
                        && !list
                            .iter()
                            .any(|e| e["key"] == key.as_str() && e["is_preview"] == true)
                    {
                        next += 1;
                        let mut copy = env.clone();
                        copy["id"] = json!(next);
                        copy["uuid"] = json!(uuid_for_env(next));
                        copy["is_preview"] = json!(true);
                        copy["is_shown_once"] = json!(false);
                        list.push(copy);
                    }
                    env
                }
            };
            upserted.push(env);
        }
        s.next = next;
        (StatusCode::CREATED, axum::Json(Value::Array(upserted))).into_response()
    })
}

pub(super) fn uuid_for_env(n: u64) -> String {
    uuid(n.wrapping_add(1_000_003))
}

pub(super) async fn delete_env(
    State(sim): State<Coolify>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    Path((uuid, env)): Path<(String, String)>,
) -> Response {
    if let Err(r) = sim.enter("delete_env", &method, &uri, &headers).await {
        return r;
    }
    sim.with(|s| {
        let Some(list) = s.envs.get_mut(&uuid) else {
            return message(StatusCode::NOT_FOUND, "Environment variable not found.");
        };
        match list.iter().position(|e| e["uuid"] == env) {
            Some(position) => {
                list.remove(position);
                axum::Json(json!({ "message": "Environment variable deleted." })).into_response()
            }
            None => message(StatusCode::NOT_FOUND, "Environment variable not found."),
        }
    })
}
