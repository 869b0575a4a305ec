//! Registry credentials as users already have them: Docker's `config.json`
//! (`$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`), its `auths` entries and
//! its credential helpers (`credHelpers`, `credsStore`: `docker-credential-<name> get`).
//! Values are kept as secrets and never printed.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use base64::Engine as _;
use secrecy::SecretString;
use serde::Deserialize;

/// A user name and its password or token.
#[derive(Clone)]
pub struct Credential {
    pub username: String,
    pub secret: SecretString,
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credential")
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct DockerConfig {
    #[serde(default)]
    auths: HashMap<String, AuthEntry>,
    #[serde(default)]
    cred_helpers: HashMap<String, String>,
    #[serde(default)]
    creds_store: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct AuthEntry {
    #[serde(default)]
    auth: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
}

/// The credentials known on this machine.
#[derive(Debug, Default)]
pub struct Credentials {
    config: DockerConfig,
}

impl Credentials {
    /// None at all: every registry is asked anonymously.
    pub fn none() -> Self {
        Self::default()
    }

    /// Docker's configuration, if there is one (a broken one is a warning, not an error:
    /// public providers need no credentials).
    pub fn from_docker_config() -> Self {
        let Some(path) = docker_config_path() else {
            return Self::none();
        };
        Self::from_file(&path)
    }

    pub fn from_file(path: &Path) -> Self {
        let text = match crate::bounded::read_text(path, crate::bounded::MAX_TEXT) {
            Ok(text) => text,
            Err(_) => return Self::none(),
        };
        match serde_json::from_str(&text) {
            Ok(config) => Self { config },
            Err(e) => {
                tracing::warn!(path = %path.display(), "ignoring Docker's config.json: {e}");
                Self::none()
            }
        }
    }

    /// The credential for `registry` (`host[:port]`), if the user has one.
    pub fn for_registry(&self, registry: &str) -> Option<Credential> {
        let keys = registry_keys(registry);
        let helper = keys
            .iter()
            .find_map(|k| self.config.cred_helpers.get(k))
            .or(self.config.creds_store.as_ref());
        for key in &keys {
            if let Some(entry) = self.config.auths.get(key)
                && let Some(credential) = decode(entry)
            {
                return Some(credential);
            }
        }
        helper.and_then(|helper| from_helper(helper, registry))
    }
}

fn docker_config_path() -> Option<PathBuf> {
    match std::env::var_os("DOCKER_CONFIG") {
        Some(dir) => Some(PathBuf::from(dir).join("config.json")),
        None => dirs::home_dir().map(|h| h.join(".docker").join("config.json")),
    }
}

/// The names Docker files a registry's credentials under.
fn registry_keys(registry: &str) -> Vec<String> {
    let mut keys = vec![
        registry.to_owned(),
        format!("https://{registry}"),
        format!("http://{registry}"),
    ];
    if matches!(
        registry,
        "docker.io" | "registry-1.docker.io" | "index.docker.io"
    ) {
        keys.push("https://index.docker.io/v1/".to_owned());
    }
    keys
}

fn decode(entry: &AuthEntry) -> Option<Credential> {
    if let Some(auth) = &entry.auth {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(auth.trim())
            .ok()?;
        let text = String::from_utf8(bytes).ok()?;
        let (username, secret) = text.split_once(':')?;
        return Some(Credential {
            username: username.to_owned(),
            secret: SecretString::from(secret.to_owned()),
        });
    }
    Some(Credential {
        username: entry.username.clone()?,
        secret: SecretString::from(entry.password.clone()?),
    })
}

/// `docker-credential-<helper> get`, the registry on stdin, `{Username, Secret}` out.
fn from_helper(helper: &str, registry: &str) -> Option<Credential> {
    #[derive(Deserialize)]
    #[serde(rename_all = "PascalCase")]
    struct Answer {
        username: String,
        secret: String,
    }
    let mut child = Command::new(format!("docker-credential-{helper}"))
        .arg("get")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    child.stdin.take()?.write_all(registry.as_bytes()).ok()?;
    let output = child.wait_with_output().ok()?;
    if !output.status.success() {
        return None;
    }
    let answer: Answer = serde_json::from_slice(&output.stdout).ok()?;
    Some(Credential {
        username: answer.username,
        secret: SecretString::from(answer.secret),
    })
}

#[cfg(test)]
mod tests {
    use secrecy::ExposeSecret;

    use super::*;

    #[test]
    fn auths_are_read_in_both_spellings() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("config.json");
        let auth = base64::engine::general_purpose::STANDARD.encode("alice:s3cret-token");
        std::fs::write(
            &path,
            format!(
                r#"{{"auths":{{"ghcr.io":{{"auth":"{auth}"}},"https://127.0.0.1:5000":{{"username":"bob","password":"pw"}}}}}}"#
            ),
        )
        .expect("write");
        let credentials = Credentials::from_file(&path);
        let alice = credentials.for_registry("ghcr.io").expect("ghcr.io");
        assert_eq!(alice.username, "alice");
        assert_eq!(alice.secret.expose_secret(), "s3cret-token");
        assert_eq!(
            credentials
                .for_registry("127.0.0.1:5000")
                .map(|c| c.username),
            Some("bob".to_owned())
        );
        assert!(credentials.for_registry("docker.io").is_none());
        assert!(!format!("{alice:?}").contains("s3cret"), "never printed");
    }
}
