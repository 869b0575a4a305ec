//! Numbered schema migrations. The schema version is SQLite's `user_version`; a
//! migration is never edited once released, only added.

/// Migration `n` (1-based) brings the schema from version `n - 1` to `n`.
pub const MIGRATIONS: &[&str] = &[
    // 1: deployments, runs, resources, append-only events.
    r"
CREATE TABLE deployments (
    id          INTEGER PRIMARY KEY,
    project     TEXT NOT NULL,
    app         TEXT NOT NULL,
    spec_path   TEXT NOT NULL,
    spec_hash   TEXT,
    state       TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL,
    UNIQUE (project, app)
);

CREATE TABLE runs (
    id             TEXT PRIMARY KEY,
    deployment_id  INTEGER NOT NULL REFERENCES deployments (id),
    state          TEXT NOT NULL,
    spec_hash      TEXT NOT NULL,
    started_at     TEXT NOT NULL,
    finished_at    TEXT,
    reason         TEXT
);

CREATE TABLE resources (
    id                INTEGER PRIMARY KEY,
    deployment_id     INTEGER NOT NULL REFERENCES deployments (id),
    provider          TEXT NOT NULL,
    kind              TEXT NOT NULL,
    name              TEXT NOT NULL,
    external_id       TEXT,
    owner             TEXT NOT NULL,
    status            TEXT NOT NULL CHECK (status IN ('pending', 'created', 'updated', 'adopted', 'deleted')),
    desired           TEXT,
    previous_desired  TEXT,
    outputs           TEXT,
    created_by_run    TEXT REFERENCES runs (id),
    changed_by_run    TEXT REFERENCES runs (id),
    updated_at        TEXT NOT NULL,
    UNIQUE (deployment_id, provider, kind, name)
);

CREATE TABLE events (
    seq            INTEGER PRIMARY KEY AUTOINCREMENT,
    deployment_id  INTEGER REFERENCES deployments (id),
    run_id         TEXT REFERENCES runs (id),
    at             TEXT NOT NULL,
    kind           TEXT NOT NULL,
    data           TEXT NOT NULL
);

-- The journal is append-only, enforced by the database and not only by the code.
CREATE TRIGGER events_are_append_only_update BEFORE UPDATE ON events
BEGIN SELECT RAISE(ABORT, 'events are append-only'); END;
CREATE TRIGGER events_are_append_only_delete BEFORE DELETE ON events
BEGIN SELECT RAISE(ABORT, 'events are append-only'); END;
",
    // 2: what each run deployed, so that `fabrik rollback` can deploy it again, and why the
    // run was started. The snapshot holds the validated spec, the rendered compose document
    // and keyed secret fingerprints: never a secret value.
    r"
ALTER TABLE runs ADD COLUMN origin TEXT NOT NULL DEFAULT 'apply' CHECK (origin IN ('apply', 'rollback'));
ALTER TABLE runs ADD COLUMN restores_run TEXT REFERENCES runs (id);
ALTER TABLE runs ADD COLUMN snapshot TEXT;
",
    // 3: environments. An app in an environment of its spec is a deployment of its own,
    // keyed by project, app and environment ('' for an app without environments: every
    // deployment before this version). A run may be a promotion, deploying what a run of
    // another environment verified (`restores_run` names that run). SQLite changes a
    // constraint only by rebuilding the table; rows keep their ids and their order, and
    // the foreign keys, checked before the commit, still hold (`sqlite.rs`'s `migrate`).
    r"
CREATE TABLE deployments_v3 (
    id           INTEGER PRIMARY KEY,
    project      TEXT NOT NULL,
    app          TEXT NOT NULL,
    environment  TEXT NOT NULL DEFAULT '',
    spec_path    TEXT NOT NULL,
    spec_hash    TEXT,
    state        TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    updated_at   TEXT NOT NULL,
    UNIQUE (project, app, environment)
);
INSERT INTO deployments_v3 (id, project, app, spec_path, spec_hash, state, created_at, updated_at)
    SELECT id, project, app, spec_path, spec_hash, state, created_at, updated_at FROM deployments ORDER BY id;
DROP TABLE deployments;
ALTER TABLE deployments_v3 RENAME TO deployments;

CREATE TABLE runs_v3 (
    id             TEXT PRIMARY KEY,
    deployment_id  INTEGER NOT NULL REFERENCES deployments (id),
    state          TEXT NOT NULL,
    spec_hash      TEXT NOT NULL,
    started_at     TEXT NOT NULL,
    finished_at    TEXT,
    reason         TEXT,
    origin         TEXT NOT NULL DEFAULT 'apply' CHECK (origin IN ('apply', 'rollback', 'promotion')),
    restores_run   TEXT REFERENCES runs (id),
    snapshot       TEXT
);
INSERT INTO runs_v3 (id, deployment_id, state, spec_hash, started_at, finished_at, reason, origin, restores_run, snapshot)
    SELECT id, deployment_id, state, spec_hash, started_at, finished_at, reason, origin, restores_run, snapshot FROM runs ORDER BY rowid;
DROP TABLE runs;
ALTER TABLE runs_v3 RENAME TO runs;
",
];

/// The schema version this build writes.
pub fn latest() -> i64 {
    i64::try_from(MIGRATIONS.len()).unwrap_or(i64::MAX)
}
