//! The plugin host: provider components loaded with wasmtime, sandboxed, pinned.
//!
//! - `engine`: the shared engine and the epoch ticker behind call deadlines.
//! - `cache`: compiled components on disk, so start-up does not pay Cranelift again.
//! - `digest`: a component file's sha256 without rereading an unchanged file.
//! - `wit`: the contract versions served and their bindings.
//! - `sandbox`: what an instance may do (nothing, by default) and its limits.
//! - `http`: the `http-send` gateway: granted origins, credentials, caps.
//! - `instance`: loading a component and calling it safely.
//! - `bundled`, `lock`: embedded providers and `fabrik.lock`.
//! - `oci`: providers published to OCI registries, fetched into a blob cache.

pub mod bundled;
pub mod cache;
pub mod digest;
pub mod engine;
pub mod http;
pub mod instance;
pub mod lock;
pub mod oci;
pub mod pacing;
pub mod returned;
pub mod sandbox;
pub mod types;
pub mod wit;

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;

use sha2::{Digest, Sha256};

use crate::domain::Role;
use crate::project::{Project, ProviderEntry};
use crate::secrets::EnvSource;
use cache::{CacheOutcome, ComponentCache};
use engine::{Compiler, PluginEngine};
use http::{Grants, HttpGateway};
use instance::{LoadError, LoadedComponent, ProviderInstance};
use lock::{LockEntry, LockFile, PinError};
use sandbox::SandboxLimits;
use types::{ProviderError, ProviderInfo};

/// Why providers could not be loaded or started.
#[derive(Debug, thiserror::Error)]
pub enum PluginError {
    #[error("cannot start the WebAssembly engine: {0}")]
    Engine(String),
    #[error("provider `{role}`: `{bundled}` is not a bundled provider (bundled: {available})")]
    UnknownBundled {
        role: Role,
        bundled: String,
        available: String,
    },
    #[error("provider `{role}`: cannot read `{}`: {source}", path.display())]
    Read {
        role: Role,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Load(#[from] LoadError),
    #[error(transparent)]
    Pin(#[from] PinError),
    #[error("provider `{role}` is {found}, but `fabrik.toml` requires version {required}")]
    Version {
        role: Role,
        found: String,
        required: String,
    },
    #[error("provider `{role}`: {error}")]
    Provider { role: Role, error: ProviderError },
    #[error("provider `{role}`: {message}")]
    Config { role: Role, message: String },
    #[error(
        "provider `{role}` ({source_text}) was not fetched (a host bug: fetch OCI sources before loading)"
    )]
    NotFetched { role: Role, source_text: String },
}

/// One provider of the project, compiled and linked.
pub struct LoadedProvider {
    pub role: Role,
    /// `bundled` or `path:<path>`.
    pub source: String,
    pub sha256: String,
    /// For an OCI source: the manifest digest it was fetched by.
    pub manifest: Option<String>,
    pub size: u64,
    pub entry: ProviderEntry,
    pub component: LoadedComponent,
}

/// The project's providers, loaded in one engine.
pub struct ProviderSet {
    engine: PluginEngine,
    pub providers: Vec<LoadedProvider>,
    pub limits: SandboxLimits,
    pinned: bool,
    /// Request budgets per origin, shared by every instance this set makes.
    budgets: Arc<pacing::Budgets>,
    /// Per role, whether its first create of this process has succeeded (see
    /// [`ProviderSet::first_create`]); a gate per role, so that the DNS record's first
    /// create never waits for Coolify's.
    first_creates: std::sync::Mutex<HashMap<Role, Arc<tokio::sync::Mutex<bool>>>>,
}

/// The first create of a role in a process, running alone (see
/// [`ProviderSet::first_create`]).
pub struct FirstCreate {
    done: tokio::sync::OwnedMutexGuard<bool>,
}

impl FirstCreate {
    /// The create succeeded: later creates of the role no longer wait.
    pub fn succeeded(mut self) {
        *self.done = true;
    }
}

/// Hex sha256 of component bytes, as `fabrik.lock` records it.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Whether loading checks providers against `fabrik.lock`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pins {
    /// Refuse a provider whose bytes differ from its pin, or that has none, when the
    /// project has a `fabrik.lock`, before anything is compiled. Every command that calls
    /// providers loads this way.
    Enforce,
    /// Load what the project names whatever is pinned: `fabrik providers lock` (which
    /// writes the pins) and `providers list` (which reports the differences).
    Report,
}

impl ProviderSet {
    /// Loads every provider the project names (or the defaults), using `cache`.
    ///
    /// Cheapest checks first: a provider's sha256 is known without compiling anything
    /// (bundled ones carry it from the build, files from a stamp record, see `digest`),
    /// so a component that is not what `fabrik.lock` pins is refused in milliseconds, and
    /// a component's contract version is read from its bytes before it is compiled.
    pub fn load(
        project: &Project,
        cache: &ComponentCache,
        pins: Pins,
    ) -> Result<Self, PluginError> {
        Self::load_fetched(project, cache, pins, &BTreeMap::new())
    }

    /// [`ProviderSet::load`] for a project whose OCI providers `oci::fetch` made
    /// available (`fetched`, by role).
    pub fn load_fetched(
        project: &Project,
        cache: &ComponentCache,
        pins: Pins,
        fetched: &BTreeMap<Role, oci::Fetched>,
    ) -> Result<Self, PluginError> {
        let lock = match pins {
            Pins::Enforce => LockFile::read(&project.dir)?,
            Pins::Report => None,
        };
        let engine = PluginEngine::new(Compiler::from_env())
            .map_err(|e| PluginError::Engine(format!("{e:#}")))?;
        let records = cache.dir().map(|dir| dir.join("digests"));
        let blobs = oci::blobs::BlobCache::of(cache);
        if let Some(records) = &records
            && let Err(e) = std::fs::create_dir_all(records)
        {
            tracing::debug!(path = %records.display(), "cannot create the digest records: {e}");
        }
        // Every provider is identified and checked against its pin before any is compiled.
        let mut identified = Vec::new();
        for (role, entry) in &project.providers {
            let found = Identified::find(
                *role,
                entry,
                &project.dir,
                records.as_deref(),
                fetched.get(role),
                &blobs,
            )?;
            if let Some(lock) = &lock {
                lock.check(found.role, &found.source, &found.sha256)?;
            }
            identified.push(found);
        }
        // Then each one's contract version (from the cache, else read from its bytes).
        let mut checked = Vec::new();
        for found in &identified {
            checked.push(LoadedComponent::check(
                &engine,
                cache,
                found.role.as_str(),
                &found.sha256,
                || found.bytes(),
            )?);
        }
        let mut providers = Vec::new();
        for (found, checked) in identified.into_iter().zip(checked) {
            let component = checked.compile(&engine, cache)?;
            providers.push(LoadedProvider {
                role: found.role,
                source: found.source,
                sha256: found.sha256,
                manifest: found.manifest,
                size: found.size,
                entry: found.entry.clone(),
                component,
            });
        }
        if pins == Pins::Enforce && lock.is_none() {
            tracing::info!(project = %project.dir.display(), "no fabrik.lock: providers are not pinned (run `fabrik providers lock`)");
        }
        Ok(Self {
            engine,
            providers,
            limits: SandboxLimits::default(),
            pinned: lock.is_some(),
            budgets: Arc::default(),
            first_creates: std::sync::Mutex::default(),
        })
    }

    /// Waits while another app's first create of `role` runs. The first one gets a guard
    /// to hold during its create and to mark with [`FirstCreate::succeeded`]; later
    /// ones get `None` and create concurrently. A first create makes what the later ones
    /// share (Coolify's project, whose names are not unique): run alone, it is made once.
    pub async fn first_create(&self, role: Role) -> Option<FirstCreate> {
        let gate = {
            let mut gates = match self.first_creates.lock() {
                Ok(gates) => gates,
                Err(poisoned) => poisoned.into_inner(),
            };
            gates.entry(role).or_default().clone()
        };
        let done = gate.lock_owned().await;
        if *done {
            return None;
        }
        Some(FirstCreate { done })
    }

    /// The request budgets every instance of this set paces under.
    pub fn budgets(&self) -> &Arc<pacing::Budgets> {
        &self.budgets
    }

    /// Whether the providers were checked against a `fabrik.lock` when loaded.
    pub fn pinned(&self) -> bool {
        self.pinned
    }

    pub fn engine(&self) -> &PluginEngine {
        &self.engine
    }

    pub fn get(&self, role: Role) -> Option<&LoadedProvider> {
        self.providers.iter().find(|p| p.role == role)
    }

    /// What a provider says about itself (an instance with no grants: `describe` must not
    /// call the host).
    pub async fn describe(&self, role: Role) -> Result<ProviderInfo, PluginError> {
        let provider = self.require(role)?;
        let gateway = Arc::new(HttpGateway::new(role.as_str(), Grants::default()).map_err(
            |e| PluginError::Config {
                role,
                message: e.to_string(),
            },
        )?);
        let mut instance = provider
            .component
            .instantiate(gateway, self.limits)
            .await
            .map_err(|error| PluginError::Provider { role, error })?;
        let info = instance
            .describe()
            .await
            .map_err(|error| PluginError::Provider { role, error })?;
        if let Some(required) = &provider.entry.version
            && !version_satisfies(required, &info.version)
        {
            return Err(PluginError::Version {
                role,
                found: format!("{} {}", info.name, info.version),
                required: required.clone(),
            });
        }
        Ok(info)
    }

    /// The lock entries for the current providers.
    pub async fn lock_entries(&self) -> Result<Vec<LockEntry>, PluginError> {
        let mut entries = Vec::new();
        for provider in &self.providers {
            let info = self.describe(provider.role).await?;
            entries.push(LockEntry {
                role: provider.role,
                name: info.name,
                version: info.version,
                source: provider.source.clone(),
                manifest: provider.manifest.clone(),
                wit: provider.component.wit.to_string(),
                sha256: provider.sha256.clone(),
            });
        }
        Ok(entries)
    }

    /// A configured instance of `role`, granted its base URL (or default origins) and
    /// holding its credentials, which are resolved from `env`.
    pub async fn instantiate(
        &self,
        role: Role,
        env: &EnvSource,
    ) -> Result<ProviderInstance, PluginError> {
        self.instantiate_hiding(role, env, &[]).await
    }

    /// Like [`ProviderSet::instantiate`], also hiding `hidden` (the app's secret values,
    /// which the provider receives in desired states) in everything the provider logs.
    pub async fn instantiate_hiding(
        &self,
        role: Role,
        env: &EnvSource,
        hidden: &[secrecy::SecretString],
    ) -> Result<ProviderInstance, PluginError> {
        let provider = self.require(role)?;
        let info = self.describe(role).await?;
        let config_error = |message: String| PluginError::Config { role, message };
        let (config, mut grants) = settings(role, provider, &info, env)
            .map_err(|problems| config_error(problems.join("; ")))?;
        for value in hidden {
            grants.hide(value);
        }
        if let Some(limit) = info.rate_limit {
            for origin in grants.origins() {
                self.budgets.declare(&origin, limit);
            }
        }
        let gateway = Arc::new(
            HttpGateway::new(role.as_str(), grants)
                .map_err(|e| config_error(e.to_string()))?
                .with_budgets(self.budgets.clone()),
        );
        let mut instance = provider
            .component
            .instantiate(gateway, self.limits)
            .await
            .map_err(|error| PluginError::Provider { role, error })?;
        instance.set_credential_variables(provider.entry.secrets.values().cloned().collect());
        instance
            .configure(config)
            .await
            .map_err(|error| PluginError::Provider { role, error })?;
        Ok(instance)
    }

    /// Every problem with every provider's configuration and credentials (a required
    /// key or variable missing, a key the provider does not accept), all at once, without
    /// calling out: what `apply` checks before it changes anything.
    pub async fn check_settings(&self, env: &EnvSource) -> Vec<PluginError> {
        let mut problems = Vec::new();
        for provider in &self.providers {
            let role = provider.role;
            let info = match self.describe(role).await {
                Ok(info) => info,
                Err(error) => {
                    problems.push(error);
                    continue;
                }
            };
            if let Err(found) = settings(role, provider, &info, env) {
                problems.extend(
                    found
                        .into_iter()
                        .map(|message| PluginError::Config { role, message }),
                );
            }
        }
        problems
    }

    fn require(&self, role: Role) -> Result<&LoadedProvider, PluginError> {
        self.get(role).ok_or_else(|| PluginError::Config {
            role,
            message: "no such provider in this project".to_owned(),
        })
    }
}

/// A provider's component, located and identified by its sha256, not yet compiled.
struct Identified<'a> {
    role: Role,
    entry: &'a ProviderEntry,
    /// `bundled`, `path:<path>` or the `oci://` reference.
    source: String,
    sha256: String,
    manifest: Option<String>,
    size: u64,
    origin: Origin,
}

enum Origin {
    Bundled(&'static [u8]),
    /// A file, with its bytes if identifying it read them.
    File(PathBuf, Option<Vec<u8>>),
}

impl<'a> Identified<'a> {
    fn find(
        role: Role,
        entry: &'a ProviderEntry,
        project_dir: &std::path::Path,
        records: Option<&std::path::Path>,
        fetched: Option<&oci::Fetched>,
        blobs: &oci::blobs::BlobCache,
    ) -> Result<Self, PluginError> {
        if let Some(source) = &entry.source {
            // A blob in the cache, read like any component file, and checked to be the
            // bytes the registry's digest named.
            let not_fetched = || PluginError::NotFetched {
                role,
                source_text: source.clone(),
            };
            let fetched = fetched.ok_or_else(not_fetched)?;
            let path = blobs.path(&fetched.sha256).ok_or_else(not_fetched)?;
            let digest =
                digest::digest_file(&path, records).map_err(|source| PluginError::Read {
                    role,
                    path: path.clone(),
                    source,
                })?;
            if digest.sha256 != fetched.sha256 {
                return Err(PluginError::Config {
                    role,
                    message: format!(
                        "the cached component `{}` is not sha256:{} (the cache was tampered with or damaged); delete it and run again",
                        path.display(),
                        fetched.sha256
                    ),
                });
            }
            return Ok(Self {
                role,
                entry,
                source: fetched.reference.to_string(),
                sha256: digest.sha256,
                manifest: Some(fetched.manifest.clone()),
                size: digest.size,
                origin: Origin::File(path, digest.bytes),
            });
        }
        match (&entry.bundled, &entry.path) {
            (_, Some(path)) => {
                let full = project_dir.join(path);
                let digest =
                    digest::digest_file(&full, records).map_err(|source| PluginError::Read {
                        role,
                        path: full.clone(),
                        source,
                    })?;
                Ok(Self {
                    role,
                    entry,
                    source: format!("path:{}", path.display()),
                    sha256: digest.sha256,
                    manifest: None,
                    size: digest.size,
                    origin: Origin::File(full, digest.bytes),
                })
            }
            (Some(name), None) => {
                let bundled = bundled::find(name).ok_or_else(|| PluginError::UnknownBundled {
                    role,
                    bundled: name.clone(),
                    available: bundled::names().join(", "),
                })?;
                Ok(Self {
                    role,
                    entry,
                    source: "bundled".to_owned(),
                    sha256: bundled.sha256.to_owned(),
                    manifest: None,
                    size: bundled.wasm.len() as u64,
                    origin: Origin::Bundled(bundled.wasm),
                })
            }
            (None, None) => Err(PluginError::Config {
                role,
                message: "no source (set `bundled` or `path`)".to_owned(),
            }),
        }
    }

    /// The component's bytes, which must be the ones identified: a file that changed since
    /// it was checked is refused, not compiled.
    fn bytes(self: &Identified<'a>) -> Result<std::borrow::Cow<'static, [u8]>, LoadError> {
        let (path, known) = match &self.origin {
            Origin::Bundled(wasm) => return Ok((*wasm).into()),
            Origin::File(path, known) => (path, known),
        };
        let bytes = match known {
            Some(bytes) => bytes.clone(),
            None => std::fs::read(path).map_err(|source| LoadError::Read {
                name: self.role.as_str().to_owned(),
                path: path.clone(),
                source,
            })?,
        };
        let found = sha256_hex(&bytes);
        if found != self.sha256 {
            return Err(LoadError::Changed {
                name: self.role.as_str().to_owned(),
                path: path.clone(),
                expected: self.sha256.clone(),
                found,
            });
        }
        Ok(bytes.into())
    }
}

/// The key/value pairs `configure` receives.
type Config = Vec<(String, String)>;

/// A provider's configuration (for `configure`) and grants (origins, credentials) from
/// `fabrik.toml` and the environment, or every problem found.
fn settings(
    role: Role,
    provider: &LoadedProvider,
    info: &ProviderInfo,
    env: &EnvSource,
) -> Result<(Config, Grants), Vec<String>> {
    let mut problems = Vec::new();
    let mut config: Vec<(String, String)> = Vec::new();
    let mut grants = Grants::default();
    for key in &info.config {
        if key.secret {
            let variable = provider.entry.secrets.get(&key.name);
            match variable.and_then(|v| env.get(v)) {
                Some(value) => grants.add_credential(&key.name, value),
                None if key.required => problems.push(match variable {
                    Some(v) => format!(
                        "`{}` is required: set the environment variable `{v}` (or put it in the project's `.env`)",
                        key.name
                    ),
                    None => format!(
                        "`{}` is required: name the variable that holds it in `fabrik.toml` under `[providers.{role}.secrets]`",
                        key.name
                    ),
                }),
                None => {}
            }
        } else {
            let value = provider.entry.config.get(&key.name).cloned().or_else(|| {
                provider
                    .entry
                    .config_env
                    .get(&key.name)
                    .and_then(|v| env.get_plain(v))
            });
            match value {
                Some(value) => config.push((key.name.clone(), value)),
                None if key.required => {
                    let hint = provider
                        .entry
                        .config_env
                        .get(&key.name)
                        .map(|v| format!(" or the environment variable `{v}`"))
                        .unwrap_or_default();
                    problems.push(format!(
                        "`{}` is required ({}): set it in `fabrik.toml` under `[providers.{role}.config]`{hint}",
                        key.name, key.description
                    ));
                }
                None => {}
            }
        }
    }
    for key in provider.entry.config.keys() {
        if !info.config.iter().any(|k| k.name == *key && !k.secret) {
            problems.push(format!(
                "`fabrik.toml` sets config `{key}`, which `{}` does not accept",
                info.name
            ));
        }
    }
    let origins = match config.iter().find(|(k, _)| k == "base-url") {
        Some((_, url)) => vec![url.clone()],
        None => info.default_origins.clone(),
    };
    for origin in origins {
        if let Err(problem) = grants.allow_origin(&origin) {
            problems.push(problem);
        }
    }
    if problems.is_empty() {
        Ok((config, grants))
    } else {
        Err(problems)
    }
}

/// Whether a provider reporting `found` satisfies `fabrik.toml`'s `version`: a plain
/// version must be equal (`0.3.1`), a requirement must match (`^0.3`, `>=0.3, <0.5`).
fn version_satisfies(required: &str, found: &str) -> bool {
    if required == found {
        return true;
    }
    if semver::Version::parse(required).is_ok() {
        return false;
    }
    match (
        semver::VersionReq::parse(required),
        semver::Version::parse(found),
    ) {
        (Ok(requirement), Ok(version)) => requirement.matches(&version),
        _ => false,
    }
}

impl LoadedProvider {
    /// Whether this load compiled the component (for `providers list` and benchmarks).
    pub fn compiled(&self) -> bool {
        !matches!(self.component.cache, CacheOutcome::Hit)
    }
}
