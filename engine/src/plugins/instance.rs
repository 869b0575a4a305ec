//! Loading a provider component and calling it: one store per instance, every call under
//! a deadline and the memory cap, traps turned into provider errors, and a fresh instance
//! after a trap so the host keeps serving.

use std::sync::Arc;
use std::time::{Duration, Instant};

use wasmtime::component::{Component, HasSelf, Linker};
use wasmtime::{Store, Trap, UpdateDeadline};

use super::cache::{CacheOutcome, ComponentCache};
use super::engine::{EPOCH_TICK, PluginEngine};
use super::http::HttpGateway;
use super::sandbox::{HostState, SandboxLimits};
use super::types::{Progress, ProviderError, ProviderInfo, Resource, WitVersion};
use super::wit::{self, WitError, v0_1};

/// Why a component could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("provider `{name}` is not a valid WebAssembly component: {reason}")]
    Invalid { name: String, reason: String },
    #[error("provider `{name}` cannot be used: {source}")]
    Wit { name: String, source: WitError },
    #[error("provider `{name}` cannot be linked: {reason}")]
    Link { name: String, reason: String },
}

/// A compiled, type-checked provider component, ready to instantiate.
pub struct LoadedComponent {
    pub name: String,
    pub wit: WitVersion,
    pub cache: CacheOutcome,
    pre: v0_1::ProviderPluginPre<HostState>,
}

impl LoadedComponent {
    /// Compiles (or loads from the cache) and links the component `wasm`.
    pub fn load(
        engine: &PluginEngine,
        cache: &ComponentCache,
        name: &str,
        wasm: &[u8],
        sha256: &str,
    ) -> Result<Self, LoadError> {
        let invalid = |e: wasmtime::Error| LoadError::Invalid {
            name: name.to_owned(),
            reason: format!("{e:#}"),
        };
        let (component, outcome) = cache.load(engine.engine(), wasm, sha256).map_err(invalid)?;
        let wit = wit::detect(engine.engine(), &component).map_err(|source| LoadError::Wit {
            name: name.to_owned(),
            source,
        })?;
        let pre = link(engine, &component).map_err(|e| LoadError::Link {
            name: name.to_owned(),
            reason: format!("{e:#}"),
        })?;
        Ok(Self {
            name: name.to_owned(),
            wit,
            cache: outcome,
            pre,
        })
    }

    /// A new instance with its own store, allowed what `http` grants.
    pub async fn instantiate(
        &self,
        http: Arc<HttpGateway>,
        limits: SandboxLimits,
    ) -> Result<ProviderInstance, ProviderError> {
        let mut instance = ProviderInstance {
            name: self.name.clone(),
            pre: self.pre.clone(),
            http,
            limits,
            live: None,
            config: None,
        };
        instance.ensure_live().await?;
        Ok(instance)
    }
}

fn link(
    engine: &PluginEngine,
    component: &Component,
) -> wasmtime::Result<v0_1::ProviderPluginPre<HostState>> {
    let mut linker: Linker<HostState> = Linker::new(engine.engine());
    // All of WASI p2 is linked so that components from any language load; the sandbox
    // holds because the context grants nothing (see `sandbox`).
    wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
    v0_1::ProviderPlugin::add_to_linker::<_, HasSelf<_>>(&mut linker, |state| state)?;
    v0_1::ProviderPluginPre::new(linker.instantiate_pre(component)?)
}

struct Live {
    store: Store<HostState>,
    bindings: v0_1::ProviderPlugin,
}

/// One running provider. Calls take `&mut self`: an instance serves one call at a time.
pub struct ProviderInstance {
    name: String,
    pre: v0_1::ProviderPluginPre<HostState>,
    http: Arc<HttpGateway>,
    limits: SandboxLimits,
    /// `None` after a trap: the next call instantiates again.
    live: Option<Live>,
    /// The configuration given to `configure`, replayed after a re-instantiation.
    config: Option<Vec<(String, String)>>,
}

/// Extra time the host waits past the deadline before abandoning a call stuck in a host
/// function (the epoch check only fires while guest code runs).
const HOST_GRACE: Duration = Duration::from_secs(2);

impl ProviderInstance {
    pub fn name(&self) -> &str {
        &self.name
    }

    async fn ensure_live(&mut self) -> Result<(), ProviderError> {
        if self.live.is_some() {
            return Ok(());
        }
        let mut store = Store::new(
            self.pre.engine(),
            HostState::new(&self.name, self.http.clone(), self.limits),
        );
        store.limiter(|state| &mut state.limiter);
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(|context| {
            let expired = context.data().deadline.is_some_and(|d| Instant::now() >= d);
            Ok(if expired {
                UpdateDeadline::Interrupt
            } else {
                // Yield to the executor at every tick so that one guest cannot starve others.
                UpdateDeadline::Yield(1)
            })
        });
        store.data_mut().deadline = Some(Instant::now() + self.limits.call_timeout);
        let bindings = self.pre.instantiate_async(&mut store).await.map_err(|e| {
            ProviderError::Permanent(format!("provider `{}` failed to start: {e:#}", self.name))
        })?;
        if let Some(config) = &self.config {
            // Replay the configuration on the fresh instance.
            let replayed = bindings
                .fabrik_provider_provider()
                .call_configure(&mut store, config)
                .await
                .map_err(|e| {
                    ProviderError::Permanent(format!(
                        "provider `{}` failed to restart: {e:#}",
                        self.name
                    ))
                })?;
            replayed.map_err(ProviderError::from)?;
        }
        self.live = Some(Live { store, bindings });
        Ok(())
    }

    /// Runs one guest call under the deadline; maps traps and limits to provider errors
    /// and drops the poisoned instance.
    async fn call<T>(
        &mut self,
        function: &str,
        run: impl AsyncFnOnce(&v0_1::ProviderPlugin, &mut Store<HostState>) -> wasmtime::Result<T>,
    ) -> Result<T, ProviderError> {
        self.ensure_live().await?;
        let timeout = self.limits.call_timeout;
        let name = self.name.clone();
        let Some(live) = self.live.as_mut() else {
            return Err(ProviderError::Permanent(format!(
                "provider `{name}` is not running"
            )));
        };
        live.store.data_mut().deadline = Some(Instant::now() + timeout);
        live.store.data_mut().limiter.exceeded = None;
        let started = Instant::now();
        let outcome = tokio::time::timeout(
            timeout + HOST_GRACE + EPOCH_TICK,
            run(&live.bindings, &mut live.store),
        )
        .await;
        let error = match outcome {
            Ok(Ok(value)) => return Ok(value),
            Ok(Err(error)) => {
                let state = live.store.data();
                if let Some(asked) = state.limiter.exceeded {
                    format!(
                        "provider `{name}` exceeded its memory limit of {} MiB in `{function}` (asked for {} MiB)",
                        self.limits.memory >> 20,
                        asked >> 20
                    )
                } else if error.downcast_ref::<Trap>() == Some(&Trap::Interrupt) {
                    format!(
                        "provider `{name}` exceeded its time limit of {} s in `{function}` and was stopped",
                        timeout.as_secs_f32()
                    )
                } else {
                    tracing::debug!(provider = %name, function, "trap: {error:?}");
                    // The trap itself, not the wasm backtrace around it (that goes to the
                    // debug log), plus the guest's own last words (a panic message).
                    let cause = error
                        .downcast_ref::<Trap>()
                        .map_or_else(|| error.root_cause().to_string(), ToString::to_string);
                    let tail = state.stderr_tail();
                    let said = tail
                        .iter()
                        .rev()
                        .find(|line| line.contains("panicked"))
                        .or(tail.last())
                        .map(|line| format!("; it said: {line}"))
                        .unwrap_or_default();
                    format!("provider `{name}` crashed in `{function}`: {cause}{said}")
                }
            }
            Err(_elapsed) => format!(
                "provider `{name}` did not return from `{function}` within {:.1} s and was abandoned",
                started.elapsed().as_secs_f32()
            ),
        };
        tracing::warn!(provider = %name, function, "{error}");
        // A trapped instance cannot be entered again; the next call gets a fresh one.
        self.live = None;
        Err(ProviderError::Permanent(error))
    }

    pub async fn describe(&mut self) -> Result<ProviderInfo, ProviderError> {
        self.call("describe", async |b, s| {
            b.fabrik_provider_provider().call_describe(s).await
        })
        .await
        .map(Into::into)
    }

    pub async fn configure(&mut self, config: Vec<(String, String)>) -> Result<(), ProviderError> {
        let result = self
            .call("configure", async |b, s| {
                b.fabrik_provider_provider()
                    .call_configure(s, &config)
                    .await
            })
            .await?;
        result.map_err(ProviderError::from)?;
        self.config = Some(config);
        Ok(())
    }

    pub async fn lookup(
        &mut self,
        kind: &str,
        name: &str,
        owner: &str,
    ) -> Result<Option<Resource>, ProviderError> {
        let result = self
            .call("lookup", async |b, s| {
                b.fabrik_provider_provider()
                    .call_lookup(s, kind, name, owner)
                    .await
            })
            .await?;
        result
            .map_err(ProviderError::from)?
            .map(Resource::try_from)
            .transpose()
    }

    pub async fn read(&mut self, kind: &str, id: &str) -> Result<Option<Resource>, ProviderError> {
        let result = self
            .call("read", async |b, s| {
                b.fabrik_provider_provider().call_read(s, kind, id).await
            })
            .await?;
        result
            .map_err(ProviderError::from)?
            .map(Resource::try_from)
            .transpose()
    }

    pub async fn create(
        &mut self,
        kind: &str,
        name: &str,
        desired: &serde_json::Value,
        owner: &str,
    ) -> Result<Resource, ProviderError> {
        let desired = desired.to_string();
        let result = self
            .call("create", async |b, s| {
                b.fabrik_provider_provider()
                    .call_create(s, kind, name, &desired, owner)
                    .await
            })
            .await?;
        Resource::try_from(result.map_err(ProviderError::from)?)
    }

    pub async fn update(
        &mut self,
        kind: &str,
        id: &str,
        desired: &serde_json::Value,
    ) -> Result<Resource, ProviderError> {
        let desired = desired.to_string();
        let result = self
            .call("update", async |b, s| {
                b.fabrik_provider_provider()
                    .call_update(s, kind, id, &desired)
                    .await
            })
            .await?;
        Resource::try_from(result.map_err(ProviderError::from)?)
    }

    pub async fn delete(
        &mut self,
        kind: &str,
        id: &str,
        owner: &str,
        purge: bool,
    ) -> Result<(), ProviderError> {
        let result = self
            .call("delete", async |b, s| {
                b.fabrik_provider_provider()
                    .call_delete(s, kind, id, owner, purge)
                    .await
            })
            .await?;
        result.map_err(ProviderError::from)
    }

    pub async fn progress(&mut self, kind: &str, id: &str) -> Result<Progress, ProviderError> {
        let result = self
            .call("progress", async |b, s| {
                b.fabrik_provider_provider()
                    .call_progress(s, kind, id)
                    .await
            })
            .await?;
        result.map(Into::into).map_err(ProviderError::from)
    }
}
