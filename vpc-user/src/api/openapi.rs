//! The OpenAPI 3 document of the API, generated from the operation table so it cannot drift.
//! A copy is kept in the repository (vpc-user/api/openapi.json); a test checks it is current and
//! `vpc openapi > vpc-user/api/openapi.json` refreshes it. The agent serves it at GET /openapi.json.

use serde_json::{Map, Value, json};

use super::{Kind, ops};

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
            let mut schema =
                response_type(field).unwrap_or_else(|| panic!("{}'s response field {field} has no type (openapi::response_type)", op.name));
            schema["description"] = json!(doc);
            returns.insert((*field).into(), schema);
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

/// The schema of a response field. The API gives one name one shape in every response (an `*Id`
/// is always a string, a list of resources always an array of objects), so the type follows
/// from the name; a test checks every declared field has one, and the test helpers check every
/// response a test sees against it. Any field may be null (absent).
pub fn response_type(field: &str) -> Option<Value> {
    let schema = match field {
        "TotalCount" | "Attached" | "Detached" | "Revision" => json!({"type": "integer", "minimum": 0}),
        "StatisticsAvailable" => json!({"type": "boolean"}),
        "Changes" | "Down" => json!({"type": "array", "items": {}}),
        "Ids" | "InnerAccess" | "Report" | "Topology" | "Conntrack" | "Underlay" => json!({"type": "object"}),
        "MacAddress" | "PrivateIpAddress" | "InnerAccessPolicy" | "SecurityGroupName" | "Description" | "Host" | "AccessKeySecret"
        | "Account" => {
            json!({"type": "string"})
        }
        f if f.ends_with("Id") => json!({"type": "string"}),
        "Vpcs"
        | "VSwitches"
        | "RouterTableList"
        | "RouteEntrys"
        | "NetworkInterfaceSets"
        | "Gateways"
        | "Cens"
        | "SecurityGroups"
        | "Permissions"
        | "FlowLogs"
        | "Groups"
        | "Enis"
        | "Drops"
        | "Hosts"
        | "Events"
        | "AccessKeys" => json!({"type": "array", "items": {"type": "object"}}),
        _ => return None,
    };
    let mut schema = schema;
    schema["nullable"] = json!(true);
    Some(schema)
}

/// The document as committed to the repository.
pub fn pretty() -> String {
    serde_json::to_string_pretty(&document()).expect("JSON") + "\n"
}

/// Whether `response` of `action` has only the fields the document declares, each of its type.
pub fn check_response(action: &str, response: &Value) -> Result<(), String> {
    let op = super::find(action).ok_or_else(|| format!("no action {action}"))?;
    let Value::Object(fields) = response else { return Err(format!("{action} answered {response}, not an object")) };
    for (name, value) in fields {
        if !op.returns.iter().any(|(f, _)| f == name) {
            return Err(format!("{action} answered {name}, which its document does not declare"));
        }
        let schema = response_type(name).ok_or_else(|| format!("{action}'s {name} has no type"))?;
        let ok = value.is_null()
            || match schema["type"].as_str() {
                Some("integer") => value.is_u64(),
                Some("boolean") => value.is_boolean(),
                Some("string") => value.is_string(),
                Some("object") => value.is_object(),
                Some("array") if schema["items"]["type"] == "object" => value.as_array().is_some_and(|a| a.iter().all(Value::is_object)),
                Some("array") => value.is_array(),
                _ => false,
            };
        if !ok {
            return Err(format!("{action}'s {name} is {value}, not the {schema} its document declares"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_response_is_checked_against_its_declared_fields_and_types() {
        assert!(check_response("CreateVpc", &json!({"VpcId": "vpc-1", "VRouterId": "vrt-1", "RouteTableId": "vtb-1"})).is_ok());
        assert!(check_response("DescribeVpcs", &json!({"Vpcs": [{"VpcId": "vpc-1"}], "TotalCount": 1})).is_ok());
        assert!(check_response("DescribeVpcs", &json!({"Vpcs": [], "TotalCount": "1"})).unwrap_err().contains("TotalCount"));
        assert!(check_response("DescribeVpcs", &json!({"Vpcs": [1], "TotalCount": 1})).unwrap_err().contains("Vpcs"));
        assert!(check_response("CreateVpc", &json!({"VpcId": "vpc-1", "Extra": 1})).unwrap_err().contains("does not declare"));
    }

    #[test]
    fn every_declared_response_field_has_a_type() {
        for op in ops::all() {
            for (field, _) in op.returns {
                assert!(response_type(field).is_some(), "{}: {field}", op.name);
            }
        }
    }
}
