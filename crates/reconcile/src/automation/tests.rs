//! Unit tests of the automated sync decision on YAML fixtures.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use chrono::TimeZone;
use keelson_model::operation::SyncOperationResource;

use super::*;

const SHA_A: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
const SHA_B: &str = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

const APP: &str = r#"
apiVersion: argoproj.io/v1alpha1
kind: Application
metadata: {name: guestbook, namespace: argocd}
spec:
  project: default
  source: {repoURL: 'https://github.com/example/apps.git', path: guestbook, targetRevision: main}
  destination: {server: 'https://kubernetes.default.svc', namespace: guestbook}
  syncPolicy:
    automated: {prune: true, selfHeal: true}
    syncOptions: [CreateNamespace=true]
"#;

/// The last operation: an automated sync of `revision` that ended in `phase` at
/// 12:00:00 with `attempts` self-heal attempts.
fn last_op(revision: &str, phase: &str, attempts: Option<u32>) -> String {
    let count = attempts.map_or(String::new(), |n| format!(", selfHealAttemptsCount: {n}"));
    format!(
        r#"
status:
  operationState:
    operation:
      sync: {{revision: '{revision}', prune: true{count}}}
      initiatedBy: {{automated: true}}
    phase: {phase}
    message: 'one or more objects failed to apply'
    startedAt: '2025-01-01T11:59:50Z'
    finishedAt: '2025-01-01T12:00:00Z'
    syncResult:
      revision: '{revision}'
      source: {{repoURL: 'https://github.com/example/apps.git', path: guestbook, targetRevision: main}}
"#
    )
}

fn app(extra: &str) -> Application {
    serde_yaml_ng::from_str(&format!("{APP}{extra}")).expect("fixture parses")
}

fn at(seconds_after_noon: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 1, 1, 12, 0, 0).unwrap()
        + chrono::Duration::seconds(seconds_after_noon)
}

fn drifted() -> Vec<ResourceStatus> {
    serde_yaml_ng::from_str(
        r#"
- {group: apps, version: v1, kind: Deployment, namespace: guestbook, name: web, status: OutOfSync}
- {version: v1, kind: Service, namespace: guestbook, name: web, status: Synced}
- {group: batch, version: v1, kind: Job, namespace: guestbook, name: migrate, status: OutOfSync, hook: true}
"#,
    )
    .unwrap()
}

fn input<'a>(
    app: &'a Application,
    revisions: &'a [String],
    resources: &'a [ResourceStatus],
    now: DateTime<Utc>,
) -> AutoSyncInput<'a> {
    AutoSyncInput {
        app,
        sync_status: SyncStatusCode::OutOfSync,
        revisions,
        out_of_sync: 1,
        requires_pruning: 0,
        desired: 2,
        resources,
        now,
    }
}

fn skip_reason(decision: AutoSyncDecision) -> String {
    match decision {
        AutoSyncDecision::Skip { reason } => reason,
        other => panic!("expected skip, got {other:?}"),
    }
}

#[test]
fn new_revision_syncs_with_policy_settings() {
    let a = app("");
    let revs = vec![SHA_A.to_owned()];
    let decision = decide_auto_sync(&input(&a, &revs, &[], at(0)));
    let AutoSyncDecision::Sync {
        operation,
        self_heal,
    } = decision
    else {
        panic!("expected sync, got {decision:?}");
    };
    assert!(!self_heal);
    let expected: Operation = serde_yaml_ng::from_str(&format!(
        r#"
sync: {{revision: '{SHA_A}', prune: true, syncOptions: [CreateNamespace=true]}}
initiatedBy: {{automated: true}}
retry: {{limit: 5}}
"#
    ))
    .unwrap();
    assert_eq!(*operation, expected);
}

#[test]
fn policy_retry_and_multi_source_revisions() {
    let mut a: Application = serde_yaml_ng::from_str(
        r#"
metadata: {name: multi}
spec:
  sources:
    - {repoURL: 'https://a/x.git', path: p}
    - {repoURL: 'https://b/y.git', ref: values}
  destination: {server: 'https://s', namespace: n}
  syncPolicy:
    automated: {}
    retry: {limit: 2, backoff: {duration: 10s}}
"#,
    )
    .unwrap();
    let revs = vec![SHA_A.to_owned(), SHA_B.to_owned()];
    let AutoSyncDecision::Sync { operation, .. } = decide_auto_sync(&input(&a, &revs, &[], at(0)))
    else {
        panic!("expected sync");
    };
    let sync = operation.sync.unwrap();
    assert_eq!(sync.revision, None);
    assert_eq!(sync.revisions, Some(revs.clone()));
    assert_eq!(sync.prune, None);
    assert_eq!(sync.sync_options, None);
    assert_eq!(operation.retry.unwrap().limit, Some(2));

    // The same revisions already synced: skipped (selfHeal off).
    a.status = serde_yaml_ng::from_str(&format!(
        "operationState:\n  operation: {{sync: {{revisions: ['{SHA_A}', '{SHA_B}']}}}}\n  phase: Succeeded\n  syncResult: {{revisions: ['{SHA_A}', '{SHA_B}']}}"
    ))
    .unwrap();
    let reason = skip_reason(decide_auto_sync(&input(&a, &revs, &[], at(0))));
    assert_eq!(
        reason,
        format!("skipping auto-sync: most recent sync already to [{SHA_A} {SHA_B}]")
    );
}

#[test]
fn skips_before_deciding_anything() {
    let revs = vec![SHA_A.to_owned()];
    let manual: Application = serde_yaml_ng::from_str(&APP.replace(
        "automated: {prune: true, selfHeal: true}",
        "automated: {enabled: false}",
    ))
    .unwrap();
    assert_eq!(
        skip_reason(decide_auto_sync(&input(&manual, &revs, &[], at(0)))),
        "skipping auto-sync: automated sync is not enabled"
    );
    let no_policy: Application = serde_yaml_ng::from_str("metadata: {name: x}\nspec: {}").unwrap();
    assert!(matches!(
        decide_auto_sync(&input(&no_policy, &revs, &[], at(0))),
        AutoSyncDecision::Skip { .. }
    ));

    let mut busy = app("");
    busy.operation = Some(Operation::default());
    assert_eq!(
        skip_reason(decide_auto_sync(&input(&busy, &revs, &[], at(0)))),
        "skipping auto-sync: another operation is in progress"
    );

    let deleting: Application = serde_yaml_ng::from_str(&APP.replace(
        "namespace: argocd}",
        "namespace: argocd, deletionTimestamp: '2025-01-01T00:00:00Z'}",
    ))
    .unwrap();
    assert_eq!(
        skip_reason(decide_auto_sync(&input(&deleting, &revs, &[], at(0)))),
        "skipping auto-sync: deletion in progress"
    );

    let a = app("");
    for status in [SyncStatusCode::Synced, SyncStatusCode::Unknown] {
        let mut i = input(&a, &revs, &[], at(0));
        i.sync_status = status;
        assert_eq!(
            skip_reason(decide_auto_sync(&i)),
            format!("skipping auto-sync: application status is {status}")
        );
    }
}

#[test]
fn prune_only_changes_wait_for_prune() {
    let no_prune: Application =
        serde_yaml_ng::from_str(&APP.replace("prune: true", "prune: false")).unwrap();
    let revs = vec![SHA_A.to_owned()];
    let mut i = input(&no_prune, &revs, &[], at(0));
    i.out_of_sync = 2;
    i.requires_pruning = 2;
    assert_eq!(
        skip_reason(decide_auto_sync(&i)),
        "skipping auto-sync: need to prune extra resources only but automated prune is disabled"
    );
    i.requires_pruning = 1;
    assert!(matches!(
        decide_auto_sync(&i),
        AutoSyncDecision::Sync { .. }
    ));
}

#[test]
fn refuses_to_wipe_out_everything_unless_allow_empty() {
    let a = app("");
    let revs = vec![SHA_A.to_owned()];
    let mut i = input(&a, &revs, &[], at(0));
    i.desired = 0;
    i.out_of_sync = 3;
    i.requires_pruning = 3;
    let AutoSyncDecision::Refused { condition } = decide_auto_sync(&i) else {
        panic!("expected refusal");
    };
    assert_eq!(condition.type_, "SyncError");
    assert_eq!(
        condition.message,
        format!("Skipping sync attempt to [{SHA_A}]: auto-sync will wipe out all resources")
    );
    assert!(condition.last_transition_time.is_none());

    let allow: Application = serde_yaml_ng::from_str(
        &APP.replace("selfHeal: true}", "selfHeal: true, allowEmpty: true}"),
    )
    .unwrap();
    let mut i = input(&allow, &revs, &[], at(0));
    i.desired = 0;
    assert!(matches!(
        decide_auto_sync(&i),
        AutoSyncDecision::Sync { .. }
    ));
}

#[test]
fn a_failed_attempt_at_the_same_revision_is_refused() {
    let a = app(&last_op(SHA_A, "Failed", None));
    let revs = vec![SHA_A.to_owned()];
    let AutoSyncDecision::Refused { condition } = decide_auto_sync(&input(&a, &revs, &[], at(600)))
    else {
        panic!("expected refusal");
    };
    assert_eq!(condition.type_, "SyncError");
    assert_eq!(
        condition.message,
        format!("Failed last sync attempt to [{SHA_A}]: one or more objects failed to apply")
    );

    // A new revision is tried again.
    let revs = vec![SHA_B.to_owned()];
    assert!(matches!(
        decide_auto_sync(&input(&a, &revs, &[], at(600))),
        AutoSyncDecision::Sync {
            self_heal: false,
            ..
        }
    ));
}

#[test]
fn without_self_heal_the_same_revision_is_not_synced_twice() {
    let extra = last_op(SHA_A, "Succeeded", None);
    let a: Application = serde_yaml_ng::from_str(&format!(
        "{}{extra}",
        APP.replace("selfHeal: true", "selfHeal: false")
    ))
    .unwrap();
    let revs = vec![SHA_A.to_owned()];
    assert_eq!(
        skip_reason(decide_auto_sync(&input(&a, &revs, &[], at(3600)))),
        format!("skipping auto-sync: most recent sync already to [{SHA_A}]")
    );
    // A manual sync to the same revision counts as an attempt too (Argo CD).
    let manual = extra.replace(
        "initiatedBy: {automated: true}",
        "initiatedBy: {username: admin}",
    );
    let a: Application = serde_yaml_ng::from_str(&format!(
        "{}{manual}",
        APP.replace("selfHeal: true", "selfHeal: false")
    ))
    .unwrap();
    assert!(matches!(
        decide_auto_sync(&input(&a, &revs, &[], at(3600))),
        AutoSyncDecision::Skip { .. }
    ));
    // A changed source (path) at the same revision is a new attempt; targetRevision is ignored.
    let moved: Application = serde_yaml_ng::from_str(&format!(
        "{}{extra}",
        APP.replace("selfHeal: true", "selfHeal: false").replace(
            "path: guestbook, targetRevision: main",
            "path: guestbook-v2, targetRevision: main"
        )
    ))
    .unwrap();
    assert!(matches!(
        decide_auto_sync(&input(&moved, &revs, &[], at(3600))),
        AutoSyncDecision::Sync { .. }
    ));
    let retargeted: Application = serde_yaml_ng::from_str(&format!(
        "{}{extra}",
        APP.replace("selfHeal: true", "selfHeal: false")
            .replace("targetRevision: main", "targetRevision: HEAD")
    ))
    .unwrap();
    assert!(matches!(
        decide_auto_sync(&input(&retargeted, &revs, &[], at(3600))),
        AutoSyncDecision::Skip { .. }
    ));
}

#[test]
fn self_heal_backs_off_two_seconds_times_three() {
    let revs = vec![SHA_A.to_owned()];
    let resources = drifted();

    // Attempt 1 right after a normal sync: immediate, selective, counted.
    let a = app(&last_op(SHA_A, "Succeeded", None));
    let AutoSyncDecision::Sync {
        operation,
        self_heal,
    } = decide_auto_sync(&input(&a, &revs, &resources, at(0)))
    else {
        panic!("expected self-heal");
    };
    assert!(self_heal);
    let sync = operation.sync.unwrap();
    assert_eq!(
        sync.extra.get(SELF_HEAL_ATTEMPTS_FIELD),
        Some(&Value::from(1))
    );
    assert_eq!(
        sync.resources,
        Some(vec![SyncOperationResource {
            group: Some("apps".into()),
            kind: "Deployment".into(),
            name: "web".into(),
            namespace: Some("guestbook".into()),
        }])
    );

    // After n attempts the next waits 2 s × 3^(n-1) from finishedAt, capped at 5 min.
    for (attempts, wait) in [
        (1u32, 2u64),
        (2, 6),
        (3, 18),
        (4, 54),
        (5, 162),
        (6, 300),
        (9, 300),
    ] {
        let a = app(&last_op(SHA_A, "Succeeded", Some(attempts)));
        let early = decide_auto_sync(&input(&a, &revs, &resources, at(1)));
        let AutoSyncDecision::Backoff {
            retry_after,
            reason,
        } = early
        else {
            panic!("expected backoff after {attempts} attempts, got {early:?}");
        };
        assert_eq!(
            retry_after,
            Duration::from_secs(wait - 1),
            "after {attempts} attempts"
        );
        assert!(
            reason.starts_with(&format!("already attempted sync to [{SHA_A}]")),
            "{reason}"
        );
        let due = decide_auto_sync(&input(&a, &revs, &resources, at(wait as i64)));
        let AutoSyncDecision::Sync {
            operation,
            self_heal: true,
        } = due
        else {
            panic!("expected self-heal once due, got {due:?}");
        };
        let count = operation
            .sync
            .unwrap()
            .extra
            .get(SELF_HEAL_ATTEMPTS_FIELD)
            .cloned();
        assert_eq!(count, Some(Value::from(attempts + 1)));
    }

    // A new revision starts from zero again.
    let a = app(&last_op(SHA_A, "Succeeded", Some(4)));
    let new = vec![SHA_B.to_owned()];
    let AutoSyncDecision::Sync {
        operation,
        self_heal,
    } = decide_auto_sync(&input(&a, &new, &resources, at(1)))
    else {
        panic!("expected sync");
    };
    assert!(!self_heal);
    let sync = operation.sync.unwrap();
    assert!(!sync.extra.contains_key(SELF_HEAL_ATTEMPTS_FIELD));
    assert_eq!(sync.resources, None);
    assert_eq!(sync.revision.as_deref(), Some(SHA_B));
}

#[test]
fn self_heal_with_custom_backoff_and_unknown_finish() {
    let revs = vec![SHA_A.to_owned()];
    let custom = SelfHealBackoff {
        duration: Duration::from_secs(1),
        factor: 2,
        cap: Duration::from_secs(10),
    };
    let a = app(&last_op(SHA_A, "Succeeded", Some(3)));
    let decision = decide_auto_sync_with(&input(&a, &revs, &[], at(0)), &custom);
    assert!(
        matches!(decision, AutoSyncDecision::Backoff { retry_after, .. } if retry_after == Duration::from_secs(4))
    );
    let no_finish = app(&last_op(SHA_A, "Succeeded", Some(2))
        .replace("    finishedAt: '2025-01-01T12:00:00Z'\n", ""));
    let decision = decide_auto_sync(&input(&no_finish, &revs, &[], at(3600)));
    assert!(
        matches!(decision, AutoSyncDecision::Backoff { retry_after, .. } if retry_after == Duration::from_secs(6))
    );
}

#[test]
fn errored_operation_without_result_counts_as_attempted() {
    let a = app(
        "\nstatus:\n  operationState:\n    operation: {sync: {}}\n    phase: Error\n    message: 'rpc error: manifest generation failed'\n",
    );
    let revs = vec![SHA_A.to_owned()];
    let AutoSyncDecision::Refused { condition } = decide_auto_sync(&input(&a, &revs, &[], at(0)))
    else {
        panic!("expected refusal");
    };
    assert_eq!(
        condition.message,
        "Failed last sync attempt to []: rpc error: manifest generation failed"
    );
    let running =
        app("\nstatus:\n  operationState:\n    operation: {sync: {}}\n    phase: Running\n");
    assert!(matches!(
        decide_auto_sync(&input(&running, &revs, &[], at(0))),
        AutoSyncDecision::Sync { .. }
    ));
}
