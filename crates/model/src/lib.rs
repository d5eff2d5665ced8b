//! Keelson's model of Argo CD's API surface: the `argoproj.io/v1alpha1` kinds
//! (Application, AppProject, ApplicationSet) with lossless round-trip of unknown fields,
//! their CRDs, typed parsing of cluster / repository / repo-creds Secrets, well-known
//! annotations, status vocabularies and resource keys.
//!
//! Pure data and pure functions: nothing here does I/O.

mod string_enum;

pub mod annotations;
pub mod application;
pub mod application_status;
pub mod applicationset;
pub mod cluster_secret;
pub mod crds;
pub mod extra;
pub mod operation;
pub mod project;
pub mod repo_secret;
pub mod resource_key;
pub mod secret_data;
pub mod source;
pub mod status_codes;
pub mod tracking;

pub use application::{
    Application, ApplicationDestination, ApplicationSpec, ApplicationValidationError, SyncPolicy,
};
pub use application_status::{ApplicationStatus, HealthStatus, ResourceStatus, SyncStatus};
pub use applicationset::{ApplicationSet, ApplicationSetValidationError};
pub use cluster_secret::{ClusterSecretError, ClusterSpec, bearer_token_secret};
pub use extra::Extra;
pub use operation::{Operation, OperationState};
pub use project::{AppProject, ProjectValidationError};
pub use repo_secret::{RepoCredsSpec, RepoSecretError, RepoSpec};
pub use resource_key::ResourceKey;
pub use source::ApplicationSource;
pub use status_codes::{
    HealthStatusCode, HookDeletePolicy, HookType, OperationPhase, SyncStatusCode,
};
