//! Ordering of tasks: sync waves from annotations, the phase → wave → kind → name sort,
//! moving Namespaces and CRDs before the tasks that need them, reversed prune waves and
//! `PruneLast`.

use std::collections::{BTreeMap, BTreeSet};

use keelson_model::ResourceKey;
use keelson_model::annotations::{HELM_HOOK_WEIGHT, SYNC_WAVE};
use keelson_model::operation::SyncPhase;
use serde_json::Value;

use crate::error::SyncPlanError;
use crate::kind_order::kind_rank;
use crate::options::annotation;
use crate::task::SyncTask;

/// The wave of an object: `argocd.argoproj.io/sync-wave`, else `helm.sh/hook-weight`,
/// else 0. A value that is not an integer is an error naming the resource.
pub fn wave_of(key: &ResourceKey, object: &Value) -> Result<i32, SyncPlanError> {
    for name in [SYNC_WAVE, HELM_HOOK_WEIGHT] {
        if let Some(text) = annotation(object, name) {
            return text
                .trim()
                .parse::<i32>()
                .map_err(|_| SyncPlanError::BadWave {
                    resource: key.to_string(),
                    annotation: name,
                    value: text.to_owned(),
                });
        }
    }
    Ok(0)
}

/// Sorts by phase, wave, kind order, then name (then the rest of the key, for a total
/// order).
pub fn sort_tasks(tasks: &mut [SyncTask]) {
    tasks.sort_by(|a, b| {
        (a.phase, a.wave, kind_rank(&a.key.kind), &a.key.name, &a.key).cmp(&(
            b.phase,
            b.wave,
            kind_rank(&b.key.kind),
            &b.key.name,
            &b.key,
        ))
    });
}

/// Reverses the waves of prune tasks: the set of distinct prune waves is mirrored
/// (lowest ↔ highest), so resources created last are deleted first.
pub fn reverse_prune_waves(tasks: &mut [SyncTask]) {
    let waves: Vec<i32> = tasks
        .iter()
        .filter(|t| t.is_prune() || t.is_noop())
        .map(|t| t.wave)
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let mirror: BTreeMap<i32, i32> = waves
        .iter()
        .zip(waves.iter().rev())
        .map(|(from, to)| (*from, *to))
        .collect();
    for task in tasks.iter_mut().filter(|t| t.is_prune() || t.is_noop()) {
        if let Some(wave) = mirror.get(&task.wave) {
            task.wave = *wave;
        }
    }
}

/// Moves the prune tasks selected by `is_last` to one wave after the last Sync-phase
/// wave (counting prune tasks, and never below wave 1, like Argo CD).
pub fn apply_prune_last(tasks: &mut [SyncTask], is_last: impl Fn(&SyncTask) -> bool) {
    let last_wave = tasks
        .iter()
        .filter(|t| t.phase == SyncPhase::Sync)
        .map(|t| t.wave)
        .fold(0, i32::max);
    for task in tasks.iter_mut() {
        if (task.is_prune() || task.is_noop()) && is_last(task) {
            task.wave = last_wave + 1;
        }
    }
}

/// What a task's desired object provides to others (a namespace, a custom kind) or
/// needs from them.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Dependency {
    Namespace(String),
    GroupKind(String, String),
}

fn provides(task: &SyncTask) -> Option<Dependency> {
    let desired = task.desired.as_ref()?;
    if task.key.group.is_empty() && task.key.kind == "Namespace" {
        return Some(Dependency::Namespace(task.key.name.clone()));
    }
    if task.key.kind == "CustomResourceDefinition" && task.key.group == "apiextensions.k8s.io" {
        let spec = desired.get("spec")?;
        let group = spec.get("group")?.as_str()?;
        let kind = spec.get("names")?.get("kind")?.as_str()?;
        return Some(Dependency::GroupKind(group.to_owned(), kind.to_owned()));
    }
    None
}

fn needs(task: &SyncTask) -> Vec<Dependency> {
    if task.desired.is_none() {
        return Vec::new();
    }
    let mut deps = vec![Dependency::GroupKind(
        task.key.group.clone(),
        task.key.kind.clone(),
    )];
    if !task.key.namespace.is_empty() {
        deps.push(Dependency::Namespace(task.key.namespace.clone()));
    }
    deps
}

/// Moves every Namespace and CRD task that sorts after a task needing it to just before
/// the first such task, taking that task's phase and wave. `tasks` must be sorted.
/// Namespaces are handled before CRDs (a CRD instance's namespace comes first).
pub fn move_dependencies_first(tasks: &mut Vec<SyncTask>) {
    for namespaces in [true, false] {
        let mut first_user: BTreeMap<Dependency, usize> = BTreeMap::new();
        let mut index = 0;
        while index < tasks.len() {
            let provided = provides(&tasks[index])
                .filter(|d| matches!(d, Dependency::Namespace(_)) == namespaces);
            if let Some(dep) = provided {
                if let Some(&target) = first_user.get(&dep) {
                    let mut task = tasks.remove(index);
                    task.phase = tasks[target].phase;
                    task.wave = tasks[target].wave;
                    tasks.insert(target, task);
                    for position in first_user.values_mut() {
                        if *position >= target {
                            *position += 1;
                        }
                    }
                }
            } else {
                for dep in needs(&tasks[index]) {
                    first_user.entry(dep).or_insert(index);
                }
            }
            index += 1;
        }
    }
}
