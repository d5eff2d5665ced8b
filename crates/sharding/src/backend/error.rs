//! The error of every coordination backend operation.

use std::time::Duration;

/// Why a coordination operation failed. `step` says what was being done, e.g.
/// `"renewing the member lease"`.
#[derive(Debug, thiserror::Error)]
pub enum CoordinationError {
    /// A request did not answer within the request timeout (at most `lease/3`).
    #[error("{step} timed out after {after:?}")]
    Timeout {
        /// What was being done.
        step: &'static str,
        /// The timeout that elapsed.
        after: Duration,
    },
    /// The Kubernetes API answered with an error or could not be reached.
    #[error("{step} via the kubernetes api")]
    Kubernetes {
        /// What was being done.
        step: &'static str,
        /// The client error.
        #[source]
        source: kube::Error,
    },
    /// Connecting the etcd client failed.
    #[error("connecting to etcd at {endpoints}")]
    EtcdConnect {
        /// The endpoints, comma separated.
        endpoints: String,
        /// The client error.
        #[source]
        source: etcd_client::Error,
    },
    /// An etcd request failed.
    #[error("{step} in etcd")]
    Etcd {
        /// What was being done.
        step: &'static str,
        /// The client error.
        #[source]
        source: etcd_client::Error,
    },
    /// A claim was attempted before the first successful renewal (etcd claims are
    /// attached to the member lease, which does not exist yet).
    #[error("claiming unit {unit} before the member lease exists: renew first")]
    NotRenewed {
        /// The unit.
        unit: String,
    },
    /// `claim(unit, previous)` was given the record of another unit.
    #[error("claiming unit {unit} with the previous claim of unit {previous}")]
    UnitMismatch {
        /// The unit being claimed.
        unit: String,
        /// The unit of the previous record given.
        previous: String,
    },
}

impl CoordinationError {
    /// Whether the request timed out.
    pub fn is_timeout(&self) -> bool {
        matches!(self, CoordinationError::Timeout { .. })
    }
}
