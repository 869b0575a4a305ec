//! A real git server for tests: Debian's `git-http-backend` (git's own smart-HTTP
//! server, a CGI program) behind an HTTPS listener on loopback, serving bare
//! repositories the test creates and pushes to with the real `git`. What source
//! resolution reads from it is exactly what GitHub or any git host answers.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};

use crate::app::TestCa;

/// Where Debian's `git` package installs the smart-HTTP server.
const BACKEND: &str = "/usr/lib/git-core/git-http-backend";

/// Bare repositories under a temporary root, served over HTTPS; removed on drop.
pub struct RealGit {
    root: tempfile::TempDir,
    /// Where the HTTPS listener is.
    pub addr: SocketAddr,
}

fn git(dir: &Path, args: &[&str]) -> Result<String, String> {
    let output = Command::new("git")
        .args([
            "-c",
            "user.name=Fabrik Test",
            "-c",
            "user.email=test@fabrik.invalid",
            "-c",
            "init.defaultBranch=main",
        ])
        .args(args)
        .current_dir(dir)
        .env_remove("GIT_DIR")
        .output()
        .map_err(|e| format!("cannot run git: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "git {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned())
}

impl RealGit {
    /// Starts the server, its certificate issued by `ca` for whatever name the client
    /// asks (tests point a git host's name at it with a resolve override).
    pub async fn start(ca: Arc<TestCa>) -> Result<Self, String> {
        if !Path::new(BACKEND).is_file() {
            return Err(format!(
                "{BACKEND} is missing (Debian package `git`): the real git server cannot run"
            ));
        }
        let root = tempfile::tempdir().map_err(|e| e.to_string())?;
        let router = Router::new()
            .fallback(cgi)
            .with_state(root.path().to_path_buf());
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut config = rustls::ServerConfig::builder()
            .with_no_client_auth()
            .with_cert_resolver(ca);
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        let listener = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
        listener.set_nonblocking(true).map_err(|e| e.to_string())?;
        let addr = listener.local_addr().map_err(|e| e.to_string())?;
        let tls = axum_server::tls_rustls::RustlsConfig::from_config(Arc::new(config));
        let server = axum_server::from_tcp_rustls(listener, tls);
        tokio::spawn(async move { server.serve(router.into_make_service()).await });
        Ok(Self { root, addr })
    }

    fn work(&self, repository: &str) -> PathBuf {
        self.root.path().join("work").join(repository)
    }

    /// Creates `owner/name.git` (bare), with a work tree to commit from.
    pub fn create(&self, repository: &str) -> Result<(), String> {
        let bare = self.root.path().join(format!("{repository}.git"));
        std::fs::create_dir_all(&bare).map_err(|e| e.to_string())?;
        git(&bare, &["init", "--bare", "--quiet"])?;
        let work = self.work(repository);
        std::fs::create_dir_all(&work).map_err(|e| e.to_string())?;
        git(&work, &["init", "--quiet"])?;
        git(
            &work,
            &["remote", "add", "origin", &bare.display().to_string()],
        )?;
        Ok(())
    }

    /// Commits to `branch` of `repository` and pushes it, as a developer's `git push`;
    /// returns the new commit id.
    pub fn commit(&self, repository: &str, branch: &str, message: &str) -> Result<String, String> {
        let work = self.work(repository);
        git(&work, &["checkout", "--quiet", "-B", branch])?;
        std::fs::write(work.join("CHANGES"), message).map_err(|e| e.to_string())?;
        git(&work, &["add", "CHANGES"])?;
        git(&work, &["commit", "--quiet", "-m", message])?;
        git(&work, &["push", "--quiet", "--force", "origin", branch])?;
        git(&work, &["rev-parse", "HEAD"])
    }
}

/// One request through `git-http-backend`, as a web server runs a CGI program.
async fn cgi(
    State(root): State<PathBuf>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let content_type = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let run = tokio::process::Command::new(BACKEND)
        .env_clear()
        .env("GIT_PROJECT_ROOT", &root)
        .env("GIT_HTTP_EXPORT_ALL", "1")
        .env("REQUEST_METHOD", method.as_str())
        .env("PATH_INFO", uri.path())
        .env("QUERY_STRING", uri.query().unwrap_or_default())
        .env("CONTENT_TYPE", content_type)
        .env("CONTENT_LENGTH", body.len().to_string())
        .env("REMOTE_ADDR", "127.0.0.1")
        .env("GATEWAY_INTERFACE", "CGI/1.1")
        .env("SERVER_PROTOCOL", "HTTP/1.1")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn();
    let mut child = match run {
        Ok(child) => child,
        Err(e) => return (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    };
    if let Some(mut stdin) = child.stdin.take() {
        use tokio::io::AsyncWriteExt;
        let _ = stdin.write_all(&body).await;
    }
    let output = match child.wait_with_output().await {
        Ok(output) => output,
        Err(e) => return (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    };
    respond(&output.stdout)
}

/// A CGI program's output (headers, a blank line, the body) as an HTTP response.
fn respond(output: &[u8]) -> Response {
    let (head, body) = match find(output, b"\r\n\r\n") {
        Some(at) => (&output[..at], &output[at + 4..]),
        None => match find(output, b"\n\n") {
            Some(at) => (&output[..at], &output[at + 2..]),
            None => (&output[..0], output),
        },
    };
    let mut status = StatusCode::OK;
    let mut response_headers = HeaderMap::new();
    for line in String::from_utf8_lossy(head).lines() {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("status") {
            status = value
                .split_whitespace()
                .next()
                .and_then(|code| code.parse().ok())
                .and_then(|code| StatusCode::from_u16(code).ok())
                .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        } else if let (Ok(name), Ok(value)) = (
            axum::http::HeaderName::from_bytes(name.trim().as_bytes()),
            axum::http::HeaderValue::from_str(value),
        ) {
            response_headers.insert(name, value);
        }
    }
    (status, response_headers, body.to_vec()).into_response()
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}
