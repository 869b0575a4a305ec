//! The SQLite backend: a file beside the project (bundled SQLite, WAL, busy timeout,
//! foreign keys). The default: a single developer needs nothing else.

use std::path::{Path, PathBuf};

use rusqlite::{Connection, OptionalExtension};
use serde_json::Value;

use super::seam::{Cell, Row, Session};
use super::{StoreError, migrations};

/// How long a write waits for another process's.
const BUSY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Whether SQLite refused because another connection holds a lock.
fn is_busy(error: &rusqlite::Error) -> bool {
    matches!(
        error,
        rusqlite::Error::SqliteFailure(f, _)
            if matches!(f.code, rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
    )
}

/// Whether `error` says the file cannot be written or reached (a read-only directory or
/// file system, a full disk, permissions, an I/O failure) rather than that its content
/// is damaged: advice to move a damaged file away would be wrong advice for these.
fn is_unwritable(error: &rusqlite::Error) -> bool {
    use rusqlite::ErrorCode::{CannotOpen, DiskFull, PermissionDenied, ReadOnly, SystemIoFailure};
    matches!(
        error,
        rusqlite::Error::SqliteFailure(f, _)
            if matches!(f.code, ReadOnly | DiskFull | CannotOpen | PermissionDenied | SystemIoFailure)
    )
}

/// The file SQLite keeps beside the database at `path` (`-wal`, `-shm`, `-journal`).
fn beside(path: &Path, suffix: &str) -> PathBuf {
    let mut file = path.as_os_str().to_owned();
    file.push(suffix);
    PathBuf::from(file)
}

/// `path` as an SQLite URI filename (sqlite.org/uri.html): absolute, every byte but
/// unreserved ones and `/` percent-encoded, so that no path (with `?`, `#`, `%`, a
/// leading `//` or bytes that are not UTF-8) names another file.
fn file_uri(path: &Path) -> String {
    use std::os::unix::ffi::OsStrExt;
    let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let mut uri = String::from("file://");
    for &byte in absolute.as_os_str().as_bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' | b'/' => {
                uri.push(char::from(byte));
            }
            other => uri.push_str(&format!("%{other:02X}")),
        }
    }
    uri
}

/// An open state database.
pub struct SqliteStore {
    conn: Connection,
    path: PathBuf,
}

impl SqliteStore {
    /// Opens (creating it if needed) and migrates the database at `path`. A database
    /// that is damaged or from a newer fabrik is reported and never written.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let open_error = |message: String| StoreError::Open {
            location: format!("`{}`", path.display()),
            message,
        };
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|e| open_error(e.to_string()))?;
        }
        // SQLite follows a link at the database's path and at its `-wal`, `-shm` and
        // `-journal` files, creating or writing the file it points to.
        for suffix in ["", "-wal", "-shm", "-journal"] {
            let file = beside(path, suffix);
            if crate::own_files::is_link(&file) {
                return Err(StoreError::Open {
                    location: format!("`{}`", file.display()),
                    message: format!(
                        "{}; to keep the state elsewhere, give its real path with --state or FABRIK_STATE_DB",
                        crate::own_files::link_refused(&file)
                    ),
                });
            }
        }
        let conn = Connection::open(path).map_err(|e| open_error(e.to_string()))?;
        conn.busy_timeout(BUSY_TIMEOUT)?;
        let mut store = Self {
            conn,
            path: path.to_path_buf(),
        };
        // SQLite answers "busy" at once, without its busy handler, in a few places that
        // many processes opening one new file hit together (the switch to WAL, WAL
        // recovery): the set-up is retried until the same timeout.
        let deadline = std::time::Instant::now() + BUSY_TIMEOUT;
        loop {
            match store.set_up() {
                Err(StoreError::Sql(e)) if is_busy(&e) && std::time::Instant::now() < deadline => {
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
                Err(e) => return Err(e),
                Ok(()) => return Ok(store),
            }
        }
    }

    /// Checks the file, switches it to WAL and migrates it. Changes nothing in a file
    /// that is damaged or newer.
    fn set_up(&mut self) -> Result<(), StoreError> {
        let corrupt = |e: rusqlite::Error| {
            if is_busy(&e) {
                StoreError::Sql(e)
            } else if is_unwritable(&e) {
                StoreError::Unwritable {
                    path: self.path.clone(),
                    message: e.to_string(),
                }
            } else {
                StoreError::Corrupt {
                    path: self.path.clone(),
                    message: e.to_string(),
                }
            }
        };
        // Reading the schema first detects a file that is not a database before any write.
        let version: i64 = self
            .conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(corrupt)?;
        let check: String = self
            .conn
            .query_row("PRAGMA quick_check", [], |r| r.get(0))
            .map_err(corrupt)?;
        if check != "ok" {
            return Err(StoreError::Corrupt {
                path: self.path.clone(),
                message: check,
            });
        }
        let known = migrations::latest();
        if version > known {
            return Err(StoreError::Newer {
                location: format!("`{}`", self.path.display()),
                found: version,
                known,
            });
        }
        // Switching to WAL needs a moment of exclusive access.
        self.conn
            .pragma_update(None, "journal_mode", "WAL")
            .map_err(|e| match is_unwritable(&e) {
                true => StoreError::Unwritable {
                    path: self.path.clone(),
                    message: e.to_string(),
                },
                false => StoreError::Sql(e),
            })?;
        // In WAL mode NORMAL never corrupts the database; a power cut may lose the last
        // transactions, and a lost intent is recovered by `lookup` on the next apply.
        // FULL made each write an fsync: ~5% of a fresh apply (BENCHMARKS.md).
        self.conn.pragma_update(None, "synchronous", "NORMAL")?;
        self.conn.pragma_update(None, "foreign_keys", "ON")?;
        self.migrate(version)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Opens the database at `path` for reading only (`status`, `history`, `state
    /// export` on a read-only directory or file system): no file is created, nothing is
    /// migrated. A database older than this fabrik is refused: only an apply upgrades it.
    pub fn open_read_only(path: &Path) -> Result<Self, StoreError> {
        let unreadable = |e: rusqlite::Error| match is_unwritable(&e) {
            true => StoreError::Unwritable {
                path: path.to_path_buf(),
                message: e.to_string(),
            },
            false => StoreError::Corrupt {
                path: path.to_path_buf(),
                message: e.to_string(),
            },
        };
        let conn = Self::connect_read_only(path, false)?;
        let (conn, version) = match conn.query_row("PRAGMA user_version", [], |r| r.get(0)) {
            Ok(version) => (conn, version),
            // A WAL database can only be read by a process that can create its shared
            // memory file beside it, unless the file is opened as immutable (SQLite's
            // `immutable` URI parameter), which reads the database file alone, without
            // locks. So only when everything is in that file: no `-wal` or `-journal`
            // with changes not yet written into it. (A writer that starts meanwhile,
            // another user's apply, may make a read fail; it cannot change the file.)
            Err(e) if is_unwritable(&e) => {
                for suffix in ["-wal", "-journal"] {
                    if std::fs::metadata(beside(path, suffix)).is_ok_and(|m| m.len() > 0) {
                        return Err(StoreError::Unwritable {
                            path: path.to_path_buf(),
                            message: format!(
                                "{e}; its `{suffix}` file holds changes that only a process able to write beside it can read"
                            ),
                        });
                    }
                }
                let conn = Self::connect_read_only(path, true)?;
                let version: i64 = conn
                    .query_row("PRAGMA user_version", [], |r| r.get(0))
                    .map_err(unreadable)?;
                (conn, version)
            }
            Err(e) => return Err(unreadable(e)),
        };
        let known = migrations::latest();
        if version != known {
            return Err(StoreError::Open {
                location: format!("`{}`", path.display()),
                message: format!(
                    "it has schema version {version} and this fabrik reads {known}; it cannot be upgraded where it cannot be written"
                ),
            });
        }
        Ok(Self {
            conn,
            path: path.to_path_buf(),
        })
    }

    /// A read-only connection to `path`; `immutable` opens it through a URI with
    /// SQLite's `immutable=1` (no locks, no shared memory file).
    fn connect_read_only(path: &Path, immutable: bool) -> Result<Connection, StoreError> {
        use rusqlite::OpenFlags;
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = if immutable {
            Connection::open_with_flags(
                format!("{}?immutable=1", file_uri(path)),
                flags | OpenFlags::SQLITE_OPEN_URI,
            )
        } else {
            Connection::open_with_flags(path, flags)
        };
        let conn = conn.map_err(|e| StoreError::Open {
            location: format!("`{}`", path.display()),
            message: e.to_string(),
        })?;
        conn.busy_timeout(BUSY_TIMEOUT)?;
        Ok(conn)
    }

    fn migrate(&mut self, from: i64) -> Result<(), StoreError> {
        if from >= migrations::latest() {
            return Ok(());
        }
        // A migration that rebuilds a table drops the one other tables refer to: foreign
        // keys are off while it runs (SQLite ignores the pragma inside a transaction) and
        // checked before each commit.
        self.conn.pragma_update(None, "foreign_keys", "OFF")?;
        let migrated = self.migrate_steps(from);
        self.conn.pragma_update(None, "foreign_keys", "ON")?;
        migrated
    }

    fn migrate_steps(&mut self, from: i64) -> Result<(), StoreError> {
        for (index, sql) in migrations::MIGRATIONS.iter().enumerate() {
            let version = i64::try_from(index).unwrap_or(i64::MAX) + 1;
            if version <= from {
                continue;
            }
            // Another process may be migrating the same new file: take the write lock
            // first, then check again whether this step is still needed.
            let tx = self
                .conn
                .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let current: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
            if current >= version {
                continue;
            }
            tx.execute_batch(sql)?;
            let broken: Option<String> = tx
                .query_row("PRAGMA foreign_key_check", [], |r| r.get(0))
                .optional()?;
            if let Some(table) = broken {
                return Err(StoreError::Corrupt {
                    path: self.path.clone(),
                    message: format!(
                        "migration {version} would leave a row of `{table}` referring to nothing; nothing was changed"
                    ),
                });
            }
            tx.pragma_update(None, "user_version", version)?;
            tx.commit()?;
        }
        Ok(())
    }

    /// The whole state as JSON (for `fabrik state export`).
    pub fn export(&self) -> Result<Value, StoreError> {
        let mut out = serde_json::Map::new();
        out.insert(
            "schema_version".to_owned(),
            serde_json::json!(migrations::latest()),
        );
        for table in ["deployments", "runs", "resources", "events"] {
            let mut statement = self
                .conn
                .prepare(&format!("SELECT * FROM {table} ORDER BY 1"))?;
            let names: Vec<String> = statement
                .column_names()
                .iter()
                .map(|n| (*n).to_owned())
                .collect();
            let rows = statement.query_map([], |r| {
                let mut row = serde_json::Map::new();
                for (i, name) in names.iter().enumerate() {
                    let value = match r.get_ref(i)? {
                        rusqlite::types::ValueRef::Null => Value::Null,
                        rusqlite::types::ValueRef::Integer(n) => Value::from(n),
                        rusqlite::types::ValueRef::Real(f) => Value::from(f),
                        rusqlite::types::ValueRef::Text(t) => {
                            Value::String(String::from_utf8_lossy(t).into_owned())
                        }
                        rusqlite::types::ValueRef::Blob(_) => Value::String("<blob>".to_owned()),
                    };
                    row.insert(name.clone(), value);
                }
                Ok(Value::Object(row))
            })?;
            out.insert(
                table.to_owned(),
                Value::Array(rows.collect::<Result<_, _>>()?),
            );
        }
        Ok(Value::Object(out))
    }

    /// Direct access for tests of the database's own guarantees.
    #[doc(hidden)]
    pub fn connection(&self) -> &Connection {
        &self.conn
    }

    /// The connection as a [`Session`] of the store's operations.
    pub(super) fn session(&mut self) -> SqliteSession<'_> {
        SqliteSession(&mut self.conn)
    }
}

/// The SQLite connection as a [`Session`]: statements run at once (the futures never
/// wait), with `$1` parameters read as SQLite's `?1`.
pub struct SqliteSession<'a>(&'a mut Connection);

/// `sql` with each `$N` parameter written `?N`: the same numbered parameter in SQLite.
fn numbered(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '$' && chars.peek().is_some_and(char::is_ascii_digit) {
            out.push('?');
        } else {
            out.push(c);
        }
    }
    out
}

fn bound(cell: &Cell) -> rusqlite::types::Value {
    match cell {
        Cell::Null => rusqlite::types::Value::Null,
        Cell::Int(n) => rusqlite::types::Value::Integer(*n),
        Cell::Text(t) => rusqlite::types::Value::Text(t.clone()),
    }
}

impl Session for SqliteSession<'_> {
    // Every table is a rowid table: insertion order.
    const RUN_SEQUENCE: &'static str = "rowid";

    async fn query(&mut self, sql: &str, params: &[Cell]) -> Result<Vec<Row>, StoreError> {
        let mut statement = self.0.prepare_cached(&numbered(sql))?;
        let columns = statement.column_count();
        let rows =
            statement.query_map(rusqlite::params_from_iter(params.iter().map(bound)), |r| {
                (0..columns)
                    .map(|i| {
                        Ok(match r.get_ref(i)? {
                            rusqlite::types::ValueRef::Null => Cell::Null,
                            rusqlite::types::ValueRef::Integer(n) => Cell::Int(n),
                            rusqlite::types::ValueRef::Real(f) => Cell::Text(f.to_string()),
                            rusqlite::types::ValueRef::Text(t)
                            | rusqlite::types::ValueRef::Blob(t) => {
                                Cell::Text(String::from_utf8_lossy(t).into_owned())
                            }
                        })
                    })
                    .collect::<rusqlite::Result<Vec<Cell>>>()
                    .map(Row)
            })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    async fn execute(&mut self, sql: &str, params: &[Cell]) -> Result<u64, StoreError> {
        let mut statement = self.0.prepare_cached(&numbered(sql))?;
        let changed = statement.execute(rusqlite::params_from_iter(params.iter().map(bound)))?;
        Ok(u64::try_from(changed).unwrap_or(u64::MAX))
    }

    async fn begin(&mut self) -> Result<(), StoreError> {
        // The write lock at once: a deferred transaction that later writes can fail busy
        // without waiting for the busy timeout.
        Ok(self.0.execute_batch("BEGIN IMMEDIATE")?)
    }

    async fn commit(&mut self) -> Result<(), StoreError> {
        Ok(self.0.execute_batch("COMMIT")?)
    }

    async fn rollback(&mut self) -> Result<(), StoreError> {
        Ok(self.0.execute_batch("ROLLBACK")?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The immutable fallback opens the file it was given, whatever its name holds.
    #[test]
    fn an_odd_path_opens_the_same_file_as_an_immutable_uri() {
        use std::os::unix::ffi::OsStrExt;
        let dir = tempfile::tempdir().expect("tempdir");
        let name = std::ffi::OsStr::from_bytes(b"a?b#c%20d \xff\xc3\xa9.db");
        let path = dir.path().join(name);
        let conn = Connection::open(&path).expect("created");
        conn.execute_batch("CREATE TABLE t (v TEXT); INSERT INTO t VALUES ('here');")
            .expect("written");
        drop(conn);
        let conn = SqliteStore::connect_read_only(&path, true).expect("opened");
        let v: String = conn
            .query_row("SELECT v FROM t", [], |r| r.get(0))
            .expect("the same file");
        assert_eq!(v, "here");
        assert!(file_uri(Path::new("rel/x")).starts_with("file:///"));
    }

    #[test]
    fn an_unwritable_file_is_not_called_damaged() {
        let failure = |code| rusqlite::Error::SqliteFailure(rusqlite::ffi::Error::new(code), None);
        for code in [
            rusqlite::ffi::SQLITE_READONLY,
            rusqlite::ffi::SQLITE_FULL,
            rusqlite::ffi::SQLITE_CANTOPEN,
            rusqlite::ffi::SQLITE_IOERR,
        ] {
            assert!(is_unwritable(&failure(code)), "{code}");
        }
        for code in [rusqlite::ffi::SQLITE_CORRUPT, rusqlite::ffi::SQLITE_NOTADB] {
            assert!(!is_unwritable(&failure(code)), "{code}");
        }
        let message = StoreError::Unwritable {
            path: PathBuf::from("/ro/state.db"),
            message: "attempt to write a readonly database".to_owned(),
        }
        .to_string();
        assert!(!message.contains("move it away"), "{message}");
    }

    #[test]
    fn a_state_can_be_read_without_being_written() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("state.db");
        drop(SqliteStore::open(&path).expect("created"));
        let before = std::fs::read(&path).expect("bytes");
        let store = SqliteStore::open_read_only(&path).expect("read-only");
        let deployments: i64 = store
            .conn
            .query_row("SELECT COUNT(*) FROM deployments", [], |r| r.get(0))
            .expect("reads");
        assert_eq!(deployments, 0);
        assert!(
            store.conn.execute_batch("CREATE TABLE x (y)").is_err(),
            "a read-only connection cannot write"
        );
        drop(store);
        assert_eq!(std::fs::read(&path).expect("bytes"), before);
    }
    fn open_temp() -> (tempfile::TempDir, SqliteStore) {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = SqliteStore::open(&crate::store::default_path(dir.path())).expect("opens");
        (dir, store)
    }

    #[test]
    fn a_new_database_is_migrated_to_the_latest_schema() {
        let (_dir, store) = open_temp();
        let version: i64 = store
            .connection()
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .expect("version");
        assert_eq!(version, migrations::latest());
        let mode: String = store
            .connection()
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .expect("mode");
        assert_eq!(mode, "wal");
        let keys: i64 = store
            .connection()
            .query_row("PRAGMA foreign_keys", [], |r| r.get(0))
            .expect("fk");
        assert_eq!(keys, 1);
    }

    #[test]
    fn events_are_append_only_in_the_database_itself() {
        let (_dir, store) = open_temp();
        store
            .connection()
            .execute(
                "INSERT INTO events (at, kind, data) VALUES ('1', 'destroyed', '{}')",
                [],
            )
            .expect("append");
        let update = store
            .connection()
            .execute("UPDATE events SET kind = 'changed'", []);
        assert!(
            update
                .expect_err("refused")
                .to_string()
                .contains("events are append-only")
        );
        let delete = store.connection().execute("DELETE FROM events", []);
        assert!(
            delete
                .expect_err("refused")
                .to_string()
                .contains("events are append-only")
        );
    }

    #[test]
    fn many_connections_opening_one_new_file_at_once_all_succeed() {
        for _ in 0..10 {
            let dir = tempfile::tempdir().expect("tempdir");
            let path = crate::store::default_path(dir.path());
            let start = std::sync::Arc::new(std::sync::Barrier::new(12));
            let openers: Vec<_> = (0..12)
                .map(|_| {
                    let (path, start) = (path.clone(), start.clone());
                    std::thread::spawn(move || {
                        start.wait();
                        SqliteStore::open(&path)
                            .map(|_| ())
                            .map_err(|e| e.to_string())
                    })
                })
                .collect();
            for opener in openers {
                assert_eq!(opener.join().expect("joined"), Ok(()));
            }
        }
    }

    #[test]
    fn a_newer_schema_is_refused_and_left_unchanged() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = crate::store::default_path(dir.path());
        drop(SqliteStore::open(&path).expect("create"));
        {
            let conn = Connection::open(&path).expect("open");
            conn.pragma_update(None, "user_version", migrations::latest() + 1)
                .expect("bump");
            conn.pragma_update(None, "journal_mode", "DELETE")
                .expect("checkpoint");
        }
        let before = std::fs::read(&path).expect("read");
        let error = SqliteStore::open(&path).err().expect("refused");
        assert!(matches!(error, StoreError::Newer { .. }), "{error}");
        assert!(error.to_string().contains("upgrade fabrik"));
        assert_eq!(std::fs::read(&path).expect("read"), before);
    }

    #[test]
    fn a_corrupt_file_is_refused_and_left_unchanged() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("state.db");
        std::fs::write(
            &path,
            b"this is not a database, but someone's notes\n".repeat(200),
        )
        .expect("write");
        let before = std::fs::read(&path).expect("read");
        let error = SqliteStore::open(&path).err().expect("refused");
        assert!(matches!(error, StoreError::Corrupt { .. }), "{error}");
        assert_eq!(std::fs::read(&path).expect("read"), before);
    }
}
