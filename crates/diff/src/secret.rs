//! Masking of Secret values (like Argo CD's HideSecretData): each distinct value of a
//! key becomes a run of `+` whose length tells values apart, so a diff shows that a value
//! changed without showing it.

use std::collections::BTreeMap;

use serde_json::Value;

/// Masks `data` values of Secrets on both sides in place.
pub fn hide_secret_data(desired: Option<&mut Value>, live: Option<&mut Value>) {
    let mut sides: Vec<&mut Value> = [desired, live]
        .into_iter()
        .flatten()
        .filter(|v| v.get("kind").and_then(Value::as_str) == Some("Secret"))
        .collect();
    let mut masks: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for side in sides.iter_mut() {
        if let Some(Value::Object(data)) = side.get_mut("data") {
            for (key, value) in data.iter_mut() {
                let per_key = masks.entry(key.clone()).or_default();
                let next = "+".repeat(8 + 4 * per_key.len());
                let mask = per_key.entry(value.to_string()).or_insert(next).clone();
                *value = Value::String(mask);
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn equal_values_share_a_mask_and_changes_show() {
        let mut d = json!({"kind": "Secret", "data": {"a": "c2VjcmV0", "b": "eA=="}});
        let mut l = json!({"kind": "Secret", "data": {"a": "c2VjcmV0", "b": "eQ=="}});
        hide_secret_data(Some(&mut d), Some(&mut l));
        assert_eq!(d["data"]["a"], l["data"]["a"]);
        assert_ne!(d["data"]["b"], l["data"]["b"]);
        assert!(!d.to_string().contains("c2VjcmV0") && !l.to_string().contains("c2VjcmV0"));
        let mut cm = json!({"kind": "ConfigMap", "data": {"a": "plain"}});
        hide_secret_data(Some(&mut cm), None);
        assert_eq!(cm["data"]["a"], json!("plain"));
    }
}
