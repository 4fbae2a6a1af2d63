//! The OpenAPI 3.1 document of `/api/v1/`, built from the types the handlers serialize:
//! their JSON Schemas come from schemars, whose 2020-12 dialect is the one OpenAPI 3.1
//! uses. `docs/openapi.json` is this document, kept current by a test.

use schemars::generate::SchemaSettings;
use serde_json::{json, Value};

use crate::actions::Action;
use crate::api::{Access, Acknowledgement, ApiError, RestoreRequest};
use crate::state::{DrillRecord, DrillStatus, Run};
use crate::status::{AgentStatus, AlertDelivery, Incident};
use lifeboat_ops::snapshots::SnapshotEntry;
use lifeboat_ops::timeline::TimelineReport;

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
    let drill_history = answers.subschema_for::<Vec<DrillRecord>>().to_value();
    let incidents = answers.subschema_for::<Vec<Incident>>().to_value();
    let alerts = answers.subschema_for::<Vec<AlertDelivery>>().to_value();
    let actions = answers.subschema_for::<Vec<Action>>().to_value();
    let action = answers.subschema_for::<Action>().to_value();
    let access = answers.subschema_for::<Access>().to_value();
    let incident = answers.subschema_for::<Incident>().to_value();
    let timeline = answers.subschema_for::<TimelineReport>().to_value();
    let snapshots = answers.subschema_for::<Vec<SnapshotEntry>>().to_value();
    answers.subschema_for::<ApiError>();
    // Request bodies are read, so their schema is the deserializing one.
    let mut requests = into_components(SchemaSettings::draft2020_12());
    let acknowledgement = requests.subschema_for::<Acknowledgement>().to_value();
    let restore_request = requests.subschema_for::<RestoreRequest>().to_value();
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
    let listed = |summary: &str, body: Value| {
        json!({
            "get": {
                "summary": summary,
                "parameters": [{
                    "name": "limit",
                    "in": "query",
                    "required": false,
                    "schema": {"type": "integer", "minimum": 1, "maximum": 1000, "default": 50},
                }],
                "responses": {
                    "200": ok("OK", body),
                    "400": fail("A bad or unknown query parameter."),
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
            "/api/v1/jobs": listed("The newest jobs (backups) first.", runs),
            "/api/v1/drills/history": listed("Every drill recorded, newest first: RTO and RPO per drill.", drill_history),
            "/api/v1/drills": read("The newest drill of each plan's source on each target.", drills),
            "/api/v1/incidents": read("The open incidents.", incidents),
            "/api/v1/alerts": read("The alerts sent to each channel since the agent started (the newest 200), failed deliveries with their error, newest first.", alerts),
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
            "/api/v1/actions/{id}/events": {
                "get": {
                    "summary": "Follow one action as server-sent events: an `action` event carrying the action (as /api/v1/actions/{id} gives it) each time it changes; the stream ends after the one that has finished it.",
                    "parameters": [path_parameter("id", "The action's id.", json!({"type": "string"}))],
                    "responses": {
                        "200": {
                            "description": "An event stream; each event is an `action` whose data is the action as JSON.",
                            "content": {"text/event-stream": {"schema": {
                                "type": "object",
                                "properties": {
                                    "event": {"const": "action"},
                                    "data": {
                                        "type": "string",
                                        "contentMediaType": "application/json",
                                        "contentSchema": action.clone(),
                                    },
                                },
                                "required": ["event", "data"],
                            }}},
                        },
                        "401": fail("No token, or a token the agent does not know."),
                        "404": fail("No such action (or one long finished and forgotten)."),
                    },
                },
            },
            "/api/v1/snapshots": {
                "get": {
                    "summary": "The snapshots in a target, oldest first: all, or one source's.",
                    "parameters": [
                        {
                            "name": "target",
                            "in": "query",
                            "required": false,
                            "description": "The target to list (default: the first target of lifeboat.toml, or with source, of its first plan).",
                            "schema": {"type": "string", "minLength": 1},
                        },
                        {
                            "name": "source",
                            "in": "query",
                            "required": false,
                            "description": "Only the snapshots of this source of lifeboat.toml.",
                            "schema": {"type": "string", "minLength": 1},
                        },
                    ],
                    "responses": {
                        "200": ok("OK", snapshots),
                        "400": fail("A bad or unknown query parameter."),
                        "401": fail("No token, or a token the agent does not know."),
                        "404": fail("No such target or source, or no plan writes the source to that target."),
                        "422": fail("The source is a command's output."),
                        "502": fail("The repository could not be read."),
                    },
                },
            },
            "/api/v1/sources/{source}/timeline": {
                "get": {
                    "summary": "Every restore point of a source, read from its repository: snapshots and replication segments (with gaps) of a database file, snapshots of a directory, dumps and recovery windows of a database server.",
                    "parameters": [
                        path_parameter("source", "A source of lifeboat.toml.", json!({"type": "string"})),
                        {
                            "name": "target",
                            "in": "query",
                            "required": false,
                            "description": "The target to read from (default: the first target of the source's first plan).",
                            "schema": {"type": "string", "minLength": 1},
                        },
                    ],
                    "responses": {
                        "200": ok("OK", timeline),
                        "400": fail("A bad or unknown query parameter."),
                        "401": fail("No token, or a token the agent does not know."),
                        "404": fail("No such source, or no plan writes it to that target."),
                        "422": fail("The source is a command's output, which has no timeline."),
                        "502": fail("The repository could not be read."),
                    },
                },
            },
            "/api/v1/sources/{source}/restore": {
                "post": {
                    "summary": "Restore a database file or directory as it was at a moment into the agent's scratch space (a new directory beside its state database, readable by its user only; the newest three are kept). Never over live data.",
                    "parameters": [path_parameter("source", "A source of lifeboat.toml.", json!({"type": "string"}))],
                    "requestBody": {
                        "required": true,
                        "content": {"application/json": {"schema": restore_request}},
                    },
                    "responses": {
                        "202": {
                            "description": "Queued; follow the action at its Location. Once finished, its `restored` says what was restored where.",
                            "headers": {"Location": {"schema": {"type": "string"}}},
                            "content": {"application/json": {"schema": action.clone()}},
                        },
                        "400": fail("The body is not {\"at\": ...}, or `at` cannot be read."),
                        "401": fail("No token, or a token the agent does not know."),
                        "403": fail("A read-only token, or no operator token configured."),
                        "404": fail("No such source, or no plan writes it to that target."),
                        "409": fail("The same restore is queued or running."),
                        "422": fail("A command's output or a database server: restore those from the command line."),
                        "503": fail("The agent is stopping."),
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
