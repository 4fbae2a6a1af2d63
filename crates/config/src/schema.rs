//! The JSON Schema of `lifeboat.toml`, for editors (taplo, Even Better TOML).

use schemars::generate::SchemaSettings;
use schemars::transform::RecursiveTransform;
use schemars::Schema;

use crate::raw::RawConfig;

/// The schema as pretty-printed JSON, as stored in `docs/lifeboat.schema.json`.
///
/// Draft 7, which taplo understands. It checks shapes and names; the rules between
/// values (references, schedules, objectives) are [`Config::parse`](crate::Config::parse)'s.
pub fn json_schema() -> String {
    let mut generator = SchemaSettings::draft07()
        .with_transform(RecursiveTransform(no_null))
        .into_generator();
    let mut schema = generator.root_schema_for::<RawConfig>();
    schema.insert(
        "description".into(),
        "Lifeboat's configuration: sources to back up, targets to write to, plans that \
         tie them together on a schedule, the agent, and alerts. Point your editor at this \
         schema with a first line of `#:schema ./lifeboat.schema.json`."
            .into(),
    );
    let mut text = serde_json::to_string_pretty(&schema).expect("a schema is plain JSON");
    text.push('\n');
    text
}

/// TOML has no null: an absent key is how a value is left out, so the `null` schemars
/// adds to every `Option` would only mislead editors.
fn no_null(schema: &mut Schema) {
    if let Some(types) = schema.get_mut("type").and_then(|t| t.as_array_mut()) {
        types.retain(|t| t != "null");
        if types.len() == 1 {
            let single = types[0].clone();
            schema.insert("type".into(), single);
        }
    }
    for key in ["anyOf", "oneOf"] {
        let Some(options) = schema.get_mut(key).and_then(|o| o.as_array_mut()) else {
            continue;
        };
        options.retain(|o| o.get("type").is_none_or(|t| t != "null"));
        if options.len() == 1 {
            let single = options.remove(0);
            schema.remove(key);
            if let Some(object) = single.as_object() {
                for (k, v) in object {
                    schema.insert(k.clone(), v.clone());
                }
            }
        }
    }
}
