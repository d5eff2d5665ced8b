//! Automated sync decisions (Argo CD's `ApplicationController.autoSync`): whether a
//! reconciled Application gets an automated sync operation now, later (self-heal
//! backoff), never for this revision (a `SyncError` condition), or not at all.
//!
//! The rules, in Argo CD's order:
//!
//! 1. Skip unless `spec.syncPolicy.automated` is present and not `enabled: false`, no
//!    operation is set, the app is not being deleted and it is `OutOfSync`.
//! 2. With `prune` off, skip when every out-of-sync resource only requires pruning.
//! 3. *Already attempted*: the last `status.operationState` synced the same revisions
//!    (`syncResult.revision(s)`) from the same sources (ignoring `targetRevision`; not
//!    compared when the result records none), whoever started it. Then a failed attempt
//!    is refused (`Failed last sync attempt to [..]: <message>`); without `selfHeal` the
//!    app is skipped; with `selfHeal` the next attempt waits the self-heal backoff from
//!    the last operation's `finishedAt`: nothing for attempt 0, then
//!    [`SelfHealBackoff::delay`]`(n - 1)` (2 s × 3ⁿ⁻¹, at most 5 min) for attempt n. The
//!    attempt number lives in `operation.sync.selfHealAttemptsCount` (Argo CD's field) and
//!    starts again from 0 for a new revision. A self-heal sync selects only the
//!    resources that are not `Synced` (a selective sync, so hooks do not run).
//! 4. With `prune` on and `allowEmpty` off, refuse to sync to no resources at all
//!    (`Skipping sync attempt to [..]: auto-sync will wipe out all resources`).
//! 5. Otherwise sync: `revision` (one source) or `revisions`, `prune` from the policy,
//!    the policy's `syncOptions`, `retry` from `syncPolicy.retry` (Argo CD's `limit: 5`
//!    when absent), `initiatedBy: {automated: true}`.

use std::time::Duration;

use chrono::{DateTime, Utc};
use keelson_model::application::RetryStrategy;
use keelson_model::application_status::{
    ApplicationCondition, CONDITION_SYNC_ERROR, ResourceStatus,
};
use keelson_model::operation::{
    OperationInitiator, OperationState, SyncOperation, SyncOperationResource,
};
use keelson_model::{Application, ApplicationSource, Operation, OperationPhase, SyncStatusCode};
use keelson_sync::SelfHealBackoff;
use serde_json::Value;

/// Argo CD's name for the self-heal attempt counter in `operation.sync`.
pub const SELF_HEAL_ATTEMPTS_FIELD: &str = "selfHealAttemptsCount";

/// Retry limit Argo CD gives automated syncs when `syncPolicy.retry` is absent.
pub const DEFAULT_AUTO_SYNC_RETRY_LIMIT: i64 = 5;

/// What [`decide_auto_sync`] looks at: the Application and the result of the comparison
/// that was just made.
#[derive(Debug, Clone, Copy)]
pub struct AutoSyncInput<'a> {
    /// The Application as stored (spec, `operation`, `status.operationState`).
    pub app: &'a Application,
    /// Sync status the comparison found.
    pub sync_status: SyncStatusCode,
    /// Resolved revisions (commit SHAs), one per source.
    pub revisions: &'a [String],
    /// Number of non-hook resources that are OutOfSync.
    pub out_of_sync: usize,
    /// Of those, how many only require pruning.
    pub requires_pruning: usize,
    /// Number of non-hook desired resources.
    pub desired: usize,
    /// The comparison's managed resources; a self-heal sync selects those not `Synced`.
    pub resources: &'a [ResourceStatus],
    /// Current time.
    pub now: DateTime<Utc>,
}

/// The outcome of [`decide_auto_sync`].
#[derive(Debug, Clone, PartialEq)]
pub enum AutoSyncDecision {
    /// Set this operation on the Application.
    Sync {
        /// The automated sync operation (boxed: it is much larger than the other
        /// variants).
        operation: Box<Operation>,
        /// Whether this is a self-heal of an already synced revision.
        self_heal: bool,
    },
    /// Do nothing (nothing to do, or automation is off).
    Skip {
        /// Why, for logs.
        reason: String,
    },
    /// Self-heal is due later: re-evaluate after `retry_after`.
    Backoff {
        /// Time left before the next self-heal attempt.
        retry_after: Duration,
        /// Why, for logs.
        reason: String,
    },
    /// Argo CD's `SyncError` cases: the automated sync will not happen for these
    /// revisions. The condition has no `lastTransitionTime`; the caller stamps it.
    Refused {
        /// The condition to set.
        condition: ApplicationCondition,
    },
}

/// Decides about an automated sync with Argo CD's default self-heal backoff.
pub fn decide_auto_sync(input: &AutoSyncInput) -> AutoSyncDecision {
    decide_auto_sync_with(input, &SelfHealBackoff::default())
}

/// Decides about an automated sync (see the module docs) with a given self-heal backoff.
pub fn decide_auto_sync_with(input: &AutoSyncInput, backoff: &SelfHealBackoff) -> AutoSyncDecision {
    let app = input.app;
    let Some(policy) = app.spec.sync_policy.as_ref().filter(|p| p.is_automated()) else {
        return skip("automated sync is not enabled");
    };
    let automated = policy.automated.clone().unwrap_or_default();
    let prune = automated.prune == Some(true);
    if app.operation.is_some() {
        return skip("another operation is in progress");
    }
    if app.metadata.deletion_timestamp.is_some() {
        return skip("deletion in progress");
    }
    if input.sync_status != SyncStatusCode::OutOfSync {
        return skip(&format!("application status is {}", input.sync_status));
    }
    if !prune && input.requires_pruning >= input.out_of_sync {
        return skip("need to prune extra resources only but automated prune is disabled");
    }
    let desired = go_list(input.revisions);
    let mut self_heal_attempts = None;
    if let Some(attempt) = last_attempt(app, input.revisions) {
        let state = attempt.state;
        if state.phase != Some(OperationPhase::Succeeded) {
            let message = state.message.as_deref().unwrap_or_default();
            return refuse(format!(
                "Failed last sync attempt to {}: {message}",
                go_list(&attempt.revisions)
            ));
        }
        if automated.self_heal != Some(true) {
            return skip(&format!("most recent sync already to {desired}"));
        }
        let attempts = self_heal_attempts_of(state);
        let remaining = remaining_backoff(state, attempts, backoff, input.now);
        if !remaining.is_zero() {
            return AutoSyncDecision::Backoff {
                retry_after: remaining,
                reason: format!(
                    "already attempted sync to {desired} (self-heal attempt {}, retrying in {remaining:?})",
                    attempts.saturating_add(1)
                ),
            };
        }
        self_heal_attempts = Some(attempts.saturating_add(1));
    }
    if prune && automated.allow_empty != Some(true) && input.desired == 0 {
        return refuse(format!(
            "Skipping sync attempt to {desired}: auto-sync will wipe out all resources"
        ));
    }
    let operation = automated_operation(input, prune, self_heal_attempts);
    AutoSyncDecision::Sync {
        operation: Box::new(operation),
        self_heal: self_heal_attempts.is_some(),
    }
}

fn skip(reason: &str) -> AutoSyncDecision {
    AutoSyncDecision::Skip {
        reason: format!("skipping auto-sync: {reason}"),
    }
}

fn refuse(message: String) -> AutoSyncDecision {
    AutoSyncDecision::Refused {
        condition: ApplicationCondition {
            type_: CONDITION_SYNC_ERROR.to_owned(),
            message,
            last_transition_time: None,
        },
    }
}

/// A list as Go's `%s` prints a `[]string`: `[a b]`.
fn go_list(items: &[String]) -> String {
    format!("[{}]", items.join(" "))
}

struct LastAttempt<'a> {
    state: &'a OperationState,
    revisions: Vec<String>,
}

/// Argo CD's `alreadyAttemptedSync`: the last operation synced `desired` from the
/// current sources (or completed without any sync result).
fn last_attempt<'a>(app: &'a Application, desired: &[String]) -> Option<LastAttempt<'a>> {
    let state = app.status.as_ref()?.operation_state.as_ref()?;
    let Some(result) = state.sync_result.as_ref() else {
        let completed = state.phase.is_some_and(OperationPhase::is_completed);
        return completed.then(|| LastAttempt {
            state,
            revisions: Vec::new(),
        });
    };
    let multi = app.spec.has_multiple_sources();
    let revisions = if multi {
        result.revisions.clone().unwrap_or_default()
    } else {
        result.revision.iter().cloned().collect()
    };
    if revisions != desired {
        return None;
    }
    let sources_match = if multi {
        result.sources.as_deref().is_none_or(|synced| {
            let spec = app.spec.sources.as_deref().unwrap_or_default();
            same_sources(spec.iter(), synced.iter())
        })
    } else {
        result.source.as_ref().is_none_or(|synced| {
            same_sources(
                app.spec.effective_sources().into_iter(),
                std::iter::once(synced),
            )
        })
    };
    sources_match.then_some(LastAttempt { state, revisions })
}

fn same_sources<'a>(
    spec: impl ExactSizeIterator<Item = &'a ApplicationSource>,
    synced: impl ExactSizeIterator<Item = &'a ApplicationSource>,
) -> bool {
    spec.len() == synced.len()
        && spec
            .zip(synced)
            .all(|(a, b)| without_target(a) == without_target(b))
}

fn without_target(source: &ApplicationSource) -> ApplicationSource {
    ApplicationSource {
        target_revision: None,
        ..source.clone()
    }
}

/// `operation.sync.selfHealAttemptsCount` of the last operation (0 when absent).
fn self_heal_attempts_of(state: &OperationState) -> u32 {
    state
        .operation
        .sync
        .as_ref()
        .and_then(|sync| sync.extra.get(SELF_HEAL_ATTEMPTS_FIELD))
        .and_then(Value::as_u64)
        .map_or(0, |n| u32::try_from(n).unwrap_or(u32::MAX))
}

/// Time left before self-heal attempt `attempts + 1`: the backoff for the attempts made
/// so far, counted from the last operation's `finishedAt` (in full when unknown).
fn remaining_backoff(
    state: &OperationState,
    attempts: u32,
    backoff: &SelfHealBackoff,
    now: DateTime<Utc>,
) -> Duration {
    let delay = match attempts {
        0 => Duration::ZERO,
        n => backoff.delay(n - 1),
    };
    let finished = state
        .finished_at
        .as_deref()
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok());
    match finished {
        Some(finished) => {
            let elapsed = (now - finished.with_timezone(&Utc))
                .to_std()
                .unwrap_or_default();
            delay.saturating_sub(elapsed)
        }
        None => delay,
    }
}

fn automated_operation(input: &AutoSyncInput, prune: bool, self_heal: Option<u32>) -> Operation {
    let app = input.app;
    let policy = app.spec.sync_policy.as_ref();
    let multi = app.spec.has_multiple_sources();
    let mut sync = SyncOperation {
        revision: if multi {
            None
        } else {
            input.revisions.first().cloned()
        },
        revisions: multi.then(|| input.revisions.to_vec()),
        prune: prune.then_some(true),
        sync_options: policy
            .and_then(|p| p.sync_options.clone())
            .filter(|options| !options.is_empty()),
        ..SyncOperation::default()
    };
    if let Some(attempts) = self_heal {
        sync.extra
            .insert(SELF_HEAL_ATTEMPTS_FIELD.to_owned(), Value::from(attempts));
        let drifted: Vec<SyncOperationResource> = input
            .resources
            .iter()
            .filter(|r| r.hook != Some(true) && r.status != Some(SyncStatusCode::Synced))
            .map(|r| SyncOperationResource {
                group: r.group.clone(),
                kind: r.kind.clone(),
                name: r.name.clone(),
                namespace: r.namespace.clone().filter(|ns| !ns.is_empty()),
            })
            .collect();
        sync.resources = (!drifted.is_empty()).then_some(drifted);
    }
    let retry = policy
        .and_then(|p| p.retry.clone())
        .unwrap_or(RetryStrategy {
            limit: Some(DEFAULT_AUTO_SYNC_RETRY_LIMIT),
            ..RetryStrategy::default()
        });
    Operation {
        sync: Some(sync),
        initiated_by: Some(OperationInitiator {
            username: None,
            automated: Some(true),
        }),
        retry: Some(retry),
        ..Operation::default()
    }
}

#[cfg(test)]
mod tests;
