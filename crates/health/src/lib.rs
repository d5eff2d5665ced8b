//! Keelson's pure health assessment, compatible with Argo CD: built-in checks for the
//! common Kubernetes kinds, Lua overrides configured in `argocd-cm`
//! (`resource.customizations.*`), the resource-actions contract (`discovery.lua`,
//! `action.lua`) and the aggregation of resource health into application health.
//!
//! Entry points: [`builtin_health`] (no configuration), [`HealthAssessor`] (built from a
//! [`HealthConfig`], shared in an `Arc` by many tasks), [`LuaEngine`] (raw script
//! execution) and [`aggregate_app_health`].

mod actions;
mod aggregate;
mod assessment;
mod assessor;
mod builtin;
mod config;
mod error;
mod lua;

pub use actions::{ActionDescriptor, ActionOutcome, ActionParam, ImpactedResource, K8sOperation};
pub use aggregate::{ResourceHealth, aggregate_app_health, is_hook};
pub use assessment::HealthAssessment;
pub use assessor::HealthAssessor;
pub use builtin::builtin_health;
pub use config::{HealthConfig, ResourceActionDefinition, ResourceActions, ResourceOverride};
pub use error::HealthError;
pub use lua::{DEFAULT_TIME_LIMIT, LuaEngine};
