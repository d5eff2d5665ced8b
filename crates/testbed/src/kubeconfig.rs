//! Kubeconfig files for `kubectl` and `kube::Client`s for the API servers the harness starts
//! (the real kube-apiserver and `keelson sim`), plus rustls crypto-provider setup.

use std::path::Path;

use base64::Engine as _;
use secrecy::SecretString;

use crate::error::{Result, TestbedError};
use crate::probe::pem_certificates;

/// Installs rustls' `ring` provider as the process default, which kube's rustls stack needs.
/// Safe to call any number of times; an already installed provider is kept.
pub fn install_crypto_provider() {
    // Err means some provider is already installed, which is all that is needed.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// One cluster/user/context triple to write into a kubeconfig.
#[derive(Debug, Clone)]
pub struct KubeconfigEntry<'a> {
    /// Name used for the cluster, user and context.
    pub name: &'a str,
    /// Server URL.
    pub server: String,
    /// Bearer token.
    pub token: &'a str,
    /// CA bundle (PEM) to embed; `None` for plain HTTP servers.
    pub ca_pem: Option<&'a [u8]>,
}

/// The kubeconfig document for one entry, as a JSON value (YAML is a superset).
pub fn kubeconfig_document(entry: &KubeconfigEntry<'_>) -> serde_json::Value {
    let mut cluster = serde_json::json!({ "server": entry.server });
    if let Some(ca) = entry.ca_pem {
        cluster["certificate-authority-data"] =
            serde_json::Value::String(base64::engine::general_purpose::STANDARD.encode(ca));
    }
    serde_json::json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{ "name": entry.name, "cluster": cluster }],
        "users": [{ "name": entry.name, "user": { "token": entry.token } }],
        "contexts": [{
            "name": entry.name,
            "context": { "cluster": entry.name, "user": entry.name, "namespace": "default" }
        }],
        "current-context": entry.name,
        "preferences": {}
    })
}

/// Writes a kubeconfig with a single entry to `path`.
pub fn write_kubeconfig(path: &Path, entry: &KubeconfigEntry<'_>) -> Result<()> {
    let yaml = serde_yaml_ng::to_string(&kubeconfig_document(entry)).map_err(|source| {
        TestbedError::Kubeconfig {
            path: path.display().to_string(),
            source,
        }
    })?;
    std::fs::write(path, yaml).map_err(|source| TestbedError::Io {
        step: "writing a kubeconfig",
        path: path.display().to_string(),
        source,
    })
}

/// Builds a kube client for `url` with a bearer token, trusting `ca_pem` when given.
/// Installs the crypto provider first. Must be called inside a tokio runtime.
pub fn build_client(
    component: &str,
    url: &str,
    token: &str,
    ca_pem: Option<&[u8]>,
) -> Result<kube::Client> {
    install_crypto_provider();
    let config = client_config(component, url, token, ca_pem)?;
    kube::Client::try_from(config).map_err(|source| TestbedError::Client {
        component: component.to_string(),
        source,
    })
}

/// The `kube::Config` [`build_client`] uses (no I/O; useful to tweak timeouts).
pub fn client_config(
    component: &str,
    url: &str,
    token: &str,
    ca_pem: Option<&[u8]>,
) -> Result<kube::Config> {
    let uri = url
        .parse::<http::Uri>()
        .map_err(|source| TestbedError::InvalidUrl {
            url: url.to_string(),
            source,
        })?;
    let mut config = kube::Config::new(uri);
    config.default_namespace = "default".to_string();
    config.auth_info.token = Some(SecretString::from(token.to_string()));
    if let Some(pem) = ca_pem {
        let certs: Vec<Vec<u8>> = pem_certificates(pem)
            .into_iter()
            .map(|c| c.as_ref().to_vec())
            .collect();
        if certs.is_empty() {
            return Err(TestbedError::NoCertificate {
                path: format!("CA bundle of {component}"),
            });
        }
        config.root_cert = Some(certs);
    }
    Ok(config)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn document_embeds_ca_and_token() {
        let entry = KubeconfigEntry {
            name: "c1",
            server: "https://127.0.0.1:6443".to_string(),
            token: "abc",
            ca_pem: Some(b"PEM"),
        };
        let doc = kubeconfig_document(&entry);
        assert_eq!(
            doc["clusters"][0]["cluster"]["server"],
            "https://127.0.0.1:6443"
        );
        assert_eq!(
            doc["clusters"][0]["cluster"]["certificate-authority-data"],
            "UEVN"
        );
        assert_eq!(doc["users"][0]["user"]["token"], "abc");
        assert_eq!(doc["current-context"], "c1");
    }

    #[test]
    fn plain_http_has_no_ca_data() {
        let entry = KubeconfigEntry {
            name: "c1",
            server: "http://127.0.0.1:1/clusters/c1".to_string(),
            token: "t",
            ca_pem: None,
        };
        let doc = kubeconfig_document(&entry);
        assert!(
            doc["clusters"][0]["cluster"]
                .get("certificate-authority-data")
                .is_none()
        );
    }

    #[test]
    fn config_rejects_a_bundle_without_certificates() {
        let err = client_config("x", "https://127.0.0.1:1", "t", Some(b"nothing")).unwrap_err();
        assert!(matches!(err, TestbedError::NoCertificate { .. }));
        let cfg = client_config("x", "http://127.0.0.1:1/clusters/c1", "t", None).unwrap();
        assert_eq!(cfg.cluster_url.path(), "/clusters/c1");
    }
}
