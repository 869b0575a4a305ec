//! The seam between the store's meaning (`operations`) and its two backends: a session
//! that runs one SQL text on either, with the same values in and out. Statements are
//! written once, with PostgreSQL's `$1` parameters (SQLite reads them as `?1`, the same
//! numbered parameter); the schema has only integers and text, so a value is one of
//! those or NULL. What differs between the backends stays behind this trait: the
//! connection, the column that orders runs started in the same millisecond, how a
//! transaction starts.

use super::StoreError;

/// A value bound to a statement or read from a row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cell {
    Null,
    Int(i64),
    Text(String),
}

impl From<i64> for Cell {
    fn from(value: i64) -> Self {
        Cell::Int(value)
    }
}

impl From<&str> for Cell {
    fn from(value: &str) -> Self {
        Cell::Text(value.to_owned())
    }
}

impl From<String> for Cell {
    fn from(value: String) -> Self {
        Cell::Text(value)
    }
}

impl<T: Into<Cell>> From<Option<T>> for Cell {
    fn from(value: Option<T>) -> Self {
        value.map_or(Cell::Null, Into::into)
    }
}

/// One row, its cells in the order the statement selected them.
#[derive(Debug, Clone, Default)]
pub struct Row(pub Vec<Cell>);

impl Row {
    fn cell(&self, index: usize) -> Result<&Cell, StoreError> {
        self.0
            .get(index)
            .ok_or_else(|| unreadable(index, "missing"))
    }

    pub fn int(&self, index: usize) -> Result<i64, StoreError> {
        match self.cell(index)? {
            Cell::Int(n) => Ok(*n),
            Cell::Text(t) => t.parse().map_err(|_| unreadable(index, "not an integer")),
            Cell::Null => Err(unreadable(index, "null")),
        }
    }

    pub fn text(&self, index: usize) -> Result<String, StoreError> {
        self.opt_text(index)?
            .ok_or_else(|| unreadable(index, "null"))
    }

    pub fn opt_text(&self, index: usize) -> Result<Option<String>, StoreError> {
        Ok(match self.cell(index)? {
            Cell::Null => None,
            Cell::Int(n) => Some(n.to_string()),
            Cell::Text(t) => Some(t.clone()),
        })
    }

    /// A column holding one of a type's stored names (a state, a status, a role).
    pub fn parsed<T>(&self, index: usize) -> Result<T, StoreError>
    where
        T: std::str::FromStr<Err = crate::domain::UnknownName>,
    {
        Ok(self.text(index)?.parse()?)
    }
}

fn unreadable(index: usize, what: &str) -> StoreError {
    StoreError::Column {
        index,
        problem: what.to_owned(),
    }
}

/// One connection of a backend, one statement at a time.
pub trait Session {
    /// The column that orders rows of `runs` inserted in the same millisecond.
    const RUN_SEQUENCE: &'static str;

    async fn query(&mut self, sql: &str, params: &[Cell]) -> Result<Vec<Row>, StoreError>;

    async fn execute(&mut self, sql: &str, params: &[Cell]) -> Result<u64, StoreError>;

    /// Starts a transaction that takes the write lock at once.
    async fn begin(&mut self) -> Result<(), StoreError>;

    async fn commit(&mut self) -> Result<(), StoreError>;

    async fn rollback(&mut self) -> Result<(), StoreError>;

    /// Whatever a backend must do after rows were written with their ids
    /// (`import`): PostgreSQL moves its sequences past them.
    async fn after_import(&mut self) -> Result<(), StoreError> {
        Ok(())
    }

    /// The first row, if any.
    async fn query_opt(&mut self, sql: &str, params: &[Cell]) -> Result<Option<Row>, StoreError> {
        Ok(self.query(sql, params).await?.into_iter().next())
    }
}

/// Runs `body` in one transaction: committed if it succeeds, rolled back if it fails
/// (or if the process dies before the commit: the database then never saw it).
pub async fn transaction<S: Session, T>(
    session: &mut S,
    body: impl AsyncFnOnce(&mut S) -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    session.begin().await?;
    match body(session).await {
        Ok(value) => match session.commit().await {
            Ok(()) => Ok(value),
            Err(error) => {
                // A commit that failed (a full disk) may leave the transaction open:
                // every later write would join it and be lost.
                let _ = session.rollback().await;
                Err(error)
            }
        },
        Err(error) => {
            // The error that stopped the body is the one worth telling.
            let _ = session.rollback().await;
            Err(error)
        }
    }
}
