//! Health and action customizations read from `argocd-cm`, exactly as Argo CD reads them:
//! the split keys `resource.customizations.<type>.<group_kind>` and the legacy
//! `resource.customizations` YAML blob keyed by `group/Kind`.

use crate::HealthError;
use globset::{Glob, GlobMatcher};
use serde::Deserialize;
use std::collections::BTreeMap;

/// The legacy single-blob key, and the prefix of the split keys.
const CUSTOMIZATIONS_KEY: &str = "resource.customizations";

/// Customizations of one group/kind (or glob of them).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResourceOverride {
    /// The `health.lua` script, if configured.
    pub health_lua: Option<String>,
    /// Whether the scripts of this kind get the full Lua standard library.
    pub use_open_libs: bool,
    /// The resource actions of this kind, if configured.
    pub actions: Option<ResourceActions>,
}

/// The `actions` value of a customization (`discovery.lua` plus named `action.lua`s).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct ResourceActions {
    /// Script returning the available actions.
    #[serde(rename = "discovery.lua", default)]
    pub discovery_lua: String,
    /// The named action scripts.
    #[serde(default)]
    pub definitions: Vec<ResourceActionDefinition>,
    /// Whether built-in actions are offered next to these (kept for compatibility).
    #[serde(rename = "mergeBuiltinActions", default)]
    pub merge_builtin_actions: bool,
}

/// One named action script.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct ResourceActionDefinition {
    /// The action name.
    pub name: String,
    /// The script run when the action is invoked.
    #[serde(rename = "action.lua", default)]
    pub action_lua: String,
}

/// One entry of the legacy blob (other fields belong to the diff crate and are ignored).
#[derive(Debug, Default, Deserialize)]
struct LegacyOverride {
    #[serde(rename = "health.lua", default)]
    health_lua: Option<String>,
    #[serde(rename = "useOpenLibs", default)]
    use_open_libs: bool,
    #[serde(default)]
    actions: Option<serde_yaml_ng::Value>,
}

/// All health and action customizations, keyed by `group/Kind` (`Kind` for the core
/// group; keys may be globs such as `*.crossplane.io/*`).
#[derive(Debug, Clone, Default)]
pub struct HealthConfig {
    overrides: BTreeMap<String, ResourceOverride>,
    globs: Vec<(String, GlobMatcher)>,
}

impl HealthConfig {
    /// Reads the customizations from the `argocd-cm` data. Split keys override the legacy
    /// blob field by field. Keys of other customization types (`ignoreDifferences`,
    /// `ignoreResourceUpdates`, `knownTypeFields`) are accepted and ignored here.
    pub fn from_config_map(data: &BTreeMap<String, String>) -> Result<Self, HealthError> {
        let mut overrides = BTreeMap::new();
        if let Some(blob) = data.get(CUSTOMIZATIONS_KEY).filter(|blob| !blob.is_empty()) {
            overrides = parse_legacy(blob)?;
        }
        for (key, value) in data {
            apply_split_key(&mut overrides, key, value)?;
        }
        Ok(Self::from_overrides(overrides))
    }

    /// A configuration from already-parsed overrides keyed by `group/Kind`.
    pub fn from_overrides(overrides: BTreeMap<String, ResourceOverride>) -> Self {
        let globs = overrides
            .keys()
            .filter(|key| key.contains(['*', '?', '[', '{']))
            .filter_map(|key| match Glob::new(key) {
                Ok(glob) => Some((key.clone(), glob.compile_matcher())),
                Err(error) => {
                    tracing::warn!(key = %key, %error, "ignoring invalid glob customization key");
                    None
                }
            })
            .collect();
        Self { overrides, globs }
    }

    /// The overrides, keyed by `group/Kind`.
    pub fn overrides(&self) -> &BTreeMap<String, ResourceOverride> {
        &self.overrides
    }

    /// The override for exactly this key (no glob matching).
    pub fn exact(&self, kind_key: &str) -> Option<&ResourceOverride> {
        self.overrides.get(kind_key)
    }

    /// The health script for a kind key and whether it gets the open libraries: the exact
    /// key first, then the first glob key (in key order) that matches and has a script.
    pub fn health_script(&self, kind_key: &str) -> Option<(&str, bool)> {
        fn script_of(entry: &ResourceOverride) -> Option<&str> {
            entry
                .health_lua
                .as_deref()
                .filter(|script| !script.is_empty())
        }
        if let Some(entry) = self.overrides.get(kind_key)
            && let Some(script) = script_of(entry)
        {
            return Some((script, entry.use_open_libs));
        }
        self.globs
            .iter()
            .filter(|(_, matcher)| matcher.is_match(kind_key))
            .filter_map(|(key, _)| self.overrides.get(key))
            .find_map(|entry| script_of(entry).map(|script| (script, entry.use_open_libs)))
    }
}

/// The `group/Kind` key Argo CD uses for an object (`Kind` for the core group).
pub(crate) fn kind_key(group: &str, kind: &str) -> String {
    if group.is_empty() {
        kind.to_owned()
    } else {
        format!("{group}/{kind}")
    }
}

/// Parses the legacy `resource.customizations` blob.
fn parse_legacy(blob: &str) -> Result<BTreeMap<String, ResourceOverride>, HealthError> {
    let parse_error = |source| HealthError::ParseYaml {
        key: CUSTOMIZATIONS_KEY.to_owned(),
        source,
    };
    let raw: BTreeMap<String, LegacyOverride> =
        serde_yaml_ng::from_str(blob).map_err(parse_error)?;
    raw.into_iter()
        .map(|(key, legacy)| {
            let actions = match legacy.actions {
                None | Some(serde_yaml_ng::Value::Null) => None,
                Some(serde_yaml_ng::Value::String(text)) => parse_actions(&key, &text)?,
                Some(value) => Some(serde_yaml_ng::from_value(value).map_err(parse_error)?),
            };
            let entry = ResourceOverride {
                health_lua: legacy.health_lua,
                use_open_libs: legacy.use_open_libs,
                actions,
            };
            Ok((key, entry))
        })
        .collect()
}

/// Parses an `actions` YAML document; empty text means no actions.
fn parse_actions(key: &str, text: &str) -> Result<Option<ResourceActions>, HealthError> {
    if text.trim().is_empty() {
        return Ok(None);
    }
    serde_yaml_ng::from_str(text)
        .map(Some)
        .map_err(|source| HealthError::ParseYaml {
            key: key.to_owned(),
            source,
        })
}

/// Applies one `resource.customizations.<type>.<group_kind>` key.
fn apply_split_key(
    overrides: &mut BTreeMap<String, ResourceOverride>,
    key: &str,
    value: &str,
) -> Result<(), HealthError> {
    if !key.starts_with(CUSTOMIZATIONS_KEY) {
        return Ok(());
    }
    let parts: Vec<&str> = key.splitn(4, '.').collect();
    let [_, _, customization, group_kind] = parts[..] else {
        return Ok(());
    };
    let invalid = |reason: String| HealthError::ConfigKey {
        key: key.to_owned(),
        reason,
    };
    let override_key = match group_kind.split('_').collect::<Vec<_>>()[..] {
        ["all"] => "*/*".to_owned(),
        [kind] if !kind.is_empty() => kind.to_owned(),
        [group, kind] => format!("{group}/{kind}"),
        _ => {
            return Err(invalid(format!(
                "group kind {group_kind:?} is not <group>_<kind> or <kind>"
            )));
        }
    };
    let entry = overrides.entry(override_key).or_default();
    match customization {
        "health" => entry.health_lua = Some(value.to_owned()),
        "useOpenLibs" => {
            entry.use_open_libs =
                parse_bool(value).ok_or_else(|| invalid(format!("{value:?} is not a boolean")))?;
        }
        "actions" => entry.actions = parse_actions(key, value)?,
        "ignoreDifferences" | "ignoreResourceUpdates" | "knownTypeFields" => {}
        other => {
            return Err(invalid(format!(
                "resource customization type {other} not supported"
            )));
        }
    }
    Ok(())
}

/// Go's `strconv.ParseBool`.
fn parse_bool(value: &str) -> Option<bool> {
    match value {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Some(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Some(false),
        _ => None,
    }
}
