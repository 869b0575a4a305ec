//! Cloudflare's DNS record rules, from the most authoritative public sources (the
//! published OpenAPI schema in cloudflare/api-schemas and cloudflare-go v6, the
//! Terraform provider's `cloudflare_dns_record` schema, Cloudflare's DNS docs and plan
//! limits, and error bodies seen in real responses). `tests/sim/README.md` lists each
//! rule, its source, and how sure it is.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// A zone's plan: it sets the comment and tag limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Plan {
    /// Comments up to 100 characters, no tags.
    #[default]
    Free,
    /// Pro, Business and Enterprise: comments up to 500 characters, 20 tags.
    Paid,
}

impl Plan {
    /// Cloudflare docs, plans/index.json `dns.record_comments`.
    pub fn comment_limit(self) -> usize {
        match self {
            Plan::Free => 100,
            Plan::Paid => 500,
        }
    }

    /// Cloudflare docs, plans/index.json `dns.record_tags`.
    pub fn tag_quota(self) -> usize {
        match self {
            Plan::Free => 0,
            Plan::Paid => 20,
        }
    }
}

/// `{success: false, errors: [{code, message}]}`.
pub fn failure(status: StatusCode, code: u64, message: &str) -> Response {
    (
        status,
        axum::Json(json!({
            "success": false,
            "errors": [{ "code": code, "message": message }],
            "messages": [],
            "result": null,
        })),
    )
        .into_response()
}

/// 1004 "DNS Validation Error" wrapping the real cause in `error_chain`.
pub fn validation(code: u64, message: &str) -> Response {
    (
        StatusCode::BAD_REQUEST,
        axum::Json(json!({
            "success": false,
            "errors": [{ "code": 1004, "message": "DNS Validation Error", "error_chain": [{ "code": code, "message": message }] }],
            "messages": [],
            "result": null,
        })),
    )
        .into_response()
}

/// Checks the fields of a record as a create, PATCH or PUT would leave it; `Err` is the
/// API's answer.
pub fn check_record(record: &Value, plan: Plan) -> Result<(), Response> {
    let text = |k: &str| record[k].as_str().unwrap_or_default();
    let (name, record_type, content) = (text("name"), text("type"), text("content"));
    // Name: 1 to 255 characters, labels of at most 63 (schema `dns-records_name`).
    if name.is_empty() || name.len() > 255 || name.split('.').any(|l| l.is_empty() || l.len() > 63)
    {
        return Err(failure(
            StatusCode::BAD_REQUEST,
            9000,
            "DNS name is invalid.",
        ));
    }
    // Content: top-level 9005/9006 today (a 1004 chain before about 2018).
    match record_type {
        "A" if content.parse::<std::net::Ipv4Addr>().is_err() => {
            return Err(failure(
                StatusCode::BAD_REQUEST,
                9005,
                "Content for A record must be a valid IPv4 address.",
            ));
        }
        "AAAA" if content.parse::<std::net::Ipv6Addr>().is_err() => {
            return Err(failure(
                StatusCode::BAD_REQUEST,
                9006,
                "Content for AAAA record must be a valid IPv6 address.",
            ));
        }
        "CNAME" if content.is_empty() => {
            return Err(validation(9007, "Content for CNAME record is invalid."));
        }
        _ => {}
    }
    // TTL: 1 (automatic) or 60 to 86400 (30 on Enterprise, not simulated).
    let ttl = record["ttl"].as_u64().unwrap_or(1);
    if ttl != 1 && !(60..=86400).contains(&ttl) {
        return Err(validation(
            9021,
            "TTL must be between 60 and 86400 seconds, or 1 for Automatic.",
        ));
    }
    // Only A, AAAA and CNAME can be proxied (proxied-dns-records.mdx).
    let proxied = record["proxied"].as_bool().unwrap_or(false);
    if proxied && !matches!(record_type, "A" | "AAAA" | "CNAME") {
        return Err(validation(9004, "This kind of record cannot be proxied."));
    }
    // Comment: per plan; the error is top-level 9313.
    let comment = text("comment");
    if comment.chars().count() > plan.comment_limit() {
        return Err(failure(
            StatusCode::BAD_REQUEST,
            9313,
            &format!(
                "DNS record comment exceeds the maximum length of {} characters.",
                plan.comment_limit()
            ),
        ));
    }
    let tags = record["tags"].as_array().map_or(0, Vec::len);
    if tags > plan.tag_quota() {
        return Err(validation(
            9300,
            &format!(
                "DNS record has {tags} tags, exceeding the quota of {}.",
                plan.tag_quota()
            ),
        ));
    }
    Ok(())
}

/// Why a new record cannot share its name with `existing` (records-with-same-name.mdx):
/// 81053 for a CNAME where A/AAAA/CNAME exist, 81054 for A/AAAA where a CNAME exists.
pub fn same_name_conflict(record_type: &str, existing: &[&Value]) -> Option<Response> {
    let address = |t: &str| matches!(t, "A" | "AAAA" | "CNAME");
    if record_type == "CNAME"
        && existing
            .iter()
            .any(|r| address(r["type"].as_str().unwrap_or_default()))
    {
        return Some(failure(
            StatusCode::BAD_REQUEST,
            81053,
            "An A, AAAA, or CNAME record with that host already exists.",
        ));
    }
    if matches!(record_type, "A" | "AAAA") && existing.iter().any(|r| r["type"] == "CNAME") {
        return Some(failure(
            StatusCode::BAD_REQUEST,
            81054,
            "A CNAME record with that host already exists. For more details, refer to <https://developers.cloudflare.com/dns/manage-dns-records/troubleshooting/records-with-same-name/>.",
        ));
    }
    None
}

/// `per_page` of the record list: clamped to 5..=5000, default 100 (schema
/// `dns-records_per_page`).
pub fn records_per_page(asked: Option<&String>) -> usize {
    asked
        .and_then(|p| p.parse::<usize>().ok())
        .map_or(100, |n| n.clamp(5, 5000))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(comment: &str, ttl: u64) -> Value {
        json!({ "name": "api.example.com", "type": "A", "content": "192.0.2.1", "ttl": ttl, "proxied": false, "comment": comment })
    }

    #[test]
    fn comments_are_capped_by_plan() {
        assert!(check_record(&record(&"x".repeat(100), 1), Plan::Free).is_ok());
        assert!(check_record(&record(&"x".repeat(101), 1), Plan::Free).is_err());
        assert!(check_record(&record(&"x".repeat(500), 1), Plan::Paid).is_ok());
    }

    #[test]
    fn ttl_is_automatic_or_60_to_86400() {
        for ok in [1, 60, 86400] {
            assert!(check_record(&record("", ok), Plan::Free).is_ok(), "{ok}");
        }
        for bad in [0, 30, 59, 86401] {
            assert!(check_record(&record("", bad), Plan::Free).is_err(), "{bad}");
        }
    }
}
