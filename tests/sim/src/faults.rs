//! Fault injection and a call log, shared by the simulators.
//!
//! A rule targets an operation by name (`cloudflare.create_record`, `coolify.deploy`, ...)
//! and fires on its Nth call or on every call. The log lets tests count calls, for
//! example to assert that a re-apply makes no mutating call.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What a fault does to a response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// Answer with this status (the simulator renders the API's error body for it) and,
    /// for 429 or 503, a `Retry-After` in seconds.
    Status {
        status: u16,
        retry_after: Option<u64>,
    },
    /// Answer 200 with a body that is not JSON.
    Malformed,
    /// Never answer.
    Hang,
    /// Do the operation, then answer with this status instead of its result: a proxy's
    /// 502 after the API acted, the case where a retried create could duplicate.
    LoseAnswer { status: u16 },
}

tokio::task_local! {
    /// Set by [`Faults::enter`] when a [`Fault::LoseAnswer`] fires in this request.
    static LOST_ANSWER: std::cell::Cell<Option<u16>>;
}

/// Router middleware: runs the handler, then replaces its response when a
/// [`Fault::LoseAnswer`] fired while it ran.
pub async fn lose_answers(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    LOST_ANSWER
        .scope(std::cell::Cell::new(None), async move {
            let response = next.run(request).await;
            match LOST_ANSWER.with(std::cell::Cell::get) {
                Some(status) => (
                    axum::http::StatusCode::from_u16(status)
                        .unwrap_or(axum::http::StatusCode::BAD_GATEWAY),
                    "<html><body><h1>Bad Gateway</h1></body></html>",
                )
                    .into_response(),
                None => response,
            }
        })
        .await
}

#[derive(Debug, Clone)]
struct Rule {
    operation: String,
    /// 1-based call number; `None` fires on every call.
    nth: Option<u32>,
    fault: Fault,
}

/// One call a simulator served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    pub operation: String,
    pub method: String,
    pub path: String,
    /// When the request arrived: calls sent together arrive together, which is how
    /// benchmarks count dependent round trips.
    pub at: std::time::Instant,
}

impl Call {
    /// Whether the call changes state (anything but GET and HEAD).
    pub fn is_mutating(&self) -> bool {
        !matches!(self.method.as_str(), "GET" | "HEAD")
    }
}

#[derive(Debug, Default)]
struct Inner {
    rules: Vec<Rule>,
    counts: HashMap<String, u32>,
    latency: Duration,
    calls: Vec<Call>,
}

/// Shared fault rules, latency and call log.
#[derive(Debug, Clone, Default)]
pub struct Faults {
    inner: Arc<Mutex<Inner>>,
}

impl Faults {
    fn with<T>(&self, f: impl FnOnce(&mut Inner) -> T) -> T {
        let mut guard = match self.inner.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        f(&mut guard)
    }

    /// Makes the `nth` call (1-based) of `operation` fail with `fault`.
    pub fn on_nth(&self, operation: &str, nth: u32, fault: Fault) {
        self.with(|i| {
            i.rules.push(Rule {
                operation: operation.to_owned(),
                nth: Some(nth),
                fault,
            });
        });
    }

    /// Makes every call of `operation` fail with `fault`.
    pub fn always(&self, operation: &str, fault: Fault) {
        self.with(|i| {
            i.rules.push(Rule {
                operation: operation.to_owned(),
                nth: None,
                fault,
            });
        });
    }

    /// Removes every rule.
    pub fn clear(&self) {
        self.with(|i| i.rules.clear());
    }

    /// Adds `latency` to every call.
    pub fn set_latency(&self, latency: Duration) {
        self.with(|i| i.latency = latency);
    }

    /// Every call served so far.
    pub fn calls(&self) -> Vec<Call> {
        self.with(|i| i.calls.clone())
    }

    /// Forgets the calls served so far (not the rules).
    pub fn clear_calls(&self) {
        self.with(|i| i.calls.clear());
    }

    /// Records a call and returns the fault to apply, after the configured latency.
    pub async fn enter(&self, operation: &str, method: &str, path: &str) -> Option<Fault> {
        let (latency, fault) = self.with(|i| {
            let count = i.counts.entry(operation.to_owned()).or_insert(0);
            *count += 1;
            let n = *count;
            i.calls.push(Call {
                operation: operation.to_owned(),
                method: method.to_owned(),
                path: path.to_owned(),
                at: std::time::Instant::now(),
            });
            let fault = i
                .rules
                .iter()
                .find(|r| r.operation == operation && r.nth.is_none_or(|k| k == n))
                .map(|r| r.fault.clone());
            (i.latency, fault)
        });
        if !latency.is_zero() {
            tokio::time::sleep(latency).await;
        }
        match fault {
            Some(Fault::Hang) => std::future::pending::<Option<Fault>>().await,
            Some(Fault::LoseAnswer { status }) => {
                let _ = LOST_ANSWER.try_with(|lost| lost.set(Some(status)));
                None
            }
            other => other,
        }
    }
}

/// Dependent rounds among `calls` (of every simulator, in any order) under an injected
/// `latency`: a call that arrives before the first call of the current round could have
/// been answered (within `latency` of it) was not waiting for that answer, so it belongs
/// to the round; a call that depends on an answer arrives later. Calls sent together
/// arrive within a few milliseconds of each other, far inside the latency.
pub fn rounds(calls: &[Call], latency: Duration) -> Vec<Vec<Call>> {
    let mut sorted = calls.to_vec();
    sorted.sort_by_key(|c| c.at);
    let mut rounds: Vec<Vec<Call>> = Vec::new();
    for call in sorted {
        match rounds.last_mut() {
            Some(round) if call.at.duration_since(round[0].at) < latency => round.push(call),
            _ => rounds.push(vec![call]),
        }
    }
    rounds
}
