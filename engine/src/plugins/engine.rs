//! The wasmtime engine shared by every provider in a process, and the epoch ticker that
//! lets the host interrupt a guest that runs past its deadline.

use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::thread::JoinHandle;
use std::time::Duration;

use wasmtime::{Config, Engine, Strategy};

/// How often the epoch advances: the granularity of call deadlines.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

/// Environment variable that selects the compiler (`winch` or `cranelift`).
pub const COMPILER_ENV: &str = "FABRIK_COMPILER";

/// The code generator used for providers.
///
/// Winch is the default: providers are glue around HTTP calls, so the speed of their
/// code does not matter (microseconds per call against milliseconds of network), while
/// the first load of a provider is about 4x faster than with Cranelift (BENCHMARKS.md).
/// The sandbox (epoch deadlines, memory cap) is tested with both.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Compiler {
    /// Baseline compiler: fast to compile, slower code.
    #[default]
    Winch,
    /// Optimizing compiler: slower to compile, faster code.
    Cranelift,
}

impl Compiler {
    /// The compiler named by `FABRIK_COMPILER`, else the default.
    pub fn from_env() -> Self {
        match std::env::var(COMPILER_ENV).as_deref() {
            Ok("cranelift") => Compiler::Cranelift,
            Ok("winch") => Compiler::Winch,
            _ => Compiler::default(),
        }
    }
}

/// An engine and its ticker thread, stopped on drop.
pub struct PluginEngine {
    engine: Engine,
    /// Dropping it wakes the ticker at once, so exiting never waits for a tick.
    stop: Option<Sender<()>>,
    ticker: Option<JoinHandle<()>>,
}

impl PluginEngine {
    pub fn new(compiler: Compiler) -> wasmtime::Result<Self> {
        let mut config = Config::new();
        config
            .wasm_component_model(true)
            .epoch_interruption(true)
            .parallel_compilation(true)
            .strategy(match compiler {
                Compiler::Cranelift => Strategy::Cranelift,
                Compiler::Winch => Strategy::Winch,
            });
        let engine = Engine::new(&config)?;
        let (stop, stopped) = mpsc::channel::<()>();
        let ticker = {
            let engine = engine.clone();
            std::thread::Builder::new()
                .name("fabrik-epoch".to_owned())
                .spawn(move || {
                    while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(EPOCH_TICK) {
                        engine.increment_epoch();
                    }
                })
                .map_err(wasmtime::Error::from)?
        };
        Ok(Self {
            engine,
            stop: Some(stop),
            ticker: Some(ticker),
        })
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }
}

impl Drop for PluginEngine {
    fn drop(&mut self) {
        self.stop.take();
        if let Some(ticker) = self.ticker.take() {
            let _ = ticker.join();
        }
    }
}
