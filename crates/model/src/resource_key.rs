//! `ResourceKey`: the identity of a Kubernetes object (group, kind, namespace, name),
//! printed and parsed as `group/kind/namespace/name` like Argo CD's `kube.ResourceKey`.

use std::fmt;
use std::str::FromStr;

use serde_json::Value;

/// Errors from building a [`ResourceKey`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResourceKeyError {
    /// The string does not have four `/`-separated parts.
    #[error("resource key {0:?} is not of the form group/kind/namespace/name")]
    ParseParts(String),
    /// Kind or name is empty.
    #[error("resource key {0:?} has an empty kind or name")]
    ParseEmpty(String),
    /// The object has no string `kind`.
    #[error("object has no kind")]
    ObjectKind,
    /// The object has no string `metadata.name`.
    #[error("object has no metadata.name")]
    ObjectName,
}

/// Identity of a Kubernetes object. The empty group is the core group; the empty
/// namespace means cluster-scoped (or "not yet defaulted"). Ordered by group, kind,
/// namespace, name.
#[derive(
    Debug,
    Clone,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Default,
    serde::Serialize,
    serde::Deserialize,
)]
pub struct ResourceKey {
    /// API group (`""` for core, `apps`, ...), without version.
    pub group: String,
    /// Kind (`Deployment`).
    pub kind: String,
    /// Namespace, or `""` for cluster-scoped objects.
    pub namespace: String,
    /// Object name.
    pub name: String,
}

impl ResourceKey {
    /// Builds a key from its parts.
    pub fn new(
        group: impl Into<String>,
        kind: impl Into<String>,
        namespace: impl Into<String>,
        name: impl Into<String>,
    ) -> Self {
        ResourceKey {
            group: group.into(),
            kind: kind.into(),
            namespace: namespace.into(),
            name: name.into(),
        }
    }

    /// Builds the key of a manifest or live object given as JSON (`apiVersion`, `kind`,
    /// `metadata.namespace`, `metadata.name`). A missing `apiVersion` means the core group.
    pub fn from_object(object: &Value) -> Result<Self, ResourceKeyError> {
        let api_version = object
            .get("apiVersion")
            .and_then(Value::as_str)
            .unwrap_or("v1");
        let kind = object
            .get("kind")
            .and_then(Value::as_str)
            .filter(|k| !k.is_empty())
            .ok_or(ResourceKeyError::ObjectKind)?;
        let metadata = object.get("metadata");
        let name = metadata
            .and_then(|m| m.get("name"))
            .and_then(Value::as_str)
            .filter(|n| !n.is_empty())
            .ok_or(ResourceKeyError::ObjectName)?;
        let namespace = metadata
            .and_then(|m| m.get("namespace"))
            .and_then(Value::as_str)
            .unwrap_or("");
        Ok(ResourceKey::new(
            group_of(api_version),
            kind,
            namespace,
            name,
        ))
    }

    /// The same key with a different namespace (e.g. after defaulting to the app's
    /// destination namespace).
    pub fn with_namespace(mut self, namespace: impl Into<String>) -> Self {
        self.namespace = namespace.into();
        self
    }
}

/// The group part of an `apiVersion` (`apps/v1` → `apps`, `v1` → `""`).
pub fn group_of(api_version: &str) -> &str {
    match api_version.split_once('/') {
        Some((group, _version)) => group,
        None => "",
    }
}

impl fmt::Display for ResourceKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}/{}/{}/{}",
            self.group, self.kind, self.namespace, self.name
        )
    }
}

impl FromStr for ResourceKey {
    type Err = ResourceKeyError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let parts: Vec<&str> = s.split('/').collect();
        let [group, kind, namespace, name] = parts.as_slice() else {
            return Err(ResourceKeyError::ParseParts(s.to_owned()));
        };
        if kind.is_empty() || name.is_empty() {
            return Err(ResourceKeyError::ParseEmpty(s.to_owned()));
        }
        Ok(ResourceKey::new(*group, *kind, *namespace, *name))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn display_and_parse_round_trip_including_empty_group_and_namespace() {
        let keys = [
            ResourceKey::new("apps", "Deployment", "prod", "web"),
            ResourceKey::new("", "Namespace", "", "prod"),
            ResourceKey::new("", "ConfigMap", "default", "cfg"),
        ];
        for key in keys {
            let text = key.to_string();
            assert_eq!(text.parse::<ResourceKey>().unwrap(), key);
        }
        assert_eq!(
            ResourceKey::new("", "Namespace", "", "prod").to_string(),
            "/Namespace//prod"
        );
    }

    #[test]
    fn parse_rejects_malformed_keys() {
        assert!(matches!(
            "apps/Deployment/web".parse::<ResourceKey>(),
            Err(ResourceKeyError::ParseParts(_))
        ));
        assert!(matches!(
            "apps/Deployment/ns/a/b".parse::<ResourceKey>(),
            Err(ResourceKeyError::ParseParts(_))
        ));
        assert!(matches!(
            "apps//ns/web".parse::<ResourceKey>(),
            Err(ResourceKeyError::ParseEmpty(_))
        ));
        assert!(matches!(
            "apps/Deployment/ns/".parse::<ResourceKey>(),
            Err(ResourceKeyError::ParseEmpty(_))
        ));
    }

    #[test]
    fn ordering_is_group_kind_namespace_name() {
        let mut keys = [
            ResourceKey::new("apps", "Deployment", "b", "x"),
            ResourceKey::new("", "Service", "a", "x"),
            ResourceKey::new("apps", "Deployment", "a", "y"),
            ResourceKey::new("apps", "DaemonSet", "z", "z"),
        ];
        keys.sort();
        let printed: Vec<String> = keys.iter().map(ToString::to_string).collect();
        assert_eq!(
            printed,
            [
                "/Service/a/x",
                "apps/DaemonSet/z/z",
                "apps/Deployment/a/y",
                "apps/Deployment/b/x"
            ]
        );
    }

    #[test]
    fn from_object_reads_api_version_kind_and_metadata() {
        let deploy = json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "prod"}
        });
        assert_eq!(
            ResourceKey::from_object(&deploy).unwrap(),
            ResourceKey::new("apps", "Deployment", "prod", "web")
        );
        let ns = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "prod"}});
        assert_eq!(
            ResourceKey::from_object(&ns).unwrap().to_string(),
            "/Namespace//prod"
        );
        let nameless = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {}});
        assert_eq!(
            ResourceKey::from_object(&nameless),
            Err(ResourceKeyError::ObjectName)
        );
        assert_eq!(
            ResourceKey::from_object(&json!({"metadata": {"name": "x"}})),
            Err(ResourceKeyError::ObjectKind)
        );
    }
}
