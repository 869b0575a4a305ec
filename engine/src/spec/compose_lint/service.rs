//! The allow list for a service: every key Compose knows is either allowed as it is,
//! allowed under a rule, or refused with its reason; a key Compose does not know (or a
//! newer one, such as `use_api_socket`) is refused until someone decides.

use serde_yaml::{Mapping, Value};

use super::paths::{check_host_path, check_inside_project, is_host_path};
use super::read::{Reading, raw, untagged};
use super::{ADDABLE_CAPABILITIES, SECURITY_OPTIONS, check_shared_name, shell_unsafe};

/// Keys with no effect outside the container: resources, process, health, metadata.
const ALLOWED: &[&str] = &[
    "annotations",
    "attach",
    "blkio_config",
    "cap_drop",
    "command",
    "configs",
    "cpu_count",
    "cpu_percent",
    "cpu_period",
    "cpu_quota",
    "cpu_rt_period",
    "cpu_rt_runtime",
    "cpu_shares",
    "cpus",
    "cpuset",
    "depends_on",
    "dns",
    "dns_opt",
    "dns_search",
    "domainname",
    "entrypoint",
    "environment",
    "extra_hosts",
    "group_add",
    "healthcheck",
    "hostname",
    "image",
    "init",
    "links",
    "logging",
    "mac_address",
    "mem_limit",
    "mem_reservation",
    "mem_swappiness",
    "memswap_limit",
    "oom_kill_disable",
    "oom_score_adj",
    "pids_limit",
    "platform",
    "profiles",
    "pull_policy",
    "read_only",
    "restart",
    "scale",
    "secrets",
    "shm_size",
    "stdin_open",
    "stop_grace_period",
    "stop_signal",
    "storage_opt",
    "sysctls",
    "tmpfs",
    "tty",
    "ulimits",
    "user",
    "working_dir",
];

/// Keys Compose knows that are refused, and why.
const REFUSED: &[(&str, &str)] = &[
    (
        "pid",
        "shares another process namespace (the host's or another container's)",
    ),
    ("uts", "shares the host's UTS namespace"),
    ("userns_mode", "shares the host's user namespace"),
    (
        "cgroup_parent",
        "places the container in a cgroup of the host's choosing",
    ),
    ("devices", "gives the container host devices"),
    ("device_cgroup_rules", "lets the container use host devices"),
    ("gpus", "gives the container host devices"),
    ("runtime", "changes the runtime that confines the container"),
    ("isolation", "changes how the container is isolated"),
    ("credential_spec", "reads a credential from the server"),
    (
        "use_api_socket",
        "gives the container the Docker API, which is the host",
    ),
    (
        "env_file",
        "reads a file on the server into the container (Coolify's own `.env` is one)",
    ),
    ("label_file", "reads a file on the server"),
    ("external_links", "reaches containers outside this app"),
    ("provider", "runs a program on the server"),
    ("models", "runs a model runner on the server"),
    ("develop", "syncs files from the machine running Compose"),
    ("post_start", "runs commands that may be privileged"),
    ("pre_stop", "runs commands that may be privileged"),
    (
        "container_name",
        "fixes a name on the network every app shares; Coolify names containers",
    ),
];

/// `network_mode` values that keep the container in its own namespace.
const NETWORK_MODES: &[&str] = &["bridge", "none", "default"];
/// `ipc` values that keep the container's IPC its own.
const IPC_MODES: &[&str] = &["private", "shareable", "none"];

/// Checks one service of the document.
pub(super) fn check(
    name: &str,
    body: &Mapping,
    services: &Mapping,
    reading: &Reading,
) -> Result<(), String> {
    let at = |key: &str| format!("services.{name}.{key}");
    if !body.contains_key("image") && !body.contains_key("build") {
        return Err(format!("services.{name} has neither `image` nor `build`"));
    }
    for (key, value) in body {
        let key = key
            .as_str()
            .ok_or_else(|| format!("services.{name} has a key that is not a string"))?;
        if key.starts_with("x-") || ALLOWED.contains(&key) {
            continue;
        }
        if let Some((_, why)) = REFUSED.iter().find(|(refused, _)| *refused == key) {
            if reading.is_empty(value)? {
                continue;
            }
            return Err(format!("{} {why}, which is not allowed", at(key)));
        }
        checked(key, value, services, reading)
            .map_err(|problem| format!("{}{problem}", at(key)))?;
    }
    Ok(())
}

/// The rule of a key allowed under conditions; a problem starts with what follows the
/// key's path (` is …` or `: …`).
fn checked(key: &str, value: &Value, services: &Mapping, reading: &Reading) -> Result<(), String> {
    match key {
        "privileged" => {
            if reading.is_true(value)? {
                return Err(" is true; privileged containers are not allowed".to_owned());
            }
        }
        "network_mode" => namespace(value, NETWORK_MODES, reading)?,
        "ipc" => namespace(value, IPC_MODES, reading)?,
        "cgroup" => namespace(value, &["private"], reading)?,
        "cap_add" => {
            for cap in reading.scalars(Some(value)).map_err(colon)? {
                let bare = cap.trim().to_ascii_uppercase();
                let bare = bare.trim_start_matches("CAP_");
                if !ADDABLE_CAPABILITIES.contains(&bare) {
                    return Err(format!(
                        " adds `{cap}`, which a container may not add (allowed: Docker's defaults and IPC_LOCK; `ALL`, `SYS_ADMIN` and the like are equivalent to privileged)"
                    ));
                }
            }
        }
        "security_opt" => {
            for option in reading.scalars(Some(value)).map_err(colon)? {
                let compact: String = option
                    .split_whitespace()
                    .collect::<String>()
                    .to_ascii_lowercase();
                if !SECURITY_OPTIONS.contains(&compact.as_str()) {
                    return Err(format!(
                        " has `{option}`; only `no-new-privileges` is allowed, the others switch the container's confinement off or change it"
                    ));
                }
            }
        }
        "volumes" => {
            let list = untagged(value).as_sequence().ok_or(" is not a list")?;
            for volume in list {
                mount(volume, reading).map_err(colon)?;
            }
        }
        "volumes_from" => {
            for entry in reading.scalars(Some(value)).map_err(colon)? {
                let service = entry.split(':').next().unwrap_or_default();
                if entry.starts_with("container:") || !services.contains_key(service) {
                    return Err(format!(
                        ": `{entry}` is not a service of this document; mounting another container's volumes is not allowed"
                    ));
                }
            }
        }
        "labels" => labels(value, reading)?,
        "extends" => extends(value, services, reading)?,
        "build" => build(value, reading).map_err(colon)?,
        "networks" => networks(value)?,
        "deploy" => {
            let devices = untagged(value)
                .get("resources")
                .and_then(|r| r.get("reservations"))
                .and_then(|r| r.get("devices"));
            if let Some(devices) = devices
                && !reading.is_empty(devices)?
            {
                return Err(".resources.reservations.devices gives the container host devices, which is not allowed".to_owned());
            }
        }
        "ports" | "expose" => {
            let list = untagged(value).as_sequence().ok_or(" is not a list")?;
            for entry in list {
                port(entry, reading).map_err(colon)?;
            }
        }
        other => {
            return Err(format!(
                " is not a key Fabrik allows in a service (`{}`); see SECURITY.md, \"Templates\"",
                other.escape_debug()
            ));
        }
    }
    Ok(())
}

fn colon(problem: String) -> String {
    format!(": {problem}")
}

fn namespace(value: &Value, allowed: &[&str], reading: &Reading) -> Result<(), String> {
    let mode = reading.scalar(value).map_err(colon)?.unwrap_or_default();
    let mode = mode.trim();
    if mode.is_empty() || allowed.iter().any(|a| mode.eq_ignore_ascii_case(a)) {
        return Ok(());
    }
    Err(format!(
        " is `{mode}`; sharing the host's or another container's namespaces is not allowed (allowed: {})",
        allowed.join(", ")
    ))
}

fn extends(value: &Value, services: &Mapping, reading: &Reading) -> Result<(), String> {
    let service = match untagged(value) {
        Value::Mapping(m) => {
            if m.contains_key("file") {
                return Err(".file reads another file, which is not allowed; put the service in this template".to_owned());
            }
            m.get("service")
                .map(|s| reading.scalar(s))
                .transpose()
                .map_err(colon)?
                .flatten()
        }
        other => reading.scalar(other).map_err(colon)?,
    };
    match service {
        Some(service) if services.contains_key(service.as_str()) => Ok(()),
        _ => Err(": extends a service that is not in this document".to_owned()),
    }
}

/// Service-level `networks`: aliases are names on the shared network.
fn networks(value: &Value) -> Result<(), String> {
    if let Value::Mapping(networks) = untagged(value) {
        for (network, body) in networks {
            for alias in body
                .get("aliases")
                .and_then(Value::as_sequence)
                .into_iter()
                .flatten()
            {
                if let Some(alias) = raw(alias) {
                    check_shared_name(&alias).map_err(|problem| {
                        format!(".{}.aliases: {problem}", raw(network).unwrap_or_default())
                    })?;
                }
            }
        }
    }
    Ok(())
}

/// Labels the proxy or Coolify read are not the app's to set: the proxy every app of the
/// server shares routes by them (a `traefik.http.routers.*.rule` naming another app's
/// host takes its traffic; Coolify writes the app's own routes from its domain,
/// coollabsio/coolify bootstrap/helpers/parsers.php, where the service's labels are
/// merged with `defaultLabels` and the FQDN's proxy labels), and `coolify.*` labels are
/// how Coolify tells its containers apart (bootstrap/helpers/docker.php `defaultLabels`).
fn labels(value: &Value, reading: &Reading) -> Result<(), String> {
    let keys: Vec<String> = match untagged(value) {
        Value::Mapping(labels) => labels.keys().filter_map(raw).collect(),
        other => reading
            .scalars(Some(other))
            .map_err(colon)?
            .into_iter()
            .map(|label| label.split('=').next().unwrap_or_default().to_owned())
            .collect(),
    };
    for key in keys {
        let lower = key.trim().to_ascii_lowercase();
        if lower.starts_with("traefik.") || lower.starts_with("caddy") {
            return Err(format!(
                ": `{}` configures the proxy every app on the server shares, which is not allowed (Coolify writes the app's routes from its `domain`)",
                key.trim()
            ));
        }
        if lower.starts_with("coolify.") {
            return Err(format!(
                ": `{}` is one of Coolify's own labels, by which it tells containers apart, which is not allowed",
                key.trim()
            ));
        }
    }
    Ok(())
}

/// A build: its context and every other path inside the app, nothing that reaches the
/// server (`network: host`, forwarded SSH agents, entitlements, local caches).
fn build(value: &Value, reading: &Reading) -> Result<(), String> {
    let body = match untagged(value) {
        Value::Mapping(body) => body,
        other => return context(&reading.scalar(other)?.unwrap_or_default()),
    };
    for (key, value) in body {
        let key = key.as_str().unwrap_or_default();
        match key {
            "context" => context(&reading.scalar(value)?.unwrap_or_default())?,
            "dockerfile" => check_inside_project(&reading.scalar(value)?.unwrap_or_default())
                .map_err(|p| format!("dockerfile {p}"))?,
            "additional_contexts" => {
                let entries: Vec<String> = match untagged(value) {
                    Value::Mapping(m) => m
                        .values()
                        .map(|v| reading.scalar(v))
                        .collect::<Result<Vec<_>, _>>()?
                        .into_iter()
                        .flatten()
                        .collect(),
                    other => reading
                        .scalars(Some(other))?
                        .into_iter()
                        .map(|e| e.split_once('=').map_or(e.clone(), |(_, v)| v.to_owned()))
                        .collect(),
                };
                for entry in entries {
                    if !(entry.starts_with("service:") || entry.starts_with("docker-image://")) {
                        context(&entry)?;
                    }
                }
            }
            "network" => {
                let mode = reading.scalar(value)?.unwrap_or_default();
                if !NETWORK_MODES
                    .iter()
                    .any(|m| mode.trim().eq_ignore_ascii_case(m))
                {
                    return Err(format!(
                        "build.network `{mode}` is not allowed (allowed: {})",
                        NETWORK_MODES.join(", ")
                    ));
                }
            }
            "privileged" if reading.is_true(value)? => {
                return Err(
                    "build.privileged is true; privileged builds are not allowed".to_owned(),
                );
            }
            "cache_from" => {
                for entry in reading.scalars(Some(value))? {
                    if entry.contains("type=local") {
                        return Err(format!(
                            "build.cache_from `{entry}` reads the server's files"
                        ));
                    }
                }
            }
            "args" | "dockerfile_inline" | "extra_hosts" | "labels" | "no_cache" | "platforms"
            | "privileged" | "pull" | "secrets" | "shm_size" | "tags" | "target" | "ulimits" => {}
            other if other.starts_with("x-") => {}
            "ssh" | "entitlements" | "cache_to" | "isolation" => {
                if !reading.is_empty(value)? {
                    return Err(format!(
                        "build.{key} reaches the server (an SSH agent, host entitlements or files), which is not allowed"
                    ));
                }
            }
            other => {
                return Err(format!(
                    "build.{} is not a key Fabrik allows in a build",
                    other.escape_debug()
                ));
            }
        }
    }
    Ok(())
}

/// A build context: a remote (git or HTTP) or a directory inside the app.
fn context(context: &str) -> Result<(), String> {
    let remote = [
        "https://",
        "http://",
        "git://",
        "git@",
        "ssh://",
        "github.com/",
    ]
    .iter()
    .any(|scheme| context.starts_with(scheme));
    if remote {
        return Ok(());
    }
    check_inside_project(context).map_err(|p| format!("build context {p}"))
}

/// One `volumes` entry: the short form (`source:target[:mode]`) or the long form.
fn mount(volume: &Value, reading: &Reading) -> Result<(), String> {
    // Coolify hands the source and target to a shell and refuses these (checked on the
    // text it receives, before interpolation).
    let raw_texts: Vec<String> = match untagged(volume) {
        Value::Mapping(m) => ["source", "target"]
            .iter()
            .filter_map(|k| m.get(*k).and_then(raw))
            .collect(),
        other => raw(other).into_iter().collect(),
    };
    for text in &raw_texts {
        if let Some(bad) = shell_unsafe(text) {
            return Err(format!(
                "`{}` has `{}`, which Coolify refuses in a volume (it reaches a shell)",
                text.escape_debug(),
                bad.escape_debug()
            ));
        }
    }
    let (source, bind) = match untagged(volume) {
        Value::Mapping(m) => {
            // Coolify's extension: a file mount with its content inline. Its parser takes
            // the content out of the compose it keeps (coollabsio/coolify
            // bootstrap/helpers/parsers.php, `serviceParser`: `data_forget($yaml,
            // 'services.*.volumes.*.content')`), so what Coolify stores never equals what
            // was sent and a change to the content could not be seen.
            if m.contains_key("content") {
                return Err(
                    "`content` is taken out of the compose by Coolify when it stores it, so Fabrik could never tell whether it changed; put the file in the image, or pass its value in `env`"
                        .to_owned(),
                );
            }
            let source = m
                .get("source")
                .map(|s| reading.scalar(s))
                .transpose()?
                .flatten()
                .unwrap_or_default();
            let kind = m
                .get("type")
                .map(|s| reading.scalar(s))
                .transpose()?
                .flatten()
                .unwrap_or_default();
            let bind = kind.trim() == "bind" || is_host_path(&source);
            (source, bind)
        }
        other => {
            let text = reading.scalar(other)?.unwrap_or_default();
            let source = text.split(':').next().unwrap_or_default().to_owned();
            let bind = is_host_path(&source);
            (source, bind)
        }
    };
    if bind {
        check_host_path(&source)
    } else {
        Ok(())
    }
}

fn port(entry: &Value, reading: &Reading) -> Result<(), String> {
    match untagged(entry) {
        Value::Number(n) => n
            .as_u64()
            .filter(|p| (1..=65535).contains(p))
            .map(|_| ())
            .ok_or_else(|| format!("{n} is not a port number")),
        Value::String(_) => {
            let s = reading.scalar(entry)?.unwrap_or_default();
            let spec = s
                .strip_suffix("/tcp")
                .or_else(|| s.strip_suffix("/udp"))
                .unwrap_or(&s);
            // `[ip:]published:target`; an IPv6 address is bracketed.
            let ports = match spec.rfind(']') {
                Some(i) => spec[i + 1..].trim_start_matches(':'),
                None => spec,
            };
            let parts: Vec<&str> = ports.split(':').collect();
            let numeric = match parts.as_slice() {
                [target] => vec![*target],
                [published, target] => vec![*published, *target],
                [_ip, published, target] => vec![*published, *target],
                _ => return Err(format!("{s:?} is not a port mapping")),
            };
            for part in numeric {
                if !part.parse::<u16>().is_ok_and(|p| p > 0) {
                    return Err(format!("{s:?} has a non-numeric port `{part}`"));
                }
            }
            Ok(())
        }
        Value::Mapping(m) => {
            for key in ["target", "published"] {
                if let Some(v) = m.get(key) {
                    port(v, reading)?;
                }
            }
            Ok(())
        }
        other => Err(format!("{other:?} is not a port")),
    }
}
