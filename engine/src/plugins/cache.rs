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
//! - **Checksum:** each artifact has a sidecar with its BLAKE3 hash and the file's stamp
//!   (inode, size, times) when the hash was last checked. An artifact whose stamp differs
//!   is hashed in full, so a truncated, replaced or copied entry is detected and rebuilt;
//!   one whose stamp is unchanged is not read at all (why that is safe: `verify`). BLAKE3
//!   rather than SHA-256 because it is several times faster on megabyte-sized artifacts.
//!   The key includes the component's sha256 and the engine's compatibility hash, and
//!   wasmtime itself rejects an artifact from another version or configuration, which is
//!   also rebuilt.

use std::fs;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use wasmtime::Engine;
use wasmtime::component::Component;

use super::digest::FileStamp;

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

    /// The cached component for the component whose sha256 is `sha256`, if there is a
    /// usable entry. Nothing is compiled here: on anything but a hit, the caller checks
    /// the bytes and has [`ComponentCache::compile`] compile and store them.
    pub fn get(&self, engine: &Engine, sha256: &str) -> Lookup {
        let dir = match &self.dir {
            Ok(dir) => dir,
            Err(reason) => return Lookup::Bypassed(reason.clone()),
        };
        let (artifact, sidecar) = entry_paths(dir, engine, sha256);
        match verify(&artifact, &sidecar) {
            Ok(()) => {
                // SAFETY: see the module documentation: the file was written by `compile` into
                // a directory only this user can write, and it is the file whose checksum
                // (or unchanged metadata since that checksum) was verified.
                #[expect(unsafe_code, reason = "deserializing a trusted, checksummed artifact")]
                let loaded = unsafe { Component::deserialize_file(engine, &artifact) };
                match loaded {
                    Ok(component) => Lookup::Hit(component),
                    Err(e) => Lookup::Unusable(format!("wasmtime refused it: {e}")),
                }
            }
            Err(Missing) => Lookup::Miss,
            Err(Corrupt(reason)) => Lookup::Unusable(reason),
        }
    }

    /// Compiles `wasm` (the component whose sha256 is `sha256`) on `engine`, stores the
    /// artifact and returns its component. A cache that cannot be written is a warning.
    /// The artifact is made here, so what is deserialized is always this process's own
    /// compiler output, never bytes a caller hands in.
    pub fn compile(
        &self,
        engine: &Engine,
        sha256: &str,
        wasm: &[u8],
    ) -> wasmtime::Result<Component> {
        let artifact = engine.precompile_component(wasm)?;
        if let Ok(dir) = &self.dir {
            let (path, sidecar) = entry_paths(dir, engine, sha256);
            if let Err(e) = store(dir, &path, &sidecar, &artifact) {
                tracing::warn!(path = %path.display(), "cannot write the component cache: {e}");
            }
        }
        // SAFETY: `artifact` was produced by `precompile_component` on this engine, in this
        // process, just now.
        #[expect(
            unsafe_code,
            reason = "deserializing an artifact this process just compiled"
        )]
        unsafe {
            Component::deserialize(engine, &artifact)
        }
    }
}

/// What the cache holds for a component.
pub enum Lookup {
    Hit(Component),
    /// No entry yet.
    Miss,
    /// An entry that cannot be used (why); it is replaced by the next `compile`.
    Unusable(String),
    /// The cache is disabled (why).
    Bypassed(String),
}

fn entry_paths(dir: &Path, engine: &Engine, sha256: &str) -> (PathBuf, PathBuf) {
    let key = format!("{sha256}-{:016x}", engine_fingerprint(engine));
    (
        dir.join(format!("{key}.cwasm")),
        dir.join(format!("{key}.blake3")),
    )
}

enum Unusable {
    Missing,
    Corrupt(String),
}
use Unusable::{Corrupt, Missing};

/// The sidecar of an artifact: its BLAKE3 hash and the metadata the artifact had when
/// the hash was last checked against it.
struct Sidecar {
    blake3: String,
    checked: Option<FileStamp>,
}

impl Sidecar {
    fn parse(text: &str) -> Self {
        let mut blake3 = String::new();
        let mut checked = None;
        for line in text.lines() {
            match line.split_once(' ') {
                Some(("blake3", hash)) => blake3 = hash.trim().to_owned(),
                Some(("stamp", stamp)) => checked = FileStamp::parse(stamp),
                // The first format: the hash alone.
                _ => blake3 = line.trim().to_owned(),
            }
        }
        Self { blake3, checked }
    }

    fn render(&self) -> String {
        match &self.checked {
            Some(stamp) => format!("blake3 {}\nstamp {stamp}\n", self.blake3),
            None => format!("blake3 {}\n", self.blake3),
        }
    }
}

/// Checks an artifact against its sidecar. The full hash is computed only when the
/// artifact's metadata differs from what the sidecar recorded at the last check: reading
/// and hashing a 40 MB artifact costs more than the rest of a warm start (BENCHMARKS.md).
///
/// Why unchanged metadata is proof enough: entries are only ever written whole, by
/// rename, into a directory only this user can write; any later write or rename changes
/// the file's ctime, which no unprivileged process can set back. What the shortcut gives
/// up is detecting a disk that silently flips bits under unchanged metadata; wasmtime
/// still checks the artifact's header, version and engine settings.
fn verify(artifact: &Path, sidecar: &Path) -> Result<(), Unusable> {
    let (Ok(metadata), Ok(text)) = (fs::metadata(artifact), fs::read_to_string(sidecar)) else {
        return if artifact.exists() || sidecar.exists() {
            Err(Corrupt(
                "the artifact or its checksum is missing".to_owned(),
            ))
        } else {
            Err(Missing)
        };
    };
    let mut recorded = Sidecar::parse(&text);
    let stamp = FileStamp::of(&metadata);
    if recorded.checked.as_ref() == Some(&stamp) {
        return Ok(());
    }
    let bytes = fs::read(artifact).map_err(|e| Corrupt(format!("cannot read it: {e}")))?;
    if blake3::hash(&bytes).to_hex().as_str() != recorded.blake3 {
        return Err(Corrupt(
            "the artifact does not match its checksum (truncated or corrupted)".to_owned(),
        ));
    }
    recorded.checked = Some(stamp);
    if let Some(dir) = sidecar.parent()
        && let Err(e) = crate::own_files::write_atomic(dir, sidecar, recorded.render().as_bytes())
    {
        tracing::debug!(path = %sidecar.display(), "cannot update the checksum stamp: {e}");
    }
    Ok(())
}

fn store(dir: &Path, artifact: &Path, sidecar: &Path, bytes: &[u8]) -> std::io::Result<()> {
    crate::own_files::write_atomic(dir, artifact, bytes)?;
    // The stamp of the file just renamed into place: this process wrote every byte of it.
    let checked = fs::metadata(artifact).ok().map(|m| FileStamp::of(&m));
    let record = Sidecar {
        blake3: blake3::hash(bytes).to_hex().to_string(),
        checked,
    };
    crate::own_files::write_atomic(dir, sidecar, record.render().as_bytes())
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
