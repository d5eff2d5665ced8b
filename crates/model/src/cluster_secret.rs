//! Cluster Secrets (`argocd.argoproj.io/secret-type: cluster`): typed parsing into
//! [`ClusterSpec`] and conversion of its connection settings into a `kube::Config`.

use std::collections::BTreeMap;
use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use k8s_openapi::api::core::v1::Secret;
use kube::config::AuthInfo;
use serde::Deserialize;

use crate::annotations::SECRET_TYPE_CLUSTER;
use crate::secret_data::{SecretDataError, expect_secret_type, secret_display_name, secret_fields};

/// Address of the cluster Argo CD itself runs in.
pub const IN_CLUSTER_SERVER: &str = "https://kubernetes.default.svc";

/// Errors from parsing a cluster Secret or converting it to a kube config.
#[derive(Debug, thiserror::Error)]
pub enum ClusterSecretError {
    /// The Secret's type label or data could not be read.
    #[error("read cluster secret {secret}")]
    ReadSecret {
        /// `namespace/name` of the Secret.
        secret: String,
        /// Underlying error.
        #[source]
        source: SecretDataError,
    },
    /// The `server` field is missing or empty.
    #[error("cluster secret {secret} has no server")]
    MissingServer {
        /// `namespace/name` of the Secret.
        secret: String,
    },
    /// The `shard` field is not an integer.
    #[error("cluster secret {secret} has invalid shard {value:?}")]
    ParseShard {
        /// `namespace/name` of the Secret.
        secret: String,
        /// The rejected value.
        value: String,
        /// Underlying error.
        #[source]
        source: std::num::ParseIntError,
    },
    /// The `config` field is not valid JSON of the expected shape.
    #[error("cluster secret {secret} has invalid config json")]
    ParseConfig {
        /// `namespace/name` of the Secret.
        secret: String,
        /// Underlying error.
        #[source]
        source: serde_json::Error,
    },
    /// A base64 field of `config.tlsClientConfig` does not decode.
    #[error("cluster secret {secret} has invalid base64 in config.tlsClientConfig.{field}")]
    DecodeTlsField {
        /// `namespace/name` of the Secret.
        secret: String,
        /// `caData`, `certData` or `keyData`.
        field: &'static str,
        /// Underlying error.
        #[source]
        source: base64::DecodeError,
    },
    /// The server URL is not a valid URI.
    #[error("cluster {name} has invalid server url {server:?}")]
    ParseServerUrl {
        /// Cluster name.
        name: String,
        /// The server value.
        server: String,
        /// Underlying error.
        #[source]
        source: http::uri::InvalidUri,
    },
    /// The proxy URL is not a valid URI.
    #[error("cluster {name} has invalid proxy url {proxy:?}")]
    ParseProxyUrl {
        /// Cluster name.
        name: String,
        /// The proxy value.
        proxy: String,
        /// Underlying error.
        #[source]
        source: http::uri::InvalidUri,
    },
    /// `caData` is not PEM.
    #[error("cluster {name} has unreadable ca data")]
    ReadCaPem {
        /// Cluster name.
        name: String,
        /// Underlying error.
        #[source]
        source: std::io::Error,
    },
    /// `caData` holds no PEM certificate.
    #[error("cluster {name} ca data holds no pem certificate")]
    CaWithoutCertificates {
        /// Cluster name.
        name: String,
    },
    /// Only one of `certData` / `keyData` is set.
    #[error("cluster {name} sets only one of certData and keyData")]
    ClientCertPair {
        /// Cluster name.
        name: String,
    },
    /// `execProviderConfig` is set; Keelson does not run exec credential plugins.
    #[error("cluster {name} uses execProviderConfig, which keelson does not support")]
    UnsupportedExecProvider {
        /// Cluster name.
        name: String,
    },
    /// `awsAuthConfig` is set; Keelson does not obtain AWS IAM tokens.
    #[error("cluster {name} uses awsAuthConfig, which keelson does not support")]
    UnsupportedAwsAuth {
        /// Cluster name.
        name: String,
    },
    /// The kube auth settings could not be built.
    #[error("build kube auth info for cluster {name}")]
    BuildAuthInfo {
        /// Cluster name.
        name: String,
        /// Underlying error.
        #[source]
        source: serde_json::Error,
    },
}

/// A cluster registered with Argo CD, parsed from its Secret.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ClusterSpec {
    /// `namespace/name` of the Secret it came from.
    pub secret: String,
    /// Cluster name (`name` field; may be empty).
    pub name: String,
    /// API server URL (`server` field).
    pub server: String,
    /// Namespaces Argo CD may manage (`namespaces`, comma-separated); empty means all.
    pub namespaces: Vec<String>,
    /// With a namespace list, whether cluster-scoped resources are managed too.
    pub cluster_resources: bool,
    /// Explicit controller shard.
    pub shard: Option<i64>,
    /// Project the cluster is scoped to.
    pub project: Option<String>,
    /// Labels of the Secret (used by the ApplicationSet cluster generator).
    pub labels: BTreeMap<String, String>,
    /// Annotations of the Secret.
    pub annotations: BTreeMap<String, String>,
    /// Connection settings (`config` JSON).
    pub config: ClusterConfig,
}

/// Connection settings of a cluster (`config` JSON of the Secret).
#[derive(Clone, PartialEq, Default)]
pub struct ClusterConfig {
    /// Bearer token.
    pub bearer_token: Option<String>,
    /// Basic-auth user.
    pub username: Option<String>,
    /// Basic-auth password.
    pub password: Option<String>,
    /// TLS settings.
    pub tls_client_config: TlsClientConfig,
    /// Exec credential plugin (parsed; not supported by [`ClusterSpec::to_kube_config`]).
    pub exec_provider_config: Option<ExecProviderConfig>,
    /// AWS IAM authentication (parsed; not supported by [`ClusterSpec::to_kube_config`]).
    pub aws_auth_config: Option<AwsAuthConfig>,
    /// Proxy URL.
    pub proxy_url: Option<String>,
    /// Disable response compression.
    pub disable_compression: bool,
}

impl fmt::Debug for ClusterConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClusterConfig")
            .field(
                "bearer_token",
                &self.bearer_token.as_ref().map(|_| "<redacted>"),
            )
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("tls_client_config", &self.tls_client_config)
            .field("exec_provider_config", &self.exec_provider_config)
            .field("aws_auth_config", &self.aws_auth_config)
            .field("proxy_url", &self.proxy_url)
            .field("disable_compression", &self.disable_compression)
            .finish()
    }
}

/// TLS settings of a cluster; the PEM fields are already base64-decoded.
#[derive(Clone, PartialEq, Default)]
pub struct TlsClientConfig {
    /// Skip server certificate verification.
    pub insecure: bool,
    /// Server name to verify instead of the URL host.
    pub server_name: Option<String>,
    /// PEM CA bundle.
    pub ca_data: Option<Vec<u8>>,
    /// PEM client certificate.
    pub cert_data: Option<Vec<u8>>,
    /// PEM client key.
    pub key_data: Option<Vec<u8>>,
}

impl fmt::Debug for TlsClientConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsClientConfig")
            .field("insecure", &self.insecure)
            .field("server_name", &self.server_name)
            .field("ca_data", &self.ca_data.as_ref().map(Vec::len))
            .field("cert_data", &self.cert_data.as_ref().map(Vec::len))
            .field("key_data", &self.key_data.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// Exec credential plugin settings (`config.execProviderConfig`).
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExecProviderConfig {
    /// Command to run.
    #[serde(default)]
    pub command: String,
    /// Arguments.
    #[serde(default)]
    pub args: Vec<String>,
    /// Extra environment.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// `client.authentication.k8s.io` API version.
    #[serde(default)]
    pub api_version: Option<String>,
    /// Hint printed when the command is missing.
    #[serde(default)]
    pub install_hint: Option<String>,
}

/// AWS IAM authentication settings (`config.awsAuthConfig`).
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
pub struct AwsAuthConfig {
    /// EKS cluster name.
    #[serde(rename = "clusterName", default)]
    pub cluster_name: String,
    /// Role to assume.
    #[serde(rename = "roleARN", default)]
    pub role_arn: Option<String>,
    /// AWS profile.
    #[serde(default)]
    pub profile: Option<String>,
}

/// The `config` JSON as written, before base64 decoding.
#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct RawClusterConfig {
    bearer_token: Option<String>,
    username: Option<String>,
    password: Option<String>,
    #[serde(default)]
    tls_client_config: RawTlsClientConfig,
    exec_provider_config: Option<ExecProviderConfig>,
    aws_auth_config: Option<AwsAuthConfig>,
    proxy_url: Option<String>,
    #[serde(default)]
    disable_compression: bool,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct RawTlsClientConfig {
    #[serde(default)]
    insecure: bool,
    server_name: Option<String>,
    ca_data: Option<String>,
    cert_data: Option<String>,
    key_data: Option<String>,
}

impl ClusterSpec {
    /// Parses a cluster Secret. Requires the `cluster` secret-type label and a `server`;
    /// `config` may be absent (no credentials).
    pub fn from_secret(secret: &Secret) -> Result<Self, ClusterSecretError> {
        let display = secret_display_name(secret);
        let read_err = |source| ClusterSecretError::ReadSecret {
            secret: display.clone(),
            source,
        };
        expect_secret_type(secret, SECRET_TYPE_CLUSTER).map_err(read_err)?;
        let fields = secret_fields(secret).map_err(read_err)?;
        let field = |key: &str| fields.get(key).map(|v| v.trim()).filter(|v| !v.is_empty());
        let server = field("server")
            .ok_or_else(|| ClusterSecretError::MissingServer {
                secret: display.clone(),
            })?
            .to_owned();
        let shard = field("shard")
            .map(|value| {
                value
                    .parse::<i64>()
                    .map_err(|source| ClusterSecretError::ParseShard {
                        secret: display.clone(),
                        value: value.to_owned(),
                        source,
                    })
            })
            .transpose()?;
        let config = match field("config") {
            Some(json) => parse_config(&display, json)?,
            None => ClusterConfig::default(),
        };
        let namespaces = field("namespaces")
            .map(|list| {
                list.split(',')
                    .map(str::trim)
                    .filter(|n| !n.is_empty())
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default();
        Ok(ClusterSpec {
            name: field("name").unwrap_or_default().to_owned(),
            server,
            namespaces,
            cluster_resources: field("clusterResources") == Some("true"),
            shard,
            project: field("project").map(str::to_owned),
            labels: secret.metadata.labels.clone().unwrap_or_default(),
            annotations: secret.metadata.annotations.clone().unwrap_or_default(),
            config,
            secret: display,
        })
    }

    /// Whether this is the cluster Argo CD runs in, addressed by its in-cluster URL.
    pub fn is_in_cluster(&self) -> bool {
        self.server.trim_end_matches('/') == IN_CLUSTER_SERVER
    }

    /// Name for messages: the cluster name, or the server URL when unnamed.
    pub fn display_name(&self) -> &str {
        if self.name.is_empty() {
            &self.server
        } else {
            &self.name
        }
    }

    /// Builds a kube client configuration: server URL, bearer or basic auth, CA roots,
    /// client certificate identity, `insecure` and `serverName`, proxy, compression.
    /// Exec and AWS auth are rejected. An in-cluster secret without credentials yields a
    /// config without credentials; callers wanting the pod's service account should use
    /// `kube::Config::incluster()` instead (see [`ClusterSpec::is_in_cluster`]).
    pub fn to_kube_config(&self) -> Result<kube::Config, ClusterSecretError> {
        let name = self.display_name().to_owned();
        let url = self.server.parse::<http::Uri>().map_err(|source| {
            ClusterSecretError::ParseServerUrl {
                name: name.clone(),
                server: self.server.clone(),
                source,
            }
        })?;
        let mut config = kube::Config::new(url);
        let tls = &self.config.tls_client_config;
        config.accept_invalid_certs = tls.insecure;
        config.tls_server_name = tls.server_name.clone();
        config.disable_compression = self.config.disable_compression;
        if let Some(ca) = &tls.ca_data {
            config.root_cert = Some(pem_certificates(&name, ca)?);
        }
        if let Some(proxy) = &self.config.proxy_url {
            let uri = proxy
                .parse()
                .map_err(|source| ClusterSecretError::ParseProxyUrl {
                    name: name.clone(),
                    proxy: proxy.clone(),
                    source,
                })?;
            config.proxy_url = Some(uri);
        }
        config.auth_info = self.auth_info(&name)?;
        Ok(config)
    }

    fn auth_info(&self, name: &str) -> Result<AuthInfo, ClusterSecretError> {
        let cfg = &self.config;
        if cfg.exec_provider_config.is_some() {
            return Err(ClusterSecretError::UnsupportedExecProvider {
                name: name.to_owned(),
            });
        }
        if cfg.aws_auth_config.is_some() {
            return Err(ClusterSecretError::UnsupportedAwsAuth {
                name: name.to_owned(),
            });
        }
        let tls = &cfg.tls_client_config;
        let mut auth = serde_json::Map::new();
        let mut put = |key: &str, value: Option<String>| {
            if let Some(value) = value.filter(|v| !v.is_empty()) {
                auth.insert(key.to_owned(), serde_json::Value::String(value));
            }
        };
        put("token", cfg.bearer_token.clone());
        put("username", cfg.username.clone());
        put("password", cfg.password.clone());
        match (&tls.cert_data, &tls.key_data) {
            (Some(cert), Some(key)) => {
                put("client-certificate-data", Some(STANDARD.encode(cert)));
                put("client-key-data", Some(STANDARD.encode(key)));
            }
            (None, None) => {}
            _ => {
                return Err(ClusterSecretError::ClientCertPair {
                    name: name.to_owned(),
                });
            }
        }
        serde_json::from_value(serde_json::Value::Object(auth)).map_err(|source| {
            ClusterSecretError::BuildAuthInfo {
                name: name.to_owned(),
                source,
            }
        })
    }
}

fn parse_config(secret: &str, json: &str) -> Result<ClusterConfig, ClusterSecretError> {
    let raw: RawClusterConfig =
        serde_json::from_str(json).map_err(|source| ClusterSecretError::ParseConfig {
            secret: secret.to_owned(),
            source,
        })?;
    let decode = |field: &'static str,
                  value: Option<String>|
     -> Result<Option<Vec<u8>>, ClusterSecretError> {
        match value.filter(|v| !v.trim().is_empty()) {
            None => Ok(None),
            Some(text) => STANDARD.decode(text.trim()).map(Some).map_err(|source| {
                ClusterSecretError::DecodeTlsField {
                    secret: secret.to_owned(),
                    field,
                    source,
                }
            }),
        }
    };
    let tls = raw.tls_client_config;
    Ok(ClusterConfig {
        bearer_token: raw.bearer_token,
        username: raw.username,
        password: raw.password,
        tls_client_config: TlsClientConfig {
            insecure: tls.insecure,
            server_name: tls.server_name.filter(|s| !s.is_empty()),
            ca_data: decode("caData", tls.ca_data)?,
            cert_data: decode("certData", tls.cert_data)?,
            key_data: decode("keyData", tls.key_data)?,
        },
        exec_provider_config: raw.exec_provider_config,
        aws_auth_config: raw.aws_auth_config,
        proxy_url: raw.proxy_url.filter(|p| !p.is_empty()),
        disable_compression: raw.disable_compression,
    })
}

/// DER certificates from a PEM bundle.
fn pem_certificates(name: &str, pem: &[u8]) -> Result<Vec<Vec<u8>>, ClusterSecretError> {
    let mut reader = pem;
    let mut certs = Vec::new();
    for cert in rustls_pemfile::certs(&mut reader) {
        let cert = cert.map_err(|source| ClusterSecretError::ReadCaPem {
            name: name.to_owned(),
            source,
        })?;
        certs.push(cert.to_vec());
    }
    if certs.is_empty() {
        return Err(ClusterSecretError::CaWithoutCertificates {
            name: name.to_owned(),
        });
    }
    Ok(certs)
}

/// A cluster Secret for a bearer-token connection, as `argocd cluster add` writes one:
/// named `cluster-<name>`, labelled as a cluster Secret, with `name`, `server` and a
/// `config` holding the token and either the CA (`caData`) or `insecure: true`. The
/// inverse of [`ClusterSpec::from_secret`] for this kind of credential.
pub fn bearer_token_secret(
    namespace: &str,
    name: &str,
    server: &str,
    token: &str,
    ca_pem: Option<&[u8]>,
) -> Secret {
    let tls = match ca_pem {
        Some(pem) => serde_json::json!({ "caData": STANDARD.encode(pem) }),
        None => serde_json::json!({ "insecure": true }),
    };
    let config = serde_json::json!({ "bearerToken": token, "tlsClientConfig": tls });
    Secret {
        metadata: k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
            name: Some(format!("cluster-{name}")),
            namespace: Some(namespace.to_owned()),
            labels: Some(BTreeMap::from([(
                crate::annotations::SECRET_TYPE.to_owned(),
                SECRET_TYPE_CLUSTER.to_owned(),
            )])),
            ..Default::default()
        },
        string_data: Some(BTreeMap::from([
            ("name".to_owned(), name.to_owned()),
            ("server".to_owned(), server.to_owned()),
            ("config".to_owned(), config.to_string()),
        ])),
        ..Secret::default()
    }
}
