//! `keelson repo-server` as a separate process on free loopback ports, with the tools
//! from `.tools/bin` (helm, kubectl), for end-to-end tests of the pool and the cache.

use crate::error::{Result, TestbedError};
use crate::process::ChildGuard;
use crate::sim::{keelson_bin, ready_line};
use crate::tools::find_tool;
use std::net::SocketAddr;
use std::process::Command;
use std::time::Duration;
use tempfile::TempDir;

/// How long a repo-server may take to print its ready line.
pub const REPO_SERVER_READY_TIMEOUT: Duration = Duration::from_secs(30);

/// A running repo-server process, killed on drop.
#[derive(Debug)]
pub struct RepoServerProcess {
    process: ChildGuard,
    grpc: SocketAddr,
    metrics: SocketAddr,
    _dir: TempDir,
}

impl RepoServerProcess {
    /// Starts `keelson repo-server` on free ports with `extra_args` (e.g. Redis flags).
    pub fn start(extra_args: &[&str]) -> Result<RepoServerProcess> {
        let bin = keelson_bin()?;
        let dir = tempfile::Builder::new()
            .prefix("keelson-repo-server-")
            .tempdir()
            .map_err(|source| TestbedError::Io {
                step: "creating the repo-server temp dir",
                path: std::env::temp_dir().display().to_string(),
                source,
            })?;
        let mut cmd = Command::new(bin);
        cmd.arg("repo-server")
            .args(["--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0"])
            .arg("--mirror-dir")
            .arg(dir.path().join("mirrors"))
            .arg("--helm-path")
            .arg(find_tool("helm")?)
            .arg("--kubectl-path")
            .arg(find_tool("kubectl")?)
            .args(extra_args)
            .env("KEELSON_LOG", "warn");
        let mut process = ChildGuard::spawn("keelson-repo-server", cmd, dir.path())?;
        let stdout = process.stdout_path().to_path_buf();
        let line = process.wait_ready(REPO_SERVER_READY_TIMEOUT, || ready_line(&stdout))?;
        let parsed: serde_json::Value =
            serde_json::from_str(&line).map_err(|e| TestbedError::Protocol {
                component: "keelson-repo-server".into(),
                detail: format!("ready line {line:?}: {e}"),
            })?;
        let addr = |key: &str| -> Result<SocketAddr> {
            parsed[key]
                .as_str()
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| TestbedError::Protocol {
                    component: "keelson-repo-server".into(),
                    detail: format!("ready line lacks {key}: {line}"),
                })
        };
        Ok(RepoServerProcess {
            grpc: addr("grpc")?,
            metrics: addr("metrics")?,
            process,
            _dir: dir,
        })
    }

    /// The gRPC address.
    pub fn grpc_addr(&self) -> SocketAddr {
        self.grpc
    }

    /// The metrics address (`/metrics`, `/healthz`, `/readyz`).
    pub fn metrics_addr(&self) -> SocketAddr {
        self.metrics
    }

    /// The process (kill, pause, logs).
    pub fn process(&mut self) -> &mut ChildGuard {
        &mut self.process
    }
}
