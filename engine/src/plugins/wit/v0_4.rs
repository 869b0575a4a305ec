//! Bindings for contract `fabrik:provider@0.4.x`, generated from the frozen copy in
//! `wit/released/0.4.0`: 0.3 plus the `body` credential scheme (a secret the host puts
//! into the request body, for APIs that take a password in a message).

use crate::plugins::http::{self, HttpGateway};
use crate::plugins::sandbox::HostState;
use crate::plugins::types;

use super::convert::conversions;

// As in 0.1, `lookup` stays the last function of the `provider` interface (see v0_1).
wasmtime::component::bindgen!({
    path: "../wit/released/0.4.0",
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

/// The schemes this version has: a bearer token, a header, or a placeholder in the body.
fn auth_scheme(scheme: wit_host::AuthScheme) -> http::AuthScheme {
    match scheme {
        wit_host::AuthScheme::Bearer => http::AuthScheme::Bearer,
        wit_host::AuthScheme::Header(name) => http::AuthScheme::Header(name),
        wit_host::AuthScheme::Body(placeholder) => http::AuthScheme::Body(placeholder),
    }
}

/// The budget the provider declares.
fn rate_limit_of(info: &guest::ProviderInfo) -> Option<crate::plugins::pacing::RateLimit> {
    info.rate_limit
        .map(|limit| crate::plugins::pacing::RateLimit {
            requests: limit.requests,
            window: std::time::Duration::from_secs(u64::from(limit.window_seconds)),
        })
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
