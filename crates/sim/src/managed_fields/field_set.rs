//! Sets of field paths as server-side apply tracks them (structured-merge-diff's
//! `fieldpath.Set`: a trie of path elements, its set algebra, the `fieldsV1` JSON
//! encoding of `metadata.managedFields` and the human path form of conflict messages).
//! The schema-typed walks over objects that produce and consume them are in
//! `managed_fields::walk`.

use serde_json::{Map, Value};
use std::cmp::Ordering;
use std::collections::BTreeMap;

/// Kept at this path for callers of the module that also held the typed walks.
pub use super::walk::{Comparison, compare, merge};

/// Errors decoding a `fieldsV1` document.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FieldSetError {
    /// A node of the document is not a JSON object.
    #[error("expected an object at {0}")]
    ParseNode(String),
    /// A key has no known prefix (`f:`, `k:`, `v:`, `i:` or `.`).
    #[error("unknown path element {0:?}")]
    ParseElementPrefix(String),
    /// The JSON after `k:` or `v:` does not parse, or `k:` is not an object.
    #[error("invalid path element value in {0:?}")]
    ParseElementValue(String),
    /// The number after `i:` does not parse.
    #[error("invalid list index in {0:?}")]
    ParseElementIndex(String),
}

/// One step of a field path.
#[derive(Debug, Clone)]
pub enum PathElement {
    /// A field of a struct or a key of a map (`f:name`).
    Field(String),
    /// An item of a list keyed by fields (`k:{"name":"x"}`), key fields sorted by name.
    Key(Vec<(String, Value)>),
    /// An item of a set of scalars (`v:"x"`).
    Value(Value),
    /// An item of a list by position (`i:0`).
    Index(usize),
}

impl PathElement {
    fn rank(&self) -> u8 {
        match self {
            PathElement::Field(_) => 0,
            PathElement::Key(_) => 1,
            PathElement::Value(_) => 2,
            PathElement::Index(_) => 3,
        }
    }

    /// The `fieldsV1` key for this element.
    pub fn to_key(&self) -> String {
        match self {
            PathElement::Field(name) => format!("f:{name}"),
            PathElement::Key(fields) => {
                let mut map = Map::new();
                for (name, value) in fields {
                    map.insert(name.clone(), value.clone());
                }
                format!("k:{}", Value::Object(map))
            }
            PathElement::Value(v) => format!("v:{v}"),
            PathElement::Index(i) => format!("i:{i}"),
        }
    }

    /// Parses a `fieldsV1` key (not `.`).
    pub fn from_key(key: &str) -> Result<Self, FieldSetError> {
        let bad_value = || FieldSetError::ParseElementValue(key.to_owned());
        if let Some(name) = key.strip_prefix("f:") {
            return Ok(PathElement::Field(name.to_owned()));
        }
        if let Some(json) = key.strip_prefix("k:") {
            let Value::Object(map) =
                serde_json::from_str::<Value>(json).map_err(|_| bad_value())?
            else {
                return Err(bad_value());
            };
            return Ok(PathElement::key(map.into_iter().collect()));
        }
        if let Some(json) = key.strip_prefix("v:") {
            return serde_json::from_str(json)
                .map(PathElement::Value)
                .map_err(|_| bad_value());
        }
        if let Some(index) = key.strip_prefix("i:") {
            return index
                .parse()
                .map(PathElement::Index)
                .map_err(|_| FieldSetError::ParseElementIndex(key.to_owned()));
        }
        Err(FieldSetError::ParseElementPrefix(key.to_owned()))
    }

    /// A key element with its fields sorted by name.
    pub fn key(mut fields: Vec<(String, Value)>) -> Self {
        fields.sort_by(|a, b| a.0.cmp(&b.0));
        PathElement::Key(fields)
    }
}

impl std::fmt::Display for PathElement {
    /// The human form used in conflict messages: `.name`, `[name="x"]`, `[="v"]`, `[0]`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PathElement::Field(name) => write!(f, ".{name}"),
            PathElement::Key(fields) => {
                let parts: Vec<String> = fields
                    .iter()
                    .map(|(k, v)| format!("{k}={}", value_to_string(v)))
                    .collect();
                write!(f, "[{}]", parts.join(","))
            }
            PathElement::Value(v) => write!(f, "[={}]", value_to_string(v)),
            PathElement::Index(i) => write!(f, "[{i}]"),
        }
    }
}

/// Formats a value as structured-merge-diff's `value.ToString` does (strings quoted).
fn value_to_string(v: &Value) -> String {
    match v {
        Value::Null => "null".to_owned(),
        Value::String(_) => v.to_string(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Array(items) => {
            let parts: Vec<String> = items.iter().map(value_to_string).collect();
            format!("[{}]", parts.join(","))
        }
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            let parts: Vec<String> = keys
                .iter()
                .map(|k| format!("{k}={}", value_to_string(&map[k.as_str()])))
                .collect();
            format!("{{{}}}", parts.join(","))
        }
    }
}

impl PartialEq for PathElement {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for PathElement {}

impl PartialOrd for PathElement {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for PathElement {
    /// structured-merge-diff's order: fields, then keys, then values, then indexes.
    fn cmp(&self, other: &Self) -> Ordering {
        match (self, other) {
            (PathElement::Field(a), PathElement::Field(b)) => a.cmp(b),
            (PathElement::Key(a), PathElement::Key(b)) => {
                for ((an, av), (bn, bv)) in a.iter().zip(b.iter()) {
                    let c = an.cmp(bn).then_with(|| compare_values(av, bv));
                    if c != Ordering::Equal {
                        return c;
                    }
                }
                a.len().cmp(&b.len())
            }
            (PathElement::Value(a), PathElement::Value(b)) => compare_values(a, b),
            (PathElement::Index(a), PathElement::Index(b)) => a.cmp(b),
            _ => self.rank().cmp(&other.rank()),
        }
    }
}

/// A total order of JSON values: numbers, strings, bools, lists, maps, null.
pub fn compare_values(a: &Value, b: &Value) -> Ordering {
    fn rank(v: &Value) -> u8 {
        match v {
            Value::Number(_) => 0,
            Value::String(_) => 1,
            Value::Bool(_) => 2,
            Value::Array(_) => 3,
            Value::Object(_) => 4,
            Value::Null => 5,
        }
    }
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_i64(), y.as_i64()) {
            (Some(x), Some(y)) => x.cmp(&y),
            _ => {
                let (x, y) = (x.as_f64().unwrap_or(0.0), y.as_f64().unwrap_or(0.0));
                x.partial_cmp(&y).unwrap_or(Ordering::Equal)
            }
        },
        (Value::String(x), Value::String(y)) => x.cmp(y),
        (Value::Bool(x), Value::Bool(y)) => x.cmp(y),
        (Value::Array(x), Value::Array(y)) => {
            for (p, q) in x.iter().zip(y.iter()) {
                let c = compare_values(p, q);
                if c != Ordering::Equal {
                    return c;
                }
            }
            x.len().cmp(&y.len())
        }
        (Value::Object(x), Value::Object(y)) => {
            let mut xk: Vec<&String> = x.keys().collect();
            let mut yk: Vec<&String> = y.keys().collect();
            xk.sort();
            yk.sort();
            for (p, q) in xk.iter().zip(yk.iter()) {
                let c = p
                    .cmp(q)
                    .then_with(|| compare_values(&x[p.as_str()], &y[q.as_str()]));
                if c != Ordering::Equal {
                    return c;
                }
            }
            xk.len().cmp(&yk.len())
        }
        _ => rank(a).cmp(&rank(b)),
    }
}

/// Equality of JSON values as the API server compares them (numbers by value).
pub fn values_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(_), Value::Number(_)) => compare_values(a, b) == Ordering::Equal,
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y.iter()).all(|(p, q)| values_equal(p, q))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| values_equal(v, w)))
        }
        _ => a == b,
    }
}

/// One node of the trie: whether the path to it is itself a member, and its children.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Node {
    member: bool,
    children: BTreeMap<PathElement, Node>,
}

impl Node {
    fn is_empty(&self) -> bool {
        !self.member && self.children.is_empty()
    }
}

/// A set of field paths (a trie), convertible to and from the `fieldsV1` format.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldSet {
    root: Node,
}

impl FieldSet {
    /// The empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Decodes a `fieldsV1` document.
    pub fn from_fields_v1(v: &Value) -> Result<Self, FieldSetError> {
        let mut root = decode_node(v, "")?;
        root.member = false;
        Ok(Self { root })
    }

    /// Encodes the set as a `fieldsV1` document (keys in structured-merge-diff order).
    pub fn to_fields_v1(&self) -> Value {
        encode_children(&self.root)
    }

    /// Adds one path (a no-op for the empty path).
    pub fn insert(&mut self, path: &[PathElement]) {
        if path.is_empty() {
            return;
        }
        let mut node = &mut self.root;
        for pe in path {
            node = node.children.entry(pe.clone()).or_default();
        }
        node.member = true;
    }

    /// Whether `path` is a member.
    pub fn has(&self, path: &[PathElement]) -> bool {
        !path.is_empty() && self.node_at(path).is_some_and(|n| n.member)
    }

    fn node_at(&self, path: &[PathElement]) -> Option<&Node> {
        let mut node = &self.root;
        for pe in path {
            node = node.children.get(pe)?;
        }
        Some(node)
    }

    /// Whether `pe` is a member at the top level of this set.
    pub fn has_member(&self, pe: &PathElement) -> bool {
        self.root.children.get(pe).is_some_and(|n| n.member)
    }

    /// The members below `pe`, with `pe` removed from their front.
    pub fn with_prefix(&self, pe: &PathElement) -> FieldSet {
        let mut root = self.root.children.get(pe).cloned().unwrap_or_default();
        root.member = false;
        FieldSet { root }
    }

    /// Whether the set has no members.
    pub fn is_empty(&self) -> bool {
        self.root.children.values().all(Node::is_empty)
    }

    /// Members of either set.
    pub fn union(&self, other: &FieldSet) -> FieldSet {
        FieldSet {
            root: union_node(&self.root, &other.root),
        }
    }

    /// Members of both sets.
    pub fn intersection(&self, other: &FieldSet) -> FieldSet {
        FieldSet {
            root: intersect_node(&self.root, &other.root).unwrap_or_default(),
        }
    }

    /// Members of this set that are not members of `other` (exact paths, not subtrees).
    pub fn difference(&self, other: &FieldSet) -> FieldSet {
        FieldSet {
            root: difference_node(&self.root, Some(&other.root)).unwrap_or_default(),
        }
    }

    /// Members of this set that neither are nor lie below a member of `other`.
    pub fn recursive_difference(&self, other: &FieldSet) -> FieldSet {
        FieldSet {
            root: recursive_difference_node(&self.root, &other.root).unwrap_or_default(),
        }
    }

    /// Every member path, in structured-merge-diff's iteration order (the members of a
    /// node before the members below its children).
    pub fn path_elements(&self) -> Vec<Vec<PathElement>> {
        let mut out = Vec::new();
        let mut prefix = Vec::new();
        collect_paths(&self.root, &mut prefix, &mut out);
        out
    }

    /// Every member in the human form of conflict messages, e.g. `.spec.replicas` or
    /// `.spec.template.spec.containers[name="nginx"].image`.
    pub fn paths(&self) -> Vec<String> {
        self.path_elements()
            .iter()
            .map(|p| path_to_string(p))
            .collect()
    }
}

/// The human form of a path: its elements' `Display` forms concatenated.
pub fn path_to_string(path: &[PathElement]) -> String {
    path.iter().map(ToString::to_string).collect()
}

fn collect_paths(node: &Node, prefix: &mut Vec<PathElement>, out: &mut Vec<Vec<PathElement>>) {
    for (pe, child) in &node.children {
        if child.member {
            let mut p = prefix.clone();
            p.push(pe.clone());
            out.push(p);
        }
    }
    for (pe, child) in &node.children {
        if !child.children.is_empty() {
            prefix.push(pe.clone());
            collect_paths(child, prefix, out);
            prefix.pop();
        }
    }
}

fn decode_node(v: &Value, at: &str) -> Result<Node, FieldSetError> {
    let Value::Object(map) = v else {
        return Err(FieldSetError::ParseNode(at.to_owned()));
    };
    let mut node = Node {
        member: map.is_empty(),
        children: BTreeMap::new(),
    };
    for (key, child) in map {
        if key == "." {
            node.member = true;
            continue;
        }
        let pe = PathElement::from_key(key)?;
        let child = decode_node(child, &format!("{at}{pe}"))?;
        if !child.is_empty() {
            node.children.insert(pe, child);
        }
    }
    Ok(node)
}

fn encode_children(node: &Node) -> Value {
    let mut map = Map::new();
    for (pe, child) in &node.children {
        let encoded = if child.children.is_empty() {
            Value::Object(Map::new())
        } else {
            let Value::Object(inner) = encode_children(child) else {
                continue;
            };
            let mut with_self = Map::new();
            if child.member {
                with_self.insert(".".to_owned(), Value::Object(Map::new()));
            }
            with_self.extend(inner);
            Value::Object(with_self)
        };
        map.insert(pe.to_key(), encoded);
    }
    Value::Object(map)
}

fn union_node(a: &Node, b: &Node) -> Node {
    let mut out = a.clone();
    out.member |= b.member;
    for (pe, child) in &b.children {
        let merged = match out.children.get(pe) {
            Some(existing) => union_node(existing, child),
            None => child.clone(),
        };
        out.children.insert(pe.clone(), merged);
    }
    out
}

fn intersect_node(a: &Node, b: &Node) -> Option<Node> {
    let mut out = Node {
        member: a.member && b.member,
        children: BTreeMap::new(),
    };
    for (pe, child) in &a.children {
        if let Some(other) = b.children.get(pe)
            && let Some(n) = intersect_node(child, other)
        {
            out.children.insert(pe.clone(), n);
        }
    }
    (!out.is_empty()).then_some(out)
}

fn difference_node(a: &Node, b: Option<&Node>) -> Option<Node> {
    let Some(b) = b else {
        return (!a.is_empty()).then(|| a.clone());
    };
    let mut out = Node {
        member: a.member && !b.member,
        children: BTreeMap::new(),
    };
    for (pe, child) in &a.children {
        if let Some(n) = difference_node(child, b.children.get(pe)) {
            out.children.insert(pe.clone(), n);
        }
    }
    (!out.is_empty()).then_some(out)
}

fn recursive_difference_node(a: &Node, b: &Node) -> Option<Node> {
    let mut out = Node {
        member: a.member,
        children: BTreeMap::new(),
    };
    for (pe, child) in &a.children {
        match b.children.get(pe) {
            Some(other) if other.member => {}
            Some(other) => {
                if let Some(n) = recursive_difference_node(child, other) {
                    out.children.insert(pe.clone(), n);
                }
            }
            None => {
                out.children.insert(pe.clone(), child.clone());
            }
        }
    }
    (!out.is_empty()).then_some(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn f(name: &str) -> PathElement {
        PathElement::Field(name.to_owned())
    }

    #[test]
    fn fields_v1_round_trips_with_dot_and_keys() {
        let doc = json!({
            "f:metadata": {"f:labels": {".": {}, "f:app": {}}},
            "f:spec": {"f:args": {"i:0": {}}, "f:containers": {"k:{\"name\":\"nginx\"}": {".": {}, "f:image": {},
                "f:ports": {"k:{\"containerPort\":80,\"protocol\":\"TCP\"}": {".": {}, "f:containerPort": {}}}}},
                "f:finalizers": {"v:\"a\"": {}}}
        });
        let set = FieldSet::from_fields_v1(&doc).unwrap();
        assert_eq!(set.to_fields_v1(), doc);
        assert_eq!(
            serde_json::to_string(&set.to_fields_v1()).unwrap(),
            serde_json::to_string(&doc).unwrap()
        );
        assert!(set.has(&[f("metadata"), f("labels")]));
        assert!(!set.has(&[f("metadata")]));
        let paths = set.paths();
        assert!(paths.contains(&".spec.containers[name=\"nginx\"].ports[containerPort=80,protocol=\"TCP\"].containerPort".to_owned()));
        assert!(paths.contains(&".spec.finalizers[=\"a\"]".to_owned()));
    }

    #[test]
    fn keys_are_sorted_and_elements_ordered() {
        let doc = json!({"i:1": {}, "v:2": {}, "k:{\"b\":1,\"a\":2}": {}, "f:z": {}});
        let set = FieldSet::from_fields_v1(&doc).unwrap();
        let keys: Vec<String> = set
            .to_fields_v1()
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect();
        assert_eq!(keys, vec!["f:z", "k:{\"a\":2,\"b\":1}", "v:2", "i:1"]);
    }

    #[test]
    fn set_algebra() {
        let mut a = FieldSet::new();
        a.insert(&[f("spec"), f("replicas")]);
        a.insert(&[f("spec"), f("paused")]);
        let mut b = FieldSet::new();
        b.insert(&[f("spec"), f("replicas")]);
        b.insert(&[f("metadata"), f("labels"), f("x")]);
        assert_eq!(a.intersection(&b).paths(), vec![".spec.replicas"]);
        assert_eq!(a.difference(&b).paths(), vec![".spec.paused"]);
        assert_eq!(a.union(&b).paths().len(), 3);
        assert!(a.difference(&a).is_empty());
        let mut spec = FieldSet::new();
        spec.insert(&[f("spec")]);
        assert!(a.recursive_difference(&spec).is_empty());
        assert_eq!(a.difference(&spec), a);
    }

    #[test]
    fn member_paths_come_before_deeper_ones() {
        let mut s = FieldSet::new();
        s.insert(&[f("spec"), f("template"), f("x")]);
        s.insert(&[f("spec"), f("zz")]);
        assert_eq!(s.paths(), vec![".spec.zz", ".spec.template.x"]);
    }

    #[test]
    fn bad_documents_are_rejected() {
        assert!(FieldSet::from_fields_v1(&json!({"x:1": {}})).is_err());
        assert!(FieldSet::from_fields_v1(&json!({"f:a": 1})).is_err());
        assert!(FieldSet::from_fields_v1(&json!({"k:[1]": {}})).is_err());
        assert!(FieldSet::from_fields_v1(&json!({"i:x": {}})).is_err());
    }
}
