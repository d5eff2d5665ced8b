//! The comparison the controller runs on every reconcile (Argo CD's `CompareAppState`):
//! desired objects are keyed and matched with live objects, diffed, given a sync status
//! and a health, and summed up into the application's sync status, health, conditions
//! and summary.
//!
//! # Rules
//!
//! * **Keys.** Namespaced kinds without a namespace get the destination namespace;
//!   cluster-scoped kinds (discovery, else a built-in list) lose theirs; an unknown scope
//!   counts as namespaced but the live lookup also tries the cluster-scoped key. A key
//!   seen twice raises `RepeatedResourceWarning` and the last object wins.
//! * **Matching.** Each desired object takes its live twin by key. A twin tracked by
//!   another application raises `SharedResourceWarning` and sets `shared_with`. Live
//!   objects left over that this application tracks and that have no owner references
//!   require pruning (OutOfSync; with `compare-options: IgnoreExtraneous` they do not make
//!   the application OutOfSync); other live objects are not this application's.
//! * **Hooks** (and `hook: Skip` resources) get no sync status, never make the
//!   application OutOfSync, are never pruned and take no part in health. Desired hooks
//!   without a live object are absent from `status.resources`, as in Argo CD.
//! * **Status.** Missing, modified or requiring pruning → OutOfSync, else Synced. A diff
//!   error raises `ComparisonError` naming the resource, makes that resource Unknown (and
//!   `modified`, so a sync still applies it) and the application Unknown.
//! * **Health**: see the `health` module; the application health carries no message
//!   (Argo CD gives none).
//! * **RespectIgnoreDifferences**: [`ComparedResource::sync_desired`] holds the desired
//!   object with ignored fields taken from live (see [`respect_ignore_differences`]).

mod health;
mod keys;
mod metadata;
mod orphans;
mod respect;
mod summary;
#[cfg(test)]
mod tests;

use keelson_diff::{DiffConfig, diff};
use keelson_health::{HealthAssessor, is_hook};
use keelson_model::application_status::{
    ApplicationCondition, ApplicationSummary, CONDITION_COMPARISON_ERROR,
    CONDITION_SHARED_RESOURCE_WARNING,
};
use keelson_model::tracking::TrackingMethod;
use keelson_model::{HealthStatus, ResourceKey, ResourceStatus, SyncStatusCode};
use keelson_sync::{ResourceInput, wave_of};
use serde_json::Value;

use keys::{LiveIndex, Target, prepare_targets, version_of};
use metadata::{has_owner, ignores_extraneous, is_skipped, tracked_app};

pub use metadata::IGNORE_HEALTHCHECK;
pub use orphans::{orphaned_resources, orphaned_resources_condition};
pub use respect::respect_ignore_differences;
pub use summary::{IGNORE_DEFAULT_LINKS, LINK_ANNOTATION_PREFIX};

/// Everything one comparison needs. Desired and live objects are moved in, never copied.
pub struct CompareInput<'a> {
    /// Tracking instance name of this application (`<app>` or `<namespace>_<app>`).
    pub app_instance: &'a str,
    /// `spec.destination.namespace` (may be empty).
    pub destination_namespace: &'a str,
    /// Rendered objects of all sources, in source order, carrying the tracking
    /// label/annotation.
    pub desired: Vec<Value>,
    /// Live objects: those tracked by this application plus the live twin of each
    /// desired key (which another application may track).
    pub live: Vec<Value>,
    /// How objects are attributed to applications.
    pub tracking: TrackingMethod,
    /// Instance label key for label tracking.
    pub label_key: &'a str,
    /// Diff settings (ignoreDifferences, field manager).
    pub diff: &'a DiffConfig,
    /// Health assessment with the argocd-cm customizations.
    pub health: &'a HealthAssessor,
    /// `(group, kind)` → `Some(namespaced)` when discovery knows the kind.
    pub scope: &'a dyn Fn(&str, &str) -> Option<bool>,
    /// Sync option `RespectIgnoreDifferences=true`.
    pub respect_ignore_differences: bool,
}

/// One compared resource: desired, live or both.
#[derive(Debug, Clone, PartialEq)]
pub struct ComparedResource {
    /// Identity (a hook with only `generateName` has an empty name).
    pub key: ResourceKey,
    /// `apiVersion` of the live object, else of the desired one.
    pub api_version: String,
    /// Desired object (namespace defaulted).
    pub desired: Option<Value>,
    /// Live object.
    pub live: Option<Value>,
    /// Under `RespectIgnoreDifferences`: the desired object to sync (ignored fields from
    /// live); `None` means sync `desired` as is.
    pub sync_desired: Option<Value>,
    /// A sync would change the live object (true when missing or requiring pruning).
    pub modified: bool,
    /// Live, not desired, tracked by this application, not a hook: to be pruned.
    pub requires_pruning: bool,
    /// A sync hook.
    pub hook: bool,
    /// `argocd.argoproj.io/hook: Skip` on the desired object.
    pub skipped: bool,
    /// Sync status; `None` for hooks and skipped resources (Argo CD stores none).
    pub status: Option<SyncStatusCode>,
    /// Health; `None` for hooks, skipped resources and kinds without a health check.
    pub health: Option<HealthStatus>,
    /// `argocd.argoproj.io/sync-wave` (else `helm.sh/hook-weight`, else 0).
    pub sync_wave: i64,
    /// Another application instance tracking the live object.
    pub shared_with: Option<String>,
    /// `compare-options: IgnoreExtraneous`: requiring pruning does not make the
    /// application OutOfSync.
    pub ignore_extraneous: bool,
}

impl ComparedResource {
    /// Whether this resource makes the application OutOfSync.
    pub fn counts_out_of_sync(&self) -> bool {
        self.status == Some(SyncStatusCode::OutOfSync)
            && !(self.requires_pruning && self.ignore_extraneous)
    }
}

/// The result of a comparison.
#[derive(Debug, Clone, PartialEq)]
pub struct Comparison {
    /// Application sync status.
    pub sync_status: SyncStatusCode,
    /// Desired resources in source order (de-duplicated), then those requiring pruning
    /// and live hooks in live order.
    pub resources: Vec<ComparedResource>,
    /// Application health.
    pub health: HealthStatus,
    /// ComparisonError, InvalidSpecError, RepeatedResourceWarning and
    /// SharedResourceWarning conditions (no timestamps; the caller sets them).
    pub conditions: Vec<ApplicationCondition>,
    /// Images and external URLs.
    pub summary: ApplicationSummary,
}

struct Context<'a> {
    app_instance: &'a str,
    tracking: TrackingMethod,
    label_key: &'a str,
    diff: &'a DiffConfig,
    respect: bool,
}

fn condition(type_: &str, message: String) -> ApplicationCondition {
    ApplicationCondition {
        type_: type_.to_owned(),
        message,
        last_transition_time: None,
    }
}

fn api_version_of(obj: &Value) -> &str {
    obj.get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or("v1")
}

/// Compares desired with live objects. See the module docs for the rules.
pub fn compare(input: CompareInput<'_>) -> Comparison {
    let _span = tracing::debug_span!("compare", app = input.app_instance).entered();
    let prepared = prepare_targets(input.desired, input.destination_namespace, input.scope);
    let mut conditions = prepared.conditions;
    let mut unknown = prepared.failed;
    let cx = Context {
        app_instance: input.app_instance,
        tracking: input.tracking,
        label_key: input.label_key,
        diff: input.diff,
        respect: input.respect_ignore_differences && !input.diff.ignore.is_empty(),
    };
    let mut live = LiveIndex::new(input.live);
    let mut resources = Vec::with_capacity(prepared.targets.len());
    for target in prepared.targets {
        let twin = live.take(&target);
        resources.push(managed(&cx, target, twin, &mut conditions, &mut unknown));
    }
    for (key, obj) in live.into_rest() {
        if has_owner(&obj)
            || tracked_app(&obj, &key, cx.tracking, cx.label_key) != Some(cx.app_instance)
        {
            continue;
        }
        resources.push(extraneous(key, obj));
    }
    let health = health::assess(&mut resources, input.health);
    let mut summary = summary::SummaryBuilder::default();
    for r in &resources {
        if let Some(obj) = &r.live {
            summary.add(&r.key.group, &r.key.kind, obj);
        }
    }
    let sync_status = if unknown {
        SyncStatusCode::Unknown
    } else if resources.iter().any(ComparedResource::counts_out_of_sync) {
        SyncStatusCode::OutOfSync
    } else {
        SyncStatusCode::Synced
    };
    tracing::debug!(resources = resources.len(), status = %sync_status, "compared");
    Comparison {
        sync_status,
        resources,
        health,
        conditions,
        summary: summary.build(),
    }
}

/// A desired resource and its live twin, if any.
fn managed(
    cx: &Context<'_>,
    target: Target,
    live: Option<Value>,
    conditions: &mut Vec<ApplicationCondition>,
    unknown: &mut bool,
) -> ComparedResource {
    let Target { key, obj, .. } = target;
    let hook = is_hook(&obj);
    let skipped = !hook && is_skipped(&obj);
    let shared_with = live
        .as_ref()
        .and_then(|l| tracked_app(l, &key, cx.tracking, cx.label_key))
        .filter(|app| *app != cx.app_instance)
        .map(str::to_owned);
    if let Some(other) = &shared_with {
        conditions.push(condition(
            CONDITION_SHARED_RESOURCE_WARNING,
            format!(
                "{}/{} is part of applications {} and {}",
                key.kind,
                key.name,
                cx.app_instance.replace('_', "/"),
                other.replace('_', "/")
            ),
        ));
    }
    let (mut modified, mut status, mut sync_desired) = (false, None, None);
    if !hook && !skipped {
        (modified, status) = match &live {
            None => (true, Some(SyncStatusCode::OutOfSync)),
            Some(l) => match diff(Some(&obj), Some(l), cx.diff) {
                Ok(d) if d.modified => (true, Some(SyncStatusCode::OutOfSync)),
                Ok(_) => (false, Some(SyncStatusCode::Synced)),
                Err(error) => {
                    *unknown = true;
                    conditions.push(condition(
                        CONDITION_COMPARISON_ERROR,
                        format!("Failed to compare desired state to live state: {key}: {error}"),
                    ));
                    (true, Some(SyncStatusCode::Unknown))
                }
            },
        };
        if let (true, Some(l)) = (cx.respect, &live) {
            match respect_ignore_differences(&obj, l, cx.diff) {
                Ok(patched) => sync_desired = Some(patched),
                Err(error) => conditions.push(condition(
                    CONDITION_COMPARISON_ERROR,
                    format!("Failed to apply ignoreDifferences to {key}: {error}"),
                )),
            }
        }
    }
    let shown = live.as_ref().unwrap_or(&obj);
    ComparedResource {
        api_version: api_version_of(shown).to_owned(),
        ignore_extraneous: ignores_extraneous(shown),
        sync_wave: i64::from(wave_of(&key, &obj).unwrap_or(0)),
        key,
        desired: Some(obj),
        live,
        sync_desired,
        modified,
        requires_pruning: false,
        hook,
        skipped,
        status,
        health: None,
        shared_with,
    }
}

/// A live object this application tracks that is no longer desired.
fn extraneous(key: ResourceKey, live: Value) -> ComparedResource {
    let hook = is_hook(&live);
    ComparedResource {
        api_version: api_version_of(&live).to_owned(),
        ignore_extraneous: ignores_extraneous(&live),
        key,
        desired: None,
        live: Some(live),
        sync_desired: None,
        modified: !hook,
        requires_pruning: !hook,
        hook,
        skipped: false,
        status: (!hook).then_some(SyncStatusCode::OutOfSync),
        health: None,
        sync_wave: 0,
        shared_with: None,
    }
}

impl ComparedResource {
    fn status_entry(&self) -> ResourceStatus {
        let non_empty = |s: &str| (!s.is_empty()).then(|| s.to_owned());
        ResourceStatus {
            group: non_empty(&self.key.group),
            version: non_empty(version_of(&self.api_version)),
            kind: self.key.kind.clone(),
            namespace: non_empty(&self.key.namespace),
            name: self.key.name.clone(),
            status: self.status,
            health: self.health.clone(),
            hook: self.hook.then_some(true),
            requires_pruning: self.requires_pruning.then_some(true),
            sync_wave: (self.sync_wave != 0).then_some(self.sync_wave),
            ..ResourceStatus::default()
        }
    }

    fn sync_input(&self) -> ResourceInput {
        ResourceInput {
            key: self.key.clone(),
            desired: self
                .sync_desired
                .as_ref()
                .or(self.desired.as_ref())
                .cloned(),
            live: self.live.clone(),
            modified: self.modified,
            requires_pruning: self.requires_pruning,
            shared_with: self.shared_with.clone(),
        }
    }
}

impl Comparison {
    /// `status.resources`: every resource but desired hooks that are not live, sorted by
    /// `group/kind/namespace/name` as strings (Argo CD's order).
    pub fn resource_statuses(&self) -> Vec<ResourceStatus> {
        let mut statuses: Vec<ResourceStatus> = self
            .resources
            .iter()
            .filter(|r| !(r.hook && r.live.is_none()))
            .map(ComparedResource::status_entry)
            .collect();
        statuses.sort_by_cached_key(|s| {
            format!(
                "{}/{}/{}/{}",
                s.group.as_deref().unwrap_or_default(),
                s.kind,
                s.namespace.as_deref().unwrap_or_default(),
                s.name
            )
        });
        statuses
    }

    /// The resources as `keelson_sync::plan_sync` takes them (copies the objects; see
    /// [`Comparison::into_sync_inputs`] to move them).
    pub fn sync_inputs(&self) -> Vec<ResourceInput> {
        self.resources
            .iter()
            .map(ComparedResource::sync_input)
            .collect()
    }

    /// Like [`Comparison::sync_inputs`], moving the objects out.
    pub fn into_sync_inputs(self) -> Vec<ResourceInput> {
        self.resources
            .into_iter()
            .map(|r| ResourceInput {
                desired: r.sync_desired.or(r.desired),
                key: r.key,
                live: r.live,
                modified: r.modified,
                requires_pruning: r.requires_pruning,
                shared_with: r.shared_with,
            })
            .collect()
    }

    /// `(out of sync, of which only requiring pruning, desired non-hook)`: resources that
    /// make the application OutOfSync, those of them whose only difference is that they
    /// require pruning, and desired resources that are not hooks.
    pub fn out_of_sync_counts(&self) -> (usize, usize, usize) {
        let out_of_sync = self.resources.iter().filter(|r| r.counts_out_of_sync());
        let prune_only = out_of_sync.clone().filter(|r| r.requires_pruning).count();
        let desired = self
            .resources
            .iter()
            .filter(|r| r.desired.is_some() && !r.hook)
            .count();
        (out_of_sync.count(), prune_only, desired)
    }
}
