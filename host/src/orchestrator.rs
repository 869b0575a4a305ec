//! The deployment lifecycle: plan, apply, verify, rollback. For now only planning exists;
//! applying needs the provider plugins.

pub mod apply;
pub mod plan;
pub mod report;
pub mod state;
pub mod verify;
