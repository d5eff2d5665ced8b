//! One `metadata.managedFields` entry (manager, operation, apiVersion, time,
//! subresource, owned fields) and the list's JSON codec: decoding with typed errors,
//! writing in the API server's order, and the identities conflicts are sorted and
//! printed by.

use super::{FieldSet, ManagedFieldsError};
use serde_json::{Map, Value};

/// The kind of write a managedFields entry records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Operation {
    /// Server-side apply.
    Apply,
    /// Create, update or a non-apply patch.
    Update,
}

impl Operation {
    fn as_str(self) -> &'static str {
        match self {
            Operation::Apply => "Apply",
            Operation::Update => "Update",
        }
    }
}

/// One `metadata.managedFields` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManagedFieldsEntry {
    /// The field manager's name.
    pub manager: String,
    /// Apply or Update.
    pub operation: Operation,
    /// The apiVersion the fields are expressed in.
    pub api_version: String,
    /// When the manager last changed the object (RFC 3339, seconds).
    pub time: Option<String>,
    /// The subresource written, if any.
    pub subresource: Option<String>,
    /// The owned fields.
    pub fields: FieldSet,
}

impl ManagedFieldsEntry {
    /// Whether `other` records the same manager (apply entries ignore the apiVersion).
    pub(super) fn same_identity(&self, other: &ManagedFieldsEntry) -> bool {
        self.manager == other.manager
            && self.operation == other.operation
            && self.subresource == other.subresource
            && (self.operation == Operation::Apply || self.api_version == other.api_version)
    }

    /// The manager identifier the API server sorts conflicts by (the entry's JSON
    /// without time and fields).
    pub(super) fn identifier(&self) -> String {
        let mut m = Map::new();
        if !self.manager.is_empty() {
            m.insert("manager".into(), Value::String(self.manager.clone()));
        }
        m.insert(
            "operation".into(),
            Value::String(self.operation.as_str().into()),
        );
        if self.operation == Operation::Update && !self.api_version.is_empty() {
            m.insert("apiVersion".into(), Value::String(self.api_version.clone()));
        }
        if let Some(s) = self.subresource.as_ref().filter(|s| !s.is_empty()) {
            m.insert("subresource".into(), Value::String(s.clone()));
        }
        Value::Object(m).to_string()
    }

    /// The manager as conflict messages print it: `"m" using apps/v1`.
    pub(super) fn printed(&self) -> String {
        let mut s = Value::String(self.manager.clone()).to_string();
        if let Some(sub) = self.subresource.as_ref().filter(|s| !s.is_empty()) {
            s.push_str(&format!(" with subresource {}", Value::String(sub.clone())));
        }
        if self.operation == Operation::Update {
            s.push_str(&format!(" using {}", self.api_version));
        }
        s
    }

    fn to_json(&self) -> Value {
        let mut m = Map::new();
        m.insert("manager".into(), Value::String(self.manager.clone()));
        m.insert(
            "operation".into(),
            Value::String(self.operation.as_str().into()),
        );
        m.insert("apiVersion".into(), Value::String(self.api_version.clone()));
        if let Some(t) = &self.time {
            m.insert("time".into(), Value::String(t.clone()));
        }
        m.insert("fieldsType".into(), Value::String("FieldsV1".into()));
        m.insert("fieldsV1".into(), self.fields.to_fields_v1());
        if let Some(s) = self.subresource.as_ref().filter(|s| !s.is_empty()) {
            m.insert("subresource".into(), Value::String(s.clone()));
        }
        Value::Object(m)
    }
}

fn decode_entry(index: usize, v: &Value) -> Result<ManagedFieldsEntry, ManagedFieldsError> {
    let bad = |reason| ManagedFieldsError::DecodeEntry { index, reason };
    let Value::Object(m) = v else {
        return Err(bad("must be an object"));
    };
    let text = |key: &str| -> Result<Option<String>, ManagedFieldsError> {
        match m.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(bad("fields must be strings")),
        }
    };
    let operation = match text("operation")?.as_deref() {
        Some("Apply") => Operation::Apply,
        Some("Update") => Operation::Update,
        _ => return Err(bad("operation must be `Apply` or `Update`")),
    };
    if let Some(t) = text("fieldsType")?
        && t != "FieldsV1"
    {
        return Err(bad("fieldsType must be FieldsV1"));
    }
    let fields = match m.get("fieldsV1") {
        None | Some(Value::Null) => FieldSet::new(),
        Some(f) => FieldSet::from_fields_v1(f)
            .map_err(|source| ManagedFieldsError::DecodeFields { index, source })?,
    };
    Ok(ManagedFieldsEntry {
        manager: text("manager")?.unwrap_or_default(),
        operation,
        api_version: text("apiVersion")?.unwrap_or_default(),
        time: text("time")?,
        subresource: text("subresource")?.filter(|s| !s.is_empty()),
        fields,
    })
}

/// Reads `metadata.managedFields` (absent or null reads as no entries).
pub fn read_managed_fields(obj: &Value) -> Result<Vec<ManagedFieldsEntry>, ManagedFieldsError> {
    match obj.pointer("/metadata/managedFields") {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(i, e)| decode_entry(i, e))
            .collect(),
        Some(_) => Err(ManagedFieldsError::DecodeList),
    }
}

/// Writes `metadata.managedFields` in the API server's format and order (apply entries
/// first, then by time, manager, apiVersion, subresource); removes it when empty.
pub fn write_managed_fields(obj: &mut Value, entries: &[ManagedFieldsEntry]) {
    let Some(root) = obj.as_object_mut() else {
        return;
    };
    if entries.is_empty() {
        if let Some(Value::Object(meta)) = root.get_mut("metadata") {
            meta.shift_remove("managedFields");
        }
        return;
    }
    let mut sorted: Vec<&ManagedFieldsEntry> = entries.iter().collect();
    sorted.sort_by(|a, b| {
        a.operation
            .cmp(&b.operation)
            .then_with(|| time_seconds(&a.time).cmp(&time_seconds(&b.time)))
            .then_with(|| a.manager.cmp(&b.manager))
            .then_with(|| a.api_version.cmp(&b.api_version))
            .then_with(|| a.subresource.cmp(&b.subresource))
    });
    let list = Value::Array(sorted.iter().map(|e| e.to_json()).collect());
    let meta = root
        .entry("metadata")
        .or_insert_with(|| Value::Object(Map::new()));
    if !meta.is_object() {
        *meta = Value::Object(Map::new());
    }
    if let Value::Object(meta) = meta {
        meta.insert("managedFields".into(), list);
    }
}

pub(super) fn time_seconds(t: &Option<String>) -> i64 {
    t.as_deref()
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        .map_or(0, |t| t.timestamp())
}

/// `now` as RFC 3339 with second precision in UTC, as managedFields record it.
pub(super) fn normalize_time(now: &str) -> String {
    chrono::DateTime::parse_from_rfc3339(now)
        .map(|t| {
            t.with_timezone(&chrono::Utc)
                .format("%Y-%m-%dT%H:%M:%SZ")
                .to_string()
        })
        .unwrap_or_else(|_| now.to_owned())
}
