//! Where apps' code comes from, simulated on the app endpoint's HTTPS listener (chosen
//! by the `Host` header, reached through `FABRIK_RESOLVE` as any other name): a git host
//! answering the smart-HTTP ref advertisement (`GET <repo>.git/info/refs?service=
//! git-upload-pack`, protocol v0: pkt-lines, `# service=…`, a flush, `<sha> <ref>`
//! lines, a flush; git's `Documentation/gitprotocol-http.txt`) and a container registry
//! answering the distribution API's manifest reads with the anonymous token handshake
//! (401 with `WWW-Authenticate: Bearer realm=…,service=…,scope=…`, then `GET realm`
//! gives a token; the OCI distribution spec and Docker's token spec).
//!
//! Every repository has a `main` branch and every image every tag: the sandbox's
//! fixtures and `fabrik new`'s starters name sources that must resolve without network.
//! Tests move a branch or a tag with [`Sources::push`] and [`Sources::push_image`].

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

/// Git hosts the sandbox answers for.
pub const GIT_HOSTS: [&str; 3] = ["github.com", "gitlab.com", "codeberg.org"];
/// Registries the sandbox answers for.
pub const REGISTRY_HOSTS: [&str; 3] = ["ghcr.io", "registry-1.docker.io", "quay.io"];

/// The simulated git hosts and registries.
#[derive(Clone, Default)]
pub struct Sources {
    /// `host/owner/repo` → branch → how many times it was pushed.
    pushes: Arc<Mutex<HashMap<String, HashMap<String, u32>>>>,
    /// `host/repository` → tag → how many times it was pushed.
    images: Arc<Mutex<HashMap<String, HashMap<String, u32>>>>,
    /// Requests seen, as `host path` (tests count them).
    seen: Arc<Mutex<Vec<String>>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// 40 hex digits, as a commit id, for a branch's `generation`th push.
fn commit(repository: &str, branch: &str, generation: u32) -> String {
    let digest = Sha256::digest(format!("{repository}\n{branch}\n{generation}"));
    hex::encode(&digest[..20])
}

impl Sources {
    /// Whether `host` is one of the simulated git hosts or registries.
    pub fn serves(host: &str) -> bool {
        GIT_HOSTS.contains(&host) || REGISTRY_HOSTS.contains(&host)
    }

    /// Moves `branch` of `repository` (`https://github.com/acme/shop`) to a new commit,
    /// as a `git push` would; returns it.
    pub fn push(&self, repository: &str, branch: &str) -> String {
        let key = repo_key(repository);
        let mut pushes = lock(&self.pushes);
        let generation = pushes
            .entry(key.clone())
            .or_default()
            .entry(branch.to_owned())
            .or_insert(0);
        *generation += 1;
        commit(&key, branch, *generation)
    }

    /// The commit `branch` of `repository` points at now.
    pub fn head(&self, repository: &str, branch: &str) -> String {
        let key = repo_key(repository);
        let generation = lock(&self.pushes)
            .get(&key)
            .and_then(|b| b.get(branch).copied())
            .unwrap_or(0);
        commit(&key, branch, generation)
    }

    /// Moves `tag` of `image` (`ghcr.io/acme/api`) to a new manifest; returns its digest.
    pub fn push_image(&self, image: &str, tag: &str) -> String {
        let mut images = lock(&self.images);
        let generation = images
            .entry(image.to_owned())
            .or_default()
            .entry(tag.to_owned())
            .or_insert(0);
        *generation += 1;
        digest(&manifest(image, tag, *generation))
    }

    /// The digest `tag` of `image` points at now.
    pub fn image_digest(&self, image: &str, tag: &str) -> String {
        digest(&manifest(image, tag, self.image_generation(image, tag)))
    }

    fn image_generation(&self, image: &str, tag: &str) -> u32 {
        lock(&self.images)
            .get(image)
            .and_then(|t| t.get(tag).copied())
            .unwrap_or(0)
    }

    /// How many requests reached the simulated sources.
    pub fn requests(&self) -> usize {
        lock(&self.seen).len()
    }

    /// Answers a request for one of [`Sources::serves`]' hosts.
    pub fn answer(&self, host: &str, uri: &Uri, headers: &HeaderMap) -> Response {
        lock(&self.seen).push(format!("{host} {}", uri.path()));
        if GIT_HOSTS.contains(&host) {
            self.git(host, uri)
        } else {
            self.registry(host, uri, headers)
        }
    }

    fn git(&self, host: &str, uri: &Uri) -> Response {
        let Some(repository) = uri.path().strip_suffix(".git/info/refs") else {
            return (StatusCode::NOT_FOUND, "Not Found").into_response();
        };
        if uri.query() != Some("service=git-upload-pack") {
            // The dumb protocol is not served: smart clients always ask for a service.
            return (StatusCode::FORBIDDEN, "Please upgrade your git client.").into_response();
        }
        let key = format!("{host}{repository}");
        let mut branches: Vec<String> = lock(&self.pushes)
            .get(&key)
            .map(|b| b.keys().cloned().collect())
            .unwrap_or_default();
        if !branches.iter().any(|b| b == "main") {
            branches.push("main".to_owned());
        }
        branches.sort();
        let head = self.head(&format!("https://{key}"), "main");
        let mut body = pkt_line("# service=git-upload-pack\n");
        body.push_str("0000");
        body.push_str(&pkt_line(&format!(
            "{head} HEAD\0multi_ack side-band-64k symref=HEAD:refs/heads/main agent=git/sim\n"
        )));
        for branch in &branches {
            let sha = self.head(&format!("https://{key}"), branch);
            body.push_str(&pkt_line(&format!("{sha} refs/heads/{branch}\n")));
        }
        body.push_str("0000");
        (
            StatusCode::OK,
            [
                (
                    "content-type",
                    "application/x-git-upload-pack-advertisement",
                ),
                ("cache-control", "no-cache"),
            ],
            body,
        )
            .into_response()
    }

    fn registry(&self, host: &str, uri: &Uri, headers: &HeaderMap) -> Response {
        let path = uri.path();
        if path == "/token" {
            let body =
                serde_json::json!({ "token": TOKEN, "access_token": TOKEN, "expires_in": 300 });
            return axum::Json(body).into_response();
        }
        let authorized = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v == format!("Bearer {TOKEN}"));
        let Some(rest) = path.strip_prefix("/v2/") else {
            return (StatusCode::NOT_FOUND, "404 page not found").into_response();
        };
        let challenge = |scope: &str| {
            let value = format!(
                "Bearer realm=\"https://{host}/token\",service=\"{host}\",scope=\"{scope}\""
            );
            (
                StatusCode::UNAUTHORIZED,
                [("www-authenticate", value)],
                axum::Json(serde_json::json!({ "errors": [{ "code": "UNAUTHORIZED", "message": "authentication required" }] })),
            )
                .into_response()
        };
        if rest.is_empty() {
            return if authorized {
                axum::Json(serde_json::json!({})).into_response()
            } else {
                challenge("")
            };
        }
        let Some((repository, reference)) = rest.rsplit_once("/manifests/") else {
            return (StatusCode::NOT_FOUND, "404 page not found").into_response();
        };
        if !authorized {
            return challenge(&format!("repository:{repository}:pull"));
        }
        if reference.starts_with("sha256:") {
            return (
                StatusCode::NOT_FOUND,
                axum::Json(serde_json::json!({ "errors": [{ "code": "MANIFEST_UNKNOWN", "message": "manifest unknown" }] })),
            )
                .into_response();
        }
        let image = format!("{host}/{repository}");
        let body = manifest(&image, reference, self.image_generation(&image, reference));
        let digest = digest(&body);
        (
            StatusCode::OK,
            [
                (
                    "content-type",
                    "application/vnd.oci.image.manifest.v1+json".to_owned(),
                ),
                ("docker-content-digest", digest),
            ],
            body,
        )
            .into_response()
    }
}

const TOKEN: &str = "sandbox-registry-token";

/// `host/owner/repo` of an https repository URL, without `.git` or a trailing slash.
fn repo_key(repository: &str) -> String {
    let rest = repository
        .strip_prefix("https://")
        .unwrap_or(repository)
        .trim_end_matches('/');
    rest.strip_suffix(".git").unwrap_or(rest).to_owned()
}

fn pkt_line(text: &str) -> String {
    format!("{:04x}{text}", text.len() + 4)
}

/// An image manifest whose bytes differ per push.
fn manifest(image: &str, tag: &str, generation: u32) -> Vec<u8> {
    let layer = hex::encode(Sha256::digest(format!("{image}:{tag}#{generation}")));
    serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": { "mediaType": "application/vnd.oci.image.config.v1+json", "digest": format!("sha256:{layer}"), "size": 2 },
        "layers": [{ "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": format!("sha256:{layer}"), "size": 2 }],
    })
    .to_string()
    .into_bytes()
}

fn digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}
