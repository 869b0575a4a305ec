//! `oci://registry/repository[:tag][@sha256:digest]`: where a provider component is
//! published, in the CNCF wasm OCI artifact layout.

use std::fmt;

/// A parsed `oci://` source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OciReference {
    /// `host[:port]`, e.g. `ghcr.io` or `127.0.0.1:5000`.
    pub registry: String,
    /// `acme/fabrik-dns`.
    pub repository: String,
    pub tag: Option<String>,
    /// `sha256:<64 hex>`.
    pub digest: Option<String>,
}

/// Why an `oci://` source is not one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "`{source_text}` is not an OCI source: {problem} (write `oci://ghcr.io/acme/fabrik-dns:0.3.1` or `oci://ghcr.io/acme/fabrik-dns@sha256:<digest>`)"
)]
pub struct ReferenceError {
    pub source_text: String,
    pub problem: String,
}

impl OciReference {
    pub fn parse(text: &str) -> Result<Self, ReferenceError> {
        let error = |problem: &str| ReferenceError {
            source_text: text.to_owned(),
            problem: problem.to_owned(),
        };
        let rest = text
            .strip_prefix("oci://")
            .ok_or_else(|| error("it does not start with `oci://`"))?;
        let (registry, path) = rest
            .split_once('/')
            .ok_or_else(|| error("it names no repository after the registry"))?;
        if registry.is_empty()
            || !registry
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'))
        {
            return Err(error(
                "the registry is not a host name with an optional port",
            ));
        }
        let (path, digest) = match path.split_once('@') {
            Some((path, digest)) => {
                let hex = digest
                    .strip_prefix("sha256:")
                    .ok_or_else(|| error("a digest must be `sha256:` and 64 hex digits"))?;
                if hex.len() != 64
                    || !hex
                        .chars()
                        .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
                {
                    return Err(error(
                        "a digest must be `sha256:` and 64 lowercase hex digits",
                    ));
                }
                (path, Some(digest.to_owned()))
            }
            None => (path, None),
        };
        // A tag follows the last `:` after the last `/`.
        let (repository, tag) = match path.rsplit_once(':') {
            Some((repository, tag)) if !tag.contains('/') => (repository, Some(tag.to_owned())),
            _ => (path, None),
        };
        // The distribution spec's repository name grammar: lowercase path components of
        // alphanumerics separated by `.`, `_`, `__` or `-`.
        let component_ok = |c: &str| {
            !c.is_empty()
                && c.starts_with(|ch: char| ch.is_ascii_lowercase() || ch.is_ascii_digit())
                && c.ends_with(|ch: char| ch.is_ascii_lowercase() || ch.is_ascii_digit())
                && c.chars().all(|ch| {
                    ch.is_ascii_lowercase() || ch.is_ascii_digit() || matches!(ch, '.' | '_' | '-')
                })
        };
        if !repository.split('/').all(component_ok) {
            return Err(error(
                "the repository must be lowercase path components (letters, digits, `.`, `_`, `-`)",
            ));
        }
        if let Some(tag) = &tag {
            let ok = tag.len() <= 128
                && tag.starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_')
                && tag
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
            if !ok {
                return Err(error("a tag is up to 128 letters, digits, `_`, `.` or `-`"));
            }
        }
        Ok(Self {
            registry: registry.to_owned(),
            repository: repository.to_owned(),
            tag,
            digest,
        })
    }

    /// Whether the registry is this machine: the only place plain HTTP is allowed.
    pub fn is_loopback(&self) -> bool {
        let host = self
            .registry
            .rsplit_once(':')
            .filter(|(_, port)| port.chars().all(|c| c.is_ascii_digit()))
            .map_or(self.registry.as_str(), |(host, _)| host);
        let host = host.trim_start_matches('[').trim_end_matches(']');
        host == "localhost"
            || host
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback())
    }

    /// The registry's base URL: `https://`, or `http://` for a loopback registry.
    pub fn base_url(&self) -> String {
        let scheme = if self.is_loopback() { "http" } else { "https" };
        format!("{scheme}://{}", self.registry)
    }

    /// The same repository at another tag, without a digest.
    pub fn with_tag(&self, tag: &str) -> Self {
        Self {
            tag: Some(tag.to_owned()),
            digest: None,
            ..self.clone()
        }
    }
}

impl fmt::Display for OciReference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "oci://{}/{}", self.registry, self.repository)?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_digests_and_ports() {
        let r = OciReference::parse("oci://ghcr.io/acme/fabrik-dns:0.3.1").expect("valid");
        assert_eq!(
            (
                r.registry.as_str(),
                r.repository.as_str(),
                r.tag.as_deref(),
                r.digest.as_deref()
            ),
            ("ghcr.io", "acme/fabrik-dns", Some("0.3.1"), None)
        );
        assert_eq!(r.base_url(), "https://ghcr.io");
        let digest = format!("sha256:{}", "a".repeat(64));
        let r = OciReference::parse(&format!("oci://127.0.0.1:5000/dns@{digest}")).expect("valid");
        assert_eq!(r.registry, "127.0.0.1:5000");
        assert_eq!(r.digest.as_deref(), Some(digest.as_str()));
        assert_eq!(r.base_url(), "http://127.0.0.1:5000");
        assert_eq!(r.to_string(), format!("oci://127.0.0.1:5000/dns@{digest}"));
        let r = OciReference::parse("oci://localhost:5000/a/b:1").expect("valid");
        assert!(r.is_loopback());
        // No tag: the newest tag matching the provider's `version` requirement.
        let r = OciReference::parse("oci://ghcr.io/acme/dns").expect("valid");
        assert_eq!((r.tag, r.digest), (None, None));
    }

    #[test]
    fn mistakes_are_named() {
        for (text, problem) in [
            ("ghcr.io/acme/dns:1", "does not start with `oci://`"),
            ("oci://ghcr.io", "no repository"),
            ("oci://ghcr.io/Acme/dns:1", "lowercase"),
            ("oci://ghcr.io/acme/dns@sha256:abc", "64"),
            ("oci://ghcr.io/acme/dns:bad tag", "a tag is"),
        ] {
            let error = OciReference::parse(text).expect_err(text);
            assert!(error.to_string().contains(problem), "{text}: {error}");
        }
    }
}
