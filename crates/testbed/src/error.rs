//! The harness's single error type, one variant per step that can fail.

use std::path::PathBuf;
use std::time::Duration;

/// Hint attached to [`TestbedError::ToolMissing`].
pub const INSTALL_HINT: &str = "run scripts/install-deps";

/// Everything that can go wrong while starting, probing or stopping a test component.
#[derive(Debug, thiserror::Error)]
pub enum TestbedError {
    /// A required binary was found neither in the tools directory nor on `PATH`.
    #[error("tool `{tool}` not found in the tools directory or on PATH ({hint})")]
    ToolMissing {
        /// Binary name.
        tool: String,
        /// What to do about it.
        hint: &'static str,
    },
    /// A process could not be spawned.
    #[error("spawning {component} ({program}) failed")]
    Spawn {
        /// Component being started.
        component: String,
        /// Program path.
        program: PathBuf,
        /// Underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A component did not become ready within its time budget.
    #[error("{component} not ready after {waited:?}: {reason}\n--- last log lines ---\n{log_tail}")]
    NotReady {
        /// Component being started.
        component: String,
        /// How long the harness waited.
        waited: Duration,
        /// The last probe failure.
        reason: String,
        /// Last lines of the component's logs.
        log_tail: String,
    },
    /// A component's process exited while the harness waited for it.
    #[error(
        "{component} exited ({status}) before becoming ready\n--- last log lines ---\n{log_tail}"
    )]
    Exited {
        /// Component being started.
        component: String,
        /// Exit status as text.
        status: String,
        /// Last lines of the component's logs.
        log_tail: String,
    },
    /// A condition other than readiness (failover, replication, ...) was not reached in time.
    #[error("{component}: timed out after {waited:?} waiting for {what}: {detail}")]
    Timeout {
        /// Component being waited on.
        component: String,
        /// The awaited condition.
        what: String,
        /// How long the harness waited.
        waited: Duration,
        /// Last observed state.
        detail: String,
    },
    /// A request to a Kubernetes API server failed.
    #[error("{step} failed")]
    Kube {
        /// What the harness was doing.
        step: &'static str,
        /// Underlying error.
        #[source]
        source: kube::Error,
    },
    /// A polled condition was not reached in time.
    #[error("{what}: not reached after {waited:?}{}", last_error.as_ref().map(|e| format!("; last error: {e}")).unwrap_or_default())]
    NotReached {
        /// The awaited condition.
        what: String,
        /// How long the harness polled.
        waited: Duration,
        /// The last error the probe returned, if any.
        last_error: Option<String>,
    },
    /// A file-system or socket operation failed.
    #[error("{step} failed for {path}")]
    Io {
        /// What the harness was doing.
        step: &'static str,
        /// Path or address involved.
        path: String,
        /// Underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A helper command (git, openssl, kubectl, kill) exited unsuccessfully.
    #[error("command `{command}` failed ({status}): {stderr}")]
    CommandFailed {
        /// The command line.
        command: String,
        /// Exit status as text.
        status: String,
        /// Its standard error output.
        stderr: String,
    },
    /// A helper command did not finish in time and was killed.
    #[error("command `{command}` did not finish within {waited:?}")]
    CommandTimeout {
        /// The command line.
        command: String,
        /// The time budget.
        waited: Duration,
    },
    /// A component answered something the harness does not understand.
    #[error("{component} sent an unexpected reply: {detail}")]
    Protocol {
        /// Component that replied.
        component: String,
        /// What was wrong.
        detail: String,
    },
    /// The ready line printed by `keelson sim` is not valid.
    #[error("parsing the ready line of keelson sim failed: {line}")]
    SimReadyLine {
        /// The offending line.
        line: String,
        /// Underlying error.
        #[source]
        source: serde_json::Error,
    },
    /// A PEM file held no usable certificate.
    #[error("no certificate found in {path}")]
    NoCertificate {
        /// The PEM file.
        path: String,
    },
    /// A URL could not be parsed.
    #[error("invalid url {url}")]
    InvalidUrl {
        /// The URL.
        url: String,
        /// Underlying error.
        #[source]
        source: http::uri::InvalidUri,
    },
    /// Serialising a kubeconfig failed.
    #[error("writing kubeconfig {path} failed")]
    Kubeconfig {
        /// Target path.
        path: String,
        /// Underlying error.
        #[source]
        source: serde_yaml_ng::Error,
    },
    /// Building a kube client failed.
    #[error("building a kube client for {component} failed")]
    Client {
        /// Component the client talks to.
        component: String,
        /// Underlying error.
        #[source]
        source: kube::Error,
    },
    /// A TLS handshake or configuration failed.
    #[error("tls with {component} failed")]
    Tls {
        /// Component on the other end.
        component: String,
        /// Underlying error.
        #[source]
        source: rustls::Error,
    },
    /// An index passed to an accessor is out of range.
    #[error("{component} has no {what} at index {index}")]
    NoSuchIndex {
        /// Component asked.
        component: String,
        /// What was indexed.
        what: &'static str,
        /// The index.
        index: usize,
    },
}

impl TestbedError {
    /// Whether the failure looks like a loopback port taken by someone else between
    /// allocation and bind; start functions retry with fresh ports in that case.
    pub fn is_port_conflict(&self) -> bool {
        let text = match self {
            TestbedError::NotReady { log_tail, .. } | TestbedError::Exited { log_tail, .. } => {
                log_tail
            }
            _ => return false,
        };
        let lower = text.to_ascii_lowercase();
        lower.contains("address already in use") || lower.contains("eaddrinuse")
    }
}

/// Result alias used throughout the harness.
pub type Result<T, E = TestbedError> = std::result::Result<T, E>;
