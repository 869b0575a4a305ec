//! What an apply tells the user: the engine's events, rendered, always through the
//! redaction layer so that no known secret value is printed. On a terminal, a live
//! spinner line per app (indicatif) under the timed event lines; otherwise plain timed
//! lines on stderr; or NDJSON events on stdout with `--output json`. The final summary
//! of each app goes to stdout.

use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::{Value, json};

use fabrik_engine::domain::split_key;
use fabrik_engine::orchestrator::events::{EventKind, Observer, RunEvent};
use fabrik_engine::orchestrator::outcome::Outcome;
use fabrik_engine::secrets::Redactor;
use secrecy::SecretString;

use super::{OutputFormat, ProgressMode, render};

/// The data behind `mutex`, even after a panic elsewhere: what it guards (spinners,
/// timings, the values to hide) stays valid whatever a printing thread did.
fn locked<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Live spinner lines, one per app.
struct Bars {
    multi: MultiProgress,
    apps: Mutex<HashMap<String, ProgressBar>>,
}

impl Bars {
    fn bar(&self, app: &str) -> ProgressBar {
        let mut apps = locked(&self.apps);
        apps.entry(app.to_owned())
            .or_insert_with(|| {
                let bar = self.multi.add(ProgressBar::new_spinner());
                if let Ok(style) =
                    ProgressStyle::with_template("{spinner} {prefix}: {wide_msg} {elapsed:>4}")
                {
                    bar.set_style(style);
                }
                bar.set_prefix(app.to_owned());
                bar.enable_steady_tick(Duration::from_millis(120));
                bar
            })
            .clone()
    }

    fn finish(&self, app: &str) {
        let bar = locked(&self.apps).remove(app);
        if let Some(bar) = bar {
            bar.finish_and_clear();
            self.multi.remove(&bar);
        }
    }
}

impl Reporter {
    /// Runs `print` with the live lines out of the way: stdout and stderr share the
    /// terminal, and a live region redrawn over a line written to stdout would erase it.
    fn above_live_lines(&self, print: impl FnOnce()) {
        match &self.bars {
            Some(bars) => bars.multi.suspend(print),
            None => print(),
        }
    }
}

/// Prints progress and results for every app of an apply.
pub struct Reporter {
    format: OutputFormat,
    redactor: Mutex<Redactor>,
    started: Instant,
    bars: Option<Bars>,
    /// Per app: the current step and when it began, for step timings.
    steps: Mutex<HashMap<String, (String, Instant)>>,
}

impl Reporter {
    pub fn new(format: OutputFormat, progress: ProgressMode) -> Self {
        let terminal = std::io::stderr().is_terminal()
            && std::env::var("TERM").is_ok_and(|t| !t.is_empty() && t != "dumb");
        let bars = (format == OutputFormat::Human && progress == ProgressMode::Auto && terminal)
            .then(|| Bars {
                multi: MultiProgress::with_draw_target(ProgressDrawTarget::stderr()),
                apps: Mutex::new(HashMap::new()),
            });
        Self {
            format,
            redactor: Mutex::new(Redactor::default()),
            started: Instant::now(),
            bars,
            steps: Mutex::new(HashMap::new()),
        }
    }

    pub fn redact(&self, text: &str) -> String {
        // A redactor poisoned in the middle of adding a value may miss it: print nothing.
        self.redactor
            .lock()
            .map(|r| r.redact(text))
            .unwrap_or_else(|_| "[redacted]".to_owned())
    }

    /// For a state change: how long the previous step took.
    fn step_timing(&self, app: &str, kind: EventKind, message: &str) -> Option<(String, f32)> {
        if kind != EventKind::State {
            return None;
        }
        let mut steps = locked(&self.steps);
        let now = Instant::now();
        let previous = steps.insert(app.to_owned(), (message.to_owned(), now));
        previous.map(|(step, since)| (step, now.duration_since(since).as_secs_f32()))
    }

    /// One step of one app: a line on stderr, or an event on stdout.
    fn line(&self, app: &str, kind: EventKind, message: &str, data: Value) {
        let elapsed = self.started.elapsed().as_secs_f32();
        let timing = self.step_timing(app, kind, message);
        match self.format {
            OutputFormat::Human => {
                let took = timing
                    .map(|(step, secs)| format!(" ({} took {secs:.2} s)", step.to_lowercase()))
                    .unwrap_or_default();
                let line = super::output::neutral(
                    &self.redact(&format!("[{elapsed:>6.2}s] {app}: {message}{took}")),
                )
                .into_owned();
                match &self.bars {
                    Some(bars) => {
                        let bar = bars.bar(app);
                        bar.set_message(super::output::neutral(&self.redact(message)).into_owned());
                        let _ = bars.multi.println(line);
                    }
                    None => {
                        let _ = writeln!(std::io::stderr().lock(), "{line}");
                    }
                }
            }
            OutputFormat::Json => {
                let (name, environment) = split_key(app);
                let mut event = json!({ "app": name, "environment": environment, "event": kind.as_str(), "message": message, "elapsed_s": millis(elapsed), "data": data });
                if let Some((step, secs)) = timing {
                    event["previous_step"] = json!(step);
                    event["previous_step_s"] = json!(millis(secs));
                }
                let line = self.redact(&event.to_string());
                outln!("{line}");
            }
        }
    }

    /// An app whose apply could not run at all.
    pub fn failed(&self, app: &str, error: &str) {
        if let Some(bars) = &self.bars {
            bars.finish(app);
        }
        let message = self.redact(error);
        match self.format {
            OutputFormat::Human => self.above_live_lines(|| errln!("error: {app}: {message}")),
            OutputFormat::Json => {
                let (name, environment) = split_key(app);
                let event = json!({ "app": name, "environment": environment, "event": "error", "message": message });
                outln!("{event}");
            }
        }
    }

    /// After Ctrl-C: the live lines cleared, then what each interrupted run left.
    pub fn interrupted(&self, lines: &[String]) {
        if let Some(bars) = &self.bars {
            let _ = bars.multi.clear();
            for bar in locked(&bars.apps).drain().map(|(_, bar)| bar) {
                bar.finish_and_clear();
            }
        }
        if lines.is_empty() {
            errln!("interrupted: nothing was running yet");
        }
        for line in lines {
            errln!("{}", self.redact(line));
        }
    }

    /// The final summary of one app, on stdout; `spec` is its file, for the next step.
    pub fn summary(&self, outcome: &Outcome, again: Option<render::Again<'_>>) {
        if let Some(bars) = &self.bars {
            bars.finish(&outcome.app);
        }
        match self.format {
            OutputFormat::Human => {
                let text = self.redact(&render::summary(outcome, again));
                self.above_live_lines(|| outln!("{text}"));
            }
            OutputFormat::Json => {
                let (name, environment) = split_key(&outcome.app);
                let event = json!({ "app": name, "environment": environment, "event": "summary", "outcome": outcome });
                outln!("{}", self.redact(&event.to_string()));
            }
        }
    }
}

impl Observer for Reporter {
    fn event(&self, app: &str, run: Option<&str>, event: &RunEvent) {
        let mut data = serde_json::to_value(event).unwrap_or_else(|_| json!({}));
        if let (Some(run), Some(fields)) = (run, data.as_object_mut()) {
            fields.insert("run".to_owned(), json!(run));
        }
        self.line(app, event.kind(), &render::event(event), data);
    }

    fn secret(&self, value: &SecretString) {
        locked(&self.redactor).add(value);
    }
}
/// Seconds to the millisecond, as JSON shows them (`0.014`, not `0.014026814140379429`).
fn millis(seconds: f32) -> f64 {
    (f64::from(seconds) * 1000.0).round() / 1000.0
}
