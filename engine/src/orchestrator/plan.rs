//! What an apply would do, step by step, before anything is called: a fresh plan for an
//! app the state does not know, else a diff of the spec against what the state says was
//! deployed. Pure: the caller reads the state and the secrets.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;

use super::desired;
use crate::domain::{ResourceStatus, Role};
use crate::spec::LoadedSpec;
use crate::spec::model::{RollbackMode, Source};
use crate::store::{Deployment, ResourceRow};

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
    /// For an update: each difference from what was deployed.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub changes: Vec<Change>,
}

/// One difference from what was deployed: a field's value before and after (JSON values,
/// `null` when absent or unknown offline), and the line a person reads.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Change {
    /// The field's path in the resource's desired state (`env.LOG_LEVEL`, `compose`), or
    /// `secrets.NAME` (whose values are never shown: `before`/`after` stay `null`).
    pub field: String,
    pub before: Value,
    pub after: Value,
    /// `env.LOG_LEVEL: "info" → "debug"`, `compose: 1 line removed, 2 added (27 → 28 lines)`.
    pub summary: String,
}

impl Change {
    fn note(field: impl Into<String>, summary: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            before: Value::Null,
            after: Value::Null,
            summary: summary.into(),
        }
    }
}

impl std::fmt::Display for Change {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.summary)
    }
}

/// How many steps of each kind a set of plans has: `2 to add, 1 to change, 0 to destroy`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Tally {
    pub add: usize,
    pub change: usize,
    pub destroy: usize,
}

impl Tally {
    pub fn of<'a>(plans: impl IntoIterator<Item = &'a Plan>) -> Self {
        let mut tally = Self::default();
        for step in plans.into_iter().flat_map(|p| &p.steps) {
            match step.action {
                Action::Create => tally.add += 1,
                Action::Update => tally.change += 1,
                Action::Delete => tally.destroy += 1,
                Action::NoOp | Action::Run => {}
            }
        }
        tally
    }
}

/// A deployment key's app name, for JSON (its environment is a field of its own).
fn app_name<S: serde::Serializer>(key: &str, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(crate::domain::split_key(key).0)
}

impl std::fmt::Display for Tally {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} to add, {} to change, {} to destroy",
            self.add, self.change, self.destroy
        )
    }
}

/// The plan for one spec.
#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    /// The deployment key (`api`, `api@staging`); JSON gives `app` and `environment`.
    #[serde(serialize_with = "app_name")]
    pub app: String,
    /// The environment, from the key (for JSON).
    #[serde(skip_deserializing)]
    pub environment: Option<String>,
    pub spec: String,
    pub steps: Vec<Step>,
}

impl Plan {
    /// The plan for an app that does not exist yet.
    pub fn fresh(loaded: &LoadedSpec) -> Self {
        let fresh = FreshSteps::of(loaded);
        let mut steps = vec![fresh.dns, fresh.coolify, fresh.deploy, fresh.verify];
        steps.extend(fresh.monitor);
        Self {
            app: loaded.spec.key(),
            environment: loaded.spec.environment.clone(),
            spec: loaded.path.display().to_string(),
            steps,
        }
    }

    /// The plan for `loaded` given what the state says was deployed.
    pub fn against(loaded: &LoadedSpec, known: &Known) -> Self {
        let Some(deployment) = known
            .deployment
            .as_ref()
            .filter(|_| known.rows.iter().any(ResourceRow::is_live))
        else {
            let mut plan = Self::fresh(loaded);
            if let Some(coolify) = plan.steps.get_mut(1) {
                coolify.changes =
                    secret_changes(&loaded.spec.secrets, &loaded.spec.required_secrets, known);
            }
            return plan;
        };
        let FreshSteps {
            dns: dns_step,
            coolify: coolify_step,
            deploy: deploy_step,
            verify: verify_step,
            monitor: monitor_step,
        } = FreshSteps::of(loaded);
        let live = |role: Role, kind: &str, name: &str| {
            known
                .rows
                .iter()
                .find(|r| r.is(role, kind, name) && r.is_live())
        };
        let spec = &loaded.spec;
        let mut steps = Vec::new();
        let mut changed = false;

        // The DNS record: its address is the server's IP, which only a provider call can
        // tell; the same server is taken to keep its address.
        let coolify_kind = loaded.rendered.coolify_resource.to_string();
        let previous_app = live(Role::Coolify, &coolify_kind, &spec.name);
        let previous_server = previous_app
            .and_then(|r| r.desired.as_ref())
            .and_then(|d| d["server"].as_str())
            .map(str::to_owned);
        match live(Role::Dns, desired::DNS_KIND, &spec.domain) {
            None => {
                changed = true;
                steps.push(dns_step);
            }
            Some(row) if previous_server.as_deref() == Some(spec.server.as_str()) => {
                steps.push(unchanged(dns_step, row));
            }
            Some(row) => {
                changed = true;
                let before = row
                    .desired
                    .as_ref()
                    .map_or(Value::Null, |d| d["content"].clone());
                steps.push(Step {
                    action: Action::Update,
                    changes: vec![Change {
                        field: "content".to_owned(),
                        summary: format!(
                            "content: {} → the IP of Coolify server `{}`",
                            if before.is_null() {
                                "?".to_owned()
                            } else {
                                before.to_string()
                            },
                            spec.server
                        ),
                        before,
                        // Only the provider knows the new server's IP.
                        after: Value::Null,
                    }],
                    ..dns_step
                });
            }
        }

        // The Coolify resource: the desired state with secret markers, as the store keeps it.
        match (
            previous_app,
            desired::coolify_resource(loaded, &desired::markers(&spec.secrets)),
        ) {
            (Some(row), Ok(wanted)) => {
                // After a run that did not complete, what is live is what the last
                // completed run deployed (rollback restored it).
                let baseline = if deployment.is_complete() {
                    row.desired.as_ref()
                } else {
                    row.previous_desired.as_ref().or(row.desired.as_ref())
                };
                let mut changes: Vec<Change> =
                    source_change(known.deployed_source.as_ref(), spec.source.as_ref())
                        .into_iter()
                        .collect();
                changes.extend(diff("", baseline.unwrap_or(&Value::Null), &wanted.desired));
                changes.extend(secret_changes(&spec.secrets, &spec.required_secrets, known));
                if changes.is_empty() && !deployment.is_complete() {
                    changes.push(Change::note(
                        "deployment",
                        format!("deployed again: the last run ended {}", deployment.state),
                    ));
                }
                if changes.is_empty() {
                    steps.push(unchanged(coolify_step, row));
                } else {
                    changed = true;
                    steps.push(Step {
                        action: Action::Update,
                        changes,
                        ..coolify_step
                    });
                }
            }
            _ => {
                changed = true;
                steps.push(coolify_step);
            }
        }

        // What the state holds that the spec no longer names, or that a killed run left.
        // A monitor alone deploys nothing: it goes once the app is verified.
        let mut monitor_leftover = false;
        let wanted = desired::wanted(loaded);
        for row in known
            .rows
            .iter()
            .filter(|r| !desired::is_wanted(r, &wanted))
        {
            let step = match row.status {
                ResourceStatus::Pending => Step {
                    action: Action::Run,
                    kind: row.kind.clone(),
                    name: row.name.clone(),
                    detail: "left pending by an interrupted run: looked up by owner tag, then adopted and removed, or forgotten".to_owned(),
                    rollback: None,
                    changes: vec![],
                },
                _ if row.is_live() => Step {
                    action: Action::Delete,
                    kind: row.kind.clone(),
                    name: row.name.clone(),
                    detail: format!(
                        "no longer in the spec; deleted after the new version passes its health check ({})",
                        row.external_id.clone().unwrap_or_default()
                    ),
                    rollback: None,
                    changes: vec![],
                },
                _ => continue,
            };
            if row.provider == Role::Monitor {
                monitor_leftover = true;
            } else {
                changed = true;
            }
            steps.push(step);
        }
        // The monitor, made or changed once the app is verified (after the other steps).
        let monitor_wanted = desired::monitor(loaded, true);
        let monitor_step = match (monitor_step, monitor_wanted) {
            (Some(step), Some(wanted)) => match live(Role::Monitor, &wanted.kind, &wanted.name) {
                None => Some(step),
                Some(row) => {
                    let changes = diff(
                        "",
                        row.desired.as_ref().unwrap_or(&Value::Null),
                        &wanted.desired,
                    );
                    if changes.is_empty() {
                        Some(unchanged(step, row))
                    } else {
                        Some(Step {
                            action: Action::Update,
                            changes,
                            ..step
                        })
                    }
                }
            },
            _ => None,
        };
        let monitor_changes = monitor_leftover
            || monitor_step
                .as_ref()
                .is_some_and(|s| s.action != Action::NoOp);
        if changed {
            steps.push(deploy_step);
            steps.push(verify_step);
        } else if monitor_changes {
            // Only the monitor changes: nothing is deployed, the app is verified first.
            steps.push(Step {
                action: Action::NoOp,
                detail: "nothing to deploy".to_owned(),
                ..deploy_step
            });
            steps.push(verify_step);
        } else {
            steps.push(Step {
                action: Action::NoOp,
                detail: "nothing to deploy".to_owned(),
                ..deploy_step
            });
            steps.push(Step {
                action: Action::NoOp,
                detail: "apply reads the live resources to confirm".to_owned(),
                ..verify_step
            });
        }
        steps.extend(monitor_step);
        Self {
            app: spec.key(),
            environment: spec.environment.clone(),
            spec: loaded.path.display().to_string(),
            steps,
        }
    }

    /// Whether applying the plan would change anything.
    pub fn has_changes(&self) -> bool {
        self.steps.iter().any(|s| s.action != Action::NoOp)
    }
}

/// What the state knows of an app, and what can be said of its secrets offline.
#[derive(Debug, Clone, Default)]
pub struct Known {
    pub deployment: Option<Deployment>,
    pub rows: Vec<ResourceRow>,
    /// Fingerprints of the secrets the deployed version used (from its run's snapshot).
    pub deployed_fingerprints: Option<BTreeMap<String, String>>,
    /// Fingerprints of the secret values now: `None` for one that apply would generate.
    pub current_fingerprints: BTreeMap<String, Option<String>>,
    /// The source of the deployed version (from its run's snapshot), with the commit or
    /// digest it was resolved to.
    pub deployed_source: Option<Source>,
}

/// The plan's line for a moved source: `source: main 3f2a1c9 → 8b0d4e2`.
fn source_change(before: Option<&Source>, after: Option<&Source>) -> Option<Change> {
    let (before, after) = (before?, after?);
    let (old, new) = (before.resolved(), after.resolved());
    if old == new || new.is_none() {
        return None;
    }
    fn shown(id: Option<&str>) -> &str {
        id.map_or("(not resolved)", crate::sources::short)
    }
    Some(Change {
        field: "source".to_owned(),
        before: serde_json::json!(old),
        after: serde_json::json!(new),
        summary: format!(
            "source: {} {} → {}",
            after.moving_name(),
            shown(old),
            shown(new)
        ),
    })
}

fn unchanged(step: Step, row: &ResourceRow) -> Step {
    Step {
        action: Action::NoOp,
        detail: format!(
            "unchanged ({})",
            row.external_id.clone().unwrap_or_default()
        ),
        ..step
    }
}

/// The four steps of an app's first deploy, each as a fresh plan shows it.
struct FreshSteps {
    dns: Step,
    coolify: Step,
    deploy: Step,
    verify: Step,
    /// Only for a spec that asks for a monitor.
    monitor: Option<Step>,
}

impl FreshSteps {
    fn of(loaded: &LoadedSpec) -> Self {
        let spec = &loaded.spec;
        let source = match &spec.source {
            Some(source @ Source::Image { image, .. }) => match source.resolved() {
                Some(id) => format!("image {image} ({})", crate::sources::short(id)),
                None => format!("image {image}"),
            },
            Some(Source::Git {
                repository,
                branch,
                commit,
            }) => match commit {
                Some(commit) => {
                    format!("{repository} ({branch} {})", crate::sources::short(commit))
                }
                None => format!("{repository} ({branch})"),
            },
            None => "no source".to_owned(),
        };
        let variables = spec.env.len() + spec.secrets.len();
        let expect = spec
            .healthcheck
            .expect_status
            .map_or_else(|| "a 2xx".to_owned(), |s| s.to_string());
        let step = |action, kind: String, name: String, detail: String, rollback| Step {
            action,
            kind,
            name,
            detail,
            rollback,
            changes: vec![],
        };
        Self {
            dns: step(
                Action::Create,
                desired::DNS_KIND.to_owned(),
                spec.domain.clone(),
                format!("A record to the IP of Coolify server `{}`", spec.server),
                Some(spec.rollback.for_role(Role::Dns)),
            ),
            coolify: step(
                Action::Create,
                loaded.rendered.coolify_resource.to_string(),
                spec.name.clone(),
                format!(
                    "{} template, {source}, port {}, {variables} variable{} ({} secret), in Coolify project `{}` / `{}` on server `{}`",
                    spec.template,
                    spec.port,
                    if variables == 1 { "" } else { "s" },
                    spec.secrets.len(),
                    spec.coolify.project,
                    spec.coolify.environment,
                    spec.server
                ),
                Some(spec.rollback.for_role(Role::Coolify)),
            ),
            deploy: step(
                Action::Run,
                "deployment".to_owned(),
                spec.name.clone(),
                "deploy and wait for it to finish".to_owned(),
                None,
            ),
            verify: step(
                Action::Run,
                "verification".to_owned(),
                spec.health_url(),
                format!(
                    "GET until {expect}, every {} s, for up to {} s, TLS verified",
                    spec.healthcheck.interval, spec.healthcheck.timeout
                ),
                None,
            ),
            monitor: spec.monitor.as_ref().map(|monitor| {
                step(
                    Action::Create,
                    desired::MONITOR_KIND.to_owned(),
                    desired::monitor_name(spec),
                    format!(
                        "checks {} every {} s ({} retr{}), made once the app is verified; paused while a deploy of the app runs",
                        spec.health_url(),
                        monitor.interval,
                        monitor.retries,
                        if monitor.retries == 1 { "y" } else { "ies" }
                    ),
                    Some(spec.rollback.for_role(Role::Monitor)),
                )
            }),
        }
    }
}

/// Secrets whose values differ from the deployed version's, by fingerprint.
fn secret_changes(names: &[String], required: &[String], known: &Known) -> Vec<Change> {
    let mut out = Vec::new();
    for name in names {
        let field = format!("secrets.{name}");
        let now = known.current_fingerprints.get(name).cloned().flatten();
        let before = known
            .deployed_fingerprints
            .as_ref()
            .and_then(|f| f.get(name));
        match (now, before) {
            (None, _) if required.contains(name) => out.push(Change::note(
                field,
                format!(
                    "secret {name}: required and not set (environment or .env): apply will refuse"
                ),
            )),
            (None, _) => out.push(Change::note(
                field,
                format!("secret {name}: will be generated"),
            )),
            (Some(_), None) if known.deployed_fingerprints.is_some() => {
                out.push(Change::note(field, format!("secret {name}: added")));
            }
            (Some(now), Some(before)) if &now != before => {
                out.push(Change::note(field, format!("secret {name}: value changed")));
            }
            _ => {}
        }
    }
    out
}

/// Differences between two desired-state documents, one per changed field, by JSON path.
/// Secret markers read `(secret)`; a multi-line text (the compose document) is summarised
/// by the lines removed and added.
/// The fields (`env.LOG_LEVEL`, `compose`) that differ between two desired states.
pub(crate) fn changed_fields(before: &Value, after: &Value) -> Vec<String> {
    diff("", before, after)
        .into_iter()
        .map(|c| c.field)
        .collect()
}

fn diff(path: &str, before: &Value, after: &Value) -> Vec<Change> {
    let show = |v: &Value| match v.as_str() {
        Some(s) if s.starts_with("${secret:") => "(secret)".to_owned(),
        Some(s) if s.contains('\n') => format!("({} lines)", s.lines().count()),
        _ => v.to_string(),
    };
    let change = |field: &str, before: &Value, after: &Value, summary: String| Change {
        field: field.to_owned(),
        before: before.clone(),
        after: after.clone(),
        summary,
    };
    match (before, after) {
        (Value::Object(a), Value::Object(b)) => {
            let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
            keys.sort();
            keys.dedup();
            keys.into_iter()
                .flat_map(|key| {
                    let child = if path.is_empty() {
                        key.clone()
                    } else {
                        format!("{path}.{key}")
                    };
                    match (a.get(key), b.get(key)) {
                        (Some(x), Some(y)) => diff(&child, x, y),
                        (None, Some(y)) => vec![change(
                            &child,
                            &Value::Null,
                            y,
                            format!("{child}: added {}", show(y)),
                        )],
                        (Some(x), None) => vec![change(
                            &child,
                            x,
                            &Value::Null,
                            format!("{child}: removed (was {})", show(x)),
                        )],
                        (None, None) => vec![],
                    }
                })
                .collect()
        }
        (a, b) if a == b => vec![],
        (Value::String(x), Value::String(y)) if x.contains('\n') || y.contains('\n') => {
            vec![change(
                path,
                before,
                after,
                format!("{path}: {}", line_changes(x, y)),
            )]
        }
        (a, b) => {
            let field = if path.is_empty() { "value" } else { path };
            vec![change(
                field,
                a,
                b,
                format!("{field}: {} → {}", show(a), show(b)),
            )]
        }
    }
}

/// `1 line removed, 2 added (27 → 28 lines)`: what a line diff of two texts shows.
fn line_changes(before: &str, after: &str) -> String {
    use similar::{ChangeTag, TextDiff};
    let diff = TextDiff::from_lines(before, after);
    let (mut removed, mut added) = (0, 0);
    for change in diff.iter_all_changes() {
        match change.tag() {
            ChangeTag::Delete => removed += 1,
            ChangeTag::Insert => added += 1,
            ChangeTag::Equal => {}
        }
    }
    let lines = |n: usize| if n == 1 { "line" } else { "lines" };
    let what = match (removed, added) {
        (0, 0) => "only whitespace at line ends changed".to_owned(),
        (0, a) => format!("{a} {} added", lines(a)),
        (r, 0) => format!("{r} {} removed", lines(r)),
        (r, a) => format!("{r} {} removed, {a} added", lines(r)),
    };
    format!(
        "{what} ({} → {} lines)",
        before.lines().count(),
        after.lines().count()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_diff_names_each_changed_field_and_hides_secret_markers() {
        let before =
            json!({ "env": { "LOG": "info", "KEY": "${secret:KEY}", "OLD": "1" }, "image": "a:1" });
        let after = json!({ "env": { "LOG": "debug", "KEY": "${secret:KEY}", "NEW": "2" }, "image": "a:1" });
        let changes = diff("", &before, &after);
        let summaries: Vec<&str> = changes.iter().map(|c| c.summary.as_str()).collect();
        assert_eq!(
            summaries,
            vec![
                "env.LOG: \"info\" → \"debug\"",
                "env.NEW: added \"2\"",
                "env.OLD: removed (was \"1\")",
            ]
        );
        assert_eq!(
            (
                changes[0].field.as_str(),
                &changes[0].before,
                &changes[0].after
            ),
            ("env.LOG", &json!("info"), &json!("debug"))
        );
        assert_eq!(changes[1].before, Value::Null);
        assert!(diff("", &after, &after).is_empty());
    }

    #[test]
    fn a_changed_text_counts_the_lines_removed_and_added() {
        let before = json!({ "compose": "a\nb\nc\n" });
        let after = json!({ "compose": "a\nB\nc\nd\n" });
        let changes = diff("", &before, &after);
        assert_eq!(
            changes[0].summary,
            "compose: 1 line removed, 2 added (3 → 4 lines)"
        );
        assert_eq!(changes[0].after, json!("a\nB\nc\nd\n"));
    }

    #[test]
    fn secret_changes_compare_fingerprints_only() {
        let known = Known {
            deployed_fingerprints: Some(BTreeMap::from([
                ("A".to_owned(), "fa".to_owned()),
                ("B".to_owned(), "fb".to_owned()),
            ])),
            current_fingerprints: BTreeMap::from([
                ("A".to_owned(), Some("fa".to_owned())),
                ("B".to_owned(), Some("fb2".to_owned())),
                ("C".to_owned(), None),
            ]),
            ..Known::default()
        };
        let names = ["A", "B", "C"].map(str::to_owned);
        let changes = secret_changes(&names, &[], &known);
        let summaries: Vec<&str> = changes.iter().map(|c| c.summary.as_str()).collect();
        assert_eq!(
            summaries,
            vec!["secret B: value changed", "secret C: will be generated"]
        );
        assert_eq!(changes[0].field, "secrets.B");
        assert_eq!(
            (&changes[0].before, &changes[0].after),
            (&Value::Null, &Value::Null)
        );
    }
}
