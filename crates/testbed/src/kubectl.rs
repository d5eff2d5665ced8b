//! The real `kubectl` and `helm` binaries from the tools directory, run with a time limit.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use crate::error::Result;
use crate::process::{run, run_checked};
use crate::tools::find_tool;

/// Time budget for one `kubectl` or `helm` invocation.
pub const CLI_TIMEOUT: Duration = Duration::from_secs(60);

/// Path of the `kubectl` binary (tools directory, then `PATH`).
pub fn kubectl_path() -> Result<PathBuf> {
    find_tool("kubectl")
}

/// Path of the `helm` binary (tools directory, then `PATH`).
pub fn helm_path() -> Result<PathBuf> {
    find_tool("helm")
}

/// Runs `kubectl --kubeconfig <kubeconfig> <args>`; the caller inspects the exit status.
pub fn kubectl(kubeconfig: &Path, args: &[&str]) -> Result<Output> {
    run(kubectl_command(kubeconfig, args)?, CLI_TIMEOUT)
}

/// Like [`kubectl`], but a non-zero exit status is an error carrying kubectl's stderr.
pub fn kubectl_checked(kubeconfig: &Path, args: &[&str]) -> Result<Output> {
    run_checked(kubectl_command(kubeconfig, args)?, CLI_TIMEOUT)
}

fn kubectl_command(kubeconfig: &Path, args: &[&str]) -> Result<Command> {
    let mut cmd = Command::new(kubectl_path()?);
    cmd.arg("--kubeconfig").arg(kubeconfig);
    // Keep kubectl's discovery cache out of the user's home directory.
    if let Some(dir) = kubeconfig.parent() {
        cmd.arg("--cache-dir").arg(dir.join(".kube-cache"));
    }
    cmd.args(args);
    Ok(cmd)
}

/// Runs `helm <args>` with its cache, config and data dirs under `home`; the caller inspects
/// the exit status.
pub fn helm(home: &Path, args: &[&str]) -> Result<Output> {
    let mut cmd = Command::new(helm_path()?);
    cmd.args(args)
        .env("HELM_CACHE_HOME", home.join("cache"))
        .env("HELM_CONFIG_HOME", home.join("config"))
        .env("HELM_DATA_HOME", home.join("data"));
    run(cmd, CLI_TIMEOUT)
}
