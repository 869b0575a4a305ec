//! A provider that misbehaves on purpose, to test the sandbox and the engine. `create(kind, ..)`
//! picks the misbehaviour; the desired document carries its parameters. As a project's `dns`
//! provider (kind `dns-record`), its configuration picks how it lies: `crash-in = "configure"`
//! panics in `configure`; `answer-id` is the id every create answers with, whatever it
//! created, and `lookup-id` the id every lookup finds (a confused provider handing out
//! another app's record). Its `update` always fails.

//! It targets the first contract, 0.1.0, from its frozen copy: the sandbox tests are also
//! the proof that 0.1 components keep loading and running.

wit_bindgen::generate!({ path: "../../../wit/released/0.1.0", world: "provider-plugin" });

use exports::fabrik::provider::provider::{ConfigKey, Guest, ProgressReport, ProviderError, ProviderInfo, Resource};
use fabrik::provider::host::{self, AuthScheme, Credential, HttpRequest, Method};

struct Evil;

/// What `configure` was given: `(key, value)` pairs.
static CONFIG: std::sync::Mutex<Vec<(String, String)>> = std::sync::Mutex::new(Vec::new());

fn config(key: &str) -> Option<String> {
    let config = CONFIG.lock().unwrap_or_else(|e| e.into_inner());
    config.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone())
}

fn found(kind: &str, outputs: String) -> Resource {
    Resource { kind: kind.to_owned(), id: "x".to_owned(), name: "x".to_owned(), owner: None, live: "{}".to_owned(), outputs }
}

fn quote(text: &str) -> String {
    let escaped: String = text.chars().flat_map(|c| match c {
        '"' => vec!['\\', '"'],
        '\\' => vec!['\\', '\\'],
        c if c.is_control() => vec![' '],
        c => vec![c],
    }).collect();
    format!("\"{escaped}\"")
}

/// The value of `"key":"..."` in a flat JSON object (no serde in this crate on purpose).
fn field(json: &str, key: &str) -> String {
    let needle = format!("\"{key}\":\"");
    json.split_once(&needle).and_then(|(_, rest)| rest.split_once('"')).map(|(v, _)| v.to_owned()).unwrap_or_default()
}

fn send(url: String) -> String {
    let result = host::http_send(&HttpRequest {
        method: Method::Get,
        url,
        headers: vec![],
        body: None,
        credential: Some(Credential { key: "api-token".to_owned(), scheme: AuthScheme::Bearer }),
        timeout_ms: Some(5_000),
    });
    match result {
        Ok(response) => format!("status {} body {}", response.status, String::from_utf8_lossy(&response.body)),
        Err(error) => format!("error {error:?}"),
    }
}

impl Guest for Evil {
    fn describe() -> ProviderInfo {
        ProviderInfo {
            name: "evil".to_owned(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            description: "misbehaves on purpose".to_owned(),
            kinds: vec!["spin".into(), "hog".into(), "snoop".into(), "exfiltrate".into(), "panic".into(), "dns-record".into()],
            config: vec![
                ConfigKey {
                    name: "crash-in".to_owned(),
                    description: "`configure`: panic there".to_owned(),
                    secret: false,
                    required: false,
                },
                ConfigKey {
                    name: "answer-id".to_owned(),
                    description: "the id every dns-record create answers with".to_owned(),
                    secret: false,
                    required: false,
                },
                ConfigKey {
                    name: "lookup-id".to_owned(),
                    description: "the id every dns-record lookup finds".to_owned(),
                    secret: false,
                    required: false,
                },
            ],
            default_origins: vec![],
        }
    }

    fn configure(given: Vec<(String, String)>) -> Result<(), ProviderError> {
        *CONFIG.lock().unwrap_or_else(|e| e.into_inner()) = given;
        if config("crash-in").as_deref() == Some("configure") {
            panic!("boom: the evil provider panicked in configure on purpose");
        }
        Ok(())
    }

    fn create(kind: String, name: String, desired: String, owner: String) -> Result<Resource, ProviderError> {
        match kind.as_str() {
            "dns-record" => Ok(Resource {
                kind,
                id: config("answer-id").unwrap_or_else(|| format!("record-of-{name}")),
                name,
                owner: Some(owner),
                live: desired,
                outputs: "{}".to_owned(),
            }),
            "spin" => {
                let mut n: u64 = 0;
                loop {
                    n = std::hint::black_box(n.wrapping_add(1));
                }
            }
            "hog" => {
                let big = vec![1u8; 1 << 30];
                Ok(found(&kind, format!("{{\"len\":{}}}", std::hint::black_box(big).len())))
            }
            "snoop" => {
                let file = match std::fs::read_to_string("/etc/passwd") {
                    Ok(text) => format!("read {} bytes", text.len()),
                    Err(e) => format!("error: {e}"),
                };
                let dir = match std::fs::read_dir("/") {
                    Ok(entries) => format!("listed {} entries", entries.count()),
                    Err(e) => format!("error: {e}"),
                };
                let env: Vec<String> = std::env::vars().map(|(k, v)| format!("{k}={v}")).collect();
                // Where the test listens (so that a connection would be seen there).
                let address = Some(field(&desired, "connect")).filter(|a| !a.is_empty());
                let tcp = match std::net::TcpStream::connect(address.as_deref().unwrap_or("127.0.0.1:9")) {
                    Ok(_) => "connected".to_owned(),
                    Err(e) => format!("error: {e}"),
                };
                let outputs = format!(
                    "{{\"file\":{},\"dir\":{},\"env\":{},\"args\":{},\"tcp\":{}}}",
                    quote(&file),
                    quote(&dir),
                    quote(&env.join(";")),
                    quote(&std::env::args().collect::<Vec<_>>().join(" ")),
                    quote(&tcp)
                );
                Ok(found(&kind, outputs))
            }
            "exfiltrate" => {
                // Try to send the credential somewhere it was not granted for.
                let outcome = send(field(&desired, "url"));
                Ok(found(&kind, format!("{{\"outcome\":{}}}", quote(&outcome))))
            }
            "log" => {
                // Logs what it was given, which may contain secrets, every way it can.
                host::log(host::LogLevel::Warn, &format!("desired: {desired}"));
                println!("stdout: {desired}");
                eprintln!("stderr: {desired}");
                Ok(found(&kind, "{}".to_owned()))
            }
            "panic" => panic!("boom: the evil provider panicked on purpose"),
            other => Err(ProviderError::Permanent(format!("unknown kind {other}"))),
        }
    }

    fn read(_: String, _: String) -> Result<Option<Resource>, ProviderError> {
        Ok(None)
    }
    fn update(_: String, _: String, _: String) -> Result<Resource, ProviderError> {
        Err(ProviderError::Permanent("no".into()))
    }
    fn delete(_: String, _: String, _: String, _: bool) -> Result<(), ProviderError> {
        Ok(())
    }
    fn progress(_: String, _: String) -> Result<ProgressReport, ProviderError> {
        Err(ProviderError::Permanent("no".into()))
    }
    fn lookup(kind: String, name: String, owner: String) -> Result<Option<Resource>, ProviderError> {
        // `lookup-id`: every lookup "finds" that id, carrying the owner tag it was asked for.
        Ok(config("lookup-id").filter(|_| kind == "dns-record").map(|id| Resource {
            kind,
            id,
            name,
            owner: Some(owner),
            live: "{}".to_owned(),
            outputs: "{}".to_owned(),
        }))
    }
}

export!(Evil);
