//! A real PowerDNS Authoritative server for the tests: Debian's `pdns-server` with the
//! SQLite backend (`pdns-backend-sqlite3`), its HTTP API and DNS on loopback ports, its
//! database and configuration in a temporary directory; stopped on drop.
//!
//! Where the packages are missing, [`PowerDns::start`] says what to install: a test that
//! needs PowerDNS fails ("NOT RUN") rather than pass without running (README, "Tests").

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::registry::free_port;

const SERVER: &str = "/usr/sbin/pdns_server";
const SCHEMA: &str = "/usr/share/pdns-backend-sqlite3/schema/schema.sqlite3.sql";

/// One running server.
pub struct PowerDns {
    child: Child,
    /// The web server's root, as the provider's `base-url` takes it.
    pub base_url: String,
    /// The API key (`X-API-Key`).
    pub api_key: String,
    dir: tempfile::TempDir,
}

impl PowerDns {
    /// Starts a server holding the zones `zones` (`example.com`), or says why it cannot.
    pub async fn start(zones: &[&str]) -> Result<Self, String> {
        for (path, package) in [(SERVER, "pdns-server"), (SCHEMA, "pdns-backend-sqlite3")] {
            if !Path::new(path).exists() {
                return Err(format!(
                    "NOT RUN: this test needs a real PowerDNS, and {path} is missing: install Debian's `{package}` (README, \"Tests\")"
                ));
            }
        }
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let database = dir.path().join("pdns.sqlite3");
        create_database(&database)?;
        let (api_port, dns_port) = (free_port()?, free_udp_and_tcp_port()?);
        let api_key = format!("pdns-test-key-{}", std::process::id());
        std::fs::write(
            dir.path().join("pdns.conf"),
            format!(
                "launch=gsqlite3\ngsqlite3-database={database}\n\
                 local-address=127.0.0.1\nlocal-port={dns_port}\nsocket-dir={dir}\n\
                 api=yes\napi-key={api_key}\n\
                 webserver=yes\nwebserver-address=127.0.0.1\nwebserver-port={api_port}\n\
                 webserver-allow-from=127.0.0.0/8\n\
                 daemon=no\nguardian=no\nloglevel=3\ndisable-syslog=yes\n",
                database = database.display(),
                dir = dir.path().display(),
            ),
        )
        .map_err(|e| e.to_string())?;
        let log = std::fs::File::create(dir.path().join("pdns.log")).map_err(|e| e.to_string())?;
        let child = Command::new(SERVER)
            .arg(format!("--config-dir={}", dir.path().display()))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .map_err(|e| format!("cannot start {SERVER}: {e}"))?;
        let server = Self {
            child,
            base_url: format!("http://127.0.0.1:{api_port}"),
            api_key,
            dir,
        };
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", api_port)).is_err() {
            if started.elapsed() > Duration::from_secs(15) {
                return Err(format!(
                    "PowerDNS did not listen within 15 s: {}",
                    server.log()
                ));
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        for zone in zones {
            server.create_zone(zone).await?;
        }
        Ok(server)
    }

    /// What the server logged, for failure messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("pdns.log")).unwrap_or_default()
    }

    async fn api(
        &self,
        method: &str,
        path: &str,
        body: Option<&serde_json::Value>,
    ) -> Result<String, String> {
        let client = reqwest::Client::new();
        let url = format!("{}/api/v1/servers/localhost{path}", self.base_url);
        let mut request = client
            .request(
                method.parse().map_err(|_| format!("method {method}"))?,
                &url,
            )
            .header("X-API-Key", &self.api_key);
        if let Some(body) = body {
            request = request
                .header("content-type", "application/json")
                .body(body.to_string());
        }
        let response = request
            .send()
            .await
            .map_err(|e| format!("{method} {url}: {e}"))?;
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        if status.is_success() {
            Ok(text)
        } else {
            Err(format!("{method} {url}: {status}: {text}"))
        }
    }

    /// Creates the zone `name` (`example.com`), as `pdnsutil create-zone` would.
    pub async fn create_zone(&self, name: &str) -> Result<(), String> {
        let zone = format!("{}.", name.trim_end_matches('.'));
        self.api(
            "POST",
            "/zones",
            Some(&serde_json::json!({
                "name": zone, "kind": "Native", "nameservers": [format!("ns1.{zone}")],
            })),
        )
        .await
        .map(drop)
    }

    /// The managed rrsets (A, AAAA, CNAME) of `zone` with their records, as the API shows
    /// them.
    pub async fn rrsets(&self, zone: &str) -> Vec<serde_json::Value> {
        let zone = format!("{}.", zone.trim_end_matches('.'));
        let text = self
            .api("GET", &format!("/zones/{zone}"), None)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let body: serde_json::Value = serde_json::from_str(&text).expect("PowerDNS answers JSON");
        body["rrsets"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|r| matches!(r["type"].as_str(), Some("A" | "AAAA" | "CNAME")))
            .filter(|r| r["records"].as_array().is_some_and(|r| !r.is_empty()))
            .cloned()
            .collect()
    }

    /// Changes an rrset as someone would by hand (`pdnsutil`, the API, a web UI).
    pub async fn patch(&self, zone: &str, rrset: serde_json::Value) {
        let zone = format!("{}.", zone.trim_end_matches('.'));
        self.api(
            "PATCH",
            &format!("/zones/{zone}"),
            Some(&serde_json::json!({ "rrsets": [rrset] })),
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    }
}

impl Drop for PowerDns {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A fresh gsqlite3 database: the schema Debian ships, run through SQLite.
fn create_database(path: &PathBuf) -> Result<(), String> {
    let schema = std::fs::read_to_string(SCHEMA).map_err(|e| format!("{SCHEMA}: {e}"))?;
    let mut child = Command::new("sqlite3")
        .arg(path)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("NOT RUN: sqlite3 is needed to create PowerDNS's database ({e}): install Debian's `sqlite3`"))?;
    use std::io::Write;
    child
        .stdin
        .take()
        .ok_or("sqlite3 has no stdin")?
        .write_all(schema.as_bytes())
        .map_err(|e| e.to_string())?;
    let output = child.wait_with_output().map_err(|e| e.to_string())?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "sqlite3 could not create PowerDNS's database: {}",
            String::from_utf8_lossy(&output.stderr)
        ))
    }
}

/// A port free for both UDP and TCP (PowerDNS serves DNS on both).
fn free_udp_and_tcp_port() -> Result<u16, String> {
    for _ in 0..50 {
        let port = free_port()?;
        if std::net::UdpSocket::bind(("127.0.0.1", port)).is_ok() {
            return Ok(port);
        }
    }
    Err("no free port for PowerDNS's DNS listener".to_owned())
}
