//! `fabrik rollback NAME [--to RUN]`: deploys again the version of an earlier completed
//! run; the engine chooses which.

use fabrik_engine::domain::RunOrigin;
use fabrik_engine::orchestrator::rollback::{TargetError, rollback_target};
use fabrik_engine::workspace::Workspace;

use super::apply::deploy;
use super::progress::Reporter;
use super::{ExitStatus, RollbackArgs};

pub fn run(args: &RollbackArgs) -> anyhow::Result<ExitStatus> {
    let workspace = Workspace::current(args.run.state.path.as_deref())?;
    let runtime = super::runtime()?;
    let store = runtime.block_on(workspace.open_store())?;
    let deployment = match runtime.block_on(super::status::find(
        &store,
        &workspace,
        &args.name,
        args.env.env.as_deref(),
    ))? {
        Ok(deployment) => deployment,
        Err(status) => return Ok(status),
    };
    let key = deployment.key();
    let name = &key;
    let runs = runtime.block_on(store.runs(deployment.id))?;
    drop((store, runtime));
    let target = match rollback_target(&deployment, runs, args.to.as_deref()) {
        Ok(target) => target,
        Err(error) => {
            let (hint, status) = match &error {
                TargetError::NoSuchRun { .. } => (
                    format!("\n\nhint: `fabrik history {name}` lists them"),
                    ExitStatus::Invalid,
                ),
                TargetError::Ambiguous { .. } => (String::new(), ExitStatus::Invalid),
                TargetError::NothingEarlier { .. } => (
                    format!("\n\nhint: `fabrik history {name}` lists its runs"),
                    ExitStatus::Failure,
                ),
                TargetError::Unreadable { .. } => return Err(error.into()),
                TargetError::NotCompleted { .. } | TargetError::NoSnapshot { .. } => {
                    (String::new(), ExitStatus::Failure)
                }
            };
            errln!("error: {error}{hint}");
            return Ok(status);
        }
    };
    errln!(
        "Rolling `{name}` back to run {} (spec {}, started {})",
        target.run.id,
        super::status::short_hash(&target.run.spec_hash),
        fabrik_engine::domain::timestamp::display(&target.run.started_at)
    );
    let reporter = Reporter::new(args.run.output.output, args.run.progress);
    let origin = RunOrigin::Rollback {
        restores: target.run.id.clone(),
    };
    let deployed = deploy(
        &workspace,
        &[(&target.spec, origin)],
        &args.run,
        1,
        &reporter,
        None,
        None,
    )?;
    if deployed == super::apply::Deployed::Interrupted {
        return Ok(ExitStatus::Interrupted);
    }
    if deployed == super::apply::Deployed::AllComplete {
        errln!(
            "note: `{}` still describes the newer version; the next `fabrik apply` of it deploys that again",
            deployment.spec_path
        );
        Ok(ExitStatus::Success)
    } else {
        Ok(ExitStatus::Failure)
    }
}
