//! JSON Schema, judged by a full validator (the `jsonschema` crate): whether a tool's
//! `inputSchema` or `outputSchema` is a valid schema (TOOLS-03), and whether
//! `structuredContent` conforms to its `outputSchema` (TOOLS-08).
//!
//! A schema without `$schema` is read as 2020-12: "Clients and servers MUST support JSON
//! Schema 2020-12 for schemas without an explicit `$schema` field" (2025-11-25, Tools). One
//! that names a dialect is read in that dialect. References resolve only within the schema
//! and the bundled meta-schemas: the suite fetches nothing a server's schema points to.

use serde_json::Value;

/// What is wrong with a schema, when something is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SchemaProblem {
    /// The document breaks its dialect's meta-schema or cannot be compiled (a `$ref` into
    /// the document that leads nowhere, a `pattern` that is no regular expression).
    Invalid(String),
    /// `$schema` names a dialect the validator does not know, or a `$ref` points outside
    /// the document: the schema may be valid, but nothing here can tell.
    Unjudged(String),
}

/// A problem as a message shows it: what is wrong, in words, without the variant's name.
impl std::fmt::Display for SchemaProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SchemaProblem::Invalid(why) => write!(f, "the schema is invalid: {why}"),
            SchemaProblem::Unjudged(why) => write!(f, "the schema cannot be judged: {why}"),
        }
    }
}

/// The JSON Schema dialects the validator bundles, by their meta-schema URIs.
const KNOWN_DIALECTS: &[&str] = &[
    "https://json-schema.org/draft/2020-12/schema",
    "https://json-schema.org/draft/2019-09/schema",
    "http://json-schema.org/draft-07/schema",
    "http://json-schema.org/draft-06/schema",
    "http://json-schema.org/draft-04/schema",
];

fn known_dialect(uri: &str) -> bool {
    let uri = uri.trim_end_matches('#');
    KNOWN_DIALECTS
        .iter()
        .any(|known| *known == uri || known.replacen("http://", "https://", 1) == uri)
}

/// Whether `schema` is a valid JSON Schema in its dialect (2020-12 without `$schema`).
pub fn check_schema(schema: &Value) -> Result<(), SchemaProblem> {
    if !schema.is_object() && !schema.is_boolean() {
        return Err(SchemaProblem::Invalid(format!(
            "a schema is an object or a boolean, not {}",
            short(schema)
        )));
    }
    match schema.get("$schema") {
        Some(Value::String(uri)) if !known_dialect(uri) => {
            return Err(SchemaProblem::Unjudged(format!(
                "$schema names the dialect {uri:?}, which this validator does not know"
            )));
        }
        Some(Value::String(_)) | None => {}
        Some(other) => {
            return Err(SchemaProblem::Invalid(format!(
                "$schema is {}, not a URI string",
                short(other)
            )));
        }
    }
    if let Err(error) = jsonschema::meta::validate(schema) {
        return Err(SchemaProblem::Invalid(format!(
            "{} (at {})",
            error,
            pointer_or_root(error.instance_path().as_str())
        )));
    }
    match jsonschema::validator_for(schema) {
        Ok(_) => Ok(()),
        Err(error) if refers_outside(schema) => Err(SchemaProblem::Unjudged(format!(
            "the schema refers to another document, which the suite does not fetch: {error}"
        ))),
        Err(error) => Err(SchemaProblem::Invalid(error.to_string())),
    }
}

/// Whether some `$ref` or `$dynamicRef` in the schema leaves the document.
fn refers_outside(schema: &Value) -> bool {
    match schema {
        Value::Object(fields) => fields.iter().any(|(key, value)| {
            (matches!(key.as_str(), "$ref" | "$dynamicRef")
                && value.as_str().is_some_and(|r| !r.starts_with('#')))
                || refers_outside(value)
        }),
        Value::Array(items) => items.iter().any(refers_outside),
        _ => false,
    }
}

/// Validates `value` against `schema`: one message per violation, each with the path of
/// the offending value (empty when valid). `Err` when the schema itself cannot be used,
/// which TOOLS-03 judges.
pub fn validate(schema: &Value, value: &Value) -> Result<Vec<String>, SchemaProblem> {
    check_schema(schema)?;
    let validator =
        jsonschema::validator_for(schema).map_err(|e| SchemaProblem::Invalid(e.to_string()))?;
    Ok(validator
        .iter_errors(value)
        .map(|error| {
            format!(
                "{}: {}",
                pointer_or_root(error.instance_path().as_str()),
                error
            )
        })
        .collect())
}

fn pointer_or_root(pointer: &str) -> String {
    if pointer.is_empty() {
        "/".to_owned()
    } else {
        pointer.to_owned()
    }
}

fn short(v: &Value) -> String {
    let text = v.to_string();
    if text.chars().count() > 60 {
        format!("{}...", text.chars().take(60).collect::<String>())
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_profile_matching_its_schema_has_no_errors() {
        let schema = json!({
            "type": "object",
            "properties": {"login": {"type": "string"}, "id": {"type": "integer"}, "name": {"type": ["string", "null"]}},
            "required": ["login", "id"]
        });
        assert_eq!(
            validate(
                &schema,
                &json!({"login": "octocat", "id": 1, "name": null, "extra": true})
            ),
            Ok(vec![])
        );
    }

    #[test]
    fn wrong_types_and_missing_properties_are_reported_with_paths() {
        let schema = json!({
            "type": "object",
            "properties": {"id": {"type": "integer"}, "tags": {"type": "array", "items": {"$ref": "#/$defs/tag"}}},
            "required": ["id", "login"],
            "$defs": {"tag": {"type": "string"}}
        });
        let errors = validate(&schema, &json!({"id": "1", "tags": ["a", 2]})).unwrap();
        assert_eq!(errors.len(), 3, "{errors:?}");
        assert!(errors.iter().any(|e| e.starts_with("/id:")));
        assert!(errors.iter().any(|e| e.starts_with("/tags/1:")));
        assert!(errors.iter().any(|e| e.contains("\"login\"")));
    }

    #[test]
    fn keywords_beyond_types_are_judged() {
        let schema = json!({"type": "object", "properties": {"login": {"type": "string", "pattern": "^[a-z]+$"}}});
        assert_eq!(
            validate(&schema, &json!({"login": "Not Valid"}))
                .unwrap()
                .len(),
            1
        );
    }

    #[test]
    fn schemas_that_break_the_meta_schema_are_invalid() {
        for schema in [
            json!({"type": "object", "required": "login"}),
            json!({"type": "strin"}),
            json!({"type": "object", "properties": {"a": {"$ref": "#/$defs/missing"}}}),
            json!({"type": "string", "pattern": "("}),
            json!(null),
        ] {
            assert!(
                matches!(check_schema(&schema), Err(SchemaProblem::Invalid(_))),
                "{schema} passed"
            );
        }
    }

    #[test]
    fn valid_schemas_of_every_known_dialect_pass() {
        for schema in [
            json!({"type": "object", "properties": {}, "additionalProperties": false}),
            json!(true),
            json!({"$schema": "https://json-schema.org/draft/2020-12/schema", "type": "object", "$defs": {"x": {"type": "integer"}}}),
            json!({"$schema": "http://json-schema.org/draft-07/schema#", "type": "object", "definitions": {}}),
        ] {
            assert_eq!(check_schema(&schema), Ok(()), "{schema}");
        }
    }

    #[test]
    fn unknown_dialects_and_outside_references_are_not_judged() {
        for schema in [
            json!({"$schema": "https://example.com/my-dialect", "type": "object"}),
            json!({"type": "object", "properties": {"a": {"$ref": "https://example.com/a.json"}}}),
        ] {
            assert!(
                matches!(check_schema(&schema), Err(SchemaProblem::Unjudged(_))),
                "{schema}"
            );
        }
    }
}
