//! Minimal blocking HTTP/1.1 GET over plain TCP or rustls, for readiness probes that run
//! before any async runtime exists. Also PEM certificate loading shared by the clients.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};

/// Time budget for one probe request (connect, write, read).
const PROBE_TIMEOUT: Duration = Duration::from_secs(3);

/// Largest response body a probe reads.
const MAX_RESPONSE: u64 = 1024 * 1024;

/// A probe's result: status code and body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeResponse {
    /// HTTP status code.
    pub status: u16,
    /// Response body (chunked encoding not decoded; probes only look for substrings).
    pub body: String,
}

/// `GET http://<addr><path>`; errors are returned as text for readiness loops.
pub fn http_get(addr: SocketAddr, path: &str) -> Result<ProbeResponse, String> {
    let mut stream = connect(addr)?;
    exchange(&mut stream, addr, path, None)
}

/// `GET https://<addr><path>` trusting only the certificates in `ca_pem`, with an optional
/// bearer token; errors are returned as text for readiness loops.
pub fn https_get(
    addr: SocketAddr,
    path: &str,
    ca_pem: &[u8],
    token: Option<&str>,
) -> Result<ProbeResponse, String> {
    let mut roots = rustls::RootCertStore::empty();
    let certs = pem_certificates(ca_pem);
    if certs.is_empty() {
        return Err("no certificate in the CA bundle".to_string());
    }
    roots.add_parsable_certificates(certs);
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("tls configuration: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let server_name = ServerName::IpAddress(addr.ip().into());
    let conn = rustls::ClientConnection::new(Arc::new(config), server_name)
        .map_err(|e| format!("tls client: {e}"))?;
    let tcp = connect(addr)?;
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    exchange(&mut tls, addr, path, token)
}

/// Parses every certificate in a PEM bundle (DER bytes), skipping anything else.
pub fn pem_certificates(pem: &[u8]) -> Vec<CertificateDer<'static>> {
    CertificateDer::pem_slice_iter(pem)
        .filter_map(|c| c.ok())
        .collect()
}

fn connect(addr: SocketAddr) -> Result<TcpStream, String> {
    let stream = TcpStream::connect_timeout(&addr, PROBE_TIMEOUT)
        .map_err(|e| format!("connect {addr}: {e}"))?;
    stream
        .set_read_timeout(Some(PROBE_TIMEOUT))
        .and_then(|()| stream.set_write_timeout(Some(PROBE_TIMEOUT)))
        .map_err(|e| format!("socket timeouts: {e}"))?;
    Ok(stream)
}

fn exchange(
    stream: &mut impl ReadWrite,
    addr: SocketAddr,
    path: &str,
    token: Option<&str>,
) -> Result<ProbeResponse, String> {
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\n{auth}Accept: */*\r\nConnection: close\r\n\r\n"
    );
    stream
        .write_all(request.as_bytes())
        .and_then(|()| stream.flush())
        .map_err(|e| format!("write to {addr}: {e}"))?;
    let mut raw = Vec::new();
    let read = stream.take(MAX_RESPONSE).read_to_end(&mut raw);
    // A TLS peer closing without close_notify still delivered a complete response.
    if let Err(e) = read
        && raw.is_empty()
    {
        return Err(format!("read from {addr}: {e}"));
    }
    parse_response(&raw)
}

trait ReadWrite: Read + Write {}
impl<T: Read + Write> ReadWrite for T {}

/// Splits a raw HTTP/1.1 response into status code and body.
fn parse_response(raw: &[u8]) -> Result<ProbeResponse, String> {
    let text = String::from_utf8_lossy(raw);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| format!("incomplete http response: {text:?}"))?;
    let status_line = head.lines().next().unwrap_or_default();
    let status = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse::<u16>().ok())
        .ok_or_else(|| format!("bad status line {status_line:?}"))?;
    Ok(ProbeResponse {
        status,
        body: body.to_string(),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    #[test]
    fn parses_status_and_body() {
        let r = parse_response(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok").unwrap();
        assert_eq!(r.status, 200);
        assert_eq!(r.body, "ok");
        assert!(parse_response(b"HTTP/1.1 200").is_err());
        assert!(parse_response(b"garbage\r\n\r\n").is_err());
    }

    #[test]
    fn plain_get_against_a_local_listener() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            let mut buf = [0u8; 1024];
            let n = s.read(&mut buf).unwrap();
            let req = String::from_utf8_lossy(&buf[..n]).to_string();
            s.write_all(b"HTTP/1.1 503 Service Unavailable\r\n\r\nnope")
                .unwrap();
            req
        });
        let r = http_get(addr, "/health").unwrap();
        assert_eq!(r.status, 503);
        assert_eq!(r.body, "nope");
        assert!(
            server
                .join()
                .unwrap()
                .starts_with("GET /health HTTP/1.1\r\n")
        );
    }

    #[test]
    fn connection_refused_is_a_text_error() {
        let port = crate::ports::free_port().unwrap();
        let err = http_get(([127, 0, 0, 1], port).into(), "/").unwrap_err();
        assert!(err.contains("connect"), "{err}");
    }
}
