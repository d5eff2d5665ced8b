//! Keelson's pure diff engine: decides whether a live Kubernetes object is in sync with
//! the desired manifest, with Argo CD compatible semantics (normalisation, quantities,
//! list-maps, server-side / three-way / two-way removal detection, ignoreDifferences,
//! Secret masking). Data in, data out: no clients. See [`diff`] for the modes.

mod compare;
mod config;
mod error;
mod field_set;
mod ignore;
mod jq;
mod list_maps;
mod merge;
mod normalize;
mod port_protocols;
mod quantity;
mod render;
mod secret;

pub use compare::{DiffMode, ResourceDiff, diff};
pub use config::{DEFAULT_JQ_TIMEOUT, DEFAULT_MANAGER, DiffConfig};
pub use error::DiffError;
pub use ignore::{IgnoreRule, IgnoreRules};
pub use jq::JqPath;
pub use normalize::{LAST_APPLIED_ANNOTATION, normalize};
pub use port_protocols::with_port_protocols;
pub use quantity::{canonical_string, canonicalize as canonicalize_quantity, parse_nanos};
pub use render::unified_diff;
pub use secret::hide_secret_data;
