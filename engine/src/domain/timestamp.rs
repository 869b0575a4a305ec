//! Times as the store keeps them (seconds since the Unix epoch as text, with
//! milliseconds: `1795830965.219`) and as people and JSON consumers read them: RFC 3339
//! in UTC (`2026-11-28T01:56:05Z`).

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// A stored time in RFC 3339 (UTC, whole seconds); `None` if it is not a stored time.
pub fn rfc3339(stored: &str) -> Option<String> {
    let seconds: f64 = stored.trim().parse().ok()?;
    if !seconds.is_finite() {
        return None;
    }
    // Whole seconds: what a person compares; the store keeps the milliseconds.
    #[expect(
        clippy::cast_possible_truncation,
        reason = "checked finite; out-of-range values are refused by `from_unix_timestamp`"
    )]
    let whole = seconds.floor() as i64;
    OffsetDateTime::from_unix_timestamp(whole)
        .ok()?
        .format(&Rfc3339)
        .ok()
}

/// A stored time for display: RFC 3339, or the text as stored when it is not a time.
pub fn display(stored: &str) -> String {
    rfc3339(stored).unwrap_or_else(|| stored.to_owned())
}

/// Seconds from `start` to `end`, both stored times.
pub fn seconds_between(start: &str, end: &str) -> Option<f64> {
    let start: f64 = start.trim().parse().ok()?;
    let end: f64 = end.trim().parse().ok()?;
    Some(end - start)
}

/// Rewrites, in place, every stored time in a JSON document (`*_at` keys holding one)
/// as RFC 3339.
pub fn rewrite_times(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::Object(map) => {
            for (key, field) in map.iter_mut() {
                let is_time = key == "at" || key.ends_with("_at");
                match field {
                    serde_json::Value::String(text) if is_time => {
                        if let Some(time) = rfc3339(text) {
                            *text = time;
                        }
                    }
                    other => rewrite_times(other),
                }
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(rewrite_times),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_times_read_as_rfc3339() {
        assert_eq!(
            rfc3339("1795830965.219").as_deref(),
            Some("2026-11-28T01:56:05Z")
        );
        assert_eq!(rfc3339("0").as_deref(), Some("1970-01-01T00:00:00Z"));
        assert_eq!(rfc3339("soon"), None);
        assert_eq!(rfc3339("NaN"), None);
        assert_eq!(display("soon"), "soon");
        assert_eq!(seconds_between("10.5", "12.0"), Some(1.5));
    }

    #[test]
    fn a_document_has_its_times_rewritten() {
        let mut doc = serde_json::json!({
            "runs": [{ "started_at": "0", "finished_at": null, "reason": "1795830965" }],
            "at": "60",
        });
        rewrite_times(&mut doc);
        assert_eq!(
            doc,
            serde_json::json!({
                "runs": [{ "started_at": "1970-01-01T00:00:00Z", "finished_at": null, "reason": "1795830965" }],
                "at": "1970-01-01T00:01:00Z",
            })
        );
    }
}
