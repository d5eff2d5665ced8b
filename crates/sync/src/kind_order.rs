//! The order in which kinds are applied within one wave (Argo CD's kind order); kinds
//! not in the list come after all listed kinds.

/// Kinds in apply order (ARCHITECTURE.md §7).
pub const KIND_ORDER: &[&str] = &[
    "Namespace",
    "NetworkPolicy",
    "ResourceQuota",
    "LimitRange",
    "PodSecurityPolicy",
    "PodDisruptionBudget",
    "ServiceAccount",
    "Secret",
    "SecretList",
    "ConfigMap",
    "StorageClass",
    "PersistentVolume",
    "PersistentVolumeClaim",
    "CustomResourceDefinition",
    "ClusterRole",
    "ClusterRoleList",
    "ClusterRoleBinding",
    "ClusterRoleBindingList",
    "Role",
    "RoleList",
    "RoleBinding",
    "RoleBindingList",
    "Service",
    "DaemonSet",
    "Pod",
    "ReplicationController",
    "ReplicaSet",
    "Deployment",
    "HorizontalPodAutoscaler",
    "StatefulSet",
    "Job",
    "CronJob",
    "IngressClass",
    "Ingress",
    "APIService",
];

/// Rank of a kind within a wave: its index in [`KIND_ORDER`], or `KIND_ORDER.len()` for
/// any other kind (they sort after, then by name).
pub fn kind_rank(kind: &str) -> usize {
    KIND_ORDER
        .iter()
        .position(|k| *k == kind)
        .unwrap_or(KIND_ORDER.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listed_kinds_rank_in_list_order_and_others_last() {
        assert_eq!(kind_rank("Namespace"), 0);
        assert!(kind_rank("ConfigMap") < kind_rank("Deployment"));
        assert!(kind_rank("CustomResourceDefinition") < kind_rank("ClusterRole"));
        assert!(kind_rank("APIService") < kind_rank("Certificate"));
        assert_eq!(kind_rank("Certificate"), kind_rank("Rollout"));
    }
}
