//! Writing to stdout when the reader may be gone: `fabrik status | head -1` closes the
//! pipe after one line. A closed stdout is not an error of the command: further output
//! is dropped and the command ends as it would have (its work is not cut short, its exit
//! status is its own). Any other write error is said once on stderr.

use std::borrow::Cow;
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};

/// `text` as a terminal may show it: control characters that came from outside (a hook's
/// output, an API's answer, a provider's message) are shown, not obeyed, so that none
/// can move the cursor, erase or rewrite a line, or set the window title. Kept: line
/// feeds and tabs, and colour (SGR: `ESC [ digits ; m`), which is all Fabrik writes.
pub fn neutral(text: &str) -> Cow<'_, str> {
    let risky =
        |c: char| (c.is_control() && c != '\n' && c != '\t') || (0x80..0xa0).contains(&(c as u32));
    if !text.chars().any(risky) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    let mut rest = text;
    while let Some(c) = rest.chars().next() {
        if c == '\u{1b}'
            && let Some(sgr) = sgr_len(rest)
        {
            out.push_str(&rest[..sgr]);
            rest = &rest[sgr..];
            continue;
        }
        match c {
            '\r' => out.push_str("\\r"),
            c if risky(c) && (c as u32) < 0x80 => out.push_str(&format!("\\x{:02x}", c as u32)),
            c if risky(c) => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
        rest = &rest[c.len_utf8()..];
    }
    Cow::Owned(out)
}

/// The length of a colour sequence (`ESC [ 1 ; 31 m`) at the start of `text`.
fn sgr_len(text: &str) -> Option<usize> {
    let body = text.strip_prefix("\u{1b}[")?;
    let params = body
        .bytes()
        .take_while(|b| b.is_ascii_digit() || *b == b';')
        .count();
    (body.as_bytes().get(params) == Some(&b'm')).then_some(2 + params + 1)
}

static CLOSED: AtomicBool = AtomicBool::new(false);

/// Writes `args` and a newline to stdout, unless stdout is closed.
pub fn line(args: std::fmt::Arguments<'_>) {
    if CLOSED.load(Ordering::Relaxed) {
        return;
    }
    let text = args.to_string();
    let mut stdout = std::io::stdout().lock();
    let written = stdout
        .write_all(neutral(&text).as_bytes())
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
    let text = neutral(&text);
    let mut stderr = std::io::stderr().lock();
    for line in text.split('\n') {
        let _ = writeln!(stderr, "{}", super::colour::stderr_line(line));
    }
}

#[cfg(test)]
mod tests {
    use super::neutral;

    #[test]
    fn controls_are_shown_and_colour_is_kept() {
        assert_eq!(neutral("plain\ttext\n"), "plain\ttext\n");
        assert_eq!(
            neutral("\u{1b}[1;31merror:\u{1b}[0m x\r\u{1b}[2Ky\u{1b}]0;title\u{7}\u{9b}"),
            "\u{1b}[1;31merror:\u{1b}[0m x\\r\\x1b[2Ky\\x1b]0;title\\x07\\u{9b}"
        );
    }
}
