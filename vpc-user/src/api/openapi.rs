//! The OpenAPI 3 document of the API, generated from the operation table so it cannot drift.
//! A copy is kept in the repository (vpc-user/api/openapi.json); a test checks it is current and
//! `vpc openapi > vpc-user/api/openapi.json` refreshes it. The agent serves it at GET /openapi.json.

use serde_json::{json, Map, Value};

use super::{ops, Kind};

pub fn document() -> Value {
    let mut paths = Map::new();
    for op in ops::all() {
        let mut properties = Map::new();
        let mut required = Vec::new();
        for param in op.params {
            let schema = match param.kind {
                Kind::String => json!({"type": "string"}),
                Kind::Integer => json!({"type": "integer", "minimum": 0}),
                Kind::Boolean => json!({"type": "boolean"}),
                Kind::Object => json!({"type": "object"}),
            };
            let mut schema = schema.as_object().cloned().unwrap_or_default();
            schema.insert("description".into(), param.doc.into());
            properties.insert(param.name.into(), Value::Object(schema));
            if param.required {
                required.push(param.name);
            }
        }
        let mut returns = Map::new();
        for (field, doc) in op.returns {
            returns.insert((*field).into(), json!({"description": doc}));
        }
        // OpenAPI 3.0 requires a non-empty `required` array: leave the key out when no
        // parameter is required.
        let mut body = json!({"type": "object", "additionalProperties": false, "properties": properties});
        if !required.is_empty() {
            body["required"] = json!(required);
        }
        paths.insert(
            format!("/api/{}", op.name),
            json!({
                "post": {
                    "operationId": op.name,
                    "summary": op.summary,
                    "tags": [if op.mutates { "change" } else { "read" }],
                    "requestBody": {
                        "required": !required.is_empty(),
                        "content": {"application/json": {"schema": body}}
                    },
                    "responses": {
                        "200": {"description": "Done.", "content": {"application/json": {"schema": {"type": "object", "properties": returns}}}},
                        "400": {"$ref": "#/components/responses/Error"},
                        "404": {"$ref": "#/components/responses/Error"},
                        "409": {"$ref": "#/components/responses/Error"},
                        "500": {"$ref": "#/components/responses/Error"}
                    }
                }
            }),
        );
    }
    json!({
        "openapi": "3.0.3",
        "info": {
            "title": "vpc agent API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "The VPC user guide's operations, served by `vpc daemon` over HTTP on a Unix socket (mode 0600). POST a JSON object of parameters to /api/<Action>."
        },
        "paths": paths,
        "components": {
            "responses": {"Error": {"description": "The request was refused; nothing changed.", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}},
            "schemas": {"Error": {"type": "object", "required": ["Code", "Message"], "properties": {
                "Code": {"type": "string", "description": "Stable error code, e.g. InvalidVSwitchCidr.Overlapped."},
                "Message": {"type": "string", "description": "What was wrong, naming the field and the limit."},
                "Field": {"type": "string", "description": "The offending parameter or document field."},
                "Problems": {"type": "array", "items": {"type": "object"}, "description": "Every validation problem found."}
            }}}
        }
    })
}

/// The document as committed to the repository.
pub fn pretty() -> String {
    serde_json::to_string_pretty(&document()).expect("JSON") + "\n"
}
