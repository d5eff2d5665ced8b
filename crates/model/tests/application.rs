//! Application parsing, round-trip and validation with realistic manifests, including a
//! multi-source app carrying a top-level operation and a full controller-written status.

use anyhow::Result;
use keelson_model::application::{ApplicationValidationError as E, sync_option};
use keelson_model::operation::{ResultCode, SyncPhase};
use keelson_model::{
    Application, HealthStatusCode, HookType, OperationPhase, ResourceKey, SyncStatusCode,
};
use serde_json::Value;

/// An edit applied to a valid manifest to make it invalid.
type Edit = Box<dyn FnOnce(&mut Value)>;

const MULTI_SOURCE: &str = r#"
apiVersion: argoproj.io/v1alpha1
kind: Application
metadata:
  name: guestbook
  namespace: argocd
  annotations:
    argocd.argoproj.io/refresh: hard
  finalizers:
  - resources-finalizer.argocd.argoproj.io/background
spec:
  project: team-a
  sources:
  - repoURL: https://prometheus-community.github.io/helm-charts
    chart: prometheus
    targetRevision: 15.7.1
    helm:
      releaseName: prom
      valueFiles:
      - $values/charts/prometheus/values.yaml
      valuesObject:
        server:
          replicaCount: 2
      fileParameters:
      - name: config
        path: files/config.json
      parameters:
      - name: server.image.tag
        value: ""
        forceString: true
      skipCrds: true
      passCredentials: false
      ignoreMissingValueFiles: true
      version: v3
      namespace: monitoring
      kubeVersion: "1.29"
  - repoURL: https://github.com/example/values.git
    targetRevision: main
    ref: values
  - repoURL: https://github.com/example/jsonnet.git
    path: jsonnet
    directory:
      recurse: true
      exclude: '{vendor/*,test/*}'
      jsonnet:
        tlas:
        - name: env
          value: prod
        extVars:
        - name: replicas
          value: "3"
          code: true
        libs:
        - vendor
  - repoURL: https://github.com/example/cmp.git
    path: app
    plugin:
      name: envsubst-v1.0
      env:
      - name: FOO
        value: bar
      parameters:
      - name: images
        array: [a, b]
      - name: labels
        map: {team: a}
  destination:
    name: prod-eu
    namespace: monitoring
  syncPolicy:
    automated:
      prune: true
      selfHeal: true
      allowEmpty: false
    syncOptions:
    - CreateNamespace=true
    - PrunePropagationPolicy=background
    retry:
      limit: -1
      backoff:
        duration: 5s
        factor: 2
        maxDuration: 3m
    managedNamespaceMetadata:
      labels:
        team: a
  ignoreDifferences:
  - group: admissionregistration.k8s.io
    kind: MutatingWebhookConfiguration
    name: hooks
    jqPathExpressions:
    - .webhooks[]?.clientConfig.caBundle
    managedFieldsManagers:
    - kube-controller-manager
  revisionHistoryLimit: 3
  info:
  - name: owner
    value: team-a
operation:
  initiatedBy:
    username: alice
  info:
  - name: reason
    value: release
  retry:
    limit: 2
  sync:
    revisions: [15.7.1, abc123, def456, 0123abc]
    prune: true
    dryRun: false
    syncStrategy:
      hook:
        force: false
    syncOptions:
    - ServerSideApply=true
    resources:
    - group: apps
      kind: Deployment
      name: prom-server
      namespace: monitoring
status:
  sync:
    status: OutOfSync
    comparedTo:
      destination:
        name: prod-eu
        namespace: monitoring
      sources:
      - repoURL: https://github.com/example/values.git
        targetRevision: main
        ref: values
    revisions: [15.7.1, abc123, def456, 0123abc]
  health:
    status: Progressing
    message: waiting for rollout
    lastTransitionTime: "2024-05-01T10:00:00Z"
  resources:
  - group: apps
    version: v1
    kind: Deployment
    namespace: monitoring
    name: prom-server
    status: OutOfSync
    health:
      status: Progressing
    syncWave: -1
    requiresPruning: false
  - version: v1
    kind: Namespace
    name: monitoring
    status: Synced
  - group: batch
    version: v1
    kind: Job
    namespace: monitoring
    name: migrate
    hook: true
    status: Synced
  conditions:
  - type: SharedResourceWarning
    message: Namespace/monitoring is part of applications guestbook and other
    lastTransitionTime: "2024-05-01T09:00:00Z"
  summary:
    externalURLs: [https://prom.example.com]
    images: [quay.io/prometheus/prometheus:v2.45.0]
  reconciledAt: "2024-05-01T10:00:05Z"
  observedAt: "2024-05-01T10:00:05Z"
  sourceTypes: [Helm, Directory, Directory, Plugin]
  controllerNamespace: argocd
  resourceHealthSource: appTree
  operationState:
    operation:
      initiatedBy:
        username: alice
      sync:
        revisions: [15.7.1, abc123, def456, 0123abc]
    phase: Running
    message: waiting for completion of hook batch/Job/migrate
    startedAt: "2024-05-01T10:00:00Z"
    retryCount: 1
    keelsonHolder: keelson-controller-1
    syncResult:
      revisions: [15.7.1, abc123, def456, 0123abc]
      sources:
      - repoURL: https://github.com/example/values.git
        ref: values
      resources:
      - group: batch
        version: v1
        kind: Job
        namespace: monitoring
        name: migrate
        status: Synced
        message: job.batch/migrate created
        hookType: PreSync
        hookPhase: Running
        syncPhase: PreSync
      - group: ""
        version: v1
        kind: ConfigMap
        namespace: monitoring
        name: old
        status: Pruned
        message: pruned
        syncPhase: Sync
  history:
  - id: 0
    revisions: [15.7.0, abc000, def000, 0123abc]
    deployedAt: "2024-04-01T10:00:00Z"
    deployStartedAt: "2024-04-01T09:59:00Z"
    sources:
    - repoURL: https://github.com/example/values.git
      ref: values
    initiatedBy:
      automated: true
"#;

fn parse(yaml: &str) -> Result<(Application, Value)> {
    let input: Value = serde_yaml_ng::from_str(yaml)?;
    let app: Application = serde_yaml_ng::from_str(yaml)?;
    Ok((app, input))
}

#[test]
fn multi_source_app_with_operation_and_status_round_trips() -> Result<()> {
    let (app, input) = parse(MULTI_SOURCE)?;
    assert_eq!(serde_json::to_value(&app)?, input);
    app.validate()?;

    let spec = &app.spec;
    assert!(spec.has_multiple_sources());
    assert_eq!(spec.effective_sources().len(), 4);
    let helm = spec.effective_sources()[0].helm.clone().unwrap_or_default();
    assert_eq!(
        helm.parameters.unwrap_or_default()[0].value.as_deref(),
        Some("")
    );
    assert_eq!(helm.extra["kubeVersion"], "1.29");
    assert!(spec.effective_sources()[1].is_ref_only());
    assert_eq!(spec.destination.name(), Some("prod-eu"));
    let policy = spec.sync_policy.clone().unwrap_or_default();
    assert!(policy.is_automated());
    assert_eq!(
        policy.sync_option("PrunePropagationPolicy"),
        Some("background")
    );
    assert_eq!(policy.retry.and_then(|r| r.limit), Some(-1));

    let op = app.operation.clone().unwrap_or_default();
    assert_eq!(
        op.sync
            .unwrap_or_default()
            .revisions
            .unwrap_or_default()
            .len(),
        4
    );

    let status = app.status.clone().unwrap_or_default();
    let sync = status.sync.unwrap_or_default();
    assert_eq!(sync.status, Some(SyncStatusCode::OutOfSync));
    assert_eq!(
        status.health.unwrap_or_default().status,
        Some(HealthStatusCode::Progressing)
    );
    let resources = status.resources.unwrap_or_default();
    assert_eq!(
        resources[1].key(),
        "/Namespace//monitoring".parse::<ResourceKey>()?
    );
    assert_eq!(resources[0].sync_wave, Some(-1));
    let state = status.operation_state.unwrap_or_default();
    assert_eq!(state.phase, Some(OperationPhase::Running));
    assert_eq!(
        state.keelson_holder.as_deref(),
        Some("keelson-controller-1")
    );
    let results = state
        .sync_result
        .unwrap_or_default()
        .resources
        .unwrap_or_default();
    assert_eq!(results[0].hook_type, Some(HookType::PreSync));
    assert_eq!(results[0].sync_phase, Some(SyncPhase::PreSync));
    assert_eq!(results[1].status, Some(ResultCode::Pruned));
    assert_eq!(status.history.unwrap_or_default()[0].id, 0);
    Ok(())
}

#[test]
fn unknown_status_values_are_rejected_with_a_clear_message() {
    let yaml = MULTI_SOURCE.replace(
        "status: OutOfSync\n    comparedTo",
        "status: Outofsync\n    comparedTo",
    );
    let err = match serde_yaml_ng::from_str::<Application>(&yaml) {
        Ok(_) => panic!("parsed an unknown sync status"),
        Err(e) => e.to_string(),
    };
    assert!(err.contains("unknown sync status \"Outofsync\""), "{err}");
}

const SIMPLE: &str = r#"
apiVersion: argoproj.io/v1alpha1
kind: Application
metadata: {name: web, namespace: argocd}
spec:
  project: default
  source:
    repoURL: https://github.com/example/web.git
    path: deploy
  destination:
    server: https://kubernetes.default.svc
    namespace: web
"#;

fn edited(edit: impl FnOnce(&mut Value)) -> Result<Application> {
    let mut value: Value = serde_yaml_ng::from_str(SIMPLE)?;
    edit(&mut value);
    Ok(serde_json::from_value(value)?)
}

#[test]
fn validation_reports_each_mistake() -> Result<()> {
    assert_eq!(edited(|_| {})?.validate(), Ok(()));
    let cases: Vec<(Edit, E)> = vec![
        (
            Box::new(|v| v["metadata"]["name"] = "".into()),
            E::MissingName,
        ),
        (
            Box::new(|v| {
                v["spec"].as_object_mut().map(|s| s.remove("source"));
            }),
            E::MissingSource,
        ),
        (
            Box::new(|v| v["spec"]["sources"] = serde_json::json!([{"repoURL": "https://x"}])),
            E::SourceAndSources,
        ),
        (
            Box::new(|v| v["spec"]["source"]["repoURL"] = "".into()),
            E::EmptyRepoUrl {
                field: "spec.source".into(),
            },
        ),
        (
            Box::new(|v| {
                v["spec"]["source"]["helm"] = serde_json::json!({});
                v["spec"]["source"]["kustomize"] = serde_json::json!({});
            }),
            E::MultipleSourceTypes {
                field: "spec.source".into(),
            },
        ),
        (
            Box::new(|v| v["spec"]["destination"]["name"] = "in-cluster".into()),
            E::DestinationServerAndName,
        ),
        (
            Box::new(|v| v["spec"]["destination"] = serde_json::json!({"namespace": "web"})),
            E::MissingDestination,
        ),
        (
            Box::new(|v| v["spec"]["ignoreDifferences"] = serde_json::json!([{"group": "apps"}])),
            E::IgnoreDifferencesKind { index: 0 },
        ),
        (
            Box::new(|v| {
                v["spec"].as_object_mut().map(|s| s.remove("source"));
                v["spec"]["sources"] = serde_json::json!([
                    {"repoURL": "https://a", "ref": "values"},
                    {"repoURL": "https://b", "ref": "values"}
                ]);
            }),
            E::DuplicateSourceRef {
                field: "spec.sources[1]".into(),
                name: "values".into(),
            },
        ),
    ];
    for (edit, expected) in cases {
        assert_eq!(edited(edit)?.validate(), Err(expected));
    }
    Ok(())
}

#[test]
fn source_hydrator_apps_need_no_source() -> Result<()> {
    let app = edited(|v| {
        v["spec"].as_object_mut().map(|s| s.remove("source"));
        v["spec"]["sourceHydrator"] = serde_json::json!({"drySource": {"repoURL": "https://x"}});
    })?;
    assert_eq!(app.validate(), Ok(()));
    Ok(())
}

#[test]
fn new_application_serializes_minimally() -> Result<()> {
    let app = Application::new("web", "argocd", Default::default());
    let value = serde_json::to_value(&app)?;
    assert_eq!(
        value,
        serde_json::json!({
            "apiVersion": "argoproj.io/v1alpha1", "kind": "Application",
            "metadata": {"name": "web", "namespace": "argocd"}, "spec": {}
        })
    );
    Ok(())
}

#[test]
fn sync_options_last_occurrence_wins() {
    let options = vec![
        "Prune=false".to_owned(),
        "Validate=false".into(),
        "Prune=true".into(),
    ];
    assert_eq!(sync_option(&options, "Prune"), Some("true"));
    assert_eq!(sync_option(&options, "Replace"), None);
}
