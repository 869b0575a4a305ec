//! The forward path of a run: provision (the DNS record and the Coolify resource at
//! once), the `pre_deploy` hook, the deployment, verification, the `post_deploy` hook.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use secrecy::{ExposeSecret, SecretString};

use super::desired::{self, DesiredResource, Wanted};
use super::ensure::{Ensured, Observed};
use super::events::{HookName, ResourceRef, RunEvent, Warning};
use super::failure::{RunFailure, Stop};
use super::hooks::{self, HookEnv};
use super::run::{Instances, Run};
use super::verify::{self, verify};
use crate::domain::{Role, State};
use crate::plugins::instance::ProviderInstance;
use crate::plugins::types::ProgressState;
use crate::spec::LoadedSpec;

pub(crate) async fn provision_deploy_verify(
    run: &mut Run<'_, '_>,
    loaded: &LoadedSpec,
    values: &BTreeMap<String, SecretString>,
    instances: &mut Instances,
) -> Result<Vec<Warning>, Stop> {
    let spec = &loaded.spec;
    // DNS and the Coolify resource do not depend on each other, but both are observed
    // before either changes: a provider that refuses its credentials or is down stops
    // the run while nothing has changed. The DNS record is observed while the server is
    // looked up (its address is the record's content), so the barrier costs no round
    // trip.
    let dns_wanted = Wanted {
        role: Role::Dns,
        kind: desired::DNS_KIND.to_owned(),
        name: spec.domain.clone(),
    };
    let run_ref: &Run<'_, '_> = run;
    let Instances {
        coolify,
        dns,
        monitor,
    } = instances;
    // The monitor, if the spec asks for one, is observed with the others (nothing
    // changes before every resource of the run is seen) and made or resumed only once
    // the app is verified: a monitor of a broken app is noise.
    let watch = desired::monitor(loaded, true);
    if watch.is_some() && monitor.is_none() {
        return Err(RunFailure::Unsupported(
            "the spec asks for a monitor (`monitor:`), and fabrik.toml configures no [providers.monitor]".to_owned(),
        )
        .into());
    }
    let watch_wanted = watch.as_ref().map(|w| Wanted {
        role: w.role,
        kind: w.kind.clone(),
        name: w.name.clone(),
    });
    let (prepared, record_seen, watch_seen) = tokio::join!(
        prepare_coolify(run_ref, loaded, values, coolify),
        run_ref.observe(dns, &dns_wanted, None),
        async {
            match (monitor.as_mut(), &watch_wanted, &watch) {
                (Some(instance), Some(wanted), Some(w)) => {
                    Some(run_ref.observe(instance, wanted, Some(&w.desired)).await)
                }
                _ => None,
            }
        },
    );
    let watch_seen = match watch_seen.transpose() {
        Ok(seen) => seen,
        Err(Stop::Fault(error)) => return Err(Stop::Fault(error)),
        Err(failed) => {
            // A store fault on the other side still wins.
            if let (Err(Stop::Fault(error)), _) | (_, Err(Stop::Fault(error))) =
                (prepared, record_seen)
            {
                return Err(Stop::Fault(error));
            }
            return Err(failed);
        }
    };
    let (
        Prepared {
            record,
            app_resource,
            observed: resource_seen,
        },
        record_seen,
    ) = match (prepared, record_seen) {
        (Err(Stop::Fault(error)), _) | (_, Err(Stop::Fault(error))) => {
            return Err(Stop::Fault(error));
        }
        (Err(failed), _) | (_, Err(failed)) => return Err(failed),
        (Ok(prepared), Ok(record_seen)) => (prepared, record_seen),
    };
    // A deploy of a watched app pauses its monitor first, so that the restart raises no
    // alarm (`update` with `active: false`: the provider pauses before it edits); the
    // verified app resumes it, and a failed run's rollback restores it after the app, per
    // `rollback.monitors`. Only when the Coolify resource is not settled: a run that
    // deploys nothing pauses nothing.
    let deploys = !run_ref.settled.iter().any(|w| w.role == Role::Coolify);
    let watch_seen = match (deploys, monitor.as_mut(), watch_seen) {
        (true, Some(instance), Some(seen))
            if seen
                .live()
                .is_some_and(|live| live.live["active"].as_bool() != Some(false)) =>
        {
            if let Some(paused) = desired::monitor(loaded, false) {
                run_ref.converge(instance, &paused, seen).await?;
            }
            None
        }
        (_, _, seen) => seen,
    };
    drop(watch_seen);
    let (record_result, resource) = tokio::join!(
        run_ref.converge(dns, &record, record_seen),
        run_ref.converge(coolify, &app_resource, resource_seen),
    );
    // A store fault on either side wins over a failure on the other: it must stop the
    // run, never start a rollback.
    let resource = match (record_result, resource) {
        (Err(Stop::Fault(error)), _) | (_, Err(Stop::Fault(error))) => {
            return Err(Stop::Fault(error));
        }
        (Err(failed), _) => return Err(failed),
        (Ok(_), resource) => resource,
    };
    let (resource, redeployed) = match resource? {
        Ensured::Changed(resource) => (resource, true),
        Ensured::Unchanged(resource) => (resource, false),
    };

    if let Some(command) = &loaded.hooks.pre_deploy {
        hook(run, loaded, values, HookName::PreDeploy, command).await?;
    }
    run.to(State::Deploying, None).await?;
    if redeployed {
        run.wait(coolify, &app_resource.kind, &resource.id).await?;
    } else {
        run.event(RunEvent::NothingToDeploy {
            resource: ResourceRef::new(&app_resource.kind, &app_resource.name, None),
        });
    }
    run.to(State::Verifying, None).await?;
    // Only the override the health check will use: one for another name is noise.
    if let Some(r) = verify::Resolve::find(&run.ctx.options.verify.resolve, &spec.domain, 443) {
        run.event(RunEvent::ResolveOverride {
            host: spec.domain.clone(),
            port: r.port,
            addr: r.addr.to_string(),
        });
    }
    if let Some(ca) = &run.ctx.options.verify.ca_file {
        run.event(RunEvent::ExtraCa {
            path: ca.display().to_string(),
        });
    }
    run.probe(spec).await?;
    // The verified app gets its monitor, made or resumed. A failure here is a warning:
    // a monitoring outage never rolls back an app that passed its health check (a store
    // fault still stops the run).
    let mut warnings = Vec::new();
    if let (Some(instance), Some(watch), Some(wanted)) = (monitor.as_mut(), &watch, &watch_wanted) {
        let made = async {
            let seen = run.observe(instance, wanted, Some(&watch.desired)).await?;
            run.converge(instance, watch, seen).await
        }
        .await;
        match made {
            Ok(_) => {}
            Err(Stop::Fault(error)) => return Err(Stop::Fault(error)),
            Err(Stop::Failed(failure)) => {
                let warning = Warning::MonitorNotReady {
                    resource: ResourceRef::new(&watch.kind, &watch.name, None),
                    error: run.hidden.redact(&failure.to_string()),
                };
                run.event(RunEvent::Warning {
                    warning: warning.clone(),
                });
                warnings.push(warning);
            }
        }
    }
    if let Some(command) = &loaded.hooks.post_deploy {
        hook(run, loaded, values, HookName::PostDeploy, command).await?;
    }
    Ok(warnings)
}

/// The Coolify side, ready to change: the server looked up, the DNS record and the
/// Coolify resource as wanted, and the resource observed.
struct Prepared {
    record: DesiredResource,
    app_resource: DesiredResource,
    observed: Observed,
}

/// Looks up the spec's server, builds what the app wants, refuses what Coolify could not
/// do in place or would refuse, and observes the Coolify resource. Changes nothing.
async fn prepare_coolify(
    run: &Run<'_, '_>,
    loaded: &LoadedSpec,
    values: &BTreeMap<String, SecretString>,
    coolify: &mut ProviderInstance,
) -> Result<Prepared, Stop> {
    let spec = &loaded.spec;
    let found = run
        .retried("server lookup", async || {
            coolify
                .lookup("server", &spec.server, &run.owner, None)
                .await
        })
        .await
        .map_err(|error| RunFailure::ServerLookup {
            server: spec.server.clone(),
            error,
        })?;
    let Some(server) = found else {
        // Name the servers there are, when the provider can list them (0.2 and later);
        // the error stands without them.
        let known = match coolify.list("server", "", None).await {
            Ok(Some(page)) => page.resources.into_iter().map(|r| r.name).collect(),
            _ => Vec::new(),
        };
        return Err(RunFailure::NoServer {
            server: spec.server.clone(),
            known,
        }
        .into());
    };
    let ip = server.outputs["ip"]
        .as_str()
        .filter(|ip| ip.parse::<std::net::IpAddr>().is_ok())
        .ok_or_else(|| RunFailure::NoServerAddress {
            server: spec.server.clone(),
            found: server.outputs["ip"].to_string(),
        })?
        .to_owned();
    let record = desired::dns_record(loaded, &ip);
    let plain: BTreeMap<String, String> = values
        .iter()
        .map(|(k, v)| (k.clone(), v.expose_secret().to_owned()))
        .collect();
    let app_resource =
        desired::coolify_resource(loaded, &plain).map_err(RunFailure::Unsupported)?;

    // Before anything changes. A resource's placement cannot be changed in place (the
    // provider updates image, port, domains, env and compose): refuse rather than end
    // COMPLETE with the app where it was. A new resource needs a destination Coolify
    // accepts.
    let existing = run
        .store()
        .resources(run.deployment)
        .await?
        .into_iter()
        .find(|r| r.is(Role::Coolify, &app_resource.kind, &app_resource.name) && r.is_live());
    match existing.as_ref().and_then(|r| r.desired.as_ref()) {
        Some(before) => desired::check_placement(&spec.key(), before, &app_resource.desired),
        None => {
            // A `coolify` provider may leave the destinations out of `lookup` (they cost
            // a round trip an update does not need); `read` of the server gives them.
            let outputs = if server.outputs.get("destinations").is_some() {
                server.outputs.clone()
            } else {
                run.retried("server destinations", async || {
                    coolify.read("server", &server.id).await
                })
                .await
                .map_err(|error| RunFailure::ServerLookup {
                    server: spec.server.clone(),
                    error,
                })?
                .map_or_else(|| server.outputs.clone(), |found| found.outputs)
            };
            desired::check_destination(spec, &outputs)
        }
    }
    .map_err(RunFailure::Unsupported)?;
    let verify_options = &run.ctx.options.verify;
    if verify::Resolve::find(&verify_options.resolve, &spec.domain, 443).is_none()
        && ip.parse().is_ok_and(super::verify::is_private)
    {
        return Err(RunFailure::PrivateAddress {
            server: spec.server.clone(),
            ip,
        }
        .into());
    }

    let observed = run
        .observe(
            coolify,
            &Wanted {
                role: app_resource.role,
                kind: app_resource.kind.clone(),
                name: app_resource.name.clone(),
            },
            Some(&app_resource.desired),
        )
        .await?;
    Ok(Prepared {
        record,
        app_resource,
        observed,
    })
}

impl Run<'_, '_> {
    /// Probes `spec`'s health URL until it passes or its timeout ends, each attempt and
    /// the pass told as events (the forward path's check, and a restore's).
    pub(super) async fn probe(&self, spec: &crate::spec::Spec) -> Result<(), verify::VerifyError> {
        let redact = |text: &str| self.hidden.redact(text);
        let verified = verify(spec, &self.ctx.options.verify, &redact, |attempt| {
            self.event(RunEvent::Probing {
                request: attempt.request,
                answer: attempt.answer,
                attempt: attempt.number,
                elapsed_s: attempt.elapsed.as_secs(),
                timeout_s: attempt.timeout.as_secs(),
            });
        })
        .await?;
        self.event(RunEvent::Verified {
            url: spec.health_url(),
            status: verified.status,
            attempts: verified.attempts,
        });
        Ok(())
    }

    /// Follows a long operation until it is ready, failed or out of time.
    pub(super) async fn wait(
        &self,
        instance: &mut ProviderInstance,
        kind: &str,
        id: &str,
    ) -> Result<(), RunFailure> {
        let started = Instant::now();
        let mut delay = Duration::from_millis(100);
        let mut last = String::new();
        loop {
            let progress = self
                .retried("deployment", async || instance.progress(kind, id).await)
                .await
                .map_err(RunFailure::Progress)?;
            let message = progress.message.clone().unwrap_or_default();
            if message != last {
                self.event(RunEvent::Progress {
                    message: message.clone(),
                });
                last.clone_from(&message);
            }
            match progress.state {
                ProgressState::Ready => return Ok(()),
                ProgressState::Failed => return Err(RunFailure::DeploymentFailed(message)),
                ProgressState::Pending | ProgressState::Running => {}
            }
            let timeout = self.ctx.options.deploy_timeout;
            if started.elapsed() >= timeout {
                return Err(RunFailure::DeploymentTimeout {
                    seconds: timeout.as_secs(),
                    last: message,
                });
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(poll_ceiling(started.elapsed()));
        }
    }
}

/// The longest pause between two polls of a deployment that has run for `elapsed`: 3 s
/// at first, then a fifth of the time it has taken, up to 20 s. A long build is polled
/// less often (it costs requests from the API's rate limit, shared by every app of the
/// run) while its end is still seen within a fifth of its duration.
fn poll_ceiling(elapsed: Duration) -> Duration {
    (elapsed / 5).clamp(Duration::from_secs(3), Duration::from_secs(20))
}

/// Runs one of the spec's hooks, its output as the run's events.
async fn hook(
    run: &Run<'_, '_>,
    loaded: &LoadedSpec,
    secrets: &BTreeMap<String, SecretString>,
    which: HookName,
    command: &str,
) -> Result<(), RunFailure> {
    let spec = &loaded.spec;
    run.event(RunEvent::HookStarted {
        hook: which,
        command: command.to_owned(),
    });
    let url = spec.health_url();
    let withheld: Vec<String> = run
        .ctx
        .project
        .providers
        .values()
        .flat_map(|entry| entry.secrets.values().cloned())
        // The shared state's connection string and libpq's password variables are
        // credentials too.
        .chain(
            crate::workspace::STATE_CREDENTIAL_ENV
                .iter()
                .map(|name| (*name).to_owned()),
        )
        .collect();
    let env = HookEnv {
        project: &run.ctx.project.name,
        app: &spec.name,
        environment: spec.environment.as_deref(),
        domain: &spec.domain,
        url: &url,
        run_id: &run.run_id,
        secrets,
        withheld: &withheld,
    };
    let timeout = Duration::from_secs(u64::from(loaded.hooks.timeout));
    hooks::run(
        which.as_str(),
        command,
        &run.ctx.project.dir,
        &env,
        timeout,
        |line| {
            run.event(RunEvent::HookOutput {
                hook: which,
                line: line.to_owned(),
            });
        },
    )
    .await
    .map_err(RunFailure::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_deployments_are_polled_less_often() {
        assert_eq!(poll_ceiling(Duration::from_secs(1)), Duration::from_secs(3));
        assert_eq!(
            poll_ceiling(Duration::from_secs(15)),
            Duration::from_secs(3)
        );
        assert_eq!(
            poll_ceiling(Duration::from_secs(60)),
            Duration::from_secs(12)
        );
        assert_eq!(
            poll_ceiling(Duration::from_secs(600)),
            Duration::from_secs(20)
        );
    }
}
