//! `fabrik-sandbox`: Coolify, Cloudflare and a deployed app, simulated on loopback, so a
//! whole `fabrik apply` can be tried without accounts. Prints the environment to use.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use fabrik_sim::{Sandbox, SandboxConfig};

/// `N` or `N/Ws`, else the usage.
fn limit(text: &str, default_window: u64) -> (u32, Duration) {
    fabrik_sim::ratelimit::parse_limit(text, Duration::from_secs(default_window)).unwrap_or_else(
        |problem| {
            eprintln!("fabrik-sandbox: {problem}");
            usage()
        },
    )
}

fn usage() -> ! {
    eprintln!(
        "usage: fabrik-sandbox [--dir DIR] [--listen IP] [--app-port PORT] [--coolify-port PORT]\n\
         \x20                     [--cloudflare-port PORT] [--coolify-rate-limit N[/Ws]]\n\
         \x20                     [--cloudflare-rate-limit N[/Ws]] [--build-seconds S]\n\
         \x20                     [--concurrent-builds N] [--exec COMMAND ARGS...]\n\n\
         Starts simulated Coolify and Cloudflare APIs and a deployed-app HTTPS endpoint on\n\
         loopback, writes DIR/ca.pem and DIR/sandbox.env (default DIR: .fabrik/sandbox),\n\
         prints the environment to use, and runs until interrupted. With --exec, runs\n\
         COMMAND with that environment instead (its CA file in a private directory,\n\
         removed at exit), then exits with its status. Ids are new at every start. Fixed ports\n\
         let a provider under test keep one fabrik.toml (see docs/providers.md).\n\
         The APIs enforce their real rate limits per user: Coolify 200 requests a minute,\n\
         Cloudflare 1200 per 300 s; N sets another (N/Ws: per W seconds), 0 turns it off.\n\
         --build-seconds sets how long a simulated build (or service start) takes\n\
         (default 0.3). --concurrent-builds sets how many deployments build at once on\n\
         a server (Coolify's default: 2; the others wait in its queue)."
    );
    std::process::exit(2)
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let mut dir = PathBuf::from(".fabrik/sandbox");
    let mut config = SandboxConfig::default();
    let mut args = std::env::args().skip(1);
    let mut exec: Vec<String> = Vec::new();
    let mut build = None;
    let mut concurrent_builds = None;
    while let Some(arg) = args.next() {
        let mut value = || args.next().unwrap_or_else(|| usage());
        match arg.as_str() {
            "--exec" => {
                exec = args.by_ref().collect();
                if exec.is_empty() {
                    usage();
                }
            }
            "--dir" => dir = PathBuf::from(value()),
            "--listen" => {
                let ip: IpAddr = value().parse().unwrap_or_else(|_| usage());
                config.listen = SocketAddr::new(ip, 0);
            }
            "--app-port" => config.app_port = value().parse().unwrap_or_else(|_| usage()),
            "--coolify-port" => config.coolify_port = value().parse().unwrap_or_else(|_| usage()),
            "--cloudflare-port" => {
                config.cloudflare_port = value().parse().unwrap_or_else(|_| usage());
            }
            "--coolify-rate-limit" => {
                config.coolify_rate_limit = limit(&value(), 60);
            }
            "--cloudflare-rate-limit" => {
                config.cloudflare_rate_limit = limit(&value(), 300);
            }
            "--build-seconds" => {
                let seconds: f64 = value().parse().unwrap_or_else(|_| usage());
                build = Some(Duration::from_secs_f64(seconds.max(0.0)));
            }
            "--concurrent-builds" => {
                concurrent_builds = Some(value().parse::<u64>().unwrap_or_else(|_| usage()));
            }
            _ => usage(),
        }
    }
    let sandbox = Sandbox::start(config).await?;
    if let Some(builds) = concurrent_builds {
        sandbox.coolify.set_concurrent_builds(builds);
    }
    if let Some(building) = build {
        // An application's build, or a service's start (what a compose app waits for).
        sandbox.coolify.set_timing(fabrik_sim::coolify::Timing {
            building,
            service_start: building,
            ..fabrik_sim::coolify::Timing::default()
        });
    }
    // `--exec` keeps its files to itself (a directory removed when the command ends): a
    // sandbox running in another shell keeps the CA its health checks trust. A
    // long-running sandbox writes to DIR, where another shell sources them.
    let private = if exec.is_empty() {
        None
    } else {
        Some(
            tempfile::Builder::new()
                .prefix("fabrik-sandbox-")
                .tempdir()?,
        )
    };
    let dir = private.as_ref().map_or(dir, |d| d.path().to_path_buf());
    std::fs::create_dir_all(&dir)?;
    let ca_path = std::path::absolute(dir.join("ca.pem"))?;
    std::fs::write(&ca_path, sandbox.ca.pem())?;
    // Every name in the sandbox's zones reaches the app endpoint, as a wildcard record
    // would: a spec's own domain works without a flag.
    // So do the git hosts and registries that fixtures and starters name (github.com,
    // ghcr.io…): their branches and tags resolve to commits and digests on loopback.
    let resolve = fabrik_sim::resolve_overrides(&sandbox.config.zones, sandbox.app_addr).join(",");
    // The project keeps its own state (`fabrik status` then shows what the sandbox
    // deployed). The simulators forget everything when they stop: the next apply finds
    // its resources gone and creates them again.
    let vars = [
        ("COOLIFY_URL", sandbox.coolify_url.clone()),
        ("COOLIFY_TOKEN", sandbox.config.coolify_token.clone()),
        ("CLOUDFLARE_API_URL", sandbox.cloudflare_url.clone()),
        (
            "CLOUDFLARE_API_TOKEN",
            sandbox.config.cloudflare_token.clone(),
        ),
        ("UPTIME_KUMA_URL", sandbox.uptime_kuma_url.clone()),
        (
            "UPTIME_KUMA_USERNAME",
            sandbox.config.uptime_kuma_user.0.clone(),
        ),
        (
            "UPTIME_KUMA_PASSWORD",
            sandbox.config.uptime_kuma_user.1.clone(),
        ),
        ("FABRIK_CA_FILE", ca_path.display().to_string()),
        ("FABRIK_RESOLVE", resolve),
    ];
    let env: String = vars
        .iter()
        .map(|(k, v)| format!("export {k}='{v}'\n"))
        .collect();
    if let Some((program, rest)) = exec.split_first() {
        eprintln!(
            "# Fabrik sandbox (zone {}, Coolify server {}) running: {}",
            sandbox.config.zones.join(", "),
            servers(&sandbox.config),
            exec.join(" ")
        );
        let mut command = tokio::process::Command::new(program);
        command
            .args(rest)
            .envs(vars.iter().map(|(k, v)| (*k, v.as_str())));
        let status = command.status().await?;
        // `exit` runs no destructor: remove the private directory first.
        drop(private);
        std::process::exit(status.code().unwrap_or(1));
    }
    let env_path = std::path::absolute(dir.join("sandbox.env"))?;
    std::fs::write(&env_path, &env)?;
    println!(
        "# Fabrik sandbox: Coolify, Cloudflare (zone {}) and the app endpoint on loopback.",
        sandbox.config.zones.join(", ")
    );
    println!(
        "# Coolify servers: {}. In another shell: source {}",
        servers(&sandbox.config),
        env_path.display()
    );
    print!("{env}");
    println!(
        "# The app endpoint (HTTPS, CA in FABRIK_CA_FILE) answers for any name in {} at {}",
        sandbox.config.zones.join(", "),
        sandbox.app_addr
    );
    tokio::signal::ctrl_c().await?;
    Ok(())
}

/// The simulated Coolify's servers, as `name (ip)`.
fn servers(config: &fabrik_sim::SandboxConfig) -> String {
    config
        .servers
        .iter()
        .map(|(name, ip)| format!("{name} ({ip})"))
        .collect::<Vec<_>>()
        .join(", ")
}
