//! Directory and Jsonnet rendering against fixture repositories built in temp dirs: recursion,
//! globs, multi-document YAML, JSON, lists, ignored files, Jsonnet TLAs/extVars/libs,
//! tracking, and hostile or broken inputs (escaping symlinks and app paths, Jsonnet imports
//! outside the repository, malformed YAML, huge and binary files).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod fixture_repo;

use fixture_repo::Repo;

use std::collections::HashMap;

use keelson_model::source::{ApplicationSource, DirectorySource, JsonnetSource, JsonnetVar};
use keelson_repo_server::render::{
    KustomizeTool, Limits, RenderError, RenderRequest, Rendered, SourceType, Tools, Tracking,
    TrackingMethod, render,
};
use serde_json::Value;

fn tools() -> Tools {
    Tools {
        helm: "helm".into(),
        kustomize: KustomizeTool::Kubectl("kubectl".into()),
        plugins: HashMap::new(),
    }
}

fn tracking(method: TrackingMethod) -> Tracking {
    Tracking {
        method,
        label_key: "app.kubernetes.io/instance".into(),
        app_instance: "guestbook".into(),
        app_namespace: "dest".into(),
    }
}

async fn run(
    repo: &Repo,
    path: &str,
    source: &ApplicationSource,
    limits: &Limits,
) -> Result<Rendered, RenderError> {
    let root = repo.root();
    let tools = tools();
    let tracking = tracking(TrackingMethod::AnnotationAndLabel);
    let api_versions = vec!["v1".to_string()];
    let req = RenderRequest {
        root: &root,
        path,
        source,
        app_name: "guestbook",
        namespace: "dest",
        revision: "0123456789abcdef0123456789abcdef01234567",
        repo_url: "https://git.example.com/repo.git",
        kube_version: "1.20.2",
        api_versions: &api_versions,
        tracking: &tracking,
        tools: &tools,
        limits,
    };
    render(&req).await
}

fn dir_source(recurse: bool, include: Option<&str>, exclude: Option<&str>) -> ApplicationSource {
    ApplicationSource {
        directory: Some(DirectorySource {
            recurse: Some(recurse),
            include: include.map(Into::into),
            exclude: exclude.map(Into::into),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn names(rendered: &Rendered) -> Vec<String> {
    rendered
        .objects
        .iter()
        .map(|o| o["metadata"]["name"].as_str().unwrap().to_string())
        .collect()
}

fn cm(name: &str) -> String {
    format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\ndata:\n  k: v\n")
}

fn plain_repo() -> Repo {
    let repo = Repo::new();
    repo.write("app/a.yaml", format!("{}---\n---\n{}", cm("a1"), cm("a2")));
    repo.write(
        "app/b.json",
        r#"{"apiVersion":"v1","kind":"Secret","metadata":{"name":"b","namespace":"other"}}"#,
    );
    repo.write(
        "app/list.yml",
        "apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: ServiceAccount\n  metadata: {name: l1}\n- apiVersion: rbac.authorization.k8s.io/v1\n  kind: ClusterRole\n  metadata: {name: l2}\n",
    );
    repo.write("app/README.md", "# not a manifest\n");
    repo.write("app/values.yaml", "replicaCount: 3\nimage: nginx\n");
    repo.write("app/script.sh", "echo hi\n");
    repo.write("app/sub/c.yaml", cm("c"));
    repo.write("app/sub/deeper/d.yaml", cm("d"));
    repo
}

#[tokio::test]
async fn directory_without_recursion() {
    let repo = plain_repo();
    let out = run(
        &repo,
        "app",
        &dir_source(false, None, None),
        &Limits::default(),
    )
    .await
    .unwrap();
    assert_eq!(out.source_type, SourceType::Directory);
    assert_eq!(names(&out), ["a1", "a2", "b", "l1", "l2"]);
}

#[tokio::test]
async fn directory_with_recursion_and_detection() {
    let repo = plain_repo();
    // No explicit options: detected as Directory, no recursion.
    let out = run(
        &repo,
        "app",
        &ApplicationSource::default(),
        &Limits::default(),
    )
    .await
    .unwrap();
    assert_eq!(out.source_type, SourceType::Directory);
    assert_eq!(out.objects.len(), 5);
    let out = run(
        &repo,
        "app",
        &dir_source(true, None, None),
        &Limits::default(),
    )
    .await
    .unwrap();
    assert_eq!(names(&out), ["a1", "a2", "b", "l1", "l2", "c", "d"]);
}

#[tokio::test]
async fn include_and_exclude_globs() {
    let repo = plain_repo();
    let out = run(
        &repo,
        "app",
        &dir_source(true, Some("*.yaml"), None),
        &Limits::default(),
    )
    .await
    .unwrap();
    assert_eq!(names(&out), ["a1", "a2", "c", "d"]);
    let out = run(
        &repo,
        "app",
        &dir_source(true, Some("{a.yaml,b.json}"), None),
        &Limits::default(),
    )
    .await
    .unwrap();
    assert_eq!(names(&out), ["a1", "a2", "b"]);
    let out = run(
        &repo,
        "app",
        &dir_source(true, None, Some("sub/*")),
        &Limits::default(),
    )
    .await
    .unwrap();
    assert_eq!(names(&out), ["a1", "a2", "b", "l1", "l2"]);
    let out = run(
        &repo,
        "app",
        &dir_source(true, Some("*.yaml"), Some("{sub/deeper/*,a.yaml}")),
        &Limits::default(),
    )
    .await
    .unwrap();
    assert_eq!(names(&out), ["c"]);
}

#[tokio::test]
async fn tracking_is_on_every_object() {
    let repo = plain_repo();
    let out = run(
        &repo,
        "app",
        &dir_source(true, None, None),
        &Limits::default(),
    )
    .await
    .unwrap();
    for obj in &out.objects {
        assert_eq!(
            obj["metadata"]["labels"]["app.kubernetes.io/instance"], "guestbook",
            "{obj}"
        );
        assert!(
            obj["metadata"]["annotations"]["argocd.argoproj.io/tracking-id"].is_string(),
            "{obj}"
        );
    }
    let by_name = |n: &str| {
        out.objects
            .iter()
            .find(|o| o["metadata"]["name"] == n)
            .unwrap()
            .clone()
    };
    assert_eq!(
        by_name("a1")["metadata"]["annotations"]["argocd.argoproj.io/tracking-id"],
        "guestbook:/ConfigMap:dest/a1"
    );
    assert_eq!(
        by_name("b")["metadata"]["annotations"]["argocd.argoproj.io/tracking-id"],
        "guestbook:/Secret:other/b"
    );
    assert_eq!(
        by_name("l2")["metadata"]["annotations"]["argocd.argoproj.io/tracking-id"],
        "guestbook:rbac.authorization.k8s.io/ClusterRole:dest/l2"
    );
}

#[tokio::test]
async fn jsonnet_with_tla_ext_var_and_lib() {
    let repo = Repo::new();
    repo.write("lib/k.libsonnet", "{ cm(name, data):: { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: name }, data: data } }");
    repo.write("app/helper.libsonnet", "{ suffix: '-x' }");
    repo.write(
        "app/main.jsonnet",
        "local k = import 'k.libsonnet';\nlocal h = import 'helper.libsonnet';\nfunction(replicas, name='dflt') [\n  k.cm(name + h.suffix, { env: std.extVar('env'), n: std.toString(std.extVar('count') + replicas) }),\n  [k.cm('nested', {})],\n]\n",
    );
    let var = |name: &str, value: &str, code: bool| JsonnetVar {
        name: name.into(),
        value: Some(value.into()),
        code: Some(code),
    };
    let source = ApplicationSource {
        directory: Some(DirectorySource {
            jsonnet: Some(JsonnetSource {
                ext_vars: Some(vec![
                    var("env", "prod-$ARGOCD_APP_NAME", false),
                    var("count", "40", true),
                ]),
                tlas: Some(vec![var("replicas", "2", true), var("name", "web", false)]),
                libs: Some(vec!["lib".into()]),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    };
    let out = run(&repo, "app", &source, &Limits::default())
        .await
        .unwrap();
    assert_eq!(names(&out), ["web-x", "nested"]);
    assert_eq!(out.objects[0]["data"]["env"], "prod-guestbook");
    assert_eq!(out.objects[0]["data"]["n"], "42");
    assert_eq!(
        out.objects[1]["metadata"]["labels"]["app.kubernetes.io/instance"],
        "guestbook"
    );
}

#[tokio::test]
async fn jsonnet_errors_name_the_file() {
    let repo = Repo::new();
    repo.write("app/bad.jsonnet", "{ a: error 'boom' }");
    let err = run(
        &repo,
        "app",
        &ApplicationSource::default(),
        &Limits::default(),
    )
    .await
    .unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("app/bad.jsonnet") && msg.contains("boom"),
        "{msg}"
    );
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

#[tokio::test]
async fn hostile_symlink_to_etc_passwd() {
    let repo = Repo::new();
    repo.write("app/ok.yaml", cm("ok"));
    repo.symlink("/etc/passwd", "app/passwd.yaml");
    let result = run(
        &repo,
        "app",
        &ApplicationSource::default(),
        &Limits::default(),
    )
    .await;
    assert_err_contains(result, &["app/passwd.yaml", "outside the repository"]);
    // A symlink to a file outside the checkout that exists next to it.
    let repo = Repo::new();
    repo.symlink(repo.outside().join("outside-secret.txt"), "app/s.yaml");
    let result = run(
        &repo,
        "app",
        &ApplicationSource::default(),
        &Limits::default(),
    )
    .await;
    assert_err_contains(result, &["app/s.yaml", "outside the repository"]);
}

#[tokio::test]
async fn symlinks_inside_the_repository_are_followed() {
    let repo = Repo::new();
    repo.write("shared/cm.yaml", cm("shared"));
    repo.symlink("../shared/cm.yaml", "app/link.yaml");
    let out = run(
        &repo,
        "app",
        &ApplicationSource::default(),
        &Limits::default(),
    )
    .await
    .unwrap();
    assert_eq!(names(&out), ["shared"]);
}

#[tokio::test]
async fn hostile_app_paths() {
    let repo = Repo::new();
    repo.write("app/a.yaml", cm("a"));
    std::fs::write(repo.outside().join("evil.yaml"), cm("evil")).unwrap();
    let none = ApplicationSource::default();
    assert_err_contains(
        run(&repo, "../..", &none, &Limits::default()).await,
        &["outside the repository"],
    );
    assert_err_contains(
        run(&repo, "..", &none, &Limits::default()).await,
        &["outside the repository"],
    );
    assert_err_contains(
        run(&repo, "app/../../", &none, &Limits::default()).await,
        &["outside the repository"],
    );
    assert_err_contains(
        run(&repo, "/etc", &none, &Limits::default()).await,
        &["absolute"],
    );
    repo.symlink(repo.outside(), "linked");
    assert_err_contains(
        run(&repo, "linked", &none, &Limits::default()).await,
        &["outside the repository"],
    );
    assert_err_contains(
        run(&repo, "missing", &none, &Limits::default()).await,
        &["does not exist"],
    );
}

#[tokio::test]
async fn hostile_jsonnet_imports() {
    let cases = [
        ("importstr '/etc/passwd'", "/etc/passwd"),
        ("import '/etc/passwd'", "/etc/passwd"),
        ("importstr '../../outside-secret.txt'", "outside-secret.txt"),
        (
            "local x = importstr '../../../../../../etc/passwd'; {}",
            "etc/passwd",
        ),
    ];
    for (code, needle) in cases {
        let repo = Repo::new();
        repo.write("app/main.jsonnet", code);
        let result = run(
            &repo,
            "app",
            &ApplicationSource::default(),
            &Limits::default(),
        )
        .await;
        assert_err_contains(result, &[needle, "outside the repository"]);
    }
    // Through a symlink inside the repository.
    let repo = Repo::new();
    repo.symlink(repo.outside().join("outside-secret.txt"), "lib/secret.txt");
    repo.write("app/main.jsonnet", "{ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: importstr '../lib/secret.txt' } }");
    let result = run(
        &repo,
        "app",
        &ApplicationSource::default(),
        &Limits::default(),
    )
    .await;
    assert_err_contains(result, &["outside the repository"]);
    // A library path escaping the root.
    let repo = Repo::new();
    repo.write("app/main.jsonnet", "{}");
    let source = ApplicationSource {
        directory: Some(DirectorySource {
            jsonnet: Some(JsonnetSource {
                libs: Some(vec!["../..".into()]),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    };
    assert_err_contains(
        run(&repo, "app", &source, &Limits::default()).await,
        &["jsonnet library path", "outside"],
    );
    // Imports in ext code are confined too.
    let repo = Repo::new();
    repo.write("app/main.jsonnet", "[]");
    let source = ApplicationSource {
        directory: Some(DirectorySource {
            jsonnet: Some(JsonnetSource {
                ext_vars: Some(vec![JsonnetVar {
                    name: "x".into(),
                    value: Some("importstr '/etc/passwd'".into()),
                    code: Some(true),
                }]),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    };
    assert_err_contains(
        run(&repo, "app", &source, &Limits::default()).await,
        &["outside the repository"],
    );
}

#[tokio::test]
async fn malformed_yaml_names_file_and_line() {
    let repo = Repo::new();
    repo.write("app/good.yaml", cm("good"));
    repo.write(
        "app/broken.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n  labels: {a: b\n",
    );
    let msg = assert_err_contains(
        run(
            &repo,
            "app",
            &ApplicationSource::default(),
            &Limits::default(),
        )
        .await,
        &["app/broken.yaml", "line"],
    );
    assert!(msg.contains("invalid yaml"), "{msg}");
}

#[tokio::test]
async fn object_without_kind_names_the_file() {
    let repo = Repo::new();
    repo.write("app/x.yaml", "apiVersion: v1\nmetadata:\n  name: x\n");
    assert_err_contains(
        run(
            &repo,
            "app",
            &ApplicationSource::default(),
            &Limits::default(),
        )
        .await,
        &["app/x.yaml", "missing kind"],
    );
}

#[tokio::test]
async fn huge_and_binary_files() {
    let repo = Repo::new();
    repo.write("app/huge.yaml", cm("x").repeat(2000));
    let limits = Limits {
        max_file_bytes: 16 * 1024,
        ..Limits::default()
    };
    assert_err_contains(
        run(&repo, "app", &ApplicationSource::default(), &limits).await,
        &["app/huge.yaml", "over the limit"],
    );
    let repo = Repo::new();
    repo.write(
        "app/bin.yaml",
        [0x7fu8, b'E', b'L', b'F', 0, 0, 1, 2, 255, 254],
    );
    assert_err_contains(
        run(
            &repo,
            "app",
            &ApplicationSource::default(),
            &Limits::default(),
        )
        .await,
        &["app/bin.yaml", "binary"],
    );
    // The total read is bounded by the output limit.
    let repo = Repo::new();
    for i in 0..10 {
        repo.write(&format!("app/f{i}.yaml"), cm(&format!("c{i}")));
    }
    let limits = Limits {
        max_output_bytes: 300,
        ..Limits::default()
    };
    assert_err_contains(
        run(&repo, "app", &ApplicationSource::default(), &limits).await,
        &["output limit"],
    );
}

#[tokio::test]
async fn jsonnet_output_list_objects_only() {
    let repo = Repo::new();
    repo.write("app/main.jsonnet", "[1, 2]");
    assert_err_contains(
        run(
            &repo,
            "app",
            &ApplicationSource::default(),
            &Limits::default(),
        )
        .await,
        &["app/main.jsonnet"],
    );
    let _ = Value::Null;
}
