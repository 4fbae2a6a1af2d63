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
    /// Rows of other tables that reference the chosen rows through a foreign key with
    /// ON DELETE CASCADE (and their own such rows, a few levels deep): deleting the chosen
    /// rows deleted these too.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cascaded: Vec<CascadedRows>,
}

/// The rows of one table that a cascade from the chosen rows reaches.
#[derive(Debug, Default, Serialize)]
pub struct CascadedRows {
    pub table: String,
    /// The foreign key: `orders(customer_id) -> customers(id)`.
    pub via: String,
    /// Rows of the old state that the cascade reaches.
    pub rows: u64,
    /// Of those: missing from the live table (put back with `--with-children`), and
    /// present but different (left as they are: someone changed them since).
    pub missing: u64,
    pub different: u64,
    pub applied: bool,
}

/// How deep a chain of cascades is followed (customers -> orders -> order_items ...).
pub const MAX_CASCADE_DEPTH: usize = 8;

/// One foreign key with ON DELETE CASCADE, as both engines' catalogs describe it.
#[derive(Debug, Clone)]
pub struct Cascade {
    pub child: String,
    pub child_columns: Vec<String>,
    pub parent: String,
    pub parent_columns: Vec<String>,
}

impl Cascade {
    pub fn describe(&self) -> String {
        format!(
            "{}({}) -> {}({})",
            self.child,
            self.child_columns.join(", "),
            self.parent,
            self.parent_columns.join(", ")
        )
    }
}

/// The rows a cascade reaches, when they could be read and matched; a child table that
/// cannot (it changed shape since) fails only when they are to be put back, and is
/// otherwise left out of the count.
pub fn reached<T>(
    cascade: &Cascade,
    child: crate::Result<T>,
    with_children: bool,
) -> crate::Result<Option<T>> {
    match child {
        Ok(child) => Ok(Some(child)),
        Err(e) if with_children => Err(crate::SourceError::Invalid(format!(
            "cannot put back the rows a cascade reaches through {}: {e}",
            cascade.describe()
        ))),
        Err(e) => {
            tracing::info!("{}: {e}", cascade.describe());
            Ok(None)
        }
    }
}

/// The cascades that reach from `table`, breadth first, each with the index (in the
/// returned list) of the cascade that reached its parent, `None` for `table` itself. A
/// table is visited once, so a self-reference or a cycle ends there.
pub fn cascade_chain<'a>(
    table: &str,
    cascades: &'a [Cascade],
) -> Vec<(Option<usize>, &'a Cascade)> {
    let mut seen = vec![table.to_string()];
    let mut chain: Vec<(Option<usize>, &Cascade)> = Vec::new();
    let mut frontier: Vec<(String, Option<usize>)> = vec![(table.to_string(), None)];
    for _ in 0..MAX_CASCADE_DEPTH {
        let mut next = Vec::new();
        for (parent, reached_by) in &frontier {
            for cascade in cascades.iter().filter(|c| &c.parent == parent) {
                if seen.contains(&cascade.child) {
                    continue;
                }
                seen.push(cascade.child.clone());
                chain.push((*reached_by, cascade));
                next.push((cascade.child.clone(), Some(chain.len() - 1)));
            }
        }
        if next.is_empty() {
            break;
        }
        frontier = next;
    }
    chain
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cascade(child: &str, parent: &str) -> Cascade {
        Cascade {
            child: child.into(),
            child_columns: vec![format!("{parent}_id")],
            parent: parent.into(),
            parent_columns: vec!["id".into()],
        }
    }

    #[test]
    fn a_chain_of_cascades_is_followed_once_per_table() {
        let all = [
            cascade("orders", "customers"),
            cascade("items", "orders"),
            cascade("customers", "customers"),
            cascade("notes", "items"),
            cascade("orders", "items"),
            cascade("unrelated", "products"),
        ];
        let chain = cascade_chain("customers", &all);
        let named: Vec<(Option<usize>, &str)> = chain
            .iter()
            .map(|(by, c)| (*by, c.child.as_str()))
            .collect();
        assert_eq!(
            named,
            vec![(None, "orders"), (Some(0), "items"), (Some(1), "notes")]
        );
        assert_eq!(
            chain[0].1.describe(),
            "orders(customers_id) -> customers(id)"
        );
    }
}
