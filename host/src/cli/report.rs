//! Rendering of errors and diagnostics, for humans (stderr) or as JSON lines (stdout).

use serde::Serialize;

use super::OutputFormat;
use fabrik_engine::spec::SpecError;

/// Prints an unexpected error with its chain of causes.
pub fn error(error: &anyhow::Error) {
    errln!("error: {error}");
    for cause in error.chain().skip(1) {
        errln!("  caused by: {cause}");
    }
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
