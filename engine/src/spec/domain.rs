//! What counts as a public DNS name (DESIGN.md, "Security of targets").
//!
//! Fabrik points DNS records at servers and sends HTTPS probes to the domain, so a spec
//! must not be able to aim either at loopback, a private network or a name that only
//! resolves inside one.

use std::net::IpAddr;

/// TLDs and suffixes that never resolve on the public internet: RFC 6761/6762/8375/9476
/// special-use names, and the internal TLDs people use on private networks.
const NON_PUBLIC_SUFFIXES: &[&str] = &[
    "localhost",
    "local",
    "internal",
    "lan",
    "home.arpa",
    "home",
    "corp",
    "intranet",
    "private",
    "localdomain",
    "test",
    "example",
    "invalid",
    "onion",
    "alt",
    "arpa",
];

/// Why a name is not a public DNS name, with a hint that says what to write instead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DomainError {
    pub message: String,
    pub hint: Option<String>,
}

fn error(message: impl Into<String>, hint: Option<&str>) -> DomainError {
    DomainError {
        message: message.into(),
        hint: hint.map(str::to_owned),
    }
}

/// Checks that `input` is a public DNS name and returns it in canonical form: lowercase
/// ASCII (IDN labels converted to punycode), without a trailing dot.
pub fn normalize_public_domain(input: &str) -> Result<String, DomainError> {
    let trimmed = input.trim();
    let quoted = format!("{trimmed:?}");
    if trimmed.is_empty() {
        return Err(error(
            "must not be empty",
            Some("write the public name of the app, such as `api.example.com`"),
        ));
    }
    if trimmed.contains("://") || trimmed.contains('/') {
        return Err(error(
            format!("{quoted} is a URL, not a DNS name"),
            Some("write only the host name, such as `api.example.com`; the scheme is always https"),
        ));
    }
    let unbracketed = trimmed.trim_start_matches('[').trim_end_matches(']');
    if unbracketed.parse::<IpAddr>().is_ok() {
        return Err(error(
            format!("{quoted} is an IP address, not a DNS name"),
            Some("Fabrik creates a DNS record for the domain; write a name in a zone you control"),
        ));
    }
    if trimmed.contains(':') {
        return Err(error(
            format!("{quoted} contains a port or a colon"),
            Some("write only the host name; the app's port goes in `port`"),
        ));
    }
    if trimmed.contains('*') {
        return Err(error(
            format!("{quoted} is a wildcard"),
            Some("write one concrete name"),
        ));
    }
    let without_dot = trimmed.strip_suffix('.').unwrap_or(trimmed);
    let ascii = idna::domain_to_ascii_strict(without_dot).map_err(|_| {
        error(
            format!("{quoted} is not a valid DNS name"),
            Some("labels use letters, digits and hyphens, separated by dots"),
        )
    })?;
    check_public(&ascii, &quoted)?;
    check_shape(&ascii, &quoted)?;
    Ok(ascii)
}

fn check_shape(ascii: &str, quoted: &str) -> Result<(), DomainError> {
    if ascii.len() > 253 {
        return Err(error(
            format!(
                "{quoted} is {} characters long; a DNS name has at most 253",
                ascii.len()
            ),
            None,
        ));
    }
    let labels: Vec<&str> = ascii.split('.').collect();
    for label in &labels {
        if label.is_empty() {
            return Err(error(
                format!("{quoted} has an empty label (two dots in a row)"),
                None,
            ));
        }
        if label.len() > 63 {
            return Err(error(
                format!(
                    "{quoted} has a label of {} characters; a label has at most 63",
                    label.len()
                ),
                None,
            ));
        }
        if !label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        {
            return Err(error(
                format!(
                    "{quoted} has a label with characters other than letters, digits and hyphens"
                ),
                None,
            ));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(error(
                format!("{quoted} has a label that starts or ends with a hyphen"),
                None,
            ));
        }
    }
    let Some(tld) = labels.last() else {
        return Err(error(format!("{quoted} is not a valid DNS name"), None));
    };
    if labels.len() < 2 {
        return Err(error(
            format!("{quoted} is a single label, not a public DNS name"),
            Some("write a fully qualified name such as `api.example.com`"),
        ));
    }
    if tld.bytes().all(|b| b.is_ascii_digit()) {
        return Err(error(
            format!("{quoted} looks like an IP address, not a DNS name"),
            Some("a top-level domain is never numeric"),
        ));
    }
    Ok(())
}

fn check_public(ascii: &str, quoted: &str) -> Result<(), DomainError> {
    for suffix in NON_PUBLIC_SUFFIXES {
        let under = ascii.len() > suffix.len()
            && ascii.ends_with(suffix)
            && ascii.as_bytes()[ascii.len() - suffix.len() - 1] == b'.';
        if ascii == *suffix || under {
            return Err(DomainError {
                message: format!("{quoted} is not a public DNS name"),
                hint: Some(format!(
                    "`{suffix}` names are reserved or only resolve on private networks; use a name in a public zone that your DNS provider serves"
                )),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_and_canonicalizes_public_names() {
        for (input, expected) in [
            ("api.example.com", "api.example.com"),
            ("API.Example.COM.", "api.example.com"),
            ("a-b.c-d.co.uk", "a-b.c-d.co.uk"),
            ("bücher.example", "err"),
            ("bücher.de", "xn--bcher-kva.de"),
            ("xn--bcher-kva.de", "xn--bcher-kva.de"),
        ] {
            let got = normalize_public_domain(input);
            if expected == "err" {
                assert!(got.is_err(), "{input} should be rejected");
            } else {
                assert_eq!(got.as_deref(), Ok(expected), "{input}");
            }
        }
    }

    #[test]
    fn rejects_non_public_names() {
        for input in [
            "",
            "localhost",
            "LOCALHOST.",
            "app.localhost",
            "printer.local",
            "db.internal",
            "nas.lan",
            "router.home.arpa",
            "1.0.0.127.in-addr.arpa",
            "thing.test",
            "127.0.0.1",
            "10.0.0.1",
            "127.1",
            "::1",
            "[::1]",
            "fe80::1",
            "https://api.example.com",
            "api.example.com/health",
            "api.example.com:8443",
            "*.example.com",
            "com",
            "-bad.example.com",
            "bad-.example.com",
            "a..example.com",
            "under_score.example.com",
        ] {
            assert!(
                normalize_public_domain(input).is_err(),
                "{input:?} should be rejected"
            );
        }
    }

    #[test]
    fn enforces_length_limits() {
        let label63 = "a".repeat(63);
        assert!(normalize_public_domain(&format!("{label63}.com")).is_ok());
        assert!(normalize_public_domain(&format!("{}.com", "a".repeat(64))).is_err());
        let long = [label63.as_str(); 4].join(".") + ".com"; // 4*63 + 3 dots + 4 = 259
        assert!(normalize_public_domain(&long).is_err());
    }

    #[test]
    fn messages_name_the_value() {
        let err = normalize_public_domain("localhost").expect_err("localhost");
        assert_eq!(err.message, "\"localhost\" is not a public DNS name");
    }
}
