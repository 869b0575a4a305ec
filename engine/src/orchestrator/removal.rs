//! Deleting a resource and knowing it is gone. Some APIs delete after they answer
//! (Coolify queues a `DeleteResourceJob` and keeps serving the resource until the job
//! ran, coollabsio/coolify app/Http/Controllers/Api/ApplicationsController.php
//! `delete_by_uuid`): a resource is only recorded as deleted once a read no longer finds
//! it, so the state never forgets something that still exists.

use std::time::{Duration, Instant};

use crate::plugins::instance::ProviderInstance;
use crate::plugins::types::ProviderError;

/// How long a queued deletion may take before it counts as not done.
pub const DELETION_TIMEOUT: Duration = Duration::from_secs(120);

/// Deletes `id` (a missing resource is already deleted), then reads it until it is gone
/// or `timeout` passes.
pub async fn delete_and_confirm(
    instance: &mut ProviderInstance,
    kind: &str,
    id: &str,
    owner: &str,
    purge: bool,
    timeout: Duration,
) -> Result<(), ProviderError> {
    match instance.delete(kind, id, owner, purge).await {
        Ok(()) | Err(ProviderError::NotFound(_)) => {}
        Err(other) => return Err(other),
    }
    let started = Instant::now();
    let mut delay = Duration::from_millis(50);
    loop {
        match instance.read(kind, id).await {
            Ok(None) | Err(ProviderError::NotFound(_)) => return Ok(()),
            Ok(Some(_)) if started.elapsed() >= timeout => {
                return Err(ProviderError::Permanent(format!(
                    "the deletion of {kind} {id} was accepted but it still exists after {} s",
                    timeout.as_secs()
                )));
            }
            Ok(Some(_)) => {}
            // A read that fails transiently is tried again within the same bound.
            Err(ProviderError::Transient { .. }) if started.elapsed() < timeout => {}
            Err(other) => return Err(other),
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(2));
    }
}
