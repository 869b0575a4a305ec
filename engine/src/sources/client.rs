//! The one HTTPS client of a resolver, under the health check's rules: HTTPS only, the
//! extra CA, same-origin redirects, and every name checked in the client's own resolver
//! (public addresses only, unless a `--resolve` override names the host).

use super::*;

/// The one HTTPS client of a resolver.
pub(super) fn client(
    options: &VerifyOptions,
    guard: Guard,
) -> Result<reqwest::Client, SourceError> {
    let mut builder = reqwest::Client::builder()
        .https_only(true)
        .redirect(reqwest::redirect::Policy::custom(|attempt| {
            let allowed = attempt.previous().first().is_some_and(|first| {
                redirect_allowed(first, attempt.url(), attempt.previous().len())
            });
            if allowed {
                attempt.follow()
            } else {
                // Answered as the 3xx it is.
                attempt.stop()
            }
        }))
        .dns_resolver(Arc::new(GuardedDns(guard)))
        // Through a proxy the proxy resolves the name, and the address rules would not
        // hold: sources are resolved directly or not at all (then unreachable).
        .no_proxy()
        .connect_timeout(CONNECT_TIMEOUT)
        .timeout(REQUEST_TIMEOUT)
        .user_agent(concat!("fabrik/", env!("CARGO_PKG_VERSION")));
    if let Some(path) = &options.ca_file {
        let pem = crate::bounded::read(path, crate::bounded::MAX_TEXT).map_err(|e| {
            SourceError::Client(format!("cannot read the CA file `{}`: {e}", path.display()))
        })?;
        let certificate = reqwest::Certificate::from_pem(&pem).map_err(|e| {
            SourceError::Client(format!(
                "`{}` is not a PEM certificate: {e}",
                path.display()
            ))
        })?;
        builder = builder.add_root_certificate(certificate);
    }
    builder
        .build()
        .map_err(|e| SourceError::Client(describe(&e)))
}

/// Whether a redirect from a request first sent to `first` may go to `next`: the same
/// origin (scheme, host, port, compared parsed), HTTPS, no user information, few hops.
pub(super) fn redirect_allowed(first: &url::Url, next: &url::Url, hops: usize) -> bool {
    hops < MAX_REDIRECTS
        && next.scheme() == "https"
        && next.origin() == first.origin()
        && next.username().is_empty()
        && next.password().is_none()
}

/// The address rules of the health check, for any name a request reaches.
#[derive(Clone)]
pub(super) struct Guard {
    pub(super) overrides: Arc<[Resolve]>,
    pub(super) lookup: Lookup,
}

/// Why a name is not connected to.
#[derive(Debug, thiserror::Error)]
pub(super) enum Denied {
    /// It has no address now (offline, a resolver down, a name that does not exist).
    #[error("{0}")]
    Unknown(String),
    /// It must not be reached.
    #[error("{0}")]
    Refused(String),
}

impl Denied {
    pub(super) fn into_error(self, what: &str) -> SourceError {
        match self {
            Denied::Unknown(message) => SourceError::Unreachable {
                what: what.to_owned(),
                message,
            },
            Denied::Refused(reason) => SourceError::Refused {
                what: what.to_owned(),
                reason,
            },
        }
    }
}

impl Guard {
    /// The addresses a connection to `host` may use: the override's, a test lookup's
    /// (trusted as overrides are), else the system resolver's if every one is public.
    pub(super) async fn addresses(&self, host: &str) -> Result<Vec<SocketAddr>, Denied> {
        if let Some(chosen) = pick(&self.overrides, host) {
            return Ok(vec![chosen.addr]);
        }
        let found: Vec<SocketAddr> = match &self.lookup {
            Lookup::Custom(lookup) => lookup(host)
                .map_err(|e| Denied::Unknown(format!("DNS lookup of {host} failed: {e}")))?,
            Lookup::System => {
                let found: Vec<SocketAddr> =
                    tokio::time::timeout(LOOKUP_TIMEOUT, tokio::net::lookup_host((host, 0)))
                        .await
                        .map_err(|_| Denied::Unknown(format!("DNS lookup of {host} timed out")))?
                        .map_err(|e| Denied::Unknown(format!("DNS lookup of {host} failed: {e}")))?
                        .collect();
                if let Some(private) = found.iter().find(|a| verify::is_private(a.ip())) {
                    return Err(Denied::Refused(format!(
                        "{host} resolves to {}, a private or reserved address; refusing to connect to it",
                        private.ip()
                    )));
                }
                found
            }
        };
        if found.is_empty() {
            return Err(Denied::Unknown(format!("{host} has no address")));
        }
        Ok(found)
    }

    /// Whether a request to `host:port` can go where the rules allow.
    pub(super) async fn admit(&self, host: &str, port: u16) -> Result<(), Denied> {
        // reqwest connects to an address without asking the resolver: checked here.
        if let Ok(ip) = host.trim_matches(['[', ']']).parse::<IpAddr>() {
            return if verify::is_private(ip) {
                Err(Denied::Refused(format!(
                    "{ip} is a private or reserved address; refusing to connect to it (name a host, which `--resolve` can point at an address)"
                )))
            } else {
                Ok(())
            };
        }
        override_consistent(&self.overrides, host, port).map_err(Denied::Refused)?;
        self.addresses(host).await.map(|_| ())
    }
}

/// The override a connection to `host` takes. A resolver is given a name, not a port,
/// so the choice is by name: the override for port 443 (the health check's) before one
/// for another port, an exact name before a wildcard.
pub(super) fn pick<'a>(overrides: &'a [Resolve], host: &str) -> Option<&'a Resolve> {
    overrides
        .iter()
        .filter(|r| r.applies_to(host, r.port))
        .min_by_key(|r| (r.port != 443, r.host.starts_with('*')))
}

/// That the override chosen by name for `host` is the one `--resolve` gives `host:port`
/// (none if none), and that reqwest can honour it: a URL's explicit port replaces the
/// override address's port, so an override for another port than 443 must keep it.
/// What cannot be honoured exactly is refused rather than connected somewhere else.
pub(super) fn override_consistent(
    overrides: &[Resolve],
    host: &str,
    port: u16,
) -> Result<(), String> {
    let wanted = Resolve::find(overrides, host, port);
    match (wanted, pick(overrides, host)) {
        (None, None) => Ok(()),
        (Some(wanted), Some(used)) if wanted == used => {
            if port == 443 || wanted.addr.port() == port {
                Ok(())
            } else {
                Err(format!(
                    "the override `{}:{}:{}` changes the port, which a source on port {port} cannot follow; give the address with port {port}",
                    wanted.host, wanted.port, wanted.addr
                ))
            }
        }
        (_, Some(used)) => Err(format!(
            "{host}:{port} would connect through the override `{}:{}:{}`, meant for port {}: a source's overrides go by name, so give {host} one override only",
            used.host, used.port, used.addr, used.port
        )),
        // Whatever `find` finds applies at its own port, so `pick` sees it.
        (Some(_), None) => Ok(()),
    }
}

/// The client's name resolver: [`Guard::addresses`] for every name.
pub(super) struct GuardedDns(Guard);

impl reqwest::dns::Resolve for GuardedDns {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let guard = self.0.clone();
        let host = name.as_str().to_owned();
        Box::pin(async move {
            match guard.addresses(&host).await {
                Ok(found) => Ok(Box::new(found.into_iter()) as reqwest::dns::Addrs),
                Err(denied) => Err(Box::new(denied) as Box<dyn std::error::Error + Send + Sync>),
            }
        })
    }
}

/// A failed request as an error: refused if the resolver refused the name, else
/// unreachable.
pub(super) fn request_failed(what: &str, error: &reqwest::Error) -> SourceError {
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        if let Some(Denied::Refused(reason)) = cause.downcast_ref::<Denied>() {
            return SourceError::Refused {
                what: what.to_owned(),
                reason: reason.clone(),
            };
        }
        source = cause.source();
    }
    SourceError::Unreachable {
        what: what.to_owned(),
        message: describe(error),
    }
}

/// A reqwest error and its causes, without its URL.
pub(super) fn describe(error: &reqwest::Error) -> String {
    if error.is_timeout() {
        return "timed out".to_owned();
    }
    let mut text = error.to_string();
    if let Some(url) = error.url() {
        text = text
            .replace(&format!(" for url ({url})"), "")
            .replace(url.as_str(), "…");
    }
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text = format!("{text}: {cause}");
        source = cause.source();
    }
    text
}

/// The body of `response`, refused past `max` bytes: a broken or hostile server's
/// endless answer is never read whole.
pub(super) async fn bounded_body(
    mut response: reqwest::Response,
    max: usize,
    what: &str,
) -> Result<Vec<u8>, SourceError> {
    let too_large = || SourceError::TooLarge {
        what: what.to_owned(),
        max,
    };
    if response
        .content_length()
        .is_some_and(|length| length > u64::try_from(max).unwrap_or(u64::MAX))
    {
        return Err(too_large());
    }
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| request_failed(what, &e))?
    {
        if body.len() + chunk.len() > max {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}
