//! Reading a row, column by column, the same way in every backend: a backend says only how its
//! driver hands over one cell ([`Columns::cell`]), and the decoding of each kind of row into a
//! record is written once, next to the column list it decodes (`PEER_COLUMNS` with
//! [`peer`](super::peer)).

use std::str::FromStr;

/// A column that could not be read as what the decoder expected: a bug or a corrupt row, never
/// the caller's input.
#[derive(Debug, Clone, thiserror::Error)]
#[error("column {index}: {detail}")]
pub struct ColumnError {
    pub index: usize,
    pub detail: String,
}

pub type Col<T> = Result<T, ColumnError>;

/// One value as stored: the only kinds of value switchboard's tables hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cell {
    Null,
    Int(i64),
    Text(String),
    Bool(bool),
    /// Raw bytes (a token's secret hash).
    Bytes(Vec<u8>),
}

/// A shared decoder: one row, read into a record.
pub type Decode<T> = fn(&dyn Columns) -> Col<T>;

/// One row of a result, as a backend's driver returned it. Decoders take `&dyn Columns`, so
/// each is one plain function every backend can pass around.
pub trait Columns {
    fn cell(&self, i: usize) -> Col<Cell>;
}

impl dyn Columns + '_ {
    fn wrong(i: usize, wanted: &str, found: &Cell) -> ColumnError {
        ColumnError {
            index: i,
            detail: format!("expected {wanted}, found {found:?}"),
        }
    }

    /// An integer, or an id (each id type converts from its row's `i64`).
    pub fn opt_int<T: From<i64>>(&self, i: usize) -> Col<Option<T>> {
        match self.cell(i)? {
            Cell::Null => Ok(None),
            Cell::Int(v) => Ok(Some(T::from(v))),
            other => Err(Self::wrong(i, "an integer", &other)),
        }
    }

    pub fn int<T: From<i64>>(&self, i: usize) -> Col<T> {
        self.opt_int(i)?
            .ok_or_else(|| Self::wrong(i, "an integer", &Cell::Null))
    }

    pub fn opt_text(&self, i: usize) -> Col<Option<String>> {
        match self.cell(i)? {
            Cell::Null => Ok(None),
            Cell::Text(v) => Ok(Some(v)),
            other => Err(Self::wrong(i, "text", &other)),
        }
    }

    pub fn text(&self, i: usize) -> Col<String> {
        self.opt_text(i)?
            .ok_or_else(|| Self::wrong(i, "text", &Cell::Null))
    }

    pub fn bytes(&self, i: usize) -> Col<Vec<u8>> {
        match self.cell(i)? {
            Cell::Bytes(v) => Ok(v),
            other => Err(Self::wrong(i, "bytes", &other)),
        }
    }

    /// A truth value; SQLite has no boolean type and stores 0 or 1.
    pub fn flag(&self, i: usize) -> Col<bool> {
        match self.cell(i)? {
            Cell::Bool(v) => Ok(v),
            Cell::Int(v) => Ok(v != 0),
            other => Err(Self::wrong(i, "a truth value", &other)),
        }
    }

    /// A text column read into an enum (a state, a kind); an unknown value is a corrupt row.
    pub fn parsed<T: FromStr>(&self, i: usize) -> Col<T>
    where
        T::Err: std::fmt::Display,
    {
        let raw = self.text(i)?;
        raw.parse().map_err(|e: T::Err| ColumnError {
            index: i,
            detail: format!("unexpected value '{raw}': {e}"),
        })
    }

    /// A text column read into an enum when it is not NULL.
    pub fn opt_parsed<T: FromStr>(&self, i: usize) -> Col<Option<T>>
    where
        T::Err: std::fmt::Display,
    {
        match self.opt_text(i)? {
            Some(_) => self.parsed(i).map(Some),
            None => Ok(None),
        }
    }

    /// A count or attempt number (stored as a 64-bit integer) in the API's type.
    pub fn count(&self, i: usize) -> Col<u32> {
        Ok(u32::try_from(self.int::<i64>(i)?.max(0)).unwrap_or(u32::MAX))
    }

    /// A row count in the API's type (a count is never negative).
    pub fn total(&self, i: usize) -> Col<u64> {
        Ok(u64::try_from(self.int::<i64>(i)?).unwrap_or(0))
    }
}

// The decoders of a statement that reads one or two plain values (an id, a truth, a name).

/// The first column, an integer (an id, a count).
pub fn int<T: From<i64>>(r: &dyn Columns) -> Col<T> {
    r.int(0)
}

/// The first column, a row count.
pub fn total(r: &dyn Columns) -> Col<u64> {
    r.total(0)
}

/// The first column, an integer that may be NULL.
pub fn opt_int<T: From<i64>>(r: &dyn Columns) -> Col<Option<T>> {
    r.opt_int(0)
}

/// The first column, a truth value (an `EXISTS`).
pub fn flag(r: &dyn Columns) -> Col<bool> {
    r.flag(0)
}

/// The first column, text.
pub fn text(r: &dyn Columns) -> Col<String> {
    r.text(0)
}

/// The first two columns, integers (two ids).
pub fn int_pair<A: From<i64>, B: From<i64>>(r: &dyn Columns) -> Col<(A, B)> {
    Ok((r.int(0)?, r.int(1)?))
}
