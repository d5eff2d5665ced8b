//! Fixture Git repositories built with the real `git` CLI in a temp dir (default branch
//! `main`, local identity, no user or system config).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use tempfile::TempDir;

use crate::error::{Result, TestbedError};
use crate::process::run_checked;
use crate::tools::find_tool;

/// Time budget for one git command.
const GIT_TIMEOUT: Duration = Duration::from_secs(30);

/// A fixture repository with a working tree; deleted when dropped.
#[derive(Debug)]
pub struct GitRepo {
    git: PathBuf,
    dir: TempDir,
}

impl GitRepo {
    /// Creates an empty repository on branch `main` with a local test identity.
    pub fn init() -> Result<GitRepo> {
        let git = find_tool("git")?;
        let dir = tempfile::Builder::new()
            .prefix("keelson-git-")
            .tempdir()
            .map_err(|source| TestbedError::Io {
                step: "creating the git temp dir",
                path: std::env::temp_dir().display().to_string(),
                source,
            })?;
        let repo = GitRepo { git, dir };
        repo.git(&["init", "-q", "-b", "main"])?;
        repo.git(&["config", "user.name", "Keelson Testbed"])?;
        repo.git(&["config", "user.email", "testbed@keelson.invalid"])?;
        repo.git(&["config", "commit.gpgsign", "false"])?;
        repo.git(&["config", "tag.gpgsign", "false"])?;
        Ok(repo)
    }

    /// Runs `git <args>` in the repository and returns its trimmed stdout.
    pub fn git(&self, args: &[&str]) -> Result<String> {
        let mut cmd = Command::new(&self.git);
        cmd.current_dir(self.dir.path())
            .args(args)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_TERMINAL_PROMPT", "0");
        let output = run_checked(cmd, GIT_TIMEOUT)?;
        Ok(String::from_utf8_lossy(&output.stdout).trim().to_string())
    }

    /// Writes a file (creating parent directories) relative to the repository root.
    pub fn write(&self, path: &str, contents: impl AsRef<[u8]>) -> Result<()> {
        let target = self.dir.path().join(path);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent).map_err(|source| TestbedError::Io {
                step: "creating fixture directories",
                path: parent.display().to_string(),
                source,
            })?;
        }
        std::fs::write(&target, contents).map_err(|source| TestbedError::Io {
            step: "writing a fixture file",
            path: target.display().to_string(),
            source,
        })
    }

    /// Removes a file or directory relative to the repository root.
    pub fn remove(&self, path: &str) -> Result<()> {
        let target = self.dir.path().join(path);
        let result = if target.is_dir() {
            std::fs::remove_dir_all(&target)
        } else {
            std::fs::remove_file(&target)
        };
        result.map_err(|source| TestbedError::Io {
            step: "removing a fixture path",
            path: target.display().to_string(),
            source,
        })
    }

    /// Stages everything and commits (an empty commit is allowed); returns the new sha.
    pub fn commit(&self, message: &str) -> Result<String> {
        self.git(&["add", "-A"])?;
        self.git(&["commit", "-q", "--allow-empty", "-m", message])?;
        self.head()
    }

    /// Creates a lightweight tag at `HEAD`.
    pub fn tag(&self, name: &str) -> Result<()> {
        self.git(&["tag", name]).map(|_| ())
    }

    /// Creates an annotated tag at `HEAD`.
    pub fn tag_annotated(&self, name: &str, message: &str) -> Result<()> {
        self.git(&["tag", "-a", name, "-m", message]).map(|_| ())
    }

    /// Creates a branch at `HEAD` without switching to it.
    pub fn branch(&self, name: &str) -> Result<()> {
        self.git(&["branch", name]).map(|_| ())
    }

    /// Switches the working tree to a branch, tag or sha.
    pub fn checkout(&self, name: &str) -> Result<()> {
        self.git(&["checkout", "-q", name]).map(|_| ())
    }

    /// The sha of `HEAD`.
    pub fn head(&self) -> Result<String> {
        self.git(&["rev-parse", "HEAD"])
    }

    /// The sha a branch, tag or other revision resolves to.
    pub fn rev_parse(&self, rev: &str) -> Result<String> {
        self.git(&["rev-parse", &format!("{rev}^{{commit}}")])
    }

    /// `file://<path>`, cloneable by git and by the repo-server.
    pub fn url(&self) -> String {
        format!("file://{}", self.dir.path().display())
    }

    /// The working tree (and repository) directory.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}
