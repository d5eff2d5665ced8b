//! Kubeconfig YAML for simulated clusters: one cluster, user and context per endpoint, the
//! context named after the cluster, authenticating with the cluster's bearer token.

use base64::Engine as _;
use serde::Serialize;

/// One simulated cluster as a client reaches it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterEndpoint {
    /// Cluster (and context and user) name.
    pub name: String,
    /// Base URL, e.g. `https://127.0.0.1:6443/clusters/dev`.
    pub server: String,
    /// Bearer token the cluster accepts.
    pub token: String,
}

#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
struct Kubeconfig<'a> {
    #[serde(rename = "apiVersion")]
    api_version: &'static str,
    kind: &'static str,
    clusters: Vec<Named<'a, ClusterEntry<'a>>>,
    users: Vec<Named<'a, UserEntry<'a>>>,
    contexts: Vec<Named<'a, ContextEntry<'a>>>,
    current_context: &'a str,
    preferences: Preferences,
}

#[derive(Serialize)]
struct Preferences {}

#[derive(Serialize)]
struct Named<'a, T> {
    name: &'a str,
    #[serde(flatten)]
    entry: T,
}

#[derive(Serialize)]
struct ClusterEntry<'a> {
    cluster: Cluster<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
struct Cluster<'a> {
    server: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    certificate_authority_data: Option<&'a str>,
}

#[derive(Serialize)]
struct UserEntry<'a> {
    user: User<'a>,
}

#[derive(Serialize)]
struct User<'a> {
    token: &'a str,
}

#[derive(Serialize)]
struct ContextEntry<'a> {
    context: Context<'a>,
}

#[derive(Serialize)]
struct Context<'a> {
    cluster: &'a str,
    user: &'a str,
}

/// Kubeconfig YAML with one cluster, user and context (named after the cluster) per endpoint.
///
/// `ca_pem`, when given, is embedded base64-encoded as `certificate-authority-data` of every
/// cluster. `current-context` is `current` when given, else the first endpoint's name (empty
/// when there are no endpoints).
pub fn kubeconfig(
    clusters: &[ClusterEndpoint],
    ca_pem: Option<&str>,
    current: Option<&str>,
) -> String {
    let ca_data =
        ca_pem.map(|pem| base64::engine::general_purpose::STANDARD.encode(pem.as_bytes()));
    let config = Kubeconfig {
        api_version: "v1",
        kind: "Config",
        clusters: clusters
            .iter()
            .map(|c| Named {
                name: &c.name,
                entry: ClusterEntry {
                    cluster: Cluster {
                        server: &c.server,
                        certificate_authority_data: ca_data.as_deref(),
                    },
                },
            })
            .collect(),
        users: clusters
            .iter()
            .map(|c| Named {
                name: &c.name,
                entry: UserEntry {
                    user: User { token: &c.token },
                },
            })
            .collect(),
        contexts: clusters
            .iter()
            .map(|c| Named {
                name: &c.name,
                entry: ContextEntry {
                    context: Context {
                        cluster: &c.name,
                        user: &c.name,
                    },
                },
            })
            .collect(),
        current_context: current
            .or_else(|| clusters.first().map(|c| c.name.as_str()))
            .unwrap_or_default(),
        preferences: Preferences {},
    };
    // Serialising plain structs of strings cannot fail; fall back to an empty document anyway.
    serde_yaml_ng::to_string(&config).unwrap_or_default()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn endpoints() -> Vec<ClusterEndpoint> {
        vec![
            ClusterEndpoint {
                name: "dev".into(),
                server: "https://127.0.0.1:6443/clusters/dev".into(),
                token: "t-dev".into(),
            },
            ClusterEndpoint {
                name: "prod: eu".into(),
                server: "https://127.0.0.1:6443/clusters/prod".into(),
                token: "t'\"prod".into(),
            },
        ]
    }

    fn parse(yaml: &str) -> Value {
        serde_yaml_ng::from_str(yaml).unwrap()
    }

    #[test]
    fn one_cluster_user_and_context_per_endpoint() {
        let pem = "-----BEGIN CERTIFICATE-----\nabc\n-----END CERTIFICATE-----\n";
        let doc = parse(&kubeconfig(&endpoints(), Some(pem), None));
        assert_eq!(doc["apiVersion"], "v1");
        assert_eq!(doc["kind"], "Config");
        assert_eq!(doc["current-context"], "dev");
        assert_eq!(doc["clusters"][1]["name"], "prod: eu");
        assert_eq!(
            doc["clusters"][1]["cluster"]["server"],
            "https://127.0.0.1:6443/clusters/prod"
        );
        let ca = doc["clusters"][0]["cluster"]["certificate-authority-data"]
            .as_str()
            .unwrap();
        assert_eq!(
            base64::engine::general_purpose::STANDARD
                .decode(ca)
                .unwrap(),
            pem.as_bytes()
        );
        assert_eq!(
            doc["users"][1],
            json!({"name": "prod: eu", "user": {"token": "t'\"prod"}})
        );
        assert_eq!(
            doc["contexts"][0],
            json!({"name": "dev", "context": {"cluster": "dev", "user": "dev"}})
        );
        assert_eq!(doc["contexts"].as_array().unwrap().len(), 2);
    }

    #[test]
    fn explicit_current_context_and_no_ca() {
        let doc = parse(&kubeconfig(&endpoints(), None, Some("prod: eu")));
        assert_eq!(doc["current-context"], "prod: eu");
        assert!(
            doc["clusters"][0]["cluster"]
                .get("certificate-authority-data")
                .is_none()
        );
    }

    #[test]
    fn no_endpoints_gives_an_empty_config() {
        let doc = parse(&kubeconfig(&[], None, None));
        assert_eq!(doc["clusters"], json!([]));
        assert_eq!(doc["current-context"], "");
    }
}
