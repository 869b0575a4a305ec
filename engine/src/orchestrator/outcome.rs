//! How one app's apply ended, as typed facts: the CLI writes the sentences, JSON output
//! ships both the sentences it always had (`reason`, `undone`, `left`, `warnings`) and the
//! structure (`failure`, `rollback`, `warning_details`), webhooks get the sentences.
//!
//! Texts that come from providers and hooks (a failure's message, an undo's error) are
//! redacted by the engine where it knows the values; a caller printing them should still
//! hide what its observer was told to hide.

use serde::Serialize;

use super::events::{ResourceRef, UndoAction, Warning};
use super::failure::RunFailure;
use crate::domain::State;

/// How one app's apply ended.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub app: String,
    pub state: State,
    pub url: String,
    pub changed: bool,
    /// The run, when one was started (not for "no changes").
    pub run_id: Option<String>,
    pub spec_hash: String,
    /// Why the run failed, if it did.
    pub failure: Option<RunFailure>,
    /// What the rollback did, when the run failed.
    pub rollback: Option<RollbackReport>,
    /// Problems that did not change the result.
    pub warnings: Vec<Warning>,
    /// The app's page in Coolify's web UI (its project's page), when the provider gave it.
    pub page: Option<String>,
    /// The run sent (or was about to send) a create or update: the world may have
    /// changed even if nothing is recorded as changed.
    pub attempted: bool,
}

impl Outcome {
    /// A failed run that changed nothing anywhere: no create or update was attempted
    /// (see `Run::attempted`), nothing undone, left or failing to be undone, and no
    /// create answered as someone else's (which may have left something).
    pub fn changed_nothing(&self) -> bool {
        let Some(rollback) = &self.rollback else {
            return false;
        };
        !self.attempted
            && rollback.undone.is_empty()
            && rollback.left.is_empty()
            && rollback.problems.is_empty()
            && self
                .failure
                .as_ref()
                .is_none_or(|f| f.untracked().is_none())
    }
}

/// What happened after a failure.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RollbackReport {
    /// `--no-rollback`: everything was left in place.
    pub disabled: bool,
    pub undone: Vec<Undone>,
    pub left: Vec<Left>,
    /// Undos that failed: the rollback is incomplete.
    pub problems: Vec<RollbackProblem>,
}

/// A resource the rollback put back or deleted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Undone {
    pub action: UndoAction,
    pub resource: ResourceRef,
    /// For a restored app (the Coolify resource): whether the restored version's
    /// deployment finished and it passed its health check, as a deploy is verified.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verified: Option<bool>,
    /// Why the restored version is not healthy, when `verified` is false.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unhealthy: Option<String>,
}

/// A resource the rollback did not touch, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Left {
    pub resource: ResourceRef,
    pub because: LeftBecause,
}

/// Why a resource was left as the failed run made it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum LeftBecause {
    /// `--no-rollback`.
    RollbackDisabled,
    /// The spec's policy for its provider is `never`.
    PolicyNever,
    /// The spec's policy is `manual`; `restorable` when an earlier completed version
    /// exists for `fabrik rollback` to deploy.
    PolicyManual { app: String, restorable: bool },
    /// It existed before this run and its earlier settings are unknown.
    ExistedBefore,
}

/// An undo that failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RollbackProblem {
    pub resource: ResourceRef,
    pub error: String,
}

impl RollbackReport {
    /// A restored app that did not deploy or failed its health check: the rollback put
    /// the old settings back, but nothing healthy is serving.
    pub fn restored_unhealthy(&self) -> Option<&Undone> {
        self.undone.iter().find(|u| u.verified == Some(false))
    }
}

impl std::fmt::Display for Undone {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.action.as_str(), self.resource)?;
        match (self.verified, &self.unhealthy) {
            (Some(true), _) => write!(f, "; the restored version is deployed and healthy"),
            (Some(false), Some(why)) => {
                write!(f, "; the restored version is NOT healthy: {why}")
            }
            (Some(false), None) => write!(f, "; the restored version is NOT healthy"),
            (None, _) => Ok(()),
        }
    }
}

impl std::fmt::Display for Left {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let resource = &self.resource;
        match &self.because {
            LeftBecause::RollbackDisabled => write!(f, "{resource}"),
            LeftBecause::PolicyNever => write!(f, "{resource} (rollback policy: never)"),
            LeftBecause::PolicyManual {
                app,
                restorable: true,
            } => write!(
                f,
                "{resource} (rollback policy: manual); `fabrik rollback {app}` restores the last completed version, or re-apply a working spec"
            ),
            LeftBecause::PolicyManual {
                app,
                restorable: false,
            } => write!(
                f,
                "{resource} (rollback policy: manual); there is no earlier version: `fabrik destroy {app} --yes` removes the app, or re-apply a working spec"
            ),
            LeftBecause::ExistedBefore => write!(
                f,
                "{resource} (it existed before this run and no earlier settings are known; left as is)"
            ),
        }
    }
}

impl std::fmt::Display for RollbackProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.resource, self.error)
    }
}

impl Outcome {
    /// Why the run failed, whole: the failure, and whether the rollback was disabled or
    /// incomplete. What the state records and webhooks are told.
    pub fn reason(&self) -> Option<String> {
        let failure = self.failure.as_ref()?;
        let mut reason = failure.to_string();
        if let Some(rollback) = &self.rollback {
            if rollback.disabled {
                reason.push_str(" (rollback disabled)");
            } else if !rollback.problems.is_empty() {
                let problems: Vec<String> =
                    rollback.problems.iter().map(ToString::to_string).collect();
                reason.push_str(&format!("; rollback incomplete: {}", problems.join("; ")));
            }
        }
        Some(reason)
    }
}

impl Serialize for Outcome {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let strings = |items: &[String]| items.to_vec();
        let (undone, left): (Vec<String>, Vec<String>) = match &self.rollback {
            Some(r) => (
                r.undone.iter().map(ToString::to_string).collect(),
                r.left.iter().map(ToString::to_string).collect(),
            ),
            None => (Vec::new(), Vec::new()),
        };
        let warnings: Vec<String> = self.warnings.iter().map(ToString::to_string).collect();
        let mut map = serializer.serialize_map(None)?;
        let (app, environment) = crate::domain::split_key(&self.app);
        map.serialize_entry("app", app)?;
        map.serialize_entry("environment", &environment)?;
        map.serialize_entry("state", &self.state)?;
        map.serialize_entry("url", &self.url)?;
        map.serialize_entry("page", &self.page)?;
        map.serialize_entry("changed", &self.changed)?;
        map.serialize_entry("run_id", &self.run_id)?;
        map.serialize_entry("spec_hash", &self.spec_hash)?;
        map.serialize_entry("reason", &self.reason())?;
        map.serialize_entry("undone", &strings(&undone))?;
        map.serialize_entry("left", &strings(&left))?;
        map.serialize_entry("warnings", &warnings)?;
        if let Some(failure) = &self.failure {
            map.serialize_entry(
                "failure",
                &serde_json::json!({ "code": failure.code(), "message": failure.to_string() }),
            )?;
        }
        if let Some(rollback) = &self.rollback {
            map.serialize_entry("rollback", rollback)?;
        }
        map.serialize_entry("warning_details", &self.warnings)?;
        map.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failed(rollback: RollbackReport) -> Outcome {
        Outcome {
            attempted: false,
            app: "api".to_owned(),
            state: State::Failed,
            url: "https://api.example.com/health".to_owned(),
            changed: true,
            run_id: Some("r1".to_owned()),
            spec_hash: "h".to_owned(),
            failure: Some(RunFailure::DeploymentFailed("exit 1".to_owned())),
            rollback: Some(rollback),
            warnings: vec![],
            page: None,
        }
    }

    #[test]
    fn the_reason_says_whether_the_rollback_was_disabled_or_incomplete() {
        let record = ResourceRef::new("dns-record", "api.example.com", Some("z/1"));
        let disabled = failed(RollbackReport {
            disabled: true,
            ..RollbackReport::default()
        });
        assert_eq!(
            disabled.reason().as_deref(),
            Some("the deployment failed: exit 1 (rollback disabled)")
        );
        let incomplete = failed(RollbackReport {
            problems: vec![RollbackProblem {
                resource: record.clone(),
                error: "unauthorized".to_owned(),
            }],
            ..RollbackReport::default()
        });
        assert_eq!(
            incomplete.reason().as_deref(),
            Some(
                "the deployment failed: exit 1; rollback incomplete: dns-record api.example.com (z/1): unauthorized"
            )
        );
        let json = serde_json::to_value(&incomplete).expect("serializes");
        assert_eq!(
            json["reason"],
            incomplete.reason().expect("a reason").as_str()
        );
        assert_eq!(json["failure"]["code"], "deployment_failed");
        assert_eq!(json["rollback"]["problems"][0]["resource"]["id"], "z/1");
        let left = Left {
            resource: record,
            because: LeftBecause::PolicyManual {
                app: "api".to_owned(),
                restorable: false,
            },
        };
        assert!(
            left.to_string().contains("`fabrik destroy api --yes`"),
            "{left}"
        );
    }
}
