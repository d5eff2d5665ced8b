//! The `examples/` GitOps content (used by `keelson demo` and the end-to-end tests) renders
//! through the real repo-server code in process, with the real `git`, `helm` and
//! `kubectl kustomize`: every Application in `examples/applications/` parses and validates
//! after placeholder replacement, and renders the expected objects with the tracking label.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail, ensure};
use keelson_cache::{CacheConfig, ManifestCache};
use keelson_model::Application;
use keelson_model::annotations::APP_INSTANCE_LABEL;
use keelson_proto::repo_server::{ManifestRequest, Repository};
use keelson_repo_server::git::{GitConfig, GitStore};
use keelson_repo_server::metrics::RepoMetrics;
use keelson_repo_server::pool::RepoClient;
use keelson_repo_server::render::{KustomizeTool, Limits, Tools};
use keelson_repo_server::service::{RepoService, ServiceConfig};
use keelson_testbed::{GitRepo, find_tool};
use prometheus::Registry;
use serde_json::Value;

/// What the demo puts in for `DEST_NAME`: the dev cluster's name.
const DEV_NAME: &str = "dev";
/// What the demo puts in for `DEST_SERVER`: the prod cluster's API URL (any URL here).
const PROD_SERVER: &str = "https://127.0.0.1:6443/clusters/prod";

fn examples_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples")
}

/// A Git repository holding a copy of `examples/` at its root, as the demo makes it, and an
/// in-process repo-server.
struct Fixture {
    repo: GitRepo,
    client: RepoClient,
    _work: tempfile::TempDir,
}

fn copy_tree(repo: &GitRepo, dir: &Path, prefix: &str) -> anyhow::Result<usize> {
    let mut copied = 0;
    let mut entries = std::fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .collect::<Result<Vec<_>, _>>()?;
    entries.sort_by_key(std::fs::DirEntry::file_name);
    for entry in entries {
        let name = entry.file_name().to_string_lossy().into_owned();
        let rel = if prefix.is_empty() {
            name
        } else {
            format!("{prefix}/{name}")
        };
        if entry.file_type()?.is_dir() {
            copied += copy_tree(repo, &entry.path(), &rel)?;
        } else {
            repo.write(&rel, std::fs::read(entry.path())?)?;
            copied += 1;
        }
    }
    Ok(copied)
}

async fn fixture() -> anyhow::Result<Fixture> {
    let repo = GitRepo::init()?;
    let files = copy_tree(&repo, &examples_dir(), "")?;
    ensure!(files > 10, "examples/ holds only {files} files");
    repo.commit("examples")?;
    let work = tempfile::tempdir()?;
    let scratch_dir = work.path().join("scratch");
    std::fs::create_dir_all(&scratch_dir)?;
    let registry = Registry::new();
    let git = GitStore::new(GitConfig {
        git_binary: find_tool("git")?,
        ..GitConfig::new(work.path().join("mirrors"))
    })?;
    let cache = ManifestCache::new(CacheConfig::default(), &registry).await?;
    let config = ServiceConfig {
        scratch_dir,
        parallelism_limit: 2,
        tools: Tools {
            helm: find_tool("helm")?,
            kustomize: KustomizeTool::Kubectl(find_tool("kubectl")?),
            plugins: Default::default(),
        },
        limits: Limits::default(),
        default_kube_version: "1.35.0".into(),
    };
    let service = RepoService::new(git, cache, config, RepoMetrics::new(&registry)?);
    Ok(Fixture {
        repo,
        client: RepoClient::in_process(service),
        _work: work,
    })
}

/// `examples/applications/*.yaml` by file name, placeholders replaced, parsed and validated.
fn applications(repo_url: &str) -> anyhow::Result<BTreeMap<String, Application>> {
    let mut apps = BTreeMap::new();
    for entry in std::fs::read_dir(examples_dir().join("applications"))? {
        let path = entry?.path();
        if path.extension().is_none_or(|e| e != "yaml") {
            continue;
        }
        let text = std::fs::read_to_string(&path)?
            .replace("REPO_URL", repo_url)
            .replace("DEST_SERVER", PROD_SERVER)
            .replace("DEST_NAME", DEV_NAME);
        let app: Application = serde_yaml_ng::from_str(&text)
            .with_context(|| format!("parsing {}", path.display()))?;
        app.validate()
            .with_context(|| format!("validating {}", path.display()))?;
        let stem = path
            .file_stem()
            .context("file stem")?
            .to_string_lossy()
            .into_owned();
        apps.insert(stem, app);
    }
    Ok(apps)
}

/// Renders an Application's source as the controller asks for it.
async fn render(fx: &Fixture, app: &Application) -> anyhow::Result<Vec<Value>> {
    let source = app.spec.source.as_ref().context("single source")?;
    let name = app.metadata.name.clone().context("app name")?;
    let req = ManifestRequest {
        repo: Some(Repository {
            url: source.repo_url.clone(),
            ..Repository::default()
        }),
        source_json: serde_json::to_string(source)?,
        app_name: name.clone(),
        namespace: app.spec.destination.namespace.clone().unwrap_or_default(),
        project: app.spec.project_or_default().to_owned(),
        no_cache: true,
        ..ManifestRequest::default()
    };
    let resp = fx
        .client
        .generate_manifests(req)
        .await
        .with_context(|| format!("rendering {name}"))?;
    let objects = resp
        .manifests
        .iter()
        .map(|m| serde_json::from_str::<Value>(m))
        .collect::<Result<Vec<_>, _>>()?;
    for obj in &objects {
        let label = obj["metadata"]["labels"][APP_INSTANCE_LABEL].as_str();
        ensure!(
            label == Some(name.as_str()),
            "{name}: {} {} lacks the tracking label: {label:?}",
            obj["kind"],
            obj["metadata"]["name"]
        );
    }
    Ok(objects)
}

/// `(kind, name)` of every object, sorted.
fn summary(objects: &[Value]) -> Vec<(String, String)> {
    let mut out: Vec<_> = objects
        .iter()
        .map(|o| {
            (
                o["kind"].as_str().unwrap_or_default().to_owned(),
                o["metadata"]["name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
            )
        })
        .collect();
    out.sort();
    out
}

fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut v: Vec<_> = items
        .iter()
        .map(|(k, n)| ((*k).to_owned(), (*n).to_owned()))
        .collect();
    v.sort();
    v
}

fn find<'a>(objects: &'a [Value], kind: &str, name: &str) -> anyhow::Result<&'a Value> {
    objects
        .iter()
        .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
        .with_context(|| format!("no {kind} {name}"))
}

async fn render_app(fx: &Fixture, file: &str) -> anyhow::Result<(Application, Vec<Value>)> {
    let apps = applications(&fx.repo.url())?;
    let app = apps
        .get(file)
        .cloned()
        .with_context(|| format!("no {file}.yaml"))?;
    let objects = render(fx, &app).await?;
    Ok((app, objects))
}

#[tokio::test]
async fn every_application_parses_validates_and_follows_the_demo_conventions() -> anyhow::Result<()>
{
    let apps = applications("https://git.example.invalid/demo.git")?;
    let names: Vec<_> = apps.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        [
            "app-of-apps",
            "guestbook",
            "helm-guestbook",
            "kustomize-guestbook",
            "waves-hooks"
        ]
    );
    let mut namespaces = Vec::new();
    for (file, app) in &apps {
        assert_eq!(app.metadata.name.as_deref(), Some(file.as_str()));
        assert_eq!(app.metadata.namespace.as_deref(), Some("argocd"), "{file}");
        assert_eq!(app.spec.project, "default", "{file}");
        let source = app.spec.source.as_ref().context("source")?;
        assert_eq!(
            source.repo_url, "https://git.example.invalid/demo.git",
            "{file}"
        );
        let path = source.path.as_deref().context("path")?;
        assert!(
            examples_dir().join(path).is_dir(),
            "{file}: {path} is not a directory"
        );
        let policy = app.spec.sync_policy.as_ref().context("syncPolicy")?;
        let automated = policy.automated.as_ref().context("automated")?;
        assert_eq!(
            (automated.prune, automated.self_heal),
            (Some(true), Some(true)),
            "{file}"
        );
        assert!(
            policy
                .sync_options
                .iter()
                .flatten()
                .any(|o| o == "CreateNamespace=true"),
            "{file}"
        );
        let dest = &app.spec.destination;
        let expected = match file.as_str() {
            "guestbook" | "kustomize-guestbook" => (None, Some(DEV_NAME)),
            "helm-guestbook" | "waves-hooks" => (Some(PROD_SERVER), None),
            _ => (Some("https://kubernetes.default.svc"), None),
        };
        assert_eq!((dest.server(), dest.name()), expected, "{file}");
        namespaces.push(dest.namespace.clone().context("namespace")?);
    }
    namespaces.sort();
    namespaces.dedup();
    assert_eq!(
        namespaces.len(),
        apps.len(),
        "each app has its own namespace"
    );
    // No placeholder survives replacement anywhere.
    for app in apps.values() {
        let text = serde_json::to_string(app)?;
        for placeholder in ["REPO_URL", "DEST_SERVER", "DEST_NAME"] {
            assert!(!text.contains(placeholder), "{placeholder} left in {text}");
        }
    }
    Ok(())
}

#[tokio::test]
async fn guestbook_renders_a_deployment_and_a_service() -> anyhow::Result<()> {
    let fx = fixture().await?;
    let (_, objects) = render_app(&fx, "guestbook").await?;
    assert_eq!(
        summary(&objects),
        pairs(&[("Deployment", "guestbook-ui"), ("Service", "guestbook-ui")])
    );
    let deploy = find(&objects, "Deployment", "guestbook-ui")?;
    assert_eq!(
        deploy["spec"]["template"]["spec"]["containers"][0]["image"],
        "gcr.io/heptio-images/ks-guestbook-demo:0.2"
    );
    Ok(())
}

#[tokio::test]
async fn helm_guestbook_renders_with_real_helm_and_the_app_parameters() -> anyhow::Result<()> {
    let fx = fixture().await?;
    let (_, objects) = render_app(&fx, "helm-guestbook").await?;
    assert_eq!(
        summary(&objects),
        pairs(&[
            ("Deployment", "helm-guestbook"),
            ("Service", "helm-guestbook")
        ])
    );
    let deploy = find(&objects, "Deployment", "helm-guestbook")?;
    // replicaCount=2 comes from the Application's helm parameters, over values.yaml's 1.
    assert_eq!(deploy["spec"]["replicas"], 2);
    assert_eq!(
        deploy["spec"]["template"]["spec"]["containers"][0]["image"],
        "gcr.io/heptio-images/ks-guestbook-demo:0.2"
    );
    let svc = find(&objects, "Service", "helm-guestbook")?;
    assert_eq!(svc["spec"]["selector"]["app"], "helm-guestbook");
    Ok(())
}

#[tokio::test]
async fn kustomize_overlay_renders_with_real_kubectl() -> anyhow::Result<()> {
    let fx = fixture().await?;
    let (_, objects) = render_app(&fx, "kustomize-guestbook").await?;
    assert_eq!(
        summary(&objects),
        pairs(&[
            ("Deployment", "demo-guestbook-ui"),
            ("Service", "demo-guestbook-ui")
        ])
    );
    for obj in &objects {
        assert_eq!(obj["metadata"]["labels"]["environment"], "demo", "{obj}");
    }
    let deploy = find(&objects, "Deployment", "demo-guestbook-ui")?;
    assert_eq!(deploy["spec"]["replicas"], 2);
    // Selectors are untouched by the overlay's labels.
    assert_eq!(
        deploy["spec"]["selector"]["matchLabels"],
        serde_json::json!({"app": "guestbook-ui"})
    );
    Ok(())
}

#[tokio::test]
async fn waves_hooks_carry_waves_hooks_and_delete_policies() -> anyhow::Result<()> {
    let fx = fixture().await?;
    let (_, objects) = render_app(&fx, "waves-hooks").await?;
    assert_eq!(
        summary(&objects),
        pairs(&[
            ("ConfigMap", "settings-wave-minus-1"),
            ("ConfigMap", "settings-wave-0"),
            ("ConfigMap", "settings-wave-1"),
            ("Deployment", "waves-app"),
            ("Job", "pre-sync-check"),
            ("Job", "post-sync-smoke-test"),
            ("Job", "sync-fail-notify"),
        ])
    );
    let annotation = |kind: &str, name: &str, key: &str| -> anyhow::Result<String> {
        let obj = find(&objects, kind, name)?;
        Ok(obj["metadata"]["annotations"][key]
            .as_str()
            .unwrap_or_default()
            .to_owned())
    };
    let wave = "argocd.argoproj.io/sync-wave";
    assert_eq!(
        annotation("ConfigMap", "settings-wave-minus-1", wave)?,
        "-1"
    );
    assert_eq!(annotation("ConfigMap", "settings-wave-0", wave)?, "0");
    assert_eq!(annotation("ConfigMap", "settings-wave-1", wave)?, "1");
    assert_eq!(annotation("Deployment", "waves-app", wave)?, "1");
    let hook = "argocd.argoproj.io/hook";
    let policy = "argocd.argoproj.io/hook-delete-policy";
    for (name, phase, delete) in [
        ("pre-sync-check", "PreSync", "BeforeHookCreation"),
        ("post-sync-smoke-test", "PostSync", "HookSucceeded"),
        ("sync-fail-notify", "SyncFail", "BeforeHookCreation"),
    ] {
        assert_eq!(annotation("Job", name, hook)?, phase);
        assert_eq!(annotation("Job", name, policy)?, delete);
        let job = find(&objects, "Job", name)?;
        assert_eq!(job["spec"]["template"]["spec"]["restartPolicy"], "Never");
    }
    Ok(())
}

#[tokio::test]
async fn app_of_apps_renders_valid_children_that_render_too() -> anyhow::Result<()> {
    let fx = fixture().await?;
    let (_, objects) = render_app(&fx, "app-of-apps").await?;
    assert_eq!(
        summary(&objects),
        pairs(&[
            ("Application", "aoa-guestbook"),
            ("Application", "aoa-helm-guestbook"),
            ("Application", "aoa-kustomize-guestbook"),
            ("Application", "aoa-waves-hooks"),
        ])
    );
    let url = fx.repo.url();
    let mut rendered = BTreeMap::new();
    for obj in &objects {
        let child: Application = serde_json::from_value(obj.clone())?;
        child.validate()?;
        let name = child.metadata.name.clone().context("child name")?;
        assert_eq!(child.metadata.namespace.as_deref(), Some("argocd"));
        let source = child.spec.source.as_ref().context("child source")?;
        assert_eq!(source.repo_url, url, "{name}");
        assert_eq!(source.target_revision.as_deref(), Some("HEAD"), "{name}");
        let dest = &child.spec.destination;
        let cluster = match name.as_str() {
            "aoa-guestbook" | "aoa-kustomize-guestbook" => "dev",
            _ => "prod",
        };
        assert_eq!(
            (dest.name(), dest.server()),
            (Some(cluster), None),
            "{name}"
        );
        assert_eq!(dest.namespace.as_deref(), Some(name.as_str()));
        let child_objects = render(&fx, &child).await?;
        rendered.insert(name, summary(&child_objects));
    }
    let counts: Vec<_> = rendered
        .iter()
        .map(|(n, s)| (n.as_str(), s.len()))
        .collect();
    assert_eq!(
        counts,
        [
            ("aoa-guestbook", 2),
            ("aoa-helm-guestbook", 2),
            ("aoa-kustomize-guestbook", 2),
            ("aoa-waves-hooks", 7),
        ]
    );
    // The chart names objects after the release (the app name), which contains the chart name.
    let helm_child = rendered.get("aoa-helm-guestbook").context("helm child")?;
    if !helm_child.contains(&("Deployment".to_owned(), "aoa-helm-guestbook".to_owned())) {
        bail!("unexpected helm child objects: {helm_child:?}");
    }
    Ok(())
}
