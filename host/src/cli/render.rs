//! The sentences the command line writes for the engine's typed events and outcomes.

use fabrik_engine::orchestrator::events::{ResourceChange, RunEvent};
use fabrik_engine::orchestrator::outcome::Outcome;

/// One line for `event`.
pub fn event(event: &RunEvent) -> String {
    match event {
        RunEvent::StateChanged { state } => state.to_string(),
        RunEvent::WaitingForLock { holder, timeout_s } => {
            format!("waiting for the lock held by {holder} (up to {timeout_s} s)")
        }
        RunEvent::LockTakenOver { previous } => {
            format!("took over a stale lock left by {previous}")
        }
        RunEvent::SecretGenerated { name, file } => {
            format!("generated secret {name} and saved it to {file}")
        }
        RunEvent::InterruptedRunClosed {
            run,
            left_in,
            reason,
        } => format!("run {run} was {left_in}: {reason}"),
        RunEvent::Retrying {
            what,
            error,
            wait,
            attempt,
            attempts,
        } => format!(
            "{what}: {error}; retrying in {:.1} s (attempt {attempt} of {attempts})",
            wait.as_secs_f32()
        ),
        RunEvent::Resource { change, resource } => match change {
            ResourceChange::Unchanged => format!("unchanged {resource}"),
            ResourceChange::Created => format!("created {resource}"),
            ResourceChange::Updated => format!("updated {resource}"),
            ResourceChange::Adopted => format!("adopted {resource}"),
            ResourceChange::FoundUntracked => {
                format!("found {resource} by its owner tag, not in the state: updating it")
            }
            ResourceChange::CreatedUnfinished => {
                format!("created {resource}, but the create did not finish")
            }
            ResourceChange::DeletedUnwanted => format!("deleted {resource}: no longer in the spec"),
            ResourceChange::RecoveredFromInterrupted => {
                format!("adopted {resource}, left by an interrupted run")
            }
            ResourceChange::NeverCreated => {
                format!("{resource} was never created by the interrupted run")
            }
        },
        RunEvent::Drift {
            difference,
            repairing: true,
        } => format!("repairing drift: {difference}"),
        RunEvent::Drift {
            difference,
            repairing: false,
        } => format!("drift: {difference}"),
        RunEvent::Updating { difference } => format!("updating {difference}"),
        RunEvent::Planned {
            add,
            change,
            destroy,
            steps,
        } => {
            let mut text =
                format!("about to apply: {add} to add, {change} to change, {destroy} to destroy");
            if !steps.is_empty() {
                text.push_str(&format!(" ({})", steps.join("; ")));
            }
            text
        }
        RunEvent::NoChanges => {
            "no changes: the spec is unchanged and its resources are live".to_owned()
        }
        RunEvent::Restoring {
            restores_run,
            spec_hash,
        } => format!("deploying again the version of run {restores_run} ({spec_hash})"),
        RunEvent::Promoting { from_run, source } => {
            format!("promoting {source}, as run {from_run} verified it")
        }
        RunEvent::Progress { message } => message.clone(),
        RunEvent::Probing {
            request,
            answer,
            attempt,
            elapsed_s,
            timeout_s,
        } => format!("{request} → {answer}, attempt {attempt}, {elapsed_s} s of {timeout_s}"),
        RunEvent::NothingToDeploy { resource } => {
            format!("{resource} is unchanged: nothing to deploy")
        }
        RunEvent::Failed { reason } => reason.clone(),
        RunEvent::HookStarted { hook, command } => {
            format!("running {}: {command}", hook.as_str())
        }
        RunEvent::HookOutput { hook, line } => format!("{}: {line}", hook.as_str()),
        RunEvent::ResolveOverride { host, port, addr } => {
            format!("using resolve override {host}:{port} -> {addr}")
        }
        RunEvent::ExtraCa { path } => format!("trusting the extra CA in {path}"),
        RunEvent::Verified {
            url,
            status,
            attempts,
        } => format!("{url} answered {status} after {attempts} attempt(s)"),
        RunEvent::Notified {
            target,
            event,
            attempts,
        } => format!("told {target} ({}, attempt {attempts})", event.as_str()),
        RunEvent::Undone { action, resource } => format!("{} {resource}", action.as_str()),
        RunEvent::Warning { warning } => warning.to_string(),
        RunEvent::Destroyed {
            resource,
            data_kept: true,
        } => format!(
            "deleted {resource}; its data volumes were kept on the server (`--purge` deletes them with the resource)"
        ),
        RunEvent::Destroyed {
            resource,
            data_kept: false,
        } => format!("deleted {resource}"),
        RunEvent::NotDestroyed { resource, error } => format!("{resource}: {error}"),
        RunEvent::AlreadyGone { resource } => {
            format!("{resource} was already gone: nothing to delete")
        }
        RunEvent::Kept { resource, reason } => format!("kept {resource}: {reason}"),
    }
}

/// The human summary of one app's outcome.
/// The final word on one app: on success its URL; on failure one line for what went
/// wrong, a line per resource undone or left (or that nothing was changed), and a
/// `next:` line with the command to run. `spec` is the spec file, for that command.
/// What a failed run's summary tells the user to run again once the problem is fixed.
#[derive(Debug, Clone, Copy)]
pub enum Again<'a> {
    /// `fabrik apply SPEC` (with its `--env`).
    Apply(&'a std::path::Path),
    /// A command of its own (`fabrik promote …`: an apply would deploy the branch's head,
    /// not the promoted version).
    Command(&'a str),
}

pub fn summary(outcome: &Outcome, again: Option<Again<'_>>) -> String {
    use fabrik_engine::domain::State;
    use fabrik_engine::orchestrator::outcome::LeftBecause;
    let mut text = format!("{}: {}", outcome.app, outcome.state);
    if outcome.state == State::Complete {
        text.push_str(&format!(" {}", outcome.url));
        if !outcome.changed {
            text.push_str(" (no changes)");
        }
        if let Some(page) = &outcome.page {
            text.push_str(&format!("\n  in Coolify: {page}"));
        }
    } else {
        text.push_str(&format!(
            "\n  what went wrong: {}",
            outcome.reason().as_deref().unwrap_or("unknown")
        ));
        let apply = match again {
            None => "`fabrik apply` again".to_owned(),
            Some(Again::Apply(spec)) => {
                let environment = fabrik_engine::domain::split_key(&outcome.app).1;
                format!(
                    "`fabrik apply {}{}`",
                    spec.display(),
                    environment.map_or_else(String::new, |e| format!(" --env {e}"))
                )
            }
            Some(Again::Command(command)) => format!("`{command}`"),
        };
        let mut next = format!("fix what went wrong, then {apply}");
        if let Some(rollback) = &outcome.rollback {
            for undone in &rollback.undone {
                text.push_str(&format!("\n  undone: {undone}"));
            }
            for left in &rollback.left {
                text.push_str(&format!("\n  left in place: {left}"));
                if let LeftBecause::PolicyManual { app, restorable } = &left.because {
                    next = if *restorable {
                        format!(
                            "`fabrik rollback {app}` restores the last completed version; or fix what went wrong, then {apply}"
                        )
                    } else {
                        format!(
                            "`fabrik destroy {app} --yes` removes what was left; or fix what went wrong, then {apply}"
                        )
                    };
                }
            }
            if let Some(unhealthy) = rollback.restored_unhealthy() {
                // Loud: the old settings are back, yet nothing healthy serves the app.
                text.push_str(&format!(
                    "\n  the version the rollback restored is not healthy either ({}): the app is down",
                    unhealthy.resource
                ));
                next = format!(
                    "look at the app's logs in Coolify; `fabrik history {app}` lists earlier versions that `fabrik rollback {app} --to RUN` deploys again; or fix what went wrong, then {apply}",
                    app = outcome.app
                );
            }
            for problem in &rollback.problems {
                text.push_str(&format!(
                    "\n  not undone: {}: {}",
                    problem.resource, problem.error
                ));
                next = format!(
                    "fix what went wrong, then {apply}: it finishes what the rollback could not"
                );
            }
            let untracked = outcome.failure.as_ref().and_then(|f| f.untracked());
            if let Some(resource) = untracked {
                // The provider answered a create: something may exist that no state
                // lists, and only a person can tell whose it is.
                text.push_str(&format!(
                    "\n  not tracked: {resource} may have been created by the provider; Fabrik does not own it and left it alone: check it in the provider's console"
                ));
            } else if outcome.changed_nothing() {
                text.push_str("\n  nothing was changed");
            } else if rollback.undone.is_empty()
                && rollback.left.is_empty()
                && rollback.problems.is_empty()
            {
                // An update or create was sent and failed: part of it may have landed.
                text.push_str(
                    "\n  may have changed: a change was sent and failed part-way; the next apply sends it again",
                );
            }
        }
        text.push_str(&format!("\n  next: {next}"));
    }
    for warning in &outcome.warnings {
        text.push_str(&format!("\n  warning: {warning}"));
    }
    text
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use fabrik_engine::domain::State;
    use fabrik_engine::orchestrator::events::{EventKind, ResourceRef};

    use super::*;

    #[test]
    fn events_read_as_sentences_and_keep_their_kind() {
        let record = ResourceRef::new("dns-record", "api.example.com", Some("z/1"));
        let cases = [
            (
                RunEvent::StateChanged {
                    state: State::Deploying,
                },
                EventKind::State,
                "DEPLOYING",
            ),
            (
                RunEvent::Resource {
                    change: ResourceChange::Created,
                    resource: record.clone(),
                },
                EventKind::Resource,
                "created dns-record api.example.com (z/1)",
            ),
            (
                RunEvent::Resource {
                    change: ResourceChange::NeverCreated,
                    resource: ResourceRef::new("service", "api", None),
                },
                EventKind::Recover,
                "service api was never created by the interrupted run",
            ),
            (
                RunEvent::Retrying {
                    what: "service api".to_owned(),
                    error: "502".to_owned(),
                    wait: Duration::from_millis(500),
                    attempt: 2,
                    attempts: 3,
                },
                EventKind::Retry,
                "service api: 502; retrying in 0.5 s (attempt 2 of 3)",
            ),
            (
                RunEvent::Destroyed {
                    resource: ResourceRef::new("service", "api", Some("u1")),
                    data_kept: true,
                },
                EventKind::Resource,
                "deleted service api (u1); its data volumes were kept on the server (`--purge` deletes them with the resource)",
            ),
        ];
        for (event, kind, sentence) in cases {
            assert_eq!(event.kind(), kind, "{event:?}");
            assert_eq!(super::event(&event), sentence);
        }
    }
}
