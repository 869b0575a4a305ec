//! Coolify provider plugin: Coolify applications, services and deployments, spoken
//! through Coolify's REST API (`/api/v1`). Built as a WebAssembly component of the
//! `fabrik:provider` world; the host attaches the API token.
//!
//! This version describes itself and accepts its configuration; the API calls are built
//! on top of it.

wit_bindgen::generate!({ path: "../../wit", world: "provider-plugin" });

use exports::fabrik::provider::provider::{
    ConfigKey, Guest, ProgressReport, ProviderError, ProviderInfo, Resource,
};

struct Coolify;

const NOT_YET: &str = "the Coolify provider does not implement this call yet";

impl Guest for Coolify {
    fn describe() -> ProviderInfo {
        ProviderInfo {
            name: "coolify".to_owned(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            description: "Coolify applications, services and deployments".to_owned(),
            kinds: vec![
                "server".to_owned(),
                "application".to_owned(),
                "service".to_owned(),
            ],
            config: vec![
                ConfigKey {
                    name: "base-url".to_owned(),
                    description: "Coolify API base URL, e.g. https://coolify.example.com/api/v1"
                        .to_owned(),
                    secret: false,
                    required: true,
                },
                ConfigKey {
                    name: "api-token".to_owned(),
                    description: "Coolify API token (Keys & Tokens; abilities read, write, deploy)"
                        .to_owned(),
                    secret: true,
                    required: true,
                },
            ],
            default_origins: Vec::new(),
        }
    }

    fn configure(config: Vec<(String, String)>) -> Result<(), ProviderError> {
        if config.iter().any(|(k, v)| k == "base-url" && !v.is_empty()) {
            Ok(())
        } else {
            Err(ProviderError::InvalidConfig(
                "`base-url` is required: the Coolify API URL, e.g. https://coolify.example.com/api/v1".to_owned(),
            ))
        }
    }

    fn lookup(_: String, _: String, _: String) -> Result<Option<Resource>, ProviderError> {
        Err(ProviderError::Permanent(NOT_YET.to_owned()))
    }

    fn read(_: String, _: String) -> Result<Option<Resource>, ProviderError> {
        Err(ProviderError::Permanent(NOT_YET.to_owned()))
    }

    fn create(_: String, _: String, _: String, _: String) -> Result<Resource, ProviderError> {
        Err(ProviderError::Permanent(NOT_YET.to_owned()))
    }

    fn update(_: String, _: String, _: String) -> Result<Resource, ProviderError> {
        Err(ProviderError::Permanent(NOT_YET.to_owned()))
    }

    fn delete(_: String, _: String, _: String, _: bool) -> Result<(), ProviderError> {
        Err(ProviderError::Permanent(NOT_YET.to_owned()))
    }

    fn progress(_: String, _: String) -> Result<ProgressReport, ProviderError> {
        Err(ProviderError::Permanent(NOT_YET.to_owned()))
    }
}

// Only the component exports the contract: natively, the export names (which contain `:`)
// cannot be linked into a shared library, and native builds exist for unit tests.
#[cfg(target_arch = "wasm32")]
export!(Coolify);
