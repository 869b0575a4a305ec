//! `POST /deploy`, what it answered (or, without an answer, what Coolify queued), and
//! following a deployment to its end (`progress`).

use fabrik_provider_sdk::error::permanent;
use fabrik_provider_sdk::http::{self, Api, Delivery};
use fabrik_provider_sdk::{
    LogLevel, Method, ProgressReport, ProgressState, ProviderError, Resource,
};
use serde_json::{Value, json};

use crate::api;
use crate::desired::plural;
use crate::resources::resource_from;
use crate::state::{STATE, client};

/// `POST /deploy` (see `deploy_and_read`).
///
/// Always `force: true`. Without it, `queue_application_deployment`
/// (coollabsio/coolify bootstrap/helpers/applications.php) skips queueing while a
/// deployment of the same application and commit is queued or running (the commit of a
/// docker-image application is always `HEAD`), and `DeployController::deploy_resource`
/// still answers with a fresh deployment uuid that it never stored: the new image and
/// env would not be deployed, and the run would follow someone else's deployment. Forced,
/// a row is always created; for a docker image the only cost is no build cache, which a
/// pull does not use.
pub(crate) fn deploy_request(api: &Api, uuid: &str) -> fabrik_provider_sdk::http::Request {
    api::request(
        api,
        Method::Post,
        "/deploy",
        Some(&json!({ "uuid": uuid, "force": true })),
    )
    // A service's deploy parses its compose and starts it over SSH before Coolify
    // answers (`DeployController::deploy_resource`): longer than a read may take. The
    // host allows a changing request 120 s and the call 150 s.
    .timeout_ms(DEPLOY_TIMEOUT_MS)
}

/// How long a `POST /deploy` may take to answer.
pub(crate) const DEPLOY_TIMEOUT_MS: u32 = 100_000;

/// Deploys the resource and reads it back in one round trip: the read does not depend on
/// the deployment (it reads the settings and env just written). Returns the deployment
/// uuid of an application and the resource.
///
/// `written_env` is the env list when this instance knows it without reading it: the
/// rows it just upserted into a resource it just created (which holds no other row of
/// Fabrik's). Every request counts against Coolify's rate limit, shared by all the apps
/// of an apply.
pub(crate) fn deploy_and_read(
    kind: &str,
    uuid: &str,
    written_env: Option<Value>,
) -> Result<(Option<String>, Resource), ProviderError> {
    let api = client()?;
    let plural = plural(kind);
    let mut requests = vec![
        deploy_request(&api, uuid),
        api.get(&format!("/{plural}/{uuid}")),
    ];
    if written_env.is_none() {
        requests.push(api.get(&format!("/{plural}/{uuid}/envs")));
    }
    let mut answers = http::deliver_many(requests).into_iter();
    let (Some(deployed), Some(detail)) = (answers.next(), answers.next()) else {
        return Err(permanent("the host answered fewer requests than were sent"));
    };
    let envs = match written_env {
        Some(envs) => Ok(envs),
        None => match answers.next() {
            Some(answer) => api::answer(answer.into_result())
                .map_err(|f| f.error)
                .and_then(|r| r.json()),
            None => return Err(permanent("the host answered fewer requests than were sent")),
        },
    };
    let deployment = deployment_of(kind, uuid, deployed)?;
    let resource = resource_from(kind, uuid, api::answer(detail.into_result()), envs)?
        .ok_or_else(|| permanent(format!("the {kind} {uuid} cannot be read back")))?;
    Ok((deployment, resource))
}

/// What `POST /deploy` did for `uuid`: its answer says, or, when it has none that says
/// (no answer in time, a gateway's 502 or 504, Coolify's own 500 after it may have
/// queued), Coolify is asked before anything is sent again (`unanswered_deploy`).
pub(crate) fn deployment_of(
    kind: &str,
    uuid: &str,
    deployed: Delivery,
) -> Result<Option<String>, ProviderError> {
    let (error, status) = match deployed {
        Delivery::Answered(response) => {
            let status = response.status;
            match api::answer(Ok(response)) {
                Ok(reply) => return deployed_uuid(kind, uuid, &reply.json()?),
                Err(f) if matches!(status, 500 | 502 | 504) => (f.error, Some(status)),
                Err(f) => return Err(f.error),
            }
        }
        Delivery::Unanswered(error) => (error, None),
        Delivery::NotSent(error) => return Err(error),
    };
    unanswered_deploy(kind, uuid, error, status)
}

/// A `POST /deploy` that may have been acted on without saying so is never sent again
/// blind (two deployments of one configuration, a service restarted twice).
///
/// An application's deployment is queued before Coolify answers
/// (`queue_application_deployment`): if its newest deployment is queued or in progress,
/// that is this request's, and it is followed. Otherwise nothing was queued, and the
/// error stands (the engine retries the call).
///
/// A service is started before Coolify answers (`DeployController::deploy_resource` →
/// `StartService::run`), and nothing it shows tells a start that happened from one that
/// did not (its `config_hash` changes only with its images, domains and env). A request
/// that timed out, or that a gateway timed out (504), reached Coolify, which goes on
/// with it: it is taken as sent and the service's status is followed; sending it again
/// would recreate its containers a second time. Any other failure is retried.
pub(crate) fn unanswered_deploy(
    kind: &str,
    uuid: &str,
    error: ProviderError,
    status: Option<u16>,
) -> Result<Option<String>, ProviderError> {
    let reason = match status {
        Some(status) => format!("{status} from Coolify or a gateway before it"),
        None => "no answer in time".to_owned(),
    };
    if kind == "service" {
        if !matches!(status, None | Some(504)) {
            return Err(error);
        }
        fabrik_provider_sdk::log(
            LogLevel::Warn,
            &format!(
                "POST /deploy of service {uuid} got {reason}: Coolify starts a service before it answers, so the start is taken as sent and the service's status followed, not sent again"
            ),
        );
        STATE.with(|s| s.deployments.insert(uuid.to_owned(), String::new()))?;
        return Ok(None);
    }
    let newest = api::json(
        &client()?,
        Method::Get,
        &format!("/deployments/applications/{uuid}?skip=0&take=1"),
        None,
    )?;
    let queued = newest["deployments"]
        .as_array()
        .and_then(|list| list.first())
        .filter(|d| matches!(d["status"].as_str(), Some("queued" | "in_progress")))
        .and_then(|d| d["deployment_uuid"].as_str());
    let Some(deployment) = queued else {
        fabrik_provider_sdk::log(
            LogLevel::Info,
            &format!(
                "POST /deploy of application {uuid} got {reason} and Coolify has no queued or running deployment of it: it will be sent again"
            ),
        );
        return Err(error);
    };
    fabrik_provider_sdk::log(
        LogLevel::Info,
        &format!(
            "POST /deploy of application {uuid} got {reason}; Coolify has queued deployment {deployment}: following it, not deploying again"
        ),
    );
    STATE.with(|s| s.deployments.insert(uuid.to_owned(), deployment.to_owned()))?;
    Ok(Some(deployment.to_owned()))
}

/// What `POST /deploy` answered for `uuid`; remembers an application's deployment.
pub(crate) fn deployed_uuid(
    kind: &str,
    uuid: &str,
    reply: &Value,
) -> Result<Option<String>, ProviderError> {
    let entry = reply["deployments"]
        .as_array()
        .and_then(|d| d.iter().find(|e| e["resource_uuid"].as_str() == Some(uuid)))
        .cloned()
        .unwrap_or(Value::Null);
    if kind == "service" {
        STATE.with(|s| s.deployments.insert(uuid.to_owned(), String::new()))?;
        return Ok(None);
    }
    // A 200 without a deployment uuid is how Coolify reports a per-resource refusal.
    let Some(deployment) = entry["deployment_uuid"].as_str().filter(|d| !d.is_empty()) else {
        return Err(permanent(format!(
            "Coolify did not queue a deployment for application {uuid}: {}",
            entry["message"]
                .as_str()
                .unwrap_or("no deployment uuid in the answer")
        )));
    };
    STATE.with(|s| s.deployments.insert(uuid.to_owned(), deployment.to_owned()))?;
    Ok(Some(deployment.to_owned()))
}

pub(crate) fn with_deployment(mut resource: Resource, deployment: Option<String>) -> Resource {
    if let Some(deployment) = deployment {
        resource.outputs =
            json!({ "uuid": resource.id, "deployment_uuid": deployment }).to_string();
    }
    resource
}

pub(crate) fn deployment_progress(status: &str, detail: &str) -> ProgressReport {
    let (state, message) = match status {
        "queued" => (ProgressState::Pending, "deployment queued".to_owned()),
        "in_progress" => (ProgressState::Running, "deployment in progress".to_owned()),
        "finished" => (ProgressState::Ready, "deployment finished".to_owned()),
        "failed" => (
            ProgressState::Failed,
            format!("deployment failed ({detail})"),
        ),
        "cancelled-by-user" => (
            ProgressState::Failed,
            format!("deployment cancelled in Coolify ({detail})"),
        ),
        other => (
            ProgressState::Running,
            format!("deployment status `{other}`"),
        ),
    };
    ProgressReport {
        state,
        message: Some(message),
    }
}

pub(crate) fn application_progress(uuid: &str) -> Result<ProgressReport, ProviderError> {
    let known = STATE.with(|s| s.deployments.get(uuid).cloned())?;
    if let Some(deployment) = known.filter(|d| !d.is_empty()) {
        match api::call(
            &client()?,
            Method::Get,
            &format!("/deployments/{deployment}"),
            None,
        ) {
            Ok(reply) => {
                let value = reply.json()?;
                return Ok(deployment_progress(
                    value["status"].as_str().unwrap_or(""),
                    &format!("deployment {deployment}"),
                ));
            }
            // Coolify answered `POST /deploy` with this uuid but has no such deployment:
            // it did not queue one (the de-duplication quirk). Following the newest
            // deployment instead could report someone else's, with the old configuration.
            Err(f) if f.status == 404 => {
                return Ok(ProgressReport {
                    state: ProgressState::Failed,
                    message: Some(format!(
                        "Coolify answered deployment {deployment} but has no such deployment: it did not queue this configuration"
                    )),
                });
            }
            Err(f) => return Err(f.error),
        }
    }
    let list = api::json(
        &client()?,
        Method::Get,
        &format!("/deployments/applications/{uuid}?skip=0&take=1"),
        None,
    )?;
    let Some(latest) = list["deployments"]
        .as_array()
        .and_then(|d| d.first())
        .cloned()
    else {
        return Ok(ProgressReport {
            state: ProgressState::Failed,
            message: Some(format!("Coolify has no deployment for application {uuid}")),
        });
    };
    let id = latest["deployment_uuid"].as_str().unwrap_or("?").to_owned();
    Ok(deployment_progress(
        latest["status"].as_str().unwrap_or(""),
        &format!("deployment {id}"),
    ))
}

pub(crate) fn service_progress(uuid: &str) -> Result<ProgressReport, ProviderError> {
    let value = api::json(&client()?, Method::Get, &format!("/services/{uuid}"), None)?;
    let status = value["status"].as_str().unwrap_or("unknown").to_owned();
    let (state, message) = if status.starts_with("running:") {
        (ProgressState::Ready, format!("service is {status}"))
    } else if status.starts_with("starting") || status.starts_with("restarting") {
        (ProgressState::Running, format!("service is {status}"))
    } else if status.starts_with("degraded") {
        // Coolify's aggregate (app/Services/ContainerStatusAggregator.php) reports
        // `degraded` while a container restarts, or when one exited while the others run:
        // often a start in progress. Keep following it; the host's deploy timeout bounds
        // the wait, and this message says what to change if it never clears.
        (
            ProgressState::Running,
            format!(
                "service is {status}: a container is restarting or has exited while others run (a one-shot container needs `restart: \"no\"` or `exclude_from_hc: true` in the compose for Coolify to leave it out of the status)"
            ),
        )
    } else {
        // `exited` right after a start is the status job lagging: keep waiting.
        (ProgressState::Pending, format!("service is {status}"))
    };
    Ok(ProgressReport {
        state,
        message: Some(message),
    })
}
