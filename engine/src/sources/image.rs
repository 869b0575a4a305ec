//! Container image references as Docker reads them, and the digest a tag points at.
//!
//! The first path component names a registry only if it looks like a host (it has a `.`
//! or a `:`, or is `localhost`), as Docker decides; otherwise the image is on Docker Hub,
//! whose API is at `registry-1.docker.io` and whose one-component names live under
//! `library/` (`nginx` is `registry-1.docker.io/library/nginx:latest`).

use crate::plugins::oci::reference::OciReference;
use crate::plugins::oci::registry::{Registry, RegistryError};

use super::SourceError;

/// Where Docker Hub's registry API answers.
pub const DOCKER_HUB: &str = "registry-1.docker.io";
/// The names Docker Hub is written under.
const DOCKER_HUB_NAMES: [&str; 3] = ["docker.io", "index.docker.io", DOCKER_HUB];
/// The tag an image without one means.
pub const DEFAULT_TAG: &str = "latest";

/// An image reference, split as the registry API wants it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRef {
    /// `host[:port]` of the registry API.
    pub registry: String,
    /// `library/nginx`, `acme/api`.
    pub repository: String,
    /// The tag; `latest` when neither a tag nor a digest is written.
    pub tag: Option<String>,
    /// `sha256:<64 hex>`, as written.
    pub digest: Option<String>,
}

/// Why an image reference is not one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ImageError(pub &'static str);

/// Whether `image` names its digest: nothing to resolve.
pub fn is_pinned(image: &str) -> bool {
    ImageRef::parse(image).is_ok_and(|parsed| parsed.digest.is_some())
}

impl ImageRef {
    pub fn parse(image: &str) -> Result<Self, ImageError> {
        if image.is_empty() {
            return Err(ImageError("it is empty"));
        }
        if image.len() > 255 {
            return Err(ImageError("it is longer than 255 characters"));
        }
        if image.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(ImageError("it contains whitespace"));
        }
        let (name_tag, digest) = match image.split_once('@') {
            Some((name_tag, digest)) if is_digest(digest) => (name_tag, Some(digest.to_owned())),
            Some(_) => {
                return Err(ImageError("a digest is `sha256:` and 64 hex digits"));
            }
            None => (image, None),
        };
        // A tag follows the last `:` after the last `/` (a `:` before it is a port).
        let last_slash = name_tag.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match name_tag[last_slash..].rfind(':') {
            Some(i) => (
                &name_tag[..last_slash + i],
                Some(&name_tag[last_slash + i + 1..]),
            ),
            None => (name_tag, None),
        };
        if tag.is_some_and(|tag| !is_tag(tag)) {
            return Err(ImageError(
                "a tag is 1 to 128 letters, digits, `_`, `.` or `-`, not starting with `.` or `-`",
            ));
        }
        let (registry, path) = match name.split_once('/') {
            Some((first, rest)) if first.contains(['.', ':']) || first == "localhost" => {
                (Some(first), rest)
            }
            _ => (None, name),
        };
        if registry.is_some_and(|registry| !is_registry(registry)) {
            return Err(ImageError(
                "the registry is not a host name with an optional port",
            ));
        }
        if !path.split('/').all(is_component) {
            return Err(ImageError(
                "the repository is lowercase letters and digits, joined by `.`, `_`, `__` or `-` and separated by `/`",
            ));
        }
        let (registry, repository) = match registry {
            Some(registry) if !DOCKER_HUB_NAMES.contains(&registry) => {
                (registry.to_owned(), path.to_owned())
            }
            _ if path.contains('/') => (DOCKER_HUB.to_owned(), path.to_owned()),
            _ => (DOCKER_HUB.to_owned(), format!("library/{path}")),
        };
        let tag = match (tag, &digest) {
            (None, None) => Some(DEFAULT_TAG.to_owned()),
            (tag, _) => tag.map(str::to_owned),
        };
        Ok(Self {
            registry,
            repository,
            tag,
            digest,
        })
    }

    /// The registry's host and port (443 unless written).
    pub fn host_port(&self) -> (&str, u16) {
        match self.registry.rsplit_once(':') {
            Some((host, port)) => (host, port.parse().unwrap_or(443)),
            None => (self.registry.as_str(), 443),
        }
    }

    /// The same reference for the OCI client (its text is never shown: errors are
    /// rewritten with the image as the spec writes it).
    pub fn to_oci(&self) -> OciReference {
        OciReference {
            registry: self.registry.clone(),
            repository: self.repository.clone(),
            tag: self.tag.clone(),
            digest: self.digest.clone(),
        }
    }

    /// Whether the registry is this machine's loopback, which the OCI client reaches
    /// over plain HTTP only.
    pub fn is_loopback(&self) -> bool {
        self.to_oci().is_loopback()
    }
}

/// `sha256:` and 64 hex digits.
fn is_digest(text: &str) -> bool {
    text.strip_prefix("sha256:")
        .is_some_and(|hex| hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// Docker's tag grammar: `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`.
fn is_tag(tag: &str) -> bool {
    tag.len() <= 128
        && tag.starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_')
        && tag
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

/// `host[:port]`: DNS labels of letters, digits and `-`, and a port from 1 to 65535.
fn is_registry(text: &str) -> bool {
    let (host, port) = match text.rsplit_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (text, None),
    };
    let host_ok = !host.is_empty()
        && host.split('.').all(|label| {
            !label.is_empty()
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        });
    let port_ok = port.is_none_or(|port| {
        port.bytes().all(|b| b.is_ascii_digit()) && port.parse::<u16>().is_ok_and(|n| n > 0)
    });
    host_ok && port_ok
}

/// One repository path component: `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`.
fn is_component(component: &str) -> bool {
    let alphanumeric = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let bytes = component.as_bytes();
    if !bytes.first().is_some_and(|b| alphanumeric(*b))
        || !bytes.last().is_some_and(|b| alphanumeric(*b))
    {
        return false;
    }
    let mut separators = component.split(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit());
    separators.all(|separator| {
        matches!(separator, "" | "." | "_" | "__") || separator.bytes().all(|b| b == b'-')
    }) && component
        .bytes()
        .all(|b| alphanumeric(b) || matches!(b, b'.' | b'_' | b'-'))
}

/// The digest of the manifest `parsed` names now, asked of its registry (`image` is
/// the reference as the spec writes it, for messages).
pub(crate) async fn digest(
    registry: &Registry,
    image: &str,
    parsed: &ImageRef,
) -> Result<String, SourceError> {
    let digest = registry
        .resolve_image(&parsed.to_oci())
        .await
        .map_err(|error| from_registry(image, parsed, error))?;
    if !is_digest(&digest) {
        return Err(SourceError::Registry {
            image: image.to_owned(),
            message: "the registry's answer gave no sha256 digest".to_owned(),
        });
    }
    Ok(digest)
}

/// A registry error told with the image as the spec writes it (the OCI client names
/// its references `oci://…`, which users of images never write).
fn from_registry(image: &str, parsed: &ImageRef, error: RegistryError) -> SourceError {
    let image = image.to_owned();
    match error {
        RegistryError::Unreachable { message, .. } => SourceError::Unreachable {
            what: format!("image `{image}`"),
            message,
        },
        RegistryError::Unauthorized { hint, .. } => SourceError::ImageDenied { image, hint },
        RegistryError::NotFound { .. } => SourceError::ImageNotFound {
            tag: parsed.tag.clone().unwrap_or_default(),
            repository: format!("{}/{}", parsed.registry, parsed.repository),
            image,
        },
        RegistryError::Status { status, .. } => SourceError::Status {
            what: format!("the registry of image `{image}`"),
            status,
        },
        RegistryError::Invalid { message, .. } => SourceError::Registry { image, message },
        error @ RegistryError::Digest { .. } => SourceError::Registry {
            image,
            message: error.to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(image: &str) -> (String, String, Option<String>, Option<String>) {
        let parsed = ImageRef::parse(image).expect(image);
        (
            parsed.registry,
            parsed.repository,
            parsed.tag,
            parsed.digest,
        )
    }

    fn some(text: &str) -> Option<String> {
        Some(text.to_owned())
    }

    #[test]
    fn references_are_read_as_docker_reads_them() {
        let hub = DOCKER_HUB.to_owned();
        let digest = format!("sha256:{}", "0123456789abcdef".repeat(4));
        for (image, expected) in [
            (
                "nginx",
                (
                    hub.clone(),
                    "library/nginx".to_owned(),
                    some("latest"),
                    None,
                ),
            ),
            (
                "nginx:1.27",
                (hub.clone(), "library/nginx".to_owned(), some("1.27"), None),
            ),
            (
                "library/nginx:1",
                (hub.clone(), "library/nginx".to_owned(), some("1"), None),
            ),
            (
                "acme/api",
                (hub.clone(), "acme/api".to_owned(), some("latest"), None),
            ),
            (
                "docker.io/nginx:1",
                (hub.clone(), "library/nginx".to_owned(), some("1"), None),
            ),
            (
                "ghcr.io/acme/x:1.4",
                ("ghcr.io".to_owned(), "acme/x".to_owned(), some("1.4"), None),
            ),
            (
                "localhost:5000/x",
                (
                    "localhost:5000".to_owned(),
                    "x".to_owned(),
                    some("latest"),
                    None,
                ),
            ),
            (
                "registry.example.com:8443/a/b/c:tag",
                (
                    "registry.example.com:8443".to_owned(),
                    "a/b/c".to_owned(),
                    some("tag"),
                    None,
                ),
            ),
            (
                "my_app__v2/web-ui--x.y",
                (
                    hub.clone(),
                    "my_app__v2/web-ui--x.y".to_owned(),
                    some("latest"),
                    None,
                ),
            ),
        ] {
            assert_eq!(parts(image), expected, "{image}");
        }
        assert_eq!(
            parts(&format!("x@{digest}")),
            (
                hub.clone(),
                "library/x".to_owned(),
                None,
                Some(digest.clone())
            )
        );
        assert_eq!(
            parts(&format!("ghcr.io/acme/x:1.4@{digest}")),
            (
                "ghcr.io".to_owned(),
                "acme/x".to_owned(),
                some("1.4"),
                Some(digest.clone())
            )
        );
        assert!(is_pinned(&format!("x@{digest}")));
        assert!(!is_pinned("x:1"));
    }

    #[test]
    fn invalid_references_are_refused() {
        for image in [
            "",
            "Nginx",
            "nginx:",
            "nginx:-x",
            "nginx:.x",
            "a b",
            "ghcr.io/Acme/x",
            "x@sha256:abc",
            "x@md5:0123456789abcdef0123456789abcdef",
            "x@",
            "a//b",
            "/a",
            "a/",
            ":tag",
            "ghcr.io/",
            "-x",
            "x-",
            "a___b",
            "a..b",
            "a._b",
            "reg:abc/x",
            "reg.example.com:0/x",
            "reg.example.com:99999/x",
            "-reg.example.com/x",
            "@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        ] {
            assert!(ImageRef::parse(image).is_err(), "{image:?}");
        }
        assert!(ImageRef::parse(&"a".repeat(256)).is_err());
        assert!(ImageRef::parse(&format!("x:{}", "t".repeat(129))).is_err());
    }

    #[test]
    fn hosts_ports_and_loopback() {
        let parsed = ImageRef::parse("registry.example.com:8443/a:1").expect("valid");
        assert_eq!(parsed.host_port(), ("registry.example.com", 8443));
        assert!(!parsed.is_loopback());
        let hub = ImageRef::parse("nginx").expect("valid");
        assert_eq!(hub.host_port(), (DOCKER_HUB, 443));
        assert!(
            ImageRef::parse("localhost:5000/x")
                .expect("valid")
                .is_loopback()
        );
        assert!(
            ImageRef::parse("127.0.0.1:5000/x")
                .expect("valid")
                .is_loopback()
        );
        let oci = ImageRef::parse("ghcr.io/acme/x:1.4")
            .expect("valid")
            .to_oci();
        assert_eq!(oci.to_string(), "oci://ghcr.io/acme/x:1.4");
    }

    #[test]
    fn registry_errors_name_the_image_as_written() {
        let parsed = ImageRef::parse("nginx:9.9").expect("valid");
        let error = from_registry(
            "nginx:9.9",
            &parsed,
            RegistryError::NotFound {
                source_text: parsed.to_oci().to_string(),
                what: "manifest `9.9`".to_owned(),
            },
        );
        assert_eq!(
            error.to_string(),
            "image `nginx:9.9`: tag `9.9` not found in registry-1.docker.io/library/nginx"
        );
        assert!(!error.is_unreachable());
        let error = from_registry(
            "nginx:9.9",
            &parsed,
            RegistryError::Unreachable {
                source_text: parsed.to_oci().to_string(),
                message: "timed out".to_owned(),
            },
        );
        assert!(error.is_unreachable());
        assert!(!error.to_string().contains("oci://"), "{error}");
    }
}
