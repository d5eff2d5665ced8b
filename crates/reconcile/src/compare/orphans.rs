//! Orphaned resources (`AppProject.spec.orphanedResources`): top-level objects of the
//! application's destination namespace that no application tracks, minus the objects
//! Kubernetes creates in every namespace and the project's ignore list (group, kind and
//! name globs), as Argo CD's `getResourceTree` counts them.

use globset::Glob;
use keelson_model::ResourceKey;
use keelson_model::application_status::{
    ApplicationCondition, CONDITION_ORPHANED_RESOURCE_WARNING,
};
use keelson_model::project::{OrphanedResourceKey, OrphanedResourcesMonitorSettings};

/// Whether `pattern` (a glob; invalid globs match literally) matches `text`.
fn glob_match(pattern: &str, text: &str) -> bool {
    if !pattern.contains(['*', '?', '[', '{']) {
        return pattern == text;
    }
    Glob::new(pattern).map_or(pattern == text, |g| g.compile_matcher().is_match(text))
}

/// Objects every namespace has, never reported as orphans.
fn known_exclusion(key: &ResourceKey) -> bool {
    key.group.is_empty()
        && match key.kind.as_str() {
            "Service" => key.namespace == "default" && key.name == "kubernetes",
            "ServiceAccount" => key.name == "default",
            "ConfigMap" => key.name == "kube-root-ca.crt",
            _ => false,
        }
}

fn ignored(key: &ResourceKey, item: &OrphanedResourceKey) -> bool {
    let kind = item.kind.as_deref().unwrap_or_default();
    let name = item.name.as_deref().unwrap_or_default();
    (kind.is_empty() || glob_match(kind, &key.kind))
        && glob_match(item.group.as_deref().unwrap_or_default(), &key.group)
        && (name.is_empty() || glob_match(name, &key.name))
}

/// The orphans among `objects` — the top-level objects (no owner references) of the
/// destination namespace, each with whether any application tracks it — sorted by key.
/// Cluster-scoped objects are never orphans. Whether the project permits the kind is the
/// caller's check.
pub fn orphaned_resources(
    objects: &[(ResourceKey, bool)],
    settings: &OrphanedResourcesMonitorSettings,
) -> Vec<ResourceKey> {
    let ignore = settings.ignore.as_deref().unwrap_or_default();
    let mut orphans: Vec<ResourceKey> = objects
        .iter()
        .filter(|(key, tracked)| {
            !tracked
                && !key.namespace.is_empty()
                && !known_exclusion(key)
                && !ignore.iter().any(|item| ignored(key, item))
        })
        .map(|(key, _)| key.clone())
        .collect();
    orphans.sort_by_cached_key(ToString::to_string);
    orphans
}

/// The `OrphanedResourceWarning` condition for `count` orphans, when there are some and
/// the project warns (`warn` defaults to true).
pub fn orphaned_resources_condition(
    count: usize,
    settings: &OrphanedResourcesMonitorSettings,
) -> Option<ApplicationCondition> {
    (count > 0 && settings.warn.unwrap_or(true)).then(|| ApplicationCondition {
        type_: CONDITION_ORPHANED_RESOURCE_WARNING.to_owned(),
        message: format!("Application has {count} orphaned resources"),
        last_transition_time: None,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn orphans_skip_tracked_cluster_scoped_well_known_and_ignored_objects() {
        let settings: OrphanedResourcesMonitorSettings = serde_yaml_ng::from_str(
            r#"
warn: true
ignore:
- {group: apps, kind: "Deploy*", name: "keep-*"}
- {kind: Secret}
- {group: "*", kind: "Widget"}
"#,
        )
        .unwrap();
        let k = |g: &str, kind: &str, ns: &str, n: &str| ResourceKey::new(g, kind, ns, n);
        let objects = [
            (k("", "ConfigMap", "dest", "z-orphan"), false),
            (k("", "ConfigMap", "dest", "tracked"), true),
            (k("", "Namespace", "", "dest"), false),
            (k("", "ServiceAccount", "dest", "default"), false),
            (k("", "ConfigMap", "dest", "kube-root-ca.crt"), false),
            (k("", "Service", "default", "kubernetes"), false),
            (k("apps", "Deployment", "dest", "keep-me"), false),
            (k("apps", "Deployment", "dest", "web"), false),
            (k("", "Secret", "dest", "s"), false),
            (k("example.com", "Widget", "dest", "w"), false),
        ];
        let orphans = orphaned_resources(&objects, &settings);
        let printed: Vec<String> = orphans.iter().map(ToString::to_string).collect();
        assert_eq!(
            printed,
            ["/ConfigMap/dest/z-orphan", "apps/Deployment/dest/web"]
        );
        let condition = orphaned_resources_condition(orphans.len(), &settings).unwrap();
        assert_eq!(condition.type_, "OrphanedResourceWarning");
        assert_eq!(condition.message, "Application has 2 orphaned resources");
        let quiet = OrphanedResourcesMonitorSettings {
            warn: Some(false),
            ignore: None,
        };
        assert!(orphaned_resources_condition(2, &quiet).is_none());
        assert!(orphaned_resources_condition(0, &settings).is_none());
    }
}
