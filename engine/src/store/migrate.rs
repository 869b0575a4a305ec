//! `fabrik state migrate`: copying a whole state from one backend to the other (SQLite to
//! PostgreSQL when a team starts sharing a project, and back), verified row by row, the
//! source left untouched.

use serde_json::{Map, Value};

use super::{Store, StoreError};

/// Why a state could not be copied.
#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(
        "{target} already holds a state ({deployments} deployment(s)); nothing was copied\n  hint: copy into an empty schema or file"
    )]
    TargetNotEmpty { target: String, deployments: usize },
    #[error("the copy in {target} does not match the source ({what}); the source is unchanged")]
    Mismatch { target: String, what: String },
}

/// What was copied: rows per table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Copied {
    pub deployments: usize,
    pub runs: usize,
    pub resources: usize,
    pub events: usize,
}

/// The tables of a dump in the order their references need, with their rows.
pub(super) fn tables(dump: &Value) -> Vec<(&'static str, Vec<&Map<String, Value>>)> {
    ["deployments", "runs", "resources", "events"]
        .into_iter()
        .map(|table| {
            let rows = dump[table]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_object)
                .collect();
            (table, rows)
        })
        .collect()
}

/// The runs that are rollbacks, with the run each restores (written after every run).
pub(super) fn restores(dump: &Value) -> Vec<(String, String)> {
    dump["runs"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|run| {
            Some((
                run["id"].as_str()?.to_owned(),
                run["restores_run"].as_str()?.to_owned(),
            ))
        })
        .collect()
}

/// `INSERT INTO table (columns) VALUES ($1, …)`.
pub(super) fn insert_sql(table: &str, columns: &[&String]) -> String {
    let names: Vec<&str> = columns.iter().map(|c| c.as_str()).collect();
    let values: Vec<String> = (1..=columns.len()).map(|i| format!("${i}")).collect();
    format!(
        "INSERT INTO {table} ({}) VALUES ({})",
        names.join(", "),
        values.join(", ")
    )
}

fn count(dump: &Value, table: &str) -> usize {
    dump[table].as_array().map_or(0, Vec::len)
}

/// What must be equal in both: every row of every table (the journal included, in
/// order), with the columns both backends have.
fn comparable(dump: &Value) -> Value {
    let mut out = Map::new();
    for (table, mut rows) in tables(dump) {
        // Each backend lists rows in its own order: compare them by their key.
        let key = if table == "events" { "seq" } else { "id" };
        rows.sort_by_key(|row| row.get(key).map(ToString::to_string).unwrap_or_default());
        out.insert(
            table.to_owned(),
            Value::Array(rows.into_iter().map(|r| Value::Object(r.clone())).collect()),
        );
    }
    Value::Object(out)
}

/// Copies everything in `from` into `to`, which must be empty, and checks the copy.
/// `from` is only read.
pub async fn copy(from: &Store, to: &Store) -> Result<Copied, MigrateError> {
    let existing = to.deployments().await?.len();
    if existing > 0 {
        return Err(MigrateError::TargetNotEmpty {
            target: to.location(),
            deployments: existing,
        });
    }
    let dump = from.export().await?;
    to.import(&dump).await?;
    let copy = to.export().await?;
    if comparable(&copy) != comparable(&dump) {
        let what = ["deployments", "runs", "resources", "events"]
            .into_iter()
            .find(|t| copy[*t] != dump[*t])
            .map_or_else(
                || "the rows differ".to_owned(),
                |t| {
                    format!(
                        "table {t}: {} row(s) copied of {}",
                        count(&copy, t),
                        count(&dump, t)
                    )
                },
            );
        return Err(MigrateError::Mismatch {
            target: to.location(),
            what,
        });
    }
    Ok(Copied {
        deployments: count(&dump, "deployments"),
        runs: count(&dump, "runs"),
        resources: count(&dump, "resources"),
        events: count(&dump, "events"),
    })
}
