//! Unified diff of a [`ResourceDiff`]'s normalised YAML (live → predicted). Secret values
//! are already masked in the diff, so nothing secret is printed.

use similar::TextDiff;

use crate::compare::ResourceDiff;

/// A unified diff from the live to the predicted object, labelled with `key_label`
/// (e.g. `apps/Deployment/ns/name`). Empty when unchanged.
pub fn unified_diff(diff: &ResourceDiff, key_label: &str) -> String {
    let live = yaml(diff.normalized_live.as_ref());
    let desired = yaml(diff.normalized_desired.as_ref());
    TextDiff::from_lines(&live, &desired)
        .unified_diff()
        .context_radius(3)
        .header(
            &format!("{key_label} (live)"),
            &format!("{key_label} (desired)"),
        )
        .to_string()
}

fn yaml(value: Option<&serde_json::Value>) -> String {
    value.map_or_else(String::new, |v| {
        serde_yaml_ng::to_string(v).unwrap_or_else(|e| format!("# unrenderable: {e}\n"))
    })
}
