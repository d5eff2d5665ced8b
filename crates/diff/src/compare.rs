//! The diff entry point. The mode is chosen from the live object:
//!
//! * **server-side** — live `managedFields` has an `Apply` entry for `config.manager`:
//!   predicted = desired merged into live, minus fields that manager owns and desired
//!   no longer sets.
//! * **three-way** — no such entry but a last-applied-configuration annotation:
//!   predicted = desired merged into live, minus fields last-applied set and desired
//!   dropped (kubectl's three-way merge).
//! * **two-way** — neither: predicted = desired merged into live (subset semantics; no
//!   removal detection).
//!
//! Both sides are normalised, ignore rules are applied to both, and the object is
//! modified when predicted and live differ. Secret values are masked in the result.

use serde_json::Value;

use crate::config::DiffConfig;
use crate::error::DiffError;
use crate::field_set::{managed_sets, remove_owned};
use crate::merge::{merge_into, remove_dropped};
use crate::normalize::{LAST_APPLIED_ANNOTATION, normalize, prune};
use crate::secret::hide_secret_data;

/// How the comparison was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DiffMode {
    /// Removal detection from the manager's server-side apply field set.
    ServerSide,
    /// Removal detection from the last-applied-configuration annotation.
    ThreeWay,
    /// Subset comparison only.
    TwoWay,
    /// Desired but not live.
    Missing,
    /// Live but not desired (a prune candidate).
    Extra,
}

/// The result of comparing one object.
#[derive(Debug, Clone, PartialEq)]
pub struct ResourceDiff {
    /// Whether a sync would change the live object.
    pub modified: bool,
    /// The predicted live object after a sync (normalised, ignore rules applied, Secret
    /// values masked); `None` for an extra object.
    pub normalized_desired: Option<Value>,
    /// The live object (same treatment); `None` for a missing object.
    pub normalized_live: Option<Value>,
    /// How the comparison was made.
    pub mode: DiffMode,
}

/// Compares `desired` with `live`.
pub fn diff(
    desired: Option<&Value>,
    live: Option<&Value>,
    config: &DiffConfig,
) -> Result<ResourceDiff, DiffError> {
    let _span = tracing::debug_span!("diff").entered();
    let (predicted, actual, mode) = match (desired, live) {
        (None, None) => (None, None, DiffMode::TwoWay),
        (Some(d), None) => (
            Some(ignored(normalize(d), None, config)?),
            None,
            DiffMode::Missing,
        ),
        (None, Some(l)) => (
            None,
            Some(ignored(normalize(l), Some(l), config)?),
            DiffMode::Extra,
        ),
        (Some(d), Some(l)) => {
            let (predicted, mode) = predict(d, l, config)?;
            let predicted = ignored(predicted, Some(l), config)?;
            let actual = ignored(normalize(l), Some(l), config)?;
            (Some(predicted), Some(actual), mode)
        }
    };
    let modified = predicted != actual;
    let (mut predicted, mut actual) = (predicted, actual);
    hide_secret_data(predicted.as_mut(), actual.as_mut());
    tracing::debug!(?mode, modified, "compared");
    Ok(ResourceDiff {
        modified,
        normalized_desired: predicted,
        normalized_live: actual,
        mode,
    })
}

fn ignored(mut obj: Value, live: Option<&Value>, config: &DiffConfig) -> Result<Value, DiffError> {
    config.ignore.apply(&mut obj, live, config.jq_timeout)?;
    Ok(obj)
}

fn predict(
    desired: &Value,
    live: &Value,
    config: &DiffConfig,
) -> Result<(Value, DiffMode), DiffError> {
    let kind = live.get("kind").and_then(Value::as_str).unwrap_or_default();
    let mut predicted = normalize(live);
    merge_into(kind, &mut Vec::new(), &mut predicted, &normalize(desired));
    let owned = managed_sets(live, |m, op| m == config.manager && op == "Apply")?;
    let mode = if !owned.is_empty() {
        let desired_view = secret_view(desired, kind);
        for set in &owned {
            remove_owned(set, Some(&desired_view), &mut predicted, true);
        }
        DiffMode::ServerSide
    } else if let Some(text) = live
        .pointer("/metadata/annotations")
        .and_then(|a| a.get(LAST_APPLIED_ANNOTATION))
        .and_then(Value::as_str)
    {
        let last: Value = serde_json::from_str(text).map_err(DiffError::LastApplied)?;
        let last = normalize(&last);
        remove_dropped(
            kind,
            &mut Vec::new(),
            &last,
            Some(&normalize(desired)),
            &mut predicted,
        );
        DiffMode::ThreeWay
    } else {
        DiffMode::TwoWay
    };
    prune(&mut predicted);
    Ok((normalize(&predicted), mode))
}

/// Desired as seen by removal detection: for a Secret, `stringData` keys also count as
/// `data` keys (the API server stores them there).
fn secret_view(desired: &Value, kind: &str) -> Value {
    let mut view = desired.clone();
    if kind == "Secret"
        && let (Some(Value::Object(sd)), Value::Object(map)) =
            (desired.get("stringData").cloned(), &mut view)
        && let Value::Object(data) = map
            .entry("data")
            .or_insert_with(|| Value::Object(Default::default()))
    {
        for (k, v) in sd {
            data.entry(k).or_insert(v);
        }
    }
    view
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::render::unified_diff;
    use serde_json::json;

    fn desired() -> Value {
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d", "labels": {"a": "1"}},
            "spec": {"replicas": 2, "template": {"spec": {"containers": [
                {"name": "c", "image": "i:1", "resources": {"requests": {"cpu": "0.5"}}}]}}}})
    }

    fn live_with(managed: Value) -> Value {
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d", "namespace": "default",
            "uid": "x", "labels": {"a": "1", "b": "2"}, "managedFields": managed},
            "spec": {"replicas": 2, "progressDeadlineSeconds": 600, "template": {"spec": {"containers": [
                {"name": "c", "image": "i:1", "imagePullPolicy": "IfNotPresent", "resources": {"requests": {"cpu": "500m"}}}]}}},
            "status": {"replicas": 2}})
    }

    #[test]
    fn defaults_and_other_fields_are_not_differences() {
        let r = diff(
            Some(&desired()),
            Some(&live_with(json!([]))),
            &DiffConfig::default(),
        )
        .unwrap();
        assert_eq!(r.mode, DiffMode::TwoWay);
        assert!(!r.modified, "{}", unified_diff(&r, "d"));
    }

    #[test]
    fn server_side_removal_of_owned_label() {
        let managed = json!([{"manager": "argocd-controller", "operation": "Apply",
            "fieldsV1": {"f:metadata": {"f:labels": {"f:a": {}, "f:b": {}}}}}]);
        let r = diff(
            Some(&desired()),
            Some(&live_with(managed)),
            &DiffConfig::default(),
        )
        .unwrap();
        assert_eq!(r.mode, DiffMode::ServerSide);
        assert!(r.modified);
        assert!(unified_diff(&r, "apps/Deployment/default/d").contains("-    b: '2'"));
    }

    #[test]
    fn three_way_removal_and_missing_extra() {
        let last = json!({"metadata": {"name": "d", "labels": {"a": "1", "b": "2"}}}).to_string();
        let mut live = live_with(json!([]));
        live["metadata"]["annotations"] = json!({LAST_APPLIED_ANNOTATION: last});
        let r = diff(Some(&desired()), Some(&live), &DiffConfig::default()).unwrap();
        assert_eq!((r.mode, r.modified), (DiffMode::ThreeWay, true));
        let r = diff(Some(&desired()), None, &DiffConfig::default()).unwrap();
        assert_eq!((r.mode, r.modified), (DiffMode::Missing, true));
        let r = diff(None, Some(&live), &DiffConfig::default()).unwrap();
        assert_eq!((r.mode, r.modified), (DiffMode::Extra, true));
    }

    #[test]
    fn changed_field_is_modified() {
        let mut live = live_with(json!([]));
        live["spec"]["replicas"] = json!(5);
        assert!(
            diff(Some(&desired()), Some(&live), &DiffConfig::default())
                .unwrap()
                .modified
        );
    }

    #[test]
    fn secrets_never_print() {
        let d = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}, "stringData": {"pw": "hunter2"}});
        let l = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}, "data": {"pw": "b2xkcGFzcw=="}});
        let r = diff(Some(&d), Some(&l), &DiffConfig::default()).unwrap();
        assert!(r.modified);
        let text = unified_diff(&r, "v1/Secret/s");
        assert!(
            text.contains("+++") && !text.contains("b2xkcGFzcw") && !text.contains("aHVudGVyMg"),
            "{text}"
        );
        let same = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}, "data": {"pw": "aHVudGVyMg=="}});
        assert!(
            !diff(Some(&d), Some(&same), &DiffConfig::default())
                .unwrap()
                .modified
        );
    }
}
