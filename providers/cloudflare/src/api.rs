//! Cloudflare's v4 API as this provider uses it: the envelope and its error codes, on top
//! of the SDK's requests through the host.

use serde::Deserialize;
use serde_json::Value;

use fabrik_provider_sdk::error::{permanent, transient, unauthorized};
use fabrik_provider_sdk::http::{Api, Response};
use fabrik_provider_sdk::{Method, ProviderError};

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
    /// Paging of list endpoints: `page`, `per_page`, `count`, and `total_count` or
    /// `total_pages` when the endpoint gives them.
    #[serde(default)]
    pub result_info: Value,
}

impl Envelope {
    /// Whether a later page follows this one. The real answers carry `page`, `per_page`,
    /// `count` and `total_count`, not always `total_pages` (the schema's is optional, and
    /// DNS record lists leave it out): the last page is the one that reaches
    /// `total_count`, else the first short one.
    pub fn has_next_page(&self) -> bool {
        let info = &self.result_info;
        let page = info["page"].as_u64().unwrap_or(1);
        if let Some(pages) = info["total_pages"].as_u64() {
            return page < pages;
        }
        let per_page = info["per_page"].as_u64().unwrap_or(0);
        if let Some(total) = info["total_count"].as_u64() {
            return page.saturating_mul(per_page) < total;
        }
        let count = info["count"]
            .as_u64()
            .or_else(|| self.result.as_array().map(|a| a.len() as u64))
            .unwrap_or(0);
        per_page > 0 && count >= per_page
    }
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

/// Decides on both the HTTP status and `success` of an answer.
pub fn envelope(response: Result<Response, ProviderError>) -> Result<Envelope, Failure> {
    let failure = |status: u16, errors: Vec<ApiMessage>, error: ProviderError| Failure {
        status,
        errors,
        error,
    };
    let response = response.map_err(|error| failure(0, vec![], error))?;
    let status = response.status;
    let envelope: Envelope = match serde_json::from_slice(&response.body) {
        Ok(envelope) => envelope,
        Err(e) if status >= 500 || status == 429 => {
            let message =
                format!("Cloudflare answered {status} with a body that is not JSON ({e})");
            return Err(failure(status, vec![], response.error(&message)));
        }
        Err(e) => {
            return Err(failure(
                status,
                vec![],
                permanent(format!(
                    "Cloudflare answered {status} with a body that is not the API's JSON envelope: {e}"
                )),
            ));
        }
    };
    if response.is_success() && envelope.success {
        return Ok(envelope);
    }
    let errors = envelope.errors;
    let text = describe(&errors);
    let error = if status == 429 || errors.iter().any(|e| e.code == 971) {
        transient(
            format!("rate limited by Cloudflare: {text}"),
            response.retry_after_ms(),
        )
    } else if status >= 500 {
        response.error(&text)
    } else if status == 401
        || status == 403
        || errors.iter().any(|e| {
            AUTH_CODES.contains(&e.code)
                || e.error_chain.iter().any(|c| AUTH_CODES.contains(&c.code))
        })
    {
        unauthorized(format!(
            "Cloudflare refused the token ({text}): {TOKEN_HINT}"
        ))
    } else {
        response.error(&text)
    };
    Err(failure(status, errors, error))
}

/// Sends one request and reads its envelope.
pub fn call(
    api: &Api,
    method: Method,
    path: &str,
    body: Option<&Value>,
) -> Result<Envelope, Failure> {
    envelope(api.request(method, path).json_opt(body).send())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(info: Value, result_len: usize) -> Envelope {
        Envelope {
            success: true,
            errors: Vec::new(),
            result: Value::Array(vec![Value::Null; result_len]),
            result_info: info,
        }
    }

    #[test]
    fn the_last_page_is_found_with_or_without_total_pages() {
        use serde_json::json;
        // As the real DNS record lists answer: no `total_pages`.
        assert!(
            page(
                json!({"page": 1, "per_page": 2, "count": 2, "total_count": 3}),
                2
            )
            .has_next_page()
        );
        assert!(
            !page(
                json!({"page": 2, "per_page": 2, "count": 1, "total_count": 3}),
                1
            )
            .has_next_page()
        );
        assert!(
            !page(
                json!({"page": 1, "per_page": 100, "count": 1, "total_count": 1}),
                1
            )
            .has_next_page()
        );
        // Neither total: a full page may have a next one, a short page is the last.
        assert!(page(json!({"page": 1, "per_page": 2, "count": 2}), 2).has_next_page());
        assert!(!page(json!({"page": 3, "per_page": 2, "count": 1}), 1).has_next_page());
        // `total_pages`, where an endpoint gives it, decides.
        assert!(page(json!({"page": 1, "total_pages": 2}), 0).has_next_page());
        assert!(!page(json!({"page": 2, "total_pages": 2}), 0).has_next_page());
    }
}
