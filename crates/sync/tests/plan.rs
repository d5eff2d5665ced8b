//! Planner tests: ordering, waves, hooks, prune, options.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use keelson_model::operation::{SyncOperationResource, SyncPhase};
use keelson_model::{HookDeletePolicy, HookType};
use keelson_sync::{
    ApplyMethod, PlanInput, PropagationPolicy, Strategy, SyncOptions, SyncPlanError, TaskOperation,
    plan_sync,
};
use serde_json::json;
use support::{desired, names, obj, orphan};

fn wave(n: i32) -> serde_json::Value {
    json!({"argocd.argoproj.io/sync-wave": n.to_string()})
}

#[test]
fn kind_order_within_a_wave_then_name() {
    let input = PlanInput::new(
        "s1",
        vec![
            desired(obj("apps/v1", "Deployment", "ns", "web", json!({}))),
            desired(obj("v1", "Service", "ns", "web", json!({}))),
            desired(obj("example.com/v1", "Widget", "ns", "a", json!({}))),
            desired(obj("v1", "ConfigMap", "ns", "b", json!({}))),
            desired(obj("v1", "ConfigMap", "ns", "a", json!({}))),
            desired(obj("v1", "ServiceAccount", "ns", "sa", json!({}))),
        ],
    );
    let plan = plan_sync(&input).unwrap();
    let order: Vec<String> = plan
        .tasks
        .iter()
        .map(|t| format!("{}/{}", t.key.kind, t.key.name))
        .collect();
    assert_eq!(
        order,
        [
            "ServiceAccount/sa",
            "ConfigMap/a",
            "ConfigMap/b",
            "Service/web",
            "Deployment/web",
            "Widget/a"
        ]
    );
}

#[test]
fn negative_waves_run_first_and_phases_order_waves() {
    let input = PlanInput::new(
        "s1",
        vec![
            desired(obj("v1", "ConfigMap", "ns", "zero", json!({}))),
            desired(obj("v1", "ConfigMap", "ns", "minus", wave(-5))),
            desired(obj("v1", "ConfigMap", "ns", "plus", wave(3))),
            desired(obj(
                "batch/v1",
                "Job",
                "ns",
                "pre",
                json!({"argocd.argoproj.io/hook": "PreSync", "argocd.argoproj.io/sync-wave": "7"}),
            )),
        ],
    );
    let plan = plan_sync(&input).unwrap();
    assert_eq!(names(&plan), ["pre", "minus", "zero", "plus"]);
    assert_eq!(plan.tasks[1].wave, -5);
    assert_eq!(plan.tasks[0].phase, SyncPhase::PreSync);
}

#[test]
fn invalid_wave_is_an_error_naming_the_resource() {
    let input = PlanInput::new(
        "s1",
        vec![desired(obj(
            "v1",
            "ConfigMap",
            "ns",
            "cm",
            json!({"argocd.argoproj.io/sync-wave": "first"}),
        ))],
    );
    let err = plan_sync(&input).unwrap_err();
    assert!(matches!(err, SyncPlanError::BadWave { .. }));
    assert_eq!(
        err.to_string(),
        "resource /ConfigMap/ns/cm: invalid sync wave \"first\" in annotation argocd.argoproj.io/sync-wave"
    );
}

#[test]
fn namespace_and_crd_move_before_their_users() {
    let crd = {
        let mut o = obj(
            "apiextensions.k8s.io/v1",
            "CustomResourceDefinition",
            "",
            "widgets.example.com",
            wave(5),
        );
        o["spec"] = json!({"group": "example.com", "names": {"kind": "Widget"}});
        o
    };
    let input = PlanInput::new(
        "s1",
        vec![
            desired(obj("v1", "Namespace", "", "apps", wave(3))),
            desired(obj("v1", "ConfigMap", "apps", "cfg", wave(1))),
            desired(obj("example.com/v1", "Widget", "other", "w", wave(-1))),
            desired(crd),
            desired(obj("v1", "ConfigMap", "default", "early", wave(-2))),
        ],
    );
    let plan = plan_sync(&input).unwrap();
    assert_eq!(
        names(&plan),
        ["early", "widgets.example.com", "w", "apps", "cfg"]
    );
    let wave_of = |name: &str| plan.tasks.iter().find(|t| t.key.name == name).unwrap().wave;
    assert_eq!(
        wave_of("apps"),
        1,
        "namespace takes the wave of its first user"
    );
    assert_eq!(
        wave_of("widgets.example.com"),
        -1,
        "crd takes the wave of its first user"
    );
    // The custom resource may skip its dry run: its CRD is part of the sync.
    let widget = plan.tasks.iter().find(|t| t.key.name == "w").unwrap();
    assert!(matches!(
        widget.operation,
        TaskOperation::Apply {
            skip_dry_run_on_missing_resource: true,
            ..
        }
    ));
}

#[test]
fn namespace_needed_by_a_presync_hook_moves_into_presync() {
    let input = PlanInput::new(
        "s1",
        vec![
            desired(obj("v1", "Namespace", "", "apps", json!({}))),
            desired(obj(
                "batch/v1",
                "Job",
                "apps",
                "migrate",
                json!({"argocd.argoproj.io/hook": "PreSync"}),
            )),
        ],
    );
    let plan = plan_sync(&input).unwrap();
    assert_eq!(names(&plan), ["apps", "migrate"]);
    assert_eq!(plan.tasks[0].phase, SyncPhase::PreSync);
}

#[test]
fn hooks_of_every_type_including_helm_and_skip() {
    let hook = |name: &str, annotations: serde_json::Value| {
        desired(obj("batch/v1", "Job", "ns", name, annotations))
    };
    let input = PlanInput::new(
        "s1",
        vec![
            hook("pre", json!({"argocd.argoproj.io/hook": "PreSync"})),
            hook("sync", json!({"argocd.argoproj.io/hook": "Sync"})),
            hook(
                "post",
                json!({"argocd.argoproj.io/hook": "PostSync", "argocd.argoproj.io/hook-delete-policy": "HookSucceeded"}),
            ),
            hook("fail", json!({"argocd.argoproj.io/hook": "SyncFail"})),
            hook("skip", json!({"argocd.argoproj.io/hook": "Skip"})),
            hook("predelete", json!({"argocd.argoproj.io/hook": "PreDelete"})),
            hook(
                "helm-pre",
                json!({"helm.sh/hook": "pre-install", "helm.sh/hook-weight": "-3", "helm.sh/hook-delete-policy": "hook-failed"}),
            ),
            hook("helm-post", json!({"helm.sh/hook": "post-upgrade"})),
            hook("helm-test", json!({"helm.sh/hook": "test"})),
            hook(
                "both",
                json!({"argocd.argoproj.io/hook": "PreSync,PostSync"}),
            ),
        ],
    );
    let plan = plan_sync(&input).unwrap();
    let summary: Vec<(String, SyncPhase, Option<HookType>)> = plan
        .tasks
        .iter()
        .map(|t| {
            (
                t.key.name.clone(),
                t.phase,
                t.hook.as_ref().map(|h| h.hook_type),
            )
        })
        .collect();
    let expect = |n: &str, p, h| (n.to_owned(), p, Some(h));
    assert_eq!(
        summary,
        [
            expect("helm-pre", SyncPhase::PreSync, HookType::PreSync),
            expect("both", SyncPhase::PreSync, HookType::PreSync),
            expect("pre", SyncPhase::PreSync, HookType::PreSync),
            expect("sync", SyncPhase::Sync, HookType::Sync),
            expect("both", SyncPhase::PostSync, HookType::PostSync),
            expect("helm-post", SyncPhase::PostSync, HookType::PostSync),
            expect("post", SyncPhase::PostSync, HookType::PostSync),
            expect("fail", SyncPhase::SyncFail, HookType::SyncFail),
        ]
    );
    let policies = |name: &str| {
        plan.tasks
            .iter()
            .find(|t| t.key.name == name)
            .unwrap()
            .hook
            .clone()
            .unwrap()
            .delete_policies
    };
    assert_eq!(policies("pre"), [HookDeletePolicy::BeforeHookCreation]);
    assert_eq!(policies("post"), [HookDeletePolicy::HookSucceeded]);
    assert_eq!(policies("helm-pre"), [HookDeletePolicy::HookFailed]);
    assert_eq!(plan.tasks[0].wave, -3, "helm hook weight is the wave");
}

#[test]
fn unknown_hook_type_fails_the_plan() {
    let input = PlanInput::new(
        "s1",
        vec![desired(obj(
            "batch/v1",
            "Job",
            "ns",
            "j",
            json!({"argocd.argoproj.io/hook": "Presync"}),
        ))],
    );
    assert!(matches!(
        plan_sync(&input),
        Err(SyncPlanError::UnknownHookType { .. })
    ));
}

#[test]
fn generate_name_hooks_get_names_from_the_sync_id() {
    let mut job = obj(
        "batch/v1",
        "Job",
        "ns",
        "",
        json!({"argocd.argoproj.io/hook": "PreSync,PostSync"}),
    );
    job["metadata"].as_object_mut().unwrap().remove("name");
    job["metadata"]["generateName"] = json!("migrate-");
    let input = PlanInput::new("Rev42", vec![desired(job)]);
    let plan = plan_sync(&input).unwrap();
    assert_eq!(
        names(&plan),
        ["migrate-rev42-presync", "migrate-rev42-postsync"]
    );
    assert_eq!(
        plan.tasks[0].desired.as_ref().unwrap()["metadata"]["name"],
        "migrate-rev42-presync"
    );
    assert_eq!(
        plan_sync(&input).unwrap(),
        plan,
        "planning is deterministic"
    );
}

#[test]
fn apply_strategy_and_selective_sync_skip_hooks() {
    let resources = vec![
        desired(obj("v1", "ConfigMap", "ns", "a", json!({}))),
        desired(obj("v1", "ConfigMap", "ns", "b", json!({}))),
        desired(obj(
            "batch/v1",
            "Job",
            "ns",
            "pre",
            json!({"argocd.argoproj.io/hook": "PreSync"}),
        )),
    ];
    let mut input = PlanInput::new("s1", resources);
    assert_eq!(plan_sync(&input).unwrap().tasks.len(), 3);
    input.request.strategy = Strategy::Apply;
    assert_eq!(names(&plan_sync(&input).unwrap()), ["a", "b"]);
    input.request.strategy = Strategy::Hook;
    input.request.resources = Some(vec![SyncOperationResource {
        group: None,
        kind: "ConfigMap".into(),
        name: "b".into(),
        namespace: Some("ns".into()),
    }]);
    assert_eq!(names(&plan_sync(&input).unwrap()), ["b"]);
}

#[test]
fn request_from_operation_reads_strategy_and_flags() {
    let op: keelson_model::operation::SyncOperation = serde_json::from_value(json!({
        "prune": true, "dryRun": true, "syncStrategy": {"apply": {"force": true}}
    }))
    .unwrap();
    let req = keelson_sync::SyncRequest::from_operation(&op, "prod");
    assert!(req.prune && req.dry_run && req.force);
    assert_eq!(req.strategy, Strategy::Apply);
    assert_eq!(req.destination_namespace, "prod");
    let default = keelson_sync::SyncRequest::from_operation(&Default::default(), "");
    assert_eq!(default.strategy, Strategy::Hook);
    assert!(!default.prune);
}

#[test]
fn prune_runs_in_reverse_wave_order() {
    let mut input = PlanInput::new(
        "s1",
        vec![
            orphan(obj("v1", "ConfigMap", "ns", "w1", wave(1))),
            orphan(obj("v1", "ConfigMap", "ns", "w5", wave(5))),
            orphan(obj("v1", "ConfigMap", "ns", "w3", wave(3))),
            desired(obj("v1", "ConfigMap", "ns", "keep", wave(3))),
        ],
    );
    input.request.prune = true;
    input.options.prune_propagation_policy = PropagationPolicy::Background;
    let plan = plan_sync(&input).unwrap();
    let waves: Vec<(String, i32)> = plan
        .tasks
        .iter()
        .map(|t| (t.key.name.clone(), t.wave))
        .collect();
    assert_eq!(
        waves,
        [
            ("w5".into(), 1),
            ("keep".into(), 3),
            ("w3".into(), 3),
            ("w1".into(), 5)
        ]
    );
    assert_eq!(
        plan.tasks[0].operation,
        TaskOperation::Prune {
            propagation: PropagationPolicy::Background
        }
    );
}

#[test]
fn prune_last_moves_prunes_after_the_last_sync_wave() {
    let resources = vec![
        orphan(obj("v1", "ConfigMap", "ns", "old", json!({}))),
        orphan(obj(
            "v1",
            "ConfigMap",
            "ns",
            "old-last",
            json!({"argocd.argoproj.io/sync-options": "PruneLast=true"}),
        )),
        desired(obj("v1", "ConfigMap", "ns", "new", wave(4))),
        desired(obj(
            "batch/v1",
            "Job",
            "ns",
            "post",
            json!({"argocd.argoproj.io/hook": "PostSync"}),
        )),
    ];
    let mut input = PlanInput::new("s1", resources);
    input.request.prune = true;
    let plan = plan_sync(&input).unwrap();
    assert_eq!(names(&plan), ["old", "new", "old-last", "post"]);
    assert_eq!(plan.tasks[2].wave, 5);
    input.options.prune_last = true;
    let plan = plan_sync(&input).unwrap();
    assert_eq!(names(&plan), ["new", "old", "old-last", "post"]);
    assert!(
        plan.tasks[1..3]
            .iter()
            .all(|t| t.wave == 5 && t.phase == SyncPhase::Sync)
    );
}

#[test]
fn prune_disabled_or_not_requested_is_prune_skipped() {
    let resources = vec![
        orphan(obj(
            "v1",
            "ConfigMap",
            "ns",
            "keep-me",
            json!({"argocd.argoproj.io/sync-options": "Prune=false"}),
        )),
        orphan(obj("v1", "ConfigMap", "ns", "gone", json!({}))),
    ];
    let mut input = PlanInput::new("s1", resources);
    let plan = plan_sync(&input).unwrap();
    assert!(plan.tasks.iter().all(|t| t.operation
        == TaskOperation::PruneSkipped {
            message: "ignored (requires pruning)".into()
        }));
    input.request.prune = true;
    let plan = plan_sync(&input).unwrap();
    let op = |name: &str| {
        plan.tasks
            .iter()
            .find(|t| t.key.name == name)
            .unwrap()
            .operation
            .clone()
    };
    assert_eq!(
        op("keep-me"),
        TaskOperation::PruneSkipped {
            message: "ignored (no prune)".into()
        }
    );
    assert!(matches!(op("gone"), TaskOperation::Prune { .. }));
}

#[test]
fn hooks_are_never_pruned() {
    let mut input = PlanInput::new(
        "s1",
        vec![orphan(obj(
            "batch/v1",
            "Job",
            "ns",
            "old-hook",
            json!({"argocd.argoproj.io/hook": "PreSync"}),
        ))],
    );
    input.request.prune = true;
    assert!(plan_sync(&input).unwrap().tasks.is_empty());
}

#[test]
fn apply_out_of_sync_only_skips_unmodified_live_resources() {
    let mut same = desired(obj("v1", "ConfigMap", "ns", "same", json!({})));
    same.live = same.desired.clone();
    same.modified = false;
    let mut changed = desired(obj("v1", "ConfigMap", "ns", "changed", json!({})));
    changed.live = changed.desired.clone();
    let mut hook = desired(obj(
        "batch/v1",
        "Job",
        "ns",
        "hook",
        json!({"argocd.argoproj.io/hook": "Sync"}),
    ));
    hook.modified = false;
    let mut input = PlanInput::new(
        "s1",
        vec![
            same,
            changed,
            desired(obj("v1", "ConfigMap", "ns", "new", json!({}))),
            hook,
        ],
    );
    assert_eq!(plan_sync(&input).unwrap().tasks.len(), 4);
    input.options = SyncOptions::parse(&["ApplyOutOfSyncOnly=true"]).unwrap();
    assert_eq!(
        names(&plan_sync(&input).unwrap()),
        ["changed", "new", "hook"]
    );
}

#[test]
fn create_namespace_adds_a_presync_task_unless_declared_or_live() {
    let mut input = PlanInput::new(
        "s1",
        vec![desired(obj("v1", "ConfigMap", "prod", "cfg", json!({})))],
    );
    input.request.destination_namespace = "prod".into();
    assert_eq!(plan_sync(&input).unwrap().tasks.len(), 1);
    input.options.create_namespace = true;
    let plan = plan_sync(&input).unwrap();
    assert_eq!(names(&plan), ["prod", "cfg"]);
    assert_eq!(plan.tasks[0].phase, SyncPhase::PreSync);
    assert_eq!(plan.tasks[0].key.kind, "Namespace");
    input.destination_namespace_live = Some(obj("v1", "Namespace", "", "prod", json!({})));
    assert_eq!(plan_sync(&input).unwrap().tasks.len(), 1);
    input.destination_namespace_live = None;
    input
        .resources
        .push(desired(obj("v1", "Namespace", "", "prod", json!({}))));
    let plan = plan_sync(&input).unwrap();
    assert_eq!(
        plan.tasks
            .iter()
            .filter(|t| t.key.kind == "Namespace")
            .count(),
        1
    );
}

#[test]
fn apply_method_follows_options() {
    let method = |input: &PlanInput| match &plan_sync(input).unwrap().tasks[0].operation {
        TaskOperation::Apply { method, .. } => method.clone(),
        other => panic!("{other:?}"),
    };
    let mut input = PlanInput::new(
        "s1",
        vec![desired(obj("v1", "ConfigMap", "ns", "c", json!({})))],
    );
    assert_eq!(
        method(&input),
        ApplyMethod::ServerSide {
            force: true,
            field_manager: "argocd-controller".into()
        }
    );
    input.options = SyncOptions::parse(&["ServerSideApply=false"]).unwrap();
    assert_eq!(method(&input), ApplyMethod::ClientSide { force: false });
    input.options = SyncOptions::parse(&["Replace=true"]).unwrap();
    assert_eq!(method(&input), ApplyMethod::Create);
    input.resources[0].live = input.resources[0].desired.clone();
    input.request.force = true;
    assert_eq!(method(&input), ApplyMethod::Replace { force: true });
    let mut ns = desired(obj("v1", "Namespace", "", "n", json!({})));
    ns.live = ns.desired.clone();
    input.resources = vec![ns];
    assert_eq!(method(&input), ApplyMethod::Update);
    input.options = SyncOptions::default();
    input.request.force = false;
    input.resources = vec![desired(obj(
        "v1",
        "ConfigMap",
        "ns",
        "c",
        json!({"argocd.argoproj.io/sync-options": "ServerSideApply=false,Validate=false"}),
    ))];
    assert_eq!(method(&input), ApplyMethod::ClientSide { force: false });
    assert!(matches!(
        plan_sync(&input).unwrap().tasks[0].operation,
        TaskOperation::Apply {
            validate: false,
            ..
        }
    ));
}

#[test]
fn bad_resource_sync_option_names_the_resource() {
    let input = PlanInput::new(
        "s1",
        vec![desired(obj(
            "v1",
            "ConfigMap",
            "ns",
            "c",
            json!({"argocd.argoproj.io/sync-options": "Replace=maybe"}),
        ))],
    );
    let err = plan_sync(&input).unwrap_err();
    assert_eq!(
        err.to_string(),
        "resource /ConfigMap/ns/c: invalid sync options annotation"
    );
}

#[test]
fn fail_on_shared_resource() {
    let mut shared = desired(obj("v1", "ConfigMap", "ns", "c", json!({})));
    shared.shared_with = Some("other-app".into());
    let mut input = PlanInput::new("s1", vec![shared]);
    assert!(plan_sync(&input).is_ok());
    input.options.fail_on_shared_resource = true;
    assert_eq!(
        plan_sync(&input).unwrap_err().to_string(),
        "shared resource found: /ConfigMap/ns/c is also part of application other-app"
    );
}

#[test]
fn plan_round_trips_through_json() {
    let input = PlanInput::new(
        "s1",
        vec![desired(obj("v1", "ConfigMap", "ns", "c", json!({})))],
    );
    let plan = plan_sync(&input).unwrap();
    let text = serde_json::to_string(&plan).unwrap();
    assert_eq!(
        serde_json::from_str::<keelson_sync::Plan>(&text).unwrap(),
        plan
    );
    let input_text = serde_json::to_string(&input).unwrap();
    assert_eq!(
        serde_json::from_str::<PlanInput>(&input_text).unwrap(),
        input
    );
}
