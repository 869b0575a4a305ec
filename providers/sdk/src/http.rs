//! Requests through the host: the only way out of the sandbox.
//!
//! An [`Api`] holds what every request to one API shares (its name for messages, base URL,
//! credential, default timeout). [`Request::send`] maps transport failures to
//! [`ProviderError`]s; [`Response::error`] maps an unsuccessful status the common way,
//! for providers to use where their API has nothing more precise to say. [`send_many`]
//! sends independent requests in one host call (one round trip instead of several).

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::bindings::fabrik::provider::host::{self, Credential, HttpError, HttpRequest};
use crate::error::{not_found, permanent, transient, unauthorized};
use crate::{AuthScheme, Method, ProviderError};

/// The host in a component; natively, the fake host of `crate::testing` (unit tests).
mod transport {
    use crate::bindings::fabrik::provider::host::{HttpError, HttpRequest, HttpResponse};

    #[cfg(target_arch = "wasm32")]
    pub fn send(request: &HttpRequest) -> Result<HttpResponse, HttpError> {
        crate::bindings::fabrik::provider::host::http_send(request)
    }

    #[cfg(target_arch = "wasm32")]
    pub fn send_many(requests: &[HttpRequest]) -> Vec<Result<HttpResponse, HttpError>> {
        crate::bindings::fabrik::provider::host::http_send_many(requests)
    }

    #[cfg(not(target_arch = "wasm32"))]
    pub fn send(request: &HttpRequest) -> Result<HttpResponse, HttpError> {
        crate::testing::http_send(request)
    }

    #[cfg(not(target_arch = "wasm32"))]
    pub fn send_many(requests: &[HttpRequest]) -> Vec<Result<HttpResponse, HttpError>> {
        requests.iter().map(crate::testing::http_send).collect()
    }
}

/// What requests to one API share.
#[derive(Debug, Clone)]
pub struct Api {
    name: String,
    base: String,
    credential: Option<(String, AuthScheme)>,
    timeout_ms: Option<u32>,
}

impl Api {
    /// `name` is how messages call the API (`Cloudflare`); `base` is the URL paths are
    /// appended to (see [`crate::config::Config::base_url`]).
    pub fn new(name: impl Into<String>, base: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            base: base.into(),
            credential: None,
            timeout_ms: Some(20_000),
        }
    }

    /// Attaches the secret config key `key` to every request as `Authorization: Bearer`.
    pub fn bearer(mut self, key: &str) -> Self {
        self.credential = Some((key.to_owned(), AuthScheme::Bearer));
        self
    }

    /// Attaches the secret config key `key` in the header `header`.
    pub fn credential_header(mut self, key: &str, header: &str) -> Self {
        self.credential = Some((key.to_owned(), AuthScheme::Header(header.to_owned())));
        self
    }

    /// The default per-request timeout (the host caps it).
    pub fn timeout_ms(mut self, timeout_ms: u32) -> Self {
        self.timeout_ms = Some(timeout_ms);
        self
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    /// A request to `base + path` (`path` starts with `/`), asking for JSON.
    pub fn request(&self, method: Method, path: &str) -> Request {
        Request {
            api: self.name.clone(),
            inner: HttpRequest {
                method,
                url: format!("{}{path}", self.base),
                headers: vec![("accept".to_owned(), "application/json".to_owned())],
                body: None,
                credential: self.credential.as_ref().map(|(key, scheme)| Credential {
                    key: key.clone(),
                    scheme: scheme.clone(),
                }),
                timeout_ms: self.timeout_ms,
            },
        }
    }

    pub fn get(&self, path: &str) -> Request {
        self.request(Method::Get, path)
    }

    /// A `POST` of `body` as JSON.
    pub fn post(&self, path: &str, body: &impl Serialize) -> Request {
        self.request(Method::Post, path).json(body)
    }

    /// A `PUT` of `body` as JSON.
    pub fn put(&self, path: &str, body: &impl Serialize) -> Request {
        self.request(Method::Put, path).json(body)
    }

    /// A `PATCH` of `body` as JSON.
    pub fn patch(&self, path: &str, body: &impl Serialize) -> Request {
        self.request(Method::Patch, path).json(body)
    }

    pub fn delete(&self, path: &str) -> Request {
        self.request(Method::Delete, path)
    }
}

/// One request, built from an [`Api`].
#[derive(Debug, Clone)]
pub struct Request {
    api: String,
    inner: HttpRequest,
}

impl Request {
    /// Adds a header.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.inner.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    /// Sends `body` as JSON.
    pub fn json(mut self, body: &impl Serialize) -> Self {
        self.inner.body = serde_json::to_vec(body).ok();
        self.inner
            .headers
            .push(("content-type".to_owned(), "application/json".to_owned()));
        self
    }

    /// Sends `body` as it is (no content type set: add one with [`Request::header`]).
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.inner.body = Some(body.into());
        self
    }

    /// Has the host put the secret config key `key` into the body where it reads
    /// `placeholder` (JSON-escaped; contract 0.4): for an API that takes a password in a
    /// message, never seen by the provider. Replaces the API's own credential for this
    /// request; the answer comes back without the value in it.
    pub fn credential_in_body(mut self, key: &str, placeholder: &str) -> Self {
        self.inner.credential = Some(Credential {
            key: key.to_owned(),
            scheme: AuthScheme::Body(placeholder.to_owned()),
        });
        self
    }

    /// Sends no credential (an API whose other requests carry one).
    pub fn without_credential(mut self) -> Self {
        self.inner.credential = None;
        self
    }

    /// Sends `body` as JSON when it is `Some`.
    pub fn json_opt(self, body: Option<&impl Serialize>) -> Self {
        match body {
            Some(body) => self.json(body),
            None => self,
        }
    }

    pub fn timeout_ms(mut self, timeout_ms: u32) -> Self {
        self.inner.timeout_ms = Some(timeout_ms);
        self
    }

    /// Sends it. `Err` only when there is no response; any status is a [`Response`].
    pub fn send(self) -> Result<Response, ProviderError> {
        let answer = transport::send(&self.inner);
        self.answer(answer)
    }

    /// Sends it and says whether a request that got no answer may have been acted on:
    /// for a change that must not be made twice blind (see [`Delivery`]).
    pub fn deliver(self) -> Delivery {
        let answer = transport::send(&self.inner);
        self.delivery(answer)
    }

    fn delivery(self, answer: Result<host::HttpResponse, HttpError>) -> Delivery {
        let sent = match &answer {
            Ok(_) => None,
            Err(HttpError::Timeout | HttpError::TooLarge(_)) => Some(true),
            Err(HttpError::Connect(_) | HttpError::Denied(_) | HttpError::InvalidRequest(_)) => {
                Some(false)
            }
        };
        match (self.answer(answer), sent) {
            (Ok(response), _) => Delivery::Answered(response),
            (Err(error), Some(true)) => Delivery::Unanswered(error),
            (Err(error), _) => Delivery::NotSent(error),
        }
    }

    fn answer(
        self,
        answer: Result<host::HttpResponse, HttpError>,
    ) -> Result<Response, ProviderError> {
        let api = self.api;
        match answer {
            Ok(r) => Ok(Response {
                api,
                status: r.status,
                headers: r.headers,
                body: r.body,
            }),
            Err(error) => Err(transport_error(&api, error)),
        }
    }
}

/// Sends independent requests in one host call, concurrently; answers in order. Use it
/// for reads that do not depend on each other. The host takes at most 32 per call.
pub fn send_many(requests: Vec<Request>) -> Vec<Result<Response, ProviderError>> {
    deliver_many(requests)
        .into_iter()
        .map(Delivery::into_result)
        .collect()
}

/// [`send_many`], saying of each request what [`Request::deliver`] says.
pub fn deliver_many(requests: Vec<Request>) -> Vec<Delivery> {
    let inner: Vec<HttpRequest> = requests.iter().map(|r| r.inner.clone()).collect();
    let answers = transport::send_many(&inner);
    requests
        .into_iter()
        .zip(answers)
        .map(|(request, answer)| request.delivery(answer))
        .collect()
}

/// What became of a request. A change whose request went unanswered may have been made:
/// look at the API before sending it again, or it may be made twice (two deployments, two
/// records). A gateway's 502 or 504 is an answer here, but says as little: the API behind
/// it may have acted too.
#[derive(Debug)]
pub enum Delivery {
    /// A response came, whatever its status.
    Answered(Response),
    /// The request never reached the API (no connection, or refused by the host):
    /// sending it again cannot repeat it.
    NotSent(ProviderError),
    /// Sent, and no (readable) answer came: the timeout passed, or the answer was over
    /// the body limit. The API may have acted on it.
    Unanswered(ProviderError),
}

impl Delivery {
    /// The answer, or the error for a request that got none (as [`Request::send`]).
    pub fn into_result(self) -> Result<Response, ProviderError> {
        match self {
            Self::Answered(response) => Ok(response),
            Self::NotSent(error) | Self::Unanswered(error) => Err(error),
        }
    }
}

/// How a request that got no response is reported.
pub fn transport_error(api: &str, error: HttpError) -> ProviderError {
    match error {
        HttpError::Timeout => transient(format!("{api} did not answer in time"), None),
        HttpError::Connect(message) => transient(format!("cannot reach {api}: {message}"), None),
        HttpError::TooLarge(limit) => permanent(format!(
            "{api} answered with a body larger than the host's limit of {limit} bytes"
        )),
        HttpError::Denied(message) => permanent(format!(
            "the host refused a request to {api}: {message} (is `base-url` right?)"
        )),
        HttpError::InvalidRequest(message) => {
            permanent(format!("the host refused a request to {api}: {message}"))
        }
    }
}

/// A response, whatever its status.
#[derive(Debug, Clone)]
pub struct Response {
    api: String,
    pub status: u16,
    /// Header names in lowercase.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// Longest excerpt of a body quoted in an error.
const EXCERPT: usize = 160;

impl Response {
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The first value of header `name` (lowercase).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The body as `T`, or a `permanent` error quoting its start.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, ProviderError> {
        serde_json::from_slice(&self.body).map_err(|e| {
            permanent(format!(
                "{} answered {} with a body that is not the JSON expected ({e}): {}",
                self.api,
                self.status,
                self.excerpt()
            ))
        })
    }

    /// The start of the body as text, for messages.
    pub fn excerpt(&self) -> String {
        let text = String::from_utf8_lossy(&self.body);
        let text = text.trim();
        if text.chars().count() > EXCERPT {
            format!("{}…", text.chars().take(EXCERPT).collect::<String>())
        } else {
            text.to_owned()
        }
    }

    /// How long the API asked to wait, from `Retry-After` (seconds or an HTTP date).
    pub fn retry_after_ms(&self) -> Option<u64> {
        retry_after_ms(self.header("retry-after")?, std::time::SystemTime::now())
    }

    /// The common mapping of an unsuccessful status, with `message` (what the API said)
    /// in the error: 429 and 5xx are transient (with `Retry-After`), 401 and 403
    /// unauthorized, 404 not found, anything else permanent.
    pub fn error(&self, message: &str) -> ProviderError {
        let api = &self.api;
        let status = self.status;
        match status {
            429 => transient(
                format!("{api} is rate limiting: {message}"),
                self.retry_after_ms(),
            ),
            500..=599 => transient(
                format!("{api} error {status}: {message}"),
                self.retry_after_ms(),
            ),
            401 | 403 => unauthorized(format!(
                "{api} refused the credential ({status}): {message}"
            )),
            404 => not_found(message.to_owned()),
            _ => permanent(format!("{api} answered {status}: {message}")),
        }
    }

    /// `Ok(self)` on a 2xx, else [`Response::error`] with an excerpt of the body.
    pub fn success(self) -> Result<Self, ProviderError> {
        if self.is_success() {
            Ok(self)
        } else {
            Err(self.error(&self.excerpt()))
        }
    }
}

/// `value` percent-encoded for a URL query or path segment: everything but RFC 3986's
/// unreserved characters (`A-Z a-z 0-9 - . _ ~`) is escaped.
pub fn query_escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// `Retry-After` in milliseconds: delay-seconds, or an HTTP date relative to `now`
/// (RFC 9110, section 10.2.3). A date in the past means now.
pub fn retry_after_ms(value: &str, now: std::time::SystemTime) -> Option<u64> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(seconds.saturating_mul(1000));
    }
    let when = httpdate::parse_http_date(value).ok()?;
    Some(
        when.duration_since(now)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    fn response(status: u16, headers: &[(&str, &str)], body: &str) -> Response {
        Response {
            api: "Example".to_owned(),
            status,
            headers: headers
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            body: body.as_bytes().to_vec(),
        }
    }

    #[test]
    fn query_values_are_escaped() {
        assert_eq!(query_escape("fabrik:acme/"), "fabrik%3Aacme%2F");
        assert_eq!(query_escape("a b&c=d"), "a%20b%26c%3Dd");
        assert_eq!(query_escape("api.example.org"), "api.example.org");
        assert_eq!(query_escape("é"), "%C3%A9");
    }

    #[test]
    fn retry_after_in_both_forms() {
        let now = UNIX_EPOCH + Duration::from_secs(1_445_412_480); // Wed, 21 Oct 2015 07:28:00 GMT
        assert_eq!(retry_after_ms("120", now), Some(120_000));
        assert_eq!(
            retry_after_ms("Wed, 21 Oct 2015 07:28:30 GMT", now),
            Some(30_000)
        );
        assert_eq!(
            retry_after_ms("Wed, 21 Oct 2015 07:27:00 GMT", now),
            Some(0)
        );
        assert_eq!(retry_after_ms("soon", now), None);
    }

    #[test]
    fn statuses_map_to_variants() {
        assert!(matches!(
            response(429, &[("retry-after", "2")], "").error("slow down"),
            ProviderError::Transient(t) if t.retry_after_ms == Some(2000)
        ));
        assert!(matches!(
            response(503, &[], "").error("x"),
            ProviderError::Transient(_)
        ));
        assert!(matches!(
            response(401, &[], "").error("x"),
            ProviderError::Unauthorized(_)
        ));
        assert!(matches!(
            response(403, &[], "").error("x"),
            ProviderError::Unauthorized(_)
        ));
        assert!(matches!(
            response(404, &[], "").error("x"),
            ProviderError::NotFound(_)
        ));
        assert!(matches!(
            response(422, &[], "").error("bad field"),
            ProviderError::Permanent(m) if m == "Example answered 422: bad field"
        ));
        assert!(response(204, &[], "").success().is_ok());
    }

    #[test]
    fn bodies_are_quoted_short() {
        let long = "x".repeat(500);
        let excerpt = response(500, &[], &long).excerpt();
        assert_eq!(excerpt.chars().count(), EXCERPT + 1);
        assert!(matches!(
            response(200, &[], "<html>").json::<serde_json::Value>(),
            Err(ProviderError::Permanent(m)) if m.contains("<html>")
        ));
    }
}
