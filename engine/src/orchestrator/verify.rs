//! Verification: HTTPS GET on `https://<domain><path>` until the expected status or the
//! spec's timeout. TLS is always verified; an extra CA and explicit address overrides
//! exist for tests and private setups; otherwise the resolved addresses must be public.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::spec::Spec;

/// `HOST:PORT:ADDR`, as curl's `--resolve` (ADDR may carry its own port:
/// `api.example.com:443:127.0.0.1:8443`). HOST may be `*` (every name, as curl) or
/// `*.example.com` (every name under `example.com`, not `example.com` itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolve {
    pub host: String,
    pub port: u16,
    pub addr: SocketAddr,
}

impl std::str::FromStr for Resolve {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let invalid =
            || format!("`{text}` is not HOST:PORT:ADDR (e.g. api.example.com:443:127.0.0.1)");
        let (host, rest) = text.split_once(':').ok_or_else(invalid)?;
        let (port, addr) = rest.split_once(':').ok_or_else(invalid)?;
        let port: u16 = port.parse().map_err(|_| invalid())?;
        let addr = addr
            .parse::<SocketAddr>()
            .or_else(|_| {
                addr.trim_matches(['[', ']'])
                    .parse::<IpAddr>()
                    .map(|ip| SocketAddr::new(ip, port))
            })
            .map_err(|_| invalid())?;
        let wildcard_ok = host == "*"
            || host
                .strip_prefix("*.")
                .is_some_and(|zone| !zone.is_empty() && !zone.contains('*'));
        if host.is_empty() || (host.contains('*') && !wildcard_ok) {
            return Err(invalid());
        }
        Ok(Self {
            host: host.to_ascii_lowercase(),
            port,
            addr,
        })
    }
}

impl Resolve {
    /// Whether this override applies to `host:port`.
    pub fn applies_to(&self, host: &str, port: u16) -> bool {
        if self.port != port {
            return false;
        }
        let host = host.to_ascii_lowercase();
        match self.host.strip_prefix('*') {
            Some("") => true,
            Some(zone) if zone.starts_with('.') => host.len() > zone.len() && host.ends_with(zone),
            _ => self.host == host,
        }
    }

    /// The override that applies to `host:port`: an exact name before a wildcard.
    pub fn find<'a>(all: &'a [Resolve], host: &str, port: u16) -> Option<&'a Resolve> {
        all.iter()
            .filter(|r| r.applies_to(host, port))
            .min_by_key(|r| r.host.starts_with('*'))
    }
}

/// How verification connects.
#[derive(Debug, Clone, Default)]
pub struct VerifyOptions {
    pub resolve: Vec<Resolve>,
    pub ca_file: Option<PathBuf>,
    pub lookup: Lookup,
}

/// A name lookup for one probe attempt.
pub type LookupFn = dyn Fn(&str) -> std::io::Result<Vec<SocketAddr>> + Send + Sync;

/// How the domain is resolved before each probe.
#[derive(Clone, Default)]
pub enum Lookup {
    /// The system resolver; every address must be public.
    #[default]
    System,
    /// A lookup supplied by the caller (tests): its answers are trusted as `--resolve`'s.
    Custom(std::sync::Arc<LookupFn>),
}

impl std::fmt::Debug for Lookup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Lookup::System => f.write_str("System"),
            Lookup::Custom(_) => f.write_str("Custom"),
        }
    }
}

/// The address to probe among what the system resolver answered: none may be private or
/// reserved (a public name pointing inside the network is refused, not probed).
pub fn public_address(domain: &str, addresses: &[SocketAddr]) -> Result<SocketAddr, String> {
    if let Some(private) = addresses.iter().find(|a| is_private(a.ip())) {
        return Err(format!(
            "{domain} resolves to {}, a private or reserved address; refusing to probe it",
            private.ip()
        ));
    }
    addresses
        .first()
        .copied()
        .ok_or_else(|| format!("{domain} has no address yet"))
}

/// Why one attempt could not be made.
enum Unresolved {
    /// The name is not there yet (a fresh record propagating): try again.
    NotYet(String),
    /// The name points somewhere a health check must not go: stop.
    Refused(String),
}

/// Whether `ip` is not a public unicast address: anything in the IANA IPv4 and IPv6
/// special-purpose address registries (private, shared, loopback, link-local,
/// benchmarking such as 198.18.0.0/15, documentation, reserved, and the IPv6 forms that
/// embed an IPv4 address: mapped, NAT64, 6to4, Teredo), multicast, or an IPv6 address
/// whose embedded IPv4 address is one of those; and any IPv6 address outside global
/// unicast (2000::/3). The registries come from `iprfc`, which
/// generates them from IANA's files, not from a hand-written list.
pub fn is_private(ip: IpAddr) -> bool {
    if ip.is_multicast() || iprfc::RFC6890.contains(&ip) {
        return true;
    }
    match ip {
        IpAddr::V4(_) => false,
        // An allow list, not more refusals: a public IPv6 address is global unicast,
        // 2000::/3 (RFC 4291, 2.4; IANA's IPv6 address space). Everything outside it is
        // refused whatever the registries say of it: the deprecated site-local fec0::/10,
        // SIIT's `::ffff:0:a.b.c.d` (RFC 6052) and the IPv4-compatible `::a.b.c.d` that the
        // registries no longer list, and whatever is defined next.
        IpAddr::V6(v6) => v6.segments()[0] & 0xe000 != 0x2000,
    }
}

/// Whether `url` is `https://<domain>` on port 443, with no user information.
pub fn same_origin(url: &url::Url, domain: &str) -> bool {
    url.scheme() == "https"
        && url
            .host_str()
            .is_some_and(|host| host.eq_ignore_ascii_case(domain))
        && url.port_or_known_default() == Some(443)
        && url.username().is_empty()
        && url.password().is_none()
}

/// The result of a verification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub status: u16,
    pub attempts: u32,
}

/// Why verification failed, with what was seen last.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{url} did not pass its health check after {attempts} attempt{} in {seconds} s: {last}", if *attempts == 1 { "" } else { "s" })]
pub struct VerifyError {
    pub url: String,
    pub attempts: u32,
    pub seconds: u64,
    pub last: String,
}

/// How much of a failing answer's body is read for the excerpt.
const EXCERPT_BYTES: usize = 4096;

/// The first `max` bytes of `response`'s body, as text: a hostile endpoint's endless or
/// huge body is never read whole.
async fn first_bytes(mut response: reqwest::Response, max: usize) -> String {
    let mut body = Vec::new();
    while body.len() < max {
        match response.chunk().await {
            Ok(Some(chunk)) => body.extend_from_slice(&chunk[..chunk.len().min(max - body.len())]),
            _ => break,
        }
    }
    String::from_utf8_lossy(&body).into_owned()
}

pub(crate) fn excerpt(body: &str) -> String {
    let flat: String = body
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let flat = flat.trim();
    if flat.chars().count() > 120 {
        format!("{}…", flat.chars().take(120).collect::<String>())
    } else {
        flat.to_owned()
    }
}

fn describe(error: &reqwest::Error) -> String {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text = format!("{text}: {cause}");
        source = cause.source();
    }
    if error.is_timeout() {
        format!("timed out ({text})")
    } else {
        text
    }
}

/// Why a request got no answer, in a few words for the live line: the innermost cause
/// (`Connection refused (os error 111)`, `invalid peer certificate: UnknownIssuer`),
/// which the outer layers' wording (`error sending request for url …`) would push out.
fn root_cause(error: &reqwest::Error) -> String {
    if error.is_timeout() {
        return "timed out".to_owned();
    }
    let mut innermost: &dyn std::error::Error = error;
    while let Some(cause) = innermost.source() {
        innermost = cause;
    }
    let text = innermost.to_string();
    let short: String = text.chars().take(80).collect();
    if short.len() < text.len() {
        format!("{short}…")
    } else {
        short
    }
}

/// What the health check waits for: `expected 204`, or `expected a 2xx`.
fn expectation(expect_status: Option<u16>) -> String {
    match expect_status {
        Some(status) => format!("expected {status}"),
        None => "expected a 2xx".to_owned(),
    }
}

/// One health-check attempt that did not pass yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    /// `GET /health`.
    pub request: String,
    /// The status, or why there was no answer, in a few words.
    pub answer: String,
    pub number: u32,
    pub elapsed: Duration,
    pub timeout: Duration,
}

/// Probes the spec's health URL until it answers as expected or the timeout passes;
/// `attempted` hears each attempt that did not pass, so that the user sees what is
/// awaited. What the app answered is passed through `redact` before it is cut to an
/// excerpt or flattened to one line: a cut must never split a secret that redaction
/// would have hidden whole.
pub async fn verify(
    spec: &Spec,
    options: &VerifyOptions,
    redact: &dyn Fn(&str) -> String,
    attempted: impl Fn(Attempt),
) -> Result<Verified, VerifyError> {
    let url = spec.health_url();
    let timeout = Duration::from_secs(u64::from(spec.healthcheck.timeout));
    let started = Instant::now();
    let fail = |attempts: u32, last: String| VerifyError {
        url: url.clone(),
        attempts,
        seconds: started.elapsed().as_secs(),
        last,
    };
    let certificate = match &options.ca_file {
        Some(path) => {
            let pem = std::fs::read(path).map_err(|e| {
                fail(
                    0,
                    format!("cannot read the CA file `{}`: {e}", path.display()),
                )
            })?;
            Some(reqwest::Certificate::from_pem(&pem).map_err(|e| {
                fail(
                    0,
                    format!("`{}` is not a PEM certificate: {e}", path.display()),
                )
            })?)
        }
        None => None,
    };
    // One client per address the name resolves to (a builder cannot be cloned).
    let builder_for = || -> reqwest::ClientBuilder {
        let domain = spec.domain.clone();
        let mut builder = reqwest::Client::builder()
            .https_only(true)
            // Same origin only, compared as a parsed URL: a prefix test would follow
            // `https://<domain>.evil.test` or `https://<domain>:8443` (another service on
            // the checked address). A same-origin hop connects to the address checked
            // before the attempt (`resolve` below pins it).
            .redirect(reqwest::redirect::Policy::custom(move |attempt| {
                if same_origin(attempt.url(), &domain) && attempt.previous().len() < 5 {
                    attempt.follow()
                } else {
                    attempt.stop()
                }
            }))
            .user_agent(concat!(
                "fabrik/",
                env!("CARGO_PKG_VERSION"),
                " health-check"
            ));
        if let Some(certificate) = &certificate {
            builder = builder.add_root_certificate(certificate.clone());
        }
        builder
    };
    let overridden = Resolve::find(&options.resolve, &spec.domain, 443).map(|r| r.addr);
    // Resolved at every attempt, not once: a record just created may take a while to
    // be seen by the resolver, and the health-check timeout bounds that wait too.
    let resolve = async || -> Result<SocketAddr, Unresolved> {
        if let Some(addr) = overridden {
            return Ok(addr);
        }
        match &options.lookup {
            Lookup::Custom(lookup) => lookup(&spec.domain)
                .map_err(|e| {
                    Unresolved::NotYet(format!("DNS lookup of {} failed: {e}", spec.domain))
                })?
                .first()
                .copied()
                .ok_or_else(|| Unresolved::NotYet(format!("{} has no address yet", spec.domain))),
            Lookup::System => {
                // A resolver that does not answer must not outlast the health check.
                let left = timeout
                    .saturating_sub(started.elapsed())
                    .max(Duration::from_millis(100));
                let addresses: Vec<SocketAddr> = tokio::time::timeout(
                    left,
                    tokio::net::lookup_host((spec.domain.as_str(), 443)),
                )
                .await
                .map_err(|_| {
                    Unresolved::NotYet(format!("DNS lookup of {} timed out", spec.domain))
                })?
                .map_err(|e| {
                    Unresolved::NotYet(format!("DNS lookup of {} failed: {e}", spec.domain))
                })?
                .collect();
                if addresses.is_empty() {
                    return Err(Unresolved::NotYet(format!(
                        "{} has no address yet",
                        spec.domain
                    )));
                }
                public_address(&spec.domain, &addresses).map_err(Unresolved::Refused)
            }
        }
    };
    let mut clients: Vec<(SocketAddr, reqwest::Client)> = Vec::new();
    let interval = Duration::from_secs(u64::from(spec.healthcheck.interval.max(1)));
    let mut delay = Duration::from_millis(200).min(interval);
    let mut attempts = 0;
    loop {
        attempts += 1;
        let remaining = timeout.saturating_sub(started.elapsed());
        let client = match resolve().await {
            Ok(addr) => match clients.iter().find(|(a, _)| *a == addr) {
                Some((_, client)) => Ok(client.clone()),
                None => {
                    let client = builder_for()
                        .resolve(&spec.domain, addr)
                        .build()
                        .map_err(|e| fail(0, format!("cannot build the HTTPS client: {e}")))?;
                    clients.push((addr, client.clone()));
                    Ok(client)
                }
            },
            Err(Unresolved::Refused(reason)) => return Err(fail(attempts, reason)),
            Err(Unresolved::NotYet(reason)) => Err(reason),
        };
        let mut answer = None;
        let last = match client {
            Err(reason) => reason,
            Ok(client) => match client
                .get(&url)
                .timeout(remaining.clamp(Duration::from_millis(100), Duration::from_secs(10)))
                .send()
                .await
            {
                Ok(response) => {
                    let status = response.status().as_u16();
                    tracing::debug!(
                        elapsed_ms = started.elapsed().as_millis(),
                        status,
                        "health-check answer"
                    );
                    let ok = match spec.healthcheck.expect_status {
                        Some(expected) => status == expected,
                        None => (200..300).contains(&status),
                    };
                    if ok {
                        return Ok(Verified { status, attempts });
                    }
                    let expected = expectation(spec.healthcheck.expect_status);
                    answer = Some(format!("{status} ({expected})"));
                    let body = first_bytes(response, EXCERPT_BYTES).await;
                    format!(
                        "last answer {status} ({expected}): {}",
                        excerpt(&redact(&body))
                    )
                }
                Err(error) => {
                    answer = Some(root_cause(&error));
                    describe(&error)
                }
            },
        };
        attempted(Attempt {
            request: format!("GET {}", spec.healthcheck.path),
            answer: answer.unwrap_or_else(|| {
                let short: String = last.chars().take(80).collect();
                if short.len() < last.len() {
                    format!("{short}…")
                } else {
                    short
                }
            }),
            number: attempts,
            elapsed: started.elapsed(),
            timeout,
        });
        // One last attempt at the deadline itself: an app that comes up in the final
        // pause still passes.
        let left = timeout.saturating_sub(started.elapsed());
        if left.is_zero() {
            return Err(fail(attempts, last));
        }
        tokio::time::sleep(delay.min(left)).await;
        delay = (delay * 2).min(interval);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolve_overrides_parse_like_curl() {
        let r: Resolve = "API.example.com:443:127.0.0.1".parse().expect("valid");
        assert_eq!(
            (r.host.as_str(), r.port, r.addr),
            (
                "api.example.com",
                443,
                "127.0.0.1:443".parse().expect("addr")
            )
        );
        let r: Resolve = "api.example.com:443:127.0.0.1:8443".parse().expect("valid");
        assert_eq!(r.addr, "127.0.0.1:8443".parse().expect("addr"));
        let r: Resolve = "api.example.com:443:[::1]:8443".parse().expect("valid");
        assert_eq!(r.addr, "[::1]:8443".parse().expect("addr"));
        let any: Resolve = "*:443:127.0.0.1".parse().expect("valid");
        let zone: Resolve = "*.Example.com:443:127.0.0.2".parse().expect("valid");
        let exact: Resolve = "api.example.com:443:127.0.0.3".parse().expect("valid");
        assert!(any.applies_to("anything.org", 443) && !any.applies_to("a.org", 80));
        assert!(zone.applies_to("my-app.example.com", 443));
        assert!(zone.applies_to("a.b.EXAMPLE.com", 443));
        assert!(!zone.applies_to("example.com", 443));
        assert!(!zone.applies_to("badexample.com", 443));
        let all = [any.clone(), zone.clone(), exact.clone()];
        assert_eq!(
            Resolve::find(&all, "api.example.com", 443),
            Some(&exact),
            "an exact name wins over a wildcard"
        );
        assert_eq!(Resolve::find(&all, "web.example.com", 443), Some(&any));
        assert_eq!(
            Resolve::find(&all[1..], "web.example.com", 443),
            Some(&zone)
        );
        assert_eq!(Resolve::find(&all[1..], "web.example.org", 443), None);
        for bad in [
            "*.*.example.com:443:1.2.3.4",
            "a*.example.com:443:1.2.3.4",
            "*.:443:1.2.3.4",
            "api.example.com",
            "api.example.com:x:1.2.3.4",
            ":443:1.2.3.4",
            "a:443:nope",
        ] {
            assert!(bad.parse::<Resolve>().is_err(), "{bad}");
        }
    }

    #[test]
    fn only_a_same_origin_redirect_is_followed() {
        let domain = "api.example.com";
        for (url, same) in [
            ("https://api.example.com/health", true),
            ("https://API.example.com:443/other", true),
            ("https://api.example.com.evil.test/health", false),
            ("https://api.example.com:8443/health", false),
            ("https://user@api.example.com/health", false),
            ("http://api.example.com/health", false),
            ("https://evil.test/?https://api.example.com", false),
            ("https://127.0.0.1/health", false),
        ] {
            let parsed = url::Url::parse(url).expect("url");
            assert_eq!(same_origin(&parsed, domain), same, "{url}");
        }
    }

    #[test]
    fn a_name_resolving_to_a_private_address_is_refused() {
        let addresses: Vec<SocketAddr> = vec![
            "1.1.1.1:443".parse().expect("addr"),
            "10.0.0.7:443".parse().expect("addr"),
        ];
        let refused = public_address("api.example.com", &addresses).expect_err("refused");
        assert!(
            refused.contains("10.0.0.7, a private or reserved address"),
            "{refused}"
        );
        let public: Vec<SocketAddr> = vec!["1.1.1.1:443".parse().expect("addr")];
        assert_eq!(public_address("api.example.com", &public), Ok(public[0]));
        assert!(public_address("api.example.com", &[]).is_err());
    }

    #[test]
    fn private_and_reserved_addresses() {
        for ip in [
            "10.0.0.1",
            "192.168.1.1",
            "172.16.0.1",
            "127.0.0.1",
            "169.254.1.1",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:10.0.0.1",
            "240.0.0.1",
            // Missed by the old hand list (issue 16, point 2).
            "198.18.0.1",
            "198.19.255.254",
            "192.0.0.1",
            "192.88.99.1",
            "224.0.0.1",
            "2001:db8::1",
            "::ffff:198.18.0.1",
            "64:ff9b::a00:1",
            "2002:a00:1::1",
            "2001:0:4136:e378::1",
            "::10.0.0.1",
            "::8.8.8.8",
            "ff02::1",
            // Outside global unicast (issue 28, point 7).
            "fec0::1",
            "feff::1",
            "::ffff:0:a00:1",
            "::ffff:0:808:808",
            "4000::1",
        ] {
            assert!(is_private(ip.parse().expect("ip")), "{ip}");
        }
        for ip in [
            "1.1.1.1",
            "8.8.8.8",
            "203.0.114.1",
            "2606:4700::1111",
            "2a00:1450::1",
            "2404:6800:4003::1",
        ] {
            assert!(!is_private(ip.parse().expect("ip")), "{ip}");
        }
    }
}
