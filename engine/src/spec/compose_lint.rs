//! The compose check: what a rendered template (a built-in or a project's own) may ask
//! Docker for. It is an allow list over the whole Compose model, read as Compose reads
//! it: merge keys resolved (see `Template::render`), every value interpolated as Compose
//! interpolates it (`interpolate`), twice (with the spec's `env`, as Coolify's `.env`
//! holds it, and with nothing, as when it was removed on the server), then cast
//! (booleans in any spelling Compose accepts; mount sources as normalised paths). A
//! checked value may not use a variable the spec does not define (a secret, or one set
//! on the server), nor one the server's shell sets for Compose (`HOME`, `PATH`, …: the
//! process environment wins over `.env`), nor more than one variable (the two readings
//! cover the states of one, not the combinations of several), nor `$$` inside `${…}`
//! (compose-go's brace matching reads it otherwise): what it becomes cannot be known.
//!
//! The rules, in one place (README "Templates" and SECURITY.md point here):
//!
//! - Top level (`top_level`): `services`, `volumes`, `networks`, `secrets`, `configs`
//!   and `x-*`; nothing else (`include` reads other files, `name` would name the
//!   project Coolify names). Volumes use the `local` driver, are never `external` or
//!   `name`d (another app's data), and their `driver_opts` mount only a tmpfs, a network
//!   share or a bind the mount rules allow; networks are never the host's; secrets and
//!   configs come from `environment`, `content` or a `file` inside the app.
//! - Services (`service`): the keys with no effect outside the container pass; the rest
//!   have a rule: `privileged` never true; `network_mode`, `ipc`, `cgroup` keep their own
//!   namespace (no `host`, `container:`, `service:`); `cap_add` within
//!   [`ADDABLE_CAPABILITIES`]; `security_opt` within [`SECURITY_OPTIONS`]; `volumes`:
//!   bind mounts never of `/`, the Docker socket or [`HOST_PATHS`] (after `.`/`..` are
//!   resolved), never climbing out of the project, never `~`; `volumes_from` and
//!   `extends` only of this document's services; `build` contexts, Dockerfiles and extra
//!   contexts inside the app or remote, no `network: host`, SSH agent, entitlements or
//!   local caches; ports numeric. Refused with their reason: `pid`, `uts`,
//!   `userns_mode`, `cgroup_parent`, `devices`, `device_cgroup_rules`, `gpus`,
//!   `runtime`, `use_api_socket`, `env_file`, `label_file`, `external_links`,
//!   `provider`, `post_start`, `pre_stop`, `container_name` and the rest of `REFUSED`.
//!   A key Compose adds later is refused until it is added here.
//! - Names on the network every app shares (service names, network aliases) do not start
//!   with `coolify`, and service names keep Compose's alphabet; volume sources and
//!   targets have none of the shell metacharacters Coolify refuses (checked on the text
//!   Coolify receives).
//!
//! Also refused because it cannot work: no `services`, no service of the name the
//! template header gives, a service with neither `image` nor `build`, a database image
//! as the routed service, invalid interpolation.

mod interpolate;
mod paths;
mod read;
mod service;
mod top_level;

use std::collections::BTreeMap;

use serde_yaml::Value;

pub use paths::HOST_PATHS;

use interpolate::Variables;
use read::Reading;

/// The capabilities `cap_add` may name, without the `CAP_` prefix: Docker's default set
/// (moby `oci/caps/defaults.go`; adding one is harmless, and usual after `cap_drop:
/// [ALL]`), plus `IPC_LOCK` (locking memory, for databases and vaults; bounded by the
/// memlock limit). Anything else widens what a web app can do to the host or its
/// neighbours (`SYS_ADMIN`, `NET_ADMIN` on the Docker network, `SYS_NICE`'s real-time
/// scheduling starving other apps of CPU, `SYS_PTRACE`, `BPF`, ...).
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

/// The `security_opt` entries allowed (whitespace removed, lower case): turning
/// privilege escalation off. Every other option switches confinement off
/// (`seccomp=unconfined`, `apparmor=unconfined`, `label=disable`,
/// `systempaths=unconfined`), swaps its profile, or relabels the container
/// (`label=type:spc_t`).
pub const SECURITY_OPTIONS: &[&str] = &[
    "no-new-privileges",
    "no-new-privileges:true",
    "no-new-privileges=true",
    "no-new-privileges:false",
    "no-new-privileges=false",
];

/// Checks a compose document (merge keys resolved) for the template whose routed
/// service is `service`, for a spec whose `env` is `env`.
pub fn lint(document: &Value, service: &str, env: &BTreeMap<String, String>) -> Result<(), String> {
    let services = document
        .get("services")
        .and_then(Value::as_mapping)
        .filter(|s| !s.is_empty())
        .ok_or("it has no `services`")?;
    let top = document.as_mapping().ok_or("it is not a mapping")?;
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
    for name in services.keys() {
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
        check_shared_name(name).map_err(|problem| format!("service name {problem}"))?;
    }
    let nothing = BTreeMap::new();
    for values in [env, &nothing] {
        let reading = Reading {
            variables: Variables { values, known: env },
        };
        top_level::check(top, &reading)?;
        for (name, body) in services {
            let name = name.as_str().unwrap_or_default();
            let body = read::untagged(body)
                .as_mapping()
                .ok_or_else(|| format!("services.{name} is not a mapping"))?;
            service::check(name, body, services, &reading)?;
        }
    }
    Ok(())
}

/// Coolify's own containers (`coolify`, `coolify-db`, `coolify-redis`,
/// `coolify-realtime`, `coolify-proxy`) answer to their names on the network every app
/// shares; a container answering to one of them would receive their connections.
fn check_shared_name(name: &str) -> Result<(), String> {
    if name.to_ascii_lowercase().starts_with("coolify") {
        return Err(format!(
            "`{}` starts with `coolify`: Coolify's own containers answer to such names on the network every app shares",
            name.escape_debug()
        ));
    }
    Ok(())
}

/// What Coolify refuses in a service name or a volume's source or target, since it
/// passes them to a shell (`validateShellSafePath`, bootstrap/helpers/shared.php).
const SHELL_UNSAFE: &[&str] = &["`", "$(", "${", "|", "&", ";", "\n", "\r", "\t", ">", "<"];

fn shell_unsafe(text: &str) -> Option<&'static str> {
    SHELL_UNSAFE.iter().copied().find(|bad| text.contains(bad))
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
            let err = lint(&doc(text), "app", &BTreeMap::new()).expect_err(text);
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
            ("services: {app: {image: x, pid: ' HOST'}}", "namespace"),
            ("services: {app: {image: x, uts: host}}", "namespace"),
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
                "which Coolify refuses in a volume",
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
            let err = lint(&doc(text), "app", &BTreeMap::new()).expect_err(text);
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
            // What the allow list keeps: named volumes, networks, secrets from the app.
            "services: {app: {image: x, volumes: ['data:/d', 'tmp:/t', 'share:/s'], networks: [n], secrets: [k], configs: [c]}}\nvolumes: {data: {}, tmp: {driver: local, driver_opts: {type: tmpfs, device: tmpfs, o: 'size=100m'}}, share: {driver_opts: {type: none, o: bind, device: /srv/share}}}\nnetworks: {n: {driver: bridge}, coolify: {external: true}}\nsecrets: {k: {environment: API_KEY}}\nconfigs: {c: {file: ./conf/app.ini}}\nx-note: free",
            "services: {app: {build: {context: 'https://github.com/acme/app.git#0123abc', dockerfile_inline: 'FROM x', args: {A: b}}, network_mode: bridge, ipc: shareable, cgroup: private, volumes_from: [db], extends: db, deploy: {resources: {limits: {cpus: '0.5'}}}}, db: {image: y, networks: {default: {aliases: [database]}}}}",
            "services: {app: {build: {context: ./app, dockerfile: Dockerfile.prod, additional_contexts: {base: 'docker-image://alpine:3', shared: ./shared}}}}",
        ] {
            assert_eq!(lint(&doc(ok), "app", &BTreeMap::new()), Ok(()), "{ok}");
        }
    }

    fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    /// Issue 28, point 1: what the refusal list let through, each spelling refused by the
    /// allow list (the top level, keys it never read, `container:`/`service:` modes, and
    /// every checked key through interpolation).
    #[test]
    fn the_allow_list_refuses_what_the_refusal_list_let_through() {
        let spec_env = env(&[("MODE", "host"), ("ON", "yes"), ("ROOT", "/")]);
        let cases = [
            // A named volume whose driver options bind-mount the host's `/`.
            (
                "services: {app: {image: x, volumes: ['data:/d']}}\nvolumes: {data: {driver_opts: {type: none, o: bind, device: /}}}",
                "volumes.data: `/` mounts `/`",
            ),
            (
                "services: {app: {image: x}}\nvolumes: {data: {driver_opts: {type: ext4, device: /dev/sda1}}}",
                "mounts a device of the server",
            ),
            (
                "services: {app: {image: x}}\nvolumes: {data: {external: true, name: coolify-db}}",
                "names a volume outside this app",
            ),
            (
                "services: {app: {image: x}}\nvolumes: {data: {driver: rclone}}",
                "only Docker's `local` driver",
            ),
            // Top-level secrets and configs read from anywhere on the server.
            (
                "services: {app: {image: x, secrets: [k]}}\nsecrets: {k: {file: /data/coolify/ssh/keys/id.root@host.docker.internal}}",
                "secrets.k.file `/data/coolify/ssh/keys/id.root@host.docker.internal` is outside",
            ),
            (
                "services: {app: {image: x}}\nconfigs: {c: {file: ../../ssh/keys/k}}",
                "configs.c.file `../../ssh/keys/k` climbs out",
            ),
            (
                "services: {app: {image: x}}\ninclude: [/etc/x.yaml]",
                "`include` reads",
            ),
            (
                "services: {app: {image: x}}\nname: other-app",
                "`name` sets the Compose project",
            ),
            (
                "services: {app: {image: x}}\nmodels: {m: {model: x}}",
                "`models` is not a top-level key",
            ),
            (
                "services: {app: {image: x, networks: [h]}}\nnetworks: {h: {name: host, external: true}}",
                "Docker's `host` network",
            ),
            (
                "services: {app: {image: x}}\nnetworks: {host: {external: true}}",
                "Docker's `host` network",
            ),
            (
                "services: {app: {image: x}}\nnetworks: {n: {driver: macvlan}}",
                "only `bridge` and `overlay`",
            ),
            // Service keys the old check never read.
            (
                "services: {app: {image: x, env_file: /data/coolify/source/.env}}",
                "services.app.env_file reads a file",
            ),
            (
                "services: {app: {image: x, env_file: [{path: ./.env}]}}",
                "services.app.env_file reads a file",
            ),
            (
                "services: {app: {image: x, volumes_from: ['container:coolify']}}",
                "services.app.volumes_from: `container:coolify`",
            ),
            (
                "services: {app: {image: x, volumes_from: [other]}}",
                "is not a service of this document",
            ),
            (
                "services: {app: {image: x, pid: 'container:coolify'}}",
                "services.app.pid shares",
            ),
            (
                "services: {app: {image: x, pid: 'service:db'}, db: {image: y}}",
                "services.app.pid shares",
            ),
            (
                "services: {app: {image: x, network_mode: 'container:coolify'}}",
                "sharing the host's or another container's namespaces",
            ),
            (
                "services: {app: {image: x, network_mode: 'service:db'}, db: {image: y}}",
                "sharing the host's or another container's namespaces",
            ),
            (
                "services: {app: {image: x, ipc: 'container:coolify-db'}}",
                "sharing the host's or another container's namespaces",
            ),
            (
                "services: {app: {image: x, ipc: host}}",
                "sharing the host's",
            ),
            (
                "services: {app: {image: x, cgroup: host}}",
                "sharing the host's",
            ),
            (
                "services: {app: {image: x, device_cgroup_rules: ['c 1:3 mr']}}",
                "device_cgroup_rules lets the container use host devices",
            ),
            (
                "services: {app: {image: x, gpus: all}}",
                "services.app.gpus gives",
            ),
            (
                "services: {app: {image: x, deploy: {resources: {reservations: {devices: [{capabilities: [gpu]}]}}}}}",
                "reservations.devices",
            ),
            (
                "services: {app: {image: x, security_opt: ['label=type:spc_t']}}",
                "only `no-new-privileges` is allowed",
            ),
            (
                "services: {app: {image: x, security_opt: ['seccomp=/etc/profile.json']}}",
                "only `no-new-privileges` is allowed",
            ),
            (
                "services: {app: {image: x, security_opt: ['apparmor = unconfined']}}",
                "only `no-new-privileges` is allowed",
            ),
            (
                "services: {app: {build: {context: /}}}",
                "build context `/` is outside",
            ),
            (
                "services: {app: {build: ../..}}",
                "build context `../..` climbs out",
            ),
            (
                "services: {app: {build: {context: ., dockerfile: /etc/shadow}}}",
                "dockerfile `/etc/shadow` is outside",
            ),
            (
                "services: {app: {build: {context: ., additional_contexts: {etc: /etc}}}}",
                "build context `/etc` is outside",
            ),
            (
                "services: {app: {build: {context: ., network: host}}}",
                "build.network `host`",
            ),
            (
                "services: {app: {build: {context: ., ssh: [default]}}}",
                "build.ssh reaches the server",
            ),
            (
                "services: {app: {build: {context: ., entitlements: [network.host]}}}",
                "build.entitlements reaches",
            ),
            (
                "services: {app: {build: {context: ., privileged: true}}}",
                "privileged builds",
            ),
            (
                "services: {app: {image: x, extends: {file: /etc/x.yaml, service: s}}}",
                "extends.file reads another file",
            ),
            (
                "services: {app: {image: x, use_api_socket: true}}",
                "gives the container the Docker API",
            ),
            (
                "services: {app: {image: x, runtime: runc-unconfined}}",
                "changes the runtime",
            ),
            (
                "services: {app: {image: x, cgroup_parent: /}}",
                "cgroup_parent",
            ),
            (
                "services: {app: {image: x, post_start: [{command: id, privileged: true}]}}",
                "post_start runs commands",
            ),
            (
                "services: {app: {image: x, external_links: ['coolify-db:db']}}",
                "external_links reaches containers",
            ),
            (
                "services: {app: {image: x, container_name: coolify-db}}",
                "container_name fixes a name",
            ),
            (
                "services: {app: {image: x, future_key: 1}}",
                "services.app.future_key is not a key Fabrik allows",
            ),
            (
                "services: {app: {image: x}, coolify-db: {image: y}}",
                "service name `coolify-db` starts with `coolify`",
            ),
            (
                "services: {app: {image: x, networks: {default: {aliases: [coolify-redis]}}}}",
                "aliases: `coolify-redis` starts with `coolify`",
            ),
            // Through interpolation: Compose interpolates, then casts.
            (
                "services: {app: {image: x, privileged: '${ON}'}}",
                "privileged containers are not allowed",
            ),
            (
                "services: {app: {image: x, privileged: '${UNSET:-true}'}}",
                "`$UNSET`, whose value is not in the spec",
            ),
            (
                "services: {app: {image: x, network_mode: '${MODE}'}}",
                "is `host`",
            ),
            (
                "services: {app: {image: x, network_mode: '${MODE_UNSET-host}'}}",
                "`$MODE_UNSET`, whose value is not in the spec",
            ),
            (
                "services: {app: {image: x, cap_add: ['${SECRET}']}}",
                "`$SECRET`, whose value is not in the spec",
            ),
            (
                "services: {app: {image: x, cap_add: ['SYS_${X:-ADMIN}']}}",
                "whose value is not in the spec",
            ),
            (
                "services: {app: {image: x, volumes: ['data:/d']}}\nvolumes: {data: {driver_opts: {type: none, o: bind, device: '${ROOT}'}}}",
                "mounts `/`",
            ),
            (
                "services: {app: {build: {context: '${ROOT}'}}}",
                "build context `/` is outside",
            ),
            (
                "services: {app: {image: x, privileged: '${'}}",
                "not valid Compose interpolation",
            ),
            // Found by review: brace matching, mixed readings, the server's shell, the
            // legacy external network spelling, more host directories.
            (
                "services: {app: {image: x, volumes: ['d:/d']}}\nvolumes: {d: {driver_opts: {type: none, o: bind, device: '${ROOT:-$${}}etc'}}}",
                "not valid Compose interpolation",
            ),
            (
                "services: {app: {image: x, volumes: ['d:/d']}}\nvolumes: {d: {driver_opts: {type: none, o: bind, device: '${ON:+${ROOT:-/}}etc'}}}",
                "uses several variables",
            ),
            (
                "services: {app: {image: x, volumes: ['d:/d']}}\nvolumes: {d: {driver_opts: {type: none, o: bind, device: '$HOME'}}}",
                "`$HOME`, whose value is not in the spec",
            ),
            (
                "services: {app: {image: x, networks: [h]}}\nnetworks: {h: {external: {name: host}}}",
                "Docker's `host` network",
            ),
            (
                "services: {app: {image: x, volumes: ['/var/backups:/b']}}",
                "gives the container the host",
            ),
            (
                "services: {app: {image: x, volumes: ['/tmp:/t']}}",
                "gives the container the host",
            ),
            // Labels the shared proxy routes by (another app's host taken), in both forms
            // and interpolated, and Coolify's own.
            (
                "services: {app: {image: x, labels: {'traefik.http.routers.x.rule': 'Host(`bank.example.com`)'}}}",
                "`traefik.http.routers.x.rule` configures the proxy every app on the server shares",
            ),
            (
                "services: {app: {image: x, labels: ['Traefik.enable=true']}}",
                "configures the proxy",
            ),
            (
                "services: {app: {image: x, labels: ['${MODE}=x', 'caddy_0=bank.example.com']}}",
                "`caddy_0` configures the proxy",
            ),
            (
                "services: {app: {image: x, labels: {coolify.applicationId: '7'}}}",
                "one of Coolify's own labels",
            ),
        ];
        let mut failures = Vec::new();
        for (text, expected) in cases {
            match lint(&doc(text), "app", &spec_env) {
                Err(err) if err.contains(expected) => {}
                other => failures.push(format!("{text}\n  expected `{expected}`, got {other:?}")),
            }
        }
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }

    /// What the spec's `env` makes of a value is what is checked, in both readings: with
    /// the variable (as Coolify's `.env` has it) and without (removed on the server).
    #[test]
    fn interpolation_is_read_with_and_without_the_specs_env() {
        let spec_env = env(&[("NET", "bridge"), ("EMPTY", "")]);
        for ok in [
            "services: {app: {image: x, network_mode: '${NET}'}}",
            "services: {app: {image: x, network_mode: '${NET:-none}'}}",
            "services: {app: {image: x, privileged: '${EMPTY:-false}'}}",
            "services: {app: {image: x, environment: {A: '${SECRET}', B: '$$HOME'}, command: 'echo ${ANYTHING}'}}",
            "services: {app: {image: x, labels: {com.example.team: web}, build: {context: ., labels: {traefik.x: y}}}}",
            "services: {app: {image: x, labels: ['org.opencontainers.image.source=https://example.com']}}",
        ] {
            assert_eq!(lint(&doc(ok), "app", &spec_env), Ok(()), "{ok}");
        }
        // Only the reading without the variable gives `host`.
        let err = lint(
            &doc("services: {app: {image: x, network_mode: '${NET-host}'}}"),
            "app",
            &spec_env,
        )
        .expect_err("the empty reading");
        assert!(err.contains("is `host`"), "{err}");
    }
}
