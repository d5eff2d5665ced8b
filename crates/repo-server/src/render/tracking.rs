//! Pure application of Argo CD's resource tracking to rendered objects: the instance label
//! and/or the `argocd.argoproj.io/tracking-id` annotation
//! (`<app>:<group>/<Kind>:<namespace>/<name>`). As in Argo CD's repo-server,
//! CustomResourceDefinitions are left untouched.

use keelson_model::annotations::TRACKING_ID;
use keelson_model::tracking::TrackingId;
use serde_json::{Map, Value};

use crate::render::{Tracking, TrackingMethod};

/// Longest label value Kubernetes accepts.
const LABEL_MAX: usize = 63;

/// Applies tracking to every object (CRDs excepted).
pub fn apply(objects: &mut [Value], tracking: &Tracking) {
    if tracking.app_instance.is_empty() {
        return;
    }
    for obj in objects.iter_mut() {
        if is_crd(obj) {
            continue;
        }
        match tracking.method {
            TrackingMethod::Label => set_label(obj, &tracking.label_key, &tracking.app_instance),
            TrackingMethod::Annotation => set_annotation(obj, tracking),
            TrackingMethod::AnnotationAndLabel => {
                set_annotation(obj, tracking);
                set_label(
                    obj,
                    &tracking.label_key,
                    &truncate_label(&tracking.app_instance),
                );
            }
        }
    }
}

/// The tracking id for an object.
pub fn tracking_id(obj: &Value, app_instance: &str, default_namespace: &str) -> String {
    let api_version = obj.get("apiVersion").and_then(Value::as_str).unwrap_or("");
    let group = keelson_model::resource_key::group_of(api_version);
    let kind = obj.get("kind").and_then(Value::as_str).unwrap_or("");
    let meta = obj.get("metadata");
    let name = meta
        .and_then(|m| m.get("name"))
        .and_then(Value::as_str)
        .unwrap_or("");
    let namespace = meta
        .and_then(|m| m.get("namespace"))
        .and_then(Value::as_str)
        .filter(|ns| !ns.is_empty())
        .unwrap_or(default_namespace);
    TrackingId {
        app: app_instance,
        group,
        kind,
        namespace,
        name,
    }
    .to_string()
}

fn is_crd(obj: &Value) -> bool {
    obj.get("kind").and_then(Value::as_str) == Some("CustomResourceDefinition")
        && obj
            .get("apiVersion")
            .and_then(Value::as_str)
            .is_some_and(|v| v.starts_with("apiextensions.k8s.io/"))
}

/// Truncates to 63 characters and trims trailing non-alphanumerics, as Argo CD does for the
/// informational label.
fn truncate_label(value: &str) -> String {
    if value.len() <= LABEL_MAX {
        return value.to_string();
    }
    let mut cut: String = value.chars().take(LABEL_MAX).collect();
    while cut.len() > 1 && !cut.ends_with(|c: char| c.is_ascii_alphanumeric()) {
        cut.pop();
    }
    cut
}

fn metadata_map<'a>(obj: &'a mut Value, field: &str) -> Option<&'a mut Map<String, Value>> {
    let map = obj.as_object_mut()?;
    let meta = map
        .entry("metadata")
        .or_insert_with(|| Value::Object(Map::new()));
    if !meta.is_object() {
        *meta = Value::Object(Map::new());
    }
    let inner = meta
        .as_object_mut()?
        .entry(field)
        .or_insert_with(|| Value::Object(Map::new()));
    if !inner.is_object() {
        *inner = Value::Object(Map::new());
    }
    inner.as_object_mut()
}

fn set_label(obj: &mut Value, key: &str, value: &str) {
    if let Some(labels) = metadata_map(obj, "labels") {
        labels.insert(key.to_string(), Value::String(value.to_string()));
    }
}

fn set_annotation(obj: &mut Value, tracking: &Tracking) {
    let id = tracking_id(obj, &tracking.app_instance, &tracking.app_namespace);
    if let Some(annotations) = metadata_map(obj, "annotations") {
        annotations.insert(TRACKING_ID.to_string(), Value::String(id));
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn tracking(method: TrackingMethod, app: &str) -> Tracking {
        Tracking {
            method,
            label_key: "app.kubernetes.io/instance".into(),
            app_instance: app.into(),
            app_namespace: "dest".into(),
        }
    }

    #[test]
    fn annotation_format_matches_argo_cd() {
        let mut objs = vec![
            json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d", "namespace": "ns"}}),
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}}),
        ];
        apply(
            &mut objs,
            &tracking(TrackingMethod::Annotation, "guestbook"),
        );
        assert_eq!(
            objs[0]["metadata"]["annotations"][TRACKING_ID],
            "guestbook:apps/Deployment:ns/d"
        );
        assert_eq!(
            objs[1]["metadata"]["annotations"][TRACKING_ID],
            "guestbook:/ConfigMap:dest/c"
        );
        assert!(objs[0]["metadata"].get("labels").is_none());
    }

    #[test]
    fn label_and_both() {
        let mut objs = vec![
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "labels": {"x": "y"}}}),
        ];
        apply(&mut objs, &tracking(TrackingMethod::Label, "guestbook"));
        assert_eq!(
            objs[0]["metadata"]["labels"]["app.kubernetes.io/instance"],
            "guestbook"
        );
        assert_eq!(objs[0]["metadata"]["labels"]["x"], "y");
        let long = format!("{}-", "a".repeat(70));
        apply(
            &mut objs,
            &tracking(TrackingMethod::AnnotationAndLabel, &long),
        );
        assert_eq!(
            objs[0]["metadata"]["labels"]["app.kubernetes.io/instance"],
            "a".repeat(63)
        );
        assert!(
            objs[0]["metadata"]["annotations"][TRACKING_ID]
                .as_str()
                .unwrap()
                .starts_with(&long)
        );
    }

    #[test]
    fn crds_are_untouched() {
        let crd = json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition", "metadata": {"name": "x.example.com"}});
        let mut objs = vec![crd.clone()];
        apply(
            &mut objs,
            &tracking(TrackingMethod::AnnotationAndLabel, "app"),
        );
        assert_eq!(objs[0], crd);
    }
}
