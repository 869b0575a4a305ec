//! Engine.IO v4 over HTTP long-polling, and Socket.IO v5 packets over it, as the
//! `engine.io` 6.6 and `socket.io` 4.8 servers Uptime Kuma runs implement them (read
//! from socket.io's monorepo at `engine.io@6.6.9` / `socket.io@4.8.3`):
//!
//! - handshake `GET /socket.io/?EIO=4&transport=polling` → `0{"sid",…}`
//!   (`engine.io/lib/socket.ts` 116-131); `EIO` other than 4 → 400 code 5, another
//!   transport → 400 code 0, an unknown `sid` → 400 code 1 (`lib/server.ts` 274-348,
//!   440-453, `abortRequest` 1018-1035: `{"code":N,"message":…}`);
//! - a `GET` with the sid waits for packets and returns them joined by `\x1e`
//!   (`transports/polling.ts` 71-106, engine.io-parser `lib/index.ts`); a second `GET`
//!   while one waits is a 400 and closes the session ("overlap from client", 72-79);
//! - a `POST` carries client packets and is answered `ok` (113-181);
//! - the server pings (`2`) every `pingInterval`; a client that does not answer `3`
//!   within `pingTimeout` is closed (`socket.ts` 212-238); a client `2` closes it
//!   (v4's heartbeat goes one way, 162-166);
//! - Socket.IO: `40` connects (answered `40{"sid":…}`, `socket.io/lib/socket.ts`
//!   508-519), `42[name, …args]` is an event, `42<id>[…]` one expecting an
//!   acknowledgement, answered `43<id>[answer]`; `41` disconnects
//!   (socket.io-parser `lib/index.ts` 86-115, 228-300).

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// Engine.IO's record separator between packets of one HTTP body.
pub const SEPARATOR: char = '\u{1e}';

/// The heartbeat: engine.io's defaults (`lib/server.ts` 194-207), shorter in tests.
#[derive(Debug, Clone, Copy)]
pub struct Heartbeat {
    pub interval: Duration,
    pub timeout: Duration,
}

impl Default for Heartbeat {
    fn default() -> Self {
        Self {
            interval: Duration::from_millis(25_000),
            timeout: Duration::from_millis(20_000),
        }
    }
}

/// One Engine.IO session and the Socket.IO socket on it.
pub struct Session {
    pub sid: String,
    outbox: Mutex<VecDeque<String>>,
    ready: tokio::sync::Notify,
    polling: AtomicBool,
    /// When the last ping was sent and not yet answered.
    ping_sent: Mutex<Option<Instant>>,
    /// When the client last asked for anything (a poll or a post).
    last_seen: Mutex<Instant>,
    /// Whether the Socket.IO namespace `/` is connected.
    pub connected: AtomicBool,
    /// The logged-in user (Uptime Kuma's `socket.userID`).
    pub user: Mutex<Option<u64>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Session {
    fn new(sid: String) -> Self {
        Self {
            sid,
            outbox: Mutex::new(VecDeque::new()),
            ready: tokio::sync::Notify::new(),
            polling: AtomicBool::new(false),
            ping_sent: Mutex::new(None),
            last_seen: Mutex::new(Instant::now()),
            connected: AtomicBool::new(false),
            user: Mutex::new(None),
        }
    }

    /// Queues one Engine.IO packet for the next poll.
    pub fn send_raw(&self, packet: String) {
        lock(&self.outbox).push_back(packet);
        self.ready.notify_one();
    }

    /// Queues a Socket.IO event `42[name, payload]`.
    pub fn emit(&self, name: &str, payload: Option<Value>) {
        let array = match payload {
            Some(payload) => json!([name, payload]),
            None => json!([name]),
        };
        self.send_raw(format!("42{array}"));
    }

    /// Queues a Socket.IO acknowledgement `43<id>[answer]`.
    pub fn ack(&self, id: u64, answer: Value) {
        self.send_raw(format!("43{id}{}", json!([answer])));
    }

    pub fn user(&self) -> Option<u64> {
        *lock(&self.user)
    }
}

/// A Socket.IO event from the client: its name, arguments and acknowledgement id.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub name: String,
    pub args: Vec<Value>,
    pub ack: Option<u64>,
}

/// What a client's Socket.IO packet is.
#[derive(Debug, Clone, PartialEq)]
pub enum Packet {
    Connect,
    Disconnect,
    Event(Event),
}

/// Decodes one Socket.IO packet (the payload of an Engine.IO `4` message) of the
/// default namespace; `None` for what the parser rejects (it closes the connection).
pub fn decode(text: &str) -> Option<Packet> {
    let mut chars = text.chars();
    match chars.next()? {
        '0' => Some(Packet::Connect),
        '1' => Some(Packet::Disconnect),
        '2' => {
            let rest = chars.as_str();
            let digits = rest.chars().take_while(char::is_ascii_digit).count();
            let ack = (digits > 0).then(|| rest[..digits].parse().ok()).flatten();
            let Value::Array(mut items) = serde_json::from_str(&rest[digits..]).ok()? else {
                return None;
            };
            if items.is_empty() {
                return None;
            }
            let Value::String(name) = items.remove(0) else {
                return None;
            };
            // Names the protocol reserves are refused by the parser (`isPayloadValid`).
            if ["connect", "connect_error", "disconnect", "disconnecting"].contains(&name.as_str())
            {
                return None;
            }
            Some(Packet::Event(Event {
                name,
                args: items,
                ack,
            }))
        }
        _ => None,
    }
}

/// `{"code":N,"message":…}` with status 400, as `abortRequest` answers.
pub fn abort(code: u8, message: &str) -> Response {
    (
        StatusCode::BAD_REQUEST,
        [("content-type", "application/json")],
        json!({ "code": code, "message": message }).to_string(),
    )
        .into_response()
}

/// Every open session.
#[derive(Clone, Default)]
pub struct Sessions {
    open: Arc<Mutex<HashMap<String, Arc<Session>>>>,
    pub heartbeat: Arc<Mutex<Heartbeat>>,
    next: Arc<std::sync::atomic::AtomicU64>,
}

impl Sessions {
    fn heartbeat(&self) -> Heartbeat {
        *lock(&self.heartbeat)
    }

    /// A new session and its handshake body.
    pub fn open(&self) -> (Arc<Session>, String) {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let sid = format!("sim{n:017x}").chars().take(20).collect::<String>();
        let session = Arc::new(Session::new(sid.clone()));
        lock(&self.open).insert(sid.clone(), session.clone());
        let beat = self.heartbeat();
        let handshake = json!({
            "sid": sid,
            "upgrades": ["websocket"],
            "pingInterval": beat.interval.as_millis(),
            "pingTimeout": beat.timeout.as_millis(),
            "maxPayload": 1_000_000,
        });
        (session, format!("0{handshake}"))
    }

    /// The session `sid`, unless it is unknown or its client missed a ping (then it is
    /// closed first, as engine.io's ping timeout does). A client that stopped polling
    /// missed the ping the server would have sent it at the end of the interval: its
    /// session is gone once the interval and the timeout have passed.
    pub fn get(&self, sid: &str) -> Option<Arc<Session>> {
        let session = lock(&self.open).get(sid).cloned()?;
        let beat = self.heartbeat();
        let missed = lock(&session.ping_sent).is_some_and(|sent| sent.elapsed() > beat.timeout);
        let idle = lock(&session.last_seen).elapsed() > beat.interval + beat.timeout;
        if missed || idle {
            self.close(sid);
            return None;
        }
        *lock(&session.last_seen) = Instant::now();
        Some(session)
    }

    pub fn close(&self, sid: &str) {
        if let Some(session) = lock(&self.open).remove(sid) {
            session.send_raw("1".to_owned());
        }
    }

    /// How many sessions are open (tests check that closed ones go).
    pub fn count(&self) -> usize {
        lock(&self.open).len()
    }

    /// A `GET` poll: waits for packets (a ping at the interval's end) and returns them.
    pub async fn poll(&self, session: &Arc<Session>) -> Response {
        if session.polling.swap(true, Ordering::SeqCst) {
            // "overlap from client": the session goes, and this request gets a bare 400.
            self.close(&session.sid);
            return StatusCode::BAD_REQUEST.into_response();
        }
        let interval = self.heartbeat().interval;
        let waited = tokio::time::timeout(interval, async {
            loop {
                if !lock(&session.outbox).is_empty() {
                    return;
                }
                session.ready.notified().await;
            }
        })
        .await;
        if waited.is_err() {
            lock(&session.ping_sent).get_or_insert_with(Instant::now);
            session.send_raw("2".to_owned());
        }
        let packets: Vec<String> = lock(&session.outbox).drain(..).collect();
        session.polling.store(false, Ordering::SeqCst);
        (
            StatusCode::OK,
            [
                ("content-type", "text/plain; charset=UTF-8"),
                ("cache-control", "no-store"),
            ],
            packets.join(&SEPARATOR.to_string()),
        )
            .into_response()
    }

    /// The Engine.IO packets of a `POST` body: pongs and closes handled here, Socket.IO
    /// messages returned for the server to handle in order. `None`: what the body held
    /// closed the session (the request gets a bare 400).
    pub fn receive(&self, session: &Arc<Session>, body: &str) -> Option<Vec<Packet>> {
        let mut messages = Vec::new();
        for packet in body.split(SEPARATOR).filter(|p| !p.is_empty()) {
            let (kind, rest) = packet.split_at(1);
            match kind {
                "3" => *lock(&session.ping_sent) = None,
                "1" => {
                    self.close(&session.sid);
                    return Some(messages);
                }
                "4" => match decode(rest) {
                    Some(packet) => messages.push(packet),
                    None => {
                        self.close(&session.sid);
                        return None;
                    }
                },
                // A client ping ("invalid heartbeat direction") or anything else.
                _ => {
                    self.close(&session.sid);
                    return None;
                }
            }
        }
        Some(messages)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn socket_io_packets_decode_as_the_parser_reads_them() {
        assert_eq!(decode("0"), Some(Packet::Connect));
        assert_eq!(
            decode(r#"212["login",{"username":"a"}]"#),
            Some(Packet::Event(Event {
                name: "login".to_owned(),
                args: vec![json!({"username": "a"})],
                ack: Some(12),
            }))
        );
        assert_eq!(
            decode(r#"2["getMonitorList"]"#),
            Some(Packet::Event(Event {
                name: "getMonitorList".to_owned(),
                args: vec![],
                ack: None,
            }))
        );
        for bad in [r#"2["connect"]"#, "2[]", "2{}", "2[1]", "9", ""] {
            assert_eq!(decode(bad), None, "{bad}");
        }
    }
}
