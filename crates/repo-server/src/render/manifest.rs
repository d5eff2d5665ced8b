//! Pure parsing of manifest text into Kubernetes objects: multi-document YAML streams and JSON,
//! empty documents skipped, `kind: List` (and `*List`) flattened, every object checked for
//! `apiVersion` and `kind`. Errors name where the text came from.

use serde::Deserialize;
use serde_json::Value;

/// How deep `List` objects may nest.
const MAX_LIST_DEPTH: usize = 8;

/// Why manifest text is not a valid stream of objects.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    /// YAML syntax error (the message carries line and column).
    #[error("{origin}: invalid yaml: {source}")]
    Yaml {
        /// File or tool the text came from.
        origin: String,
        /// The parser error.
        #[source]
        source: serde_yaml_ng::Error,
    },
    /// JSON syntax error (the message carries line and column).
    #[error("{origin}: invalid json: {source}")]
    Json {
        /// File or tool the text came from.
        origin: String,
        /// The parser error.
        #[source]
        source: serde_json::Error,
    },
    /// A document is not a Kubernetes object.
    #[error("{origin}: document {index} is not a kubernetes object: {reason}")]
    NotAnObject {
        /// File or tool the text came from.
        origin: String,
        /// Zero-based document index.
        index: usize,
        /// What is missing.
        reason: String,
    },
}

/// Parses a YAML (or JSON, which is YAML) stream into objects, flattening lists.
pub fn parse_yaml_stream(text: &str, origin: &str) -> Result<Vec<Value>, ManifestError> {
    let docs = parse_yaml_documents(text, origin)?;
    objects_from_documents(docs, origin)
}

/// Parses a YAML stream into its non-empty documents without checking them.
pub fn parse_yaml_documents(text: &str, origin: &str) -> Result<Vec<Value>, ManifestError> {
    let mut docs = Vec::new();
    for doc in serde_yaml_ng::Deserializer::from_str(text) {
        let value = Value::deserialize(doc).map_err(|source| ManifestError::Yaml {
            origin: origin.to_string(),
            source,
        })?;
        if !value.is_null() {
            docs.push(value);
        }
    }
    Ok(docs)
}

/// Parses one JSON document (an object or a list object).
pub fn parse_json(text: &str, origin: &str) -> Result<Vec<Value>, ManifestError> {
    let value: Value = serde_json::from_str(text).map_err(|source| ManifestError::Json {
        origin: origin.to_string(),
        source,
    })?;
    objects_from_documents(vec![value], origin)
}

/// Checks documents and flattens lists into objects.
pub fn objects_from_documents(docs: Vec<Value>, origin: &str) -> Result<Vec<Value>, ManifestError> {
    let mut out = Vec::with_capacity(docs.len());
    for (index, doc) in docs.into_iter().enumerate() {
        push_object(doc, origin, index, 0, &mut out)?;
    }
    Ok(out)
}

fn push_object(
    doc: Value,
    origin: &str,
    index: usize,
    depth: usize,
    out: &mut Vec<Value>,
) -> Result<(), ManifestError> {
    let not_object = |reason: &str| ManifestError::NotAnObject {
        origin: origin.to_string(),
        index,
        reason: reason.to_string(),
    };
    let Value::Object(map) = doc else {
        return Err(not_object("not a mapping"));
    };
    if is_list(&map) {
        if depth >= MAX_LIST_DEPTH {
            return Err(not_object("lists nested too deeply"));
        }
        if let Some(Value::Array(items)) = map.get("items") {
            for item in items.clone() {
                push_object(item, origin, index, depth + 1, out)?;
            }
        }
        return Ok(());
    }
    let has = |key: &str| {
        map.get(key)
            .and_then(Value::as_str)
            .is_some_and(|s| !s.is_empty())
    };
    if !has("apiVersion") {
        return Err(not_object("missing apiVersion"));
    }
    if !has("kind") {
        return Err(not_object("missing kind"));
    }
    out.push(Value::Object(map));
    Ok(())
}

/// Argo CD's list check: `kind` ends with `List` and `items` is an array or null (and the
/// object has no `spec`/`status`).
fn is_list(map: &serde_json::Map<String, Value>) -> bool {
    let kind_is_list = map
        .get("kind")
        .and_then(Value::as_str)
        .is_some_and(|k| k.ends_with("List"));
    let items_ok = matches!(map.get("items"), Some(Value::Array(_)) | Some(Value::Null));
    kind_is_list && items_ok && !map.contains_key("spec") && !map.contains_key("status")
}

/// Whether a document looks like it was meant to be a Kubernetes object.
pub fn looks_like_object(doc: &Value) -> bool {
    doc.as_object()
        .is_some_and(|m| m.contains_key("apiVersion") || m.contains_key("kind"))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn multi_document_with_empty_docs_and_lists() {
        let text = "---\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n---\n# only a comment\n---\napiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: Secret\n  metadata: {name: b}\n- apiVersion: v1\n  kind: ConfigMapList\n  items:\n  - {apiVersion: v1, kind: ConfigMap, metadata: {name: c}}\n";
        let objs = parse_yaml_stream(text, "f.yaml").unwrap();
        let names: Vec<&str> = objs
            .iter()
            .map(|o| o["metadata"]["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["a", "b", "c"]);
    }

    #[test]
    fn missing_kind_names_the_origin() {
        let err =
            parse_yaml_stream("apiVersion: v1\nmetadata: {name: a}\n", "dir/x.yaml").unwrap_err();
        assert!(err.to_string().contains("dir/x.yaml"), "{err}");
        assert!(err.to_string().contains("missing kind"), "{err}");
    }

    #[test]
    fn yaml_errors_carry_the_line() {
        let err = parse_yaml_stream(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: [a\n",
            "bad.yaml",
        )
        .unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("bad.yaml") && msg.contains("line"), "{msg}");
    }

    #[test]
    fn json_object() {
        let objs = parse_json(
            r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"j"}}"#,
            "j.json",
        )
        .unwrap();
        assert_eq!(objs.len(), 1);
        assert!(
            parse_json("{", "j.json")
                .unwrap_err()
                .to_string()
                .contains("j.json")
        );
    }
}
