//! The deployment lifecycle: planning, applying (provision, deploy, verify), recovery,
//! rollback, destroy, and the typed events and outcomes that tell what happened.

pub mod apply;
pub mod context;
mod deploy;
pub mod desired;
pub mod destroy;
pub mod doctor;
pub mod drift;
mod ensure;
pub mod events;
pub mod failure;
pub mod fingerprint_key;
pub mod gc;
mod hidden;
pub mod hooks;
pub mod kit;
pub mod notify;
pub mod outcome;
pub mod owner;
pub mod plan;
pub mod promote;
mod prune;
mod recover;
mod refresh;
pub mod removal;
pub mod rollback;
mod run;
pub mod snapshot;
pub mod verify;

pub use hidden::Hidden;
