//! Conversion between JSON objects and Lua values, as Argo CD's Lua bridge does it:
//! numbers become Lua numbers, `null` becomes `nil`, arrays are 1-based tables.
//!
//! Empty tables are ambiguous in Lua. Arrays coming from JSON carry a marker metatable so
//! they stay arrays; an unmarked empty table becomes `[]` where the original object had
//! an array at the same path and `{}` everywhere else.

use mlua::{Lua, Table, Value as LuaValue};
use serde_json::{Map, Number, Value};

/// Deepest nesting converted back from Lua (guards against cyclic tables).
const MAX_DEPTH: usize = 128;

/// Converts a JSON value into a Lua value; arrays get `array_marker` as metatable.
pub(crate) fn json_to_lua(
    lua: &Lua,
    value: &Value,
    array_marker: &Table,
) -> mlua::Result<LuaValue> {
    Ok(match value {
        Value::Null => LuaValue::Nil,
        Value::Bool(flag) => LuaValue::Boolean(*flag),
        Value::Number(number) => LuaValue::Number(number.as_f64().unwrap_or(0.0)),
        Value::String(text) => LuaValue::String(lua.create_string(text)?),
        Value::Array(items) => {
            let table = lua.create_table_with_capacity(items.len(), 0)?;
            for (index, item) in items.iter().enumerate() {
                table.raw_set(index + 1, json_to_lua(lua, item, array_marker)?)?;
            }
            table.set_metatable(Some(array_marker.clone()))?;
            LuaValue::Table(table)
        }
        Value::Object(fields) => {
            let table = lua.create_table_with_capacity(0, fields.len())?;
            for (key, item) in fields {
                table.raw_set(key.as_str(), json_to_lua(lua, item, array_marker)?)?;
            }
            LuaValue::Table(table)
        }
    })
}

/// Converts a Lua value back into JSON. `original` is the value at the same path in the
/// object given to the script (used to decide what an empty table was meant to be).
pub(crate) fn lua_to_json(
    value: &LuaValue,
    original: Option<&Value>,
    array_marker: &Table,
) -> Result<Value, String> {
    to_json(value, original, array_marker, 0)
}

/// Recursive worker of [`lua_to_json`].
fn to_json(
    value: &LuaValue,
    original: Option<&Value>,
    marker: &Table,
    depth: usize,
) -> Result<Value, String> {
    if depth > MAX_DEPTH {
        return Err("table nested too deeply or cyclic".to_owned());
    }
    match value {
        LuaValue::Nil => Ok(Value::Null),
        LuaValue::Boolean(flag) => Ok(Value::Bool(*flag)),
        LuaValue::Integer(number) => Ok(Value::from(*number)),
        LuaValue::Number(number) => number_to_json(*number),
        LuaValue::String(text) => Ok(Value::String(text.to_string_lossy())),
        LuaValue::Table(table) => table_to_json(table, original, marker, depth),
        other => Err(format!(
            "cannot encode value of type {} to JSON",
            other.type_name()
        )),
    }
}

/// A Lua number as JSON: integral values become JSON integers.
fn number_to_json(number: f64) -> Result<Value, String> {
    if number.fract() == 0.0 && number.abs() < 9.0e15 {
        return Ok(Value::from(number as i64));
    }
    Number::from_f64(number)
        .map(Value::Number)
        .ok_or_else(|| format!("cannot encode number {number} to JSON"))
}

/// A Lua table as a JSON array or object.
fn table_to_json(
    table: &Table,
    original: Option<&Value>,
    marker: &Table,
    depth: usize,
) -> Result<Value, String> {
    let marked = table
        .metatable()
        .is_some_and(|meta| meta.to_pointer() == marker.to_pointer());
    let length = table.raw_len();
    let entries = table.pairs::<LuaValue, LuaValue>().count();
    let is_array = marked || (length > 0 && entries == length);
    if is_array {
        let originals = original.and_then(Value::as_array);
        let mut items = Vec::with_capacity(length);
        for index in 1..=length {
            let item: LuaValue = table.raw_get(index).map_err(|e| e.to_string())?;
            let before = originals.and_then(|o| o.get(index - 1));
            items.push(to_json(&item, before, marker, depth + 1)?);
        }
        return Ok(Value::Array(items));
    }
    if entries == 0 && original.is_some_and(Value::is_array) {
        return Ok(Value::Array(Vec::new()));
    }
    let mut fields = Map::new();
    for pair in table.pairs::<LuaValue, LuaValue>() {
        let (key, item) = pair.map_err(|e| e.to_string())?;
        let key = match &key {
            LuaValue::String(text) => text.to_string_lossy(),
            LuaValue::Integer(number) => number.to_string(),
            LuaValue::Number(number) if number.fract() == 0.0 => (*number as i64).to_string(),
            other => {
                return Err(format!(
                    "cannot encode table key of type {}",
                    other.type_name()
                ));
            }
        };
        let before = original.and_then(|o| o.get(&key));
        fields.insert(key, to_json(&item, before, marker, depth + 1)?);
    }
    Ok(Value::Object(fields))
}
