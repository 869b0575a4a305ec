//! `healthcheck:`: the HTTPS check a deploy must pass.

use super::*;

pub(super) const HEALTH_KEYS: &[&str] = &["path", "timeout", "interval", "expect_status"];

impl Reader<'_> {
    pub(super) fn healthcheck(&mut self, top: &Mapping) -> Healthcheck {
        let mut health = Healthcheck {
            path: "/".to_owned(),
            timeout: DEFAULT_HEALTH_TIMEOUT,
            interval: DEFAULT_HEALTH_INTERVAL,
            expect_status: None,
        };
        let Some(value) = Self::get(top, "healthcheck") else {
            return health;
        };
        let Some(mapping) = self.mapping(value, "healthcheck") else {
            return health;
        };
        let p = "healthcheck";
        self.known_keys(mapping, p, HEALTH_KEYS);
        if let Some(path) = self.string(mapping, p, "path") {
            if let Some(problem) = health_path_problem(&path) {
                self.error_with_hint(
                    "healthcheck.path",
                    format!("{path:?} {problem}"),
                    Some("write a path such as `/health`".into()),
                );
            } else {
                health.path = path;
            }
        }
        let mut timeout_ok = true;
        match self.integer(mapping, p, "timeout", 1, 3600) {
            Some(t) => health.timeout = u32::try_from(t).unwrap_or(DEFAULT_HEALTH_TIMEOUT),
            None => timeout_ok = Self::get(mapping, "timeout").is_none(),
        }
        if let Some(i) = self.integer(mapping, p, "interval", 1, 300) {
            let interval = u32::try_from(i).unwrap_or(DEFAULT_HEALTH_INTERVAL);
            if timeout_ok && interval > health.timeout {
                self.error(
                    "healthcheck.interval",
                    format!(
                        "{interval} s is longer than the timeout ({} s)",
                        health.timeout
                    ),
                );
            } else {
                health.interval = interval;
            }
        }
        health.expect_status = self
            .integer(mapping, p, "expect_status", 100, 599)
            .and_then(|s| u16::try_from(s).ok());
        health
    }
}

/// Characters allowed in a health path: Coolify's health-path set plus a query string.
/// Quotes, spaces and shell metacharacters are excluded because templates embed the path
/// in container health-check commands.
pub(super) fn health_path_problem(path: &str) -> Option<&'static str> {
    if !path.starts_with('/') {
        return Some("must start with `/`");
    }
    if path.len() > 1024 {
        return Some("is longer than 1024 characters");
    }
    let allowed = |c: char| c.is_ascii_alphanumeric() || "/-_.~%,;?=&+".contains(c);
    if !path.chars().all(allowed) {
        return Some("contains characters other than letters, digits and `/-_.~%,;?=&+`");
    }
    None
}
