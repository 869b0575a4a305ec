//! The sandbox, through the real host and a misbehaving third-party component: each test
//! checks the error the host reports and that the host serves the next call.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::IntoResponse;
use fabrik_engine::plugins::cache::ComponentCache;
use fabrik_engine::plugins::engine::{Compiler, PluginEngine};
use fabrik_engine::plugins::http::{Grants, HttpGateway};
use fabrik_engine::plugins::instance::{LoadError, LoadedComponent, ProviderInstance};
use fabrik_engine::plugins::sandbox::SandboxLimits;
use fabrik_engine::plugins::types::ProviderError;
use fabrik_engine::plugins::{sha256_hex, wit::WitError};
use secrecy::SecretString;

use crate::support::{cache_dir, test_plugin};

const TOKEN: &str = "tok-3f9a1c0e-never-leaves-the-host";

/// A request as a server saw it: its path and its Authorization header.
type Seen = (String, Option<String>);

/// A loopback HTTP server that records each request.
#[derive(Clone, Default)]
struct Recorder {
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Recorder {
    fn requests(&self) -> Vec<Seen> {
        self.seen.lock().expect("lock").clone()
    }
}

async fn record(
    State(recorder): State<(Recorder, Option<String>)>,
    uri: Uri,
    headers: HeaderMap,
) -> impl IntoResponse {
    let (recorder, redirect_to) = recorder;
    let auth = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    recorder
        .seen
        .lock()
        .expect("lock")
        .push((uri.path().to_owned(), auth));
    match redirect_to {
        Some(location) if uri.path() == "/redirect" => {
            (StatusCode::FOUND, [("location", location)], String::new()).into_response()
        }
        _ => (StatusCode::OK, "{\"ok\":true}").into_response(),
    }
}

/// Starts a recorder; requests to `/redirect` are sent to `redirect_to`.
async fn serve(redirect_to: Option<String>) -> (String, Recorder) {
    let recorder = Recorder::default();
    let app = Router::new()
        .fallback(record)
        .with_state((recorder.clone(), redirect_to));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, recorder)
}

fn limits() -> SandboxLimits {
    SandboxLimits {
        memory: 64 << 20,
        ..SandboxLimits::default()
    }
    .with_call_timeout(Duration::from_secs(1))
}

async fn evil(engine: &PluginEngine, granted: &[&str]) -> ProviderInstance {
    let wasm = std::fs::read(test_plugin("evil")).expect("evil.wasm");
    let cache = ComponentCache::at(&cache_dir());
    let component = LoadedComponent::load_bytes(engine, &cache, "evil", &wasm, &sha256_hex(&wasm))
        .expect("loads");
    // Evil is built from the frozen 0.1.0 contract: every sandbox test runs a 0.1 component.
    assert_eq!(component.wit, fabrik_engine::plugins::wit::V0_1);
    let mut grants = Grants::default();
    for origin in granted {
        grants.allow_origin(origin).expect("origin");
    }
    grants.add_credential("api-token", SecretString::from(TOKEN.to_owned()));
    let gateway = Arc::new(HttpGateway::new("evil", grants).expect("gateway"));
    let mut instance = component
        .instantiate(gateway, limits())
        .await
        .expect("instantiates");
    instance.configure(vec![]).await.expect("configures");
    instance
}

async fn still_serves(instance: &mut ProviderInstance) {
    let info = instance
        .describe()
        .await
        .expect("the host serves the next call");
    assert_eq!(info.name, "evil");
}

fn permanent(result: Result<impl std::fmt::Debug, ProviderError>) -> String {
    match result {
        Err(ProviderError::Permanent(message)) => message,
        other => panic!("expected a permanent provider error, got {other:?}"),
    }
}

#[tokio::test]
async fn a_guest_that_loops_forever_is_stopped_by_the_deadline() {
    let engine = PluginEngine::new(Compiler::from_env()).expect("engine");
    let mut instance = evil(&engine, &[]).await;
    let started = Instant::now();
    let message = permanent(
        instance
            .create("spin", "x", &serde_json::json!({}), "o")
            .await,
    );
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "took {:?}",
        started.elapsed()
    );
    assert_eq!(
        message,
        "provider `evil` exceeded its time limit of 1 s in `create` and was stopped"
    );
    still_serves(&mut instance).await;
}

#[tokio::test]
async fn a_guest_that_allocates_a_gibibyte_is_stopped_by_the_memory_cap() {
    let engine = PluginEngine::new(Compiler::from_env()).expect("engine");
    let mut instance = evil(&engine, &[]).await;
    let message = permanent(
        instance
            .create("hog", "x", &serde_json::json!({}), "o")
            .await,
    );
    assert!(
        message.starts_with("provider `evil` exceeded its memory limit of 64 MiB in `create`"),
        "{message}"
    );
    still_serves(&mut instance).await;
}

#[tokio::test]
async fn a_guest_cannot_read_files_env_or_open_sockets() {
    // The test process has an environment (PATH, CARGO_*); the guest must see none of it.
    let engine = PluginEngine::new(Compiler::from_env()).expect("engine");
    let mut instance = evil(&engine, &[]).await;
    // A listener this test owns: a socket the guest could open would be seen here, where
    // a port nobody listens on refuses a sandbox that lets sockets through too.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("listens");
    listener.set_nonblocking(true).expect("nonblocking");
    let address = listener.local_addr().expect("address").to_string();
    let found = instance
        .create(
            "snoop",
            "x",
            &serde_json::json!({ "connect": address }),
            "o",
        )
        .await
        .expect("snooping returns what it found");
    assert!(
        listener
            .accept()
            .is_err_and(|e| e.kind() == std::io::ErrorKind::WouldBlock),
        "the guest reached a socket outside the sandbox"
    );
    let outputs = &found.outputs;
    assert!(
        outputs["file"]
            .as_str()
            .is_some_and(|s| s.starts_with("error:")),
        "{outputs}"
    );
    assert!(
        outputs["dir"]
            .as_str()
            .is_some_and(|s| s.starts_with("error:")),
        "{outputs}"
    );
    assert_eq!(
        outputs["env"], "",
        "the guest sees no environment: {outputs}"
    );
    assert_eq!(outputs["args"], "", "{outputs}");
    assert!(
        outputs["tcp"]
            .as_str()
            .is_some_and(|s| s.starts_with("error:")),
        "{outputs}"
    );
    assert!(!outputs.to_string().contains(TOKEN));
    still_serves(&mut instance).await;
}

#[tokio::test]
async fn a_guest_cannot_send_to_an_origin_it_was_not_granted() {
    let (granted, granted_log) = serve(None).await;
    let (elsewhere, elsewhere_log) = serve(None).await;
    let engine = PluginEngine::new(Compiler::from_env()).expect("engine");
    let mut instance = evil(&engine, &[&granted]).await;
    let found = instance
        .create(
            "exfiltrate",
            "x",
            &serde_json::json!({ "url": format!("{elsewhere}/steal") }),
            "o",
        )
        .await
        .expect("the guest gets an answer");
    let outcome = found.outputs["outcome"]
        .as_str()
        .expect("outcome")
        .to_owned();
    assert!(outcome.starts_with("error HttpError::Denied("), "{outcome}");
    assert!(
        outcome.contains("is not granted to provider `evil`"),
        "{outcome}"
    );
    assert!(
        elsewhere_log.requests().is_empty(),
        "nothing reached the other origin"
    );
    assert!(!outcome.contains(TOKEN));

    // To its granted origin the host attaches the credential, which the guest never sees.
    let found = instance
        .create(
            "exfiltrate",
            "x",
            &serde_json::json!({ "url": format!("{granted}/items/1") }),
            "o",
        )
        .await
        .expect("answer");
    let outcome = found.outputs["outcome"].as_str().expect("outcome");
    assert!(outcome.starts_with("status 200"), "{outcome}");
    assert!(!outcome.contains(TOKEN));
    assert_eq!(
        granted_log.requests(),
        [("/items/1".to_owned(), Some(format!("Bearer {TOKEN}")))]
    );
    still_serves(&mut instance).await;
}

#[tokio::test]
async fn a_redirect_to_another_origin_is_not_followed() {
    let (elsewhere, elsewhere_log) = serve(None).await;
    let (granted, granted_log) = serve(Some(format!("{elsewhere}/steal"))).await;
    let engine = PluginEngine::new(Compiler::from_env()).expect("engine");
    let mut instance = evil(&engine, &[&granted]).await;
    let found = instance
        .create(
            "exfiltrate",
            "x",
            &serde_json::json!({ "url": format!("{granted}/redirect") }),
            "o",
        )
        .await
        .expect("answer");
    let outcome = found.outputs["outcome"].as_str().expect("outcome");
    assert!(
        outcome.starts_with("status 302"),
        "the 3xx is returned as is: {outcome}"
    );
    assert_eq!(granted_log.requests().len(), 1);
    assert!(
        elsewhere_log.requests().is_empty(),
        "the token did not follow the redirect"
    );
}

#[tokio::test]
async fn a_panicking_guest_is_a_provider_error_with_its_message() {
    let engine = PluginEngine::new(Compiler::from_env()).expect("engine");
    let mut instance = evil(&engine, &[]).await;
    let message = permanent(
        instance
            .create("panic", "x", &serde_json::json!({}), "o")
            .await,
    );
    assert!(
        message.starts_with("provider `evil` crashed in `create`"),
        "{message}"
    );
    assert!(
        message.contains("boom: the evil provider panicked on purpose"),
        "{message}"
    );
    still_serves(&mut instance).await;
}

#[tokio::test]
async fn a_component_built_for_another_contract_version_is_refused() {
    let engine = PluginEngine::new(Compiler::from_env()).expect("engine");
    let wasm = std::fs::read(test_plugin("future")).expect("future.wasm");
    let cache = ComponentCache::at(&cache_dir());
    let error = LoadedComponent::load_bytes(&engine, &cache, "future", &wasm, &sha256_hex(&wasm))
        .err()
        .expect("refused");
    match &error {
        LoadError::Wit {
            source: WitError::Unsupported { found, supported },
            ..
        } => {
            assert_eq!(found, "0.9.0");
            assert_eq!(supported, "0.4.x, 0.3.x, 0.2.x, 0.1.x");
        }
        other => panic!("unexpected error: {other}"),
    }
    assert_eq!(
        error.to_string(),
        "provider `future` cannot be used: it targets contract `fabrik:provider@0.9.0`, which this fabrik does not support (it supports 0.4.x, 0.3.x, 0.2.x, 0.1.x)"
    );
}

#[test]
fn a_corrupt_cache_entry_is_detected_and_rebuilt() {
    use fabrik_engine::plugins::cache::CacheOutcome;
    let dir = tempfile::tempdir().expect("tempdir");
    let cache = ComponentCache::at(dir.path());
    let engine = PluginEngine::new(Compiler::from_env()).expect("engine");
    let wasm = std::fs::read(test_plugin("echo")).expect("echo.wasm");
    let sha = sha256_hex(&wasm);
    let load = || {
        LoadedComponent::load_bytes(&engine, &cache, "echo", &wasm, &sha)
            .map(|c| c.cache)
            .expect("loads")
    };
    assert_eq!(load(), CacheOutcome::Miss);
    assert_eq!(load(), CacheOutcome::Hit);
    let artifact = std::fs::read_dir(dir.path())
        .expect("read")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.extension().is_some_and(|x| x == "cwasm"))
        .expect("artifact");
    // Truncated, as after a crash mid-write.
    let bytes = std::fs::read(&artifact).expect("read");
    std::fs::write(&artifact, &bytes[..bytes.len() / 2]).expect("truncate");
    assert!(matches!(load(), CacheOutcome::Rebuilt(reason) if reason.contains("checksum")));
    assert_eq!(load(), CacheOutcome::Hit);
    // A foreign file with a matching checksum (not a wasmtime artifact at all).
    std::fs::write(&artifact, b"not an artifact").expect("write");
    let checksum = artifact.with_extension("blake3");
    std::fs::write(
        &checksum,
        blake3::hash(b"not an artifact").to_hex().as_bytes(),
    )
    .expect("write");
    assert!(matches!(load(), CacheOutcome::Rebuilt(reason) if reason.contains("wasmtime refused")));
    assert_eq!(load(), CacheOutcome::Hit);
}

#[test]
fn a_cache_directory_others_can_write_is_not_used() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).expect("chmod");
    let cache = ComponentCache::at(dir.path());
    assert!(cache.dir().is_none());
    let engine = PluginEngine::new(Compiler::from_env()).expect("engine");
    let wasm = std::fs::read(test_plugin("echo")).expect("echo.wasm");
    let loaded = LoadedComponent::load_bytes(&engine, &cache, "echo", &wasm, &sha256_hex(&wasm))
        .expect("loads");
    assert!(
        matches!(loaded.cache, fabrik_engine::plugins::cache::CacheOutcome::Bypassed(reason) if reason.contains("writable by other users"))
    );
    assert_eq!(std::fs::read_dir(dir.path()).expect("read").count(), 0);
}

/// Collects what tracing writes, for the redaction test.
#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("lock").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn what_a_guest_logs_is_redacted() {
    const APP_SECRET: &str = "app-secret-5f4e3d2c1b0a";
    let capture = Capture::default();
    let writer = capture.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_max_level(tracing::Level::TRACE)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let engine = PluginEngine::new(Compiler::from_env()).expect("engine");
    let wasm = std::fs::read(test_plugin("evil")).expect("evil.wasm");
    let component = LoadedComponent::load_bytes(
        &engine,
        &ComponentCache::at(&cache_dir()),
        "evil",
        &wasm,
        &sha256_hex(&wasm),
    )
    .expect("loads");
    let mut grants = Grants::default();
    grants.add_credential("api-token", SecretString::from(TOKEN.to_owned()));
    grants.hide(&SecretString::from(APP_SECRET.to_owned()));
    let gateway = Arc::new(HttpGateway::new("evil", grants).expect("gateway"));
    let mut instance = component
        .instantiate(gateway, limits())
        .await
        .expect("instance");
    let desired = serde_json::json!({ "env": { "API_KEY": APP_SECRET }, "token": TOKEN });
    instance
        .create("log", "x", &desired, "o")
        .await
        .expect("logged");

    let logs = String::from_utf8(capture.0.lock().expect("lock").clone()).expect("utf-8");
    for channel in ["desired:", "stdout:", "stderr:"] {
        assert!(logs.contains(channel), "{channel} missing from:\n{logs}");
    }
    assert!(
        !logs.contains(APP_SECRET),
        "an app secret reached the log:\n{logs}"
    );
    assert!(
        !logs.contains(TOKEN),
        "a credential reached the log:\n{logs}"
    );
    assert!(logs.contains("[redacted]"));
}

/// Issue 16, points 5 and 6: what a provider returns is redacted (an endpoint that
/// echoes the credential the host attached cannot get it into outputs) and its errors
/// are one bounded line with control characters shown, not obeyed.
#[tokio::test]
async fn what_a_provider_returns_is_redacted_and_kept_to_one_line() {
    async fn echo(headers: HeaderMap) -> String {
        format!(
            "you sent {}",
            headers
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("nothing")
        )
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, Router::new().fallback(echo)).await });
    let engine = PluginEngine::new(Compiler::from_env()).expect("engine");
    let mut instance = evil(&engine, &[&url]).await;
    let created = instance
        .create(
            "exfiltrate",
            "x",
            &serde_json::json!({ "url": format!("{url}/echo") }),
            "o",
        )
        .await
        .expect("created");
    let outputs = created.outputs.to_string();
    assert!(
        outputs.contains("you sent Bearer "),
        "the echo came back: {outputs}"
    );
    assert!(!outputs.contains(TOKEN), "{outputs}");

    let forged = "x\n\u{1b}[2K\rtest-api: COMPLETE";
    let message = permanent(
        instance
            .create(forged, "x", &serde_json::json!({}), "o")
            .await,
    );
    assert!(
        !message.contains(['\n', '\r', '\u{1b}']),
        "control characters reach the terminal: {message:?}"
    );
    assert!(
        message.contains("x\\n\\x1b[2K\\rtest-api: COMPLETE"),
        "{message}"
    );
    still_serves(&mut instance).await;
}

/// Issue 16, point 12: a credential never goes in a header the host sets (`Host` would
/// hand it to whatever logs request lines); the request is refused before it is sent.
#[tokio::test]
async fn a_credential_is_never_put_in_a_reserved_header() {
    use fabrik_engine::plugins::http::{AuthScheme, Credential, HttpError, HttpRequest, Method};
    let (url, recorder) = serve(None).await;
    let mut grants = Grants::default();
    grants.allow_origin(&url).expect("origin");
    grants.add_credential("api-token", SecretString::from(TOKEN.to_owned()));
    let gateway = HttpGateway::new("evil", grants).expect("gateway");
    for header in [
        "Host",
        "content-length",
        "Transfer-Encoding",
        "bad header",
        // Hop-by-hop: a proxy on the way would take it (issue 28, point 7).
        "Proxy-Authorization",
        "upgrade",
    ] {
        let refused = gateway
            .send(
                HttpRequest {
                    method: Method::Get,
                    url: format!("{url}/x"),
                    headers: vec![],
                    body: None,
                    credential: Some(Credential {
                        key: "api-token".to_owned(),
                        scheme: AuthScheme::Header(header.to_owned()),
                    }),
                    timeout: None,
                },
                Default::default(),
            )
            .await
            .expect_err("refused");
        assert!(
            matches!(&refused, HttpError::InvalidRequest(m) if m.contains("a credential cannot go in header")),
            "{header}: {refused:?}"
        );
    }
    assert!(recorder.requests().is_empty(), "nothing was sent");
}
