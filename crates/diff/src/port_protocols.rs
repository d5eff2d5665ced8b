//! Defaults filled into an object before server-side apply where the API server's own
//! defaulting comes too late: the `protocol` key of Service and container ports. Those
//! lists are keyed by (port, protocol), and API servers up to at least v1.20 refuse an
//! applied item that omits a key field ("associative list with keys has an element that
//! omits key field \"protocol\""). `TCP` is the value the server would default anyway,
//! so filling it changes nothing in the result.

use std::borrow::Cow;

use serde_json::Value;

const CONTAINER_LISTS: [&str; 3] = ["containers", "initContainers", "ephemeralContainers"];

/// `desired` with `protocol: TCP` on every Service port and container port lacking one.
pub fn with_port_protocols(desired: &Value) -> Cow<'_, Value> {
    if !needs_protocol(desired, is_service(desired)) {
        return Cow::Borrowed(desired);
    }
    let mut out = desired.clone();
    let service = is_service(&out);
    fill(&mut out, service);
    Cow::Owned(out)
}

fn is_service(obj: &Value) -> bool {
    obj.get("kind").and_then(Value::as_str) == Some("Service")
        && obj.get("apiVersion").and_then(Value::as_str) == Some("v1")
}

fn ports_missing(ports: Option<&Value>) -> bool {
    ports.and_then(Value::as_array).is_some_and(|list| {
        list.iter()
            .any(|p| p.is_object() && p.get("protocol").is_none())
    })
}

fn needs_protocol(obj: &Value, service: bool) -> bool {
    if service && ports_missing(obj.pointer("/spec/ports")) {
        return true;
    }
    any_container_ports_missing(obj)
}

fn any_container_ports_missing(v: &Value) -> bool {
    match v {
        Value::Object(map) => map.iter().any(|(k, child)| {
            if CONTAINER_LISTS.contains(&k.as_str())
                && let Some(list) = child.as_array()
            {
                return list.iter().any(|c| ports_missing(c.get("ports")));
            }
            any_container_ports_missing(child)
        }),
        Value::Array(items) => items.iter().any(any_container_ports_missing),
        _ => false,
    }
}

fn fill_ports(ports: Option<&mut Value>) {
    for port in ports.and_then(Value::as_array_mut).into_iter().flatten() {
        if let Some(map) = port.as_object_mut() {
            map.entry("protocol")
                .or_insert_with(|| Value::String("TCP".to_owned()));
        }
    }
}

fn fill(obj: &mut Value, service: bool) {
    if service {
        fill_ports(obj.pointer_mut("/spec/ports"));
    }
    fill_containers(obj);
}

fn fill_containers(v: &mut Value) {
    match v {
        Value::Object(map) => {
            for (k, child) in map.iter_mut() {
                if CONTAINER_LISTS.contains(&k.as_str())
                    && let Some(list) = child.as_array_mut()
                {
                    for c in list {
                        fill_ports(c.get_mut("ports"));
                    }
                } else {
                    fill_containers(child);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(fill_containers),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn service_and_container_ports_get_tcp() {
        let svc = json!({"apiVersion": "v1", "kind": "Service", "spec": {"ports": [{"port": 80}, {"port": 53, "protocol": "UDP"}]}});
        let out = with_port_protocols(&svc);
        assert_eq!(out.pointer("/spec/ports/0/protocol"), Some(&json!("TCP")));
        assert_eq!(out.pointer("/spec/ports/1/protocol"), Some(&json!("UDP")));
        let deploy = json!({"apiVersion": "apps/v1", "kind": "Deployment", "spec": {"template": {"spec": {
            "containers": [{"name": "a", "ports": [{"containerPort": 80}]}]}}}});
        let out = with_port_protocols(&deploy);
        assert_eq!(
            out.pointer("/spec/template/spec/containers/0/ports/0/protocol"),
            Some(&json!("TCP"))
        );
    }

    #[test]
    fn complete_objects_are_borrowed() {
        let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "data": {"ports": "x"}});
        assert!(matches!(with_port_protocols(&cm), Cow::Borrowed(_)));
    }
}
