//! ApplicationSet parsing, round-trip and validation, including nested generators.

use anyhow::Result;
use keelson_model::{ApplicationSet, ApplicationSetValidationError as E};
use serde_json::{Value, json};

/// An edit applied to a valid manifest to make it invalid.
type Edit = Box<dyn FnOnce(&mut Value)>;

const MATRIX: &str = r#"
apiVersion: argoproj.io/v1alpha1
kind: ApplicationSet
metadata:
  name: addons
  namespace: argocd
spec:
  goTemplate: true
  goTemplateOptions: ["missingkey=error"]
  generators:
  - matrix:
      generators:
      - git:
          repoURL: https://github.com/example/addons.git
          revision: HEAD
          files:
          - path: "addons/*/config.json"
          - path: "addons/legacy/config.json"
            exclude: true
          requeueAfterSeconds: 300
      - clusters:
          selector:
            matchExpressions:
            - {key: env, operator: In, values: [prod, staging]}
          values:
            tier: gold
    selector:
      matchLabels:
        enabled: "true"
  - merge:
      mergeKeys: [server]
      generators:
      - clusters: {}
      - list:
          elements:
          - server: https://a.example
            replicas: 3
  - pullRequest:
      github:
        owner: example
        repo: app
      requeueAfterSeconds: 60
  template:
    metadata:
      name: '{{.name}}-{{.path.basename}}'
      labels:
        addon: '{{.path.basename}}'
    spec:
      project: addons
      source:
        repoURL: https://github.com/example/addons.git
        targetRevision: HEAD
        path: '{{.path.path}}'
      destination:
        server: '{{.server}}'
        namespace: '{{.path.basename}}'
  templatePatch: |
    spec:
      syncPolicy:
        automated:
          prune: {{ .prune }}
  syncPolicy:
    preserveResourcesOnDeletion: true
    applicationsSync: create-update
  strategy:
    type: RollingSync
    rollingSync:
      steps:
      - matchExpressions:
        - {key: env, operator: In, values: [staging]}
      - matchExpressions:
        - {key: env, operator: In, values: [prod]}
        maxUpdate: 10%
  preservedFields:
    annotations: [notified]
status:
  conditions:
  - type: ResourcesUpToDate
    status: "True"
    reason: ApplicationSetUpToDate
    message: All applications have been generated successfully
    lastTransitionTime: "2024-05-01T10:00:00Z"
  resources:
  - name: prod-eu-metrics
    kind: Application
    group: argoproj.io
    version: v1alpha1
    namespace: argocd
    status: Synced
"#;

fn appset(edit: impl FnOnce(&mut Value)) -> Result<ApplicationSet> {
    let mut value: Value = serde_yaml_ng::from_str(MATRIX)?;
    edit(&mut value);
    Ok(serde_json::from_value(value)?)
}

#[test]
fn nested_generators_round_trip_and_validate() -> Result<()> {
    let input: Value = serde_yaml_ng::from_str(MATRIX)?;
    let set: ApplicationSet = serde_yaml_ng::from_str(MATRIX)?;
    assert_eq!(serde_json::to_value(&set)?, input);
    set.validate()?;
    let generators = set.spec.generators.clone().unwrap_or_default();
    assert_eq!(generators[0].kinds(), ["matrix"]);
    let matrix = generators[0].matrix.clone().unwrap_or_default();
    let git = matrix.generators[0].git.clone().unwrap_or_default();
    assert_eq!(git.files.unwrap_or_default()[1].exclude, Some(true));
    assert_eq!(git.requeue_after_seconds, Some(300));
    assert_eq!(generators[2].kinds(), ["pullRequest"]);
    let template = set.spec.template.clone().unwrap_or_default();
    assert_eq!(
        template.spec.destination.server.as_deref(),
        Some("{{.server}}")
    );
    assert!(set.spec.extra.contains_key("preservedFields"));
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
            Box::new(|v| v["spec"]["generators"] = json!([])),
            E::NoGenerators,
        ),
        (
            Box::new(|v| v["spec"]["generators"][2]["list"] = json!({"elements": []})),
            E::GeneratorKinds {
                field: "spec.generators[2]".into(),
                found: vec!["list", "pullRequest"],
            },
        ),
        (
            Box::new(|v| v["spec"]["generators"][0]["matrix"]["generators"][1] = json!({})),
            E::GeneratorKinds {
                field: "spec.generators[0].matrix.generators[1]".into(),
                found: vec![],
            },
        ),
        (
            Box::new(|v| {
                let g = v["spec"]["generators"][0]["matrix"]["generators"][0].clone();
                v["spec"]["generators"][0]["matrix"]["generators"] = json!([g]);
            }),
            E::MatrixChildren {
                field: "spec.generators[0]".into(),
                count: 1,
            },
        ),
        (
            Box::new(|v| v["spec"]["generators"][1]["merge"]["mergeKeys"] = json!([])),
            E::MergeShape {
                field: "spec.generators[1]".into(),
            },
        ),
        (
            Box::new(|v| {
                v["spec"].as_object_mut().map(|s| s.remove("template"));
            }),
            E::MissingTemplate,
        ),
    ];
    for (edit, expected) in cases {
        assert_eq!(appset(edit)?.validate(), Err(expected));
    }
    Ok(())
}

#[test]
fn matrix_nesting_is_limited() -> Result<()> {
    let leaf = json!({"list": {"elements": [{}]}});
    let inner = json!({"matrix": {"generators": [leaf.clone(), leaf.clone()]}});
    let middle = json!({"matrix": {"generators": [inner.clone(), leaf.clone()]}});
    let ok = appset(|v| v["spec"]["generators"] = json!([middle.clone()]))?;
    assert_eq!(ok.validate(), Ok(()));
    let deep = json!({"matrix": {"generators": [middle, leaf]}});
    let too_deep = appset(|v| v["spec"]["generators"] = json!([deep]))?;
    assert!(matches!(too_deep.validate(), Err(E::NestingDepth { .. })));
    Ok(())
}
