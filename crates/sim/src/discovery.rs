//! Discovery (`/version`, `/api`, `/apis`, resource lists) and OpenAPI (v2 and v3) documents
//! of a simulated cluster, derived purely from the resource types it serves.
//!
//! Ordering follows the real API server: `/apis` lists `apiregistration.k8s.io` first, then
//! the built-in groups by their aggregator priority, then CRD groups by name; versions in a
//! group are sorted kube-aware (GA > beta > alpha, higher numbers first) and the first one is
//! preferred; resources are listed alphabetically with their `/status` subresource after them.
//!
//! The OpenAPI v3 document of a group/version is deliberately small: paths with operations
//! tagged by `x-kubernetes-group-version-kind` and `x-kubernetes-action`, write operations
//! declaring the `fieldValidation`, `fieldManager` and `dryRun` query parameters (so kubectl
//! uses server-side field validation), and one permissive schema per kind. PATCH request
//! bodies do not offer `application/strategic-merge-patch+json`, so client-side `kubectl
//! apply` computes strategic merge patches from its compiled-in types (exact patch strategies
//! for built-in kinds) and JSON merge patches for custom resources, as against a real server.

use crate::resources::ResourceType;
use base64::Engine as _;
use serde_json::{Map, Value, json};
use std::cmp::Ordering;
use std::sync::Arc;

/// The `gitVersion` the simulator reports.
pub const GIT_VERSION: &str = "v1.35.0-keelson-sim";

/// Group priority of CRD groups (and any group not in [`BUILTIN_GROUP_PRIORITIES`]).
const CUSTOM_GROUP_PRIORITY: u32 = 1000;

/// The aggregator's group priorities for built-in groups (higher first).
const BUILTIN_GROUP_PRIORITIES: &[(&str, u32)] = &[
    ("apiregistration.k8s.io", u32::MAX),
    ("apps", 17800),
    ("events.k8s.io", 17750),
    ("authentication.k8s.io", 17700),
    ("authorization.k8s.io", 17600),
    ("autoscaling", 17500),
    ("batch", 17400),
    ("certificates.k8s.io", 17300),
    ("networking.k8s.io", 17200),
    ("policy", 17100),
    ("rbac.authorization.k8s.io", 17000),
    ("storage.k8s.io", 16800),
    ("admissionregistration.k8s.io", 16700),
    ("apiextensions.k8s.io", 16700),
    ("scheduling.k8s.io", 16600),
    ("coordination.k8s.io", 16500),
    ("node.k8s.io", 16300),
    ("discovery.k8s.io", 16200),
    ("flowcontrol.apiserver.k8s.io", 16100),
    ("internal.apiserver.k8s.io", 16000),
    ("resource.k8s.io", 15900),
];

/// Built-in resources in the `all` category (`kubectl get all`), as `(group, plural)`.
const CATEGORY_ALL: &[(&str, &str)] = &[
    ("", "pods"),
    ("", "replicationcontrollers"),
    ("", "services"),
    ("apps", "daemonsets"),
    ("apps", "deployments"),
    ("apps", "replicasets"),
    ("apps", "statefulsets"),
    ("autoscaling", "horizontalpodautoscalers"),
    ("batch", "cronjobs"),
    ("batch", "jobs"),
];

/// Built-in resources in the `api-extensions` category, as `(group, plural)`.
const CATEGORY_API_EXTENSIONS: &[(&str, &str)] = &[
    ("apiextensions.k8s.io", "customresourcedefinitions"),
    ("apiregistration.k8s.io", "apiservices"),
];

/// `/version`: the server's version information.
pub fn version_info() -> Value {
    json!({
        "major": "1",
        "minor": "35",
        "emulationMajor": "1",
        "emulationMinor": "35",
        "minCompatibilityMajor": "1",
        "minCompatibilityMinor": "34",
        "gitVersion": GIT_VERSION,
        "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean",
        "buildDate": "2025-01-01T00:00:00Z",
        "goVersion": "go1.24.0",
        "compiler": "gc",
        "platform": "linux/amd64",
    })
}

/// `/api`: the core group's versions; `server_address` is the `host:port` clients reached.
pub fn core_api_versions(server_address: &str) -> Value {
    json!({
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}],
    })
}

/// `/apis`: every named group (not the core group), in the real server's order.
pub fn api_group_list(types: &[Arc<ResourceType>]) -> Value {
    let groups: Vec<Value> = sorted_groups(types)
        .iter()
        .map(|(name, versions)| group_entry(name, versions))
        .collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

/// `/apis/{group}`: one named group, or `None` when no type is served in it.
pub fn api_group(types: &[Arc<ResourceType>], group: &str) -> Option<Value> {
    if group.is_empty() {
        return None;
    }
    let versions = group_versions(types, group);
    if versions.is_empty() {
        return None;
    }
    let mut entry = group_entry(group, &versions);
    let obj = entry.as_object_mut()?;
    let mut out = Map::with_capacity(obj.len() + 2);
    out.insert("kind".into(), json!("APIGroup"));
    out.insert("apiVersion".into(), json!("v1"));
    out.append(obj);
    Some(Value::Object(out))
}

/// `/api/v1` or `/apis/{group}/{version}`: the resources of one group/version, or `None`
/// when none is served there.
pub fn api_resource_list(types: &[Arc<ResourceType>], group: &str, version: &str) -> Option<Value> {
    let mut matching: Vec<&ResourceType> = types
        .iter()
        .map(AsRef::as_ref)
        .filter(|t| t.group == group && t.version == version)
        .collect();
    if matching.is_empty() {
        return None;
    }
    matching.sort_by(|a, b| a.plural.cmp(&b.plural));
    matching.dedup_by(|a, b| a.plural == b.plural);
    let mut resources = Vec::with_capacity(matching.len() * 2);
    for t in matching {
        resources.push(resource_entry(t));
        if t.has_status {
            resources.push(json!({
                "name": format!("{}/status", t.plural),
                "singularName": "",
                "namespaced": t.namespaced,
                "kind": t.kind,
                "verbs": ["get", "patch", "update"],
            }));
        }
    }
    let group_version = group_version_string(group, version);
    Some(if group.is_empty() {
        json!({"kind": "APIResourceList", "groupVersion": group_version, "resources": resources})
    } else {
        json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": group_version, "resources": resources})
    })
}

/// `/openapi/v2` as JSON: a minimal valid Swagger 2.0 document with no paths or definitions.
pub fn openapi_v2() -> Value {
    json!({
        "swagger": "2.0",
        "info": {"title": "Kubernetes", "version": GIT_VERSION},
        "paths": {},
        "definitions": {},
    })
}

/// `/openapi/v2` as protobuf (`application/com.github.proto-openapi.spec.v2@v1.0+protobuf`,
/// what client-go asks for): the same minimal document as [`openapi_v2`], encoded as a
/// gnostic `openapi.v2.Document` message.
pub fn openapi_v2_protobuf() -> Vec<u8> {
    let mut info = Vec::new();
    proto_bytes_field(&mut info, 1, b"Kubernetes");
    proto_bytes_field(&mut info, 2, GIT_VERSION.as_bytes());
    let mut doc = Vec::new();
    proto_bytes_field(&mut doc, 1, b"2.0");
    proto_bytes_field(&mut doc, 2, &info);
    proto_bytes_field(&mut doc, 8, &[]);
    proto_bytes_field(&mut doc, 9, &[]);
    doc
}

/// `/openapi/v3`: the index of per-group/version documents, each URL carrying a hash of
/// what its document is generated from (so clients' caches notice changes).
pub fn openapi_v3_index(types: &[Arc<ResourceType>]) -> Value {
    let mut paths = Map::new();
    for (group, version) in group_versions_in_order(types) {
        let key = openapi_v3_path(&group, &version);
        let hash = group_version_hash(types, &group, &version);
        paths.insert(
            key.clone(),
            json!({"serverRelativeURL": format!("/openapi/v3/{key}?hash={hash}")}),
        );
    }
    json!({"paths": paths})
}

/// `/openapi/v3/api/v1` or `/openapi/v3/apis/{group}/{version}`: the OpenAPI 3.0 document of
/// one group/version, or `None` when nothing is served there.
pub fn openapi_v3_group_version(
    types: &[Arc<ResourceType>],
    group: &str,
    version: &str,
) -> Option<Value> {
    let matching: Vec<&ResourceType> = types
        .iter()
        .map(AsRef::as_ref)
        .filter(|t| t.group == group && t.version == version)
        .collect();
    if matching.is_empty() {
        return None;
    }
    let mut paths = Map::new();
    let mut schemas = Map::new();
    for t in matching {
        add_paths(&mut paths, t);
        let name = schema_name(t);
        schemas.insert(name.clone(), kind_schema(t, &t.kind));
        schemas.insert(
            format!("{name}List"),
            kind_schema(t, &format!("{}List", t.kind)),
        );
    }
    Some(json!({
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": GIT_VERSION},
        "paths": paths,
        "components": {"schemas": schemas},
    }))
}

/// The `/openapi/v3` index key of a group/version: `api/v1` or `apis/{group}/{version}`.
pub fn openapi_v3_path(group: &str, version: &str) -> String {
    if group.is_empty() {
        format!("api/{version}")
    } else {
        format!("apis/{group}/{version}")
    }
}

/// The hash in the `/openapi/v3` index URL of a group/version (hex, stable across runs).
pub fn group_version_hash(types: &[Arc<ResourceType>], group: &str, version: &str) -> String {
    let mut hasher = Fnv::new();
    hasher.write(b"keelson-openapi-v3-1");
    for t in types
        .iter()
        .filter(|t| t.group == group && t.version == version)
    {
        for part in [t.kind.as_str(), t.plural.as_str(), t.singular.as_str()] {
            hasher.write(part.as_bytes());
            hasher.write(&[0]);
        }
        hasher.write(&[u8::from(t.namespaced), u8::from(t.has_status)]);
    }
    let first = hasher.finish();
    hasher.write(b"second");
    format!("{first:016X}{:016X}", hasher.finish())
}

fn group_version_string(group: &str, version: &str) -> String {
    if group.is_empty() {
        version.to_owned()
    } else {
        format!("{group}/{version}")
    }
}

fn group_entry(name: &str, versions: &[String]) -> Value {
    let version_entries: Vec<Value> = versions
        .iter()
        .map(|v| json!({"groupVersion": group_version_string(name, v), "version": v}))
        .collect();
    let preferred = version_entries.first().cloned().unwrap_or(Value::Null);
    json!({"name": name, "versions": version_entries, "preferredVersion": preferred})
}

/// The distinct versions of a group, sorted kube-aware (preferred first).
fn group_versions(types: &[Arc<ResourceType>], group: &str) -> Vec<String> {
    let mut versions: Vec<String> = Vec::new();
    for t in types.iter().filter(|t| t.group == group) {
        if !versions.contains(&t.version) {
            versions.push(t.version.clone());
        }
    }
    versions.sort_by(|a, b| compare_kube_versions(a, b));
    versions
}

/// Named groups with their sorted versions, ordered as the aggregator orders them: by
/// group priority (highest first), then by the smallest `{version}.{group}` APIService name.
fn sorted_groups(types: &[Arc<ResourceType>]) -> Vec<(String, Vec<String>)> {
    let mut names: Vec<&str> = Vec::new();
    for t in types.iter().filter(|t| !t.group.is_empty()) {
        if !names.contains(&t.group.as_str()) {
            names.push(&t.group);
        }
    }
    let mut groups: Vec<(u32, String, String, Vec<String>)> = names
        .into_iter()
        .map(|name| {
            let versions = group_versions(types, name);
            let service_name = versions
                .iter()
                .map(|v| format!("{v}.{name}"))
                .min()
                .unwrap_or_else(|| name.to_owned());
            (
                group_priority(name),
                service_name,
                name.to_owned(),
                versions,
            )
        })
        .collect();
    groups.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
    groups
        .into_iter()
        .map(|(_, _, name, versions)| (name, versions))
        .collect()
}

/// Every served group/version: core first, then groups in discovery order.
fn group_versions_in_order(types: &[Arc<ResourceType>]) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = group_versions(types, "")
        .into_iter()
        .map(|v| (String::new(), v))
        .collect();
    for (group, versions) in sorted_groups(types) {
        out.extend(versions.into_iter().map(|v| (group.clone(), v)));
    }
    out
}

fn group_priority(group: &str) -> u32 {
    BUILTIN_GROUP_PRIORITIES
        .iter()
        .find(|(g, _)| *g == group)
        .map_or(CUSTOM_GROUP_PRIORITY, |(_, p)| *p)
}

/// A parsed kube-like version `v<major>[(alpha|beta)<minor>]`: (stability, major, minor),
/// stability 2 for GA, 1 for beta, 0 for alpha.
fn parse_kube_version(v: &str) -> Option<(u8, u64, u64)> {
    let rest = v.strip_prefix('v')?;
    let digits_end = rest
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(rest.len());
    if digits_end == 0 {
        return None;
    }
    let major: u64 = rest[..digits_end].parse().ok()?;
    let suffix = &rest[digits_end..];
    if suffix.is_empty() {
        return Some((2, major, 0));
    }
    let (stability, minor) = if let Some(m) = suffix.strip_prefix("beta") {
        (1, m)
    } else if let Some(m) = suffix.strip_prefix("alpha") {
        (0, m)
    } else {
        return None;
    };
    if minor.is_empty() || !minor.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((stability, major, minor.parse().ok()?))
}

/// Kube-aware version order: kube-like versions first (GA > beta > alpha, then higher
/// major, then higher minor), other strings after them in lexical order.
pub fn compare_kube_versions(a: &str, b: &str) -> Ordering {
    match (parse_kube_version(a), parse_kube_version(b)) {
        (Some(x), Some(y)) => y.cmp(&x),
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => a.cmp(b),
    }
}

fn resource_entry(t: &ResourceType) -> Value {
    let mut entry = Map::new();
    entry.insert("name".into(), json!(t.plural));
    entry.insert("singularName".into(), json!(t.singular));
    entry.insert("namespaced".into(), json!(t.namespaced));
    entry.insert("kind".into(), json!(t.kind));
    entry.insert("verbs".into(), json!(t.verbs()));
    if !t.short_names.is_empty() {
        entry.insert("shortNames".into(), json!(t.short_names));
    }
    let key = (t.group.as_str(), t.plural.as_str());
    if !t.is_custom() {
        if CATEGORY_ALL.contains(&key) {
            entry.insert("categories".into(), json!(["all"]));
        } else if CATEGORY_API_EXTENSIONS.contains(&key) {
            entry.insert("categories".into(), json!(["api-extensions"]));
        }
    }
    entry.insert("storageVersionHash".into(), json!(storage_version_hash(t)));
    Value::Object(entry)
}

/// An opaque 8-byte hash of the storage group/version/kind, base64 encoded like the real
/// server's (the value differs; clients only compare it for equality).
fn storage_version_hash(t: &ResourceType) -> String {
    let mut hasher = Fnv::new();
    hasher.write(t.group.as_bytes());
    hasher.write(b"/");
    hasher.write(t.version.as_bytes());
    hasher.write(b"/");
    hasher.write(t.kind.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(hasher.finish().to_be_bytes())
}

/// The schema name of a kind in the v3 document, in the real server's style
/// (`io.k8s.api.apps.v1.Deployment`, reversed group for custom resources).
fn schema_name(t: &ResourceType) -> String {
    if t.is_custom() {
        let reversed: Vec<&str> = t.group.rsplit('.').collect();
        return format!("{}.{}.{}", reversed.join("."), t.version, t.kind);
    }
    match t.group.as_str() {
        "" => format!("io.k8s.api.core.{}.{}", t.version, t.kind),
        "apiextensions.k8s.io" => {
            format!(
                "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.{}.{}",
                t.version, t.kind
            )
        }
        "apiregistration.k8s.io" => {
            format!(
                "io.k8s.kube-aggregator.pkg.apis.apiregistration.{}.{}",
                t.version, t.kind
            )
        }
        group => {
            let short = group.split('.').next().unwrap_or(group);
            format!("io.k8s.api.{short}.{}.{}", t.version, t.kind)
        }
    }
}

fn kind_schema(t: &ResourceType, kind: &str) -> Value {
    json!({
        "description": format!("{kind} of {} (schema not modelled by the simulator)", t.api_version()),
        "type": "object",
        "x-kubernetes-group-version-kind": [{"group": t.group, "kind": kind, "version": t.version}],
        "x-kubernetes-preserve-unknown-fields": true,
    })
}

/// The operations one path offers: (HTTP method, `x-kubernetes-action`).
type Operations = &'static [(&'static str, &'static str)];

const COLLECTION_OPS: Operations = &[
    ("get", "list"),
    ("post", "post"),
    ("delete", "deletecollection"),
];
const ITEM_OPS: Operations = &[
    ("get", "get"),
    ("put", "put"),
    ("patch", "patch"),
    ("delete", "delete"),
];
const STATUS_OPS: Operations = &[("get", "get"), ("put", "put"), ("patch", "patch")];
const ALL_NAMESPACES_OPS: Operations = &[("get", "list")];

fn add_paths(paths: &mut Map<String, Value>, t: &ResourceType) {
    let base = if t.group.is_empty() {
        format!("/api/{}", t.version)
    } else {
        format!("/apis/{}/{}", t.group, t.version)
    };
    let scope = if t.namespaced {
        format!("{base}/namespaces/{{namespace}}")
    } else {
        base.clone()
    };
    let collection = format!("{scope}/{}", t.plural);
    let item = format!("{collection}/{{name}}");
    paths.insert(collection.clone(), path_item(t, COLLECTION_OPS, false));
    paths.insert(item.clone(), path_item(t, ITEM_OPS, true));
    if t.has_status {
        paths.insert(format!("{item}/status"), path_item(t, STATUS_OPS, true));
    }
    if t.namespaced {
        paths.insert(format!("{base}/{}", t.plural), path_item_all_namespaces(t));
    }
}

fn path_item(t: &ResourceType, ops: Operations, named: bool) -> Value {
    let mut item = Map::new();
    for (method, action) in ops {
        item.insert((*method).to_owned(), operation(t, action));
    }
    let mut params = Vec::new();
    if named {
        params.push(path_param("name", &format!("name of the {}", t.kind)));
    }
    if t.namespaced {
        params.push(path_param(
            "namespace",
            "object name and auth scope, such as for teams and projects",
        ));
    }
    item.insert("parameters".into(), Value::Array(params));
    Value::Object(item)
}

fn path_item_all_namespaces(t: &ResourceType) -> Value {
    let mut item = Map::new();
    for (method, action) in ALL_NAMESPACES_OPS {
        item.insert((*method).to_owned(), operation(t, action));
    }
    Value::Object(item)
}

fn path_param(name: &str, description: &str) -> Value {
    json!({"name": name, "in": "path", "description": description, "required": true, "schema": {"type": "string", "uniqueItems": true}})
}

fn query_param(name: &str, kind: &str) -> Value {
    json!({"name": name, "in": "query", "schema": {"type": kind, "uniqueItems": true}})
}

fn operation(t: &ResourceType, action: &str) -> Value {
    let schema_ref = schema_name(t);
    let response_ref = if action == "list" {
        format!("{schema_ref}List")
    } else {
        schema_ref.clone()
    };
    let params: Vec<Value> = match action {
        "list" => [
            ("allowWatchBookmarks", "boolean"),
            ("continue", "string"),
            ("fieldSelector", "string"),
            ("labelSelector", "string"),
            ("limit", "integer"),
            ("resourceVersion", "string"),
            ("timeoutSeconds", "integer"),
            ("watch", "boolean"),
        ]
        .iter()
        .map(|(n, k)| query_param(n, k))
        .collect(),
        "post" | "put" => [
            ("dryRun", "string"),
            ("fieldManager", "string"),
            ("fieldValidation", "string"),
        ]
        .iter()
        .map(|(n, k)| query_param(n, k))
        .collect(),
        "patch" => [
            ("dryRun", "string"),
            ("fieldManager", "string"),
            ("fieldValidation", "string"),
            ("force", "boolean"),
        ]
        .iter()
        .map(|(n, k)| query_param(n, k))
        .collect(),
        "delete" | "deletecollection" => [
            ("dryRun", "string"),
            ("gracePeriodSeconds", "integer"),
            ("propagationPolicy", "string"),
        ]
        .iter()
        .map(|(n, k)| query_param(n, k))
        .collect(),
        _ => Vec::new(),
    };
    let json_ref = json!({"schema": {"$ref": format!("#/components/schemas/{response_ref}")}});
    let mut op = Map::new();
    op.insert("tags".into(), json!([tag(t)]));
    op.insert("parameters".into(), Value::Array(params));
    match action {
        "post" | "put" => {
            let body = json!({"schema": {"$ref": format!("#/components/schemas/{schema_ref}")}});
            op.insert(
                "requestBody".into(),
                json!({"content": {"*/*": body}, "required": true}),
            );
        }
        "patch" => {
            let body = json!({"schema": {"type": "object"}});
            let content = json!({
                "application/apply-patch+yaml": body,
                "application/json-patch+json": body,
                "application/merge-patch+json": body,
            });
            op.insert(
                "requestBody".into(),
                json!({"content": content, "required": true}),
            );
        }
        _ => {}
    }
    op.insert(
        "responses".into(),
        json!({"200": {"description": "OK", "content": {"application/json": json_ref}}}),
    );
    op.insert("x-kubernetes-action".into(), json!(action));
    op.insert(
        "x-kubernetes-group-version-kind".into(),
        json!({"group": t.group, "kind": t.kind, "version": t.version}),
    );
    Value::Object(op)
}

fn tag(t: &ResourceType) -> String {
    if t.group.is_empty() {
        format!("core_{}", t.version)
    } else {
        format!("{}_{}", t.group, t.version)
    }
}

/// Append a length-delimited protobuf field.
fn proto_bytes_field(out: &mut Vec<u8>, field: u32, bytes: &[u8]) {
    proto_varint(out, u64::from(field << 3 | 2));
    proto_varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

fn proto_varint(out: &mut Vec<u8>, mut value: u64) {
    for _ in 0..10 {
        let byte = (value & 0x7f) as u8;
        value >>= 7;
        if value == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

/// 64-bit FNV-1a, a small stable hash for cache keys.
struct Fnv(u64);

impl Fnv {
    fn new() -> Self {
        Self(0xcbf2_9ce4_8422_2325)
    }

    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 ^= u64::from(*b);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::resources::{builtin_types, crd_types};

    fn crd(group: &str, kind: &str, plural: &str, versions: &[&str], scope: &str) -> Value {
        let versions: Vec<Value> = versions
            .iter()
            .map(|v| json!({"name": v, "served": true, "storage": true, "subresources": {"status": {}}, "schema": {"openAPIV3Schema": {"type": "object"}}}))
            .collect();
        json!({"spec": {"group": group, "scope": scope, "names": {"kind": kind, "plural": plural}, "versions": versions}})
    }

    fn cluster_types() -> Vec<Arc<ResourceType>> {
        let mut types = builtin_types();
        types.extend(crd_types(&crd(
            "zeta.example.com",
            "Widget",
            "widgets",
            &["v1alpha1", "v1", "v1beta1"],
            "Namespaced",
        )));
        types.extend(crd_types(&crd(
            "argoproj.io",
            "Application",
            "applications",
            &["v1alpha1"],
            "Namespaced",
        )));
        types.extend(crd_types(&crd(
            "cert.example.com",
            "Issuer",
            "clusterissuers",
            &["v2", "foo", "v10"],
            "Cluster",
        )));
        types
    }

    /// kubectl's `supportsQueryParamV3`: the first PATCH operation whose
    /// `x-kubernetes-group-version-kind` matches decides.
    fn supports_query_param(
        doc: &Value,
        group: &str,
        version: &str,
        kind: &str,
        param: &str,
    ) -> Option<bool> {
        for item in doc["paths"].as_object()?.values() {
            let Some(patch) = item.get("patch") else {
                continue;
            };
            let gvk = &patch["x-kubernetes-group-version-kind"];
            if gvk["group"] != group || gvk["version"] != version || gvk["kind"] != kind {
                continue;
            }
            let params = patch["parameters"].as_array()?;
            return Some(
                params
                    .iter()
                    .any(|p| p["name"] == param && p["in"] == "query"),
            );
        }
        None
    }

    #[test]
    fn version_reports_v1_35() {
        let v = version_info();
        assert_eq!(v["major"], "1");
        assert_eq!(v["minor"], "35");
        assert_eq!(v["gitVersion"], GIT_VERSION);
        assert_eq!(v["platform"], "linux/amd64");
    }

    #[test]
    fn core_versions_carry_the_server_address() {
        let v = core_api_versions("127.0.0.1:6443");
        assert_eq!(v["kind"], "APIVersions");
        assert_eq!(v["versions"], json!(["v1"]));
        assert_eq!(
            v["serverAddressByClientCIDRs"][0]["serverAddress"],
            "127.0.0.1:6443"
        );
    }

    #[test]
    fn group_list_orders_builtins_by_priority_then_crds_by_apiservice_name() {
        let list = api_group_list(&cluster_types());
        assert_eq!(list["kind"], "APIGroupList");
        let names: Vec<&str> = list["groups"]
            .as_array()
            .unwrap()
            .iter()
            .map(|g| g["name"].as_str().unwrap())
            .collect();
        assert_eq!(
            names,
            [
                "apiregistration.k8s.io",
                "apps",
                "events.k8s.io",
                "autoscaling",
                "batch",
                "networking.k8s.io",
                "policy",
                "rbac.authorization.k8s.io",
                "storage.k8s.io",
                "apiextensions.k8s.io",
                "coordination.k8s.io",
                "discovery.k8s.io",
                // CRD groups tie on priority and sort by their smallest APIService name:
                // "foo.cert.example.com" < "v1.zeta.example.com" < "v1alpha1.argoproj.io".
                "cert.example.com",
                "zeta.example.com",
                "argoproj.io",
            ]
        );
        let autoscaling = &list["groups"][3];
        assert_eq!(
            autoscaling["versions"],
            json!([{"groupVersion": "autoscaling/v2", "version": "v2"}, {"groupVersion": "autoscaling/v1", "version": "v1"}])
        );
        assert_eq!(
            autoscaling["preferredVersion"],
            json!({"groupVersion": "autoscaling/v2", "version": "v2"})
        );
    }

    #[test]
    fn crd_group_versions_sort_kube_aware() {
        let types = cluster_types();
        let widgets = api_group(&types, "zeta.example.com").unwrap();
        assert_eq!(widgets["kind"], "APIGroup");
        assert_eq!(widgets["apiVersion"], "v1");
        let versions: Vec<&str> = widgets["versions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["version"].as_str().unwrap())
            .collect();
        assert_eq!(versions, ["v1", "v1beta1", "v1alpha1"]);
        assert_eq!(
            widgets["preferredVersion"]["groupVersion"],
            "zeta.example.com/v1"
        );
        let issuers = api_group(&types, "cert.example.com").unwrap();
        let versions: Vec<&str> = issuers["versions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["version"].as_str().unwrap())
            .collect();
        assert_eq!(versions, ["v10", "v2", "foo"]);
        assert!(api_group(&types, "").is_none());
        assert!(api_group(&types, "nope.example.com").is_none());
    }

    #[test]
    fn kube_version_order() {
        let mut v = vec![
            "foo10",
            "v1alpha1",
            "v11alpha2",
            "v2",
            "v1",
            "foo1",
            "v3beta1",
            "v10beta3",
            "v10",
            "v11beta2",
            "v12alpha1",
        ];
        v.sort_by(|a, b| compare_kube_versions(a, b));
        assert_eq!(
            v,
            [
                "v10",
                "v2",
                "v1",
                "v11beta2",
                "v10beta3",
                "v3beta1",
                "v12alpha1",
                "v11alpha2",
                "v1alpha1",
                "foo1",
                "foo10"
            ]
        );
    }

    #[test]
    fn core_resource_list_shape() {
        let list = api_resource_list(&cluster_types(), "", "v1").unwrap();
        assert_eq!(list["kind"], "APIResourceList");
        assert_eq!(list["groupVersion"], "v1");
        assert!(list.get("apiVersion").is_none());
        let resources = list["resources"].as_array().unwrap();
        let names: Vec<&str> = resources
            .iter()
            .map(|r| r["name"].as_str().unwrap())
            .collect();
        let mut sorted = names.clone();
        sorted.sort_unstable();
        assert_eq!(names, sorted);
        let pods = resources.iter().find(|r| r["name"] == "pods").unwrap();
        assert_eq!(pods["singularName"], "pod");
        assert_eq!(pods["namespaced"], true);
        assert_eq!(pods["kind"], "Pod");
        assert_eq!(pods["shortNames"], json!(["po"]));
        assert_eq!(pods["categories"], json!(["all"]));
        assert_eq!(
            pods["verbs"],
            json!([
                "create",
                "delete",
                "deletecollection",
                "get",
                "list",
                "patch",
                "update",
                "watch"
            ])
        );
        assert!(pods["storageVersionHash"].as_str().unwrap().len() == 12);
        let status = resources
            .iter()
            .find(|r| r["name"] == "pods/status")
            .unwrap();
        assert_eq!(status["verbs"], json!(["get", "patch", "update"]));
        assert_eq!(status["kind"], "Pod");
        let secrets = resources.iter().find(|r| r["name"] == "secrets").unwrap();
        assert!(secrets.get("shortNames").is_none());
        assert!(!names.contains(&"secrets/status"));
        let ns = resources
            .iter()
            .find(|r| r["name"] == "namespaces")
            .unwrap();
        assert_eq!(ns["namespaced"], false);
    }

    #[test]
    fn group_resource_list_shape() {
        let types = cluster_types();
        let list = api_resource_list(&types, "apps", "v1").unwrap();
        assert_eq!(list["apiVersion"], "v1");
        assert_eq!(list["groupVersion"], "apps/v1");
        let names: Vec<&str> = list["resources"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["name"].as_str().unwrap())
            .collect();
        assert!(names.contains(&"deployments") && names.contains(&"deployments/status"));
        let crds = api_resource_list(&types, "cert.example.com", "v10").unwrap();
        assert_eq!(crds["resources"][0]["name"], "clusterissuers");
        assert_eq!(crds["resources"][0]["namespaced"], false);
        assert!(crds["resources"][0].get("categories").is_none());
        assert!(api_resource_list(&types, "apps", "v2").is_none());
        assert!(api_resource_list(&types, "nope", "v1").is_none());
    }

    #[test]
    fn every_type_is_discoverable_and_in_openapi_v3() {
        let types = cluster_types();
        let groups = api_group_list(&types);
        let index = openapi_v3_index(&types);
        for t in &types {
            let list = api_resource_list(&types, &t.group, &t.version).unwrap();
            assert!(
                list["resources"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|r| r["name"] == t.plural.as_str() && r["kind"] == t.kind.as_str()),
                "{t:?}"
            );
            if !t.group.is_empty() {
                let group = groups["groups"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|g| g["name"] == t.group.as_str())
                    .unwrap();
                assert!(
                    group["versions"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .any(|v| v["version"] == t.version.as_str())
                );
            }
            let key = openapi_v3_path(&t.group, &t.version);
            let url = index["paths"][&key]["serverRelativeURL"].as_str().unwrap();
            assert!(
                url.starts_with(&format!("/openapi/v3/{key}?hash=")),
                "{url}"
            );
            let doc = openapi_v3_group_version(&types, &t.group, &t.version).unwrap();
            assert_eq!(
                supports_query_param(&doc, &t.group, &t.version, &t.kind, "fieldValidation"),
                Some(true),
                "{t:?}"
            );
            let schemas = doc["components"]["schemas"].as_object().unwrap();
            assert!(
                schemas
                    .values()
                    .any(|s| s["x-kubernetes-group-version-kind"][0]["kind"] == t.kind.as_str())
            );
        }
    }

    #[test]
    fn openapi_v3_document_shape() {
        let types = cluster_types();
        let doc = openapi_v3_group_version(&types, "apps", "v1").unwrap();
        assert_eq!(doc["openapi"], "3.0.0");
        let item = &doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"];
        for method in ["get", "put", "patch", "delete"] {
            assert_eq!(
                item[method]["x-kubernetes-group-version-kind"],
                json!({"group": "apps", "kind": "Deployment", "version": "v1"})
            );
        }
        assert_eq!(item["patch"]["x-kubernetes-action"], "patch");
        let patch_params: Vec<&str> = item["patch"]["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["name"].as_str().unwrap())
            .collect();
        for p in ["dryRun", "fieldManager", "fieldValidation", "force"] {
            assert!(patch_params.contains(&p), "{p}");
        }
        let content = item["patch"]["requestBody"]["content"].as_object().unwrap();
        assert!(content.contains_key("application/merge-patch+json"));
        assert!(!content.contains_key("application/strategic-merge-patch+json"));
        let collection = &doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments"];
        assert_eq!(collection["get"]["x-kubernetes-action"], "list");
        assert_eq!(collection["post"]["x-kubernetes-action"], "post");
        assert!(doc["paths"]["/apis/apps/v1/deployments"]["get"].is_object());
        assert!(
            doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}/status"]["patch"]
                .is_object()
        );
        assert!(
            doc["paths"]
                .get("/apis/apps/v1/namespaces/{namespace}/controllerrevisions/{name}/status")
                .is_none()
        );
        let schema = &doc["components"]["schemas"]["io.k8s.api.apps.v1.Deployment"];
        assert_eq!(
            schema["x-kubernetes-group-version-kind"],
            json!([{"group": "apps", "kind": "Deployment", "version": "v1"}])
        );
        let core = openapi_v3_group_version(&types, "", "v1").unwrap();
        assert!(core["paths"]["/api/v1/namespaces/{name}"]["patch"].is_object());
        assert!(core["components"]["schemas"]["io.k8s.api.core.v1.Namespace"].is_object());
        let custom = openapi_v3_group_version(&types, "cert.example.com", "v2").unwrap();
        assert!(
            custom["paths"]["/apis/cert.example.com/v2/clusterissuers/{name}"]["patch"].is_object()
        );
        assert!(custom["components"]["schemas"]["com.example.cert.v2.Issuer"].is_object());
        assert!(openapi_v3_group_version(&types, "apps", "v9").is_none());
    }

    #[test]
    fn openapi_v3_index_hash_is_stable_and_tracks_changes() {
        let types = cluster_types();
        let index = openapi_v3_index(&types);
        assert_eq!(index, openapi_v3_index(&cluster_types()));
        let keys: Vec<&String> = index["paths"].as_object().unwrap().keys().collect();
        assert_eq!(keys[0], "api/v1");
        assert_eq!(keys[1], "apis/apiregistration.k8s.io/v1");
        let mut more = types.clone();
        more.extend(crd_types(&crd(
            "argoproj.io",
            "AppProject",
            "appprojects",
            &["v1alpha1"],
            "Namespaced",
        )));
        let changed = openapi_v3_index(&more);
        assert_ne!(
            index["paths"]["apis/argoproj.io/v1alpha1"],
            changed["paths"]["apis/argoproj.io/v1alpha1"]
        );
        assert_eq!(
            index["paths"]["apis/apps/v1"],
            changed["paths"]["apis/apps/v1"]
        );
    }

    #[test]
    fn openapi_v2_documents() {
        let doc = openapi_v2();
        assert_eq!(doc["swagger"], "2.0");
        assert!(doc["paths"].as_object().unwrap().is_empty());
        let pb = openapi_v2_protobuf();
        let mut expected = vec![0x0a, 3];
        expected.extend_from_slice(b"2.0");
        let mut info = vec![0x0a, 10];
        info.extend_from_slice(b"Kubernetes");
        info.extend_from_slice(&[0x12, GIT_VERSION.len() as u8]);
        info.extend_from_slice(GIT_VERSION.as_bytes());
        expected.extend_from_slice(&[0x12, info.len() as u8]);
        expected.extend_from_slice(&info);
        expected.extend_from_slice(&[0x42, 0, 0x4a, 0]);
        assert_eq!(pb, expected);
        let mut long = Vec::new();
        proto_bytes_field(&mut long, 1, &[7; 300]);
        assert_eq!(&long[..3], &[0x0a, 0xac, 0x02]);
    }

    /// A TLS server answering discovery and OpenAPI from this module (and creates with an
    /// echo) under a `/clusters/dev` prefix, for driving the real kubectl against.
    mod fake_server {
        use super::*;
        use bytes::Bytes;
        use http::{Method, Request, Response, StatusCode};
        use http_body_util::{BodyExt, Full};
        use hyper::body::Incoming;
        use hyper_util::rt::{TokioExecutor, TokioIo};
        use parking_lot::Mutex;

        pub const PREFIX: &str = "/clusters/dev";
        pub const TOKEN: &str = "sim-token";

        pub struct Fake {
            pub types: Vec<Arc<ResourceType>>,
            pub address: String,
            pub requests: Mutex<Vec<String>>,
            pub objects: Mutex<std::collections::BTreeMap<String, Value>>,
        }

        fn reply(code: u16, content_type: &str, body: Vec<u8>) -> Response<Full<Bytes>> {
            let mut resp = Response::new(Full::new(Bytes::from(body)));
            *resp.status_mut() = StatusCode::from_u16(code).unwrap();
            resp.headers_mut()
                .insert(http::header::CONTENT_TYPE, content_type.parse().unwrap());
            resp
        }

        fn json_reply(code: u16, v: &Value) -> Response<Full<Bytes>> {
            reply(code, "application/json", serde_json::to_vec(v).unwrap())
        }

        fn route(
            fake: &Fake,
            method: &Method,
            path: &str,
            query: &str,
            accept: &str,
            body: &[u8],
        ) -> Response<Full<Bytes>> {
            let not_found = || json_reply(404, &crate::ApiError::no_route(path).to_status());
            let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
            let t = &fake.types;
            let found = |v: Option<Value>| v.map_or_else(not_found, |v| json_reply(200, &v));
            match (method.as_str(), segs.as_slice()) {
                ("GET", ["version"]) => json_reply(200, &version_info()),
                ("GET", ["api"]) => json_reply(200, &core_api_versions(&fake.address)),
                ("GET", ["apis"]) => json_reply(200, &api_group_list(t)),
                ("GET", ["api", v]) => found(api_resource_list(t, "", v)),
                ("GET", ["apis", g]) => found(api_group(t, g)),
                ("GET", ["apis", g, v]) => found(api_resource_list(t, g, v)),
                ("GET", ["openapi", "v2"]) if accept.contains("protobuf") => reply(
                    200,
                    "application/com.github.proto-openapi.spec.v2@v1.0+protobuf",
                    openapi_v2_protobuf(),
                ),
                ("GET", ["openapi", "v2"]) => json_reply(200, &openapi_v2()),
                ("GET", ["openapi", "v3"]) => json_reply(200, &openapi_v3_index(t)),
                ("GET", ["openapi", "v3", "api", v]) => found(openapi_v3_group_version(t, "", v)),
                ("GET", ["openapi", "v3", "apis", g, v]) => {
                    found(openapi_v3_group_version(t, g, v))
                }
                ("GET" | "PATCH", [.., plural, name]) => match fake.objects.lock().get(path) {
                    Some(obj) => json_reply(200, obj),
                    None => json_reply(404, &crate::ApiError::not_found(plural, name).to_status()),
                },
                ("POST", _) => {
                    let mut obj: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
                    obj["metadata"]["uid"] = json!("00000000-0000-0000-0000-000000000001");
                    obj["metadata"]["resourceVersion"] = json!("1");
                    if !query.contains("dryRun") {
                        let name = obj["metadata"]["name"].as_str().unwrap_or_default();
                        fake.objects
                            .lock()
                            .insert(format!("{path}/{name}"), obj.clone());
                    }
                    json_reply(201, &obj)
                }
                _ => not_found(),
            }
        }

        async fn handle(
            fake: Arc<Fake>,
            req: Request<Incoming>,
        ) -> Result<Response<Full<Bytes>>, hyper::Error> {
            let method = req.method().clone();
            let uri = req.uri().clone();
            let accept = req
                .headers()
                .get(http::header::ACCEPT)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_owned();
            let authorized = req
                .headers()
                .get(http::header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                == Some(&format!("Bearer {TOKEN}"));
            let content_type = req
                .headers()
                .get(http::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_owned();
            let body = req.into_body().collect().await?.to_bytes();
            fake.requests
                .lock()
                .push(format!("{method} {uri} {content_type}"));
            if !authorized {
                return Ok(json_reply(
                    401,
                    &crate::ApiError::unauthorized().to_status(),
                ));
            }
            let Some(path) = uri.path().strip_prefix(PREFIX) else {
                return Ok(json_reply(
                    404,
                    &crate::ApiError::no_route(uri.path()).to_status(),
                ));
            };
            Ok(route(
                &fake,
                &method,
                path,
                uri.query().unwrap_or(""),
                &accept,
                &body,
            ))
        }

        /// Serve `fake` over TLS on `listener` until the task is aborted.
        pub async fn serve(
            listener: tokio::net::TcpListener,
            fake: Arc<Fake>,
            tls: crate::tls::SimTls,
        ) {
            let acceptor = tokio_rustls::TlsAcceptor::from(tls.server_config);
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    return;
                };
                let acceptor = acceptor.clone();
                let fake = Arc::clone(&fake);
                tokio::spawn(async move {
                    let Ok(stream) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let service =
                        hyper::service::service_fn(move |req| handle(Arc::clone(&fake), req));
                    let builder =
                        hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
                    let _ = builder
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        }
    }

    fn manifest(generation: u32) -> String {
        format!(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: web, namespace: default}}\nspec:\n  selector: {{matchLabels: {{app: web}}}}\n  template:\n    metadata: {{labels: {{app: web}}}}\n    spec: {{containers: [{{name: web, image: 'nginx:{generation}'}}]}}\n---\napiVersion: zeta.example.com/v1\nkind: Widget\nmetadata: {{name: w1, namespace: default}}\nspec: {{size: {generation}}}\n"
        )
    }

    async fn kubectl(
        bin: &std::path::Path,
        dir: &std::path::Path,
        args: &[&str],
    ) -> std::process::Output {
        let mut cmd = tokio::process::Command::new(bin);
        cmd.arg("--kubeconfig")
            .arg(dir.join("config"))
            .arg("--cache-dir")
            .arg(dir.join("cache"))
            .args(args);
        cmd.env("HOME", dir)
            .env_remove("KUBECONFIG")
            .kill_on_drop(true);
        tokio::time::timeout(std::time::Duration::from_secs(60), cmd.output())
            .await
            .unwrap()
            .unwrap()
    }

    /// The real kubectl (v1.35) discovers every type, and applies built-in and custom objects
    /// relying on server-side field validation (it found `fieldValidation` in OpenAPI v3).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn real_kubectl_discovers_and_uses_server_side_field_validation() {
        let bin = std::env::var_os("KEELSON_KUBECTL").map_or_else(
            || std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.tools/bin/kubectl"),
            std::path::PathBuf::from,
        );
        assert!(
            bin.exists(),
            "{} not found: run scripts/install-deps",
            bin.display()
        );
        let dir =
            std::env::temp_dir().join(format!("keelson-sim-discovery-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let tls = crate::tls::generate().unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap().to_string();
        let fake = Arc::new(fake_server::Fake {
            types: cluster_types(),
            address: address.clone(),
            requests: parking_lot::Mutex::new(Vec::new()),
            objects: parking_lot::Mutex::new(std::collections::BTreeMap::new()),
        });
        let server = tokio::spawn(fake_server::serve(listener, Arc::clone(&fake), tls.clone()));
        let endpoint = crate::kubeconfig::ClusterEndpoint {
            name: "dev".into(),
            server: format!("https://{address}{}", fake_server::PREFIX),
            token: fake_server::TOKEN.into(),
        };
        let config = crate::kubeconfig::kubeconfig(&[endpoint], Some(&tls.ca_pem), None);
        std::fs::write(dir.join("config"), config).unwrap();
        std::fs::write(dir.join("objects.yaml"), manifest(1)).unwrap();

        let out = kubectl(&bin, &dir, &["api-resources", "-o", "name"]).await;
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        for name in [
            "pods",
            "deployments.apps",
            "horizontalpodautoscalers.autoscaling",
            "widgets.zeta.example.com",
            "clusterissuers.cert.example.com",
        ] {
            assert!(
                stdout.lines().any(|l| l == name),
                "{name} missing from:\n{stdout}"
            );
        }

        let file = dir.join("objects.yaml");
        let out = kubectl(
            &bin,
            &dir,
            &["apply", "--dry-run=server", "-f", file.to_str().unwrap()],
        )
        .await;
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{stderr}");
        assert!(!stderr.to_lowercase().contains("warning"), "{stderr}");
        let requests = fake.requests.lock().clone();
        for plural in [
            "/apis/apps/v1/namespaces/default/deployments?",
            "/apis/zeta.example.com/v1/namespaces/default/widgets?",
        ] {
            let post = requests
                .iter()
                .find(|r| r.starts_with("POST") && r.contains(plural))
                .unwrap_or_else(|| panic!("no POST {plural} in {requests:#?}"));
            assert!(post.contains("fieldValidation=Strict"), "{post}");
        }
        assert!(
            requests
                .iter()
                .any(|r| r.contains("/clusters/dev/openapi/v3/apis/apps/v1?hash=")),
            "{requests:#?}"
        );
        assert!(
            !requests.iter().any(|r| r.contains("/openapi/v2")),
            "{requests:#?}"
        );

        let out = kubectl(&bin, &dir, &["explain", "deployments"]).await;
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(String::from_utf8_lossy(&out.stdout).contains("Deployment"));

        // Client-side apply of changes: strategic merge for built-in kinds (from kubectl's
        // compiled-in types), JSON merge patch for custom resources, no OpenAPI warnings.
        for generation in [1, 2] {
            std::fs::write(&file, manifest(generation)).unwrap();
            let out = kubectl(&bin, &dir, &["apply", "-f", file.to_str().unwrap()]).await;
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(out.status.success(), "{stderr}");
            assert!(!stderr.to_lowercase().contains("warning"), "{stderr}");
        }
        let requests = fake.requests.lock().clone();
        let patch = |path: &str| {
            requests
                .iter()
                .find(|r| r.starts_with("PATCH") && r.contains(path))
                .unwrap_or_else(|| panic!("no PATCH {path} in {requests:#?}"))
                .clone()
        };
        let deployment = patch("/deployments/web?");
        assert!(
            deployment.ends_with(" application/strategic-merge-patch+json"),
            "{deployment}"
        );
        assert!(
            deployment.contains("fieldValidation=Strict"),
            "{deployment}"
        );
        let widget = patch("/widgets/w1?");
        assert!(
            widget.ends_with(" application/merge-patch+json"),
            "{widget}"
        );
        server.abort();
        let _ = std::fs::remove_dir_all(&dir);
    }
}
