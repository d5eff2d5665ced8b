//! Argo CD's resource tracking: the method (`application.resourceTrackingMethod`) and the
//! `argocd.argoproj.io/tracking-id` value `<app>:<group>/<Kind>:<namespace>/<name>`,
//! written by the repo-server and read by the cluster cache.

use std::fmt;

use crate::ResourceKey;

/// How objects are attributed to applications.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum TrackingMethod {
    /// The instance label (`app.kubernetes.io/instance: <app>` by default).
    #[default]
    Label,
    /// The `argocd.argoproj.io/tracking-id` annotation.
    Annotation,
    /// Both written; the annotation decides (the label is informational, truncated to 63
    /// characters).
    AnnotationAndLabel,
}

impl TrackingMethod {
    /// Parses Argo CD's `application.resourceTrackingMethod` value (`label`, `annotation`,
    /// `annotation+label`); anything else is `None`.
    pub fn parse(value: &str) -> Option<TrackingMethod> {
        match value.trim() {
            "label" => Some(TrackingMethod::Label),
            "annotation" => Some(TrackingMethod::Annotation),
            "annotation+label" => Some(TrackingMethod::AnnotationAndLabel),
            _ => None,
        }
    }
}

/// A tracking id, borrowed from the annotation value or from an object's identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackingId<'a> {
    /// Application instance name (`<app>` or `<namespace>_<app>`).
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

impl fmt::Display for TrackingId<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}/{}:{}/{}",
            self.app, self.group, self.kind, self.namespace, self.name
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_ids() {
        assert!(TrackingId::parse("a:b").is_none());
        assert!(TrackingId::parse(":g/K:n/x").is_none());
        let id = TrackingId::parse("ns_app:/ConfigMap:/cm");
        assert_eq!(
            id.as_ref().map(|i| (i.app, i.group, i.namespace, i.name)),
            Some(("ns_app", "", "", "cm"))
        );
        assert_eq!(
            id.map(|i| i.to_string()).as_deref(),
            Some("ns_app:/ConfigMap:/cm")
        );
        assert_eq!(
            TrackingMethod::parse("annotation+label"),
            Some(TrackingMethod::AnnotationAndLabel)
        );
        assert_eq!(TrackingMethod::parse("x"), None);
    }
}
