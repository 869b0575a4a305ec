//! Simulators for Fabrik's tests and local sandbox: Coolify's REST API, Cloudflare's DNS
//! API and the deployed app over HTTPS, all on loopback, with fault injection.
//!
//! Tests start a [`Sandbox`] in-process and drive its handles; `fabrik-sandbox` starts
//! one for a person to point `fabrik` at.

// Handlers return early with the API's error response; boxing it would only add noise.
#![expect(
    clippy::result_large_err,
    reason = "axum handlers return `Response` as their early-exit error"
)]

pub mod app;
pub mod cloudflare;
pub mod coolify;
pub mod faults;
pub mod git;
pub mod plugins;
pub mod postgres;
pub mod powerdns;
pub mod ratelimit;
pub mod registry;
pub mod sources;
pub mod uptime_kuma;

use std::net::SocketAddr;
use std::sync::Arc;

use app::{App, TestCa};
use cloudflare::Cloudflare;
use coolify::Coolify;

/// What the sandbox serves.
#[derive(Debug, Clone)]
pub struct SandboxConfig {
    pub coolify_token: String,
    pub cloudflare_token: String,
    /// The Uptime Kuma user the sandbox is set up with, and its password.
    pub uptime_kuma_user: (String, String),
    /// Cloudflare zones.
    pub zones: Vec<String>,
    /// Coolify servers as `(name, ip)`.
    pub servers: Vec<(String, String)>,
    /// Address to listen on (ports are chosen by the system when 0).
    pub listen: SocketAddr,
    pub app_port: u16,
    /// Fixed ports for the simulated APIs (0: chosen by the system), so that a project
    /// testing a provider of its own can keep one `fabrik.toml`.
    pub coolify_port: u16,
    pub cloudflare_port: u16,
    /// Coolify's rate limit per user: requests per window (0: none). The real default,
    /// 200 a minute, unless a test or `fabrik-sandbox --coolify-rate-limit` says otherwise.
    pub coolify_rate_limit: (u32, std::time::Duration),
    /// Cloudflare's, 1,200 per five minutes by default.
    pub cloudflare_rate_limit: (u32, std::time::Duration),
}

impl Default for SandboxConfig {
    fn default() -> Self {
        Self {
            coolify_token: "1|sandbox-coolify-token".to_owned(),
            cloudflare_token: "sandbox-cloudflare-token".to_owned(),
            uptime_kuma_user: ("fabrik".to_owned(), "sandbox-kuma-pass-1".to_owned()),
            zones: vec!["example.com".to_owned()],
            servers: vec![("vps1".to_owned(), "127.0.0.1".to_owned())],
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            app_port: 0,
            coolify_port: 0,
            cloudflare_port: 0,
            coolify_rate_limit: (200, std::time::Duration::from_secs(60)),
            cloudflare_rate_limit: (1200, std::time::Duration::from_secs(300)),
        }
    }
}

/// The `FABRIK_RESOLVE` entries that send every name of `zones` and every simulated git
/// host and registry to `app` (port 443): health checks and source resolution then reach
/// the sandbox with no flag of their own.
pub fn resolve_overrides(zones: &[String], app: SocketAddr) -> Vec<String> {
    zones
        .iter()
        .flat_map(|zone| [format!("{zone}:443:{app}"), format!("*.{zone}:443:{app}")])
        .chain(
            sources::GIT_HOSTS
                .iter()
                .chain(&sources::REGISTRY_HOSTS)
                .map(|host| format!("{host}:443:{app}")),
        )
        .collect()
}

/// Running simulators.
pub struct Sandbox {
    pub config: SandboxConfig,
    pub coolify: Coolify,
    pub cloudflare: Cloudflare,
    pub uptime_kuma: uptime_kuma::UptimeKuma,
    pub app: App,
    pub ca: Arc<TestCa>,
    /// `http://127.0.0.1:<port>/api/v1`
    pub coolify_url: String,
    /// `http://127.0.0.1:<port>/client/v4`
    pub cloudflare_url: String,
    /// `http://127.0.0.1:<port>` (Uptime Kuma's root).
    pub uptime_kuma_url: String,
    /// Where the app endpoint listens (HTTPS).
    pub app_addr: SocketAddr,
}

/// Where a simulator's id counter starts after its fixed objects (servers, zones): a
/// different place at every start, so that a project state that outlives one sandbox
/// never finds its ids handed out again to other resources by the next one (real servers
/// never reuse an id). Servers and zones keep their ids: they are the same machines and
/// zones at every start.
pub(crate) fn start_offset() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    // `RandomState` is seeded from the OS at every process start: no extra dependency.
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u64(0);
    // 2^16 ids per start before two starts' ranges could meet, and below 2^53, so that
    // numeric ids stay exact for JSON clients that read numbers as doubles.
    (hasher.finish() >> 34) << 16
}

async fn serve(router: axum::Router, addr: SocketAddr) -> std::io::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    tokio::spawn(async move { axum::serve(listener, router).await });
    Ok(bound)
}

impl Sandbox {
    /// Starts every simulator on loopback; they run until the runtime stops.
    pub async fn start(config: SandboxConfig) -> std::io::Result<Self> {
        let servers: Vec<(&str, &str)> = config
            .servers
            .iter()
            .map(|(n, i)| (n.as_str(), i.as_str()))
            .collect();
        let zones: Vec<&str> = config.zones.iter().map(String::as_str).collect();
        let coolify = Coolify::new(&config.coolify_token, &servers);
        let cloudflare = Cloudflare::new(&config.cloudflare_token, &zones);
        let (limit, window) = config.coolify_rate_limit;
        coolify.rate_limit.set(limit, window);
        let (limit, window) = config.cloudflare_rate_limit;
        cloudflare.rate_limit.set(limit, window);
        let app = App::new(coolify.clone());
        let ca = Arc::new(TestCa::generate().map_err(std::io::Error::other)?);
        let ip = config.listen.ip();
        let coolify_addr =
            serve(coolify.router(), SocketAddr::new(ip, config.coolify_port)).await?;
        let cloudflare_addr = serve(
            cloudflare.router(),
            SocketAddr::new(ip, config.cloudflare_port),
        )
        .await?;
        let (user, password) = &config.uptime_kuma_user;
        let uptime_kuma =
            uptime_kuma::UptimeKuma::with_user(uptime_kuma::Version::V2, user, password);
        let uptime_kuma_addr = serve(uptime_kuma.router(), SocketAddr::new(ip, 0)).await?;
        let app_addr = app
            .serve_tls(
                SocketAddr::new(config.listen.ip(), config.app_port),
                ca.clone(),
            )
            .await?;
        Ok(Self {
            coolify_url: format!("http://{coolify_addr}/api/v1"),
            cloudflare_url: format!("http://{cloudflare_addr}/client/v4"),
            uptime_kuma_url: format!("http://{uptime_kuma_addr}"),
            uptime_kuma,
            config,
            coolify,
            cloudflare,
            app,
            ca,
            app_addr,
        })
    }
}
