//! Which application an object belongs to: the instance label or the
//! `argocd.argoproj.io/tracking-id` annotation (`<app>:<group>/<kind>:<namespace>/<name>`),
//! as Argo CD reads them.

use std::collections::BTreeMap;

use keelson_model::ResourceKey;
use keelson_model::annotations::TRACKING_ID;
use keelson_model::tracking::{TrackingId, TrackingMethod};

/// The application an object belongs to, if any.
pub fn app_of<'a>(
    method: TrackingMethod,
    label_key: &str,
    key: &ResourceKey,
    labels: Option<&'a BTreeMap<String, String>>,
    annotations: Option<&'a BTreeMap<String, String>>,
) -> Option<&'a str> {
    match method {
        TrackingMethod::Label => labels
            .and_then(|l| l.get(label_key))
            .map(String::as_str)
            .filter(|v| !v.is_empty()),
        TrackingMethod::Annotation | TrackingMethod::AnnotationAndLabel => {
            let id = TrackingId::parse(annotations?.get(TRACKING_ID)?)?;
            id.names(key).then_some(id.app)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(k: &str, v: &str) -> BTreeMap<String, String> {
        BTreeMap::from([(k.to_string(), v.to_string())])
    }

    #[test]
    fn label_tracking_reads_the_label() {
        let key = ResourceKey::new("", "ConfigMap", "ns", "a");
        let labels = map("app.kubernetes.io/instance", "guestbook");
        let app = app_of(
            TrackingMethod::Label,
            "app.kubernetes.io/instance",
            &key,
            Some(&labels),
            None,
        );
        assert_eq!(app, Some("guestbook"));
        assert_eq!(
            app_of(TrackingMethod::Label, "other", &key, Some(&labels), None),
            None
        );
    }

    #[test]
    fn annotation_tracking_checks_self_reference() {
        let key = ResourceKey::new("apps", "Deployment", "ns", "web");
        let ok = map(TRACKING_ID, "guestbook:apps/Deployment:ns/web");
        let copied = map(TRACKING_ID, "guestbook:apps/Deployment:ns/other");
        let label = "app.kubernetes.io/instance";
        assert_eq!(
            app_of(TrackingMethod::Annotation, label, &key, None, Some(&ok)),
            Some("guestbook")
        );
        assert_eq!(
            app_of(
                TrackingMethod::AnnotationAndLabel,
                label,
                &key,
                None,
                Some(&copied)
            ),
            None
        );
        let ns = ResourceKey::new("", "Namespace", "", "team");
        let id = map(TRACKING_ID, "guestbook:/Namespace:default/team");
        assert_eq!(
            app_of(TrackingMethod::Annotation, label, &ns, None, Some(&id)),
            Some("guestbook")
        );
    }
}
