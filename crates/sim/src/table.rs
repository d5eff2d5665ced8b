//! Server-side printing: `meta.k8s.io/v1` Table responses for clients (kubectl) that
//! ask for them with `Accept: application/json;as=Table;…`.

use serde_json::{Value, json};

/// Whether an Accept header asks for a Table.
pub fn wants_table(accept: &str) -> bool {
    accept
        .split(',')
        .next()
        .is_some_and(|first| first.contains("as=Table"))
}

/// A Table of the given objects (a list's items or one object).
pub fn table(objects: &[Value], list_meta: Option<&Value>) -> Value {
    let rows: Vec<Value> = objects.iter().map(row).collect();
    let mut t = json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": list_meta.cloned().unwrap_or_else(|| json!({})),
        "columnDefinitions": [
            {"name": "Name", "type": "string", "format": "name", "description": "Name must be unique within a namespace.", "priority": 0},
            {"name": "Age", "type": "string", "format": "", "description": "CreationTimestamp of the object.", "priority": 0},
        ],
        "rows": rows,
    });
    if t["metadata"].is_null() {
        t["metadata"] = json!({});
    }
    t
}

fn row(obj: &Value) -> Value {
    let meta = &obj["metadata"];
    let age = meta["creationTimestamp"]
        .as_str()
        .map(age)
        .unwrap_or_else(|| "<unknown>".into());
    json!({
        "cells": [meta["name"].clone(), age],
        "object": {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": meta},
    })
}

fn age(ts: &str) -> String {
    let Ok(t) = chrono::DateTime::parse_from_rfc3339(ts) else {
        return "<unknown>".into();
    };
    let secs = (chrono::Utc::now() - t.with_timezone(&chrono::Utc))
        .num_seconds()
        .max(0);
    match secs {
        s if s < 120 => format!("{s}s"),
        s if s < 7_200 => format!("{}m", s / 60),
        s if s < 172_800 => format!("{}h", s / 3_600),
        s => format!("{}d", s / 86_400),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_has_a_row_per_object() {
        let t = table(
            &[json!({"metadata": {"name": "a", "creationTimestamp": "2020-01-01T00:00:00Z"}})],
            None,
        );
        assert_eq!(t["rows"][0]["cells"][0], "a");
        assert!(wants_table(
            "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"
        ));
        assert!(!wants_table("application/json"));
    }
}
