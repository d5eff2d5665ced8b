//! Built-in checks beyond the shared conformance cases: messages and kinds the shared
//! data does not cover.

use keelson_health::{HealthAssessment, HealthAssessor, HealthConfig, builtin_health};
use keelson_model::HealthStatusCode::{self, Degraded, Healthy, Progressing, Suspended, Unknown};
use serde_json::{Value, json};

fn health(obj: &Value) -> Option<(HealthStatusCode, String)> {
    builtin_health(obj).map(|HealthAssessment { status, message }| (status, message))
}

fn expect(obj: Value, status: HealthStatusCode, message: &str) {
    assert_eq!(health(&obj), Some((status, message.to_owned())), "{obj}");
}

#[test]
fn deployment_messages() {
    let base = |spec: Value, status: Value| json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "generation": 2}, "spec": spec, "status": status});
    expect(
        base(json!({"paused": true}), json!({})),
        Suspended,
        "Deployment is paused",
    );
    expect(
        base(json!({"replicas": 1}), json!({"observedGeneration": 1})),
        Progressing,
        "Waiting for rollout to finish: observed deployment generation less then desired generation",
    );
    expect(
        base(
            json!({"replicas": 1}),
            json!({"observedGeneration": 2, "replicas": 1, "updatedReplicas": 1, "availableReplicas": 0}),
        ),
        Progressing,
        "Waiting for rollout to finish: 0 of 1 updated replicas are available...",
    );
    expect(
        base(
            json!({"replicas": 2}),
            json!({"observedGeneration": 2, "updatedReplicas": 1}),
        ),
        Progressing,
        "Waiting for rollout to finish: 1 out of 2 new replicas have been updated...",
    );
    expect(
        base(
            json!({"replicas": 1}),
            json!({"observedGeneration": 2, "replicas": 3, "updatedReplicas": 1, "availableReplicas": 1}),
        ),
        Progressing,
        "Waiting for rollout to finish: 2 old replicas are pending termination...",
    );
    expect(
        base(
            json!({}),
            json!({"observedGeneration": 2, "conditions": [{"type": "Progressing", "reason": "ProgressDeadlineExceeded"}]}),
        ),
        Degraded,
        "Deployment \"web\" exceeded its progress deadline",
    );
}

#[test]
fn replica_set_daemon_set_and_stateful_set_messages() {
    let rs = json!({"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"generation": 1},
        "spec": {"replicas": 3}, "status": {"observedGeneration": 1, "availableReplicas": 1}});
    expect(
        rs,
        Progressing,
        "Waiting for rollout to finish: 1 out of 3 new replicas are available...",
    );
    let rs_failed = json!({"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {},
        "status": {"conditions": [{"type": "ReplicaFailure", "status": "True", "message": "quota"}]}});
    expect(rs_failed, Degraded, "quota");
    let ds = json!({"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": "agent"},
        "status": {"desiredNumberScheduled": 3, "updatedNumberScheduled": 3, "numberAvailable": 2}});
    expect(
        ds,
        Progressing,
        "Waiting for daemon set \"agent\" rollout to finish: 2 of 3 updated pods are available...",
    );
    let sts = json!({"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"generation": 1},
        "spec": {"replicas": 3}, "status": {"observedGeneration": 1, "readyReplicas": 1}});
    expect(sts, Progressing, "Waiting for 2 pods to be ready...");
    let sts_partition = json!({"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"generation": 1},
        "spec": {"replicas": 3, "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 1}}},
        "status": {"observedGeneration": 1, "readyReplicas": 3, "updatedReplicas": 1}});
    expect(
        sts_partition,
        Progressing,
        "Waiting for partitioned roll out to finish: 1 out of 2 new pods have been updated...",
    );
}

#[test]
fn workflow_phases() {
    let wf = |status: Value| json!({"apiVersion": "argoproj.io/v1alpha1", "kind": "Workflow", "status": status});
    expect(
        wf(json!({"phase": "Running", "message": "This node is running"})),
        Progressing,
        "This node is running",
    );
    expect(wf(json!({"phase": "Succeeded"})), Healthy, "");
    expect(
        wf(json!({"phase": "Error", "message": "boom"})),
        Degraded,
        "boom",
    );
    expect(wf(json!({"phase": "Weird"})), Unknown, "");
    expect(
        json!({"apiVersion": "argoproj.io/v1alpha1", "kind": "Workflow"}),
        Progressing,
        "",
    );
}

#[test]
fn pod_failure_messages_and_unknown_kinds() {
    let pod = json!({"apiVersion": "v1", "kind": "Pod", "spec": {"restartPolicy": "Never"},
        "status": {"phase": "Failed", "containerStatuses": [{"name": "main", "state": {"terminated": {"exitCode": 2}}}]}});
    expect(pod, Degraded, "container \"main\" failed with exit code 2");
    let job = json!({"apiVersion": "batch/v1", "kind": "Job", "status": {"conditions": [{"type": "Failed", "message": "BackoffLimitExceeded"}]}});
    expect(job, Degraded, "BackoffLimitExceeded");
    let old_ext = json!({"apiVersion": "extensions/v1beta1", "kind": "Ingress", "status": {"loadBalancer": {"ingress": [{"ip": "1.2.3.4"}]}}});
    expect(old_ext, Healthy, "");
    for kind in [
        json!({"apiVersion": "v1", "kind": "ConfigMap"}),
        json!({"apiVersion": "example.com/v1", "kind": "Deployment"}),
        json!({}),
    ] {
        assert_eq!(builtin_health(&kind), None);
    }
}

#[test]
fn assessor_falls_back_to_builtin_and_serializes_like_argo() -> anyhow::Result<()> {
    let assessor = HealthAssessor::new(HealthConfig::default());
    let job = json!({"apiVersion": "batch/v1", "kind": "Job", "status": {}});
    let got = assessor
        .assess(&job)
        .ok_or_else(|| anyhow::anyhow!("no health"))?;
    assert_eq!(
        serde_json::to_value(&got)?,
        json!({"status": "Progressing"})
    );
    let with_message = HealthAssessment::new(Degraded, "x");
    assert_eq!(
        serde_json::to_value(&with_message)?,
        json!({"status": "Degraded", "message": "x"})
    );
    Ok(())
}
