//! AppProject parsing, round-trip and validation.

use anyhow::Result;
use keelson_model::project::validate_policy;
use keelson_model::{AppProject, ProjectValidationError as E};
use serde_json::{Value, json};

/// An edit applied to a valid manifest to make it invalid.
type Edit = Box<dyn FnOnce(&mut Value)>;

const PROJECT: &str = r#"
apiVersion: argoproj.io/v1alpha1
kind: AppProject
metadata:
  name: team-a
  namespace: argocd
  finalizers:
  - resources-finalizer.argocd.argoproj.io
spec:
  description: Team A
  sourceRepos:
  - https://github.com/team-a/*
  sourceNamespaces:
  - team-a-apps
  destinations:
  - namespace: team-a-*
    server: https://kubernetes.default.svc
  - namespace: '*'
    name: prod-eu
  clusterResourceWhitelist:
  - group: ''
    kind: Namespace
  clusterResourceBlacklist:
  - group: rbac.authorization.k8s.io
    kind: '*'
  namespaceResourceWhitelist:
  - group: apps
    kind: Deployment
  namespaceResourceBlacklist:
  - group: ''
    kind: ResourceQuota
  orphanedResources:
    warn: true
    ignore:
    - kind: ConfigMap
      name: kube-root-ca.crt
  signatureKeys:
  - keyID: 4AEE18F83AFDEB23
  roles:
  - name: ci
    description: CI pipeline
    policies:
    - p, proj:team-a:ci, applications, sync, team-a/*, allow
    - p, proj:team-a:ci, applications, delete, team-a/*, deny
    groups: [team-a-ci]
    jwtTokens:
    - iat: 1700000000
      id: 5b2c
  syncWindows:
  - kind: deny
    schedule: '0 22 * * *'
    duration: 8h
    applications: ['*']
    manualSync: true
    timeZone: Europe/Berlin
    description: nightly freeze
  - kind: allow
    schedule: '@daily'
    duration: 1h
    clusters: [prod-eu]
  permitOnlyProjectScopedClusters: true
status:
  jwtTokensByRole:
    ci:
      items:
      - iat: 1700000000
        id: 5b2c
"#;

fn project(edit: impl FnOnce(&mut Value)) -> Result<AppProject> {
    let mut value: Value = serde_yaml_ng::from_str(PROJECT)?;
    edit(&mut value);
    Ok(serde_json::from_value(value)?)
}

#[test]
fn full_project_round_trips_and_validates() -> Result<()> {
    let input: Value = serde_yaml_ng::from_str(PROJECT)?;
    let project: AppProject = serde_yaml_ng::from_str(PROJECT)?;
    assert_eq!(serde_json::to_value(&project)?, input);
    project.validate()?;
    let spec = &project.spec;
    assert_eq!(spec.extra["permitOnlyProjectScopedClusters"], true);
    assert_eq!(
        spec.cluster_resource_whitelist
            .as_deref()
            .unwrap_or_default()[0]
            .group
            .as_deref(),
        Some("")
    );
    let windows = spec.sync_windows.as_deref().unwrap_or_default();
    assert_eq!(windows[0].time_zone.as_deref(), Some("Europe/Berlin"));
    assert_eq!(windows[0].extra["description"], "nightly freeze");
    assert_eq!(
        spec.signature_keys.as_deref().unwrap_or_default()[0].key_id,
        "4AEE18F83AFDEB23"
    );
    Ok(())
}

#[test]
fn validation_reports_each_mistake() -> Result<()> {
    let cases: Vec<(Edit, E)> = vec![
        (
            Box::new(|v| v["metadata"]["name"] = "".into()),
            E::MissingName,
        ),
        (
            Box::new(|v| v["spec"]["sourceRepos"][0] = " ".into()),
            E::EmptySourceRepo { index: 0 },
        ),
        (
            Box::new(|v| v["spec"]["destinations"][1] = json!({"namespace": "x"})),
            E::DestinationTarget { index: 1 },
        ),
        (
            Box::new(|v| v["spec"]["namespaceResourceBlacklist"][0] = json!({"group": ""})),
            E::GroupKindKind {
                list: "namespaceResourceBlacklist",
                index: 0,
            },
        ),
        (
            Box::new(|v| {
                let role = v["spec"]["roles"][0].clone();
                if let Some(roles) = v["spec"]["roles"].as_array_mut() {
                    roles.push(role);
                }
            }),
            E::DuplicateRole("ci".into()),
        ),
        (
            Box::new(|v| v["spec"]["roles"][0]["name"] = "".into()),
            E::RoleName { index: 0 },
        ),
        (
            Box::new(|v| v["spec"]["syncWindows"][1]["kind"] = "block".into()),
            E::SyncWindow {
                index: 1,
                reason: "kind must be allow or deny",
            },
        ),
        (
            Box::new(|v| v["spec"]["syncWindows"][0]["duration"] = "".into()),
            E::SyncWindow {
                index: 0,
                reason: "duration is empty",
            },
        ),
    ];
    for (edit, expected) in cases {
        assert_eq!(project(edit)?.validate(), Err(expected));
    }
    Ok(())
}

#[test]
fn policies_must_target_their_own_project_and_role() {
    let ok = "p, proj:team-a:ci, applications, get, team-a/*, allow";
    assert_eq!(validate_policy("team-a", "ci", ok), Ok(()));
    let bad = [
        "p, proj:team-b:ci, applications, get, team-a/*, allow",
        "p, proj:team-a:ci, applications, get, team-b/*, allow",
        "p, proj:team-a:ci, applications, get, team-a/*, maybe",
        "g, proj:team-a:ci, applications, get, team-a/*, allow",
        "p, proj:team-a:ci, applications, get",
    ];
    for policy in bad {
        let err = validate_policy("team-a", "ci", policy);
        assert!(
            matches!(err, Err(E::RolePolicy { .. })),
            "{policy}: {err:?}"
        );
    }
}
