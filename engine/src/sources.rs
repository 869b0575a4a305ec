//! Resolving a moving source to an immutable id before it is deployed: a git branch or
//! tag to the commit it points at now, an image tag to the digest of its manifest.
//! Deploying the id rather than the name makes a run reproducible (a rollback redeploys
//! the same code, not whatever the branch became) and shows when a branch moved under an
//! unchanged spec.
//!
//! Every request follows the health check's rules (`orchestrator::verify`): HTTPS only;
//! the extra CA trusted when one is given; a name connects only to public addresses
//! unless a `--resolve` override (or a test's lookup) names it; no redirect leaves the
//! origin asked. The address rule is enforced in the client's name resolver, so it holds
//! for every host a request reaches (a registry's token service too), and is checked
//! once more before the first request for a typed error.
//!
//! - `git`: the smart-HTTP ref advertisement (`info/refs`), read without git.
//! - `image`: image references as Docker reads them, resolved with the OCI client.

mod client;
pub mod git;
pub mod image;

use client::{Guard, bounded_body, client, request_failed};

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use crate::orchestrator::verify::{self, Lookup, Resolve, VerifyOptions};
use crate::plugins::oci::credentials::Credentials;
use crate::plugins::oci::registry::Registry;
use crate::spec::model::Source;
use image::ImageRef;

/// How long connecting may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long one request may take (an advertisement or a manifest is small).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// How long the system resolver may take for one name.
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(10);
/// Same-origin redirects followed at most (a renamed repository is one).
const MAX_REDIRECTS: usize = 5;

/// A source whose name can point at other code tomorrow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Moving {
    /// A branch or tag of a git repository.
    GitRef {
        repository: String,
        reference: String,
    },
    /// An image reference by tag (or by nothing: `latest`).
    ImageTag { image: String },
}

impl Moving {
    /// What in `source` can move, or `None` when the spec pins it already (a full
    /// commit id, an image digest).
    pub fn of(source: &Source) -> Option<Self> {
        match source {
            Source::Git {
                repository,
                branch,
                commit: None,
            } if !git::is_commit(branch) => Some(Self::GitRef {
                repository: repository.clone(),
                reference: branch.clone(),
            }),
            Source::Image {
                image,
                digest: None,
            } if !image::is_pinned(image) => Some(Self::ImageTag {
                image: image.clone(),
            }),
            _ => None,
        }
    }
}

/// The immutable id a source stands for now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    /// A 40-hex commit id, or an image manifest digest `sha256:<64 hex>`.
    pub id: String,
    /// The spec wrote the id itself: nothing was asked of the network.
    pub pinned_in_spec: bool,
}

/// Why a source could not be resolved.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("cannot set up the HTTPS client for sources: {0}")]
    Client(String),
    #[error("`{repository}` is not a repository Fabrik can resolve: {problem}")]
    InvalidRepository { repository: String, problem: String },
    #[error("`{image}` is not an image reference Fabrik can resolve: {problem}")]
    InvalidImage { image: String, problem: String },
    /// A host that must not be reached: a private address no override names.
    #[error("{what}: {reason}")]
    Refused { what: String, reason: String },
    #[error("{what}: cannot reach it: {message}")]
    Unreachable { what: String, message: String },
    #[error("{what} answered {status}{}", status_hint(*status))]
    Status { what: String, status: u16 },
    #[error(
        "repository `{repository}` was not found (its server answered {status}); Fabrik resolves public repositories only"
    )]
    RepositoryNotFound { repository: String, status: u16 },
    #[error(
        "repository `{repository}` has no branch or tag `{reference}`{}",
        available(branches, *more)
    )]
    RefNotFound {
        repository: String,
        reference: String,
        /// A few of its branches, the default one first.
        branches: Vec<String>,
        /// How many more branches it has.
        more: usize,
    },
    #[error("repository `{repository}`: {problem}")]
    Malformed { repository: String, problem: String },
    #[error("{what}: the answer is larger than {max} bytes; refused")]
    TooLarge { what: String, max: usize },
    #[error("image `{image}`: tag `{tag}` not found in {repository}")]
    ImageNotFound {
        image: String,
        tag: String,
        /// `registry/repository`, as asked.
        repository: String,
    },
    #[error("image `{image}` was not found or is private: the registry refused access{hint}")]
    ImageDenied { image: String, hint: String },
    #[error("image `{image}`: {message}")]
    Registry { image: String, message: String },
    #[error(
        "image `{image}` is on a loopback registry ({registry}), reachable over plain HTTP only, which Fabrik does not resolve; pin it by digest (`@sha256:…`)"
    )]
    LoopbackRegistry { image: String, registry: String },
}

impl SourceError {
    /// Whether the host could not be reached or answered as if overloaded (offline, DNS
    /// down, timeout, 5xx, 429), as opposed to a definite answer (no such repository,
    /// branch or tag; refused; malformed).
    pub fn is_unreachable(&self) -> bool {
        match self {
            Self::Unreachable { .. } => true,
            Self::Status { status, .. } => *status == 429 || *status >= 500,
            _ => false,
        }
    }
}

fn status_hint(status: u16) -> &'static str {
    if (300..400).contains(&status) {
        " (a redirect to another origin, not followed)"
    } else {
        ""
    }
}

fn available(branches: &[String], more: usize) -> String {
    if branches.is_empty() {
        return "; it has no branches".to_owned();
    }
    let mut text = format!("; its branches: {}", branches.join(", "));
    if more > 0 {
        text.push_str(&format!(" (and {more} more)"));
    }
    text
}

/// Resolves sources; one per apply, shared by its apps.
pub struct Resolver {
    http: reqwest::Client,
    registry: Registry,
    guard: Guard,
}

impl std::fmt::Debug for Resolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Resolver").finish_non_exhaustive()
    }
}

impl Resolver {
    /// A resolver connecting as the health check does (`options`), with `credentials`
    /// for registries that want them.
    pub fn new(options: &VerifyOptions, credentials: Credentials) -> Result<Self, SourceError> {
        let guard = Guard {
            overrides: options.resolve.clone().into(),
            lookup: options.lookup.clone(),
        };
        let http = client(options, guard.clone())?;
        Ok(Self {
            registry: Registry::with_client(http.clone(), credentials),
            http,
            guard,
        })
    }

    /// The id `source` stands for now: as written when the spec pins it (no network),
    /// else what its branch, tag or image tag points at.
    pub async fn resolve(&self, source: &Source) -> Result<Resolved, SourceError> {
        match Moving::of(source) {
            Some(moving) => Ok(Resolved {
                id: self.resolve_moving(&moving).await?,
                pinned_in_spec: false,
            }),
            None => Ok(Resolved {
                id: pinned_id(source)?,
                pinned_in_spec: true,
            }),
        }
    }

    /// What a moving source points at now: a commit id or a manifest digest.
    pub async fn resolve_moving(&self, moving: &Moving) -> Result<String, SourceError> {
        match moving {
            Moving::GitRef {
                repository,
                reference,
            } => self.git_commit(repository, reference).await,
            Moving::ImageTag { image } => self.image_digest(image).await,
        }
    }

    async fn git_commit(&self, repository: &str, reference: &str) -> Result<String, SourceError> {
        let shown = redacted(repository);
        let url =
            git::info_refs_url(repository).map_err(|problem| SourceError::InvalidRepository {
                repository: shown.clone(),
                problem,
            })?;
        let host = url.host_str().unwrap_or_default();
        let port = url.port_or_known_default().unwrap_or(443);
        self.admit(host, port, &format!("repository `{shown}`"))
            .await?;
        git::commit(&self.http, &url, &shown, reference).await
    }

    async fn image_digest(&self, image: &str) -> Result<String, SourceError> {
        let parsed = ImageRef::parse(image).map_err(|problem| SourceError::InvalidImage {
            image: image.to_owned(),
            problem: problem.to_string(),
        })?;
        if let Some(digest) = &parsed.digest {
            return Ok(digest.clone());
        }
        if parsed.is_loopback() {
            return Err(SourceError::LoopbackRegistry {
                image: image.to_owned(),
                registry: parsed.registry,
            });
        }
        let (host, port) = parsed.host_port();
        self.admit(host, port, &format!("image `{image}`")).await?;
        image::digest(&self.registry, image, &parsed).await
    }

    /// Checks before the first request that `host:port` may be reached, so that a refusal
    /// is a typed error rather than a connection failure (the resolver checks again at
    /// connection time, whatever the name answers by then).
    async fn admit(&self, host: &str, port: u16, what: &str) -> Result<(), SourceError> {
        self.guard
            .admit(host, port)
            .await
            .map_err(|denied| denied.into_error(what))
    }
}

/// The id a pinned source writes.
fn pinned_id(source: &Source) -> Result<String, SourceError> {
    match source {
        Source::Git {
            commit: Some(commit),
            ..
        }
        | Source::Image {
            digest: Some(commit),
            ..
        } => Ok(commit.clone()),
        Source::Git { branch, .. } => Ok(branch.clone()),
        Source::Image { image, .. } => ImageRef::parse(image)
            .map_err(|problem| problem.to_string())
            .and_then(|parsed| parsed.digest.ok_or_else(|| "it has no digest".to_owned()))
            .map_err(|problem| SourceError::InvalidImage {
                image: image.to_owned(),
                problem,
            }),
    }
}

/// The form an id is shown in: 7 hex digits of a commit, `sha256:` and 12 hex digits of
/// a digest (what `git log --oneline` and `docker images` show).
pub fn short(id: &str) -> &str {
    let length = if id.starts_with("sha256:") {
        "sha256:".len() + 12
    } else {
        7
    };
    id.get(..length).unwrap_or(id)
}

/// `url` with any user information replaced, for messages: a repository URL must not
/// carry credentials, and one that does must not print them.
pub fn redacted(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(end);
    match authority.rsplit_once('@') {
        Some((_, host)) => format!("{scheme}://…@{host}{path}"),
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::client::*;
    use super::*;

    fn overrides(list: &[&str]) -> Vec<Resolve> {
        list.iter()
            .map(|text| text.parse().expect("override"))
            .collect()
    }

    #[test]
    fn short_forms() {
        let commit = "0123456789abcdef0123456789abcdef01234567";
        assert_eq!(short(commit), "0123456");
        let digest = format!("sha256:{}", "abcdef0123456789".repeat(4));
        assert_eq!(short(&digest), "sha256:abcdef012345");
        assert_eq!(short("abc"), "abc");
        assert_eq!(short("sha256:ab"), "sha256:ab");
    }

    #[test]
    fn what_moves_and_what_is_pinned() {
        let commit = "0123456789abcdef0123456789abcdef01234567";
        let digest = format!("nginx@sha256:{}", "a".repeat(64));
        let git = |branch: &str| Source::Git {
            repository: "https://github.com/acme/shop".to_owned(),
            branch: branch.to_owned(),
            commit: None,
        };
        assert_eq!(
            Moving::of(&git("main")),
            Some(Moving::GitRef {
                repository: "https://github.com/acme/shop".to_owned(),
                reference: "main".to_owned()
            })
        );
        assert_eq!(Moving::of(&git(commit)), None);
        assert_eq!(
            Moving::of(&Source::Image {
                image: "nginx:1.27".to_owned(),
                digest: None,
            }),
            Some(Moving::ImageTag {
                image: "nginx:1.27".to_owned()
            })
        );
        assert_eq!(
            Moving::of(&Source::Image {
                image: digest,
                digest: None
            }),
            None
        );
    }

    #[tokio::test]
    async fn pinned_sources_resolve_without_the_network() {
        // No override, the system resolver: any request would fail or be refused.
        let resolver =
            Resolver::new(&VerifyOptions::default(), Credentials::none()).expect("resolver");
        let commit = "0123456789abcdef0123456789abcdef01234567";
        let resolved = resolver
            .resolve(&Source::Git {
                repository: "https://git.invalid/acme/shop".to_owned(),
                branch: commit.to_owned(),
                commit: None,
            })
            .await
            .expect("pinned commit");
        assert_eq!(
            resolved,
            Resolved {
                id: commit.to_owned(),
                pinned_in_spec: true
            }
        );
        let digest = format!("sha256:{}", "b".repeat(64));
        let resolved = resolver
            .resolve(&Source::Image {
                image: format!("registry.invalid/acme/x@{digest}"),
                digest: None,
            })
            .await
            .expect("pinned digest");
        assert_eq!(resolved.id, digest);
        assert!(resolved.pinned_in_spec);
    }

    #[tokio::test]
    async fn loopback_and_private_hosts_are_refused_without_an_override() {
        let resolver =
            Resolver::new(&VerifyOptions::default(), Credentials::none()).expect("resolver");
        let error = resolver
            .resolve(&Source::Git {
                repository: "https://127.0.0.1/acme/shop".to_owned(),
                branch: "main".to_owned(),
                commit: None,
            })
            .await
            .expect_err("refused");
        assert!(
            matches!(error, SourceError::Refused { .. }) && !error.is_unreachable(),
            "{error}"
        );
        let error = resolver
            .resolve(&Source::Image {
                image: "localhost:5000/x:1".to_owned(),
                digest: None,
            })
            .await
            .expect_err("loopback registry");
        assert!(
            matches!(error, SourceError::LoopbackRegistry { .. }),
            "{error}"
        );
        let error = resolver
            .resolve(&Source::Image {
                image: "10.0.0.7:5000/x:1".to_owned(),
                digest: None,
            })
            .await
            .expect_err("private registry");
        assert!(matches!(error, SourceError::Refused { .. }), "{error}");
    }

    #[tokio::test]
    async fn the_guard_trusts_overrides_and_test_lookups_only() {
        let guard = Guard {
            overrides: overrides(&["git.test:443:127.0.0.1:8443"]).into(),
            lookup: Lookup::System,
        };
        assert_eq!(
            guard.addresses("git.test").await.expect("override"),
            vec!["127.0.0.1:8443".parse::<SocketAddr>().expect("addr")]
        );
        assert!(guard.admit("git.test", 443).await.is_ok());
        // `localhost` is in every hosts file: a system answer, and private.
        assert!(matches!(
            guard.addresses("localhost").await,
            Err(Denied::Refused(_))
        ));
        let lookup: Arc<verify::LookupFn> =
            Arc::new(|_: &str| -> std::io::Result<Vec<SocketAddr>> {
                Ok(vec!["127.0.0.1:9443".parse().expect("addr")])
            });
        let trusting = Guard {
            overrides: Vec::new().into(),
            lookup: Lookup::Custom(lookup),
        };
        assert!(trusting.admit("anything.test", 443).await.is_ok());
    }

    #[test]
    fn overrides_are_chosen_by_name_and_refused_when_ambiguous() {
        let list = overrides(&[
            "*.sandbox.test:443:127.0.0.1:8443",
            "git.sandbox.test:443:127.0.0.2",
            "reg.test:5000:127.0.0.1:5000",
            "moved.test:8443:127.0.0.1:9443",
            "two.test:443:127.0.0.1",
            "two.test:8443:127.0.0.2:8443",
        ]);
        assert_eq!(
            pick(&list, "git.sandbox.test").map(|r| r.addr.to_string()),
            Some("127.0.0.2:443".to_owned())
        );
        assert_eq!(
            pick(&list, "app.sandbox.test").map(|r| r.addr.to_string()),
            Some("127.0.0.1:8443".to_owned())
        );
        assert!(override_consistent(&list, "app.sandbox.test", 443).is_ok());
        assert!(override_consistent(&list, "github.com", 443).is_ok());
        assert!(override_consistent(&list, "reg.test", 5000).is_ok());
        // An override whose address changes the port of a non-443 source.
        assert!(override_consistent(&list, "moved.test", 8443).is_err());
        // An override for another port would be taken by name.
        assert!(override_consistent(&list, "reg.test", 443).is_err());
        assert!(override_consistent(&list, "two.test", 443).is_ok());
        assert!(override_consistent(&list, "two.test", 8443).is_err());
    }

    #[test]
    fn only_same_origin_https_redirects_are_followed() {
        let first = url::Url::parse("https://github.com/acme/shop.git/info/refs").expect("url");
        for (next, hops, allowed) in [
            ("https://github.com/acme/renamed.git/info/refs", 1, true),
            ("https://GITHUB.com:443/acme/x", 1, true),
            ("https://github.com/acme/x", MAX_REDIRECTS, false),
            ("https://github.com.evil.test/acme/x", 1, false),
            ("https://github.com:8443/acme/x", 1, false),
            ("http://github.com/acme/x", 1, false),
            ("https://user@github.com/acme/x", 1, false),
            ("https://codeload.github.com/acme/x", 1, false),
        ] {
            let next = url::Url::parse(next).expect("url");
            assert_eq!(redirect_allowed(&first, &next, hops), allowed, "{next}");
        }
    }

    #[test]
    fn credentials_are_never_shown() {
        assert_eq!(
            redacted("https://alice:s3cret@github.com/acme/shop"),
            "https://…@github.com/acme/shop"
        );
        assert_eq!(
            redacted("https://github.com/acme/sh@p"),
            "https://github.com/acme/sh@p"
        );
        assert_eq!(redacted("not a url"), "not a url");
    }

    #[test]
    fn unreachable_is_told_apart_from_definite_answers() {
        let unreachable = SourceError::Unreachable {
            what: "repository `x`".to_owned(),
            message: "timed out".to_owned(),
        };
        assert!(unreachable.is_unreachable());
        let busy = SourceError::Status {
            what: "x".to_owned(),
            status: 503,
        };
        assert!(busy.is_unreachable());
        let redirected = SourceError::Status {
            what: "x".to_owned(),
            status: 301,
        };
        assert!(!redirected.is_unreachable());
        assert!(redirected.to_string().contains("not followed"));
        let missing = SourceError::RefNotFound {
            repository: "https://github.com/acme/shop".to_owned(),
            reference: "dev".to_owned(),
            branches: vec!["main".to_owned(), "release".to_owned()],
            more: 3,
        };
        assert!(!missing.is_unreachable());
        assert_eq!(
            missing.to_string(),
            "repository `https://github.com/acme/shop` has no branch or tag `dev`; its branches: main, release (and 3 more)"
        );
    }
}
