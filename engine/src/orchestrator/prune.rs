//! After a successful run: removal of what Fabrik owns for the app that the spec no
//! longer names (the record of a previous domain, a resource of another kind).

use super::desired::{Wanted, is_wanted};
use super::events::{ResourceChange, ResourceRef, RunEvent, Warning};
use super::removal::{DELETION_TIMEOUT, delete_and_confirm};
use super::run::{Instances, Run};
use crate::domain::ResourceStatus;
use crate::plugins::types::ProviderError;
use crate::store::{ResourceRow, StoreError};

/// Deletes, newest first, what the spec no longer names. A deletion that fails is a
/// warning; the row stays, so the next apply tries again.
pub(crate) async fn remove_unwanted(
    run: &Run<'_, '_>,
    wanted: &[Wanted],
    instances: &mut Instances,
) -> Result<Vec<Warning>, StoreError> {
    let mut warnings = Vec::new();
    let stale: Vec<ResourceRow> = run
        .store()
        .resources(run.deployment)
        .await?
        .into_iter()
        .filter(|r| r.is_live() && !is_wanted(r, wanted))
        .collect();
    for row in stale.into_iter().rev() {
        let id = row.external_id.clone().unwrap_or_default();
        let resource = ResourceRef::new(&row.kind, &row.name, Some(&id));
        let deleted = match instances.for_role(row.provider) {
            Ok(instance) => {
                run.retried(&resource.to_string(), async || {
                    delete_and_confirm(
                        instance,
                        &row.kind,
                        &id,
                        &row.owner,
                        false,
                        DELETION_TIMEOUT,
                    )
                    .await
                })
                .await
            }
            Err(error) => Err(error),
        };
        match deleted {
            Ok(()) | Err(ProviderError::NotFound(_)) => {
                run.write()
                    .await?
                    .record(
                        row.id,
                        Some(&run.run_id),
                        ResourceStatus::Deleted,
                        None,
                        None,
                    )
                    .await?;
                run.event(RunEvent::Resource {
                    change: ResourceChange::DeletedUnwanted,
                    resource,
                });
            }
            Err(e) => {
                let warning = Warning::UnwantedNotDeleted {
                    resource,
                    error: run.hidden.redact(&e.to_string()),
                };
                run.event(RunEvent::Warning {
                    warning: warning.clone(),
                });
                warnings.push(warning);
            }
        }
    }
    Ok(warnings)
}
