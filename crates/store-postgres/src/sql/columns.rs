//! How the shared row decoders of [`switchboard_core::seam`] read this driver's rows.

use tokio_postgres::Row;
use tokio_postgres::types::Type;

use switchboard_core::seam::{Cell, Col, ColumnError, Columns, Decode};

use crate::fault::OpResult;

/// A Postgres row seen as [`Columns`]. Postgres types each column, so the cell is read as the
/// column's type says (every integer column is BIGINT).
struct Cols<'a>(&'a Row);

impl Columns for Cols<'_> {
    fn cell(&self, index: usize) -> Col<Cell> {
        let fail = |e: tokio_postgres::Error| ColumnError {
            index,
            detail: e.to_string(),
        };
        let Some(column) = self.0.columns().get(index) else {
            return Err(ColumnError {
                index,
                detail: "no such column".into(),
            });
        };
        let ty = column.type_();
        let cell = if *ty == Type::BOOL {
            self.0
                .try_get::<_, Option<bool>>(index)
                .map_err(fail)?
                .map(Cell::Bool)
        } else if *ty == Type::INT8 || *ty == Type::INT4 {
            let v: Option<i64> = match *ty == Type::INT4 {
                true => self
                    .0
                    .try_get::<_, Option<i32>>(index)
                    .map_err(fail)?
                    .map(i64::from),
                false => self.0.try_get(index).map_err(fail)?,
            };
            v.map(Cell::Int)
        } else if *ty == Type::BYTEA {
            self.0
                .try_get::<_, Option<Vec<u8>>>(index)
                .map_err(fail)?
                .map(Cell::Bytes)
        } else {
            self.0
                .try_get::<_, Option<String>>(index)
                .map_err(fail)?
                .map(Cell::Text)
        };
        Ok(cell.unwrap_or(Cell::Null))
    }
}

/// One row through a shared decoder.
pub fn read<T>(row: &Row, decode: Decode<T>) -> OpResult<T> {
    Ok(decode(&Cols(row))?)
}
