//! The safe `os` library offered to scripts: only `os.time` and `os.date`, implemented
//! in Rust (thread-safe, unlike the C library's `localtime`).

use chrono::format::{Item, StrftimeItems};
use chrono::{DateTime, Datelike, Local, LocalResult, NaiveDate, TimeZone, Timelike, Utc};
use mlua::{Lua, Table, Value as LuaValue};

/// A table holding `time` and `date`.
pub(crate) fn create(lua: &Lua) -> mlua::Result<Table> {
    let os = lua.create_table()?;
    os.set("time", lua.create_function(os_time)?)?;
    os.set("date", lua.create_function(os_date)?)?;
    Ok(os)
}

/// `os.time([table])`: seconds since the epoch, now or for a local date table.
fn os_time(_: &Lua, fields: Option<Table>) -> mlua::Result<Option<i64>> {
    let Some(fields) = fields else {
        return Ok(Some(Utc::now().timestamp()));
    };
    let required = |name: &str| -> mlua::Result<i64> {
        fields
            .get::<Option<i64>>(name)?
            .ok_or_else(|| mlua::Error::runtime(format!("field '{name}' missing in date table")))
    };
    let optional = |name: &str, default: i64| -> mlua::Result<i64> {
        Ok(fields.get::<Option<i64>>(name)?.unwrap_or(default))
    };
    let months = required("year")? * 12 + required("month")? - 1;
    let (Ok(year), Ok(month)) = (
        i32::try_from(months.div_euclid(12)),
        u32::try_from(months.rem_euclid(12) + 1),
    ) else {
        return Ok(None);
    };
    let Some(first) = NaiveDate::from_ymd_opt(year, month, 1).and_then(|d| d.and_hms_opt(0, 0, 0))
    else {
        return Ok(None);
    };
    let seconds = (required("day")? - 1) * 86_400
        + optional("hour", 12)? * 3_600
        + optional("min", 0)? * 60
        + optional("sec", 0)?;
    let Some(naive) = first.checked_add_signed(chrono::Duration::seconds(seconds)) else {
        return Ok(None);
    };
    Ok(match Local.from_local_datetime(&naive) {
        LocalResult::Single(time) | LocalResult::Ambiguous(time, _) => Some(time.timestamp()),
        LocalResult::None => None,
    })
}

/// `os.date([format [, time]])`: `!` prefix for UTC, `*t` for a table, else strftime.
fn os_date(lua: &Lua, (format, time): (Option<String>, Option<i64>)) -> mlua::Result<LuaValue> {
    let format = format.unwrap_or_else(|| "%c".to_owned());
    let (utc, format) = match format.strip_prefix('!') {
        Some(rest) => (true, rest),
        None => (false, format.as_str()),
    };
    let instant = match time {
        Some(seconds) => DateTime::from_timestamp(seconds, 0)
            .ok_or_else(|| mlua::Error::runtime("time out of range"))?,
        None => Utc::now(),
    };
    if utc {
        render(lua, format, instant)
    } else {
        render(lua, format, instant.with_timezone(&Local))
    }
}

/// Renders one instant as a date table or a formatted string.
fn render<Tz: TimeZone>(lua: &Lua, format: &str, time: DateTime<Tz>) -> mlua::Result<LuaValue>
where
    Tz::Offset: std::fmt::Display,
{
    if format.starts_with("*t") {
        let table = lua.create_table()?;
        table.set("year", time.year())?;
        table.set("month", time.month())?;
        table.set("day", time.day())?;
        table.set("hour", time.hour())?;
        table.set("min", time.minute())?;
        table.set("sec", time.second())?;
        table.set("wday", time.weekday().number_from_sunday())?;
        table.set("yday", time.ordinal())?;
        table.set("isdst", false)?;
        return Ok(LuaValue::Table(table));
    }
    let items: Vec<Item<'_>> = StrftimeItems::new(format).collect();
    if items.iter().any(|item| matches!(item, Item::Error)) {
        return Err(mlua::Error::runtime(format!(
            "invalid conversion in date format {format:?}"
        )));
    }
    let text = time.format_with_items(items.into_iter()).to_string();
    Ok(LuaValue::String(lua.create_string(&text)?))
}
