//! Write a [Fabrik](https://github.com/fabrik-deploy/fabrik) provider plugin in Rust.
//!
//! A provider is a WebAssembly component of the world `fabrik:provider/provider-plugin`
//! (the contract, in `wit/provider.wit`, is this crate's version: SDK 0.4 speaks contract
//! 0.4). This crate generates its bindings once and adds what every provider otherwise
//! writes again:
//!
//! - [`http`]: requests through the host (`http-send`, `http-send-many`), with the
//!   credential named and attached by the host, JSON bodies, transport failures and
//!   statuses mapped to [`ProviderError`], and `Retry-After` read in both of its forms;
//! - [`config`]: the configuration `configure` receives, with required keys and base
//!   URLs checked;
//! - [`Instance`]: state kept between calls of one instance (a base URL, caches);
//! - [`owner`]: the ownership rules (ours first in a lookup, the owner check before a
//!   delete, owner prefixes for `list`);
//! - [`error`]: short constructors for each kind of [`ProviderError`];
//! - [`ResourceBuilder`]: a [`Resource`] from its parts, `live` and `outputs` serialized;
//! - [`testing`] (native builds): a fake host, to unit-test a provider with `cargo test`.
//!
//! ```ignore
//! use fabrik_provider_sdk::{export_provider, Provider, ProviderInfo, ProviderError};
//!
//! struct MyDns;
//! impl Provider for MyDns { /* describe, configure, read, create, ... */ }
//! export_provider!(MyDns);
//! ```
//! Build with `cargo build --release --target wasm32-wasip2`; the guide is
//! `docs/providers.md` in Fabrik's repository.

// The bindings name this crate by its path, as users see it, also from inside.
extern crate self as fabrik_provider_sdk;

pub mod config;
pub mod error;
pub mod http;
pub mod owner;
mod resource;
mod state;
#[cfg(not(target_arch = "wasm32"))]
pub mod testing;

pub use resource::ResourceBuilder;

pub use state::Instance;

/// The generated bindings of the contract, for what the re-exports below leave out.
pub mod bindings {
    wit_bindgen::generate!({
        path: "wit",
        world: "provider-plugin",
        pub_export_macro: true,
        export_macro_name: "export_provider",
        default_bindings_module: "fabrik_provider_sdk::bindings",
        runtime_path: "fabrik_provider_sdk::wit_bindgen::rt",
    });
}

/// The `wit-bindgen` runtime the bindings use; providers need no dependency of their own.
#[doc(hidden)]
pub use wit_bindgen;

/// Exports a type implementing [`Provider`] as the component's `provider` interface:
/// `export_provider!(MyProvider);` once, at the crate root of the provider.
pub use bindings::export_provider;

pub use bindings::exports::fabrik::provider::provider::{
    ConfigKey, Guest as Provider, ProgressReport, ProgressState, ProviderError, ProviderInfo,
    RateLimit, Resource, ResourcePage, TransientError,
};
pub use bindings::fabrik::provider::host::{AuthScheme, LogLevel, Method};

/// Writes a line to Fabrik's log, attributed to the provider (the host redacts secrets).
pub fn log(level: LogLevel, message: &str) {
    #[cfg(target_arch = "wasm32")]
    bindings::fabrik::provider::host::log(level, message);
    #[cfg(not(target_arch = "wasm32"))]
    testing::log(level, message);
}

/// Parses a `desired` document of `kind` into `T`, or says why it is not one.
pub fn parse_desired<T: serde::de::DeserializeOwned>(
    kind: &str,
    desired: &str,
) -> Result<T, ProviderError> {
    serde_json::from_str(desired)
        .map_err(|e| error::permanent(format!("invalid desired {kind}: {e}")))
}

/// Refuses a kind this provider does not manage.
pub fn check_kind(kind: &str, managed: &[&str]) -> Result<(), ProviderError> {
    if managed.contains(&kind) {
        Ok(())
    } else {
        Err(error::permanent(format!(
            "this provider manages {}, not `{kind}`",
            managed
                .iter()
                .map(|k| format!("`{k}`"))
                .collect::<Vec<_>>()
                .join(", ")
        )))
    }
}
