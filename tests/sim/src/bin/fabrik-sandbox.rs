//! `fabrik-sandbox`: Coolify, Cloudflare and a deployed app, simulated on loopback, so a
//! whole `fabrik apply` can be tried without accounts. Prints the environment to use.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use fabrik_sim::{Sandbox, SandboxConfig};

fn usage() -> ! {
    eprintln!(
        "usage: fabrik-sandbox [--dir DIR] [--listen IP] [--app-port PORT] [--coolify-port PORT]\n\
         \x20                     [--cloudflare-port PORT] [--exec COMMAND ARGS...]\n\n\
         Starts simulated Coolify and Cloudflare APIs and a deployed-app HTTPS endpoint on\n\
         loopback, writes DIR/ca.pem and DIR/sandbox.env (default DIR: .fabrik/sandbox),\n\
         prints the environment to use, and runs until interrupted. With --exec, runs\n\
         COMMAND with that environment instead, then exits with its status. Fixed ports\n\
         let a provider under test keep one fabrik.toml (see docs/providers.md)."
    );
    std::process::exit(2)
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let mut dir = PathBuf::from(".fabrik/sandbox");
    let mut config = SandboxConfig::default();
    let mut args = std::env::args().skip(1);
    let mut exec: Vec<String> = Vec::new();
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
            _ => usage(),
        }
    }
    let sandbox = Sandbox::start(config).await?;
    std::fs::create_dir_all(&dir)?;
    let ca_path = std::path::absolute(dir.join("ca.pem"))?;
    std::fs::write(&ca_path, sandbox.ca.pem())?;
    let resolve = format!("api.example.com:443:{}", sandbox.app_addr);
    // The sandbox's state is its own: the simulators forget everything when they stop.
    let state = std::path::absolute(dir.join("state.db"))?;
    let _ = std::fs::remove_file(&state);
    let vars = [
        ("COOLIFY_URL", sandbox.coolify_url.clone()),
        ("COOLIFY_TOKEN", sandbox.config.coolify_token.clone()),
        ("CLOUDFLARE_API_URL", sandbox.cloudflare_url.clone()),
        (
            "CLOUDFLARE_API_TOKEN",
            sandbox.config.cloudflare_token.clone(),
        ),
        ("FABRIK_CA_FILE", ca_path.display().to_string()),
        ("FABRIK_RESOLVE", resolve),
        ("FABRIK_STATE_DB", state.display().to_string()),
    ];
    let env: String = vars
        .iter()
        .map(|(k, v)| format!("export {k}='{v}'\n"))
        .collect();
    if let Some((program, rest)) = exec.split_first() {
        eprintln!("# Fabrik sandbox running: {}", exec.join(" "));
        let mut command = tokio::process::Command::new(program);
        command
            .args(rest)
            .envs(vars.iter().map(|(k, v)| (*k, v.as_str())));
        let status = command.status().await?;
        std::process::exit(status.code().unwrap_or(1));
    }
    let env_path = std::path::absolute(dir.join("sandbox.env"))?;
    std::fs::write(&env_path, &env)?;
    println!(
        "# Fabrik sandbox: Coolify, Cloudflare (zone example.com) and the app endpoint on loopback."
    );
    println!(
        "# Coolify server `vps1` has IP 127.0.0.1. In another shell: source {}",
        env_path.display()
    );
    print!("{env}");
    println!(
        "# The app endpoint (HTTPS, CA in FABRIK_CA_FILE) answers for any name at {}",
        sandbox.app_addr
    );
    tokio::signal::ctrl_c().await?;
    Ok(())
}
