//! `docs/events.schema.json` (JSON Schema 2020-12) as the JSON Schema draft 4 that
//! the EventBridge schema registry takes (`JSONSchemaDraft4`, or OpenAPI 3): `$defs`
//! become `definitions`, `const` a one-value `enum`, `if`/`then`/`else` an
//! `anyOf` of the two branches. template.yaml's `OrderEventSchema` holds the result
//! (`make schema` writes it; a test fails when it drifts).

use serde_json::{Map, Value, json};

pub const DRAFT4: &str = "http://json-schema.org/draft-04/schema#";

pub fn draft4(schema: &Value) -> Value {
    match schema {
        Value::Object(map) => {
            let mut out = Map::new();
            let mut condition = None;
            let (mut then, mut otherwise) = (json!({}), json!({}));
            for (key, value) in map {
                match key.as_str() {
                    "$schema" => {
                        out.insert(key.clone(), json!(DRAFT4));
                    }
                    // Maps of names to schemas: the names are not keywords.
                    "$defs" | "definitions" | "properties" => {
                        let named = value
                            .as_object()
                            .map(|m| m.iter().map(|(k, v)| (k.clone(), draft4(v))).collect())
                            .unwrap_or_default();
                        let key = if key == "$defs" { "definitions" } else { key };
                        out.insert(key.into(), Value::Object(named));
                    }
                    "$ref" => {
                        let target = value.as_str().unwrap_or_default();
                        out.insert(
                            key.clone(),
                            json!(target.replace("#/$defs/", "#/definitions/")),
                        );
                    }
                    "const" => {
                        out.insert("enum".into(), json!([value]));
                    }
                    "if" => condition = Some(draft4(value)),
                    "then" => then = draft4(value),
                    "else" => otherwise = draft4(value),
                    _ => {
                        out.insert(key.clone(), draft4(value));
                    }
                }
            }
            if let Some(condition) = condition {
                let branches = json!({ "anyOf": [
                    { "allOf": [condition, then] },
                    { "allOf": [{ "not": condition }, otherwise] },
                ]});
                match out.get_mut("allOf").and_then(Value::as_array_mut) {
                    Some(all) => all.push(branches),
                    None => {
                        out.insert("allOf".into(), json!([branches]));
                    }
                }
            }
            Value::Object(out)
        }
        Value::Array(items) => Value::Array(items.iter().map(draft4).collect()),
        other => other.clone(),
    }
}

/// The resource whose `Content` holds the registered schema.
pub const RESOURCE: &str = "OrderEventSchema";

/// `template` with `schema` as `OrderEventSchema`'s `Content`: one line of JSON under
/// its `Content: >-`. `None` if the template has no such place.
pub fn with_registered_schema(template: &str, schema: &Value) -> Option<String> {
    let mut lines: Vec<String> = template.lines().map(str::to_string).collect();
    let start = lines.iter().position(|l| l == &format!("  {RESOURCE}:"))?;
    let content = start
        + lines[start..]
            .iter()
            .position(|l| l.trim() == "Content: >-")?;
    let indent = " ".repeat(lines[content].len() - lines[content].trim_start().len() + 2);
    *lines.get_mut(content + 1)? = format!("{indent}{schema}");
    let mut text = lines.join("\n");
    text.push('\n');
    Some(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn later_keywords_become_their_draft_4_equivalents() {
        let schema = json!({
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "$ref": "#/$defs/A",
            "$defs": { "A": {
                "type": "object",
                "properties": { "if": { "const": "x" }, "b": { "$ref": "#/$defs/B" } },
                "if": { "properties": { "b": { "const": 1 } } },
                "then": { "required": ["if"] },
            }, "B": { "type": "integer" } }
        });
        assert_eq!(
            draft4(&schema),
            json!({
                "$schema": DRAFT4,
                "$ref": "#/definitions/A",
                "definitions": { "A": {
                    "type": "object",
                    "properties": { "if": { "enum": ["x"] }, "b": { "$ref": "#/definitions/B" } },
                    "allOf": [{ "anyOf": [
                        { "allOf": [{ "properties": { "b": { "enum": [1] } } }, { "required": ["if"] }] },
                        { "allOf": [{ "not": { "properties": { "b": { "enum": [1] } } } }, {}] },
                    ]}],
                }, "B": { "type": "integer" } }
            })
        );
    }
}
