//! What an apply would do, step by step, before anything is called.

use serde::Serialize;

use crate::spec::LoadedSpec;
use crate::spec::model::{RollbackMode, Source};

/// What a step does to its resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Create,
    Update,
    NoOp,
    Delete,
    /// Not a resource: a deployment to trigger and wait for, or a check to run.
    Run,
}

impl Action {
    /// The one-character marker in human output, as Terraform prints it.
    pub fn marker(self) -> char {
        match self {
            Action::Create => '+',
            Action::Update => '~',
            Action::NoOp => '=',
            Action::Delete => '-',
            Action::Run => '>',
        }
    }
}

/// One step of a plan.
#[derive(Debug, Clone, Serialize)]
pub struct Step {
    pub action: Action,
    /// Resource kind as providers name them (`dns-record`, `service`, ...), or the step.
    pub kind: String,
    pub name: String,
    pub detail: String,
    /// What happens to this step's resource if a later step fails.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rollback: Option<RollbackMode>,
}

/// The plan for one spec.
#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    pub app: String,
    pub spec: String,
    pub steps: Vec<Step>,
}

impl Plan {
    /// The plan for an app that does not exist yet.
    pub fn fresh(loaded: &LoadedSpec) -> Self {
        let spec = &loaded.spec;
        let resource = loaded.rendered.coolify_resource;
        let source = match &spec.source {
            Some(Source::Image { image }) => format!("image {image}"),
            Some(Source::Git { repository, branch }) => format!("{repository} ({branch})"),
            None => "no source".to_owned(),
        };
        let variables = spec.env.len() + spec.secrets.len();
        let expect = spec
            .healthcheck
            .expect_status
            .map_or_else(|| "a 2xx".to_owned(), |s| s.to_string());
        let steps = vec![
            Step {
                action: Action::Create,
                kind: "dns-record".to_owned(),
                name: spec.domain.clone(),
                detail: format!("A record to the IP of Coolify server `{}`", spec.server),
                rollback: Some(spec.rollback.dns),
            },
            Step {
                action: Action::Create,
                kind: resource.to_string(),
                name: spec.name.clone(),
                detail: format!(
                    "{} template, {source}, port {}, {variables} variable{} ({} secret), in Coolify project `{}` / `{}` on server `{}`",
                    spec.template,
                    spec.port,
                    if variables == 1 { "" } else { "s" },
                    spec.secrets.len(),
                    spec.coolify.project,
                    spec.coolify.environment,
                    spec.server
                ),
                rollback: Some(spec.rollback.coolify),
            },
            Step {
                action: Action::Run,
                kind: "deployment".to_owned(),
                name: spec.name.clone(),
                detail: "deploy and wait for it to finish".to_owned(),
                rollback: None,
            },
            Step {
                action: Action::Run,
                kind: "verification".to_owned(),
                name: spec.health_url(),
                detail: format!(
                    "GET until {expect}, every {} s, for up to {} s, TLS verified",
                    spec.healthcheck.interval, spec.healthcheck.timeout
                ),
                rollback: None,
            },
        ];
        Self {
            app: spec.name.clone(),
            spec: loaded.path.display().to_string(),
            steps,
        }
    }

    /// Whether applying the plan would change anything.
    pub fn has_changes(&self) -> bool {
        self.steps.iter().any(|s| s.action != Action::NoOp)
    }
}
