//! The deployed app: an HTTPS endpoint that answers for a domain once the simulated
//! Coolify has finished deploying it. TLS uses a certificate authority generated at start
//! (its PEM goes to the client as `--ca-file`); a leaf certificate is issued on demand for
//! whatever name the client asks for (SNI).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

use crate::coolify::Coolify;
use crate::sources::Sources;

/// The paths a deployed app serves: the root and the health paths the templates and
/// fixtures use. Any other path answers 404, as a real app does, so that a wrong
/// `healthcheck.path` fails in the sandbox the way it would in production.
pub const SERVED_PATHS: [&str; 3] = ["/", "/health", "/healthz"];

/// How the app answers for a domain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Behaviour {
    /// 200 with a small JSON body once deployed (404 for a path it does not serve), 503
    /// before.
    Healthy,
    /// Always this status, with a body that says so.
    Fail(u16),
    /// Always this status with this body (what a hostile or leaky app answers).
    Answer(u16, String),
    /// Never answers.
    Hang,
    /// 302 to this URL.
    Redirect(String),
}

/// A certificate authority and the certificates it issued.
pub struct TestCa {
    key: KeyPair,
    cert: rcgen::Certificate,
    issued: Mutex<HashMap<String, Arc<CertifiedKey>>>,
}

impl std::fmt::Debug for TestCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TestCa")
    }
}

impl TestCa {
    pub fn generate() -> Result<Self, rcgen::Error> {
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::CommonName, "Fabrik sandbox CA");
        let key = KeyPair::generate()?;
        let cert = params.self_signed(&key)?;
        Ok(Self {
            key,
            cert,
            issued: Mutex::new(HashMap::new()),
        })
    }

    /// The CA certificate, PEM-encoded, for clients to trust.
    pub fn pem(&self) -> String {
        self.cert.pem()
    }

    /// A certificate for `name` signed by this CA, and its key, both PEM: for a server
    /// started outside this process (a real registry).
    pub fn issue_pem(&self, name: &str) -> Result<(String, String), rcgen::Error> {
        let params = CertificateParams::new(vec![name.to_owned()])?;
        let key = KeyPair::generate()?;
        let cert = params.signed_by(&key, &self.cert, &self.key)?;
        Ok((cert.pem(), key.serialize_pem()))
    }

    fn issue(&self, name: &str) -> Option<Arc<CertifiedKey>> {
        let mut issued = self.issued.lock().ok()?;
        if let Some(found) = issued.get(name) {
            return Some(found.clone());
        }
        let params = CertificateParams::new(vec![name.to_owned()]).ok()?;
        let key = KeyPair::generate().ok()?;
        let cert = params.signed_by(&key, &self.cert, &self.key).ok()?;
        let der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        let signing = rustls::crypto::ring::sign::any_supported_type(&der).ok()?;
        let chain = vec![
            CertificateDer::from(cert.der().to_vec()),
            CertificateDer::from(self.cert.der().to_vec()),
        ];
        let certified = Arc::new(CertifiedKey::new(chain, signing));
        issued.insert(name.to_owned(), certified.clone());
        Some(certified)
    }
}

impl ResolvesServerCert for TestCa {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.issue(hello.server_name().unwrap_or("localhost"))
    }
}

/// The deployed-app simulator (and, on the same listener, the git hosts and registries
/// apps come from: [`Sources`]).
#[derive(Clone)]
pub struct App {
    coolify: Coolify,
    behaviours: Arc<Mutex<HashMap<String, Behaviour>>>,
    hits: Arc<Mutex<HashMap<String, u32>>>,
    pub sources: Sources,
}

impl App {
    pub fn new(coolify: Coolify) -> Self {
        Self {
            coolify,
            behaviours: Arc::default(),
            hits: Arc::default(),
            sources: Sources::default(),
        }
    }

    /// Sets how `domain` answers.
    pub fn set(&self, domain: &str, behaviour: Behaviour) {
        if let Ok(mut b) = self.behaviours.lock() {
            b.insert(domain.to_owned(), behaviour);
        }
    }

    /// How many requests `domain` received.
    pub fn hits(&self, domain: &str) -> u32 {
        self.hits
            .lock()
            .ok()
            .and_then(|h| h.get(domain).copied())
            .unwrap_or(0)
    }

    pub fn router(&self) -> Router {
        Router::new().fallback(answer).with_state(self.clone())
    }

    /// Serves the app over HTTPS on `addr`; returns the bound address.
    pub async fn serve_tls(
        &self,
        addr: SocketAddr,
        ca: Arc<TestCa>,
    ) -> std::io::Result<SocketAddr> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut config = rustls::ServerConfig::builder()
            .with_no_client_auth()
            .with_cert_resolver(ca);
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        let listener = std::net::TcpListener::bind(addr)?;
        listener.set_nonblocking(true)?;
        let bound = listener.local_addr()?;
        let tls = axum_server::tls_rustls::RustlsConfig::from_config(Arc::new(config));
        // A TLS handshake is several small writes: without TCP_NODELAY, Nagle's algorithm
        // and the client's delayed ACK stall each new connection ~40 ms, which real
        // proxies (Coolify's Traefik or Caddy) do not.
        let server = axum_server::from_tcp_rustls(listener, tls)
            .map(|acceptor| acceptor.acceptor(axum_server::accept::NoDelayAcceptor::new()));
        let router = self.router();
        tokio::spawn(async move { server.serve(router.into_make_service()).await });
        Ok(bound)
    }
}

async fn answer(State(app): State<App>, uri: Uri, headers: HeaderMap) -> Response {
    let host = headers
        .get("host")
        .and_then(|h| h.to_str().ok())
        .or(uri.host())
        .unwrap_or_default();
    let domain = host
        .rsplit_once(':')
        .map_or(host, |(h, _)| h)
        .to_ascii_lowercase();
    if Sources::serves(&domain) {
        return app.sources.answer(&domain, &uri, &headers);
    }
    if let Ok(mut hits) = app.hits.lock() {
        *hits.entry(domain.clone()).or_insert(0) += 1;
    }
    let behaviour = app
        .behaviours
        .lock()
        .ok()
        .and_then(|b| b.get(&domain).cloned())
        .unwrap_or(Behaviour::Healthy);
    match behaviour {
        Behaviour::Hang => {
            std::future::pending::<()>().await;
            StatusCode::GATEWAY_TIMEOUT.into_response()
        }
        Behaviour::Redirect(location) => {
            (StatusCode::FOUND, [("location", location)], "").into_response()
        }
        Behaviour::Answer(status, body) => (
            StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            body,
        )
            .into_response(),
        Behaviour::Fail(status) => (
            StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            format!(
                "{{\"status\":\"error\",\"detail\":\"the app at {domain} is failing on purpose\"}}"
            ),
        )
            .into_response(),
        Behaviour::Healthy
            if app.coolify.is_serving(&domain) && !SERVED_PATHS.contains(&uri.path()) =>
        {
            (
                StatusCode::NOT_FOUND,
                [("content-type", "text/plain")],
                format!("Cannot GET {}", uri.path()),
            )
                .into_response()
        }
        Behaviour::Healthy if app.coolify.is_serving(&domain) => (
            StatusCode::OK,
            [("content-type", "application/json")],
            format!("{{\"status\":\"ok\",\"path\":\"{}\"}}", uri.path()),
        )
            .into_response(),
        Behaviour::Healthy => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("no deployment is serving {domain} yet"),
        )
            .into_response(),
    }
}
