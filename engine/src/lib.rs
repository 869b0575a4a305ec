//! Fabrik's deploy engine: spec loading and validation, the state store, the provider
//! plugin host, secrets, locks and the apply state machine.
//!
//! The engine knows nothing of command lines, terminals or output formats: it tells what
//! happens through [`orchestrator::events::Observer`] and returns typed outcomes; the
//! `fabrik` binary (`host/`) renders them. See `ARCHITECTURE.md` at the repository root.

pub mod bounded;
pub mod domain;
pub mod lock;
pub mod machine;
pub mod orchestrator;
pub mod own_files;
pub mod plugins;
pub mod project;
pub mod retry;
pub mod secrets;
pub mod sources;
pub mod spec;
pub mod store;
pub mod workspace;
