//! Unit tests of the AppProject rules on YAML fixtures.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use keelson_model::{AppProject, Application};
use proptest::prelude::*;

use super::*;

fn project(yaml: &str) -> AppProject {
    serde_yaml_ng::from_str(yaml).expect("project fixture parses")
}

fn app(yaml: &str) -> Application {
    serde_yaml_ng::from_str(yaml).expect("application fixture parses")
}

fn with_sources(rules: &[&str]) -> AppProject {
    let mut p = default_project("argocd");
    p.spec.source_repos = Some(rules.iter().map(|r| (*r).to_owned()).collect());
    p
}

fn with_destinations(entries: &[(&str, &str, &str)]) -> AppProject {
    let mut p = default_project("argocd");
    p.spec.destinations = Some(
        entries
            .iter()
            .map(|(server, name, namespace)| ApplicationDestination {
                server: (!server.is_empty()).then(|| (*server).to_owned()),
                name: (!name.is_empty()).then(|| (*name).to_owned()),
                namespace: Some((*namespace).to_owned()),
                ..ApplicationDestination::default()
            })
            .collect(),
    );
    p
}

const TEAM_PROJECT: &str = r#"
apiVersion: argoproj.io/v1alpha1
kind: AppProject
metadata:
  name: team-a
  namespace: argocd
spec:
  sourceRepos:
    - https://github.com/example/*
    - '!https://github.com/example/secret-*'
  destinations:
    - server: https://kubernetes.default.svc
      namespace: team-a-*
    - name: staging
      namespace: '*'
  clusterResourceWhitelist:
    - group: ''
      kind: Namespace
  namespaceResourceBlacklist:
    - group: ''
      kind: ResourceQuota
"#;

#[test]
fn default_project_permits_everything() {
    let p = default_project("argocd");
    assert_eq!(p.metadata.name.as_deref(), Some("default"));
    assert_eq!(p.metadata.namespace.as_deref(), Some("argocd"));
    assert!(p.validate().is_ok());
    assert!(source_permitted(&p, "https://github.com/any/repo.git"));
    assert!(source_permitted(&p, "git@gitlab.com:group/sub/repo.git"));
    assert!(destination_permitted(
        &p,
        "https://x.example",
        None,
        "kube-system"
    ));
    assert!(destination_permitted(&p, "", Some("prod"), "default"));
    assert!(resource_permitted(
        &p,
        "rbac.authorization.k8s.io",
        "ClusterRole",
        false
    ));
    assert!(resource_permitted(&p, "apps", "Deployment", true));
}

#[test]
fn source_globs_follow_argo_cd() {
    let cases: &[(&[&str], &str, bool)] = &[
        (&["*"], "https://github.com/a/b.git", true),
        (
            &["https://github.com/a/b.git"],
            "https://github.com/a/b",
            true,
        ),
        (
            &["https://github.com/a/b"],
            "https://GitHub.com/a/b.git/",
            true,
        ),
        (
            &["ssh://git@GITHUB.com:a/b"],
            "ssh://git@github.com:a/b",
            true,
        ),
        (
            &["git@github.com:a/b.git"],
            "ssh://git@github.com/a/b",
            true,
        ),
        (
            &["https://github.com/a/*"],
            "https://github.com/a/b.git",
            true,
        ),
        (
            &["https://github.com/a/*.git"],
            "https://github.com/other/b.git",
            false,
        ),
        (
            &["https://github.com/a/foo"],
            "https://github.com/a/foo1",
            false,
        ),
        (
            &["https://gitlab.com/g/*"],
            "https://gitlab.com/g/sub/repo",
            false,
        ),
        (
            &["https://gitlab.com/g/*/*"],
            "https://gitlab.com/g/sub/repo",
            true,
        ),
        (
            &["https://gitlab.com/g/**"],
            "https://gitlab.com/g/a/b/c",
            true,
        ),
        (&[], "https://github.com/a/b", false),
    ];
    for (rules, url, expected) in cases {
        assert_eq!(
            source_permitted(&with_sources(rules), url),
            *expected,
            "rules {rules:?} url {url}"
        );
    }
}

#[test]
fn negated_source_rules_deny_and_win() {
    let cases: &[(&[&str], &str, bool)] = &[
        (
            &["!https://github.com/a/b.git"],
            "https://github.com/a/b.git",
            false,
        ),
        (
            &["!https://github.com/a/*"],
            "https://github.com/a/b.git",
            false,
        ),
        (
            &["https://github.com/a/b", "!https://github.com/a/b"],
            "https://github.com/a/b",
            false,
        ),
        (
            &["!https://github.com/a/b", "*"],
            "https://github.com/a/b",
            false,
        ),
        (
            &["!https://github.com/a/*.git", "*"],
            "https://github.com/other/b.git",
            true,
        ),
        (
            &["!https://gitlab.com/g/**"],
            "https://gitlab.com/g/x/y",
            false,
        ),
        // Argo CD: a deny rule that does not match also allows.
        (&["!https://github.com/a/b"], "https://github.com/c/d", true),
        // Keelson: `!*` denies everything (Argo CD's `*` would not cross `/` here).
        (&["*", "!*"], "https://github.com/a/b", false),
    ];
    for (rules, url, expected) in cases {
        assert_eq!(
            source_permitted(&with_sources(rules), url),
            *expected,
            "rules {rules:?} url {url}"
        );
    }
}

#[test]
fn normalisation_of_repo_urls() {
    assert_eq!(
        normalize_repo_url(" https://GitHub.com/A/B.git "),
        "https://github.com/a/b"
    );
    assert_eq!(
        normalize_repo_url("git@github.com:a/b.git"),
        "git@github.com/a/b"
    );
    assert_eq!(
        normalize_repo_url("ssh://git@github.com/a/b"),
        "git@github.com/a/b"
    );
    assert_eq!(normalize_repo_url("https://host/a/b/"), "https://host/a/b");
    assert_eq!(
        normalize_repo_url("https://user@host/a"),
        "https://user@host/a"
    );
}

#[test]
fn destination_rules_follow_argo_cd() {
    const K: &str = "https://kubernetes.default.svc";
    type Entries<'a> = &'a [(&'a str, &'a str, &'a str)];
    let cases: &[(Entries, (&str, &str, &str), bool)] = &[
        (&[(K, "", "default")], (K, "", "default"), true),
        (&[(K, "", "default")], (K, "", "kube-system"), false),
        (
            &[("https://other", "", "default")],
            (K, "", "default"),
            false,
        ),
        (
            &[("https://*.default.svc", "", "default")],
            (K, "", "default"),
            true,
        ),
        (&[(K, "", "test-*")], (K, "", "test-foo"), true),
        (&[(K, "", "test-*")], (K, "", "test"), false),
        (&[("", "in-cluster", "*")], ("", "in-cluster", "x"), true),
        (&[("", "other", "*")], ("", "in-cluster", "x"), false),
        (&[("", "in-cluster", "*")], (K, "in-cluster", "x"), true),
        // negations
        (
            &[(&format!("!{K}"), "", "default")],
            (K, "", "default"),
            false,
        ),
        (&[(K, "", "!default")], (K, "", "kube-system"), true),
        (
            &[("!https://other", "", "default")],
            (K, "", "default"),
            true,
        ),
        (
            &[("*", "", "kube-system"), ("*", "", "!kube-system")],
            (K, "", "kube-system"),
            false,
        ),
        (
            &[("*", "", "*"), ("*", "", "!kube-system")],
            (K, "", "kube-system"),
            false,
        ),
        (
            &[("*", "", "*"), (&format!("!{K}"), "", "kube-system")],
            (K, "", "default"),
            false,
        ),
        (
            &[("*", "", "*"), ("!https://prod", "", "*")],
            (K, "", "default"),
            true,
        ),
        (&[("", "c", "*"), ("", "!c", "*")], ("", "c", "x"), false),
        (&[], (K, "", "default"), false),
    ];
    for (entries, (server, name, ns), expected) in cases {
        let name = (!name.is_empty()).then_some(*name);
        assert_eq!(
            destination_permitted(&with_destinations(entries), server, name, ns),
            *expected,
            "entries {entries:?} dest {server} {name:?} {ns}"
        );
    }
}

#[test]
fn resource_lists() {
    let p = project(TEAM_PROJECT);
    assert!(resource_permitted(&p, "", "Namespace", false));
    assert!(!resource_permitted(
        &p,
        "rbac.authorization.k8s.io",
        "ClusterRole",
        false
    ));
    assert!(resource_permitted(&p, "apps", "Deployment", true));
    assert!(!resource_permitted(&p, "", "ResourceQuota", true));

    let mut none = p.clone();
    none.spec.cluster_resource_whitelist = None;
    assert!(!resource_permitted(&none, "", "Namespace", false));
    none.spec.cluster_resource_whitelist = Some(Vec::new());
    assert!(!resource_permitted(&none, "", "Namespace", false));

    let restricted = project(
        r#"
metadata: {name: r}
spec:
  namespaceResourceWhitelist:
    - {group: apps, kind: '*'}
    - {group: '', kind: 'Config*'}
  clusterResourceWhitelist: [{group: '*', kind: '*'}]
  clusterResourceBlacklist: [{group: '*.k8s.io', kind: Cluster*}]
"#,
    );
    assert!(resource_permitted(&restricted, "apps", "StatefulSet", true));
    assert!(resource_permitted(&restricted, "", "ConfigMap", true));
    assert!(!resource_permitted(&restricted, "", "Secret", true));
    assert!(!resource_permitted(
        &restricted,
        "rbac.authorization.k8s.io",
        "ClusterRole",
        false
    ));
    assert!(resource_permitted(&restricted, "", "Namespace", false));

    let empty_whitelist = project("metadata: {name: e}\nspec: {namespaceResourceWhitelist: []}");
    assert!(!resource_permitted(
        &empty_whitelist,
        "apps",
        "Deployment",
        true
    ));
}

#[test]
fn resource_denials_and_their_messages() {
    let p = project(TEAM_PROJECT);
    const K: &str = "https://kubernetes.default.svc";
    assert_eq!(
        resource_denial(&p, "apps", "Deployment", Some("team-a-web"), K, None),
        None
    );
    assert_eq!(
        resource_denial(
            &p,
            "rbac.authorization.k8s.io",
            "ClusterRole",
            None,
            K,
            None
        ),
        Some(ResourceDenial::Kind)
    );
    assert_eq!(
        resource_denial(&p, "apps", "Deployment", Some("kube-system"), K, None),
        Some(ResourceDenial::Namespace)
    );
    assert_eq!(
        resource_denied_message("rbac.authorization.k8s.io", "ClusterRole", None, "team-a"),
        "resource rbac.authorization.k8s.io:ClusterRole is not permitted in project team-a"
    );
    assert_eq!(
        resource_denied_message("apps", "Deployment", Some("kube-system"), "team-a"),
        "namespace kube-system is not permitted in project 'team-a'"
    );
}

#[test]
fn check_application_reports_sources_and_destination() {
    let p = project(TEAM_PROJECT);
    let good = app(r#"
metadata: {name: web, namespace: argocd}
spec:
  project: team-a
  source: {repoURL: 'https://github.com/example/web.git', path: deploy}
  destination: {server: 'https://kubernetes.default.svc', namespace: team-a-web}
"#);
    assert!(check_application(&p, &good, "https://kubernetes.default.svc", None).is_empty());

    let bad = app(r#"
metadata: {name: web, namespace: argocd}
spec:
  project: team-a
  sources:
    - {repoURL: 'https://github.com/example/secret-keys.git', path: a}
    - {repoURL: 'https://github.com/example/secret-db', path: b}
    - {repoURL: 'https://github.com/example/ok.git', path: c}
  destination: {server: 'https://kubernetes.default.svc', namespace: kube-system}
"#);
    let conditions = check_application(&p, &bad, "https://kubernetes.default.svc", None);
    let messages: Vec<&str> = conditions.iter().map(|c| c.message.as_str()).collect();
    assert_eq!(
        messages,
        [
            "application repo https://github.com/example/secret-keys.git is not permitted in project 'team-a'",
            "application repo https://github.com/example/secret-db is not permitted in project 'team-a'",
            "application destination server 'https://kubernetes.default.svc' and namespace 'kube-system' do not match any of the allowed destinations in project 'team-a'",
        ]
    );
    assert!(conditions.iter().all(|c| c.type_ == "InvalidSpecError"));
    assert!(conditions.iter().all(|c| c.last_transition_time.is_none()));
    // Argo CD: the project's deny rule also allows what it does not match.
    assert!(source_permitted(&p, "https://gitlab.com/other/repo.git"));
}

#[test]
fn check_application_by_cluster_name_and_hydrator() {
    let mut p = project(TEAM_PROJECT);
    p.spec.source_repos = Some(vec!["https://github.com/example/*".to_owned()]);
    let by_name = app(r#"
metadata: {name: web}
spec:
  project: team-a
  sourceHydrator:
    drySource: {repoURL: 'https://elsewhere.example/dry.git', path: x}
    syncSource: {targetBranch: env/prod, path: x}
  destination: {name: staging, namespace: anything}
"#);
    let conditions = check_application(&p, &by_name, "https://staging.example:6443", None);
    let messages: Vec<&str> = conditions.iter().map(|c| c.message.as_str()).collect();
    assert_eq!(
        messages,
        ["application repo https://elsewhere.example/dry.git is not permitted in project 'team-a'"]
    );

    let default_project_app = app(
        "metadata: {name: x}\nspec:\n  source: {repoURL: 'https://a/b', path: p}\n  destination: {server: 'https://s', namespace: n}",
    );
    let conditions = check_application(&with_sources(&[]), &default_project_app, "https://s", None);
    assert_eq!(
        conditions[0].message,
        "application repo https://a/b is not permitted in project 'default'"
    );
}

#[test]
fn missing_project_condition() {
    let c = project_missing_condition("ghost");
    assert_eq!(c.type_, "InvalidSpecError");
    assert_eq!(
        c.message,
        "Application referencing project ghost which does not exist"
    );
    assert!(c.last_transition_time.is_none());
}

fn segment() -> impl Strategy<Value = String> {
    "[a-z0-9]{1,6}"
}

fn glob_piece() -> impl Strategy<Value = String> {
    prop_oneof![
        segment(),
        Just("*".to_owned()),
        Just("**".to_owned()),
        Just("?".to_owned())
    ]
}

proptest! {
    /// Whatever allow rules a project has, a `!` rule whose glob matches the repository
    /// denies it.
    #[test]
    fn deny_rule_always_wins_for_sources(
        host in segment(),
        path in proptest::collection::vec(segment(), 1..4),
        pieces in proptest::collection::vec(glob_piece(), 1..4),
        allow_first in any::<bool>(),
    ) {
        let url = format!("https://{host}.example/{}", path.join("/"));
        let deny_glob = format!("https://{host}.example/{}", pieces.join("/"));
        let deny_matches = glob_rule(&normalize_repo_url(&deny_glob), &normalize_repo_url(&url), Some('/'));
        let deny = format!("!{deny_glob}");
        let rules: Vec<&str> = if allow_first { vec!["*", url.as_str(), &deny] } else { vec![&deny, url.as_str(), "*"] };
        let permitted = source_permitted(&with_sources(&rules), &url);
        prop_assert_eq!(permitted, !deny_matches);
    }

    /// A `!` namespace (or server) entry whose glob matches the destination denies it even
    /// when another entry allows it.
    #[test]
    fn deny_rule_always_wins_for_destinations(
        server in segment(),
        namespace in segment(),
        deny_namespace in any::<bool>(),
        cut in 0usize..6,
    ) {
        let server = format!("https://{server}");
        let (source, field) = if deny_namespace { (&namespace, "ns") } else { (&server, "server") };
        let prefix: String = source.chars().take(cut.min(source.len())).collect();
        let deny = format!("!{prefix}*");
        let entries: Vec<(&str, &str, &str)> = if field == "ns" {
            vec![("*", "", "*"), ("*", "", &deny)]
        } else {
            vec![("*", "", "*"), (&deny, "", "*")]
        };
        prop_assert!(!destination_permitted(&with_destinations(&entries), &server, None, &namespace));
    }
}
