//! Retrying what failed transiently: exponential backoff with jitter, honouring the
//! server's `Retry-After`. One policy type for provider calls and webhooks alike.

use std::time::Duration;

/// How often and how patiently to try.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// Attempts in all, the first included.
    pub attempts: u32,
    /// The pause after the first failure; it doubles after each further one.
    pub first: Duration,
    /// No pause is longer, whatever `Retry-After` asks.
    pub ceiling: Duration,
    /// Up to this much random delay is added, so that clients do not retry in step.
    pub jitter: Duration,
    /// How long, in all, a call may wait when the server itself asks for a pause (a 429's
    /// `Retry-After`): such waits cost no attempt while they fit in it, so that a rate
    /// limit slows a run down instead of failing it.
    pub patience: Duration,
}

impl Backoff {
    /// Provider calls: three attempts, 0.5 s then 1 s (or the API's `Retry-After`, up to
    /// a minute).
    pub const PROVIDER: Backoff = Backoff {
        attempts: 3,
        first: Duration::from_millis(500),
        ceiling: Duration::from_secs(60),
        jitter: Duration::from_millis(255),
        patience: Duration::from_secs(600),
    };

    /// Webhooks: three attempts; a slow chat server never holds a run for long.
    pub const WEBHOOK: Backoff = Backoff {
        attempts: 3,
        first: Duration::from_millis(500),
        ceiling: Duration::from_secs(10),
        jitter: Duration::ZERO,
        patience: Duration::ZERO,
    };

    /// The pause after failed attempt number `attempt` (1-based).
    pub fn wait(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        let doubled = self
            .first
            .saturating_mul(2u32.saturating_pow(attempt.saturating_sub(1)));
        let wait = retry_after.unwrap_or_else(|| doubled + jitter(self.jitter));
        wait.min(self.ceiling)
    }

    /// Runs `call` until it succeeds, fails for good, or the attempts are spent.
    /// `transient` says whether an error is worth another attempt and, if the server
    /// said, after how long; `on_retry` hears each retry before its pause. Returns the
    /// result and how many attempts it took.
    pub async fn run<T, E>(
        &self,
        mut call: impl AsyncFnMut() -> Result<T, E>,
        transient: impl Fn(&E) -> Option<Option<Duration>>,
        mut on_retry: impl FnMut(&E, Duration, u32),
    ) -> (Result<T, E>, u32) {
        let mut attempt = 1;
        let mut asked = Duration::ZERO;
        loop {
            match call().await {
                Err(error) => match transient(&error) {
                    // The server asked for this pause: it costs no attempt while the
                    // patience lasts.
                    Some(Some(retry_after)) if asked + retry_after <= self.patience => {
                        asked += retry_after;
                        on_retry(&error, retry_after, attempt + 1);
                        tokio::time::sleep(retry_after).await;
                    }
                    Some(retry_after) if attempt < self.attempts => {
                        let wait = self.wait(attempt, retry_after);
                        on_retry(&error, wait, attempt + 1);
                        tokio::time::sleep(wait).await;
                        attempt += 1;
                    }
                    _ => return (Err(error), attempt),
                },
                other => return (other, attempt),
            }
        }
    }
}

/// `Retry-After` in seconds (RFC 9110 §10.2.3); an HTTP date is not honoured (the
/// backoff applies instead).
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    value.trim().parse::<u64>().ok().map(Duration::from_secs)
}

fn jitter(most: Duration) -> Duration {
    if most.is_zero() {
        return Duration::ZERO;
    }
    let mut byte = [0u8; 2];
    let _ = getrandom::fill(&mut byte);
    let fraction = f64::from(u16::from_le_bytes(byte)) / f64::from(u16::MAX);
    most.mul_f64(fraction)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pauses_double_honour_retry_after_and_stay_under_the_ceiling() {
        let policy = Backoff {
            jitter: Duration::ZERO,
            ..Backoff::PROVIDER
        };
        assert_eq!(policy.wait(1, None), Duration::from_millis(500));
        assert_eq!(policy.wait(2, None), Duration::from_secs(1));
        assert_eq!(
            policy.wait(1, Some(Duration::from_secs(7))),
            Duration::from_secs(7)
        );
        assert_eq!(
            policy.wait(1, Some(Duration::from_secs(3600))),
            Duration::from_secs(60)
        );
        assert_eq!(parse_retry_after(" 12 "), Some(Duration::from_secs(12)));
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), None);
    }

    #[tokio::test(start_paused = true)]
    async fn only_transient_errors_are_tried_again_and_attempts_are_counted() {
        let policy = Backoff::PROVIDER;
        let mut calls = 0;
        let mut heard = Vec::new();
        let (result, attempts) = policy
            .run(
                async || {
                    calls += 1;
                    if calls < 3 { Err("busy") } else { Ok(calls) }
                },
                |_| Some(None),
                |_, _, next| heard.push(next),
            )
            .await;
        assert_eq!((result, attempts), (Ok(3), 3));
        assert_eq!(heard, [2, 3]);

        let (result, attempts) = policy
            .run(async || Err::<(), _>("bad"), |_| None, |_, _, _| {})
            .await;
        assert_eq!((result, attempts), (Err("bad"), 1));

        let (result, attempts) = policy
            .run(async || Err::<(), _>("busy"), |_| Some(None), |_, _, _| {})
            .await;
        assert_eq!((result, attempts), (Err("busy"), 3), "gives up after three");
    }

    #[tokio::test(start_paused = true)]
    async fn pauses_the_server_asks_for_cost_no_attempt_while_the_patience_lasts() {
        let policy = Backoff {
            patience: Duration::from_secs(100),
            ..Backoff::PROVIDER
        };
        let asked = Some(Some(Duration::from_secs(30)));
        // Three 429s asking for 30 s each fit in 100 s: the fourth call succeeds on the
        // first counted attempt.
        let mut calls = 0;
        let started = tokio::time::Instant::now();
        let (result, attempts) = policy
            .run(
                async || {
                    calls += 1;
                    if calls <= 3 { Err("429") } else { Ok(calls) }
                },
                |_| asked,
                |_, _, _| {},
            )
            .await;
        assert_eq!((result, attempts), (Ok(4), 1));
        assert_eq!(started.elapsed(), Duration::from_secs(90));

        // Past the patience, the pauses count again: two more attempts, then it fails.
        let mut calls = 0;
        let (result, attempts) = policy
            .run(
                async || {
                    calls += 1;
                    Err::<(), _>("429")
                },
                |_| asked,
                |_, _, _| {},
            )
            .await;
        assert_eq!((result, attempts), (Err("429"), 3));
        assert_eq!(
            calls, 6,
            "three free waits, then the three counted attempts"
        );
    }
}
