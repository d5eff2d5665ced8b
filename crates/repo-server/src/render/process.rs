//! Running one external tool: the binary is located (configured path or the repo-server's
//! `PATH`), started in its own process group with a cleared environment, stdout bounded,
//! the last 4 KiB of stderr kept for the error message, and the whole group killed when the
//! time limit or the output limit is hit.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::process::{Child, Command};

/// The `PATH` given to tools that may need standard utilities (plugins, helm).
pub const MINIMAL_PATH: &str = "/usr/local/bin:/usr/bin:/bin";

/// How much of stderr is kept for error messages.
const STDERR_TAIL: usize = 4096;

/// How long to wait for stderr to close after the tool has exited.
const STDERR_GRACE: Duration = Duration::from_secs(2);

/// Why running a tool failed.
#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    /// The binary does not exist.
    #[error("{tool} not found (looked at {looked_at})", looked_at = .looked_at.display())]
    NotFound {
        /// Tool name.
        tool: String,
        /// Where it was looked for.
        looked_at: PathBuf,
    },
    /// The process could not be started.
    #[error("start {tool}: {source}")]
    Spawn {
        /// Tool name.
        tool: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// Reading the tool's output or waiting for it failed.
    #[error("{tool}: {source}")]
    Io {
        /// Tool name.
        tool: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The tool ran longer than the time limit and was killed.
    #[error("{tool} timed out after {after:?} and was killed; stderr: {stderr}")]
    TimedOut {
        /// Tool name.
        tool: String,
        /// The limit.
        after: Duration,
        /// Tail of stderr.
        stderr: String,
    },
    /// The tool printed more than the output limit and was killed.
    #[error("{tool} output exceeded the limit of {limit} bytes and was killed")]
    OutputTooLarge {
        /// Tool name.
        tool: String,
        /// The limit.
        limit: usize,
    },
    /// The tool exited unsuccessfully.
    #[error("{tool} failed ({status}): {stderr}")]
    Failed {
        /// Tool name.
        tool: String,
        /// Exit status.
        status: ExitStatus,
        /// Tail of stderr.
        stderr: String,
    },
}

/// One tool invocation.
#[derive(Debug, Clone)]
pub struct Invocation<'a> {
    /// Tool name for messages (`helm`, `kustomize`, `plugin foo`).
    pub tool: String,
    /// Located binary.
    pub program: PathBuf,
    /// Arguments.
    pub args: Vec<OsString>,
    /// Working directory.
    pub cwd: &'a Path,
    /// The complete environment (nothing is inherited).
    pub env: Vec<(String, OsString)>,
    /// Wall-clock limit.
    pub timeout: Duration,
    /// Stdout limit in bytes.
    pub max_output: usize,
}

/// Locates `configured`: a path with a directory part must exist; a bare name is looked up on
/// the repo-server's own `PATH`.
pub fn locate(tool: &str, configured: &Path) -> Result<PathBuf, ProcessError> {
    let not_found = |looked_at: PathBuf| ProcessError::NotFound {
        tool: tool.to_string(),
        looked_at,
    };
    if configured.components().count() > 1 || configured.is_absolute() {
        return if configured.is_file() {
            Ok(configured.to_path_buf())
        } else {
            Err(not_found(configured.to_path_buf()))
        };
    }
    let path_var = std::env::var_os("PATH").unwrap_or_default();
    for dir in std::env::split_paths(&path_var) {
        let candidate = dir.join(configured);
        if candidate.is_file() {
            return Ok(candidate);
        }
    }
    Err(not_found(PathBuf::from(format!(
        "{} on PATH",
        configured.display()
    ))))
}

/// Runs the invocation and returns its stdout, or an error carrying stderr's tail.
pub async fn run(inv: Invocation<'_>) -> Result<Vec<u8>, ProcessError> {
    let mut cmd = Command::new(&inv.program);
    cmd.args(&inv.args)
        .current_dir(inv.cwd)
        .env_clear()
        .envs(inv.env.iter().map(|(k, v)| (k.as_str(), v.as_os_str())))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    let mut child = cmd.spawn().map_err(|source| match source.kind() {
        std::io::ErrorKind::NotFound => ProcessError::NotFound {
            tool: inv.tool.clone(),
            looked_at: inv.program.clone(),
        },
        _ => ProcessError::Spawn {
            tool: inv.tool.clone(),
            source,
        },
    })?;
    let pid = child.id();
    let (Some(stdout), Some(stderr)) = (child.stdout.take(), child.stderr.take()) else {
        kill_group(pid);
        return Err(ProcessError::Io {
            tool: inv.tool,
            source: std::io::Error::other("missing pipes"),
        });
    };
    let stderr_task = tokio::spawn(read_tail(stderr));
    let outcome =
        tokio::time::timeout(inv.timeout, collect(&mut child, stdout, inv.max_output)).await;
    // Whatever happened, nothing of the group may outlive the call.
    kill_group(pid);
    let _ = child.wait().await;
    let stderr = match tokio::time::timeout(STDERR_GRACE, stderr_task).await {
        Ok(Ok(tail)) => tail,
        _ => String::new(),
    };
    match outcome {
        Err(_) => Err(ProcessError::TimedOut {
            tool: inv.tool,
            after: inv.timeout,
            stderr,
        }),
        Ok(Err(Collect::TooLarge)) => Err(ProcessError::OutputTooLarge {
            tool: inv.tool,
            limit: inv.max_output,
        }),
        Ok(Err(Collect::Io(source))) => Err(ProcessError::Io {
            tool: inv.tool,
            source,
        }),
        Ok(Ok((_, status))) if !status.success() => Err(ProcessError::Failed {
            tool: inv.tool,
            status,
            stderr,
        }),
        Ok(Ok((out, _))) => Ok(out),
    }
}

/// Why collecting stdout stopped early.
enum Collect {
    TooLarge,
    Io(std::io::Error),
}

/// Reads stdout to the end (bounded) and waits for the child.
async fn collect(
    child: &mut Child,
    mut stdout: impl AsyncRead + Unpin,
    max: usize,
) -> Result<(Vec<u8>, ExitStatus), Collect> {
    let mut out = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = stdout.read(&mut buf).await.map_err(Collect::Io)?;
        if n == 0 {
            break;
        }
        if out.len() + n > max {
            return Err(Collect::TooLarge);
        }
        out.extend_from_slice(&buf[..n]);
    }
    let status = child.wait().await.map_err(Collect::Io)?;
    Ok((out, status))
}

/// Reads a stream to the end keeping only its last [`STDERR_TAIL`] bytes.
async fn read_tail(mut stream: impl AsyncRead + Unpin) -> String {
    let mut tail: Vec<u8> = Vec::new();
    let mut buf = vec![0u8; 8192];
    while let Ok(n) = stream.read(&mut buf).await {
        if n == 0 {
            break;
        }
        tail.extend_from_slice(&buf[..n]);
        if tail.len() > STDERR_TAIL {
            tail.drain(..tail.len() - STDERR_TAIL);
        }
    }
    String::from_utf8_lossy(&tail).trim().to_string()
}

/// Kills the process group led by `pid` (the child was started with its own group).
fn kill_group(pid: Option<u32>) {
    let Some(pid) = pid
        .and_then(|p| i32::try_from(p).ok())
        .and_then(rustix::process::Pid::from_raw)
    else {
        return;
    };
    let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use std::time::Instant;

    fn sh(script: &str, timeout: Duration, max_output: usize) -> Invocation<'static> {
        Invocation {
            tool: "sh".into(),
            program: locate("sh", Path::new("sh")).unwrap(),
            args: vec!["-c".into(), script.into()],
            cwd: Path::new("/"),
            env: vec![("PATH".into(), MINIMAL_PATH.into())],
            timeout,
            max_output,
        }
    }

    #[tokio::test]
    async fn captures_stdout_and_stderr() {
        let out = run(sh("echo hi; echo warn >&2", Duration::from_secs(10), 100))
            .await
            .unwrap();
        assert_eq!(out, b"hi\n");
        let err = run(sh("echo boom >&2; exit 3", Duration::from_secs(10), 100))
            .await
            .unwrap_err();
        assert!(err.to_string().contains("boom"), "{err}");
    }

    #[tokio::test]
    async fn environment_is_cleared() {
        let out = run(sh("echo \"[$HOME]\"", Duration::from_secs(10), 100))
            .await
            .unwrap();
        assert_eq!(out, b"[]\n");
    }

    #[tokio::test]
    async fn timeout_kills_the_group() {
        let start = Instant::now();
        let err = run(sh(
            "sleep 30 & sleep 30; echo done",
            Duration::from_millis(300),
            100,
        ))
        .await
        .unwrap_err();
        assert!(matches!(err, ProcessError::TimedOut { .. }), "{err}");
        assert!(start.elapsed() < Duration::from_secs(5));
    }

    #[tokio::test]
    async fn output_limit_is_enforced() {
        let start = Instant::now();
        let err = run(sh("yes", Duration::from_secs(30), 1 << 20))
            .await
            .unwrap_err();
        assert!(matches!(err, ProcessError::OutputTooLarge { .. }), "{err}");
        assert!(start.elapsed() < Duration::from_secs(5));
    }

    #[test]
    fn missing_binaries_are_reported() {
        assert!(matches!(
            locate("helm", Path::new("/nonexistent/helm")),
            Err(ProcessError::NotFound { .. })
        ));
        assert!(matches!(
            locate("x", Path::new("no-such-tool-keelson")),
            Err(ProcessError::NotFound { .. })
        ));
    }
}
