//! `fabrik providers test`: the provider kit. It drives one provider, loaded and
//! sandboxed exactly as a command would, through what the host asks of it over the life
//! of a resource, against its real (or simulated) API, and says per step what held and
//! what did not:
//!
//! 1. **lock**: the component loads, targets a supported contract, manages the kind;
//! 2. **apply**: `lookup` finds nothing, `create` returns the resource tagged with the
//!    owner, reporting what was asked (a deployment is followed to its end);
//! 3. **no-op**: `lookup` and `read` find it again, unchanged, so a second apply sends
//!    nothing;
//! 4. **hand edit**: after the author's `--edit` command changed it behind the host's
//!    back, `read` shows the difference and `update` repairs it;
//! 5. **gc**: with no state, `list` finds it under the project's owner prefix, and it is
//!    deleted as `fabrik gc --delete` does;
//! 6. **destroy**: created again, a `delete` under another owner tag is refused, the
//!    owner's `delete` removes it and `read` no longer finds it;
//! 7. **refused credentials**: with a wrong credential, the answer is `unauthorized`.
//!
//! The resource is the kit's own (its owner tag names an app `fabrik-kit-<hex>`), so no
//! app of the project is touched; whatever the kit created is deleted before it ends,
//! even when a step fails.

use std::time::{Duration, Instant};

use serde_json::Value;

use super::drift;
use super::owner::{owner_tag, project_prefix};
use super::removal::{DELETION_TIMEOUT, delete_and_confirm};
use crate::domain::Role;
use crate::plugins::instance::ProviderInstance;
use crate::plugins::types::{ProgressState, ProviderError, Resource};
use crate::plugins::{PluginError, ProviderSet};
use crate::project::Project;
use crate::secrets::EnvSource;

/// The resource the kit creates, updates and deletes.
#[derive(Debug, Clone)]
pub struct Target {
    pub kind: String,
    pub name: String,
    pub desired: Value,
    /// Env keys of `desired` whose values are secret (never shown).
    pub secret_names: Vec<String>,
    /// Their values, hidden in everything the provider says.
    pub secret_values: Vec<secrecy::SecretString>,
}

impl Target {
    /// A DNS record `name` pointing at 192.0.2.10 (TEST-NET-1, which routes nowhere), as
    /// the host would send it.
    pub fn dns_record(name: &str) -> Self {
        Self {
            kind: super::desired::DNS_KIND.to_owned(),
            name: name.trim_end_matches('.').to_ascii_lowercase(),
            desired: serde_json::json!({ "type": "A", "content": "192.0.2.10" }),
            secret_names: Vec::new(),
            secret_values: Vec::new(),
        }
    }

    /// The spec's Coolify resource, renamed `name` and served at `<name>.<domain>` so
    /// that it never meets the app itself; secret values are random, never shown.
    pub fn coolify(spec: &crate::spec::LoadedSpec, name: &str) -> Result<Self, String> {
        let secrets: std::collections::BTreeMap<String, String> = spec
            .spec
            .secrets
            .iter()
            .map(|key| {
                use secrecy::ExposeSecret;
                crate::secrets::generate()
                    .map(|value| (key.clone(), value.expose_secret().to_owned()))
                    .map_err(|e| e.to_string())
            })
            .collect::<Result<_, _>>()?;
        let mut resource = super::desired::coolify_resource(spec, &secrets)?;
        resource.desired["domains"] =
            serde_json::json!([format!("https://{name}.{}", spec.spec.domain)]);
        Ok(Self {
            kind: resource.kind,
            name: name.to_owned(),
            desired: resource.desired,
            secret_names: spec.spec.secrets.clone(),
            secret_values: secrets
                .values()
                .map(|v| secrecy::SecretString::from(v.clone()))
                .collect(),
        })
    }
}

/// What to run.
#[derive(Debug, Clone)]
pub struct Options {
    pub role: Role,
    pub target: Target,
    /// A shell command that changes the resource by hand (`FABRIK_KIT_KIND`,
    /// `FABRIK_KIT_ID` and `FABRIK_KIT_NAME` in its environment).
    pub edit: Option<String>,
    /// How long a deployment may take (Coolify kinds).
    pub deploy_timeout: Duration,
    /// The app name in the kit's owner tag (`fabrik-kit-<hex>`).
    pub app: String,
}

/// How one step went.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "status", content = "detail", rename_all = "snake_case")]
pub enum Outcome {
    Passed(String),
    Failed(String),
    /// Not run, and why: never counted as passed.
    Skipped(String),
}

/// One step of the kit.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Step {
    pub step: &'static str,
    #[serde(flatten)]
    pub outcome: Outcome,
    pub seconds: f64,
}

/// The kit's own app name: `fabrik-kit-` and 8 random hex digits.
pub fn kit_app() -> String {
    let mut bytes = [0u8; 4];
    let _ = getrandom::fill(&mut bytes);
    format!("fabrik-kit-{}", hex::encode(bytes))
}

type Checked = Result<String, String>;

struct Kit<'a> {
    instance: ProviderInstance,
    target: &'a Target,
    owner: String,
    prefix: String,
    /// The id of what the kit created and has not deleted yet.
    live: Option<String>,
    /// Other ids that may still hold the kit's resource (an `update` that answered with
    /// a new id while the old one still reads): cleaned up too.
    stale: Vec<String>,
}

/// Runs the kit, calling `each` as every step ends, and returns every step.
pub async fn run(
    project: &Project,
    providers: &ProviderSet,
    env: &EnvSource,
    options: &Options,
    mut each: impl FnMut(&Step),
) -> Vec<Step> {
    let mut steps = Vec::new();
    let mut record = |step: &'static str, started: Instant, outcome: Outcome| {
        let step = Step {
            step,
            outcome,
            seconds: started.elapsed().as_secs_f64(),
        };
        each(&step);
        steps.push(step);
    };
    let started = Instant::now();
    let instance = match load(providers, options, env).await {
        Ok((instance, detail)) => {
            record("lock", started, Outcome::Passed(detail));
            instance
        }
        Err(problem) => {
            record("lock", started, Outcome::Failed(problem));
            return steps;
        }
    };
    let mut kit = Kit {
        instance,
        target: &options.target,
        owner: owner_tag(&project.name, &options.app),
        prefix: project_prefix(&project.name),
        live: None,
        stale: Vec::new(),
    };
    let mut failed = false;
    let sequence = ["apply", "no-op", "hand edit", "gc", "destroy"];
    for name in sequence {
        let started = Instant::now();
        if failed {
            record(
                name,
                started,
                Outcome::Skipped("an earlier step failed".to_owned()),
            );
            continue;
        }
        if name == "hand edit" && options.edit.is_none() {
            record(
                name,
                started,
                Outcome::Skipped(
                    "no `--edit` command: give one that changes the resource as a person would"
                        .to_owned(),
                ),
            );
            continue;
        }
        let checked = match name {
            "apply" => kit.apply(options).await,
            "no-op" => kit.no_op().await,
            "hand edit" => kit.hand_edit(options).await,
            "gc" => kit.gc().await,
            _ => kit.destroy(options).await,
        };
        let outcome = match checked {
            Ok(detail) => Outcome::Passed(detail),
            Err(problem) => {
                failed = true;
                Outcome::Failed(problem)
            }
        };
        record(name, started, outcome);
    }
    let leftovers: Vec<String> = kit
        .live
        .take()
        .into_iter()
        .chain(kit.stale.drain(..))
        .collect();
    if !leftovers.is_empty() {
        let started = Instant::now();
        let mut said = Vec::new();
        let mut all_gone = true;
        for id in leftovers {
            match kit.remove_own(&id).await {
                Ok(line) => said.push(line),
                Err(line) => {
                    all_gone = false;
                    said.push(line);
                }
            }
        }
        let said = said.join("; ");
        let outcome = if all_gone {
            Outcome::Passed(said)
        } else {
            Outcome::Failed(said)
        };
        record("cleanup", started, outcome);
    }
    let started = Instant::now();
    // After a failure the answer to a wrong credential says little (a wrong base URL
    // answers the same whatever the credential).
    let outcome = if failed {
        Outcome::Skipped("an earlier step failed".to_owned())
    } else {
        refused_credentials(project, providers, env, options).await
    };
    record("refused credentials", started, outcome);
    steps
}

async fn load(
    providers: &ProviderSet,
    options: &Options,
    env: &EnvSource,
) -> Result<(ProviderInstance, String), String> {
    let role = options.role;
    let loaded = providers
        .get(role)
        .ok_or_else(|| format!("the project has no `{role}` provider"))?;
    let info = providers.describe(role).await.map_err(|e| e.to_string())?;
    if !info.kinds.contains(&options.target.kind) {
        return Err(format!(
            "{} manages {}, not `{}`: it cannot serve the `{role}` role",
            info.name,
            info.kinds.join(", "),
            options.target.kind
        ));
    }
    let instance = providers
        .instantiate_hiding(role, env, &options.target.secret_values)
        .await
        .map_err(|e| e.to_string())?;
    let detail = format!(
        "{} {} (contract {}, sha256 {}, {})",
        info.name,
        info.version,
        instance.wit(),
        loaded.sha256,
        loaded.source
    );
    Ok((instance, detail))
}

/// Says what a provider error is, with its kind: the host acts on the kind.
fn said(error: &ProviderError) -> String {
    format!("{} ({error})", kind_of(error))
}

fn kind_of(error: &ProviderError) -> &'static str {
    match error {
        ProviderError::Transient { .. } => "transient",
        ProviderError::Permanent(_) => "permanent",
        ProviderError::NotFound(_) => "not-found",
        ProviderError::Unauthorized(_) => "unauthorized",
        ProviderError::InvalidConfig(_) => "invalid-config",
    }
}

impl Kit<'_> {
    /// `lookup` of the kit's resource, as the host asks it before a create.
    async fn lookup(&mut self) -> Result<Option<Resource>, String> {
        let target = self.target;
        let found = self
            .instance
            .lookup(
                &target.kind,
                &target.name,
                &self.owner,
                Some(&target.desired),
            )
            .await;
        found.map_err(|e| self.call("lookup", &e))
    }

    /// Deletes `id` if it still reads as the kit's own (never on the word of the
    /// provider's owner check alone, which is what the kit tests).
    async fn remove_own(&mut self, id: &str) -> Result<String, String> {
        let kind = self.target.kind.clone();
        let by_hand = |why: String| {
            format!(
                "{kind} {id}: {why}; delete it by hand if it is the kit's (owner tag {})",
                self.owner
            )
        };
        match self.instance.read(&kind, id).await {
            Ok(None) | Err(ProviderError::NotFound(_)) => Ok(format!("{id} is gone")),
            Ok(Some(found)) if found.owner.as_deref() == Some(self.owner.as_str()) => {
                delete_and_confirm(
                    &mut self.instance,
                    &kind,
                    id,
                    &self.owner,
                    false,
                    DELETION_TIMEOUT,
                )
                .await
                .map(|()| format!("deleted {id}, which the kit created"))
                .map_err(|e| by_hand(format!("could not be deleted: {e}")))
            }
            Ok(Some(found)) => Err(by_hand(format!(
                "not deleted: it reads with the owner tag {:?}, not the kit's",
                found.owner.as_deref().unwrap_or("")
            ))),
            Err(e) => Err(by_hand(format!("could not be read: {e}"))),
        }
    }

    fn call(&self, call: &str, error: &ProviderError) -> String {
        format!("`{call}` failed: {}", said(error))
    }

    /// What a reported resource says against what was asked, if anything is wrong.
    fn check(&self, call: &str, resource: &Resource) -> Result<drift::Comparison, String> {
        let target = self.target;
        if resource.kind != target.kind {
            return Err(format!(
                "`{call}` returned a {} for a {}",
                resource.kind, target.kind
            ));
        }
        if resource.id.trim().is_empty() {
            return Err(format!("`{call}` returned a resource without an id"));
        }
        if !resource
            .name
            .trim_end_matches('.')
            .eq_ignore_ascii_case(&target.name)
        {
            return Err(format!(
                "`{call}` returned the name {:?} for {:?}: the host finds resources by name",
                resource.name, target.name
            ));
        }
        if resource.owner.as_deref() != Some(self.owner.as_str()) {
            return Err(format!(
                "`{call}` returned the owner {:?}, not the tag `{}`: the host would refuse to adopt it, and stop",
                resource.owner.as_deref().unwrap_or(""),
                self.owner
            ));
        }
        let comparison = drift::compare(
            &target.kind,
            &target.desired,
            &resource.live,
            &target.secret_names,
        );
        // A record's `type` and `content` are required (docs/schemas/dns-record.live.json):
        // without them no hand edit could ever be seen.
        if target.kind == super::desired::DNS_KIND && !comparison.complete {
            return Err(format!(
                "`{call}` reports a dns-record without `type` or `content` in `live`: the host could never see it edited"
            ));
        }
        Ok(comparison)
    }

    fn clean(&self, call: &str, resource: &Resource, why: &str) -> Result<(), String> {
        let comparison = self.check(call, resource)?;
        if comparison.is_clean() {
            Ok(())
        } else {
            Err(format!(
                "`{call}` reports {}: {why}",
                comparison.differences.join("; ")
            ))
        }
    }

    async fn create(&mut self, options: &Options) -> Result<Resource, String> {
        let target = self.target;
        if let Some(found) = self.lookup().await? {
            return Err(format!(
                "a {} named {} already exists ({}, owner {:?}): choose another name for the kit",
                target.kind,
                target.name,
                found.id,
                found.owner.as_deref().unwrap_or("")
            ));
        }
        let created = match self
            .instance
            .create(&target.kind, &target.name, &target.desired, &self.owner)
            .await
        {
            Ok(created) => created,
            Err(error) => {
                // A create can fail after the resource came to exist: found by its tag,
                // it is cleaned up like the rest.
                if let Ok(Some(found)) = self.lookup().await
                    && found.owner.as_deref() == Some(self.owner.as_str())
                    && !found.id.trim().is_empty()
                {
                    self.live = Some(found.id);
                }
                return Err(self.call("create", &error));
            }
        };
        if !created.id.trim().is_empty() {
            self.live = Some(created.id.clone());
        }
        self.clean(
            "create",
            &created,
            "what was asked is not what was made, or not how it is reported: every apply would update it",
        )?;
        if options.role == Role::Coolify {
            self.follow(&created.id, options.deploy_timeout).await?;
        }
        Ok(created)
    }

    /// Polls `progress` as the host does, until `ready`.
    async fn follow(&mut self, id: &str, timeout: Duration) -> Result<(), String> {
        let started = Instant::now();
        let mut delay = Duration::from_millis(200);
        loop {
            match self.instance.progress(&self.target.kind, id).await {
                Ok(p) if p.state == ProgressState::Ready => return Ok(()),
                Ok(p) if p.state == ProgressState::Failed => {
                    return Err(format!(
                        "the deployment failed: {}",
                        p.message.unwrap_or_default()
                    ));
                }
                Ok(_) | Err(ProviderError::Transient { .. }) if started.elapsed() < timeout => {}
                Ok(p) => {
                    return Err(format!(
                        "the deployment was still {:?} after {} s",
                        p.state,
                        timeout.as_secs()
                    ));
                }
                Err(e) => return Err(self.call("progress", &e)),
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_secs(3));
        }
    }

    async fn apply(&mut self, options: &Options) -> Checked {
        let created = self.create(options).await?;
        Ok(format!(
            "`lookup` found nothing; `create` made {} {} ({}), tagged {}",
            created.kind, created.name, created.id, self.owner
        ))
    }

    async fn no_op(&mut self) -> Checked {
        let target = self.target;
        let id = self.live.clone().ok_or("nothing was created")?;
        let found = self.lookup().await?.ok_or(
            "`lookup` does not find what `create` made: the next apply would create it again",
        )?;
        if found.id != id {
            return Err(format!(
                "`lookup` found {} where `create` made {id}",
                found.id
            ));
        }
        self.clean(
            "lookup",
            &found,
            "a second apply would update it every time",
        )?;
        let read = self
            .instance
            .read(&target.kind, &id)
            .await
            .map_err(|e| self.call("read", &e))?
            .ok_or("`read` does not find what `create` made: the host would take it for deleted")?;
        if read.id != id {
            return Err(format!("`read` of {id} answered with the id {}", read.id));
        }
        let comparison = self.check("read", &read)?;
        if !comparison.is_clean() {
            return Err(format!(
                "`read` reports {}: a second apply would update it every time",
                comparison.differences.join("; ")
            ));
        }
        Ok(if comparison.complete {
            "`lookup` and `read` find it as wanted: a second apply sends nothing".to_owned()
        } else {
            "`lookup` and `read` find it as wanted (some fields are not shown: drift there goes unseen)"
                .to_owned()
        })
    }

    async fn hand_edit(&mut self, options: &Options) -> Checked {
        let target = self.target;
        let id = self.live.clone().ok_or("nothing was created")?;
        let command = options.edit.as_deref().ok_or("no --edit command")?;
        run_edit(command, target, &id).await?;
        let edited = self
            .instance
            .read(&target.kind, &id)
            .await
            .map_err(|e| self.call("read", &e))?
            .ok_or("after the edit, `read` no longer finds the resource")?;
        let comparison = self.check("read", &edited)?;
        if comparison.is_clean() {
            return Err(
                "after the `--edit` command, `read` still reports the resource as wanted: a hand edit would go unseen (or the command changed nothing `live` shows)"
                    .to_owned(),
            );
        }
        let seen = comparison.differences.join("; ");
        let updated = self
            .instance
            .update(&target.kind, &id, &target.desired)
            .await
            .map_err(|e| self.call("update", &e))?;
        // `update` may answer with a new id (docs/providers.md): the host keeps it, and
        // the old one must be gone.
        if updated.id.trim().is_empty() {
            return Err("`update` returned a resource without an id".to_owned());
        }
        if updated.id != id {
            self.live = Some(updated.id.clone());
            if !matches!(self.instance.read(&target.kind, &id).await, Ok(None)) {
                self.stale.push(id.clone());
                return Err(format!(
                    "`update` answered with the new id {} but the old one, {id}, still reads: the host would track one and leave the other",
                    updated.id
                ));
            }
        }
        self.clean("update", &updated, "the repair did not take")?;
        let read = self
            .instance
            .read(&target.kind, &updated.id)
            .await
            .map_err(|e| self.call("read", &e))?
            .ok_or("after `update`, `read` no longer finds the resource by the id it returned")?;
        self.clean("read", &read, "the repair did not last")?;
        Ok(format!("`read` saw {seen}; `update` repaired it"))
    }

    async fn gc(&mut self) -> Checked {
        let target = self.target;
        let id = self.live.clone().ok_or("nothing was created")?;
        let mut cursor: Option<String> = None;
        let mut found = false;
        let mut pages = 0;
        let listed = loop {
            pages += 1;
            if pages > 1000 {
                return Err("`list` returned more than 1,000 pages".to_owned());
            }
            let page = self
                .instance
                .list(&target.kind, &self.prefix, cursor.as_deref())
                .await
                .map_err(|e| self.call("list", &e))?;
            let Some(page) = page else {
                break false;
            };
            for resource in &page.resources {
                if !resource
                    .owner
                    .as_deref()
                    .is_some_and(|o| o.starts_with(&self.prefix))
                {
                    return Err(format!(
                        "`list` returned {} tagged {:?}, outside the prefix `{}`: gc would take another project's resource for this one's",
                        resource.id,
                        resource.owner.as_deref().unwrap_or(""),
                        self.prefix
                    ));
                }
                found |= resource.id == id;
            }
            match page.next {
                Some(next) if Some(&next) != cursor.as_ref() => cursor = Some(next),
                Some(_) => return Err("`list` returned the same cursor twice".to_owned()),
                None => break true,
            }
        };
        if listed && !found {
            return Err(format!(
                "`list` under `{}` does not return {id}: with its state lost, gc would never find it",
                self.prefix
            ));
        }
        delete_and_confirm(
            &mut self.instance,
            &target.kind,
            &id,
            &self.owner,
            false,
            DELETION_TIMEOUT,
        )
        .await
        .map_err(|e| self.call("delete", &e))?;
        self.live = None;
        if let Some(still) = self.lookup().await? {
            return Err(format!("after `delete`, `lookup` still finds {}", still.id));
        }
        Ok(if listed {
            format!(
                "`list` found it under `{}` (in {pages} {}); deleted",
                self.prefix,
                if pages == 1 { "page" } else { "pages" }
            )
        } else {
            "deleted; not listed: the component targets contract 0.1, which has no `list` (gc cannot find its orphans)".to_owned()
        })
    }

    async fn destroy(&mut self, options: &Options) -> Checked {
        let target = self.target;
        let created = self.create(options).await?;
        let id = created.id.clone();
        let stranger = format!("{}-not-the-owner", self.owner);
        if self
            .instance
            .delete(&target.kind, &id, &stranger, true)
            .await
            .is_ok()
        {
            let gone = self.instance.read(&target.kind, &id).await;
            if matches!(gone, Ok(None) | Err(ProviderError::NotFound(_))) {
                self.live = None;
            }
            return Err(format!(
                "`delete` under another owner tag ({stranger}) was not refused: a provider must check the tag before deleting"
            ));
        }
        match self.instance.read(&target.kind, &id).await {
            Ok(Some(_)) => {}
            Ok(None) => {
                self.live = None;
                return Err("a refused `delete` removed the resource anyway".to_owned());
            }
            Err(e) => return Err(self.call("read", &e)),
        }
        delete_and_confirm(
            &mut self.instance,
            &target.kind,
            &id,
            &self.owner,
            true,
            DELETION_TIMEOUT,
        )
        .await
        .map_err(|e| self.call("delete", &e))?;
        self.live = None;
        Ok("created again; a `delete` under another owner tag was refused; the owner's `delete` removed it".to_owned())
    }
}

/// Runs the author's edit command, bounded.
async fn run_edit(command: &str, target: &Target, id: &str) -> Result<(), String> {
    let mut child = tokio::process::Command::new("sh");
    child
        .args(["-c", command])
        .env("FABRIK_KIT_KIND", &target.kind)
        .env("FABRIK_KIT_ID", id)
        .env("FABRIK_KIT_NAME", &target.name)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    let output = tokio::time::timeout(Duration::from_secs(60), child.output())
        .await
        .map_err(|_| "the `--edit` command did not end within 60 s".to_owned())?
        .map_err(|e| format!("the `--edit` command could not run: {e}"))?;
    if output.status.success() {
        Ok(())
    } else {
        let said = String::from_utf8_lossy(&output.stderr);
        Err(format!(
            "the `--edit` command failed ({}): {}",
            output.status,
            crate::plugins::returned::one_line(said.trim(), 300)
        ))
    }
}

/// With every credential of the role replaced by a wrong one, a call must answer
/// `unauthorized`: the host stops and names the variable, instead of retrying or
/// reporting something else.
async fn refused_credentials(
    project: &Project,
    providers: &ProviderSet,
    env: &EnvSource,
    options: &Options,
) -> Outcome {
    let role = options.role;
    let variables: Vec<String> = project
        .providers
        .get(&role)
        .map(|entry| entry.secrets.values().cloned().collect())
        .unwrap_or_default();
    if variables.is_empty() {
        return Outcome::Skipped(format!(
            "the `{role}` provider takes no credential in this project"
        ));
    }
    let mut wrong = env.overriding(&variables[0], refused_value());
    for variable in &variables[1..] {
        wrong = wrong.overriding(variable, refused_value());
    }
    let target = &options.target;
    let answer = match providers.instantiate(role, &wrong).await {
        Ok(mut instance) => instance
            .lookup(
                &target.kind,
                &target.name,
                "fabrik:kit/refused",
                Some(&target.desired),
            )
            .await
            .map(|_| ()),
        Err(PluginError::Provider { error, .. }) => Err(error),
        Err(other) => return Outcome::Failed(other.to_string()),
    };
    match answer {
        Err(ProviderError::Unauthorized(message)) => {
            Outcome::Passed(format!("`unauthorized`: {message}"))
        }
        Ok(()) => Outcome::Failed(format!(
            "with a wrong value in {}, `lookup` succeeded: the credential is not checked (or not sent)",
            variables.join(", ")
        )),
        Err(other) => Outcome::Failed(format!(
            "with a wrong value in {}, the answer was {}, not `unauthorized`: the host would {}",
            variables.join(", "),
            said(&other),
            match other {
                ProviderError::Transient { .. } => "retry it for minutes",
                _ => "not tell the user their credential is wrong",
            }
        )),
    }
}

fn refused_value() -> secrecy::SecretString {
    secrecy::SecretString::from("fabrik-kit-wrong-credential-0000000000".to_owned())
}
