//! Pure planning of the simulator's workload mode for Jobs, Pods, PersistentVolumeClaims,
//! LoadBalancer Services and Ingresses: the statuses the job controller, the kubelet of
//! the one simulated node, the volume binder and the load-balancer controller write, and
//! the Pods the job controller creates. No I/O here.

use super::status::{
    ANN_FAIL, Stamp, annotation, condition, find_condition, fnv32a, name, owner_ref,
    sim_annotations, suspended,
};
use serde_json::{Map, Value, json};

/// Node-side address of the one simulated node (documentation only, never contacted).
const HOST_IP: &str = "10.244.0.1";

/// 64-bit FNV-1a.
fn fnv64a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// 64 hex digits derived from `seed` (container and image ids).
fn hex64(seed: &str) -> String {
    (0u8..4)
        .map(|i| format!("{:016x}", fnv64a(format!("{i}:{seed}").as_bytes())))
        .collect()
}

/// The pod IP the simulated node gives a pod (in 10.244.0.0/16, documentation only).
pub(crate) fn pod_ip(uid: &str) -> String {
    let h = fnv32a(uid.as_bytes());
    format!("10.244.{}.{}", 1 + (h >> 8) % 255, 2 + h % 252)
}

// ---------------------------------------------------------------------------------
// Jobs.

/// Whether a Job has finished (Complete or Failed).
pub(super) fn job_finished(status: &Value) -> bool {
    ["Complete", "Failed"]
        .iter()
        .any(|t| find_condition(status, t).is_some_and(|c| c["status"].as_str() == Some("True")))
}

/// Whether a Job (or its pod template) is annotated to fail.
pub(crate) fn job_fails(job: &Value) -> bool {
    annotation(job, ANN_FAIL) == Some("true")
        || job["spec"]["template"]["metadata"]["annotations"][ANN_FAIL].as_str() == Some("true")
}

/// The job controller's status: running (one active pod) until `ready`, then Complete
/// (with SuccessCriteriaMet) or — when annotated `sim.keelson.io/fail` — Failed (with
/// FailureTarget, reason BackoffLimitExceeded). Suspended Jobs are left alone (`None`);
/// finished Jobs keep their status.
pub fn job_status(obj: &Value, now: &str, ready: bool) -> Option<Value> {
    let old = &obj["status"];
    if job_finished(old) {
        return Some(old.clone());
    }
    if suspended(obj) {
        return None;
    }
    let start = old["startTime"].as_str().unwrap_or(now);
    let mut s = Map::new();
    if ready {
        let (conditions, counter, n) = if job_fails(obj) {
            let msg = Some("Job has reached the specified backoff limit");
            let reason = Some("BackoffLimitExceeded");
            let target = condition(old, "FailureTarget", "True", reason, msg, now, Stamp::Probe);
            (
                json!([
                    target,
                    condition(old, "Failed", "True", reason, msg, now, Stamp::Probe)
                ]),
                "failed",
                1,
            )
        } else {
            let msg = Some("Reached expected number of succeeded pods");
            let reason = Some("CompletionsReached");
            let met = condition(
                old,
                "SuccessCriteriaMet",
                "True",
                reason,
                msg,
                now,
                Stamp::Probe,
            );
            let completions = obj["spec"]["completions"].as_i64().unwrap_or(1).max(1);
            (
                json!([
                    met,
                    condition(old, "Complete", "True", reason, msg, now, Stamp::Probe)
                ]),
                "succeeded",
                completions,
            )
        };
        s.insert("conditions".into(), conditions);
        s.insert("startTime".into(), start.into());
        if counter == "succeeded" {
            s.insert("completionTime".into(), now.into());
        }
        s.insert(counter.into(), n.into());
    } else {
        s.insert("startTime".into(), start.into());
        s.insert("active".into(), 1.into());
    }
    s.insert("terminating".into(), 0.into());
    s.insert("uncountedTerminatedPods".into(), json!({}));
    s.insert("ready".into(), 0.into());
    Some(Value::Object(s))
}

/// The Pod the job controller creates for a Job.
pub(crate) fn job_pod(job: &Value) -> Value {
    let template = &job["spec"]["template"];
    let uid = job["metadata"]["uid"].clone();
    let job_name = job["metadata"]["name"].clone();
    let mut labels = template["metadata"]["labels"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    for (k, v) in [
        ("batch.kubernetes.io/controller-uid", &uid),
        ("batch.kubernetes.io/job-name", &job_name),
        ("controller-uid", &uid),
        ("job-name", &job_name),
    ] {
        labels.insert(k.into(), v.clone());
    }
    let mut annotations = template["metadata"]["annotations"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    annotations.extend(sim_annotations(job));
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "generateName": format!("{}-", name(job)),
            "namespace": job["metadata"]["namespace"],
            "labels": labels,
            "annotations": annotations,
            "ownerReferences": [owner_ref("batch/v1", "Job", job)],
        },
        "spec": template["spec"],
    })
}

// ---------------------------------------------------------------------------------
// Pods.

/// How a pod's containers end up.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Running,
    Succeeded,
    Failed,
    CrashLoop,
}

fn pod_outcome(pod: &Value) -> Outcome {
    let fails = annotation(pod, ANN_FAIL) == Some("true");
    let by_job = pod["metadata"]["ownerReferences"]
        .as_array()
        .is_some_and(|refs| refs.iter().any(|r| r["kind"].as_str() == Some("Job")));
    let never = pod["spec"]["restartPolicy"].as_str() == Some("Never");
    match (fails, by_job || never) {
        (false, true) if by_job => Outcome::Succeeded,
        (false, _) => Outcome::Running,
        (true, true) => Outcome::Failed,
        (true, false) => Outcome::CrashLoop,
    }
}

/// The kubelet's status of a pod: Pending and scheduled until `ready`; then Running and
/// Ready, Succeeded (pods of Jobs), Failed (annotated `sim.keelson.io/fail` with
/// restartPolicy Never, or of a Job) or crash-looping (annotated, restarting).
/// Terminal pods keep their status.
pub fn pod_status(obj: &Value, now: &str, ready: bool) -> Value {
    let old = &obj["status"];
    if matches!(old["phase"].as_str(), Some("Succeeded" | "Failed")) {
        return old.clone();
    }
    let mut s = old.as_object().cloned().unwrap_or_default();
    if !ready {
        let scheduled = condition(old, "PodScheduled", "True", None, None, now, Stamp::Pod);
        s.insert("phase".into(), "Pending".into());
        s.insert("conditions".into(), json!([scheduled]));
        return Value::Object(s);
    }
    let outcome = pod_outcome(obj);
    let phase = match outcome {
        Outcome::Running | Outcome::CrashLoop => "Running",
        Outcome::Succeeded => "Succeeded",
        Outcome::Failed => "Failed",
    };
    let ip = pod_ip(obj["metadata"]["uid"].as_str().unwrap_or_default());
    s.insert("phase".into(), phase.into());
    s.insert(
        "conditions".into(),
        Value::Array(pod_conditions(obj, outcome, now)),
    );
    s.insert("hostIP".into(), HOST_IP.into());
    s.insert("hostIPs".into(), json!([{"ip": HOST_IP}]));
    s.insert("podIP".into(), ip.clone().into());
    s.insert("podIPs".into(), json!([{"ip": ip}]));
    s.insert(
        "startTime".into(),
        old["startTime"].as_str().unwrap_or(now).into(),
    );
    let ctx = ContainerCtx { pod: obj, now };
    if obj["spec"]["initContainers"]
        .as_array()
        .is_some_and(|a| !a.is_empty())
    {
        let init = ctx.statuses(
            "initContainers",
            "initContainerStatuses",
            Outcome::Succeeded,
        );
        s.insert("initContainerStatuses".into(), init);
    }
    let containers = ctx.statuses("containers", "containerStatuses", outcome);
    s.insert("containerStatuses".into(), containers);
    Value::Object(s)
}

/// The kubelet's pod conditions, in its order.
fn pod_conditions(obj: &Value, outcome: Outcome, now: &str) -> Vec<Value> {
    let old = &obj["status"];
    let cond = |ty: &str, status: &str, reason: Option<&str>, message: Option<&str>| {
        condition(old, ty, status, reason, message, now, Stamp::Pod)
    };
    let done_reason = match outcome {
        Outcome::Running | Outcome::CrashLoop => None,
        Outcome::Succeeded => Some("PodCompleted"),
        Outcome::Failed => Some("PodFailed"),
    };
    let to_start = if done_reason.is_some() {
        "False"
    } else {
        "True"
    };
    let init_reason = done_reason.filter(|_| outcome == Outcome::Succeeded);
    let mut all = vec![
        cond("PodReadyToStartContainers", to_start, None, None),
        cond("Initialized", "True", init_reason, None),
    ];
    match outcome {
        Outcome::Running => {
            all.push(cond("Ready", "True", None, None));
            all.push(cond("ContainersReady", "True", None, None));
        }
        Outcome::CrashLoop => {
            let names: Vec<&str> = obj["spec"]["containers"]
                .as_array()
                .map(|cs| cs.iter().filter_map(|c| c["name"].as_str()).collect())
                .unwrap_or_default();
            let unready = format!("containers with unready status: [{}]", names.join(" "));
            let reason = Some("ContainersNotReady");
            all.push(cond("Ready", "False", reason, Some(&unready)));
            all.push(cond("ContainersReady", "False", reason, Some(&unready)));
        }
        Outcome::Succeeded | Outcome::Failed => {
            all.push(cond("Ready", "False", done_reason, None));
            all.push(cond("ContainersReady", "False", done_reason, None));
        }
    }
    all.push(cond("PodScheduled", "True", None, None));
    all
}

/// What container statuses are built from.
struct ContainerCtx<'a> {
    pod: &'a Value,
    now: &'a str,
}

impl ContainerCtx<'_> {
    fn statuses(&self, spec_key: &str, status_key: &str, outcome: Outcome) -> Value {
        let old = self.pod["status"][status_key].as_array();
        let containers = self.pod["spec"][spec_key]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default();
        let items = containers
            .iter()
            .map(|c| {
                let name = c["name"].as_str().unwrap_or_default();
                let prev = old.and_then(|o| o.iter().find(|p| p["name"].as_str() == Some(name)));
                self.status(c, prev.unwrap_or(&Value::Null), outcome)
            })
            .collect();
        Value::Array(items)
    }

    fn status(&self, container: &Value, prev: &Value, outcome: Outcome) -> Value {
        let name = container["name"].as_str().unwrap_or_default();
        let image = container["image"].as_str().unwrap_or_default();
        let uid = self.pod["metadata"]["uid"].as_str().unwrap_or_default();
        let id = format!("containerd://{}", hex64(&format!("{uid}/{name}")));
        let repo = match image.rsplit_once(':') {
            Some((repo, tag)) if !tag.contains('/') => repo,
            _ => image,
        };
        let image_id = format!("{repo}@sha256:{}", hex64(repo));
        let started = [
            &prev["state"]["running"],
            &prev["state"]["terminated"],
            &prev["lastState"]["terminated"],
        ]
        .iter()
        .find_map(|s| s["startedAt"].as_str())
        .unwrap_or(self.now);
        let finished = prev["state"]["terminated"]["finishedAt"]
            .as_str()
            .or(prev["lastState"]["terminated"]["finishedAt"].as_str())
            .unwrap_or(self.now);
        let terminated = |code: i64, reason: &str| json!({"terminated": {"exitCode": code, "reason": reason, "startedAt": started, "finishedAt": finished, "containerID": id}});
        let (state, last, is_ready, restarts) = match outcome {
            Outcome::Running => (
                json!({"running": {"startedAt": started}}),
                json!({}),
                true,
                0,
            ),
            Outcome::Succeeded => (terminated(0, "Completed"), json!({}), false, 0),
            Outcome::Failed => (terminated(1, "Error"), json!({}), false, 0),
            Outcome::CrashLoop => {
                let pod_ref = format!(
                    "{}_{}({uid})",
                    self.pod["metadata"]["name"].as_str().unwrap_or_default(),
                    self.pod["metadata"]["namespace"]
                        .as_str()
                        .unwrap_or_default()
                );
                let message =
                    format!("back-off 10s restarting failed container={name} pod={pod_ref}");
                (
                    json!({"waiting": {"reason": "CrashLoopBackOff", "message": message}}),
                    terminated(1, "Error"),
                    false,
                    1,
                )
            }
        };
        json!({"name": name, "state": state, "lastState": last, "ready": is_ready, "restartCount": restarts,
            "image": image, "imageID": image_id, "containerID": id, "started": outcome == Outcome::Running})
    }
}

// ---------------------------------------------------------------------------------
// Volumes and load balancers.

/// The volume a PVC binds to.
pub(crate) fn pvc_volume_name(pvc: &Value) -> String {
    format!(
        "pvc-{}",
        pvc["metadata"]["uid"].as_str().unwrap_or_default()
    )
}

/// The PVC after the volume controller bound it (spec.volumeName and bind annotations);
/// `None` when already bound.
pub(crate) fn pvc_bound(pvc: &Value) -> Option<Value> {
    if pvc["spec"]["volumeName"]
        .as_str()
        .is_some_and(|v| !v.is_empty())
    {
        return None;
    }
    let mut next = pvc.clone();
    next["spec"]["volumeName"] = pvc_volume_name(pvc).into();
    next["metadata"]["annotations"]["pv.kubernetes.io/bind-completed"] = "yes".into();
    next["metadata"]["annotations"]["pv.kubernetes.io/bound-by-controller"] = "yes".into();
    Some(next)
}

/// The volume controller's PVC status: Pending, then Bound with the requested capacity.
pub(crate) fn pvc_status(obj: &Value, ready: bool) -> Value {
    if !ready {
        let mut s = obj["status"].as_object().cloned().unwrap_or_default();
        s.entry("phase").or_insert_with(|| "Pending".into());
        return Value::Object(s);
    }
    let spec = &obj["spec"];
    let mut capacity = Map::new();
    if let Some(storage) = spec["resources"]["requests"]["storage"].as_str() {
        capacity.insert("storage".into(), storage.into());
    }
    json!({"phase": "Bound", "accessModes": spec["accessModes"].as_array().cloned().unwrap_or_default(), "capacity": capacity})
}

/// A LoadBalancer Service's status: an ingress IP once `ready`. Services of other types
/// are left alone (`None`), except that one which stopped being a load balancer loses
/// its ingress.
pub(crate) fn service_status(obj: &Value, ready: bool, ip: &str) -> Option<Value> {
    if obj["spec"]["type"].as_str() != Some("LoadBalancer") {
        let had_ingress = obj["status"]["loadBalancer"]["ingress"]
            .as_array()
            .is_some_and(|a| !a.is_empty());
        return had_ingress.then(|| json!({"loadBalancer": {}}));
    }
    Some(if ready {
        json!({"loadBalancer": {"ingress": [{"ip": ip, "ipMode": "VIP"}]}})
    } else {
        json!({"loadBalancer": {}})
    })
}

/// An Ingress's status: the load balancer's IP once `ready`.
pub(crate) fn ingress_status(_obj: &Value, ready: bool, ip: &str) -> Value {
    if ready {
        json!({"loadBalancer": {"ingress": [{"ip": ip}]}})
    } else {
        json!({"loadBalancer": {}})
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::workload::status::{ANN_FAIL, Kind, needs_progress};

    const T0: &str = "2024-01-01T00:00:00Z";
    const T1: &str = "2024-01-01T00:00:05Z";

    fn with_status(mut obj: Value, status: Value) -> Value {
        obj["status"] = status;
        obj
    }

    fn job(annotations: Value) -> Value {
        json!({"apiVersion": "batch/v1", "kind": "Job",
            "metadata": {"name": "migrate", "namespace": "default", "uid": "u-job", "generation": 1, "annotations": annotations},
            "spec": {"template": {"metadata": {}, "spec": {"restartPolicy": "Never", "containers": [{"name": "m", "image": "m:1"}]}}}})
    }

    #[test]
    fn job_runs_then_completes() {
        let j = job(json!({}));
        assert!(needs_progress(Kind::Job, &j));
        let running = job_status(&j, T0, false).unwrap();
        assert_eq!(
            (running["active"].as_i64(), running["startTime"].as_str()),
            (Some(1), Some(T0))
        );
        let j = with_status(j, running);
        assert!(!needs_progress(Kind::Job, &j));
        let done = job_status(&j, T1, true).unwrap();
        assert_eq!(done["succeeded"], 1);
        assert_eq!(done["startTime"], T0);
        assert_eq!(done["completionTime"], T1);
        let types: Vec<&str> = done["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["type"].as_str().unwrap())
            .collect();
        assert_eq!(types, ["SuccessCriteriaMet", "Complete"]);
        assert_eq!(done["conditions"][1]["status"], "True");
        assert_eq!(done["conditions"][1]["reason"], "CompletionsReached");
        assert!(done.get("active").is_none());
        assert_eq!(
            job_status(&with_status(j, done.clone()), "2030-01-01T00:00:00Z", true).unwrap(),
            done
        );
    }

    #[test]
    fn annotated_job_fails_and_suspended_job_is_left_alone() {
        let j = job(json!({ANN_FAIL: "true"}));
        let failed = job_status(&j, T0, true).unwrap();
        assert_eq!(failed["failed"], 1);
        assert!(failed.get("completionTime").is_none());
        assert_eq!(failed["conditions"][1]["type"], "Failed");
        assert_eq!(failed["conditions"][1]["reason"], "BackoffLimitExceeded");
        let mut via_template = job(json!({}));
        via_template["spec"]["template"]["metadata"]["annotations"] = json!({ANN_FAIL: "true"});
        assert!(job_fails(&via_template));
        let mut suspended = job(json!({}));
        suspended["spec"]["suspend"] = true.into();
        assert!(job_status(&suspended, T0, true).is_none());
        assert!(!needs_progress(Kind::Job, &suspended));
        let pod = job_pod(&j);
        assert_eq!(pod["metadata"]["labels"]["job-name"], "migrate");
        assert_eq!(pod["metadata"]["annotations"][ANN_FAIL], "true");
        assert_eq!(pod["metadata"]["ownerReferences"][0]["kind"], "Job");
    }

    fn pod(annotations: Value, restart: &str, owner_kind: Option<&str>) -> Value {
        let mut p = json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "p", "namespace": "default", "uid": "u-pod", "annotations": annotations},
            "spec": {"restartPolicy": restart, "containers": [{"name": "a", "image": "nginx:1.25"}, {"name": "b", "image": "busybox"}]},
            "status": {"phase": "Pending", "qosClass": "BestEffort"}});
        if let Some(kind) = owner_kind {
            p["metadata"]["ownerReferences"] = json!([{"apiVersion": "v1", "kind": kind, "name": "o", "uid": "u-o", "controller": true}]);
        }
        p
    }

    #[test]
    fn pod_is_scheduled_then_running_and_ready() {
        let p = pod(json!({}), "Always", None);
        assert!(needs_progress(Kind::Pod, &p));
        let scheduled = pod_status(&p, T0, false);
        assert_eq!(scheduled["phase"], "Pending");
        assert_eq!(scheduled["conditions"][0]["type"], "PodScheduled");
        assert_eq!(scheduled["qosClass"], "BestEffort");
        let p = with_status(p, scheduled);
        assert!(!needs_progress(Kind::Pod, &p));
        let running = pod_status(&p, T1, true);
        assert_eq!(running["phase"], "Running");
        let conditions: Vec<(&str, &str)> = running["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| (c["type"].as_str().unwrap(), c["status"].as_str().unwrap()))
            .collect();
        assert_eq!(
            conditions,
            [
                ("PodReadyToStartContainers", "True"),
                ("Initialized", "True"),
                ("Ready", "True"),
                ("ContainersReady", "True"),
                ("PodScheduled", "True")
            ]
        );
        assert_eq!(
            running["conditions"][4]["lastTransitionTime"], T0,
            "PodScheduled kept its time"
        );
        assert!(running["conditions"][2]["lastProbeTime"].is_null());
        assert!(running["podIP"].as_str().unwrap().starts_with("10.244."));
        assert_eq!(running["startTime"], T1);
        let cs = running["containerStatuses"].as_array().unwrap();
        assert_eq!(cs.len(), 2);
        assert_eq!(cs[0]["ready"], true);
        assert_eq!(cs[0]["state"]["running"]["startedAt"], T1);
        assert!(
            cs[0]["containerID"]
                .as_str()
                .unwrap()
                .starts_with("containerd://")
        );
        assert!(
            cs[0]["imageID"]
                .as_str()
                .unwrap()
                .starts_with("nginx@sha256:")
        );
        assert_eq!(
            pod_status(
                &with_status(p, running.clone()),
                "2030-01-01T00:00:00Z",
                true
            ),
            running
        );
    }

    #[test]
    fn pod_outcomes_follow_owner_restart_policy_and_annotation() {
        let job_pod = pod_status(&pod(json!({}), "Never", Some("Job")), T0, true);
        assert_eq!(job_pod["phase"], "Succeeded");
        assert_eq!(
            job_pod["containerStatuses"][0]["state"]["terminated"]["reason"],
            "Completed"
        );
        assert_eq!(job_pod["conditions"][2]["reason"], "PodCompleted");
        let failed = pod_status(&pod(json!({ANN_FAIL: "true"}), "Never", None), T0, true);
        assert_eq!(failed["phase"], "Failed");
        assert_eq!(
            failed["containerStatuses"][0]["state"]["terminated"]["exitCode"],
            1
        );
        let crash = pod_status(&pod(json!({ANN_FAIL: "true"}), "Always", None), T0, true);
        assert_eq!(crash["phase"], "Running");
        assert_eq!(
            crash["containerStatuses"][0]["state"]["waiting"]["reason"],
            "CrashLoopBackOff"
        );
        assert_eq!(
            crash["conditions"][2]["message"],
            "containers with unready status: [a b]"
        );
        let crash_pod = with_status(
            pod(json!({ANN_FAIL: "true"}), "Always", None),
            crash.clone(),
        );
        assert_eq!(pod_status(&crash_pod, T1, true), crash);
        let done = with_status(pod(json!({}), "Never", Some("Job")), job_pod.clone());
        assert_eq!(pod_status(&done, T1, true), job_pod);
    }

    #[test]
    fn pvc_binds_with_requested_capacity() {
        let pvc = json!({"metadata": {"name": "data", "uid": "u-pvc"},
            "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}});
        assert!(needs_progress(Kind::PersistentVolumeClaim, &pvc));
        assert_eq!(pvc_status(&pvc, false), json!({"phase": "Pending"}));
        assert_eq!(
            pvc_status(&pvc, true),
            json!({"phase": "Bound", "accessModes": ["ReadWriteOnce"], "capacity": {"storage": "1Gi"}})
        );
        let bound = pvc_bound(&pvc).unwrap();
        assert_eq!(bound["spec"]["volumeName"], "pvc-u-pvc");
        assert_eq!(
            bound["metadata"]["annotations"]["pv.kubernetes.io/bind-completed"],
            "yes"
        );
        assert!(pvc_bound(&bound).is_none());
    }

    #[test]
    fn load_balancers_get_the_ingress_ip() {
        let lb = json!({"spec": {"type": "LoadBalancer"}});
        assert_eq!(
            service_status(&lb, true, "192.0.2.10").unwrap()["loadBalancer"]["ingress"][0]["ip"],
            "192.0.2.10"
        );
        assert!(service_status(&json!({"spec": {"type": "ClusterIP"}}), true, "x").is_none());
        let was_lb = json!({"spec": {"type": "ClusterIP"}, "status": {"loadBalancer": {"ingress": [{"ip": "x"}]}}});
        assert_eq!(
            service_status(&was_lb, true, "x").unwrap(),
            json!({"loadBalancer": {}})
        );
        assert_eq!(
            ingress_status(&json!({}), true, "192.0.2.10"),
            json!({"loadBalancer": {"ingress": [{"ip": "192.0.2.10"}]}})
        );
    }
}
