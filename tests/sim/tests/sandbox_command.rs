//! `fabrik-sandbox` starts, prints the environment to use, and its services answer.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

#[tokio::test]
async fn the_sandbox_command_prints_a_working_environment() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut child = Command::new(env!("CARGO_BIN_EXE_fabrik-sandbox"))
        .args(["--dir"])
        .arg(dir.path())
        .stdout(Stdio::piped())
        .spawn()
        .expect("starts");
    let stdout = child.stdout.take().expect("stdout");
    let mut env = std::collections::HashMap::new();
    for line in BufReader::new(stdout).lines() {
        let line = line.expect("line");
        if let Some((key, value)) = line.strip_prefix("export ").and_then(|l| l.split_once('=')) {
            env.insert(key.to_owned(), value.trim_matches('\'').to_owned());
        }
        if line.contains("The app endpoint") {
            break;
        }
    }
    let client = reqwest::Client::new();
    let coolify = &env["COOLIFY_URL"];
    let servers = client
        .get(format!("{coolify}/servers"))
        .bearer_auth(&env["COOLIFY_TOKEN"])
        .header("accept", "application/json")
        .send()
        .await
        .expect("coolify answers");
    assert_eq!(servers.status(), 200);
    assert!(servers.text().await.expect("body").contains("\"vps1\""));
    let zones = client
        .get(format!(
            "{}/zones?name=example.com",
            env["CLOUDFLARE_API_URL"]
        ))
        .bearer_auth(&env["CLOUDFLARE_API_TOKEN"])
        .send()
        .await
        .expect("cloudflare answers");
    assert_eq!(zones.status(), 200);
    // The app endpoint speaks TLS with the CA the sandbox wrote.
    let ca = std::fs::read(&env["FABRIK_CA_FILE"]).expect("ca file");
    // Every name in the zone reaches the app endpoint: the apex and a wildcard; then the
    // simulated git hosts and registries sources resolve against.
    let overrides: Vec<&str> = env["FABRIK_RESOLVE"].split(',').collect();
    assert_eq!(overrides.len(), 8, "{overrides:?}");
    assert!(
        overrides.iter().any(|o| o.starts_with("github.com:443:"))
            && overrides.iter().any(|o| o.starts_with("ghcr.io:443:")),
        "{overrides:?}"
    );
    assert!(
        overrides[0].starts_with("example.com:443:"),
        "{overrides:?}"
    );
    assert!(
        overrides[1].starts_with("*.example.com:443:"),
        "{overrides:?}"
    );
    let addr = overrides[1]
        .splitn(3, ':')
        .nth(2)
        .expect("address")
        .to_owned();
    let tls = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&ca).expect("pem"))
        .resolve("api.example.com", addr.parse().expect("socket address"))
        .build()
        .expect("client");
    let answer = tls
        .get("https://api.example.com/health")
        .send()
        .await
        .expect("TLS verified");
    assert_eq!(answer.status(), 503, "nothing is deployed yet");
    assert!(dir.path().join("sandbox.env").is_file());
    child.kill().expect("kill");
    let _ = child.wait();
}
