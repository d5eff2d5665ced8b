//! Server-side apply and `metadata.managedFields` tracking, as kube-apiserver v1.20 does
//! it (structured-merge-diff v4 and the apiserver field manager): the field set of an
//! object, merging an applied configuration into the live object, pruning fields the
//! applier stopped setting, ownership conflicts, and the bookkeeping of non-apply writes.
//!
//! Pure functions over JSON values; the schema knowledge (list kinds, free maps) comes
//! from [`crate::schema::Schema`]. Field sets and their `fieldsV1` encoding live in
//! [`field_set`]; the schema-typed walks (field set of an object, merge, compare, item
//! removal) in `walk`; entries and their JSON codec in `entry`; the client-side apply
//! annotation interplay in `last_applied`.
//!
//! Status: [`fields_of`] excludes `status`; [`fields_for`] with subresource `status`
//! counts only `status`. On the main resource of a type with a status subresource the
//! caller strips `status` from the configuration before calling [`apply`].

mod entry;
pub mod field_set;
mod last_applied;
mod walk;

pub use entry::{ManagedFieldsEntry, Operation, read_managed_fields, write_managed_fields};
pub use field_set::{FieldSet, FieldSetError, PathElement, path_to_string};
pub use walk::{Comparison, compare, merge};

use crate::api_error::ApiError;
use crate::schema::Schema;
use entry::{normalize_time, time_seconds};
use last_applied::{last_applied_fields, sync_last_applied};
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use walk::{raw_field_set, remove_items};

/// The manager that owns the fields of an object that had no managedFields when it was
/// first applied to.
pub const BEFORE_FIRST_APPLY: &str = "before-first-apply";
/// The manager that absorbs the oldest update entries beyond [`MAX_UPDATE_MANAGERS`].
pub const ANCIENT_CHANGES: &str = "ancient-changes";
/// How many `Update` entries an object keeps before the oldest are merged.
pub const MAX_UPDATE_MANAGERS: usize = 10;
/// The annotation client-side `kubectl apply` records its configuration in.
pub const LAST_APPLIED_ANNOTATION: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// Paths never tracked in managed fields (the API server's strip list).
const STRIPPED: &[&[&str]] = &[
    &["apiVersion"],
    &["kind"],
    &["metadata"],
    &["metadata", "name"],
    &["metadata", "namespace"],
    &["metadata", "creationTimestamp"],
    &["metadata", "selfLink"],
    &["metadata", "uid"],
    &["metadata", "clusterName"],
    &["metadata", "generation"],
    &["metadata", "managedFields"],
    &["metadata", "resourceVersion"],
    &["metadata", "deletionTimestamp"],
    &["metadata", "deletionGracePeriodSeconds"],
];

/// Errors reading or recording managed fields.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ManagedFieldsError {
    /// `metadata.managedFields` is not a list.
    #[error("managedFields must be a list")]
    DecodeList,
    /// An entry is malformed.
    #[error("managedFields entry {index}: {reason}")]
    DecodeEntry {
        /// Position of the entry.
        index: usize,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// An entry's `fieldsV1` does not decode.
    #[error("managedFields entry {index}: invalid fieldsV1")]
    DecodeFields {
        /// Position of the entry.
        index: usize,
        /// The decoding failure.
        #[source]
        source: FieldSetError,
    },
    /// The written object is not a JSON object.
    #[error("object must be a JSON object")]
    RecordObject,
}

/// A failed server-side apply.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApplyError {
    /// Fields the configuration changes are owned by other managers.
    #[error("{message}")]
    Conflict {
        /// The API server's message, e.g. `Apply failed with 1 conflict: …`.
        message: String,
        /// One cause per conflicting field.
        causes: Vec<ConflictCause>,
    },
    /// The configuration is not a valid apply request.
    #[error("{0}")]
    ValidateConfig(String),
    /// The configuration does not fit the schema (e.g. a list item lacks a key field).
    #[error("failed to create typed patch object: {0}")]
    TypeConfig(String),
    /// The live object's managedFields do not decode.
    #[error("failed to decode managed fields: {0}")]
    DecodeManagedFields(#[from] ManagedFieldsError),
}

/// One conflicting field of an apply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConflictCause {
    /// `conflict with "manager" using apps/v1`.
    pub message: String,
    /// The field, e.g. `.spec.replicas`.
    pub field: String,
}

impl From<ApplyError> for ApiError {
    fn from(e: ApplyError) -> Self {
        match e {
            ApplyError::Conflict { message, causes } => {
                let causes: Vec<Value> = causes
                    .iter()
                    .map(|c| json!({"reason": "FieldManagerConflict", "message": c.message, "field": c.field}))
                    .collect();
                ApiError::apply_conflict(message, Value::Array(causes))
            }
            ApplyError::ValidateConfig(m) => ApiError::bad_request(m),
            other => ApiError::internal(other.to_string()),
        }
    }
}

fn stripped_set() -> FieldSet {
    let mut s = FieldSet::new();
    for path in STRIPPED {
        let p: Vec<PathElement> = path
            .iter()
            .map(|f| PathElement::Field((*f).to_owned()))
            .collect();
        s.insert(&p);
    }
    s
}

fn status_set() -> FieldSet {
    let mut s = FieldSet::new();
    s.insert(&[PathElement::Field("status".into())]);
    s
}

/// Restricts a raw field set to what a manager of `subresource` owns: without the
/// stripped metadata; without `status`, or only `status` for the status subresource.
fn owned_part(set: &FieldSet, subresource: Option<&str>) -> FieldSet {
    let set = set.difference(&stripped_set());
    if subresource == Some("status") {
        let status = PathElement::Field("status".into());
        let mut only = FieldSet::new();
        for path in set.path_elements() {
            if path.first() == Some(&status) {
                only.insert(&path);
            }
        }
        only
    } else {
        set.recursive_difference(&status_set())
    }
}

/// The set of fields an object sets (structured-merge-diff `ToFieldSet`): scalars,
/// nulls and atomic lists/maps are leaves; list items and free-map keys are members;
/// empty structs and maps are not tracked; identity metadata and `status` are left out.
pub fn fields_of(obj: &Value, schema: Schema<'_>) -> FieldSet {
    fields_for(obj, schema, None)
}

/// Like [`fields_of`], for a write to `subresource` (`status` counts only `status`).
pub fn fields_for(obj: &Value, schema: Schema<'_>, subresource: Option<&str>) -> FieldSet {
    owned_part(&raw_field_set(obj, schema).0, subresource)
}

// ---------------------------------------------------------------------------------------
// Apply.

/// A server-side apply request.
#[derive(Debug, Clone, Copy)]
pub struct ApplyRequest<'a> {
    /// The current object including managedFields, None on create.
    pub live: Option<&'a Value>,
    /// The applied configuration.
    pub config: &'a Value,
    /// The field manager.
    pub manager: &'a str,
    /// Whether to take over conflicting fields.
    pub force: bool,
    /// The object's schema.
    pub schema: Schema<'a>,
    /// The apiVersion of the request.
    pub api_version: &'a str,
    /// The subresource applied to, if any.
    pub subresource: Option<&'a str>,
    /// The current time (RFC 3339).
    pub now: &'a str,
}

fn without_managed_fields(obj: &Value) -> Value {
    let mut obj = obj.clone();
    if let Some(Value::Object(meta)) = obj.get_mut("metadata") {
        meta.shift_remove("managedFields");
    }
    obj
}

fn validate_config(req: &ApplyRequest<'_>) -> Result<(), ApplyError> {
    let invalid = |m: &str| Err(ApplyError::ValidateConfig(m.to_owned()));
    let Some(config) = req.config.as_object() else {
        return invalid("the applied configuration must be an object");
    };
    if config
        .get("apiVersion")
        .and_then(Value::as_str)
        .is_none_or(str::is_empty)
    {
        return invalid("apiVersion must be set in the applied configuration");
    }
    if config
        .get("kind")
        .and_then(Value::as_str)
        .is_none_or(str::is_empty)
    {
        return invalid("kind must be set in the applied configuration");
    }
    if req
        .config
        .pointer("/metadata/managedFields")
        .is_some_and(|m| !m.is_null())
    {
        return invalid("metadata.managedFields must be nil");
    }
    let Some(name) = req
        .config
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty())
    else {
        return invalid("metadata.name must be set in the applied configuration");
    };
    if let Some(live) = req.live {
        if let Some(live_name) = live.pointer("/metadata/name").and_then(Value::as_str)
            && live_name != name
        {
            return invalid(&format!(
                "the name of the object ({name}) does not match the name on the URL ({live_name})"
            ));
        }
        let ns = |v: &Value| {
            v.pointer("/metadata/namespace")
                .and_then(Value::as_str)
                .map(str::to_owned)
        };
        if let (Some(a), Some(b)) = (ns(req.config), ns(live))
            && a != b
        {
            return invalid(
                "the namespace of the provided object does not match the namespace sent on the request",
            );
        }
    }
    Ok(())
}

/// Server-side apply: the merged object with updated managedFields, or a conflict.
pub fn apply(req: &ApplyRequest<'_>) -> Result<Value, ApplyError> {
    validate_config(req)?;
    let now = normalize_time(req.now);
    let live = req.live.map_or_else(|| json!({}), without_managed_fields);
    let mut entries = live_entries(req, &live, &now)?;
    let config_raw = config_fields(req)?;
    let me = ManagedFieldsEntry {
        manager: req.manager.to_owned(),
        operation: Operation::Apply,
        api_version: req.api_version.to_owned(),
        time: None,
        subresource: req.subresource.map(str::to_owned),
        fields: FieldSet::new(),
    };
    let previous = entries
        .iter()
        .position(|e| e.same_identity(&me))
        .map(|i| entries.remove(i));
    let last_set = previous
        .as_ref()
        .map(|e| e.fields.clone())
        .unwrap_or_default();
    let merged = merge(&live, req.config, req.schema);
    let owned_by_all = entries
        .iter()
        .fold(config_raw.clone(), |acc, e| acc.union(&e.fields));
    let result = prune(&merged, &owned_by_all, &last_set, req.schema);
    let cmp = compare(&live, &result, req.schema);
    let changed = cmp.added.union(&cmp.modified);
    if !req.force {
        check_conflicts(req, &entries, &changed)?;
    }
    for e in &mut entries {
        e.fields = e.fields.difference(&changed).difference(&cmp.removed);
    }
    // kube-apiserver v1.20 keeps the time only when neither the object nor the
    // applier's set changed.
    let fields = owned_part(&config_raw, req.subresource);
    let time = match previous {
        Some(p) if cmp.is_same() && p.fields == fields => p.time,
        _ => Some(now),
    };
    entries.push(ManagedFieldsEntry { time, fields, ..me });
    entries.retain(|e| !e.fields.is_empty());
    let entries = cap_update_managers(entries);
    let mut out = result;
    if req.manager == "kubectl" {
        sync_last_applied(&mut out, req.config);
    }
    write_managed_fields(&mut out, &entries);
    Ok(out)
}

/// The live object's entries; an object that had none gets one for
/// [`BEFORE_FIRST_APPLY`] owning everything it sets (`live` is stripped of managedFields).
fn live_entries(
    req: &ApplyRequest<'_>,
    live: &Value,
    now: &str,
) -> Result<Vec<ManagedFieldsEntry>, ApplyError> {
    let Some(l) = req.live else {
        return Ok(Vec::new());
    };
    let entries = read_managed_fields(l)?;
    if !entries.is_empty() {
        return Ok(entries);
    }
    let writer = Writer {
        manager: BEFORE_FIRST_APPLY,
        schema: req.schema,
        api_version: req.api_version,
        subresource: None,
        now,
    };
    Ok(record_changes(
        Vec::new(),
        &zero_object(req.schema),
        live,
        &writer,
    ))
}

/// Every field the applied configuration sets, or the typing errors of its list items.
fn config_fields(req: &ApplyRequest<'_>) -> Result<FieldSet, ApplyError> {
    let (config_raw, errors) = raw_field_set(req.config, req.schema);
    if errors.is_empty() {
        return Ok(config_raw);
    }
    let message = match errors.as_slice() {
        [one] => one.clone(),
        _ => format!("errors:\n  {}", errors.join("\n  ")),
    };
    Err(ApplyError::TypeConfig(message))
}

/// Fails when other managers own fields the apply changes; `kubectl` may take over
/// what the object's client-side apply annotation lists.
fn check_conflicts(
    req: &ApplyRequest<'_>,
    entries: &[ManagedFieldsEntry],
    changed: &FieldSet,
) -> Result<(), ApplyError> {
    let conflicts: Vec<(&ManagedFieldsEntry, FieldSet)> = entries
        .iter()
        .map(|e| (e, e.fields.intersection(changed)))
        .filter(|(_, c)| !c.is_empty())
        .collect();
    if conflicts.is_empty() {
        return Ok(());
    }
    let allowed = (req.manager == "kubectl")
        .then(|| last_applied_fields(req.live, req.schema))
        .flatten();
    let remaining: Vec<(&ManagedFieldsEntry, FieldSet)> = match &allowed {
        Some(allowed) => conflicts
            .iter()
            .map(|(e, c)| (*e, c.difference(allowed)))
            .filter(|(_, c)| !c.is_empty())
            .collect(),
        None => conflicts,
    };
    if remaining.is_empty() {
        Ok(())
    } else {
        Err(conflict_error(&remaining))
    }
}

/// Removes what the applier set last time, no longer sets and nobody else owns
/// (structured-merge-diff's prune: remove, add back owned items, add back dangling ones).
fn prune(
    merged: &Value,
    owned_by_all: &FieldSet,
    last_set: &FieldSet,
    schema: Schema<'_>,
) -> Value {
    if last_set.is_empty() {
        return merged.clone();
    }
    let pruned = remove_items(merged, last_set, schema);
    let merged_set = raw_field_set(merged, schema).0;
    let pruned_set = raw_field_set(&pruned, schema).0;
    let unowned = merged_set.difference(&pruned_set.union(owned_by_all));
    let pruned = remove_items(merged, &unowned, schema);
    let pruned_set = raw_field_set(&pruned, schema).0;
    remove_items(
        merged,
        &merged_set.difference(&pruned_set).intersection(last_set),
        schema,
    )
}

fn conflict_error(conflicts: &[(&ManagedFieldsEntry, FieldSet)]) -> ApplyError {
    let mut sorted: Vec<&(&ManagedFieldsEntry, FieldSet)> = conflicts.iter().collect();
    sorted.sort_by_key(|(e, _)| e.identifier());
    let mut causes = Vec::new();
    let mut lines = Vec::new();
    for (entry, set) in sorted {
        let printed = entry.printed();
        lines.push(format!("conflicts with {printed}:"));
        for path in set.paths() {
            lines.push(format!("- {path}"));
            causes.push(ConflictCause {
                message: format!("conflict with {printed}"),
                field: path,
            });
        }
    }
    let message = match causes.as_slice() {
        [one] => format!(
            "Apply failed with 1 conflict: {}: {}",
            one.message, one.field
        ),
        _ => format!(
            "Apply failed with {} conflicts: {}",
            causes.len(),
            lines.join("\n")
        ),
    };
    ApplyError::Conflict { message, causes }
}

// ---------------------------------------------------------------------------------------
// Updates.

/// Who records a non-apply write.
struct Writer<'a> {
    manager: &'a str,
    schema: Schema<'a>,
    api_version: &'a str,
    subresource: Option<&'a str>,
    now: &'a str,
}

/// Records a non-apply write (create, update, patch) made by `manager`: it takes the
/// fields it added or changed (compared with `old`, None on create), other managers
/// lose them, removed fields leave every set, empty entries are dropped. The
/// managedFields of `new` are used when the client sent some (`[{}]` resets them),
/// otherwise those of `old`.
pub fn record_update(
    old: Option<&Value>,
    new: &mut Value,
    manager: &str,
    schema: Schema<'_>,
    api_version: &str,
    subresource: Option<&str>,
    now: &str,
) -> Result<(), ManagedFieldsError> {
    if !new.is_object() {
        return Err(ManagedFieldsError::RecordObject);
    }
    let entries = match new.pointer("/metadata/managedFields") {
        Some(Value::Array(items))
            if items.len() == 1 && items[0].as_object().is_some_and(Map::is_empty) =>
        {
            Vec::new()
        }
        Some(Value::Array(items)) if !items.is_empty() => match read_managed_fields(new) {
            Ok(entries) => entries,
            Err(_) => old
                .map(read_managed_fields)
                .transpose()?
                .unwrap_or_default(),
        },
        _ => old
            .map(read_managed_fields)
            .transpose()?
            .unwrap_or_default(),
    };
    let old_obj = old.map_or_else(|| zero_object(schema), without_managed_fields);
    let new_obj = without_managed_fields(new);
    let now = normalize_time(now);
    let writer = Writer {
        manager,
        schema,
        api_version,
        subresource,
        now: &now,
    };
    let entries = cap_update_managers(record_changes(entries, &old_obj, &new_obj, &writer));
    write_managed_fields(new, &entries);
    Ok(())
}

/// The entries after `writer` changed `old` into `new`.
fn record_changes(
    mut entries: Vec<ManagedFieldsEntry>,
    old: &Value,
    new: &Value,
    writer: &Writer<'_>,
) -> Vec<ManagedFieldsEntry> {
    let cmp = compare(old, new, writer.schema);
    let changed = cmp.added.union(&cmp.modified);
    for e in &mut entries {
        e.fields = e.fields.difference(&changed).difference(&cmp.removed);
    }
    let mine = owned_part(&changed.difference(&cmp.removed), writer.subresource);
    if !mine.is_empty() {
        let me = ManagedFieldsEntry {
            manager: writer.manager.to_owned(),
            operation: Operation::Update,
            api_version: writer.api_version.to_owned(),
            time: Some(writer.now.to_owned()),
            subresource: writer.subresource.map(str::to_owned),
            fields: mine,
        };
        match entries.iter_mut().find(|e| e.same_identity(&me)) {
            Some(existing) => {
                existing.fields = existing.fields.union(&me.fields);
                existing.time = me.time;
            }
            None => entries.push(me),
        }
    }
    entries.retain(|e| !e.fields.is_empty());
    entries
}

/// Merges the oldest `Update` entries into `ancient-changes` (one per apiVersion) until
/// at most [`MAX_UPDATE_MANAGERS`] remain.
fn cap_update_managers(entries: Vec<ManagedFieldsEntry>) -> Vec<ManagedFieldsEntry> {
    let updaters = entries
        .iter()
        .filter(|e| e.operation == Operation::Update)
        .count();
    if updaters <= MAX_UPDATE_MANAGERS {
        return entries;
    }
    let (mut kept, mut updates): (Vec<_>, Vec<_>) = entries
        .into_iter()
        .partition(|e| e.operation == Operation::Apply);
    updates.sort_by(|a, b| {
        time_seconds(&a.time)
            .cmp(&time_seconds(&b.time))
            .then_with(|| a.identifier().cmp(&b.identifier()))
    });
    let mut remaining = updates.len();
    let mut first_of_version: BTreeMap<String, usize> = BTreeMap::new();
    let mut merged: Vec<Option<ManagedFieldsEntry>> = updates.into_iter().map(Some).collect();
    for i in 0..merged.len() {
        if remaining <= MAX_UPDATE_MANAGERS {
            break;
        }
        let Some(version) = merged[i].as_ref().map(|e| e.api_version.clone()) else {
            continue;
        };
        let Some(&first) = first_of_version.get(&version) else {
            first_of_version.insert(version, i);
            continue;
        };
        let Some(current) = merged[i].take() else {
            continue;
        };
        if let Some(bucket) = merged[first].as_mut() {
            bucket.manager = ANCIENT_CHANGES.to_owned();
            bucket.subresource = None;
            bucket.fields = current.fields.union(&bucket.fields);
            bucket.time = current.time;
        }
        remaining -= 1;
    }
    kept.extend(merged.into_iter().flatten());
    kept
}

/// The zero-valued object a create is compared with: the structs a typed built-in
/// object always has, so that creating them is not recorded as adding them.
fn zero_object(schema: Schema<'_>) -> Value {
    let Schema::Builtin { group, kind } = schema else {
        return json!({});
    };
    let meta = json!({"creationTimestamp": null});
    let template = json!({"metadata": meta, "spec": {"containers": null}});
    let spec = match (group, kind) {
        ("apps", "Deployment") => json!({"selector": null, "template": template, "strategy": {}}),
        ("apps", "StatefulSet" | "DaemonSet") => {
            json!({"selector": null, "template": template, "updateStrategy": {}})
        }
        ("apps", "ReplicaSet") => json!({"selector": null, "template": template}),
        ("batch", "Job") => json!({"template": template}),
        ("batch", "CronJob") => {
            json!({"jobTemplate": {"metadata": meta, "spec": {"template": template}}})
        }
        ("", "Pod") => json!({"containers": null}),
        ("", "PodTemplate") => return json!({"metadata": meta, "template": template}),
        ("rbac.authorization.k8s.io", "Role" | "ClusterRole") => {
            return json!({"metadata": meta, "rules": null});
        }
        ("rbac.authorization.k8s.io", "RoleBinding" | "ClusterRoleBinding") => {
            return json!({"metadata": meta, "roleRef": {}});
        }
        _ => json!({}),
    };
    json!({"metadata": meta, "spec": spec, "status": {}})
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::last_applied::go_json;
    use super::*;
    use proptest::prelude::*;

    const DEPLOY: Schema<'static> = Schema::Builtin {
        group: "apps",
        kind: "Deployment",
    };
    const CM: Schema<'static> = Schema::Builtin {
        group: "",
        kind: "ConfigMap",
    };
    const T0: &str = "2024-01-01T00:00:00Z";
    const T1: &str = "2024-01-01T00:01:00Z";
    const T2: &str = "2024-01-01T00:02:00Z";

    fn deployment() -> Value {
        json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "default", "labels": {"app": "web"}},
            "spec": {
                "replicas": 2,
                "strategy": {},
                "template": {
                    "metadata": {"labels": {"app": "web"}},
                    "spec": {
                        "containers": [{
                            "name": "nginx", "image": "nginx:1.19", "resources": {},
                            "env": [{"name": "A", "value": "1"}],
                            "ports": [{"containerPort": 80}, {"containerPort": 53, "protocol": "UDP"}]
                        }],
                        "nodeSelector": {},
                        "securityContext": {}
                    }
                }
            }
        })
    }

    fn apply_as(
        live: Option<&Value>,
        config: &Value,
        manager: &str,
        force: bool,
        schema: Schema<'_>,
        now: &str,
    ) -> Result<Value, ApplyError> {
        let api_version = config["apiVersion"].as_str().unwrap().to_owned();
        apply(&ApplyRequest {
            live,
            config,
            manager,
            force,
            schema,
            api_version: &api_version,
            subresource: None,
            now,
        })
    }

    fn entry<'v>(obj: &'v Value, manager: &str) -> &'v Value {
        obj["metadata"]["managedFields"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["manager"] == manager)
            .unwrap()
    }

    fn managers(obj: &Value) -> Vec<String> {
        read_managed_fields(obj)
            .unwrap()
            .iter()
            .map(|e| e.manager.clone())
            .collect()
    }

    /// managedFields of a Deployment created by `kubectl create` on kube-apiserver v1.20.
    fn real_update_entry() -> Value {
        json!([{"manager": "kubectl-create", "operation": "Update", "apiVersion": "apps/v1", "time": "2024-01-01T00:00:00Z",
          "fieldsType": "FieldsV1", "fieldsV1": {"f:metadata": {"f:labels": {".": {}, "f:app": {}}},
          "f:spec": {"f:progressDeadlineSeconds": {}, "f:replicas": {}, "f:revisionHistoryLimit": {}, "f:selector": {},
            "f:strategy": {"f:rollingUpdate": {".": {}, "f:maxSurge": {}, "f:maxUnavailable": {}}, "f:type": {}},
            "f:template": {"f:metadata": {"f:labels": {".": {}, "f:app": {}}}, "f:spec": {"f:containers": {
              "k:{\"name\":\"nginx\"}": {".": {}, "f:env": {".": {}, "k:{\"name\":\"A\"}": {".": {}, "f:name": {}, "f:value": {}}},
                "f:image": {}, "f:imagePullPolicy": {}, "f:name": {},
                "f:ports": {".": {}, "k:{\"containerPort\":53,\"protocol\":\"UDP\"}": {".": {}, "f:containerPort": {}, "f:protocol": {}},
                  "k:{\"containerPort\":80,\"protocol\":\"TCP\"}": {".": {}, "f:containerPort": {}, "f:protocol": {}}},
                "f:resources": {}, "f:terminationMessagePath": {}, "f:terminationMessagePolicy": {}}},
              "f:dnsPolicy": {}, "f:restartPolicy": {}, "f:schedulerName": {}, "f:securityContext": {}, "f:terminationGracePeriodSeconds": {}}}}}}])
    }

    #[test]
    fn managed_fields_round_trip_byte_for_byte() {
        let mut obj = json!({"metadata": {"name": "web", "managedFields": real_update_entry()}});
        let entries = read_managed_fields(&obj).unwrap();
        assert_eq!(entries.len(), 1);
        assert_eq!(entries[0].operation, Operation::Update);
        assert!(entries[0].fields.paths().contains(&".spec.template.spec.containers[name=\"nginx\"].ports[containerPort=80,protocol=\"TCP\"].protocol".to_owned()));
        let before = serde_json::to_string(&obj).unwrap();
        write_managed_fields(&mut obj, &entries);
        assert_eq!(serde_json::to_string(&obj).unwrap(), before);
        write_managed_fields(&mut obj, &[]);
        assert_eq!(obj, json!({"metadata": {"name": "web"}}));
    }

    #[test]
    fn bad_managed_fields_are_rejected() {
        let bad_op = json!({"metadata": {"managedFields": [{"manager": "m", "operation": "Patch", "fieldsType": "FieldsV1", "fieldsV1": {}}]}});
        assert!(matches!(
            read_managed_fields(&bad_op),
            Err(ManagedFieldsError::DecodeEntry { index: 0, .. })
        ));
        let bad_fields = json!({"metadata": {"managedFields": [{"manager": "m", "operation": "Apply", "fieldsV1": {"q:x": {}}}]}});
        assert!(matches!(
            read_managed_fields(&bad_fields),
            Err(ManagedFieldsError::DecodeFields { .. })
        ));
        assert_eq!(
            read_managed_fields(&json!({"metadata": {"managedFields": 3}})),
            Err(ManagedFieldsError::DecodeList)
        );
    }

    #[test]
    fn fields_of_deployment_matches_the_real_server() {
        // What kube-apiserver v1.20 records for `kubectl apply --server-side` of this
        // configuration; `spec.selector` (a LabelSelector) is atomic.
        let mut config = deployment();
        config["spec"]["selector"] = json!({"matchLabels": {"app": "web"}});
        let set = fields_of(&config, DEPLOY);
        let mut expected = json!({"f:metadata": {"f:labels": {"f:app": {}}}, "f:spec": {"f:replicas": {},
            "f:selector": {},
            "f:template": {"f:metadata": {"f:labels": {"f:app": {}}}, "f:spec": {"f:containers": {"k:{\"name\":\"nginx\"}": {".": {},
            "f:env": {"k:{\"name\":\"A\"}": {".": {}, "f:name": {}, "f:value": {}}}, "f:image": {}, "f:name": {},
            "f:ports": {"k:{\"containerPort\":53,\"protocol\":\"UDP\"}": {".": {}, "f:containerPort": {}, "f:protocol": {}},
                "k:{\"containerPort\":80,\"protocol\":\"TCP\"}": {".": {}, "f:containerPort": {}}}}}}}}});
        assert_eq!(set.to_fields_v1(), expected);
        assert_eq!(
            serde_json::to_string(&set.to_fields_v1()).unwrap(),
            serde_json::to_string(&expected).unwrap()
        );
        // Nulls and atomic empty lists are owned; empty keyed lists and maps are not.
        config["spec"]["minReadySeconds"] = Value::Null;
        config["spec"]["template"]["spec"]["containers"][0]["args"] = json!([]);
        config["spec"]["template"]["spec"]["volumes"] = json!([]);
        config["spec"]["template"]["spec"]["nodeSelector"] = Value::Null;
        config["status"] = json!({"replicas": 1});
        expected["f:spec"]["f:minReadySeconds"] = json!({});
        expected["f:spec"]["f:template"]["f:spec"]["f:containers"]["k:{\"name\":\"nginx\"}"]["f:args"] =
            json!({});
        assert_eq!(
            FieldSet::from_fields_v1(&fields_of(&config, DEPLOY).to_fields_v1()).unwrap(),
            FieldSet::from_fields_v1(&expected).unwrap()
        );
        let status = fields_for(&config, DEPLOY, Some("status"));
        assert_eq!(status.paths(), vec![".status.replicas"]);
    }

    #[test]
    fn fields_of_service() {
        let svc = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s", "namespace": "d", "labels": {"app": "web"}},
            "spec": {"type": "ClusterIP", "selector": {"app": "web"},
                "ports": [{"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP"}]}});
        let set = fields_of(
            &svc,
            Schema::Builtin {
                group: "",
                kind: "Service",
            },
        );
        assert_eq!(
            set.to_fields_v1(),
            json!({"f:metadata": {"f:labels": {"f:app": {}}}, "f:spec": {
            "f:ports": {"k:{\"port\":80,\"protocol\":\"TCP\"}": {".": {}, "f:name": {}, "f:port": {}, "f:protocol": {}, "f:targetPort": {}}},
            "f:selector": {"f:app": {}}, "f:type": {}}})
        );
    }

    #[test]
    fn service_port_without_protocol_is_a_typed_error_like_v1_20() {
        let svc = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"}, "spec": {"ports": [{"port": 80}]}});
        let err = apply_as(
            None,
            &svc,
            "m",
            false,
            Schema::Builtin {
                group: "",
                kind: "Service",
            },
            T0,
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "failed to create typed patch object: .spec.ports: element 0: associative list with keys has an element that omits key field \"protocol\" (and doesn't have default value)"
        );
        assert_eq!(ApiError::from(err).code, 500);
    }

    #[test]
    fn apply_creates_with_an_apply_entry() {
        let out = apply_as(
            None,
            &deployment(),
            "kubectl",
            false,
            DEPLOY,
            "2024-01-01T01:02:03.456+01:00",
        )
        .unwrap();
        assert_eq!(out["spec"]["replicas"], 2);
        let mf = &out["metadata"]["managedFields"];
        assert_eq!(mf.as_array().unwrap().len(), 1);
        let keys: Vec<&String> = mf[0].as_object().unwrap().keys().collect();
        assert_eq!(
            keys,
            vec![
                "manager",
                "operation",
                "apiVersion",
                "time",
                "fieldsType",
                "fieldsV1"
            ]
        );
        assert_eq!(mf[0]["time"], "2024-01-01T00:02:03Z");
        assert_eq!(mf[0]["operation"], "Apply");
        assert_eq!(
            mf[0]["fieldsV1"],
            fields_of(&deployment(), DEPLOY).to_fields_v1()
        );
    }

    #[test]
    fn reapply_without_a_field_removes_it() {
        let live = apply_as(None, &deployment(), "m", false, DEPLOY, T0).unwrap();
        let mut config = deployment();
        config["spec"]["template"]["spec"]["containers"][0]
            .as_object_mut()
            .unwrap()
            .remove("env");
        config["spec"]["template"]["spec"]["containers"][0]["ports"]
            .as_array_mut()
            .unwrap()
            .remove(1);
        config["metadata"].as_object_mut().unwrap().remove("labels");
        let out = apply_as(Some(&live), &config, "m", false, DEPLOY, T1).unwrap();
        let c = &out["spec"]["template"]["spec"]["containers"][0];
        assert!(c.get("env").is_none());
        assert_eq!(c["ports"], json!([{"containerPort": 80}]));
        assert!(out["metadata"].get("labels").is_none());
        assert_eq!(entry(&out, "m")["time"], T1);
        assert_eq!(
            entry(&out, "m")["fieldsV1"],
            fields_of(&config, DEPLOY).to_fields_v1()
        );
    }

    #[test]
    fn removed_field_owned_by_another_manager_stays() {
        let a1 = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "labels": {"a": "1", "b": "2"}}, "data": {"x": "1", "y": "2"}});
        let b = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "labels": {"b": "2"}}});
        let a2 = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "labels": {"a": "1"}}, "data": {"x": "1"}});
        let live = apply_as(None, &a1, "A", false, CM, T0).unwrap();
        let live = apply_as(Some(&live), &b, "B", false, CM, T1).unwrap();
        assert_eq!(entry(&live, "B")["time"], T1, "a new entry gets a time");
        let out = apply_as(Some(&live), &a2, "A", false, CM, T2).unwrap();
        assert_eq!(out["metadata"]["labels"], json!({"a": "1", "b": "2"}));
        assert_eq!(out["data"], json!({"x": "1"}));
        assert_eq!(
            entry(&out, "A")["fieldsV1"],
            json!({"f:data": {"f:x": {}}, "f:metadata": {"f:labels": {"f:a": {}}}})
        );
        assert_eq!(
            entry(&out, "B")["fieldsV1"],
            json!({"f:metadata": {"f:labels": {"f:b": {}}}})
        );
    }

    #[test]
    fn labels_removal_and_last_label() {
        let one = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "labels": {"a": "1"}}, "data": {"k": "v"}});
        let none = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"k": "v"}});
        let live = apply_as(None, &one, "A", false, CM, T0).unwrap();
        let out = apply_as(Some(&live), &none, "A", false, CM, T1).unwrap();
        assert!(out["metadata"].get("labels").is_none());
        assert_eq!(entry(&out, "A")["fieldsV1"], json!({"f:data": {"f:k": {}}}));
        let empty = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}});
        let out = apply_as(Some(&out), &empty, "A", false, CM, T2).unwrap();
        assert!(out.get("data").is_none());
        assert!(
            out["metadata"].get("managedFields").is_none(),
            "an empty set drops the entry"
        );
    }

    fn created_by_kubectl() -> Value {
        let mut obj = deployment();
        record_update(
            None,
            &mut obj,
            "kubectl-create",
            DEPLOY,
            "apps/v1",
            None,
            T0,
        )
        .unwrap();
        obj
    }

    #[test]
    fn create_records_an_update_entry_like_the_real_server() {
        let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cm1", "labels": {"a": "b"}}, "data": {"k1": "v1", "k2": "v2"}});
        let mut created = cm.clone();
        record_update(None, &mut created, "kubectl-create", CM, "v1", None, T0).unwrap();
        assert_eq!(
            created["metadata"]["managedFields"],
            json!([{"manager": "kubectl-create", "operation": "Update", "apiVersion": "v1",
            "time": T0, "fieldsType": "FieldsV1", "fieldsV1": {"f:data": {".": {}, "f:k1": {}, "f:k2": {}}, "f:metadata": {"f:labels": {".": {}, "f:a": {}}}}}])
        );
        let obj = created_by_kubectl();
        let fields = &entry(&obj, "kubectl-create")["fieldsV1"];
        assert_eq!(
            fields["f:spec"]["f:template"]["f:spec"]["f:containers"]["k:{\"name\":\"nginx\"}"]["f:ports"]
                ["."],
            json!({})
        );
        assert!(
            fields["f:spec"]["f:template"]["f:spec"]["f:containers"]
                .get(".")
                .is_none()
        );
        assert!(fields["f:spec"].get(".").is_none());
        assert!(
            fields["f:spec"].get("f:strategy").is_none(),
            "an empty struct that exists in the zero object is not owned"
        );
    }

    #[test]
    fn conflict_with_an_update_manager() {
        let live = created_by_kubectl();
        let mut config = deployment();
        config["spec"]["replicas"] = json!(5);
        let err = apply_as(Some(&live), &config, "argocd", false, DEPLOY, T1).unwrap_err();
        assert_eq!(
            err.to_string(),
            "Apply failed with 1 conflict: conflict with \"kubectl-create\" using apps/v1: .spec.replicas"
        );
        let api = ApiError::from(err);
        assert_eq!(api.code, 409);
        assert_eq!(
            api.details.unwrap()["causes"],
            json!([{"reason": "FieldManagerConflict", "message": "conflict with \"kubectl-create\" using apps/v1", "field": ".spec.replicas"}])
        );

        config["metadata"]["labels"]["app"] = json!("other");
        config["spec"]["template"]["spec"]["containers"][0]["image"] = json!("nginx:1.20");
        let err = apply_as(Some(&live), &config, "argocd", false, DEPLOY, T1).unwrap_err();
        assert_eq!(
            err.to_string(),
            "Apply failed with 3 conflicts: conflicts with \"kubectl-create\" using apps/v1:\n- .metadata.labels.app\n- .spec.replicas\n- .spec.template.spec.containers[name=\"nginx\"].image"
        );
    }

    #[test]
    fn conflicts_with_several_managers_are_grouped_by_manager() {
        let cm = |labels: Value| json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "labels": labels}});
        let live = apply_as(None, &cm(json!({"a": "1"})), "zed", false, CM, T0).unwrap();
        let live = apply_as(Some(&live), &cm(json!({"b": "1"})), "alpha", false, CM, T0).unwrap();
        let err = apply_as(
            Some(&live),
            &cm(json!({"a": "2", "b": "2"})),
            "m",
            false,
            CM,
            T1,
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "Apply failed with 2 conflicts: conflicts with \"alpha\":\n- .metadata.labels.b\nconflicts with \"zed\":\n- .metadata.labels.a"
        );
    }

    #[test]
    fn force_takes_ownership() {
        let live = created_by_kubectl();
        let mut config = deployment();
        config["spec"]["replicas"] = json!(5);
        let out = apply_as(Some(&live), &config, "argocd", true, DEPLOY, T1).unwrap();
        assert_eq!(out["spec"]["replicas"], 5);
        let owner = FieldSet::from_fields_v1(&entry(&out, "kubectl-create")["fieldsV1"]).unwrap();
        assert!(!owner.paths().contains(&".spec.replicas".to_owned()));
        assert!(
            owner
                .paths()
                .contains(&".spec.template.spec.containers[name=\"nginx\"].image".to_owned())
        );
        let applier = FieldSet::from_fields_v1(&entry(&out, "argocd")["fieldsV1"]).unwrap();
        assert!(applier.paths().contains(&".spec.replicas".to_owned()));
        assert_eq!(
            managers(&out),
            vec!["argocd", "kubectl-create"],
            "apply entries sort first"
        );
    }

    #[test]
    fn list_maps_merge_by_key() {
        let live = apply_as(None, &deployment(), "a", false, DEPLOY, T0).unwrap();
        let config = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"}, "spec": {"template": {"spec": {
        "containers": [
            {"name": "sidecar", "image": "envoy"},
            {"name": "nginx", "ports": [{"containerPort": 53, "protocol": "UDP", "hostPort": 5353}, {"containerPort": 53, "protocol": "TCP"}]}
        ]}}}});
        let out = apply_as(Some(&live), &config, "b", false, DEPLOY, T1).unwrap();
        let containers = out["spec"]["template"]["spec"]["containers"]
            .as_array()
            .unwrap();
        assert_eq!(containers.len(), 2);
        assert_eq!(containers[0]["name"], "nginx");
        assert_eq!(containers[0]["image"], "nginx:1.19");
        assert_eq!(
            containers[0]["ports"],
            json!([{"containerPort": 80}, {"containerPort": 53, "protocol": "UDP", "hostPort": 5353}, {"containerPort": 53, "protocol": "TCP"}])
        );
        assert_eq!(containers[1], json!({"name": "sidecar", "image": "envoy"}));
        assert_eq!(
            entry(&out, "a")["fieldsV1"],
            fields_of(&deployment(), DEPLOY).to_fields_v1()
        );
    }

    #[test]
    fn sets_merge_as_unions_and_atomic_lists_replace() {
        let mut a = deployment();
        a["metadata"]["finalizers"] = json!(["x", "y"]);
        a["spec"]["template"]["spec"]["containers"][0]["args"] = json!(["1", "2"]);
        let live = apply_as(None, &a, "a", false, DEPLOY, T0).unwrap();
        let b = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "finalizers": ["z", "x"]}});
        let out = apply_as(Some(&live), &b, "b", false, DEPLOY, T1).unwrap();
        assert_eq!(out["metadata"]["finalizers"], json!(["x", "y", "z"]));
        assert_eq!(
            entry(&out, "b")["fieldsV1"],
            json!({"f:metadata": {"f:finalizers": {"v:\"x\"": {}, "v:\"z\"": {}}}})
        );
        let mut c = a.clone();
        c["spec"]["template"]["spec"]["containers"][0]["args"] = json!(["3"]);
        let out = apply_as(Some(&out), &c, "a", false, DEPLOY, T2).unwrap();
        assert_eq!(
            out["spec"]["template"]["spec"]["containers"][0]["args"],
            json!(["3"])
        );
    }

    #[test]
    fn record_update_moves_ownership() {
        let live = apply_as(None, &deployment(), "argocd", false, DEPLOY, T0).unwrap();
        let mut edited = live.clone();
        edited["spec"]["replicas"] = json!(7);
        edited["spec"]["template"]["spec"]["containers"][0]["image"] = json!("nginx:1.21");
        edited["metadata"].as_object_mut().unwrap().remove("labels");
        record_update(
            Some(&live),
            &mut edited,
            "kubectl-replace",
            DEPLOY,
            "apps/v1",
            None,
            T1,
        )
        .unwrap();
        let replace = entry(&edited, "kubectl-replace");
        assert_eq!(
            replace["fieldsV1"],
            json!({"f:spec": {"f:replicas": {}, "f:template": {"f:spec": {"f:containers": {"k:{\"name\":\"nginx\"}": {"f:image": {}}}}}}})
        );
        assert_eq!(replace["time"], T1);
        let argo = FieldSet::from_fields_v1(&entry(&edited, "argocd")["fieldsV1"]).unwrap();
        assert!(
            !argo.paths().iter().any(|p| p == ".spec.replicas"
                || p.starts_with(".metadata")
                || p.ends_with(".image"))
        );
        assert_eq!(entry(&edited, "argocd")["time"], T0);

        // A no-op update leaves the entries (and their times) alone.
        let mut again = edited.clone();
        record_update(
            Some(&edited),
            &mut again,
            "kubectl-replace",
            DEPLOY,
            "apps/v1",
            None,
            T2,
        )
        .unwrap();
        assert_eq!(again, edited);

        // Taking the field back with apply now conflicts with the updater.
        let err = apply_as(Some(&edited), &deployment(), "argocd", false, DEPLOY, T2).unwrap_err();
        assert!(err.to_string().starts_with(
            "Apply failed with 2 conflicts: conflicts with \"kubectl-replace\" using apps/v1:"
        ));
    }

    #[test]
    fn client_can_reset_managed_fields() {
        let live = apply_as(None, &deployment(), "argocd", false, DEPLOY, T0).unwrap();
        let mut new = live.clone();
        new["metadata"]["managedFields"] = json!([{}]);
        record_update(
            Some(&live),
            &mut new,
            "kubectl-patch",
            DEPLOY,
            "apps/v1",
            None,
            T1,
        )
        .unwrap();
        assert!(new["metadata"].get("managedFields").is_none());
        let mut stripped = live.clone();
        stripped["metadata"]
            .as_object_mut()
            .unwrap()
            .remove("managedFields");
        record_update(
            Some(&live),
            &mut stripped,
            "kubectl-patch",
            DEPLOY,
            "apps/v1",
            None,
            T1,
        )
        .unwrap();
        assert_eq!(
            stripped, live,
            "an update without managedFields keeps the live ones"
        );
    }

    #[test]
    fn first_apply_to_an_untracked_object_conflicts_with_before_first_apply() {
        let mut live = deployment();
        live["spec"]["replicas"] = json!(1);
        let err = apply_as(Some(&live), &deployment(), "argocd", false, DEPLOY, T1).unwrap_err();
        assert_eq!(
            err.to_string(),
            "Apply failed with 1 conflict: conflict with \"before-first-apply\" using apps/v1: .spec.replicas"
        );
        let out = apply_as(Some(&live), &deployment(), "argocd", true, DEPLOY, T1).unwrap();
        assert_eq!(managers(&out), vec!["argocd", "before-first-apply"]);
    }

    #[test]
    fn kubectl_takes_over_client_side_apply_fields_and_syncs_the_annotation() {
        let mut csa = deployment();
        let annotation = go_json(&csa);
        csa["metadata"]["annotations"] = json!({LAST_APPLIED_ANNOTATION: annotation});
        record_update(
            None,
            &mut csa,
            "kubectl-client-side-apply",
            DEPLOY,
            "apps/v1",
            None,
            T0,
        )
        .unwrap();
        let mut config = deployment();
        config["spec"]["replicas"] = json!(3);
        let err = apply_as(Some(&csa), &config, "other", false, DEPLOY, T1).unwrap_err();
        assert!(matches!(err, ApplyError::Conflict { .. }));
        let out = apply_as(Some(&csa), &config, "kubectl", false, DEPLOY, T1).unwrap();
        assert_eq!(out["spec"]["replicas"], 3);
        let synced: Value = serde_json::from_str(
            out["metadata"]["annotations"][LAST_APPLIED_ANNOTATION]
                .as_str()
                .unwrap(),
        )
        .unwrap();
        assert_eq!(synced, config);
        assert!(
            out["metadata"]["annotations"][LAST_APPLIED_ANNOTATION]
                .as_str()
                .unwrap()
                .ends_with("}\n")
        );
    }

    #[test]
    fn invalid_requests_are_rejected() {
        let live = apply_as(None, &deployment(), "a", false, DEPLOY, T0).unwrap();
        let mut other = deployment();
        other["metadata"]["name"] = json!("other");
        let err = apply_as(Some(&live), &other, "a", false, DEPLOY, T1).unwrap_err();
        assert_eq!(
            err.to_string(),
            "the name of the object (other) does not match the name on the URL (web)"
        );
        assert_eq!(ApiError::from(err).code, 400);
        let mut with_mf = deployment();
        with_mf["metadata"]["managedFields"] = json!([]);
        assert!(matches!(
            apply_as(None, &with_mf, "a", false, DEPLOY, T0),
            Err(ApplyError::ValidateConfig(_))
        ));
        let no_kind = json!({"apiVersion": "v1", "metadata": {"name": "x"}});
        assert!(
            apply(&ApplyRequest {
                live: None,
                config: &no_kind,
                manager: "a",
                force: false,
                schema: CM,
                api_version: "v1",
                subresource: None,
                now: T0
            })
            .is_err()
        );
    }

    #[test]
    fn update_managers_are_capped() {
        let mut obj =
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {}});
        for i in 0..12 {
            let old = obj.clone();
            obj["data"][format!("k{i}")] = json!("v");
            let now = format!("2024-01-01T00:00:{i:02}Z");
            record_update(Some(&old), &mut obj, &format!("m{i}"), CM, "v1", None, &now).unwrap();
        }
        let names = managers(&obj);
        assert_eq!(names.len(), MAX_UPDATE_MANAGERS);
        assert_eq!(names[0], ANCIENT_CHANGES);
        let ancient = FieldSet::from_fields_v1(&entry(&obj, ANCIENT_CHANGES)["fieldsV1"]).unwrap();
        assert_eq!(ancient.paths(), vec![".data.k0", ".data.k1", ".data.k2"]);
    }

    fn arb_config() -> impl Strategy<Value = Value> {
        // Empty maps are left out: a typed built-in object drops them on storage, which is
        // the caller's normalisation, not apply's.
        let labels = prop::option::of(prop::collection::btree_map("[a-c]", "[x-z]", 1..3));
        let ports = prop::collection::btree_set(1u16..4, 0..3);
        let containers = prop::collection::btree_map(
            "[a-c]",
            ("[a-b]:[1-2]", ports, prop::option::of("[a-b]")),
            1..3,
        );
        (labels, prop::option::of(0u8..3), containers).prop_map(|(labels, replicas, containers)| {
            let containers: Vec<Value> = containers
                .into_iter()
                .map(|(name, (image, ports, env))| {
                    let mut c = json!({"name": name, "image": image});
                    if !ports.is_empty() {
                        c["ports"] = Value::Array(ports.into_iter().map(|p| json!({"containerPort": p})).collect());
                    }
                    if let Some(env) = env {
                        c["env"] = json!([{"name": env, "value": "v"}]);
                    }
                    c
                })
                .collect();
            let mut d = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "p"},
                "spec": {"template": {"spec": {"containers": containers}}}});
            if let Some(labels) = labels {
                d["metadata"]["labels"] = json!(labels);
            }
            if let Some(r) = replicas {
                d["spec"]["replicas"] = json!(r);
            }
            d
        })
    }

    proptest! {
        #[test]
        fn applying_twice_is_idempotent(first in arb_config(), second in arb_config()) {
            let live = apply_as(None, &first, "m", false, DEPLOY, T0).unwrap();
            let once = apply_as(Some(&live), &second, "m", false, DEPLOY, T1).unwrap();
            let twice = apply_as(Some(&once), &second, "m", false, DEPLOY, T2).unwrap();
            prop_assert_eq!(&once, &twice);
            let fields = read_managed_fields(&once).unwrap();
            prop_assert_eq!(fields.len(), 1);
            prop_assert_eq!(&fields[0].fields, &fields_of(&second, DEPLOY));
            // Everything the second config sets is in the object with its value.
            let merged_again = merge(&once, &second, DEPLOY);
            prop_assert_eq!(without_managed_fields(&merged_again), without_managed_fields(&once));
        }
    }
}
