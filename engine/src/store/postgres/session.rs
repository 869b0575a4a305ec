//! The PostgreSQL connection as a [`Session`] of the store's operations: a [`Cell`] is
//! bound as the type the server inferred for its parameter, and a row's columns are
//! read by their types (the schema has integers and text only).

use std::sync::atomic::{AtomicBool, Ordering};

use tokio_postgres::Client;
use tokio_postgres::types::{IsNull, ToSql, Type, to_sql_checked};

use crate::store::StoreError;
use crate::store::seam::{Cell, Row, Session};

/// A locked connection of the store, and whether a transaction is open on it: an
/// operation whose future was dropped (Ctrl-C) between its `BEGIN` and its end leaves
/// one open, which the next session rolls back before anything else ([`PgSession::new`]).
pub struct PgSession<'a> {
    client: &'a Client,
    open: &'a AtomicBool,
}

impl<'a> PgSession<'a> {
    /// A session on `client`, after rolling back a transaction an abandoned operation
    /// left open.
    pub async fn new(client: &'a Client, open: &'a AtomicBool) -> Result<Self, StoreError> {
        if open.swap(false, Ordering::SeqCst) {
            client.batch_execute("ROLLBACK").await?;
        }
        Ok(Self { client, open })
    }
}

impl ToSql for Cell {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut bytes::BytesMut,
    ) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        match self {
            Cell::Null => Ok(IsNull::Yes),
            Cell::Int(n) if *ty == Type::INT4 => i32::try_from(*n)?.to_sql(ty, out),
            Cell::Int(n) if *ty == Type::INT2 => i16::try_from(*n)?.to_sql(ty, out),
            Cell::Int(n) if *ty == Type::INT8 => n.to_sql(ty, out),
            Cell::Int(n) => n.to_string().to_sql(ty, out),
            Cell::Text(t) if *ty == Type::INT8 => t.parse::<i64>()?.to_sql(ty, out),
            Cell::Text(t) if *ty == Type::INT4 => t.parse::<i32>()?.to_sql(ty, out),
            Cell::Text(t) if *ty == Type::INT2 => t.parse::<i16>()?.to_sql(ty, out),
            Cell::Text(t) => t.as_str().to_sql(ty, out),
        }
    }

    fn accepts(ty: &Type) -> bool {
        matches!(
            *ty,
            Type::INT2
                | Type::INT4
                | Type::INT8
                | Type::TEXT
                | Type::VARCHAR
                | Type::BPCHAR
                | Type::NAME
                | Type::UNKNOWN
        )
    }

    to_sql_checked!();
}

fn row_of(row: &tokio_postgres::Row) -> Result<Row, StoreError> {
    let mut cells = Vec::with_capacity(row.len());
    for (i, column) in row.columns().iter().enumerate() {
        let cell = match *column.type_() {
            Type::INT8 => row.try_get::<_, Option<i64>>(i)?.into(),
            Type::INT4 => row.try_get::<_, Option<i32>>(i)?.map(i64::from).into(),
            Type::INT2 => row.try_get::<_, Option<i16>>(i)?.map(i64::from).into(),
            _ => row.try_get::<_, Option<String>>(i)?.into(),
        };
        cells.push(cell);
    }
    Ok(Row(cells))
}

fn refs(params: &[Cell]) -> Vec<&(dyn ToSql + Sync)> {
    params.iter().map(|c| c as &(dyn ToSql + Sync)).collect()
}

impl Session for PgSession<'_> {
    // Runs started in the same millisecond, in insertion order.
    const RUN_SEQUENCE: &'static str = "seq";

    async fn query(&mut self, sql: &str, params: &[Cell]) -> Result<Vec<Row>, StoreError> {
        self.client
            .query(sql, &refs(params))
            .await?
            .iter()
            .map(row_of)
            .collect()
    }

    async fn execute(&mut self, sql: &str, params: &[Cell]) -> Result<u64, StoreError> {
        Ok(self.client.execute(sql, &refs(params)).await?)
    }

    async fn begin(&mut self) -> Result<(), StoreError> {
        // Marked open before it is sent: a future dropped while BEGIN is on its way
        // leaves a ROLLBACK for the next session, which is harmless if none was open.
        self.open.store(true, Ordering::SeqCst);
        Ok(self.client.batch_execute("BEGIN").await?)
    }

    async fn commit(&mut self) -> Result<(), StoreError> {
        self.client.batch_execute("COMMIT").await?;
        self.open.store(false, Ordering::SeqCst);
        Ok(())
    }

    async fn rollback(&mut self) -> Result<(), StoreError> {
        self.client.batch_execute("ROLLBACK").await?;
        self.open.store(false, Ordering::SeqCst);
        Ok(())
    }

    async fn after_import(&mut self) -> Result<(), StoreError> {
        // Rows came with their ids: the next ones the sequences give must come after.
        for (table, column) in [
            ("deployments", "id"),
            ("resources", "id"),
            ("events", "seq"),
        ] {
            self.client
                .execute(
                    &format!(
                        "SELECT setval(pg_get_serial_sequence('{table}', '{column}'), GREATEST((SELECT MAX({column}) FROM {table}), 1))"
                    ),
                    &[],
                )
                .await?;
        }
        Ok(())
    }
}
