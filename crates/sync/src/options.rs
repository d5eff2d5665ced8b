//! Sync options: the application-level `syncOptions` strings and the per-resource
//! `argocd.argoproj.io/sync-options` annotation, parsed into typed values.
//!
//! Unknown keys are ignored (Argo CD adds options over time and ignores the ones it does
//! not know); a known key with a value that is not understood is an error.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::SyncPlanError;

/// Field manager Argo CD uses for server-side apply.
pub const DEFAULT_FIELD_MANAGER: &str = "argocd-controller";

/// Deletion propagation used when pruning (`PrunePropagationPolicy=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum PropagationPolicy {
    /// Delete dependents first (Argo CD's default).
    #[default]
    Foreground,
    /// Delete the owner now, dependents in the background.
    Background,
    /// Leave dependents behind.
    Orphan,
}

/// A per-resource `Prune=` or `Delete=` value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum Permission {
    /// Allowed (the default, or `=true`).
    #[default]
    Allowed,
    /// Never (`=false`).
    Disabled,
    /// Only after an explicit confirmation (`=confirm`).
    Confirm,
}

/// Application-level sync options (`spec.syncPolicy.syncOptions`, overridden by
/// `operation.sync.syncOptions`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncOptions {
    /// `CreateNamespace=true`: create the destination namespace first.
    pub create_namespace: bool,
    /// `ServerSideApply=true|false`; `None` when not given (the planner's default applies).
    pub server_side_apply: Option<bool>,
    /// `Replace=true`: replace/create instead of apply.
    pub replace: bool,
    /// `ApplyOutOfSyncOnly=true`: skip resources that are not modified.
    pub apply_out_of_sync_only: bool,
    /// `PrunePropagationPolicy=foreground|background|orphan`.
    pub prune_propagation_policy: PropagationPolicy,
    /// `PruneLast=true`: prune after every other Sync-phase wave.
    pub prune_last: bool,
    /// `Validate=false` turns schema validation off.
    pub validate: bool,
    /// `RespectIgnoreDifferences=true`: apply desired objects with ignored fields taken
    /// from live (done by the caller before planning; recorded here).
    pub respect_ignore_differences: bool,
    /// `FailOnSharedResource=true`: refuse to sync resources tracked by another app.
    pub fail_on_shared_resource: bool,
    /// `SkipDryRunOnMissingResource=true` for every resource.
    pub skip_dry_run_on_missing_resource: bool,
}

impl Default for SyncOptions {
    fn default() -> Self {
        SyncOptions {
            create_namespace: false,
            server_side_apply: None,
            replace: false,
            apply_out_of_sync_only: false,
            prune_propagation_policy: PropagationPolicy::Foreground,
            prune_last: false,
            validate: true,
            respect_ignore_differences: false,
            fail_on_shared_resource: false,
            skip_dry_run_on_missing_resource: false,
        }
    }
}

/// Per-resource options from the `argocd.argoproj.io/sync-options` annotation.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ResourceSyncOptions {
    /// `Prune=false|confirm`.
    pub prune: Permission,
    /// `Delete=false|confirm` (application deletion, see [`crate::deletion_permission`]).
    pub delete: Permission,
    /// `Replace=true|false`.
    pub replace: Option<bool>,
    /// `ServerSideApply=true|false`.
    pub server_side_apply: Option<bool>,
    /// `Validate=false|true`.
    pub validate: Option<bool>,
    /// `PruneLast=true`.
    pub prune_last: bool,
    /// `SkipDryRunOnMissingResource=true`.
    pub skip_dry_run_on_missing_resource: bool,
    /// `Force=true`.
    pub force: bool,
}

fn bool_value(option: &str, value: &str) -> Result<bool, SyncPlanError> {
    match value {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(SyncPlanError::BadSyncOption {
            option: option.to_owned(),
            reason: "expected true or false",
        }),
    }
}

fn permission_value(option: &str, value: &str) -> Result<Permission, SyncPlanError> {
    match value {
        "true" => Ok(Permission::Allowed),
        "false" => Ok(Permission::Disabled),
        "confirm" => Ok(Permission::Confirm),
        _ => Err(SyncPlanError::BadSyncOption {
            option: option.to_owned(),
            reason: "expected true, false or confirm",
        }),
    }
}

fn propagation_value(option: &str, value: &str) -> Result<PropagationPolicy, SyncPlanError> {
    match value {
        "foreground" => Ok(PropagationPolicy::Foreground),
        "background" => Ok(PropagationPolicy::Background),
        "orphan" => Ok(PropagationPolicy::Orphan),
        _ => Err(SyncPlanError::BadSyncOption {
            option: option.to_owned(),
            reason: "expected foreground, background or orphan",
        }),
    }
}

/// Splits `Key=Value`; an entry without `=` is an error.
fn split_option(option: &str) -> Result<(&str, &str), SyncPlanError> {
    option
        .split_once('=')
        .map(|(k, v)| (k.trim(), v.trim()))
        .ok_or_else(|| SyncPlanError::BadSyncOption {
            option: option.to_owned(),
            reason: "expected Key=Value",
        })
}

impl SyncOptions {
    /// Parses application-level options; later entries override earlier ones.
    pub fn parse<S: AsRef<str>>(options: &[S]) -> Result<Self, SyncPlanError> {
        let mut parsed = SyncOptions::default();
        for option in options.iter().map(AsRef::as_ref) {
            let option = option.trim();
            if option.is_empty() {
                continue;
            }
            parsed.apply_one(option)?;
        }
        Ok(parsed)
    }

    fn apply_one(&mut self, option: &str) -> Result<(), SyncPlanError> {
        let (key, value) = split_option(option)?;
        match key {
            "CreateNamespace" => self.create_namespace = bool_value(option, value)?,
            "ServerSideApply" => self.server_side_apply = Some(bool_value(option, value)?),
            "Replace" => self.replace = bool_value(option, value)?,
            "ApplyOutOfSyncOnly" => self.apply_out_of_sync_only = bool_value(option, value)?,
            "PrunePropagationPolicy" => {
                self.prune_propagation_policy = propagation_value(option, value)?;
            }
            "PruneLast" => self.prune_last = bool_value(option, value)?,
            "Validate" => self.validate = bool_value(option, value)?,
            "RespectIgnoreDifferences" => {
                self.respect_ignore_differences = bool_value(option, value)?;
            }
            "FailOnSharedResource" => self.fail_on_shared_resource = bool_value(option, value)?,
            "SkipDryRunOnMissingResource" => {
                self.skip_dry_run_on_missing_resource = bool_value(option, value)?;
            }
            other => tracing::debug!(option = other, "ignoring unknown sync option"),
        }
        Ok(())
    }
}

impl ResourceSyncOptions {
    /// Parses a comma-separated annotation value (`Prune=false,Replace=true`).
    pub fn parse(annotation: &str) -> Result<Self, SyncPlanError> {
        let mut parsed = ResourceSyncOptions::default();
        for option in annotation.split(',').map(str::trim) {
            if option.is_empty() {
                continue;
            }
            parsed.apply_one(option)?;
        }
        Ok(parsed)
    }

    /// Reads the annotation from an object (`metadata.annotations`); absent → defaults.
    pub fn of_object(object: &Value) -> Result<Self, SyncPlanError> {
        match annotation(object, keelson_model::annotations::SYNC_OPTIONS) {
            Some(text) => ResourceSyncOptions::parse(text),
            None => Ok(ResourceSyncOptions::default()),
        }
    }

    fn apply_one(&mut self, option: &str) -> Result<(), SyncPlanError> {
        let (key, value) = split_option(option)?;
        match key {
            "Prune" => self.prune = permission_value(option, value)?,
            "Delete" => self.delete = permission_value(option, value)?,
            "Replace" => self.replace = Some(bool_value(option, value)?),
            "ServerSideApply" => self.server_side_apply = Some(bool_value(option, value)?),
            "Validate" => self.validate = Some(bool_value(option, value)?),
            "PruneLast" => self.prune_last = bool_value(option, value)?,
            "SkipDryRunOnMissingResource" => {
                self.skip_dry_run_on_missing_resource = bool_value(option, value)?;
            }
            "Force" => self.force = bool_value(option, value)?,
            other => tracing::debug!(option = other, "ignoring unknown resource sync option"),
        }
        Ok(())
    }
}

/// A string annotation of an object, if present.
pub(crate) fn annotation<'a>(object: &'a Value, name: &str) -> Option<&'a str> {
    object
        .get("metadata")?
        .get("annotations")?
        .get(name)?
        .as_str()
}

/// Whether deleting the application may delete this live object (`Delete=` annotation):
/// [`Permission::Disabled`] means leave it in the cluster, [`Permission::Confirm`] means
/// wait for the user's confirmation first.
pub fn deletion_permission(live: &Value) -> Result<Permission, SyncPlanError> {
    Ok(ResourceSyncOptions::of_object(live)?.delete)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn app_options_parse_every_known_key() {
        let opts = SyncOptions::parse(&[
            "CreateNamespace=true",
            "ServerSideApply=true",
            "Replace=true",
            "ApplyOutOfSyncOnly=true",
            "PrunePropagationPolicy=orphan",
            "PruneLast=true",
            "Validate=false",
            "RespectIgnoreDifferences=true",
            "FailOnSharedResource=true",
            "SkipDryRunOnMissingResource=true",
            "SomeFutureOption=whatever",
        ])
        .unwrap();
        assert!(opts.create_namespace && opts.replace && opts.apply_out_of_sync_only);
        assert_eq!(opts.server_side_apply, Some(true));
        assert_eq!(opts.prune_propagation_policy, PropagationPolicy::Orphan);
        assert!(opts.prune_last && !opts.validate && opts.respect_ignore_differences);
        assert!(opts.fail_on_shared_resource && opts.skip_dry_run_on_missing_resource);
    }

    #[test]
    fn later_app_options_override_earlier_ones() {
        let opts = SyncOptions::parse(&["PruneLast=true", "PruneLast=false"]).unwrap();
        assert!(!opts.prune_last);
        assert_eq!(
            SyncOptions::parse::<&str>(&[]).unwrap(),
            SyncOptions::default()
        );
    }

    #[test]
    fn bad_values_are_errors_naming_the_option() {
        let err = SyncOptions::parse(&["PrunePropagationPolicy=sideways"]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid sync option \"PrunePropagationPolicy=sideways\": expected foreground, background or orphan"
        );
        assert!(SyncOptions::parse(&["CreateNamespace=yes"]).is_err());
        assert!(SyncOptions::parse(&["CreateNamespace"]).is_err());
        assert!(ResourceSyncOptions::parse("Prune=never").is_err());
    }

    #[test]
    fn resource_annotation_parses_comma_list() {
        let opts = ResourceSyncOptions::parse(
            "Prune=false, Delete=confirm,Replace=true,ServerSideApply=false,Validate=false,PruneLast=true,SkipDryRunOnMissingResource=true,Force=true",
        )
        .unwrap();
        assert_eq!(opts.prune, Permission::Disabled);
        assert_eq!(opts.delete, Permission::Confirm);
        assert_eq!(opts.replace, Some(true));
        assert_eq!(opts.server_side_apply, Some(false));
        assert_eq!(opts.validate, Some(false));
        assert!(opts.prune_last && opts.skip_dry_run_on_missing_resource && opts.force);
    }

    #[test]
    fn deletion_permission_reads_delete_option() {
        let live = json!({"metadata": {"annotations": {"argocd.argoproj.io/sync-options": "Delete=false"}}});
        assert_eq!(deletion_permission(&live).unwrap(), Permission::Disabled);
        assert_eq!(
            deletion_permission(&json!({"metadata": {}})).unwrap(),
            Permission::Allowed
        );
    }
}
