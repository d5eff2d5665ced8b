//! `keelson sim` run as a separate process: many simulated clusters behind one loopback
//! listener. The harness parses the single JSON ready line the simulator prints on stdout.
//!
//! Contract: `keelson sim --listen 127.0.0.1:0 --clusters N (--tls | --plain-http)
//! [--workload] --kubeconfig-dir DIR` prints exactly one JSON line when ready —
//! `{"listen":"127.0.0.1:PORT","ca_file":"DIR/ca.crt"|null,"kubeconfig":"DIR/kubeconfig",
//! "clusters":[{"name":"c1","server":"http://127.0.0.1:PORT/clusters/c1","token":"...",
//! "kubeconfig":"DIR/c1.kubeconfig"}, ...]}` — and serves until killed.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde::Deserialize;
use tempfile::TempDir;

use crate::error::{Result, TestbedError};
use crate::kubeconfig::build_client;
use crate::process::ChildGuard;
use crate::tools::workspace_root;

/// Environment variable naming the `keelson` binary to run.
pub const KEELSON_BIN_ENV: &str = "KEELSON_BIN";

/// How long `Sim::start` waits for the ready line.
pub const SIM_READY_TIMEOUT: Duration = Duration::from_secs(30);

/// Hint when the `keelson` binary is missing.
const BUILD_HINT: &str = "build it with `cargo build -p keelson` or set KEELSON_BIN";

/// What to simulate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimOptions {
    /// Number of clusters (`c1` … `cN`).
    pub clusters: usize,
    /// Serve HTTPS with a generated CA (`--tls`, the default) or plain HTTP
    /// (`--plain-http`; the real kubectl sends bearer tokens only over TLS, kube-rs clients
    /// work either way).
    pub tls: bool,
    /// Pre-populate clusters with a workload (`--workload`).
    pub workload: bool,
    /// Further arguments appended to the command line.
    pub extra_args: Vec<String>,
}

impl Default for SimOptions {
    fn default() -> Self {
        SimOptions {
            clusters: 1,
            tls: true,
            workload: false,
            extra_args: Vec::new(),
        }
    }
}

/// The ready line printed by `keelson sim`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct SimInfo {
    /// The bound listen address, `127.0.0.1:PORT`.
    pub listen: String,
    /// The CA certificate file when serving TLS.
    pub ca_file: Option<PathBuf>,
    /// A kubeconfig holding every cluster as a context.
    pub kubeconfig: PathBuf,
    /// A token accepted by every cluster, when the simulator prints one.
    #[serde(default)]
    pub admin_token: Option<String>,
    /// The simulated clusters.
    pub clusters: Vec<SimCluster>,
}

/// One simulated cluster.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct SimCluster {
    /// Cluster name (`c1`, …).
    pub name: String,
    /// API server URL of this cluster.
    pub server: String,
    /// Bearer token accepted by this cluster.
    pub token: String,
    /// A kubeconfig for this cluster alone.
    pub kubeconfig: PathBuf,
}

impl SimInfo {
    /// Parses the ready line.
    pub fn parse(line: &str) -> Result<SimInfo> {
        serde_json::from_str(line.trim()).map_err(|source| TestbedError::SimReadyLine {
            line: line.to_string(),
            source,
        })
    }
}

/// A running `keelson sim`; killed when dropped.
#[derive(Debug)]
pub struct Sim {
    process: ChildGuard,
    info: SimInfo,
    ca_pem: Option<Vec<u8>>,
    dir: TempDir,
}

/// The `keelson` binary: `$KEELSON_BIN`, else `$CARGO_TARGET_DIR/debug/keelson`, else
/// `<workspace>/target/debug/keelson`. Missing is [`TestbedError::ToolMissing`].
pub fn keelson_bin() -> Result<PathBuf> {
    let path = match std::env::var_os(KEELSON_BIN_ENV) {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => match std::env::var_os("CARGO_TARGET_DIR") {
            Some(t) if !t.is_empty() => PathBuf::from(t).join("debug").join("keelson"),
            _ => workspace_root()
                .join("target")
                .join("debug")
                .join("keelson"),
        },
    };
    if path.is_file() {
        Ok(path)
    } else {
        Err(TestbedError::ToolMissing {
            tool: path.display().to_string(),
            hint: BUILD_HINT,
        })
    }
}

impl Sim {
    /// Starts `keelson sim` and waits (up to 30 s) for its ready line.
    pub fn start(options: SimOptions) -> Result<Sim> {
        let bin = keelson_bin()?;
        let dir = tempfile::Builder::new()
            .prefix("keelson-sim-")
            .tempdir()
            .map_err(|source| TestbedError::Io {
                step: "creating the sim temp dir",
                path: std::env::temp_dir().display().to_string(),
                source,
            })?;
        let kubeconfig_dir = dir.path().join("kubeconfigs");
        std::fs::create_dir_all(&kubeconfig_dir).map_err(|source| TestbedError::Io {
            step: "creating the sim kubeconfig dir",
            path: kubeconfig_dir.display().to_string(),
            source,
        })?;
        let cmd = sim_command(&bin, &options, &kubeconfig_dir);
        let mut process = ChildGuard::spawn("keelson-sim", cmd, dir.path())?;
        let stdout = process.stdout_path().to_path_buf();
        let line = process.wait_ready(SIM_READY_TIMEOUT, || ready_line(&stdout))?;
        let info = SimInfo::parse(&line)?;
        let ca_pem = match &info.ca_file {
            Some(path) => Some(std::fs::read(path).map_err(|source| TestbedError::Io {
                step: "reading the sim CA certificate",
                path: path.display().to_string(),
                source,
            })?),
            None => None,
        };
        Ok(Sim {
            process,
            info,
            ca_pem,
            dir,
        })
    }

    /// The parsed ready line.
    pub fn info(&self) -> &SimInfo {
        &self.info
    }

    /// The simulated clusters.
    pub fn clusters(&self) -> &[SimCluster] {
        &self.info.clusters
    }

    /// Cluster `i` (0-based).
    pub fn cluster(&self, i: usize) -> Result<&SimCluster> {
        self.info.clusters.get(i).ok_or(TestbedError::NoSuchIndex {
            component: "keelson sim".to_string(),
            what: "cluster",
            index: i,
        })
    }

    /// A kube client for cluster `i`. Must be called inside a tokio runtime.
    pub fn client(&self, i: usize) -> Result<kube::Client> {
        let cluster = self.cluster(i)?;
        build_client(
            &format!("keelson sim cluster {}", cluster.name),
            &cluster.server,
            &cluster.token,
            self.ca_pem.as_deref(),
        )
    }

    /// Sets the fault injection of cluster `i` through the simulator's admin API
    /// (`{"unreachable": true}`, `{"latency_ms": 400}`, …). Inside a tokio runtime.
    pub async fn set_faults(&self, i: usize, settings: &serde_json::Value) -> Result<()> {
        let admin = build_client(
            "keelson sim admin",
            &format!("https://{}", self.info.listen),
            self.info
                .admin_token
                .as_deref()
                .ok_or_else(|| TestbedError::Protocol {
                    component: "keelson sim".to_owned(),
                    detail: "the ready line has no admin token".to_owned(),
                })?,
            self.ca_pem.as_deref(),
        )?;
        let name = &self.cluster(i)?.name;
        let request = http::Request::put(format!("/sim/clusters/{name}/faults"))
            .header("content-type", "application/json")
            .body(settings.to_string().into_bytes())
            .map_err(|e| TestbedError::Protocol {
                component: "keelson sim".to_owned(),
                detail: format!("building the faults request: {e}"),
            })?;
        admin
            .request_text(request)
            .await
            .map_err(|source| TestbedError::Kube {
                step: "setting simulator faults",
                source,
            })?;
        Ok(())
    }

    /// The kubeconfig of cluster `i` alone.
    pub fn kubeconfig_path(&self, i: usize) -> Result<&Path> {
        Ok(&self.cluster(i)?.kubeconfig)
    }

    /// The kubeconfig holding every cluster.
    pub fn combined_kubeconfig_path(&self) -> &Path {
        &self.info.kubeconfig
    }

    /// The CA certificate (PEM) when serving TLS.
    pub fn ca_pem(&self) -> Option<&[u8]> {
        self.ca_pem.as_deref()
    }

    /// The simulator process (pause, kill, logs).
    pub fn process(&mut self) -> &mut ChildGuard {
        &mut self.process
    }

    /// The temp dir holding kubeconfigs and logs.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

fn sim_command(bin: &Path, options: &SimOptions, kubeconfig_dir: &Path) -> Command {
    let mut cmd = Command::new(bin);
    cmd.arg("sim")
        .arg("--listen")
        .arg("127.0.0.1:0")
        .arg("--clusters")
        .arg(options.clusters.to_string());
    // The simulator serves TLS by default; plain HTTP must be asked for.
    cmd.arg(if options.tls { "--tls" } else { "--plain-http" });
    if options.workload {
        cmd.arg("--workload");
    }
    cmd.arg("--kubeconfig-dir")
        .arg(kubeconfig_dir)
        .args(&options.extra_args);
    cmd
}

/// The first complete stdout line that looks like JSON, as a readiness probe.
pub(crate) fn ready_line(stdout: &Path) -> Result<String, String> {
    let text = std::fs::read_to_string(stdout).map_err(|e| format!("reading stdout: {e}"))?;
    first_json_line(&text).ok_or_else(|| "no ready line on stdout yet".to_string())
}

/// The first newline-terminated line starting with `{` (pure).
fn first_json_line(text: &str) -> Option<String> {
    text.split_inclusive('\n')
        .filter(|l| l.ends_with('\n'))
        .map(str::trim)
        .find(|l| l.starts_with('{'))
        .map(str::to_string)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    const TLS_LINE: &str = r#"{"listen":"127.0.0.1:40123","ca_file":"/tmp/d/ca.crt","kubeconfig":"/tmp/d/kubeconfig","admin_token":"adm","clusters":[{"name":"c1","server":"https://127.0.0.1:40123/clusters/c1","token":"t1","kubeconfig":"/tmp/d/c1.kubeconfig"},{"name":"c2","server":"https://127.0.0.1:40123/clusters/c2","token":"t2","kubeconfig":"/tmp/d/c2.kubeconfig"}]}"#;

    #[test]
    fn parses_a_tls_ready_line() {
        let info = SimInfo::parse(TLS_LINE).unwrap();
        assert_eq!(info.listen, "127.0.0.1:40123");
        assert_eq!(info.ca_file, Some(PathBuf::from("/tmp/d/ca.crt")));
        assert_eq!(info.admin_token.as_deref(), Some("adm"));
        assert_eq!(info.clusters.len(), 2);
        assert_eq!(info.clusters[1].name, "c2");
        assert_eq!(info.clusters[1].token, "t2");
        assert_eq!(
            info.clusters[0].kubeconfig,
            PathBuf::from("/tmp/d/c1.kubeconfig")
        );
    }

    #[test]
    fn parses_a_plain_ready_line_with_extra_fields() {
        let line = r#"{"listen":"127.0.0.1:1","ca_file":null,"kubeconfig":"k","clusters":[],"version":"x"}"#;
        let info = SimInfo::parse(line).unwrap();
        assert_eq!(info.ca_file, None);
        assert_eq!(info.admin_token, None);
        assert!(info.clusters.is_empty());
    }

    #[test]
    fn rejects_a_bad_ready_line() {
        let err = SimInfo::parse(r#"{"listen":1}"#).unwrap_err();
        assert!(matches!(err, TestbedError::SimReadyLine { .. }));
    }

    #[test]
    fn finds_only_complete_json_lines() {
        assert_eq!(first_json_line("{\"partial\":"), None);
        assert_eq!(
            first_json_line("starting\n{\"a\":1}\n"),
            Some("{\"a\":1}".to_string())
        );
    }

    #[test]
    fn builds_the_contract_command_line() {
        let options = SimOptions {
            clusters: 3,
            tls: true,
            workload: true,
            extra_args: vec!["--x".to_string()],
        };
        let cmd = sim_command(Path::new("/bin/keelson"), &options, Path::new("/k"));
        let args: Vec<_> = cmd
            .get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            args,
            [
                "sim",
                "--listen",
                "127.0.0.1:0",
                "--clusters",
                "3",
                "--tls",
                "--workload",
                "--kubeconfig-dir",
                "/k",
                "--x"
            ]
        );
        let plain = SimOptions {
            tls: false,
            ..SimOptions::default()
        };
        let cmd = sim_command(Path::new("/bin/keelson"), &plain, Path::new("/k"));
        assert!(cmd.get_args().any(|a| a == "--plain-http"));
        assert!(!cmd.get_args().any(|a| a == "--tls"));
    }

    #[test]
    fn client_for_a_parsed_cluster_uses_its_server_and_token() {
        let info = SimInfo::parse(TLS_LINE).unwrap();
        let cfg = crate::kubeconfig::client_config(
            "sim",
            &info.clusters[0].server,
            &info.clusters[0].token,
            None,
        )
        .unwrap();
        assert_eq!(cfg.cluster_url.path(), "/clusters/c1");
    }
}
