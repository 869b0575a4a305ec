//! One apply per app across machines: a session-level PostgreSQL advisory lock per
//! (schema, project, app), held on a connection of its own for the whole run (never a
//! pooled one). The server releases it when that session ends, however the holder dies
//! or loses its network. A holder row (`lock_holders`) names who holds it; a row whose
//! session is gone is stale and taken over by the next holder.
//!
//! Transaction-mode connection poolers (PgBouncer's `pool_mode = transaction`) hand each
//! statement to any server session: a session lock cannot work through them and they are
//! not supported. Acquiring checks that the lock is seen by the session that took it.

use std::time::{Duration, Instant};

use tokio_postgres::Client;

use super::{AppLockError, Holder};
use crate::machine::{host_name, user_name};
use crate::store::postgres::{PgSettings, connect_client, lock_key};

/// A held lock; released when its connection closes (dropping it closes it).
pub struct PgLock {
    client: Client,
    key: i64,
    project: String,
    app: String,
    /// The row of a holder whose session had ended, if one was taken over.
    pub took_over: Option<Holder>,
}

impl std::fmt::Debug for PgLock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgLock")
            .field("project", &self.project)
            .field("app", &self.app)
            .finish_non_exhaustive()
    }
}

/// The lock key of `app` in `project` and `schema`: distinct for projects sharing a
/// database.
pub fn app_key(schema: &str, project: &str, app: &str) -> i64 {
    lock_key("app", &format!("{schema}/{project}/{app}"))
}

fn database_error(app: &str, error: impl std::fmt::Display) -> AppLockError {
    AppLockError::Database {
        app: app.to_owned(),
        message: error.to_string(),
    }
}

/// A PostgreSQL error of the lock, with the server's own words (tokio-postgres alone
/// says "db error").
fn pg_error(app: &str, error: &tokio_postgres::Error) -> AppLockError {
    database_error(app, crate::store::postgres::describe(error))
}

async fn holder_row(
    client: &Client,
    project: &str,
    app: &str,
) -> Result<Option<(Holder, i32)>, tokio_postgres::Error> {
    let row = client
        .query_opt(
            "SELECT host, pid, os_user, run_id, since, backend_pid FROM lock_holders
             WHERE project = $1 AND app = $2",
            &[&project, &app],
        )
        .await?;
    Ok(row.map(|row| {
        let holder = Holder {
            host: row.get(0),
            pid: u32::try_from(row.get::<_, i64>(1)).unwrap_or_default(),
            user: row.get(2),
            run_id: row.get(3),
            started_at: u64::try_from(row.get::<_, i64>(4)).unwrap_or_default(),
        };
        (holder, row.get(5))
    }))
}

/// The session holding the advisory lock `key`, if any.
async fn holding_session(client: &Client, key: i64) -> Result<Option<i32>, tokio_postgres::Error> {
    Ok(client
        .query_opt(
            "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted
                 AND objid = ($1::bigint & 4294967295)::oid
                 AND classid = (($1::bigint >> 32) & 4294967295)::oid",
            &[&key],
        )
        .await?
        .map(|row| row.get(0)))
}

/// How long a refused apply waits for the new holder to write its row.
const RECORD_GRACE: Duration = Duration::from_secs(2);

/// The holder of a lock someone else holds. The holder writes its row just after taking
/// the lock, so for a moment there is none, or the row of a previous holder whose session
/// ended: read again until the row names the session that holds the lock.
async fn current_holder(
    client: &Client,
    project: &str,
    app: &str,
    key: i64,
) -> Result<Option<Holder>, tokio_postgres::Error> {
    let started = Instant::now();
    loop {
        let row = holder_row(client, project, app).await?;
        let holding = holding_session(client, key).await?;
        match (row, holding) {
            (Some((holder, pid)), Some(holding)) if pid == holding => return Ok(Some(holder)),
            _ if started.elapsed() >= RECORD_GRACE => return Ok(None),
            _ => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
}

/// Whether the session `backend_pid` still exists.
async fn session_alive(client: &Client, backend_pid: i32) -> Result<bool, tokio_postgres::Error> {
    Ok(client
        .query_opt(
            "SELECT 1 FROM pg_stat_activity WHERE pid = $1",
            &[&backend_pid],
        )
        .await?
        .is_some())
}

/// How long a lock's session has to answer [`PgLock::confirm`].
pub const CONFIRM_TIMEOUT: Duration = Duration::from_secs(10);

impl PgLock {
    /// Takes the lock of `app`, waiting up to `timeout`; a refusal names the holder.
    pub async fn acquire(
        settings: &PgSettings,
        project: &str,
        app: &str,
        run_id: &str,
        timeout: Duration,
    ) -> Result<Self, AppLockError> {
        let error = |e: crate::store::StoreError| database_error(app, e);
        let client = connect_client(settings).await.map_err(error)?;
        let key = app_key(&settings.schema, project, app);
        let started = Instant::now();
        loop {
            let got: bool = client
                .query_one("SELECT pg_try_advisory_lock($1)", &[&key])
                .await
                .map_err(|e| pg_error(app, &e))?
                .get(0);
            if got {
                break;
            }
            if started.elapsed() >= timeout {
                let waited = started.elapsed();
                let holder = current_holder(&client, project, app, key)
                    .await
                    .map_err(|e| pg_error(app, &e))?;
                return Err(match holder {
                    Some(holder) => AppLockError::Held {
                        app: app.to_owned(),
                        holder: Box::new(holder),
                        waited,
                    },
                    None => AppLockError::HeldBySession {
                        app: app.to_owned(),
                        waited,
                    },
                });
            }
            tokio::time::sleep(Duration::from_millis(100).min(timeout)).await;
        }
        // A transaction-mode pooler would run the next statement on another session,
        // which does not hold the lock: refuse rather than lock nothing.
        let held: bool = client
            .query_one(
                "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory'
                     AND pid = pg_backend_pid() AND granted
                     AND objid = ($1::bigint & 4294967295)::oid)",
                &[&key],
            )
            .await
            .map_err(|e| pg_error(app, &e))?
            .get(0);
        if !held {
            return Err(database_error(
                app,
                "the lock is not held by the session that took it: a transaction-mode connection pooler is between fabrik and PostgreSQL, which is not supported (connect to the server or a session-mode pool)",
            ));
        }
        // The lock was free: a row still there belongs to a session that ended.
        let took_over = holder_row(&client, project, app)
            .await
            .map_err(|e| pg_error(app, &e))?
            .map(|(holder, _)| holder);
        let since = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_secs()).unwrap_or_default())
            .unwrap_or_default();
        client
            .execute(
                "INSERT INTO lock_holders (project, app, host, pid, os_user, run_id, since, backend_pid)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, pg_backend_pid())
                 ON CONFLICT (project, app) DO UPDATE SET host = excluded.host, pid = excluded.pid,
                     os_user = excluded.os_user, run_id = excluded.run_id, since = excluded.since,
                     backend_pid = excluded.backend_pid",
                &[
                    &project,
                    &app,
                    &host_name(),
                    &i64::from(std::process::id()),
                    &user_name(),
                    &run_id,
                    &since,
                ],
            )
            .await
            .map_err(|e| pg_error(app, &e))?;
        Ok(Self {
            client,
            key,
            project: project.to_owned(),
            app: app.to_owned(),
            took_over,
        })
    }

    /// Whether the lock's session is alive, by a round trip bounded by
    /// [`CONFIRM_TIMEOUT`]: a session alive holds its advisory lock (only it can release
    /// it), one that ended (`pg_terminate_backend`, a restart, a network cut) does not.
    pub async fn confirm(&self) -> bool {
        if self.client.is_closed() {
            return false;
        }
        matches!(
            tokio::time::timeout(CONFIRM_TIMEOUT, self.client.simple_query("SELECT 1")).await,
            Ok(Ok(_))
        )
    }

    /// Releases the lock and clears the holder row.
    pub async fn release(self) {
        let _ = self
            .client
            .execute(
                "DELETE FROM lock_holders WHERE project = $1 AND app = $2 AND backend_pid = pg_backend_pid()",
                &[&self.project, &self.app],
            )
            .await;
        let _ = self
            .client
            .execute("SELECT pg_advisory_unlock($1)", &[&self.key])
            .await;
    }
}

/// Whether a session holds `app`'s lock, from the server's lock table: read-only.
pub async fn activity(
    settings: &PgSettings,
    project: &str,
    app: &str,
) -> Result<super::Activity, AppLockError> {
    let client = connect_client(settings)
        .await
        .map_err(|e| database_error(app, e))?;
    let key = app_key(&settings.schema, project, app);
    let held = holding_session(&client, key)
        .await
        .map_err(|e| pg_error(app, &e))?;
    Ok(if held.is_some() {
        super::Activity::Running
    } else {
        super::Activity::Gone
    })
}

/// What `fabrik unlock` found and did.
#[derive(Debug, PartialEq, Eq)]
pub enum Unlocked {
    /// Nobody held the lock; a stale holder row (if any) was cleared.
    Free { stale: Option<Holder> },
    /// A live session holds it; nothing was done (without `force`).
    Held { holder: Option<Holder> },
    /// `force`: the holder's session was ended; the server released its lock.
    Ended { holder: Option<Holder> },
}

/// `fabrik unlock` for the team's locks: clears a stale holder row; with `force`, ends
/// the session of a live holder (the server then releases its lock and that run stops
/// before its next provider call).
pub async fn unlock(
    settings: &PgSettings,
    project: &str,
    app: &str,
    force: bool,
) -> Result<Unlocked, AppLockError> {
    let error = |e: crate::store::StoreError| database_error(app, e);
    let client = connect_client(settings).await.map_err(error)?;
    let key = app_key(&settings.schema, project, app);
    let got: bool = client
        .query_one("SELECT pg_try_advisory_lock($1)", &[&key])
        .await
        .map_err(|e| pg_error(app, &e))?
        .get(0);
    let row = holder_row(&client, project, app)
        .await
        .map_err(|e| pg_error(app, &e))?;
    if got {
        client
            .execute(
                "DELETE FROM lock_holders WHERE project = $1 AND app = $2",
                &[&project, &app],
            )
            .await
            .map_err(|e| pg_error(app, &e))?;
        return Ok(Unlocked::Free {
            stale: row.map(|(holder, _)| holder),
        });
    }
    let (holder, backend_pid) = match row {
        Some((holder, pid)) => (Some(holder), Some(pid)),
        None => (None, None),
    };
    if !force {
        return Ok(Unlocked::Held { holder });
    }
    // The session that holds the advisory lock, whatever the row says.
    let backend_pid = holding_session(&client, key)
        .await
        .map_err(|e| pg_error(app, &e))?
        .or(backend_pid);
    if let Some(pid) = backend_pid
        && session_alive(&client, pid)
            .await
            .map_err(|e| pg_error(app, &e))?
    {
        client
            .execute("SELECT pg_terminate_backend($1)", &[&pid])
            .await
            .map_err(|e| pg_error(app, &e))?;
    }
    Ok(Unlocked::Ended { holder })
}
