//! OCI registries for tests: the real one (Debian's `docker-registry`, the CNCF
//! distribution server) started on loopback, and a client that pushes a WebAssembly
//! component in the CNCF wasm OCI artifact layout through the distribution API, as
//! `wkg oci push` and `oras push` do.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

/// The config media type and layer media type of a wasm component artifact.
pub const WASM_CONFIG: &str = "application/vnd.wasm.config.v0+json";
pub const WASM_LAYER: &str = "application/wasm";

/// `docker-registry` serving on `127.0.0.1:<port>`, storage in a temporary directory;
/// stopped on drop.
pub struct RealRegistry {
    child: Child,
    pub port: u16,
    /// Where the registry keeps blobs (for tests that tamper with one).
    pub storage: PathBuf,
    _dir: tempfile::TempDir,
}

impl RealRegistry {
    /// Starts the registry, or says why it cannot (the binary is missing).
    pub fn start() -> Result<Self, String> {
        Self::start_with(None)
    }

    /// Starts the registry serving HTTPS with `cert` and `key` (PEM), as a public
    /// registry does (source resolution speaks HTTPS only).
    pub fn start_tls(cert: &str, key: &str) -> Result<Self, String> {
        Self::start_with(Some((cert, key)))
    }

    fn start_with(tls: Option<(&str, &str)>) -> Result<Self, String> {
        let binary = ["/usr/bin/docker-registry", "/usr/sbin/docker-registry"]
            .into_iter()
            .map(PathBuf::from)
            .find(|p| p.is_file())
            .ok_or("docker-registry is not installed (Debian package `docker-registry`)")?;
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let storage = dir.path().join("storage");
        let port = free_port()?;
        let config = dir.path().join("config.yml");
        let mut text = format!(
            "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n",
            storage.display()
        );
        if let Some((cert, key)) = tls {
            let (cert_path, key_path) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
            std::fs::write(&cert_path, cert).map_err(|e| e.to_string())?;
            std::fs::write(&key_path, key).map_err(|e| e.to_string())?;
            text.push_str(&format!(
                "  tls:\n    certificate: {}\n    key: {}\n",
                cert_path.display(),
                key_path.display()
            ));
        }
        std::fs::write(&config, text).map_err(|e| e.to_string())?;
        let child = Command::new(binary)
            .arg("serve")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start docker-registry: {e}"))?;
        let registry = Self {
            child,
            port,
            storage,
            _dir: dir,
        };
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if started.elapsed() > Duration::from_secs(10) {
                return Err("docker-registry did not listen within 10 s".to_owned());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(registry)
    }

    /// `127.0.0.1:<port>`, as an `oci://` source names it.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The file holding blob `sha256:<hex>`.
    pub fn blob_file(&self, hex: &str) -> PathBuf {
        self.storage
            .join("docker/registry/v2/blobs/sha256")
            .join(&hex[..2])
            .join(hex)
            .join("data")
    }
}

impl Drop for RealRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A TCP port free on loopback now.
pub(crate) fn free_port() -> Result<u16, String> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    listener
        .local_addr()
        .map(|a| a.port())
        .map_err(|e| e.to_string())
}

/// `sha256:<hex>` of `bytes`.
pub fn digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// Pushes `wasm` as `repository:tag` to the registry at `base` (`http://host:port`), in
/// the wasm artifact layout; returns the manifest's digest.
pub async fn push_component(
    base: &str,
    repository: &str,
    tag: &str,
    wasm: &[u8],
) -> Result<String, String> {
    let http = reqwest::Client::new();
    let config = br#"{"architecture":"wasm","os":"wasip2"}"#;
    push_blob(&http, base, repository, config).await?;
    push_blob(&http, base, repository, wasm).await?;
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": { "mediaType": WASM_CONFIG, "digest": digest(config), "size": config.len() },
        "layers": [{ "mediaType": WASM_LAYER, "digest": digest(wasm), "size": wasm.len() }],
    });
    let body = serde_json::to_vec(&manifest).map_err(|e| e.to_string())?;
    let response = http
        .put(format!("{base}/v2/{repository}/manifests/{tag}"))
        .header("content-type", "application/vnd.oci.image.manifest.v1+json")
        .body(body.clone())
        .send()
        .await
        .map_err(|e| e.to_string())?;
    if !response.status().is_success() {
        return Err(format!("manifest push answered {}", response.status()));
    }
    Ok(digest(&body))
}

/// Pushes a small container image (an OCI image manifest, a config and one layer whose
/// bytes are `layer`) as `repository:tag` with `http` to `base`; returns the manifest's
/// digest, the id a tag resolves to.
pub async fn push_image(
    http: &reqwest::Client,
    base: &str,
    repository: &str,
    tag: &str,
    layer: &[u8],
) -> Result<String, String> {
    let config =
        br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#;
    push_blob(http, base, repository, config).await?;
    push_blob(http, base, repository, layer).await?;
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": { "mediaType": "application/vnd.oci.image.config.v1+json", "digest": digest(config), "size": config.len() },
        "layers": [{ "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": digest(layer), "size": layer.len() }],
    });
    let body = serde_json::to_vec(&manifest).map_err(|e| e.to_string())?;
    let response = http
        .put(format!("{base}/v2/{repository}/manifests/{tag}"))
        .header("content-type", "application/vnd.oci.image.manifest.v1+json")
        .body(body.clone())
        .send()
        .await
        .map_err(|e| e.to_string())?;
    if !response.status().is_success() {
        return Err(format!("manifest push answered {}", response.status()));
    }
    Ok(digest(&body))
}

async fn push_blob(
    http: &reqwest::Client,
    base: &str,
    repository: &str,
    bytes: &[u8],
) -> Result<(), String> {
    let started = http
        .post(format!("{base}/v2/{repository}/blobs/uploads/"))
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let location = started
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| {
            format!(
                "upload start answered {} without a location",
                started.status()
            )
        })?
        .to_owned();
    let url = if location.starts_with("http") {
        location
    } else {
        format!("{base}{location}")
    };
    let separator = if url.contains('?') { '&' } else { '?' };
    let response = http
        .put(format!("{url}{separator}digest={}", digest(bytes)))
        .header("content-type", "application/octet-stream")
        .body(bytes.to_vec())
        .send()
        .await
        .map_err(|e| e.to_string())?;
    if !response.status().is_success() {
        return Err(format!("blob push answered {}", response.status()));
    }
    Ok(())
}

/// `wasm` with a custom section appended: the same component, other bytes (another
/// digest), for tests that need a second version.
pub fn with_custom_section(wasm: &[u8], note: &str) -> Vec<u8> {
    let name = b"fabrik-test";
    let mut payload = vec![u8::try_from(name.len()).unwrap_or(u8::MAX)];
    payload.extend_from_slice(name);
    payload.extend_from_slice(note.as_bytes());
    let mut out = wasm.to_vec();
    out.push(0); // custom section id
    let mut size = payload.len();
    loop {
        let byte = u8::try_from(size & 0x7f).unwrap_or(0);
        size >>= 7;
        if size == 0 {
            out.push(byte);
            break;
        }
        out.push(byte | 0x80);
    }
    out.extend_from_slice(&payload);
    out
}
