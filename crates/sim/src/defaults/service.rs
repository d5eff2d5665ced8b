//! Service defaulting and the per-cluster allocator of ClusterIPs and NodePorts.
//!
//! The allocator owns ClusterIPs and NodePorts by the Service's `metadata.uid` (or
//! `namespace/name` without one). On update the caller passes the merged object, which
//! still carries the live `clusterIP`/`nodePort`s (the store copies the old `clusterIP`
//! when an update omits it); values already owned by the same Service are kept, new
//! ones are checked and reserved, and ones the Service no longer carries are released.
//! A failed create must be followed by [`ServiceAllocator::release`].

use super::{
    DefaultingError, default, default_status, default_str, each_item, obj_at_map, spec, str_of,
};
use serde_json::{Map, Value, json};
use std::collections::HashMap;

/// Owner key of a Service for the allocator: its uid, or `namespace/name`.
fn owner_of(obj: &Value) -> String {
    match obj.pointer("/metadata/uid").and_then(Value::as_str) {
        Some(uid) if !uid.is_empty() => uid.to_owned(),
        _ => format!(
            "{}/{}",
            obj.pointer("/metadata/namespace")
                .and_then(Value::as_str)
                .unwrap_or_default(),
            obj.pointer("/metadata/name")
                .and_then(Value::as_str)
                .unwrap_or_default()
        ),
    }
}

/// Allocation tables keyed by value, owned by a Service owner key.
type Owners<K> = HashMap<K, String>;

const IP_BASE: u32 = u32::from_be_bytes([10, 96, 0, 0]);
const IP_SIZE: u32 = 1 << 20;
/// Dynamic ClusterIPs come from above the static band (as the real allocator prefers),
/// so fixed addresses like 10.96.0.10 for DNS stay free.
const IP_DYNAMIC_START: u32 = 256;
const PORT_MIN: u16 = 30000;
const PORT_MAX: u16 = 32767;
const PORT_DYNAMIC_START: u16 = 30086;

/// Per-cluster Service allocations: ClusterIPs from 10.96.0.0/12 (10.96.0.1 reserved for
/// `default/kubernetes`) and NodePorts from 30000-32767, each owned by one Service.
/// Dynamic allocation is sequential (deterministic) rather than random.
#[derive(Debug, Clone)]
pub struct ServiceAllocator {
    ips: Owners<u32>,
    ports: Owners<u16>,
    next_ip: u32,
    next_port: u16,
}

const KUBERNETES_OWNER: &str = "default/kubernetes";

impl Default for ServiceAllocator {
    fn default() -> Self {
        Self::new()
    }
}

impl ServiceAllocator {
    /// An allocator with only 10.96.0.1 taken (by the `kubernetes` Service).
    pub fn new() -> Self {
        let mut ips = HashMap::new();
        ips.insert(1, KUBERNETES_OWNER.to_owned());
        Self {
            ips,
            ports: HashMap::new(),
            next_ip: IP_DYNAMIC_START,
            next_port: PORT_DYNAMIC_START,
        }
    }

    /// Frees every ClusterIP and NodePort owned by `service` (on delete, or after a
    /// create that failed once defaulting had run).
    pub fn release(&mut self, service: &Value) {
        let owner = owner_of(service);
        self.ips.retain(|_, o| *o != owner);
        self.ports.retain(|_, o| *o != owner);
    }

    /// Number of ClusterIPs and NodePorts currently allocated.
    pub fn allocated(&self) -> (usize, usize) {
        (self.ips.len(), self.ports.len())
    }

    /// Claims a requested address; `takeover` lets the `kubernetes` Service take the
    /// address reserved for it.
    fn claim_ip(&mut self, offset: u32, owner: &str, takeover: bool) -> Result<(), &'static str> {
        match self.ips.get(&offset) {
            Some(o) if o == owner => Ok(()),
            Some(o) if !(takeover && o == KUBERNETES_OWNER) => {
                Err("provided IP is already allocated")
            }
            _ => {
                self.ips.insert(offset, owner.to_owned());
                Ok(())
            }
        }
    }

    fn allocate_ip(&mut self, owner: &str) -> Option<u32> {
        let usable = IP_SIZE - 2;
        for i in 0..usable {
            let offset = 1 + (self.next_ip - 1 + i) % usable;
            if let std::collections::hash_map::Entry::Vacant(slot) = self.ips.entry(offset) {
                slot.insert(owner.to_owned());
                self.next_ip = 1 + offset % usable;
                return Some(offset);
            }
        }
        None
    }

    fn claim_port(&mut self, port: u16, owner: &str) -> Result<(), &'static str> {
        if !(PORT_MIN..=PORT_MAX).contains(&port) {
            return Err(
                "provided port is not in the valid range. The range of valid ports is 30000-32767",
            );
        }
        match self.ports.get(&port) {
            Some(o) if o != owner => Err("provided port is already allocated"),
            _ => {
                self.ports.insert(port, owner.to_owned());
                Ok(())
            }
        }
    }

    fn allocate_port(&mut self, owner: &str) -> Option<u16> {
        let count = PORT_MAX - PORT_MIN + 1;
        for i in 0..count {
            let port = PORT_MIN + (self.next_port - PORT_MIN + i) % count;
            if let std::collections::hash_map::Entry::Vacant(slot) = self.ports.entry(port) {
                slot.insert(owner.to_owned());
                self.next_port = PORT_MIN + (port - PORT_MIN + 1) % count;
                return Some(port);
            }
        }
        None
    }

    /// Releases what `owner` holds beyond `ips` and `ports`.
    fn keep_only(&mut self, owner: &str, ips: &[u32], ports: &[u16]) {
        self.ips.retain(|ip, o| o != owner || ips.contains(ip));
        self.ports.retain(|p, o| o != owner || ports.contains(p));
    }

    fn owns_port(&self, port: u16, owner: &str) -> bool {
        self.ports.get(&port).is_some_and(|o| o == owner)
    }
}

fn ip_to_string(offset: u32) -> String {
    std::net::Ipv4Addr::from(IP_BASE + offset).to_string()
}

fn ip_offset(ip: &str) -> Option<u32> {
    let addr: std::net::Ipv4Addr = ip.parse().ok()?;
    let offset = u32::from(addr).checked_sub(IP_BASE)?;
    (1..IP_SIZE - 1).contains(&offset).then_some(offset)
}

pub(super) fn service(
    obj: &mut Value,
    alloc: &mut ServiceAllocator,
) -> Result<(), DefaultingError> {
    let owner = owner_of(obj);
    let ns = obj
        .pointer("/metadata/namespace")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let name = obj
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let takeover = ns == "default" && name == "kubernetes";
    let spec = spec(obj)?;
    service_spec_defaults(spec)?;
    let ty = str_of(spec, "type").to_owned();
    let mut ips = Vec::new();
    if ty != "ExternalName" {
        ips.extend(cluster_ip(spec, alloc, &owner, takeover)?);
    } else if let Some(offset) = ip_offset(str_of(spec, "clusterIP"))
        && alloc.ips.get(&offset).is_some_and(|o| *o == owner)
    {
        // Switched to ExternalName: the allocated address goes, as upstream drops it.
        for key in ["clusterIP", "clusterIPs", "ipFamilies", "ipFamilyPolicy"] {
            spec.shift_remove(key);
        }
    }
    let ports = node_ports(spec, alloc, &owner, &ty)?;
    alloc.keep_only(&owner, &ips, &ports);
    default_status(obj, json!({"loadBalancer": {}}))
}

fn service_spec_defaults(spec: &mut Map<String, Value>) -> Result<(), DefaultingError> {
    default_str(spec, "type", "ClusterIP");
    let ty = str_of(spec, "type").to_owned();
    default_str(spec, "sessionAffinity", "None");
    if str_of(spec, "sessionAffinity") == "ClientIP" {
        let config = obj_at_map(spec, "sessionAffinityConfig", "spec")?;
        let client = obj_at_map(config, "clientIP", "spec.sessionAffinityConfig")?;
        default(client, "timeoutSeconds", json!(10800));
    }
    each_item(spec, "ports", "spec", |port, _| {
        default_str(port, "protocol", "TCP");
        let unset = match port.get("targetPort") {
            None | Some(Value::Null) => true,
            Some(Value::Number(n)) => n.as_i64() == Some(0),
            Some(Value::String(s)) => s.is_empty(),
            Some(_) => false,
        };
        if unset && let Some(p) = port.get("port").cloned() {
            port.insert("targetPort".into(), p);
        }
        Ok(())
    })?;
    if ty != "ExternalName" {
        default_str(spec, "internalTrafficPolicy", "Cluster");
    }
    if ty == "NodePort" || ty == "LoadBalancer" {
        default_str(spec, "externalTrafficPolicy", "Cluster");
    }
    if ty == "LoadBalancer" {
        default(spec, "allocateLoadBalancerNodePorts", json!(true));
    } else {
        // Fields of other types, dropped as upstream does when the type changes.
        spec.shift_remove("allocateLoadBalancerNodePorts");
        if ty != "NodePort" {
            spec.shift_remove("externalTrafficPolicy");
        }
    }
    Ok(())
}

/// Sets `clusterIP`, `clusterIPs`, `ipFamilies` and `ipFamilyPolicy`; returns the
/// allocated offset (none for headless Services).
fn cluster_ip(
    spec: &mut Map<String, Value>,
    alloc: &mut ServiceAllocator,
    owner: &str,
    takeover: bool,
) -> Result<Option<u32>, DefaultingError> {
    let requested = match str_of(spec, "clusterIP") {
        "" => spec
            .get("clusterIPs")
            .and_then(|ips| ips.get(0))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned(),
        ip => ip.to_owned(),
    };
    if requested == "None" {
        spec.insert("clusterIP".into(), json!("None"));
        spec.insert("clusterIPs".into(), json!(["None"]));
        let has_selector = spec
            .get("selector")
            .and_then(Value::as_object)
            .is_some_and(|s| !s.is_empty());
        let policy = if has_selector {
            "SingleStack"
        } else {
            "RequireDualStack"
        };
        default_str(spec, "ipFamilyPolicy", policy);
        let families = if str_of(spec, "ipFamilyPolicy") == "SingleStack" {
            json!(["IPv4"])
        } else {
            json!(["IPv4", "IPv6"])
        };
        default(spec, "ipFamilies", families);
        return Ok(None);
    }
    let invalid = |reason: &str| DefaultingError::InvalidValue {
        field: "spec.clusterIPs".into(),
        value: format!("[]string{{{requested:?}}}"),
        reason: format!("failed to allocate IP {requested}: {reason}"),
    };
    let offset = if requested.is_empty() {
        alloc.allocate_ip(owner).ok_or(DefaultingError::RangeFull {
            field: "spec.clusterIPs".into(),
            what: "ClusterIP",
        })?
    } else {
        let offset = ip_offset(&requested).ok_or_else(|| {
            invalid("provided IP is not in the valid range. The range of valid IPs is 10.96.0.0/12")
        })?;
        alloc.claim_ip(offset, owner, takeover).map_err(invalid)?;
        offset
    };
    let ip = ip_to_string(offset);
    spec.insert("clusterIP".into(), json!(ip));
    spec.insert("clusterIPs".into(), json!([ip]));
    default(spec, "ipFamilies", json!(["IPv4"]));
    default_str(spec, "ipFamilyPolicy", "SingleStack");
    Ok(Some(offset))
}

/// Which node ports a Service's type allows and allocates.
struct NodePortPolicy<'a> {
    /// The Service's `type`.
    ty: &'a str,
    /// Whether ports may carry a `nodePort`.
    allowed: bool,
    /// Whether ports without one get a `nodePort` allocated.
    allocate: bool,
}

/// Allocates or checks `nodePort`s (and `healthCheckNodePort`); returns the ports held.
fn node_ports(
    spec: &mut Map<String, Value>,
    alloc: &mut ServiceAllocator,
    owner: &str,
    ty: &str,
) -> Result<Vec<u16>, DefaultingError> {
    let policy = NodePortPolicy {
        ty,
        allowed: ty == "NodePort" || ty == "LoadBalancer",
        allocate: ty == "NodePort"
            || (ty == "LoadBalancer"
                && spec.get("allocateLoadBalancerNodePorts") != Some(&Value::Bool(false))),
    };
    let mut held = Vec::new();
    each_item(spec, "ports", "spec", |port, field| {
        let field = format!("{field}.nodePort");
        held.extend(port_node_port(port, field, alloc, owner, &policy)?);
        Ok(())
    })?;
    held.extend(health_check_node_port(spec, alloc, owner, ty)?);
    Ok(held)
}

/// The `nodePort` of one Service port: claimed, allocated, or dropped when it is a
/// leftover of a type change; returns the port held.
fn port_node_port(
    port: &mut Map<String, Value>,
    field: String,
    alloc: &mut ServiceAllocator,
    owner: &str,
    policy: &NodePortPolicy<'_>,
) -> Result<Option<u16>, DefaultingError> {
    let requested = port
        .get("nodePort")
        .and_then(Value::as_u64)
        .filter(|p| *p != 0);
    match requested {
        Some(p) if !policy.allowed => {
            let p16 = u16::try_from(p).unwrap_or(0);
            if !alloc.owns_port(p16, owner) {
                return Err(DefaultingError::Forbidden {
                    field,
                    reason: format!("may not be used when `type` is '{}'", policy.ty),
                });
            }
            // A leftover from a type change, dropped as upstream does.
            port.shift_remove("nodePort");
            Ok(None)
        }
        Some(p) => claim_node_port(alloc, p, owner, field).map(Some),
        None if policy.allocate => {
            let p = allocate_node_port(alloc, owner, field)?;
            port.insert("nodePort".into(), json!(p));
            Ok(Some(p))
        }
        None => Ok(None),
    }
}

/// Claims or allocates the `healthCheckNodePort` of a LoadBalancer with the `Local`
/// external traffic policy, or drops one the Service no longer needs; returns the port
/// held.
fn health_check_node_port(
    spec: &mut Map<String, Value>,
    alloc: &mut ServiceAllocator,
    owner: &str,
    ty: &str,
) -> Result<Option<u16>, DefaultingError> {
    let local = str_of(spec, "externalTrafficPolicy") == "Local";
    if ty == "LoadBalancer" && local {
        let field = "spec.healthCheckNodePort".to_owned();
        let requested = spec
            .get("healthCheckNodePort")
            .and_then(Value::as_u64)
            .filter(|p| *p != 0);
        let p = match requested {
            Some(p) => claim_node_port(alloc, p, owner, field)?,
            None => {
                let p = allocate_node_port(alloc, owner, field)?;
                spec.insert("healthCheckNodePort".into(), json!(p));
                p
            }
        };
        return Ok(Some(p));
    }
    if let Some(p) = spec.get("healthCheckNodePort").and_then(Value::as_u64)
        && alloc.owns_port(u16::try_from(p).unwrap_or(0), owner)
    {
        spec.shift_remove("healthCheckNodePort");
    }
    Ok(None)
}

/// Claims the requested node port `p` for `owner`.
fn claim_node_port(
    alloc: &mut ServiceAllocator,
    p: u64,
    owner: &str,
    field: String,
) -> Result<u16, DefaultingError> {
    let p16 = u16::try_from(p).unwrap_or(0);
    alloc
        .claim_port(p16, owner)
        .map_err(|reason| DefaultingError::InvalidValue {
            field,
            value: p.to_string(),
            reason: reason.to_owned(),
        })?;
    Ok(p16)
}

/// Allocates the next free node port for `owner`.
fn allocate_node_port(
    alloc: &mut ServiceAllocator,
    owner: &str,
    field: String,
) -> Result<u16, DefaultingError> {
    alloc
        .allocate_port(owner)
        .ok_or(DefaultingError::RangeFull {
            field,
            what: "NodePort",
        })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::defaults::apply_defaults;
    use crate::defaults::tests::{defaulted, rt};

    #[test]
    fn service_allocation_and_defaults() {
        let svc_rt = rt("", "Service");
        let mut alloc = ServiceAllocator::new();
        let mut svc = json!({"metadata": {"name": "web", "namespace": "default", "uid": "s1"},
            "spec": {"selector": {"app": "web"}, "ports": [{"port": 80}]}});
        apply_defaults(&svc_rt, &mut svc, &mut alloc).unwrap();
        let spec = &svc["spec"];
        assert_eq!(spec["type"], "ClusterIP");
        assert_eq!(spec["sessionAffinity"], "None");
        assert_eq!(
            spec["ports"][0],
            json!({"port": 80, "protocol": "TCP", "targetPort": 80})
        );
        assert_eq!(spec["ipFamilies"], json!(["IPv4"]));
        assert_eq!(spec["ipFamilyPolicy"], "SingleStack");
        assert_eq!(spec["internalTrafficPolicy"], "Cluster");
        assert!(spec.get("externalTrafficPolicy").is_none());
        let ip = spec["clusterIP"].as_str().unwrap().to_owned();
        assert!(ip.starts_with("10.9") && ip != "10.96.0.1");
        assert_eq!(spec["clusterIPs"], json!([ip]));
        assert_eq!(svc["status"], json!({"loadBalancer": {}}));
        // An update keeps the address; a second Service cannot take it.
        let before = svc.clone();
        apply_defaults(&svc_rt, &mut svc, &mut alloc).unwrap();
        assert_eq!(svc, before);
        let mut other = json!({"metadata": {"name": "o", "namespace": "default", "uid": "s2"},
            "spec": {"clusterIP": ip, "ports": [{"port": 80}]}});
        let err = apply_defaults(&svc_rt, &mut other, &mut alloc).unwrap_err();
        assert!(
            err.to_string().contains("provided IP is already allocated"),
            "{err}"
        );
        let mut dns = json!({"metadata": {"name": "dns", "namespace": "kube-system", "uid": "s3"},
            "spec": {"clusterIP": "10.96.0.10", "ports": [{"port": 53, "protocol": "UDP"}]}});
        apply_defaults(&svc_rt, &mut dns, &mut alloc).unwrap();
        assert_eq!(dns["spec"]["clusterIPs"], json!(["10.96.0.10"]));
        let mut kubernetes = json!({"metadata": {"name": "kubernetes", "namespace": "default", "uid": "k"},
            "spec": {"clusterIP": "10.96.0.1", "ports": [{"port": 443}]}});
        apply_defaults(&svc_rt, &mut kubernetes, &mut alloc).unwrap();
        let mut outside = json!({"metadata": {"uid": "s4"}, "spec": {"clusterIP": "192.168.0.1"}});
        assert!(apply_defaults(&svc_rt, &mut outside, &mut alloc).is_err());
        assert_eq!(alloc.allocated(), (3, 0));
        alloc.release(&svc);
        assert_eq!(alloc.allocated(), (2, 0));
    }

    #[test]
    fn node_ports_headless_and_external_name() {
        let svc_rt = rt("", "Service");
        let mut alloc = ServiceAllocator::new();
        let mut lb = json!({"metadata": {"uid": "lb"}, "spec": {"type": "LoadBalancer",
            "ports": [{"port": 80}, {"port": 443, "nodePort": 30443}]}});
        apply_defaults(&svc_rt, &mut lb, &mut alloc).unwrap();
        let spec = &lb["spec"];
        assert_eq!(spec["externalTrafficPolicy"], "Cluster");
        assert_eq!(spec["allocateLoadBalancerNodePorts"], true);
        let port = spec["ports"][0]["nodePort"].as_u64().unwrap();
        assert!((30000..=32767).contains(&port));
        assert_eq!(spec["ports"][1]["nodePort"], 30443);
        let mut clash = json!({"metadata": {"uid": "np"}, "spec": {"type": "NodePort",
            "ports": [{"port": 1, "nodePort": 30443}]}});
        assert!(apply_defaults(&svc_rt, &mut clash, &mut alloc).is_err());
        // Switching back to ClusterIP drops and frees the node ports.
        lb["spec"]["type"] = json!("ClusterIP");
        apply_defaults(&svc_rt, &mut lb, &mut alloc).unwrap();
        assert!(lb["spec"]["ports"][0].get("nodePort").is_none());
        assert!(lb["spec"].get("externalTrafficPolicy").is_none());
        assert!(lb["spec"].get("allocateLoadBalancerNodePorts").is_none());
        assert_eq!(alloc.allocated().1, 0);
        let mut fresh =
            json!({"metadata": {"uid": "x"}, "spec": {"ports": [{"port": 1, "nodePort": 30001}]}});
        assert!(matches!(
            apply_defaults(&svc_rt, &mut fresh, &mut alloc),
            Err(DefaultingError::Forbidden { .. })
        ));

        let headless = defaulted(
            "",
            "Service",
            json!({"spec": {"clusterIP": "None", "selector": {"a": "b"}}}),
        );
        assert_eq!(headless["spec"]["clusterIPs"], json!(["None"]));
        assert_eq!(headless["spec"]["ipFamilyPolicy"], "SingleStack");
        let no_selector = defaulted("", "Service", json!({"spec": {"clusterIP": "None"}}));
        assert_eq!(no_selector["spec"]["ipFamilyPolicy"], "RequireDualStack");
        assert_eq!(no_selector["spec"]["ipFamilies"], json!(["IPv4", "IPv6"]));
        let ext = defaulted(
            "",
            "Service",
            json!({"spec": {"type": "ExternalName", "externalName": "example.com"}}),
        );
        assert!(ext["spec"].get("clusterIP").is_none());
        assert!(ext["spec"].get("ipFamilies").is_none());
        assert!(ext["spec"].get("internalTrafficPolicy").is_none());
    }
}
