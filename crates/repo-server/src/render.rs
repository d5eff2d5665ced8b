//! Manifest rendering from a checkout of one commit: source-type detection, the public
//! request/result types, the error type, and dispatch to one renderer per tool
//! ([`directory`] with [`jsonnet`], [`kustomize`], [`helm`], [`plugin`]), followed by
//! [`tracking`]. Confinement to the checkout root lives in [`confine`]; external tools run
//! through [`process`].

pub mod confine;
pub mod directory;
pub mod env;
pub mod helm;
pub mod jsonnet;
pub mod kustomize;
pub mod manifest;
pub mod plugin;
pub mod process;
pub mod tracking;

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use keelson_model::source::{ApplicationSource, ExplicitSourceType};
use serde_json::Value;

use crate::render::confine::ConfineError;
use crate::render::manifest::ManifestError;
use crate::render::process::ProcessError;

/// How an application's manifests are produced, named as Argo CD names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SourceType {
    /// Plain YAML/JSON files and Jsonnet.
    Directory,
    /// A Helm chart rendered with `helm template`.
    Helm,
    /// A Kustomize overlay rendered with `kubectl kustomize` or `kustomize build`.
    Kustomize,
    /// A configured config-management plugin.
    Plugin,
}

impl fmt::Display for SourceType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SourceType::Directory => "Directory",
            SourceType::Helm => "Helm",
            SourceType::Kustomize => "Kustomize",
            SourceType::Plugin => "Plugin",
        })
    }
}

pub use keelson_model::tracking::TrackingMethod;

/// Tracking settings applied to every rendered object.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Tracking {
    /// Tracking method.
    pub method: TrackingMethod,
    /// Label key, normally `app.kubernetes.io/instance`.
    pub label_key: String,
    /// Application instance name (`<app>` or `<namespace>_<app>`).
    pub app_instance: String,
    /// Namespace written into the tracking id of objects that have none (Argo CD uses the
    /// destination namespace); empty leaves the namespace part of the id empty.
    pub app_namespace: String,
}

/// How to run Kustomize.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KustomizeTool {
    /// `kubectl kustomize <dir>` with this `kubectl`.
    Kubectl(PathBuf),
    /// `kustomize build <dir>` with this `kustomize`.
    Kustomize(PathBuf),
}

/// A config-management plugin configured on the repo-server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginConfig {
    /// Plugin name (`source.plugin.name` selects it).
    pub name: String,
    /// Command run before `generate`, as an argv vector.
    pub init: Option<Vec<String>>,
    /// Command printing the manifests (YAML or JSON stream) on stdout, as an argv vector.
    pub generate: Vec<String>,
    /// Glob (relative to the app directory) whose match makes the plugin claim an app.
    pub discover_file_glob: Option<String>,
}

/// External tools. A bare name (`helm`) is looked up on the repo-server's `PATH`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tools {
    /// The `helm` binary.
    pub helm: PathBuf,
    /// The Kustomize binary and how to call it.
    pub kustomize: KustomizeTool,
    /// Plugins by name.
    pub plugins: HashMap<String, PluginConfig>,
}

/// Resource limits for one render.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Wall-clock limit of every external process and of Jsonnet evaluation.
    pub timeout: Duration,
    /// Bound on a tool's stdout and on the total bytes of manifests read.
    pub max_output_bytes: usize,
    /// Bound on any single input file read by the renderer.
    pub max_file_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            timeout: Duration::from_secs(90),
            max_output_bytes: 100 * 1024 * 1024,
            max_file_bytes: 10 * 1024 * 1024,
        }
    }
}

/// Everything one render needs.
#[derive(Debug, Clone, Copy)]
pub struct RenderRequest<'a> {
    /// Checkout root (the confinement boundary); renderers may write inside it.
    pub root: &'a Path,
    /// App path inside the repository (`""` or `"."` is the root).
    pub path: &'a str,
    /// The application source with its tool options.
    pub source: &'a ApplicationSource,
    /// Application name.
    pub app_name: &'a str,
    /// Destination namespace.
    pub namespace: &'a str,
    /// Resolved commit SHA.
    pub revision: &'a str,
    /// Repository URL.
    pub repo_url: &'a str,
    /// Target cluster version (`1.20` / `v1.20.2`); empty for the tool's default.
    pub kube_version: &'a str,
    /// Target cluster API versions (`apps/v1`, `apps/v1/Deployment`, ...).
    pub api_versions: &'a [String],
    /// Tracking settings.
    pub tracking: &'a Tracking,
    /// External tools.
    pub tools: &'a Tools,
    /// Limits.
    pub limits: &'a Limits,
}

/// The result of a render.
#[derive(Debug, Clone, PartialEq)]
pub struct Rendered {
    /// Kubernetes objects, tracking applied, in output order.
    pub objects: Vec<Value>,
    /// The source type used.
    pub source_type: SourceType,
}

/// Why rendering failed.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    /// A path the repository or the application names is outside the checkout or invalid.
    #[error(transparent)]
    Confine(#[from] ConfineError),
    /// A required binary is not installed.
    #[error("{tool} not found (looked at {looked_at})", looked_at = .looked_at.display())]
    ToolMissing {
        /// Tool name.
        tool: String,
        /// Where it was looked for.
        looked_at: PathBuf,
    },
    /// An external tool failed, timed out or printed too much.
    #[error(transparent)]
    Process(ProcessError),
    /// A file or a tool's output is not a valid manifest stream.
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    /// More than one of `directory`, `helm`, `kustomize`, `plugin` is set.
    #[error("multiple application source types set ({0}); set exactly one")]
    MultipleSourceTypes(String),
    /// The requested or discovered plugin is not configured on this repo-server.
    #[error("config management plugin {0:?} is not configured")]
    PluginNotConfigured(String),
    /// `source.plugin` has no name and no configured plugin claims the app.
    #[error("no configured config management plugin matches the application directory")]
    PluginNotDiscovered,
    /// A plugin has an empty `generate` command.
    #[error("config management plugin {0:?} has an empty generate command")]
    PluginCommandEmpty(String),
    /// Reading an input file failed.
    #[error("read {path}: {source}", path = .path.display())]
    ReadFile {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// An input file exceeds `max_file_bytes`.
    #[error("file {path} is {size} bytes, over the limit of {limit} bytes")]
    FileTooLarge {
        /// Path relative to the repository root.
        path: String,
        /// Its size.
        size: u64,
        /// The limit.
        limit: usize,
    },
    /// An input manifest file is binary (or not UTF-8).
    #[error("file {0} is binary or not valid UTF-8")]
    BinaryFile(String),
    /// The manifests read exceed `max_output_bytes`.
    #[error("manifests exceed the output limit of {limit} bytes")]
    OutputTooLarge {
        /// The limit.
        limit: usize,
    },
    /// Jsonnet evaluation failed.
    #[error("jsonnet {file}: {message}")]
    Jsonnet {
        /// Entrypoint relative to the repository root.
        file: String,
        /// Evaluator message with trace.
        message: String,
    },
    /// Jsonnet evaluation did not finish in time.
    #[error("jsonnet {file}: evaluation timed out after {after:?}")]
    JsonnetTimeout {
        /// Entrypoint relative to the repository root.
        file: String,
        /// The limit.
        after: Duration,
    },
    /// The Jsonnet worker thread could not be started or died.
    #[error("jsonnet worker: {0}")]
    JsonnetWorker(String),
    /// A Helm value file does not exist.
    #[error("helm value file {0:?} not found in the repository")]
    ValueFileMissing(String),
    /// A Helm value file is a URL; there is no network access.
    #[error("helm value file {0:?} is a remote URL; remote value files are not supported")]
    RemoteValueFile(String),
    /// A Kustomize option cannot be applied (invalid value or conflicting with the file).
    #[error("kustomize option: {0}")]
    KustomizeOption(String),
    /// A kustomization names a remote resource; there is no network access.
    #[error(
        "kustomization {file} references remote resource {reference:?}; remote bases are not supported"
    )]
    RemoteResource {
        /// Kustomization file relative to the repository root.
        file: String,
        /// The reference.
        reference: String,
    },
    /// A kustomization file cannot be parsed or written.
    #[error("kustomization {file}: {message}")]
    Kustomization {
        /// Kustomization file relative to the repository root.
        file: String,
        /// What is wrong.
        message: String,
    },
    /// Creating the private scratch directory for a tool failed.
    #[error("create scratch directory: {0}")]
    Scratch(#[source] std::io::Error),
}

impl From<ProcessError> for RenderError {
    fn from(err: ProcessError) -> Self {
        match err {
            ProcessError::NotFound { tool, looked_at } => {
                RenderError::ToolMissing { tool, looked_at }
            }
            other => RenderError::Process(other),
        }
    }
}

/// The names Argo CD recognises as a kustomization file.
pub const KUSTOMIZATION_NAMES: [&str; 3] =
    ["kustomization.yaml", "kustomization.yml", "Kustomization"];

/// Decides how to render the app at `path`: an explicitly set tool section wins; otherwise a
/// configured plugin whose discovery glob matches, then Argo CD's file-based detection
/// (`*Chart.yaml` → Helm, a kustomization file → Kustomize, the lexically last one winning as
/// in Argo CD's directory walk), else Directory.
pub fn detect_source_type(
    root: &Path,
    path: &str,
    source: &ApplicationSource,
    tools: &Tools,
) -> Result<SourceType, RenderError> {
    let explicit = source.explicit_types();
    if explicit.len() > 1 {
        let names: Vec<String> = explicit
            .iter()
            .map(|t| format!("{t:?}").to_lowercase())
            .collect();
        return Err(RenderError::MultipleSourceTypes(names.join(", ")));
    }
    if let Some(t) = explicit.first() {
        return Ok(match t {
            ExplicitSourceType::Directory => SourceType::Directory,
            ExplicitSourceType::Helm => SourceType::Helm,
            ExplicitSourceType::Kustomize => SourceType::Kustomize,
            ExplicitSourceType::Plugin => SourceType::Plugin,
        });
    }
    let root = confine::canonical_root(root)?;
    let app_dir = confine::resolve_app_dir(&root, path)?;
    if plugin::discover(&app_dir, tools).is_some() {
        return Ok(SourceType::Plugin);
    }
    Ok(detect_by_files(&app_dir))
}

/// Argo CD's discovery for the top level of `app_dir`.
fn detect_by_files(app_dir: &Path) -> SourceType {
    let Ok(entries) = std::fs::read_dir(app_dir) else {
        return SourceType::Directory;
    };
    let mut names: Vec<String> = entries
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_ok_and(|t| !t.is_dir()))
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    let mut found = SourceType::Directory;
    for name in &names {
        if name.ends_with("Chart.yaml") {
            found = SourceType::Helm;
        }
        if KUSTOMIZATION_NAMES.contains(&name.as_str()) {
            found = SourceType::Kustomize;
        }
    }
    found
}

/// Renders the app described by `req`, applies tracking, and returns the objects.
pub async fn render(req: &RenderRequest<'_>) -> Result<Rendered, RenderError> {
    let root = confine::canonical_root(req.root)?;
    let app_dir = confine::resolve_app_dir(&root, req.path)?;
    let source_type = detect_source_type(&root, req.path, req.source, req.tools)?;
    let ctx = RenderContext {
        req,
        root: &root,
        app_dir: &app_dir,
    };
    let mut objects = match source_type {
        SourceType::Directory => directory::render(&ctx).await?,
        SourceType::Helm => {
            confine::check_symlinks(&root)?;
            helm::render(&ctx).await?
        }
        SourceType::Kustomize => {
            confine::check_symlinks(&root)?;
            kustomize::render(&ctx).await?
        }
        SourceType::Plugin => {
            confine::check_symlinks(&root)?;
            plugin::render(&ctx).await?
        }
    };
    tracking::apply(&mut objects, req.tracking);
    Ok(Rendered {
        objects,
        source_type,
    })
}

/// A request with its root and app directory resolved (both canonical, the app inside root).
#[derive(Debug, Clone, Copy)]
pub struct RenderContext<'a> {
    /// The original request.
    pub req: &'a RenderRequest<'a>,
    /// Canonical checkout root.
    pub root: &'a Path,
    /// Canonical app directory inside `root`.
    pub app_dir: &'a Path,
}

impl RenderContext<'_> {
    /// `path` relative to the checkout root, for messages.
    pub fn display_path(&self, path: &Path) -> String {
        path.strip_prefix(self.root)
            .map(|p| p.display().to_string())
            .unwrap_or_else(|_| path.display().to_string())
    }

    /// The build environment (`ARGOCD_APP_*`) used for `$VAR` substitution and plugins.
    pub fn build_env(&self) -> env::BuildEnv {
        env::BuildEnv::new(self.req)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn display_matches_argo_cd() {
        assert_eq!(SourceType::Directory.to_string(), "Directory");
        assert_eq!(SourceType::Helm.to_string(), "Helm");
        assert_eq!(SourceType::Kustomize.to_string(), "Kustomize");
        assert_eq!(SourceType::Plugin.to_string(), "Plugin");
    }

    #[test]
    fn files_decide_like_argo_cd() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(detect_by_files(dir.path()), SourceType::Directory);
        std::fs::write(dir.path().join("Chart.yaml"), "name: x").unwrap();
        assert_eq!(detect_by_files(dir.path()), SourceType::Helm);
        std::fs::write(dir.path().join("kustomization.yaml"), "resources: []").unwrap();
        assert_eq!(detect_by_files(dir.path()), SourceType::Kustomize);
    }

    #[test]
    fn explicit_wins_and_conflicts_fail() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("Chart.yaml"), "name: x").unwrap();
        let tools = Tools {
            helm: "helm".into(),
            kustomize: KustomizeTool::Kubectl("kubectl".into()),
            plugins: HashMap::new(),
        };
        let source = ApplicationSource {
            directory: Some(Default::default()),
            ..Default::default()
        };
        assert_eq!(
            detect_source_type(dir.path(), "", &source, &tools).unwrap(),
            SourceType::Directory
        );
        let both = ApplicationSource {
            directory: Some(Default::default()),
            helm: Some(Default::default()),
            ..Default::default()
        };
        assert!(matches!(
            detect_source_type(dir.path(), "", &both, &tools),
            Err(RenderError::MultipleSourceTypes(_))
        ));
    }
}
