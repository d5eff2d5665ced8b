//! Hook recognition: Argo CD's `argocd.argoproj.io/hook` annotation, Helm's
//! `helm.sh/hook` mapped onto Argo CD hook types, delete policies and the deterministic
//! names given to hooks that only have `metadata.generateName`.

use keelson_model::annotations::{HELM_HOOK, HELM_HOOK_DELETE_POLICY, HOOK, HOOK_DELETE_POLICY};
use keelson_model::operation::SyncPhase;
use keelson_model::{HookDeletePolicy, HookType, ResourceKey};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::SyncPlanError;
use crate::options::annotation;

/// How an object takes part in a sync, judged from its annotations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HookRole {
    /// Not a hook: applied (or pruned) in the Sync phase.
    Resource,
    /// `argocd.argoproj.io/hook: Skip` alone: never applied nor pruned.
    Skipped,
    /// A hook; `types` may contain types that run in no sync phase (PreDelete, Helm
    /// `test`...), in which case the hook takes no part in a sync.
    Hook(HookSpec),
}

/// A hook's types and delete policies.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HookSpec {
    /// Hook types, de-duplicated, in annotation order.
    pub types: Vec<HookType>,
    /// Delete policies; `[BeforeHookCreation]` when none is given.
    pub delete_policies: Vec<HookDeletePolicy>,
}

impl HookSpec {
    /// The sync phases the hook runs in (PreSync, Sync, PostSync, SyncFail), in phase
    /// order; PreDelete/PostDelete/Skip run in none.
    pub fn sync_phases(&self) -> Vec<SyncPhase> {
        let mut phases: Vec<SyncPhase> = self.types.iter().filter_map(|t| phase_of(*t)).collect();
        phases.sort();
        phases.dedup();
        phases
    }
}

/// The sync phase a hook type runs in, if any.
pub fn phase_of(hook_type: HookType) -> Option<SyncPhase> {
    match hook_type {
        HookType::PreSync => Some(SyncPhase::PreSync),
        HookType::Sync => Some(SyncPhase::Sync),
        HookType::PostSync => Some(SyncPhase::PostSync),
        HookType::SyncFail => Some(SyncPhase::SyncFail),
        HookType::Skip | HookType::PreDelete | HookType::PostDelete => None,
    }
}

/// The hook type of a phase (each sync phase has a same-named hook type).
pub fn hook_type_of(phase: SyncPhase) -> HookType {
    match phase {
        SyncPhase::PreSync => HookType::PreSync,
        SyncPhase::Sync => HookType::Sync,
        SyncPhase::PostSync => HookType::PostSync,
        SyncPhase::SyncFail => HookType::SyncFail,
    }
}

/// Maps one Helm hook value onto an Argo CD hook type the way Argo CD does; Helm hooks
/// with no Argo CD equivalent (`test`, `pre-delete`, `pre-rollback`...) map to none.
pub fn helm_hook_type(value: &str) -> Option<HookType> {
    match value {
        "crd-install" | "pre-install" | "pre-upgrade" => Some(HookType::PreSync),
        "post-install" | "post-upgrade" => Some(HookType::PostSync),
        _ => None,
    }
}

fn helm_delete_policy(value: &str) -> Option<HookDeletePolicy> {
    match value {
        "before-hook-creation" => Some(HookDeletePolicy::BeforeHookCreation),
        "hook-succeeded" => Some(HookDeletePolicy::HookSucceeded),
        "hook-failed" => Some(HookDeletePolicy::HookFailed),
        _ => None,
    }
}

fn comma_list(text: &str) -> impl Iterator<Item = &str> {
    text.split(',').map(str::trim).filter(|s| !s.is_empty())
}

/// Classifies an object. An Argo CD hook annotation wins over Helm's; Helm's
/// `crd-install` alone is not a hook (Helm uses it for CRDs, which are ordinary resources).
pub fn hook_role(key: &ResourceKey, object: &Value) -> Result<HookRole, SyncPlanError> {
    if let Some(text) = annotation(object, HOOK) {
        let mut types = Vec::new();
        for value in comma_list(text) {
            let hook_type =
                value
                    .parse::<HookType>()
                    .map_err(|source| SyncPlanError::UnknownHookType {
                        resource: key.to_string(),
                        source,
                    })?;
            if !types.contains(&hook_type) {
                types.push(hook_type);
            }
        }
        if types == [HookType::Skip] {
            return Ok(HookRole::Skipped);
        }
        if !types.is_empty() {
            let delete_policies = delete_policies(key, object)?;
            return Ok(HookRole::Hook(HookSpec {
                types,
                delete_policies,
            }));
        }
    }
    match annotation(object, HELM_HOOK) {
        Some(text) if text.trim() != "crd-install" => {
            let mut types = Vec::new();
            for hook_type in comma_list(text).filter_map(helm_hook_type) {
                if !types.contains(&hook_type) {
                    types.push(hook_type);
                }
            }
            let delete_policies = delete_policies(key, object)?;
            Ok(HookRole::Hook(HookSpec {
                types,
                delete_policies,
            }))
        }
        _ => Ok(HookRole::Resource),
    }
}

/// Delete policies from the Argo CD annotation, else from Helm's, else the default.
fn delete_policies(
    key: &ResourceKey,
    object: &Value,
) -> Result<Vec<HookDeletePolicy>, SyncPlanError> {
    let mut policies = Vec::new();
    if let Some(text) = annotation(object, HOOK_DELETE_POLICY) {
        for value in comma_list(text) {
            let policy = value.parse::<HookDeletePolicy>().map_err(|source| {
                SyncPlanError::UnknownHookDeletePolicy {
                    resource: key.to_string(),
                    source,
                }
            })?;
            policies.push(policy);
        }
    } else if let Some(text) = annotation(object, HELM_HOOK_DELETE_POLICY) {
        policies.extend(comma_list(text).filter_map(helm_delete_policy));
    }
    if policies.is_empty() {
        policies.push(HookDeletePolicy::BeforeHookCreation);
    }
    policies.sort();
    policies.dedup();
    Ok(policies)
}

/// Maximum length of a Kubernetes object name.
const MAX_NAME_LEN: usize = 253;

/// The name a hook gets in one sync: its `metadata.name` when set, otherwise
/// `generateName` followed by `<sync_id>-<phase>` in lower case (Argo CD builds the
/// suffix from the revision, phase and start time; Keelson takes a caller-chosen
/// `sync_id` so that a restarted controller computes the same names), cut to 253 bytes.
pub fn hook_name(object: &Value, sync_id: &str, phase: SyncPhase) -> Option<String> {
    let metadata = object.get("metadata")?;
    if let Some(name) = metadata.get("name").and_then(Value::as_str)
        && !name.is_empty()
    {
        return Some(name.to_owned());
    }
    let prefix = metadata.get("generateName").and_then(Value::as_str)?;
    let mut name = format!("{prefix}{sync_id}-{phase}").to_lowercase();
    while name.len() > MAX_NAME_LEN {
        name.pop();
    }
    Some(name)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn with_annotations(annotations: Value) -> Value {
        json!({"apiVersion": "batch/v1", "kind": "Job",
               "metadata": {"name": "j", "annotations": annotations}})
    }

    fn key() -> ResourceKey {
        ResourceKey::new("batch", "Job", "ns", "j")
    }

    #[test]
    fn argo_hook_types_and_default_policy() {
        let obj = with_annotations(json!({"argocd.argoproj.io/hook": "PreSync, PostSync"}));
        let HookRole::Hook(spec) = hook_role(&key(), &obj).unwrap() else {
            panic!("not a hook")
        };
        assert_eq!(spec.types, [HookType::PreSync, HookType::PostSync]);
        assert_eq!(
            spec.sync_phases(),
            [SyncPhase::PreSync, SyncPhase::PostSync]
        );
        assert_eq!(spec.delete_policies, [HookDeletePolicy::BeforeHookCreation]);
    }

    #[test]
    fn skip_alone_skips_but_skip_with_other_types_is_a_hook() {
        let skip = with_annotations(json!({"argocd.argoproj.io/hook": "Skip"}));
        assert_eq!(hook_role(&key(), &skip).unwrap(), HookRole::Skipped);
        let both = with_annotations(json!({"argocd.argoproj.io/hook": "Skip,Sync"}));
        let HookRole::Hook(spec) = hook_role(&key(), &both).unwrap() else {
            panic!("not a hook")
        };
        assert_eq!(spec.sync_phases(), [SyncPhase::Sync]);
    }

    #[test]
    fn unknown_hook_type_is_an_error_naming_the_resource() {
        let obj = with_annotations(json!({"argocd.argoproj.io/hook": "PreSink"}));
        let err = hook_role(&key(), &obj).unwrap_err();
        assert_eq!(
            err.to_string(),
            "resource batch/Job/ns/j: unknown hook type"
        );
        let bad_policy = with_annotations(json!({
            "argocd.argoproj.io/hook": "Sync",
            "argocd.argoproj.io/hook-delete-policy": "Never"}));
        assert!(hook_role(&key(), &bad_policy).is_err());
    }

    #[test]
    fn helm_hooks_map_onto_argo_phases_and_policies() {
        let obj = with_annotations(json!({
            "helm.sh/hook": "pre-install,pre-upgrade,post-upgrade",
            "helm.sh/hook-delete-policy": "hook-succeeded,hook-failed"}));
        let HookRole::Hook(spec) = hook_role(&key(), &obj).unwrap() else {
            panic!("not a hook")
        };
        assert_eq!(spec.types, [HookType::PreSync, HookType::PostSync]);
        assert_eq!(
            spec.delete_policies,
            [
                HookDeletePolicy::HookSucceeded,
                HookDeletePolicy::HookFailed
            ]
        );
        let test = with_annotations(json!({"helm.sh/hook": "test"}));
        let HookRole::Hook(spec) = hook_role(&key(), &test).unwrap() else {
            panic!("not a hook")
        };
        assert!(spec.sync_phases().is_empty());
        let crd = with_annotations(json!({"helm.sh/hook": "crd-install"}));
        assert_eq!(hook_role(&key(), &crd).unwrap(), HookRole::Resource);
    }

    #[test]
    fn argo_annotation_wins_over_helm() {
        let obj = with_annotations(json!({
            "argocd.argoproj.io/hook": "SyncFail", "helm.sh/hook": "pre-install"}));
        let HookRole::Hook(spec) = hook_role(&key(), &obj).unwrap() else {
            panic!("not a hook")
        };
        assert_eq!(spec.types, [HookType::SyncFail]);
    }

    #[test]
    fn generated_hook_names_are_deterministic() {
        let obj = json!({"metadata": {"generateName": "migrate-"}});
        assert_eq!(
            hook_name(&obj, "AbC123", SyncPhase::PreSync).unwrap(),
            "migrate-abc123-presync"
        );
        let named = json!({"metadata": {"name": "fixed"}});
        assert_eq!(hook_name(&named, "x", SyncPhase::Sync).unwrap(), "fixed");
        assert_eq!(
            hook_name(&json!({"metadata": {}}), "x", SyncPhase::Sync),
            None
        );
    }
}
