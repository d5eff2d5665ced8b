//! A real kube-apiserver (v1.20.2 from `.tools/bin`) on its own etcd, with a self-signed
//! serving certificate, one `system:masters` bearer token, and a kubeconfig for `kubectl`.
//!
//! Starting one takes about 5 s and ~300 MB of memory. Tests that need it FAIL (never skip)
//! when the binary is missing: run `scripts/install-deps`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use tempfile::TempDir;

use crate::error::{Result, TestbedError};
use crate::etcd::Etcd;
use crate::kubeconfig::{KubeconfigEntry, build_client, write_kubeconfig};
use crate::ports::{free_port, retry_port_conflicts};
use crate::probe::https_get;
use crate::process::{ChildGuard, run_checked};
use crate::tools::find_tool;

/// How long `KubeApiServer::start` waits for `/readyz`.
pub const APISERVER_READY_TIMEOUT: Duration = Duration::from_secs(60);

/// Time budget for each `openssl` invocation.
const OPENSSL_TIMEOUT: Duration = Duration::from_secs(30);

/// The user name bound to the admin token.
pub const ADMIN_USER: &str = "testbed-admin";

/// A running kube-apiserver and its etcd; both are killed when dropped.
#[derive(Debug)]
pub struct KubeApiServer {
    // Field order is drop order: apiserver, then etcd, then the temp dir.
    process: ChildGuard,
    etcd: Etcd,
    addr: SocketAddr,
    token: String,
    ca_pem: Vec<u8>,
    kubeconfig: PathBuf,
    dir: TempDir,
}

impl KubeApiServer {
    /// Starts etcd and kube-apiserver and waits until `/readyz` answers 200 (up to 60 s).
    pub fn start() -> Result<KubeApiServer> {
        KubeApiServer::start_with_args(&[])
    }

    /// Like [`KubeApiServer::start`], with extra kube-apiserver flags (e.g.
    /// `--watch-cache=false`).
    pub fn start_with_args(extra: &[&str]) -> Result<KubeApiServer> {
        let apiserver = find_tool("kube-apiserver")?;
        let openssl = find_tool("openssl")?;
        retry_port_conflicts(|| KubeApiServer::try_start(&apiserver, &openssl, extra))
    }

    fn try_start(apiserver: &Path, openssl: &Path, extra: &[&str]) -> Result<KubeApiServer> {
        let etcd = Etcd::start()?;
        let dir = tempfile::Builder::new()
            .prefix("keelson-apiserver-")
            .tempdir()
            .map_err(|source| TestbedError::Io {
                step: "creating the kube-apiserver temp dir",
                path: std::env::temp_dir().display().to_string(),
                source,
            })?;
        let paths = Paths::new(dir.path());
        std::fs::create_dir_all(&paths.cert_dir).map_err(|source| TestbedError::Io {
            step: "creating the cert dir",
            path: paths.cert_dir.display().to_string(),
            source,
        })?;
        generate_service_account_key(openssl, &paths)?;
        let token = random_token();
        write_file(
            &paths.token_file,
            format!("{token},{ADMIN_USER},{ADMIN_USER},\"system:masters\"\n").as_bytes(),
        )?;
        let addr = SocketAddr::from(([127, 0, 0, 1], free_port()?));
        let mut cmd = apiserver_command(apiserver, &paths, &etcd.endpoints(), addr);
        cmd.args(extra);
        let mut process = ChildGuard::spawn("kube-apiserver", cmd, dir.path())?;
        let ca_pem = process.wait_ready(APISERVER_READY_TIMEOUT, || {
            let ca = std::fs::read(&paths.serving_cert)
                .map_err(|e| format!("reading {}: {e}", paths.serving_cert.display()))?;
            let r = https_get(addr, "/readyz", &ca, Some(&token))?;
            if r.status == 200 {
                Ok(ca)
            } else {
                Err(format!(
                    "GET /readyz: {} {}",
                    r.status,
                    failing_checks(&r.body)
                ))
            }
        })?;
        let kubeconfig = dir.path().join("kubeconfig");
        let entry = KubeconfigEntry {
            name: "testbed",
            server: format!("https://{addr}"),
            token: &token,
            ca_pem: Some(&ca_pem),
        };
        write_kubeconfig(&kubeconfig, &entry)?;
        Ok(KubeApiServer {
            process,
            etcd,
            addr,
            token,
            ca_pem,
            kubeconfig,
            dir,
        })
    }

    /// The API URL, `https://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("https://{}", self.addr)
    }

    /// The secure listen address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The admin bearer token (group `system:masters`).
    pub fn token(&self) -> &str {
        &self.token
    }

    /// The self-signed serving certificate bundle (`apiserver.crt`), PEM.
    pub fn ca_pem(&self) -> &[u8] {
        &self.ca_pem
    }

    /// A kubeconfig (CA data embedded, admin token) usable by the real `kubectl`.
    pub fn kubeconfig_path(&self) -> &Path {
        &self.kubeconfig
    }

    /// A kube client authenticated as admin. Must be called inside a tokio runtime.
    pub fn client(&self) -> Result<kube::Client> {
        build_client(
            "kube-apiserver",
            &self.url(),
            &self.token,
            Some(&self.ca_pem),
        )
    }

    /// The etcd backing this server.
    pub fn etcd(&self) -> &Etcd {
        &self.etcd
    }

    /// The kube-apiserver process (logs, pause, kill).
    pub fn process(&mut self) -> &mut ChildGuard {
        &mut self.process
    }

    /// The temp dir holding certificates, keys, token file, kubeconfig and logs.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

/// Files the apiserver reads or writes inside its temp dir.
struct Paths {
    cert_dir: PathBuf,
    serving_cert: PathBuf,
    sa_key: PathBuf,
    sa_pub: PathBuf,
    token_file: PathBuf,
}

impl Paths {
    fn new(dir: &Path) -> Paths {
        let cert_dir = dir.join("certs");
        Paths {
            serving_cert: cert_dir.join("apiserver.crt"),
            cert_dir,
            sa_key: dir.join("sa.key"),
            sa_pub: dir.join("sa.pub"),
            token_file: dir.join("tokens.csv"),
        }
    }
}

fn generate_service_account_key(openssl: &Path, paths: &Paths) -> Result<()> {
    let mut genrsa = Command::new(openssl);
    genrsa
        .arg("genrsa")
        .arg("-traditional")
        .arg("-out")
        .arg(&paths.sa_key)
        .arg("2048");
    run_checked(genrsa, OPENSSL_TIMEOUT)?;
    let mut public = Command::new(openssl);
    public
        .arg("rsa")
        .arg("-in")
        .arg(&paths.sa_key)
        .arg("-pubout")
        .arg("-out")
        .arg(&paths.sa_pub);
    run_checked(public, OPENSSL_TIMEOUT)?;
    Ok(())
}

fn apiserver_command(
    apiserver: &Path,
    paths: &Paths,
    etcd_endpoints: &[String],
    addr: SocketAddr,
) -> Command {
    let mut cmd = Command::new(apiserver);
    cmd.arg(format!("--etcd-servers={}", etcd_endpoints.join(",")))
        .arg("--bind-address=127.0.0.1")
        .arg("--advertise-address=127.0.0.1")
        .arg(format!("--secure-port={}", addr.port()))
        .arg("--insecure-port=0")
        .arg(format!("--cert-dir={}", paths.cert_dir.display()))
        .arg(format!("--token-auth-file={}", paths.token_file.display()))
        .arg("--authorization-mode=RBAC")
        .arg(format!(
            "--service-account-key-file={}",
            paths.sa_pub.display()
        ))
        .arg(format!(
            "--service-account-signing-key-file={}",
            paths.sa_key.display()
        ))
        .arg("--service-account-issuer=https://kubernetes.default.svc")
        .arg("--service-cluster-ip-range=10.96.0.0/12")
        .arg("--endpoint-reconciler-type=none")
        .arg("--disable-admission-plugins=ServiceAccount")
        .arg("--enable-priority-and-fairness=false")
        .arg("--profiling=false")
        .arg("--logtostderr=true")
        .arg("--v=1");
    cmd
}

fn write_file(path: &Path, contents: &[u8]) -> Result<()> {
    std::fs::write(path, contents).map_err(|source| TestbedError::Io {
        step: "writing a file",
        path: path.display().to_string(),
        source,
    })
}

/// A 32-hex-digit token from the standard library's randomly seeded hasher.
fn random_token() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut out = String::new();
    for i in 0u64..2 {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u64(i);
        h.write_u128(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or_default(),
        );
        out.push_str(&format!("{:016x}", h.finish()));
    }
    out
}

/// The failing checks of a `/readyz` body (`[-]...` lines), else its last line.
fn failing_checks(body: &str) -> String {
    let failing: Vec<&str> = body.lines().filter(|l| l.starts_with("[-]")).collect();
    if failing.is_empty() {
        body.trim().lines().last().unwrap_or_default().to_string()
    } else {
        failing.join("; ")
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_distinct_hex() {
        let a = random_token();
        let b = random_token();
        assert_eq!(a.len(), 32);
        assert!(a.chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }
}
