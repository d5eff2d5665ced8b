//! A Kubernetes-API-compatible simulator of many clusters in one process.
//!
//! Each simulated cluster has its own base URL (`/clusters/{name}`) and bearer token and
//! speaks the Kubernetes REST API as kube-rs and kubectl use it: discovery, CRUD,
//! list/watch with resourceVersions and bookmarks, selectors, pagination, JSON merge,
//! JSON and strategic merge patches, server-side apply with managedFields, defaulting,
//! owner-reference garbage collection, an optional workload mode and fault injection.
//! It is a test double for tests, benchmarks and the demo; production code never
//! depends on it.

pub mod api_error;
pub mod resources;
pub mod schema;

pub use api_error::{ApiError, ApiResult};
