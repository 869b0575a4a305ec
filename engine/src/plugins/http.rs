//! `http-send`: the only way out of a provider's sandbox.
//!
//! The host, not the guest, decides where a request may go (the origins granted to the
//! provider), attaches credentials (only to those origins; the guest names a credential
//! and never sees its value), caps bodies, applies timeouts and never follows a redirect
//! to another origin.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use secrecy::{ExposeSecret, SecretString};
use url::{Origin, Url};

use super::pacing::Budgets;

/// Largest request or response body, by default.
pub const DEFAULT_BODY_LIMIT: usize = 8 << 20;
/// Longest a read (`GET`, `HEAD`) may take, by default and at most.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// What a request leaves of its call's time, for the provider to answer in.
const DEADLINE_MARGIN: Duration = Duration::from_millis(500);
/// Longest a request that changes something may take at most: an API may do slow work
/// before it answers one (Coolify parses a compose and talks to the server over SSH
/// before it answers `POST /deploy`).
pub const CHANGE_REQUEST_TIMEOUT: Duration = Duration::from_secs(120);
/// Most requests one `http-send-many` call may carry; the rest are refused.
pub const MANY_MAX_REQUESTS: usize = 32;
/// Most requests of one `http-send-many` call in flight at once.
pub const MANY_CONCURRENCY: usize = 8;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Post,
    Put,
    Patch,
    Delete,
    Head,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthScheme {
    Bearer,
    Header(String),
    /// The value replaces this placeholder in the body, JSON-escaped (contract 0.4).
    Body(String),
}

/// The shortest placeholder a `body` credential may name: a shorter one could be found
/// by accident in a body.
const MIN_PLACEHOLDER: usize = 8;

/// The shortest credential value scrubbed from answers: shorter strings are too likely
/// to occur by chance (Uptime Kuma's passwords have at least 6 characters).
const MIN_SCRUBBED: usize = 6;

/// `value` as the inside of a JSON string.
fn json_escaped(value: &str) -> String {
    let quoted = serde_json::Value::String(value.to_owned()).to_string();
    quoted[1..quoted.len() - 1].to_owned()
}

/// `haystack` with every occurrence of `needle` replaced by `with`.
fn replace_bytes(haystack: &[u8], needle: &[u8], with: &[u8]) -> Vec<u8> {
    if needle.is_empty() {
        return haystack.to_vec();
    }
    let mut out = Vec::with_capacity(haystack.len());
    let mut i = 0;
    while i < haystack.len() {
        if haystack[i..].starts_with(needle) {
            out.extend_from_slice(with);
            i += needle.len();
        } else {
            out.push(haystack[i]);
            i += 1;
        }
    }
    out
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credential {
    pub key: String,
    pub scheme: AuthScheme,
}

#[derive(Debug, Clone)]
pub struct HttpRequest {
    pub method: Method,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Option<Vec<u8>>,
    pub credential: Option<Credential>,
    pub timeout: Option<Duration>,
}

#[derive(Debug, Clone)]
pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HttpError {
    #[error("denied: {0}")]
    Denied(String),
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    #[error("connection failed: {0}")]
    Connect(String),
    #[error("timed out")]
    Timeout,
    #[error("response body larger than {0} bytes")]
    TooLarge(u64),
}

/// What one provider may reach, the credentials the host holds for it, and the values
/// hidden from everything it logs.
#[derive(Debug, Default)]
pub struct Grants {
    origins: Vec<Origin>,
    credentials: HashMap<String, SecretString>,
    redactor: crate::secrets::Redactor,
}

impl Grants {
    /// Grants the origin of `url` (`https://host:port`); an unparsable URL grants nothing.
    pub fn allow_origin(&mut self, url: &str) -> Result<(), String> {
        let parsed = Url::parse(url).map_err(|e| format!("`{url}` is not a URL: {e}"))?;
        if !matches!(parsed.scheme(), "http" | "https") || parsed.host().is_none() {
            return Err(format!("`{url}` is not an http(s) URL"));
        }
        self.origins.push(parsed.origin());
        Ok(())
    }

    /// Holds a credential the provider may name in requests.
    pub fn add_credential(&mut self, key: &str, value: SecretString) {
        self.redactor.add(&value);
        self.credentials.insert(key.to_owned(), value);
    }

    /// Hides `value` (an app secret the provider is given) in the provider's logs.
    pub fn hide(&mut self, value: &SecretString) {
        self.redactor.add(value);
    }

    /// The granted origins a credential would reach over plain HTTP, readable on the
    /// way: `http://` ones other than this machine's loopback, when there is a credential.
    pub fn cleartext_origins(&self) -> Vec<String> {
        if self.credentials.is_empty() {
            return Vec::new();
        }
        self.origins
            .iter()
            .filter(|origin| match origin {
                Origin::Tuple(scheme, host, _) => {
                    scheme == "http"
                        && match host {
                            // `localhost` itself resolves to loopback (/etc/hosts); a
                            // `*.localhost` name does not everywhere.
                            url::Host::Domain(name) => !name.eq_ignore_ascii_case("localhost"),
                            url::Host::Ipv4(ip) => !ip.is_loopback(),
                            url::Host::Ipv6(ip) => !ip.is_loopback(),
                        }
                }
                Origin::Opaque(_) => false,
            })
            .map(Origin::ascii_serialization)
            .collect()
    }

    pub fn origins(&self) -> impl Iterator<Item = String> + '_ {
        self.origins.iter().map(Origin::ascii_serialization)
    }

    fn allows(&self, url: &Url) -> bool {
        self.origins.contains(&url.origin())
    }
}

/// The provider call a request serves: when it runs out of time, and whether it only
/// asks how far something is (`progress`), which yields the budget to requests that
/// change something.
#[derive(Debug, Clone, Copy, Default)]
pub struct Serving {
    pub deadline: Option<Instant>,
    pub poll: bool,
}

/// Sends requests for one provider within its grants.
#[derive(Debug)]
pub struct HttpGateway {
    provider: String,
    grants: Grants,
    client: reqwest::Client,
    body_limit: usize,
    budgets: Arc<Budgets>,
}

/// Headers the host owns: the request line's and the body's framing, and every
/// hop-by-hop header (RFC 9110, 7.6.1), which a proxy on the way consumes or rewrites:
/// a credential in `Proxy-Authorization` goes to whatever proxy is there, not to the API.
const RESERVED_HEADERS: &[&str] = &[
    "host",
    "content-length",
    "connection",
    "transfer-encoding",
    "keep-alive",
    "proxy-authorization",
    "proxy-authenticate",
    "proxy-connection",
    "te",
    "trailer",
    "upgrade",
];

impl HttpGateway {
    pub fn new(provider: &str, grants: Grants) -> Result<Self, reqwest::Error> {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::custom(|attempt| {
                let same_origin = attempt
                    .previous()
                    .first()
                    .is_some_and(|first| first.origin() == attempt.url().origin());
                if same_origin && attempt.previous().len() < 5 {
                    attempt.follow()
                } else {
                    // Returned to the provider as the 3xx it is.
                    attempt.stop()
                }
            }))
            .user_agent(concat!("fabrik/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self {
            provider: provider.to_owned(),
            grants,
            client,
            body_limit: DEFAULT_BODY_LIMIT,
            budgets: Arc::default(),
        })
    }

    /// Paces requests under `budgets`, shared with the other gateways of the process.
    pub fn with_budgets(mut self, budgets: Arc<Budgets>) -> Self {
        self.budgets = budgets;
        self
    }

    /// The request budgets this gateway paces under.
    pub fn budgets(&self) -> &Arc<Budgets> {
        &self.budgets
    }

    pub fn grants(&self) -> &Grants {
        &self.grants
    }

    /// `text` with every credential and hidden value replaced.
    pub fn redact(&self, text: &str) -> String {
        self.grants.redactor.redact(text)
    }

    /// Sends independent requests concurrently (at most [`MANY_CONCURRENCY`] in flight),
    /// each exactly as [`HttpGateway::send`] would; answers in the order of `requests`.
    /// Requests past [`MANY_MAX_REQUESTS`] are answered `InvalidRequest`, not sent.
    pub async fn send_many(
        &self,
        requests: Vec<HttpRequest>,
        serving: Serving,
    ) -> Vec<Result<HttpResponse, HttpError>> {
        use futures::stream::{self, StreamExt};
        let total = requests.len();
        let mut answers: Vec<Result<HttpResponse, HttpError>> = stream::iter(
            requests
                .into_iter()
                .take(MANY_MAX_REQUESTS)
                .map(|request| self.send(request, serving)),
        )
        .buffered(MANY_CONCURRENCY)
        .collect()
        .await;
        answers.extend((MANY_MAX_REQUESTS..total).map(|index| {
            Err(HttpError::InvalidRequest(format!(
                "request {} of {total} not sent: http-send-many takes at most {MANY_MAX_REQUESTS} requests per call",
                index + 1
            )))
        }));
        answers
    }

    /// Sends one request for the provider call `serving`: a request the origin's budget
    /// would hold past half the call's time left is not sent but answered `429` by the
    /// host, with the `Retry-After` the budget needs, so that the provider reports it
    /// transient and the engine waits outside the call.
    pub async fn send(
        &self,
        request: HttpRequest,
        serving: Serving,
    ) -> Result<HttpResponse, HttpError> {
        let deadline = serving.deadline;
        let url = Url::parse(&request.url).map_err(|e| {
            HttpError::InvalidRequest(format!("`{}` is not a URL: {e}", request.url))
        })?;
        if !self.grants.allows(&url) {
            tracing::warn!(provider = %self.provider, origin = %url.origin().ascii_serialization(), "denied a request to an origin not granted to the provider");
            return Err(HttpError::Denied(format!(
                "origin `{}` is not granted to provider `{}` (granted: {})",
                url.origin().ascii_serialization(),
                self.provider,
                self.grants.origins().collect::<Vec<_>>().join(", ")
            )));
        }
        let method = match request.method {
            Method::Get => reqwest::Method::GET,
            Method::Post => reqwest::Method::POST,
            Method::Put => reqwest::Method::PUT,
            Method::Patch => reqwest::Method::PATCH,
            Method::Delete => reqwest::Method::DELETE,
            Method::Head => reqwest::Method::HEAD,
        };
        let credential_header = request.credential.as_ref().and_then(|c| match &c.scheme {
            AuthScheme::Bearer => Some("authorization".to_owned()),
            AuthScheme::Header(name) => Some(name.to_ascii_lowercase()),
            AuthScheme::Body(_) => None,
        });
        // A credential goes in a header of its own: never in one the host sets (`Host`
        // would send it to whatever reads the request line, a proxy's log).
        if let Some(name) = &credential_header
            && (RESERVED_HEADERS.contains(&name.as_str())
                || reqwest::header::HeaderName::from_bytes(name.as_bytes()).is_err())
        {
            return Err(HttpError::InvalidRequest(format!(
                "a credential cannot go in header `{name}`, which is set by the host"
            )));
        }
        let mut builder = self.client.request(method.clone(), url.clone());
        for (name, value) in &request.headers {
            let lower = name.to_ascii_lowercase();
            if RESERVED_HEADERS.contains(&lower.as_str())
                || Some(&lower) == credential_header.as_ref()
            {
                return Err(HttpError::InvalidRequest(format!(
                    "header `{name}` is set by the host"
                )));
            }
            builder = builder.header(name, value);
        }
        let mut body = request.body;
        if let Some(credential) = &request.credential {
            let Some(secret) = self.grants.credentials.get(&credential.key) else {
                return Err(HttpError::Denied(format!(
                    "credential `{}` is not configured for provider `{}`",
                    credential.key, self.provider
                )));
            };
            let value = secret.expose_secret();
            if let AuthScheme::Body(placeholder) = &credential.scheme {
                let found = body.as_deref().is_some_and(|b| {
                    b.windows(placeholder.len())
                        .any(|w| w == placeholder.as_bytes())
                });
                if placeholder.len() < MIN_PLACEHOLDER || !found {
                    return Err(HttpError::InvalidRequest(format!(
                        "credential `{}` goes in the body at a placeholder of at least {MIN_PLACEHOLDER} characters that the body contains",
                        credential.key
                    )));
                }
                body = body.map(|b| {
                    replace_bytes(&b, placeholder.as_bytes(), json_escaped(value).as_bytes())
                });
            }
        }
        if let Some(credential) = request
            .credential
            .as_ref()
            .filter(|c| !matches!(c.scheme, AuthScheme::Body(_)))
        {
            let Some(secret) = self.grants.credentials.get(&credential.key) else {
                return Err(HttpError::Denied(format!(
                    "credential `{}` is not configured for provider `{}`",
                    credential.key, self.provider
                )));
            };
            let mut value = match &credential.scheme {
                AuthScheme::Bearer => reqwest::header::HeaderValue::from_str(&format!(
                    "Bearer {}",
                    secret.expose_secret()
                )),
                AuthScheme::Header(_) | AuthScheme::Body(_) => {
                    reqwest::header::HeaderValue::from_str(secret.expose_secret())
                }
            }
            .map_err(|_| {
                HttpError::InvalidRequest(format!(
                    "credential `{}` is not a valid header value",
                    credential.key
                ))
            })?;
            value.set_sensitive(true);
            builder = builder.header(
                credential_header.as_deref().unwrap_or("authorization"),
                value,
            );
        }
        if let Some(body) = body {
            if body.len() > self.body_limit {
                return Err(HttpError::InvalidRequest(format!(
                    "request body of {} bytes is over the limit of {}",
                    body.len(),
                    self.body_limit
                )));
            }
            builder = builder.body(body);
        }
        let cap = match request.method {
            Method::Get | Method::Head => DEFAULT_REQUEST_TIMEOUT,
            _ => CHANGE_REQUEST_TIMEOUT,
        };
        let wanted = request
            .timeout
            .map_or(DEFAULT_REQUEST_TIMEOUT, |t| t.min(cap));
        // Never past the call's deadline (issue 27): a request still waiting then would
        // be abandoned with its call, and the provider never told; ended a little before
        // it, the provider gets `timeout` and reports it `transient`, and the host's one
        // level of retries waits outside the call. Worked out for each attempt, after
        // the waits for the budget and for a `Retry-After`.
        let timeout = || match deadline {
            None => Some(wanted),
            Some(deadline) => Some(
                deadline
                    .saturating_duration_since(Instant::now())
                    .saturating_sub(DEADLINE_MARGIN),
            )
            .filter(|left| !left.is_zero())
            .map(|left| wanted.min(left)),
        };

        let origin = url.origin().ascii_serialization();
        let patience = || {
            deadline.map_or(DEFAULT_REQUEST_TIMEOUT, |d| {
                d.saturating_duration_since(Instant::now()) / 2
            })
        };
        // A 429 means the request was not processed: sent again once its `Retry-After`
        // has passed, if the call has time for it, so that a window that ends in the
        // middle of a provider call does not fail the call (and its earlier requests
        // are not made again by a retry of the whole call).
        let (started, mut response, status, headers) = loop {
            let Some(attempt) = builder.try_clone() else {
                return Err(HttpError::InvalidRequest(
                    "the request body cannot be sent twice".to_owned(),
                ));
            };
            let ticket = match self.budgets.admit(&origin, patience(), serving.poll).await {
                Ok(ticket) => ticket,
                Err(wait) => {
                    tracing::debug!(provider = %self.provider, %origin, wait_ms = wait.as_millis() as u64, "request deferred: the origin's request budget is spent");
                    return Ok(deferred(&origin, wait));
                }
            };
            let Some(timeout) = timeout() else {
                return Err(HttpError::Timeout);
            };
            let started = Instant::now();
            let response = attempt
                .timeout(timeout)
                .send()
                .await
                .map_err(|e| classify(&e))?;
            let status = response.status().as_u16();
            let headers: Vec<(String, String)> = response
                .headers()
                .iter()
                .filter_map(|(k, v)| Some((k.as_str().to_owned(), v.to_str().ok()?.to_owned())))
                .collect();
            match self.budgets.observe(ticket, status, &headers) {
                Some(wait) if wait <= patience() && wait + DEADLINE_MARGIN < patience() * 2 => {
                    tracing::debug!(provider = %self.provider, method = %method, url = %redact_query(&url), wait_ms = wait.as_millis() as u64, "rate limited: sending again after the server's Retry-After");
                    // The budget is closed until then too (`observe`): every request
                    // to the origin waits, not only this one.
                    tokio::time::sleep(wait).await;
                }
                _ => break (started, response, status, headers),
            }
        };
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| classify(&e))? {
            if body.len() + chunk.len() > self.body_limit {
                return Err(HttpError::TooLarge(self.body_limit as u64));
            }
            body.extend_from_slice(&chunk);
        }
        tracing::debug!(
            provider = %self.provider,
            method = %method,
            url = %redact_query(&url),
            status,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "provider request"
        );
        // No credential's value, should a server echo it, reaches the provider: in any
        // answer, not only that of the request that carried it (over a long-polling API
        // the echo comes in a later poll), as written and JSON-escaped.
        let mut headers = headers;
        for secret in self.grants.credentials.values() {
            let value = secret.expose_secret();
            if value.len() < MIN_SCRUBBED {
                continue;
            }
            for needle in [value.to_owned(), json_escaped(value)] {
                body = replace_bytes(&body, needle.as_bytes(), b"[redacted]");
                for (_, header) in &mut headers {
                    let replaced =
                        replace_bytes(header.as_bytes(), needle.as_bytes(), b"[redacted]");
                    *header = String::from_utf8_lossy(&replaced).into_owned();
                }
            }
        }
        Ok(HttpResponse {
            status,
            headers,
            body,
        })
    }
}

/// The host's own 429 for a request it held back: the origin's budget is spent for
/// longer than the provider call can wait.
fn deferred(origin: &str, wait: Duration) -> HttpResponse {
    let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    let message = format!(
        "Fabrik held this request back: the request budget for {origin} is spent for {seconds} s more"
    );
    HttpResponse {
        status: 429,
        headers: vec![
            ("retry-after".to_owned(), seconds.to_string()),
            ("content-type".to_owned(), "application/json".to_owned()),
            ("x-fabrik-deferred".to_owned(), "rate-limit".to_owned()),
        ],
        body: serde_json::json!({ "message": message })
            .to_string()
            .into_bytes(),
    }
}

fn classify(error: &reqwest::Error) -> HttpError {
    if error.is_timeout() {
        return HttpError::Timeout;
    }
    // The innermost cause says what happened (refused, no such host, a certificate);
    // the layers above it repeat the URL and the word "error".
    let mut cause: &dyn std::error::Error = error;
    while let Some(inner) = cause.source() {
        cause = inner;
    }
    let origin = error
        .url()
        .map(|u| u.origin().ascii_serialization())
        .unwrap_or_default();
    let what = if error.is_connect() {
        "cannot connect to"
    } else {
        "no answer from"
    };
    HttpError::Connect(format!("{what} {origin}: {cause}"))
}

/// The URL without its query string, which may carry parameters not meant for logs.
/// `url` for a log line, its query (which may carry a credential) replaced by `…`,
/// written as such (a URL's setter would percent-encode it to `%E2%80%A6`).
fn redact_query(url: &Url) -> String {
    let mut shown = url.clone();
    let had_query = shown.query().is_some();
    shown.set_query(None);
    shown.set_fragment(None);
    if had_query {
        format!("{shown}?…")
    } else {
        shown.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The redaction mark is written as such in logs, never percent-encoded.
    #[test]
    fn a_logged_url_hides_its_query_with_a_plain_mark() {
        let url = Url::parse("https://api.example.com/v1/zones?name=x&token=s3cret").expect("url");
        assert_eq!(redact_query(&url), "https://api.example.com/v1/zones?…");
        let plain = Url::parse("https://api.example.com/v1/zones").expect("url");
        assert_eq!(redact_query(&plain), "https://api.example.com/v1/zones");
    }

    fn granted(origins: &[&str], credential: bool) -> Grants {
        let mut grants = Grants::default();
        for origin in origins {
            grants.allow_origin(origin).expect("origin");
        }
        if credential {
            grants.add_credential("api-token", SecretString::from("tok-123456"));
        }
        grants
    }

    /// Issue 27: a request to an API that never answers ends before its call's deadline,
    /// whatever timeout the provider asked for, so that the provider can say `timeout`.
    #[tokio::test]
    async fn a_request_ends_before_its_call_deadline() {
        let silent = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let origin = format!("http://{}", silent.local_addr().expect("addr"));
        let gateway = HttpGateway::new("dns", granted(&[&origin], false)).expect("gateway");
        let started = Instant::now();
        let answer = gateway
            .send(
                HttpRequest {
                    method: Method::Get,
                    url: format!("{origin}/zones"),
                    headers: vec![],
                    body: None,
                    credential: None,
                    timeout: Some(Duration::from_secs(30)),
                },
                Serving {
                    deadline: Some(started + Duration::from_millis(1500)),
                    poll: false,
                },
            )
            .await;
        assert!(matches!(answer, Err(HttpError::Timeout)), "{answer:?}");
        let took = started.elapsed();
        assert!(
            took >= Duration::from_millis(900) && took < Duration::from_millis(1500),
            "{took:?}"
        );
        drop(silent);
    }

    /// Contract 0.4's `body` scheme: the value goes where the placeholder is, JSON-escaped,
    /// and an answer that echoes it comes back without it; a body without the
    /// placeholder, or a short one, is refused before anything is sent.
    #[tokio::test]
    async fn a_body_credential_is_put_in_place_and_never_echoed_back() {
        use axum::routing::post;
        let app = axum::Router::new().route(
            "/login",
            post(|headers: axum::http::HeaderMap, body: String| async move {
                let auth = headers.contains_key("authorization");
                (
                    [("x-echo", body.clone())],
                    format!("auth={auth} echo={body}"),
                )
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let origin = format!("http://{}", listener.local_addr().expect("addr"));
        tokio::spawn(async move { axum::serve(listener, app).await });
        let mut grants = granted(&[&origin], false);
        grants.add_credential("password", SecretString::from("pa\"ss-w0rd"));
        let gateway = HttpGateway::new("monitor", grants).expect("gateway");
        let send = |body: &str, placeholder: &str| {
            gateway.send(
                HttpRequest {
                    method: Method::Post,
                    url: format!("{origin}/login"),
                    headers: vec![],
                    body: Some(body.as_bytes().to_vec()),
                    credential: Some(Credential {
                        key: "password".to_owned(),
                        scheme: AuthScheme::Body(placeholder.to_owned()),
                    }),
                    timeout: None,
                },
                Serving::default(),
            )
        };
        let answer = send(r#"{"password":"{{password}}"}"#, "{{password}}")
            .await
            .expect("answered");
        let text = String::from_utf8(answer.body).expect("utf-8");
        assert_eq!(text, r#"auth=false echo={"password":"[redacted]"}"#);
        let echoed = answer
            .headers
            .iter()
            .find(|(k, _)| k == "x-echo")
            .map(|(_, v)| v.as_str());
        assert_eq!(echoed, Some(r#"{"password":"[redacted]"}"#));
        // An answer to a request that carried no credential is scrubbed too: a
        // long-polling API echoes in a later request.
        let later = gateway
            .send(
                HttpRequest {
                    method: Method::Post,
                    url: format!("{origin}/login"),
                    headers: vec![],
                    body: Some(br#"pa\"ss-w0rd pa"ss-w0rd"#.to_vec()),
                    credential: None,
                    timeout: None,
                },
                Serving::default(),
            )
            .await
            .expect("answered");
        assert_eq!(
            String::from_utf8(later.body).expect("utf-8"),
            "auth=false echo=[redacted] [redacted]"
        );
        for (body, placeholder) in [("{}", "{{password}}"), ("{{pw}}", "{{pw}}")] {
            let refused = send(body, placeholder).await;
            assert!(
                matches!(refused, Err(HttpError::InvalidRequest(_))),
                "{refused:?}"
            );
        }
    }

    #[test]
    fn only_credentials_over_plain_http_beyond_loopback_are_cleartext() {
        let all = [
            "http://203.0.113.5:8000",
            "http://coolify.example.com",
            "https://api.cloudflare.com",
            "http://127.0.0.1:8000",
            "http://[::1]:8000",
            "http://localhost:8000",
            "http://app.localhost",
        ];
        assert_eq!(
            granted(&all, true).cleartext_origins(),
            [
                "http://203.0.113.5:8000",
                "http://coolify.example.com",
                "http://app.localhost"
            ]
        );
        assert!(granted(&all, false).cleartext_origins().is_empty());
    }
}
