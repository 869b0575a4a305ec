//! The SQLite backend: a file beside the project (bundled SQLite, WAL, busy timeout,
//! foreign keys). The default: a single developer needs nothing else.

use std::path::{Path, PathBuf};

use rusqlite::{Connection, OptionalExtension, params};
use serde_json::Value;

use super::journal::{DestroyEntry, DestroyRecord, Journal};
use super::{
    Deployment, Holder, ResourceKey, ResourceRow, RunRow, RunStart, StoreError, migrations, now,
    parse_json, sql,
};
use crate::domain::{DeploymentState, ResourceStatus, State};

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
            tx.pragma_update(None, "user_version", version)?;
            tx.commit()?;
        }
        Ok(())
    }

    /// The deployment of `app` in `project`, if any.
    pub fn deployment(&self, project: &str, app: &str) -> Result<Option<Deployment>, StoreError> {
        Ok(self
            .conn
            .query_row(
                "SELECT id, project, app, spec_path, spec_hash, state FROM deployments WHERE project = ?1 AND app = ?2",
                params![project, app],
                |r| {
                    Ok(Deployment {
                        id: r.get(0)?,
                        project: r.get(1)?,
                        app: r.get(2)?,
                        spec_path: r.get(3)?,
                        spec_hash: r.get(4)?,
                        state: r.get(5)?,
                    })
                },
            )
            .optional()?)
    }

    /// Every deployment, by project and app.
    pub fn deployments(&self) -> Result<Vec<Deployment>, StoreError> {
        let mut statement = self
            .conn
            .prepare("SELECT id, project, app, spec_path, spec_hash, state FROM deployments ORDER BY project, app")?;
        let rows = statement.query_map([], |r| {
            Ok(Deployment {
                id: r.get(0)?,
                project: r.get(1)?,
                app: r.get(2)?,
                spec_path: r.get(3)?,
                spec_hash: r.get(4)?,
                state: r.get(5)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The deployment of `app`, created in `PENDING` if it does not exist.
    pub fn ensure_deployment(
        &self,
        project: &str,
        app: &str,
        spec_path: &str,
    ) -> Result<Deployment, StoreError> {
        let at = now();
        self.conn.execute(
            "INSERT INTO deployments (project, app, spec_path, state, created_at, updated_at)
             VALUES (?1, ?2, ?3, ?5, ?4, ?4)
             ON CONFLICT (project, app) DO UPDATE SET spec_path = excluded.spec_path",
            params![
                project,
                app,
                spec_path,
                at,
                DeploymentState::Run(State::Pending)
            ],
        )?;
        self.deployment(project, app)?
            .ok_or_else(|| StoreError::Sql(rusqlite::Error::QueryReturnedNoRows))
    }

    /// Starts a run in `PENDING` (and the app's deployment if it has none), in one
    /// transaction.
    pub fn start_run(&self, run: &RunStart<'_>) -> Result<Deployment, StoreError> {
        let tx = self.conn.unchecked_transaction()?;
        let deployment = self.ensure_deployment(run.project, run.app, run.spec_path)?;
        self.conn.execute(
            "INSERT INTO runs (id, deployment_id, state, spec_hash, started_at, origin, restores_run, snapshot)
             VALUES (?1, ?2, ?8, ?3, ?4, ?5, ?6, ?7)",
            params![
                run.run_id,
                deployment.id,
                run.spec_hash,
                now(),
                run.origin.as_str(),
                run.origin.restores(),
                run.snapshot.to_string(),
                State::Pending
            ],
        )?;
        self.append_event(
            Some(deployment.id),
            Some(run.run_id),
            &Journal::RunStarted {
                spec_hash: run.spec_hash,
                origin: run.origin,
            },
        )?;
        tx.commit()?;
        Ok(deployment)
    }

    /// Moves a run from `from` to `to`, as the state machine allows, and journals it.
    pub fn transition(
        &self,
        deployment: i64,
        run_id: &str,
        (from, to): (State, State),
        reason: Option<&str>,
        keep: Option<DeploymentState>,
    ) -> Result<State, StoreError> {
        let next = from.transition(to)?;
        let at = now();
        let finished = next.is_terminal().then_some(at.clone());
        // One transaction: the run, the deployment, the restore points and the journal
        // agree even if the process dies here.
        let tx = self.conn.unchecked_transaction()?;
        tx.execute(
            "UPDATE runs SET state = ?1, finished_at = COALESCE(?2, finished_at), reason = COALESCE(?3, reason) WHERE id = ?4",
            params![next, finished, reason, run_id],
        )?;
        tx.execute(
            "UPDATE deployments SET state = ?1, updated_at = ?2 WHERE id = ?3",
            params![keep.unwrap_or(DeploymentState::Run(next)), at, deployment],
        )?;
        if next == State::Complete {
            // What a completed run deployed is what a later failed run restores.
            tx.execute(
                "UPDATE resources SET previous_desired = desired
                 WHERE deployment_id = ?1 AND status IN (?2, ?3, ?4)",
                params![
                    deployment,
                    ResourceStatus::Created,
                    ResourceStatus::Updated,
                    ResourceStatus::Adopted
                ],
            )?;
        }
        self.append_event(
            Some(deployment),
            Some(run_id),
            &Journal::Transition {
                from,
                to: next,
                reason,
            },
        )?;
        tx.commit()?;
        Ok(next)
    }

    /// Ends every run of `deployment` that is not in a terminal state as `FAILED` with
    /// `reason`, through the state machine (a `PENDING` run goes by `VALIDATING`). Only
    /// for the holder of the app's lock, for whom such a run belongs to a process that
    /// died. Returns each closed run's id and the state it was left in.
    pub fn close_unfinished_runs(
        &self,
        deployment: i64,
        reason: &str,
    ) -> Result<Vec<(String, State)>, StoreError> {
        let mut closed = Vec::new();
        for run in self.runs(deployment)? {
            let left_in = run.state;
            if left_in.is_terminal() {
                continue;
            }
            let mut state = left_in;
            if state == State::Pending {
                state =
                    self.transition(deployment, &run.id, (state, State::Validating), None, None)?;
            }
            self.transition(
                deployment,
                &run.id,
                (state, State::Failed),
                Some(reason),
                None,
            )?;
            closed.push((run.id, left_in));
        }
        Ok(closed)
    }

    /// Records that `fabrik destroy` deleted every resource of the app: the deployment
    /// is `DESTROYED` and has no deployed spec, so the next apply creates it again.
    pub fn mark_destroyed(
        &self,
        deployment: i64,
        record: &DestroyRecord,
    ) -> Result<(), StoreError> {
        // One transaction: the state and its journal entry agree even if the process
        // dies here.
        let tx = self.conn.unchecked_transaction()?;
        tx.execute(
            "UPDATE deployments SET spec_hash = NULL, state = ?1, updated_at = ?2 WHERE id = ?3",
            params![DeploymentState::Destroyed, now(), deployment],
        )?;
        self.append_event(Some(deployment), None, &Journal::Destroyed { record })?;
        tx.commit()?;
        Ok(())
    }

    /// The destroys of a deployment, newest first.
    pub fn destroys(&self, deployment: i64) -> Result<Vec<DestroyEntry>, StoreError> {
        let mut statement = self.conn.prepare(
            "SELECT at, data FROM events WHERE deployment_id = ?1 AND kind = 'destroyed'
             ORDER BY seq DESC",
        )?;
        let rows = statement.query_map(params![deployment], |r| {
            Ok(DestroyEntry::from_journal(
                r.get(0)?,
                r.get::<_, Option<String>>(1)?.as_deref(),
            ))
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Records the spec hash a completed run deployed.
    pub fn set_spec_hash(&self, deployment: i64, hash: &str) -> Result<(), StoreError> {
        self.conn.execute(
            "UPDATE deployments SET spec_hash = ?1 WHERE id = ?2",
            params![hash, deployment],
        )?;
        Ok(())
    }

    /// Appends to the journal.
    pub fn append_event(
        &self,
        deployment: Option<i64>,
        run_id: Option<&str>,
        event: &Journal<'_>,
    ) -> Result<(), StoreError> {
        self.conn.execute(
            "INSERT INTO events (deployment_id, run_id, at, kind, data) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![deployment, run_id, now(), event.kind(), event.data().to_string()],
        )?;
        Ok(())
    }

    /// Writes the intent to create or change a resource before the provider is called:
    /// a new row is `pending` until [`SqliteStore::record`] writes the outcome. An existing
    /// row keeps its `previous_desired`, the desired state of the last completed run
    /// (set by [`SqliteStore::transition`] to `COMPLETE`), which rollback restores.
    pub fn intend(
        &self,
        deployment: i64,
        run_id: &str,
        key: ResourceKey<'_>,
        owner: &str,
        desired: &Value,
    ) -> Result<i64, StoreError> {
        let ResourceKey {
            provider,
            kind,
            name,
        } = key;
        // One transaction: the row and its journal entry agree even if the process dies
        // between them (as on PostgreSQL).
        let tx = self.conn.unchecked_transaction()?;
        self.conn.execute(
            "INSERT INTO resources (deployment_id, provider, kind, name, owner, status, desired, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?8, ?6, ?7)
             ON CONFLICT (deployment_id, provider, kind, name) DO UPDATE SET
                 status = CASE WHEN resources.status = ?9 THEN ?8 ELSE resources.status END,
                 previous_desired = CASE WHEN resources.status = ?9 THEN NULL ELSE resources.previous_desired END,
                 desired = excluded.desired,
                 updated_at = excluded.updated_at",
            params![
                deployment,
                provider,
                kind,
                name,
                owner,
                desired.to_string(),
                now(),
                ResourceStatus::Pending,
                ResourceStatus::Deleted
            ],
        )?;
        let id = self.conn.query_row(
            "SELECT id FROM resources WHERE deployment_id = ?1 AND provider = ?2 AND kind = ?3 AND name = ?4",
            params![deployment, provider, kind, name],
            |r| r.get(0),
        )?;
        self.append_event(
            Some(deployment),
            Some(run_id),
            &Journal::Intent {
                provider,
                kind,
                name,
            },
        )?;
        tx.commit()?;
        Ok(id)
    }

    /// Records what a provider call did to a resource. `run` is `None` for changes
    /// outside a run (`fabrik destroy`).
    pub fn record(
        &self,
        resource: i64,
        run: Option<&str>,
        status: ResourceStatus,
        external_id: Option<&str>,
        outputs: Option<&Value>,
    ) -> Result<(), StoreError> {
        let created = if status.is_new_to_run() { run } else { None };
        // One transaction, as in `intend`.
        let tx = self.conn.unchecked_transaction()?;
        self.conn.execute(
            "UPDATE resources SET status = ?1, external_id = COALESCE(?2, external_id), outputs = COALESCE(?3, outputs),
                 created_by_run = COALESCE(?4, created_by_run), changed_by_run = ?5, updated_at = ?6
             WHERE id = ?7",
            params![status, external_id, outputs.map(Value::to_string), created, run, now(), resource],
        )?;
        let deployment: i64 = self.conn.query_row(
            "SELECT deployment_id FROM resources WHERE id = ?1",
            params![resource],
            |r| r.get(0),
        )?;
        self.append_event(
            Some(deployment),
            run,
            &Journal::Resource {
                resource,
                status,
                external_id,
            },
        )?;
        tx.commit()?;
        Ok(())
    }

    /// The resources of a deployment, oldest first.
    pub fn resources(&self, deployment: i64) -> Result<Vec<ResourceRow>, StoreError> {
        let mut statement = self.conn.prepare(
            "SELECT id, provider, kind, name, external_id, owner, status, desired, previous_desired, outputs, created_by_run, changed_by_run
             FROM resources WHERE deployment_id = ?1 ORDER BY id",
        )?;
        let rows = statement.query_map(params![deployment], |r| {
            Ok(ResourceRow {
                id: r.get(0)?,
                provider: r.get(1)?,
                kind: r.get(2)?,
                name: r.get(3)?,
                external_id: r.get(4)?,
                owner: r.get(5)?,
                status: r.get(6)?,
                desired: parse_json(r.get(7)?),
                previous_desired: parse_json(r.get(8)?),
                outputs: parse_json(r.get(9)?),
                created_by_run: r.get(10)?,
                changed_by_run: r.get(11)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// See [`super::Store::holder`].
    pub fn holder(
        &self,
        project: &str,
        key: ResourceKey<'_>,
        external_id: &str,
        except: i64,
    ) -> Result<Option<Holder>, StoreError> {
        let ResourceKey {
            provider: role,
            kind,
            ..
        } = key;
        Ok(self
            .conn
            .query_row(
                "SELECT d.project, d.app, r.name FROM resources r JOIN deployments d ON d.id = r.deployment_id
                 WHERE r.provider = ?1 AND r.kind = ?2 AND r.external_id = ?3 AND r.status IN ('created', 'updated', 'adopted') AND r.id <> ?4
                   AND d.project = ?5
                 ORDER BY r.id LIMIT 1",
                params![role, kind, external_id, except, project],
                |r| {
                    Ok(Holder {
                        project: r.get(0)?,
                        app: r.get(1)?,
                        name: r.get(2)?,
                    })
                },
            )
            .optional()?)
    }

    /// The runs of a deployment, newest first.
    pub fn runs(&self, deployment: i64) -> Result<Vec<RunRow>, StoreError> {
        let mut statement = self.conn.prepare(
            "SELECT id, state, spec_hash, started_at, finished_at, reason, origin, restores_run, snapshot
             FROM runs WHERE deployment_id = ?1 ORDER BY started_at DESC, rowid DESC",
        )?;
        let rows = statement.query_map(params![deployment], |r| {
            Ok(RunRow {
                id: r.get(0)?,
                state: r.get(1)?,
                spec_hash: r.get(2)?,
                started_at: r.get(3)?,
                finished_at: r.get(4)?,
                reason: r.get(5)?,
                origin: sql::origin(r.get(6)?, r.get(7)?, 6)?,
                snapshot: parse_json(r.get(8)?),
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
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

    /// Writes `dump` (the shape of [`SqliteStore::export`]) into this empty database, in
    /// one transaction: rows keep their ids; a run's `restores_run` is set once every run
    /// is there.
    pub fn import(&mut self, dump: &Value) -> Result<(), StoreError> {
        let tx = self.conn.transaction()?;
        for (table, rows) in super::migrate::tables(dump) {
            for row in rows {
                let columns: Vec<&String> = row.keys().collect();
                let sql = super::migrate::insert_sql(table, &columns, '?');
                let values: Vec<rusqlite::types::Value> = columns
                    .iter()
                    .map(|c| match (table, c.as_str(), &row[c.as_str()]) {
                        ("runs", "restores_run", _) | (_, _, Value::Null) => {
                            rusqlite::types::Value::Null
                        }
                        (_, _, Value::Number(n)) => n.as_i64().map_or_else(
                            || rusqlite::types::Value::Real(n.as_f64().unwrap_or_default()),
                            rusqlite::types::Value::Integer,
                        ),
                        (_, _, Value::String(s)) => rusqlite::types::Value::Text(s.clone()),
                        (_, _, other) => rusqlite::types::Value::Text(other.to_string()),
                    })
                    .collect();
                tx.execute(&sql, rusqlite::params_from_iter(values))?;
            }
        }
        for (id, restores) in super::migrate::restores(dump) {
            tx.execute(
                "UPDATE runs SET restores_run = ?1 WHERE id = ?2",
                params![restores, id],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Direct access for tests of the database's own guarantees.
    #[doc(hidden)]
    pub fn connection(&self) -> &Connection {
        &self.conn
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
        assert!(store.deployments().expect("reads").is_empty());
        assert!(
            store.conn.execute_batch("CREATE TABLE x (y)").is_err(),
            "a read-only connection cannot write"
        );
        drop(store);
        assert_eq!(std::fs::read(&path).expect("bytes"), before);
    }
    use crate::domain::{Role, RunOrigin};
    use crate::store::default_path;
    use serde_json::json;

    fn start(store: &SqliteStore, deployment: i64, run_id: &str, spec_hash: &str) {
        let of = store
            .deployments()
            .expect("deployments")
            .into_iter()
            .find(|d| d.id == deployment)
            .expect("the deployment exists");
        store
            .start_run(&RunStart {
                project: &of.project,
                app: &of.app,
                spec_path: &of.spec_path,
                run_id,
                spec_hash,
                origin: &RunOrigin::Apply,
                snapshot: &json!({ "spec": { "name": "api" } }),
            })
            .expect("run starts");
    }

    /// Walks run `run_id` from `PENDING` to `COMPLETE`.
    fn complete(store: &SqliteStore, deployment: i64, run_id: &str) -> State {
        let mut state = State::Pending;
        for next in [
            State::Validating,
            State::Provisioning,
            State::Deploying,
            State::Verifying,
            State::Complete,
        ] {
            state = store
                .transition(deployment, run_id, (state, next), None, None)
                .expect("allowed");
        }
        state
    }

    fn open_temp() -> (tempfile::TempDir, SqliteStore) {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = SqliteStore::open(&default_path(dir.path())).expect("opens");
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
            .append_event(
                None,
                None,
                &Journal::Destroyed {
                    record: &DestroyRecord::default(),
                },
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
    fn runs_follow_the_state_machine_and_journal_each_transition() {
        let (_dir, store) = open_temp();
        let deployment = store
            .ensure_deployment("p", "api", "api.yaml")
            .expect("deployment");
        start(&store, deployment.id, "run-1", "sha256:x");
        let state = complete(&store, deployment.id, "run-1");
        let refused = store.transition(
            deployment.id,
            "run-1",
            (state, State::Deploying),
            None,
            None,
        );
        assert!(matches!(refused, Err(StoreError::Transition(_))));
        assert_eq!(
            store
                .deployment("p", "api")
                .expect("read")
                .expect("exists")
                .state,
            DeploymentState::Run(State::Complete)
        );
        let transitions: i64 = store
            .connection()
            .query_row(
                "SELECT COUNT(*) FROM events WHERE kind = 'transition'",
                [],
                |r| r.get(0),
            )
            .expect("count");
        assert_eq!(transitions, 5);
    }

    #[test]
    fn intents_precede_outcomes_and_keep_the_previous_desired_state() {
        let (_dir, store) = open_temp();
        let d = store
            .ensure_deployment("p", "api", "api.yaml")
            .expect("deployment")
            .id;
        start(&store, d, "r1", "h1");
        let id = store
            .intend(
                d,
                "r1",
                crate::store::ResourceKey {
                    provider: Role::Dns,
                    kind: "dns-record",
                    name: "api.example.com",
                },
                "fabrik:p/api",
                &json!({ "content": "1.2.3.4" }),
            )
            .expect("intent");
        assert_eq!(
            store.resources(d).expect("rows")[0].status,
            ResourceStatus::Pending
        );
        store
            .record(
                id,
                Some("r1"),
                ResourceStatus::Created,
                Some("zone/rec"),
                Some(&json!({ "zone_id": "zone" })),
            )
            .expect("record");
        complete(&store, d, "r1");
        start(&store, d, "r2", "h2");
        let again = store
            .intend(
                d,
                "r2",
                crate::store::ResourceKey {
                    provider: Role::Dns,
                    kind: "dns-record",
                    name: "api.example.com",
                },
                "fabrik:p/api",
                &json!({ "content": "5.6.7.8" }),
            )
            .expect("intent");
        assert_eq!(again, id, "the same resource row, never a duplicate");
        let row = &store.resources(d).expect("rows")[0];
        assert_eq!(row.status, ResourceStatus::Created);
        assert_eq!(row.previous_desired, Some(json!({ "content": "1.2.3.4" })));
        // A run killed after its intent does not move the restore point: a third intent
        // still restores what the completed run deployed.
        start(&store, d, "r3", "h3");
        store
            .intend(
                d,
                "r3",
                crate::store::ResourceKey {
                    provider: Role::Dns,
                    kind: "dns-record",
                    name: "api.example.com",
                },
                "fabrik:p/api",
                &json!({ "content": "9.9.9.9" }),
            )
            .expect("intent");
        let row = &store.resources(d).expect("rows")[0];
        assert_eq!(row.previous_desired, Some(json!({ "content": "1.2.3.4" })));
        assert_eq!(row.desired, Some(json!({ "content": "9.9.9.9" })));
        assert_eq!(row.created_by_run.as_deref(), Some("r1"));
        let export = store.export().expect("export");
        assert_eq!(export["resources"][0]["external_id"], "zone/rec");
        assert!(export["events"].as_array().is_some_and(|e| e.len() >= 4));
    }

    #[test]
    fn a_version_1_database_is_migrated_on_open_and_keeps_its_data() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = default_path(dir.path());
        std::fs::create_dir_all(path.parent().expect("parent")).expect("dir");
        {
            // A database exactly as the first release of the schema wrote it.
            let conn = Connection::open(&path).expect("open");
            conn.execute_batch(migrations::MIGRATIONS[0]).expect("v1");
            conn.pragma_update(None, "user_version", 1)
                .expect("version");
            conn.execute_batch(
                "INSERT INTO deployments (id, project, app, spec_path, spec_hash, state, created_at, updated_at)
                     VALUES (1, 'p', 'api', 'api.yaml', 'sha256:old', 'COMPLETE', '1', '1');
                 INSERT INTO runs (id, deployment_id, state, spec_hash, started_at, finished_at)
                     VALUES ('old-run', 1, 'COMPLETE', 'sha256:old', '1', '2');
                 INSERT INTO events (deployment_id, run_id, at, kind, data)
                     VALUES (1, 'old-run', '1', 'transition', '{}');",
            )
            .expect("v1 rows");
        }
        let store = SqliteStore::open(&path).expect("migrates");
        let version: i64 = store
            .connection()
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .expect("version");
        assert_eq!(version, migrations::latest());
        let runs = store.runs(1).expect("runs");
        assert_eq!(runs.len(), 1);
        assert_eq!(runs[0].id, "old-run");
        assert_eq!(runs[0].origin, RunOrigin::Apply, "old runs were applies");
        assert_eq!(runs[0].snapshot, None, "v1 kept no snapshot");
        assert_eq!(
            store
                .deployment("p", "api")
                .expect("read")
                .expect("kept")
                .spec_hash
                .as_deref(),
            Some("sha256:old")
        );
        // The migrated schema takes new runs with their snapshots.
        start(&store, 1, "new-run", "sha256:new");
        assert_eq!(
            store.runs(1).expect("runs")[0].snapshot,
            Some(json!({ "spec": { "name": "api" } }))
        );
        // And the journal is still append-only.
        assert!(
            store
                .connection()
                .execute("DELETE FROM events", [])
                .is_err()
        );
    }

    #[test]
    fn many_connections_opening_one_new_file_at_once_all_succeed() {
        for _ in 0..10 {
            let dir = tempfile::tempdir().expect("tempdir");
            let path = default_path(dir.path());
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
        let path = default_path(dir.path());
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
