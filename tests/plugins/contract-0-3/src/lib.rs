//! A `dns` provider of the frozen 0.3.0 contract, so that a 0.3 component stays under
//! test now that the SDK (and every bundled provider) speaks 0.4: it loads, describes
//! itself and finds nothing, which is enough for `apply --dry-run`, `providers list` and
//! `providers lock` to go through the 0.3 binding.

wit_bindgen::generate!({ path: "../../../wit/released/0.3.0", world: "provider-plugin" });

use exports::fabrik::provider::provider::{
    Guest, ProgressReport, ProviderError, ProviderInfo, Resource, ResourcePage,
};

struct Contract03;

fn not_here() -> ProviderError {
    ProviderError::Permanent("the 0.3 test provider changes nothing".to_owned())
}

impl Guest for Contract03 {
    fn describe() -> ProviderInfo {
        ProviderInfo {
            name: "contract-0-3".to_owned(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            description: "A provider of contract 0.3.0".to_owned(),
            kinds: vec!["dns-record".to_owned()],
            config: vec![],
            default_origins: vec![],
            rate_limit: None,
        }
    }

    fn configure(_: Vec<(String, String)>) -> Result<(), ProviderError> {
        Ok(())
    }

    fn read(_: String, _: String) -> Result<Option<Resource>, ProviderError> {
        Ok(None)
    }

    fn create(_: String, _: String, _: String, _: String) -> Result<Resource, ProviderError> {
        Err(not_here())
    }

    fn update(_: String, _: String, _: String) -> Result<Resource, ProviderError> {
        Err(not_here())
    }

    fn delete(_: String, _: String, _: String, _: bool) -> Result<(), ProviderError> {
        Err(not_here())
    }

    fn progress(_: String, _: String) -> Result<ProgressReport, ProviderError> {
        Err(not_here())
    }

    fn list(_: String, _: String, _: Option<String>) -> Result<ResourcePage, ProviderError> {
        Ok(ResourcePage {
            resources: vec![],
            next: None,
        })
    }

    fn lookup(
        _: String,
        _: String,
        _: String,
        _: Option<String>,
    ) -> Result<Option<Resource>, ProviderError> {
        Ok(None)
    }
}

export!(Contract03);
