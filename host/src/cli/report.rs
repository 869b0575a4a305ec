//! Rendering of errors and diagnostics, for humans (stderr) or as JSON lines (stdout).

use serde::Serialize;

use super::OutputFormat;
use fabrik_engine::spec::SpecError;

/// Prints an unexpected error with its chain of causes, each once: a cause the message
/// above it already quotes (`cannot read x: {source}`) is not repeated.
pub fn error(error: &anyhow::Error) {
    for line in lines(error) {
        errln!("{line}");
    }
}

fn lines(error: &anyhow::Error) -> Vec<String> {
    let mut shown = error.to_string();
    let mut lines = vec![format!("error: {shown}")];
    for cause in error.chain().skip(1) {
        let cause = cause.to_string();
        if !shown.contains(&cause) {
            lines.push(format!("  caused by: {cause}"));
            shown.push('\n');
            shown.push_str(&cause);
        }
    }
    lines
}

/// Prints why a spec failed to load.
pub fn spec_error(error: &SpecError, format: OutputFormat) {
    match format {
        OutputFormat::Human => match error {
            SpecError::Read { .. } => errln!("error: {error}"),
            SpecError::Invalid { diagnostics, .. } => {
                for diagnostic in diagnostics {
                    errln!("error: {diagnostic}");
                }
                errln!("{error}");
            }
        },
        OutputFormat::Json => {
            let (spec, diagnostics, message) = match error {
                SpecError::Read { path, .. } => (path, Vec::new(), error.to_string()),
                SpecError::Invalid { path, diagnostics } => {
                    (path, diagnostics.clone(), error.to_string())
                }
            };
            json_line(&serde_json::json!({
                "event": "invalid",
                "spec": spec,
                "message": message,
                "diagnostics": diagnostics,
            }));
        }
    }
}

/// Writes one JSON object as a line on stdout.
pub fn json_line(value: &impl Serialize) {
    if let Ok(text) = serde_json::to_string(value) {
        outln!("{text}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn not_regular() -> anyhow::Error {
        anyhow::Error::new(std::io::Error::other("it is not a regular file"))
    }

    #[test]
    fn a_cause_already_quoted_is_not_repeated() {
        let quoting = not_regular().context("cannot read `x`: it is not a regular file");
        assert_eq!(
            lines(&quoting),
            ["error: cannot read `x`: it is not a regular file"]
        );
        let wrapping = not_regular().context("loading the provider failed");
        assert_eq!(
            lines(&wrapping),
            [
                "error: loading the provider failed",
                "  caused by: it is not a regular file"
            ]
        );
    }
}
