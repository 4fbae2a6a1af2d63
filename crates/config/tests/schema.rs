//! `docs/lifeboat.schema.json` is what editors read: it must match the parser.

use std::path::Path;

const SCHEMA_PATH: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../docs/lifeboat.schema.json"
);

#[test]
fn stored_schema_is_up_to_date() {
    let generated = lifeboat_config::json_schema();
    let path = Path::new(SCHEMA_PATH);
    if std::env::var_os("LIFEBOAT_WRITE_SCHEMA").is_some() {
        std::fs::write(path, &generated).unwrap();
        return;
    }
    let stored = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        stored == generated,
        "docs/lifeboat.schema.json is out of date; regenerate it with\n  \
         LIFEBOAT_WRITE_SCHEMA=1 cargo test -p lifeboat-config --test schema"
    );
}

#[test]
fn schema_describes_the_file_for_editors() {
    let schema: serde_json::Value = serde_json::from_str(&lifeboat_config::json_schema()).unwrap();
    assert_eq!(schema["$schema"], "http://json-schema.org/draft-07/schema#");
    assert_eq!(schema["title"], "lifeboat.toml");
    assert!(schema["description"].as_str().unwrap().contains("#:schema"));
    // Typos must show in the editor too.
    assert_eq!(schema["additionalProperties"], false);
    let plan = &schema["definitions"]["Plan"];
    assert_eq!(plan["additionalProperties"], false);
    assert_eq!(plan["required"], serde_json::json!(["name"]));
    assert_eq!(plan["properties"]["sources"]["minItems"], 1);
    assert_eq!(plan["properties"]["schedule"]["type"], "string");
    assert!(plan["properties"]["rpo"]["pattern"].is_string());
    let kinds = serde_json::to_string(&schema["definitions"]["AlertKind"]).unwrap();
    for kind in ["webhook", "slack", "ping", "email"] {
        assert!(kinds.contains(&format!("\"{kind}\"")), "{kinds}");
    }
    // TOML has no null.
    assert!(!serde_json::to_string(&schema).unwrap().contains("\"null\""));
}
