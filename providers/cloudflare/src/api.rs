//! Cloudflare's v4 API as this provider uses it: the envelope, error codes, and the one
//! function that sends a request through the host.

use serde::Deserialize;
use serde_json::Value;

use crate::exports::fabrik::provider::provider::{ProviderError, TransientError};
use crate::fabrik::provider::host::{self, AuthScheme, Credential, HttpError, HttpRequest, Method};

/// Codes that mean the token is wrong or lacks a permission.
const AUTH_CODES: &[u64] = &[9103, 9106, 9109, 10000, 6003, 6111, 6103];
/// "Record already exists" (same name, type, content) and "identical record exists".
pub const DUPLICATE_CODES: &[u64] = &[81057, 81058];
/// A record of another type holds the name: 81053 "An A, AAAA, or CNAME record with that
/// host already exists." (a new CNAME) and 81054 "A CNAME record with that host already
/// exists." (a new A or AAAA; Cloudflare's records-with-same-name docs).
pub const HOST_CONFLICT_CODES: &[u64] = &[81053, 81054];
/// "Record does not exist."
pub const RECORD_MISSING_CODE: u64 = 81044;

const TOKEN_HINT: &str =
    "the API token needs Zone:Read and DNS:Edit on the zone (account-owned tokens work too)";

/// One entry of `errors` or `messages`.
#[derive(Debug, Clone, Deserialize)]
pub struct ApiMessage {
    pub code: u64,
    #[serde(default)]
    pub message: String,
    #[serde(default)]
    pub error_chain: Vec<ApiMessage>,
}

/// The response envelope.
#[derive(Debug, Deserialize)]
pub struct Envelope {
    #[serde(default)]
    pub success: bool,
    #[serde(default)]
    pub errors: Vec<ApiMessage>,
    #[serde(default)]
    pub result: Value,
}

/// A failed call: HTTP status and the API's error codes.
#[derive(Debug)]
pub struct Failure {
    pub status: u16,
    pub errors: Vec<ApiMessage>,
    pub error: ProviderError,
}

impl Failure {
    pub fn has_code(&self, codes: &[u64]) -> bool {
        self.errors.iter().any(|e| codes.contains(&e.code))
    }
}

fn describe(errors: &[ApiMessage]) -> String {
    errors
        .iter()
        .map(|e| {
            let chain: Vec<String> = e
                .error_chain
                .iter()
                .map(|c| format!("{} {}", c.code, c.message))
                .collect();
            if chain.is_empty() {
                format!("{} {}", e.code, e.message)
            } else {
                format!("{} {} ({})", e.code, e.message, chain.join("; "))
            }
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// Sends a request and decides on both the HTTP status and `success`.
pub fn call(
    base: &str,
    method: Method,
    path: &str,
    body: Option<&Value>,
) -> Result<Envelope, Failure> {
    let request = HttpRequest {
        method,
        url: format!("{base}{path}"),
        headers: vec![
            ("accept".to_owned(), "application/json".to_owned()),
            ("content-type".to_owned(), "application/json".to_owned()),
        ],
        body: body.map(|b| b.to_string().into_bytes()),
        credential: Some(Credential {
            key: "api-token".to_owned(),
            scheme: AuthScheme::Bearer,
        }),
        timeout_ms: Some(20_000),
    };
    let failure = |status: u16, errors: Vec<ApiMessage>, error: ProviderError| Failure {
        status,
        errors,
        error,
    };
    let response = match host::http_send(&request) {
        Ok(response) => response,
        Err(HttpError::Timeout) => {
            return Err(failure(
                0,
                vec![],
                ProviderError::Transient(TransientError {
                    message: "Cloudflare did not answer in time".to_owned(),
                    retry_after_ms: None,
                }),
            ));
        }
        Err(HttpError::Connect(message)) => {
            return Err(failure(
                0,
                vec![],
                ProviderError::Transient(TransientError {
                    message: format!("cannot reach Cloudflare: {message}"),
                    retry_after_ms: None,
                }),
            ));
        }
        Err(other) => {
            return Err(failure(
                0,
                vec![],
                ProviderError::Permanent(format!("request refused by the host: {other:?}")),
            ));
        }
    };
    let status = response.status;
    let retry_after = response
        .headers
        .iter()
        .find(|(k, _)| k == "retry-after")
        .and_then(|(_, v)| v.trim().parse::<u64>().ok())
        .map(|s| s * 1000);
    let envelope: Result<Envelope, _> = serde_json::from_slice(&response.body);
    let envelope = match envelope {
        Ok(envelope) => envelope,
        Err(e) if status >= 500 || status == 429 => {
            return Err(failure(
                status,
                vec![],
                ProviderError::Transient(TransientError {
                    message: format!(
                        "Cloudflare answered {status} with a body that is not JSON ({e})"
                    ),
                    retry_after_ms: retry_after,
                }),
            ));
        }
        Err(e) => {
            return Err(failure(
                status,
                vec![],
                ProviderError::Permanent(format!(
                    "Cloudflare answered {status} with a body that is not the API's JSON envelope: {e}"
                )),
            ));
        }
    };
    if (200..300).contains(&status) && envelope.success {
        return Ok(envelope);
    }
    let errors = envelope.errors;
    let text = describe(&errors);
    let error = if status == 429 || errors.iter().any(|e| e.code == 971) {
        ProviderError::Transient(TransientError {
            message: format!("rate limited by Cloudflare: {text}"),
            retry_after_ms: retry_after,
        })
    } else if status >= 500 {
        ProviderError::Transient(TransientError {
            message: format!("Cloudflare error {status}: {text}"),
            retry_after_ms: retry_after,
        })
    } else if status == 401
        || status == 403
        || errors.iter().any(|e| {
            AUTH_CODES.contains(&e.code)
                || e.error_chain.iter().any(|c| AUTH_CODES.contains(&c.code))
        })
    {
        ProviderError::Unauthorized(format!(
            "Cloudflare refused the token ({text}): {TOKEN_HINT}"
        ))
    } else if status == 404 {
        ProviderError::NotFound(text)
    } else {
        ProviderError::Permanent(format!("Cloudflare answered {status}: {text}"))
    };
    Err(failure(status, errors, error))
}
