//! Providers from OCI registries: a real registry (Debian's `docker-registry`) on
//! loopback, the component pushed by the test through the distribution API; and an
//! in-process registry for the auth handshake and faults.

use std::path::Path;

use fabrik_sim::registry::{RealRegistry, push_component, with_custom_section};

use crate::deploy::World;
use crate::support::{artifacts, test_plugin};

fn text(output: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// The real registry; where it cannot start (not installed), the test fails saying so:
/// it never passes without running.
fn real_registry() -> RealRegistry {
    RealRegistry::start().unwrap_or_else(|why| {
        panic!("NOT RUN: this test needs the real registry and {why}: install Debian's `docker-registry` (README, \"Tests\")")
    })
}

async fn fabrik_in(world: &World, cache: &Path, args: &[&str]) -> std::process::Output {
    let mut cmd = world.fabrik();
    cmd.env("FABRIK_CACHE_DIR", cache).args(args);
    tokio::task::spawn_blocking(move || cmd.output().expect("fabrik runs"))
        .await
        .expect("joined")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provider_from_a_registry_is_locked_fetched_by_digest_cached_and_loaded_offline() {
    let registry = real_registry();
    let base = format!("http://{}", registry.host());
    let wasm = std::fs::read(test_plugin("simple-dns")).expect("simple-dns");
    let first = push_component(&base, "acme/simple-dns", "0.3.1", &wasm)
        .await
        .expect("pushed");

    let world = World::start().await;
    let dir = world.dir.path();
    std::fs::write(
        dir.join("fabrik.toml"),
        format!(
            "[project]\nname = \"acme\"\n\n[providers.dns]\nsource = \"oci://{}/acme/simple-dns\"\nversion = \"^0.3\"\n\
             config = {{ zone = \"example.com\" }}\nconfig-env = {{ base-url = \"CLOUDFLARE_API_URL\" }}\n\
             secrets = {{ api-token = \"CLOUDFLARE_API_TOKEN\" }}\n",
            registry.host()
        ),
    )
    .expect("fabrik.toml");
    // The image pinned by digest: an `--offline` apply cannot resolve a tag (and must
    // not deploy one unresolved).
    let spec = world.spec("app.yaml", |t| {
        t.replace(
            "ghcr.io/acme/test-api:1.4",
            &format!("ghcr.io/acme/test-api@sha256:{}", "4".repeat(64)),
        )
    });
    let spec = spec.to_str().expect("utf-8");
    let cache = tempfile::tempdir().expect("cache");
    let cache = cache.path();

    // Locked: the newest tag matching ^0.3, its manifest digest and the component's sha256.
    let locked = fabrik_in(&world, cache, &["providers", "lock"]).await;
    assert_eq!(locked.status.code(), Some(0), "{}", text(&locked));
    let lock = std::fs::read_to_string(dir.join("fabrik.lock")).expect("fabrik.lock");
    assert!(
        lock.contains(&format!(
            "source = \"oci://{}/acme/simple-dns:0.3.1\"",
            registry.host()
        )),
        "{lock}"
    );
    assert!(lock.contains(&format!("manifest = \"{first}\"")), "{lock}");
    assert!(
        lock.contains(&fabrik_engine::plugins::sha256_hex(&wasm)),
        "{lock}"
    );

    let applied = fabrik_in(&world, cache, &["apply", spec]).await;
    assert_eq!(applied.status.code(), Some(0), "{}", text(&applied));
    assert_eq!(world.sandbox.cloudflare.records().len(), 1);

    // The tag moves under the pin: reported, not followed.
    let moved = push_component(
        &base,
        "acme/simple-dns",
        "0.3.1",
        &with_custom_section(&wasm, "moved"),
    )
    .await
    .expect("pushed");
    let relocked = fabrik_in(&world, cache, &["providers", "lock"]).await;
    assert_eq!(relocked.status.code(), Some(0), "{}", text(&relocked));
    assert!(
        text(&relocked).contains(&format!(
            "now points at {moved}, not the pinned {first}; the pin is kept"
        )),
        "{}",
        text(&relocked)
    );
    let lock = std::fs::read_to_string(dir.join("fabrik.lock")).expect("fabrik.lock");
    assert!(lock.contains(&format!("manifest = \"{first}\"")), "{lock}");

    // Offline with nothing cached: a clear refusal naming the source.
    let cold = tempfile::tempdir().expect("cold cache");
    let refused = fabrik_in(
        &world,
        cold.path(),
        &["--offline", "apply", "--dry-run", spec],
    )
    .await;
    assert_ne!(refused.status.code(), Some(0));
    assert!(
        text(&refused).contains("not in the local cache and `--offline` forbids fetching it"),
        "{}",
        text(&refused)
    );
    assert!(
        text(&refused).contains("acme/simple-dns"),
        "{}",
        text(&refused)
    );

    // A newer version: `providers update` moves the pin and says from what to what.
    let newer_wasm = with_custom_section(&wasm, "0.3.2");
    let newer = push_component(&base, "acme/simple-dns", "0.3.2", &newer_wasm)
        .await
        .expect("pushed");
    push_component(
        &base,
        "acme/simple-dns",
        "0.4.0",
        &with_custom_section(&wasm, "0.4.0"),
    )
    .await
    .expect("pushed");
    let updated = fabrik_in(&world, cache, &["providers", "update", "dns"]).await;
    assert_eq!(updated.status.code(), Some(0), "{}", text(&updated));
    let said = text(&updated);
    assert!(said.contains("acme/simple-dns:0.3.1 → oci://"), "{said}");
    assert!(
        said.contains(&format!("manifest {first} → {newer}")),
        "{said}"
    );
    let lock = std::fs::read_to_string(dir.join("fabrik.lock")).expect("fabrik.lock");
    assert!(
        lock.contains("acme/simple-dns:0.3.2"),
        "^0.3 never picks 0.4.0: {lock}"
    );

    // A tampered layer in the registry is refused before anything is compiled.
    let pristine =
        std::fs::read(registry.blob_file(&fabrik_engine::plugins::sha256_hex(&newer_wasm)))
            .expect("the pushed layer");
    let mut tampered = pristine.clone();
    let middle = tampered.len() / 2;
    tampered[middle] ^= 1;
    let blob = registry.blob_file(&fabrik_engine::plugins::sha256_hex(&newer_wasm));
    std::fs::write(&blob, &tampered).expect("tamper");
    let fresh = tempfile::tempdir().expect("fresh cache");
    let refused = fabrik_in(&world, fresh.path(), &["apply", "--dry-run", spec]).await;
    assert_ne!(refused.status.code(), Some(0), "{}", text(&refused));
    assert!(
        text(&refused).contains("does not match its digest"),
        "{}",
        text(&refused)
    );
    assert!(
        text(&refused).contains("acme/simple-dns:0.3.2"),
        "{}",
        text(&refused)
    );
    assert_eq!(artifacts(fresh.path()), 0, "nothing was compiled");

    // No registry at all: the pinned, cached component still deploys, offline.
    drop(registry);
    let offline = fabrik_in(&world, cache, &["--offline", "apply", spec]).await;
    assert_eq!(offline.status.code(), Some(0), "{}", text(&offline));
}

/// A registry in the test's process: every request needs the bearer token its token
/// service hands out (the handshake GHCR and Docker Hub use for anonymous pulls); the
/// `broken/dns` repository answers 500 for blobs.
async fn token_registry(
    wasm: Vec<u8>,
    private: bool,
) -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use axum::extract::{Path as UrlPath, State};
    use axum::http::{HeaderMap, StatusCode, header};
    use axum::response::{IntoResponse, Response};
    use axum::routing::get;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[derive(Clone)]
    struct Registry {
        base: String,
        wasm: Arc<Vec<u8>>,
        manifest: Arc<Vec<u8>>,
        tokens: Arc<AtomicUsize>,
        /// The token service wants `alice`'s credentials (a private repository).
        private: bool,
    }
    /// The 401 to answer, unless the request carries the token.
    fn challenge(registry: &Registry, headers: &HeaderMap) -> Option<Response> {
        if headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            == Some("Bearer good-token")
        {
            return None;
        }
        let challenge = format!(
            "Bearer realm=\"{}/token\",service=\"test-registry\",scope=\"repository:acme/dns:pull\"",
            registry.base
        );
        Some(
            (
                StatusCode::UNAUTHORIZED,
                [(header::WWW_AUTHENTICATE, challenge)],
            )
                .into_response(),
        )
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let config = br#"{}"#;
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "config": { "mediaType": fabrik_sim::registry::WASM_CONFIG, "digest": fabrik_sim::registry::digest(config), "size": 2 },
        "layers": [{ "mediaType": "application/wasm", "digest": fabrik_sim::registry::digest(&wasm), "size": wasm.len() }],
    }))
    .expect("manifest");
    let tokens = Arc::new(AtomicUsize::new(0));
    let state = Registry {
        base: base.clone(),
        wasm: Arc::new(wasm),
        manifest: Arc::new(manifest),
        tokens: tokens.clone(),
        private,
    };
    let app = axum::Router::new()
        .route(
            "/token",
            get(
                |State(r): State<Registry>,
                 headers: HeaderMap,
                 query: axum::extract::RawQuery| async move {
                    assert!(
                        query
                            .0
                            .unwrap_or_default()
                            .contains("scope=repository%3Aacme%2Fdns%3Apull")
                    );
                    // `alice:s3cret`, as Docker's config.json stores it.
                    let alice = "Basic YWxpY2U6czNjcmV0";
                    let basic = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
                    if r.private && basic != Some(alice) {
                        return StatusCode::UNAUTHORIZED.into_response();
                    }
                    r.tokens.fetch_add(1, Ordering::SeqCst);
                    axum::Json(serde_json::json!({ "token": "good-token" })).into_response()
                },
            ),
        )
        .route(
            "/v2/{owner}/{name}/manifests/{reference}",
            get(
                |State(r): State<Registry>,
                 headers: HeaderMap,
                 UrlPath((_o, _n, _ref)): UrlPath<(String, String, String)>| async move {
                    if let Some(answer) = challenge(&r, &headers) {
                        return answer;
                    }
                    r.manifest.as_ref().clone().into_response()
                },
            ),
        )
        .route(
            "/v2/{owner}/{name}/blobs/{digest}",
            get(
                |State(r): State<Registry>,
                 headers: HeaderMap,
                 UrlPath((owner, _n, _d)): UrlPath<(String, String, String)>| async move {
                    if let Some(answer) = challenge(&r, &headers) {
                        return answer;
                    }
                    if owner == "broken" {
                        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
                    }
                    r.wasm.as_ref().clone().into_response()
                },
            ),
        )
        .with_state(state);
    tokio::spawn(async move { axum::serve(listener, app).await });
    (base, tokens)
}

#[tokio::test]
async fn the_token_handshake_then_digests_and_failures_are_checked() {
    use fabrik_engine::plugins::oci::credentials::Credentials;
    use fabrik_engine::plugins::oci::reference::OciReference;
    use fabrik_engine::plugins::oci::registry::{Registry, RegistryError};

    let wasm = std::fs::read(test_plugin("echo")).expect("echo");
    let (base, tokens) = token_registry(wasm.clone(), false).await;
    let host = base.trim_start_matches("http://");
    let client = Registry::new(Credentials::none()).expect("client");

    let reference =
        OciReference::parse(&format!("oci://{host}/acme/dns:1.0.0")).expect("reference");
    let digest = client
        .resolve(&reference)
        .await
        .expect("resolved after the token handshake");
    assert_eq!(tokens.load(std::sync::atomic::Ordering::SeqCst), 1);
    let manifest = client
        .manifest(&reference, &digest)
        .await
        .expect("manifest");
    let layer = manifest.component().expect("one wasm layer");
    let blob = client.blob(&reference, &layer.digest).await.expect("blob");
    assert_eq!(blob, wasm);
    assert_eq!(
        tokens.load(std::sync::atomic::Ordering::SeqCst),
        1,
        "the token is reused"
    );

    // A manifest asked by a digest it does not have is refused.
    let wrong = format!("sha256:{}", "0".repeat(64));
    assert!(matches!(
        client.manifest(&reference, &wrong).await,
        Err(RegistryError::Digest { .. })
    ));
    // A 500 is reported with the source and what was asked.
    let broken = OciReference::parse(&format!("oci://{host}/broken/dns:1.0.0")).expect("reference");
    let error = client.blob(&broken, &layer.digest).await.expect_err("500");
    assert!(
        matches!(error, RegistryError::Status { status: 500, .. }),
        "{error}"
    );
    assert!(error.to_string().contains("broken/dns"), "{error}");
}

#[tokio::test]
async fn a_private_repository_needs_the_credentials_docker_login_stored() {
    use fabrik_engine::plugins::oci::credentials::Credentials;
    use fabrik_engine::plugins::oci::reference::OciReference;
    use fabrik_engine::plugins::oci::registry::{Registry, RegistryError};

    let wasm = std::fs::read(test_plugin("echo")).expect("echo");
    let (base, _) = token_registry(wasm, true).await;
    let host = base.trim_start_matches("http://");
    let reference =
        OciReference::parse(&format!("oci://{host}/acme/dns:1.0.0")).expect("reference");

    let anonymous = Registry::new(Credentials::none()).expect("client");
    let error = anonymous.resolve(&reference).await.expect_err("private");
    assert!(
        matches!(error, RegistryError::Unauthorized { .. }),
        "{error}"
    );
    assert!(
        error.to_string().contains("token service answered 401"),
        "{error}"
    );

    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("config.json");
    std::fs::write(
        &config,
        format!(r#"{{"auths":{{"{host}":{{"auth":"YWxpY2U6czNjcmV0"}}}}}}"#),
    )
    .expect("config.json");
    let logged_in = Registry::new(Credentials::from_file(&config)).expect("client");
    logged_in
        .resolve(&reference)
        .await
        .expect("resolved with alice's credentials");
    assert!(
        !error.to_string().contains("s3cret") && !error.to_string().contains("YWxpY2U"),
        "credentials are never printed"
    );
}

#[tokio::test]
async fn a_registry_that_hangs_is_an_error_naming_the_source() {
    use fabrik_engine::plugins::oci::credentials::Credentials;
    use fabrik_engine::plugins::oci::reference::OciReference;
    use fabrik_engine::plugins::oci::registry::{Registry, RegistryError};

    // Accepts connections and never answers.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let host = listener.local_addr().expect("addr").to_string();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    let client = Registry::with_timeout(Credentials::none(), std::time::Duration::from_millis(300))
        .expect("client");
    let reference =
        OciReference::parse(&format!("oci://{host}/acme/dns:1.0.0")).expect("reference");
    let started = std::time::Instant::now();
    let error = client.resolve(&reference).await.expect_err("no answer");
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
    assert!(
        matches!(error, RegistryError::Unreachable { .. }),
        "{error}"
    );
    assert!(error.to_string().contains("timed out"), "{error}");
    assert!(
        error
            .to_string()
            .contains(&format!("oci://{host}/acme/dns:1.0.0")),
        "{error}"
    );
}

/// A registry whose every answer is `size` bytes of `{` streamed without a length,
/// counting what it sent: a client that buffers whole answers reads all of it.
async fn flooding_registry(
    size: usize,
) -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use axum::http::{StatusCode, header};
    use axum::response::IntoResponse;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let sent = Arc::new(AtomicUsize::new(0));
    let flood = {
        let sent = sent.clone();
        move || {
            let sent = sent.clone();
            let chunks = (0..size / 65536).map(move |_| {
                sent.fetch_add(65536, Ordering::SeqCst);
                Ok::<_, std::io::Error>(vec![b'{'; 65536])
            });
            axum::body::Body::from_stream(futures::stream::iter(chunks))
        }
    };
    let challenge = format!(
        "Bearer realm=\"{base}/token\",service=\"flood\",scope=\"repository:acme/dns:pull\""
    );
    let token_flood = flood.clone();
    let app =
        axum::Router::new()
            .route(
                "/token",
                axum::routing::get(move || {
                    let flood = token_flood.clone();
                    async move { flood().into_response() }
                }),
            )
            .route(
                "/v2/{owner}/{name}/manifests/{reference}",
                axum::routing::get(
                    move |axum::extract::Path((owner, _name, _reference)): axum::extract::Path<
                        (String, String, String),
                    >| {
                        let flood = flood.clone();
                        let challenge = challenge.clone();
                        async move {
                            // `open/…` needs no token: its manifest floods; `acme/…` asks for
                            // a token, whose answer floods.
                            if owner == "open" {
                                return flood().into_response();
                            }
                            (
                                StatusCode::UNAUTHORIZED,
                                [(header::WWW_AUTHENTICATE, challenge)],
                            )
                                .into_response()
                        }
                    },
                ),
            );
    tokio::spawn(async move { axum::serve(listener, app).await });
    (base, sent)
}

/// Issue 28, point 6: a token service's or a registry's endless answer is read to its
/// bound and refused, never buffered whole (a 1.5 GB token answer took 5.9 GB).
#[tokio::test]
async fn a_registry_flooding_its_answers_is_read_to_a_bound() {
    use fabrik_engine::plugins::oci::credentials::Credentials;
    use fabrik_engine::plugins::oci::reference::OciReference;
    use fabrik_engine::plugins::oci::registry::Registry;

    let (base, sent) = flooding_registry(512 << 20).await;
    let host = base.trim_start_matches("http://");
    let client = Registry::new(Credentials::none()).expect("client");
    let reference =
        OciReference::parse(&format!("oci://{host}/acme/dns:1.0.0")).expect("reference");
    let error = client.resolve(&reference).await.expect_err("flooded");
    assert!(
        error.to_string().contains("larger than 65536 bytes"),
        "{error}"
    );
    let read = sent.swap(0, std::sync::atomic::Ordering::SeqCst);
    assert!(read < 16 << 20, "the token answer was read to {read} bytes");

    // A manifest is refused past its 4 MiB, not after 256 MiB were buffered.
    let open = OciReference::parse(&format!("oci://{host}/open/dns:1.0.0")).expect("reference");
    let error = client.resolve(&open).await.expect_err("flooded");
    assert!(
        error.to_string().contains("larger than 4194304 bytes"),
        "{error}"
    );
    let read = sent.load(std::sync::atomic::Ordering::SeqCst);
    assert!(read < 32 << 20, "the manifest was read to {read} bytes");
}
