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

pub mod git;
pub mod image;

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

/// The one HTTPS client of a resolver.
fn client(options: &VerifyOptions, guard: Guard) -> Result<reqwest::Client, SourceError> {
    let mut builder = reqwest::Client::builder()
        .https_only(true)
        .redirect(reqwest::redirect::Policy::custom(|attempt| {
            let allowed = attempt.previous().first().is_some_and(|first| {
                redirect_allowed(first, attempt.url(), attempt.previous().len())
            });
            if allowed {
                attempt.follow()
            } else {
                // Answered as the 3xx it is.
                attempt.stop()
            }
        }))
        .dns_resolver(Arc::new(GuardedDns(guard)))
        // Through a proxy the proxy resolves the name, and the address rules would not
        // hold: sources are resolved directly or not at all (then unreachable).
        .no_proxy()
        .connect_timeout(CONNECT_TIMEOUT)
        .timeout(REQUEST_TIMEOUT)
        .user_agent(concat!("fabrik/", env!("CARGO_PKG_VERSION")));
    if let Some(path) = &options.ca_file {
        let pem = crate::bounded::read(path, crate::bounded::MAX_TEXT).map_err(|e| {
            SourceError::Client(format!("cannot read the CA file `{}`: {e}", path.display()))
        })?;
        let certificate = reqwest::Certificate::from_pem(&pem).map_err(|e| {
            SourceError::Client(format!(
                "`{}` is not a PEM certificate: {e}",
                path.display()
            ))
        })?;
        builder = builder.add_root_certificate(certificate);
    }
    builder
        .build()
        .map_err(|e| SourceError::Client(describe(&e)))
}

/// Whether a redirect from a request first sent to `first` may go to `next`: the same
/// origin (scheme, host, port, compared parsed), HTTPS, no user information, few hops.
fn redirect_allowed(first: &url::Url, next: &url::Url, hops: usize) -> bool {
    hops < MAX_REDIRECTS
        && next.scheme() == "https"
        && next.origin() == first.origin()
        && next.username().is_empty()
        && next.password().is_none()
}

/// The address rules of the health check, for any name a request reaches.
#[derive(Clone)]
struct Guard {
    overrides: Arc<[Resolve]>,
    lookup: Lookup,
}

/// Why a name is not connected to.
#[derive(Debug, thiserror::Error)]
enum Denied {
    /// It has no address now (offline, a resolver down, a name that does not exist).
    #[error("{0}")]
    Unknown(String),
    /// It must not be reached.
    #[error("{0}")]
    Refused(String),
}

impl Denied {
    fn into_error(self, what: &str) -> SourceError {
        match self {
            Denied::Unknown(message) => SourceError::Unreachable {
                what: what.to_owned(),
                message,
            },
            Denied::Refused(reason) => SourceError::Refused {
                what: what.to_owned(),
                reason,
            },
        }
    }
}

impl Guard {
    /// The addresses a connection to `host` may use: the override's, a test lookup's
    /// (trusted as overrides are), else the system resolver's if every one is public.
    async fn addresses(&self, host: &str) -> Result<Vec<SocketAddr>, Denied> {
        if let Some(chosen) = pick(&self.overrides, host) {
            return Ok(vec![chosen.addr]);
        }
        let found: Vec<SocketAddr> = match &self.lookup {
            Lookup::Custom(lookup) => lookup(host)
                .map_err(|e| Denied::Unknown(format!("DNS lookup of {host} failed: {e}")))?,
            Lookup::System => {
                let found: Vec<SocketAddr> =
                    tokio::time::timeout(LOOKUP_TIMEOUT, tokio::net::lookup_host((host, 0)))
                        .await
                        .map_err(|_| Denied::Unknown(format!("DNS lookup of {host} timed out")))?
                        .map_err(|e| Denied::Unknown(format!("DNS lookup of {host} failed: {e}")))?
                        .collect();
                if let Some(private) = found.iter().find(|a| verify::is_private(a.ip())) {
                    return Err(Denied::Refused(format!(
                        "{host} resolves to {}, a private or reserved address; refusing to connect to it",
                        private.ip()
                    )));
                }
                found
            }
        };
        if found.is_empty() {
            return Err(Denied::Unknown(format!("{host} has no address")));
        }
        Ok(found)
    }

    /// Whether a request to `host:port` can go where the rules allow.
    async fn admit(&self, host: &str, port: u16) -> Result<(), Denied> {
        // reqwest connects to an address without asking the resolver: checked here.
        if let Ok(ip) = host.trim_matches(['[', ']']).parse::<IpAddr>() {
            return if verify::is_private(ip) {
                Err(Denied::Refused(format!(
                    "{ip} is a private or reserved address; refusing to connect to it (name a host, which `--resolve` can point at an address)"
                )))
            } else {
                Ok(())
            };
        }
        override_consistent(&self.overrides, host, port).map_err(Denied::Refused)?;
        self.addresses(host).await.map(|_| ())
    }
}

/// The override a connection to `host` takes. A resolver is given a name, not a port,
/// so the choice is by name: the override for port 443 (the health check's) before one
/// for another port, an exact name before a wildcard.
fn pick<'a>(overrides: &'a [Resolve], host: &str) -> Option<&'a Resolve> {
    overrides
        .iter()
        .filter(|r| r.applies_to(host, r.port))
        .min_by_key(|r| (r.port != 443, r.host.starts_with('*')))
}

/// That the override chosen by name for `host` is the one `--resolve` gives `host:port`
/// (none if none), and that reqwest can honour it: a URL's explicit port replaces the
/// override address's port, so an override for another port than 443 must keep it.
/// What cannot be honoured exactly is refused rather than connected somewhere else.
fn override_consistent(overrides: &[Resolve], host: &str, port: u16) -> Result<(), String> {
    let wanted = Resolve::find(overrides, host, port);
    match (wanted, pick(overrides, host)) {
        (None, None) => Ok(()),
        (Some(wanted), Some(used)) if wanted == used => {
            if port == 443 || wanted.addr.port() == port {
                Ok(())
            } else {
                Err(format!(
                    "the override `{}:{}:{}` changes the port, which a source on port {port} cannot follow; give the address with port {port}",
                    wanted.host, wanted.port, wanted.addr
                ))
            }
        }
        (_, Some(used)) => Err(format!(
            "{host}:{port} would connect through the override `{}:{}:{}`, meant for port {}: a source's overrides go by name, so give {host} one override only",
            used.host, used.port, used.addr, used.port
        )),
        // Whatever `find` finds applies at its own port, so `pick` sees it.
        (Some(_), None) => Ok(()),
    }
}

/// The client's name resolver: [`Guard::addresses`] for every name.
struct GuardedDns(Guard);

impl reqwest::dns::Resolve for GuardedDns {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let guard = self.0.clone();
        let host = name.as_str().to_owned();
        Box::pin(async move {
            match guard.addresses(&host).await {
                Ok(found) => Ok(Box::new(found.into_iter()) as reqwest::dns::Addrs),
                Err(denied) => Err(Box::new(denied) as Box<dyn std::error::Error + Send + Sync>),
            }
        })
    }
}

/// A failed request as an error: refused if the resolver refused the name, else
/// unreachable.
fn request_failed(what: &str, error: &reqwest::Error) -> SourceError {
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        if let Some(Denied::Refused(reason)) = cause.downcast_ref::<Denied>() {
            return SourceError::Refused {
                what: what.to_owned(),
                reason: reason.clone(),
            };
        }
        source = cause.source();
    }
    SourceError::Unreachable {
        what: what.to_owned(),
        message: describe(error),
    }
}

/// A reqwest error and its causes, without its URL.
fn describe(error: &reqwest::Error) -> String {
    if error.is_timeout() {
        return "timed out".to_owned();
    }
    let mut text = error.to_string();
    if let Some(url) = error.url() {
        text = text
            .replace(&format!(" for url ({url})"), "")
            .replace(url.as_str(), "…");
    }
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text = format!("{text}: {cause}");
        source = cause.source();
    }
    text
}

/// The body of `response`, refused past `max` bytes: a broken or hostile server's
/// endless answer is never read whole.
async fn bounded_body(
    mut response: reqwest::Response,
    max: usize,
    what: &str,
) -> Result<Vec<u8>, SourceError> {
    let too_large = || SourceError::TooLarge {
        what: what.to_owned(),
        max,
    };
    if response
        .content_length()
        .is_some_and(|length| length > u64::try_from(max).unwrap_or(u64::MAX))
    {
        return Err(too_large());
    }
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| request_failed(what, &e))?
    {
        if body.len() + chunk.len() > max {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
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
