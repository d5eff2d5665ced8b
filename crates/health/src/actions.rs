//! The resource-actions contract: what `discovery.lua` and `action.lua` return, and how
//! their Lua results are decoded (Argo CD's `ResourceAction` and `ImpactedResource`).

use crate::HealthError;
use crate::lua::table_json;
use mlua::{Table, Value as LuaValue};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One action offered for a resource, as returned by `discovery.lua`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ActionDescriptor {
    /// The action name (the key in the discovery table).
    pub name: String,
    /// Whether the action is shown but cannot be run.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub disabled: bool,
    /// CSS class of the action's icon.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub icon_class: String,
    /// Name shown to users.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub display_name: String,
    /// Parameters the action accepts.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub params: Vec<ActionParam>,
}

/// A parameter of an action.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActionParam {
    /// Parameter name.
    #[serde(default)]
    pub name: String,
    /// Parameter value.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub value: String,
    /// Parameter type (e.g. `string`).
    #[serde(rename = "type", default, skip_serializing_if = "String::is_empty")]
    pub param_type: String,
    /// Default value.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub default: String,
}

/// What to do with a resource returned by an action.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum K8sOperation {
    /// Create the resource.
    Create,
    /// Patch the existing resource to this state.
    Patch,
}

/// One resource an action touches (Argo CD's `{operation, resource}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImpactedResource {
    /// What to do with it.
    pub operation: K8sOperation,
    /// The full resource.
    pub resource: Value,
}

/// The result of running an action.
#[derive(Debug, Clone, PartialEq)]
pub enum ActionOutcome {
    /// The script returned the modified object: patch the resource to it.
    Patched(Value),
    /// The script returned a list of resources to create or patch.
    Impacted(Vec<ImpactedResource>),
}

/// Decodes a discovery result (already JSON): an object of name → descriptor; an empty
/// table means no actions.
pub(crate) fn decode_discovery(json: &Value) -> Result<Vec<ActionDescriptor>, HealthError> {
    let entries = match json {
        Value::Object(entries) => entries,
        Value::Array(items) if items.is_empty() => return Ok(Vec::new()),
        other => {
            return Err(HealthError::DecodeResult(format!(
                "discovery must return a table of action name to action, not {other}"
            )));
        }
    };
    let text = |value: &Value, key: &str| {
        value
            .get(key)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned()
    };
    let mut descriptors = entries
        .iter()
        .map(|(name, value)| {
            let params = match value.get("params") {
                None | Some(Value::Null) => Vec::new(),
                Some(params) => serde_json::from_value(params.clone()).map_err(|error| {
                    HealthError::DecodeResult(format!("action {name:?} params: {error}"))
                })?,
            };
            Ok(ActionDescriptor {
                name: name.clone(),
                disabled: value
                    .get("disabled")
                    .and_then(Value::as_bool)
                    .unwrap_or(false),
                icon_class: text(value, "iconClass"),
                display_name: text(value, "displayName"),
                params,
            })
        })
        .collect::<Result<Vec<_>, HealthError>>()?;
    descriptors.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(descriptors)
}

/// Decodes an action result: an object is the patched resource; a list holds impacted
/// resources; an empty table impacts nothing. Patched resources are decoded against the
/// original object so empty tables keep their original array/object shape.
pub(crate) fn decode_action(
    value: &LuaValue,
    obj: &Value,
    marker: &Table,
) -> Result<ActionOutcome, HealthError> {
    let shape = table_json(value, None, marker)?;
    match shape {
        Value::Object(fields) if fields.is_empty() => Ok(ActionOutcome::Impacted(Vec::new())),
        Value::Object(_) => Ok(ActionOutcome::Patched(table_json(
            value,
            Some(obj),
            marker,
        )?)),
        Value::Array(items) => {
            let Some(table) = value.as_table() else {
                return Ok(ActionOutcome::Impacted(Vec::new()));
            };
            (1..=items.len())
                .map(|index| impacted(table, index, obj, marker))
                .collect::<Result<_, _>>()
                .map(ActionOutcome::Impacted)
        }
        other => Err(HealthError::DecodeResult(format!(
            "action must return an object or a list, not {other}"
        ))),
    }
}

/// Decodes entry `index` of an impacted-resources list.
fn impacted(
    list: &Table,
    index: usize,
    obj: &Value,
    marker: &Table,
) -> Result<ImpactedResource, HealthError> {
    let lua_error = |error: mlua::Error| HealthError::DecodeResult(error.to_string());
    let entry: LuaValue = list.raw_get(index).map_err(lua_error)?;
    let Some(entry) = entry.as_table() else {
        return Err(HealthError::DecodeResult(format!(
            "impacted resource {index} is not a table"
        )));
    };
    let operation: Option<String> = entry.raw_get("operation").map_err(lua_error)?;
    let operation = match operation.as_deref() {
        Some("create") => K8sOperation::Create,
        Some("patch") => K8sOperation::Patch,
        other => {
            return Err(HealthError::DecodeResult(format!(
                "unsupported operation: {other:?}"
            )));
        }
    };
    let resource: LuaValue = entry.raw_get("resource").map_err(lua_error)?;
    let original = (operation == K8sOperation::Patch).then_some(obj);
    let resource = table_json(&resource, original, marker)?;
    if !resource.is_object() {
        return Err(HealthError::DecodeResult(format!(
            "impacted resource {index} is not an object"
        )));
    }
    Ok(ImpactedResource {
        operation,
        resource,
    })
}
