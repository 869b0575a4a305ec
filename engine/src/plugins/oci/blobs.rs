//! The content-addressed blob cache: components fetched from registries, stored by the
//! sha256 of their bytes (`<cache>/blobs/sha256/<hex>`), under the rules of the compiled
//! component cache (a directory only its owner can write, files written whole by rename)
//! and read back through the same digest check as any component file (`digest`).

use std::path::{Path, PathBuf};

use crate::own_files::write_atomic;
use crate::plugins::cache::ComponentCache;

/// Blobs beside a component cache; disabled when that cache is (then every fetch fails
/// to store, with the reason).
#[derive(Debug, Clone)]
pub struct BlobCache {
    dir: Result<PathBuf, String>,
}

impl BlobCache {
    pub fn of(cache: &ComponentCache) -> Self {
        let dir = match cache.dir() {
            Some(dir) => {
                let blobs = dir.join("blobs").join("sha256");
                std::fs::create_dir_all(&blobs)
                    .map(|()| blobs.clone())
                    .map_err(|e| format!("cannot create `{}`: {e}", blobs.display()))
            }
            None => Err("the component cache is disabled (see `FABRIK_CACHE_DIR`)".to_owned()),
        };
        Self { dir }
    }

    /// Where the blob with hex sha256 `hex` is (or would be).
    pub fn path(&self, hex: &str) -> Option<PathBuf> {
        let dir = self.dir.as_ref().ok()?;
        (hex.len() == 64 && hex.chars().all(|c| c.is_ascii_hexdigit())).then(|| dir.join(hex))
    }

    pub fn has(&self, hex: &str) -> bool {
        self.path(hex).is_some_and(|p| p.is_file())
    }

    /// Stores `bytes`, which must hash to `hex` (the caller checked it against the
    /// registry's digest).
    pub fn store(&self, hex: &str, bytes: &[u8]) -> Result<PathBuf, String> {
        let dir = self.dir.as_ref().map_err(Clone::clone)?;
        let path = self
            .path(hex)
            .ok_or_else(|| format!("`{hex}` is not a sha256"))?;
        if crate::plugins::sha256_hex(bytes) != hex {
            return Err(format!("refusing to store bytes that are not sha256:{hex}"));
        }
        write_atomic(dir, &path, bytes)
            .map_err(|e| format!("cannot write `{}`: {e}", path.display()))?;
        Ok(path)
    }

    pub fn dir(&self) -> Option<&Path> {
        self.dir.as_deref().ok()
    }
}
