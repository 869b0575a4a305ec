//! What a killed run left: its unfinished run is closed, and the intents it left pending
//! for resources the spec no longer wants are resolved (pending intents for wanted
//! resources are resolved by [`Run::ensure`] in the same way).

use super::desired::{Wanted, is_wanted};
use super::events::{ResourceChange, ResourceRef, RunEvent};
use super::failure::{RunFailure, Stop};
use super::run::{Instances, Run};
use crate::domain::ResourceStatus;
use crate::store::ResourceRow;

/// Looks each pending intent up by name and owner tag: adopted if found (so that this
/// run removes it), forgotten if not.
pub(crate) async fn recover(
    run: &Run<'_, '_>,
    wanted: &[Wanted],
    instances: &mut Instances,
) -> Result<(), Stop> {
    let pending: Vec<ResourceRow> = run
        .store()
        .resources(run.deployment)
        .await?
        .into_iter()
        .filter(|r| r.status == ResourceStatus::Pending && !is_wanted(r, wanted))
        .collect();
    for row in pending {
        let instance = instances
            .for_role(row.provider)
            .map_err(|error| RunFailure::Recovery {
                resource: ResourceRef::new(&row.kind, &row.name, None),
                error,
            })?;
        let what = format!("{} {}", row.kind, row.name);
        let found = run
            .retried(&what, async || {
                instance
                    .lookup(&row.kind, &row.name, &row.owner, row.desired.as_ref())
                    .await
            })
            .await
            .map_err(|error| RunFailure::Recovery {
                resource: ResourceRef::new(&row.kind, &row.name, None),
                error,
            })?;
        match found {
            Some(resource) if resource.owner.as_deref() == Some(row.owner.as_str()) => {
                run.write()
                    .await?
                    .record(
                        row.id,
                        Some(&run.run_id),
                        ResourceStatus::Adopted,
                        Some(&resource.id),
                        Some(&run.stored(&resource.outputs)),
                    )
                    .await?;
                run.event(RunEvent::Resource {
                    change: ResourceChange::RecoveredFromInterrupted,
                    resource: ResourceRef::new(&row.kind, &row.name, Some(&resource.id)),
                });
            }
            _ => {
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
                    change: ResourceChange::NeverCreated,
                    resource: ResourceRef::new(&row.kind, &row.name, None),
                });
            }
        }
    }
    Ok(())
}
