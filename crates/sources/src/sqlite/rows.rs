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

use crate::rows::{RowsRestore, TableDiff};
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
/// columns differ between the two.
pub fn restore_rows(
    snapshot: &Path,
    live: &Path,
    table: &str,
    condition: &str,
    apply: bool,
) -> Result<RowsRestore> {
    let db = Connection::open(live).map_err(|e| error(live, "cannot open", e))?;
    db.busy_timeout(std::time::Duration::from_secs(30))
        .map_err(|e| error(live, "busy_timeout", e))?;
    db.execute(
        "ATTACH DATABASE ?1 AS snap",
        [snapshot.display().to_string()],
    )
    .map_err(|e| error(snapshot, "cannot attach", e))?;
    let live_cols = columns(&db, "main", table).map_err(|e| error(live, "table_info", e))?;
    let snap_cols = columns(&db, "snap", table).map_err(|e| error(snapshot, "table_info", e))?;
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
    let t = quote(table);
    let names: Vec<String> = live_cols.iter().map(|c| c.0.clone()).collect();
    let cols = names
        .iter()
        .map(|c| quote(c))
        .collect::<Vec<_>>()
        .join(", ");
    let same_key = key
        .iter()
        .map(|k| format!("x.{k} = y.{k}", k = quote(k)))
        .collect::<Vec<_>>()
        .join(" AND ");
    let differs = names
        .iter()
        .map(|c| format!("x.{c} IS NOT y.{c}", c = quote(c)))
        .collect::<Vec<_>>()
        .join(" OR ");
    let chosen = format!("(SELECT * FROM snap.{t} WHERE {condition})");
    let work = |db: &Connection| -> rusqlite::Result<RowsRestore> {
        let mut result = RowsRestore {
            table: table.to_string(),
            rows: rows(db, &format!("SELECT {cols} FROM {chosen}"), &names)?,
            ..Default::default()
        };
        result.missing = db.query_row(
            &format!("SELECT count(*) FROM {chosen} x WHERE NOT EXISTS (SELECT 1 FROM main.{t} y WHERE {same_key})"),
            [],
            |r| r.get::<_, i64>(0).map(|n| n as u64),
        )?;
        result.different = db.query_row(
            &format!(
                "SELECT count(*) FROM {chosen} x JOIN main.{t} y ON {same_key} WHERE {differs}"
            ),
            [],
            |r| r.get::<_, i64>(0).map(|n| n as u64),
        )?;
        Ok(result)
    };
    if !apply {
        return work(&db).map_err(|e| error(live, "reading the rows", e));
    }
    let updates = names
        .iter()
        .map(|c| format!("{c} = excluded.{c}", c = quote(c)))
        .collect::<Vec<_>>()
        .join(", ");
    let keys = key.iter().map(|k| quote(k)).collect::<Vec<_>>().join(", ");
    let apply_all = || -> rusqlite::Result<RowsRestore> {
        // IMMEDIATE: the write lock first, so what the preview counted is what is written.
        db.execute_batch("BEGIN IMMEDIATE")?;
        let mut result = work(&db)?;
        // An upsert, not INSERT OR REPLACE: replacing deletes the row first, which would
        // fire ON DELETE CASCADE on rows that reference it.
        db.execute(
            &format!(
                "INSERT INTO main.{t} ({cols}) SELECT {cols} FROM {chosen} WHERE true ON CONFLICT({keys}) DO UPDATE SET {updates}"
            ),
            [],
        )?;
        db.execute_batch("COMMIT")?;
        result.applied = true;
        Ok(result)
    };
    apply_all().map_err(|e| {
        let _ = db.execute_batch("ROLLBACK");
        error(live, "putting the rows back (nothing was changed)", e)
    })
}
