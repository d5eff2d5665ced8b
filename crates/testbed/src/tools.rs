//! Locating the external binaries the harness runs: the workspace tools directory first,
//! then `PATH`. A missing tool is an error, never a reason to skip.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::error::{INSTALL_HINT, Result, TestbedError};

/// Environment variable overriding the tools directory.
pub const TOOLS_DIR_ENV: &str = "KEELSON_TOOLS_DIR";

/// The workspace root (`crates/testbed/../..`), as compiled in.
pub fn workspace_root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let root = manifest.join("..").join("..");
    root.canonicalize().unwrap_or(root)
}

/// The directory searched before `PATH`: `$KEELSON_TOOLS_DIR` (or its `bin/` subdirectory
/// when it has one), else `<workspace>/.tools/bin`.
pub fn tools_dir() -> PathBuf {
    match std::env::var_os(TOOLS_DIR_ENV) {
        Some(dir) if !dir.is_empty() => {
            let dir = PathBuf::from(dir);
            let bin = dir.join("bin");
            if bin.is_dir() { bin } else { dir }
        }
        _ => workspace_root().join(".tools").join("bin"),
    }
}

/// Finds an executable named `tool` in [`tools_dir`], then on `PATH`.
pub fn find_tool(tool: &str) -> Result<PathBuf> {
    let candidate = tools_dir().join(tool);
    if is_executable(&candidate) {
        return Ok(candidate);
    }
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            let candidate = dir.join(tool);
            if is_executable(&candidate) {
                return Ok(candidate);
            }
        }
    }
    Err(TestbedError::ToolMissing {
        tool: tool.to_string(),
        hint: INSTALL_HINT,
    })
}

fn is_executable(path: &Path) -> bool {
    std::fs::metadata(path)
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn finds_sh_on_path() {
        let sh = find_tool("sh").unwrap();
        assert!(sh.ends_with("sh"));
    }

    #[test]
    fn missing_tool_is_an_error_with_hint() {
        let err = find_tool("keelson-no-such-tool-xyz").unwrap_err();
        match err {
            TestbedError::ToolMissing { tool, hint } => {
                assert_eq!(tool, "keelson-no-such-tool-xyz");
                assert_eq!(hint, INSTALL_HINT);
            }
            other => panic!("unexpected error {other}"),
        }
    }

    #[test]
    fn workspace_root_holds_the_workspace_manifest() {
        assert!(workspace_root().join("Cargo.toml").is_file());
        assert!(workspace_root().join("crates").join("testbed").is_dir());
    }
}
