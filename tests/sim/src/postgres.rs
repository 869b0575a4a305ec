//! A real PostgreSQL server for the tests: `FABRIK_TEST_POSTGRES_URL` (a server of your
//! own), else a throwaway cluster this process starts from Debian's `postgresql` package
//! (once per test binary, on a Unix socket and TLS on loopback, fsync off), stopped and
//! removed by a watchdog when the process exits.
//!
//! Where neither is possible, [`server`] panics with what to install: a test that needs
//! PostgreSQL fails rather than pass without running (README, "Tests").

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::app::TestCa;

/// How the tests reach the server.
#[derive(Debug, Clone)]
pub struct Server {
    /// A libpq connection string over the Unix socket (or the one you set).
    pub url: String,
    /// The same server over TLS on loopback (`sslmode=require`), and the CA that signed
    /// its certificate; `None` for a server of your own without
    /// `FABRIK_TEST_POSTGRES_TLS_URL` and `FABRIK_TEST_POSTGRES_CA`.
    pub tls: Option<(String, PathBuf)>,
}

/// The server, started on first use. Panics, naming what is missing, when there is none.
pub fn server() -> &'static Server {
    static SERVER: OnceLock<Result<Server, String>> = OnceLock::new();
    match SERVER.get_or_init(|| from_env().map_or_else(start, Ok)) {
        Ok(server) => server,
        Err(why) => panic!(
            "NOT RUN: this test needs PostgreSQL and {why}. Install Debian's `postgresql` (README, \"Tests\") or set FABRIK_TEST_POSTGRES_URL to a server of your own."
        ),
    }
}

fn from_env() -> Option<Server> {
    let url = std::env::var("FABRIK_TEST_POSTGRES_URL")
        .ok()
        .filter(|u| !u.is_empty())?;
    let tls = match (
        std::env::var("FABRIK_TEST_POSTGRES_TLS_URL"),
        std::env::var("FABRIK_TEST_POSTGRES_CA"),
    ) {
        (Ok(url), Ok(ca)) if !url.is_empty() && !ca.is_empty() => Some((url, PathBuf::from(ca))),
        _ => None,
    };
    Some(Server { url, tls })
}

/// The newest installed server's `bin` directory.
fn binaries() -> Result<PathBuf, String> {
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .map_err(|_| "it is not installed (no /usr/lib/postgresql)".to_owned())?
        .filter_map(Result::ok)
        .filter_map(|e| {
            let version = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").is_file().then_some((version, bin))
        })
        .collect();
    found.sort();
    found
        .pop()
        .map(|(_, bin)| bin)
        .ok_or_else(|| "it is not installed (no initdb under /usr/lib/postgresql)".to_owned())
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// `program` as the `postgres` user when this process is root (initdb refuses root).
fn command(bin: &Path, program: &str, root: bool) -> Command {
    if root {
        let mut cmd = Command::new("runuser");
        cmd.args(["-u", "postgres", "--"]).arg(bin.join(program));
        cmd
    } else {
        Command::new(bin.join(program))
    }
}

fn start() -> Result<Server, String> {
    let bin = binaries()?;
    let root = is_root();
    let dir = tempfile::Builder::new()
        .prefix("fabrik-pg-")
        .tempdir()
        .map_err(|e| format!("no temporary directory: {e}"))?
        .keep();
    let failed = |what: &str, e: String| format!("{what} failed ({e}; files in {})", dir.display());
    // TLS with a throwaway CA, so that a test can check the server is verified.
    let ca = TestCa::generate().map_err(|e| failed("a CA", e.to_string()))?;
    let (cert, key) = ca
        .issue_pem("localhost")
        .map_err(|e| failed("a certificate", e.to_string()))?;
    let write = |name: &str, text: &str| {
        std::fs::write(dir.join(name), text).map_err(|e| failed(name, e.to_string()))
    };
    write("ca.pem", &ca.pem())?;
    write("server.crt", &cert)?;
    write("server.key", &key)?;
    let run = |cmd: &mut Command, what: &str| -> Result<(), String> {
        let output = cmd
            .stdin(Stdio::null())
            .output()
            .map_err(|e| failed(what, e.to_string()))?;
        if output.status.success() {
            Ok(())
        } else {
            Err(failed(
                what,
                String::from_utf8_lossy(&output.stderr).trim().to_owned(),
            ))
        }
    };
    run(
        Command::new("chmod").arg("600").arg(dir.join("server.key")),
        "chmod",
    )?;
    if root {
        run(
            Command::new("chown").args(["-R", "postgres:"]).arg(&dir),
            "chown",
        )?;
    }
    let data = dir.join("data");
    run(
        command(&bin, "initdb", root).arg("-D").arg(&data).args([
            "-U",
            "postgres",
            "-A",
            "trust",
            "--no-sync",
        ]),
        "initdb",
    )?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| failed("a free port", e.to_string()))?;
    let options = format!(
        "-k {dir} -p {port} -c listen_addresses=127.0.0.1 -c ssl=on -c ssl_cert_file={dir}/server.crt -c ssl_key_file={dir}/server.key -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200",
        dir = dir.display()
    );
    run(
        command(&bin, "pg_ctl", root)
            .arg("-D")
            .arg(&data)
            .arg("-l")
            .arg(dir.join("log"))
            .args(["-w", "-o", &options, "start"]),
        "pg_ctl start",
    )?;
    // The watchdog: once this process is gone, the cluster stops and its files go.
    let stop = format!(
        "{prefix}{pg_ctl} -D {data} -m immediate stop",
        prefix = if root { "runuser -u postgres -- " } else { "" },
        pg_ctl = bin.join("pg_ctl").display(),
        data = data.display()
    );
    let watchdog = format!(
        "while kill -0 {pid} 2>/dev/null; do sleep 1; done; {stop} >/dev/null 2>&1; rm -rf {dir}",
        pid = std::process::id(),
        dir = dir.display()
    );
    Command::new("sh")
        .args(["-c", &watchdog])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| failed("the watchdog", e.to_string()))?;
    let socket = dir.join(format!(".s.PGSQL.{port}"));
    let started = Instant::now();
    while !socket.exists() {
        if started.elapsed() > Duration::from_secs(30) {
            return Err(failed("waiting for the server", "no socket".to_owned()));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(Server {
        url: format!(
            "host={} port={port} user=postgres dbname=postgres",
            dir.display()
        ),
        tls: Some((
            format!("host=localhost port={port} user=postgres dbname=postgres sslmode=require"),
            dir.join("ca.pem"),
        )),
    })
}
