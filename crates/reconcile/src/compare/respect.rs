//! `RespectIgnoreDifferences=true`: the object handed to the sync keeps the live values
//! of every field the ignoreDifferences rules ignore (and drops ignored fields live does
//! not have), so a sync does not revert them — Argo CD's `normalizeTargetResources`.
//!
//! `keelson-diff` keeps its rule application private, so the ignored fields are found
//! through its public API: the paths present in `normalize(x)` but absent from `diff`'s
//! ignore-rules-applied copy of `x` (Secret values masked the same way on both sides).
//! Arrays whose length changed count as one path, replaced whole (a JSON merge patch does
//! the same in Argo CD).

use keelson_diff::{DiffConfig, DiffError, diff, hide_secret_data, normalize};
use serde_json::Value;

/// One step of a path: an object field or an array index.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    Field(String),
    Index(usize),
}

/// `desired` with the ignored fields taken from `live`.
pub fn respect_ignore_differences(
    desired: &Value,
    live: &Value,
    config: &DiffConfig,
) -> Result<Value, DiffError> {
    if config.ignore.is_empty() {
        return Ok(desired.clone());
    }
    let live_full = normalize(live);
    let mut paths = Vec::new();
    if let Some(ignored) = diff(None, Some(live), config)?.normalized_live {
        let mut masked = live_full.clone();
        hide_secret_data(None, Some(&mut masked));
        removed_paths(&masked, &ignored, &mut Vec::new(), &mut paths);
    }
    if let Some(ignored) = diff(Some(desired), None, config)?.normalized_desired {
        let mut masked = normalize(desired);
        hide_secret_data(Some(&mut masked), None);
        removed_paths(&masked, &ignored, &mut Vec::new(), &mut paths);
    }
    let mut out = desired.clone();
    for path in &paths {
        match lookup(&live_full, path) {
            Some(value) => set(&mut out, path, value.clone()),
            None => remove(&mut out, path),
        }
    }
    Ok(out)
}

/// Paths present in `full` but absent (or different) in `kept`.
fn removed_paths(full: &Value, kept: &Value, at: &mut Vec<Step>, out: &mut Vec<Vec<Step>>) {
    match (full, kept) {
        (Value::Object(f), Value::Object(k)) => {
            for (name, value) in f {
                at.push(Step::Field(name.clone()));
                match k.get(name) {
                    Some(kept_value) => removed_paths(value, kept_value, at, out),
                    None => push_unique(out, at),
                }
                at.pop();
            }
        }
        (Value::Array(f), Value::Array(k)) if f.len() == k.len() => {
            for (i, (value, kept_value)) in f.iter().zip(k).enumerate() {
                at.push(Step::Index(i));
                removed_paths(value, kept_value, at, out);
                at.pop();
            }
        }
        _ if full != kept => push_unique(out, at),
        _ => {}
    }
}

fn push_unique(out: &mut Vec<Vec<Step>>, path: &[Step]) {
    if !out.iter().any(|p| p == path) {
        out.push(path.to_vec());
    }
}

fn child<'a>(value: &'a Value, step: &Step) -> Option<&'a Value> {
    match step {
        Step::Field(name) => value.get(name.as_str()),
        Step::Index(i) => value.get(*i),
    }
}

fn lookup<'a>(value: &'a Value, path: &[Step]) -> Option<&'a Value> {
    path.iter().try_fold(value, |v, step| child(v, step))
}

/// Sets `path` to `value`, creating objects on the way; an index out of range is left.
fn set(root: &mut Value, path: &[Step], value: Value) {
    let Some((last, parents)) = path.split_last() else {
        *root = value;
        return;
    };
    let mut current = root;
    for step in parents {
        let next = match step {
            Step::Field(name) => {
                if !current.is_object() {
                    *current = Value::Object(serde_json::Map::new());
                }
                current.as_object_mut().map(|m| {
                    m.entry(name.clone())
                        .or_insert_with(|| Value::Object(serde_json::Map::new()))
                })
            }
            Step::Index(i) => current.get_mut(*i),
        };
        let Some(next) = next else {
            return;
        };
        current = next;
    }
    match (last, current) {
        (Step::Field(name), Value::Object(map)) => {
            map.insert(name.clone(), value);
        }
        (Step::Index(i), Value::Array(items)) if *i < items.len() => items[*i] = value,
        _ => {}
    }
}

fn remove(root: &mut Value, path: &[Step]) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let mut current = root;
    for step in parents {
        let next = match step {
            Step::Field(name) => current.get_mut(name.as_str()),
            Step::Index(i) => current.get_mut(*i),
        };
        let Some(next) = next else {
            return;
        };
        current = next;
    }
    match (last, current) {
        (Step::Field(name), Value::Object(map)) => {
            map.remove(name);
        }
        (Step::Index(i), Value::Array(items)) if *i < items.len() => {
            items.remove(*i);
        }
        _ => {}
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use keelson_diff::IgnoreRules;
    use keelson_model::application::ResourceIgnoreDifferences;

    fn yaml(text: &str) -> Value {
        serde_yaml_ng::from_str(text).unwrap()
    }

    fn config(rules: &str) -> DiffConfig {
        let entries: Vec<ResourceIgnoreDifferences> = serde_yaml_ng::from_str(rules).unwrap();
        DiffConfig::default().with_ignore(IgnoreRules::from_application(&entries).unwrap())
    }

    #[test]
    fn ignored_fields_come_from_live() {
        let desired = yaml(
            r#"
apiVersion: apps/v1
kind: Deployment
metadata: {name: d, namespace: n, annotations: {team: a}}
spec:
  replicas: 1
  template: {spec: {containers: [{name: c, image: "web:1"}]}}
"#,
        );
        let live = yaml(
            r#"
apiVersion: apps/v1
kind: Deployment
metadata: {name: d, namespace: n, uid: u, annotations: {team: b}}
spec:
  replicas: 5
  template: {spec: {containers: [{name: c, image: "web:9"}]}}
status: {replicas: 5}
"#,
        );
        let cfg = config(
            r#"
- {group: apps, kind: Deployment, jsonPointers: [/spec/replicas, /metadata/annotations/missing]}
- {group: apps, kind: Deployment, jqPathExpressions: [".spec.template.spec.containers[].image"]}
"#,
        );
        let out = respect_ignore_differences(&desired, &live, &cfg).unwrap();
        assert_eq!(out["spec"]["replicas"], 5);
        assert_eq!(
            out["spec"]["template"]["spec"]["containers"][0]["image"],
            "web:9"
        );
        assert_eq!(out["metadata"]["annotations"]["team"], "a");
        assert!(out.get("status").is_none());
        assert!(out["metadata"].get("uid").is_none());
    }

    #[test]
    fn ignored_fields_absent_from_live_are_dropped_and_no_rules_is_identity() {
        let desired =
            yaml("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata: {a: '1', b: '2'}");
        let live = yaml("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata: {a: '1'}");
        let cfg = config("[{kind: ConfigMap, jsonPointers: [/data/b]}]");
        let out = respect_ignore_differences(&desired, &live, &cfg).unwrap();
        assert_eq!(out["data"], yaml("{a: '1'}"));
        let same = respect_ignore_differences(&desired, &live, &DiffConfig::default()).unwrap();
        assert_eq!(same, desired);
    }

    #[test]
    fn secret_values_come_from_live_unmasked() {
        let desired =
            yaml("apiVersion: v1\nkind: Secret\nmetadata: {name: s}\ndata: {a: YQ==, token: b2xk}");
        let live =
            yaml("apiVersion: v1\nkind: Secret\nmetadata: {name: s}\ndata: {a: YQ==, token: bmV3}");
        let cfg = config("[{kind: Secret, jsonPointers: [/data/token]}]");
        let out = respect_ignore_differences(&desired, &live, &cfg).unwrap();
        assert_eq!(out["data"], yaml("{a: YQ==, token: bmV3}"));
    }
}
