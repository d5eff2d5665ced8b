//! Diff configuration: ignore rules, the field manager Keelson applies as, jq timeout.

use std::time::Duration;

use crate::ignore::IgnoreRules;

/// Argo CD's field manager name, used by default so ownership carries over.
pub const DEFAULT_MANAGER: &str = "argocd-controller";
/// Argo CD's default jq execution timeout.
pub const DEFAULT_JQ_TIMEOUT: Duration = Duration::from_secs(1);

/// How [`crate::diff`] compares objects.
#[derive(Debug, Clone)]
pub struct DiffConfig {
    /// ignoreDifferences rules.
    pub ignore: IgnoreRules,
    /// Field manager whose `Apply` entry in `managedFields` marks fields Keelson set.
    pub manager: String,
    /// Limit for one jq path expression evaluation.
    pub jq_timeout: Duration,
}

impl Default for DiffConfig {
    fn default() -> Self {
        DiffConfig {
            ignore: IgnoreRules::default(),
            manager: DEFAULT_MANAGER.to_string(),
            jq_timeout: DEFAULT_JQ_TIMEOUT,
        }
    }
}

impl DiffConfig {
    /// Sets the ignore rules.
    pub fn with_ignore(mut self, ignore: IgnoreRules) -> Self {
        self.ignore = ignore;
        self
    }

    /// Sets the field manager.
    pub fn with_manager(mut self, manager: impl Into<String>) -> Self {
        self.manager = manager.into();
        self
    }

    /// Sets the jq timeout.
    pub fn with_jq_timeout(mut self, timeout: Duration) -> Self {
        self.jq_timeout = timeout;
        self
    }
}
