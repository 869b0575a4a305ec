//! The Uptime Kuma simulator driven over real HTTP on loopback, as a client without
//! sockets drives Uptime Kuma: Engine.IO long-polling, Socket.IO events with
//! acknowledgements, and `/metrics`.

use std::time::Duration;

use fabrik_sim::uptime_kuma::{UptimeKuma, Version};
use serde_json::{Value, json};

/// A long-polling Socket.IO client, enough for the tests.
struct Client {
    http: reqwest::Client,
    base: String,
    sid: String,
    next_ack: u64,
    /// Events received while waiting for an acknowledgement, in order.
    events: Vec<Value>,
    /// Every packet received, in order.
    log: Vec<String>,
}

impl Client {
    async fn connect(base: &str) -> Self {
        let http = reqwest::Client::new();
        let open = http
            .get(format!("{base}/socket.io/?EIO=4&transport=polling"))
            .send()
            .await
            .expect("handshake")
            .text()
            .await
            .expect("body");
        let handshake: Value =
            serde_json::from_str(open.strip_prefix('0').expect("an open packet")).expect("json");
        let mut client = Self {
            http,
            base: base.to_owned(),
            sid: handshake["sid"].as_str().expect("sid").to_owned(),
            next_ack: 0,
            events: Vec::new(),
            log: Vec::new(),
        };
        assert_eq!(client.post("40").await, 200);
        let first = client.poll().await;
        assert!(first[0].starts_with("40{\"sid\""), "{first:?}");
        client.take(&first[1..]);
        client
    }

    fn url(&self) -> String {
        format!(
            "{}/socket.io/?EIO=4&transport=polling&sid={}",
            self.base, self.sid
        )
    }

    async fn post(&self, body: &str) -> u16 {
        self.http
            .post(self.url())
            .body(body.to_owned())
            .send()
            .await
            .expect("post")
            .status()
            .as_u16()
    }

    async fn poll(&self) -> Vec<String> {
        let body = self
            .http
            .get(self.url())
            .send()
            .await
            .expect("poll")
            .text()
            .await
            .expect("body");
        body.split('\u{1e}').map(str::to_owned).collect()
    }

    fn take(&mut self, packets: &[String]) {
        self.log.extend(packets.iter().cloned());
        for packet in packets {
            if let Some(event) = packet.strip_prefix("42") {
                self.events
                    .push(serde_json::from_str(event).expect("event"));
            }
        }
    }

    /// Emits `name(args…)` and waits for its acknowledgement.
    async fn call(&mut self, name: &str, args: &[Value]) -> Value {
        self.next_ack += 1;
        let id = self.next_ack;
        let mut array = vec![json!(name)];
        array.extend_from_slice(args);
        assert_eq!(
            self.post(&format!("42{id}{}", Value::Array(array))).await,
            200
        );
        for _ in 0..10 {
            let packets = self.poll().await;
            for packet in &packets {
                if packet == "2" {
                    assert_eq!(self.post("3").await, 200);
                }
                if let Some(ack) = packet.strip_prefix(&format!("43{id}")) {
                    let answer: Value = serde_json::from_str(ack).expect("ack");
                    self.take(&packets);
                    return answer[0].clone();
                }
            }
            self.take(&packets);
        }
        panic!("no acknowledgement of {name}");
    }

    /// Polls until an event named `name` has arrived (the server may send what it emits
    /// on connect in a later poll than its connect answer).
    async fn wait_for(&mut self, name: &str) {
        for _ in 0..10 {
            if self.event_names().iter().any(|n| n == name) {
                return;
            }
            let packets = self.poll().await;
            for packet in &packets {
                if packet == "2" {
                    assert_eq!(self.post("3").await, 200);
                }
            }
            self.take(&packets);
        }
        panic!("no {name} event: {:?}", self.log);
    }

    fn event_names(&self) -> Vec<String> {
        self.events
            .iter()
            .map(|e| e[0].as_str().unwrap_or_default().to_owned())
            .collect()
    }
}

async fn serve(kuma: &UptimeKuma) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let router = kuma.router();
    tokio::spawn(async move { axum::serve(listener, router).await });
    format!("http://{addr}")
}

fn http_monitor(name: &str) -> Value {
    json!({
        "type": "http",
        "name": name,
        "description": "fabrik:acme/api@staging",
        "url": format!("https://{name}.example.com/health"),
        "method": "GET",
        "interval": 60,
        "retryInterval": 60,
        "maxretries": 1,
        "timeout": 48,
        "accepted_statuscodes": ["200-299"],
        "notificationIDList": {},
        "conditions": [],
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_sets_up_logs_in_and_manages_a_monitor() {
    let kuma = UptimeKuma::new(Version::V2);
    let base = serve(&kuma).await;
    let mut client = Client::connect(&base).await;
    assert_eq!(client.event_names(), ["info", "setup", "loginRequired"]);
    assert_eq!(client.call("needSetup", &[]).await, json!(true));
    let weak = client.call("setup", &[json!("admin"), json!("abc")]).await;
    assert_eq!(weak["msg"], "passwordTooWeak");
    let made = client
        .call("setup", &[json!("admin"), json!("s3cret-pass")])
        .await;
    assert_eq!(made["ok"], true, "{made}");

    // Nothing works before login.
    let refused = client.call("add", &[http_monitor("api")]).await;
    assert_eq!(refused["msg"], "You are not logged in.");
    let wrong = client
        .call(
            "login",
            &[json!({"username": "admin", "password": "nope", "token": ""})],
        )
        .await;
    assert_eq!(wrong["msg"], "authIncorrectCreds");
    let login = client
        .call(
            "login",
            &[json!({"username": "admin", "password": "s3cret-pass", "token": ""})],
        )
        .await;
    assert_eq!(login["ok"], true, "{login}");
    assert!(login["token"].is_string());
    assert!(client.event_names().contains(&"monitorList".to_owned()));

    let added = client.call("add", &[http_monitor("api")]).await;
    assert_eq!(added["ok"], true, "{added}");
    let id = added["monitorID"].as_u64().expect("id");
    let got = client.call("getMonitor", &[json!(id)]).await;
    assert_eq!(got["monitor"]["description"], "fabrik:acme/api@staging");
    assert_eq!(got["monitor"]["active"], true);

    // Edit sends the whole monitor back, changed.
    let mut monitor = got["monitor"].clone();
    monitor["interval"] = json!(120);
    let edited = client.call("editMonitor", &[monitor]).await;
    assert_eq!(edited["ok"], true, "{edited}");
    assert_eq!(kuma.monitors()[&id]["interval"], 120);

    let paused = client.call("pauseMonitor", &[json!(id)]).await;
    assert_eq!(paused["msg"], "successPaused");
    assert_eq!(kuma.monitors()[&id]["active"], false);
    let resumed = client.call("resumeMonitor", &[json!(id)]).await;
    assert_eq!(resumed["msg"], "successResumed");
    let foreign = client.call("pauseMonitor", &[json!(id + 1000)]).await;
    assert_eq!(foreign["msg"], "You do not own this monitor.");

    let deleted = client
        .call("deleteMonitor", &[json!(id), json!(false)])
        .await;
    assert_eq!(deleted["msg"], "successDeleted");
    assert!(kuma.monitors().is_empty());
    assert_eq!(kuma.calls_of("add"), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_transport_refuses_as_engine_io_does_and_pings_idle_clients() {
    let kuma = UptimeKuma::with_user(Version::V2, "admin", "s3cret-pass");
    kuma.set_heartbeat(Duration::from_millis(200), Duration::from_millis(300));
    let base = serve(&kuma).await;
    let http = reqwest::Client::new();
    let status = |url: String| {
        let http = http.clone();
        async move { http.get(url).send().await.expect("get") }
    };
    let old = status(format!("{base}/socket.io/?EIO=3&transport=polling")).await;
    assert_eq!(old.status(), 400);
    assert_eq!(
        serde_json::from_str::<Value>(&old.text().await.expect("body")).expect("json"),
        json!({"code": 5, "message": "Unsupported protocol version"})
    );
    let unknown = status(format!(
        "{base}/socket.io/?EIO=4&transport=polling&sid=nope"
    ))
    .await;
    let unknown: Value = serde_json::from_str(&unknown.text().await.expect("body")).expect("json");
    assert_eq!(unknown["code"], 1);

    let mut client = Client::connect(&base).await;
    // An idle poll ends with a ping; an answered one keeps the session.
    let packets = client.poll().await;
    assert_eq!(packets, ["2"]);
    assert_eq!(client.post("3").await, 200);
    let login = client
        .call(
            "login",
            &[json!({"username": "admin", "password": "s3cret-pass", "token": ""})],
        )
        .await;
    assert_eq!(login["ok"], true);
    // A missed pong closes the session.
    assert_eq!(client.poll().await, ["2"]);
    tokio::time::sleep(Duration::from_millis(400)).await;
    let gone = status(client.url()).await;
    assert_eq!(gone.status(), 400);
    assert_eq!(kuma.sessions(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn version_1_23_answers_in_sentences_and_lists_after_the_login() {
    let kuma = UptimeKuma::with_user(Version::V1, "admin", "s3cret-pass");
    let base = serve(&kuma).await;
    let mut client = Client::connect(&base).await;
    assert_eq!(
        client.event_names(),
        ["info"],
        "1.23 sends no loginRequired"
    );
    let login = client
        .call(
            "login",
            &[json!({"username": "admin", "password": "s3cret-pass", "token": ""})],
        )
        .await;
    assert_eq!(login["ok"], true);
    let position = |prefix: &str| client.log.iter().position(|p| p.starts_with(prefix));
    assert!(
        position("43").expect("the acknowledgement")
            < position("42[\"monitorList\"").expect("the list"),
        "the list comes after the acknowledgement: {:?}",
        client.log
    );
    let mut monitor = http_monitor("api");
    let refused = client.call("add", &[monitor.clone()]).await;
    assert_eq!(
        refused["msg"],
        "SQLITE_ERROR: table monitor has no column named conditions"
    );
    monitor
        .as_object_mut()
        .expect("object")
        .remove("conditions");
    let added = client.call("add", &[monitor]).await;
    assert_eq!(added["msg"], "Added Successfully.", "{added}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_list_active_monitors_behind_basic_auth_or_an_api_key() {
    let kuma = UptimeKuma::with_user(Version::V2, "admin", "s3cret-pass");
    let base = serve(&kuma).await;
    let mut client = Client::connect(&base).await;
    client
        .call(
            "login",
            &[json!({"username": "admin", "password": "s3cret-pass", "token": ""})],
        )
        .await;
    let id = client.call("add", &[http_monitor("api")]).await["monitorID"]
        .as_u64()
        .expect("id");
    let second = client.call("add", &[http_monitor("web")]).await["monitorID"]
        .as_u64()
        .expect("id");
    client.call("pauseMonitor", &[json!(second)]).await;
    kuma.set_down(id, false);
    let http = reqwest::Client::new();
    let metrics = |user: &str, password: &str| {
        let request = http
            .get(format!("{base}/metrics"))
            .basic_auth(user, Some(password));
        async move { request.send().await.expect("metrics") }
    };
    assert_eq!(metrics("admin", "wrong").await.status(), 401);
    let text = metrics("admin", "s3cret-pass")
        .await
        .text()
        .await
        .expect("text");
    assert!(
        text.contains(&format!(
            "monitor_status{{monitor_id=\"{id}\",monitor_name=\"api\",monitor_type=\"http\",monitor_url=\"https://api.example.com/health\",monitor_hostname=\"null\",monitor_port=\"null\"}} 1"
        )),
        "{text}"
    );
    assert!(
        !text.contains("monitor_name=\"web\""),
        "a paused monitor is not listed: {text}"
    );
    // Once an API key exists, only keys work.
    let key = kuma.add_api_key();
    assert_eq!(metrics("admin", "s3cret-pass").await.status(), 401);
    assert_eq!(metrics("", &key).await.status(), 200);
}

/// One scenario, written only against the protocol, that the simulator and a real
/// Uptime Kuma 2.x (fresh database) must both pass: what the simulator claims of the
/// server is checked against the server itself (`the_real_server_answers_as_the_simulator`).
async fn scenario(base: &str) {
    let mut client = Client::connect(base).await;
    client.wait_for("loginRequired").await;
    assert_eq!(client.event_names(), ["info", "setup", "loginRequired"]);
    assert_eq!(client.call("needSetup", &[]).await, json!(true));
    let weak = client.call("setup", &[json!("admin"), json!("abc")]).await;
    assert_eq!(
        weak,
        json!({"ok": false, "msg": "passwordTooWeak", "msgi18n": true})
    );
    let made = client
        .call("setup", &[json!("admin"), json!("s3cret-pass-9")])
        .await;
    assert_eq!(
        made,
        json!({"ok": true, "msg": "successAdded", "msgi18n": true})
    );
    let refused = client.call("add", &[http_monitor("api")]).await;
    assert_eq!(
        refused,
        json!({"ok": false, "msg": "You are not logged in."})
    );
    let wrong = client
        .call(
            "login",
            &[json!({"username": "admin", "password": "nope", "token": ""})],
        )
        .await;
    assert_eq!(
        wrong,
        json!({"ok": false, "msg": "authIncorrectCreds", "msgi18n": true})
    );
    let login = client
        .call(
            "login",
            &[json!({"username": "admin", "password": "s3cret-pass-9", "token": ""})],
        )
        .await;
    assert_eq!(login["ok"], true, "{login}");

    let mut no_conditions = http_monitor("bare");
    no_conditions
        .as_object_mut()
        .expect("object")
        .remove("conditions");
    let refused = client.call("add", &[no_conditions]).await;
    assert_eq!(refused["ok"], false);
    assert!(
        refused["msg"]
            .as_str()
            .unwrap_or_default()
            .contains("monitor.conditions"),
        "{refused}"
    );
    let mut unknown = http_monitor("extra");
    unknown["tags"] = json!([]);
    let refused = client.call("add", &[unknown]).await;
    assert!(
        refused["msg"]
            .as_str()
            .unwrap_or_default()
            .contains("no column named tags"),
        "{refused}"
    );

    let added = client.call("add", &[http_monitor("api")]).await;
    assert_eq!(added["ok"], true, "{added}");
    assert_eq!(added["msg"], "successAdded");
    let id = added["monitorID"].as_u64().expect("id");
    let got = client.call("getMonitor", &[json!(id)]).await;
    let monitor = &got["monitor"];
    assert_eq!(monitor["description"], "fabrik:acme/api@staging");
    assert_eq!(monitor["active"], true);
    assert_eq!(monitor["interval"], 60);
    assert_eq!(monitor["accepted_statuscodes"], json!(["200-299"]));
    let mut changed = monitor.clone();
    changed["interval"] = json!(120);
    let edited = client.call("editMonitor", &[changed]).await;
    assert_eq!(edited["ok"], true, "{edited}");
    assert_eq!(edited["msg"], "Saved.");
    let got = client.call("getMonitor", &[json!(id)]).await;
    assert_eq!(got["monitor"]["interval"], 120);

    let paused = client.call("pauseMonitor", &[json!(id)]).await;
    assert_eq!(
        paused,
        json!({"ok": true, "msg": "successPaused", "msgi18n": true})
    );
    let got = client.call("getMonitor", &[json!(id)]).await;
    assert_eq!(got["monitor"]["active"], false);
    let resumed = client.call("resumeMonitor", &[json!(id)]).await;
    assert_eq!(
        resumed,
        json!({"ok": true, "msg": "successResumed", "msgi18n": true})
    );
    let foreign = client.call("pauseMonitor", &[json!(id + 1000)]).await;
    assert_eq!(
        foreign,
        json!({"ok": false, "msg": "You do not own this monitor."})
    );

    let http = reqwest::Client::new();
    let metrics = http
        .get(format!("{base}/metrics"))
        .basic_auth("admin", Some("s3cret-pass-9"))
        .send()
        .await
        .expect("metrics");
    assert_eq!(metrics.status(), 200);
    let denied = http
        .get(format!("{base}/metrics"))
        .basic_auth("admin", Some("wrong"))
        .send()
        .await
        .expect("metrics");
    assert_eq!(denied.status(), 401);

    let deleted = client
        .call("deleteMonitor", &[json!(id), json!(false)])
        .await;
    assert_eq!(
        deleted,
        json!({"ok": true, "msg": "successDeleted", "msgi18n": true})
    );
    let again = client
        .call("deleteMonitor", &[json!(id), json!(false)])
        .await;
    assert_eq!(
        again["ok"], true,
        "a missing id is deleted \"successfully\": {again}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_simulator_passes_the_scenario_a_real_server_passes() {
    let kuma = UptimeKuma::new(Version::V2);
    scenario(&serve(&kuma).await).await;
}

/// The same scenario against a real Uptime Kuma 2.x with a fresh database, started by
/// hand (`tests/sim/README.md`, "Uptime Kuma": how): `FABRIK_REAL_UPTIME_KUMA_URL=http://
/// 127.0.0.1:PORT cargo test -p fabrik-sim --test uptime_kuma -- --ignored`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a real Uptime Kuma: FABRIK_REAL_UPTIME_KUMA_URL"]
async fn the_real_server_answers_as_the_simulator() {
    let url = std::env::var("FABRIK_REAL_UPTIME_KUMA_URL")
        .expect("NOT RUN: set FABRIK_REAL_UPTIME_KUMA_URL to a fresh Uptime Kuma 2.x");
    scenario(url.trim_end_matches('/')).await;
}
