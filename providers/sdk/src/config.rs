//! The configuration `configure` receives: the non-secret keys the provider declared in
//! `describe` (secret keys never reach the guest; requests name them as credentials).
//!
//! A value comes from the project's `fabrik.toml` (`[providers.<role>.config]`) or from
//! the environment variable named under `[providers.<role>.config-env]`: the host reads
//! the environment, the guest never does.

use crate::ProviderError;
use crate::error::invalid_config;

/// The key/value pairs of one `configure` call.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Config {
    pairs: Vec<(String, String)>,
}

impl Config {
    pub fn new(pairs: Vec<(String, String)>) -> Self {
        Self { pairs }
    }

    /// The value of `key`, if set.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// The value of `key`, or an `invalid-config` error naming it.
    pub fn require(&self, key: &str) -> Result<&str, ProviderError> {
        self.get(key)
            .filter(|v| !v.trim().is_empty())
            .ok_or_else(|| invalid_config(format!("`{key}` is required")))
    }

    /// The API's base URL from `base-url`, else `default`: an `http(s)://` URL without a
    /// trailing slash, so that paths starting with `/` can be appended.
    pub fn base_url(&self, default: &str) -> Result<String, ProviderError> {
        checked_base(self.get("base-url").unwrap_or(default))
    }

    /// The API's base URL from `base-url`, which must be set: for an API every user runs
    /// at their own address (a self-hosted server), where no default could be right.
    pub fn required_base_url(&self) -> Result<String, ProviderError> {
        checked_base(self.require("base-url")?)
    }
}

fn checked_base(base: &str) -> Result<String, ProviderError> {
    let base = base.trim();
    if !base.starts_with("https://") && !base.starts_with("http://") {
        return Err(invalid_config(format!(
            "`base-url` must be an http(s) URL, not {base:?}"
        )));
    }
    Ok(base.trim_end_matches('/').to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(pairs: &[(&str, &str)]) -> Config {
        Config::new(
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        )
    }

    #[test]
    fn base_urls_are_checked_and_trimmed() {
        assert_eq!(
            config(&[]).base_url("https://api.example.com/v1/").ok(),
            Some("https://api.example.com/v1".to_owned())
        );
        assert_eq!(
            config(&[("base-url", "http://127.0.0.1:9000/")])
                .base_url("https://x")
                .ok(),
            Some("http://127.0.0.1:9000".to_owned())
        );
        assert!(matches!(
            config(&[("base-url", "ftp://x")]).base_url("https://x"),
            Err(ProviderError::InvalidConfig(m)) if m.contains("ftp://x")
        ));
    }

    #[test]
    fn a_required_base_url_has_no_default() {
        assert!(matches!(
            config(&[]).required_base_url(),
            Err(ProviderError::InvalidConfig(m)) if m == "`base-url` is required"
        ));
        assert_eq!(
            config(&[("base-url", "http://127.0.0.1:8081/")])
                .required_base_url()
                .ok(),
            Some("http://127.0.0.1:8081".to_owned())
        );
    }

    #[test]
    fn required_keys_are_named() {
        assert!(matches!(
            config(&[("zone", " ")]).require("zone"),
            Err(ProviderError::InvalidConfig(m)) if m == "`zone` is required"
        ));
        assert_eq!(
            config(&[("zone", "example.org")]).require("zone").ok(),
            Some("example.org")
        );
    }
}
