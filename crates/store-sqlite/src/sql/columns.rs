//! How the shared row decoders of [`switchboard_core::seam`] read this driver's rows.

use rusqlite::Row;
use rusqlite::types::{Type, ValueRef};

use switchboard_core::seam::{Cell, Col, ColumnError, Columns, Decode};

/// A SQLite row seen as [`Columns`].
struct Cols<'a, 'r>(&'a Row<'r>);

impl Columns for Cols<'_, '_> {
    fn cell(&self, index: usize) -> Col<Cell> {
        let fail = |detail: String| ColumnError { index, detail };
        Ok(
            match self.0.get_ref(index).map_err(|e| fail(e.to_string()))? {
                ValueRef::Null => Cell::Null,
                ValueRef::Integer(v) => Cell::Int(v),
                ValueRef::Text(t) => Cell::Text(
                    std::str::from_utf8(t)
                        .map_err(|e| fail(e.to_string()))?
                        .to_owned(),
                ),
                ValueRef::Blob(b) => Cell::Bytes(b.to_vec()),
                ValueRef::Real(_) => {
                    return Err(fail("not a switchboard value".into()));
                }
            },
        )
    }
}

/// A row mapper for rusqlite's `query_row`/`query_map` from a shared decoder.
pub fn read<T>(decode: Decode<T>) -> impl Fn(&Row<'_>) -> rusqlite::Result<T> {
    move |r| {
        decode(&Cols(r)).map_err(|e| {
            rusqlite::Error::FromSqlConversionFailure(e.index, Type::Null, Box::new(e))
        })
    }
}
