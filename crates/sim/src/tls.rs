//! TLS for the simulator: a freshly generated self-signed CA (`keelson-sim-ca`) and a server
//! certificate it signs for the loopback names, packaged as a rustls `ServerConfig` using the
//! ring provider explicitly (never the process-wide default provider).

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use std::sync::Arc;

/// Common name of the simulator's CA.
pub const CA_NAME: &str = "keelson-sim-ca";

/// Names the server certificate is valid for.
pub const SERVER_NAMES: &[&str] = &["127.0.0.1", "::1", "localhost"];

/// A failure while generating the simulator's certificates or TLS configuration.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// Generating a key pair failed.
    #[error("generate key pair")]
    GenerateKey(#[source] rcgen::Error),
    /// Building or self-signing the CA certificate failed.
    #[error("create ca certificate")]
    CaCertificate(#[source] rcgen::Error),
    /// Building or signing the server certificate failed.
    #[error("create server certificate")]
    ServerCertificate(#[source] rcgen::Error),
    /// rustls rejected the configuration or the certificate.
    #[error("build tls server config")]
    ServerConfig(#[source] rustls::Error),
}

/// The simulator's TLS material.
#[derive(Clone)]
pub struct SimTls {
    /// The CA certificate (PEM) clients must trust.
    pub ca_pem: String,
    /// The server certificate (PEM), signed by the CA.
    pub server_cert_pem: String,
    /// Server configuration offering ALPN `h2` and `http/1.1`.
    pub server_config: Arc<rustls::ServerConfig>,
}

impl std::fmt::Debug for SimTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimTls")
            .field("ca_pem", &self.ca_pem)
            .finish_non_exhaustive()
    }
}

/// Generate a new CA and server certificate and the rustls server configuration using them.
pub fn generate() -> Result<SimTls, TlsError> {
    let ca_key = KeyPair::generate().map_err(TlsError::GenerateKey)?;
    let mut ca_params =
        CertificateParams::new(Vec::<String>::new()).map_err(TlsError::CaCertificate)?;
    ca_params
        .distinguished_name
        .push(DnType::CommonName, CA_NAME);
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca = CertifiedIssuer::self_signed(ca_params, ca_key).map_err(TlsError::CaCertificate)?;

    let server_key = KeyPair::generate().map_err(TlsError::GenerateKey)?;
    let names: Vec<String> = SERVER_NAMES.iter().map(|s| (*s).to_owned()).collect();
    let mut server_params = CertificateParams::new(names).map_err(TlsError::ServerCertificate)?;
    server_params
        .distinguished_name
        .push(DnType::CommonName, "keelson-sim");
    server_params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    server_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let server_cert = server_params
        .signed_by(&server_key, &ca)
        .map_err(TlsError::ServerCertificate)?;

    let chain: Vec<CertificateDer<'static>> = vec![server_cert.der().clone(), ca.der().clone()];
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(server_key.serialize_der()));
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(TlsError::ServerConfig)?
    .with_no_client_auth()
    .with_single_cert(chain, key)
    .map_err(TlsError::ServerConfig)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(SimTls {
        ca_pem: ca.pem(),
        server_cert_pem: server_cert.pem(),
        server_config: Arc::new(config),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use rustls::pki_types::ServerName;
    use rustls::pki_types::pem::PemObject;
    use std::time::Duration;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpStream};

    fn client_config(ca_pem: &str) -> rustls::ClientConfig {
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(CertificateDer::from_pem_slice(ca_pem.as_bytes()).unwrap())
            .unwrap();
        let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
        config.alpn_protocols = vec![b"h2".to_vec()];
        config
    }

    /// Serve one TLS connection on `addr` and connect to it as `server_name`; returns the
    /// negotiated ALPN protocol and the bytes the server sent.
    async fn handshake(
        tls: &SimTls,
        bind: &str,
        server_name: &str,
    ) -> anyhow::Result<(Option<Vec<u8>>, Vec<u8>)> {
        let listener = TcpListener::bind(bind).await?;
        let addr = listener.local_addr()?;
        let acceptor = tokio_rustls::TlsAcceptor::from(tls.server_config.clone());
        let server = tokio::spawn(async move {
            let (tcp, _) = listener.accept().await?;
            let mut stream = acceptor.accept(tcp).await?;
            stream.write_all(b"hello").await?;
            stream.shutdown().await?;
            anyhow::Ok(())
        });
        let connector = tokio_rustls::TlsConnector::from(Arc::new(client_config(&tls.ca_pem)));
        let tcp = TcpStream::connect(addr).await?;
        let name = ServerName::try_from(server_name.to_owned())?;
        let mut stream = connector.connect(name, tcp).await?;
        let alpn = stream.get_ref().1.alpn_protocol().map(<[u8]>::to_vec);
        let mut received = Vec::new();
        stream.read_to_end(&mut received).await?;
        server.await??;
        Ok((alpn, received))
    }

    #[tokio::test]
    async fn client_trusting_the_ca_completes_a_handshake() {
        let tls = generate().unwrap();
        assert!(tls.ca_pem.starts_with("-----BEGIN CERTIFICATE-----"));
        let run = async {
            for name in ["127.0.0.1", "localhost"] {
                let (alpn, received) = handshake(&tls, "127.0.0.1:0", name).await.unwrap();
                assert_eq!(alpn.as_deref(), Some(&b"h2"[..]), "{name}");
                assert_eq!(received, b"hello", "{name}");
            }
            if std::net::TcpListener::bind("[::1]:0").is_ok() {
                let (_, received) = handshake(&tls, "[::1]:0", "::1").await.unwrap();
                assert_eq!(received, b"hello");
            }
        };
        tokio::time::timeout(Duration::from_secs(30), run)
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn other_names_and_other_cas_are_rejected() {
        let tls = generate().unwrap();
        let other = generate().unwrap();
        assert_ne!(tls.ca_pem, other.ca_pem);
        let run = async {
            assert!(handshake(&tls, "127.0.0.1:0", "example.com").await.is_err());
            let mixed = SimTls {
                ca_pem: other.ca_pem.clone(),
                ..tls.clone()
            };
            assert!(handshake(&mixed, "127.0.0.1:0", "127.0.0.1").await.is_err());
        };
        tokio::time::timeout(Duration::from_secs(30), run)
            .await
            .unwrap();
    }
}
