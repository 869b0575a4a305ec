//! A pull-only client of the OCI distribution API, on the `reqwest` Fabrik already uses:
//! manifests by tag or digest, blobs by digest (every byte checked against its digest),
//! tag lists, and the registry's auth handshake (anonymous or with Docker's credentials,
//! then a bearer token for the repository's pull scope).
//!
//! Why not the `oci-client` crate: it pulls a second `reqwest` major version, a second
//! `sha2`, `oci-spec` and `chrono` into a build that needs four GETs and a token
//! request; what is written here is that and nothing else.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::credentials::{Credential, Credentials};
use super::reference::OciReference;

/// The media types of the CNCF wasm OCI artifact layout.
pub const WASM_LAYER: &str = "application/wasm";
pub const WASM_CONFIG: &str = "application/vnd.wasm.config.v0+json";
const MANIFEST_TYPES: &str = "application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json";
/// Every manifest type an image tag can point at, a multi-platform index first: the
/// digest is then the one `docker pull` prints and the server pulls, not one platform's.
const IMAGE_MANIFEST_TYPES: &str = "application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json";
/// Largest manifest read (they are a few hundred bytes).
const MAX_MANIFEST: usize = 4 << 20;
/// Largest component blob read.
pub const MAX_BLOB: usize = 256 << 20;
/// Largest page of a tag list: 1,000 tags of up to 128 characters, with room.
const MAX_TAG_PAGE: usize = 1 << 20;
/// Most tags a repository may have for a version range to be resolved.
const MAX_TAGS: usize = 100_000;
/// Largest answer of a token service (a JSON object with one or two tokens).
const MAX_TOKEN: usize = 64 << 10;

/// Why a registry could not give what was asked.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("{source_text}: cannot reach the registry: {message}")]
    Unreachable {
        source_text: String,
        message: String,
    },
    #[error("{source_text}: the registry refused the credentials{hint}")]
    Unauthorized { source_text: String, hint: String },
    #[error("{source_text}: {what} not found in the registry")]
    NotFound { source_text: String, what: String },
    #[error("{source_text}: the registry answered {status} for {what}")]
    Status {
        source_text: String,
        what: String,
        status: u16,
    },
    #[error(
        "{source_text}: {what} does not match its digest (expected {expected}, got {found}); refused"
    )]
    Digest {
        source_text: String,
        what: String,
        expected: String,
        found: String,
    },
    #[error("{source_text}: {message}")]
    Invalid {
        source_text: String,
        message: String,
    },
}

/// The part of an OCI image manifest a component needs.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    pub config: Descriptor,
    #[serde(default)]
    pub layers: Vec<Descriptor>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    pub media_type: String,
    pub digest: String,
    #[serde(default)]
    pub size: u64,
}

impl Manifest {
    /// The one `application/wasm` layer: the component.
    pub fn component(&self) -> Option<&Descriptor> {
        let mut wasm = self.layers.iter().filter(|l| l.media_type == WASM_LAYER);
        match (wasm.next(), wasm.next()) {
            (Some(layer), None) => Some(layer),
            _ => None,
        }
    }
}

/// `sha256:<hex>` of `bytes`.
pub fn digest_of(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// A registry session: one HTTP client, credentials, and the tokens obtained.
pub struct Registry {
    http: reqwest::Client,
    credentials: Credentials,
    /// `registry/repository` → bearer token for its pull scope.
    tokens: Mutex<HashMap<String, SecretString>>,
}

/// The answer to a GET: status, headers that matter, body.
struct Answer {
    status: u16,
    body: Vec<u8>,
    link: Option<String>,
}

/// How long one request to a registry may take, connection included.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(120);

impl Registry {
    pub fn new(credentials: Credentials) -> Result<Self, reqwest::Error> {
        Self::with_timeout(credentials, REQUEST_TIMEOUT)
    }

    /// A session whose requests give up after `timeout` (a registry that hangs is an
    /// error naming the source, not a stuck command).
    pub fn with_timeout(
        credentials: Credentials,
        timeout: Duration,
    ) -> Result<Self, reqwest::Error> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10).min(timeout))
            .timeout(timeout)
            .user_agent(concat!("fabrik/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self {
            http,
            credentials,
            tokens: Mutex::new(HashMap::new()),
        })
    }

    /// A session on a client the caller built (the source resolver's: HTTPS only, its
    /// address rules and extra CA, same-origin redirects).
    pub fn with_client(http: reqwest::Client, credentials: Credentials) -> Self {
        Self {
            http,
            credentials,
            tokens: Mutex::new(HashMap::new()),
        }
    }

    /// The digest of the manifest an image reference names, whatever its type (an index
    /// of several platforms included).
    pub async fn resolve_image(&self, reference: &OciReference) -> Result<String, RegistryError> {
        self.resolve_accepting(reference, IMAGE_MANIFEST_TYPES)
            .await
    }

    /// The digest of the manifest `reference` names: its digest if it has one, else what
    /// its tag points at now.
    pub async fn resolve(&self, reference: &OciReference) -> Result<String, RegistryError> {
        self.resolve_accepting(reference, MANIFEST_TYPES).await
    }

    async fn resolve_accepting(
        &self,
        reference: &OciReference,
        accept: &str,
    ) -> Result<String, RegistryError> {
        if let Some(digest) = &reference.digest {
            return Ok(digest.clone());
        }
        let tag = reference
            .tag
            .clone()
            .ok_or_else(|| RegistryError::Invalid {
                source_text: reference.to_string(),
                message: "no tag or digest to resolve".to_owned(),
            })?;
        let (body, _) = self
            .manifest_bytes_accepting(reference, &tag, accept)
            .await?;
        Ok(digest_of(&body))
    }

    /// The manifest with digest `digest`, checked against it.
    pub async fn manifest(
        &self,
        reference: &OciReference,
        digest: &str,
    ) -> Result<Manifest, RegistryError> {
        let (body, _) = self.manifest_bytes(reference, digest).await?;
        let found = digest_of(&body);
        if found != digest {
            return Err(RegistryError::Digest {
                source_text: reference.to_string(),
                what: "the manifest".to_owned(),
                expected: digest.to_owned(),
                found,
            });
        }
        serde_json::from_slice(&body).map_err(|e| RegistryError::Invalid {
            source_text: reference.to_string(),
            message: format!("the manifest is not an OCI image manifest: {e}"),
        })
    }

    async fn manifest_bytes(
        &self,
        reference: &OciReference,
        tag_or_digest: &str,
    ) -> Result<(Vec<u8>, u16), RegistryError> {
        self.manifest_bytes_accepting(reference, tag_or_digest, MANIFEST_TYPES)
            .await
    }

    async fn manifest_bytes_accepting(
        &self,
        reference: &OciReference,
        tag_or_digest: &str,
        accept: &str,
    ) -> Result<(Vec<u8>, u16), RegistryError> {
        let path = format!("/v2/{}/manifests/{tag_or_digest}", reference.repository);
        let answer = self
            .get(reference, &path, Some(accept), MAX_MANIFEST)
            .await?;
        let what = format!("manifest `{tag_or_digest}`");
        check_status(reference, &what, answer.status)?;
        if answer.body.len() > MAX_MANIFEST {
            return Err(RegistryError::Invalid {
                source_text: reference.to_string(),
                message: format!("{what} is larger than {MAX_MANIFEST} bytes"),
            });
        }
        Ok((answer.body, answer.status))
    }

    /// The blob `digest`, checked against it.
    pub async fn blob(
        &self,
        reference: &OciReference,
        digest: &str,
    ) -> Result<Vec<u8>, RegistryError> {
        let path = format!("/v2/{}/blobs/{digest}", reference.repository);
        let answer = self.get(reference, &path, None, MAX_BLOB).await?;
        let what = format!("blob `{digest}`");
        check_status(reference, &what, answer.status)?;
        let found = digest_of(&answer.body);
        if found != digest {
            return Err(RegistryError::Digest {
                source_text: reference.to_string(),
                what: "the component layer".to_owned(),
                expected: digest.to_owned(),
                found,
            });
        }
        Ok(answer.body)
    }

    /// Every tag of the repository (following the `Link` header's pages).
    pub async fn tags(&self, reference: &OciReference) -> Result<Vec<String>, RegistryError> {
        #[derive(Deserialize)]
        struct TagList {
            #[serde(default)]
            tags: Option<Vec<String>>,
        }
        let mut tags = Vec::new();
        let mut path = format!("/v2/{}/tags/list?n=1000", reference.repository);
        for _ in 0..100 {
            let answer = self.get(reference, &path, None, MAX_TAG_PAGE).await?;
            check_status(reference, "the tag list", answer.status)?;
            let page: TagList =
                serde_json::from_slice(&answer.body).map_err(|e| RegistryError::Invalid {
                    source_text: reference.to_string(),
                    message: format!("the tag list is not JSON: {e}"),
                })?;
            tags.extend(page.tags.unwrap_or_default());
            if tags.len() > MAX_TAGS {
                return Err(RegistryError::Invalid {
                    source_text: reference.to_string(),
                    message: format!(
                        "the repository has more than {MAX_TAGS} tags; pin a tag or a digest instead of a version range"
                    ),
                });
            }
            // `Link: </v2/<name>/tags/list?last=x&n=1000>; rel="next"`
            match answer
                .link
                .as_deref()
                .and_then(|l| l.split_once('<'))
                .and_then(|(_, rest)| rest.split_once('>'))
            {
                Some((next, _)) if next.starts_with("/v2/") => path = next.to_owned(),
                _ => break,
            }
        }
        Ok(tags)
    }

    /// GET `path` from the reference's registry, with the auth handshake: a 401 with a
    /// `Bearer` challenge gets a token for the repository's pull scope (with the user's
    /// credentials if they have some for this registry, else anonymously), a `Basic`
    /// challenge the credentials themselves; then the request is sent once more.
    async fn get(
        &self,
        reference: &OciReference,
        path: &str,
        accept: Option<&str>,
        max: usize,
    ) -> Result<Answer, RegistryError> {
        let url = format!("{}{path}", reference.base_url());
        let key = format!("{}/{}", reference.registry, reference.repository);
        let token = self.token(&key);
        let first = self
            .send(reference, &url, accept, token.as_ref().map(Auth::Bearer))
            .await?;
        if first.status().as_u16() != 401 {
            return read(reference, first, max).await;
        }
        let challenge = first
            .headers()
            .get(reqwest::header::WWW_AUTHENTICATE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let credential = self.credentials.for_registry(&reference.registry);
        let retry = if let Some(params) = challenge.strip_prefix("Bearer ") {
            let token = self
                .fetch_token(reference, params, credential.as_ref())
                .await?;
            self.tokens
                .lock()
                .map_err(|_| unauthorized(reference, ""))?
                .insert(key, token.clone());
            self.send(reference, &url, accept, Some(Auth::Bearer(&token)))
                .await?
        } else if challenge.starts_with("Basic") {
            let Some(credential) = &credential else {
                return Err(unauthorized(
                    reference,
                    "; log in with `docker login` first",
                ));
            };
            self.send(reference, &url, accept, Some(Auth::Basic(credential)))
                .await?
        } else {
            return Err(unauthorized(reference, ""));
        };
        if retry.status().as_u16() == 401 || retry.status().as_u16() == 403 {
            return Err(unauthorized(
                reference,
                if credential.is_some() {
                    "; check the credentials `docker login` stored for this registry"
                } else {
                    "; the repository is private: log in with `docker login`"
                },
            ));
        }
        read(reference, retry, max).await
    }

    fn token(&self, key: &str) -> Option<SecretString> {
        self.tokens.lock().ok().and_then(|t| t.get(key).cloned())
    }

    async fn send(
        &self,
        reference: &OciReference,
        url: &str,
        accept: Option<&str>,
        auth: Option<Auth<'_>>,
    ) -> Result<reqwest::Response, RegistryError> {
        let mut request = self.http.get(url);
        if let Some(accept) = accept {
            request = request.header(reqwest::header::ACCEPT, accept);
        }
        request = match auth {
            Some(Auth::Bearer(token)) => request.bearer_auth(token.expose_secret()),
            Some(Auth::Basic(credential)) => request.basic_auth(
                &credential.username,
                Some(credential.secret.expose_secret()),
            ),
            None => request,
        };
        request
            .send()
            .await
            .map_err(|e| RegistryError::Unreachable {
                source_text: reference.to_string(),
                message: without_url(&e),
            })
    }

    /// The token endpoint of a `Bearer realm="…",service="…",scope="…"` challenge.
    async fn fetch_token(
        &self,
        reference: &OciReference,
        params: &str,
        credential: Option<&Credential>,
    ) -> Result<SecretString, RegistryError> {
        let params = challenge_params(params);
        let realm = params.get("realm").ok_or_else(|| RegistryError::Invalid {
            source_text: reference.to_string(),
            message: "the registry asked for a token without saying where to get one".to_owned(),
        })?;
        let realm_url = reqwest::Url::parse(realm).map_err(|e| RegistryError::Invalid {
            source_text: reference.to_string(),
            message: format!("the registry's token realm is not a URL: {e}"),
        })?;
        let loopback = realm_url.host_str().is_some_and(|h| {
            h == "localhost"
                || h.parse::<std::net::IpAddr>()
                    .is_ok_and(|ip| ip.is_loopback())
        });
        if realm_url.scheme() != "https" && !loopback {
            return Err(RegistryError::Invalid {
                source_text: reference.to_string(),
                message: format!("the registry's token realm `{realm}` is not HTTPS; refused"),
            });
        }
        let scope = params
            .get("scope")
            .cloned()
            .unwrap_or_else(|| format!("repository:{}:pull", reference.repository));
        let mut query: Vec<(&str, &str)> = vec![("scope", &scope)];
        if let Some(service) = params.get("service") {
            query.push(("service", service));
        }
        let mut request = self.http.get(realm_url).query(&query);
        if let Some(credential) = credential {
            request = request.basic_auth(
                &credential.username,
                Some(credential.secret.expose_secret()),
            );
        }
        let response = request
            .send()
            .await
            .map_err(|e| RegistryError::Unreachable {
                source_text: reference.to_string(),
                message: format!("token request: {}", without_url(&e)),
            })?;
        if !response.status().is_success() {
            return Err(unauthorized(
                reference,
                &format!(
                    "; its token service answered {}",
                    response.status().as_u16()
                ),
            ));
        }
        #[derive(Deserialize)]
        struct Token {
            token: Option<String>,
            access_token: Option<String>,
        }
        let body = read(reference, response, MAX_TOKEN).await?.body;
        let token: Token = serde_json::from_slice(&body).map_err(|e| RegistryError::Invalid {
            source_text: reference.to_string(),
            message: format!("the token service's answer is not JSON: {e}"),
        })?;
        token
            .token
            .or(token.access_token)
            .map(SecretString::from)
            .ok_or_else(|| unauthorized(reference, "; its token service gave no token"))
    }
}

enum Auth<'a> {
    Bearer(&'a SecretString),
    Basic(&'a Credential),
}

fn unauthorized(reference: &OciReference, hint: &str) -> RegistryError {
    RegistryError::Unauthorized {
        source_text: reference.to_string(),
        hint: hint.to_owned(),
    }
}

fn check_status(reference: &OciReference, what: &str, status: u16) -> Result<(), RegistryError> {
    match status {
        200..=299 => Ok(()),
        404 => Err(RegistryError::NotFound {
            source_text: reference.to_string(),
            what: what.to_owned(),
        }),
        status => Err(RegistryError::Status {
            source_text: reference.to_string(),
            what: what.to_owned(),
            status,
        }),
    }
}

/// The answer's body, read to `max` bytes at most: a larger one is refused as soon as
/// its announced length or the bytes read pass `max`, never buffered whole.
async fn read(
    reference: &OciReference,
    response: reqwest::Response,
    max: usize,
) -> Result<Answer, RegistryError> {
    let status = response.status().as_u16();
    let link = response
        .headers()
        .get(reqwest::header::LINK)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    if response.content_length().is_some_and(|n| n > max as u64) {
        return Err(RegistryError::Invalid {
            source_text: reference.to_string(),
            message: format!("the answer is larger than {max} bytes"),
        });
    }
    let mut body = Vec::new();
    let mut response = response;
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| RegistryError::Unreachable {
            source_text: reference.to_string(),
            message: without_url(&e),
        })?
    {
        if body.len() + chunk.len() > max {
            return Err(RegistryError::Invalid {
                source_text: reference.to_string(),
                message: format!("the answer is larger than {max} bytes"),
            });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Answer { status, body, link })
}

/// A reqwest error without its URL (a token realm's query could carry more than it should).
fn without_url(error: &reqwest::Error) -> String {
    let mut text = error.to_string();
    if let Some(url) = error.url() {
        text = text.replace(url.as_str(), "…");
    }
    if error.is_timeout() {
        "timed out".to_owned()
    } else {
        text
    }
}

/// `realm="https://ghcr.io/token",service="ghcr.io",scope="repository:a/b:pull"`.
fn challenge_params(text: &str) -> HashMap<String, String> {
    let mut params = HashMap::new();
    let mut rest = text.trim();
    while let Some((key, after)) = rest.split_once('=') {
        let key = key
            .trim()
            .trim_start_matches(',')
            .trim()
            .to_ascii_lowercase();
        let after = after.trim_start();
        let (value, remaining) = if let Some(quoted) = after.strip_prefix('"') {
            match quoted.split_once('"') {
                Some((value, remaining)) => (value, remaining),
                None => (quoted, ""),
            }
        } else {
            match after.split_once(',') {
                Some((value, remaining)) => (value, remaining),
                None => (after, ""),
            }
        };
        params.insert(key, value.to_owned());
        rest = remaining.trim_start_matches(',').trim();
    }
    params
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges_are_parsed() {
        let params = challenge_params(
            r#"realm="https://ghcr.io/token",service="ghcr.io",scope="repository:acme/dns:pull""#,
        );
        assert_eq!(params["realm"], "https://ghcr.io/token");
        assert_eq!(params["service"], "ghcr.io");
        assert_eq!(params["scope"], "repository:acme/dns:pull");
    }

    #[test]
    fn the_component_is_the_one_wasm_layer() {
        let manifest: Manifest = serde_json::from_str(&format!(
            r#"{{"schemaVersion":2,"config":{{"mediaType":"{WASM_CONFIG}","digest":"sha256:c","size":2}},
               "layers":[{{"mediaType":"{WASM_LAYER}","digest":"sha256:w","size":10}}]}}"#
        ))
        .expect("manifest");
        assert_eq!(
            manifest.component().map(|l| l.digest.as_str()),
            Some("sha256:w")
        );
        let two: Manifest = serde_json::from_str(&format!(
            r#"{{"config":{{"mediaType":"x","digest":"sha256:c"}},
               "layers":[{{"mediaType":"{WASM_LAYER}","digest":"sha256:a"}},{{"mediaType":"{WASM_LAYER}","digest":"sha256:b"}}]}}"#
        ))
        .expect("manifest");
        assert!(two.component().is_none());
    }
}
