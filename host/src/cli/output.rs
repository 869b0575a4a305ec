//! Writing to stdout when the reader may be gone: `fabrik status | head -1` closes the
//! pipe after one line. A closed stdout is not an error of the command: further output
//! is dropped and the command ends as it would have (its work is not cut short, its exit
//! status is its own). Any other write error is said once on stderr.

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};

static CLOSED: AtomicBool = AtomicBool::new(false);

/// Writes `args` and a newline to stdout, unless stdout is closed.
pub fn line(args: std::fmt::Arguments<'_>) {
    if CLOSED.load(Ordering::Relaxed) {
        return;
    }
    let mut stdout = std::io::stdout().lock();
    let written = stdout
        .write_fmt(args)
        .and_then(|()| stdout.write_all(b"\n"))
        .and_then(|()| stdout.flush());
    if let Err(error) = written {
        CLOSED.store(true, Ordering::Relaxed);
        if error.kind() != std::io::ErrorKind::BrokenPipe {
            let _ = writeln!(std::io::stderr(), "error: cannot write to stdout: {error}");
        }
    }
}

/// Writes `args` to stderr, each line's `error:`/`hint:`/… prefix coloured when stderr
/// is coloured (see `colour`); a closed stderr is ignored.
pub fn err_line(args: std::fmt::Arguments<'_>) {
    let text = args.to_string();
    let mut stderr = std::io::stderr().lock();
    for line in text.split('\n') {
        let _ = writeln!(stderr, "{}", super::colour::stderr_line(line));
    }
}
