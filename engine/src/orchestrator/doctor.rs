//! `fabrik doctor`: what an apply of a spec would meet, read without changing anything.
//! Each provider is asked only to look (`lookup`, `read`), never to create, update or
//! delete: the Coolify server and its address, the DNS zone, and what already exists at
//! the spec's names and whether this project owns it.

use std::net::IpAddr;

use super::desired;
use super::owner::owner_tag;
use super::verify::is_private;
use crate::domain::Role;
use crate::plugins::ProviderSet;
use crate::plugins::instance::ProviderInstance;
use crate::plugins::types::Resource;
use crate::project::Project;
use crate::secrets::EnvSource;
use crate::spec::LoadedSpec;

/// One check: what was looked at, and how it went.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Check {
    /// `coolify`, `dns`, or `project`.
    pub area: &'static str,
    /// What was looked at, in a few words (`server vps1`, `dns-record shop.example.com`).
    pub subject: String,
    #[serde(flatten)]
    pub verdict: Verdict,
}

/// How a check went.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Verdict {
    /// As an apply needs it.
    Ok { detail: String },
    /// An apply would be refused or fail here.
    Failed { problem: String, hint: String },
    /// Worth knowing; an apply would go on.
    Note { detail: String },
}

impl Check {
    fn ok(area: &'static str, subject: impl Into<String>, detail: impl Into<String>) -> Self {
        let (subject, detail) = (subject.into(), detail.into());
        Self {
            area,
            subject,
            verdict: Verdict::Ok { detail },
        }
    }

    fn failed(
        area: &'static str,
        subject: impl Into<String>,
        problem: impl Into<String>,
        hint: impl Into<String>,
    ) -> Self {
        let (subject, problem, hint) = (subject.into(), problem.into(), hint.into());
        Self {
            area,
            subject,
            verdict: Verdict::Failed { problem, hint },
        }
    }

    fn note(area: &'static str, subject: impl Into<String>, detail: impl Into<String>) -> Self {
        let (subject, detail) = (subject.into(), detail.into());
        Self {
            area,
            subject,
            verdict: Verdict::Note { detail },
        }
    }

    pub fn is_failed(&self) -> bool {
        matches!(self.verdict, Verdict::Failed { .. })
    }
}

/// The checks of one spec (or of the project's providers alone when `spec` is `None`).
pub async fn examine(
    project: &Project,
    providers: &ProviderSet,
    env: &EnvSource,
    spec: Option<&LoadedSpec>,
    verify: &super::verify::VerifyOptions,
) -> Vec<Check> {
    let mut checks = Vec::new();
    if project.named_after_directory {
        checks.push(Check::note(
            "project",
            format!("project {}", project.name),
            "no fabrik.toml: the project (and every owner tag) is named after its directory; `fabrik init` keeps the name",
        ));
    } else {
        checks.push(Check::ok(
            "project",
            format!("project {}", project.name),
            "named in fabrik.toml",
        ));
    }
    let mut coolify = match providers.instantiate(Role::Coolify, env).await {
        Ok(instance) => Some(instance),
        Err(error) => {
            checks.push(Check::failed(
                "coolify",
                "provider",
                error.to_string(),
                "set the variables fabrik.toml names for the coolify provider (COOLIFY_URL, COOLIFY_TOKEN by default), in the environment or .env",
            ));
            None
        }
    };
    let mut dns = match providers.instantiate(Role::Dns, env).await {
        Ok(instance) => Some(instance),
        Err(error) => {
            checks.push(Check::failed(
                "dns",
                "provider",
                error.to_string(),
                "set the variables fabrik.toml names for the dns provider (CLOUDFLARE_API_TOKEN by default), in the environment or .env",
            ));
            None
        }
    };
    let Some(loaded) = spec else {
        return checks;
    };
    let spec = &loaded.spec;
    let owner = owner_tag(&project.name, &spec.key());
    if let Some(coolify) = coolify.as_mut() {
        // As apply: a private address is accepted when a `--resolve` override names the
        // domain (a private setup, the sandbox).
        let overridden = super::verify::Resolve::find(&verify.resolve, &spec.domain, 443).is_some();
        checks.push(server(coolify, &spec.server, overridden).await);
        if let Some(check) = destination(coolify, loaded).await {
            checks.push(check);
        }
        let kind = loaded.rendered.coolify_resource.to_string();
        // Where apply would create it: a same-named resource in another project is not
        // in the way.
        let place = serde_json::json!({
            "project": spec.coolify.project,
            "environment": spec.coolify.environment,
        });
        checks.push(existing("coolify", coolify, &kind, &spec.name, &owner, Some(&place)).await);
    }
    if let Some(dns) = dns.as_mut() {
        checks.push(existing("dns", dns, desired::DNS_KIND, &spec.domain, &owner, None).await);
    }
    checks
}

/// The spec's server: found, with an address the DNS record can point at.
async fn server(coolify: &mut ProviderInstance, name: &str, overridden: bool) -> Check {
    let subject = format!("server {name}");
    match coolify.lookup("server", name, "", None).await {
        Ok(Some(found)) => {
            let ip = found.outputs["ip"].as_str().unwrap_or_default().to_owned();
            match ip.parse::<IpAddr>() {
                Ok(addr) if is_private(addr) && overridden => Check::note(
                    "coolify",
                    subject,
                    format!(
                        "found, with the private address {ip}: accepted because a --resolve override names the domain"
                    ),
                ),
                Ok(addr) if is_private(addr) => Check::failed(
                    "coolify",
                    subject,
                    format!(
                        "its address {ip} is private: the DNS record would point there and the health check refuses it"
                    ),
                    "a single-machine Coolify calls its own server `localhost` (127.0.0.1): add the machine by its public IP address as a server in Coolify, or use `--resolve` for a private setup",
                ),
                Ok(_) => Check::ok(
                    "coolify",
                    subject,
                    format!(
                        "found, address {ip}; the token can read (write and deploy are used only by apply)"
                    ),
                ),
                Err(_) => Check::failed(
                    "coolify",
                    subject,
                    format!("Coolify gives it no usable IP address ({ip:?})"),
                    "set the server's IP address in Coolify (Servers → the server → General)",
                ),
            }
        }
        Ok(None) => Check::failed(
            "coolify",
            subject,
            "Coolify has no server by that name",
            "check `server` in the spec against Coolify's Servers page (the token sees only its team's servers)",
        ),
        Err(error) => Check::failed(
            "coolify",
            subject,
            error.to_string(),
            hint_for(&error.to_string(), "Coolify"),
        ),
    }
}

/// The Docker destination a new resource would go to: the spec's `coolify.destination`
/// among the server's, or the server's only one (apply refuses the same way).
async fn destination(coolify: &mut ProviderInstance, loaded: &LoadedSpec) -> Option<Check> {
    let spec = &loaded.spec;
    let found = coolify
        .lookup("server", &spec.server, "", None)
        .await
        .ok()??;
    let outputs = match found.outputs.get("destinations") {
        Some(_) => found.outputs.clone(),
        None => coolify.read("server", &found.id).await.ok()??.outputs,
    };
    let subject = match &spec.coolify.destination {
        Some(name) => format!("destination {name}"),
        None => "destination".to_owned(),
    };
    Some(match desired::check_destination(spec, &outputs) {
        Ok(()) => Check::ok(
            "coolify",
            subject,
            "a new resource has a destination Coolify accepts",
        ),
        Err(problem) => Check::failed(
            "coolify",
            subject,
            problem,
            "set `coolify.destination` to one of the server's Docker destinations (Servers → the server → Destinations)",
        ),
    })
}

/// What exists at a name the apply will use, and whose it is.
async fn existing(
    area: &'static str,
    instance: &mut ProviderInstance,
    kind: &str,
    name: &str,
    owner: &str,
    desired: Option<&serde_json::Value>,
) -> Check {
    let subject = format!("{kind} {name}");
    let provider = if area == "dns" {
        "the DNS provider"
    } else {
        "Coolify"
    };
    match instance.lookup(kind, name, owner, desired).await {
        Ok(None) => Check::ok(area, subject, "nothing there yet: apply creates it"),
        Ok(Some(found)) if ours(&found, owner) => Check::ok(
            area,
            subject,
            format!("exists ({}) and is this app's: apply updates it", found.id),
        ),
        Ok(Some(found)) => {
            let tag = found.owner.clone().unwrap_or_default();
            let hint = if kind == desired::DNS_KIND {
                format!(
                    "apply refuses a record it did not create; to let Fabrik take this one over, set its comment to `{owner}` in the DNS provider's console (Cloudflare: the record's Comment field), or choose another domain"
                )
            } else {
                format!(
                    "apply refuses a resource it did not create; rename or remove it in Coolify, give the app another name, or set its description to `{owner}` to let Fabrik take it over"
                )
            };
            Check::failed(
                area,
                subject,
                if tag.is_empty() {
                    format!(
                        "exists ({}) without an owner tag: it was not created by Fabrik",
                        found.id
                    )
                } else {
                    format!("exists ({}) and belongs to `{tag}`", found.id)
                },
                hint,
            )
        }
        Err(error) => Check::failed(
            area,
            subject,
            error.to_string(),
            hint_for(&error.to_string(), provider),
        ),
    }
}

fn ours(found: &Resource, owner: &str) -> bool {
    found.owner.as_deref() == Some(owner)
}

/// A hint for a provider error, from what it says.
fn hint_for(error: &str, provider: &str) -> String {
    let lower = error.to_lowercase();
    if lower.contains("401") || lower.contains("unauthori") || lower.contains("unauthenticated") {
        format!(
            "{provider} refused the token: check it (a Coolify token is shown once, with its `N|` prefix)"
        )
    } else if lower.contains("403") || lower.contains("forbidden") || lower.contains("permission") {
        format!(
            "{provider} accepted the token but not this request: a Coolify token needs `read`, `write` and `deploy` and an admin or owner of its team; a Cloudflare token needs Zone:Read and DNS:Edit on the zone"
        )
    } else if lower.contains("zone") {
        "the token sees no zone for this domain: give it Zone:Read and DNS:Edit on that zone"
            .to_owned()
    } else {
        format!("check that {provider} is reachable from this machine and its URL is right")
    }
}
