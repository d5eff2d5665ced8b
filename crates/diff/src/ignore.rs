//! ignoreDifferences rules from an Application and from argocd-cm, matched by group and
//! kind globs plus optional name and namespace, and applied to both sides of a diff.

use std::collections::BTreeMap;
use std::time::Duration;

use globset::{Glob, GlobMatcher};
use keelson_model::application::ResourceIgnoreDifferences;
use serde::Deserialize;
use serde_json::Value;

use crate::error::DiffError;
use crate::field_set::{managed_sets, remove_owned};
use crate::jq::JqPath;
use crate::normalize::prune;

const SPLIT_PREFIX: &str = "resource.customizations.ignoreDifferences.";
const LEGACY_KEY: &str = "resource.customizations";

#[derive(Debug, Clone)]
enum Pattern {
    Exact(String),
    Glob(GlobMatcher),
}

impl Pattern {
    fn new(pattern: &str) -> Result<Pattern, DiffError> {
        if !pattern.contains(['*', '?', '[']) {
            return Ok(Pattern::Exact(pattern.to_string()));
        }
        let glob = Glob::new(pattern).map_err(|source| DiffError::Glob {
            pattern: pattern.to_string(),
            source,
        })?;
        Ok(Pattern::Glob(glob.compile_matcher()))
    }

    fn matches(&self, text: &str) -> bool {
        match self {
            Pattern::Exact(p) => p == text,
            Pattern::Glob(g) => g.is_match(text),
        }
    }
}

/// One compiled rule.
#[derive(Debug, Clone)]
pub struct IgnoreRule {
    group: Pattern,
    kind: Pattern,
    name: Option<String>,
    namespace: Option<String>,
    json_pointers: Vec<String>,
    jq: Vec<JqPath>,
    managers: Vec<String>,
}

/// The shape of an argocd-cm ignoreDifferences value.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct OverrideIgnoreDiff {
    #[serde(default)]
    json_pointers: Vec<String>,
    #[serde(default)]
    jq_path_expressions: Vec<String>,
    #[serde(default)]
    managed_fields_managers: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct LegacyOverride {
    #[serde(default)]
    ignore_differences: Option<String>,
}

/// All ignore rules in effect for one Application.
#[derive(Debug, Clone, Default)]
pub struct IgnoreRules {
    rules: Vec<IgnoreRule>,
}

impl IgnoreRules {
    /// Rules from the Application's `spec.ignoreDifferences` and argocd-cm data.
    pub fn new(
        app: &[ResourceIgnoreDifferences],
        argocd_cm: &BTreeMap<String, String>,
    ) -> Result<IgnoreRules, DiffError> {
        let mut rules = IgnoreRules::from_application(app)?;
        rules
            .rules
            .extend(IgnoreRules::from_argocd_cm(argocd_cm)?.rules);
        Ok(rules)
    }

    /// Rules from `spec.ignoreDifferences`.
    pub fn from_application(
        entries: &[ResourceIgnoreDifferences],
    ) -> Result<IgnoreRules, DiffError> {
        let mut rules = Vec::new();
        for e in entries {
            let spec = OverrideIgnoreDiff {
                json_pointers: e.json_pointers.clone().unwrap_or_default(),
                jq_path_expressions: e.jq_path_expressions.clone().unwrap_or_default(),
                managed_fields_managers: e.managed_fields_managers.clone().unwrap_or_default(),
            };
            let group = e.group.as_deref().unwrap_or_default();
            rules.push(compile(
                group,
                &e.kind,
                e.name.clone(),
                e.namespace.clone(),
                spec,
            )?);
        }
        Ok(IgnoreRules { rules })
    }

    /// Rules from argocd-cm: `resource.customizations.ignoreDifferences.<group_kind>`,
    /// `...ignoreDifferences.all` and the legacy `resource.customizations` blob.
    pub fn from_argocd_cm(data: &BTreeMap<String, String>) -> Result<IgnoreRules, DiffError> {
        let mut rules = Vec::new();
        if let Some(blob) = data.get(LEGACY_KEY).filter(|b| !b.trim().is_empty()) {
            let overrides: BTreeMap<String, LegacyOverride> = serde_yaml_ng::from_str(blob)
                .map_err(|source| DiffError::Customization {
                    key: LEGACY_KEY.to_string(),
                    source,
                })?;
            for (group_kind, o) in overrides {
                let Some(text) = o.ignore_differences else {
                    continue;
                };
                let spec = parse_override(LEGACY_KEY, &text)?;
                let (group, kind) = group_kind
                    .split_once('/')
                    .unwrap_or(("", group_kind.as_str()));
                rules.push(compile(group, kind, None, None, spec)?);
            }
        }
        for (key, text) in data {
            let Some(group_kind) = key.strip_prefix(SPLIT_PREFIX) else {
                continue;
            };
            let (group, kind) = match group_kind {
                "all" => ("*", "*"),
                gk => match gk.split('_').collect::<Vec<_>>().as_slice() {
                    [group, kind] => (*group, *kind),
                    [kind] if !kind.is_empty() => ("", *kind),
                    _ => return Err(DiffError::CustomizationKey { key: key.clone() }),
                },
            };
            let spec = parse_override(key, text)?;
            rules.push(compile(group, kind, None, None, spec)?);
        }
        Ok(IgnoreRules { rules })
    }

    /// Number of compiled rules.
    pub fn len(&self) -> usize {
        self.rules.len()
    }

    /// Whether there are no rules.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// Removes ignored fields from `obj`. `live` supplies managedFields for
    /// `managedFieldsManagers` rules.
    pub(crate) fn apply(
        &self,
        obj: &mut Value,
        live: Option<&Value>,
        timeout: Duration,
    ) -> Result<(), DiffError> {
        let (group, kind, name, namespace) = identity(live.unwrap_or(obj));
        for rule in self.rules.iter().filter(|r| {
            r.group.matches(&group)
                && r.kind.matches(&kind)
                && r.name.as_ref().is_none_or(|n| *n == name)
                && r.namespace.as_ref().is_none_or(|n| *n == namespace)
        }) {
            for pointer in &rule.json_pointers {
                remove_pointer(obj, pointer);
            }
            for jq in &rule.jq {
                if let Some(out) = jq.apply(obj, timeout)? {
                    *obj = out;
                }
            }
            if let (Some(live), false) = (live, rule.managers.is_empty()) {
                for set in managed_sets(live, |m, _| rule.managers.iter().any(|x| x == m))? {
                    remove_owned(&set, None, obj, false);
                }
            }
        }
        prune(obj);
        Ok(())
    }
}

fn parse_override(key: &str, text: &str) -> Result<OverrideIgnoreDiff, DiffError> {
    if text.trim().is_empty() {
        return Ok(OverrideIgnoreDiff::default());
    }
    serde_yaml_ng::from_str(text).map_err(|source| DiffError::Customization {
        key: key.to_string(),
        source,
    })
}

fn compile(
    group: &str,
    kind: &str,
    name: Option<String>,
    namespace: Option<String>,
    spec: OverrideIgnoreDiff,
) -> Result<IgnoreRule, DiffError> {
    for p in &spec.json_pointers {
        if !p.is_empty() && !p.starts_with('/') {
            return Err(DiffError::JsonPointer { pointer: p.clone() });
        }
    }
    let jq = spec
        .jq_path_expressions
        .iter()
        .map(|e| JqPath::compile(e))
        .collect::<Result<_, _>>()?;
    Ok(IgnoreRule {
        group: Pattern::new(group)?,
        kind: Pattern::new(kind)?,
        name: name.filter(|n| !n.is_empty()),
        namespace: namespace.filter(|n| !n.is_empty()),
        json_pointers: spec.json_pointers,
        jq,
        managers: spec.managed_fields_managers,
    })
}

/// (group, kind, name, namespace) of an object.
fn identity(obj: &Value) -> (String, String, String, String) {
    let text = |p: &str| {
        obj.pointer(p)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    let api_version = text("/apiVersion");
    let group = api_version
        .rsplit_once('/')
        .map(|(g, _)| g.to_string())
        .unwrap_or_default();
    (
        group,
        text("/kind"),
        text("/metadata/name"),
        text("/metadata/namespace"),
    )
}

/// Removes the value at an RFC 6901 pointer, if present.
fn remove_pointer(obj: &mut Value, pointer: &str) {
    let Some((parent, last)) = pointer.rsplit_once('/') else {
        return;
    };
    let last = last.replace("~1", "/").replace("~0", "~");
    match obj.pointer_mut(parent) {
        Some(Value::Object(map)) => {
            map.remove(&last);
        }
        Some(Value::Array(items)) => {
            if let Some(i) = last.parse::<usize>().ok().filter(|i| *i < items.len()) {
                items.remove(i);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn deploy() -> Value {
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d", "namespace": "n",
            "managedFields": [{"manager": "hpa", "operation": "Update", "fieldsV1": {"f:spec": {"f:replicas": {}}}}],
            "annotations": {"a/b": "x"}},
            "spec": {"replicas": 3, "template": {"spec": {"containers": [{"name": "c", "image": "i"}]}}}})
    }

    fn entry(v: Value) -> ResourceIgnoreDifferences {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn json_pointers_jq_and_managers() {
        let rules = IgnoreRules::from_application(&[
            entry(json!({"group": "apps", "kind": "Deployment", "jsonPointers": ["/metadata/annotations/a~1b"]})),
            entry(json!({"group": "apps", "kind": "Deployment", "jqPathExpressions": [".spec.template.spec.containers[].image"]})),
            entry(json!({"group": "apps", "kind": "Deployment", "managedFieldsManagers": ["hpa"]})),
        ])
        .unwrap();
        let live = deploy();
        let mut obj = live.clone();
        rules
            .apply(&mut obj, Some(&live), Duration::from_secs(1))
            .unwrap();
        assert!(obj.pointer("/metadata/annotations").is_none());
        assert!(obj.pointer("/spec/replicas").is_none());
        assert_eq!(
            obj.pointer("/spec/template/spec/containers/0"),
            Some(&json!({"name": "c"}))
        );
    }

    #[test]
    fn name_namespace_and_glob_matching() {
        let mk = |v| IgnoreRules::from_application(&[entry(v)]).unwrap();
        let live = deploy();
        let cases = [
            (
                json!({"group": "ap*", "kind": "Deploy*", "jsonPointers": ["/spec/replicas"]}),
                true,
            ),
            (
                json!({"group": "*", "kind": "*", "jsonPointers": ["/spec/replicas"]}),
                true,
            ),
            (
                json!({"group": "", "kind": "Deployment", "jsonPointers": ["/spec/replicas"]}),
                false,
            ),
            (
                json!({"group": "apps", "kind": "Deployment", "name": "other", "jsonPointers": ["/spec/replicas"]}),
                false,
            ),
            (
                json!({"group": "apps", "kind": "Deployment", "namespace": "n", "jsonPointers": ["/spec/replicas"]}),
                true,
            ),
        ];
        for (rule, removed) in cases {
            let mut obj = live.clone();
            mk(rule.clone())
                .apply(&mut obj, Some(&live), Duration::from_secs(1))
                .unwrap();
            assert_eq!(obj.pointer("/spec/replicas").is_none(), removed, "{rule}");
        }
    }

    #[test]
    fn argocd_cm_keys() {
        let mut cm = BTreeMap::new();
        cm.insert(
            format!("{SPLIT_PREFIX}apps_Deployment"),
            "jsonPointers:\n- /spec/replicas\n".to_string(),
        );
        cm.insert(
            format!("{SPLIT_PREFIX}Service"),
            "jqPathExpressions:\n- .spec.clusterIP\n".to_string(),
        );
        cm.insert(
            format!("{SPLIT_PREFIX}all"),
            "managedFieldsManagers:\n- kube-controller-manager\n".to_string(),
        );
        cm.insert(
            LEGACY_KEY.to_string(),
            "batch/Job:\n  ignoreDifferences: |\n    jsonPointers:\n    - /spec/selector\n"
                .to_string(),
        );
        let rules = IgnoreRules::from_argocd_cm(&cm).unwrap();
        assert_eq!(rules.len(), 4);
        let live = deploy();
        let mut obj = live.clone();
        rules
            .apply(&mut obj, Some(&live), Duration::from_secs(1))
            .unwrap();
        assert!(obj.pointer("/spec/replicas").is_none());
        let svc = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"}, "spec": {"clusterIP": "1.2.3.4", "type": "ClusterIP"}});
        let mut obj = svc.clone();
        rules
            .apply(&mut obj, Some(&svc), Duration::from_secs(1))
            .unwrap();
        assert_eq!(obj["spec"], json!({"type": "ClusterIP"}));
    }

    #[test]
    fn bad_rules_are_errors() {
        let bad_jq = IgnoreRules::from_application(&[entry(
            json!({"kind": "X", "jqPathExpressions": [".a["]}),
        )]);
        assert!(matches!(bad_jq, Err(DiffError::JqCompile { .. })));
        let bad_ptr =
            IgnoreRules::from_application(&[entry(json!({"kind": "X", "jsonPointers": ["spec"]}))]);
        assert!(matches!(bad_ptr, Err(DiffError::JsonPointer { .. })));
        let mut cm = BTreeMap::new();
        cm.insert(format!("{SPLIT_PREFIX}a_b_c"), String::new());
        assert!(matches!(
            IgnoreRules::from_argocd_cm(&cm),
            Err(DiffError::CustomizationKey { .. })
        ));
    }
}
