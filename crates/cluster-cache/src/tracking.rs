//! Which application an object belongs to: the instance label or the
//! `argocd.argoproj.io/tracking-id` annotation (`<app>:<group>/<kind>:<namespace>/<name>`),
//! as Argo CD reads them.

use std::collections::BTreeMap;

use keelson_model::ResourceKey;
use keelson_model::annotations::TRACKING_ID;

use crate::config::TrackingMethod;

/// A parsed tracking id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackingId<'a> {
    /// Application instance name.
    pub app: &'a str,
    /// Group of the tracked object.
    pub group: &'a str,
    /// Kind of the tracked object.
    pub kind: &'a str,
    /// Namespace of the tracked object (may be empty).
    pub namespace: &'a str,
    /// Name of the tracked object.
    pub name: &'a str,
}

impl<'a> TrackingId<'a> {
    /// Parses `<app>:<group>/<kind>:<namespace>/<name>`.
    pub fn parse(value: &'a str) -> Option<TrackingId<'a>> {
        let mut parts = value.split(':');
        let (app, gk, nn) = (parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() || app.is_empty() {
            return None;
        }
        let (group, kind) = gk.split_once('/')?;
        let (namespace, name) = nn.split_once('/')?;
        Some(TrackingId {
            app,
            group,
            kind,
            namespace,
            name,
        })
    }

    /// Whether the id names this object (Argo CD's self-reference check: a copied object
    /// carrying another object's id is not tracked). The namespace may differ for
    /// cluster-scoped objects.
    pub fn names(&self, key: &ResourceKey) -> bool {
        self.group == key.group
            && self.kind == key.kind
            && self.name == key.name
            && (key.namespace.is_empty() || self.namespace == key.namespace)
    }
}

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

    #[test]
    fn parses_ids() {
        assert!(TrackingId::parse("a:b").is_none());
        assert!(TrackingId::parse(":g/K:n/x").is_none());
        let id = TrackingId::parse("ns_app:/ConfigMap:/cm").unwrap_or(TrackingId {
            app: "",
            group: "x",
            kind: "",
            namespace: "",
            name: "",
        });
        assert_eq!((id.app, id.group, id.name), ("ns_app", "", "cm"));
    }
}
