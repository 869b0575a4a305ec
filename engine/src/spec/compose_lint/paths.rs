//! Host paths: what a bind mount, a volume's `device`, a secret's or config's `file` or a
//! build context may reach on the server.

/// Host directories (and the Docker socket) a bind mount may not reach, nor contain.
pub const HOST_PATHS: &[&str] = &[
    // Runtime sockets (Docker's, containerd's, ...) and every service's data; cron's
    // spool (a crontab written there runs as its owner); a snap-installed Docker's data.
    "/run",
    "/var/run",
    "/var/lib",
    "/var/spool",
    "/var/snap",
    // Logs, backups (`/var/backups` keeps copies of `shadow`), caches, temporary files
    // and the sockets agents leave there, swap files.
    "/var/log",
    "/var/backups",
    "/var/cache",
    "/var/tmp",
    "/tmp",
    "/swap.img",
    "/swapfile",
    "/snap",
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
    "/lib32",
    "/lib64",
    "/libx32",
];

/// Whether a mount source is a host path rather than a named volume (a named volume has
/// no `/`, `.` or `~` at its start).
pub(super) fn is_host_path(source: &str) -> bool {
    source.starts_with(['/', '.', '~'])
}

/// Refuses a host path that gives the container the host, climbs out of the project
/// directory, or starts with `~` (Compose expands it to a home directory).
pub(super) fn check_host_path(source: &str) -> Result<(), String> {
    if source.starts_with('~') {
        return Err(format!(
            "`{source}` is expanded by Compose to a home directory; write the path"
        ));
    }
    let path = normalise(source)
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

/// Refuses a path that is not inside the project: absolute, or climbing above it.
pub(super) fn check_inside_project(path: &str) -> Result<(), String> {
    if path.starts_with(['/', '~']) {
        return Err(format!(
            "`{path}` is outside the app's directory; use a path inside it"
        ));
    }
    normalise(path)
        .map(|_| ())
        .ok_or_else(|| format!("`{path}` climbs out of the app's directory"))
}

/// `source` with `.`, `..`, repeated and trailing `/` resolved: absolute stays absolute
/// (`..` at the root stays there, as the kernel does); a relative path that climbs
/// above its start is `None`.
pub(super) fn normalise(source: &str) -> Option<String> {
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

#[cfg(test)]
mod tests {
    use super::*;

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
