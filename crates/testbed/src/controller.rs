//! `keelson controller` as a separate process against a management cluster's kubeconfig
//! and one or more repo-servers, for end-to-end tests: start, the metrics address from
//! its ready line, kill -9 (a crash) and restart with the same flags. Each run logs to its
//! own files (`keelson-controller-<run>.*.log`) so a restart keeps the earlier logs.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use tempfile::TempDir;

use crate::error::{Result, TestbedError};
use crate::process::ChildGuard;
use crate::sim::{keelson_bin, ready_line};

/// How long a controller may take to print its ready line.
pub const CONTROLLER_READY_TIMEOUT: Duration = Duration::from_secs(90);

/// Log filter of controller processes unless `KEELSON_CONTROLLER_TEST_LOG` overrides it.
const DEFAULT_LOG: &str = "info,keelson_controller=debug,keelson_sync=debug";

/// A running `keelson controller`, killed on drop.
#[derive(Debug)]
pub struct ControllerProcess {
    process: ChildGuard,
    metrics: SocketAddr,
    kubeconfig: PathBuf,
    repo_servers: Vec<SocketAddr>,
    extra_args: Vec<String>,
    run: usize,
    dir: TempDir,
}

impl ControllerProcess {
    /// Starts `keelson controller --kubeconfig <kubeconfig> --repo-server <addrs>
    /// --metrics-listen 127.0.0.1:0 <extra_args>` and waits for its ready line.
    pub fn start(
        kubeconfig: &Path,
        repo_servers: &[SocketAddr],
        extra_args: &[&str],
    ) -> Result<ControllerProcess> {
        let dir = tempfile::Builder::new()
            .prefix("keelson-controller-")
            .tempdir()
            .map_err(|source| TestbedError::Io {
                step: "creating the controller temp dir",
                path: std::env::temp_dir().display().to_string(),
                source,
            })?;
        let kubeconfig = kubeconfig.to_path_buf();
        let repo_servers = repo_servers.to_vec();
        let extra_args: Vec<String> = extra_args.iter().map(|s| (*s).to_string()).collect();
        let (process, metrics) = spawn(&kubeconfig, &repo_servers, &extra_args, 1, dir.path())?;
        Ok(ControllerProcess {
            process,
            metrics,
            kubeconfig,
            repo_servers,
            extra_args,
            run: 1,
            dir,
        })
    }

    /// The metrics address (`/metrics`, `/healthz`, `/readyz`) of the current run.
    pub fn metrics_addr(&self) -> SocketAddr {
        self.metrics
    }

    /// The operating-system process id of the current run.
    pub fn pid(&self) -> u32 {
        self.process.pid()
    }

    /// Kills the current run abruptly (SIGKILL), as a crash.
    pub fn kill9(&mut self) -> Result<()> {
        self.process.kill9()
    }

    /// Kills the current run (if still running) and starts a new one with the same flags.
    pub fn restart(&mut self) -> Result<()> {
        self.process.kill9()?;
        let run = self.run + 1;
        let (process, metrics) = spawn(
            &self.kubeconfig,
            &self.repo_servers,
            &self.extra_args,
            run,
            self.dir.path(),
        )?;
        self.process = process;
        self.metrics = metrics;
        self.run = run;
        Ok(())
    }

    /// The process of the current run (pause, logs).
    pub fn process(&mut self) -> &mut ChildGuard {
        &mut self.process
    }

    /// The last `n` lines of the current run's stdout and stderr.
    pub fn log_tail(&self, n: usize) -> String {
        self.process.log_tail(n)
    }

    /// The directory holding every run's log files.
    pub fn log_dir(&self) -> &Path {
        self.dir.path()
    }

    /// The stderr log files of every run so far, oldest first.
    pub fn stderr_logs(&self) -> Vec<PathBuf> {
        (1..=self.run)
            .map(|r| {
                self.dir
                    .path()
                    .join(format!("keelson-controller-{r}.stderr.log"))
            })
            .collect()
    }
}

fn spawn(
    kubeconfig: &Path,
    repo_servers: &[SocketAddr],
    extra_args: &[String],
    run: usize,
    dir: &Path,
) -> Result<(ChildGuard, SocketAddr)> {
    let bin = keelson_bin()?;
    let repos: Vec<String> = repo_servers.iter().map(ToString::to_string).collect();
    let log = std::env::var("KEELSON_CONTROLLER_TEST_LOG").unwrap_or_else(|_| DEFAULT_LOG.into());
    let mut cmd = Command::new(bin);
    cmd.arg("controller")
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .arg("--repo-server")
        .arg(repos.join(","))
        .args(["--metrics-listen", "127.0.0.1:0"])
        .args(extra_args)
        .env("KEELSON_LOG", log)
        .env_remove("KUBECONFIG");
    let component = format!("keelson-controller-{run}");
    let mut process = ChildGuard::spawn(&component, cmd, dir)?;
    let stdout = process.stdout_path().to_path_buf();
    let line = process.wait_ready(CONTROLLER_READY_TIMEOUT, || ready_line(&stdout))?;
    let parsed: serde_json::Value =
        serde_json::from_str(&line).map_err(|e| TestbedError::Protocol {
            component: component.clone(),
            detail: format!("ready line {line:?}: {e}"),
        })?;
    let metrics = parsed["metrics"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| TestbedError::Protocol {
            component: component.clone(),
            detail: format!("ready line lacks metrics: {line}"),
        })?;
    Ok((process, metrics))
}
