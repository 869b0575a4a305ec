//! The wasmtime engine shared by every provider in a process, and the epoch ticker that
//! lets the host interrupt a guest that runs past its deadline.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use wasmtime::{Config, Engine, Strategy};

/// How often the epoch advances: the granularity of call deadlines.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

/// Environment variable that selects the compiler (`cranelift` or `winch`).
pub const COMPILER_ENV: &str = "FABRIK_COMPILER";

/// The code generator used for providers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Compiler {
    /// Optimizing; compiled artifacts are cached, so its cost is paid once per provider.
    #[default]
    Cranelift,
    /// Baseline: about 3x faster to compile, slower code (providers are I/O bound).
    Winch,
}

impl Compiler {
    /// The compiler named by `FABRIK_COMPILER`, else the default.
    pub fn from_env() -> Self {
        match std::env::var(COMPILER_ENV).as_deref() {
            Ok("winch") => Compiler::Winch,
            _ => Compiler::default(),
        }
    }
}

/// An engine and its ticker thread, stopped on drop.
pub struct PluginEngine {
    engine: Engine,
    stop: Arc<AtomicBool>,
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
        let stop = Arc::new(AtomicBool::new(false));
        let ticker = {
            let engine = engine.clone();
            let stop = stop.clone();
            std::thread::Builder::new()
                .name("fabrik-epoch".to_owned())
                .spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        std::thread::sleep(EPOCH_TICK);
                        engine.increment_epoch();
                    }
                })
                .map_err(wasmtime::Error::from)?
        };
        Ok(Self {
            engine,
            stop,
            ticker: Some(ticker),
        })
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }
}

impl Drop for PluginEngine {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(ticker) = self.ticker.take() {
            let _ = ticker.join();
        }
    }
}
