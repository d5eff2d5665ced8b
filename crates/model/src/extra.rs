//! `Extra`: the map that keeps fields Keelson does not model, so that objects round-trip
//! without losing data written by users or by newer Argo CD versions.

use std::collections::BTreeMap;

use serde_json::Value;

/// Fields present in the input that the typed struct does not model. Flattened into the
/// surrounding object on serialization, so they are written back unchanged.
pub type Extra = BTreeMap<String, Value>;
