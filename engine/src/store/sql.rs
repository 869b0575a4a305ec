//! How the engine's types are written to and read from SQL columns: by their stored
//! names, and a name that is not one of the type's values is an error, never a guess.

use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ToSql, ToSqlOutput, ValueRef};

use crate::domain::{DeploymentState, ResourceStatus, Role, RunOrigin, State};

macro_rules! text_column {
    ($($ty:ty),*) => {$(
        impl ToSql for $ty {
            fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
                Ok(ToSqlOutput::from(self.as_str()))
            }
        }

        impl FromSql for $ty {
            fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
                value
                    .as_str()?
                    .parse()
                    .map_err(|e| FromSqlError::Other(Box::new(e)))
            }
        }
    )*};
}

text_column!(State, DeploymentState, ResourceStatus, Role);

/// A run's origin from its two columns (`origin`, `restores_run`) at `index`.
pub(super) fn origin(
    name: String,
    restores: Option<String>,
    index: usize,
) -> rusqlite::Result<RunOrigin> {
    RunOrigin::from_stored(&name, restores).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(index, rusqlite::types::Type::Text, Box::new(e))
    })
}
