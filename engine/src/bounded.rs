//! Reading files whose size Fabrik does not control (specs, templates, `fabrik.toml`,
//! provider components) with a bound: a path that names `/dev/zero`, a FIFO or a huge
//! file is refused in words instead of being read forever.

use std::io::{self, Read};
use std::path::Path;

/// Largest spec, template or `fabrik.toml`.
pub const MAX_TEXT: u64 = 1 << 20;
/// Largest provider component (as for OCI layers).
pub const MAX_COMPONENT: u64 = 256 << 20;

/// The bytes of the regular file at `path`, at most `max` of them.
pub fn read(path: &Path, max: u64) -> io::Result<Vec<u8>> {
    read_open(open(path)?, max)
}

/// Opens `path` for reading without blocking: opening a FIFO waits for a writer, before
/// [`read_open`] could refuse it (for a regular file the flag changes nothing).
pub fn open(path: &Path) -> io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
}

/// Like [`read`], from a file already open (whose metadata the caller also reads).
pub fn read_open(file: std::fs::File, max: u64) -> io::Result<Vec<u8>> {
    let metadata = file.metadata()?;
    if !metadata.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "it is not a regular file",
        ));
    }
    let mut bytes = Vec::with_capacity(usize::try_from(metadata.len().min(max)).unwrap_or(0));
    file.take(max + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > max {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("it is larger than {} MiB", max >> 20),
        ));
    }
    Ok(bytes)
}

/// The text of the regular file at `path`, at most `max` bytes; invalid UTF-8 is an error
/// that gives the line and column of the first bad byte.
pub fn read_text(path: &Path, max: u64) -> io::Result<String> {
    utf8(read(path, max)?)
}

/// `bytes` as text; invalid UTF-8 is an error located like [`read_text`]'s.
pub fn utf8(bytes: Vec<u8>) -> io::Result<String> {
    String::from_utf8(bytes).map_err(|error| {
        let (line, column) = position(error.as_bytes(), error.utf8_error().valid_up_to());
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("it is not UTF-8 text (line {line}, column {column})"),
        )
    })
}

/// The 1-based line and column (in characters) of byte `offset` of `bytes`, whose bytes
/// before `offset` are valid UTF-8.
pub fn position(bytes: &[u8], offset: usize) -> (usize, usize) {
    let before = String::from_utf8_lossy(&bytes[..offset.min(bytes.len())]);
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endless_and_odd_files_are_refused() {
        let error = read(Path::new("/dev/zero"), MAX_TEXT).expect_err("not a file");
        assert!(error.to_string().contains("not a regular file"), "{error}");
        let dir = tempfile::tempdir().expect("tempdir");
        let big = dir.path().join("big");
        std::fs::write(&big, vec![b'x'; 2048]).expect("write");
        let error = read(&big, 1024).expect_err("too big");
        assert!(error.to_string().contains("larger than"), "{error}");
        let bad = dir.path().join("bad.yaml");
        std::fs::write(&bad, b"name: a\nt\xffx: 1\n").expect("write");
        let error = read_text(&bad, MAX_TEXT).expect_err("not utf-8");
        assert!(error.to_string().contains("line 2, column 2"), "{error}");
    }
}
