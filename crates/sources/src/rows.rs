//! Row-level answers shared by the databases that have them (SQLite, PostgreSQL): which
//! rows changed between two restore points, and what putting old rows back would do.

use serde::Serialize;

/// The changes to one table between the old and the new state.
#[derive(Debug, Default, Serialize)]
pub struct TableDiff {
    pub table: String,
    /// Primary key columns (`rowid` for SQLite tables without one; every column for
    /// PostgreSQL tables without one, whose rows can only be inserted or deleted).
    pub key: Vec<String>,
    pub inserted: Vec<serde_json::Value>,
    /// `{"before": row, "after": row}` for each row whose key stayed and values changed.
    pub updated: Vec<serde_json::Value>,
    pub deleted: Vec<serde_json::Value>,
    /// Set when the table's columns differ between the states: rows are not compared.
    pub schema_changed: Option<String>,
}

impl TableDiff {
    pub fn is_empty(&self) -> bool {
        self.schema_changed.is_none()
            && self.inserted.is_empty()
            && self.updated.is_empty()
            && self.deleted.is_empty()
    }
}

/// What restoring rows would do, or did.
#[derive(Debug, Default, Serialize)]
pub struct RowsRestore {
    pub table: String,
    /// Rows of the old state that match the condition.
    pub rows: Vec<serde_json::Value>,
    /// Of those: missing from the live table (inserted back), and different there
    /// (set back to their old values).
    pub missing: u64,
    pub different: u64,
    pub applied: bool,
}
