//! A single-member etcd (Debian's v3.4 `etcd`) on free loopback ports with a temp data dir.

use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use tempfile::TempDir;

use crate::error::{Result, TestbedError};
use crate::ports::{free_port, retry_port_conflicts};
use crate::probe::http_get;
use crate::process::ChildGuard;
use crate::tools::find_tool;

/// How long `Etcd::start` waits for `/health`.
pub const ETCD_READY_TIMEOUT: Duration = Duration::from_secs(30);

/// A running etcd; stopped (SIGKILL) and its data removed when dropped.
#[derive(Debug)]
pub struct Etcd {
    // Declared before `dir` so the process dies before its data dir is removed.
    process: ChildGuard,
    client_addr: SocketAddr,
    peer_addr: SocketAddr,
    dir: TempDir,
}

impl Etcd {
    /// Starts etcd and waits until `GET /health` reports `"health":"true"`.
    pub fn start() -> Result<Etcd> {
        retry_port_conflicts(Etcd::try_start)
    }

    fn try_start() -> Result<Etcd> {
        let etcd = find_tool("etcd")?;
        let dir = tempfile::Builder::new()
            .prefix("keelson-etcd-")
            .tempdir()
            .map_err(|source| TestbedError::Io {
                step: "creating the etcd temp dir",
                path: std::env::temp_dir().display().to_string(),
                source,
            })?;
        let client_addr = SocketAddr::from(([127, 0, 0, 1], free_port()?));
        let peer_addr = SocketAddr::from(([127, 0, 0, 1], free_port()?));
        let cmd = etcd_command(&etcd, dir.path(), client_addr, peer_addr);
        let mut process = ChildGuard::spawn("etcd", cmd, dir.path())?;
        process.wait_ready(ETCD_READY_TIMEOUT, || {
            let r = http_get(client_addr, "/health")?;
            if r.status == 200 && r.body.contains("\"health\":\"true\"") {
                Ok(())
            } else {
                Err(format!("GET /health: {} {}", r.status, r.body.trim()))
            }
        })?;
        Ok(Etcd {
            process,
            client_addr,
            peer_addr,
            dir,
        })
    }

    /// Client URLs, e.g. `["http://127.0.0.1:2379"]`.
    pub fn endpoints(&self) -> Vec<String> {
        vec![format!("http://{}", self.client_addr)]
    }

    /// The client listen address.
    pub fn client_addr(&self) -> SocketAddr {
        self.client_addr
    }

    /// The peer listen address.
    pub fn peer_addr(&self) -> SocketAddr {
        self.peer_addr
    }

    /// Whether `/health` answers healthy right now.
    pub fn is_healthy(&self) -> bool {
        http_get(self.client_addr, "/health")
            .map(|r| r.status == 200 && r.body.contains("\"health\":\"true\""))
            .unwrap_or(false)
    }

    /// The temp dir holding the data dir and logs.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The etcd process (pause, kill, logs).
    pub fn process(&mut self) -> &mut ChildGuard {
        &mut self.process
    }
}

fn etcd_command(etcd: &Path, dir: &Path, client: SocketAddr, peer: SocketAddr) -> Command {
    let client_url = format!("http://{client}");
    let peer_url = format!("http://{peer}");
    let mut cmd = Command::new(etcd);
    cmd.arg("--name=testbed")
        .arg(format!("--data-dir={}", dir.join("data").display()))
        .arg(format!("--listen-client-urls={client_url}"))
        .arg(format!("--advertise-client-urls={client_url}"))
        .arg(format!("--listen-peer-urls={peer_url}"))
        .arg(format!("--initial-advertise-peer-urls={peer_url}"))
        .arg(format!("--initial-cluster=testbed={peer_url}"))
        .arg("--initial-cluster-state=new")
        .arg("--logger=zap")
        .arg("--log-outputs=stderr")
        .arg("--log-level=warn");
    cmd
}
