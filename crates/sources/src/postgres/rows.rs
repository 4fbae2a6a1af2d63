//! Rows between two states of one PostgreSQL database, each a [`Side`]: a dump restored
//! into a scratch database on the same server, a throwaway cluster recovered to a point
//! in time, or the live database. Which rows were inserted, updated and deleted (by
//! primary key), and putting chosen rows of an old state back into the live database in
//! one transaction.
//!
//! Rows are listed by key with an md5 of their JSON form, so only the rows that differ
//! are fetched whole. Tables without a primary key are compared as sets of rows. All SQL
//! goes to psql on standard input: rows can be large, and never show in a process list.

use std::collections::{BTreeMap, BTreeSet};

use serde::Deserialize;

use super::{quote_ident, quote_literal, Psql};
use crate::rows::{cascade_chain, reached, Cascade, CascadedRows, RowsRestore, TableDiff};
use crate::{Result, SourceError};

/// One database on one server (the sides may be on different servers).
#[derive(Clone, Copy)]
pub struct Side<'a> {
    pub psql: &'a Psql,
    pub database: &'a str,
}

impl Side<'_> {
    fn run(&self, sql: String) -> Result<String> {
        self.psql.run_script(self.database, sql, false)
    }
}

/// A user table as the catalog describes it.
#[derive(Debug, Clone, Deserialize)]
struct Table {
    /// `name` in schema public, `schema.name` elsewhere.
    name: String,
    /// `"schema"."name"`, quoted for SQL.
    qualified: String,
    /// (name, type, generated) in column order.
    columns: Vec<(String, String, bool)>,
    /// Primary key columns in key order; empty without one.
    key: Vec<String>,
}

/// Tables and partitioned tables (not their partitions) outside the system schemas.
const CATALOG: &str = r#"SELECT coalesce(json_agg(t ORDER BY t.name), '[]') FROM (
  SELECT CASE WHEN n.nspname = 'public' THEN c.relname ELSE n.nspname || '.' || c.relname END AS name,
         format('%I.%I', n.nspname, c.relname) AS qualified,
         (SELECT coalesce(json_agg(json_build_array(a.attname, format_type(a.atttypid, a.atttypmod), a.attgenerated <> '') ORDER BY a.attnum), '[]')
            FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped) AS columns,
         (SELECT coalesce(json_agg(a.attname ORDER BY array_position(i.indkey::int2[], a.attnum)), '[]')
            FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)
           WHERE i.indrelid = c.oid AND i.indisprimary) AS key
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
   WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition
     AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\_%'
) t;"#;

fn catalog(side: Side<'_>) -> Result<BTreeMap<String, Table>> {
    let out = side.run(CATALOG.to_string())?;
    let tables: Vec<Table> = serde_json::from_str(&out).map_err(|e| {
        SourceError::Invalid(format!(
            "database {}: unreadable catalog: {e}",
            side.database
        ))
    })?;
    Ok(tables.into_iter().map(|t| (t.name.clone(), t)).collect())
}

impl Table {
    /// The SQL text that identifies a row of `t`: its key as a JSON array, or the whole
    /// row without a key.
    fn identity(&self) -> String {
        if self.key.is_empty() {
            return "to_jsonb(t)::text".into();
        }
        let columns: Vec<String> = self
            .key
            .iter()
            .map(|k| format!("t.{}", quote_ident(k)))
            .collect();
        format!("jsonb_build_array({})::text", columns.join(", "))
    }

    /// What the diff shows as the key.
    fn key_names(&self) -> Vec<String> {
        if self.key.is_empty() {
            self.columns.iter().map(|c| c.0.clone()).collect()
        } else {
            self.key.clone()
        }
    }
}

/// Splits psql's `identity<TAB>value` lines; identities are JSON text, which escapes tabs.
fn keyed_lines(out: &str) -> impl Iterator<Item = (&str, &str)> {
    out.lines()
        .filter(|l| !l.is_empty())
        .filter_map(|l| l.rsplit_once('\t'))
}

/// Every row's identity and an md5 of its values.
fn fingerprints(side: Side<'_>, table: &Table) -> Result<BTreeMap<String, String>> {
    let sql = format!(
        "SELECT {} || E'\\t' || md5(to_jsonb(t)::text) FROM {} t;",
        table.identity(),
        table.qualified
    );
    let out = side.run(sql)?;
    Ok(keyed_lines(&out)
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect())
}

/// The whole rows with these identities, as JSON objects.
fn rows_by_identity(
    side: Side<'_>,
    table: &Table,
    identities: &[&String],
) -> Result<BTreeMap<String, serde_json::Value>> {
    let mut rows = BTreeMap::new();
    for batch in identities.chunks(1000) {
        let wanted: Vec<String> = batch.iter().map(|k| quote_literal(k)).collect();
        let sql = format!(
            "SELECT {id} || E'\\t' || to_jsonb(t)::text FROM {q} t WHERE {id} = ANY(ARRAY[{wanted}]::text[]);",
            id = table.identity(),
            q = table.qualified,
            wanted = wanted.join(", ")
        );
        let out = side.run(sql)?;
        for (identity, row) in keyed_lines(&out) {
            let value = serde_json::from_str(row).map_err(|e| {
                SourceError::Invalid(format!("{}: unreadable row: {e}", table.name))
            })?;
            rows.insert(identity.to_string(), value);
        }
    }
    Ok(rows)
}

/// Compares database `old` with `new`, table by table (`only` limits it to one).
pub fn diff(old: Side<'_>, new: Side<'_>, only: Option<&str>) -> Result<Vec<TableDiff>> {
    let (before, after) = (catalog(old)?, catalog(new)?);
    let names: BTreeSet<&String> = before.keys().chain(after.keys()).collect();
    if let Some(only) = only {
        if !names.iter().any(|n| n.as_str() == only) {
            return Err(SourceError::Invalid(format!(
                "no table {only} at either restore point"
            )));
        }
    }
    let mut diffs = Vec::new();
    for name in names.into_iter().filter(|n| only.is_none_or(|o| o == *n)) {
        let (table, schema_changed) = match (before.get(name), after.get(name)) {
            (None, Some(t)) => (t, Some("the table was created")),
            (Some(t), None) => (t, Some("the table was dropped")),
            (Some(o), Some(n)) if o.columns != n.columns || o.key != n.key => {
                (n, Some("its columns changed"))
            }
            (_, Some(t)) => (t, None),
            (None, None) => unreachable!("listed from the two catalogs"),
        };
        let mut diff = TableDiff {
            table: name.clone(),
            key: table.key_names(),
            schema_changed: schema_changed.map(str::to_string),
            ..Default::default()
        };
        if schema_changed.is_none() {
            compare(old, new, table, &mut diff)?;
        }
        diffs.push(diff);
    }
    Ok(diffs)
}

fn compare(old: Side<'_>, new: Side<'_>, table: &Table, diff: &mut TableDiff) -> Result<()> {
    let (before, after) = (fingerprints(old, table)?, fingerprints(new, table)?);
    let inserted: Vec<&String> = after.keys().filter(|k| !before.contains_key(*k)).collect();
    let deleted: Vec<&String> = before.keys().filter(|k| !after.contains_key(*k)).collect();
    let updated: Vec<&String> = after
        .iter()
        .filter(|(k, hash)| before.get(*k).is_some_and(|h| h != *hash))
        .map(|(k, _)| k)
        .collect();
    let new_rows = rows_by_identity(
        new,
        table,
        &[inserted.as_slice(), updated.as_slice()].concat(),
    )?;
    let old_rows = rows_by_identity(
        old,
        table,
        &[deleted.as_slice(), updated.as_slice()].concat(),
    )?;
    diff.inserted = inserted
        .iter()
        .filter_map(|k| new_rows.get(*k))
        .cloned()
        .collect();
    diff.deleted = deleted
        .iter()
        .filter_map(|k| old_rows.get(*k))
        .cloned()
        .collect();
    diff.updated = updated
        .iter()
        .filter_map(|k| {
            Some(serde_json::json!({ "before": old_rows.get(*k)?, "after": new_rows.get(*k)? }))
        })
        .collect();
    Ok(())
}

/// Puts the rows of `table` in `snapshot` matching `condition` back into `live` in one
/// transaction (`apply`), or only says what it would do. Refuses when the table's columns
/// differ between the two, or when it has no primary key to match rows by. Rows of other
/// tables that an ON DELETE CASCADE from the chosen rows reaches are counted, and the
/// missing ones put back in the same transaction when `with_children` (rows that exist
/// but differ are left alone: someone changed them since).
pub fn restore_rows(
    snapshot: Side<'_>,
    live: Side<'_>,
    table: &str,
    condition: &str,
    apply: bool,
    with_children: bool,
) -> Result<RowsRestore> {
    let mut old_tables = catalog(snapshot)?;
    let mut live_tables = catalog(live)?;
    let old = old_tables.remove(table).ok_or_else(|| {
        SourceError::Invalid(format!(
            "table {table} does not exist at that restore point"
        ))
    })?;
    let now = live_tables.remove(table).ok_or_else(|| {
        SourceError::Invalid(format!(
            "table {table} does not exist in the live database: restore the whole database instead"
        ))
    })?;
    matching(table, &old, &now)?;
    let chosen = Chosen::fetch(snapshot, now, condition.to_string())?;
    let cascades = cascades(snapshot)?;
    let mut children: Vec<(Chosen, String)> = Vec::new();
    for (reached_by, cascade) in cascade_chain(table, &cascades) {
        let parent = match reached_by {
            None => &chosen,
            Some(i) => &children[i].0,
        };
        let columns = |names: &[String], alias: &str| {
            names
                .iter()
                .map(|c| format!("{alias}.{}", quote_ident(c)))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let condition = format!(
            "({}) IN (SELECT {} FROM {} t WHERE {})",
            columns(&cascade.child_columns, "t"),
            columns(&cascade.parent_columns, "t"),
            parent.table.qualified,
            parent.condition
        );
        let child = old_tables
            .get(&cascade.child)
            .zip(live_tables.get(&cascade.child))
            .ok_or_else(|| {
                SourceError::Invalid(format!(
                    "table {} does not exist in the live database",
                    cascade.child
                ))
            })
            .and_then(|(old, now)| {
                matching(&cascade.child, old, now)?;
                Chosen::fetch(snapshot, now.clone(), condition)
            });
        if let Some(child) = reached(cascade, child, with_children)? {
            children.push((child, cascade.describe()));
        }
    }
    let mut script = String::from("SET LOCAL lock_timeout = '30s';\n");
    script.push_str(&chosen.count_sql());
    for (child, _) in &children {
        script.push_str(&child.count_sql());
    }
    if apply {
        // Parents first, then the rows that reference them.
        script.push_str(&chosen.insert_sql(true));
        if with_children {
            for (child, _) in &children {
                script.push_str(&child.insert_sql(false));
            }
        }
    }
    // One transaction: what was counted is what was written.
    let out = live.psql.run_script(live.database, script, true)?;
    let mut counts = out.lines().filter_map(|l| {
        let (m, d) = l.split_once('|')?;
        Some((m.trim().parse::<u64>().ok()?, d.trim().parse::<u64>().ok()?))
    });
    let mut next = |what: &str| {
        counts
            .next()
            .ok_or_else(|| SourceError::Invalid(format!("{what}: unexpected answer {out:?}")))
    };
    let (missing, different) = next(table)?;
    let mut result = RowsRestore {
        table: table.to_string(),
        rows: chosen.rows.clone(),
        missing,
        different,
        applied: apply,
        cascaded: Vec::new(),
    };
    for (child, via) in &children {
        let (missing, different) = next(&child.table.name)?;
        result.cascaded.push(CascadedRows {
            table: child.table.name.clone(),
            via: via.clone(),
            rows: child.rows.len() as u64,
            missing,
            different,
            applied: apply && with_children,
        });
    }
    Ok(result)
}

/// Refuses to put rows of `table` back when its columns or key changed, or it has no key.
fn matching(table: &str, old: &Table, now: &Table) -> Result<()> {
    if old.columns != now.columns || old.key != now.key {
        return Err(SourceError::Invalid(format!(
            "table {table} has different columns now than at that restore point; refusing to put rows back"
        )));
    }
    if now.key.is_empty() {
        return Err(SourceError::Invalid(format!(
            "table {table} has no primary key; rows cannot be matched reliably"
        )));
    }
    Ok(())
}

/// The rows of one table of the old state that a condition chooses (as JSON), with the
/// live table's description.
struct Chosen {
    table: Table,
    condition: String,
    rows: Vec<serde_json::Value>,
    json: String,
}

impl Chosen {
    fn fetch(snapshot: Side<'_>, table: Table, condition: String) -> Result<Chosen> {
        let json = snapshot.run(format!(
            "SELECT coalesce(jsonb_agg(to_jsonb(t)), '[]')::text FROM {} t WHERE {condition};",
            table.qualified
        ))?;
        let rows: Vec<serde_json::Value> = serde_json::from_str(&json)
            .map_err(|e| SourceError::Invalid(format!("{}: unreadable rows: {e}", table.name)))?;
        Ok(Chosen {
            table,
            condition,
            rows,
            json,
        })
    }

    fn recordset(&self) -> String {
        format!(
            "jsonb_populate_recordset(NULL::{}, {}::jsonb)",
            self.table.qualified,
            quote_literal(&self.json)
        )
    }

    /// One line `missing|different`: chosen rows the live table lacks, and ones it holds
    /// with other values.
    fn count_sql(&self) -> String {
        let key = &self.table.key;
        let first_key = quote_ident(&key[0]);
        let same_key: Vec<String> = key
            .iter()
            .map(|k| format!("l.{k} = c.{k}", k = quote_ident(k)))
            .collect();
        format!(
            "SELECT count(*) FILTER (WHERE l.{first_key} IS NULL) || '|' || \
             count(*) FILTER (WHERE l.{first_key} IS NOT NULL AND to_jsonb(l) IS DISTINCT FROM to_jsonb(c)) \
             FROM {} c LEFT JOIN {} l ON {};\n",
            self.recordset(),
            self.table.qualified,
            same_key.join(" AND ")
        )
    }

    /// Writes the chosen rows: every one (`overwrite`: rows that differ get their old
    /// values back), or only the missing ones.
    fn insert_sql(&self, overwrite: bool) -> String {
        // Generated columns are computed, never written; identity columns get the old
        // values back (OVERRIDING SYSTEM VALUE), as the rows had them.
        let writable: Vec<String> = self
            .table
            .columns
            .iter()
            .filter(|c| !c.2)
            .map(|c| quote_ident(&c.0))
            .collect();
        let keys: Vec<String> = self.table.key.iter().map(|k| quote_ident(k)).collect();
        let updates: Vec<String> = writable
            .iter()
            .filter(|c| !keys.contains(c))
            .map(|c| format!("{c} = EXCLUDED.{c}"))
            .collect();
        let on_conflict = if !overwrite || updates.is_empty() {
            "DO NOTHING".to_string()
        } else {
            format!("DO UPDATE SET {}", updates.join(", "))
        };
        let columns = writable.join(", ");
        format!(
            "INSERT INTO {} ({columns}) OVERRIDING SYSTEM VALUE SELECT {columns} FROM {} c ON CONFLICT ({}) {on_conflict};\n",
            self.table.qualified,
            self.recordset(),
            keys.join(", ")
        )
    }
}

/// Every foreign key of the database with ON DELETE CASCADE (declared ones: those that
/// partitions inherit are left out), tables named as [`catalog`] names them.
const CASCADES: &str = r#"SELECT coalesce(json_agg(json_build_array(
    CASE WHEN cn.nspname = 'public' THEN cc.relname ELSE cn.nspname || '.' || cc.relname END,
    (SELECT json_agg(a.attname ORDER BY k.ord) FROM unnest(con.conkey) WITH ORDINALITY k(attnum, ord)
       JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.attnum),
    CASE WHEN pn.nspname = 'public' THEN pc.relname ELSE pn.nspname || '.' || pc.relname END,
    (SELECT json_agg(a.attname ORDER BY k.ord) FROM unnest(con.confkey) WITH ORDINALITY k(attnum, ord)
       JOIN pg_attribute a ON a.attrelid = con.confrelid AND a.attnum = k.attnum))), '[]')
  FROM pg_constraint con
  JOIN pg_class cc ON cc.oid = con.conrelid JOIN pg_namespace cn ON cn.oid = cc.relnamespace
  JOIN pg_class pc ON pc.oid = con.confrelid JOIN pg_namespace pn ON pn.oid = pc.relnamespace
 WHERE con.contype = 'f' AND con.confdeltype = 'c' AND con.conparentid = 0;"#;

fn cascades(side: Side<'_>) -> Result<Vec<Cascade>> {
    let out = side.run(CASCADES.to_string())?;
    let found: Vec<(String, Vec<String>, String, Vec<String>)> = serde_json::from_str(&out)
        .map_err(|e| {
            SourceError::Invalid(format!(
                "database {}: unreadable foreign keys: {e}",
                side.database
            ))
        })?;
    Ok(found
        .into_iter()
        .map(|(child, child_columns, parent, parent_columns)| Cascade {
            child,
            child_columns,
            parent,
            parent_columns,
        })
        .collect())
}
