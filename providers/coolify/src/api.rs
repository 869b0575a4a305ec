//! Coolify's REST API as this provider uses it: the mapping of Coolify's error shapes to
//! provider errors, on top of the SDK's requests through the host (which ask for JSON and
//! attach the token).

use fabrik_provider_sdk::error::transient;
use fabrik_provider_sdk::http::{Api, Request, Response};
use fabrik_provider_sdk::{Method, ProviderError};
use serde_json::Value;

const TOKEN_HINT: &str =
    "create a token under Keys & Tokens with the read, write and deploy abilities";

/// A failed call.
#[derive(Debug, Clone)]
pub struct Failure {
    pub status: u16,
    pub error: ProviderError,
}

/// A successful call: status and body (JSON, or text for `/version`).
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn json(&self) -> Result<Value, ProviderError> {
        serde_json::from_slice(&self.body).map_err(|e| {
            ProviderError::Permanent(format!(
                "Coolify answered {} with a body that is not JSON ({e}): {}",
                self.status,
                excerpt(&self.body)
            ))
        })
    }
}

pub fn excerpt(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.chars().count() > 160 {
        format!("{}…", text.chars().take(160).collect::<String>())
    } else {
        text.to_owned()
    }
}

/// A readable form of Coolify's `errors`, which is `{field: [msg]}`, `{field: msg}` or a
/// plain list depending on the endpoint.
fn describe_errors(errors: &Value) -> String {
    match errors {
        Value::Object(map) => map
            .iter()
            .map(|(field, value)| match value {
                Value::Array(items) => format!(
                    "{field}: {}",
                    items
                        .iter()
                        .map(|i| i.as_str().map_or_else(|| i.to_string(), str::to_owned))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                Value::String(text) => format!("{field}: {text}"),
                other => format!("{field}: {other}"),
            })
            .collect::<Vec<_>>()
            .join("; "),
        Value::Array(items) => items
            .iter()
            .map(|i| i.as_str().map_or_else(|| i.to_string(), str::to_owned))
            .collect::<Vec<_>>()
            .join("; "),
        other => other.to_string(),
    }
}

fn error_for(status: u16, body: &[u8], retry_after: Option<u64>) -> ProviderError {
    let json: Option<Value> = serde_json::from_slice(body).ok();
    let message = json
        .as_ref()
        .and_then(|j| j["message"].as_str())
        .map_or_else(|| excerpt(body), str::to_owned);
    let transient = |message: String| transient(message, retry_after);
    match status {
        429 => transient(format!(
            "Coolify is rate limiting or its deploy queue is full: {message}"
        )),
        500..=599 => transient(format!("Coolify error {status}: {message}")),
        401 => ProviderError::Unauthorized(format!(
            "Coolify refused the token ({message}); {TOKEN_HINT}"
        )),
        403 => {
            let hint = if message.contains("not allowed to access the API") {
                "this machine's IP is not in Coolify's allowed IPs (Settings → Advanced)".to_owned()
            } else if message.contains("API is disabled") {
                "turn API access on in Coolify's Settings → Advanced".to_owned()
            } else if message.contains("Missing required permissions") {
                // app/Http/Middleware/ApiAbility.php: the token lacks the ability.
                "the token lacks an ability this call needs: create one with `read`, `write` and `deploy` (Keys & Tokens)".to_owned()
            } else if message.contains("current role") {
                // ApiAbility: a team member's token with write or deploy abilities.
                "the token's user is a member of the team, not an admin or owner: Coolify refuses its `write` and `deploy` tokens; use a token of a team admin".to_owned()
            } else if message.contains("not authorized to perform this action") {
                // A policy (e.g. ProjectPolicy::delete) wants a team admin.
                "the token's user may not do this here: Coolify wants an admin or owner of the team"
                    .to_owned()
            } else {
                TOKEN_HINT.to_owned()
            };
            ProviderError::Unauthorized(format!("Coolify refused the call ({message}): {hint}"))
        }
        404 => ProviderError::NotFound(message),
        409 => {
            let conflicts = json
                .as_ref()
                .and_then(|j| j["conflicts"].as_array())
                .map(|list| {
                    list.iter()
                        .map(|c| {
                            format!(
                                "{} is used by {} `{}` ({})",
                                c["domain"].as_str().unwrap_or("?"),
                                c["resource_type"].as_str().unwrap_or("resource"),
                                c["resource_name"].as_str().unwrap_or("?"),
                                c["resource_uuid"].as_str().unwrap_or("?")
                            )
                        })
                        .collect::<Vec<_>>()
                        .join("; ")
                })
                .filter(|s| !s.is_empty());
            ProviderError::Permanent(match conflicts {
                Some(list) => format!("domain conflict in Coolify: {list}"),
                None => format!("conflict in Coolify: {message}"),
            })
        }
        422 => {
            let details = json
                .as_ref()
                .and_then(|j| j.get("errors"))
                .map(describe_errors);
            ProviderError::Permanent(match details {
                Some(details) => format!("Coolify rejected the request: {details}"),
                None => format!("Coolify rejected the request: {message}"),
            })
        }
        _ => {
            let extra = json
                .as_ref()
                .and_then(|j| j["error"].as_str())
                .map(|e| format!(" ({e})"))
                .unwrap_or_default();
            ProviderError::Permanent(format!("Coolify answered {status}: {message}{extra}"))
        }
    }
}

/// The answer to one request: a 2xx is a [`Reply`], anything else a [`Failure`] with
/// Coolify's error mapped.
pub fn answer(response: Result<Response, ProviderError>) -> Result<Reply, Failure> {
    let response = response.map_err(|error| Failure { status: 0, error })?;
    let status = response.status;
    if response.is_success() {
        return Ok(Reply {
            status,
            body: response.body,
        });
    }
    Err(Failure {
        status,
        error: error_for(status, &response.body, response.retry_after_ms()),
    })
}

/// A request to `path` (starting with `/`) with a JSON `body`, if any.
pub fn request(api: &Api, method: Method, path: &str, body: Option<&Value>) -> Request {
    api.request(method, path).json_opt(body)
}

/// Sends one request.
pub fn call(api: &Api, method: Method, path: &str, body: Option<&Value>) -> Result<Reply, Failure> {
    answer(request(api, method, path, body).send())
}

/// Like [`call`], parsing the body as JSON.
pub fn json(
    api: &Api,
    method: Method,
    path: &str,
    body: Option<&Value>,
) -> Result<Value, ProviderError> {
    call(api, method, path, body).map_err(|f| f.error)?.json()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_errors_of_every_shape_are_readable() {
        let body = br#"{"message":"Validation failed.","errors":{"name":["This field is not allowed."],"docker_compose_raw":"The docker_compose_raw should be base64 encoded."}}"#;
        let ProviderError::Permanent(text) = error_for(422, body, None) else {
            panic!("permanent")
        };
        assert_eq!(
            text,
            "Coolify rejected the request: docker_compose_raw: The docker_compose_raw should be base64 encoded.; name: This field is not allowed."
        );
        let ProviderError::Permanent(text) = error_for(
            422,
            br#"{"message":"Validation failed.","errors":["Service x does not exist"]}"#,
            None,
        ) else {
            panic!()
        };
        assert!(text.ends_with("Service x does not exist"));
    }

    #[test]
    fn statuses_map_to_variants() {
        assert!(
            matches!(error_for(429, br#"{"message":"Too Many Attempts."}"#, Some(2000)), ProviderError::Transient(t) if t.retry_after_ms == Some(2000))
        );
        assert!(matches!(
            error_for(502, b"<html>bad gateway</html>", None),
            ProviderError::Transient(_)
        ));
        assert!(matches!(
            error_for(401, br#"{"message":"Unauthenticated."}"#, None),
            ProviderError::Unauthorized(_)
        ));
        assert!(
            matches!(error_for(403, br#"{"success":true,"message":"You are not allowed to access the API."}"#, None), ProviderError::Unauthorized(m) if m.contains("allowed IPs"))
        );
        for (body, hint) in [
            (
                &br#"{"message":"Missing required permissions: write"}"#[..],
                "lacks an ability",
            ),
            (
                &br#"{"message":"You are not allowed to perform this action. Your token abilities exceed your current role."}"#[..],
                "member of the team, not an admin",
            ),
            (
                &br#"{"message":"You are not authorized to perform this action.","error":"Unauthorized"}"#[..],
                "admin or owner of the team",
            ),
        ] {
            assert!(
                matches!(error_for(403, body, None), ProviderError::Unauthorized(ref m) if m.contains(hint)),
                "{hint}"
            );
        }
        assert!(matches!(
            error_for(404, br#"{"message":"Application not found"}"#, None),
            ProviderError::NotFound(_)
        ));
        let conflict = br#"{"message":"Domain conflicts detected.","conflicts":[{"domain":"https://a.example.com","resource_name":"other","resource_uuid":"u1","resource_type":"application","message":"x"}]}"#;
        assert!(
            matches!(error_for(409, conflict, None), ProviderError::Permanent(m) if m.contains("https://a.example.com is used by application `other` (u1)"))
        );
    }
}
