//! Uptime Kuma's API, the Socket.IO one its web UI uses, over Engine.IO v4 long-polling:
//! plain HTTP requests through the host, the only way out of the sandbox (see
//! `tests/sim/src/uptime_kuma/engine_io.rs` for the protocol, with citations).
//!
//! A session is opened once per instance and reused: `GET /socket.io/?EIO=4&transport=
//! polling` (handshake), `POST 40` (connect), polls until the server's `info` (it may not
//! listen before it has sent it), then `login` with the password the host puts in the
//! body (contract 0.4's `body` credential: the provider never sees it). An event with an
//! acknowledgement is `42<id>[name, …args]`; its answer `43<id>[answer]` comes in a later
//! poll, among other packets; a ping `2` is answered `3`. A session the server closed
//! (a missed ping between two calls) is opened again, once, before the event is sent.

use fabrik_provider_sdk::ProviderError;
use fabrik_provider_sdk::error::{permanent, transient, unauthorized};
use fabrik_provider_sdk::http::{Api, Response};
use serde_json::{Map, Value, json};

/// Where the host puts the password in the `login` message.
const PASSWORD_PLACEHOLDER: &str = "{{fabrik:password}}";
/// Engine.IO's record separator.
const SEPARATOR: char = '\u{1e}';
/// Polls for one acknowledgement before giving up (each may wait for the server's data
/// or its ping, 25 s by default; the host's call deadline bounds them too).
const MAX_POLLS: usize = 12;

/// One Socket.IO session, logged in.
pub struct Socket {
    api: Api,
    username: String,
    sid: Option<String>,
    next_ack: u64,
    /// The monitors the server last pushed (`monitorList`, then its updates), by id.
    monitors: Option<Map<String, Value>>,
}

/// Why an event got no answer.
enum Lost {
    /// The server no longer knows the session (its POST was refused): the event was not
    /// handled, and may be sent again on a new session.
    Unsent,
    /// The event was sent, and its answer did not come (a poll failed or the session
    /// ended): it may have been handled, so it is never sent again blind.
    Unanswered,
}

impl Socket {
    pub fn new(api: Api, username: &str) -> Self {
        Self {
            api,
            username: username.to_owned(),
            sid: None,
            next_ack: 0,
            monitors: None,
        }
    }

    fn path(sid: &str) -> String {
        format!("/socket.io/?EIO=4&transport=polling&sid={sid}")
    }

    fn unexpected(&self, what: &str, response: &Response) -> ProviderError {
        response.error(&format!(
            "{} answered {what} with HTTP {}, not Uptime Kuma's Socket.IO: is `base-url` the server's root?",
            self.api.name(),
            response.status
        ))
    }

    /// Opens a session and logs in.
    fn open(&mut self) -> Result<(), ProviderError> {
        self.sid = None;
        self.monitors = None;
        let response = self
            .api
            .get("/socket.io/?EIO=4&transport=polling")
            .header("accept", "*/*")
            .send()?;
        let text = String::from_utf8_lossy(&response.body).into_owned();
        let Some(open) = text.strip_prefix('0').filter(|_| response.is_success()) else {
            return Err(self.unexpected("the handshake", &response));
        };
        let handshake: Value =
            serde_json::from_str(open).map_err(|_| self.unexpected("the handshake", &response))?;
        let sid = handshake["sid"]
            .as_str()
            .ok_or_else(|| self.unexpected("the handshake", &response))?
            .to_owned();
        self.sid = Some(sid);
        if self.post("40").is_err() {
            self.sid = None;
            return Err(transient(
                "Uptime Kuma closed the session it had just opened",
                None,
            ));
        }
        // The connect answer, then the server's `info`: only then is it listening.
        let mut connected = false;
        for _ in 0..MAX_POLLS {
            let Ok(packets) = self.poll() else {
                self.sid = None;
                return Err(transient(
                    "Uptime Kuma closed the session while connecting",
                    None,
                ));
            };
            for packet in &packets {
                connected |= packet.starts_with("40");
                if connected && event_name(packet).is_some_and(|n| n == "info") {
                    // A session whose login failed is not used again.
                    let logged_in = self.login();
                    if logged_in.is_err() {
                        self.sid = None;
                    }
                    return logged_in;
                }
            }
        }
        self.sid = None;
        Err(transient(
            "Uptime Kuma did not finish connecting (no `info` event)",
            None,
        ))
    }

    fn login(&mut self) -> Result<(), ProviderError> {
        let message = json!([
            "login",
            { "username": self.username, "password": PASSWORD_PLACEHOLDER, "token": "" }
        ]);
        let answer = self
            .emit(&message, true)
            .map_err(|_| transient("Uptime Kuma did not answer the login", None))?;
        if answer["ok"].as_bool() == Some(true) {
            return Ok(());
        }
        if answer["tokenRequired"].as_bool() == Some(true) {
            return Err(unauthorized(format!(
                "Uptime Kuma user `{}` has two-factor authentication: give Fabrik a user without it",
                self.username
            )));
        }
        let msg = answer["msg"].as_str().unwrap_or_default();
        if msg.contains("Too frequently") {
            // The login limiter: 20 logins a minute, server-wide.
            return Err(transient(
                "Uptime Kuma refused the login: too many logins this minute",
                Some(60_000),
            ));
        }
        Err(unauthorized(format!(
            "Uptime Kuma refused the login of user `{}` ({msg}): check UPTIME_KUMA_USERNAME and UPTIME_KUMA_PASSWORD",
            self.username
        )))
    }

    fn post(&self, body: &str) -> Result<(), Lost> {
        let sid = self.sid.as_deref().unwrap_or_default();
        self.post_request(
            self.api
                .request(fabrik_provider_sdk::Method::Post, &Self::path(sid))
                .header("content-type", "text/plain;charset=UTF-8")
                .body(body.as_bytes().to_vec()),
        )
    }

    /// A POST: `Unsent` only when the server says it does not know the session (400),
    /// `Unanswered` for anything that may have reached it.
    fn post_request(&self, request: fabrik_provider_sdk::http::Request) -> Result<(), Lost> {
        match request.send() {
            Ok(response) if response.is_success() => Ok(()),
            Ok(response) if response.status == 400 => Err(Lost::Unsent),
            _ => Err(Lost::Unanswered),
        }
    }

    /// One poll: its packets, with pings answered and pushed lists kept.
    fn poll(&mut self) -> Result<Vec<String>, Lost> {
        let sid = self.sid.clone().unwrap_or_default();
        let response = self
            .api
            .get(&Self::path(&sid))
            .header("accept", "*/*")
            .timeout_ms(30_000)
            .send()
            .map_err(|_| Lost::Unanswered)?;
        if !response.is_success() {
            return Err(Lost::Unanswered);
        }
        let text = String::from_utf8_lossy(&response.body).into_owned();
        let packets: Vec<String> = text.split(SEPARATOR).map(str::to_owned).collect();
        for packet in &packets {
            match packet.as_str() {
                "2" => self.post("3").map_err(|_| Lost::Unanswered)?,
                "1" => return Err(Lost::Unanswered),
                _ => self.keep_list(packet),
            }
        }
        Ok(packets)
    }

    /// Keeps what the server pushes of the user's monitors.
    fn keep_list(&mut self, packet: &str) {
        let Some(event) = packet.strip_prefix("42") else {
            return;
        };
        let Ok(Value::Array(items)) = serde_json::from_str::<Value>(event) else {
            return;
        };
        match (items.first().and_then(Value::as_str), items.get(1)) {
            (Some("monitorList"), Some(Value::Object(list))) => self.monitors = Some(list.clone()),
            (Some("updateMonitorIntoList"), Some(Value::Object(one))) => {
                if let Some(list) = &mut self.monitors {
                    list.extend(one.clone());
                }
            }
            (Some("deleteMonitorFromList"), Some(id)) => {
                if let Some(list) = &mut self.monitors {
                    list.remove(&id_text(id));
                }
            }
            _ => {}
        }
    }

    /// Sends `[name, …args]` and waits for its acknowledgement.
    fn emit(&mut self, message: &Value, with_password: bool) -> Result<Value, Lost> {
        self.next_ack += 1;
        let id = self.next_ack;
        let sid = self.sid.clone().unwrap_or_default();
        let mut request = self
            .api
            .request(fabrik_provider_sdk::Method::Post, &Self::path(&sid))
            .header("content-type", "text/plain;charset=UTF-8")
            .body(format!("42{id}{message}").into_bytes());
        if with_password {
            request = request.credential_in_body("password", PASSWORD_PLACEHOLDER);
        }
        self.post_request(request)?;
        let prefix = format!("43{id}");
        for _ in 0..MAX_POLLS {
            for packet in self.poll()? {
                if let Some(answer) = packet.strip_prefix(&prefix) {
                    let answer: Value =
                        serde_json::from_str(answer).map_err(|_| Lost::Unanswered)?;
                    return Ok(answer.get(0).cloned().unwrap_or(Value::Null));
                }
            }
        }
        Err(Lost::Unanswered)
    }

    /// `name(args…)`, acknowledged, on a logged-in session (opened, or opened again
    /// once if the server had closed it before the event reached it). An event that was
    /// sent and got no answer is never sent again here: the host retries the whole call,
    /// which looks first (a `create` adopts what a lost `add` made).
    pub fn call(&mut self, name: &str, args: &[Value]) -> Result<Value, ProviderError> {
        let mut message = vec![json!(name)];
        message.extend_from_slice(args);
        let message = Value::Array(message);
        for attempt in 0..2 {
            if self.sid.is_none() {
                self.open()?;
            }
            match self.emit(&message, false) {
                Ok(answer) => return Ok(answer),
                Err(Lost::Unsent) if attempt == 0 => self.sid = None,
                Err(Lost::Unsent) => break,
                Err(Lost::Unanswered) => {
                    self.sid = None;
                    return Err(transient(
                        format!("Uptime Kuma did not answer `{name}`: it may have been done"),
                        None,
                    ));
                }
            }
        }
        self.sid = None;
        Err(transient(
            format!("Uptime Kuma did not take `{name}` (its session ended twice)"),
            None,
        ))
    }

    /// The user's monitors, as the server lists them (`getMonitorList` pushes the list).
    pub fn monitors(&mut self) -> Result<Map<String, Value>, ProviderError> {
        let answer = self.call("getMonitorList", &[])?;
        ok(&answer, "list the monitors")?;
        // The list may come in the same poll as the acknowledgement, or just before it.
        Ok(self.monitors.clone().unwrap_or_default())
    }
}

/// `42["name", …]`'s name.
fn event_name(packet: &str) -> Option<String> {
    let event = packet.strip_prefix("42")?;
    let items: Value = serde_json::from_str(event).ok()?;
    items.get(0)?.as_str().map(str::to_owned)
}

/// A monitor id as the list's keys spell it.
pub fn id_text(id: &Value) -> String {
    match id {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// An acknowledgement's `ok`, or a permanent error with the server's message.
pub fn ok(answer: &Value, doing: &str) -> Result<(), ProviderError> {
    if answer["ok"].as_bool() == Some(true) {
        return Ok(());
    }
    let msg = answer["msg"].as_str().unwrap_or("no message");
    if msg == "You are not logged in." {
        return Err(transient(
            format!("Uptime Kuma logged Fabrik out while trying to {doing}"),
            None,
        ));
    }
    Err(permanent(format!("Uptime Kuma could not {doing}: {msg}")))
}
