//! The deployment lifecycle: the state machine, planning, applying (provision, deploy,
//! verify), rollback, and what the user is told along the way.

pub mod apply;
pub mod desired;
pub mod drift;
pub mod hooks;
pub mod notify;
pub mod owner;
pub mod plan;
pub mod removal;
pub mod report;
pub mod snapshot;
pub mod state;
pub mod verify;
