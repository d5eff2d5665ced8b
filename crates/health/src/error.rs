//! The crate's error type.

/// Errors from reading health configuration and running Lua customizations.
#[derive(Debug, thiserror::Error)]
pub enum HealthError {
    /// An `argocd-cm` key under `resource.customizations.` could not be understood.
    #[error("invalid config map key {key:?}: {reason}")]
    ConfigKey {
        /// The offending key.
        key: String,
        /// Why it was rejected.
        reason: String,
    },
    /// A YAML value in the config map could not be parsed.
    #[error("failed to parse {key:?}")]
    ParseYaml {
        /// The config map key whose value failed to parse.
        key: String,
        /// The YAML error.
        #[source]
        source: serde_yaml_ng::Error,
    },
    /// Creating or preparing a Lua state failed.
    #[error("failed to prepare lua state")]
    PrepareLua(#[source] mlua::Error),
    /// The Lua script failed to compile.
    #[error("failed to compile lua script: {0}")]
    CompileScript(String),
    /// The Lua script raised an error or was stopped.
    #[error("{0}")]
    RunScript(String),
    /// The Lua script exceeded its time limit.
    #[error("lua script exceeded its time limit of {0:?}")]
    TimeLimit(std::time::Duration),
    /// The Lua script returned a value of the wrong type.
    #[error("expect {expected} output from Lua script, not {actual}")]
    ReturnType {
        /// What was expected.
        expected: &'static str,
        /// The Lua type actually returned.
        actual: String,
    },
    /// The Lua script's result could not be decoded into the expected shape.
    #[error("failed to decode lua result: {0}")]
    DecodeResult(String),
    /// No action with this name is configured for the object's kind.
    #[error("action {name:?} not found for {kind_key}")]
    ActionNotFound {
        /// The requested action name.
        name: String,
        /// The `group/Kind` key looked up.
        kind_key: String,
    },
}
