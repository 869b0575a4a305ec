//! A minimal, well-behaved provider: what a third party writes from `wit/` alone.
//! `create` echoes the desired document back; `read` fetches `<base-url>/items/<id>` with
//! the `api-token` credential, which the host attaches.

wit_bindgen::generate!({ path: "wit", world: "provider-plugin" });

use exports::fabrik::provider::provider::{
    ConfigKey, Guest, ProgressReport, ProgressState, ProviderError, ProviderInfo, Resource,
};
use fabrik::provider::host::{self, AuthScheme, Credential, HttpRequest, LogLevel, Method};
use std::cell::RefCell;

thread_local! {
    static BASE_URL: RefCell<String> = const { RefCell::new(String::new()) };
}

struct Future;

fn resource(kind: String, id: String, name: String, owner: Option<String>, live: String) -> Resource {
    Resource { kind, id, name, owner, live, outputs: "{}".to_owned() }
}

impl Guest for Future {
    fn describe() -> ProviderInfo {
        ProviderInfo {
            name: "future".to_owned(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            description: "Echoes what it is given (a test provider)".to_owned(),
            kinds: vec!["echo".to_owned()],
            config: vec![
                ConfigKey { name: "base-url".to_owned(), description: "where items live".to_owned(), secret: false, required: false },
                ConfigKey { name: "api-token".to_owned(), description: "token for the item API".to_owned(), secret: true, required: false },
            ],
            default_origins: vec![],
        }
    }

    fn configure(config: Vec<(String, String)>) -> Result<(), ProviderError> {
        for (key, value) in config {
            if key == "base-url" {
                BASE_URL.with(|b| *b.borrow_mut() = value);
            }
        }
        Ok(())
    }

    fn read(kind: String, id: String) -> Result<Option<Resource>, ProviderError> {
        let base = BASE_URL.with(|b| b.borrow().clone());
        let response = host::http_send(&HttpRequest {
            method: Method::Get,
            url: format!("{base}/items/{id}"),
            headers: vec![("accept".to_owned(), "application/json".to_owned())],
            body: None,
            credential: Some(Credential { key: "api-token".to_owned(), scheme: AuthScheme::Bearer }),
            timeout_ms: Some(5_000),
        })
        .map_err(|e| ProviderError::Permanent(format!("{e:?}")))?;
        host::log(LogLevel::Info, &format!("read {id}: {}", response.status));
        match response.status {
            200 => Ok(Some(resource(kind, id.clone(), id, None, String::from_utf8_lossy(&response.body).into_owned()))),
            404 => Ok(None),
            401 | 403 => Err(ProviderError::Unauthorized(format!("status {}", response.status))),
            status => Err(ProviderError::Permanent(format!("status {status}"))),
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

    fn lookup(_: String, _: String, _: String) -> Result<Option<Resource>, ProviderError> {
        Ok(None)
    }
}

export!(Future);
