//! The key of a deployment: an app, or an app in one of its spec's environments.
//!
//! An app in an environment is a deployment of its own (lock, runs, resources, owner
//! tag), and everything keyed by app takes this key: `api` for a spec without
//! environments, `api@staging` for its staging environment. Neither an app name nor an
//! environment name can hold `@` (both are DNS labels), so the key splits back exactly.

/// The key of `app` in `environment` (none: the app's only deployment).
pub fn deployment_key(app: &str, environment: Option<&str>) -> String {
    match environment {
        Some(environment) => format!("{app}@{environment}"),
        None => app.to_owned(),
    }
}

/// The app and environment of `key` (see [`deployment_key`]).
pub fn split_key(key: &str) -> (&str, Option<&str>) {
    match key.split_once('@') {
        Some((app, environment)) => (app, Some(environment)),
        None => (key, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_splits_back_into_its_app_and_environment() {
        for (app, environment) in [("api", None), ("api", Some("staging"))] {
            let key = deployment_key(app, environment);
            assert_eq!(split_key(&key), (app, environment));
        }
        assert_eq!(deployment_key("api", Some("preview-7")), "api@preview-7");
    }
}
