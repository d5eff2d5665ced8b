//! Pod and pod template defaulting: `SetDefaults_PodSpec` and the defaults of
//! containers, probes, lifecycle handlers and volumes, requests from limits, the
//! Priority admission plugin's `priority`, and the Pod strategy's phase and QoS class.

use super::{
    DefaultingError, default, default_str, each_item, join, obj_at, obj_at_map, opt_obj, spec,
    str_of, wrong,
};
use serde_json::{Map, Value, json};

pub(super) fn pod(obj: &mut Value) -> Result<(), DefaultingError> {
    let spec = spec(obj)?;
    pod_spec(spec, "spec")?;
    default(spec, "enableServiceLinks", json!(true));
    // The Priority admission plugin (always enabled) resolves the priority class.
    let priority = match str_of(spec, "priorityClassName") {
        "" => Some(0),
        "system-cluster-critical" => Some(2_000_000_000),
        "system-node-critical" => Some(2_000_001_000),
        _ => None,
    };
    if let Some(priority) = priority {
        default(spec, "priority", json!(priority));
    }
    default_str(spec, "preemptionPolicy", "PreemptLowerPriority");
    let host_network = spec.get("hostNetwork") == Some(&Value::Bool(true));
    for list in ["containers", "initContainers"] {
        each_item(spec, list, "spec", |container, field| {
            requests_from_limits(container, field)?;
            if host_network {
                each_item(container, "ports", field, |port, _| {
                    if let Some(p) = port.get("containerPort").cloned() {
                        default(port, "hostPort", p);
                    }
                    Ok(())
                })?;
            }
            Ok(())
        })?;
    }
    let qos = qos_class(spec);
    let status = obj_at(obj, "status", "")?;
    default_str(status, "phase", "Pending");
    default_str(status, "qosClass", qos);
    Ok(())
}

pub(super) fn pod_template(obj: &mut Value) -> Result<(), DefaultingError> {
    let Value::Object(map) = obj else {
        return Err(wrong("", "an object"));
    };
    template_at(map, "template", "")
}

/// Defaults the pod template at `spec.template`.
pub(super) fn template_in(
    spec: &mut Map<String, Value>,
    field: &str,
) -> Result<(), DefaultingError> {
    template_at(spec, "template", field)
}

fn template_at(
    parent: &mut Map<String, Value>,
    key: &str,
    field: &str,
) -> Result<(), DefaultingError> {
    let field = join(field, key);
    let template = obj_at_map(parent, key, "")?;
    let spec = obj_at_map(template, "spec", &field)?;
    pod_spec(spec, &join(&field, "spec"))
}

/// `SetDefaults_PodSpec` and the defaults of everything inside a pod spec.
fn pod_spec(spec: &mut Map<String, Value>, field: &str) -> Result<(), DefaultingError> {
    default_str(spec, "dnsPolicy", "ClusterFirst");
    default_str(spec, "restartPolicy", "Always");
    default(spec, "terminationGracePeriodSeconds", json!(30));
    default(spec, "securityContext", json!({}));
    default_str(spec, "schedulerName", "default-scheduler");
    for list in ["containers", "initContainers", "ephemeralContainers"] {
        each_item(spec, list, field, container)?;
    }
    each_item(spec, "volumes", field, volume)
}

fn container(c: &mut Map<String, Value>, field: &str) -> Result<(), DefaultingError> {
    let policy = image_pull_policy(str_of(c, "image"));
    default_str(c, "imagePullPolicy", policy);
    default_str(c, "terminationMessagePath", "/dev/termination-log");
    default_str(c, "terminationMessagePolicy", "File");
    default(c, "resources", json!({}));
    each_item(c, "ports", field, |port, _| {
        default_str(port, "protocol", "TCP");
        Ok(())
    })?;
    each_item(c, "env", field, |env, field| {
        if let Some(from) = opt_obj(env, "valueFrom", field)? {
            field_ref(from, &join(field, "valueFrom"))?;
        }
        Ok(())
    })?;
    for probe in ["livenessProbe", "readinessProbe", "startupProbe"] {
        if let Some(p) = opt_obj(c, probe, field)? {
            default(p, "timeoutSeconds", json!(1));
            default(p, "periodSeconds", json!(10));
            default(p, "successThreshold", json!(1));
            default(p, "failureThreshold", json!(3));
            handler(p, &join(field, probe))?;
        }
    }
    if let Some(lifecycle) = opt_obj(c, "lifecycle", field)? {
        for hook in ["postStart", "preStop"] {
            if let Some(h) = opt_obj(lifecycle, hook, field)? {
                handler(h, field)?;
            }
        }
    }
    Ok(())
}

/// `Always` for `:latest` or an untagged, undigested image; `IfNotPresent` otherwise.
fn image_pull_policy(image: &str) -> &'static str {
    let (name, digest) = match image.split_once('@') {
        Some((name, _)) => (name, true),
        None => (image, false),
    };
    let last = name.rsplit('/').next().unwrap_or(name);
    match last.split_once(':') {
        Some((_, "latest")) => "Always",
        Some(_) => "IfNotPresent",
        None if digest || image.is_empty() => "IfNotPresent",
        None => "Always",
    }
}

fn handler(h: &mut Map<String, Value>, field: &str) -> Result<(), DefaultingError> {
    if let Some(http) = opt_obj(h, "httpGet", field)? {
        default_str(http, "path", "/");
        default_str(http, "scheme", "HTTP");
    }
    if let Some(grpc) = opt_obj(h, "grpc", field)? {
        default(grpc, "service", json!(""));
    }
    Ok(())
}

fn field_ref(parent: &mut Map<String, Value>, field: &str) -> Result<(), DefaultingError> {
    if let Some(r) = opt_obj(parent, "fieldRef", field)? {
        default_str(r, "apiVersion", "v1");
    }
    Ok(())
}

const VOLUME_SOURCES: &[&str] = &[
    "hostPath",
    "emptyDir",
    "gcePersistentDisk",
    "awsElasticBlockStore",
    "gitRepo",
    "secret",
    "nfs",
    "iscsi",
    "glusterfs",
    "persistentVolumeClaim",
    "rbd",
    "flexVolume",
    "cinder",
    "cephfs",
    "flocker",
    "downwardAPI",
    "fc",
    "azureFile",
    "configMap",
    "vsphereVolume",
    "quobyte",
    "azureDisk",
    "photonPersistentDisk",
    "projected",
    "portworxVolume",
    "scaleIO",
    "storageos",
    "csi",
    "ephemeral",
    "image",
];

fn volume(v: &mut Map<String, Value>, field: &str) -> Result<(), DefaultingError> {
    if !VOLUME_SOURCES
        .iter()
        .any(|s| v.get(*s).is_some_and(|x| !x.is_null()))
    {
        v.insert("emptyDir".into(), json!({}));
    }
    for source in ["secret", "configMap", "downwardAPI", "projected"] {
        if let Some(s) = opt_obj(v, source, field)? {
            default(s, "defaultMode", json!(420));
        }
    }
    if let Some(host_path) = opt_obj(v, "hostPath", field)? {
        default(host_path, "type", json!(""));
    }
    if let Some(d) = opt_obj(v, "downwardAPI", field)? {
        each_item(d, "items", field, field_ref)?;
    }
    if let Some(p) = opt_obj(v, "projected", field)? {
        each_item(p, "sources", field, |source, field| {
            if let Some(token) = opt_obj(source, "serviceAccountToken", field)? {
                default(token, "expirationSeconds", json!(3600));
            }
            if let Some(d) = opt_obj(source, "downwardAPI", field)? {
                each_item(d, "items", field, field_ref)?;
            }
            Ok(())
        })?;
    }
    if let Some(iscsi) = opt_obj(v, "iscsi", field)? {
        default_str(iscsi, "iscsiInterface", "default");
    }
    if let Some(eph) = opt_obj(v, "ephemeral", field)?
        && let Some(template) = opt_obj(eph, "volumeClaimTemplate", field)?
    {
        let spec = obj_at_map(template, "spec", field)?;
        default_str(spec, "volumeMode", "Filesystem");
    }
    Ok(())
}

/// `SetDefaults_Pod`: requests default to limits for resources without a request.
fn requests_from_limits(c: &mut Map<String, Value>, field: &str) -> Result<(), DefaultingError> {
    let Some(resources) = opt_obj(c, "resources", field)? else {
        return Ok(());
    };
    let Some(limits) = resources.get("limits").and_then(Value::as_object).cloned() else {
        return Ok(());
    };
    if limits.is_empty() {
        return Ok(());
    }
    let requests = obj_at_map(resources, "requests", field)?;
    for (name, quantity) in limits {
        default(requests, &name, quantity);
    }
    Ok(())
}

/// The pod's QoS class from its containers' CPU and memory requests and limits
/// (quantities compared as written).
fn qos_class(spec: &Map<String, Value>) -> &'static str {
    let containers: Vec<&Value> = ["containers", "initContainers"]
        .iter()
        .filter_map(|l| spec.get(*l).and_then(Value::as_array))
        .flatten()
        .collect();
    let get = |c: &Value, kind: &str, res: &str| c.get("resources")?.get(kind)?.get(res).cloned();
    let mut any = false;
    let mut guaranteed = true;
    for c in &containers {
        for res in ["cpu", "memory"] {
            let (req, lim) = (get(c, "requests", res), get(c, "limits", res));
            any |= req.is_some() || lim.is_some();
            guaranteed &= lim.is_some() && req == lim;
        }
    }
    match (any, guaranteed) {
        (false, _) => "BestEffort",
        (true, true) => "Guaranteed",
        (true, false) => "Burstable",
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::defaults::tests::defaulted;

    #[test]
    fn image_pull_policy_follows_the_tag() {
        assert_eq!(image_pull_policy("nginx"), "Always");
        assert_eq!(image_pull_policy("nginx:latest"), "Always");
        assert_eq!(image_pull_policy("localhost:5000/app"), "Always");
        assert_eq!(image_pull_policy("localhost:5000/app:v1"), "IfNotPresent");
        assert_eq!(image_pull_policy("nginx@sha256:abc"), "IfNotPresent");
        assert_eq!(image_pull_policy("nginx:1.2@sha256:abc"), "IfNotPresent");
    }

    #[test]
    fn pod_only_defaults_volumes_and_probes() {
        let p = defaulted(
            "",
            "Pod",
            json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "busybox",
                "resources": {"limits": {"cpu": "1", "memory": "1Gi"}},
                "livenessProbe": {"httpGet": {"port": 8080}},
                "env": [{"name": "N", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}]}],
                "volumes": [{"name": "a"}, {"name": "b", "configMap": {"name": "cm"}}, {"name": "c", "secret": {"secretName": "s"}},
                    {"name": "d", "hostPath": {"path": "/x"}}]}}),
        );
        let spec = &p["spec"];
        assert_eq!(spec["enableServiceLinks"], true);
        assert_eq!(spec["priority"], 0);
        assert_eq!(spec["preemptionPolicy"], "PreemptLowerPriority");
        assert!(
            spec.get("serviceAccountName").is_none(),
            "service accounts are admission"
        );
        let c = &spec["containers"][0];
        assert_eq!(c["imagePullPolicy"], "Always");
        assert_eq!(
            c["resources"]["requests"],
            json!({"cpu": "1", "memory": "1Gi"})
        );
        assert_eq!(
            c["livenessProbe"],
            json!({"httpGet": {"port": 8080, "path": "/", "scheme": "HTTP"}, "timeoutSeconds": 1,
                "periodSeconds": 10, "successThreshold": 1, "failureThreshold": 3})
        );
        assert_eq!(c["env"][0]["valueFrom"]["fieldRef"]["apiVersion"], "v1");
        assert_eq!(spec["volumes"][0], json!({"name": "a", "emptyDir": {}}));
        assert_eq!(spec["volumes"][1]["configMap"]["defaultMode"], 420);
        assert_eq!(spec["volumes"][2]["secret"]["defaultMode"], 420);
        assert_eq!(spec["volumes"][3]["hostPath"]["type"], "");
        assert_eq!(
            p["status"],
            json!({"phase": "Pending", "qosClass": "Guaranteed"})
        );
        let best = defaulted(
            "",
            "Pod",
            json!({"spec": {"containers": [{"name": "c", "image": "x"}]}}),
        );
        assert_eq!(best["status"]["qosClass"], "BestEffort");
    }
}
