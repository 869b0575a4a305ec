//! A minimal, well-behaved provider, written as a third party would with the Rust SDK.
//! `create` echoes the desired document back; `read` fetches `<base-url>/items/<id>` with
//! the `api-token` credential, which the host attaches.

use fabrik_provider_sdk::config::Config;
use fabrik_provider_sdk::http::Api;
use fabrik_provider_sdk::{
    export_provider, ConfigKey, Instance, LogLevel, ProgressReport, ProgressState, Provider,
    ProviderError, ProviderInfo, Resource, ResourcePage,
};

/// Set by `configure`: where items live.
static API: Instance<Api> = Instance::new();

struct Echo;

fn resource(kind: String, id: String, name: String, owner: Option<String>, live: String) -> Resource {
    Resource { kind, id, name, owner, live, outputs: "{}".to_owned() }
}

impl Provider for Echo {
    fn describe() -> ProviderInfo {
        ProviderInfo {
            name: "echo".to_owned(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            description: "Echoes what it is given (a test provider)".to_owned(),
            kinds: vec!["echo".to_owned()],
            config: vec![
                ConfigKey { name: "base-url".to_owned(), description: "where items live".to_owned(), secret: false, required: false },
                ConfigKey { name: "api-token".to_owned(), description: "token for the item API".to_owned(), secret: true, required: false },
            ],
            default_origins: vec![],
            rate_limit: None,
        }
    }

    fn configure(config: Vec<(String, String)>) -> Result<(), ProviderError> {
        let base = Config::new(config).get("base-url").unwrap_or("http://unconfigured.invalid").to_owned();
        API.set(Api::new("the item API", base).bearer("api-token").timeout_ms(5_000));
        Ok(())
    }

    fn read(kind: String, id: String) -> Result<Option<Resource>, ProviderError> {
        let response = API.with(|api| api.get(&format!("/items/{id}")))?.send()?;
        fabrik_provider_sdk::log(LogLevel::Info, &format!("read {id}: {}", response.status));
        match response.status {
            200 => Ok(Some(resource(kind, id.clone(), id, None, String::from_utf8_lossy(&response.body).into_owned()))),
            404 => Ok(None),
            status => Err(response.error(&format!("status {status}"))),
        }
    }

    fn create(kind: String, name: String, desired: String, owner: String) -> Result<Resource, ProviderError> {
        Ok(resource(kind, format!("id-{name}"), name, Some(owner), desired))
    }

    fn update(kind: String, id: String, desired: String) -> Result<Resource, ProviderError> {
        Ok(resource(kind, id.clone(), id, None, desired))
    }

    fn delete(_: String, _: String, _: String, _: bool) -> Result<(), ProviderError> {
        Ok(())
    }

    fn progress(_: String, _: String) -> Result<ProgressReport, ProviderError> {
        Ok(ProgressReport { state: ProgressState::Ready, message: None })
    }

    /// Echo keeps nothing, so it owns nothing to list.
    fn list(_: String, _: String, _: Option<String>) -> Result<ResourcePage, ProviderError> {
        Ok(ResourcePage { resources: vec![], next: None })
    }

    fn lookup(_: String, _: String, _: String, _: Option<String>) -> Result<Option<Resource>, ProviderError> {
        Ok(None)
    }
}

export_provider!(Echo);
