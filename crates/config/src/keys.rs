//! Unknown keys, all of them at once: serde's `deny_unknown_fields` stops at the first
//! and cannot say which table it was in, so the parsed document is walked first.

use serde::de::{self, Deserialize, Deserializer, Visitor};
use toml::de::{DeTable, DeValue};
use toml::Spanned;

use crate::error::{ConfigError, LineIndex};
use crate::raw::{RawAgent, RawAlert, RawConfig, RawKeep, RawPlan, RawSource, RawTarget};

/// Reports every key that the raw structs would refuse, with the keys allowed there.
pub(crate) fn unknown_keys(root: &DeTable<'_>, index: &LineIndex<'_>) -> Vec<ConfigError> {
    let mut errors = Vec::new();
    let mut check = |table: &DeTable<'_>, place: &str, allowed: &[&str]| {
        for key in table.keys() {
            if !allowed.contains(&key.get_ref().as_ref()) {
                errors.push(index.error(
                    &key.span(),
                    format!(
                        "unknown key {:?} {place}; expected one of {}",
                        key.get_ref(),
                        allowed.join(", ")
                    ),
                ));
            }
        }
    };
    check(root, "at the top level", fields_of::<RawConfig>());
    for (key, place, allowed) in [
        ("source", "in [[source]]", fields_of::<RawSource>()),
        ("target", "in [[target]]", fields_of::<RawTarget>()),
        ("alert", "in [[alert]]", fields_of::<RawAlert>()),
    ] {
        for table in tables(root, key) {
            check(table, place, allowed);
        }
    }
    for plan in tables(root, "plan") {
        check(plan, "in [[plan]]", fields_of::<RawPlan>());
        if let Some(keep) = plan.get("keep").and_then(|v| v.get_ref().as_table()) {
            check(keep, "in the keep of a [[plan]]", fields_of::<RawKeep>());
        }
    }
    if let Some(agent) = root.get("agent").and_then(|v| v.get_ref().as_table()) {
        check(agent, "in [agent]", fields_of::<RawAgent>());
    }
    errors
}

/// The tables of an array of tables; anything of another type is left for the typed
/// parse to report.
fn tables<'a, 'i>(root: &'a DeTable<'i>, key: &str) -> impl Iterator<Item = &'a DeTable<'i>> {
    root.get(key)
        .and_then(|v| v.get_ref().as_array())
        .into_iter()
        .flat_map(|array| array.iter())
        .filter_map(|item: &Spanned<DeValue<'i>>| item.get_ref().as_table())
}

/// The field names a derived `Deserialize` struct accepts, read from the struct itself so
/// the list cannot drift from it: derived code hands them to `deserialize_struct`.
fn fields_of<T: for<'de> Deserialize<'de>>() -> &'static [&'static str] {
    let mut probe = FieldProbe(&[]);
    // The probe always fails after it has seen the fields.
    let _ = T::deserialize(&mut probe);
    probe.0
}

struct FieldProbe(&'static [&'static str]);

#[derive(Debug)]
struct ProbeDone;

impl std::fmt::Display for ProbeDone {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("field probe")
    }
}

impl std::error::Error for ProbeDone {}

impl de::Error for ProbeDone {
    fn custom<T: std::fmt::Display>(_: T) -> Self {
        ProbeDone
    }
}

impl<'de> Deserializer<'de> for &mut FieldProbe {
    type Error = ProbeDone;

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        _visitor: V,
    ) -> Result<V::Value, ProbeDone> {
        self.0 = fields;
        Err(ProbeDone)
    }

    fn deserialize_any<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value, ProbeDone> {
        Err(ProbeDone)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes
        byte_buf option unit unit_struct newtype_struct seq tuple tuple_struct map enum
        identifier ignored_any
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_lists_come_from_the_structs() {
        assert_eq!(
            fields_of::<RawConfig>(),
            &["source", "target", "plan", "agent", "alert"]
        );
        assert_eq!(
            fields_of::<RawKeep>(),
            &["last", "hourly", "daily", "weekly", "monthly", "yearly", "within", "tags"]
        );
    }
}
