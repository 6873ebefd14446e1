//! The OpenAPI 3.1 document of the API, generated from the table the handlers use.

use serde_json::{Map, Value, json};

use super::functions::{FUNCTIONS, Function, Out, Ty};

fn ty_schema(ty: Ty) -> Value {
    match ty {
        Ty::ClientId => json!({"type": "string", "pattern": "^[0-9a-f]{20}$"}),
        Ty::Name => json!({"type": "string", "minLength": 1}),
        Ty::Message => json!({"$ref": "#/components/schemas/Message"}),
        Ty::ClientIds => {
            json!({"type": "array", "items": {"type": "string", "pattern": "^[0-9a-f]{20}$"}})
        }
        Ty::Names => {
            json!({"type": "array", "items": {"type": "string", "minLength": 1}, "maxItems": 1000})
        }
        Ty::Limit => json!({"type": "integer", "minimum": 1, "maximum": 1000}),
        Ty::Bool => json!({"type": "boolean"}),
        Ty::Percent => json!({"type": "number", "minimum": 0}),
        Ty::Fields => {
            json!({"type": "array", "items": {"enum": ["remote_ip", "remote_port", "uid", "session", "groups", "system"]}})
        }
        Ty::Session => json!({"type": "object", "additionalProperties": {"type": "string"}}),
    }
}

fn out_schema(out: Out) -> Value {
    match out {
        Out::Null => json!({"type": "null"}),
        Out::Bool => json!({"type": "boolean"}),
        Out::Count => json!({"type": "integer", "minimum": 0}),
        Out::ClientIds | Out::Names => json!({"type": "array", "items": {"type": "string"}}),
        Out::ClientInfo => {
            json!({"oneOf": [{"$ref": "#/components/schemas/ClientInfo"}, {"type": "null"}]})
        }
        Out::Session => {
            json!({"oneOf": [{"type": "object", "additionalProperties": {"type": "string"}}, {"type": "null"}]})
        }
        Out::Sessions => json!({"type": "array", "items": {
            "type": "object", "required": ["client", "session"],
            "properties": {
                "client": {"type": "string"},
                "session": {"type": "object", "additionalProperties": {"type": "string"}},
            },
        }}),
        Out::Counts => {
            json!({"type": "object", "additionalProperties": {"type": "integer", "minimum": 0}})
        }
        Out::ClientIdsByName => {
            json!({"type": "object", "additionalProperties": {"type": "array", "items": {"type": "string"}}})
        }
    }
}

fn operation(f: &Function) -> Value {
    let properties: Map<String, Value> = f
        .params
        .iter()
        .map(|p| {
            let mut schema = ty_schema(p.ty);
            if let Value::Object(map) = &mut schema {
                map.insert("description".into(), p.doc.into());
            }
            (p.name.to_owned(), schema)
        })
        .collect();
    let required: Vec<&str> = f
        .params
        .iter()
        .filter(|p| p.required)
        .map(|p| p.name)
        .collect();
    let error = |why: &str| json!({"description": why, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}});
    json!({
        "post": {
            "operationId": f.name,
            "summary": f.doc,
            "parameters": [{"$ref": "#/components/parameters/App"}],
            "requestBody": {
                "required": !required.is_empty(),
                "content": {"application/json": {"schema": {
                    "type": "object",
                    "properties": properties,
                    "required": required,
                    "additionalProperties": false,
                }}},
            },
            "responses": {
                "200": {"description": "Done", "content": {"application/json": {"schema": {
                    "type": "object",
                    "properties": {"ok": out_schema(f.out)},
                    "required": ["ok"],
                }}}},
                "400": error("Bad arguments: invalid-argument, invalid-client-id or invalid-name"),
                "401": error("No valid bearer token"),
                "404": error("No such app or function"),
                "413": error("A message, session or body above the limit"),
                "504": error("A cluster query did not complete in time"),
            },
        }
    })
}

/// The document served at `/api/v1/openapi.json`.
pub fn document() -> Value {
    let paths: Map<String, Value> = FUNCTIONS
        .iter()
        .map(|f| (format!("/api/v1/apps/{{app}}/{}", f.name), operation(f)))
        .collect();
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Switchboard HTTP API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "The plugin API of an app, for other backends. See docs/http-api.md.",
        },
        "security": [{"bearer": []}],
        "paths": paths,
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "parameters": {"App": {
                "name": "app", "in": "path", "required": true,
                "description": "The app: the name listeners give in `app`.",
                "schema": {"type": "string"},
            }},
            "schemas": {
                "Message": {"oneOf": [
                    {"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"], "additionalProperties": false},
                    {"type": "object", "properties": {"binary": {"type": "string", "contentEncoding": "base64"}}, "required": ["binary"], "additionalProperties": false},
                ]},
                "Error": {"type": "object", "required": ["err"], "properties": {"err": {
                    "type": "object", "required": ["kind", "detail"],
                    "properties": {
                        "kind": {"enum": ["invalid-client-id", "invalid-name", "too-large", "invalid-argument", "timeout", "unauthorized", "not-found"]},
                        "detail": {"type": "string"},
                    },
                }}},
                "ClientInfo": {"type": "object", "properties": {
                    "client": {"type": "string"},
                    "remote_ip": {"type": ["string", "null"]},
                    "remote_port": {"type": ["integer", "null"]},
                    "uid": {"type": ["string", "null"]},
                    "session": {"type": ["object", "null"], "additionalProperties": {"type": "string"}},
                    "groups": {"type": ["array", "null"], "items": {"type": "string"}},
                    "system": {"type": ["object", "null"], "properties": {
                        "protocol": {"enum": ["websocket", "text", "frame"]},
                        "connected_at_ms": {"type": "integer"},
                        "last_active_ms": {"type": "integer"},
                        "bytes_in": {"type": "integer"},
                        "bytes_out": {"type": "integer"},
                        "gateway_id": {"type": "integer"},
                    }},
                }},
            },
        },
    })
}
