//! The compose check: what a rendered template (a built-in or a project's own) may not
//! ask Docker for. It reads the document as Compose would run it: merge keys resolved
//! before (see `Template::render`), booleans in any spelling Compose accepts, mount
//! sources as normalised paths.
//!
//! Refused, in one place (README "Templates" and SECURITY.md point here):
//!
//! - `privileged` that Compose reads as true (`true`, `"true"`, `yes`, `on`, `1`, ...);
//! - sharing a host namespace: `network_mode`, `pid`, `ipc`, `uts`, `userns_mode` or
//!   `cgroup` set to `host`;
//! - adding a capability outside [`ADDABLE_CAPABILITIES`] (an allow list: Docker's
//!   defaults and `IPC_LOCK`; `NET_ADMIN`, `SYS_NICE`, `SYS_ADMIN`, `ALL`... are refused);
//! - switching confinement off in `security_opt`: [`UNCONFINED`];
//! - `devices` (a host device in the container);
//! - bind mounts of `/`, of a directory that holds the Docker socket, or of a host
//!   directory in [`HOST_PATHS`] (or below it: the system's directories, the Docker
//!   and Coolify data), after `.`/`..` are resolved; a relative
//!   source that climbs out of the project directory; a source with `$` or `~`, which
//!   Compose expands and this check cannot follow.
//!
//! Also refused because it cannot work: no `services`, no service of the name the
//! template header gives, a service with neither `image` nor `build`, ports that are not
//! numbers.

use serde_yaml::Value;

/// The capabilities `cap_add` may name, without the `CAP_` prefix: Docker's default set
/// (moby `oci/caps/defaults.go`; adding one is harmless, and usual after `cap_drop:
/// [ALL]`), plus `IPC_LOCK` (locking memory, for databases and vaults; bounded by the
/// memlock limit). Anything else widens what a web app can do to the host or its
/// neighbours (`NET_ADMIN` on the Docker network, `SYS_NICE`'s real-time scheduling
/// starving other apps of CPU, `SYS_PTRACE`, `BPF`, ...).
pub const ADDABLE_CAPABILITIES: &[&str] = &[
    "AUDIT_WRITE",
    "CHOWN",
    "DAC_OVERRIDE",
    "FOWNER",
    "FSETID",
    "KILL",
    "MKNOD",
    "NET_BIND_SERVICE",
    "NET_RAW",
    "SETFCAP",
    "SETGID",
    "SETPCAP",
    "SETUID",
    "SYS_CHROOT",
    "IPC_LOCK",
];

/// Capabilities named as such in the refusal: each gives the container the host.
const PRIVILEGED_CAPABILITIES: &[&str] = &[
    "ALL",
    "SYS_ADMIN",
    "SYS_MODULE",
    "SYS_RAWIO",
    "SYS_PTRACE",
    "DAC_READ_SEARCH",
    "BPF",
];

/// `security_opt` entries that switch confinement off (both separators Docker accepts).
pub const UNCONFINED: &[&str] = &[
    "seccomp:unconfined",
    "seccomp=unconfined",
    "apparmor:unconfined",
    "apparmor=unconfined",
    "label:disable",
    "label=disable",
    "systempaths=unconfined",
];

/// Host directories (and the Docker socket) a bind mount may not reach, nor contain.
pub const HOST_PATHS: &[&str] = &[
    // Runtime sockets (Docker's, containerd's, ...) and every service's data; cron's
    // spool (a crontab written there runs as its owner); a snap-installed Docker's data.
    "/run",
    "/var/run",
    "/var/lib",
    "/var/spool",
    "/var/snap",
    // Coolify's own data: the SSH keys to every server it manages (`/data/coolify/ssh`,
    // app/Models/PrivateKey.php), its database, every application's files.
    "/data/coolify",
    "/proc",
    "/sys",
    "/dev",
    "/etc",
    "/boot",
    "/root",
    "/home",
    "/usr",
    "/bin",
    "/sbin",
    "/lib",
    "/lib64",
];

const HOST_NAMESPACES: &[&str] = &["network_mode", "pid", "ipc", "uts", "userns_mode", "cgroup"];

/// Rejects compose documents that cannot work or would hand the host to the container.
pub fn lint(document: &Value, service: &str) -> Result<(), String> {
    let services = document
        .get("services")
        .and_then(Value::as_mapping)
        .filter(|s| !s.is_empty())
        .ok_or("it has no `services`")?;
    let Some(routed) = services.get(service) else {
        return Err(format!(
            "it has no service `{service}` (the one the template header names)"
        ));
    };
    if let Some(image) = routed.get("image").and_then(Value::as_str)
        && super::database_image::is_database(image, routed)
    {
        return Err(format!(
            "services.{service}.image `{image}` is one Coolify takes for a database, and a database gets no domain (Coolify refuses it); route the domain to the service that answers HTTP, or give this one an HTTP health check (`healthcheck.test` with curl or wget) so that Coolify sees an application"
        ));
    }
    for (name, body) in services {
        let name = name.as_str().ok_or("a service name is not a string")?;
        // Compose's alphabet for service names; Coolify also refuses shell metacharacters
        // in them (`validateDockerComposeForInjection`, bootstrap/helpers/parsers.php).
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        {
            return Err(format!(
                "service name `{}` has characters a service name may not have (letters, digits, `.`, `_` and `-`)",
                name.escape_debug()
            ));
        }
        let body = body
            .as_mapping()
            .ok_or_else(|| format!("services.{name} is not a mapping"))?;
        let at = |key: &str| format!("services.{name}.{key}");
        if !body.contains_key("image") && !body.contains_key("build") {
            return Err(format!("services.{name} has neither `image` nor `build`"));
        }
        if body.get("privileged").is_some_and(is_true) {
            return Err(format!(
                "{} is true; privileged containers are not allowed",
                at("privileged")
            ));
        }
        for key in HOST_NAMESPACES {
            if body
                .get(*key)
                .and_then(scalar)
                .is_some_and(|v| v.trim().eq_ignore_ascii_case("host"))
            {
                return Err(format!(
                    "{} is `host`; sharing the host's namespaces is not allowed",
                    at(key)
                ));
            }
        }
        for cap in strings(body.get("cap_add")) {
            let bare = cap.trim().to_ascii_uppercase();
            let bare = bare.trim_start_matches("CAP_");
            if PRIVILEGED_CAPABILITIES.contains(&bare) {
                return Err(format!(
                    "{} adds `{cap}`, which is equivalent to privileged",
                    at("cap_add")
                ));
            }
            if !ADDABLE_CAPABILITIES.contains(&bare) {
                return Err(format!(
                    "{} adds `{cap}`, which a container may not add (allowed: Docker's defaults and IPC_LOCK)",
                    at("cap_add")
                ));
            }
        }
        for option in strings(body.get("security_opt")) {
            let compact: String = option
                .split_whitespace()
                .collect::<String>()
                .to_ascii_lowercase();
            if UNCONFINED.contains(&compact.as_str()) {
                return Err(format!(
                    "{} has `{option}`, which switches the container's confinement off",
                    at("security_opt")
                ));
            }
        }
        if body.get("devices").is_some_and(|d| !is_empty(d)) {
            return Err(format!(
                "{} gives the container host devices, which is not allowed",
                at("devices")
            ));
        }
        if let Some(volumes) = body.get("volumes") {
            let list = volumes
                .as_sequence()
                .ok_or_else(|| format!("{} is not a list", at("volumes")))?;
            for volume in list {
                check_mount(volume).map_err(|problem| format!("{}: {problem}", at("volumes")))?;
            }
        }
        for key in ["ports", "expose"] {
            if let Some(ports) = body.get(key) {
                let list = ports
                    .as_sequence()
                    .ok_or_else(|| format!("{} is not a list", at(key)))?;
                for entry in list {
                    check_port_entry(entry).map_err(|problem| format!("{}: {problem}", at(key)))?;
                }
            }
        }
    }
    Ok(())
}

/// Whether Compose reads `value` as true: YAML's booleans, and the strings and numbers
/// its loader converts (`"true"`, `"yes"`, `"on"`, `"y"`, `"1"`, any case).
fn is_true(value: &Value) -> bool {
    match value {
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => matches!(
            s.trim().to_ascii_lowercase().as_str(),
            "true" | "yes" | "y" | "on" | "1" | "t"
        ),
        Value::Tagged(tagged) => is_true(&tagged.value),
        _ => false,
    }
}

/// A scalar as Compose reads it (a string, or a number or boolean written bare).
fn scalar(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(n.to_string()),
        Value::Tagged(tagged) => scalar(&tagged.value),
        _ => None,
    }
}

/// The scalars of a list (or of a single scalar where Compose takes one).
fn strings(value: Option<&Value>) -> Vec<String> {
    match value {
        Some(Value::Sequence(items)) => items.iter().filter_map(scalar).collect(),
        Some(other) => scalar(other).into_iter().collect(),
        None => Vec::new(),
    }
}

fn is_empty(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::Sequence(s) => s.is_empty(),
        Value::Mapping(m) => m.is_empty(),
        _ => false,
    }
}

/// One `volumes` entry: the short form (`source:target[:mode]`) or the long form.
/// What Coolify refuses in a service name or a volume's source or target, since it
/// passes them to a shell (`validateShellSafePath`, bootstrap/helpers/shared.php).
const SHELL_UNSAFE: &[&str] = &["`", "$(", "${", "|", "&", ";", "\n", "\r", "\t", ">", "<"];

fn shell_unsafe(text: &str) -> Option<&'static str> {
    SHELL_UNSAFE.iter().copied().find(|bad| text.contains(bad))
}

fn check_mount(volume: &Value) -> Result<(), String> {
    if let Value::Tagged(tagged) = volume {
        return check_mount(&tagged.value);
    }
    check_mount_source(volume)?;
    let texts: Vec<String> = match volume {
        Value::String(s) => vec![s.clone()],
        Value::Mapping(m) => ["source", "target"]
            .iter()
            .filter_map(|k| m.get(*k).and_then(scalar))
            .collect(),
        _ => Vec::new(),
    };
    for text in &texts {
        if let Some(bad) = shell_unsafe(text) {
            return Err(format!(
                "`{}` has `{}`, which Coolify refuses in a volume (it reaches a shell)",
                text.escape_debug(),
                bad.escape_debug()
            ));
        }
    }
    Ok(())
}

/// What a bind mount's source reaches.
fn check_mount_source(volume: &Value) -> Result<(), String> {
    let (source, bind) = match volume {
        Value::String(s) => {
            let source = s.split(':').next().unwrap_or_default().to_owned();
            // A named volume has no `/`, `.` or `~` at its start.
            let bind = source.starts_with(['/', '.', '~', '$']);
            (source, bind)
        }
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
            let source = m.get("source").and_then(scalar).unwrap_or_default();
            let kind = m.get("type").and_then(scalar).unwrap_or_default();
            let bind = kind == "bind" || source.starts_with(['/', '.', '~', '$']);
            (source, bind)
        }
        Value::Tagged(tagged) => return check_mount_source(&tagged.value),
        _ => return Ok(()),
    };
    if !bind {
        return Ok(());
    }
    if source.contains(['$', '~']) {
        return Err(format!(
            "`{source}` is expanded by Compose, so what it mounts cannot be checked; write the path"
        ));
    }
    let path = normalise(&source)
        .ok_or_else(|| format!("`{source}` climbs out of the project directory"))?;
    if !path.starts_with('/') {
        return Ok(());
    }
    let reaches = |host: &str| {
        path == "/"
            || path == host
            || host.starts_with(&format!("{path}/"))
            || path.starts_with(&format!("{host}/"))
    };
    if path.ends_with("docker.sock") || HOST_PATHS.iter().any(|host| reaches(host)) {
        return Err(format!(
            "`{source}` mounts `{path}`, which gives the container the host"
        ));
    }
    Ok(())
}

/// `source` with `.`, `..`, repeated and trailing `/` resolved: absolute stays absolute
/// (`..` at the root stays there, as the kernel does); a relative path that climbs
/// above its start is `None`.
fn normalise(source: &str) -> Option<String> {
    let absolute = source.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for part in source.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if parts.pop().is_none() && !absolute {
                    return None;
                }
            }
            other => parts.push(other),
        }
    }
    let joined = parts.join("/");
    Some(if absolute {
        format!("/{joined}")
    } else {
        joined
    })
}

fn check_port_entry(entry: &Value) -> Result<(), String> {
    match entry {
        Value::Number(n) => n
            .as_u64()
            .filter(|p| (1..=65535).contains(p))
            .map(|_| ())
            .ok_or_else(|| format!("{n} is not a port number")),
        Value::String(s) => {
            let spec = s
                .strip_suffix("/tcp")
                .or_else(|| s.strip_suffix("/udp"))
                .unwrap_or(s);
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
                    check_port_entry(v)?;
                }
            }
            Ok(())
        }
        other => Err(format!("{other:?} is not a port")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Parsed and merged as `Template::render` does.
    fn doc(text: &str) -> Value {
        let mut value: Value = serde_yaml::from_str(text).expect("test yaml");
        value.apply_merge().expect("merge");
        value
    }

    #[test]
    fn lint_rejects_unsafe_documents() {
        let cases = [
            ("services: {}", "no `services`"),
            ("services: {app: {restart: always}}", "neither"),
            (
                "services: {app: {image: x, privileged: true}}",
                "privileged",
            ),
            (
                "services: {app: {image: x, network_mode: host}}",
                "namespaces",
            ),
            (
                "services: {app: {image: x, ports: ['80a:80']}}",
                "non-numeric",
            ),
            (
                "services: {app: {image: x, ports: ['8000-8010:80']}}",
                "non-numeric",
            ),
            ("services: {app: {image: x, expose: [0]}}", "not a port"),
            (
                "services: {app: {image: x, volumes: ['/var/run/docker.sock:/s']}}",
                "docker.sock",
            ),
            (
                "services: {app: {image: x, volumes: [{type: bind, source: ./nginx.conf, target: /etc/nginx/nginx.conf, content: 'events {}'}]}}",
                "is taken out of the compose by Coolify",
            ),
            (
                "services: {app: {image: x, cap_add: [SYS_ADMIN]}}",
                "privileged",
            ),
            ("services: {web: {image: x}}", "no service `app`"),
        ];
        for (text, expected) in cases {
            let err = lint(&doc(text), "app").expect_err(text);
            assert!(err.contains(expected), "{text}: {err}");
        }
    }

    /// Issue 16, point 4: what passed the old check although Docker would run it.
    #[test]
    fn lint_reads_the_document_as_compose_runs_it() {
        let cases = [
            (
                "services: {app: {image: x, privileged: 'true'}}",
                "privileged",
            ),
            (
                "services: {app: {image: x, privileged: 'YES'}}",
                "privileged",
            ),
            ("services: {app: {image: x, privileged: 1}}", "privileged"),
            (
                "x-base: &base {privileged: true}\nservices:\n  app:\n    <<: *base\n    image: x\n",
                "privileged",
            ),
            ("services: {app: {image: x, pid: ' HOST'}}", "namespaces"),
            ("services: {app: {image: x, uts: host}}", "namespaces"),
            (
                "services: {app: {image: x, cap_add: [cap_sys_module]}}",
                "privileged",
            ),
            ("services: {app: {image: x, cap_add: ALL}}", "privileged"),
            (
                "services: {app: {image: x, security_opt: ['seccomp:unconfined']}}",
                "confinement",
            ),
            (
                "services: {app: {image: x, devices: ['/dev/sda:/dev/sda']}}",
                "devices",
            ),
            (
                "services: {app: {image: x, volumes: ['/var/run/../run/docker.sock:/s']}}",
                "gives the container the host",
            ),
            (
                "services: {app: {image: x, volumes: ['/var:/host']}}",
                "gives the container the host",
            ),
            (
                "services: {app: {image: x, volumes: ['//:/host']}}",
                "gives the container the host",
            ),
            (
                "services: {app: {image: x, volumes: ['/etc/:/e']}}",
                "gives the container the host",
            ),
            (
                "services: {app: {image: x, volumes: [{type: bind, source: /proc/1, target: /p}]}}",
                "gives the container the host",
            ),
            (
                "services: {app: {image: x, volumes: ['../../../../:/h']}}",
                "climbs out",
            ),
            (
                "services: {app: {image: x, volumes: ['${HOME}:/h']}}",
                "expanded",
            ),
            (
                "services: {app: {image: x, volumes: ['~/.ssh:/h']}}",
                "expanded",
            ),
            // Allowed before: a refusal list let them through.
            (
                "services: {app: {image: x, cap_add: [NET_ADMIN]}}",
                "may not add",
            ),
            (
                "services: {app: {image: x, cap_add: [CAP_SYS_TIME]}}",
                "may not add",
            ),
            (
                "services: {app: {image: x, cap_add: [SYS_NICE]}}",
                "may not add",
            ),
            (
                "services: {app: {image: x, volumes: ['/var/spool/cron/crontabs:/c']}}",
                "gives the container the host",
            ),
            (
                "services: {app: {image: x, volumes: ['/data/coolify/ssh/keys:/k:ro']}}",
                "gives the container the host",
            ),
            (
                "services: {app: {image: x, volumes: ['/data:/d']}}",
                "gives the container the host",
            ),
            (
                "services: {app: {image: x, volumes: ['/run/containerd/containerd.sock:/c']}}",
                "gives the container the host",
            ),
            (
                "services: {app: {image: x, volumes: ['/home/deploy/.ssh:/s']}}",
                "gives the container the host",
            ),
            // Coolify makes it a ServiceDatabase, which gets no domain.
            (
                "services: {app: {image: 'postgres:16'}}",
                "Coolify takes for a database",
            ),
            // Coolify hands them to a shell, and refuses them.
            (
                "services: {'app;rm': {image: x}, app: {image: x}}",
                "service name `app;rm`",
            ),
            (
                "services: {app: {image: x, volumes: ['data:/srv/$(id)']}}",
                "which Coolify refuses in a volume",
            ),
            (
                "services: {app: {image: x, volumes: [{type: volume, source: data, target: '/a|b'}]}}",
                "which Coolify refuses in a volume",
            ),
        ];
        for (text, expected) in cases {
            let err = lint(&doc(text), "app").expect_err(text);
            assert!(err.contains(expected), "{text}: {err}");
        }
    }

    #[test]
    fn lint_accepts_what_is_safe() {
        for ok in [
            "services: {app: {image: x, ports: [8080, '8080:80', '127.0.0.1:8080:80/tcp', '[::1]:8080:80', {target: 80, published: '8080'}], expose: [3000]}}",
            "services: {app: {image: x, privileged: 'false', network_mode: bridge, cap_add: [NET_BIND_SERVICE]}}",
            "services: {app: {image: x, cap_drop: [ALL], cap_add: [CHOWN, cap_setuid, SETGID, IPC_LOCK]}}",
            "services: {app: {image: x, volumes: ['/srv/media:/media:ro', '/data/uploads:/u', '/mnt/backups:/b']}}",
            "services: {app: {image: x, volumes: ['data:/var/lib/app', './static:/srv', '/srv/app/uploads:/u', {type: volume, source: cache, target: /c}]}}",
            "services: {app: {image: x, security_opt: ['no-new-privileges:true'], devices: []}}",
            // A database beside the app is fine, and so is a database image serving HTTP.
            "services: {app: {image: x}, db: {image: 'postgres:16'}}",
            "services: {app: {image: 'redis:7', healthcheck: {test: 'wget -q -O- http://localhost/health'}}}",
        ] {
            assert_eq!(lint(&doc(ok), "app"), Ok(()), "{ok}");
        }
    }

    #[test]
    fn paths_are_normalised_like_the_kernel_does() {
        assert_eq!(
            normalise("/var/run/../run/./docker.sock/").as_deref(),
            Some("/var/run/docker.sock")
        );
        assert_eq!(normalise("/../../etc").as_deref(), Some("/etc"));
        assert_eq!(normalise("//").as_deref(), Some("/"));
        assert_eq!(normalise("./a/../b").as_deref(), Some("b"));
        assert_eq!(normalise("./a/../../b"), None);
    }
}
