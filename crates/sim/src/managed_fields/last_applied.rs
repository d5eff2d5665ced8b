//! The client-side apply annotation (`kubectl.kubernetes.io/last-applied-configuration`)
//! as server-side apply meets it: the fields it lists, which `kubectl` may take over
//! without a conflict, and keeping it in step when `kubectl apply --server-side` writes
//! an object that carries one, serialized as Go's JSON encoder writes it.

use super::walk::raw_field_set;
use super::{FieldSet, LAST_APPLIED_ANNOTATION};
use crate::schema::Schema;
use serde_json::Value;

/// The fields of the live object's client-side apply annotation, if it has one.
pub(super) fn last_applied_fields(live: Option<&Value>, schema: Schema<'_>) -> Option<FieldSet> {
    let text = live?
        .get("metadata")?
        .get("annotations")?
        .get(LAST_APPLIED_ANNOTATION)?
        .as_str()?;
    let parsed: Value = serde_json::from_str(text).ok()?;
    Some(raw_field_set(&parsed, schema).0)
}

/// Keeps the client-side apply annotation in step with `kubectl apply --server-side`
/// when the object already carries one.
pub(super) fn sync_last_applied(obj: &mut Value, config: &Value) {
    let Some(Value::Object(annotations)) = obj.pointer_mut("/metadata/annotations") else {
        return;
    };
    if !annotations.contains_key(LAST_APPLIED_ANNOTATION) {
        return;
    }
    let mut applied = config.clone();
    if let Some(Value::Object(a)) = applied.pointer_mut("/metadata/annotations") {
        a.shift_remove(LAST_APPLIED_ANNOTATION);
    }
    annotations.insert(
        LAST_APPLIED_ANNOTATION.into(),
        Value::String(go_json(&applied)),
    );
}

/// JSON as Go's encoder writes it: keys sorted, HTML characters escaped, newline-ended.
pub(super) fn go_json(v: &Value) -> String {
    fn sorted(v: &Value) -> Value {
        match v {
            Value::Object(m) => {
                let mut keys: Vec<&String> = m.keys().collect();
                keys.sort();
                Value::Object(
                    keys.into_iter()
                        .map(|k| (k.clone(), sorted(&m[k.as_str()])))
                        .collect(),
                )
            }
            Value::Array(a) => Value::Array(a.iter().map(sorted).collect()),
            other => other.clone(),
        }
    }
    let text = sorted(v).to_string();
    let mut out = String::with_capacity(text.len() + 1);
    for ch in text.chars() {
        match ch {
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c => out.push(c),
        }
    }
    out.push('\n');
    out
}
