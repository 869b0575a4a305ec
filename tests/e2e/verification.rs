//! The health check through the library, against the simulated app over real TLS.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use fabrik_engine::orchestrator::verify::{Lookup, VerifyOptions, verify};
use fabrik_engine::spec::{Spec, TemplateRegistry};
use fabrik_sim::app::Behaviour;
use fabrik_sim::{Sandbox, SandboxConfig};

fn spec(timeout: u32) -> Spec {
    let templates =
        TemplateRegistry::load(std::path::Path::new("/nonexistent")).expect("templates");
    let text = format!(
        "name: api\ntemplate: docker-image\ndomain: fresh.example.com\nserver: vps1\nsource: {{ image: 'nginx:1' }}\nport: 80\nhealthcheck: {{ path: /health, timeout: {timeout}, interval: 1 }}\n"
    );
    fabrik_engine::spec::parse(std::path::Path::new("api.yaml"), &text, &templates)
        .expect("valid spec")
        .spec
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_not_yet_propagated_is_waited_for_within_the_timeout() {
    let sandbox = Sandbox::start(SandboxConfig::default())
        .await
        .expect("sandbox");
    sandbox.app.set("fresh.example.com", Behaviour::Fail(200));
    let ca = tempfile::NamedTempFile::new().expect("ca file");
    std::fs::write(ca.path(), sandbox.ca.pem()).expect("ca");
    let lookups = Arc::new(AtomicU32::new(0));
    let counter = lookups.clone();
    let addr = sandbox.app_addr;
    // The resolver does not know the name for the first three attempts.
    let lookup = Lookup::Custom(Arc::new(move |_name: &str| {
        if counter.fetch_add(1, Ordering::SeqCst) < 3 {
            Err(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                "NXDOMAIN",
            ))
        } else {
            Ok(vec![addr])
        }
    }));
    let options = VerifyOptions {
        ca_file: Some(ca.path().to_path_buf()),
        lookup,
        ..VerifyOptions::default()
    };
    let heard = std::sync::Mutex::new(Vec::new());
    let verified = verify(&spec(20), &options, &str::to_owned, |attempt| {
        heard.lock().expect("lock").push(attempt);
    })
    .await
    .expect("verified once resolvable");
    assert_eq!(verified.status, 200);
    assert!(verified.attempts >= 4, "{verified:?}");
    // Every attempt that did not pass was told, numbered, with what it got.
    let heard = heard.into_inner().expect("lock");
    assert_eq!(heard.len(), verified.attempts as usize - 1, "{heard:?}");
    assert_eq!(heard[0].request, "GET /health");
    assert_eq!(heard[0].number, 1);
    assert!(heard[0].answer.contains("NXDOMAIN"), "{heard:?}");
    assert_eq!(heard[0].timeout, std::time::Duration::from_secs(20));
    assert!(
        lookups.load(Ordering::SeqCst) >= 4,
        "resolved at every attempt"
    );

    // A name that never resolves fails at the timeout, saying why.
    let never = VerifyOptions {
        ca_file: Some(ca.path().to_path_buf()),
        lookup: Lookup::Custom(Arc::new(|_: &str| {
            Err(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                "NXDOMAIN",
            ))
        })),
        ..VerifyOptions::default()
    };
    let error = verify(&spec(2), &never, &str::to_owned, |_| {})
        .await
        .expect_err("never resolves");
    assert!(error.attempts > 1, "retried: {error}");
    assert!(
        error
            .to_string()
            .contains("DNS lookup of fresh.example.com failed"),
        "{error}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_the_system_does_not_trust_fails_the_check() {
    let sandbox = Sandbox::start(SandboxConfig::default())
        .await
        .expect("sandbox");
    sandbox.app.set("fresh.example.com", Behaviour::Fail(200));
    let addr = sandbox.app_addr;
    let options = VerifyOptions {
        lookup: Lookup::Custom(Arc::new(move |_: &str| Ok(vec![addr]))),
        ..VerifyOptions::default()
    };
    let error = verify(&spec(2), &options, &str::to_owned, |_| {})
        .await
        .expect_err("untrusted CA");
    assert!(
        error.to_string().to_lowercase().contains("certificate"),
        "the TLS failure is named: {error}"
    );
}

/// Issue 28, point 3: what the app answered is redacted before it is flattened and cut
/// to an excerpt: a secret straddling the excerpt's end, or holding a newline that the
/// excerpt turns into a space, never shows even in part.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_answer_is_redacted_before_it_is_cut_or_flattened() {
    let sandbox = Sandbox::start(SandboxConfig::default())
        .await
        .expect("sandbox");
    let addr = sandbox.app_addr;
    let ca = tempfile::NamedTempFile::new().expect("ca file");
    std::fs::write(ca.path(), sandbox.ca.pem()).expect("ca");
    let secret = "Sup3r-S3cret\nline-two-of-it";
    let redactor = {
        let mut r = fabrik_engine::secrets::Redactor::default();
        r.add(&secrecy::SecretString::from(secret.to_owned()));
        r
    };
    for body in [
        // Straddles the 120th character of the excerpt.
        format!("{}{secret} trailing", "x".repeat(110)),
        // Whole, but with a newline the excerpt flattens.
        format!("error: {secret}"),
    ] {
        sandbox
            .app
            .set("fresh.example.com", Behaviour::Answer(500, body.clone()));
        let options = VerifyOptions {
            ca_file: Some(ca.path().to_path_buf()),
            lookup: Lookup::Custom(Arc::new(move |_: &str| Ok(vec![addr]))),
            ..VerifyOptions::default()
        };
        let answers = std::sync::Mutex::new(Vec::new());
        let error = verify(&spec(1), &options, &|t| redactor.redact(t), |attempt| {
            answers.lock().expect("answers").push(attempt.answer)
        })
        .await
        .expect_err("500");
        let shown = format!("{error} {:?}", answers.lock().expect("answers"));
        assert!(shown.contains("[redacted]"), "{shown}");
        for part in ["Sup3r-S3", "line-two"] {
            assert!(!shown.contains(part), "`{part}` shown: {shown}");
        }
    }
}
