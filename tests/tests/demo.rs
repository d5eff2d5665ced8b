//! `keelson demo` end to end: the README's first command, run as a user would (with
//! `--exit-when-synced` so it ends): every example app must reach Synced and Healthy.

use std::process::Command;
use std::time::Duration;

use anyhow::{Context, bail};

#[test]
fn demo_brings_every_example_to_synced_and_healthy() -> anyhow::Result<()> {
    let bin = keelson_testbed::keelson_bin()?;
    let dir = tempfile::tempdir()?;
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    let tools = std::path::Path::new(root).join(".tools/bin");
    let path = format!(
        "{}:{}",
        tools.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = Command::new(bin)
        .args(["demo", "--exit-when-synced", "--plain", "--timeout"])
        .arg(format!("{}s", Duration::from_secs(180).as_secs()))
        .arg("--dir")
        .arg(dir.path())
        .arg("--examples")
        .arg(std::path::Path::new(root).join("examples"))
        .env("PATH", path)
        .current_dir(root)
        .output()
        .context("running keelson demo")?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        bail!(
            "keelson demo failed: {}\n{stdout}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let last_table = stdout.rsplit("NAME ").next().unwrap_or_default();
    for app in [
        "guestbook",
        "helm-guestbook",
        "kustomize-guestbook",
        "waves-hooks",
        "app-of-apps",
        "aoa-guestbook",
        "aoa-waves-hooks",
    ] {
        let line = last_table
            .lines()
            .find(|l| l.split_whitespace().next() == Some(app))
            .with_context(|| format!("{app} missing from the final table:\n{stdout}"))?;
        assert!(
            line.contains("Synced") && line.contains("Healthy"),
            "{app} not Synced and Healthy: {line}"
        );
    }
    assert!(
        stdout.contains("applications are Synced and Healthy"),
        "{stdout}"
    );
    Ok(())
}
