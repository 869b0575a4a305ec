//! Reaching the server: the connection string read as libpq reads it, TLS whenever the
//! server is reached over the network, sessions immune to the server's idle timeouts,
//! and errors that name the cause, never the connection string.

use std::sync::Arc;

use secrecy::ExposeSecret;
use tokio_postgres::Client;

use super::{PgSettings, valid_schema};
use crate::store::StoreError;

/// A PostgreSQL error as a person needs it: the server's own message, with its detail
/// and hint (tokio-postgres shows a server error as "db error" alone), or the client's
/// error and its causes.
pub fn describe(error: &tokio_postgres::Error) -> String {
    if let Some(db) = error.as_db_error() {
        let mut text = format!("{} ({})", db.message(), db.code().code());
        if let Some(detail) = db.detail() {
            text.push_str(&format!("; {detail}"));
        }
        if let Some(hint) = db.hint() {
            text.push_str(&format!("\n  hint: {hint}"));
        }
        return text;
    }
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(&format!(": {cause_text}"));
        }
        source = cause.source();
    }
    text
}

/// The TLS mode a connection uses: as the connection string says, but `require` when it
/// says nothing. libpq's default, `prefer`, falls back to plain text when the server (or
/// someone in the middle) declines TLS, and the state's connection carries a password.
fn effective_ssl_mode(
    url: &str,
    parsed: tokio_postgres::config::SslMode,
) -> tokio_postgres::config::SslMode {
    if url.to_ascii_lowercase().contains("sslmode") {
        parsed
    } else {
        tokio_postgres::config::SslMode::Require
    }
}

/// A connection string read as libpq reads it (the reference: PostgreSQL's
/// "Connection Strings"): the `key=value` form, or a URI whose query parameters override
/// what its authority says. tokio-postgres adds a URI's `host` and `port` parameters to
/// the authority's instead, so that `postgresql://u@localhost/db?host=/run/postgresql`
/// would try `localhost` over the network first; here it is the Unix socket alone.
fn parse_connection_string(text: &str) -> Result<tokio_postgres::Config, String> {
    let cannot = || "the connection string cannot be parsed (FABRIK_STATE_URL)".to_owned();
    let Some((scheme, rest)) = text
        .split_once("://")
        .filter(|(scheme, _)| matches!(*scheme, "postgres" | "postgresql"))
    else {
        return text.parse().map_err(|_| cannot());
    };
    let (before_query, query) = rest.split_once('?').unwrap_or((rest, ""));
    let names: Vec<&str> = query
        .split('&')
        .filter_map(|pair| pair.split_once('=').map(|(k, _)| k))
        .collect();
    let overrides_host = names.contains(&"host") || names.contains(&"hostaddr");
    let overrides_port = names.contains(&"port");
    if !overrides_host && !overrides_port {
        return text.parse().map_err(|_| cannot());
    }
    let (authority, path) = match before_query.find('/') {
        Some(at) => before_query.split_at(at),
        None => (before_query, ""),
    };
    let (userinfo, hosts) = match authority.rsplit_once('@') {
        Some((userinfo, hosts)) => (Some(userinfo), hosts),
        None => (None, authority),
    };
    // Each host of the authority, with its port (an IPv6 address is in brackets).
    let split_port = |entry: &str| -> (String, Option<String>) {
        let (host, port) = match entry.rfind(']') {
            Some(end) => {
                let (host, tail) = entry.split_at(end + 1);
                (host, tail.strip_prefix(':'))
            }
            None => match entry.split_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (entry, None),
            },
        };
        (
            host.to_owned(),
            port.filter(|p| !p.is_empty()).map(str::to_owned),
        )
    };
    let entries: Vec<(String, Option<String>)> = hosts
        .split(',')
        .filter(|e| !e.is_empty())
        .map(split_port)
        .collect();
    // Everything goes in the query, where tokio-postgres takes hosts and ports as given:
    // the query's own, else the authority's.
    let mut extra = Vec::new();
    if !overrides_host {
        let hosts: Vec<&str> = entries
            .iter()
            .map(|(host, _)| host.trim_start_matches('[').trim_end_matches(']'))
            .collect();
        if !hosts.is_empty() {
            extra.push(format!("host={}", hosts.join(",")));
        }
    }
    if !overrides_port {
        let ports: Vec<String> = entries.iter().filter_map(|(_, p)| p.clone()).collect();
        if !ports.is_empty() {
            extra.push(format!("port={}", ports.join(",")));
        }
    }
    let authority = userinfo.map(|u| format!("{u}@")).unwrap_or_default();
    let mut rebuilt = format!("{scheme}://{authority}{path}?{query}");
    for pair in extra {
        rebuilt.push('&');
        rebuilt.push_str(&pair);
    }
    rebuilt.parse().map_err(|_| cannot())
}

/// How a connection reaches the server: a Unix socket never leaves the machine (TLS is
/// not offered there, as libpq's `sslmode` applies only to TCP), the network is TLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Transport {
    Local,
    Network,
}

impl Transport {
    fn is_local(self) -> bool {
        self == Self::Local
    }
}

/// The transport of every host of `config`; a list mixing Unix sockets and network
/// hosts is refused (one client cannot use TLS for some hosts and not for others).
fn transport(config: &tokio_postgres::Config) -> Result<Transport, String> {
    let unix =
        |host: &tokio_postgres::config::Host| matches!(host, tokio_postgres::config::Host::Unix(_));
    let hosts = config.get_hosts();
    if hosts.iter().all(unix) {
        Ok(Transport::Local)
    } else if hosts.iter().any(unix) {
        Err("the connection string names both Unix sockets and network hosts; name one kind (FABRIK_STATE_URL)".to_owned())
    } else {
        Ok(Transport::Network)
    }
}

/// Opens a connection: over TLS (rustls) when the server is reached over the network,
/// plain on a Unix socket. The connection task runs on the current runtime.
pub async fn connect_client(settings: &PgSettings) -> Result<Client, StoreError> {
    let location = format!("PostgreSQL schema `{}`", settings.schema);
    let open_error = |message: String| StoreError::Open {
        location: location.clone(),
        message,
    };
    let mut config = parse_connection_string(settings.url.expose_secret()).map_err(open_error)?;
    // Every statement finds Fabrik's tables in the project's schema, without a round trip
    // to set it (the schema name was checked to be a plain identifier). And the server's
    // idle timeouts do not apply to Fabrik's sessions: a lock is held by its session for
    // as long as a run lasts, idle while a provider works, and a server that ends idle
    // sessions would end the lock in the middle of the run.
    let mut options =
        "-c idle_session_timeout=0 -c idle_in_transaction_session_timeout=0".to_owned();
    if valid_schema(&settings.schema) {
        options.push_str(&format!(" -c search_path={}", settings.schema));
    }
    config.options(options);
    // The error of a failed connection names the server and the cause, never the
    // password: tokio-postgres does not quote the connection string.
    let local = transport(&config).map_err(open_error)?.is_local();
    if local || config.get_ssl_mode() == tokio_postgres::config::SslMode::Disable {
        // A Unix socket never leaves the machine; TLS there has no server name to check.
        let (client, connection) = config
            .connect(tokio_postgres::NoTls)
            .await
            .map_err(|e| open_error(describe(&e)))?;
        tokio::spawn(drive(connection));
        return Ok(client);
    }
    config.ssl_mode(effective_ssl_mode(
        settings.url.expose_secret(),
        config.get_ssl_mode(),
    ));
    let tls = tls_connector(settings.ca_file.as_deref()).map_err(open_error)?;
    let (client, connection) = config
        .connect(tls)
        .await
        .map_err(|e| open_error(describe(&e)))?;
    tokio::spawn(drive(connection));
    Ok(client)
}

/// Runs a connection until it ends; its end is logged (the next statement fails with
/// the cause).
async fn drive<S, T>(connection: tokio_postgres::Connection<S, T>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    if let Err(error) = connection.await {
        tracing::warn!("the state database connection ended: {}", describe(&error));
    }
}

fn tls_connector(
    ca_file: Option<&std::path::Path>,
) -> Result<tokio_postgres_rustls::MakeRustlsConnect, String> {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(path) = ca_file {
        let pem = std::fs::read(path)
            .map_err(|e| format!("cannot read the CA file `{}`: {e}", path.display()))?;
        for cert in rustls_pemfile::certs(&mut pem.as_slice()) {
            let cert = cert.map_err(|e| format!("the CA file `{}`: {e}", path.display()))?;
            roots
                .add(cert)
                .map_err(|e| format!("the CA file `{}`: {e}", path.display()))?;
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(tokio_postgres_rustls::MakeRustlsConnect::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_is_required_unless_the_connection_string_says_otherwise() {
        use tokio_postgres::config::SslMode;
        assert_eq!(
            effective_ssl_mode("postgresql://u:p@db/x", SslMode::Prefer),
            SslMode::Require
        );
        assert_eq!(
            effective_ssl_mode("host=db user=u sslmode=prefer", SslMode::Prefer),
            SslMode::Prefer
        );
        assert_eq!(
            effective_ssl_mode("postgresql://u:p@db/x?sslmode=disable", SslMode::Disable),
            SslMode::Disable
        );
    }

    /// The forms PostgreSQL's documentation gives ("Connection URIs"), read as libpq
    /// reads them: query parameters override the authority's hosts and ports.
    #[test]
    fn connection_strings_are_read_as_libpq_reads_them() {
        use std::path::PathBuf;
        use tokio_postgres::config::Host;
        let tcp = |h: &str| Host::Tcp(h.to_owned());
        let unix = |p: &str| Host::Unix(PathBuf::from(p));
        let cases: [(&str, Vec<Host>, Vec<u16>); 11] = [
            ("postgresql://localhost", vec![tcp("localhost")], vec![]),
            (
                "postgresql://localhost:5433",
                vec![tcp("localhost")],
                vec![5433],
            ),
            (
                "postgresql://localhost/mydb",
                vec![tcp("localhost")],
                vec![],
            ),
            (
                "postgresql://user:secret@localhost",
                vec![tcp("localhost")],
                vec![],
            ),
            (
                "postgresql://other@localhost/otherdb?connect_timeout=10&application_name=myapp",
                vec![tcp("localhost")],
                vec![],
            ),
            (
                "postgresql://host1:123,host2:456/somedb?target_session_attrs=any&application_name=myapp",
                vec![tcp("host1"), tcp("host2")],
                vec![123, 456],
            ),
            (
                "postgresql:///mydb?host=localhost&port=5433",
                vec![tcp("localhost")],
                vec![5433],
            ),
            (
                "postgresql:///dbname?host=/var/lib/postgresql",
                vec![unix("/var/lib/postgresql")],
                vec![],
            ),
            // The query's host replaces the authority's (tokio-postgres alone adds it).
            (
                "postgresql://u@localhost/db?host=/run/postgresql",
                vec![unix("/run/postgresql")],
                vec![],
            ),
            (
                "postgres://u@db:6000/x?host=other",
                vec![tcp("other")],
                vec![6000],
            ),
            (
                "postgres://u@db:6000/x?port=7000",
                vec![tcp("db")],
                vec![7000],
            ),
        ];
        for (text, hosts, ports) in cases {
            let config = parse_connection_string(text).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(config.get_hosts(), hosts.as_slice(), "{text}");
            if !ports.is_empty() {
                assert_eq!(config.get_ports(), ports.as_slice(), "{text}");
            }
        }
        // The key=value form as it is.
        let config = parse_connection_string("host=/run/postgresql port=5432 user=u dbname=d")
            .expect("parses");
        assert_eq!(config.get_hosts(), [unix("/run/postgresql")]);
        assert_eq!(transport(&config), Ok(Transport::Local));
        // A Unix socket is local: no TLS is attempted over it.
        let config = parse_connection_string("postgresql://u@localhost/db?host=/run/postgresql")
            .expect("parses");
        assert_eq!(transport(&config), Ok(Transport::Local));
        let config = parse_connection_string("host=db,/run/postgresql user=u").expect("parses");
        assert!(transport(&config).is_err(), "a mixed list is refused");
        assert!(parse_connection_string("postgresql://u@[::1/x").is_err());
    }
}
