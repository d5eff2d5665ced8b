//! Keelson's pure diff engine: decides whether a live Kubernetes object is in sync with
//! the desired manifest, with Argo CD compatible semantics (normalisation, quantities,
//! list-maps, ignoreDifferences). Data in, data out: no clients.

mod error;
mod list_maps;
mod normalize;
mod quantity;

pub use error::DiffError;
pub use normalize::{LAST_APPLIED_ANNOTATION, normalize};
pub use quantity::{canonical_string, canonicalize as canonicalize_quantity, parse_nanos};
