//! Revision history (`status.history`) and rollbacks, as Argo CD keeps them: one entry per
//! successful, non-dry-run, non-selective sync, ids counting up from 0, the newest
//! `revisionHistoryLimit` entries kept (default 10); a rollback is a sync operation back
//! to an entry's revision(s) and source(s) with the `apply` strategy (hooks do not run),
//! refused while automated sync is on.

use keelson_model::application_status::{ApplicationStatus, RevisionHistory};
use keelson_model::operation::{
    OperationInitiator, OperationState, SyncOperation, SyncStrategy, SyncStrategyOptions,
};
use keelson_model::{Application, Operation, OperationPhase};

/// Argo CD's default `spec.revisionHistoryLimit`.
pub const DEFAULT_REVISION_HISTORY_LIMIT: i64 = 10;

/// Why [`rollback_operation`] refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RollbackError {
    /// The Application is being deleted.
    #[error("application is deleting")]
    Deleting,
    /// Automated sync is on; it would immediately sync forward again.
    #[error("rollback cannot be initiated when auto-sync is enabled")]
    AutoSyncEnabled,
    /// No history entry has the requested id.
    #[error("application {app} does not have deployment with id {id}")]
    UnknownId {
        /// Application name.
        app: String,
        /// The requested id.
        id: i64,
    },
    /// The entry records no source (deployed by Argo CD v0.11 or older).
    #[error(
        "cannot rollback to revision deployed with Argo CD v0.11 or lower. sync to revision instead"
    )]
    NoSource,
    /// Another operation is set on the Application.
    #[error("another operation is already in progress")]
    OperationInProgress,
}

/// Appends `entry` to `status.history` with id = last id + 1 (0 for the first entry) and
/// keeps the newest `limit` entries (`None`: 10; 0 or less: none).
pub fn append_history(
    status: &mut ApplicationStatus,
    mut entry: RevisionHistory,
    limit: Option<i64>,
) {
    let mut history = status.history.take().unwrap_or_default();
    entry.id = history.last().map_or(0, |last| last.id.saturating_add(1));
    history.push(entry);
    let limit = limit.unwrap_or(DEFAULT_REVISION_HISTORY_LIMIT).max(0);
    let keep = usize::try_from(limit).unwrap_or(usize::MAX);
    if history.len() > keep {
        history.drain(..history.len() - keep);
    }
    status.history = (!history.is_empty()).then_some(history);
}

/// The history entry for a finished operation, or `None` when it is not recorded: Argo CD
/// records only sync operations that succeeded, were not dry runs and synced the whole
/// application (a selective sync, e.g. a self-heal, adds no entry). Revision(s) and
/// source(s) come from the sync result: multi-source when it has `revisions`/`sources`.
/// The id is set by [`append_history`].
pub fn history_entry(
    op_state: &OperationState,
    deploy_started_at: &str,
    deployed_at: &str,
) -> Option<RevisionHistory> {
    if op_state.phase != Some(OperationPhase::Succeeded) {
        return None;
    }
    let sync = op_state.operation.sync.as_ref()?;
    if sync.dry_run == Some(true) || sync.resources.as_ref().is_some_and(|r| !r.is_empty()) {
        return None;
    }
    let result = op_state.sync_result.as_ref()?;
    let multi = result.revisions.as_ref().is_some_and(|r| !r.is_empty())
        || result.sources.as_ref().is_some_and(|s| !s.is_empty());
    let mut entry = RevisionHistory {
        deploy_started_at: (!deploy_started_at.is_empty()).then(|| deploy_started_at.to_owned()),
        deployed_at: (!deployed_at.is_empty()).then(|| deployed_at.to_owned()),
        initiated_by: op_state.operation.initiated_by.clone(),
        ..RevisionHistory::default()
    };
    if multi {
        entry.revisions = result.revisions.clone();
        entry.sources = result.sources.clone();
    } else {
        entry.revision = result.revision.clone();
        entry.source = result.source.clone();
    }
    Some(entry)
}

/// The operation Argo CD's `argocd app rollback` sets: a sync back to history entry `id`
/// (its revision(s) and source(s)), `apply` strategy, the app's sync options, `prune` and
/// `dryRun` as asked, initiated by `username`. Checks, in Argo CD's order: deletion,
/// automated sync, the id, the entry's source, then an operation already set.
pub fn rollback_operation(
    app: &Application,
    id: i64,
    prune: bool,
    dry_run: bool,
    username: Option<&str>,
) -> Result<Operation, RollbackError> {
    if app.metadata.deletion_timestamp.is_some() {
        return Err(RollbackError::Deleting);
    }
    let policy = app.spec.sync_policy.as_ref();
    if policy.is_some_and(|p| p.is_automated()) {
        return Err(RollbackError::AutoSyncEnabled);
    }
    let entry = app
        .status
        .as_ref()
        .and_then(|s| s.history.as_deref())
        .unwrap_or_default()
        .iter()
        .find(|entry| entry.id == id)
        .ok_or_else(|| RollbackError::UnknownId {
            app: app.metadata.name.clone().unwrap_or_default(),
            id,
        })?;
    let has_sources = entry.sources.as_ref().is_some_and(|s| !s.is_empty());
    if entry.source.is_none() && !has_sources {
        return Err(RollbackError::NoSource);
    }
    if app.operation.is_some() {
        return Err(RollbackError::OperationInProgress);
    }
    let sync = SyncOperation {
        revision: entry.revision.clone(),
        revisions: entry.revisions.clone(),
        prune: prune.then_some(true),
        dry_run: dry_run.then_some(true),
        sync_strategy: Some(SyncStrategy {
            apply: Some(SyncStrategyOptions::default()),
            hook: None,
        }),
        sync_options: policy
            .and_then(|p| p.sync_options.clone())
            .filter(|options| !options.is_empty()),
        source: entry.source.clone(),
        sources: entry.sources.clone().filter(|s| !s.is_empty()),
        ..SyncOperation::default()
    };
    Ok(Operation {
        sync: Some(sync),
        initiated_by: Some(OperationInitiator {
            username: username.map(str::to_owned),
            automated: None,
        }),
        ..Operation::default()
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    const SHA_A: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";

    fn op_state(yaml: &str) -> OperationState {
        serde_yaml_ng::from_str(yaml).expect("operation state fixture parses")
    }

    fn succeeded_sync(revision: &str) -> OperationState {
        op_state(&format!(
            r#"
operation:
  sync: {{revision: '{revision}', prune: true}}
  initiatedBy: {{username: admin}}
phase: Succeeded
startedAt: '2025-01-01T12:00:00Z'
finishedAt: '2025-01-01T12:00:09Z'
syncResult:
  revision: '{revision}'
  source: {{repoURL: 'https://github.com/example/apps.git', path: guestbook, targetRevision: main}}
"#
        ))
    }

    fn entry(revision: &str) -> RevisionHistory {
        RevisionHistory {
            revision: Some(revision.to_owned()),
            ..RevisionHistory::default()
        }
    }

    #[test]
    fn ids_count_up_and_the_newest_entries_are_kept() {
        let mut status = ApplicationStatus::default();
        for n in 0..12 {
            append_history(&mut status, entry(&format!("r{n}")), None);
        }
        let history = status.history.clone().unwrap();
        assert_eq!(history.len(), 10);
        assert_eq!(history.first().unwrap().id, 2);
        assert_eq!(history.last().unwrap().id, 11);
        assert_eq!(history.last().unwrap().revision.as_deref(), Some("r11"));

        append_history(&mut status, entry("r12"), Some(3));
        let ids: Vec<i64> = status.history.iter().flatten().map(|h| h.id).collect();
        assert_eq!(ids, [10, 11, 12]);

        append_history(&mut status, entry("r13"), Some(0));
        assert_eq!(status.history, None);
        append_history(&mut status, entry("r14"), Some(-1));
        assert_eq!(status.history, None);
    }

    #[test]
    fn ids_continue_from_the_last_entry_even_with_gaps() {
        let mut status: ApplicationStatus = serde_yaml_ng::from_str(
            "history:\n  - {id: 4, revision: a}\n  - {id: 9, revision: b}\n",
        )
        .unwrap();
        append_history(&mut status, entry("c"), Some(10));
        assert_eq!(status.history.unwrap().last().unwrap().id, 10);
    }

    #[test]
    fn entry_from_a_successful_single_source_sync() {
        let state = succeeded_sync(SHA_A);
        let e = history_entry(&state, "2025-01-01T12:00:00Z", "2025-01-01T12:00:09Z").unwrap();
        let expected: RevisionHistory = serde_yaml_ng::from_str(&format!(
            r#"
id: 0
revision: '{SHA_A}'
deployStartedAt: '2025-01-01T12:00:00Z'
deployedAt: '2025-01-01T12:00:09Z'
source: {{repoURL: 'https://github.com/example/apps.git', path: guestbook, targetRevision: main}}
initiatedBy: {{username: admin}}
"#
        ))
        .unwrap();
        assert_eq!(e, expected);
    }

    #[test]
    fn entry_from_a_multi_source_sync() {
        let state = op_state(
            r#"
operation: {sync: {revisions: [r1, r2]}, initiatedBy: {automated: true}}
phase: Succeeded
syncResult:
  revisions: [r1, r2]
  sources:
    - {repoURL: 'https://a/x.git', path: p}
    - {repoURL: 'https://b/y.git', ref: values}
"#,
        );
        let e = history_entry(&state, "t0", "t1").unwrap();
        assert_eq!(e.revision, None);
        assert_eq!(e.source, None);
        assert_eq!(e.revisions, Some(vec!["r1".to_owned(), "r2".to_owned()]));
        assert_eq!(e.sources.unwrap().len(), 2);
        assert_eq!(e.initiated_by.unwrap().automated, Some(true));
    }

    #[test]
    fn no_entry_for_failures_dry_runs_and_selective_syncs() {
        let mut failed = succeeded_sync(SHA_A);
        failed.phase = Some(OperationPhase::Failed);
        assert!(history_entry(&failed, "t0", "t1").is_none());

        let mut dry = succeeded_sync(SHA_A);
        dry.operation.sync.as_mut().unwrap().dry_run = Some(true);
        assert!(history_entry(&dry, "t0", "t1").is_none());

        let selective = op_state(
            "operation: {sync: {resources: [{group: apps, kind: Deployment, name: web}]}}\nphase: Succeeded\nsyncResult: {revision: x}",
        );
        assert!(history_entry(&selective, "t0", "t1").is_none());

        let no_result = op_state("operation: {sync: {}}\nphase: Succeeded");
        assert!(history_entry(&no_result, "t0", "t1").is_none());
        let not_sync = op_state("operation: {}\nphase: Succeeded\nsyncResult: {revision: x}");
        assert!(history_entry(&not_sync, "t0", "t1").is_none());
    }

    const APP: &str = r#"
metadata: {name: guestbook, namespace: argocd}
spec:
  source: {repoURL: 'https://github.com/example/apps.git', path: guestbook, targetRevision: main}
  destination: {server: 'https://kubernetes.default.svc', namespace: guestbook}
  syncPolicy:
    syncOptions: [CreateNamespace=true]
status:
  history:
    - id: 0
      revision: 1111111111111111111111111111111111111111
      source: {repoURL: 'https://github.com/example/apps.git', path: guestbook, targetRevision: main}
    - id: 1
      revision: 2222222222222222222222222222222222222222
      source: {repoURL: 'https://github.com/example/apps.git', path: guestbook-v2, targetRevision: main}
    - id: 2
      revision: 3333333333333333333333333333333333333333
"#;

    fn app(yaml: &str) -> Application {
        serde_yaml_ng::from_str(yaml).expect("application fixture parses")
    }

    #[test]
    fn rollback_syncs_back_to_the_entry() {
        let op = rollback_operation(&app(APP), 0, true, false, Some("admin")).unwrap();
        let expected: Operation = serde_yaml_ng::from_str(
            r#"
sync:
  revision: 1111111111111111111111111111111111111111
  prune: true
  syncStrategy: {apply: {}}
  syncOptions: [CreateNamespace=true]
  source: {repoURL: 'https://github.com/example/apps.git', path: guestbook, targetRevision: main}
initiatedBy: {username: admin}
"#,
        )
        .unwrap();
        assert_eq!(op, expected);

        let dry = rollback_operation(&app(APP), 1, false, true, None).unwrap();
        let sync = dry.sync.unwrap();
        assert_eq!(sync.dry_run, Some(true));
        assert_eq!(sync.prune, None);
        assert_eq!(sync.source.unwrap().path.as_deref(), Some("guestbook-v2"));
        assert_eq!(dry.initiated_by.unwrap().username, None);
    }

    #[test]
    fn rollback_of_a_multi_source_entry() {
        let multi = app(r#"
metadata: {name: multi}
spec: {}
status:
  history:
    - id: 5
      revisions: [r1, r2]
      sources: [{repoURL: 'https://a/x.git', path: p}, {repoURL: 'https://b/y.git', ref: values}]
"#);
        let sync = rollback_operation(&multi, 5, false, false, Some("u"))
            .unwrap()
            .sync
            .unwrap();
        assert_eq!(sync.revisions, Some(vec!["r1".to_owned(), "r2".to_owned()]));
        assert_eq!(sync.sources.unwrap().len(), 2);
        assert_eq!(sync.revision, None);
        assert_eq!(sync.source, None);
    }

    #[test]
    fn rollback_refusals_in_argo_cd_order() {
        let auto = app(&APP.replace(
            "syncOptions: [CreateNamespace=true]",
            "automated: {prune: true}",
        ));
        let err = rollback_operation(&auto, 0, false, false, None).unwrap_err();
        assert_eq!(err, RollbackError::AutoSyncEnabled);
        assert_eq!(
            err.to_string(),
            "rollback cannot be initiated when auto-sync is enabled"
        );

        let disabled = app(&APP.replace(
            "syncOptions: [CreateNamespace=true]",
            "automated: {enabled: false}",
        ));
        assert!(rollback_operation(&disabled, 0, false, false, None).is_ok());

        let err = rollback_operation(&app(APP), 7, false, false, None).unwrap_err();
        assert_eq!(
            err.to_string(),
            "application guestbook does not have deployment with id 7"
        );

        let err = rollback_operation(&app(APP), 2, false, false, None).unwrap_err();
        assert_eq!(err, RollbackError::NoSource);

        let mut busy = app(APP);
        busy.operation = Some(Operation::default());
        assert_eq!(
            rollback_operation(&busy, 0, false, false, None).unwrap_err(),
            RollbackError::OperationInProgress
        );
        assert_eq!(
            rollback_operation(&busy, 9, false, false, None).unwrap_err(),
            RollbackError::UnknownId {
                app: "guestbook".into(),
                id: 9
            }
        );

        let deleting = app(&APP.replace(
            "namespace: argocd}",
            "namespace: argocd, deletionTimestamp: '2025-01-01T00:00:00Z'}",
        ));
        assert_eq!(
            rollback_operation(&deleting, 0, false, false, None)
                .unwrap_err()
                .to_string(),
            "application is deleting"
        );
    }
}
