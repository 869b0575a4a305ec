//! The desired state the host sends for an application or a service, and image
//! references as Coolify stores them.

use std::collections::BTreeMap;

use fabrik_provider_sdk::ProviderError;
use fabrik_provider_sdk::error::permanent;
use serde::Deserialize;

/// The desired state of an application or a service.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Desired {
    pub(crate) project: String,
    pub(crate) environment: String,
    pub(crate) server: String,
    #[serde(default)]
    pub(crate) image: Option<String>,
    #[serde(default)]
    pub(crate) port: Option<u16>,
    #[serde(default)]
    pub(crate) compose: Option<String>,
    #[serde(default)]
    pub(crate) service: Option<String>,
    #[serde(default)]
    pub(crate) domains: Vec<String>,
    #[serde(default)]
    pub(crate) env: BTreeMap<String, String>,
    /// The Docker destination on the server, by name, network or uuid; needed when the
    /// server has several.
    #[serde(default)]
    pub(crate) destination: Option<String>,
}

pub(crate) fn parse_desired(kind: &str, text: &str) -> Result<Desired, ProviderError> {
    let desired: Desired = serde_json::from_str(text)
        .map_err(|e| permanent(format!("invalid desired {kind}: {e}")))?;
    match kind {
        "application" if desired.image.is_none() || desired.port.is_none() => {
            Err(permanent("an application needs `image` and `port`"))
        }
        "service" if desired.compose.is_none() || desired.service.is_none() => {
            Err(permanent("a service needs `compose` and `service`"))
        }
        "application" | "service" => Ok(desired),
        other => Err(permanent(format!(
            "the Coolify provider cannot create `{other}`"
        ))),
    }
}

/// An image reference as Coolify stores it: `docker_registry_image_name` and
/// `docker_registry_image_tag`.
///
/// Only create parses a reference (`DockerImageParser`); `PATCH /applications/{uuid}`
/// validates the name with `dockerImageNameRules()`, which has no tag part and admits a
/// digest only as a bare `@sha256` suffix, and the tag with `dockerImageTagRules()`, which
/// has no `:` (coollabsio/coolify app/Support/ValidationPatterns.php,
/// `DOCKER_IMAGE_NAME_PATTERN`; app/Services/DockerImageParser.php). So the provider splits
/// the reference itself, as the parser does: `repo@sha256:<hex>` is name `repo@sha256`
/// and tag `<hex>` (the deploy job pulls `name:tag`, i.e. `repo@sha256:<hex>`);
/// `repo:tag` is name `repo` and tag `tag`; a bare `repo` is tag `latest`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ImageParts {
    pub(crate) name: String,
    pub(crate) tag: String,
}

impl ImageParts {
    pub(crate) fn parse(reference: &str) -> Self {
        if let Some((name, digest)) = reference.split_once("@sha256:") {
            return Self {
                name: format!("{name}@sha256"),
                tag: digest.to_owned(),
            };
        }
        let last_slash = reference.rfind('/').map_or(0, |i| i + 1);
        match reference[last_slash..].rfind(':') {
            Some(i) => Self {
                name: reference[..last_slash + i].to_owned(),
                tag: reference[last_slash + i + 1..].to_owned(),
            },
            None => Self {
                name: reference.to_owned(),
                tag: "latest".to_owned(),
            },
        }
    }

    /// The reference Coolify deploys (`ApplicationDeploymentJob::generate_image_names`):
    /// `name:tag`, where a name ending in `@sha256` makes it a digest; a tag written as
    /// `sha256-<hex>` is a digest too.
    pub(crate) fn reference(name: &str, tag: &str) -> String {
        if tag.is_empty() {
            return format!("{name}:latest");
        }
        if let Some(hex) = tag.strip_prefix("sha256-") {
            return format!("{}@sha256:{hex}", name.trim_end_matches("@sha256"));
        }
        format!("{name}:{tag}")
    }
}

pub(crate) fn plural(kind: &str) -> &'static str {
    if kind == "service" {
        "services"
    } else {
        "applications"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn desired_state_is_checked_per_kind() {
        let base = r#""project":"p","environment":"production","server":"vps1""#;
        assert!(
            parse_desired(
                "application",
                &format!("{{{base},\"image\":\"nginx:1\",\"port\":80}}")
            )
            .is_ok()
        );
        assert!(
            parse_desired("application", &format!("{{{base},\"image\":\"nginx:1\"}}")).is_err()
        );
        assert!(
            parse_desired(
                "service",
                &format!("{{{base},\"compose\":\"services: {{}}\",\"service\":\"app\"}}")
            )
            .is_ok()
        );
        assert!(parse_desired("service", &format!("{{{base},\"compose\":\"x\"}}")).is_err());
        assert!(parse_desired("database", &format!("{{{base}}}")).is_err());
        assert!(
            parse_desired(
                "application",
                &format!("{{{base},\"image\":\"a\",\"port\":1,\"nope\":1}}")
            )
            .is_err()
        );
    }

    #[test]
    fn image_references_split_as_coolify_stores_them() {
        let digest = "0123456789abcdef".repeat(4);
        for (reference, name, tag, back) in [
            (
                "ghcr.io/acme/api:1.4",
                "ghcr.io/acme/api",
                "1.4",
                "ghcr.io/acme/api:1.4",
            ),
            ("nginx", "nginx", "latest", "nginx:latest"),
            (
                "localhost:5000/team/app",
                "localhost:5000/team/app",
                "latest",
                "localhost:5000/team/app:latest",
            ),
            (
                "localhost:5000/app:2",
                "localhost:5000/app",
                "2",
                "localhost:5000/app:2",
            ),
            (
                &format!("nginx@sha256:{digest}"),
                "nginx@sha256",
                &digest,
                &format!("nginx@sha256:{digest}"),
            ),
        ] {
            let parts = ImageParts::parse(reference);
            assert_eq!((parts.name.as_str(), parts.tag.as_str()), (name, tag));
            assert_eq!(ImageParts::reference(&parts.name, &parts.tag), back);
        }
        assert_eq!(
            ImageParts::reference("nginx", &format!("sha256-{digest}")),
            format!("nginx@sha256:{digest}")
        );
    }
}
