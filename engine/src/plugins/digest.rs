//! A component file's sha256 without reading the file when a cheaper proof holds.
//!
//! `fabrik.lock` pins a provider by the sha256 of its bytes, and every command checks it.
//! Hashing a 20 MB component (a Python provider) costs tens of milliseconds on every run,
//! so the digest of a file is recorded in the component cache together with the file's
//! [`FileStamp`] (device, inode, size, modification and change times), and reused while
//! the file's stamp is unchanged.
//!
//! # Why a stamp is proof enough
//! Any write to a file, a rename over it or a `chmod` updates its change time (ctime),
//! which no unprivileged process can set: `touch -d` and `utimes` set the modification
//! time and move ctime to *now*. Replacing the file gives another inode or a new ctime.
//! So a file whose stamp equals the recorded one has the recorded bytes, unless root
//! rewrote it and reset the clock (root can also replace `fabrik`). The records live in
//! the cache directory, which only its owner can write (see `cache`).
//!
//! One race remains, the one git's index knows as "racily clean": a file written twice
//! within one tick of the filesystem clock, with the same size, keeps its stamp. A record
//! is therefore only written for a file whose times are at least [`SETTLED`] old; a file
//! that was just written is hashed again on the next run.

use std::fs::{self, Metadata};
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::sha256_hex;
use crate::own_files::write_atomic;

/// How old a file's times must be before its digest is recorded.
pub const SETTLED: Duration = Duration::from_secs(2);

/// The metadata that changes whenever a file's content can have changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileStamp {
    dev: u64,
    ino: u64,
    size: u64,
    mtime_ns: i128,
    ctime_ns: i128,
}

impl FileStamp {
    pub fn of(metadata: &Metadata) -> Self {
        let ns = |s: i64, n: i64| i128::from(s) * 1_000_000_000 + i128::from(n);
        Self {
            dev: metadata.dev(),
            ino: metadata.ino(),
            size: metadata.size(),
            mtime_ns: ns(metadata.mtime(), metadata.mtime_nsec()),
            ctime_ns: ns(metadata.ctime(), metadata.ctime_nsec()),
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        let mut fields = text.split_whitespace();
        let stamp = Self {
            dev: fields.next()?.parse().ok()?,
            ino: fields.next()?.parse().ok()?,
            size: fields.next()?.parse().ok()?,
            mtime_ns: fields.next()?.parse().ok()?,
            ctime_ns: fields.next()?.parse().ok()?,
        };
        fields.next().is_none().then_some(stamp)
    }

    /// Whether both times are at least `SETTLED` before `now`.
    fn settled(&self, now: SystemTime) -> bool {
        let now_ns = now
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i128::try_from(d.as_nanos()).unwrap_or(i128::MAX));
        let settled = i128::try_from(SETTLED.as_nanos()).unwrap_or(i128::MAX);
        self.mtime_ns.max(self.ctime_ns) + settled <= now_ns
    }
}

impl std::fmt::Display for FileStamp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {} {} {} {}",
            self.dev, self.ino, self.size, self.mtime_ns, self.ctime_ns
        )
    }
}

/// A component file, identified.
#[derive(Debug)]
pub struct FileDigest {
    pub sha256: String,
    pub size: u64,
    /// The bytes, if they had to be read to compute the digest.
    pub bytes: Option<Vec<u8>>,
}

/// The sha256 of the file at `path`, from the record in `records` (a directory only this
/// user can write) when the file's stamp is unchanged, else by reading and hashing it
/// (and recording the result once the file has settled).
pub fn digest_file(path: &Path, records: Option<&Path>) -> io::Result<FileDigest> {
    let stamp = FileStamp::of(&fs::metadata(path)?);
    let record = records.map(|dir| record_path(dir, path));
    if let Some(record) = &record
        && let Ok(text) = fs::read_to_string(record)
        && let Some(sha256) = recorded(&text, &stamp)
    {
        return Ok(FileDigest {
            sha256,
            size: stamp.size,
            bytes: None,
        });
    }
    let bytes = crate::bounded::read(path, crate::bounded::MAX_COMPONENT)?;
    let sha256 = sha256_hex(&bytes);
    // The stamp after reading: if the file changed meanwhile, the record is not written.
    let after = FileStamp::of(&fs::metadata(path)?);
    if let (Some(record), Some(dir)) = (&record, records)
        && after == stamp
        && stamp.settled(SystemTime::now())
        && let Err(e) = write_atomic(
            dir,
            record,
            format!("sha256 {sha256}\nstamp {stamp}\n").as_bytes(),
        )
    {
        tracing::debug!(path = %record.display(), "cannot record a component digest: {e}");
    }
    Ok(FileDigest {
        sha256,
        size: u64::try_from(bytes.len()).unwrap_or(u64::MAX),
        bytes: Some(bytes),
    })
}

/// Where the record for `path` lives: named by a hash of its absolute path.
fn record_path(dir: &Path, path: &Path) -> PathBuf {
    let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let key = blake3::hash(absolute.as_os_str().as_encoded_bytes()).to_hex();
    dir.join(format!("{}.digest", &key[..32]))
}

/// The sha256 in a record, if the record's stamp is `stamp`.
fn recorded(text: &str, stamp: &FileStamp) -> Option<String> {
    let mut sha256 = None;
    let mut matches = false;
    for line in text.lines() {
        match line.split_once(' ') {
            Some(("sha256", hex)) if hex.len() == 64 => sha256 = Some(hex.to_owned()),
            Some(("stamp", recorded)) => {
                matches = FileStamp::parse(recorded).as_ref() == Some(stamp);
            }
            _ => return None,
        }
    }
    sha256.filter(|_| matches)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settle(path: &Path) {
        // Move both times into the past: `set_modified` sets mtime, and ctime becomes
        // now, so the test waits out `SETTLED` only where it must.
        let file = fs::File::options().write(true).open(path).expect("open");
        file.set_modified(SystemTime::now() - Duration::from_secs(60))
            .expect("set mtime");
    }

    #[test]
    fn a_settled_file_is_hashed_once_and_a_changed_one_again() {
        let dir = tempfile::tempdir().expect("tempdir");
        let records = dir.path().join("records");
        fs::create_dir(&records).expect("records");
        let file = dir.path().join("provider.wasm");
        fs::write(&file, b"first bytes").expect("write");
        settle(&file);
        std::thread::sleep(SETTLED + Duration::from_millis(50));

        let first = digest_file(&file, Some(&records)).expect("digest");
        assert_eq!(first.sha256, sha256_hex(b"first bytes"));
        assert!(first.bytes.is_some(), "the first digest reads the file");
        let second = digest_file(&file, Some(&records)).expect("digest");
        assert_eq!(second.sha256, first.sha256);
        assert!(
            second.bytes.is_none(),
            "an unchanged file is not read again"
        );

        // Same size, mtime set back to the recorded value: ctime still moves.
        fs::write(&file, b"other bytes").expect("rewrite");
        settle(&file);
        let changed = digest_file(&file, Some(&records)).expect("digest");
        assert_eq!(changed.sha256, sha256_hex(b"other bytes"));
        assert!(changed.bytes.is_some(), "a changed file is read");
    }

    #[test]
    fn a_freshly_written_file_is_not_recorded() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("provider.wasm");
        fs::write(&file, b"bytes").expect("write");
        digest_file(&file, Some(dir.path())).expect("digest");
        let again = digest_file(&file, Some(dir.path())).expect("digest");
        assert!(
            again.bytes.is_some(),
            "a racily clean file must be read again"
        );
    }

    #[test]
    fn a_record_with_another_stamp_or_garbage_is_ignored() {
        let stamp = FileStamp {
            dev: 1,
            ino: 2,
            size: 3,
            mtime_ns: 4,
            ctime_ns: 5,
        };
        let hex = "a".repeat(64);
        assert_eq!(
            recorded(&format!("sha256 {hex}\nstamp 1 2 3 4 5\n"), &stamp),
            Some(hex.clone())
        );
        assert_eq!(
            recorded(&format!("sha256 {hex}\nstamp 1 2 3 4 6\n"), &stamp),
            None
        );
        assert_eq!(recorded(&format!("sha256 {hex}\n"), &stamp), None);
        assert_eq!(recorded("stamp 1 2 3 4 5\n", &stamp), None);
        assert_eq!(recorded("garbage", &stamp), None);
    }
}
