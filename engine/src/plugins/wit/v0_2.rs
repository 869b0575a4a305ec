//! Bindings for contract `fabrik:provider@0.2.x`, generated from the frozen copy in
//! `wit/released/0.2.0`: 0.1 plus `host.http-send-many` and `provider.list`.

use crate::plugins::http::{self, HttpGateway};
use crate::plugins::sandbox::HostState;
use crate::plugins::types;

use super::convert::conversions;

// As in 0.1, `lookup` stays the last function of the `provider` interface (see v0_1).
wasmtime::component::bindgen!({
    path: "../wit/released/0.2.0",
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

    async fn http_send_many(
        &mut self,
        requests: Vec<wit_host::HttpRequest>,
    ) -> Vec<Result<wit_host::HttpResponse, wit_host::HttpError>> {
        let gateway = self.http.clone();
        gateway
            .send_many(
                requests.into_iter().map(Into::into).collect(),
                self.serving(),
            )
            .await
            .into_iter()
            .map(|answer| {
                answer
                    .map(|r| wit_host::HttpResponse {
                        status: r.status,
                        headers: r.headers,
                        body: r.body,
                    })
                    .map_err(Into::into)
            })
            .collect()
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

impl TryFrom<guest::ResourcePage> for types::ResourcePage {
    type Error = types::ProviderError;

    fn try_from(page: guest::ResourcePage) -> Result<Self, Self::Error> {
        Ok(Self {
            resources: page
                .resources
                .into_iter()
                .map(types::Resource::try_from)
                .collect::<Result<_, _>>()?,
            next: page.next,
        })
    }
}
