//! Errors of the controller, one enum per concern, named after the step that failed.

/// Resolving or connecting a destination cluster.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// A cluster Secret could not be read.
    #[error("reading cluster secret")]
    ParseSecret {
        /// Cause.
        #[source]
        source: Box<keelson_model::cluster_secret::ClusterSecretError>,
    },
    /// The destination has neither server nor name.
    #[error("destination server or name is required")]
    NoDestination,
    /// No cluster with this URL.
    #[error("there are no clusters with this URL: {server}")]
    UnknownServer {
        /// Server URL.
        server: String,
    },
    /// No cluster with this name.
    #[error("there are no clusters with this name: {name}")]
    UnknownName {
        /// Cluster name.
        name: String,
    },
    /// The Secret's connection settings are unusable.
    #[error("building the client configuration of cluster {server}")]
    Config {
        /// Server URL.
        server: String,
        /// Cause.
        #[source]
        source: Box<keelson_model::cluster_secret::ClusterSecretError>,
    },
    /// The client could not be built.
    #[error("building the client of cluster {server}")]
    Client {
        /// Server URL.
        server: String,
        /// Cause.
        #[source]
        source: kube::Error,
    },
}

/// Reading desired manifests from the repo-server.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    /// The source could not be serialized for the request.
    #[error("encoding source {index}")]
    EncodeSource {
        /// Source index.
        index: usize,
        /// Cause.
        #[source]
        source: serde_json::Error,
    },
    /// The repo-server refused or failed.
    #[error("rpc error: code = {code} desc = {message}")]
    Generate {
        /// gRPC code name.
        code: String,
        /// Message.
        message: String,
    },
    /// The repo-server did not answer in time.
    #[error("repo-server did not answer within {0:?}")]
    Timeout(std::time::Duration),
    /// A manifest was not valid JSON.
    #[error("decoding manifest of source {index}")]
    DecodeManifest {
        /// Source index.
        index: usize,
        /// Cause.
        #[source]
        source: serde_json::Error,
    },
}

impl ManifestError {
    /// Whether the repo-server was unavailable, overloaded or slow rather than the app's
    /// source being wrong: worth asking again soon instead of at the next resync.
    pub fn is_transient(&self) -> bool {
        match self {
            ManifestError::Timeout(_) => true,
            ManifestError::Generate { code, .. } => matches!(
                code.as_str(),
                "Unavailable" | "DeadlineExceeded" | "ResourceExhausted" | "Aborted" | "Cancelled"
            ),
            ManifestError::EncodeSource { .. } | ManifestError::DecodeManifest { .. } => false,
        }
    }
}

/// Writing to the management cluster.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// Patching an Application failed.
    #[error("patching application {app}")]
    PatchApp {
        /// `namespace/name`.
        app: String,
        /// Cause.
        #[source]
        source: kube::Error,
    },
    /// Encoding a patch failed.
    #[error("encoding patch of application {app}")]
    Encode {
        /// `namespace/name`.
        app: String,
        /// Cause.
        #[source]
        source: serde_json::Error,
    },
}

/// Starting the controller.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The apply log could not be opened.
    #[error("opening the apply log")]
    ApplyLog {
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// Metrics could not be registered.
    #[error("registering metrics")]
    Metrics(#[source] prometheus::Error),
    /// Reading a config map failed.
    #[error("reading config map {name}")]
    ConfigMap {
        /// Name.
        name: String,
        /// Cause.
        #[source]
        source: kube::Error,
    },
    /// A config map key had a bad value.
    #[error("invalid {key} in argocd-cm")]
    Config {
        /// Key.
        key: String,
        /// Cause.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

#[cfg(test)]
mod tests {
    use super::ManifestError;

    #[test]
    fn an_unavailable_or_slow_repo_server_is_transient_a_bad_source_is_not() {
        let generate = |code: &str| ManifestError::Generate {
            code: code.to_owned(),
            message: String::new(),
        };
        assert!(ManifestError::Timeout(std::time::Duration::from_secs(60)).is_transient());
        assert!(generate("Unavailable").is_transient());
        assert!(generate("DeadlineExceeded").is_transient());
        assert!(!generate("InvalidArgument").is_transient());
        assert!(!generate("NotFound").is_transient());
    }
}
