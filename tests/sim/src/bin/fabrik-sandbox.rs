//! `fabrik-sandbox`: Coolify, Cloudflare and a deployed app, simulated on loopback, so a
//! whole `fabrik apply` can be tried without accounts. Prints the environment to use.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use fabrik_sim::{Sandbox, SandboxConfig};

fn usage() -> ! {
    eprintln!(
        "usage: fabrik-sandbox [--dir DIR] [--listen IP] [--app-port PORT]\n\n\
         Starts simulated Coolify and Cloudflare APIs and a deployed-app HTTPS endpoint on\n\
         loopback, writes DIR/ca.pem and DIR/sandbox.env (default DIR: .fabrik/sandbox),\n\
         prints the environment to use, and runs until interrupted."
    );
    std::process::exit(2)
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let mut dir = PathBuf::from(".fabrik/sandbox");
    let mut config = SandboxConfig::default();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().unwrap_or_else(|| usage());
        match arg.as_str() {
            "--dir" => dir = PathBuf::from(value()),
            "--listen" => {
                let ip: IpAddr = value().parse().unwrap_or_else(|_| usage());
                config.listen = SocketAddr::new(ip, 0);
            }
            "--app-port" => config.app_port = value().parse().unwrap_or_else(|_| usage()),
            _ => usage(),
        }
    }
    let sandbox = Sandbox::start(config).await?;
    std::fs::create_dir_all(&dir)?;
    let ca_path = std::path::absolute(dir.join("ca.pem"))?;
    std::fs::write(&ca_path, sandbox.ca.pem())?;
    let resolve = format!("api.example.com:443:{}", sandbox.app_addr);
    let env = format!(
        "export COOLIFY_URL={}\nexport COOLIFY_TOKEN='{}'\nexport CLOUDFLARE_API_URL={}\nexport CLOUDFLARE_API_TOKEN='{}'\nexport FABRIK_CA_FILE={}\nexport FABRIK_RESOLVE={}\n",
        sandbox.coolify_url,
        sandbox.config.coolify_token,
        sandbox.cloudflare_url,
        sandbox.config.cloudflare_token,
        ca_path.display(),
        resolve,
    );
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
