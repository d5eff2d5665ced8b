//! Which API resources a cluster cache watches: argocd-cm `resource.exclusions` and
//! `resource.inclusions` with Argo CD's semantics, plus the kinds Argo CD always excludes.
//!
//! * A rule `{apiGroups, kinds, clusters}` matches when each of its lists matches (an empty
//!   or missing list matches everything). Groups and clusters are case-sensitive globs,
//!   kinds case-insensitive globs; clusters are matched against the server URL and name.
//! * A resource is excluded when an exclusion matches; else, when inclusions are given, when
//!   no inclusion matches.
//! * Always excluded (Argo CD's core exclusions): `Event` in the core and `events.k8s.io`
//!   groups and everything in `metrics.k8s.io`.
//! * When `resource.exclusions` is absent, Argo CD's default exclusions apply: Endpoints,
//!   EndpointSlices, Leases, APIServices, authn/authz review kinds, CertificateSigningRequests,
//!   cert-manager CertificateRequests, Cilium identities/endpoints, Kyverno reports.

use std::collections::BTreeMap;

use globset::{Glob, GlobMatcher};
use serde::Deserialize;

use crate::error::ClusterCacheError;

/// argocd-cm key holding exclusions.
pub const EXCLUSIONS_KEY: &str = "resource.exclusions";
/// argocd-cm key holding inclusions.
pub const INCLUSIONS_KEY: &str = "resource.inclusions";

/// Argo CD's default `resource.exclusions` (used when the key is absent).
const DEFAULT_EXCLUSIONS: &str = r#"
- apiGroups: ['', 'discovery.k8s.io']
  kinds: ['Endpoints', 'EndpointSlice']
- apiGroups: ['apiregistration.k8s.io']
  kinds: ['APIService']
- apiGroups: ['coordination.k8s.io']
  kinds: ['Lease']
- apiGroups: ['authentication.k8s.io', 'authorization.k8s.io']
  kinds: ['SelfSubjectReview', 'TokenReview', 'LocalSubjectAccessReview', 'SelfSubjectAccessReview', 'SelfSubjectRulesReview', 'SubjectAccessReview']
- apiGroups: ['certificates.k8s.io']
  kinds: ['CertificateSigningRequest']
- apiGroups: ['cert-manager.io']
  kinds: ['CertificateRequest']
- apiGroups: ['cilium.io']
  kinds: ['CiliumIdentity', 'CiliumEndpoint', 'CiliumEndpointSlice']
- apiGroups: ['kyverno.io', 'reports.kyverno.io', 'wgpolicyk8s.io']
  kinds: ['PolicyReport', 'ClusterPolicyReport', 'EphemeralReport', 'ClusterEphemeralReport', 'AdmissionReport', 'ClusterAdmissionReport', 'BackgroundScanReport', 'ClusterBackgroundScanReport', 'UpdateRequest']
"#;

/// Exclusions that apply whatever the configuration says.
const CORE_EXCLUSIONS: &str = r#"
- apiGroups: ['', 'events.k8s.io']
  kinds: ['Event']
- apiGroups: ['metrics.k8s.io']
"#;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RuleSpec {
    #[serde(default)]
    api_groups: Vec<String>,
    #[serde(default)]
    kinds: Vec<String>,
    #[serde(default)]
    clusters: Vec<String>,
}

/// One `{apiGroups, kinds, clusters}` rule, globs compiled.
#[derive(Debug, Clone)]
pub struct FilterRule {
    groups: Vec<GlobMatcher>,
    kinds: Vec<GlobMatcher>,
    clusters: Vec<GlobMatcher>,
}

impl FilterRule {
    fn compile(spec: RuleSpec) -> Result<FilterRule, ClusterCacheError> {
        Ok(FilterRule {
            groups: globs(&spec.api_groups, false)?,
            kinds: globs(&spec.kinds, true)?,
            clusters: globs(&spec.clusters, false)?,
        })
    }

    /// Whether the rule matches a group/kind on a cluster (server URL or name).
    pub fn matches(&self, group: &str, kind: &str, clusters: &[&str]) -> bool {
        any_or_empty(&self.groups, |g| g.is_match(group))
            && any_or_empty(&self.kinds, |k| k.is_match(kind))
            && any_or_empty(&self.clusters, |c| clusters.iter().any(|n| c.is_match(n)))
    }
}

fn any_or_empty(list: &[GlobMatcher], f: impl Fn(&GlobMatcher) -> bool) -> bool {
    list.is_empty() || list.iter().any(f)
}

fn globs(
    patterns: &[String],
    case_insensitive: bool,
) -> Result<Vec<GlobMatcher>, ClusterCacheError> {
    patterns
        .iter()
        .map(|p| {
            globset::GlobBuilder::new(p)
                .case_insensitive(case_insensitive)
                .literal_separator(false)
                .build()
                .map(|g: Glob| g.compile_matcher())
                .map_err(|source| ClusterCacheError::CompileGlob {
                    glob: p.clone(),
                    source,
                })
        })
        .collect()
}

fn parse_rules(key: &str, yaml: &str) -> Result<Vec<FilterRule>, ClusterCacheError> {
    let specs: Option<Vec<RuleSpec>> =
        serde_yaml_ng::from_str(yaml).map_err(|source| ClusterCacheError::ParseFilter {
            key: key.to_string(),
            source,
        })?;
    specs
        .unwrap_or_default()
        .into_iter()
        .map(FilterRule::compile)
        .collect()
}

/// The set of API resources a cluster cache may watch.
#[derive(Debug, Clone)]
pub struct ResourceFilter {
    core: Vec<FilterRule>,
    exclusions: Vec<FilterRule>,
    inclusions: Vec<FilterRule>,
}

impl Default for ResourceFilter {
    /// Argo CD's defaults (core and default exclusions, no inclusions).
    fn default() -> Self {
        ResourceFilter::from_config_map(&BTreeMap::new()).unwrap_or(ResourceFilter {
            core: Vec::new(),
            exclusions: Vec::new(),
            inclusions: Vec::new(),
        })
    }
}

impl ResourceFilter {
    /// Builds the filter from argocd-cm data.
    pub fn from_config_map(data: &BTreeMap<String, String>) -> Result<Self, ClusterCacheError> {
        let exclusions = match data.get(EXCLUSIONS_KEY) {
            Some(yaml) => parse_rules(EXCLUSIONS_KEY, yaml)?,
            None => parse_rules("default exclusions", DEFAULT_EXCLUSIONS)?,
        };
        let inclusions = match data.get(INCLUSIONS_KEY) {
            Some(yaml) => parse_rules(INCLUSIONS_KEY, yaml)?,
            None => Vec::new(),
        };
        Ok(ResourceFilter {
            core: parse_rules("core exclusions", CORE_EXCLUSIONS)?,
            exclusions,
            inclusions,
        })
    }

    /// Whether `group`/`kind` is excluded on a cluster known by `server` and `name`.
    pub fn is_excluded(&self, group: &str, kind: &str, server: &str, name: &str) -> bool {
        let clusters = [server, name];
        let hit = |rules: &[FilterRule]| rules.iter().any(|r| r.matches(group, kind, &clusters));
        if hit(&self.core) || hit(&self.exclusions) {
            return true;
        }
        !self.inclusions.is_empty() && !hit(&self.inclusions)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn cm(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_exclude_noise_kinds() {
        let f = ResourceFilter::default();
        for (g, k) in [
            ("", "Event"),
            ("events.k8s.io", "Event"),
            ("coordination.k8s.io", "Lease"),
            ("discovery.k8s.io", "EndpointSlice"),
            ("", "Endpoints"),
            ("metrics.k8s.io", "PodMetrics"),
        ] {
            assert!(f.is_excluded(g, k, "https://s", "c"), "{g}/{k}");
        }
        assert!(!f.is_excluded("", "ConfigMap", "https://s", "c"));
        assert!(!f.is_excluded("apps", "Deployment", "https://s", "c"));
    }

    #[test]
    fn configured_exclusions_replace_defaults_but_not_core() {
        let f = ResourceFilter::from_config_map(&cm(&[(
            EXCLUSIONS_KEY,
            "- apiGroups: ['*.example.com']\n  kinds: ['*']\n  clusters: ['https://prod-*']\n",
        )]))
        .unwrap();
        assert!(f.is_excluded("a.example.com", "Widget", "https://prod-1", "p"));
        assert!(!f.is_excluded("a.example.com", "Widget", "https://dev-1", "d"));
        assert!(!f.is_excluded("coordination.k8s.io", "Lease", "https://s", "c"));
        assert!(f.is_excluded("", "Event", "https://s", "c"));
    }

    #[test]
    fn inclusions_limit_to_matches_and_kinds_ignore_case() {
        let f = ResourceFilter::from_config_map(&cm(&[(
            INCLUSIONS_KEY,
            "- apiGroups: ['', 'apps']\n  kinds: ['configmap', 'Deploy*']\n",
        )]))
        .unwrap();
        assert!(!f.is_excluded("", "ConfigMap", "s", "c"));
        assert!(!f.is_excluded("apps", "Deployment", "s", "c"));
        assert!(f.is_excluded("apps", "ReplicaSet", "s", "c"));
        assert!(f.is_excluded("batch", "Job", "s", "c"));
    }

    #[test]
    fn bad_yaml_is_an_error() {
        let err =
            ResourceFilter::from_config_map(&cm(&[(EXCLUSIONS_KEY, "{not: a list}")])).unwrap_err();
        assert!(matches!(err, ClusterCacheError::ParseFilter { .. }));
    }
}
