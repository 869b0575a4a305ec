//! An Uptime Kuma simulator: its Socket.IO API over Engine.IO long-polling (the transport
//! a sandboxed provider can use: plain HTTP requests), the handlers a monitor provider
//! calls, and `GET /metrics`. Ported from Uptime Kuma's server source, 2.5.x (HEAD
//! `6398a958`) and 1.23.16 where they differ (`Version`); citations are
//! `server/server.js` (S:line, 1.23.16 then HEAD) unless another file is named.
//!
//! - On connect the server emits `info`, then `setup` while no user exists, then (2.x only)
//!   `loginRequired` (S:279-283 / S:390-395, `server/client.js` 145-163).
//! - `checkLogin` refuses every monitor handler with "You are not logged in."
//!   (`server/util-server.js` 833 / 644); handlers answer `{ok:false, msg}` on any error.
//! - `login` is limited to 20 calls a minute, server-wide (`server/rate-limiter.js` 50 /
//!   61: "Too frequently, try again later."); its token (a JWT without expiry) works with
//!   `loginByToken` until the password changes.
//! - After login (`afterLogin`, S:1713 / S:1828) the user's `monitorList` (an object keyed
//!   by id) is pushed: on 2.x before the login's acknowledgement, on 1.23 after it.
//! - `add`, `editMonitor`, `pauseMonitor`, `resumeMonitor` push the changed monitor
//!   (`updateMonitorIntoList` on 2.x, the whole `monitorList` on 1.23) before their
//!   acknowledgement; `deleteMonitor` acknowledges first, then pushes
//!   `deleteMonitorFromList` (2.x) or `monitorList` (1.23). A missing id is still deleted
//!   "successfully" (S:941 / S:1127).
//! - `pauseMonitor`/`resumeMonitor` of a monitor the user does not own: "You do not own
//!   this monitor." (`checkOwner`, S:1695 / S:1813).
//! - `GET /metrics` (S:246 / S:355, `server/auth.js`): HTTP Basic with a user's name and
//!   password, or, once an API key exists, any name and the key `uk<id>_<key>`; a
//!   `monitor_status` gauge per *active* monitor (a paused one is removed,
//!   `model/monitor.js` `stop()` → `prometheus.remove()`), labelled as
//!   `server/prometheus.js` labels it.

pub mod engine_io;
pub mod monitor;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use engine_io::{Event, Heartbeat, Packet, Session, Sessions, abort};
use monitor::Monitor;

/// Which Uptime Kuma the simulator behaves as, where 1.23 and 2.x differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Version {
    /// 1.23.16.
    V1,
    /// 2.5.x.
    #[default]
    V2,
}

#[derive(Debug, Clone)]
struct User {
    id: u64,
    username: String,
    password: String,
}

#[derive(Default)]
struct Store {
    version: Version,
    users: Vec<User>,
    monitors: BTreeMap<u64, Monitor>,
    next_monitor: u64,
    /// `login` calls in the current minute (the limiter counts every call).
    logins: Vec<Instant>,
    /// Tokens `login` handed out, with their user and the password they were made with.
    tokens: BTreeMap<String, (u64, String)>,
    /// API keys (`uk<id>_<key>`) for `/metrics`; once one exists, only keys work there.
    api_keys: Vec<String>,
    /// Monitors whose checks fail (`monitor_status` 0); every other active one is up.
    down: Vec<u64>,
    /// Every event the clients sent, by name (tests count them).
    calls: Vec<String>,
    /// Events answered `{ok:false}` whatever they ask (a test's outage).
    refused: Vec<String>,
}

/// Shared state of one simulator.
#[derive(Clone, Default)]
pub struct UptimeKuma {
    store: Arc<Mutex<Store>>,
    sessions: Sessions,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// `{ok:false, msg}`.
fn refused(msg: impl Into<String>) -> Value {
    json!({ "ok": false, "msg": msg.into() })
}

/// `{ok:true, msg}`, translated (`msgi18n`) on 2.x, a sentence on 1.23.
fn done(version: Version, key: &str, sentence: &str) -> Value {
    match version {
        Version::V2 => json!({ "ok": true, "msg": key, "msgi18n": true }),
        Version::V1 => json!({ "ok": true, "msg": sentence }),
    }
}

impl UptimeKuma {
    /// A fresh server (no user yet: it needs setup), behaving as `version`.
    pub fn new(version: Version) -> Self {
        let kuma = Self::default();
        {
            let mut store = lock(&kuma.store);
            store.version = version;
            store.next_monitor = crate::start_offset();
        }
        kuma
    }

    /// A server already set up with one user.
    pub fn with_user(version: Version, username: &str, password: &str) -> Self {
        let kuma = Self::new(version);
        lock(&kuma.store).users.push(User {
            id: 1,
            username: username.to_owned(),
            password: password.to_owned(),
        });
        kuma
    }

    /// Shortens the heartbeat (tests of a client that must answer pings).
    pub fn set_heartbeat(&self, interval: Duration, timeout: Duration) {
        *lock(&self.sessions.heartbeat) = Heartbeat { interval, timeout };
    }

    /// Creates an API key for `/metrics`, as the settings page does; returns it.
    pub fn add_api_key(&self) -> String {
        let mut store = lock(&self.store);
        let key = format!(
            "uk{}_sim{:032x}",
            store.api_keys.len() + 1,
            store.next_monitor
        );
        store.api_keys.push(key.clone());
        key
    }

    /// Every monitor as `toJSON()` gives it, by id.
    pub fn monitors(&self) -> BTreeMap<u64, Value> {
        lock(&self.store)
            .monitors
            .iter()
            .map(|(id, m)| (*id, m.to_json()))
            .collect()
    }

    /// An edit made in Uptime Kuma's UI: one field of a monitor.
    pub fn edit_by_hand(&self, id: u64, field: &str, value: Value) {
        if let Some(monitor) = lock(&self.store).monitors.get_mut(&id) {
            monitor.fields.insert(field.to_owned(), value);
        }
    }

    /// A monitor deleted in Uptime Kuma's UI.
    pub fn delete_by_hand(&self, id: u64) {
        lock(&self.store).monitors.remove(&id);
    }

    /// Makes monitor `id`'s checks fail (`monitor_status` 0) or pass again.
    pub fn set_down(&self, id: u64, down: bool) {
        let mut store = lock(&self.store);
        store.down.retain(|d| *d != id);
        if down {
            store.down.push(id);
        }
    }

    /// Answers every `event` with `{ok:false, msg}` until `accept_again` (an outage seen
    /// through the API: the handler's catch).
    pub fn refuse(&self, event: &str) {
        lock(&self.store).refused.push(event.to_owned());
    }

    pub fn accept_again(&self) {
        lock(&self.store).refused.clear();
    }

    /// How many times clients sent `event`.
    pub fn calls_of(&self, event: &str) -> usize {
        lock(&self.store)
            .calls
            .iter()
            .filter(|c| *c == event)
            .count()
    }

    /// Open Engine.IO sessions.
    pub fn sessions(&self) -> usize {
        self.sessions.count()
    }

    /// The router: `/socket.io/` and `/metrics`.
    pub fn router(&self) -> Router {
        Router::new()
            .route("/socket.io/", get(poll).post(post))
            .route("/metrics", get(metrics))
            .with_state(self.clone())
    }

    fn version(&self) -> Version {
        lock(&self.store).version
    }

    /// The namespace's connection: the server's answer and the events it emits at once.
    fn connect(&self, session: &Session) {
        session
            .connected
            .store(true, std::sync::atomic::Ordering::SeqCst);
        session.send_raw(format!(
            "40{}",
            json!({ "sid": format!("s{}", session.sid) })
        ));
        session.emit(
            "info",
            Some(json!({ "primaryBaseURL": null, "serverTimezone": "UTC", "serverTimezoneOffset": "+00:00" })),
        );
        let (version, need_setup) = {
            let store = lock(&self.store);
            (store.version, store.users.is_empty())
        };
        if need_setup {
            session.emit("setup", None);
        }
        if version == Version::V2 {
            session.emit("loginRequired", None);
        }
    }

    /// The user's monitors, `{"<id>": toJSON}`, as `monitorList` carries them.
    fn monitor_list(&self, user: u64) -> Value {
        let store = lock(&self.store);
        let list: Map<String, Value> = store
            .monitors
            .values()
            .filter(|m| m.user == user)
            .map(|m| (m.id.to_string(), m.to_json()))
            .collect();
        Value::Object(list)
    }

    /// What `sendUpdateMonitorIntoList` (2.x) or `sendMonitorList` (1.23) pushes.
    fn push_changed(&self, session: &Session, user: u64, id: u64) {
        match self.version() {
            Version::V2 => {
                let one = lock(&self.store)
                    .monitors
                    .get(&id)
                    .map(|m| json!({ id.to_string(): m.to_json() }));
                if let Some(one) = one {
                    session.emit("updateMonitorIntoList", Some(one));
                }
            }
            Version::V1 => session.emit("monitorList", Some(self.monitor_list(user))),
        }
    }

    /// One event: its acknowledgement, if it is answered; `after` gets what the server
    /// emits once it has acknowledged.
    fn handle(
        &self,
        session: &Session,
        event: &Event,
        after: &mut Vec<(&'static str, Value)>,
    ) -> Option<Value> {
        {
            let mut store = lock(&self.store);
            store.calls.push(event.name.clone());
            if store.refused.contains(&event.name) {
                return Some(refused("SQLITE_BUSY: database is locked (injected)"));
            }
        }
        let version = self.version();
        let arg = |i: usize| event.args.get(i).cloned().unwrap_or(Value::Null);
        let logged_in = || {
            session
                .user()
                .ok_or_else(|| refused("You are not logged in."))
        };
        match event.name.as_str() {
            "needSetup" => Some(json!(lock(&self.store).users.is_empty())),
            "setup" => Some(self.setup(version, &arg(0), &arg(1))),
            "login" => self.login(session, version, &arg(0), after),
            "loginByToken" => Some(self.login_by_token(session, version, &arg(0))),
            "getMonitorList" => Some(match logged_in() {
                Ok(user) => {
                    session.emit("monitorList", Some(self.monitor_list(user)));
                    json!({ "ok": true })
                }
                Err(answer) => answer,
            }),
            "getMonitor" => Some(match logged_in() {
                Ok(user) => {
                    let id = arg(0).as_u64().unwrap_or_default();
                    match lock(&self.store)
                        .monitors
                        .get(&id)
                        .filter(|m| m.user == user)
                    {
                        Some(m) => json!({ "ok": true, "monitor": m.to_json() }),
                        None => refused("Cannot read properties of null (reading 'id')"),
                    }
                }
                Err(answer) => answer,
            }),
            "add" => Some(match logged_in() {
                Ok(user) => self.add(session, version, user, &arg(0)),
                Err(answer) => answer,
            }),
            "editMonitor" => Some(match logged_in() {
                Ok(user) => self.edit(session, version, user, &arg(0)),
                Err(answer) => answer,
            }),
            "pauseMonitor" | "resumeMonitor" => Some(match logged_in() {
                Ok(user) => {
                    let resume = event.name == "resumeMonitor";
                    self.set_active(session, version, user, &arg(0), resume)
                }
                Err(answer) => answer,
            }),
            // 1.23's handler is `(monitorID, callback)`: a second argument is taken for the
            // callback, calling it throws, and nothing is answered (S:941); 2.x reads it as
            // `deleteChildren` (S:1127).
            "deleteMonitor" if version == Version::V1 && event.args.len() > 1 => {
                if let (Ok(user), Some(id)) = (logged_in(), arg(0).as_u64()) {
                    let mut store = lock(&self.store);
                    if store.monitors.get(&id).is_some_and(|m| m.user == user) {
                        store.monitors.remove(&id);
                    }
                }
                None
            }
            "deleteMonitor" => Some(match logged_in() {
                Ok(user) => {
                    let id = arg(0).as_u64().unwrap_or_default();
                    let mut store = lock(&self.store);
                    if store.monitors.get(&id).is_some_and(|m| m.user == user) {
                        store.monitors.remove(&id);
                    }
                    drop(store);
                    // The acknowledgement first, then the push (S:941 / S:1127).
                    match version {
                        Version::V2 => after.push(("deleteMonitorFromList", arg(0))),
                        Version::V1 => after.push(("monitorList", self.monitor_list(user))),
                    }
                    done(version, "successDeleted", "Deleted Successfully.")
                }
                Err(answer) => answer,
            }),
            // Everything else the UI may send is answered as a handler that is not
            // simulated: the client learns that, rather than waiting.
            other => Some(refused(format!("the simulator does not answer `{other}`"))),
        }
    }

    fn setup(&self, version: Version, username: &Value, password: &Value) -> Value {
        let mut store = lock(&self.store);
        let password = password.as_str().unwrap_or_default();
        // `passwordStrength(password).value === "Too weak"`: fewer than 6 characters, or
        // one kind of character only (check-password-strength's lowest level).
        let kinds = [
            password.chars().any(|c| c.is_ascii_lowercase()),
            password.chars().any(|c| c.is_ascii_uppercase()),
            password.chars().any(|c| c.is_ascii_digit()),
            password.chars().any(|c| !c.is_ascii_alphanumeric()),
        ]
        .iter()
        .filter(|k| **k)
        .count();
        if password.len() < 6 || kinds < 2 {
            return match version {
                Version::V2 => json!({ "ok": false, "msg": "passwordTooWeak", "msgi18n": true }),
                Version::V1 => refused(
                    "Password is too weak. It should contain alphabetic and numeric characters. It must be at least 6 characters in length.",
                ),
            };
        }
        if !store.users.is_empty() {
            return refused(
                "Uptime Kuma has been initialized. If you want to run setup again, please delete the database.",
            );
        }
        store.users.push(User {
            id: 1,
            username: username.as_str().unwrap_or_default().to_owned(),
            password: password.to_owned(),
        });
        done(version, "successAdded", "Added Successfully.")
    }

    /// `None` when the server does not answer (no data, as S:341 / S:450 return).
    fn login(
        &self,
        session: &Session,
        version: Version,
        data: &Value,
        after: &mut Vec<(&'static str, Value)>,
    ) -> Option<Value> {
        if data.is_null() {
            return None;
        }
        let user = {
            let mut store = lock(&self.store);
            let now = Instant::now();
            store
                .logins
                .retain(|t| now.duration_since(*t) < Duration::from_secs(60));
            if store.logins.len() >= 20 {
                return Some(refused("Too frequently, try again later."));
            }
            store.logins.push(now);
            let found = store
                .users
                .iter()
                .find(|u| {
                    data["username"].as_str() == Some(u.username.as_str())
                        && data["password"].as_str() == Some(u.password.as_str())
                })
                .cloned();
            found.map(|user| {
                let token = format!("sim-jwt.{}.{}", user.id, store.tokens.len() + 1);
                store
                    .tokens
                    .insert(token.clone(), (user.id, user.password.clone()));
                (user, token)
            })
        };
        let Some((user, token)) = user else {
            return Some(match version {
                Version::V2 => json!({ "ok": false, "msg": "authIncorrectCreds", "msgi18n": true }),
                Version::V1 => refused("Incorrect username or password."),
            });
        };
        *session
            .user
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(user.id);
        let list = self.monitor_list(user.id);
        match version {
            // Awaited: the list comes before the acknowledgement.
            Version::V2 => session.emit("monitorList", Some(list)),
            // Not awaited: the acknowledgement comes first.
            Version::V1 => after.push(("monitorList", list)),
        }
        Some(json!({ "ok": true, "token": token }))
    }

    fn login_by_token(&self, session: &Session, version: Version, token: &Value) -> Value {
        let store = lock(&self.store);
        let valid = token
            .as_str()
            .and_then(|t| store.tokens.get(t))
            .and_then(|(id, made_with)| {
                store
                    .users
                    .iter()
                    .find(|u| u.id == *id && &u.password == made_with)
            });
        match valid {
            Some(user) => {
                *session
                    .user
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(user.id);
                json!({ "ok": true })
            }
            None => match version {
                Version::V2 => json!({ "ok": false, "msg": "authInvalidToken", "msgi18n": true }),
                Version::V1 => refused("Invalid token."),
            },
        }
    }

    fn add(&self, session: &Session, version: Version, user: u64, sent: &Value) -> Value {
        let id = {
            let mut store = lock(&self.store);
            store.next_monitor += 1;
            let id = store.next_monitor;
            match Monitor::added(version, id, user, sent) {
                Ok(monitor) => {
                    store.monitors.insert(id, monitor);
                    id
                }
                Err(message) => return refused(message),
            }
        };
        self.push_changed(session, user, id);
        let mut answer = done(version, "successAdded", "Added Successfully.");
        answer["monitorID"] = json!(id);
        answer
    }

    fn edit(&self, session: &Session, version: Version, user: u64, sent: &Value) -> Value {
        let id = sent["id"].as_u64().unwrap_or_default();
        {
            let mut store = lock(&self.store);
            let Some(current) = store.monitors.get(&id) else {
                return refused("Cannot read properties of null (reading 'user_id')");
            };
            if current.user != user {
                return refused("Permission denied.");
            }
            match current.edited(version, sent) {
                Ok(next) => {
                    store.monitors.insert(id, next);
                }
                Err(message) => return refused(message),
            }
        }
        self.push_changed(session, user, id);
        let mut answer = done(version, "Saved.", "Saved.");
        answer["monitorID"] = json!(id);
        answer
    }

    fn set_active(
        &self,
        session: &Session,
        version: Version,
        user: u64,
        id: &Value,
        active: bool,
    ) -> Value {
        let id = id.as_u64().unwrap_or_default();
        {
            let mut store = lock(&self.store);
            match store.monitors.get_mut(&id).filter(|m| m.user == user) {
                Some(monitor) => monitor.set_active(active),
                None => return refused("You do not own this monitor."),
            }
        }
        self.push_changed(session, user, id);
        if active {
            done(version, "successResumed", "Resumed Successfully.")
        } else {
            done(version, "successPaused", "Paused Successfully.")
        }
    }
}

#[derive(Deserialize)]
struct Transport {
    #[serde(rename = "EIO")]
    eio: Option<String>,
    transport: Option<String>,
    sid: Option<String>,
}

/// The query's checks every request passes (`verify`, engine.io `lib/server.ts` 274-348).
fn check(query: &Transport) -> Result<(), Response> {
    if query.eio.as_deref() != Some("4") {
        return Err(abort(5, "Unsupported protocol version"));
    }
    if query.transport.as_deref() != Some("polling") {
        return Err(abort(0, "Transport unknown"));
    }
    Ok(())
}

async fn poll(State(kuma): State<UptimeKuma>, Query(query): Query<Transport>) -> Response {
    if let Err(response) = check(&query) {
        return response;
    }
    match &query.sid {
        None => {
            let (_, handshake) = kuma.sessions.open();
            (
                StatusCode::OK,
                [("content-type", "text/plain; charset=UTF-8")],
                handshake,
            )
                .into_response()
        }
        Some(sid) => match kuma.sessions.get(sid) {
            Some(session) => kuma.sessions.poll(&session).await,
            None => abort(1, "Session ID unknown"),
        },
    }
}

async fn post(
    State(kuma): State<UptimeKuma>,
    Query(query): Query<Transport>,
    body: String,
) -> Response {
    if let Err(response) = check(&query) {
        return response;
    }
    let Some(session) = query.sid.as_deref().and_then(|sid| kuma.sessions.get(sid)) else {
        return match query.sid {
            None => abort(2, "Bad handshake method"),
            Some(_) => abort(1, "Session ID unknown"),
        };
    };
    let Some(packets) = kuma.sessions.receive(&session, &body) else {
        return StatusCode::BAD_REQUEST.into_response();
    };
    for packet in packets {
        let connected = session.connected.load(std::sync::atomic::Ordering::SeqCst);
        match packet {
            Packet::Connect if !connected => kuma.connect(&session),
            Packet::Disconnect => {
                session
                    .connected
                    .store(false, std::sync::atomic::Ordering::SeqCst);
            }
            // A packet before the namespace is connected, or a second connect, closes
            // the connection (`socket.io/lib/client.ts` 269-286).
            Packet::Connect | Packet::Event(_) if !connected => {
                kuma.sessions.close(&session.sid);
                break;
            }
            Packet::Connect => {}
            Packet::Event(event) => {
                let mut after = Vec::new();
                let answer = kuma.handle(&session, &event, &mut after);
                if let (Some(id), Some(answer)) = (event.ack, answer) {
                    session.ack(id, answer);
                }
                for (name, payload) in after {
                    session.emit(name, Some(payload));
                }
            }
        }
    }
    (
        StatusCode::OK,
        [("content-type", "text/html")],
        "ok".to_owned(),
    )
        .into_response()
}

/// `GET /metrics` behind `apiAuth` (`server/auth.js`): Basic with a user's password, or
/// with an API key once one exists.
async fn metrics(State(kuma): State<UptimeKuma>, headers: HeaderMap) -> Response {
    let unauthorized = || {
        (
            StatusCode::UNAUTHORIZED,
            [("www-authenticate", "Basic realm=\"Authorization Required\"")],
            String::new(),
        )
            .into_response()
    };
    let Some((user, password)) = basic(&headers) else {
        return unauthorized();
    };
    let store = lock(&kuma.store);
    let allowed = if store.api_keys.is_empty() {
        store
            .users
            .iter()
            .any(|u| u.username == user && u.password == password)
    } else {
        store.api_keys.contains(&password)
    };
    if !allowed {
        return unauthorized();
    }
    let mut text = String::from(
        "# HELP monitor_status Monitor Status (1 = UP, 0= DOWN, 2= PENDING, 3= MAINTENANCE)\n# TYPE monitor_status gauge\n",
    );
    for monitor in store.monitors.values().filter(|m| m.active()) {
        let value = u8::from(!store.down.contains(&monitor.id));
        let label = |v: Option<&str>| escape(v.unwrap_or("null"));
        let id_label = match store.version {
            Version::V2 => format!("monitor_id=\"{}\",", monitor.id),
            Version::V1 => String::new(),
        };
        text.push_str(&format!(
            "monitor_status{{{id_label}monitor_name=\"{}\",monitor_type=\"{}\",monitor_url=\"{}\",monitor_hostname=\"{}\",monitor_port=\"{}\"}} {value}\n",
            label(monitor.text("name")),
            label(monitor.text("type")),
            label(monitor.text("url")),
            label(monitor.text("hostname")),
            label(monitor.text("port")),
        ));
    }
    (
        StatusCode::OK,
        [("content-type", "text/plain; version=0.0.4; charset=utf-8")],
        text,
    )
        .into_response()
}

/// A Prometheus label value: backslash, double quote and newline escaped.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn basic(headers: &HeaderMap) -> Option<(String, String)> {
    use base64::Engine as _;
    let value = headers.get("authorization")?.to_str().ok()?;
    let encoded = value.strip_prefix("Basic ")?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, password) = text.split_once(':')?;
    Some((user.to_owned(), password.to_owned()))
}
