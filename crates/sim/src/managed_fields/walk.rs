//! Schema-typed walks over whole objects, as structured-merge-diff's `typed` package
//! does them: the field set an object sets (`ToFieldSet`), merging a configuration into
//! a live object (`Merge`), comparing two objects (`Compare`) and removing the members
//! of a field set (`RemoveItems`). List kinds and free maps come from
//! [`crate::schema::Schema`]; the sets are [`FieldSet`]s.

use super::field_set::{FieldSet, PathElement, path_to_string, values_equal};
use crate::schema::{ListKind, Schema};
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;

/// How a node is merged and tracked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    /// Scalars, nulls, atomic lists and maps.
    Leaf,
    /// A struct of declared fields: its fields are tracked, not the struct.
    Struct,
    /// A map of free keys: each key is tracked.
    FreeMap,
    /// A list of scalars merged by value.
    Set,
    /// A list of objects keyed by fields.
    Keyed(&'static [&'static str]),
}

fn shape(schema: Schema<'_>, spath: &[&str], lhs: Option<&Value>, rhs: Option<&Value>) -> Shape {
    let (l, r) = (lhs.filter(|v| !v.is_null()), rhs.filter(|v| !v.is_null()));
    if let (Some(l), Some(r)) = (l, r)
        && std::mem::discriminant(l) != std::mem::discriminant(r)
    {
        return Shape::Leaf;
    }
    match r.or(l) {
        Some(Value::Object(_)) if schema.is_atomic_map(spath) => Shape::Leaf,
        Some(Value::Object(_)) if schema.is_free_map(spath) => Shape::FreeMap,
        Some(Value::Object(_)) => Shape::Struct,
        Some(Value::Array(_)) => match schema.list_kind(spath) {
            ListKind::Atomic => Shape::Leaf,
            ListKind::Set => Shape::Set,
            ListKind::Map(keys) => Shape::Keyed(keys),
        },
        _ => Shape::Leaf,
    }
}

/// The default of a list-map key field an item omits. Kubernetes v1.20's schema defaults
/// only the `protocol` of container ports (a Service port without one is an error).
fn key_default(spath: &[&str], field: &str) -> Option<Value> {
    let container_port = matches!(
        spath,
        [
            ..,
            "containers" | "initContainers" | "ephemeralContainers",
            "ports"
        ]
    );
    (container_port && field == "protocol").then(|| Value::String("TCP".into()))
}

/// The path element of a list item.
fn item_element(
    shape: Shape,
    spath: &[&str],
    index: usize,
    item: &Value,
) -> Result<PathElement, String> {
    match shape {
        Shape::Keyed(keys) => {
            let Value::Object(m) = item else {
                return Err(if item.is_null() {
                    "associative list with keys may not have a null element".into()
                } else {
                    "associative list with keys may not have non-map elements".into()
                });
            };
            let mut fields = Vec::with_capacity(keys.len());
            for key in keys {
                match m.get(*key).cloned().or_else(|| key_default(spath, key)) {
                    Some(v) => fields.push(((*key).to_owned(), v)),
                    None => {
                        return Err(format!(
                            "associative list with keys has an element that omits key field {key:?} (and doesn't have default value)"
                        ));
                    }
                }
            }
            Ok(PathElement::key(fields))
        }
        Shape::Set => match item {
            Value::Object(_) => {
                Err("associative list without keys has an element that's a map type".into())
            }
            Value::Array(_) => Err("not supported: associative list with lists as elements".into()),
            Value::Null => {
                Err("associative list without keys has an element that's an explicit null".into())
            }
            v => Ok(PathElement::Value(v.clone())),
        },
        _ => Ok(PathElement::Index(index)),
    }
}

fn is_empty_container(v: Option<&Value>) -> bool {
    match v {
        None | Some(Value::Null) => true,
        Some(Value::Object(m)) => m.is_empty(),
        Some(Value::Array(a)) => a.is_empty(),
        Some(_) => false,
    }
}

/// The items of a list with their path elements; items whose element cannot be
/// computed are reported through `errors` and skipped.
fn keyed_items<'a>(
    shape: Shape,
    spath: &[&str],
    list: &'a [Value],
    path: &[PathElement],
    errors: &mut Vec<String>,
) -> Vec<(PathElement, &'a Value)> {
    let mut out: Vec<(PathElement, &Value)> = Vec::with_capacity(list.len());
    let mut seen = std::collections::BTreeSet::new();
    for (i, item) in list.iter().enumerate() {
        match item_element(shape, spath, i, item) {
            Ok(pe) => {
                if !seen.insert(pe.clone()) {
                    errors.push(format!(
                        "{}: duplicate entries for key {pe}",
                        path_to_string(path)
                    ));
                    continue;
                }
                out.push((pe, item));
            }
            Err(e) => errors.push(format!("{}: element {i}: {e}", path_to_string(path))),
        }
    }
    out
}

/// A walk's position: the field path and the schema path (field names only).
struct Walk<'a> {
    schema: Schema<'a>,
    path: Vec<PathElement>,
    spath: Vec<&'a str>,
    errors: Vec<String>,
}

impl<'a> Walk<'a> {
    fn new(schema: Schema<'a>) -> Self {
        Self {
            schema,
            path: Vec::new(),
            spath: Vec::new(),
            errors: Vec::new(),
        }
    }

    fn shape(&self, lhs: Option<&Value>, rhs: Option<&Value>) -> Shape {
        shape(self.schema, &self.spath, lhs, rhs)
    }

    // -- field sets ----------------------------------------------------------------------

    fn collect(&mut self, v: &'a Value, set: &mut FieldSet) {
        match (self.shape(None, Some(v)), v) {
            (s @ (Shape::Struct | Shape::FreeMap), Value::Object(m)) => {
                for (k, child) in m {
                    self.path.push(PathElement::Field(k.clone()));
                    self.spath.push(k);
                    self.collect(child, set);
                    if s == Shape::FreeMap {
                        set.insert(&self.path);
                    }
                    self.spath.pop();
                    self.path.pop();
                }
            }
            (s @ (Shape::Set | Shape::Keyed(_)), Value::Array(items)) => {
                for (pe, item) in keyed_items(s, &self.spath, items, &self.path, &mut self.errors) {
                    self.path.push(pe);
                    self.collect(item, set);
                    set.insert(&self.path);
                    self.path.pop();
                }
            }
            // A null map or keyed list owns nothing; other nulls are leaves.
            (_, Value::Null) if self.null_is_container() => {}
            _ => set.insert(&self.path),
        }
    }

    fn null_is_container(&self) -> bool {
        self.schema.is_free_map(&self.spath)
            || self.schema.list_kind(&self.spath) != ListKind::Atomic
    }

    // -- merge ---------------------------------------------------------------------------

    fn merge(&mut self, lhs: Option<&'a Value>, rhs: Option<&'a Value>) -> Option<Value> {
        let shape = self.shape(lhs, rhs);
        if shape == Shape::Leaf || (is_empty_container(lhs) && is_empty_container(rhs)) {
            return rhs.or(lhs).cloned();
        }
        match shape {
            Shape::Struct | Shape::FreeMap => {
                let (lm, rm) = (
                    lhs.and_then(Value::as_object),
                    rhs.and_then(Value::as_object),
                );
                let mut out = Map::new();
                let keys = lm.into_iter().flat_map(|m| m.keys()).chain(
                    rm.into_iter()
                        .flat_map(|m| m.keys())
                        .filter(|k| !lm.is_some_and(|l| l.contains_key(*k))),
                );
                for k in keys {
                    self.path.push(PathElement::Field(k.clone()));
                    self.spath.push(k);
                    let merged = self.merge(lm.and_then(|m| m.get(k)), rm.and_then(|m| m.get(k)));
                    self.spath.pop();
                    self.path.pop();
                    if let Some(v) = merged {
                        out.insert(k.clone(), v);
                    }
                }
                (!out.is_empty()).then_some(Value::Object(out))
            }
            _ => self.merge_list(shape, lhs, rhs),
        }
    }

    fn merge_list(
        &mut self,
        shape: Shape,
        lhs: Option<&'a Value>,
        rhs: Option<&'a Value>,
    ) -> Option<Value> {
        let empty: &[Value] = &[];
        let la = lhs.and_then(Value::as_array).map_or(empty, Vec::as_slice);
        let ra = rhs.and_then(Value::as_array).map_or(empty, Vec::as_slice);
        let rhs_items = keyed_items(shape, &self.spath, ra, &self.path, &mut self.errors);
        let rhs_index: BTreeMap<&PathElement, &Value> =
            rhs_items.iter().map(|(pe, v)| (pe, *v)).collect();
        let mut seen = std::collections::BTreeSet::new();
        let mut out = Vec::with_capacity(la.len().max(ra.len()));
        for (i, item) in la.iter().enumerate() {
            let Ok(pe) = item_element(shape, &self.spath, i, item) else {
                out.push(item.clone());
                continue;
            };
            if !seen.insert(pe.clone()) {
                continue;
            }
            let r = rhs_index.get(&pe).copied();
            self.path.push(pe);
            if let Some(v) = self.merge(Some(item), r) {
                out.push(v);
            }
            self.path.pop();
        }
        for (pe, item) in &rhs_items {
            if seen.contains(pe) {
                continue;
            }
            self.path.push(pe.clone());
            if let Some(v) = self.merge(None, Some(item)) {
                out.push(v);
            }
            self.path.pop();
        }
        (!out.is_empty()).then_some(Value::Array(out))
    }

    // -- compare -------------------------------------------------------------------------

    fn compare(&mut self, lhs: Option<&'a Value>, rhs: Option<&'a Value>, c: &mut Comparison) {
        let shape = self.shape(lhs, rhs);
        if shape == Shape::Leaf || (is_empty_container(lhs) && is_empty_container(rhs)) {
            match (lhs, rhs) {
                (None, Some(_)) => c.added.insert(&self.path),
                (Some(_), None) => c.removed.insert(&self.path),
                (Some(l), Some(r)) if !values_equal(l, r) => c.modified.insert(&self.path),
                _ => {}
            }
            return;
        }
        match shape {
            Shape::Struct | Shape::FreeMap => {
                let (lm, rm) = (
                    lhs.and_then(Value::as_object),
                    rhs.and_then(Value::as_object),
                );
                let keys: Vec<&'a String> = lm
                    .into_iter()
                    .flat_map(|m| m.keys())
                    .chain(
                        rm.into_iter()
                            .flat_map(|m| m.keys())
                            .filter(|k| !lm.is_some_and(|l| l.contains_key(*k))),
                    )
                    .collect();
                for k in keys {
                    self.path.push(PathElement::Field(k.clone()));
                    self.spath.push(k);
                    self.compare(lm.and_then(|m| m.get(k)), rm.and_then(|m| m.get(k)), c);
                    self.spath.pop();
                    self.path.pop();
                }
            }
            _ => {
                let empty: &[Value] = &[];
                let la = lhs.and_then(Value::as_array).map_or(empty, Vec::as_slice);
                let ra = rhs.and_then(Value::as_array).map_or(empty, Vec::as_slice);
                let mut errors = Vec::new();
                let litems = keyed_items(shape, &self.spath, la, &self.path, &mut errors);
                let ritems = keyed_items(shape, &self.spath, ra, &self.path, &mut errors);
                let rindex: BTreeMap<&PathElement, &'a Value> =
                    ritems.iter().map(|(pe, v)| (pe, *v)).collect();
                let lindex: BTreeMap<&PathElement, &'a Value> =
                    litems.iter().map(|(pe, v)| (pe, *v)).collect();
                for (pe, item) in &litems {
                    self.path.push(pe.clone());
                    self.compare(Some(item), rindex.get(pe).copied(), c);
                    self.path.pop();
                }
                for (pe, item) in &ritems {
                    if !lindex.contains_key(pe) {
                        self.path.push(pe.clone());
                        self.compare(None, Some(item), c);
                        self.path.pop();
                    }
                }
            }
        }
        match (lhs, rhs) {
            (None, Some(_)) => c.added.insert(&self.path),
            (Some(_), None) => c.removed.insert(&self.path),
            _ => {}
        }
    }

    // -- removal -------------------------------------------------------------------------

    /// Removes every member of `set` (a member removes its whole subtree). Containers
    /// emptied by the removal are dropped for built-in kinds (their typed form omits
    /// them); for custom resources emptied maps stay `{}` and emptied lists become null.
    fn remove(&mut self, v: &'a Value, set: &FieldSet) -> Value {
        if set.is_empty() {
            return v.clone();
        }
        let builtin = matches!(self.schema, Schema::Builtin { .. });
        match (self.shape(None, Some(v)), v) {
            (Shape::Struct | Shape::FreeMap, Value::Object(m)) => {
                let mut out = Map::new();
                for (k, child) in m {
                    let pe = PathElement::Field(k.clone());
                    if set.has_member(&pe) {
                        continue;
                    }
                    let sub = set.with_prefix(&pe);
                    if sub.is_empty() {
                        out.insert(k.clone(), child.clone());
                        continue;
                    }
                    self.spath.push(k);
                    let new = self.remove(child, &sub);
                    self.spath.pop();
                    match emptied(child, new, builtin) {
                        Some(new) => out.insert(k.clone(), new),
                        None => continue,
                    };
                }
                Value::Object(out)
            }
            (s @ (Shape::Set | Shape::Keyed(_)), Value::Array(items)) => {
                let mut out = Vec::with_capacity(items.len());
                for (i, item) in items.iter().enumerate() {
                    let Ok(pe) = item_element(s, &self.spath, i, item) else {
                        out.push(item.clone());
                        continue;
                    };
                    if set.has_member(&pe) {
                        continue;
                    }
                    let sub = set.with_prefix(&pe);
                    out.push(if sub.is_empty() {
                        item.clone()
                    } else {
                        self.remove(item, &sub)
                    });
                }
                Value::Array(out)
            }
            _ => v.clone(),
        }
    }
}

/// What a child becomes after removal emptied it (None: drop the key).
fn emptied(before: &Value, after: Value, builtin: bool) -> Option<Value> {
    let was_full = !is_empty_container(Some(before));
    match &after {
        Value::Object(m) if was_full && m.is_empty() => (!builtin).then_some(after),
        Value::Array(a) if was_full && a.is_empty() => (!builtin).then_some(Value::Null),
        _ => Some(after),
    }
}

/// The differences between two objects, as structured-merge-diff compares them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Comparison {
    /// Fields present only in the new object.
    pub added: FieldSet,
    /// Leaf fields whose value changed.
    pub modified: FieldSet,
    /// Fields present only in the old object.
    pub removed: FieldSet,
}

impl Comparison {
    /// Whether the objects are the same.
    pub fn is_same(&self) -> bool {
        self.added.is_empty() && self.modified.is_empty() && self.removed.is_empty()
    }
}

/// Compares `old` with `new` (whole objects, nothing stripped).
pub fn compare(old: &Value, new: &Value, schema: Schema<'_>) -> Comparison {
    let mut c = Comparison::default();
    Walk::new(schema).compare(Some(old), Some(new), &mut c);
    c
}

/// Merges `config` into `live` as server-side apply does: maps recursively, list-maps
/// by key, sets as unions, atomic values and scalars replaced.
pub fn merge(live: &Value, config: &Value, schema: Schema<'_>) -> Value {
    Walk::new(schema)
        .merge(Some(live), Some(config))
        .unwrap_or_else(|| json!({}))
}

/// Every field of `obj`, nothing stripped; items whose key cannot be computed are
/// reported.
pub(super) fn raw_field_set(obj: &Value, schema: Schema<'_>) -> (FieldSet, Vec<String>) {
    let mut walk = Walk::new(schema);
    let mut set = FieldSet::new();
    walk.collect(obj, &mut set);
    (set, walk.errors)
}

/// Removes every member of `set` from `v` (a member removes its whole subtree).
pub(super) fn remove_items(v: &Value, set: &FieldSet, schema: Schema<'_>) -> Value {
    Walk::new(schema).remove(v, set)
}
