//! Plugin-host start-up costs: cold compile (Cranelift and Winch), cached load,
//! instantiate + `describe` per bundled provider, and the whole-process wall time of
//! `fabrik providers list` with a warm and a cold cache.
//!
//! Run with `cargo bench -p fabrik --bench plugins`; results go to stdout as a Markdown
//! table, copied into BENCHMARKS.md.

use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use fabrik_engine::plugins::bundled::BUNDLED;
use fabrik_engine::plugins::cache::{CacheOutcome, ComponentCache};
use fabrik_engine::plugins::engine::{Compiler, PluginEngine};
use fabrik_engine::plugins::http::{Grants, HttpGateway};
use fabrik_engine::plugins::instance::LoadedComponent;
use fabrik_engine::plugins::sandbox::SandboxLimits;
use fabrik_engine::plugins::sha256_hex;

struct Stats {
    median: Duration,
    p90: Duration,
    min: Duration,
}

fn stats(mut samples: Vec<Duration>) -> Stats {
    samples.sort();
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize];
    Stats {
        median: at(0.5),
        p90: at(0.9),
        min: samples[0],
    }
}

fn ms(d: Duration) -> String {
    format!("{:.3}", d.as_secs_f64() * 1e3)
}

fn row(what: &str, s: &Stats, runs: usize) {
    println!(
        "| {what} | {} | {} | {} | {runs} |",
        ms(s.median),
        ms(s.p90),
        ms(s.min)
    );
}

fn sample(runs: usize, mut f: impl FnMut() -> Duration) -> Stats {
    stats((0..runs).map(|_| f()).collect())
}

fn main() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    println!("| measurement | median ms | p90 ms | min ms | runs |");
    println!("|---|---|---|---|---|");

    for compiler in [Compiler::Cranelift, Compiler::Winch] {
        let engine = PluginEngine::new(compiler).expect("engine");
        let name = format!("{compiler:?}").to_lowercase();
        for bundled in BUNDLED {
            let s = sample(10, || {
                let start = Instant::now();
                engine
                    .engine()
                    .precompile_component(bundled.wasm)
                    .expect("compiles");
                start.elapsed()
            });
            row(
                &format!(
                    "cold compile, {name}: {} ({} KB)",
                    bundled.name,
                    bundled.wasm.len() / 1024
                ),
                &s,
                10,
            );
        }
        let s = sample(10, || {
            let start = Instant::now();
            std::thread::scope(|scope| {
                for bundled in BUNDLED {
                    let engine = engine.engine();
                    scope.spawn(move || {
                        engine.precompile_component(bundled.wasm).expect("compiles")
                    });
                }
            });
            start.elapsed()
        });
        row(
            &format!("cold compile, {name}: both providers, concurrently"),
            &s,
            10,
        );
    }

    let engine = PluginEngine::new(Compiler::default()).expect("engine");
    println!(
        "| (cached load and instantiate use the default compiler, {:?}) | | | | |",
        Compiler::default()
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let cache = ComponentCache::at(dir.path());
    for bundled in BUNDLED {
        let sha = sha256_hex(bundled.wasm);
        let first = LoadedComponent::load_bytes(&engine, &cache, bundled.name, bundled.wasm, &sha)
            .expect("load");
        assert_eq!(first.cache, CacheOutcome::Miss);
        let s = sample(200, || {
            let start = Instant::now();
            let loaded =
                LoadedComponent::load_bytes(&engine, &cache, bundled.name, bundled.wasm, &sha)
                    .expect("load");
            let elapsed = start.elapsed();
            assert_eq!(loaded.cache, CacheOutcome::Hit);
            elapsed
        });
        row(
            &format!(
                "cached load (stamp check + deserialize + link): {}",
                bundled.name
            ),
            &s,
            200,
        );
        let gateway = Arc::new(HttpGateway::new(bundled.name, Grants::default()).expect("gateway"));
        let s = sample(200, || {
            let start = Instant::now();
            runtime.block_on(async {
                let mut instance = first
                    .instantiate(gateway.clone(), SandboxLimits::default())
                    .await
                    .expect("instance");
                instance.describe().await.expect("describe");
            });
            start.elapsed()
        });
        row(
            &format!("instantiate + describe: {}", bundled.name),
            &s,
            200,
        );
    }

    let binary = env!("CARGO_BIN_EXE_fabrik");
    let project = tempfile::tempdir().expect("tempdir");
    let run = |cache_dir: &std::path::Path| {
        let start = Instant::now();
        let status = Command::new(binary)
            .args(["providers", "list"])
            .current_dir(project.path())
            .env("FABRIK_CACHE_DIR", cache_dir)
            .stdout(std::process::Stdio::null())
            .status()
            .expect("runs");
        assert!(status.success());
        start.elapsed()
    };
    let warm = tempfile::tempdir().expect("tempdir");
    run(warm.path());
    row(
        "`fabrik providers list`, process wall, warm cache",
        &sample(30, || run(warm.path())),
        30,
    );
    let s = sample(10, || {
        let cold = tempfile::tempdir().expect("tempdir");
        run(cold.path())
    });
    row(
        "`fabrik providers list`, process wall, cold cache (winch, the default)",
        &s,
        10,
    );
    large_component(
        binary,
        &fabrik_sim::plugins::test_plugin("large"),
        "large component",
    );
    // A real Python component, where componentize-py is installed.
    let python = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../target/test-plugins/python_dns_bench.wasm");
    let built = Command::new("componentize-py")
        .current_dir(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/plugins/python-dns"),
        )
        .args([
            "-d",
            "../../../wit",
            "-w",
            "provider-plugin",
            "componentize",
            "app",
            "-o",
        ])
        .arg(&python)
        .output();
    match built {
        Ok(output) if output.status.success() => {
            large_component(binary, &python, "Python component (componentize-py)");
        }
        _ => println!(
            "| Python component: not measured (componentize-py is not installed) | | | | |"
        ),
    }
}

/// A component as large as a Python provider (`tests/plugins/large`, ~19 MB, mostly an
/// initialised data segment), loaded by path: the first load, the warm load, and the
/// refusal of changed bytes, each as the whole `fabrik` process.
fn large_component(binary: &str, wasm: &std::path::Path, label: &str) {
    let project = tempfile::tempdir().expect("tempdir");
    let dir = project.path();
    std::fs::create_dir(dir.join("plugins")).expect("mkdir");
    std::fs::copy(wasm, dir.join("plugins/large.wasm")).expect("copy");
    let size = std::fs::metadata(wasm).expect("size").len();
    std::fs::write(
        dir.join("fabrik.toml"),
        "[project]\nname = \"bench\"\n\n[providers]\ndns = { path = \"plugins/large.wasm\" }\n",
    )
    .expect("fabrik.toml");
    std::fs::write(
        dir.join("app.yaml"),
        std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/test-api.yaml"),
        )
        .expect("fixture"),
    )
    .expect("spec");
    let fabrik = |cache: &std::path::Path, args: &[&str]| {
        let start = Instant::now();
        let output = Command::new(binary)
            .args(args)
            .current_dir(dir)
            .env("FABRIK_CACHE_DIR", cache)
            .output()
            .expect("runs");
        (start.elapsed(), output)
    };
    let cache = tempfile::tempdir().expect("tempdir");
    let (first, output) = fabrik(cache.path(), &["providers", "lock"]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    row(
        &format!(
            "{label} ({} MB): first load (compile, cache, lock), process wall",
            size >> 20
        ),
        &stats(vec![first]),
        1,
    );
    // The digest of a file is recorded once it is 2 s old (the racily-clean rule).
    std::thread::sleep(Duration::from_millis(2100));
    fabrik(cache.path(), &["providers", "list"]);
    let warm = sample(30, || {
        let (elapsed, output) = fabrik(cache.path(), &["providers", "list"]);
        assert!(output.status.success());
        elapsed
    });
    row(
        &format!("{label}: `fabrik providers list`, process wall, warm (no rehash, no checksum)"),
        &warm,
        30,
    );
    // One byte changed: the lock refuses it before anything is compiled.
    let mut bytes = std::fs::read(dir.join("plugins/large.wasm")).expect("read");
    let middle = bytes.len() / 2;
    bytes[middle] ^= 1;
    std::fs::write(dir.join("plugins/large.wasm"), bytes).expect("write");
    let refused = sample(10, || {
        let cold = tempfile::tempdir().expect("tempdir");
        let (elapsed, output) = fabrik(cold.path(), &["apply", "--dry-run", "app.yaml"]);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{stderr}");
        // The refusal is the lock's, not some other failure with the same exit code.
        assert!(stderr.contains("does not match `fabrik.lock`"), "{stderr}");
        elapsed
    });
    row(
        &format!("{label}, one byte changed: refused by `fabrik.lock`, process wall, cold cache"),
        &refused,
        10,
    );
}
