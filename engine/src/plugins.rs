//! The plugin host: provider components loaded with wasmtime, sandboxed, pinned.
//!
//! - `engine`: the shared engine and the epoch ticker behind call deadlines.
//! - `cache`: compiled components on disk, so start-up does not pay Cranelift again.
//! - `wit`: the contract versions served and their bindings.
//! - `sandbox`: what an instance may do (nothing, by default) and its limits.
//! - `http`: the `http-send` gateway: granted origins, credentials, caps.
//! - `instance`: loading a component and calling it safely.
//! - `bundled`, `lock`: embedded providers and `fabrik.lock`.

pub mod bundled;
pub mod cache;
pub mod engine;
pub mod http;
pub mod instance;
pub mod lock;
pub mod sandbox;
pub mod types;
pub mod wit;

use std::path::{Path, PathBuf};
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
}

/// One provider of the project, compiled and linked.
pub struct LoadedProvider {
    pub role: Role,
    /// `bundled` or `path:<path>`.
    pub source: String,
    pub sha256: String,
    pub size: usize,
    pub entry: ProviderEntry,
    pub component: LoadedComponent,
}

/// The project's providers, loaded in one engine.
pub struct ProviderSet {
    engine: PluginEngine,
    pub providers: Vec<LoadedProvider>,
    pub limits: SandboxLimits,
}

/// Hex sha256 of component bytes, as `fabrik.lock` records it.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

impl ProviderSet {
    /// Loads every provider the project names (or the defaults), using `cache`.
    pub fn load(project: &Project, cache: &ComponentCache) -> Result<Self, PluginError> {
        let engine = PluginEngine::new(Compiler::from_env())
            .map_err(|e| PluginError::Engine(format!("{e:#}")))?;
        let mut providers = Vec::new();
        for (role, entry) in &project.providers {
            let (bytes, source): (std::borrow::Cow<'_, [u8]>, String) =
                match (&entry.bundled, &entry.path) {
                    (_, Some(path)) => {
                        let full = project.dir.join(path);
                        let bytes = std::fs::read(&full).map_err(|source| PluginError::Read {
                            role: *role,
                            path: full.clone(),
                            source,
                        })?;
                        (bytes.into(), format!("path:{}", path.display()))
                    }
                    (Some(name), None) => {
                        let bundled =
                            bundled::find(name).ok_or_else(|| PluginError::UnknownBundled {
                                role: *role,
                                bundled: name.clone(),
                                available: bundled::names().join(", "),
                            })?;
                        (bundled.wasm.into(), "bundled".to_owned())
                    }
                    (None, None) => {
                        return Err(PluginError::Config {
                            role: *role,
                            message: "no source (set `bundled` or `path`)".to_owned(),
                        });
                    }
                };
            let sha256 = sha256_hex(&bytes);
            let component = LoadedComponent::load(&engine, cache, role.as_str(), &bytes, &sha256)?;
            providers.push(LoadedProvider {
                role: *role,
                source,
                sha256,
                size: bytes.len(),
                entry: entry.clone(),
                component,
            });
        }
        Ok(Self {
            engine,
            providers,
            limits: SandboxLimits::default(),
        })
    }

    pub fn engine(&self) -> &PluginEngine {
        &self.engine
    }

    pub fn get(&self, role: Role) -> Option<&LoadedProvider> {
        self.providers.iter().find(|p| p.role == role)
    }

    /// Checks every provider against `fabrik.lock`, if the project has one. Returns whether
    /// a lock file exists.
    pub fn verify_lock(&self, project_dir: &Path) -> Result<bool, PluginError> {
        let Some(lock) = LockFile::read(project_dir)? else {
            return Ok(false);
        };
        for provider in &self.providers {
            lock.check(provider.role, &provider.source, &provider.sha256)?;
        }
        Ok(true)
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
            && *required != info.version
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
        let mut config: Vec<(String, String)> = Vec::new();
        let mut grants = Grants::default();
        for value in hidden {
            grants.hide(value);
        }
        for key in &info.config {
            if key.secret {
                let variable = provider.entry.secrets.get(&key.name);
                match variable.and_then(|v| env.get(v)) {
                    Some(value) => grants.add_credential(&key.name, value),
                    None if key.required => {
                        return Err(config_error(match variable {
                            Some(v) => format!(
                                "`{}` is required: set the environment variable `{v}` (or put it in the project's `.env`)",
                                key.name
                            ),
                            None => format!(
                                "`{}` is required: name the variable that holds it in `fabrik.toml` under `[providers.{role}.secrets]`",
                                key.name
                            ),
                        }));
                    }
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
                        return Err(config_error(format!(
                            "`{}` is required ({}): set it in `fabrik.toml` under `[providers.{role}.config]`{hint}",
                            key.name, key.description
                        )));
                    }
                    None => {}
                }
            }
        }
        for key in provider.entry.config.keys() {
            if !info.config.iter().any(|k| k.name == *key && !k.secret) {
                return Err(config_error(format!(
                    "`fabrik.toml` sets config `{key}`, which `{}` does not accept",
                    info.name
                )));
            }
        }
        match config.iter().find(|(k, _)| k == "base-url") {
            Some((_, url)) => grants.allow_origin(url).map_err(config_error)?,
            None => {
                for origin in &info.default_origins {
                    grants.allow_origin(origin).map_err(config_error)?;
                }
            }
        }
        let gateway = Arc::new(
            HttpGateway::new(role.as_str(), grants).map_err(|e| config_error(e.to_string()))?,
        );
        let mut instance = provider
            .component
            .instantiate(gateway, self.limits)
            .await
            .map_err(|error| PluginError::Provider { role, error })?;
        instance
            .configure(config)
            .await
            .map_err(|error| PluginError::Provider { role, error })?;
        Ok(instance)
    }

    fn require(&self, role: Role) -> Result<&LoadedProvider, PluginError> {
        self.get(role).ok_or_else(|| PluginError::Config {
            role,
            message: "no such provider in this project".to_owned(),
        })
    }
}

impl LoadedProvider {
    /// Whether this load compiled the component (for `providers list` and benchmarks).
    pub fn compiled(&self) -> bool {
        !matches!(self.component.cache, CacheOutcome::Hit)
    }
}
