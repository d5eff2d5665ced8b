//! `HealthAssessor`: the configured health assessment of live objects (deletion, Lua
//! overrides, built-in checks) and the configured resource actions.

use crate::actions::{ActionDescriptor, ActionOutcome};
use crate::builtin::{builtin_health, group_version};
use crate::config::kind_key;
use crate::{HealthAssessment, HealthConfig, HealthError, LuaEngine};
use keelson_model::HealthStatusCode;
use serde_json::Value;
use std::collections::BTreeMap;
use std::time::Duration;

/// Finalizer that keeps a hook object's health assessed while it is being deleted.
const HOOK_FINALIZER: &str = "argocd.argoproj.io/hook-finalizer";

/// Assesses resource health with the `argocd-cm` customizations. `Send + Sync` and cheap
/// to share in an `Arc` across tasks.
#[derive(Debug)]
pub struct HealthAssessor {
    config: HealthConfig,
    engine: LuaEngine,
}

impl HealthAssessor {
    /// An assessor with the default Lua time limit (1 s).
    pub fn new(config: HealthConfig) -> Self {
        Self::with_time_limit(config, crate::DEFAULT_TIME_LIMIT)
    }

    /// An assessor whose Lua runs are stopped after `time_limit`.
    pub fn with_time_limit(config: HealthConfig, time_limit: Duration) -> Self {
        Self {
            config,
            engine: LuaEngine::new(time_limit),
        }
    }

    /// The configuration in use.
    pub fn config(&self) -> &HealthConfig {
        &self.config
    }

    /// The Lua engine (for its compile counter and direct script runs).
    pub fn engine(&self) -> &LuaEngine {
        &self.engine
    }

    /// Health of a live object, in Argo CD's order: pending deletion (unless held by the
    /// hook finalizer) → Progressing "Pending deletion"; then a Lua override (exact key,
    /// then glob), whose errors become Unknown with the error message; then the built-in
    /// check. `None` when nothing applies.
    pub fn assess(&self, obj: &Value) -> Option<HealthAssessment> {
        if pending_deletion(obj) {
            return Some(HealthAssessment::new(
                HealthStatusCode::Progressing,
                "Pending deletion",
            ));
        }
        let key = object_kind_key(obj);
        if let Some((script, open_libs)) = self.config.health_script(&key) {
            return Some(match self.engine.run_health(script, obj, open_libs) {
                Ok(assessment) => assessment,
                Err(error) => {
                    tracing::debug!(kind = %key, %error, "lua health script failed");
                    HealthAssessment::new(HealthStatusCode::Unknown, error.to_string())
                }
            });
        }
        builtin_health(obj)
    }

    /// The actions configured for the object's kind (exact key), from its `discovery.lua`;
    /// empty when none are configured.
    pub fn discover_actions(&self, obj: &Value) -> Result<Vec<ActionDescriptor>, HealthError> {
        let key = object_kind_key(obj);
        let Some(entry) = self.config.exact(&key) else {
            return Ok(Vec::new());
        };
        match &entry.actions {
            Some(actions) if !actions.discovery_lua.is_empty() => {
                self.engine
                    .discover_actions(&actions.discovery_lua, obj, entry.use_open_libs)
            }
            _ => Ok(Vec::new()),
        }
    }

    /// Runs the named action configured for the object's kind.
    pub fn run_action(
        &self,
        obj: &Value,
        action: &str,
        params: &BTreeMap<String, String>,
    ) -> Result<ActionOutcome, HealthError> {
        let key = object_kind_key(obj);
        let entry = self.config.exact(&key);
        let definition = entry
            .and_then(|entry| entry.actions.as_ref())
            .and_then(|actions| actions.definitions.iter().find(|d| d.name == action));
        let (Some(entry), Some(definition)) = (entry, definition) else {
            return Err(HealthError::ActionNotFound {
                name: action.to_owned(),
                kind_key: key,
            });
        };
        self.engine
            .run_action(&definition.action_lua, obj, params, entry.use_open_libs)
    }
}

/// The `group/Kind` customization key of an object.
fn object_kind_key(obj: &Value) -> String {
    let (group, _) = group_version(obj);
    let kind = obj.get("kind").and_then(Value::as_str).unwrap_or("");
    kind_key(group, kind)
}

/// Whether the object is being deleted and not held by the hook finalizer.
fn pending_deletion(obj: &Value) -> bool {
    let deleting = obj
        .pointer("/metadata/deletionTimestamp")
        .is_some_and(|timestamp| !timestamp.is_null());
    let hook_held = obj
        .pointer("/metadata/finalizers")
        .and_then(Value::as_array)
        .is_some_and(|finalizers| {
            finalizers
                .iter()
                .any(|finalizer| finalizer.as_str() == Some(HOOK_FINALIZER))
        });
    deleting && !hook_held
}
