//! Colour on a terminal only: `--color auto` (the default) colours a stream when it is a
//! terminal, `TERM` is not `dumb` and `NO_COLOR` is unset or empty (no-color.org);
//! `always` and `never` decide for both streams. What is coloured: the `error:`,
//! `warning:`, `hint:`, `note:` and `next:` prefixes on stderr, the plan's markers on
//! stdout, and the log lines of `-v` (never when stderr is not a terminal).

use std::io::IsTerminal;
use std::sync::atomic::{AtomicU8, Ordering};

use anstyle::{AnsiColor, Style};
use clap::ValueEnum;

/// When to colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum ColorChoice {
    /// On a terminal, unless `NO_COLOR` is set
    #[default]
    Auto,
    Always,
    Never,
}

const UNSET: u8 = 0;
const OFF: u8 = 1;
const ON: u8 = 2;

static STDOUT: AtomicU8 = AtomicU8::new(UNSET);
static STDERR: AtomicU8 = AtomicU8::new(UNSET);

/// Decides, once, for both streams.
pub fn init(choice: ColorChoice) {
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    let dumb = std::env::var("TERM").is_ok_and(|t| t == "dumb");
    let decide = |terminal: bool| match choice {
        ColorChoice::Always => ON,
        ColorChoice::Never => OFF,
        ColorChoice::Auto if terminal && !no_color && !dumb => ON,
        ColorChoice::Auto => OFF,
    };
    STDOUT.store(decide(std::io::stdout().is_terminal()), Ordering::Relaxed);
    STDERR.store(decide(std::io::stderr().is_terminal()), Ordering::Relaxed);
}

pub fn stdout() -> bool {
    STDOUT.load(Ordering::Relaxed) == ON
}

pub fn stderr() -> bool {
    STDERR.load(Ordering::Relaxed) == ON
}

fn paint(text: &str, style: Style, on: bool) -> String {
    if on {
        format!("{style}{text}{style:#}")
    } else {
        text.to_owned()
    }
}

/// A stderr line with its leading `error:`/`warning:`/`hint:`/`note:`/`next:` coloured.
pub fn stderr_line(line: &str) -> String {
    if !stderr() {
        return line.to_owned();
    }
    let indent = line.len() - line.trim_start().len();
    let (lead, rest) = line.split_at(indent);
    for (prefix, style) in [
        (
            "error:",
            Style::new().bold().fg_color(Some(AnsiColor::Red.into())),
        ),
        (
            "warning:",
            Style::new().bold().fg_color(Some(AnsiColor::Yellow.into())),
        ),
        ("hint:", Style::new().fg_color(Some(AnsiColor::Cyan.into()))),
        ("note:", Style::new().fg_color(Some(AnsiColor::Cyan.into()))),
        (
            "next:",
            Style::new().bold().fg_color(Some(AnsiColor::Green.into())),
        ),
    ] {
        if let Some(after) = rest.strip_prefix(prefix) {
            return format!("{lead}{}{after}", paint(prefix, style, true));
        }
    }
    line.to_owned()
}

/// A plan marker (`+ ~ = - >`), coloured for stdout.
pub fn marker(marker: char) -> String {
    let colour = match marker {
        '+' => AnsiColor::Green,
        '~' => AnsiColor::Yellow,
        '-' => AnsiColor::Red,
        '>' => AnsiColor::Cyan,
        _ => return marker.to_string(),
    };
    paint(
        &marker.to_string(),
        Style::new().bold().fg_color(Some(colour.into())),
        stdout(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_are_painted_only_when_on() {
        STDERR.store(OFF, Ordering::Relaxed);
        assert_eq!(stderr_line("error: boom"), "error: boom");
        STDERR.store(ON, Ordering::Relaxed);
        let painted = stderr_line("  hint: run it again");
        assert!(painted.starts_with("  \u{1b}["), "{painted:?}");
        assert!(
            painted.ends_with("hint:\u{1b}[0m run it again"),
            "{painted:?}"
        );
        assert_eq!(stderr_line("plain text"), "plain text");
        STDERR.store(OFF, Ordering::Relaxed);
    }
}
