//! Child processes owned by a test: [`ChildGuard`] (logs to files, killed and reaped on drop,
//! pause/resume/kill for failover tests), bounded readiness waits, and helper commands run
//! with a time limit.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

use crate::error::{Result, TestbedError};
use crate::tools::find_tool;

/// Number of log lines quoted in readiness errors.
pub const ERROR_LOG_LINES: usize = 30;

/// Bytes read from the end of a log file when taking its tail.
const TAIL_WINDOW: u64 = 64 * 1024;

/// A spawned component process. Dropping it sends SIGKILL and reaps the process, also during
/// a panic unwind; it never outlives the test that owns it (unless the test process itself is
/// killed with SIGKILL).
#[derive(Debug)]
pub struct ChildGuard {
    component: String,
    child: Child,
    stdout_path: PathBuf,
    stderr_path: PathBuf,
    exit: Option<ExitStatus>,
}

impl ChildGuard {
    /// Spawns `cmd` with stdin closed and stdout/stderr redirected to
    /// `<log_dir>/<component>.stdout.log` and `<log_dir>/<component>.stderr.log`.
    pub fn spawn(component: &str, mut cmd: Command, log_dir: &Path) -> Result<ChildGuard> {
        let file_stem = component.replace(['/', ' '], "_");
        let stdout_path = log_dir.join(format!("{file_stem}.stdout.log"));
        let stderr_path = log_dir.join(format!("{file_stem}.stderr.log"));
        let stdout = create_file(&stdout_path)?;
        let stderr = create_file(&stderr_path)?;
        cmd.stdin(Stdio::null())
            .stdout(Stdio::from(stdout))
            .stderr(Stdio::from(stderr));
        let child = cmd.spawn().map_err(|source| TestbedError::Spawn {
            component: component.to_string(),
            program: PathBuf::from(cmd.get_program()),
            source,
        })?;
        tracing::debug!(component, pid = child.id(), "spawned");
        Ok(ChildGuard {
            component: component.to_string(),
            child,
            stdout_path,
            stderr_path,
            exit: None,
        })
    }

    /// The component name given at spawn time.
    pub fn component(&self) -> &str {
        &self.component
    }

    /// The operating-system process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// File receiving the process's standard output.
    pub fn stdout_path(&self) -> &Path {
        &self.stdout_path
    }

    /// File receiving the process's standard error.
    pub fn stderr_path(&self) -> &Path {
        &self.stderr_path
    }

    /// The last `n` lines of stdout and of stderr, each under a header.
    pub fn log_tail(&self, n: usize) -> String {
        format!(
            "[{} stdout]\n{}\n[{} stderr]\n{}",
            self.component,
            tail_lines(&self.stdout_path, n),
            self.component,
            tail_lines(&self.stderr_path, n)
        )
    }

    /// The exit status if the process has exited, without blocking.
    pub fn exit_status(&mut self) -> Option<ExitStatus> {
        if self.exit.is_none() {
            self.exit = self.child.try_wait().ok().flatten();
        }
        self.exit
    }

    /// Whether the process is still running (a paused process counts as running).
    pub fn is_running(&mut self) -> bool {
        self.exit_status().is_none()
    }

    /// Sends SIGKILL and waits for the process to be reaped. A no-op once it has exited.
    pub fn kill(&mut self) -> Result<()> {
        if self.exit_status().is_some() {
            return Ok(());
        }
        // The process may exit between the check and the signal; `wait` settles it either way.
        let _ = self.child.kill();
        let status = self.child.wait().map_err(|source| TestbedError::Io {
            step: "reaping a killed process",
            path: format!("{} (pid {})", self.component, self.child.id()),
            source,
        })?;
        tracing::debug!(component = %self.component, %status, "killed");
        self.exit = Some(status);
        Ok(())
    }

    /// Kills the process abruptly (SIGKILL, no shutdown), as a crash in failover tests.
    pub fn kill9(&mut self) -> Result<()> {
        self.kill()
    }

    /// Asks the process to stop with SIGTERM and waits up to `grace` for it to exit, then
    /// falls back to SIGKILL. Returns the exit status.
    pub fn terminate(&mut self, grace: Duration) -> Result<ExitStatus> {
        if let Some(status) = self.exit_status() {
            return Ok(status);
        }
        self.signal("TERM")?;
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            if let Some(status) = self.exit_status() {
                return Ok(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.kill()?;
        self.exit_status().ok_or_else(|| TestbedError::Timeout {
            component: self.component.clone(),
            what: "exit after SIGKILL".to_string(),
            waited: grace,
            detail: "process still running".to_string(),
        })
    }

    /// Freezes the process (SIGSTOP), e.g. to simulate a hung leader.
    pub fn pause(&self) -> Result<()> {
        self.signal("STOP")
    }

    /// Thaws a process frozen by [`ChildGuard::pause`] (SIGCONT).
    pub fn resume(&self) -> Result<()> {
        self.signal("CONT")
    }

    /// Sends a signal by name with the `kill` command (no unsafe code in the workspace).
    fn signal(&self, name: &str) -> Result<()> {
        let mut cmd = Command::new(find_tool("kill")?);
        cmd.arg(format!("-{name}")).arg(self.pid().to_string());
        run_checked(cmd, Duration::from_secs(10)).map(|_| ())
    }

    /// Calls `probe` until it returns `Ok`, the process exits, or `timeout` passes. Probe
    /// failures are reported as text; the last one ends up in the error together with the
    /// component's last log lines.
    pub fn wait_ready<T>(
        &mut self,
        timeout: Duration,
        mut probe: impl FnMut() -> std::result::Result<T, String>,
    ) -> Result<T> {
        let start = Instant::now();
        let mut pause = Duration::from_millis(20);
        loop {
            if let Some(status) = self.exit_status() {
                return Err(TestbedError::Exited {
                    component: self.component.clone(),
                    status: status.to_string(),
                    log_tail: self.log_tail(ERROR_LOG_LINES),
                });
            }
            let reason = match probe() {
                Ok(value) => {
                    tracing::debug!(component = %self.component, elapsed = ?start.elapsed(), "ready");
                    return Ok(value);
                }
                Err(why) => why,
            };
            if start.elapsed() >= timeout {
                return Err(TestbedError::NotReady {
                    component: self.component.clone(),
                    waited: start.elapsed(),
                    reason,
                    log_tail: self.log_tail(ERROR_LOG_LINES),
                });
            }
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(250));
        }
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if let Err(err) = self.kill() {
            tracing::warn!(component = %self.component, %err, "stopping process failed");
        }
    }
}

fn create_file(path: &Path) -> Result<File> {
    File::create(path).map_err(|source| TestbedError::Io {
        step: "creating a log file",
        path: path.display().to_string(),
        source,
    })
}

/// The last `n` lines of a text file (empty when it cannot be read).
pub fn tail_lines(path: &Path, n: usize) -> String {
    let Ok(mut file) = File::open(path) else {
        return String::new();
    };
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    let start = len.saturating_sub(TAIL_WINDOW);
    if file.seek(SeekFrom::Start(start)).is_err() {
        return String::new();
    }
    let mut bytes = Vec::new();
    if file.read_to_end(&mut bytes).is_err() {
        return String::new();
    }
    let text = String::from_utf8_lossy(&bytes);
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Runs a helper command to completion with stdin closed, killing it after `timeout`.
pub fn run(mut cmd: Command, timeout: Duration) -> Result<Output> {
    let command = describe(&cmd);
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().map_err(|source| TestbedError::Spawn {
        component: command.clone(),
        program: PathBuf::from(cmd.get_program()),
        source,
    })?;
    let stdout = child.stdout.take().map(spawn_reader);
    let stderr = child.stderr.take().map(spawn_reader);
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(5)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(TestbedError::CommandTimeout {
                    command,
                    waited: timeout,
                });
            }
            Err(source) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(TestbedError::Io {
                    step: "waiting for a command",
                    path: command,
                    source,
                });
            }
        }
    };
    Ok(Output {
        status,
        stdout: stdout.map(join_reader).unwrap_or_default(),
        stderr: stderr.map(join_reader).unwrap_or_default(),
    })
}

/// Like [`run`], but a non-zero exit status is an error carrying the command's stderr.
pub fn run_checked(cmd: Command, timeout: Duration) -> Result<Output> {
    let command = describe(&cmd);
    let output = run(cmd, timeout)?;
    if output.status.success() {
        Ok(output)
    } else {
        Err(TestbedError::CommandFailed {
            command,
            status: output.status.to_string(),
            stderr: String::from_utf8_lossy(&output.stderr).trim().to_string(),
        })
    }
}

fn describe(cmd: &Command) -> String {
    let mut parts = vec![cmd.get_program().to_string_lossy().into_owned()];
    parts.extend(cmd.get_args().map(|a| a.to_string_lossy().into_owned()));
    parts.join(" ")
}

fn spawn_reader<R: Read + Send + 'static>(mut source: R) -> std::thread::JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = source.read_to_end(&mut buf);
        buf
    })
}

fn join_reader(handle: std::thread::JoinHandle<Vec<u8>>) -> Vec<u8> {
    handle.join().unwrap_or_default()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn sleeper(dir: &Path) -> ChildGuard {
        let mut cmd = Command::new("sh");
        cmd.arg("-c")
            .arg("echo started; echo oops >&2; exec sleep 60");
        ChildGuard::spawn("sleeper", cmd, dir).unwrap()
    }

    fn process_exists(pid: u32) -> bool {
        Path::new(&format!("/proc/{pid}")).exists()
    }

    #[test]
    fn drop_kills_and_reaps() {
        let dir = tempfile::tempdir().unwrap();
        let guard = sleeper(dir.path());
        let pid = guard.pid();
        assert!(process_exists(pid));
        drop(guard);
        assert!(!process_exists(pid), "pid {pid} survived the guard");
    }

    #[test]
    fn drop_during_panic_kills() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().to_path_buf();
        let (tx, rx) = std::sync::mpsc::channel();
        let result = std::panic::catch_unwind(move || {
            let guard = sleeper(&path);
            tx.send(guard.pid()).unwrap();
            panic!("test panic");
        });
        assert!(result.is_err());
        let pid = rx.recv().unwrap();
        assert!(!process_exists(pid));
    }

    #[test]
    fn log_tail_and_readiness() {
        let dir = tempfile::tempdir().unwrap();
        let mut guard = sleeper(dir.path());
        let out = guard.stdout_path().to_path_buf();
        let line = guard
            .wait_ready(Duration::from_secs(5), || {
                let text = std::fs::read_to_string(&out).map_err(|e| e.to_string())?;
                text.lines()
                    .next()
                    .map(str::to_string)
                    .ok_or_else(|| "no output yet".to_string())
            })
            .unwrap();
        assert_eq!(line, "started");
        let tail = guard.log_tail(5);
        assert!(tail.contains("started") && tail.contains("oops"), "{tail}");
    }

    #[test]
    fn readiness_timeout_names_component_and_logs() {
        let dir = tempfile::tempdir().unwrap();
        let mut guard = sleeper(dir.path());
        std::thread::sleep(Duration::from_millis(100));
        let err = guard
            .wait_ready::<()>(Duration::from_millis(200), || Err("never".to_string()))
            .unwrap_err();
        let text = err.to_string();
        assert!(text.contains("sleeper") && text.contains("never"), "{text}");
        assert!(text.contains("oops"), "{text}");
    }

    #[test]
    fn exit_during_wait_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        let mut cmd = Command::new("sh");
        cmd.arg("-c").arg("echo dying >&2; exit 3");
        let mut guard = ChildGuard::spawn("quitter", cmd, dir.path()).unwrap();
        let err = guard
            .wait_ready::<()>(Duration::from_secs(5), || Err("no".to_string()))
            .unwrap_err();
        assert!(matches!(err, TestbedError::Exited { .. }), "{err}");
        assert!(err.to_string().contains("dying"));
    }

    #[test]
    fn pause_resume_and_kill9() {
        let dir = tempfile::tempdir().unwrap();
        let mut guard = sleeper(dir.path());
        let state = |pid: u32| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
            stat.rsplit(')')
                .next()
                .unwrap()
                .split_whitespace()
                .next()
                .unwrap()
                .to_string()
        };
        guard.pause().unwrap();
        let pid = guard.pid();
        let mut stopped = false;
        for _ in 0..100 {
            if state(pid) == "T" {
                stopped = true;
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(stopped);
        guard.resume().unwrap();
        guard.kill9().unwrap();
        assert!(!guard.is_running());
        assert!(!process_exists(pid));
    }

    #[test]
    fn run_times_out_and_reports_failures() {
        let mut cmd = Command::new("sleep");
        cmd.arg("5");
        let err = run(cmd, Duration::from_millis(100)).unwrap_err();
        assert!(matches!(err, TestbedError::CommandTimeout { .. }));
        let mut cmd = Command::new("sh");
        cmd.arg("-c").arg("echo bad >&2; exit 1");
        let err = run_checked(cmd, Duration::from_secs(5)).unwrap_err();
        assert!(err.to_string().contains("bad"), "{err}");
    }
}
