//! Cloudflare DNS provider plugin: DNS records (A, AAAA, CNAME) in Cloudflare zones,
//! spoken through Cloudflare's v4 API. Built as a WebAssembly component of the
//! `fabrik:provider` world; the host attaches the API token.
//!
//! This version describes itself and accepts its configuration; the API calls are built
//! on top of it.

wit_bindgen::generate!({ path: "../../wit", world: "provider-plugin" });

use exports::fabrik::provider::provider::{
    ConfigKey, Guest, ProgressReport, ProviderError, ProviderInfo, Resource,
};

struct Cloudflare;

const NOT_YET: &str = "the Cloudflare provider does not implement this call yet";

impl Guest for Cloudflare {
    fn describe() -> ProviderInfo {
        ProviderInfo {
            name: "cloudflare".to_owned(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            description: "Cloudflare DNS records (A, AAAA, CNAME)".to_owned(),
            kinds: vec!["dns-record".to_owned()],
            config: vec![
                ConfigKey {
                    name: "base-url".to_owned(),
                    description: "API base URL (default https://api.cloudflare.com/client/v4)"
                        .to_owned(),
                    secret: false,
                    required: false,
                },
                ConfigKey {
                    name: "api-token".to_owned(),
                    description: "Cloudflare API token with Zone Read and DNS Edit on the zone"
                        .to_owned(),
                    secret: true,
                    required: true,
                },
            ],
            default_origins: vec!["https://api.cloudflare.com".to_owned()],
        }
    }

    fn configure(_config: Vec<(String, String)>) -> Result<(), ProviderError> {
        Ok(())
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
export!(Cloudflare);
