//! The OpenAPI 3.1 document of `/api/v1/`, built from the types the handlers serialize:
//! their JSON Schemas come from schemars, whose 2020-12 dialect is the one OpenAPI 3.1
//! uses. `docs/openapi.json` is this document, kept current by a test.

use schemars::generate::SchemaSettings;
use serde_json::{json, Value};

use crate::actions::Action;
use crate::api::{Access, Acknowledgement, ApiError};
use crate::state::{DrillStatus, Run};
use crate::status::{AgentStatus, Incident};

/// A generator whose references point into the document's `components/schemas`.
fn into_components(settings: SchemaSettings) -> schemars::SchemaGenerator {
    settings
        .with(|s| {
            s.definitions_path = "/components/schemas".into();
            s.meta_schema = None;
        })
        .into_generator()
}

pub fn document() -> Value {
    let mut answers = into_components(SchemaSettings::draft2020_12().for_serialize());
    let status = answers.subschema_for::<AgentStatus>().to_value();
    let runs = answers.subschema_for::<Vec<Run>>().to_value();
    let drills = answers.subschema_for::<Vec<DrillStatus>>().to_value();
    let incidents = answers.subschema_for::<Vec<Incident>>().to_value();
    let actions = answers.subschema_for::<Vec<Action>>().to_value();
    let action = answers.subschema_for::<Action>().to_value();
    let access = answers.subschema_for::<Access>().to_value();
    let incident = answers.subschema_for::<Incident>().to_value();
    answers.subschema_for::<ApiError>();
    // Request bodies are read, so their schema is the deserializing one.
    let mut requests = into_components(SchemaSettings::draft2020_12());
    let acknowledgement = requests.subschema_for::<Acknowledgement>().to_value();
    let mut schemas = answers.take_definitions(true);
    schemas.extend(requests.take_definitions(true));

    let read = |summary: &str, body: Value| {
        json!({
            "get": {
                "summary": summary,
                "responses": {
                    "200": ok("OK", body),
                    "401": fail("No token, or a token the agent does not know."),
                },
            },
        })
    };
    let act = |summary: &str| {
        json!({
            "post": {
                "summary": summary,
                "parameters": [path_parameter("plan", "A plan of lifeboat.toml.", json!({"type": "string"}))],
                "responses": {
                    "202": {
                        "description": "Queued; poll the action at its Location.",
                        "headers": {"Location": {"schema": {"type": "string"}}},
                        "content": {"application/json": {"schema": action.clone()}},
                    },
                    "401": fail("No token, or a token the agent does not know."),
                    "403": fail("A read-only token, or no operator token configured."),
                    "404": fail("No such plan."),
                    "409": fail("The same action of this plan is queued or running."),
                    "503": fail("The agent is stopping."),
                },
            },
        })
    };
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Lifeboat agent API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "What the agent knows about its plans, jobs, drills and incidents, \
                and the actions an operator may start. The `token` of lifeboat.toml's [agent] \
                reads and acts; its `read_token` only reads.",
        },
        "servers": [{"url": "http://127.0.0.1:7070"}],
        "security": [{"bearer": []}],
        "paths": {
            "/api/v1/openapi.json": {
                "get": {
                    "summary": "This document.",
                    "security": [],
                    "responses": {"200": ok("OK", json!({"type": "object"}))},
                },
            },
            "/api/v1/access": {
                "get": {
                    "summary": "Whether the API asks for a token.",
                    "security": [],
                    "responses": {"200": ok("OK", access)},
                },
            },
            "/api/v1/status": read("Everything the agent knows right now.", status),
            "/api/v1/jobs": {
                "get": {
                    "summary": "The newest jobs (backups) first.",
                    "parameters": [{
                        "name": "limit",
                        "in": "query",
                        "required": false,
                        "schema": {"type": "integer", "minimum": 1, "maximum": 1000, "default": 50},
                    }],
                    "responses": {
                        "200": ok("OK", runs),
                        "400": fail("A bad or unknown query parameter."),
                        "401": fail("No token, or a token the agent does not know."),
                    },
                },
            },
            "/api/v1/drills": read("The newest drill of each plan's source on each target.", drills),
            "/api/v1/incidents": read("The open incidents.", incidents),
            "/api/v1/incidents/acknowledge": {
                "post": {
                    "summary": "Mark an open incident as seen by a person (alerts do not change).",
                    "requestBody": {
                        "required": true,
                        "content": {"application/json": {"schema": acknowledgement}},
                    },
                    "responses": {
                        "200": ok("The incident, acknowledged.", incident),
                        "400": fail("The body is not {\"key\": \"...\"}."),
                        "401": fail("No token, or a token the agent does not know."),
                        "403": fail("A read-only token."),
                        "404": fail("No open incident of that key."),
                    },
                },
            },
            "/api/v1/actions": read("The actions asked for, newest first.", actions),
            "/api/v1/actions/{id}": {
                "get": {
                    "summary": "One action, to follow it until it has finished.",
                    "parameters": [path_parameter("id", "The action's id.", json!({"type": "string"}))],
                    "responses": {
                        "200": ok("OK", action.clone()),
                        "401": fail("No token, or a token the agent does not know."),
                        "404": fail("No such action (or one long finished and forgotten)."),
                    },
                },
            },
            "/api/v1/plans/{plan}/backup": act("Run the plan's backups now, on each of its targets."),
            "/api/v1/plans/{plan}/drill": act("Run the plan's restore drills now."),
        },
        "components": {
            "schemas": schemas,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    })
}

fn ok(description: &str, schema: Value) -> Value {
    json!({"description": description, "content": {"application/json": {"schema": schema}}})
}

fn fail(description: &str) -> Value {
    ok(
        description,
        json!({"$ref": "#/components/schemas/ApiError"}),
    )
}

fn path_parameter(name: &str, description: &str, schema: Value) -> Value {
    json!({"name": name, "in": "path", "required": true, "description": description, "schema": schema})
}

#[cfg(test)]
mod tests {
    #[test]
    fn docs_openapi_json_is_current() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/openapi.json");
        let current = serde_json::to_string_pretty(&super::document()).unwrap() + "\n";
        if std::env::var_os("LIFEBOAT_WRITE_OPENAPI").is_some() {
            std::fs::write(path, &current).unwrap();
        }
        let kept = std::fs::read_to_string(path).unwrap_or_default();
        assert!(
            kept == current,
            "docs/openapi.json is out of date: run LIFEBOAT_WRITE_OPENAPI=1 cargo test -p lifeboat-agent openapi"
        );
    }
}
