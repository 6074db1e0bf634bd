//! A small JSON Schema validator for `structuredContent` against a tool's `outputSchema`
//! (TOOLS-08). It covers the keywords tool output schemas use in practice: `type` (including
//! type arrays and `integer`), `properties`, `required`, `additionalProperties`, `items`,
//! `enum`, `const`, `allOf`/`anyOf`/`oneOf`, `minimum`/`maximum`, `minLength`/`maxLength`,
//! `minItems`/`maxItems`, and local `$ref`s (`#/$defs/..`, `#/definitions/..`). Other keywords
//! (`pattern`, `format`, ...) are ignored, so a document it accepts may still be invalid for a
//! full 2020-12 validator; it never rejects a valid one for a keyword it understands.

use serde_json::Value;

/// Validates `value` against `schema`, returning one message per violation (empty when valid).
pub fn validate(schema: &Value, value: &Value) -> Vec<String> {
    let mut errors = Vec::new();
    check(schema, schema, value, "", &mut errors, 0);
    errors
}

fn type_matches(t: &str, v: &Value) -> bool {
    match t {
        "object" => v.is_object(),
        "array" => v.is_array(),
        "string" => v.is_string(),
        "boolean" => v.is_boolean(),
        "null" => v.is_null(),
        "number" => v.is_number(),
        "integer" => {
            v.as_i64().is_some()
                || v.as_u64().is_some()
                || v.as_f64().is_some_and(|f| f.fract() == 0.0)
        }
        _ => true,
    }
}

fn resolve<'a>(root: &'a Value, reference: &str) -> Option<&'a Value> {
    let pointer = reference.strip_prefix('#')?;
    root.pointer(pointer)
}

fn check(
    root: &Value,
    schema: &Value,
    v: &Value,
    path: &str,
    errors: &mut Vec<String>,
    depth: usize,
) {
    if depth > 64 {
        errors.push(format!("{path}: schema nesting too deep (recursive $ref?)"));
        return;
    }
    let Some(s) = schema.as_object() else {
        if schema == &Value::Bool(false) {
            errors.push(format!("{path}: no value is allowed here"));
        }
        return;
    };
    let at = |p: &str| {
        if p.is_empty() {
            "/".to_owned()
        } else {
            p.to_owned()
        }
    };
    if let Some(r) = s.get("$ref").and_then(Value::as_str) {
        match resolve(root, r) {
            Some(target) => check(root, target, v, path, errors, depth + 1),
            None => errors.push(format!("{}: unresolvable $ref {r}", at(path))),
        }
    }
    if let Some(t) = s.get("type") {
        let ok = match t {
            Value::String(t) => type_matches(t, v),
            Value::Array(ts) => ts
                .iter()
                .filter_map(Value::as_str)
                .any(|t| type_matches(t, v)),
            _ => true,
        };
        if !ok {
            errors.push(format!("{}: expected type {t}, got {}", at(path), short(v)));
            return;
        }
    }
    if let Some(options) = s.get("enum").and_then(Value::as_array)
        && !options.contains(v)
    {
        errors.push(format!(
            "{}: {} is not one of {}",
            at(path),
            short(v),
            Value::Array(options.clone())
        ));
    }
    if let Some(c) = s.get("const")
        && c != v
    {
        errors.push(format!("{}: expected {c}, got {}", at(path), short(v)));
    }
    if let Some(all) = s.get("allOf").and_then(Value::as_array) {
        for sub in all {
            check(root, sub, v, path, errors, depth + 1);
        }
    }
    for (kw, exactly_one) in [("anyOf", false), ("oneOf", true)] {
        if let Some(options) = s.get(kw).and_then(Value::as_array) {
            let matching = options
                .iter()
                .filter(|sub| {
                    let mut e = Vec::new();
                    check(root, sub, v, path, &mut e, depth + 1);
                    e.is_empty()
                })
                .count();
            if matching == 0 || (exactly_one && matching > 1) {
                errors.push(format!(
                    "{}: {kw} matched {matching} alternatives",
                    at(path)
                ));
            }
        }
    }
    if let Some(n) = v.as_f64() {
        if let Some(min) = s.get("minimum").and_then(Value::as_f64)
            && n < min
        {
            errors.push(format!("{}: {n} < minimum {min}", at(path)));
        }
        if let Some(max) = s.get("maximum").and_then(Value::as_f64)
            && n > max
        {
            errors.push(format!("{}: {n} > maximum {max}", at(path)));
        }
    }
    if let Some(text) = v.as_str() {
        let len = text.chars().count() as u64;
        if s.get("minLength")
            .and_then(Value::as_u64)
            .is_some_and(|m| len < m)
        {
            errors.push(format!("{}: string shorter than minLength", at(path)));
        }
        if s.get("maxLength")
            .and_then(Value::as_u64)
            .is_some_and(|m| len > m)
        {
            errors.push(format!("{}: string longer than maxLength", at(path)));
        }
    }
    if let Some(items) = v.as_array() {
        if let Some(item_schema) = s.get("items") {
            for (i, item) in items.iter().enumerate() {
                check(
                    root,
                    item_schema,
                    item,
                    &format!("{path}/{i}"),
                    errors,
                    depth + 1,
                );
            }
        }
        let n = items.len() as u64;
        if s.get("minItems")
            .and_then(Value::as_u64)
            .is_some_and(|m| n < m)
        {
            errors.push(format!("{}: fewer than minItems", at(path)));
        }
        if s.get("maxItems")
            .and_then(Value::as_u64)
            .is_some_and(|m| n > m)
        {
            errors.push(format!("{}: more than maxItems", at(path)));
        }
    }
    if let Some(obj) = v.as_object() {
        if let Some(required) = s.get("required").and_then(Value::as_array) {
            for name in required.iter().filter_map(Value::as_str) {
                if !obj.contains_key(name) {
                    errors.push(format!("{}: missing required property {name:?}", at(path)));
                }
            }
        }
        let props = s.get("properties").and_then(Value::as_object);
        for (k, child) in obj {
            let child_path = format!("{path}/{k}");
            match props.and_then(|p| p.get(k)) {
                Some(sub) => check(root, sub, child, &child_path, errors, depth + 1),
                None => match s.get("additionalProperties") {
                    Some(Value::Bool(false)) => {
                        errors.push(format!("{}: property {k:?} is not allowed", at(path)));
                    }
                    Some(sub @ Value::Object(_)) => {
                        check(root, sub, child, &child_path, errors, depth + 1)
                    }
                    _ => {}
                },
            }
        }
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
        assert!(
            validate(
                &schema,
                &json!({"login": "octocat", "id": 1, "name": null, "extra": true})
            )
            .is_empty()
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
        let errors = validate(&schema, &json!({"id": "1", "tags": ["a", 2]}));
        assert_eq!(errors.len(), 3, "{errors:?}");
        assert!(errors.iter().any(|e| e.starts_with("/id:")));
        assert!(errors.iter().any(|e| e.starts_with("/tags/1:")));
        assert!(errors.iter().any(|e| e.contains("\"login\"")));
    }
}
