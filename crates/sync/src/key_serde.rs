//! Serde form of `keelson_model::ResourceKey` (which has none): an object with `group`,
//! `kind`, `namespace` and `name`, used with `#[serde(with = "ResourceKeyDef")]`.

use keelson_model::ResourceKey;
use serde::{Deserialize, Serialize};

/// Mirror of [`ResourceKey`] for serde's remote derive.
#[derive(Serialize, Deserialize)]
#[serde(remote = "ResourceKey")]
pub(crate) struct ResourceKeyDef {
    group: String,
    kind: String,
    namespace: String,
    name: String,
}
