//! Well-known Argo CD and Helm annotation, label and finalizer names, and the values
//! Keelson interprets.

/// Sync wave of a resource (integer as a string, default "0"); lower waves apply first.
pub const SYNC_WAVE: &str = "argocd.argoproj.io/sync-wave";
/// Hook type(s) of a resource, comma-separated (see [`crate::HookType`]).
pub const HOOK: &str = "argocd.argoproj.io/hook";
/// Hook delete policies, comma-separated (see [`crate::HookDeletePolicy`]).
pub const HOOK_DELETE_POLICY: &str = "argocd.argoproj.io/hook-delete-policy";
/// Per-resource sync options, comma-separated (e.g. `Prune=false,Replace=true`).
pub const SYNC_OPTIONS: &str = "argocd.argoproj.io/sync-options";
/// Per-resource compare options, comma-separated (e.g. `IgnoreExtraneous`).
pub const COMPARE_OPTIONS: &str = "argocd.argoproj.io/compare-options";
/// Annotation-based tracking id: `<app>:<group>/<kind>:<namespace>/<name>`.
pub const TRACKING_ID: &str = "argocd.argoproj.io/tracking-id";
/// On an Application: request a refresh (`normal` or `hard`); removed once handled.
pub const REFRESH: &str = "argocd.argoproj.io/refresh";
/// On an Application: `"true"` makes the controller skip reconciling it.
pub const SKIP_RECONCILE: &str = "argocd.argoproj.io/skip-reconcile";
/// On an Application: `;`-separated paths whose changes trigger manifest generation.
pub const MANIFEST_GENERATE_PATHS: &str = "argocd.argoproj.io/manifest-generate-paths";

/// Label on Secrets naming what they hold (see the `SECRET_TYPE_*` values).
pub const SECRET_TYPE: &str = "argocd.argoproj.io/secret-type";
/// [`SECRET_TYPE`] value of a cluster Secret.
pub const SECRET_TYPE_CLUSTER: &str = "cluster";
/// [`SECRET_TYPE`] value of a repository Secret.
pub const SECRET_TYPE_REPOSITORY: &str = "repository";
/// [`SECRET_TYPE`] value of a repository credential template Secret.
pub const SECRET_TYPE_REPO_CREDS: &str = "repo-creds";

/// Helm hook annotation (`pre-install`, `post-upgrade`, ...), mapped onto Argo CD hooks.
pub const HELM_HOOK: &str = "helm.sh/hook";
/// Helm hook weight, the Helm equivalent of [`SYNC_WAVE`] for hooks.
pub const HELM_HOOK_WEIGHT: &str = "helm.sh/hook-weight";
/// Helm hook delete policy (`hook-succeeded`, `hook-failed`, `before-hook-creation`).
pub const HELM_HOOK_DELETE_POLICY: &str = "helm.sh/hook-delete-policy";

/// Label used by label-based resource tracking (Argo CD's default tracking label).
pub const APP_INSTANCE_LABEL: &str = "app.kubernetes.io/instance";

/// Annotation written by client-side apply holding the last applied configuration.
pub const LAST_APPLIED_CONFIGURATION: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// Application finalizer: delete the app's resources (foreground cascade) before the app.
pub const RESOURCES_FINALIZER: &str = "resources-finalizer.argocd.argoproj.io";
/// Application finalizer: delete the app's resources with background cascade.
pub const RESOURCES_FINALIZER_BACKGROUND: &str =
    "resources-finalizer.argocd.argoproj.io/background";
/// Application finalizer: delete the app's resources with foreground cascade.
pub const RESOURCES_FINALIZER_FOREGROUND: &str =
    "resources-finalizer.argocd.argoproj.io/foreground";

/// [`REFRESH`] value asking for a normal refresh (re-compare using cached manifests).
pub const REFRESH_NORMAL: &str = "normal";
/// [`REFRESH`] value asking for a hard refresh (regenerate manifests, bypass caches).
pub const REFRESH_HARD: &str = "hard";
