//! Fabrik: deploy web apps end to end from a YAML spec. See DESIGN.md for the architecture;
//! the `fabrik` binary is a thin wrapper around [`cli::main`].

pub mod cli;
pub mod lock;
pub mod orchestrator;
pub mod plugins;
pub mod project;
pub mod secrets;
pub mod spec;
pub mod store;
