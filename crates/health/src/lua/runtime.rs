//! One Lua state ready to run scripts: libraries chosen by mode, a per-run fresh
//! environment, an instruction-count hook enforcing a deadline, a memory limit and a
//! cache of compiled scripts.

use super::{convert, oslib};
use crate::HealthError;
use mlua::{
    Function, HookTriggers, Lua, LuaOptions, MultiValue, StdLib, Table, Value as LuaValue, VmState,
};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Lua source that builds per-run environments.
const SANDBOX: &str = include_str!("sandbox.lua");
/// Instructions between deadline checks.
const HOOK_INTERVAL: u32 = 1_000;
/// Memory one state may allocate.
const MEMORY_LIMIT: usize = 128 * 1024 * 1024;
/// Compiled scripts kept per state before the cache is cleared.
const MAX_CACHED: usize = 512;

/// The deadline of the current run, shared with the hook.
struct Deadline {
    epoch: Instant,
    until_nanos: AtomicU64,
    expired: AtomicBool,
}

impl Deadline {
    /// Whether the current run is past its deadline (remembered once true).
    fn check(&self) -> bool {
        let now = u64::try_from(self.epoch.elapsed().as_nanos()).unwrap_or(u64::MAX);
        if now > self.until_nanos.load(Ordering::Relaxed) {
            self.expired.store(true, Ordering::Relaxed);
        }
        self.expired.load(Ordering::Relaxed)
    }
}

/// A Lua state plus its compiled-script cache.
pub(crate) struct Runtime {
    lua: Lua,
    new_env: Function,
    array_marker: Table,
    deadline: Arc<Deadline>,
    cache: HashMap<String, Function>,
    compiles: Arc<AtomicU64>,
}

impl Runtime {
    /// A fresh state; `open_libs` loads the full standard library instead of the sandbox.
    pub(crate) fn new(open_libs: bool, compiles: Arc<AtomicU64>) -> Result<Self, HealthError> {
        let libs = if open_libs {
            StdLib::ALL_SAFE
        } else {
            StdLib::TABLE | StdLib::STRING | StdLib::MATH
        };
        let lua = Lua::new_with(libs, LuaOptions::default()).map_err(HealthError::PrepareLua)?;
        let deadline = Arc::new(Deadline {
            epoch: Instant::now(),
            until_nanos: AtomicU64::new(u64::MAX),
            expired: AtomicBool::new(false),
        });
        Self::prepare(lua, open_libs, deadline, compiles).map_err(HealthError::PrepareLua)
    }

    /// Installs the hook, the memory limit and the environment builder.
    fn prepare(
        lua: Lua,
        open_libs: bool,
        deadline: Arc<Deadline>,
        compiles: Arc<AtomicU64>,
    ) -> mlua::Result<Self> {
        lua.set_memory_limit(MEMORY_LIMIT)?;
        let hook_deadline = Arc::clone(&deadline);
        lua.set_global_hook(
            HookTriggers::new().every_nth_instruction(HOOK_INTERVAL),
            move |_, _| {
                if hook_deadline.check() {
                    Err(mlua::Error::runtime("lua script exceeded its time limit"))
                } else {
                    Ok(VmState::Continue)
                }
            },
        )?;
        let check_deadline = Arc::clone(&deadline);
        let expired = lua.create_function(move |_, ()| Ok(check_deadline.check()))?;
        let safe_os = oslib::create(&lua)?;
        let builder = lua.load(SANDBOX).set_name("=sandbox").into_function()?;
        let new_env: Function = builder.call((lua.globals(), expired, safe_os, !open_libs))?;
        let array_marker = lua.create_table()?;
        Ok(Self {
            lua,
            new_env,
            array_marker,
            deadline,
            cache: HashMap::new(),
            compiles,
        })
    }

    /// The compiled function for a script, compiling and caching it on first use.
    fn compiled(&mut self, script: &str) -> Result<Function, HealthError> {
        if let Some(function) = self.cache.get(script) {
            return Ok(function.clone());
        }
        let function = self
            .lua
            .load(script)
            .set_name("=<string>")
            .into_function()
            .map_err(|error| HealthError::CompileScript(error_message(&error)))?;
        self.compiles.fetch_add(1, Ordering::Relaxed);
        if self.cache.len() >= MAX_CACHED {
            self.cache.clear();
        }
        self.cache.insert(script.to_owned(), function.clone());
        Ok(function)
    }

    /// Runs `script` with globals `obj` and `actionParams`, then decodes its (last)
    /// return value with `decode` (given the array marker table).
    pub(crate) fn run<T>(
        &mut self,
        script: &str,
        obj: &Value,
        params: &Value,
        limit: Duration,
        decode: impl FnOnce(&LuaValue, &Table) -> Result<T, HealthError>,
    ) -> Result<T, HealthError> {
        let function = self.compiled(script)?;
        let prepare = |this: &Self| -> mlua::Result<()> {
            let obj = convert::json_to_lua(&this.lua, obj, &this.array_marker)?;
            let params = convert::json_to_lua(&this.lua, params, &this.array_marker)?;
            let env: Table = this.new_env.call((obj, params))?;
            function.set_environment(env)?;
            Ok(())
        };
        prepare(self).map_err(HealthError::PrepareLua)?;
        let limit_nanos = u64::try_from(limit.as_nanos()).unwrap_or(u64::MAX);
        let start = u64::try_from(self.deadline.epoch.elapsed().as_nanos()).unwrap_or(u64::MAX);
        self.deadline.expired.store(false, Ordering::Relaxed);
        self.deadline
            .until_nanos
            .store(start.saturating_add(limit_nanos), Ordering::Relaxed);
        let result = function.call::<MultiValue>(());
        self.deadline.until_nanos.store(u64::MAX, Ordering::Relaxed);
        if self.deadline.expired.swap(false, Ordering::Relaxed) {
            return Err(HealthError::TimeLimit(limit));
        }
        let values = result.map_err(|error| HealthError::RunScript(error_message(&error)))?;
        let last = values.into_iter().last().unwrap_or(LuaValue::Nil);
        decode(&last, &self.array_marker)
    }
}

/// The message of a Lua error without mlua's wrapping or the stack traceback.
fn error_message(error: &mlua::Error) -> String {
    let text = match error {
        mlua::Error::RuntimeError(message) => message.clone(),
        mlua::Error::SyntaxError { message, .. } => message.clone(),
        mlua::Error::CallbackError { cause, .. } => return error_message(cause),
        mlua::Error::MemoryError(_) => "not enough memory".to_owned(),
        other => other.to_string(),
    };
    match text.find("\nstack traceback:") {
        Some(cut) => text[..cut].to_owned(),
        None => text,
    }
}
