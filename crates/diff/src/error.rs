//! The crate's error type: one variant per step that can fail.

use std::time::Duration;

/// Everything that can go wrong while building ignore rules or diffing an object.
#[derive(Debug, thiserror::Error)]
pub enum DiffError {
    /// A jq path expression did not parse or compile.
    #[error("compiling jq path expression {expression:?}: {message}")]
    JqCompile {
        /// The expression as written by the user.
        expression: String,
        /// What the jq compiler reported.
        message: String,
    },
    /// A jq path expression ran longer than the configured timeout.
    #[error("jq path expression {expression:?} timed out after {timeout:?}")]
    JqTimeout {
        /// The expression as written by the user.
        expression: String,
        /// The configured limit.
        timeout: Duration,
    },
    /// The jq evaluation thread could not be started.
    #[error("starting jq evaluation thread")]
    JqThread(#[source] std::io::Error),
    /// A JSON pointer in an ignore rule is malformed.
    #[error("invalid json pointer {pointer:?}: must be empty or start with '/'")]
    JsonPointer {
        /// The pointer as written by the user.
        pointer: String,
    },
    /// A group/kind glob in an ignore rule is malformed.
    #[error("invalid glob {pattern:?}")]
    Glob {
        /// The pattern as written by the user.
        pattern: String,
        /// The glob parser's complaint.
        #[source]
        source: globset::Error,
    },
    /// An argocd-cm `resource.customizations*` value is not valid YAML of the expected shape.
    #[error("parsing argocd-cm key {key:?}")]
    Customization {
        /// The argocd-cm key.
        key: String,
        /// The YAML error.
        #[source]
        source: serde_yaml_ng::Error,
    },
    /// An argocd-cm split key does not name a group/kind.
    #[error("argocd-cm key {key:?} does not end in <group>_<kind> or <kind>")]
    CustomizationKey {
        /// The argocd-cm key.
        key: String,
    },
    /// A live object's `metadata.managedFields[].fieldsV1` could not be read.
    #[error("parsing managedFields fieldsV1 of manager {manager:?}: {message}")]
    FieldSet {
        /// The field manager whose entry is malformed.
        manager: String,
        /// What is wrong.
        message: String,
    },
    /// The live object's last-applied-configuration annotation is not JSON.
    #[error("parsing last-applied-configuration annotation")]
    LastApplied(#[source] serde_json::Error),
    /// Rendering a normalised object as YAML failed.
    #[error("rendering object as yaml")]
    Render(#[source] serde_yaml_ng::Error),
}
