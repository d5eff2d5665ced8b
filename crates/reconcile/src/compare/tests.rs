//! Tests of `compare` on whole applications, fixtures as inline YAML.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use keelson_diff::{DiffConfig, IgnoreRules};
use keelson_health::{HealthAssessor, HealthConfig};
use keelson_model::application::ResourceIgnoreDifferences;
use keelson_model::tracking::TrackingMethod;
use keelson_model::{HealthStatusCode, SyncStatusCode};
use serde_json::Value;

use super::{CompareInput, Comparison, compare};

const LABEL: &str = "app.kubernetes.io/instance";

fn docs(text: &str) -> Vec<Value> {
    text.split("\n---\n")
        .filter(|d| !d.trim().is_empty())
        .map(|d| serde_yaml_ng::from_str(d).unwrap())
        .collect()
}

fn discovery(group: &str, kind: &str) -> Option<bool> {
    match (group, kind) {
        ("", "ConfigMap" | "Secret" | "Service" | "Pod") | ("apps", _) | ("batch", _) => Some(true),
        _ => None,
    }
}

struct Fixture {
    diff: DiffConfig,
    health: HealthAssessor,
    tracking: TrackingMethod,
    respect: bool,
}

impl Fixture {
    fn new() -> Self {
        Fixture {
            diff: DiffConfig::default(),
            health: HealthAssessor::new(HealthConfig::default()),
            tracking: TrackingMethod::Label,
            respect: false,
        }
    }

    fn run(&self, desired: &str, live: &str) -> Comparison {
        self.run_values(docs(desired), docs(live))
    }

    fn run_values(&self, desired: Vec<Value>, live: Vec<Value>) -> Comparison {
        compare(CompareInput {
            app_instance: "guestbook",
            destination_namespace: "dest",
            desired,
            live,
            tracking: self.tracking,
            label_key: LABEL,
            diff: &self.diff,
            health: &self.health,
            scope: &discovery,
            respect_ignore_differences: self.respect,
        })
    }
}

fn statuses(c: &Comparison) -> Vec<(String, Option<SyncStatusCode>)> {
    c.resources
        .iter()
        .map(|r| (r.key.to_string(), r.status))
        .collect()
}

const CM: &str = r#"
apiVersion: v1
kind: ConfigMap
metadata: {name: cm, labels: {app.kubernetes.io/instance: guestbook}}
data: {k: v}
"#;

const CM_LIVE: &str = r#"
apiVersion: v1
kind: ConfigMap
metadata: {name: cm, namespace: dest, uid: u1, resourceVersion: "7", labels: {app.kubernetes.io/instance: guestbook}}
data: {k: v}
"#;

#[test]
fn one_config_map_in_sync() {
    let c = Fixture::new().run(CM, CM_LIVE);
    assert_eq!(c.sync_status, SyncStatusCode::Synced);
    assert_eq!(c.health.status, Some(HealthStatusCode::Healthy));
    assert!(c.conditions.is_empty());
    let r = &c.resources[0];
    assert_eq!(r.key.to_string(), "/ConfigMap/dest/cm");
    assert!(!r.modified && !r.requires_pruning && !r.hook);
    assert_eq!(r.status, Some(SyncStatusCode::Synced));
    assert_eq!(r.health, None);
    let s = c.resource_statuses();
    assert_eq!(
        serde_json::to_value(&s).unwrap(),
        serde_json::json!([{"version": "v1", "kind": "ConfigMap", "namespace": "dest", "name": "cm", "status": "Synced"}])
    );
    assert_eq!(c.out_of_sync_counts(), (0, 0, 1));
}

#[test]
fn missing_and_modified_resources_are_out_of_sync() {
    let desired = format!(
        "{CM}\n---\napiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: web}}\nspec: {{replicas: 1}}"
    );
    let live = CM_LIVE.replace("{k: v}", "{k: changed}");
    let c = Fixture::new().run(&desired, &live);
    assert_eq!(c.sync_status, SyncStatusCode::OutOfSync);
    assert_eq!(
        statuses(&c),
        [
            (
                "/ConfigMap/dest/cm".to_owned(),
                Some(SyncStatusCode::OutOfSync)
            ),
            (
                "apps/Deployment/dest/web".to_owned(),
                Some(SyncStatusCode::OutOfSync)
            ),
        ]
    );
    assert!(c.resources.iter().all(|r| r.modified));
    let web = &c.resources[1];
    assert_eq!(
        web.health.as_ref().unwrap().status,
        Some(HealthStatusCode::Missing)
    );
    // One live resource: a missing one does not make the app worse (Argo CD 2.x/3.x).
    assert_eq!(c.health.status, Some(HealthStatusCode::Healthy));
    assert_eq!(c.out_of_sync_counts(), (2, 0, 2));
}

#[test]
fn nothing_live_is_missing_and_no_resources_is_healthy() {
    let c = Fixture::new().run(CM, "");
    assert_eq!(c.health.status, Some(HealthStatusCode::Missing));
    assert_eq!(c.sync_status, SyncStatusCode::OutOfSync);
    let empty = Fixture::new().run("", "");
    assert_eq!(empty.health.status, Some(HealthStatusCode::Healthy));
    assert_eq!(empty.sync_status, SyncStatusCode::Synced);
    assert!(empty.resources.is_empty());
    assert_eq!(empty.summary, Default::default());
}

#[test]
fn extraneous_live_objects_require_pruning_unless_not_ours() {
    let live = format!(
        r#"{CM_LIVE}
---
apiVersion: v1
kind: ConfigMap
metadata: {{name: old, namespace: dest, labels: {{app.kubernetes.io/instance: guestbook}}}}
---
apiVersion: v1
kind: ConfigMap
metadata: {{name: other-app, namespace: dest, labels: {{app.kubernetes.io/instance: other}}}}
---
apiVersion: v1
kind: ConfigMap
metadata: {{name: untracked, namespace: dest}}
---
apiVersion: v1
kind: Pod
metadata:
  name: child
  namespace: dest
  labels: {{app.kubernetes.io/instance: guestbook}}
  ownerReferences: [{{apiVersion: apps/v1, kind: ReplicaSet, name: rs, uid: x, controller: true}}]
"#
    );
    let c = Fixture::new().run(CM, &live);
    assert_eq!(c.resources.len(), 2);
    let old = &c.resources[1];
    assert_eq!(old.key.to_string(), "/ConfigMap/dest/old");
    assert!(old.requires_pruning && old.modified && old.desired.is_none());
    assert_eq!(old.status, Some(SyncStatusCode::OutOfSync));
    assert_eq!(c.sync_status, SyncStatusCode::OutOfSync);
    assert_eq!(c.out_of_sync_counts(), (1, 1, 1));
    let status = &c.resource_statuses()[1];
    assert_eq!(status.requires_pruning, Some(true));

    let ignored = live.replace(
        "name: old, namespace: dest,",
        "name: old, namespace: dest, annotations: {argocd.argoproj.io/compare-options: IgnoreExtraneous},",
    );
    let c = Fixture::new().run(CM, &ignored);
    assert!(c.resources[1].requires_pruning && c.resources[1].ignore_extraneous);
    assert_eq!(c.resources[1].status, Some(SyncStatusCode::OutOfSync));
    assert_eq!(c.sync_status, SyncStatusCode::Synced);
    assert_eq!(c.out_of_sync_counts(), (0, 0, 1));
}

#[test]
fn live_twin_tracked_by_another_app_is_shared() {
    let mut fx = Fixture::new();
    fx.tracking = TrackingMethod::Annotation;
    let desired = r#"
apiVersion: v1
kind: ConfigMap
metadata: {name: cm, annotations: {argocd.argoproj.io/tracking-id: "guestbook:/ConfigMap:dest/cm"}}
data: {k: v}
"#;
    let live = r#"
apiVersion: v1
kind: ConfigMap
metadata: {name: cm, namespace: dest, annotations: {argocd.argoproj.io/tracking-id: "team_other:/ConfigMap:dest/cm"}}
data: {k: v}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: gone, namespace: dest, annotations: {argocd.argoproj.io/tracking-id: "guestbook:/ConfigMap:dest/gone"}}
"#;
    let c = fx.run(desired, live);
    assert_eq!(c.resources[0].shared_with.as_deref(), Some("team_other"));
    assert_eq!(c.conditions.len(), 1);
    assert_eq!(c.conditions[0].type_, "SharedResourceWarning");
    assert_eq!(
        c.conditions[0].message,
        "ConfigMap/cm is part of applications guestbook and team/other"
    );
    assert_eq!(c.resources[1].key.name, "gone");
    assert!(c.resources[1].requires_pruning);
    assert_eq!(
        c.sync_inputs()[0].shared_with.as_deref(),
        Some("team_other")
    );
}

#[test]
fn hooks_and_skipped_resources_never_count() {
    let desired = format!(
        r#"{CM}
---
apiVersion: batch/v1
kind: Job
metadata: {{generateName: migrate-, annotations: {{argocd.argoproj.io/hook: PreSync}}}}
---
apiVersion: batch/v1
kind: Job
metadata: {{name: seed, annotations: {{helm.sh/hook: post-install, argocd.argoproj.io/sync-wave: "3"}}}}
---
apiVersion: v1
kind: Secret
metadata: {{name: skip-me, annotations: {{argocd.argoproj.io/hook: Skip}}}}
"#
    );
    let live = format!(
        r#"{CM_LIVE}
---
apiVersion: batch/v1
kind: Job
metadata: {{name: seed, namespace: dest, annotations: {{helm.sh/hook: post-install}}, labels: {{app.kubernetes.io/instance: guestbook}}}}
status: {{conditions: [{{type: Failed, status: "True"}}]}}
---
apiVersion: batch/v1
kind: Job
metadata: {{name: old-hook, namespace: dest, annotations: {{argocd.argoproj.io/hook: PostSync}}, labels: {{app.kubernetes.io/instance: guestbook}}}}
"#
    );
    let c = Fixture::new().run(&desired, &live);
    assert_eq!(c.sync_status, SyncStatusCode::Synced);
    assert_eq!(c.health.status, Some(HealthStatusCode::Healthy));
    assert_eq!(
        statuses(&c),
        [
            (
                "/ConfigMap/dest/cm".to_owned(),
                Some(SyncStatusCode::Synced)
            ),
            ("batch/Job/dest/".to_owned(), None),
            ("batch/Job/dest/seed".to_owned(), None),
            ("/Secret/dest/skip-me".to_owned(), None),
            ("batch/Job/dest/old-hook".to_owned(), None),
        ]
    );
    assert!(c.resources[1].hook && c.resources[2].hook && c.resources[4].hook);
    assert!(c.resources[3].skipped && !c.resources[3].hook);
    assert!(
        c.resources
            .iter()
            .all(|r| !r.requires_pruning && r.health.is_none())
    );
    assert_eq!(c.resources[2].sync_wave, 3);
    let listed: Vec<(String, Option<bool>, Option<i64>)> = c
        .resource_statuses()
        .into_iter()
        .map(|s| (s.name, s.hook, s.sync_wave))
        .collect();
    assert_eq!(
        listed,
        [
            ("cm".to_owned(), None, None),
            ("skip-me".to_owned(), None, None),
            ("old-hook".to_owned(), Some(true), None),
            ("seed".to_owned(), Some(true), Some(3)),
        ]
    );
    assert_eq!(c.out_of_sync_counts(), (0, 0, 2));
    assert_eq!(c.sync_inputs().len(), 5);
}

#[test]
fn diff_error_is_a_comparison_error_and_unknown() {
    let live = CM_LIVE.replace(
        "uid: u1,",
        "uid: u1, annotations: {kubectl.kubernetes.io/last-applied-configuration: '{not json'},",
    );
    let desired = format!("{CM}\n---\napiVersion: v1\nkind: Secret\nmetadata: {{name: s}}");
    let c = Fixture::new().run(&desired, &live);
    assert_eq!(c.sync_status, SyncStatusCode::Unknown);
    assert_eq!(c.resources[0].status, Some(SyncStatusCode::Unknown));
    assert!(c.resources[0].modified);
    assert_eq!(c.resources[1].status, Some(SyncStatusCode::OutOfSync));
    assert_eq!(c.conditions.len(), 1);
    assert_eq!(c.conditions[0].type_, "ComparisonError");
    assert_eq!(
        c.conditions[0].message,
        "Failed to compare desired state to live state: /ConfigMap/dest/cm: parsing last-applied-configuration annotation"
    );
}

const DEGRADED_DEPLOY: &str = r#"
apiVersion: apps/v1
kind: Deployment
metadata: {name: NAME, namespace: dest, generation: 1, labels: {app.kubernetes.io/instance: guestbook}}
spec: {replicas: 1}
status:
  observedGeneration: 1
  conditions: [{type: Progressing, status: "False", reason: ProgressDeadlineExceeded}]
"#;

#[test]
fn health_counts_live_and_extraneous_resources_but_not_ignored_ones() {
    let web = DEGRADED_DEPLOY.replace("NAME", "web");
    let desired =
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec: {replicas: 1}";
    let c = Fixture::new().run(desired, &web);
    assert_eq!(c.health.status, Some(HealthStatusCode::Degraded));
    assert_eq!(c.health.message, None);
    let h = c.resources[0].health.as_ref().unwrap();
    assert_eq!(h.status, Some(HealthStatusCode::Degraded));
    assert!(h.message.as_deref().unwrap().contains("web"));

    let ignored = web.replace(
        "name: web, namespace: dest,",
        "name: web, namespace: dest, annotations: {argocd.argoproj.io/ignore-healthcheck: 'true'},",
    );
    let c = Fixture::new().run(desired, &ignored);
    assert_eq!(c.health.status, Some(HealthStatusCode::Healthy));
    assert_eq!(c.resources[0].health, None);

    // Argo CD counts the health of live resources that require pruning.
    let old = DEGRADED_DEPLOY.replace("NAME", "old");
    let c = Fixture::new().run(CM, &format!("{CM_LIVE}\n---\n{old}"));
    assert!(c.resources[1].requires_pruning);
    assert_eq!(c.health.status, Some(HealthStatusCode::Degraded));
}

#[test]
fn child_application_missing_or_unknown_does_not_count() {
    // Argo CD's documented Lua check for Applications, configured in argocd-cm.
    let script = r#"hs = {}
hs.status = "Progressing"
hs.message = ""
if obj.status ~= nil and obj.status.health ~= nil then
  hs.status = obj.status.health.status
end
return hs"#;
    let cm = std::collections::BTreeMap::from([(
        "resource.customizations.health.argoproj.io_Application".to_owned(),
        script.to_owned(),
    )]);
    let mut fx = Fixture::new();
    fx.health = HealthAssessor::new(HealthConfig::from_config_map(&cm).unwrap());
    let desired = "apiVersion: argoproj.io/v1alpha1\nkind: Application\nmetadata: {name: child, namespace: argocd}";
    let live = |health: &str| {
        format!(
            "{CM_LIVE}\n---\napiVersion: argoproj.io/v1alpha1\nkind: Application\nmetadata: {{name: child, namespace: argocd, labels: {{app.kubernetes.io/instance: guestbook}}}}\nstatus: {{health: {{status: {health}}}}}"
        )
    };
    let desired = format!("{CM}\n---\n{desired}");
    for (child, app) in [
        ("Missing", HealthStatusCode::Healthy),
        ("Unknown", HealthStatusCode::Healthy),
        ("Degraded", HealthStatusCode::Degraded),
    ] {
        let c = fx.run(&desired, &live(child));
        let status = c.resources[1].health.as_ref().and_then(|h| h.status);
        assert_eq!(status.map(|s| s.to_string()).as_deref(), Some(child));
        assert_eq!(c.health.status, Some(app), "child {child}");
    }
}

#[test]
fn respect_ignore_differences_syncs_live_values_of_ignored_fields() {
    let entries: Vec<ResourceIgnoreDifferences> = serde_yaml_ng::from_str(
        "[{group: apps, kind: Deployment, jsonPointers: [/spec/replicas]}]",
    )
    .unwrap();
    let mut fx = Fixture::new();
    fx.diff = DiffConfig::default().with_ignore(IgnoreRules::from_application(&entries).unwrap());
    let desired = "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec: {replicas: 1, paused: true}";
    let live = "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web, namespace: dest, labels: {app.kubernetes.io/instance: guestbook}}\nspec: {replicas: 4, paused: true}";
    let c = fx.run(desired, live);
    assert_eq!(c.sync_status, SyncStatusCode::Synced);
    assert_eq!(c.resources[0].sync_desired, None);
    assert_eq!(
        c.sync_inputs()[0].desired.as_ref().unwrap()["spec"]["replicas"],
        1
    );

    fx.respect = true;
    let c = fx.run(desired, live);
    let inputs = c.sync_inputs();
    let synced = inputs[0].desired.as_ref().unwrap();
    assert_eq!(synced["spec"]["replicas"], 4);
    assert_eq!(synced["metadata"]["namespace"], "dest");
    assert_eq!(
        c.resources[0].desired.as_ref().unwrap()["spec"]["replicas"],
        1
    );
    assert_eq!(c.clone().into_sync_inputs(), inputs);
}

#[test]
fn summary_lists_images_and_urls_of_live_resources() {
    let desired = r#"
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: web}
"#;
    let live = r#"
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: dest}
spec: {template: {spec: {containers: [{name: c, image: "nginx:1.27"}]}}}
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: web, namespace: dest}
spec: {rules: [{host: web.example.com, http: {paths: [{path: /}]}}]}
"#;
    let c = Fixture::new().run(desired, live);
    assert_eq!(
        c.summary.images.as_deref(),
        Some(&["nginx:1.27".to_owned()][..])
    );
    assert_eq!(
        c.summary.external_urls.as_deref(),
        Some(&["http://web.example.com/".to_owned()][..])
    );
}

#[test]
fn statuses_are_sorted_like_argo_cd() {
    let desired = r#"
apiVersion: v1
kind: Service
metadata: {name: b}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: a}
---
apiVersion: v1
kind: Namespace
metadata: {name: dest}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: c}
"#;
    let c = Fixture::new().run(desired, "");
    let keys: Vec<String> = c
        .resource_statuses()
        .iter()
        .map(|s| format!("{}/{}", s.kind, s.name))
        .collect();
    assert_eq!(
        keys,
        ["ConfigMap/c", "Namespace/dest", "Service/b", "Deployment/a"]
    );
}

#[test]
fn a_thousand_resources_compare_correctly() {
    let n = 1000;
    let cm = |i: usize, value: &str, ns: bool| {
        serde_json::json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": if ns {
                serde_json::json!({"name": format!("cm-{i}"), "namespace": "dest", "labels": {LABEL: "guestbook"}})
            } else {
                serde_json::json!({"name": format!("cm-{i}"), "labels": {LABEL: "guestbook"}})
            },
            "data": {"k": value}
        })
    };
    let desired: Vec<Value> = (0..n).map(|i| cm(i, "v", false)).collect();
    // Every 10th live object drifted, every 100th missing, plus 5 extraneous.
    let mut live: Vec<Value> = (0..n)
        .filter(|i| i % 100 != 99)
        .map(|i| cm(i, if i % 10 == 3 { "drift" } else { "v" }, true))
        .collect();
    live.extend((n..n + 5).map(|i| cm(i, "v", true)));
    let c = Fixture::new().run_values(desired, live);
    assert_eq!(c.resources.len(), n + 5);
    let count = |status| {
        c.resources
            .iter()
            .filter(|r| r.status == Some(status))
            .count()
    };
    assert_eq!(count(SyncStatusCode::Synced), n - 100 - 10);
    assert_eq!(count(SyncStatusCode::OutOfSync), 100 + 10 + 5);
    assert_eq!(c.out_of_sync_counts(), (115, 5, n));
    assert_eq!(c.sync_status, SyncStatusCode::OutOfSync);
    assert_eq!(c.resource_statuses().len(), n + 5);
    assert!(c.conditions.is_empty());
}
