//! The allow list for the document's top level and the resources it declares: volumes,
//! networks, secrets and configs. Each can reach the server (a volume's `driver_opts`
//! mount a host path or device, a secret's `file` reads one, a network can be the
//! host's) or another app (an `external` volume is somebody else's data).

use serde_yaml::{Mapping, Value};

use super::paths::{check_host_path, check_inside_project};
use super::read::{Reading, untagged};

/// Top-level keys besides `services` and `x-*` extensions.
pub(super) fn check(document: &Mapping, reading: &Reading) -> Result<(), String> {
    for (key, value) in document {
        let key = key.as_str().ok_or("a top-level key is not a string")?;
        let entries = || {
            untagged(value)
                .as_mapping()
                .map(|m| m.iter().collect::<Vec<_>>())
                .unwrap_or_default()
        };
        match key {
            "services" | "version" => {}
            other if other.starts_with("x-") => {}
            "volumes" => {
                for (name, body) in entries() {
                    volume(untagged(body), reading)
                        .map_err(|p| format!("volumes.{}{p}", name_of(name)))?;
                }
            }
            "networks" => {
                for (name, body) in entries() {
                    network(name_of(name), untagged(body), reading)
                        .map_err(|p| format!("networks.{}{p}", name_of(name)))?;
                }
            }
            "secrets" | "configs" => {
                for (name, body) in entries() {
                    file_source(untagged(body), reading)
                        .map_err(|p| format!("{key}.{}{p}", name_of(name)))?;
                }
            }
            "name" => {
                return Err("`name` sets the Compose project, which Coolify names; a name here could make this app's containers another's".to_owned());
            }
            "include" => {
                return Err("`include` reads other files on the server, which is not allowed; put the services in this template".to_owned());
            }
            other => {
                return Err(format!(
                    "`{}` is not a top-level key Fabrik allows (services, volumes, networks, secrets, configs, x-*)",
                    other.escape_debug()
                ));
            }
        }
    }
    Ok(())
}

fn name_of(key: &Value) -> String {
    key.as_str().unwrap_or("?").escape_debug().to_string()
}

/// A named volume: Docker's `local` driver, no `name` or `external` (which reach a volume
/// of another app, or Coolify's), and `driver_opts` that mount only a tmpfs, a network
/// share, or a bind of a host path the mount rules allow.
fn volume(body: &Value, reading: &Reading) -> Result<(), String> {
    let Value::Mapping(body) = body else {
        return Ok(());
    };
    for (key, value) in body {
        match key.as_str().unwrap_or_default() {
            "labels" => {}
            other if other.starts_with("x-") => {}
            "driver" => {
                let driver = reading.scalar(value).map_err(colon)?.unwrap_or_default();
                if !driver.trim().is_empty() && driver.trim() != "local" {
                    return Err(format!(
                        ".driver is `{driver}`; only Docker's `local` driver is allowed"
                    ));
                }
            }
            "driver_opts" => driver_opts(untagged(value), reading).map_err(colon)?,
            "name" | "external" => {
                return Err(
                    " names a volume outside this app (another app's data, or Coolify's); let Compose name it"
                        .to_owned(),
                );
            }
            other => {
                return Err(format!(
                    ".{} is not a key Fabrik allows in a volume",
                    other.escape_debug()
                ));
            }
        }
    }
    Ok(())
}

/// The local driver's options are `mount(8)`'s: `type`, `o` and `device`.
fn driver_opts(options: &Value, reading: &Reading) -> Result<(), String> {
    let Value::Mapping(options) = options else {
        return Ok(());
    };
    let read = |key: &str| -> Result<String, String> {
        Ok(options
            .get(key)
            .map(|v| reading.scalar(v))
            .transpose()?
            .flatten()
            .unwrap_or_default())
    };
    for key in options.keys() {
        let key = key.as_str().unwrap_or_default();
        if !matches!(key, "type" | "o" | "device") {
            return Err(format!(
                "driver option `{}` is not allowed",
                key.escape_debug()
            ));
        }
    }
    let kind = read("type")?.trim().to_ascii_lowercase();
    let flags = read("o")?;
    let device = read("device")?;
    let binds = flags
        .split(',')
        .any(|flag| matches!(flag.trim(), "bind" | "rbind"));
    if binds || kind == "none" {
        return check_host_path(device.trim());
    }
    match kind.as_str() {
        "tmpfs" | "nfs" | "nfs4" | "cifs" => Ok(()),
        "" if device.trim().is_empty() => Ok(()),
        _ => Err(format!(
            "type `{kind}` mounts a device of the server, which is not allowed (allowed: tmpfs, nfs, nfs4, cifs, or a bind of a path the mount rules allow)"
        )),
    }
}

/// A network: a bridge (or overlay) of this app, or an existing one by name, never the
/// host's.
fn network(key: String, body: &Value, reading: &Reading) -> Result<(), String> {
    let Value::Mapping(body) = body else {
        return Ok(());
    };
    let text = |key: &str| -> Result<Option<String>, String> {
        body.get(key)
            .map(|v| reading.scalar(v))
            .transpose()
            .map(Option::flatten)
            .map_err(colon)
    };
    // `external: {name: …}` is Compose's older spelling of an external network's name.
    let legacy_name = match body.get("external").map(untagged) {
        Some(Value::Mapping(external)) => external
            .get("name")
            .map(|n| reading.scalar(n))
            .transpose()
            .map_err(colon)?
            .flatten(),
        _ => None,
    };
    let external = match body.get("external").map(untagged) {
        Some(Value::Mapping(_)) => true,
        Some(value) => reading.is_true(value).map_err(colon)?,
        None => false,
    };
    let name = text("name")?.or(legacy_name).or(external.then_some(key));
    if let Some(name) = name
        && name.trim() == "host"
    {
        return Err(format!(
            " is Docker's `{}` network, which puts the container on the host's network; it is not allowed",
            name.trim()
        ));
    }
    if let Some(driver) = text("driver")?
        && !matches!(driver.trim(), "" | "bridge" | "overlay")
    {
        return Err(format!(
            ".driver is `{driver}`; only `bridge` and `overlay` are allowed (`host`, `macvlan` and `ipvlan` put the container on the host's network)"
        ));
    }
    Ok(())
}

/// A secret or config: its content from the spec's environment or inline, or a file
/// inside the app; never an external one or a file elsewhere on the server.
fn file_source(body: &Value, reading: &Reading) -> Result<(), String> {
    let Value::Mapping(body) = body else {
        return Ok(());
    };
    for (key, value) in body {
        match key.as_str().unwrap_or_default() {
            "environment" | "content" | "name" | "labels" | "template_driver" => {}
            other if other.starts_with("x-") => {}
            "file" => {
                let file = reading.scalar(value).map_err(colon)?.unwrap_or_default();
                check_inside_project(file.trim()).map_err(|p| format!(".file {p}"))?;
            }
            "external" | "driver" | "driver_opts" => {
                return Err(format!(
                    ".{} reaches a secret outside this app, which is not allowed",
                    key.as_str().unwrap_or_default()
                ));
            }
            other => {
                return Err(format!(
                    ".{} is not a key Fabrik allows here",
                    other.escape_debug()
                ));
            }
        }
    }
    Ok(())
}

fn colon(problem: String) -> String {
    format!(": {problem}")
}
