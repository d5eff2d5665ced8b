//! Keelson's pure diff engine: decides whether a live Kubernetes object is in sync with
//! the desired manifest, with Argo CD compatible semantics (normalisation, quantities,
//! list-maps, ignoreDifferences). Data in, data out: no clients.

mod error;
#[allow(dead_code)] // used by the diff entry point, not written yet
mod field_set;
mod jq;
#[allow(dead_code)] // used by the diff entry point, not written yet
mod list_maps;
#[allow(dead_code)] // used by the diff entry point, not written yet
mod merge;
mod normalize;
mod quantity;

pub use error::DiffError;
pub use jq::JqPath;
pub use normalize::{LAST_APPLIED_ANNOTATION, normalize};
pub use quantity::{canonical_string, canonicalize as canonicalize_quantity, parse_nanos};
