//! The API verbs of a simulated cluster — get, list, create, update, patch — and the
//! write pipeline they share: metadata, defaulting, status rules, managedFields,
//! no-op detection, storing, and the garbage-collection pass after each write.

use crate::api_error::{ApiError, ApiResult};
use crate::cluster::{Cluster, ClusterState};
use crate::gc;
use crate::managed_fields::{self, ApplyRequest};
use crate::resources::ResourceType;
use crate::selectors::{FieldSelector, LabelSelector};
use crate::store::{GroupResource, set_resource_version};
use crate::strategic;
use base64::Engine;
use serde_json::{Map, Value, json};
use std::sync::Arc;

/// Options of a write request.
#[derive(Debug, Clone, Default)]
pub struct WriteOptions {
    /// The field manager (from `fieldManager` or the User-Agent).
    pub manager: String,
    /// `dryRun=All`: validate and answer, store nothing.
    pub dry_run: bool,
    /// `force=true` for server-side apply.
    pub force: bool,
    /// `status` when writing the status subresource.
    pub subresource: Option<String>,
}

impl WriteOptions {
    /// Options for writes the simulator makes itself.
    pub fn system(manager: &str) -> Self {
        Self {
            manager: manager.to_owned(),
            ..Self::default()
        }
    }

    fn status(&self) -> bool {
        self.subresource.as_deref() == Some("status")
    }
}

/// A patch body and its content type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchKind {
    /// RFC 6902 JSON patch.
    Json,
    /// RFC 7386 JSON merge patch.
    Merge,
    /// Kubernetes strategic merge patch.
    Strategic,
    /// Server-side apply.
    Apply,
}

impl PatchKind {
    /// The patch kind of a Content-Type header.
    pub fn from_content_type(ct: &str) -> ApiResult<Self> {
        match ct.split(';').next().unwrap_or_default().trim() {
            "application/json-patch+json" => Ok(Self::Json),
            "application/merge-patch+json" => Ok(Self::Merge),
            "application/strategic-merge-patch+json" => Ok(Self::Strategic),
            "application/apply-patch+yaml" | "application/apply-patch+json" => Ok(Self::Apply),
            other => Err(ApiError::unsupported_media_type(other)),
        }
    }
}

/// Query of a list or watch.
#[derive(Debug, Default)]
pub struct ListQuery {
    /// Parsed `labelSelector`.
    pub labels: Option<LabelSelector>,
    /// Parsed `fieldSelector`.
    pub fields: Option<FieldSelector>,
    /// `limit`, 0 for none.
    pub limit: usize,
    /// `continue` token.
    pub continue_token: Option<String>,
}

impl ListQuery {
    /// Whether an object passes the selectors.
    pub fn matches(&self, obj: &Value) -> bool {
        self.labels
            .as_ref()
            .is_none_or(|l| l.matches(obj["metadata"]["labels"].as_object()))
            && self.fields.as_ref().is_none_or(|f| f.matches(obj))
    }
}

/// The current time as the API server writes timestamps.
pub fn now() -> String {
    chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// `get` of one object.
pub fn get(cluster: &Cluster, rt: &ResourceType, ns: Option<&str>, name: &str) -> ApiResult<Value> {
    let state = cluster.lock();
    let obj = state
        .store
        .get(&gr(rt), ns.unwrap_or_default(), name)
        .ok_or_else(|| ApiError::not_found(&rt.group_resource(), name))?;
    Ok(present(rt, obj))
}

/// `list` of a resource, optionally in one namespace. A list cut into pages by `limit`
/// is consistent: its continue pages are served from the items it had when it began.
pub fn list(
    cluster: &Cluster,
    rt: &ResourceType,
    ns: Option<&str>,
    q: &ListQuery,
) -> ApiResult<Value> {
    let resumed = q
        .continue_token
        .as_deref()
        .map(decode_continue)
        .transpose()?;
    let mut state = cluster.lock();
    let (rv, items, next) = match resumed {
        Some((id, pos)) => {
            let page = state.lists.page(id, pos, q.limit).ok_or_else(|| {
                ApiError::gone(
                    "The provided continue parameter is too old to display a consistent list \
                     result. You can start a new list without the continue parameter.",
                )
            })?;
            let next = page.next.map(|pos| (id, pos, page.remaining));
            (page.rv, page.items, next)
        }
        None => {
            let rv = state.store.resource_version();
            let mut matching = state
                .store
                .range(&gr(rt), ns, None)
                .filter(|(_, obj)| q.matches(obj))
                .map(|(_, obj)| Arc::clone(obj));
            let items: Vec<Arc<Value>> = if q.limit > 0 {
                matching.by_ref().take(q.limit).collect()
            } else {
                matching.by_ref().collect()
            };
            let rest: Vec<Arc<Value>> = matching.collect();
            let next = (!rest.is_empty()).then(|| {
                let remaining = rest.len();
                (state.lists.keep(rv, rest), 0, remaining)
            });
            (rv, items, next)
        }
    };
    drop(state);
    let items: Vec<Value> = items.iter().map(|obj| present(rt, obj)).collect();
    let mut meta = Map::new();
    meta.insert("resourceVersion".into(), rv.to_string().into());
    if let Some((id, pos, remaining)) = next {
        meta.insert("continue".into(), encode_continue(rv, id, pos).into());
        meta.insert("remainingItemCount".into(), remaining.into());
    }
    Ok(
        json!({"kind": format!("{}List", rt.kind), "apiVersion": rt.api_version(), "metadata": meta, "items": items}),
    )
}

/// `create`.
pub fn create(
    cluster: &Cluster,
    rt: &ResourceType,
    ns: Option<&str>,
    mut body: Value,
    opts: &WriteOptions,
) -> ApiResult<Value> {
    check_body(rt, &body)?;
    let now = now();
    let mut state = cluster.lock();
    let meta = meta_mut(&mut body)?;
    if meta
        .get("name")
        .and_then(Value::as_str)
        .is_none_or(str::is_empty)
    {
        let prefix = meta
            .get("generateName")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        if prefix.is_empty() {
            return Err(ApiError::invalid(
                &rt.kind,
                "",
                "metadata.name: Required value: name or generateName is required",
            ));
        }
        meta.insert("name".into(), format!("{prefix}{}", random_suffix()).into());
    }
    set_namespace(rt, meta, ns)?;
    let name = meta["name"].as_str().unwrap_or_default().to_owned();
    if state
        .store
        .get(&gr(rt), ns.unwrap_or_default(), &name)
        .is_some()
    {
        return Err(ApiError::already_exists(&rt.group_resource(), &name)
            .with_details(&rt.group, &rt.plural, &name));
    }
    check_namespace(&state, rt, ns)?;
    if rt.has_status && !opts.status() {
        strip_status(&mut body);
    }
    let stored = commit(&mut state, rt, None, body, opts, &now, true)?;
    Ok(present(rt, &stored))
}

/// `update` (PUT) of an object or its status.
pub fn update(
    cluster: &Cluster,
    rt: &ResourceType,
    ns: Option<&str>,
    name: &str,
    mut body: Value,
    opts: &WriteOptions,
) -> ApiResult<Value> {
    check_body(rt, &body)?;
    let now = now();
    let mut state = cluster.lock();
    let meta = meta_mut(&mut body)?;
    check_name(meta, name)?;
    set_namespace(rt, meta, ns)?;
    let old = state
        .store
        .get(&gr(rt), ns.unwrap_or_default(), name)
        .cloned();
    let Some(old) = old else {
        if opts.status() {
            return Err(ApiError::not_found(&rt.group_resource(), name));
        }
        // PUT to a missing object creates it, as the API server allows for most kinds.
        drop(state);
        return create(cluster, rt, ns, body, opts);
    };
    check_resource_version(rt, name, &body, &old)?;
    let new = merge_status_rules(rt, &old, body, opts);
    let stored = commit(&mut state, rt, Some(old), new, opts, &now, true)?;
    Ok(present(rt, &stored))
}

/// `patch` of an object or its status, including server-side apply.
pub fn patch(
    cluster: &Cluster,
    rt: &ResourceType,
    ns: Option<&str>,
    name: &str,
    kind: PatchKind,
    body: &Value,
    opts: &WriteOptions,
) -> ApiResult<Value> {
    let now = now();
    let mut state = cluster.lock();
    let old = state
        .store
        .get(&gr(rt), ns.unwrap_or_default(), name)
        .cloned();
    if kind == PatchKind::Apply {
        return apply(&mut state, rt, ns, name, old, body, opts, &now);
    }
    let old = old.ok_or_else(|| ApiError::not_found(&rt.group_resource(), name))?;
    let patched = match kind {
        PatchKind::Json => strategic::json_patch(&old, body)
            .map_err(|e| ApiError::invalid(&rt.kind, name, e.to_string()))?,
        PatchKind::Merge => strategic::json_merge(&old, body),
        PatchKind::Strategic => {
            let schema = rt.merge_schema();
            if !strategic::supports_strategic(schema) {
                return Err(ApiError::unsupported_media_type(
                    "application/strategic-merge-patch+json",
                ));
            }
            strategic::strategic_merge(&old, body, schema)
                .map_err(|e| ApiError::bad_request(e.to_string()))?
        }
        PatchKind::Apply => return Err(ApiError::internal("apply handled above")),
    };
    let mut patched = patched;
    let meta = meta_mut(&mut patched)?;
    check_name(meta, name)?;
    check_resource_version(rt, name, body, &old)?;
    let new = merge_status_rules(rt, &old, patched, opts);
    let stored = commit(&mut state, rt, Some(old), new, opts, &now, true)?;
    Ok(present(rt, &stored))
}

#[allow(clippy::too_many_arguments)]
fn apply(
    state: &mut ClusterState,
    rt: &ResourceType,
    ns: Option<&str>,
    name: &str,
    old: Option<Arc<Value>>,
    config: &Value,
    opts: &WriteOptions,
    now: &str,
) -> ApiResult<Value> {
    if opts.manager.is_empty() {
        return Err(ApiError::bad_request(
            "PATCH, application/apply-patch+yaml requests must have a fieldManager",
        ));
    }
    check_body(rt, config)?;
    let mut config = config.clone();
    let meta = meta_mut(&mut config)?;
    check_name(meta, name)?;
    set_namespace(rt, meta, ns)?;
    if old.is_none() {
        check_namespace(state, rt, ns)?;
    }
    if rt.has_status && !opts.status() {
        strip_status(&mut config);
    }
    let req = ApplyRequest {
        live: old.as_deref(),
        config: &config,
        manager: &opts.manager,
        force: opts.force,
        schema: rt.merge_schema(),
        api_version: &rt.api_version(),
        subresource: opts.subresource.as_deref(),
        now,
    };
    let merged = managed_fields::apply(&req).map_err(ApiError::from)?;
    let new = match &old {
        Some(old) => merge_status_rules(rt, old, merged, opts),
        None => merged,
    };
    let stored = commit(state, rt, old, new, opts, now, false)?;
    Ok(present(rt, &stored))
}

/// Stores a new version of an object (`old` is None on create): sets server-owned
/// metadata, defaults, records managed fields (`track` false when apply did), skips
/// no-op updates, handles CRD registration, and runs the garbage-collection pass.
pub(crate) fn commit(
    state: &mut ClusterState,
    rt: &ResourceType,
    old: Option<Arc<Value>>,
    mut new: Value,
    opts: &WriteOptions,
    now: &str,
    track: bool,
) -> ApiResult<Arc<Value>> {
    new["apiVersion"] = rt.api_version().into();
    new["kind"] = rt.kind.clone().into();
    set_server_metadata(rt, old.as_deref(), &mut new, now)?;
    if let Some(old) = &old
        && new.get("spec").is_none()
        && rt.kind == "Service"
    {
        new["spec"] = old["spec"].clone();
    }
    crate::defaults::apply_defaults(rt, &mut new, &mut state.alloc)
        .map_err(|e| ApiError::invalid(&rt.kind, name_of(&new), e.to_string()))?;
    validate(rt, &new)?;
    if track {
        let api_version = rt.api_version();
        managed_fields::record_update(
            old.as_deref(),
            &mut new,
            &opts.manager,
            rt.merge_schema(),
            &api_version,
            opts.subresource.as_deref(),
            now,
        )
        .map_err(|e| ApiError::internal(e.to_string()))?;
    }
    if let Some(old) = &old {
        if same_content(old, &new) {
            return Ok(Arc::clone(old));
        }
        bump_generation(rt, old, &mut new);
    }
    if opts.dry_run {
        return Ok(Arc::new(new));
    }
    let rv = state.store.next_rv();
    set_resource_version(&mut new, rv);
    let resource = gr(rt);
    let stored = state.store.put(&resource, rv, new);
    if rt.group == "apiextensions.k8s.io" && rt.kind == "CustomResourceDefinition" {
        for gone in state.register_crd(&stored) {
            gc::drop_resource(state, &gone);
        }
    }
    gc::settle(state, gc::after_write(&stored), now);
    Ok(stored)
}

fn set_server_metadata(
    rt: &ResourceType,
    old: Option<&Value>,
    new: &mut Value,
    now: &str,
) -> ApiResult<()> {
    let meta = meta_mut(new)?;
    match old {
        Some(old) => {
            for key in [
                "uid",
                "creationTimestamp",
                "deletionTimestamp",
                "deletionGracePeriodSeconds",
                "generation",
                "resourceVersion",
            ] {
                match old["metadata"].get(key) {
                    Some(v) => meta.insert(key.into(), v.clone()),
                    None => meta.remove(key),
                };
            }
        }
        None => {
            meta.insert("uid".into(), uuid::Uuid::new_v4().to_string().into());
            meta.insert("creationTimestamp".into(), now.into());
            for key in [
                "deletionTimestamp",
                "deletionGracePeriodSeconds",
                "resourceVersion",
                "selfLink",
            ] {
                meta.remove(key);
            }
            if rt.has_generation {
                meta.insert("generation".into(), 1.into());
            } else {
                meta.remove("generation");
            }
        }
    }
    Ok(())
}

fn bump_generation(rt: &ResourceType, old: &Value, new: &mut Value) {
    if !rt.has_generation {
        return;
    }
    fn spec_part(v: &Value) -> Vec<(&String, &Value)> {
        v.as_object()
            .map(|m| {
                m.iter()
                    .filter(|(k, _)| {
                        !matches!(k.as_str(), "metadata" | "status" | "apiVersion" | "kind")
                    })
                    .collect()
            })
            .unwrap_or_default()
    }
    if spec_part(old) != spec_part(new) {
        let generation = old["metadata"]["generation"].as_i64().unwrap_or(0) + 1;
        new["metadata"]["generation"] = generation.into();
    }
}

/// Whether two versions differ only in resourceVersion and managedFields timestamps.
fn same_content(old: &Value, new: &Value) -> bool {
    let strip = |v: &Value| {
        let mut v = v.clone();
        if let Some(meta) = v.get_mut("metadata").and_then(Value::as_object_mut) {
            meta.remove("resourceVersion");
            if let Some(Value::Array(entries)) = meta.get_mut("managedFields") {
                for e in entries {
                    if let Some(e) = e.as_object_mut() {
                        e.remove("time");
                    }
                }
            }
        }
        v
    };
    strip(old) == strip(new)
}

/// Keeps status on main-resource writes and everything but status on status writes.
fn merge_status_rules(
    rt: &ResourceType,
    old: &Value,
    mut new: Value,
    opts: &WriteOptions,
) -> Value {
    if !rt.has_status {
        return new;
    }
    if opts.status() {
        let mut merged = old.clone();
        merged["status"] = new.get("status").cloned().unwrap_or(Value::Null);
        if merged["status"].is_null()
            && let Some(m) = merged.as_object_mut()
        {
            m.remove("status");
        }
        if let Some(mf) = new["metadata"].get("managedFields").cloned() {
            merged["metadata"]["managedFields"] = mf;
        }
        return merged;
    }
    match old.get("status") {
        Some(status) => new["status"] = status.clone(),
        None => strip_status(&mut new),
    }
    new
}

fn strip_status(obj: &mut Value) {
    if let Some(m) = obj.as_object_mut() {
        m.remove("status");
    }
}

fn validate(rt: &ResourceType, obj: &Value) -> ApiResult<()> {
    let name = name_of(obj);
    let valid = !name.is_empty()
        && name.len() <= 253
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.ends_with(|c: char| c.is_ascii_alphanumeric());
    if !valid {
        return Err(ApiError::invalid(
            &rt.kind,
            name,
            format!(
                "metadata.name: Invalid value: \"{name}\": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character"
            ),
        ));
    }
    if matches!(rt.kind.as_str(), "ConfigMap" | "Secret") {
        let size: usize = ["data", "binaryData"]
            .iter()
            .filter_map(|k| obj[k].as_object())
            .flat_map(|m| m.iter())
            .map(|(k, v)| k.len() + v.as_str().map_or(0, str::len))
            .sum();
        if size > 1_048_576 {
            return Err(ApiError::invalid(
                &rt.kind,
                name,
                "[]: Too long: must have at most 1048576 bytes",
            ));
        }
    }
    if rt.kind == "Secret"
        && let Some(data) = obj["data"].as_object()
    {
        for (k, v) in data {
            let ok = v
                .as_str()
                .is_some_and(|s| base64::engine::general_purpose::STANDARD.decode(s).is_ok());
            if !ok {
                return Err(ApiError::invalid(
                    &rt.kind,
                    name,
                    format!("data[{k}]: Invalid value: illegal base64 data"),
                ));
            }
        }
    }
    Ok(())
}

fn check_body(rt: &ResourceType, body: &Value) -> ApiResult<()> {
    if !body.is_object() {
        return Err(ApiError::bad_request(
            "the body of the request must be a JSON or YAML object",
        ));
    }
    if let Some(kind) = body["kind"].as_str()
        && kind != rt.kind
    {
        return Err(ApiError::bad_request(format!(
            "the kind of the object ({kind}) does not match the resource ({})",
            rt.kind
        )));
    }
    if let Some(av) = body["apiVersion"].as_str() {
        let group = av.rsplit_once('/').map_or("", |(g, _)| g);
        if group != rt.group {
            return Err(ApiError::bad_request(format!(
                "the API version in the data ({av}) does not match the expected API version ({})",
                rt.api_version()
            )));
        }
    }
    Ok(())
}

/// A write naming a resourceVersion must name the current one (optimistic concurrency).
fn check_resource_version(
    rt: &ResourceType,
    name: &str,
    body: &Value,
    old: &Value,
) -> ApiResult<()> {
    match body["metadata"]["resourceVersion"].as_str() {
        Some(rv)
            if rv
                != old["metadata"]["resourceVersion"]
                    .as_str()
                    .unwrap_or_default() =>
        {
            Err(ApiError::conflict(&rt.group_resource(), name)
                .with_details(&rt.group, &rt.plural, name))
        }
        _ => Ok(()),
    }
}

fn check_name(meta: &mut Map<String, Value>, name: &str) -> ApiResult<()> {
    match meta.get("name").and_then(Value::as_str) {
        Some(n) if n != name => Err(ApiError::bad_request(format!(
            "the name of the object ({n}) does not match the name on the URL ({name})"
        ))),
        Some(_) => Ok(()),
        None => {
            meta.insert("name".into(), name.into());
            Ok(())
        }
    }
}

fn set_namespace(
    rt: &ResourceType,
    meta: &mut Map<String, Value>,
    ns: Option<&str>,
) -> ApiResult<()> {
    if !rt.namespaced {
        meta.remove("namespace");
        return Ok(());
    }
    let Some(ns) = ns else {
        return Err(ApiError::bad_request(
            "the namespace of the object must be given in the URL",
        ));
    };
    match meta.get("namespace").and_then(Value::as_str) {
        Some(n) if !n.is_empty() && n != ns => Err(ApiError::bad_request(format!(
            "the namespace of the provided object does not match the namespace sent on the request ({n} != {ns})"
        ))),
        _ => {
            meta.insert("namespace".into(), ns.into());
            Ok(())
        }
    }
}

fn check_namespace(state: &ClusterState, rt: &ResourceType, ns: Option<&str>) -> ApiResult<()> {
    let (true, Some(ns)) = (rt.namespaced, ns) else {
        return Ok(());
    };
    match state
        .store
        .get(&GroupResource::new("", "namespaces"), "", ns)
    {
        None => Err(ApiError::not_found("namespaces", ns)),
        Some(n) if n["metadata"].get("deletionTimestamp").is_some() => {
            Err(ApiError::forbidden(format!(
                "{} is forbidden: unable to create new content in namespace {ns} because it is being terminated",
                rt.group_resource()
            )))
        }
        Some(_) => Ok(()),
    }
}

fn meta_mut(obj: &mut Value) -> ApiResult<&mut Map<String, Value>> {
    let root = obj
        .as_object_mut()
        .ok_or_else(|| ApiError::bad_request("object expected"))?;
    let meta = root
        .entry("metadata")
        .or_insert_with(|| Value::Object(Map::new()));
    meta.as_object_mut()
        .ok_or_else(|| ApiError::bad_request("metadata must be an object"))
}

fn name_of(obj: &Value) -> &str {
    obj["metadata"]["name"].as_str().unwrap_or_default()
}

/// The group/resource an object type is stored under.
pub fn gr(rt: &ResourceType) -> GroupResource {
    GroupResource::new(&rt.group, &rt.plural)
}

/// An object as served at the requested version.
pub fn present(rt: &ResourceType, obj: &Value) -> Value {
    let mut out = obj.clone();
    if out["apiVersion"].as_str() != Some(&rt.api_version()) {
        out["apiVersion"] = rt.api_version().into();
    }
    out
}

fn random_suffix() -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    (0..5)
        .map(|_| ALPHABET[rand::random_range(0..ALPHABET.len())] as char)
        .collect()
}

fn encode_continue(rv: u64, list: u64, pos: usize) -> String {
    let raw = json!({"rv": rv, "list": list, "pos": pos}).to_string();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
}

/// The list and position a continue token names.
fn decode_continue(token: &str) -> ApiResult<(u64, usize)> {
    let bad = || ApiError::bad_request("invalid continue token");
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token)
        .map_err(|_| bad())?;
    let v: Value = serde_json::from_slice(&raw).map_err(|_| bad())?;
    let list = v["list"].as_u64().ok_or_else(bad)?;
    let pos = v["pos"].as_u64().ok_or_else(bad)?;
    Ok((list, usize::try_from(pos).map_err(|_| bad())?))
}
