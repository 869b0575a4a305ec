//! Files Fabrik makes for itself (lock files, the fingerprint key, generated secrets in
//! `.env`) are opened without following a symbolic link at their path: a link planted
//! there (by a checkout, or by someone who can write the project directory) must not
//! make Fabrik truncate or overwrite the file it points to. Files that must never be
//! seen half-written (the component cache, digests, blobs) are written whole or not at
//! all (`write_atomic`).

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// Opens `path` with `options`, refusing a symbolic link at `path` itself (`O_NOFOLLOW`):
/// the error then says so, in words, instead of `ELOOP`.
pub fn open(path: &Path, options: &mut OpenOptions) -> io::Result<File> {
    options
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .map_err(|error| match error.raw_os_error() {
            Some(libc::ELOOP) => link_refused(path),
            _ => error,
        })
}

/// The error for a symbolic link where Fabrik keeps a file of its own.
pub fn link_refused(path: &Path) -> io::Error {
    let target = std::fs::read_link(path)
        .map(|t| format!(" (to `{}`)", t.display()))
        .unwrap_or_default();
    io::Error::new(
        io::ErrorKind::InvalidInput,
        format!(
            "it is a symbolic link{target}, and Fabrik does not write through links it did not make; remove the link (Fabrik creates the file itself)"
        ),
    )
}

/// Whether `path` is a symbolic link (not followed).
pub fn is_link(path: &Path) -> bool {
    std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink())
}

/// Writes `path` whole or not at all: a temporary file in `dir` (mode 0600), synced, then
/// renamed over `path`.
pub fn write_atomic(dir: &Path, path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let temp = dir.join(format!(
        ".{}.{}.tmp",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("entry"),
        std::process::id()
    ));
    let mut file = open(
        &temp,
        OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600),
    )?;
    file.write_all(bytes)?;
    file.sync_all()?;
    std::fs::rename(&temp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_link_is_refused_and_its_target_untouched() {
        let dir = tempfile::tempdir().expect("tempdir");
        let target = dir.path().join("precious");
        std::fs::write(&target, "keep me").expect("write");
        let link = dir.path().join("app.lock");
        std::os::unix::fs::symlink(&target, &link).expect("symlink");
        let error = open(
            &link,
            OpenOptions::new().write(true).create(true).truncate(true),
        )
        .expect_err("refused");
        assert!(error.to_string().contains("symbolic link"), "{error}");
        assert_eq!(std::fs::read_to_string(&target).expect("read"), "keep me");
        let file = dir.path().join("own");
        open(&file, OpenOptions::new().write(true).create(true)).expect("a plain file opens");
        assert!(is_link(&link) && !is_link(&file));
    }
}
