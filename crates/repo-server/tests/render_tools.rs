//! Kustomize, Helm and plugin rendering with the real `kubectl` and `helm` binaries against
//! fixture repositories built in temp dirs, plus hostile repositories for every escape route
//! through those tools, missing binaries, and the time and output limits.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod fixture_repo;

use fixture_repo::Repo;

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use keelson_model::source::{
    ApplicationSource, EnvEntry, HelmFileParameter, HelmParameter, HelmSource, KustomizeSource,
    PluginParameter, PluginSource,
};
use keelson_repo_server::render::{
    KustomizeTool, Limits, PluginConfig, RenderError, RenderRequest, Rendered, SourceType, Tools,
    Tracking, TrackingMethod, render,
};
use serde_json::Value;

const REVISION: &str = "0123456789abcdef0123456789abcdef01234567";

fn tools() -> Tools {
    Tools {
        helm: keelson_testbed::helm_path().unwrap(),
        kustomize: KustomizeTool::Kubectl(keelson_testbed::kubectl_path().unwrap()),
        plugins: HashMap::new(),
    }
}

async fn run_with(
    repo: &Repo,
    path: &str,
    source: &ApplicationSource,
    tools: &Tools,
    limits: &Limits,
) -> Result<Rendered, RenderError> {
    let root = repo.root();
    let tracking = Tracking {
        method: TrackingMethod::AnnotationAndLabel,
        label_key: "app.kubernetes.io/instance".into(),
        app_instance: "guestbook".into(),
        app_namespace: "dest".into(),
    };
    let api_versions = vec!["v1".to_string(), "example.com/v1".to_string()];
    let req = RenderRequest {
        root: &root,
        path,
        source,
        app_name: "guestbook",
        namespace: "dest",
        revision: REVISION,
        repo_url: "https://git.example.com/repo.git",
        kube_version: "1.20.2",
        api_versions: &api_versions,
        tracking: &tracking,
        tools,
        limits,
    };
    render(&req).await
}

async fn run(repo: &Repo, path: &str, source: &ApplicationSource) -> Result<Rendered, RenderError> {
    run_with(repo, path, source, &tools(), &Limits::default()).await
}

fn find<'a>(out: &'a Rendered, kind: &str, name: &str) -> &'a Value {
    out.objects
        .iter()
        .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("{kind}/{name} not in {:#?}", out.objects))
}

fn assert_tracked(out: &Rendered) {
    assert!(!out.objects.is_empty());
    for obj in &out.objects {
        assert_eq!(
            obj["metadata"]["labels"]["app.kubernetes.io/instance"], "guestbook",
            "{obj}"
        );
        let id = obj["metadata"]["annotations"]["argocd.argoproj.io/tracking-id"]
            .as_str()
            .unwrap();
        assert!(id.starts_with("guestbook:"), "{id}");
    }
}

fn assert_err_contains(result: Result<Rendered, RenderError>, needles: &[&str]) -> String {
    let msg = match result {
        Ok(out) => panic!("expected an error, rendered {:?}", out.objects),
        Err(err) => err.to_string(),
    };
    for needle in needles {
        assert!(msg.contains(needle), "{msg:?} does not mention {needle:?}");
    }
    assert!(!msg.contains("top secret"), "{msg}");
    msg
}

// ---------------------------------------------------------------- kustomize

fn kustomize_repo() -> Repo {
    let repo = Repo::new();
    repo.write(
        "base/kustomization.yaml",
        "resources:\n- deploy.yaml\n- cm.yaml\n",
    );
    repo.write(
        "base/deploy.yaml",
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  selector:\n    matchLabels: {app: web}\n  template:\n    metadata:\n      labels: {app: web}\n    spec:\n      containers:\n      - name: web\n        image: nginx:1.0\n",
    );
    repo.write(
        "base/cm.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata: {a: b}\n",
    );
    repo.write(
        "overlays/prod/kustomization.yaml",
        "resources:\n- ../../base\nnamePrefix: prod-\n",
    );
    repo
}

#[tokio::test]
async fn kustomize_overlay_with_application_options() {
    let repo = kustomize_repo();
    let out = run(&repo, "overlays/prod", &ApplicationSource::default())
        .await
        .unwrap();
    assert_eq!(out.source_type, SourceType::Kustomize);
    find(&out, "Deployment", "prod-web");
    let source = ApplicationSource {
        kustomize: Some(KustomizeSource {
            name_prefix: Some("app-".into()),
            name_suffix: Some("-$ARGOCD_APP_NAME".into()),
            images: Some(vec!["nginx=registry.local/nginx:2.0".into()]),
            common_labels: Some(BTreeMap::from([(
                "team".to_string(),
                "payments".to_string(),
            )])),
            common_annotations: Some(BTreeMap::from([("owner".to_string(), "ops".to_string())])),
            namespace: Some("ns1".into()),
            ..Default::default()
        }),
        ..Default::default()
    };
    let out = run(&repo, "overlays/prod", &source).await.unwrap();
    assert_eq!(out.source_type, SourceType::Kustomize);
    let deploy = find(&out, "Deployment", "app-web-guestbook");
    assert_eq!(
        deploy["spec"]["template"]["spec"]["containers"][0]["image"],
        "registry.local/nginx:2.0"
    );
    assert_eq!(deploy["metadata"]["namespace"], "ns1");
    assert_eq!(deploy["metadata"]["labels"]["team"], "payments");
    assert_eq!(deploy["metadata"]["annotations"]["owner"], "ops");
    assert_eq!(
        deploy["metadata"]["annotations"]["argocd.argoproj.io/tracking-id"],
        "guestbook:apps/Deployment:ns1/app-web-guestbook"
    );
    find(&out, "ConfigMap", "app-settings-guestbook");
    assert_tracked(&out);
}

#[tokio::test]
async fn hostile_kustomize_file_escape() {
    let repo = kustomize_repo();
    repo.write(
        "overlays/evil/kustomization.yaml",
        "resources:\n- ../../../../../../../../etc/passwd\n",
    );
    assert_err_contains(
        run(&repo, "overlays/evil", &ApplicationSource::default()).await,
        &["outside the repository"],
    );
    let repo = kustomize_repo();
    repo.write(
        "overlays/evil/kustomization.yaml",
        "resources:\n- ../../../outside-secret.txt\n",
    );
    assert_err_contains(
        run(&repo, "overlays/evil", &ApplicationSource::default()).await,
        &["outside the repository"],
    );
}

#[tokio::test]
async fn hostile_kustomize_base_outside_the_checkout() {
    let repo = kustomize_repo();
    let evil = repo.outside().join("evilbase");
    std::fs::create_dir_all(&evil).unwrap();
    std::fs::write(
        evil.join("kustomization.yaml"),
        "configMapGenerator:\n- name: s\n  files: [../outside-secret.txt]\n",
    )
    .unwrap();
    repo.write(
        "overlays/evil/kustomization.yaml",
        "resources:\n- ../../../evilbase\n",
    );
    assert_err_contains(
        run(&repo, "overlays/evil", &ApplicationSource::default()).await,
        &["outside the repository"],
    );
    // Through a generator file in a nested base.
    let repo = kustomize_repo();
    repo.write(
        "base2/kustomization.yaml",
        "configMapGenerator:\n- name: s\n  files:\n  - secret=../../outside-secret.txt\n",
    );
    repo.write(
        "overlays/evil/kustomization.yaml",
        "resources:\n- ../../base2\n",
    );
    assert_err_contains(
        run(&repo, "overlays/evil", &ApplicationSource::default()).await,
        &["outside the repository"],
    );
}

#[tokio::test]
async fn hostile_kustomize_symlink() {
    let repo = kustomize_repo();
    repo.symlink(repo.outside().join("outside-secret.txt"), "base/secret.txt");
    repo.write("overlays/evil/kustomization.yaml", "resources:\n- ../../base\nconfigMapGenerator:\n- name: s\n  files: [../../base/secret.txt]\n");
    assert_err_contains(
        run(&repo, "overlays/evil", &ApplicationSource::default()).await,
        &["symlink", "base/secret.txt"],
    );
}

#[tokio::test]
async fn kustomize_remote_bases_fail_fast() {
    for reference in [
        "github.com/kubernetes-sigs/kustomize/examples/multibases?ref=v1.0.6",
        "https://github.com/argoproj/argocd-example-apps//kustomize-guestbook?ref=master",
        "https://raw.githubusercontent.com/argoproj/argocd-example-apps/master/guestbook/guestbook-ui-svc.yaml",
        "git@github.com:argoproj/argocd-example-apps.git",
    ] {
        let repo = kustomize_repo();
        repo.write(
            "overlays/remote/kustomization.yaml",
            format!("resources:\n- ../../base\n- {reference}\n"),
        );
        let start = Instant::now();
        assert_err_contains(
            run(&repo, "overlays/remote", &ApplicationSource::default()).await,
            &["remote", reference],
        );
        assert!(start.elapsed() < Duration::from_secs(5));
    }
}

#[tokio::test]
async fn kustomize_option_conflict_is_an_error() {
    let repo = kustomize_repo();
    repo.write(
        "overlays/prod/kustomization.yaml",
        "resources:\n- ../../base\ncommonLabels:\n  team: core\n",
    );
    let source = ApplicationSource {
        kustomize: Some(KustomizeSource {
            common_labels: Some(BTreeMap::from([(
                "team".to_string(),
                "payments".to_string(),
            )])),
            ..Default::default()
        }),
        ..Default::default()
    };
    assert_err_contains(
        run(&repo, "overlays/prod", &source).await,
        &["team", "force"],
    );
}

// ---------------------------------------------------------------- helm

fn helm_repo() -> Repo {
    let repo = Repo::new();
    repo.write(
        "charts/web/Chart.yaml",
        "apiVersion: v2\nname: web\nversion: 0.1.0\ndependencies:\n- name: sub\n  version: 0.1.0\n  repository: https://charts.example.invalid\n",
    );
    repo.write(
        "charts/web/values.yaml",
        "replicas: 1\nmessage: default\ntag: latest\n",
    );
    repo.write(
        "charts/web/templates/cm.yaml",
        r#"apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ .Release.Name }}-cm
  namespace: {{ .Release.Namespace }}
data:
  replicas: {{ .Values.replicas | quote }}
  message: {{ .Values.message | quote }}
  env: {{ .Values.env | default "none" | quote }}
  inline: {{ .Values.inline | default "none" | quote }}
  tag: {{ .Values.tag | quote }}
  list: {{ .Values.list | default "none" | quote }}
  kube: {{ .Capabilities.KubeVersion.Version | quote }}
  hasApi: {{ .Capabilities.APIVersions.Has "example.com/v1" | quote }}
  cert: {{ .Values.cert | default "none" | quote }}
"#,
    );
    repo.write(
        "charts/web/templates/hook.yaml",
        "apiVersion: batch/v1\nkind: Job\nmetadata:\n  name: {{ .Release.Name }}-migrate\n  annotations:\n    helm.sh/hook: pre-install\nspec:\n  template:\n    spec:\n      restartPolicy: Never\n      containers: [{name: m, image: busybox}]\n",
    );
    repo.write(
        "charts/web/templates/empty.yaml",
        "{{- if .Values.never }}\nkind: Nothing\n{{- end }}\n",
    );
    repo.write("charts/web/crds/crd.yaml", "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata:\n  name: widgets.example.com\nspec:\n  group: example.com\n  names: {kind: Widget, plural: widgets}\n  scope: Namespaced\n  versions: []\n");
    repo.write(
        "charts/web/charts/sub/Chart.yaml",
        "apiVersion: v2\nname: sub\nversion: 0.1.0\n",
    );
    repo.write(
        "charts/web/charts/sub/templates/sa.yaml",
        "apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: {{ .Release.Name }}-sub\n",
    );
    repo.write("charts/web/envs/prod.yaml", "message: from-prod\n");
    repo.write("shared/extra.yaml", "env: shared\n");
    repo.write("charts/web/files/cert.pem", "CERTDATA");
    repo
}

#[tokio::test]
async fn helm_chart_with_values_parameters_and_vendored_dependency() {
    let repo = helm_repo();
    let source = ApplicationSource {
        helm: Some(HelmSource {
            release_name: Some("rel".into()),
            value_files: Some(vec![
                "envs/prod.yaml".into(),
                "/shared/extra.yaml".into(),
                "missing.yaml".into(),
            ]),
            ignore_missing_value_files: Some(true),
            values: Some("inline: ignored\n".into()),
            values_object: Some(serde_json::json!({"inline": "object", "replicas": 2})),
            parameters: Some(vec![
                HelmParameter {
                    name: "replicas".into(),
                    value: Some("3".into()),
                    force_string: None,
                },
                HelmParameter {
                    name: "tag".into(),
                    value: Some("1,2".into()),
                    force_string: Some(true),
                },
                HelmParameter {
                    name: "list".into(),
                    value: Some("$ARGOCD_APP_NAME".into()),
                    force_string: None,
                },
            ]),
            file_parameters: Some(vec![HelmFileParameter {
                name: "cert".into(),
                path: "files/cert.pem".into(),
            }]),
            namespace: Some("helm-ns".into()),
            ..Default::default()
        }),
        ..Default::default()
    };
    let out = run(&repo, "charts/web", &source).await.unwrap();
    assert_eq!(out.source_type, SourceType::Helm);
    let cm = find(&out, "ConfigMap", "rel-cm");
    let data = &cm["data"];
    assert_eq!(cm["metadata"]["namespace"], "helm-ns");
    assert_eq!(data["replicas"], "3");
    assert_eq!(data["message"], "from-prod");
    assert_eq!(data["env"], "shared");
    assert_eq!(data["inline"], "object");
    assert_eq!(data["tag"], "1,2");
    assert_eq!(data["list"], "guestbook");
    assert_eq!(data["kube"], "v1.20.2");
    assert_eq!(data["hasApi"], "true");
    assert_eq!(data["cert"], "CERTDATA");
    find(&out, "ServiceAccount", "rel-sub");
    let hook = find(&out, "Job", "rel-migrate");
    assert_eq!(
        hook["metadata"]["annotations"]["helm.sh/hook"],
        "pre-install"
    );
    let crd = find(&out, "CustomResourceDefinition", "widgets.example.com");
    assert!(
        crd["metadata"].get("labels").is_none(),
        "CRDs carry no tracking, as in Argo CD"
    );
    for obj in out
        .objects
        .iter()
        .filter(|o| o["kind"] != "CustomResourceDefinition")
    {
        assert_eq!(
            obj["metadata"]["labels"]["app.kubernetes.io/instance"], "guestbook",
            "{obj}"
        );
    }
}

#[tokio::test]
async fn helm_defaults_release_name_namespace_and_skip_crds() {
    let repo = helm_repo();
    let out = run(&repo, "charts/web", &ApplicationSource::default())
        .await
        .unwrap();
    assert_eq!(out.source_type, SourceType::Helm);
    let cm = find(&out, "ConfigMap", "guestbook-cm");
    assert_eq!(cm["metadata"]["namespace"], "dest");
    assert_eq!(cm["data"]["message"], "default");
    find(&out, "CustomResourceDefinition", "widgets.example.com");
    let source = ApplicationSource {
        helm: Some(HelmSource {
            skip_crds: Some(true),
            ..Default::default()
        }),
        ..Default::default()
    };
    let out = run(&repo, "charts/web", &source).await.unwrap();
    assert!(
        out.objects
            .iter()
            .all(|o| o["kind"] != "CustomResourceDefinition")
    );
}

fn helm_source(value_files: &[&str], file_parameters: &[&str]) -> ApplicationSource {
    ApplicationSource {
        helm: Some(HelmSource {
            value_files: Some(value_files.iter().map(|s| s.to_string()).collect()),
            file_parameters: Some(
                file_parameters
                    .iter()
                    .map(|p| HelmFileParameter {
                        name: "cert".into(),
                        path: p.to_string(),
                    })
                    .collect(),
            ),
            ..Default::default()
        }),
        ..Default::default()
    }
}

#[tokio::test]
async fn hostile_helm_value_files() {
    let repo = helm_repo();
    // Absolute paths are relative to the repository root, as in Argo CD: /etc/passwd is not there.
    assert_err_contains(
        run(&repo, "charts/web", &helm_source(&["/etc/passwd"], &[])).await,
        &["/etc/passwd", "not found"],
    );
    assert_err_contains(
        run(
            &repo,
            "charts/web",
            &helm_source(&["../../../outside-secret.txt"], &[]),
        )
        .await,
        &["outside the repository"],
    );
    assert_err_contains(
        run(
            &repo,
            "charts/web",
            &helm_source(&["../../../../../../../../etc/passwd"], &[]),
        )
        .await,
        &["outside the repository"],
    );
    assert_err_contains(
        run(
            &repo,
            "charts/web",
            &helm_source(&["https://example.com/values.yaml"], &[]),
        )
        .await,
        &["remote"],
    );
    assert_err_contains(
        run(&repo, "charts/web", &helm_source(&["nope.yaml"], &[])).await,
        &["nope.yaml", "not found"],
    );
    assert_err_contains(
        run(
            &repo,
            "charts/web",
            &helm_source(&[], &["../../../outside-secret.txt"]),
        )
        .await,
        &["outside the repository"],
    );
    assert_err_contains(
        run(&repo, "charts/web", &helm_source(&[], &["/etc/passwd"])).await,
        &["not found"],
    );
    repo.symlink("/etc/passwd", "charts/web/envs/link.yaml");
    assert_err_contains(
        run(&repo, "charts/web", &helm_source(&["envs/link.yaml"], &[])).await,
        &["outside the repository"],
    );
}

#[tokio::test]
async fn hostile_helm_symlinked_template() {
    let repo = helm_repo();
    repo.symlink(
        repo.outside().join("outside-secret.txt"),
        "charts/web/templates/secret.yaml",
    );
    assert_err_contains(
        run(&repo, "charts/web", &ApplicationSource::default()).await,
        &["symlink", "templates/secret.yaml"],
    );
    let repo = helm_repo();
    repo.symlink("/etc", "charts/web/files/etc");
    assert_err_contains(
        run(&repo, "charts/web", &ApplicationSource::default()).await,
        &["symlink", "files/etc"],
    );
}

#[tokio::test]
async fn missing_binaries_are_clear_errors() {
    let repo = helm_repo();
    let mut missing = tools();
    missing.helm = "/nonexistent/bin/helm".into();
    missing.kustomize = KustomizeTool::Kubectl("kubectl-not-installed-anywhere".into());
    let err = run_with(
        &repo,
        "charts/web",
        &ApplicationSource::default(),
        &missing,
        &Limits::default(),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(&err, RenderError::ToolMissing { tool, .. } if tool == "helm"),
        "{err}"
    );
    assert!(err.to_string().contains("/nonexistent/bin/helm"), "{err}");
    let repo = kustomize_repo();
    let err = run_with(
        &repo,
        "overlays/prod",
        &ApplicationSource::default(),
        &missing,
        &Limits::default(),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(&err, RenderError::ToolMissing { tool, .. } if tool == "kubectl"),
        "{err}"
    );
}

// ---------------------------------------------------------------- plugin

const PLUGIN_SCRIPT: &str = r#"#!/bin/sh
cat <<EOF
apiVersion: v1
kind: ConfigMap
metadata:
  name: $ARGOCD_APP_NAME-cm
data:
  ns: "$ARGOCD_APP_NAMESPACE"
  rev: "$ARGOCD_APP_REVISION"
  short: "$ARGOCD_APP_REVISION_SHORT"
  repo: "$ARGOCD_APP_SOURCE_REPO_URL"
  path: "$ARGOCD_APP_SOURCE_PATH"
  target: "$ARGOCD_APP_SOURCE_TARGET_REVISION"
  kube: "$KUBE_VERSION"
  apis: "$KUBE_API_VERSIONS"
  foo: "$ARGOCD_ENV_FOO"
  size: "$PARAM_SIZE"
  init: "$(cat init-ran.txt)"
  leaked: "${CARGO_HOME:-none}"
  params: |
    $ARGOCD_APP_PARAMETERS
EOF
"#;

fn plugin_tools(generate: &[&str]) -> Tools {
    let plugin = PluginConfig {
        name: "envsh".into(),
        init: Some(vec![
            "sh".into(),
            "-c".into(),
            "echo ok > init-ran.txt".into(),
        ]),
        generate: generate.iter().map(|s| s.to_string()).collect(),
        discover_file_glob: Some("*.envsh".into()),
    };
    Tools {
        plugins: HashMap::from([("envsh".to_string(), plugin)]),
        ..tools()
    }
}

#[tokio::test]
async fn plugin_sees_the_argocd_environment() {
    let repo = Repo::new();
    repo.write("apps/p/generate.sh", PLUGIN_SCRIPT);
    repo.write("apps/p/marker.envsh", "");
    let source = ApplicationSource {
        target_revision: Some("main".into()),
        plugin: Some(PluginSource {
            name: Some("envsh".into()),
            env: Some(vec![EnvEntry {
                name: "FOO".into(),
                value: Some("bar-$ARGOCD_APP_NAME".into()),
            }]),
            parameters: Some(vec![PluginParameter {
                name: "size".into(),
                string: Some("large".into()),
                ..Default::default()
            }]),
            ..Default::default()
        }),
        ..Default::default()
    };
    let tools = plugin_tools(&["sh", "generate.sh"]);
    let out = run_with(&repo, "apps/p", &source, &tools, &Limits::default())
        .await
        .unwrap();
    assert_eq!(out.source_type, SourceType::Plugin);
    let cm = find(&out, "ConfigMap", "guestbook-cm");
    let data = &cm["data"];
    assert_eq!(data["ns"], "dest");
    assert_eq!(data["rev"], REVISION);
    assert_eq!(data["short"], &REVISION[..7]);
    assert_eq!(data["repo"], "https://git.example.com/repo.git");
    assert_eq!(data["path"], "apps/p");
    assert_eq!(data["target"], "main");
    assert_eq!(data["kube"], "1.20.2");
    assert_eq!(data["apis"], "v1,example.com/v1");
    assert_eq!(data["foo"], "bar-guestbook");
    assert_eq!(data["size"], "large");
    assert_eq!(data["init"], "ok");
    assert_eq!(
        data["leaked"], "none",
        "the repo-server environment must not leak into plugins"
    );
    let params: Value = serde_json::from_str(data["params"].as_str().unwrap().trim()).unwrap();
    assert_eq!(params[0]["name"], "size");
    assert_tracked(&out);
    // Discovered by glob without any plugin section.
    let out = run_with(
        &repo,
        "apps/p",
        &ApplicationSource::default(),
        &tools,
        &Limits::default(),
    )
    .await
    .unwrap();
    assert_eq!(out.source_type, SourceType::Plugin);
    // An unknown plugin name is a clear error.
    let unknown = ApplicationSource {
        plugin: Some(PluginSource {
            name: Some("nope".into()),
            ..Default::default()
        }),
        ..Default::default()
    };
    assert_err_contains(
        run_with(&repo, "apps/p", &unknown, &tools, &Limits::default()).await,
        &["nope", "not configured"],
    );
}

/// Runs a plugin that breaks a limit; the render must fail with `expect` within `within`.
async fn plugin_breaking_a_limit(
    command: &[&str],
    limits: Limits,
    expect: &[&str],
    within: Duration,
) {
    let repo = Repo::new();
    repo.write("apps/p/marker.envsh", "");
    let tools = plugin_tools(command);
    let start = Instant::now();
    let result = run_with(
        &repo,
        "apps/p",
        &ApplicationSource::default(),
        &tools,
        &limits,
    )
    .await;
    let msg = assert_err_contains(result, expect);
    assert!(start.elapsed() < within, "{msg} took {:?}", start.elapsed());
}

#[tokio::test]
async fn plugin_timeout_is_enforced() {
    let limits = Limits {
        timeout: Duration::from_millis(800),
        ..Limits::default()
    };
    plugin_breaking_a_limit(
        &["sh", "-c", "sleep 60 & sleep 60"],
        limits,
        &["timed out"],
        Duration::from_secs(10),
    )
    .await;
}

#[tokio::test]
async fn plugin_output_limit_is_enforced() {
    let endless =
        "while true; do echo 'a: bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb'; done";
    let limits = Limits {
        max_output_bytes: 1 << 20,
        timeout: Duration::from_secs(60),
        ..Limits::default()
    };
    plugin_breaking_a_limit(
        &["sh", "-c", endless],
        limits,
        &["exceeded the limit"],
        Duration::from_secs(20),
    )
    .await;
}

#[tokio::test]
async fn plugin_failure_carries_stderr() {
    let repo = Repo::new();
    repo.write("apps/p/marker.envsh", "");
    let tools = plugin_tools(&["sh", "-c", "echo 'cannot render: bad input' >&2; exit 4"]);
    assert_err_contains(
        run_with(
            &repo,
            "apps/p",
            &ApplicationSource::default(),
            &tools,
            &Limits::default(),
        )
        .await,
        &["cannot render: bad input"],
    );
}

#[tokio::test]
async fn plugin_relative_command_is_confined() {
    use std::os::unix::fs::PermissionsExt;
    let repo = Repo::new();
    repo.write("apps/p/marker.envsh", "");
    repo.write(
        "apps/p/gen.sh",
        "#!/bin/sh\necho 'apiVersion: v1'\necho 'kind: ConfigMap'\necho 'metadata: {name: rel}'\n",
    );
    let script = repo.root().join("apps/p/gen.sh");
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = run_with(
        &repo,
        "apps/p",
        &ApplicationSource::default(),
        &plugin_tools(&["./gen.sh"]),
        &Limits::default(),
    )
    .await
    .unwrap();
    find(&out, "ConfigMap", "rel");
    let outside = repo.outside().join("evil.sh");
    std::fs::write(&outside, "#!/bin/sh\necho pwned\n").unwrap();
    std::fs::set_permissions(&outside, std::fs::Permissions::from_mode(0o755)).unwrap();
    let tools = plugin_tools(&["../../../evil.sh"]);
    let result = run_with(
        &repo,
        "apps/p",
        &ApplicationSource::default(),
        &tools,
        &Limits::default(),
    )
    .await;
    assert_err_contains(result, &["plugin command", "outside the repository"]);
}
