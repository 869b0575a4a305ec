//! Bindings for contract `fabrik:provider@0.1.x`, generated from the frozen copy in
//! `wit/released/0.1.0`, and the conversions between them and the host's own types.

use crate::plugins::http::{self, HttpGateway};
use crate::plugins::sandbox::HostState;
use crate::plugins::types;

use super::convert::conversions;

// wasmtime 48's bindgen binds each export to a local variable named after it; an export
// named `lookup` shadows its internal `lookup` helper for the exports declared after it.
// That is why `lookup` is the last function of the `provider` interface.
wasmtime::component::bindgen!({
    path: "../wit/released/0.1.0",
    world: "provider-plugin",
    imports: { default: async },
    exports: { default: async },
});

use self::fabrik::provider::host as wit_host;
pub use exports::fabrik::provider::provider as guest;

impl wit_host::Host for HostState {
    async fn http_send(
        &mut self,
        request: wit_host::HttpRequest,
    ) -> Result<wit_host::HttpResponse, wit_host::HttpError> {
        send(self.http.clone(), request, self.serving()).await
    }

    async fn log(&mut self, level: wit_host::LogLevel, message: String) {
        log_line(self, level, &message);
    }
}

conversions!();

/// The schemes this version has: a bearer token or a header.
fn auth_scheme(scheme: wit_host::AuthScheme) -> http::AuthScheme {
    match scheme {
        wit_host::AuthScheme::Bearer => http::AuthScheme::Bearer,
        wit_host::AuthScheme::Header(name) => http::AuthScheme::Header(name),
    }
}

/// Contracts before 0.3 declare no rate limit.
fn rate_limit_of(_: &guest::ProviderInfo) -> Option<crate::plugins::pacing::RateLimit> {
    None
}
