//! One apply per app at a time, across processes.
//!
//! Each app has a lock file, `locks/<app>.lock` beside the SQLite state it protects
//! (`.fabrik/locks/` for the default `.fabrik/state.db`), held with an OS file lock
//! (`flock`), which the kernel releases when the holder exits, however it exits. The
//! file's content says who holds it (pid, host, start time, run id) so that a refused
//! apply can name the holder. A holder record left behind by a process that died marks a
//! stale lock: it is taken over with a warning.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::machine::{host_name, user_name};

pub mod postgres;

/// Who holds a lock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Holder {
    pub pid: u32,
    pub host: String,
    /// Seconds since the Unix epoch.
    pub started_at: u64,
    pub run_id: String,
    /// The holder's login name, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
}

impl std::fmt::Display for Holder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "pid {} on {}", self.pid, self.host)?;
        if let Some(user) = &self.user {
            write!(f, " by {user}")?;
        }
        write!(
            f,
            ", run {}, since {}",
            self.run_id,
            crate::domain::timestamp::display(&self.started_at.to_string())
        )
    }
}

/// `; waited 30 s` after a wait; nothing when the lock was tried once (no `--lock-timeout`).
fn waited_for(waited: Duration) -> String {
    if waited < Duration::from_secs(1) {
        String::new()
    } else {
        format!("; waited {} s", waited.as_secs())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AppLockError {
    #[error(
        "`{app}` is being applied by another fabrik ({holder}){}\n  hint: wait for it, pass `--lock-timeout`, or if that process is gone run `fabrik unlock {app}`",
        waited_for(*waited)
    )]
    Held {
        app: String,
        holder: Box<Holder>,
        waited: Duration,
    },
    #[error(
        "`{app}` is locked by another process that has not said who it is{}\n  hint: see `locks/{app}.lock` beside the state database; if no fabrik is running, run `fabrik unlock {app}`",
        waited_for(*waited)
    )]
    HeldUnknown { app: String, waited: Duration },
    #[error(
        "`{app}` is locked in the state database by a session that has not said who it is{}\n  hint: `fabrik unlock {app}` says more; `--force` ends that session",
        waited_for(*waited)
    )]
    HeldBySession { app: String, waited: Duration },
    #[error("cannot use the lock file `{}`: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The database holding the team's locks cannot be used.
    #[error("cannot take the lock of `{app}` in the state database: {message}")]
    Database { app: String, message: String },
}

/// Where a project's app locks live: lock files beside the project (SQLite state), or
/// the team's database (PostgreSQL state).
#[derive(Debug, Clone)]
pub enum Locks {
    Files(PathBuf),
    Postgres(crate::store::postgres::PgSettings),
}

/// A held app lock, of either kind.
#[derive(Debug)]
pub enum RunLock {
    File(AppLock),
    Postgres(postgres::PgLock),
}

impl Locks {
    /// Takes the lock of `app` in `project`, waiting up to `timeout`.
    pub async fn acquire(
        &self,
        project: &str,
        app: &str,
        run_id: &str,
        timeout: Duration,
    ) -> Result<RunLock, AppLockError> {
        match self {
            Locks::Files(dir) => tokio::task::block_in_place(|| acquire(dir, app, run_id, timeout))
                .map(RunLock::File),
            Locks::Postgres(settings) => {
                postgres::PgLock::acquire(settings, project, app, run_id, timeout)
                    .await
                    .map(RunLock::Postgres)
            }
        }
    }
}

/// Whether a run recorded as unfinished still has a process behind it, as `status`
/// tells it without taking or disturbing the lock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Activity {
    /// The app's lock is held: a process is running it.
    Running,
    /// Nobody holds the lock: the process that ran it is gone.
    Gone,
    /// Another machine's holder record, which this one cannot check.
    Unknown { host: String },
}

impl Locks {
    /// Whether `app`'s lock is held, read without taking it: the holder record of a file
    /// lock (its process checked on this host), or the server's view of a database
    /// lock. A read never blocks an apply that starts meanwhile.
    pub async fn activity(&self, project: &str, app: &str) -> Result<Activity, AppLockError> {
        match self {
            Locks::Files(dir) => {
                let path = dir.join(format!("{app}.lock"));
                // Bounded and only a regular file, like every file Fabrik reads.
                let holder = match crate::bounded::read_text(&path, 64 << 10) {
                    Ok(text) => serde_json::from_str::<Holder>(&text).ok(),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
                    Err(source) => return Err(AppLockError::Io { path, source }),
                };
                Ok(match holder {
                    // Released cleanly (an empty record) or never taken.
                    None => Activity::Gone,
                    Some(holder) if holder.host != host_name() => {
                        Activity::Unknown { host: holder.host }
                    }
                    Some(holder) if may_be_alive(&holder) => Activity::Running,
                    Some(_) => Activity::Gone,
                })
            }
            Locks::Postgres(settings) => postgres::activity(settings, project, app).await,
        }
    }
}

impl RunLock {
    /// The record of a holder that died without releasing, if one was taken over.
    pub fn took_over(&self) -> Option<&Holder> {
        match self {
            RunLock::File(lock) => lock.took_over.as_ref(),
            RunLock::Postgres(lock) => lock.took_over.as_ref(),
        }
    }

    /// Whether the lock is still held, asked of its holder before every change that a
    /// newer holder could be hurt by (a provider call that mutates, a state write): a
    /// database lock's session is asked with a round trip, since a closed session is
    /// only noticed when it is used. A file lock is held while its descriptor is open.
    pub async fn confirm(&self) -> bool {
        match self {
            RunLock::File(_) => true,
            RunLock::Postgres(lock) => lock.confirm().await,
        }
    }

    /// [`RunLock::confirm`] as the error every writer stops with: nothing more is
    /// written or changed once the lock of `app` is lost.
    pub async fn ensure_held(&self, app: &str) -> Result<(), crate::store::StoreError> {
        if self.confirm().await {
            Ok(())
        } else {
            Err(crate::store::StoreError::LockLost {
                app: app.to_owned(),
            })
        }
    }

    /// Releases the lock.
    pub async fn release(self) {
        match self {
            RunLock::File(lock) => drop(lock),
            RunLock::Postgres(lock) => lock.release().await,
        }
    }
}

/// A held lock; released when dropped.
#[derive(Debug)]
pub struct AppLock {
    file: File,
    path: PathBuf,
    /// The record of a holder that died without releasing, if one was taken over.
    pub took_over: Option<Holder>,
}

/// The lock directory for the SQLite state at `state_path`: beside it, so that every
/// checkout, directory or machine that shares one state file (`--state`,
/// `FABRIK_STATE_DB`) shares its locks too. A lock kept with the project directory
/// instead let two checkouts of one state both "hold" an app.
pub fn lock_dir(state_path: &Path) -> PathBuf {
    state_path
        .parent()
        .map_or_else(|| PathBuf::from("locks"), |dir| dir.join("locks"))
}

fn read_holder(file: &mut File) -> Option<Holder> {
    let mut text = String::new();
    file.seek(SeekFrom::Start(0)).ok()?;
    file.read_to_string(&mut text).ok()?;
    serde_json::from_str(&text).ok()
}

/// Whether `holder` may be alive: always for another host; on this one, whether its
/// process exists.
fn may_be_alive(holder: &Holder) -> bool {
    holder.host != host_name() || Path::new("/proc").join(holder.pid.to_string()).exists()
}

/// How long a refused apply waits for the new holder to write its record.
const RECORD_GRACE: Duration = Duration::from_secs(2);

/// The holder of a lock someone else holds. The holder writes its record just after
/// taking the lock, so for a moment the file is empty or still names the previous,
/// dead holder: read again until it names a live one.
fn current_holder(file: &mut File) -> Option<Holder> {
    let started = Instant::now();
    loop {
        let holder = read_holder(file).filter(may_be_alive);
        if holder.is_some() || started.elapsed() >= RECORD_GRACE {
            return holder;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Takes the lock of `app`, waiting up to `timeout`.
pub fn acquire(
    dir: &Path,
    app: &str,
    run_id: &str,
    timeout: Duration,
) -> Result<AppLock, AppLockError> {
    let path = dir.join(format!("{app}.lock"));
    let io = |source| AppLockError::Io {
        path: path.clone(),
        source,
    };
    std::fs::create_dir_all(dir).map_err(io)?;
    let mut file = crate::own_files::open(
        &path,
        OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false),
    )
    .map_err(io)?;
    let started = Instant::now();
    loop {
        match file.try_lock() {
            Ok(()) => break,
            Err(TryLockError::WouldBlock) => {
                if started.elapsed() >= timeout {
                    let waited = started.elapsed();
                    return Err(match current_holder(&mut file) {
                        Some(holder) => AppLockError::Held {
                            app: app.to_owned(),
                            holder: Box::new(holder),
                            waited,
                        },
                        None => AppLockError::HeldUnknown {
                            app: app.to_owned(),
                            waited,
                        },
                    });
                }
                std::thread::sleep(Duration::from_millis(50).min(timeout));
            }
            Err(TryLockError::Error(e)) => return Err(io(e)),
        }
    }
    // We hold it: a record still in the file belongs to a holder that died.
    let took_over = read_holder(&mut file);
    if let Some(previous) = &took_over {
        tracing::warn!("took over a stale lock of `{app}` left by {previous}");
    }
    let me = Holder {
        pid: std::process::id(),
        host: host_name(),
        started_at: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0),
        run_id: run_id.to_owned(),
        user: user_name(),
    };
    let record = serde_json::to_string(&me).unwrap_or_default();
    file.set_len(0).map_err(io)?;
    file.seek(SeekFrom::Start(0)).map_err(io)?;
    file.write_all(record.as_bytes()).map_err(io)?;
    file.sync_all().map_err(io)?;
    Ok(AppLock {
        file,
        path,
        took_over,
    })
}

/// Clears the holder record of `app`'s lock, if no live process holds it. Returns the
/// record that was cleared.
pub fn unlock(dir: &Path, app: &str) -> Result<Option<Holder>, AppLockError> {
    let lock = acquire(dir, app, "unlock", Duration::ZERO)?;
    Ok(lock.took_over.clone())
}

impl Drop for AppLock {
    fn drop(&mut self) {
        // An empty file means "released cleanly"; the OS lock goes with the handle.
        let _ = self.file.set_len(0);
        let _ = self.file.unlock();
        tracing::debug!(path = %self.path.display(), "released the app lock");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_is_refused_with_the_holder_named() {
        let dir = tempfile::tempdir().expect("tempdir");
        let first = acquire(dir.path(), "api", "run-1", Duration::ZERO).expect("first");
        assert!(first.took_over.is_none());
        match acquire(dir.path(), "api", "run-2", Duration::from_millis(120)) {
            Err(AppLockError::Held { holder, waited, .. }) => {
                assert_eq!(holder.pid, std::process::id());
                assert_eq!(holder.run_id, "run-1");
                assert!(waited >= Duration::from_millis(120));
            }
            other => panic!("expected Held, got {other:?}"),
        }
        acquire(dir.path(), "other-app", "run-3", Duration::ZERO)
            .expect("another app is independent");
        drop(first);
        let again = acquire(dir.path(), "api", "run-4", Duration::ZERO).expect("released");
        assert!(
            again.took_over.is_none(),
            "a clean release leaves no record"
        );
    }

    #[test]
    fn a_record_left_by_a_dead_holder_is_taken_over() {
        let dir = tempfile::tempdir().expect("tempdir");
        let dead = Holder {
            pid: 999_999,
            host: host_name(),
            started_at: 1,
            run_id: "crashed".into(),
            user: None,
        };
        std::fs::write(
            dir.path().join("api.lock"),
            serde_json::to_string(&dead).expect("json"),
        )
        .expect("write");
        let lock = acquire(dir.path(), "api", "run-5", Duration::ZERO).expect("taken over");
        assert_eq!(lock.took_over, Some(dead));
        drop(lock);
        assert_eq!(unlock(dir.path(), "api").expect("unlock"), None);
    }

    #[test]
    fn a_refusal_waits_for_the_new_holder_to_say_who_it_is() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("api.lock");
        let dead = Holder {
            pid: 999_999,
            host: host_name(),
            started_at: 1,
            run_id: "crashed".into(),
            user: None,
        };
        std::fs::write(&path, serde_json::to_string(&dead).expect("json")).expect("write");
        // A new holder has the OS lock but has not replaced the dead one's record yet.
        let held = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .expect("open");
        held.try_lock().expect("locked");
        let live = Holder {
            pid: std::process::id(),
            host: host_name(),
            started_at: 2,
            run_id: "run-live".into(),
            user: None,
        };
        let writer = {
            let path = path.clone();
            let live = live.clone();
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(150));
                std::fs::write(&path, serde_json::to_string(&live).expect("json")).expect("write");
            })
        };
        match acquire(dir.path(), "api", "run-2", Duration::ZERO) {
            Err(AppLockError::Held { holder, .. }) => assert_eq!(*holder, live),
            other => panic!("expected the live holder, got {other:?}"),
        }
        writer.join().expect("writer");
        // A record that never names a live process is not passed off as the holder.
        std::fs::write(&path, serde_json::to_string(&dead).expect("json")).expect("write");
        match acquire(dir.path(), "api", "run-3", Duration::ZERO) {
            Err(AppLockError::HeldUnknown { .. }) => {}
            other => panic!("expected an unknown holder, got {other:?}"),
        }
    }
}
