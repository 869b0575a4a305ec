//! Pacing: one request budget per origin, shared by every provider instance of a process
//! (every app of one `apply --parallel N`), so that many apps together stay under the
//! API's rate limit instead of each spending it alone.
//!
//! A budget is a token bucket. Its size and refill come from what the provider declares
//! (contract 0.3 `provider-info.rate-limit`, e.g. Coolify's 200 a minute) and are
//! corrected by what the server says: Laravel's `X-RateLimit-Limit`/`-Remaining` (Coolify)
//! and the IETF draft's `RateLimit-Policy`/`RateLimit` (Cloudflare). The server's count of
//! remaining requests caps the bucket, and a 429 closes the origin until its `Retry-After`
//! has passed, then opens it with a full window. An origin nobody declared and whose
//! server says nothing is not paced.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

/// A request budget: `requests` per `window`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    pub requests: u32,
    pub window: Duration,
}

impl serde::Serialize for RateLimit {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut out = serializer.serialize_struct("RateLimit", 2)?;
        out.serialize_field("requests", &self.requests)?;
        out.serialize_field("window_seconds", &self.window.as_secs())?;
        out.end()
    }
}

impl RateLimit {
    fn per_second(self) -> f64 {
        f64::from(self.requests.max(1)) / self.window.as_secs_f64().max(0.001)
    }
}

/// How long after a server said its budget is spent one request asks again, when it did
/// not say when its window ends.
const PROBE: Duration = Duration::from_secs(1);

/// How often a waiting request looks again at its origin's budget.
const RECHECK: Duration = Duration::from_millis(100);

/// Window assumed for a limit a server announces without one (Laravel's throttle says
/// how many, not per how long; its `api` limiter counts per minute).
const DEFAULT_WINDOW: Duration = Duration::from_secs(60);

#[derive(Debug)]
struct Bucket {
    limit: Option<RateLimit>,
    /// May go below zero: a request that reserved a token it has to wait for.
    tokens: f64,
    refilled: Instant,
    /// Closed by a 429 until then.
    closed_until: Option<Instant>,
    /// Requests admitted and not answered yet: a server's count of what remains does
    /// not know of them.
    in_flight: u32,
    /// Whether the server reports what remains of its window: then its count, not the
    /// refill, says when to go on.
    reported: bool,
}

impl Bucket {
    fn refill(&mut self, now: Instant) {
        if let Some(limit) = self.limit {
            let gained = now.duration_since(self.refilled).as_secs_f64() * limit.per_second();
            self.tokens = (self.tokens + gained).min(f64::from(limit.requests));
        }
        self.refilled = now;
    }
}

/// Counters for reports and benchmarks.
#[derive(Debug, Default)]
pub struct PacingStats {
    /// Requests that waited for the budget.
    pub paced: AtomicU64,
    /// Total time they waited, in milliseconds.
    pub waited_ms: AtomicU64,
    /// 429 answers received from servers.
    pub rate_limited: AtomicU64,
    /// Requests the host answered 429 itself: the budget would not allow them within
    /// the provider call's time limit.
    pub deferred: AtomicU64,
}

/// The budgets of every origin.
#[derive(Debug, Default)]
pub struct Budgets {
    origins: Mutex<HashMap<String, Arc<Mutex<Bucket>>>>,
    pub stats: PacingStats,
}

impl Budgets {
    fn bucket(&self, origin: &str) -> Arc<Mutex<Bucket>> {
        let mut origins = lock(&self.origins);
        origins
            .entry(origin.to_owned())
            .or_insert_with(|| {
                Arc::new(Mutex::new(Bucket {
                    limit: None,
                    tokens: 0.0,
                    refilled: Instant::now(),
                    closed_until: None,
                    in_flight: 0,
                    reported: false,
                }))
            })
            .clone()
    }

    /// The provider's declared budget for `origin`; a budget already learned from the
    /// server or declared stays.
    pub fn declare(&self, origin: &str, limit: RateLimit) {
        if limit.requests == 0 || limit.window.is_zero() {
            return;
        }
        let bucket = self.bucket(origin);
        let mut bucket = lock(&bucket);
        if bucket.limit.is_none() {
            bucket.limit = Some(limit);
            bucket.tokens = f64::from(limit.requests);
            bucket.refilled = Instant::now();
        }
    }

    /// The budget of `origin`, if it is paced.
    pub fn limit(&self, origin: &str) -> Option<RateLimit> {
        lock(&self.bucket(origin)).limit
    }

    /// Waits until `origin`'s budget allows one more request. `Err(wait)` without
    /// waiting when that would take longer than `patience`: the caller answers for the
    /// server (a 429 with that `Retry-After`) rather than run out of time.
    ///
    /// A `poll` (a request of a `progress` call) takes a token only while more than half
    /// of the budget is left: a build is polled less while other apps still have work
    /// to send (their creates and deploys are what the run waits for).
    pub async fn admit(
        &self,
        origin: &str,
        mut patience: Duration,
        poll: bool,
    ) -> Result<Ticket, Duration> {
        let bucket = self.bucket(origin);
        let mut waited = false;
        loop {
            match self.decide(&bucket, patience, poll) {
                // Counted in flight by `decide`, under the same lock that gave the token:
                // an answer read in between must not think the token still free.
                Decision::Go => return Ok(Ticket { bucket }),
                Decision::Refuse(wait) => {
                    self.stats.deferred.fetch_add(1, Ordering::Relaxed);
                    return Err(wait);
                }
                Decision::Wait(wait) => {
                    if !waited {
                        self.stats.paced.fetch_add(1, Ordering::Relaxed);
                        waited = true;
                    }
                    self.stats
                        .waited_ms
                        .fetch_add(wait.as_millis() as u64, Ordering::Relaxed);
                    tokio::time::sleep(wait).await;
                    patience = patience.saturating_sub(wait);
                }
            }
        }
    }

    /// Whether a request may go now; else how long until it might. Waiters look again
    /// every [`RECHECK`]: an answer may have said more remains, or a 429 closed the
    /// origin, meanwhile.
    fn decide(&self, bucket: &Mutex<Bucket>, patience: Duration, poll: bool) -> Decision {
        let mut b = lock(bucket);
        let now = Instant::now();
        if let Some(until) = b.closed_until.filter(|until| *until > now) {
            let closed = until - now;
            // The window reopens full (a fixed window reset): wait for it, then take a
            // token like everyone else.
            return if closed > patience {
                Decision::Refuse(closed)
            } else {
                Decision::Wait(closed)
            };
        }
        b.closed_until = None;
        let Some(limit) = b.limit else {
            b.in_flight += 1;
            return Decision::Go;
        };
        b.refill(now);
        // Polls leave half of the budget to the rest.
        let reserve = if poll {
            f64::from(limit.requests) / 2.0
        } else {
            0.0
        };
        // (Within rounding: a refill of many small steps may fall short of 1 by 1e-16.)
        if b.tokens - reserve >= 1.0 - 1e-9 {
            b.tokens -= 1.0;
            b.in_flight += 1;
            return Decision::Go;
        }
        // A server that counts for itself will say more soon (an answer to a request
        // in flight, or the probe after it said "spent"); else the bucket refills.
        let wait = if b.reported {
            PROBE
        } else {
            Duration::from_secs_f64((1.0 + reserve - b.tokens) / limit.per_second())
                .max(Duration::from_millis(1))
        };
        tracing::trace!(
            tokens = b.tokens,
            requests = limit.requests,
            window_s = limit.window.as_secs(),
            in_flight = b.in_flight,
            wait_ms = wait.as_millis() as u64,
            "request budget spent: waiting"
        );
        if wait > patience {
            Decision::Refuse(wait)
        } else {
            Decision::Wait(wait.min(RECHECK))
        }
    }

    /// Learns from the response to an admitted request: the server's limit and what
    /// remains of it, and a 429's `Retry-After`, which it returns.
    pub fn observe(
        &self,
        ticket: Ticket,
        status: u16,
        headers: &[(String, String)],
    ) -> Option<Duration> {
        let said = Announced::read(headers);
        let mut b = lock(&ticket.bucket);
        let now = Instant::now();
        b.refill(now);
        if let Some(requests) = said.limit {
            let window = said
                .window
                .or(b.limit.map(|l| l.window))
                .unwrap_or(DEFAULT_WINDOW);
            let limit = RateLimit { requests, window };
            if b.limit != Some(limit) {
                if b.limit.is_none() {
                    b.tokens = f64::from(requests);
                }
                b.limit = Some(limit);
            }
        }
        if let Some(remaining) = said.remaining {
            // What the server counts is the truth for its window, less the requests
            // still in flight, admitted on tokens it has not counted yet.
            let others = b.in_flight.saturating_sub(1);
            b.tokens = f64::from(remaining) - f64::from(others);
            b.reported = true;
            if remaining == 0 {
                // Spent. Where the server says when its window ends, it reopens full
                // then; where it does not (Laravel), one request probes a second later:
                // a 429 (which costs nothing) says how long to wait.
                let (until, tokens) = match said.reset {
                    Some(reset) => (now + reset, b.limit.map_or(1.0, |l| f64::from(l.requests))),
                    None => (now + PROBE, 1.0),
                };
                if b.closed_until.is_none_or(|c| c < until) {
                    b.closed_until = Some(until);
                }
                b.tokens = tokens - f64::from(others);
                b.refilled = until;
            }
        }
        if status == 429 {
            self.stats.rate_limited.fetch_add(1, Ordering::Relaxed);
            let retry_after = said.retry_after.unwrap_or(Duration::from_secs(1));
            let until = now + retry_after;
            if b.closed_until.is_none_or(|c| c < until) {
                b.closed_until = Some(until);
            }
            // A fixed window reopens with its whole budget.
            b.tokens = b.limit.map_or(0.0, |l| f64::from(l.requests));
            b.refilled = until;
            return said.retry_after;
        }
        None
    }
}

/// An admitted request: counted as in flight until it is dropped (answered or not).
#[derive(Debug)]
pub struct Ticket {
    bucket: Arc<Mutex<Bucket>>,
}

impl Drop for Ticket {
    fn drop(&mut self) {
        let mut b = lock(&self.bucket);
        b.in_flight = b.in_flight.saturating_sub(1);
    }
}

enum Decision {
    Go,
    Refuse(Duration),
    Wait(Duration),
}

/// What a response's headers say about the server's rate limit.
#[derive(Debug, Default, PartialEq)]
struct Announced {
    limit: Option<u32>,
    window: Option<Duration>,
    remaining: Option<u32>,
    /// When the current window ends.
    reset: Option<Duration>,
    retry_after: Option<Duration>,
}

impl Announced {
    fn read(headers: &[(String, String)]) -> Self {
        let mut said = Announced::default();
        for (name, value) in headers {
            let value = value.trim();
            match name.to_ascii_lowercase().as_str() {
                // Laravel's ThrottleRequests (Coolify).
                "x-ratelimit-limit" => said.limit = value.parse().ok(),
                "x-ratelimit-remaining" => said.remaining = value.parse().ok(),
                // IETF draft-ietf-httpapi-ratelimit-headers, as Cloudflare sends it:
                // `"default";q=1200;w=300` and `"default";r=1150;t=30`.
                "ratelimit-policy" => {
                    said.limit = said.limit.or(parameter(value, "q"));
                    said.window = parameter(value, "w").map(Duration::from_secs);
                }
                "ratelimit" => {
                    said.remaining = said.remaining.or(parameter(value, "r"));
                    said.reset = parameter(value, "t").map(Duration::from_secs);
                }
                "retry-after" => said.retry_after = crate::retry::parse_retry_after(value),
                _ => {}
            }
        }
        said
    }
}

/// The numeric parameter `key` of the first item of a structured-field list.
fn parameter<T: std::str::FromStr>(value: &str, key: &str) -> Option<T> {
    let first = value.split(',').next()?;
    first.split(';').skip(1).find_map(|param| {
        let (k, v) = param.split_once('=')?;
        (k.trim() == key).then(|| v.trim().parse().ok())?
    })
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    match mutex.lock() {
        Ok(guard) => guard,
        Err(poisoned) => poisoned.into_inner(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    const ORIGIN: &str = "https://coolify.example.com";

    /// Budgets where `ORIGIN` is declared `requests` per `seconds`.
    fn declared(requests: u32, seconds: u64) -> Budgets {
        let budgets = Budgets::default();
        budgets.declare(
            ORIGIN,
            RateLimit {
                requests,
                window: Duration::from_secs(seconds),
            },
        );
        budgets
    }

    #[test]
    fn both_header_dialects_are_read() {
        let laravel = Announced::read(&headers(&[
            ("x-ratelimit-limit", "200"),
            ("x-ratelimit-remaining", "17"),
        ]));
        assert_eq!((laravel.limit, laravel.remaining), (Some(200), Some(17)));
        let ietf = Announced::read(&headers(&[
            ("ratelimit-policy", "\"default\";q=1200;w=300"),
            ("ratelimit", "\"default\";r=50;t=30"),
        ]));
        assert_eq!(
            ietf,
            Announced {
                limit: Some(1200),
                window: Some(Duration::from_secs(300)),
                remaining: Some(50),
                reset: Some(Duration::from_secs(30)),
                retry_after: None,
            }
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_declared_budget_lets_its_burst_through_then_paces() {
        let budgets = declared(10, 10);
        let started = tokio::time::Instant::now();
        for _ in 0..10 {
            budgets
                .admit(ORIGIN, Duration::from_secs(60), false)
                .await
                .expect("admitted");
        }
        assert!(started.elapsed() < Duration::from_millis(10));
        for _ in 0..5 {
            budgets
                .admit(ORIGIN, Duration::from_secs(60), false)
                .await
                .expect("admitted");
        }
        // One a second once the burst is spent.
        let waited = started.elapsed();
        assert!(
            waited >= Duration::from_millis(4900) && waited <= Duration::from_millis(5200),
            "{waited:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_wait_longer_than_the_patience_is_refused_without_spending() {
        let budgets = declared(1, 60);
        budgets
            .admit(ORIGIN, Duration::ZERO, false)
            .await
            .expect("admitted");
        let refused = budgets.admit(ORIGIN, Duration::from_secs(5), false).await;
        assert!(matches!(refused, Err(wait) if wait > Duration::from_secs(55)));
        assert_eq!(budgets.stats.deferred.load(Ordering::Relaxed), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_429_closes_the_origin_until_its_retry_after_then_opens_a_full_window() {
        let budgets = Budgets::default();
        let ticket = budgets
            .admit(ORIGIN, Duration::ZERO, false)
            .await
            .expect("admitted");
        budgets.observe(
            ticket,
            200,
            &headers(&[("x-ratelimit-limit", "5"), ("x-ratelimit-remaining", "1")]),
        );
        assert_eq!(
            budgets.limit(ORIGIN),
            Some(RateLimit {
                requests: 5,
                window: DEFAULT_WINDOW
            })
        );
        let ticket = budgets
            .admit(ORIGIN, Duration::ZERO, false)
            .await
            .expect("admitted");
        budgets.observe(
            ticket,
            429,
            &headers(&[("x-ratelimit-limit", "5"), ("retry-after", "7")]),
        );
        let started = tokio::time::Instant::now();
        assert!(
            budgets
                .admit(ORIGIN, Duration::from_secs(3), false)
                .await
                .is_err()
        );
        for _ in 0..5 {
            budgets
                .admit(ORIGIN, Duration::from_secs(60), false)
                .await
                .expect("admitted");
        }
        let waited = started.elapsed();
        assert!(
            waited >= Duration::from_secs(7) && waited < Duration::from_secs(8),
            "{waited:?}"
        );
        assert_eq!(budgets.stats.rate_limited.load(Ordering::Relaxed), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn the_servers_remaining_count_caps_the_bucket() {
        let budgets = declared(100, 100);
        let ticket = budgets
            .admit(ORIGIN, Duration::ZERO, false)
            .await
            .expect("admitted");
        budgets.observe(ticket, 200, &headers(&[("x-ratelimit-remaining", "2")]));
        let started = tokio::time::Instant::now();
        for _ in 0..4 {
            budgets
                .admit(ORIGIN, Duration::from_secs(60), false)
                .await
                .expect("admitted");
        }
        // Two at once, then one a second.
        let waited = started.elapsed();
        assert!(
            waited >= Duration::from_millis(1900) && waited < Duration::from_millis(2200),
            "{waited:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn requests_in_flight_count_against_what_the_server_says_remains() {
        let budgets = declared(100, 100);
        // Three requests sent; the first answer says 3 remain, not knowing of the other
        // two: only one more may go at once.
        let first = budgets
            .admit(ORIGIN, Duration::ZERO, false)
            .await
            .expect("admitted");
        let _second = budgets
            .admit(ORIGIN, Duration::ZERO, false)
            .await
            .expect("admitted");
        let _third = budgets
            .admit(ORIGIN, Duration::ZERO, false)
            .await
            .expect("admitted");
        budgets.observe(first, 200, &headers(&[("x-ratelimit-remaining", "3")]));
        assert!(budgets.admit(ORIGIN, Duration::ZERO, false).await.is_ok());
        assert!(
            budgets.admit(ORIGIN, Duration::ZERO, false).await.is_err(),
            "the two in flight already spent the rest"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_spent_budget_with_no_reset_announced_is_probed_by_one_request() {
        let budgets = Budgets::default();
        let ticket = budgets
            .admit(ORIGIN, Duration::ZERO, false)
            .await
            .expect("admitted");
        budgets.observe(
            ticket,
            200,
            &headers(&[("x-ratelimit-limit", "200"), ("x-ratelimit-remaining", "0")]),
        );
        assert!(
            budgets
                .admit(ORIGIN, Duration::from_millis(500), false)
                .await
                .is_err()
        );
        let started = tokio::time::Instant::now();
        let probe = budgets
            .admit(ORIGIN, Duration::from_secs(5), false)
            .await
            .expect("admitted");
        assert_eq!(started.elapsed(), PROBE);
        assert!(
            budgets.admit(ORIGIN, Duration::ZERO, false).await.is_err(),
            "one probe, not a burst"
        );
        // The probe's 429 says when the window ends: closed until then, then full.
        budgets.observe(probe, 429, &headers(&[("retry-after", "30")]));
        assert!(
            budgets
                .admit(ORIGIN, Duration::from_secs(29), false)
                .await
                .is_err()
        );
    }

    #[tokio::test(start_paused = true)]
    async fn polls_leave_half_of_the_budget_to_the_rest() {
        let budgets = declared(10, 10);
        for _ in 0..5 {
            drop(
                budgets
                    .admit(ORIGIN, Duration::ZERO, true)
                    .await
                    .expect("a poll"),
            );
        }
        assert!(
            budgets.admit(ORIGIN, Duration::ZERO, true).await.is_err(),
            "half is left: no more polls now"
        );
        for _ in 0..5 {
            drop(
                budgets
                    .admit(ORIGIN, Duration::ZERO, false)
                    .await
                    .expect("work"),
            );
        }
        assert!(budgets.admit(ORIGIN, Duration::ZERO, false).await.is_err());
    }

    #[tokio::test]
    async fn an_origin_nobody_limits_is_not_paced() {
        let budgets = Budgets::default();
        for _ in 0..1000 {
            drop(
                budgets
                    .admit(ORIGIN, Duration::ZERO, false)
                    .await
                    .expect("admitted"),
            );
        }
        assert_eq!(budgets.stats.paced.load(Ordering::Relaxed), 0);
    }
}
