//! What an object's metadata says about its part in a comparison: the application that
//! tracks it, hook and `Skip` annotations, compare options, owner references and the
//! ignore-healthcheck annotation.

use keelson_model::ResourceKey;
use keelson_model::annotations::{COMPARE_OPTIONS, HOOK, TRACKING_ID};
use keelson_model::tracking::{TrackingId, TrackingMethod};
use serde_json::Value;

/// Annotation that keeps a resource's health out of its application's health.
pub const IGNORE_HEALTHCHECK: &str = "argocd.argoproj.io/ignore-healthcheck";

/// An annotation's value.
pub(crate) fn annotation<'a>(obj: &'a Value, name: &str) -> Option<&'a str> {
    obj.get("metadata")?.get("annotations")?.get(name)?.as_str()
}

/// A label's value.
fn label<'a>(obj: &'a Value, name: &str) -> Option<&'a str> {
    obj.get("metadata")?.get("labels")?.get(name)?.as_str()
}

/// Whether the comma-separated option list in annotation `name` holds `option`.
pub(crate) fn has_option(obj: &Value, name: &str, option: &str) -> bool {
    annotation(obj, name).is_some_and(|list| list.split(',').any(|o| o.trim() == option))
}

/// The application instance tracking `obj` (key `key`), as Argo CD reads it: the
/// instance label for label tracking, the tracking-id annotation otherwise — and only
/// when that id names this very object (a copied id does not track).
pub(crate) fn tracked_app<'a>(
    obj: &'a Value,
    key: &ResourceKey,
    method: TrackingMethod,
    label_key: &str,
) -> Option<&'a str> {
    match method {
        TrackingMethod::Label => label(obj, label_key).filter(|v| !v.is_empty()),
        TrackingMethod::Annotation | TrackingMethod::AnnotationAndLabel => {
            let id = TrackingId::parse(annotation(obj, TRACKING_ID)?)?;
            id.names(key).then_some(id.app)
        }
    }
}

/// `argocd.argoproj.io/hook` lists `Skip`: the resource is neither synced nor compared.
pub(crate) fn is_skipped(obj: &Value) -> bool {
    annotation(obj, HOOK).is_some_and(|list| list.split(',').any(|h| h.trim() == "Skip"))
}

/// `argocd.argoproj.io/compare-options: IgnoreExtraneous`.
pub(crate) fn ignores_extraneous(obj: &Value) -> bool {
    has_option(obj, COMPARE_OPTIONS, "IgnoreExtraneous")
}

/// The object has owner references: it is a child of another object, never a top-level
/// resource of an application (Argo CD's cluster cache skips such objects).
pub(crate) fn has_owner(obj: &Value) -> bool {
    obj.get("metadata")
        .and_then(|m| m.get("ownerReferences"))
        .and_then(Value::as_array)
        .is_some_and(|refs| !refs.is_empty())
}

/// `argocd.argoproj.io/ignore-healthcheck: "true"`.
pub(crate) fn ignores_health(obj: &Value) -> bool {
    annotation(obj, IGNORE_HEALTHCHECK) == Some("true")
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn yaml(text: &str) -> Value {
        serde_yaml_ng::from_str(text).unwrap()
    }

    #[test]
    fn tracking_by_label_and_by_self_referencing_annotation() {
        let obj = yaml(
            r#"
apiVersion: v1
kind: ConfigMap
metadata:
  name: cm
  namespace: ns
  labels: {app.kubernetes.io/instance: guestbook}
  annotations: {argocd.argoproj.io/tracking-id: "other:/ConfigMap:ns/cm"}
"#,
        );
        let key = ResourceKey::new("", "ConfigMap", "ns", "cm");
        let label_key = "app.kubernetes.io/instance";
        assert_eq!(
            tracked_app(&obj, &key, TrackingMethod::Label, label_key),
            Some("guestbook")
        );
        assert_eq!(
            tracked_app(&obj, &key, TrackingMethod::Annotation, label_key),
            Some("other")
        );
        let copied = ResourceKey::new("", "ConfigMap", "ns", "copy");
        assert_eq!(
            tracked_app(&obj, &copied, TrackingMethod::AnnotationAndLabel, label_key),
            None
        );
    }

    #[test]
    fn option_lists_and_flags() {
        let obj = yaml(
            r#"
metadata:
  annotations:
    argocd.argoproj.io/compare-options: "ServerSideDiff=true, IgnoreExtraneous"
    argocd.argoproj.io/hook: "PreSync,Skip"
    argocd.argoproj.io/ignore-healthcheck: "true"
  ownerReferences: [{kind: ReplicaSet, name: rs}]
"#,
        );
        assert!(ignores_extraneous(&obj));
        assert!(is_skipped(&obj));
        assert!(ignores_health(&obj));
        assert!(has_owner(&obj));
        let bare = yaml("metadata: {name: x, ownerReferences: []}");
        assert!(!ignores_extraneous(&bare) && !is_skipped(&bare) && !has_owner(&bare));
    }
}
