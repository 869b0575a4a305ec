//! The compiled-component cache: Cranelift runs once per component and engine, later
//! loads deserialize the stored artifact.
//!
//! # Why the cache can be trusted
//! `Component::deserialize_file` is `unsafe` because a crafted artifact is native code
//! that runs unchecked. The cache is only used when all of this holds:
//! - **Who writes it:** only this code, from bytes it just compiled with the same engine.
//!   Entries are written to a temporary file (mode 0600) and renamed into place.
//! - **Permissions:** the directory is created with mode 0700 and must be owned by the
//!   current user and not writable by group or others; otherwise the cache is bypassed
//!   (components are compiled in memory) with a warning. Another user cannot plant an
//!   artifact, and a guest has no filesystem access at all.
//! - **Checksum:** each artifact has a sidecar with its BLAKE3 hash, checked before
//!   loading, so a truncated or corrupted entry (a crash mid-write, a bad disk) is detected
//!   and rebuilt. BLAKE3 rather than SHA-256 because it is checked on every start-up and
//!   is several times faster on megabyte-sized artifacts (BENCHMARKS.md); tampering is
//!   kept out by the permissions above, not by the hash. The key includes the component's sha256 and the engine's compatibility hash,
//!   and wasmtime itself rejects an artifact from another version or configuration, which
//!   is also rebuilt.

use std::fs;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use wasmtime::Engine;
use wasmtime::component::Component;

/// Environment variable that overrides the cache directory.
pub const CACHE_DIR_ENV: &str = "FABRIK_CACHE_DIR";

/// How a component was obtained.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CacheOutcome {
    /// Deserialized from a valid cache entry.
    Hit,
    /// Compiled and stored (no entry yet).
    Miss,
    /// The entry was unusable (the reason), so it was compiled and stored again.
    Rebuilt(String),
    /// Compiled in memory; the cache is disabled (the reason).
    Bypassed(String),
}

/// A directory of compiled components.
#[derive(Debug, Clone)]
pub struct ComponentCache {
    dir: Result<PathBuf, String>,
}

impl ComponentCache {
    /// The cache in `FABRIK_CACHE_DIR`, else `$XDG_CACHE_HOME/fabrik/components`
    /// (`~/.cache/fabrik/components`).
    pub fn from_env() -> Self {
        let dir = std::env::var_os(CACHE_DIR_ENV)
            .map(PathBuf::from)
            .or_else(|| dirs::cache_dir().map(|d| d.join("fabrik").join("components")));
        match dir {
            Some(dir) => Self::at(&dir),
            None => Self {
                dir: Err(format!("no cache directory (set {CACHE_DIR_ENV} or HOME)")),
            },
        }
    }

    /// The cache at `dir`, created if missing, if its permissions make it trustworthy.
    pub fn at(dir: &Path) -> Self {
        Self {
            dir: prepare_dir(dir),
        }
    }

    /// A cache that never stores anything.
    pub fn disabled(reason: &str) -> Self {
        Self {
            dir: Err(reason.to_owned()),
        }
    }

    pub fn dir(&self) -> Option<&Path> {
        self.dir.as_deref().ok()
    }

    /// The component for `wasm` (whose sha256 is `sha256`), from the cache if possible.
    pub fn load(
        &self,
        engine: &Engine,
        wasm: &[u8],
        sha256: &str,
    ) -> wasmtime::Result<(Component, CacheOutcome)> {
        let dir = match &self.dir {
            Ok(dir) => dir,
            Err(reason) => {
                return Ok((
                    Component::new(engine, wasm)?,
                    CacheOutcome::Bypassed(reason.clone()),
                ));
            }
        };
        let key = format!("{sha256}-{:016x}", engine_fingerprint(engine));
        let artifact = dir.join(format!("{key}.cwasm"));
        let checksum = dir.join(format!("{key}.blake3"));
        let problem = match verify(&artifact, &checksum) {
            Ok(()) => {
                // SAFETY: see the module documentation: the file was written by `store`
                // below into a directory only this user can write, and its checksum matches.
                #[expect(unsafe_code, reason = "deserializing a trusted, checksummed artifact")]
                let loaded = unsafe { Component::deserialize_file(engine, &artifact) };
                match loaded {
                    Ok(component) => return Ok((component, CacheOutcome::Hit)),
                    Err(e) => Some(format!("wasmtime refused it: {e}")),
                }
            }
            Err(Missing) => None,
            Err(Corrupt(reason)) => Some(reason),
        };
        let bytes = engine.precompile_component(wasm)?;
        if let Err(e) = store(dir, &artifact, &checksum, &bytes) {
            tracing::warn!(path = %artifact.display(), "cannot write the component cache: {e}");
        }
        // SAFETY: `bytes` was produced by `precompile_component` on this engine just now.
        #[expect(
            unsafe_code,
            reason = "deserializing an artifact this process just compiled"
        )]
        let component = unsafe { Component::deserialize(engine, &bytes)? };
        let outcome = match problem {
            Some(reason) => {
                tracing::warn!(path = %artifact.display(), "rebuilt a cached component: {reason}");
                CacheOutcome::Rebuilt(reason)
            }
            None => CacheOutcome::Miss,
        };
        Ok((component, outcome))
    }
}

enum Unusable {
    Missing,
    Corrupt(String),
}
use Unusable::{Corrupt, Missing};

fn verify(artifact: &Path, checksum: &Path) -> Result<(), Unusable> {
    let (Ok(bytes), Ok(expected)) = (fs::read(artifact), fs::read_to_string(checksum)) else {
        return if artifact.exists() || checksum.exists() {
            Err(Corrupt(
                "the artifact or its checksum is missing".to_owned(),
            ))
        } else {
            Err(Missing)
        };
    };
    let actual = blake3::hash(&bytes).to_hex();
    if actual.as_str() == expected.trim() {
        Ok(())
    } else {
        Err(Corrupt(
            "the artifact does not match its checksum (truncated or corrupted)".to_owned(),
        ))
    }
}

fn store(dir: &Path, artifact: &Path, checksum: &Path, bytes: &[u8]) -> std::io::Result<()> {
    write_atomic(dir, artifact, bytes)?;
    write_atomic(dir, checksum, blake3::hash(bytes).to_hex().as_bytes())
}

fn write_atomic(dir: &Path, path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let temp = dir.join(format!(
        ".{}.{}.tmp",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("entry"),
        std::process::id()
    ));
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&temp)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    fs::rename(&temp, path)
}

fn prepare_dir(dir: &Path) -> Result<PathBuf, String> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| format!("cannot create `{}`: {e}", dir.display()))?;
    let metadata =
        fs::metadata(dir).map_err(|e| format!("cannot read `{}`: {e}", dir.display()))?;
    // SAFETY-free: `getuid` has no preconditions and cannot fail.
    let uid = current_uid();
    if metadata.uid() != uid {
        return Err(format!(
            "`{}` is not owned by the current user",
            dir.display()
        ));
    }
    if metadata.permissions().mode() & 0o022 != 0 {
        return Err(format!("`{}` is writable by other users", dir.display()));
    }
    Ok(dir.to_path_buf())
}

fn current_uid() -> u32 {
    #[expect(unsafe_code, reason = "getuid(2) has no preconditions and cannot fail")]
    unsafe {
        libc::getuid()
    }
}

/// A stable number for the engine's configuration and wasmtime version: artifacts from
/// another engine must not share a key.
fn engine_fingerprint(engine: &Engine) -> u64 {
    let mut hasher = DefaultHasher::new();
    engine.precompile_compatibility_hash().hash(&mut hasher);
    env!("CARGO_PKG_VERSION").hash(&mut hasher);
    hasher.finish()
}
