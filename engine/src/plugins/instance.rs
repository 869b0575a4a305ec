//! Loading a provider component and calling it: one store per instance, every call under
//! a deadline and the memory cap, traps turned into provider errors, and a fresh instance
//! after a trap so the host keeps serving.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::{Duration, Instant};

use wasmtime::component::{Component, HasSelf, Linker};
use wasmtime::{Store, Trap, UpdateDeadline};

use super::cache::{CacheOutcome, ComponentCache, Lookup};
use super::engine::{EPOCH_TICK, PluginEngine};
use super::http::HttpGateway;
use super::returned::{Returned, tidied};
use super::sandbox::{HostState, SandboxLimits};
use super::types::{Progress, ProviderError, ProviderInfo, Resource, ResourcePage, WitVersion};
use super::wit::{self, WitError, v0_1, v0_2, v0_3, v0_4};

/// Why a component could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("provider `{name}` is not a valid WebAssembly component: {reason}")]
    Invalid { name: String, reason: String },
    #[error("provider `{name}` cannot be used: {source}")]
    Wit { name: String, source: WitError },
    #[error("provider `{name}` cannot be linked: {reason}")]
    Link { name: String, reason: String },
    #[error("provider `{name}`: cannot read `{}`: {source}", path.display())]
    Read {
        name: String,
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error(
        "provider `{name}`: `{}` changed while it was being loaded (sha256:{expected} became sha256:{found}); run the command again",
        path.display()
    )]
    Changed {
        name: String,
        path: std::path::PathBuf,
        expected: String,
        found: String,
    },
}

/// A compiled, type-checked provider component, ready to instantiate.
pub struct LoadedComponent {
    pub name: String,
    pub wit: WitVersion,
    pub cache: CacheOutcome,
    pre: Pre,
}

/// A linked component of one contract version.
#[derive(Clone)]
enum Pre {
    V0_1(v0_1::ProviderPluginPre<HostState>),
    V0_2(v0_2::ProviderPluginPre<HostState>),
    V0_3(v0_3::ProviderPluginPre<HostState>),
    V0_4(v0_4::ProviderPluginPre<HostState>),
}

/// An instance's bindings, of the version its component targets.
enum Bindings {
    V0_1(v0_1::ProviderPlugin),
    V0_2(v0_2::ProviderPlugin),
    V0_3(v0_3::ProviderPlugin),
    V0_4(v0_4::ProviderPlugin),
}

/// Runs `$body` with `$guest` bound to the `provider` export of whichever version `$b`
/// is. The body is expanded once per version: the same text, each version's own types.
macro_rules! on_guest {
    ($b:expr, |$guest:ident| $body:expr) => {
        match $b {
            Bindings::V0_1(b) => {
                let $guest = b.fabrik_provider_provider();
                $body
            }
            Bindings::V0_2(b) => {
                let $guest = b.fabrik_provider_provider();
                $body
            }
            Bindings::V0_3(b) => {
                let $guest = b.fabrik_provider_provider();
                $body
            }
            Bindings::V0_4(b) => {
                let $guest = b.fabrik_provider_provider();
                $body
            }
        }
    };
}

impl Pre {
    async fn instantiate(&self, store: &mut Store<HostState>) -> wasmtime::Result<Bindings> {
        Ok(match self {
            Pre::V0_1(pre) => Bindings::V0_1(pre.instantiate_async(store).await?),
            Pre::V0_2(pre) => Bindings::V0_2(pre.instantiate_async(store).await?),
            Pre::V0_3(pre) => Bindings::V0_3(pre.instantiate_async(store).await?),
            Pre::V0_4(pre) => Bindings::V0_4(pre.instantiate_async(store).await?),
        })
    }

    fn engine(&self) -> &wasmtime::Engine {
        match self {
            Pre::V0_1(pre) => pre.engine(),
            Pre::V0_2(pre) => pre.engine(),
            Pre::V0_3(pre) => pre.engine(),
            Pre::V0_4(pre) => pre.engine(),
        }
    }
}

impl LoadedComponent {
    /// The component whose sha256 is `sha256`: from the cache, else `wasm()`'s bytes,
    /// checked (the contract version, read from the bytes) before they are compiled and
    /// cached. `wasm` is only called on a cache miss, so a warm start never reads them.
    pub fn load<'a>(
        engine: &PluginEngine,
        cache: &ComponentCache,
        name: &str,
        sha256: &str,
        wasm: impl FnOnce() -> Result<Cow<'a, [u8]>, LoadError>,
    ) -> Result<Self, LoadError> {
        Self::check(engine, cache, name, sha256, wasm)?.compile(engine, cache)
    }

    /// The first half of [`LoadedComponent::load`]: everything but compiling, so that a
    /// set of components is refused before any of them is compiled.
    pub fn check<'a>(
        engine: &PluginEngine,
        cache: &ComponentCache,
        name: &str,
        sha256: &str,
        wasm: impl FnOnce() -> Result<Cow<'a, [u8]>, LoadError>,
    ) -> Result<Checked<'a>, LoadError> {
        let wit_error = |source: WitError| LoadError::Wit {
            name: name.to_owned(),
            source,
        };
        let found = match cache.get(engine.engine(), sha256) {
            Lookup::Hit(component) => {
                let wit = wit::detect(engine.engine(), &component).map_err(wit_error)?;
                Found::Cached(component, wit)
            }
            lookup => {
                let bytes = wasm()?;
                let wit = wit::detect_in_bytes(&bytes).map_err(wit_error)?;
                let outcome = match lookup {
                    Lookup::Unusable(reason) => {
                        tracing::warn!(provider = name, "rebuilt a cached component: {reason}");
                        CacheOutcome::Rebuilt(reason)
                    }
                    Lookup::Bypassed(reason) => CacheOutcome::Bypassed(reason),
                    Lookup::Miss | Lookup::Hit(_) => CacheOutcome::Miss,
                };
                Found::Bytes(bytes, wit, outcome)
            }
        };
        Ok(Checked {
            name: name.to_owned(),
            sha256: sha256.to_owned(),
            found,
        })
    }

    /// [`LoadedComponent::load`] for bytes already in memory.
    pub fn load_bytes(
        engine: &PluginEngine,
        cache: &ComponentCache,
        name: &str,
        wasm: &[u8],
        sha256: &str,
    ) -> Result<Self, LoadError> {
        Self::load(engine, cache, name, sha256, || Ok(wasm.into()))
    }

    /// A new instance with its own store, allowed what `http` grants.
    pub async fn instantiate(
        &self,
        http: Arc<HttpGateway>,
        limits: SandboxLimits,
    ) -> Result<ProviderInstance, ProviderError> {
        let mut instance = ProviderInstance {
            name: self.name.clone(),
            wit: self.wit,
            pre: self.pre.clone(),
            http,
            limits,
            live: None,
            config: None,
            credential_variables: Vec::new(),
        };
        instance.ensure_live().await?;
        Ok(instance)
    }
}

/// A component that passed every check and is ready to compile (or was cached).
pub struct Checked<'a> {
    name: String,
    sha256: String,
    found: Found<'a>,
}

enum Found<'a> {
    Cached(Component, WitVersion),
    Bytes(Cow<'a, [u8]>, WitVersion, CacheOutcome),
}

impl Checked<'_> {
    /// Compiles the component if it was not cached (storing the artifact) and links it.
    pub fn compile(
        self,
        engine: &PluginEngine,
        cache: &ComponentCache,
    ) -> Result<LoadedComponent, LoadError> {
        let name = self.name;
        let invalid = |e: wasmtime::Error| LoadError::Invalid {
            name: name.clone(),
            reason: format!("{e:#}"),
        };
        let (component, wit, outcome) = match self.found {
            Found::Cached(component, wit) => (component, wit, CacheOutcome::Hit),
            Found::Bytes(bytes, wit, outcome) => {
                let component = cache
                    .compile(engine.engine(), &self.sha256, &bytes)
                    .map_err(invalid)?;
                (component, wit, outcome)
            }
        };
        let pre = link(engine, &component, wit).map_err(|e| LoadError::Link {
            name: name.clone(),
            reason: format!("{e:#}"),
        })?;
        Ok(LoadedComponent {
            name,
            wit,
            cache: outcome,
            pre,
        })
    }
}

fn link(engine: &PluginEngine, component: &Component, wit: WitVersion) -> wasmtime::Result<Pre> {
    let mut linker: Linker<HostState> = Linker::new(engine.engine());
    // All of WASI p2 is linked so that components from any language load; the sandbox
    // holds because the context grants nothing (see `sandbox`).
    wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
    if wit.is_served_by(wit::V0_1) {
        v0_1::ProviderPlugin::add_to_linker::<_, HasSelf<_>>(&mut linker, |state| state)?;
        Ok(Pre::V0_1(v0_1::ProviderPluginPre::new(
            linker.instantiate_pre(component)?,
        )?))
    } else if wit.is_served_by(wit::V0_2) {
        v0_2::ProviderPlugin::add_to_linker::<_, HasSelf<_>>(&mut linker, |state| state)?;
        Ok(Pre::V0_2(v0_2::ProviderPluginPre::new(
            linker.instantiate_pre(component)?,
        )?))
    } else if wit.is_served_by(wit::V0_3) {
        v0_3::ProviderPlugin::add_to_linker::<_, HasSelf<_>>(&mut linker, |state| state)?;
        Ok(Pre::V0_3(v0_3::ProviderPluginPre::new(
            linker.instantiate_pre(component)?,
        )?))
    } else {
        v0_4::ProviderPlugin::add_to_linker::<_, HasSelf<_>>(&mut linker, |state| state)?;
        Ok(Pre::V0_4(v0_4::ProviderPluginPre::new(
            linker.instantiate_pre(component)?,
        )?))
    }
}

struct Live {
    store: Store<HostState>,
    bindings: Bindings,
}

/// One running provider. Calls take `&mut self`: an instance serves one call at a time.
pub struct ProviderInstance {
    name: String,
    wit: WitVersion,
    pre: Pre,
    http: Arc<HttpGateway>,
    limits: SandboxLimits,
    /// `None` after a trap: the next call instantiates again.
    live: Option<Live>,
    /// The configuration given to `configure`, replayed after a re-instantiation.
    config: Option<Vec<(String, String)>>,
    /// The variables the project takes this provider's credentials from, named when
    /// the API refuses them (only the host knows them; the provider sees values).
    credential_variables: Vec<String>,
}

/// Extra time the host waits past the deadline before abandoning a call stuck in a host
/// function (the epoch check only fires while guest code runs).
const HOST_GRACE: Duration = Duration::from_secs(2);

impl ProviderInstance {
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The granted origins its credentials would reach over plain HTTP (see
    /// [`super::http::Grants::cleartext_origins`]).
    pub fn cleartext_origins(&self) -> Vec<String> {
        self.http.grants().cleartext_origins()
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
        let bindings = self.pre.instantiate(&mut store).await.map_err(|e| {
            ProviderError::Permanent(format!("provider `{}` failed to start: {e:#}", self.name))
        })?;
        if let Some(config) = &self.config {
            // Replay the configuration on the fresh instance.
            let restart = |e: wasmtime::Error| {
                ProviderError::Permanent(format!(
                    "provider `{}` failed to restart: {e:#}",
                    self.name
                ))
            };
            on_guest!(&bindings, |guest| guest
                .call_configure(&mut store, config)
                .await
                .map_err(restart)?
                .map_err(ProviderError::from)?);
        }
        self.live = Some(Live { store, bindings });
        Ok(())
    }

    /// Runs one guest call under the deadline; maps traps and limits to provider errors
    /// and drops the poisoned instance.
    async fn call<T>(
        &mut self,
        function: &str,
        run: impl AsyncFnOnce(&Bindings, &mut Store<HostState>) -> wasmtime::Result<T>,
    ) -> Result<T, ProviderError> {
        self.ensure_live().await?;
        let timeout = self.limits.timeout_of(function);
        let name = self.name.clone();
        let Some(live) = self.live.as_mut() else {
            return Err(ProviderError::Permanent(format!(
                "provider `{name}` is not running"
            )));
        };
        live.store.data_mut().deadline = Some(Instant::now() + timeout);
        live.store.data_mut().polling = function == "progress";
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
                    let said = last_words(&state.stderr_tail())
                        .map(|words| format!("; it said: {words}"))
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

    /// The contract version this instance's component targets.
    pub fn wit(&self) -> WitVersion {
        self.wit
    }

    pub async fn describe(&mut self) -> Result<ProviderInfo, ProviderError> {
        self.call("describe", async |b, s| {
            on_guest!(b, |guest| guest.call_describe(s).await.map(Into::into))
        })
        .await
    }

    pub async fn configure(&mut self, config: Vec<(String, String)>) -> Result<(), ProviderError> {
        let result = self
            .call("configure", async |b, s| {
                on_guest!(b, |guest| guest
                    .call_configure(s, &config)
                    .await
                    .map(|r| r.map_err(ProviderError::from)))
            })
            .await
            .and_then(|r| r);
        self.returned(result)?;
        self.config = Some(config);
        Ok(())
    }

    /// Names the variables the credentials come from in an `unauthorized` answer.
    pub fn set_credential_variables(&mut self, variables: Vec<String>) {
        self.credential_variables = variables;
    }

    /// A call's result as the engine may use it (see `returned`): redacted, control
    /// characters shown, sizes bounded; a refusal of the credentials says where they
    /// come from.
    fn returned<T: Returned>(&self, result: Result<T, ProviderError>) -> Result<T, ProviderError> {
        let http = &self.http;
        tidied(result, &|text| http.redact(text)).map_err(|error| match error {
            ProviderError::Unauthorized(message) if !self.credential_variables.is_empty() => {
                ProviderError::Unauthorized(format!(
                    "{message} (the credentials come from {})",
                    self.credential_variables
                        .iter()
                        .map(|v| format!("`{v}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ))
            }
            other => other,
        })
    }

    /// Finds the resource of `kind` named `name`. `desired`, the document it would be
    /// created from, lets a 0.3 provider look only where that would create it (see
    /// the contract); older ones look everywhere.
    pub async fn lookup(
        &mut self,
        kind: &str,
        name: &str,
        owner: &str,
        desired: Option<&serde_json::Value>,
    ) -> Result<Option<Resource>, ProviderError> {
        let desired = desired.map(ToString::to_string);
        let result = self
            .call("lookup", async |b, s| {
                macro_rules! found {
                    ($call:expr) => {
                        $call.await.map(|r| {
                            r.map_err(ProviderError::from)?
                                .map(Resource::try_from)
                                .transpose()
                        })
                    };
                }
                match b {
                    Bindings::V0_1(b) => found!(
                        b.fabrik_provider_provider()
                            .call_lookup(s, kind, name, owner)
                    ),
                    Bindings::V0_2(b) => found!(
                        b.fabrik_provider_provider()
                            .call_lookup(s, kind, name, owner)
                    ),
                    Bindings::V0_3(b) => found!(b.fabrik_provider_provider().call_lookup(
                        s,
                        kind,
                        name,
                        owner,
                        desired.as_deref()
                    )),
                    Bindings::V0_4(b) => found!(b.fabrik_provider_provider().call_lookup(
                        s,
                        kind,
                        name,
                        owner,
                        desired.as_deref()
                    )),
                }
            })
            .await
            .and_then(|r| r);
        self.returned(result)
    }

    pub async fn read(&mut self, kind: &str, id: &str) -> Result<Option<Resource>, ProviderError> {
        let result = self
            .call("read", async |b, s| {
                on_guest!(b, |guest| guest.call_read(s, kind, id).await.map(|r| r
                    .map_err(ProviderError::from)?
                    .map(Resource::try_from)
                    .transpose()))
            })
            .await
            .and_then(|r| r);
        self.returned(result)
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
                on_guest!(b, |guest| guest
                    .call_create(s, kind, name, &desired, owner)
                    .await
                    .map(|r| Resource::try_from(r.map_err(ProviderError::from)?)))
            })
            .await
            .and_then(|r| r);
        self.returned(result)
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
                on_guest!(b, |guest| guest
                    .call_update(s, kind, id, &desired)
                    .await
                    .map(|r| Resource::try_from(r.map_err(ProviderError::from)?)))
            })
            .await
            .and_then(|r| r);
        self.returned(result)
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
                on_guest!(b, |guest| guest
                    .call_delete(s, kind, id, owner, purge)
                    .await
                    .map(|r| r.map_err(ProviderError::from)))
            })
            .await
            .and_then(|r| r);
        self.returned(result)
    }

    pub async fn progress(&mut self, kind: &str, id: &str) -> Result<Progress, ProviderError> {
        let result = self
            .call("progress", async |b, s| {
                on_guest!(b, |guest| guest
                    .call_progress(s, kind, id)
                    .await
                    .map(|r| r.map(Into::into).map_err(ProviderError::from)))
            })
            .await
            .and_then(|r| r);
        self.returned(result)
    }

    /// One page of the resources of `kind` whose owner tag starts with `owner_prefix`
    /// (contract 0.2). A 0.1 provider cannot list: `Ok(None)`.
    pub async fn list(
        &mut self,
        kind: &str,
        owner_prefix: &str,
        cursor: Option<&str>,
    ) -> Result<Option<ResourcePage>, ProviderError> {
        let cursor = cursor.map(str::to_owned);
        let result = self
            .call("list", async |b, s| {
                // The same text for each version that has `list` (0.2 and later).
                macro_rules! page {
                    ($b:expr) => {
                        $b.fabrik_provider_provider()
                            .call_list(s, kind, owner_prefix, cursor.as_deref())
                            .await
                            .map(|r| {
                                r.map_err(ProviderError::from)
                                    .and_then(ResourcePage::try_from)
                                    .map(Some)
                            })
                    };
                }
                match b {
                    Bindings::V0_1(_) => Ok(Ok(None)),
                    Bindings::V0_2(b) => page!(b),
                    Bindings::V0_3(b) => page!(b),
                    Bindings::V0_4(b) => page!(b),
                }
            })
            .await
            .and_then(|r| r);
        self.returned(result)
    }
}

/// Longest excerpt of a crashed guest's stderr quoted in an error.
const LAST_WORDS_MAX: usize = 400;

/// What a crashed guest last said on stderr (already redacted), as one line: a Rust panic
/// with its message (the location line alone says nothing), else the last line, which is
/// the exception of a Python traceback.
fn last_words(tail: &[String]) -> Option<String> {
    let words = match tail.iter().rposition(|line| line.contains("panicked at")) {
        Some(start) => tail[start..]
            .iter()
            .map(|line| line.trim())
            .filter(|line| !line.starts_with("note: run with `RUST_BACKTRACE"))
            .collect::<Vec<_>>()
            .join(" "),
        None => tail.last()?.trim().to_owned(),
    };
    if words.is_empty() {
        return None;
    }
    Some(if words.len() > LAST_WORDS_MAX {
        let mut end = LAST_WORDS_MAX;
        while !words.is_char_boundary(end) {
            end -= 1;
        }
        format!("{}…", &words[..end])
    } else {
        words
    })
}

#[cfg(test)]
mod tests {
    use super::last_words;

    fn lines(text: &str) -> Vec<String> {
        text.lines().map(str::to_owned).collect()
    }

    #[test]
    fn a_rust_panic_keeps_its_message() {
        let tail = lines(
            "starting\nthread '<unnamed>' panicked at runtime/src/lib.rs:1293:29:\nthe zone id is empty\nnote: run with `RUST_BACKTRACE=1` environment variable to display a backtrace",
        );
        assert_eq!(
            last_words(&tail).as_deref(),
            Some("thread '<unnamed>' panicked at runtime/src/lib.rs:1293:29: the zone id is empty")
        );
    }

    #[test]
    fn a_python_traceback_ends_with_its_exception() {
        let tail = lines(
            "Traceback (most recent call last):\n  File \"app.py\", line 3, in create\nValueError: no zone named example.org",
        );
        assert_eq!(
            last_words(&tail).as_deref(),
            Some("ValueError: no zone named example.org")
        );
    }

    #[test]
    fn long_or_empty_output() {
        assert_eq!(last_words(&[]), None);
        let long = vec!["é".repeat(500)];
        let words = last_words(&long).expect("words");
        assert!(words.ends_with('…') && words.len() <= super::LAST_WORDS_MAX + 3);
    }
}
