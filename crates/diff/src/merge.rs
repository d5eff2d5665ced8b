//! Prediction of the object server-side apply would produce: desired merged into live
//! (maps merged, list-maps merged by key, sets unioned, atomic lists replaced — with
//! same-position objects merged so API-server defaults inside items survive), and
//! three-way removal of fields a previous client-side apply set.

use serde_json::Value;

use crate::list_maps::{ListType, find_same, list_type};

/// Merges `desired` into `live` in place. `path` holds the keys leading here.
pub(crate) fn merge_into(
    kind: &str,
    path: &mut Vec<&'static str>,
    live: &mut Value,
    desired: &Value,
) {
    match (live, desired) {
        (Value::Object(live_map), Value::Object(desired_map)) => {
            for (key, want) in desired_map {
                match live_map.get_mut(key) {
                    Some(have) => {
                        path.push(intern(key));
                        merge_into(kind, path, have, want);
                        path.pop();
                    }
                    None => {
                        live_map.insert(key.clone(), want.clone());
                    }
                }
            }
        }
        (Value::Array(live_items), Value::Array(desired_items)) => {
            merge_list(kind, path, live_items, desired_items);
        }
        (live, desired) => *live = desired.clone(),
    }
}

fn merge_list(kind: &str, path: &mut Vec<&'static str>, live: &mut Vec<Value>, desired: &[Value]) {
    match list_type(kind, path, desired, live) {
        ListType::Map(keys) => {
            for want in desired {
                match find_same(live, want, keys) {
                    Some(i) => {
                        path.push("[]");
                        merge_into(kind, path, &mut live[i], want);
                        path.pop();
                    }
                    None => live.push(want.clone()),
                }
            }
        }
        ListType::Set => {
            for want in desired {
                if !live.contains(want) {
                    live.push(want.clone());
                }
            }
        }
        ListType::Atomic => {
            let same_shape = live.len() == desired.len()
                && live
                    .iter()
                    .zip(desired)
                    .all(|(l, d)| l.is_object() && d.is_object());
            if same_shape {
                path.push("[]");
                for (have, want) in live.iter_mut().zip(desired) {
                    merge_into(kind, path, have, want);
                }
                path.pop();
            } else {
                *live = desired.to_vec();
            }
        }
    }
}

/// Removes from `target` what `last_applied` set and `desired` no longer sets (kubectl's
/// three-way merge deletions).
pub(crate) fn remove_dropped(
    kind: &str,
    path: &mut Vec<&'static str>,
    last_applied: &Value,
    desired: Option<&Value>,
    target: &mut Value,
) {
    match (last_applied, target) {
        (Value::Object(last), Value::Object(target_map)) => {
            for (key, before) in last {
                let now = desired.and_then(|d| d.get(key)).filter(|v| !v.is_null());
                match now {
                    None => {
                        target_map.remove(key);
                    }
                    Some(now) => {
                        if let Some(next) = target_map.get_mut(key) {
                            path.push(intern(key));
                            remove_dropped(kind, path, before, Some(now), next);
                            path.pop();
                        }
                    }
                }
            }
        }
        (Value::Array(last), Value::Array(target_items)) => {
            let now: &[Value] = desired.and_then(Value::as_array).map_or(&[], Vec::as_slice);
            if let ListType::Map(keys) = list_type(kind, path, now, target_items) {
                for before in last {
                    let Some(t) = find_same(target_items, before, keys) else {
                        continue;
                    };
                    match find_same(now, before, keys) {
                        None => {
                            target_items.remove(t);
                        }
                        Some(d) => {
                            path.push("[]");
                            remove_dropped(kind, path, before, now.get(d), &mut target_items[t]);
                            path.pop();
                        }
                    }
                }
            }
        }
        _ => {}
    }
}

/// Path elements only feed the list-type table, which looks at a few known names; any
/// other key maps to a placeholder so paths can hold `&'static str`.
fn intern(key: &str) -> &'static str {
    const KNOWN: [&str; 24] = [
        "spec",
        "metadata",
        "template",
        "jobTemplate",
        "containers",
        "initContainers",
        "ephemeralContainers",
        "ports",
        "volumes",
        "env",
        "imagePullSecrets",
        "resourceClaims",
        "webhooks",
        "volumeMounts",
        "volumeDevices",
        "hostAliases",
        "topologySpreadConstraints",
        "ownerReferences",
        "finalizers",
        "conditions",
        "args",
        "command",
        "rules",
        "subjects",
    ];
    KNOWN.iter().find(|k| **k == key).copied().unwrap_or("*")
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn merged(kind: &str, live: Value, desired: Value) -> Value {
        let mut live = live;
        merge_into(kind, &mut Vec::new(), &mut live, &desired);
        live
    }

    #[test]
    fn list_maps_merge_by_key_and_keep_defaults() {
        let live = json!({"spec": {"template": {"spec": {"containers": [
            {"name": "b", "image": "b:1"},
            {"name": "a", "image": "a:1", "imagePullPolicy": "IfNotPresent",
             "ports": [{"containerPort": 80, "protocol": "TCP"}]}]}}}});
        let desired = json!({"spec": {"template": {"spec": {"containers": [
            {"name": "a", "image": "a:2", "ports": [{"containerPort": 80}]}]}}}});
        let out = merged("Deployment", live, desired);
        let a = &out["spec"]["template"]["spec"]["containers"][1];
        assert_eq!(a["image"], json!("a:2"));
        assert_eq!(a["imagePullPolicy"], json!("IfNotPresent"));
        assert_eq!(
            a["ports"],
            json!([{"containerPort": 80, "protocol": "TCP"}])
        );
    }

    #[test]
    fn atomic_lists_replace_unless_same_shape() {
        let out = merged("Pod", json!({"args": ["a", "b"]}), json!({"args": ["a"]}));
        assert_eq!(out, json!({"args": ["a"]}));
        let out = merged(
            "Pod",
            json!({"tolerations": [{"key": "k", "operator": "Equal"}]}),
            json!({"tolerations": [{"key": "k"}]}),
        );
        assert_eq!(
            out,
            json!({"tolerations": [{"key": "k", "operator": "Equal"}]})
        );
    }

    #[test]
    fn three_way_removes_dropped_fields() {
        let last = json!({"metadata": {"labels": {"a": "1", "b": "2"}}, "spec": {"template": {"spec": {
            "containers": [{"name": "c", "env": [{"name": "X", "value": "1"}, {"name": "Y", "value": "2"}]}]}}}});
        let desired = json!({"metadata": {"labels": {"a": "1"}}, "spec": {"template": {"spec": {
            "containers": [{"name": "c", "env": [{"name": "X", "value": "1"}]}]}}}});
        let mut target = json!({"metadata": {"labels": {"a": "1", "b": "2", "z": "9"}}, "spec": {"template": {"spec": {
            "containers": [{"name": "c", "env": [{"name": "X", "value": "1"}, {"name": "Y", "value": "2"}]}]}}}});
        remove_dropped(
            "Deployment",
            &mut Vec::new(),
            &last,
            Some(&desired),
            &mut target,
        );
        assert_eq!(target["metadata"]["labels"], json!({"a": "1", "z": "9"}));
        assert_eq!(
            target["spec"]["template"]["spec"]["containers"][0]["env"],
            json!([{"name": "X", "value": "1"}])
        );
    }
}
