//! Uptime Kuma provider plugin: an uptime monitor for each app (the `monitor` role's
//! `monitor` kind, `docs/schemas/monitor.*.json`), through the Socket.IO API Uptime
//! Kuma's own web UI uses, over HTTP long-polling (`socket`): it has no REST API for
//! monitors. Works with 1.23 and 2.x; built as a WebAssembly component of the
//! `fabrik:provider` world, contract 0.4 (the password goes in the `login` message, put
//! there by the host).
//!
//! Settings: `base-url` (the server's root, `http://127.0.0.1:3001`), `username`, and the
//! secret `password` of a user without two-factor authentication. Monitors are the
//! user's; a pause is `pauseMonitor`, a resume `resumeMonitor` (`active` in the desired
//! document), everything else `editMonitor` of the whole monitor as read back.

mod monitor;
mod socket;

use fabrik_provider_sdk::config::Config;
use fabrik_provider_sdk::error::{invalid_config, permanent};
use fabrik_provider_sdk::http::Api;
use fabrik_provider_sdk::{
    ConfigKey, Instance, ProgressReport, ProgressState, Provider, ProviderError, ProviderInfo,
    Resource, ResourcePage, check_kind, owner,
};
use serde_json::{Value, json};

use monitor::{Desired, KIND};
use socket::{Socket, id_text, ok};

static STATE: Instance<Socket> = Instance::new();

fn with_socket<R>(
    f: impl FnOnce(&mut Socket) -> Result<R, ProviderError>,
) -> Result<R, ProviderError> {
    STATE.with(f)?
}

/// A monitor read back by id, if there is one.
fn get(socket: &mut Socket, id: &str) -> Result<Option<Value>, ProviderError> {
    let Ok(number) = id.parse::<u64>() else {
        return Ok(None);
    };
    let answer = socket.call("getMonitor", &[json!(number)])?;
    if answer["ok"].as_bool() != Some(true) {
        // A missing (or someone else's) monitor is a TypeError about null.
        let msg = answer["msg"].as_str().unwrap_or_default();
        if msg.contains("null") {
            return Ok(None);
        }
        ok(&answer, "read a monitor")?;
    }
    Ok(Some(answer["monitor"].clone()))
}

fn read_back(socket: &mut Socket, id: &str) -> Result<Resource, ProviderError> {
    match get(socket, id)? {
        Some(found) => monitor::resource(&found),
        None => Err(permanent(format!(
            "Uptime Kuma answered for monitor {id}, which it then does not find"
        ))),
    }
}

/// Pauses or resumes monitor `id` to match `active`.
fn set_active(socket: &mut Socket, id: u64, active: bool) -> Result<(), ProviderError> {
    let event = if active {
        "resumeMonitor"
    } else {
        "pauseMonitor"
    };
    let answer = socket.call(event, &[json!(id)])?;
    ok(
        &answer,
        if active {
            "resume a monitor"
        } else {
            "pause a monitor"
        },
    )
}

/// The provider (exported as the component's `provider` interface).
pub struct UptimeKuma;

impl Provider for UptimeKuma {
    fn describe() -> ProviderInfo {
        let key = |name: &str, description: &str, secret: bool, required: bool| ConfigKey {
            name: name.to_owned(),
            description: description.to_owned(),
            secret,
            required,
        };
        ProviderInfo {
            name: "uptime-kuma".to_owned(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            description: "Uptime Kuma monitors (1.23 and 2.x) through its Socket.IO API".to_owned(),
            kinds: vec![KIND.to_owned()],
            config: vec![
                key(
                    "base-url",
                    "the server's root, e.g. https://status.example.com or http://127.0.0.1:3001",
                    false,
                    true,
                ),
                key(
                    "username",
                    "an Uptime Kuma user without two-factor authentication",
                    false,
                    true,
                ),
                key("password", "that user's password", true, true),
            ],
            // Self-hosted: only the configured base URL is granted.
            default_origins: Vec::new(),
            // No request budget (its limiter counts logins: one per instance here).
            rate_limit: None,
        }
    }

    fn configure(config: Vec<(String, String)>) -> Result<(), ProviderError> {
        let config = Config::new(config);
        let base = config.required_base_url()?;
        let username = config.require("username")?.trim().to_owned();
        if username.is_empty() {
            return Err(invalid_config("`username` is empty"));
        }
        STATE.set(Socket::new(
            Api::new("Uptime Kuma", base.trim_end_matches('/')).timeout_ms(30_000),
            &username,
        ));
        Ok(())
    }

    fn read(kind: String, id: String) -> Result<Option<Resource>, ProviderError> {
        check_kind(&kind, &[KIND])?;
        with_socket(|socket| {
            get(socket, &id)?
                .as_ref()
                .map(monitor::resource)
                .transpose()
        })
    }

    fn create(
        kind: String,
        name: String,
        desired: String,
        owner: String,
    ) -> Result<Resource, ProviderError> {
        check_kind(&kind, &[KIND])?;
        let wanted = monitor::parse(&desired)?;
        with_socket(|socket| {
            // A create whose answer was lost may have made it: adopt ours.
            let list = socket.monitors()?;
            let ours = list.values().find(|m| {
                m["name"].as_str() == Some(name.as_str())
                    && m["description"].as_str() == Some(owner.as_str())
            });
            if let Some(found) = ours.cloned() {
                let id = id_text(&found["id"]);
                return update_monitor(socket, &id, &wanted);
            }
            let mut answer =
                socket.call("add", &[monitor::new_monitor(&name, &owner, &wanted, true)])?;
            // 1.23 has no `conditions` column.
            if answer["msg"]
                .as_str()
                .is_some_and(|m| m.contains("no column named conditions"))
            {
                answer = socket.call(
                    "add",
                    &[monitor::new_monitor(&name, &owner, &wanted, false)],
                )?;
            }
            ok(&answer, "add the monitor")?;
            let id = id_text(&answer["monitorID"]);
            read_back(socket, &id)
        })
    }

    fn update(kind: String, id: String, desired: String) -> Result<Resource, ProviderError> {
        check_kind(&kind, &[KIND])?;
        let wanted = monitor::parse(&desired)?;
        with_socket(|socket| update_monitor(socket, &id, &wanted))
    }

    fn delete(kind: String, id: String, owner: String, _purge: bool) -> Result<(), ProviderError> {
        check_kind(&kind, &[KIND])?;
        with_socket(|socket| {
            let Some(found) = get(socket, &id)? else {
                return Ok(());
            };
            owner::ensure_owned(
                found["description"].as_str(),
                &owner,
                &format!("monitor {id}"),
            )?;
            let number = id.parse::<u64>().unwrap_or_default();
            // The one-argument form: 1.23's handler takes `(id, callback)` and never
            // answers a second argument; 2.x reads it as `deleteChildren` omitted.
            let answer = socket.call("deleteMonitor", &[json!(number)])?;
            ok(&answer, "delete the monitor")
        })
    }

    fn progress(kind: String, _id: String) -> Result<ProgressReport, ProviderError> {
        check_kind(&kind, &[KIND])?;
        Ok(ProgressReport {
            state: ProgressState::Ready,
            message: None,
        })
    }

    fn lookup(
        kind: String,
        name: String,
        owner: String,
        _desired: Option<String>,
    ) -> Result<Option<Resource>, ProviderError> {
        check_kind(&kind, &[KIND])?;
        with_socket(|socket| {
            let list = socket.monitors()?;
            let named: Vec<&Value> = list
                .values()
                .filter(|m| m["name"].as_str() == Some(name.as_str()))
                .collect();
            owner::ours_first(&named, &owner, |m| m["description"].as_str())
                .map(|m| monitor::resource(m))
                .transpose()
        })
    }

    fn list(
        kind: String,
        owner_prefix: String,
        _cursor: Option<String>,
    ) -> Result<ResourcePage, ProviderError> {
        check_kind(&kind, &[KIND])?;
        with_socket(|socket| {
            let list = socket.monitors()?;
            let resources = list
                .values()
                .filter(|m| owner::has_prefix(m["description"].as_str(), &owner_prefix))
                .map(monitor::resource)
                .collect::<Result<_, _>>()?;
            Ok(ResourcePage {
                resources,
                next: None,
            })
        })
    }
}

/// `editMonitor` of the whole monitor as read back, with what the app wants; then a
/// pause or a resume if `active` changes.
fn update_monitor(
    socket: &mut Socket,
    id: &str,
    wanted: &Desired,
) -> Result<Resource, ProviderError> {
    let Some(Value::Object(mut current)) = get(socket, id)? else {
        return Err(fabrik_provider_sdk::error::not_found(format!(
            "Uptime Kuma has no monitor {id}"
        )));
    };
    let was_active = current
        .get("active")
        .and_then(Value::as_bool)
        .unwrap_or(true);
    let name = current
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let owner = current
        .get("description")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let number = id.parse::<u64>().unwrap_or_default();
    // Paused before the edit: `editMonitor` restarts an active monitor, which checks at
    // once (upstream `server/server.js` `editMonitor`), and a pause is asked for while
    // the app deploys. Resumed after it, for the same reason.
    if was_active && !wanted.active {
        set_active(socket, number, false)?;
    }
    monitor::apply(&mut current, &name, &owner, wanted);
    let answer = socket.call("editMonitor", &[Value::Object(current)])?;
    ok(&answer, "change the monitor")?;
    if !was_active && wanted.active {
        set_active(socket, number, true)?;
    }
    read_back(socket, id)
}

// Only the component exports the contract: natively, the export names (which contain `:`)
// cannot be linked into a shared library, and native builds exist for unit tests.
#[cfg(target_arch = "wasm32")]
fabrik_provider_sdk::export_provider!(UptimeKuma);

/// The provider, natively, against the Uptime Kuma simulator over real HTTP: the fake
/// host sends each request as the real one would, the password put at its placeholder.
#[cfg(test)]
mod tests {
    use super::*;
    use fabrik_provider_sdk::bindings::fabrik::provider::host::{
        AuthScheme, HttpError, HttpRequest, HttpResponse, Method,
    };
    use fabrik_provider_sdk::testing::FakeHost;
    use fabrik_sim::uptime_kuma::{UptimeKuma as Simulator, Version};

    const PASSWORD: &str = "s3cret-pass-9";

    /// A simulator on its own runtime, and a fake host that reaches it.
    fn serve(version: Version) -> (Simulator, tokio::runtime::Runtime, String, FakeHost) {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let kuma = Simulator::with_user(version, "fabrik", PASSWORD);
        let router = kuma.router();
        let base = runtime.block_on(async {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind");
            let addr = listener.local_addr().expect("addr");
            tokio::spawn(async move { axum::serve(listener, router).await });
            format!("http://{addr}")
        });
        let host = host_for(&runtime, PASSWORD);
        (kuma, runtime, base, host)
    }

    /// A fake host that sends each request over real HTTP, `password` put at its
    /// placeholder as the real host does.
    fn host_for(runtime: &tokio::runtime::Runtime, password: &str) -> FakeHost {
        let password = password.to_owned();
        let handle = runtime.handle().clone();
        let http = reqwest::Client::new();
        FakeHost::serve(move |request: &HttpRequest| {
            let mut body = request.body.clone().unwrap_or_default();
            if let Some(credential) = &request.credential {
                assert_eq!(credential.key, "password");
                let AuthScheme::Body(placeholder) = &credential.scheme else {
                    panic!("the password goes in the body");
                };
                let text = String::from_utf8(body).expect("utf-8");
                assert!(text.contains(placeholder.as_str()), "{text}");
                // As the host does: at least 8 characters, JSON-escaped.
                assert!(placeholder.len() >= 8, "{placeholder}");
                let escaped = serde_json::to_string(&password).expect("json");
                body = text
                    .replace(placeholder.as_str(), &escaped[1..escaped.len() - 1])
                    .into_bytes();
            }
            let method = match request.method {
                Method::Get => reqwest::Method::GET,
                Method::Post => reqwest::Method::POST,
                _ => panic!("only GET and POST"),
            };
            let mut builder = http.request(method, &request.url).body(body);
            for (name, value) in &request.headers {
                builder = builder.header(name, value);
            }
            handle.block_on(async move {
                let response = builder
                    .send()
                    .await
                    .map_err(|e| HttpError::Connect(e.to_string()))?;
                let status = response.status().as_u16();
                let body = response
                    .bytes()
                    .await
                    .map_err(|e| HttpError::Connect(e.to_string()))?;
                Ok::<_, HttpError>(HttpResponse {
                    status,
                    headers: vec![],
                    body: body.to_vec(),
                })
            })
        })
    }

    fn configure(base: &str) {
        UptimeKuma::configure(vec![
            ("base-url".to_owned(), base.to_owned()),
            ("username".to_owned(), "fabrik".to_owned()),
        ])
        .expect("configured");
    }

    fn wanted(interval: u32, active: bool) -> String {
        json!({"url": "https://api.example.com/health", "interval": interval, "retries": 1, "expect_status": 200, "active": active}).to_string()
    }

    fn lifecycle(version: Version) {
        let (kuma, _runtime, base, _host) = serve(version);
        configure(&base);
        let owner = "fabrik:acme/api@staging".to_owned();
        let name = "api@staging".to_owned();
        assert!(
            UptimeKuma::lookup(KIND.into(), name.clone(), owner.clone(), None)
                .expect("lookup")
                .is_none()
        );
        let created =
            UptimeKuma::create(KIND.into(), name.clone(), wanted(60, true), owner.clone())
                .expect("created");
        assert_eq!(created.owner.as_deref(), Some(owner.as_str()));
        let live: Value = serde_json::from_str(&created.live).expect("live");
        assert_eq!(live["interval"], 60);
        assert_eq!(live["expect_status"], 200);
        assert_eq!(live["active"], true);
        let id = created.id.clone();
        let found = UptimeKuma::lookup(KIND.into(), name.clone(), owner.clone(), None)
            .expect("lookup")
            .expect("found");
        assert_eq!(found.id, id);

        // Paused and changed in one update; resumed by the next.
        let paused =
            UptimeKuma::update(KIND.into(), id.clone(), wanted(120, false)).expect("update");
        let live: Value = serde_json::from_str(&paused.live).expect("live");
        assert_eq!(
            (live["interval"].clone(), live["active"].clone()),
            (json!(120), json!(false))
        );
        assert_eq!(
            kuma.monitors()[&id.parse::<u64>().expect("id")]["active"],
            false
        );
        let resumed =
            UptimeKuma::update(KIND.into(), id.clone(), wanted(120, true)).expect("update");
        assert_eq!(
            serde_json::from_str::<Value>(&resumed.live).expect("live")["active"],
            true
        );

        // Listed under the project's prefix; another owner's delete is refused.
        let page = UptimeKuma::list(KIND.into(), "fabrik:acme/".into(), None).expect("list");
        assert_eq!(page.resources.len(), 1);
        assert!(
            UptimeKuma::delete(KIND.into(), id.clone(), "fabrik:other/api".into(), false).is_err()
        );
        UptimeKuma::delete(KIND.into(), id.clone(), owner.clone(), false).expect("deleted");
        assert!(
            UptimeKuma::read(KIND.into(), id.clone())
                .expect("read")
                .is_none()
        );
        // One login for the whole instance.
        assert_eq!(kuma.calls_of("login"), 1);
    }

    #[test]
    fn a_monitor_lives_and_dies_on_uptime_kuma_2() {
        lifecycle(Version::V2);
    }

    #[test]
    fn a_monitor_lives_and_dies_on_uptime_kuma_1_23() {
        lifecycle(Version::V1);
    }

    /// The same life against a real Uptime Kuma (`tests/sim/README.md`, "Uptime Kuma":
    /// how to run one): `FABRIK_REAL_UPTIME_KUMA_URL`, `_USERNAME`, `_PASSWORD`.
    #[test]
    #[ignore = "needs a real Uptime Kuma: FABRIK_REAL_UPTIME_KUMA_URL, _USERNAME, _PASSWORD"]
    fn a_monitor_lives_and_dies_on_a_real_uptime_kuma() {
        let var = |name: &str| {
            std::env::var(format!("FABRIK_REAL_UPTIME_KUMA_{name}"))
                .unwrap_or_else(|_| panic!("NOT RUN: set FABRIK_REAL_UPTIME_KUMA_{name}"))
        };
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let _host = host_for(&runtime, &var("PASSWORD"));
        UptimeKuma::configure(vec![
            ("base-url".to_owned(), var("URL")),
            ("username".to_owned(), var("USERNAME")),
        ])
        .expect("configured");
        let owner = "fabrik:real-check/api".to_owned();
        let created =
            UptimeKuma::create(KIND.into(), "api".into(), wanted(60, true), owner.clone())
                .expect("created");
        let id = created.id.clone();
        let paused =
            UptimeKuma::update(KIND.into(), id.clone(), wanted(120, false)).expect("update");
        let live: Value = serde_json::from_str(&paused.live).expect("live");
        assert_eq!(
            (live["interval"].clone(), live["active"].clone()),
            (json!(120), json!(false))
        );
        let found = UptimeKuma::lookup(KIND.into(), "api".into(), owner.clone(), None)
            .expect("lookup")
            .expect("found");
        assert_eq!(found.id, id);
        assert_eq!(
            UptimeKuma::list(KIND.into(), "fabrik:real-check/".into(), None)
                .expect("list")
                .resources
                .len(),
            1
        );
        UptimeKuma::delete(KIND.into(), id.clone(), owner, false).expect("deleted");
        assert!(UptimeKuma::read(KIND.into(), id).expect("read").is_none());
    }

    /// A session the server closed between two calls (the provider does not poll while
    /// the host waits for a deployment) is opened again, logged in again.
    #[test]
    fn a_session_closed_between_calls_is_opened_again() {
        let (kuma, _runtime, base, _host) = serve(Version::V2);
        kuma.set_heartbeat(
            std::time::Duration::from_millis(100),
            std::time::Duration::from_millis(100),
        );
        configure(&base);
        let owner = "fabrik:acme/api".to_owned();
        let created = UptimeKuma::create(KIND.into(), "api".into(), wanted(60, true), owner)
            .expect("created");
        std::thread::sleep(std::time::Duration::from_millis(400));
        let read = UptimeKuma::read(KIND.into(), created.id.clone()).expect("read");
        assert!(read.is_some());
        assert_eq!(kuma.calls_of("login"), 2, "logged in again");
        assert_eq!(kuma.monitors().len(), 1, "nothing made twice");
    }

    #[test]
    fn a_wrong_password_is_unauthorized_and_names_the_variables() {
        let (_kuma, _runtime, base, _host) = serve(Version::V2);
        UptimeKuma::configure(vec![
            ("base-url".to_owned(), base),
            ("username".to_owned(), "someone-else".to_owned()),
        ])
        .expect("configured");
        let refused =
            UptimeKuma::lookup(KIND.into(), "api".into(), "o".into(), None).expect_err("refused");
        assert!(
            matches!(&refused, ProviderError::Unauthorized(m) if m.contains("UPTIME_KUMA_PASSWORD")),
            "{refused:?}"
        );
    }
}
