//! Property test: for random plans where every action succeeds and every object becomes
//! healthy, the step function reaches `Succeeded` within a bounded number of steps,
//! never writes a task twice, and runs phases/waves in non-decreasing order.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::BTreeSet;

use keelson_sync::{
    ActionKind, PlanInput, ResourceInput, StepOutcome, SyncState, next_actions, plan_sync,
};
use proptest::prelude::*;
use serde_json::{Value, json};
use support::{all_healthy, desired, obj, orphan, perform_ok};

const KINDS: &[(&str, &str)] = &[
    ("v1", "ConfigMap"),
    ("v1", "Service"),
    ("apps/v1", "Deployment"),
    ("batch/v1", "Job"),
    ("example.com/v1", "Widget"),
];
const HOOKS: &[&str] = &[
    "",
    "",
    "PreSync",
    "Sync",
    "PostSync",
    "SyncFail",
    "Skip",
    "PreSync,PostSync",
];

fn resource(i: usize, kind: usize, wave: i32, hook: usize, prune: bool) -> ResourceInput {
    let (api, kind) = KINDS[kind];
    let mut annotations = json!({"argocd.argoproj.io/sync-wave": wave.to_string()});
    if !HOOKS[hook].is_empty() {
        annotations["argocd.argoproj.io/hook"] = Value::from(HOOKS[hook]);
    }
    let object = obj(api, kind, "ns", &format!("r{i}"), annotations);
    if prune && HOOKS[hook].is_empty() {
        orphan(object)
    } else {
        desired(object)
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]
    #[test]
    fn every_plan_terminates_without_repeating_work(
        specs in prop::collection::vec((0..KINDS.len(), -3i32..4, 0..HOOKS.len(), any::<bool>()), 0..25),
        prune in any::<bool>(),
        prune_last in any::<bool>(),
    ) {
        let resources = specs.iter().enumerate()
            .map(|(i, (k, w, h, p))| resource(i, *k, *w, *h, *p))
            .collect();
        let mut input = PlanInput::new("prop", resources);
        input.request.prune = prune;
        input.options.prune_last = prune_last;
        let plan = plan_sync(&input).unwrap();
        let mut state = SyncState::default();
        let mut written = BTreeSet::new();
        let mut last_position = None;
        let bound = 4 * plan.tasks.len() + 8;
        let mut finished = None;
        for _ in 0..bound {
            match next_actions(&plan, &state) {
                StepOutcome::Run(actions) => {
                    prop_assert!(!actions.is_empty());
                    for action in actions.iter().filter(|a| matches!(a.kind, ActionKind::Apply | ActionKind::Prune)) {
                        prop_assert!(written.insert(action.task.clone()), "task written twice: {}", action.task);
                        let task = plan.task(&action.task).unwrap();
                        let position = (task.phase, task.wave);
                        prop_assert!(last_position.is_none_or(|p| p <= position), "waves went backwards");
                        last_position = Some(position);
                    }
                    perform_ok(&plan, &mut state, &actions);
                }
                StepOutcome::Wait(_) => all_healthy(&mut state),
                end => { finished = Some(end); break; }
            }
        }
        let end = finished.expect("no end within bound");
        prop_assert!(matches!(end, StepOutcome::Succeeded(_)), "{end:?}");
        let expected: BTreeSet<_> = plan.tasks.iter()
            .filter(|t| !t.is_noop() && t.phase != keelson_model::operation::SyncPhase::SyncFail)
            .map(|t| t.id.clone())
            .collect();
        prop_assert_eq!(written, expected);
    }
}
