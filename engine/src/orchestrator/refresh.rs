//! Drift detection before a no-op: every live resource read back and compared with what
//! the last completed run deployed.

use std::collections::BTreeMap;

use secrecy::SecretString;

use super::context::Context;
use super::desired::with_secrets;
use super::drift;
use super::run::{Instances, retried};
use crate::domain::Role;
use crate::plugins::instance::ProviderInstance;
use crate::plugins::types::ProviderError;
use crate::store::ResourceRow;

/// What reading back the live resources found.
#[derive(Debug, Default)]
pub(crate) struct Refreshed {
    /// What is gone or different (secret values never shown).
    pub drift: Vec<String>,
    /// What could not be read, after the retries, and why: not drift (nothing is known
    /// to differ), and not read again by the run (one level of retries, issue 27).
    pub unreadable: Vec<(String, ProviderError)>,
}

/// Reads every live resource, each provider's alongside the other's, and compares it with
/// what the last completed run deployed. The record is compared with the server's address
/// now, which may have changed since.
pub(crate) async fn refresh(
    ctx: &Context<'_>,
    spec: &crate::spec::Spec,
    rows: &[ResourceRow],
    values: &BTreeMap<String, SecretString>,
    instances: &mut Instances,
) -> Refreshed {
    let key = spec.key();
    let (app, server, secret_names) = (key.as_str(), spec.server.as_str(), &spec.secrets);
    if ctx.options.no_refresh {
        return Refreshed::default();
    }
    let read_all = async |instance: &mut ProviderInstance, role: Role| {
        let mut read = Vec::new();
        for row in rows.iter().filter(|r| r.is_live() && r.provider == role) {
            let id = row.external_id.clone().unwrap_or_default();
            let found = retried(
                ctx.observer,
                ctx.options.backoff,
                app,
                None,
                "refresh",
                async || instance.read(&row.kind, &id).await,
            )
            .await;
            read.push((row, found));
        }
        read
    };
    let Instances {
        coolify,
        dns,
        monitor,
    } = instances;
    let ((address, mut read), dns_read, monitor_read) = tokio::join!(
        async {
            let address = retried(
                ctx.observer,
                ctx.options.backoff,
                app,
                None,
                "server lookup",
                async || coolify.lookup("server", server, "", None).await,
            )
            .await;
            (address, read_all(coolify, Role::Coolify).await)
        },
        read_all(dns, Role::Dns),
        async {
            match monitor {
                Some(monitor) => read_all(monitor, Role::Monitor).await,
                None => Vec::new(),
            }
        }
    );
    read.extend(dns_read);
    read.extend(monitor_read);
    let mut found_drift = Vec::new();
    let mut unreadable = Vec::new();
    let ip = match address {
        Ok(Some(found)) => found.outputs["ip"].as_str().map(str::to_owned),
        Ok(None) => {
            found_drift.push(format!("Coolify has no server named `{server}` any more"));
            None
        }
        Err(e) => {
            unreadable.push((format!("Coolify server `{server}`"), e));
            None
        }
    };
    for (row, found) in read {
        match found {
            Ok(Some(found)) => {
                let mut desired = row
                    .desired
                    .as_ref()
                    .map(|d| with_secrets(d, values))
                    .unwrap_or_default();
                if row.provider == Role::Dns
                    && let Some(ip) = &ip
                {
                    desired["content"] = serde_json::json!(ip);
                }
                let comparison = drift::compare(&row.kind, &desired, &found.live, secret_names);
                found_drift.extend(
                    comparison
                        .differences
                        .into_iter()
                        .map(|d| format!("{} {}: {d}", row.kind, row.name)),
                );
            }
            // `not-found` means gone (docs/providers.md, "Errors and retries").
            Ok(None) | Err(ProviderError::NotFound(_)) => {
                found_drift.push(format!("{} {} is gone", row.kind, row.name));
            }
            Err(e) => unreadable.push((format!("{} {}", row.kind, row.name), e)),
        }
    }
    Refreshed {
        drift: found_drift,
        unreadable,
    }
}
