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
pub mod cluster;
pub mod defaults;
pub mod discovery;
pub mod faults;
pub mod gc;
mod http;
pub mod kubeconfig;
pub mod list_snapshot;
pub mod managed_fields;
pub mod request;
pub mod resources;
pub mod schema;
pub mod selectors;
pub mod server;
pub mod store;
pub mod strategic;
pub mod table;
pub mod tls;
pub mod verbs;
pub mod watch;
pub mod workload;

pub use api_error::{ApiError, ApiResult};
pub use cluster::Cluster;
pub use faults::FaultSettings;
pub use server::{SimConfig, SimError, SimHandle};
pub use workload::WorkloadConfig;
