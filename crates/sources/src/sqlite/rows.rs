//! Rows between two states of one SQLite database: which rows were inserted, updated and
//! deleted (by primary key), and putting chosen rows of an old state back into the live
//! database in one transaction.
//!
//! Both work on an attached copy restored from the repository, so the live database is
//! only read (diff) or written in one short transaction (restore-rows).

use std::path::Path;

use rusqlite::types::Value;
use rusqlite::Connection;
use serde_json::{json, Map};

use crate::rows::{cascade_chain, reached, Cascade, CascadedRows, RowsRestore, TableDiff};
use crate::{Result, SourceError};

fn error(path: &Path, what: &str, e: rusqlite::Error) -> SourceError {
    SourceError::Invalid(format!("{}: {what}: {e}", path.display()))
}

fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

fn to_json(value: Value) -> serde_json::Value {
    match value {
        Value::Null => serde_json::Value::Null,
        Value::Integer(n) => json!(n),
        Value::Real(x) => json!(x),
        Value::Text(t) => json!(t),
        Value::Blob(b) => json!({ "hex": hex::encode(b) }),
    }
}

/// The user tables of schema `schema` (`main` or an attached name).
fn tables(db: &Connection, schema: &str) -> rusqlite::Result<Vec<String>> {
    let sql = format!(
        "SELECT name FROM {schema}.sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name"
    );
    let mut stmt = db.prepare(&sql)?;
    let names = stmt.query_map([], |r| r.get(0))?.collect();
    names
}

/// (column, declared type, primary key position) of a table.
fn columns(
    db: &Connection,
    schema: &str,
    table: &str,
) -> rusqlite::Result<Vec<(String, String, i64)>> {
    let sql = format!("PRAGMA {schema}.table_info({})", quote(table));
    let mut stmt = db.prepare(&sql)?;
    let cols = stmt
        .query_map([], |r| Ok((r.get(1)?, r.get(2)?, r.get(5)?)))?
        .collect();
    cols
}

fn key_of(columns: &[(String, String, i64)]) -> Vec<String> {
    let mut keyed: Vec<&(String, String, i64)> = columns.iter().filter(|c| c.2 > 0).collect();
    keyed.sort_by_key(|c| c.2);
    if keyed.is_empty() {
        vec!["rowid".into()]
    } else {
        keyed.into_iter().map(|c| c.0.clone()).collect()
    }
}

fn rows(db: &Connection, sql: &str, names: &[String]) -> rusqlite::Result<Vec<serde_json::Value>> {
    let mut stmt = db.prepare(sql)?;
    let mut out = Vec::new();
    let mut rows = stmt.query([])?;
    while let Some(row) = rows.next()? {
        let mut object = Map::new();
        for (i, name) in names.iter().enumerate() {
            object.insert(name.clone(), to_json(row.get::<_, Value>(i)?));
        }
        out.push(serde_json::Value::Object(object));
    }
    Ok(out)
}

/// Compares `old` with `new` (both restored copies), table by table (`only` limits it).
pub fn diff(old: &Path, new: &Path, only: Option<&str>) -> Result<Vec<TableDiff>> {
    let db = Connection::open(new).map_err(|e| error(new, "cannot open", e))?;
    db.execute("ATTACH DATABASE ?1 AS old", [old.display().to_string()])
        .map_err(|e| error(old, "cannot attach", e))?;
    let run = || -> rusqlite::Result<Vec<TableDiff>> {
        let mut names = tables(&db, "main")?;
        for name in tables(&db, "old")? {
            if !names.contains(&name) {
                names.push(name);
            }
        }
        let mut diffs = Vec::new();
        for table in names.into_iter().filter(|t| only.is_none_or(|o| o == t)) {
            let new_cols = columns(&db, "main", &table)?;
            let old_cols = columns(&db, "old", &table)?;
            let mut diff = TableDiff {
                table: table.clone(),
                key: key_of(&new_cols),
                ..Default::default()
            };
            if new_cols != old_cols {
                diff.schema_changed = Some(match (old_cols.is_empty(), new_cols.is_empty()) {
                    (true, _) => "the table was created".into(),
                    (_, true) => "the table was dropped".into(),
                    _ => "its columns changed".into(),
                });
                diffs.push(diff);
                continue;
            }
            let t = quote(&table);
            let names: Vec<String> = new_cols.iter().map(|c| c.0.clone()).collect();
            let mut selected: Vec<String> =
                names.iter().map(|c| format!("x.{}", quote(c))).collect();
            let mut shown = names.clone();
            if diff.key == ["rowid"] {
                selected.insert(0, "x.rowid".into());
                shown.insert(0, "rowid".into());
            }
            let same_key = diff
                .key
                .iter()
                .map(|k| format!("x.{k} = y.{k}", k = quote(k).replace("\"rowid\"", "rowid")))
                .collect::<Vec<_>>()
                .join(" AND ");
            let cols = selected.join(", ");
            diff.inserted = rows(
                &db,
                &format!("SELECT {cols} FROM main.{t} x WHERE NOT EXISTS (SELECT 1 FROM old.{t} y WHERE {same_key})"),
                &shown,
            )?;
            diff.deleted = rows(
                &db,
                &format!("SELECT {cols} FROM old.{t} x WHERE NOT EXISTS (SELECT 1 FROM main.{t} y WHERE {same_key})"),
                &shown,
            )?;
            let differs = names
                .iter()
                .map(|c| format!("x.{c} IS NOT y.{c}", c = quote(c)))
                .collect::<Vec<_>>()
                .join(" OR ");
            let after = rows(
                &db,
                &format!(
                    "SELECT {cols} FROM main.{t} x JOIN old.{t} y ON {same_key} WHERE {differs}"
                ),
                &shown,
            )?;
            let before_cols = cols.replace("x.", "y.");
            let before = rows(
                &db,
                &format!("SELECT {before_cols} FROM main.{t} x JOIN old.{t} y ON {same_key} WHERE {differs}"),
                &shown,
            )?;
            diff.updated = before
                .into_iter()
                .zip(after)
                .map(|(b, a)| json!({ "before": b, "after": a }))
                .collect();
            diffs.push(diff);
        }
        Ok(diffs)
    };
    run().map_err(|e| error(new, "comparing", e))
}

/// Puts the rows of `table` in `snapshot` matching `condition` back into `live`, inside
/// one transaction (`apply`), or only says what it would do. Refuses when the table's
/// columns differ between the two. Rows of other tables that an ON DELETE CASCADE from
/// the chosen rows reaches are counted, and the missing ones put back in the same
/// transaction when `with_children` (rows that exist but differ are left alone).
pub fn restore_rows(
    snapshot: &Path,
    live: &Path,
    table: &str,
    condition: &str,
    apply: bool,
    with_children: bool,
) -> Result<RowsRestore> {
    let db = Connection::open(live).map_err(|e| error(live, "cannot open", e))?;
    db.busy_timeout(std::time::Duration::from_secs(30))
        .map_err(|e| error(live, "busy_timeout", e))?;
    db.execute(
        "ATTACH DATABASE ?1 AS snap",
        [snapshot.display().to_string()],
    )
    .map_err(|e| error(snapshot, "cannot attach", e))?;
    let chosen = Chosen::new(&db, live, snapshot, table, condition.to_string())?;
    let cascades = cascades(&db).map_err(|e| error(snapshot, "foreign_key_list", e))?;
    let mut children: Vec<(Chosen, String)> = Vec::new();
    for (reached_by, cascade) in cascade_chain(table, &cascades) {
        let parent = match reached_by {
            None => &chosen,
            Some(i) => &children[i].0,
        };
        let condition = format!(
            "({}) IN (SELECT {} FROM snap.{} WHERE {})",
            cascade
                .child_columns
                .iter()
                .map(|c| quote(c))
                .collect::<Vec<_>>()
                .join(", "),
            cascade
                .parent_columns
                .iter()
                .map(|c| quote(c))
                .collect::<Vec<_>>()
                .join(", "),
            quote(&parent.table),
            parent.condition
        );
        let child = Chosen::new(&db, live, snapshot, &cascade.child, condition);
        if let Some(child) = reached(cascade, child, with_children)? {
            children.push((child, cascade.describe()));
        }
    }
    let work = |db: &Connection, write: bool| -> rusqlite::Result<RowsRestore> {
        let mut result = chosen.count(db, true)?;
        for (child, via) in &children {
            let counted = child.count(db, false)?;
            result.cascaded.push(CascadedRows {
                table: child.table.clone(),
                via: via.clone(),
                rows: counted.rows.len() as u64,
                missing: counted.missing,
                different: counted.different,
                applied: false,
            });
        }
        if write {
            // Parents first, then the rows that reference them.
            chosen.upsert(db, true)?;
            result.applied = true;
            if with_children {
                for ((child, _), cascaded) in children.iter().zip(&mut result.cascaded) {
                    child.upsert(db, false)?;
                    cascaded.applied = true;
                }
            }
        }
        Ok(result)
    };
    if !apply {
        return work(&db, false).map_err(|e| error(live, "reading the rows", e));
    }
    let apply_all = || -> rusqlite::Result<RowsRestore> {
        // IMMEDIATE: the write lock first, so what the preview counted is what is written.
        db.execute_batch("BEGIN IMMEDIATE")?;
        let result = work(&db, true)?;
        db.execute_batch("COMMIT")?;
        Ok(result)
    };
    apply_all().map_err(|e| {
        let _ = db.execute_batch("ROLLBACK");
        error(live, "putting the rows back (nothing was changed)", e)
    })
}

/// The rows of one table of the attached old state (`snap`) that a condition chooses,
/// checked against the live table (same columns, a primary key to match rows by).
struct Chosen {
    table: String,
    condition: String,
    names: Vec<String>,
    key: Vec<String>,
}

impl Chosen {
    fn new(
        db: &Connection,
        live: &Path,
        snapshot: &Path,
        table: &str,
        condition: String,
    ) -> Result<Chosen> {
        let live_cols = columns(db, "main", table).map_err(|e| error(live, "table_info", e))?;
        let snap_cols = columns(db, "snap", table).map_err(|e| error(snapshot, "table_info", e))?;
        if snap_cols.is_empty() {
            return Err(SourceError::Invalid(format!(
                "table {table} does not exist at that restore point"
            )));
        }
        if live_cols != snap_cols {
            return Err(SourceError::Invalid(format!(
                "table {table} has different columns now than at that restore point; refusing to put rows back"
            )));
        }
        let key = key_of(&live_cols);
        if key == ["rowid"] {
            return Err(SourceError::Invalid(format!(
                "table {table} has no primary key; rows cannot be matched reliably"
            )));
        }
        Ok(Chosen {
            table: table.to_string(),
            condition,
            names: live_cols.iter().map(|c| c.0.clone()).collect(),
            key,
        })
    }

    fn select(&self) -> String {
        format!(
            "(SELECT * FROM snap.{} WHERE {})",
            quote(&self.table),
            self.condition
        )
    }

    fn columns(&self) -> String {
        self.names
            .iter()
            .map(|c| quote(c))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The chosen rows (whole when `whole`, else only counted), how many the live table
    /// lacks and how many differ there.
    fn count(&self, db: &Connection, whole: bool) -> rusqlite::Result<RowsRestore> {
        let (t, chosen, cols) = (quote(&self.table), self.select(), self.columns());
        let same_key = self
            .key
            .iter()
            .map(|k| format!("x.{k} = y.{k}", k = quote(k)))
            .collect::<Vec<_>>()
            .join(" AND ");
        let differs = self
            .names
            .iter()
            .map(|c| format!("x.{c} IS NOT y.{c}", c = quote(c)))
            .collect::<Vec<_>>()
            .join(" OR ");
        let count = |sql: String| db.query_row(&sql, [], |r| r.get::<_, i64>(0).map(|n| n as u64));
        let rows = if whole {
            rows(db, &format!("SELECT {cols} FROM {chosen}"), &self.names)?
        } else {
            let n = count(format!("SELECT count(*) FROM {chosen}"))?;
            vec![serde_json::Value::Null; n as usize]
        };
        Ok(RowsRestore {
            table: self.table.clone(),
            rows,
            missing: count(format!(
                "SELECT count(*) FROM {chosen} x WHERE NOT EXISTS (SELECT 1 FROM main.{t} y WHERE {same_key})"
            ))?,
            different: count(format!(
                "SELECT count(*) FROM {chosen} x JOIN main.{t} y ON {same_key} WHERE {differs}"
            ))?,
            ..Default::default()
        })
    }

    /// Writes the chosen rows into the live table: every one (`overwrite`: rows that
    /// differ get their old values back), or only the missing ones.
    fn upsert(&self, db: &Connection, overwrite: bool) -> rusqlite::Result<()> {
        let (t, chosen, cols) = (quote(&self.table), self.select(), self.columns());
        let keys = self
            .key
            .iter()
            .map(|k| quote(k))
            .collect::<Vec<_>>()
            .join(", ");
        let on_conflict = if overwrite {
            let updates = self
                .names
                .iter()
                .map(|c| format!("{c} = excluded.{c}", c = quote(c)))
                .collect::<Vec<_>>()
                .join(", ");
            format!("DO UPDATE SET {updates}")
        } else {
            "DO NOTHING".to_string()
        };
        // An upsert, not INSERT OR REPLACE: replacing deletes the row first, which would
        // fire ON DELETE CASCADE on rows that reference it.
        db.execute(
            &format!(
                "INSERT INTO main.{t} ({cols}) SELECT {cols} FROM {chosen} WHERE true ON CONFLICT({keys}) {on_conflict}"
            ),
            [],
        )?;
        Ok(())
    }
}

/// One foreign key as `PRAGMA foreign_key_list` gives it, row by row: the parent table,
/// its ON DELETE action, the child's columns and the parent's (none: its primary key).
type ForeignKey = (String, String, Vec<String>, Vec<Option<String>>);

/// Every foreign key of the old state with ON DELETE CASCADE.
fn cascades(db: &Connection) -> rusqlite::Result<Vec<Cascade>> {
    let tables: Vec<String> = db
        .prepare("SELECT name FROM snap.sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\'")?
        .query_map([], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    let mut found = Vec::new();
    for child in &tables {
        let mut keys: std::collections::BTreeMap<i64, ForeignKey> = Default::default();
        let sql = format!("PRAGMA snap.foreign_key_list({})", quote(child));
        let mut stmt = db.prepare(&sql)?;
        let mut rows = stmt.query([])?;
        while let Some(row) = rows.next()? {
            let entry = keys
                .entry(row.get(0)?)
                .or_insert_with(|| (String::new(), String::new(), Vec::new(), Vec::new()));
            entry.0 = row.get(2)?;
            entry.1 = row.get(6)?;
            entry.2.push(row.get(3)?);
            entry.3.push(row.get(4)?);
        }
        for (parent, on_delete, from, to) in keys.into_values() {
            if !on_delete.eq_ignore_ascii_case("CASCADE") {
                continue;
            }
            // SQLite matches table names without regard to case; the catalog's spelling
            // is the one the chain compares.
            let parent = tables
                .iter()
                .find(|t| t.eq_ignore_ascii_case(&parent))
                .cloned()
                .unwrap_or(parent);
            // A key that names no parent columns references the parent's primary key.
            let parent_columns = if to.iter().all(Option::is_some) {
                to.into_iter().flatten().collect()
            } else {
                key_of(&columns(db, "snap", &parent)?)
            };
            found.push(Cascade {
                child: child.clone(),
                child_columns: from,
                parent,
                parent_columns,
            });
        }
    }
    Ok(found)
}
