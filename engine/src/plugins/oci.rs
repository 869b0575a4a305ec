//! Provider components from OCI registries (`source = "oci://…"` in `fabrik.toml`), in
//! the CNCF wasm OCI artifact layout: one `application/wasm` layer, the component.
//!
//! Before providers load, [`fetch`] makes sure each OCI provider's component is in the
//! blob cache: by the manifest digest `fabrik.lock` pins (never by tag), or, for a
//! provider not pinned yet, by what its tag, digest or version requirement resolves to.
//! Loading itself never touches the network: it reads the cache like a path provider's
//! file. A tag that moved under a pin is reported, not followed; `update` moves pins.
//!
//! - `reference`: the `oci://` syntax.
//! - `registry`: a pull-only distribution API client with the auth handshake.
//! - `credentials`: Docker's `config.json` and credential helpers.
//! - `blobs`: the content-addressed blob cache.

pub mod blobs;
pub mod credentials;
pub mod reference;
pub mod registry;

use std::collections::BTreeMap;

use crate::domain::Role;
use crate::plugins::lock::{LockEntry, LockFile};
use crate::project::Project;
use blobs::BlobCache;
use credentials::Credentials;
use reference::{OciReference, ReferenceError};
use registry::{Registry, RegistryError};

/// A provider's component, in the blob cache.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fetched {
    /// Where it came from, with the tag it was resolved from (if any).
    pub reference: OciReference,
    /// `sha256:<hex>` of the manifest: what `fabrik.lock` pins.
    pub manifest: String,
    /// Hex sha256 of the component (the layer's digest).
    pub sha256: String,
}

/// A pinned tag that now points at another manifest.
#[derive(Debug, Clone)]
pub struct Moved {
    pub role: Role,
    pub source: String,
    pub pinned: String,
    pub now: String,
}

/// What a fetch found.
#[derive(Debug, Default)]
pub struct Fetch {
    pub components: BTreeMap<Role, Fetched>,
    /// Only filled when tags were checked (`fabrik providers lock`).
    pub moved: Vec<Moved>,
}

/// Why an OCI provider could not be made available.
#[derive(Debug, thiserror::Error)]
pub enum OciError {
    #[error("provider `{role}`: {source}")]
    Reference { role: Role, source: ReferenceError },
    #[error("provider `{role}`: {source}")]
    Registry { role: Role, source: RegistryError },
    #[error(
        "provider `{role}` ({source_text}) is not in the local cache and `--offline` forbids fetching it\n  hint: run once without `--offline` to fetch the pinned digest"
    )]
    Offline { role: Role, source_text: String },
    #[error(
        "provider `{role}` ({source_text}) has no pin in `fabrik.lock` and `--offline` cannot resolve a tag\n  hint: run `fabrik providers lock` online"
    )]
    OfflineUnpinned { role: Role, source_text: String },
    #[error(
        "provider `{role}` ({source_text}): the manifest is not a WebAssembly component (it needs exactly one `application/wasm` layer; publish with `wkg oci push` or `oras push … file.wasm:application/wasm`)"
    )]
    NotAComponent { role: Role, source_text: String },
    #[error(
        "provider `{role}` ({source_text}): the pinned manifest {manifest} holds a component with sha256:{found}, but `fabrik.lock` pins sha256:{pinned}; refused"
    )]
    PinMismatch {
        role: Role,
        source_text: String,
        manifest: String,
        pinned: String,
        found: String,
    },
    #[error(
        "provider `{role}` ({source_text}): no tag matches the version requirement `{requirement}` (tags: {tags})"
    )]
    NoMatchingTag {
        role: Role,
        source_text: String,
        requirement: String,
        tags: String,
    },
    #[error(
        "provider `{role}` ({source_text}) names no tag or digest; add one, or a version requirement (`version = \"^0.3\"`)"
    )]
    Unresolvable { role: Role, source_text: String },
    #[error("provider `{role}`: {message}")]
    Cache { role: Role, message: String },
    #[error(
        "provider `{role}`: `{source_text}` names its tag or digest in `fabrik.toml`, so there is no newer one to move to\n  hint: change the tag there, or drop it and set a requirement (`version = \"^0.3\"`) for `fabrik providers update`"
    )]
    FixedSource { role: Role, source_text: String },
}

/// How a fetch behaves.
#[derive(Debug, Clone, Copy, Default)]
pub struct FetchOptions {
    /// Never touch the network: everything must be cached and pinned.
    pub offline: bool,
    /// Resolve the tags of pinned providers too, and report those that moved.
    pub check_tags: bool,
}

/// The lock entry pinning `role` to what `reference` asks for: the same repository and
/// the same digest, or the same tag, or (a reference with neither, resolved by version
/// requirement) any pin of that repository. A source changed in `fabrik.toml` is not
/// pinned until `fabrik providers lock` runs again.
fn pin_for<'a>(
    lock: Option<&'a LockFile>,
    role: Role,
    reference: &OciReference,
) -> Option<&'a LockEntry> {
    let entry = lock?.providers.iter().find(|e| e.role == role)?;
    let manifest = entry.manifest.as_deref()?;
    let pinned = OciReference::parse(&entry.source).ok()?;
    if pinned.registry != reference.registry || pinned.repository != reference.repository {
        return None;
    }
    let same = match (&reference.digest, &reference.tag) {
        (Some(digest), _) => manifest == digest,
        (None, Some(tag)) => pinned.tag.as_deref() == Some(tag),
        (None, None) => true,
    };
    same.then_some(entry)
}

/// Makes every OCI provider of `project` available in `blobs`: pinned ones by their
/// manifest digest, others by what their source resolves to now.
pub async fn fetch(
    project: &Project,
    blobs: &BlobCache,
    lock: Option<&LockFile>,
    options: FetchOptions,
) -> Result<Fetch, OciError> {
    let mut fetch = Fetch::default();
    let mut registry: Option<Registry> = None;
    for (role, entry) in &project.providers {
        let role = *role;
        let Some(source) = &entry.source else {
            continue;
        };
        let reference =
            OciReference::parse(source).map_err(|source| OciError::Reference { role, source })?;
        let source_text = reference.to_string();
        if let Some(pin) = pin_for(lock, role, &reference) {
            let manifest = pin.manifest.clone().unwrap_or_default();
            let pinned_reference = OciReference::parse(&pin.source)
                .map_err(|source| OciError::Reference { role, source })?;
            if !blobs.has(&pin.sha256) {
                if options.offline {
                    return Err(OciError::Offline { role, source_text });
                }
                let client = session(&mut registry, role)?;
                download(
                    client,
                    blobs,
                    role,
                    &pinned_reference,
                    &manifest,
                    Some(&pin.sha256),
                )
                .await?;
            }
            if options.check_tags
                && !options.offline
                && let Some(tag) = &pinned_reference.tag
            {
                let client = session(&mut registry, role)?;
                let now = client
                    .resolve(&pinned_reference.with_tag(tag))
                    .await
                    .map_err(|source| OciError::Registry { role, source })?;
                if now != manifest {
                    fetch.moved.push(Moved {
                        role,
                        source: pinned_reference.to_string(),
                        pinned: manifest.clone(),
                        now,
                    });
                }
            }
            fetch.components.insert(
                role,
                Fetched {
                    reference: pinned_reference,
                    manifest,
                    sha256: pin.sha256.clone(),
                },
            );
            continue;
        }
        if options.offline {
            return Err(OciError::OfflineUnpinned { role, source_text });
        }
        let client = session(&mut registry, role)?;
        let resolved = match (&reference.digest, &reference.tag, &entry.version) {
            (Some(_), _, _) | (None, Some(_), _) => reference.clone(),
            (None, None, Some(requirement)) => {
                let tag = newest_matching(client, role, &reference, requirement).await?;
                reference.with_tag(&tag)
            }
            (None, None, None) => return Err(OciError::Unresolvable { role, source_text }),
        };
        let manifest = client
            .resolve(&resolved)
            .await
            .map_err(|source| OciError::Registry { role, source })?;
        let sha256 = download(client, blobs, role, &resolved, &manifest, None).await?;
        fetch.components.insert(
            role,
            Fetched {
                reference: resolved,
                manifest,
                sha256,
            },
        );
    }
    Ok(fetch)
}

/// A provider's pin moved to a newer tag by [`update`].
#[derive(Debug, Clone)]
pub struct Updated {
    pub role: Role,
    pub before: Option<Fetched>,
    pub after: Fetched,
}

/// Moves the pins of `roles` (every OCI provider when empty) to the newest tag matching
/// each provider's `version` requirement (any version when it has none).
pub async fn update(
    project: &Project,
    blobs: &BlobCache,
    lock: Option<&LockFile>,
    roles: &[Role],
) -> Result<Vec<Updated>, OciError> {
    let mut updated = Vec::new();
    let mut registry: Option<Registry> = None;
    for (role, entry) in &project.providers {
        let role = *role;
        let Some(source) = &entry.source else {
            continue;
        };
        if !roles.is_empty() && !roles.contains(&role) {
            continue;
        }
        let reference =
            OciReference::parse(source).map_err(|source| OciError::Reference { role, source })?;
        if reference.tag.is_some() || reference.digest.is_some() {
            return Err(OciError::FixedSource {
                role,
                source_text: reference.to_string(),
            });
        }
        let before = pin_for(lock, role, &reference).and_then(|pin| {
            Some(Fetched {
                reference: OciReference::parse(&pin.source).ok()?,
                manifest: pin.manifest.clone()?,
                sha256: pin.sha256.clone(),
            })
        });
        let client = session(&mut registry, role)?;
        let requirement = entry.version.clone().unwrap_or_else(|| "*".to_owned());
        let tag = newest_matching(client, role, &reference, &requirement).await?;
        let resolved = reference.with_tag(&tag);
        let manifest = client
            .resolve(&resolved)
            .await
            .map_err(|source| OciError::Registry { role, source })?;
        let sha256 = download(client, blobs, role, &resolved, &manifest, None).await?;
        updated.push(Updated {
            role,
            before,
            after: Fetched {
                reference: resolved,
                manifest,
                sha256,
            },
        });
    }
    Ok(updated)
}

fn session(registry: &mut Option<Registry>, role: Role) -> Result<&Registry, OciError> {
    if registry.is_none() {
        *registry = Some(
            Registry::new(Credentials::from_docker_config()).map_err(|e| OciError::Cache {
                role,
                message: format!("cannot start an HTTP client: {e}"),
            })?,
        );
    }
    registry.as_ref().ok_or_else(|| OciError::Cache {
        role,
        message: "no HTTP client".to_owned(),
    })
}

/// Fetches the manifest `manifest` and its component into `blobs` (unless cached);
/// returns the component's hex sha256, which must be `expected` when given.
async fn download(
    client: &Registry,
    blobs: &BlobCache,
    role: Role,
    reference: &OciReference,
    manifest: &str,
    expected: Option<&str>,
) -> Result<String, OciError> {
    let source_text = reference.to_string();
    let parsed = client
        .manifest(reference, manifest)
        .await
        .map_err(|source| OciError::Registry { role, source })?;
    let layer = parsed.component().ok_or_else(|| OciError::NotAComponent {
        role,
        source_text: source_text.clone(),
    })?;
    let found = layer
        .digest
        .strip_prefix("sha256:")
        .filter(|hex| hex.len() == 64 && hex.chars().all(|c| c.is_ascii_hexdigit()))
        .ok_or_else(|| OciError::NotAComponent {
            role,
            source_text: source_text.clone(),
        })?
        .to_owned();
    if let Some(pinned) = expected
        && pinned != found
    {
        return Err(OciError::PinMismatch {
            role,
            source_text,
            manifest: manifest.to_owned(),
            pinned: pinned.to_owned(),
            found,
        });
    }
    if !blobs.has(&found) {
        let bytes = client
            .blob(reference, &layer.digest)
            .await
            .map_err(|source| OciError::Registry { role, source })?;
        blobs
            .store(&found, &bytes)
            .map_err(|message| OciError::Cache { role, message })?;
    }
    Ok(found)
}

/// The most tags an error lists.
const LISTED_TAGS: usize = 20;

/// Some tags, for an error: the last ones (registries list oldest first), with how many
/// were left out.
fn listed(tags: &[String]) -> String {
    match tags.len() {
        0 => "none".to_owned(),
        n if n <= LISTED_TAGS => tags.join(", "),
        n => format!(
            "{} more, then {}",
            n - LISTED_TAGS,
            tags[n - LISTED_TAGS..].join(", ")
        ),
    }
}

/// The newest tag of the repository that is a semver version matching `requirement`.
async fn newest_matching(
    client: &Registry,
    role: Role,
    reference: &OciReference,
    requirement: &str,
) -> Result<String, OciError> {
    let source_text = reference.to_string();
    let wanted = semver::VersionReq::parse(requirement).map_err(|e| OciError::Cache {
        role,
        message: format!("`version = \"{requirement}\"` is not a semver requirement: {e}"),
    })?;
    let tags = client
        .tags(reference)
        .await
        .map_err(|source| OciError::Registry { role, source })?;
    tags.iter()
        .filter_map(|tag| {
            let version = semver::Version::parse(tag.trim_start_matches('v')).ok()?;
            wanted.matches(&version).then_some((version, tag))
        })
        .max_by(|a, b| a.0.cmp(&b.0))
        .map(|(_, tag)| tag.clone())
        .ok_or_else(|| OciError::NoMatchingTag {
            role,
            source_text,
            requirement: requirement.to_owned(),
            tags: listed(&tags),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 28, point 6: a repository with 200,000 tags makes an error of a few lines.
    #[test]
    fn an_error_lists_a_few_tags_and_counts_the_rest() {
        let tags: Vec<String> = (0..200_000).map(|i| format!("build-{i}")).collect();
        let text = listed(&tags);
        assert!(text.len() < 500, "{} bytes", text.len());
        assert!(text.starts_with("199980 more, then build-199980"), "{text}");
        assert_eq!(listed(&[]), "none");
        assert_eq!(listed(&["1.0".to_owned(), "2.0".to_owned()]), "1.0, 2.0");
    }
}
