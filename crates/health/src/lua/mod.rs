//! The Lua engine: pools of prepared Lua states (sandboxed and open-libs), shared by
//! many threads, running health, discovery and action scripts under a time limit.

mod convert;
mod oslib;
mod runtime;

use crate::actions::{self, ActionDescriptor, ActionOutcome};
use crate::{HealthAssessment, HealthError};
use keelson_model::HealthStatusCode;
use mlua::{Table, Value as LuaValue};
use parking_lot::Mutex;
use runtime::Runtime;
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Time one script run may take unless configured otherwise (Argo CD's limit).
pub const DEFAULT_TIME_LIMIT: Duration = Duration::from_secs(1);
/// Idle states kept per pool; more concurrent callers create (and drop) extra states.
const MAX_IDLE: usize = 64;
/// Message Argo CD gives when a script returns an unknown status.
const INVALID_STATUS: &str = "Lua returned an invalid health status";

/// Runs Lua customization scripts. `Send + Sync`: share it in an `Arc`; each call checks
/// a prepared state out of a pool, so concurrent calls never block on each other's
/// scripts. Compiled scripts are cached per state, keyed by their source.
pub struct LuaEngine {
    sandboxed: Mutex<Vec<Runtime>>,
    open: Mutex<Vec<Runtime>>,
    time_limit: Duration,
    compiles: Arc<AtomicU64>,
}

impl Default for LuaEngine {
    fn default() -> Self {
        Self::new(DEFAULT_TIME_LIMIT)
    }
}

impl std::fmt::Debug for LuaEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LuaEngine")
            .field("time_limit", &self.time_limit)
            .field("compiles", &self.compile_count())
            .finish_non_exhaustive()
    }
}

impl LuaEngine {
    /// An engine whose script runs are stopped after `time_limit`.
    pub fn new(time_limit: Duration) -> Self {
        Self {
            sandboxed: Mutex::new(Vec::new()),
            open: Mutex::new(Vec::new()),
            time_limit,
            compiles: Arc::new(AtomicU64::new(0)),
        }
    }

    /// The per-run time limit.
    pub fn time_limit(&self) -> Duration {
        self.time_limit
    }

    /// How many times a script has been compiled (cache misses), over all states.
    pub fn compile_count(&self) -> u64 {
        self.compiles.load(Ordering::Relaxed)
    }

    /// Runs a `health.lua` script. A returned table with an unknown status gives Unknown
    /// "Lua returned an invalid health status"; a non-table return is an error.
    pub fn run_health(
        &self,
        script: &str,
        obj: &Value,
        open_libs: bool,
    ) -> Result<HealthAssessment, HealthError> {
        self.with_runtime(open_libs, |runtime| {
            runtime.run(script, obj, &Value::Null, self.time_limit, decode_health)
        })
    }

    /// Runs a `discovery.lua` script: a table of action name → `{disabled, iconClass,
    /// displayName, params}`; returned sorted by name.
    pub fn discover_actions(
        &self,
        script: &str,
        obj: &Value,
        open_libs: bool,
    ) -> Result<Vec<ActionDescriptor>, HealthError> {
        self.with_runtime(open_libs, |runtime| {
            runtime.run(
                script,
                obj,
                &Value::Null,
                self.time_limit,
                |value, marker| actions::decode_discovery(&table_json(value, None, marker)?),
            )
        })
    }

    /// Runs an `action.lua` script with `actionParams` set to `params`: the modified
    /// object (→ [`ActionOutcome::Patched`]) or a list of `{operation, resource}`
    /// (→ [`ActionOutcome::Impacted`]).
    pub fn run_action(
        &self,
        script: &str,
        obj: &Value,
        params: &BTreeMap<String, String>,
        open_libs: bool,
    ) -> Result<ActionOutcome, HealthError> {
        let params = Value::Object(
            params
                .iter()
                .map(|(name, value)| (name.clone(), Value::String(value.clone())))
                .collect(),
        );
        self.with_runtime(open_libs, |runtime| {
            runtime.run(script, obj, &params, self.time_limit, |value, marker| {
                actions::decode_action(value, obj, marker)
            })
        })
    }

    /// Checks a state out of the pool (creating one if none is idle), runs `f`, returns it.
    fn with_runtime<T>(
        &self,
        open_libs: bool,
        f: impl FnOnce(&mut Runtime) -> Result<T, HealthError>,
    ) -> Result<T, HealthError> {
        let pool = if open_libs {
            &self.open
        } else {
            &self.sandboxed
        };
        let idle = pool.lock().pop();
        let mut runtime = match idle {
            Some(runtime) => runtime,
            None => Runtime::new(open_libs, Arc::clone(&self.compiles))?,
        };
        let result = f(&mut runtime);
        let mut idle = pool.lock();
        if idle.len() < MAX_IDLE {
            idle.push(runtime);
        }
        result
    }
}

/// A returned Lua table as JSON; any other type is Argo CD's "expect table" error.
pub(crate) fn table_json(
    value: &LuaValue,
    original: Option<&Value>,
    marker: &Table,
) -> Result<Value, HealthError> {
    if !value.is_table() {
        return Err(HealthError::ReturnType {
            expected: "table",
            // Lua 5.1 has one number type; mlua reports integral ones as "integer"
            actual: match value {
                LuaValue::Integer(_) => "number".to_owned(),
                other => other.type_name().to_owned(),
            },
        });
    }
    convert::lua_to_json(value, original, marker).map_err(HealthError::DecodeResult)
}

/// Decodes a health script's return value.
fn decode_health(value: &LuaValue, marker: &Table) -> Result<HealthAssessment, HealthError> {
    let json = table_json(value, None, marker)?;
    let status = json.get("status").and_then(Value::as_str).unwrap_or("");
    let message = match json.get("message") {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(text)) => text.clone(),
        Some(other) => {
            return Err(HealthError::DecodeResult(format!(
                "health message must be a string, not {other}"
            )));
        }
    };
    Ok(match status.parse::<HealthStatusCode>() {
        Ok(status) => HealthAssessment::new(status, message),
        Err(_) => HealthAssessment::new(HealthStatusCode::Unknown, INVALID_STATUS),
    })
}
