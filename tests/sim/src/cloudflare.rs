//! A Cloudflare v4 DNS API simulator: the subset in `shared/api/cloudflare-dns-openapi.json`
//! with the behaviour `shared/api/CLOUDFLARE.md` describes: the envelope, bearer auth and
//! its error codes, zone lookup by name, duplicate-record errors (81057/81058/81053),
//! 81044 for missing records, 429 with `Retry-After`, pagination.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};

use crate::faults::{Fault, Faults};

pub mod rules;

use rules::{Plan, failure};

/// A zone the simulator serves.
#[derive(Debug, Clone)]
pub struct Zone {
    pub id: String,
    pub name: String,
    pub plan: Plan,
    /// `active`, or `pending` (nameservers not yet Cloudflare's), `moved` (they went
    /// elsewhere), `initializing` (schema `zones_status`).
    pub status: &'static str,
}

#[derive(Debug, Default)]
struct Store {
    zones: Vec<Zone>,
    /// Record id → record as the API returns it.
    records: BTreeMap<String, Value>,
    next_id: u64,
}

/// Shared state of one simulator.
#[derive(Clone)]
pub struct Cloudflare {
    token: Arc<str>,
    store: Arc<Mutex<Store>>,
    pub faults: Faults,
    /// 1,200 requests per five minutes per user (see `ratelimit`).
    pub rate_limit: crate::ratelimit::RateLimiter,
}

const TIMESTAMP: &str = "2026-11-23T00:00:00.000000Z";

fn hex_id(n: u64) -> String {
    format!(
        "{:016x}{:016x}",
        n.wrapping_mul(0x9e37_79b9_7f4a_7c15),
        n ^ 0xc0ff_ee00_dead_beef
    )
}

fn envelope(result: Value) -> Value {
    json!({ "success": true, "errors": [], "messages": [], "result": result })
}

fn injected(fault: Fault) -> Response {
    match fault {
        Fault::Status {
            status,
            retry_after,
        } => {
            let code = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let (number, message) = match status {
                429 => (
                    971,
                    "Please wait and consider throttling your request speed",
                ),
                s if s >= 500 => (10002, "An unknown error has occurred"),
                _ => (1000, "Injected failure"),
            };
            let mut response = failure(code, number, message);
            if let Some(seconds) = retry_after
                && let Ok(value) = seconds.to_string().parse()
            {
                response.headers_mut().insert("retry-after", value);
            }
            response
        }
        Fault::Malformed => (StatusCode::OK, "<html>not json").into_response(),
        // `Faults::enter` never returns these: hangs wait forever, lost answers are
        // replaced by the `lose_answers` middleware after the handler ran.
        Fault::Hang | Fault::LoseAnswer { .. } => StatusCode::GATEWAY_TIMEOUT.into_response(),
    }
}

impl Cloudflare {
    /// A simulator accepting `token`, serving `zones` (names).
    pub fn new(token: &str, zones: &[&str]) -> Self {
        let mut store = Store::default();
        for name in zones {
            store.next_id += 1;
            store.zones.push(Zone {
                id: hex_id(store.next_id),
                name: (*name).to_owned(),
                plan: Plan::Free,
                status: "active",
            });
        }
        store.next_id += crate::start_offset();
        Self {
            token: Arc::from(token),
            store: Arc::new(Mutex::new(store)),
            faults: Faults::default(),
            rate_limit: crate::ratelimit::RateLimiter::cloudflare(),
        }
    }

    fn with<T>(&self, f: impl FnOnce(&mut Store) -> T) -> T {
        let mut guard = match self.store.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        f(&mut guard)
    }

    /// Sets the plan of the zone named `name` (zones start on Free).
    /// Sets zone `name`'s status (`pending`, `moved`…), as Cloudflare reports it.
    pub fn set_zone_status(&self, name: &str, status: &'static str) {
        self.with(|s| {
            for zone in s.zones.iter_mut().filter(|z| z.name == name) {
                zone.status = status;
            }
        });
    }

    pub fn set_plan(&self, name: &str, plan: Plan) {
        self.with(|s| {
            for zone in s.zones.iter_mut().filter(|z| z.name == name) {
                zone.plan = plan;
            }
        });
    }

    /// An edit made by hand in Cloudflare's dashboard: a record's content.
    pub fn edit_content(&self, name: &str, content: &str) {
        self.with(|s| {
            for record in s.records.values_mut().filter(|r| r["name"] == name) {
                record["content"] = json!(content);
            }
        });
    }

    /// Every record, as the API would return it.
    pub fn records(&self) -> Vec<Value> {
        self.with(|s| s.records.values().cloned().collect())
    }

    /// Adds a record directly (someone else's, for conflict tests).
    pub fn insert_record(
        &self,
        name: &str,
        record_type: &str,
        content: &str,
        comment: &str,
    ) -> String {
        self.with(|s| {
            let zone = s
                .zones
                .iter()
                .find(|z| name == z.name || name.ends_with(&format!(".{}", z.name)))
                .cloned();
            s.next_id += 1;
            let id = hex_id(s.next_id);
            let record = record_json(
                &id,
                zone.as_ref(),
                name,
                record_type,
                content,
                1,
                false,
                comment,
            );
            s.records.insert(id.clone(), record);
            id
        })
    }

    /// The axum router of the API, mounted at `/client/v4`.
    pub fn router(&self) -> Router {
        let api = Router::new()
            .route("/zones", get(list_zones))
            .route("/zones/{zone}", get(get_zone))
            .route(
                "/zones/{zone}/dns_records",
                get(list_records).post(create_record),
            )
            .route(
                "/zones/{zone}/dns_records/{id}",
                get(get_record)
                    .patch(patch_record)
                    .put(put_record)
                    .delete(delete_record),
            )
            .route("/user/tokens/verify", get(verify_token))
            .with_state(self.clone())
            .layer(axum::middleware::from_fn_with_state(
                self.rate_limit.clone(),
                crate::ratelimit::enforce,
            ));
        Router::new()
            .nest("/client/v4", api)
            .layer(axum::middleware::from_fn(crate::faults::lose_answers))
    }

    /// Authentication, then fault injection. `Err` is the response to send instead.
    async fn enter(
        &self,
        operation: &str,
        method: &Method,
        uri: &Uri,
        headers: &HeaderMap,
    ) -> Result<(), Response> {
        if let Some(fault) = self
            .faults
            .enter(
                &format!("cloudflare.{operation}"),
                method.as_str(),
                uri.path(),
            )
            .await
        {
            return Err(injected(fault));
        }
        let Some(auth) = headers.get("authorization").and_then(|v| v.to_str().ok()) else {
            return Err(failure(
                StatusCode::BAD_REQUEST,
                9106,
                "Missing X-Auth-Key, X-Auth-Email or Authorization headers",
            ));
        };
        let Some(token) = auth.strip_prefix("Bearer ") else {
            return Err((StatusCode::BAD_REQUEST, axum::Json(json!({
                "success": false,
                "errors": [{"code": 6003, "message": "Invalid request headers", "error_chain": [{"code": 6111, "message": "Invalid format for Authorization header"}]}],
                "messages": [],
                "result": null,
            }))).into_response());
        };
        if token != &*self.token {
            return Err(failure(StatusCode::FORBIDDEN, 9109, "Invalid access token"));
        }
        Ok(())
    }

    fn zone(&self, id: &str) -> Option<Zone> {
        self.with(|s| s.zones.iter().find(|z| z.id == id).cloned())
    }
}

#[expect(clippy::too_many_arguments, reason = "one argument per record field")]
fn record_json(
    id: &str,
    zone: Option<&Zone>,
    name: &str,
    record_type: &str,
    content: &str,
    ttl: u64,
    proxied: bool,
    comment: &str,
) -> Value {
    json!({
        "id": id,
        "zone_id": zone.map(|z| z.id.clone()),
        "zone_name": zone.map(|z| z.name.clone()),
        "name": name,
        "type": record_type,
        "content": content,
        "proxiable": true,
        "proxied": proxied,
        "ttl": ttl,
        "comment": if comment.is_empty() { Value::Null } else { Value::String(comment.to_owned()) },
        "tags": [],
        "created_on": TIMESTAMP,
        "modified_on": TIMESTAMP,
        "meta": { "auto_added": false, "source": "primary" },
    })
}

fn page(items: Vec<Value>, query: &BTreeMap<String, String>, default_per_page: usize) -> Value {
    let per_page = query
        .get("per_page")
        .and_then(|p| p.parse().ok())
        .unwrap_or(default_per_page)
        .max(1);
    let page = query
        .get("page")
        .and_then(|p| p.parse().ok())
        .unwrap_or(1usize)
        .max(1);
    let total = items.len();
    let slice: Vec<Value> = items
        .into_iter()
        .skip((page - 1) * per_page)
        .take(per_page)
        .collect();
    let mut body = envelope(Value::Array(slice.clone()));
    // As the real lists answer (shared/api/CLOUDFLARE.md): no `total_pages`, which the
    // schema leaves optional; a client pages on `total_count` or a short page.
    body["result_info"] = json!({
        "page": page,
        "per_page": per_page,
        "count": slice.len(),
        "total_count": total,
    });
    body
}

fn zone_json(zone: &Zone) -> Value {
    json!({
        "id": zone.id,
        "name": zone.name,
        "status": zone.status,
        "paused": false,
        "type": "full",
        "development_mode": 0,
        "name_servers": ["ada.ns.cloudflare.com", "bob.ns.cloudflare.com"],
        "original_name_servers": null,
        "original_registrar": null,
        "original_dnshost": null,
        "created_on": TIMESTAMP,
        "modified_on": TIMESTAMP,
        "activated_on": TIMESTAMP,
        "meta": { "step": 4, "custom_certificate_quota": 0, "page_rule_quota": 3, "phishing_detected": false },
        "owner": { "id": "7c5dae5552338874e5053f2534d2767a", "type": "user", "email": "ops@example.com" },
        "account": { "id": "01a7362d577a6c3019a474fd6f485823", "name": "Fabrik tests" },
        "permissions": ["#dns_records:edit", "#zone:read"],
        "plan": { "id": "0feeeeeeeeeeeeeeeeeeeeeeeeeeeeee", "name": "Free Website", "price": 0, "currency": "USD", "frequency": "", "is_subscribed": true, "can_subscribe": false, "legacy_id": "free", "legacy_discount": false, "externally_managed": false },
    })
}

async fn list_zones(
    State(sim): State<Cloudflare>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    Query(query): Query<BTreeMap<String, String>>,
) -> Response {
    if let Err(r) = sim.enter("list_zones", &method, &uri, &headers).await {
        return r;
    }
    let zones: Vec<Value> = sim.with(|s| {
        s.zones
            .iter()
            .filter(|z| query.get("name").is_none_or(|n| *n == z.name))
            .map(zone_json)
            .collect()
    });
    axum::Json(page(zones, &query, 20)).into_response()
}

async fn get_zone(
    State(sim): State<Cloudflare>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    Path(zone): Path<String>,
) -> Response {
    if let Err(r) = sim.enter("get_zone", &method, &uri, &headers).await {
        return r;
    }
    match sim.zone(&zone) {
        Some(zone) => axum::Json(envelope(zone_json(&zone))).into_response(),
        None => failure(
            StatusCode::NOT_FOUND,
            7003,
            "Could not route to /zones, perhaps your object identifier is invalid?",
        ),
    }
}

async fn list_records(
    State(sim): State<Cloudflare>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    Path(zone): Path<String>,
    Query(query): Query<BTreeMap<String, String>>,
) -> Response {
    if let Err(r) = sim.enter("list_records", &method, &uri, &headers).await {
        return r;
    }
    if sim.zone(&zone).is_none() {
        return failure(
            StatusCode::NOT_FOUND,
            7003,
            "Could not route to /zones/dns_records, perhaps your object identifier is invalid?",
        );
    }
    let records: Vec<Value> = sim.with(|s| {
        s.records
            .values()
            .filter(|r| r["zone_id"] == zone)
            .filter(|r| {
                query
                    .get("name")
                    .is_none_or(|n| r["name"] == n.to_ascii_lowercase())
            })
            .filter(|r| query.get("type").is_none_or(|t| r["type"] == *t))
            .filter(|r| query.get("content").is_none_or(|c| r["content"] == *c))
            // The documented `comment.startswith` filter (list DNS records).
            .filter(|r| {
                query.get("comment.startswith").is_none_or(|prefix| {
                    r["comment"]
                        .as_str()
                        .is_some_and(|c| c.starts_with(prefix.as_str()))
                })
            })
            .cloned()
            .collect()
    });
    let per_page = rules::records_per_page(query.get("per_page"));
    let mut query = query;
    query.insert("per_page".to_owned(), per_page.to_string());
    axum::Json(page(records, &query, 100)).into_response()
}

fn parse_body(body: &Bytes) -> Result<Value, Response> {
    serde_json::from_slice::<Value>(body)
        .ok()
        .filter(Value::is_object)
        .ok_or_else(|| failure(StatusCode::BAD_REQUEST, 9207, "Request body is invalid."))
}

async fn create_record(
    State(sim): State<Cloudflare>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    Path(zone_id): Path<String>,
    body: Bytes,
) -> Response {
    if let Err(r) = sim.enter("create_record", &method, &uri, &headers).await {
        return r;
    }
    let Some(zone) = sim.zone(&zone_id) else {
        return failure(
            StatusCode::NOT_FOUND,
            7003,
            "Could not route to /zones/dns_records, perhaps your object identifier is invalid?",
        );
    };
    let body = match parse_body(&body) {
        Ok(body) => body,
        Err(r) => return r,
    };
    let text = |k: &str| body[k].as_str().unwrap_or_default().to_owned();
    let (record_type, content) = (text("type"), text("content"));
    let mut name = text("name").to_ascii_lowercase();
    if name == "@" {
        name.clone_from(&zone.name);
    } else if name != zone.name && !name.ends_with(&format!(".{}", zone.name)) {
        name = format!("{name}.{}", zone.name);
    }
    if record_type.is_empty() || content.is_empty() || name.is_empty() {
        return failure(
            StatusCode::BAD_REQUEST,
            9000,
            "DNS name, type and content are required.",
        );
    }
    let ttl = body["ttl"].as_u64().unwrap_or(1);
    let proxied = body["proxied"].as_bool().unwrap_or(false);
    let comment = text("comment");
    let mut candidate = body.clone();
    candidate["name"] = json!(name);
    if let Err(r) = rules::check_record(&candidate, zone.plan) {
        return r;
    }
    sim.with(|s| {
        let same_name: Vec<&Value> = s.records.values().filter(|r| r["name"] == name).collect();
        if same_name
            .iter()
            .any(|r| r["type"] == record_type && r["content"] == content)
        {
            return failure(
                StatusCode::BAD_REQUEST,
                81058,
                "An identical record already exists.",
            );
        }
        if let Some(conflict) = rules::same_name_conflict(&record_type, &same_name) {
            return conflict;
        }
        s.next_id += 1;
        let id = hex_id(s.next_id);
        let record = record_json(
            &id,
            Some(&zone),
            &name,
            &record_type,
            &content,
            ttl,
            proxied,
            &comment,
        );
        s.records.insert(id, record.clone());
        axum::Json(envelope(record)).into_response()
    })
}

fn missing() -> Response {
    failure(StatusCode::NOT_FOUND, 81044, "Record does not exist.")
}

async fn get_record(
    State(sim): State<Cloudflare>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    Path((zone, id)): Path<(String, String)>,
) -> Response {
    if let Err(r) = sim.enter("get_record", &method, &uri, &headers).await {
        return r;
    }
    match sim.with(|s| s.records.get(&id).filter(|r| r["zone_id"] == zone).cloned()) {
        Some(record) => axum::Json(envelope(record)).into_response(),
        None => missing(),
    }
}

async fn change_record(
    sim: &Cloudflare,
    zone: &str,
    id: &str,
    body: &Bytes,
    replace: bool,
) -> Response {
    let body = match parse_body(body) {
        Ok(body) => body,
        Err(r) => return r,
    };
    sim.with(|s| {
        if !s.records.get(id).is_some_and(|r| r["zone_id"] == zone) {
            return missing();
        }
        let plan = s
            .zones
            .iter()
            .find(|z| z.id == zone)
            .map(|z| z.plan)
            .unwrap_or_default();
        let Some(record) = s.records.get_mut(id) else {
            return missing();
        };
        let mut changed = record.clone();
        if replace {
            // PUT overwrites: omitted optional fields fall back to their defaults.
            changed["proxied"] = json!(false);
            changed["ttl"] = json!(1);
            changed["comment"] = Value::Null;
            changed["tags"] = json!([]);
        }
        for key in [
            "type", "content", "ttl", "proxied", "comment", "name", "tags",
        ] {
            if let Some(value) = body.get(key) {
                changed[key] = value.clone();
            }
        }
        if let Err(r) = rules::check_record(&changed, plan) {
            return r;
        }
        *record = changed;
        record["modified_on"] = json!(TIMESTAMP);
        axum::Json(envelope(record.clone())).into_response()
    })
}

async fn patch_record(
    State(sim): State<Cloudflare>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    Path((zone, id)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    if let Err(r) = sim.enter("update_record", &method, &uri, &headers).await {
        return r;
    }
    change_record(&sim, &zone, &id, &body, false).await
}

async fn put_record(
    State(sim): State<Cloudflare>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    Path((zone, id)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    if let Err(r) = sim.enter("update_record", &method, &uri, &headers).await {
        return r;
    }
    change_record(&sim, &zone, &id, &body, true).await
}

async fn delete_record(
    State(sim): State<Cloudflare>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    Path((zone, id)): Path<(String, String)>,
) -> Response {
    if let Err(r) = sim.enter("delete_record", &method, &uri, &headers).await {
        return r;
    }
    let removed = sim.with(|s| {
        let present = s.records.get(&id).is_some_and(|r| r["zone_id"] == zone);
        if present {
            s.records.remove(&id);
        }
        present
    });
    if removed {
        axum::Json(envelope(json!({ "id": id }))).into_response()
    } else {
        missing()
    }
}

async fn verify_token(
    State(sim): State<Cloudflare>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    if let Err(r) = sim.enter("verify_token", &method, &uri, &headers).await {
        return r;
    }
    let mut body =
        envelope(json!({ "id": "ed17574386854bf78a67040be0a770b0", "status": "active" }));
    body["messages"] = json!([{ "code": 10000, "message": "This API Token is valid and active" }]);
    axum::Json(body).into_response()
}
