//! `fabrik unlock NAME`: clears the lock record left by a process that died.

use fabrik_engine::lock;
use fabrik_engine::workspace::current_root;

use super::ExitStatus;

pub fn run(name: &str) -> anyhow::Result<ExitStatus> {
    let dir = current_root()?;
    match lock::unlock(&lock::lock_dir(&dir), name) {
        Ok(Some(holder)) => {
            eprintln!("unlocked `{name}` (was held by {holder}, which is no longer running)")
        }
        Ok(None) => eprintln!("`{name}` was not locked"),
        Err(error) => {
            eprintln!("error: {error}");
            return Ok(ExitStatus::Failure);
        }
    }
    Ok(ExitStatus::Success)
}
