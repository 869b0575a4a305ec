//! What an apply tells the user, as plain lines or NDJSON events, always through the
//! redaction layer so that no known secret value is printed.

use std::io::Write;
use std::sync::Mutex;
use std::time::Instant;

use serde_json::{Value, json};

use crate::cli::OutputFormat;
use crate::secrets::Redactor;

/// Prints progress and results for every app of an apply.
pub struct Reporter {
    format: OutputFormat,
    redactor: Mutex<Redactor>,
    started: Instant,
}

impl Reporter {
    pub fn new(format: OutputFormat) -> Self {
        Self {
            format,
            redactor: Mutex::new(Redactor::default()),
            started: Instant::now(),
        }
    }

    /// Hides `value` in everything printed from now on.
    pub fn hide(&self, value: &secrecy::SecretString) {
        if let Ok(mut redactor) = self.redactor.lock() {
            redactor.add(value);
        }
    }

    pub fn redact(&self, text: &str) -> String {
        self.redactor
            .lock()
            .map(|r| r.redact(text))
            .unwrap_or_else(|_| "[redacted]".to_owned())
    }

    /// One step of one app: a line on stderr, or an event on stdout.
    pub fn event(&self, app: &str, kind: &str, message: &str, data: Value) {
        let elapsed = self.started.elapsed().as_secs_f32();
        match self.format {
            OutputFormat::Human => {
                let line = self.redact(&format!("[{elapsed:>6.2}s] {app}: {message}"));
                let _ = writeln!(std::io::stderr().lock(), "{line}");
            }
            OutputFormat::Json => {
                let event = json!({ "app": app, "event": kind, "message": message, "elapsed_s": elapsed, "data": data });
                let line = self.redact(&event.to_string());
                let _ = writeln!(std::io::stdout().lock(), "{line}");
            }
        }
    }

    /// The final summary of one app, on stdout.
    pub fn summary(&self, outcome: &super::apply::Outcome) {
        match self.format {
            OutputFormat::Human => {
                let mut text = format!("{}: {}", outcome.app, outcome.state);
                if outcome.state == super::state::State::Complete {
                    text.push_str(&format!(" {}", outcome.url));
                    if !outcome.changed {
                        text.push_str(" (no changes)");
                    }
                } else {
                    text.push_str(&format!(
                        "\n  what went wrong: {}",
                        outcome.reason.as_deref().unwrap_or("unknown")
                    ));
                    for undone in &outcome.undone {
                        text.push_str(&format!("\n  undone: {undone}"));
                    }
                    for left in &outcome.left {
                        text.push_str(&format!("\n  left in place: {left}"));
                    }
                }
                let _ = writeln!(std::io::stdout().lock(), "{}", self.redact(&text));
            }
            OutputFormat::Json => {
                let event = json!({ "app": outcome.app, "event": "summary", "outcome": outcome });
                let _ = writeln!(
                    std::io::stdout().lock(),
                    "{}",
                    self.redact(&event.to_string())
                );
            }
        }
    }
}
