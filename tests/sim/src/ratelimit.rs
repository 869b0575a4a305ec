//! The APIs' rate limits, as their servers enforce them: a fixed window per user that
//! starts with its first request, and a 429 once it is spent.
//!
//! - **Coolify** (Laravel's `ThrottleRequests` with the `api` limiter of
//!   coollabsio/coolify `app/Providers/RouteServiceProvider.php`, `configureRateLimiting`:
//!   `Limit::perMinute(config('api.rate_limit'))` keyed by the user, `API_RATE_LIMIT`
//!   defaulting to 200 in `config/api.php`). Every answer carries `X-RateLimit-Limit` and
//!   `X-RateLimit-Remaining`; a refused one is `429 {"message": "Too Many Attempts."}`
//!   with `Retry-After` (seconds until the window ends) and `X-RateLimit-Reset` (its
//!   Unix time). A refused request does not count (`tooManyAttempts` is checked before
//!   `hit`). The throttle runs before authentication (the `api` middleware group comes
//!   first), so it counts requests with a wrong token too.
//! - **Cloudflare** (developers.cloudflare.com/fundamentals/api/reference/limits:
//!   1,200 requests per five minutes per user; once exceeded, every call is refused until
//!   the window ends). Every answer carries `Ratelimit: "default";r=<remaining>;t=<reset>`
//!   and `Ratelimit-Policy: "default";q=<limit>;w=<window>`; a refused one is a 429 with
//!   `retry-after` and the v4 error envelope.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// Whose headers and error body the limiter speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Laravel,
    Cloudflare,
}

/// A per-user fixed-window rate limit. `limit` 0 turns it off.
#[derive(Debug, Clone)]
pub struct RateLimiter {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    dialect: Dialect,
    limit: AtomicU32,
    window: Mutex<Duration>,
    /// User key → when its window started and how many requests it counted.
    windows: Mutex<HashMap<String, (Instant, u32)>>,
    refused: AtomicU64,
    served: AtomicU64,
}

impl RateLimiter {
    pub fn new(dialect: Dialect, limit: u32, window: Duration) -> Self {
        Self {
            inner: Arc::new(Inner {
                dialect,
                limit: AtomicU32::new(limit),
                window: Mutex::new(window),
                windows: Mutex::new(HashMap::new()),
                refused: AtomicU64::new(0),
                served: AtomicU64::new(0),
            }),
        }
    }

    /// Coolify's default: 200 a minute.
    pub fn coolify() -> Self {
        Self::new(Dialect::Laravel, 200, Duration::from_secs(60))
    }

    /// Cloudflare's: 1,200 per five minutes.
    pub fn cloudflare() -> Self {
        Self::new(Dialect::Cloudflare, 1200, Duration::from_secs(300))
    }

    /// Sets the limit (`0`: off) and the window; windows already open are forgotten.
    pub fn set(&self, limit: u32, window: Duration) {
        self.inner.limit.store(limit, Ordering::SeqCst);
        *lock(&self.inner.window) = window;
        lock(&self.inner.windows).clear();
    }

    /// The limit and window in force (`0`: off).
    pub fn limit(&self) -> (u32, Duration) {
        (
            self.inner.limit.load(Ordering::SeqCst),
            *lock(&self.inner.window),
        )
    }

    /// Requests refused with a 429 so far.
    pub fn refused(&self) -> u64 {
        self.inner.refused.load(Ordering::SeqCst)
    }

    /// Requests let through so far (counted or not limited).
    pub fn served(&self) -> u64 {
        self.inner.served.load(Ordering::SeqCst)
    }

    /// Counts one request of `user`: `Ok(remaining, reset)` or `Err(retry_after)`.
    fn hit(&self, user: &str) -> Result<(u32, u32, Duration), (u32, Duration)> {
        let limit = self.inner.limit.load(Ordering::SeqCst);
        let window = *lock(&self.inner.window);
        let now = Instant::now();
        let mut windows = lock(&self.inner.windows);
        let entry = windows.entry(user.to_owned()).or_insert((now, 0));
        if now >= entry.0 + window {
            *entry = (now, 0);
        }
        let reset = (entry.0 + window).saturating_duration_since(now);
        if entry.1 >= limit {
            return Err((limit, reset));
        }
        entry.1 += 1;
        Ok((limit, limit - entry.1, reset))
    }
}

/// The axum middleware: `axum::middleware::from_fn_with_state(limiter, ratelimit::enforce)`.
pub async fn enforce(State(limiter): State<RateLimiter>, request: Request, next: Next) -> Response {
    if limiter.inner.limit.load(Ordering::SeqCst) == 0 {
        limiter.inner.served.fetch_add(1, Ordering::SeqCst);
        return next.run(request).await;
    }
    // Keyed by the user: the credential stands for one here (an unauthenticated request
    // is keyed by its address, as Laravel does: all of loopback is one).
    let user = request
        .headers()
        .get("authorization")
        .or_else(|| request.headers().get("x-auth-key"))
        .and_then(|v| v.to_str().ok())
        .unwrap_or("127.0.0.1")
        .to_owned();
    let dialect = limiter.inner.dialect;
    let window = *lock(&limiter.inner.window);
    match limiter.hit(&user) {
        Ok((limit, remaining, reset)) => {
            limiter.inner.served.fetch_add(1, Ordering::SeqCst);
            let mut response = next.run(request).await;
            let headers = response.headers_mut();
            for (name, value) in announced(dialect, limit, remaining, reset, window) {
                if let Ok(value) = HeaderValue::from_str(&value) {
                    headers.insert(name, value);
                }
            }
            response
        }
        Err((limit, retry_after)) => {
            limiter.inner.refused.fetch_add(1, Ordering::SeqCst);
            let seconds = retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0);
            let body = match dialect {
                Dialect::Laravel => json!({ "message": "Too Many Attempts." }),
                Dialect::Cloudflare => json!({
                    "success": false,
                    "errors": [{ "code": 971, "message": "Please wait and consider throttling your request speed" }],
                    "messages": [],
                    "result": null,
                }),
            };
            let mut response = (StatusCode::TOO_MANY_REQUESTS, axum::Json(body)).into_response();
            let headers = response.headers_mut();
            let mut extra = announced(dialect, limit, 0, retry_after, window);
            extra.push(("retry-after", seconds.to_string()));
            if dialect == Dialect::Laravel {
                let reset = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .unwrap_or_default()
                    .as_secs()
                    + seconds;
                extra.push(("x-ratelimit-reset", reset.to_string()));
            }
            for (name, value) in extra {
                if let Ok(value) = HeaderValue::from_str(&value) {
                    headers.insert(name, value);
                }
            }
            response
        }
    }
}

fn announced(
    dialect: Dialect,
    limit: u32,
    remaining: u32,
    reset: Duration,
    window: Duration,
) -> Vec<(&'static str, String)> {
    match dialect {
        Dialect::Laravel => vec![
            ("x-ratelimit-limit", limit.to_string()),
            ("x-ratelimit-remaining", remaining.to_string()),
        ],
        Dialect::Cloudflare => vec![
            (
                "ratelimit",
                // Seconds rounded up, as Cloudflare's `retry-after` is.
                format!(
                    "\"default\";r={remaining};t={}",
                    reset.as_secs() + u64::from(reset.subsec_nanos() > 0)
                ),
            ),
            (
                "ratelimit-policy",
                format!("\"default\";q={limit};w={}", window.as_secs()),
            ),
        ],
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    match mutex.lock() {
        Ok(guard) => guard,
        Err(poisoned) => poisoned.into_inner(),
    }
}

/// Parses `N` (per the dialect's window) or `N/<seconds>s` (`40/10s`), as
/// `fabrik-sandbox --coolify-rate-limit` takes it.
pub fn parse_limit(text: &str, default_window: Duration) -> Result<(u32, Duration), String> {
    let (count, window) = match text.split_once('/') {
        Some((count, window)) => {
            let seconds = window
                .strip_suffix('s')
                .and_then(|s| s.parse::<u64>().ok())
                .filter(|s| *s > 0)
                .ok_or_else(|| format!("`{window}` is not a window like `60s`"))?;
            (count, Duration::from_secs(seconds))
        }
        None => (text, default_window),
    };
    let count = count
        .parse()
        .map_err(|_| format!("`{count}` is not a number of requests"))?;
    Ok((count, window))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_window_counts_up_to_its_limit_then_refuses_until_it_ends() {
        let limiter = RateLimiter::new(Dialect::Laravel, 3, Duration::from_millis(200));
        assert_eq!(limiter.hit("a").map(|r| r.1), Ok(2));
        assert_eq!(limiter.hit("a").map(|r| r.1), Ok(1));
        assert_eq!(limiter.hit("a").map(|r| r.1), Ok(0));
        assert!(limiter.hit("a").is_err());
        assert!(limiter.hit("b").is_ok(), "per user");
        std::thread::sleep(Duration::from_millis(210));
        assert_eq!(limiter.hit("a").map(|r| r.1), Ok(2), "a new window");
    }

    #[test]
    fn limits_parse_with_or_without_a_window() {
        let minute = Duration::from_secs(60);
        assert_eq!(parse_limit("200", minute), Ok((200, minute)));
        assert_eq!(
            parse_limit("40/10s", minute),
            Ok((40, Duration::from_secs(10)))
        );
        assert_eq!(parse_limit("0", minute), Ok((0, minute)));
        assert!(parse_limit("x", minute).is_err());
        assert!(parse_limit("5/0s", minute).is_err());
    }
}
