//! Conversions between a contract version's generated types and the host's own, written
//! once: every version module invokes `conversions!()` after naming its generated
//! modules `wit_host` and `guest`. Items in a `macro_rules!` body resolve where the macro
//! is invoked, so the same text converts each version's distinct types.

macro_rules! conversions {
    () => {
        /// `http-send`: one request through the provider's gateway.
        async fn send(
            gateway: std::sync::Arc<HttpGateway>,
            request: wit_host::HttpRequest,
            serving: http::Serving,
        ) -> Result<wit_host::HttpResponse, wit_host::HttpError> {
            gateway
                .send(request.into(), serving)
                .await
                .map(|r| wit_host::HttpResponse {
                    status: r.status,
                    headers: r.headers,
                    body: r.body,
                })
                .map_err(Into::into)
        }

        /// `log`: a redacted line attributed to the provider.
        fn log_line(state: &HostState, level: wit_host::LogLevel, message: &str) {
            let message = state.http.redact(message);
            let provider = &*state.provider;
            match level {
                wit_host::LogLevel::Trace => tracing::trace!(provider, "{message}"),
                wit_host::LogLevel::Debug => tracing::debug!(provider, "{message}"),
                wit_host::LogLevel::Info => tracing::info!(provider, "{message}"),
                wit_host::LogLevel::Warn => tracing::warn!(provider, "{message}"),
                wit_host::LogLevel::Error => tracing::error!(provider, "{message}"),
            }
        }

        impl From<wit_host::HttpRequest> for http::HttpRequest {
            fn from(r: wit_host::HttpRequest) -> Self {
                Self {
                    method: match r.method {
                        wit_host::Method::Get => http::Method::Get,
                        wit_host::Method::Post => http::Method::Post,
                        wit_host::Method::Put => http::Method::Put,
                        wit_host::Method::Patch => http::Method::Patch,
                        wit_host::Method::Delete => http::Method::Delete,
                        wit_host::Method::Head => http::Method::Head,
                    },
                    url: r.url,
                    headers: r.headers,
                    body: r.body,
                    credential: r.credential.map(|c| http::Credential {
                        key: c.key,
                        scheme: auth_scheme(c.scheme),
                    }),
                    timeout: r
                        .timeout_ms
                        .map(|ms| std::time::Duration::from_millis(u64::from(ms))),
                }
            }
        }

        impl From<http::HttpError> for wit_host::HttpError {
            fn from(e: http::HttpError) -> Self {
                match e {
                    http::HttpError::Denied(m) => Self::Denied(m),
                    http::HttpError::InvalidRequest(m) => Self::InvalidRequest(m),
                    http::HttpError::Connect(m) => Self::Connect(m),
                    http::HttpError::Timeout => Self::Timeout,
                    http::HttpError::TooLarge(n) => Self::TooLarge(n),
                }
            }
        }

        impl From<guest::ProviderInfo> for types::ProviderInfo {
            fn from(i: guest::ProviderInfo) -> Self {
                let rate_limit = rate_limit_of(&i);
                Self {
                    name: i.name,
                    version: i.version,
                    description: i.description,
                    kinds: i.kinds,
                    config: i
                        .config
                        .into_iter()
                        .map(|k| types::ConfigKey {
                            name: k.name,
                            description: k.description,
                            secret: k.secret,
                            required: k.required,
                        })
                        .collect(),
                    rate_limit,
                    default_origins: i.default_origins,
                }
            }
        }

        impl From<guest::ProviderError> for types::ProviderError {
            fn from(e: guest::ProviderError) -> Self {
                match e {
                    guest::ProviderError::Transient(t) => Self::Transient {
                        message: t.message,
                        retry_after: t.retry_after_ms.map(std::time::Duration::from_millis),
                    },
                    guest::ProviderError::Permanent(m) => Self::Permanent(m),
                    guest::ProviderError::NotFound(m) => Self::NotFound(m),
                    guest::ProviderError::Unauthorized(m) => Self::Unauthorized(m),
                    guest::ProviderError::InvalidConfig(m) => Self::InvalidConfig(m),
                }
            }
        }

        impl TryFrom<guest::Resource> for types::Resource {
            type Error = types::ProviderError;

            fn try_from(r: guest::Resource) -> Result<Self, Self::Error> {
                let json = |field: &str, text: &str| {
                    if text.trim().is_empty() {
                        return Ok(serde_json::Value::Object(serde_json::Map::new()));
                    }
                    serde_json::from_str(text).map_err(|e| {
                        types::ProviderError::Permanent(format!(
                            "the provider returned `{field}` that is not JSON: {e}"
                        ))
                    })
                };
                Ok(Self {
                    live: json("live", &r.live)?,
                    outputs: json("outputs", &r.outputs)?,
                    kind: r.kind,
                    id: r.id,
                    name: r.name,
                    owner: r.owner,
                })
            }
        }

        impl From<guest::ProgressReport> for types::Progress {
            fn from(p: guest::ProgressReport) -> Self {
                Self {
                    state: match p.state {
                        guest::ProgressState::Pending => types::ProgressState::Pending,
                        guest::ProgressState::Running => types::ProgressState::Running,
                        guest::ProgressState::Ready => types::ProgressState::Ready,
                        guest::ProgressState::Failed => types::ProgressState::Failed,
                    },
                    message: p.message,
                }
            }
        }
    };
}

pub(crate) use conversions;
