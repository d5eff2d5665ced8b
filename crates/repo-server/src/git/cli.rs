//! Runs the `git` CLI for network operations (ls-remote, fetch) and the few local
//! maintenance steps (init, fsck): isolated from user/system configuration, credentials
//! passed only through the environment of one process, a hard time limit that kills the
//! whole process group.
//!
//! Why the CLI for the network and gix for reads: the `git` binary is what every Git host
//! is tested against — credential prompts (`GIT_ASKPASS`), OpenSSH with its key formats,
//! agents and host-key handling, HTTP proxies with auth, TLS settings, protocol v2 and
//! partial fetch quirks. gix's network client covers less of that matrix. Local reads
//! (rev lookup, tree walks, diffs) are pure object access where gix is fast and needs no
//! process per request.

use std::ffi::OsString;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use super::RepoAccess;
use super::error::{GitError, GitStep, RemoteFailure, classify_stderr, stderr_detail};
use super::remote_url::{is_ssh, redact_secrets, redact_url};

/// Username handed to the askpass helper when only a password (token) is configured.
const DEFAULT_USERNAME: &str = "git";

/// Environment variables passed through from the repo-server's own environment.
const PASSTHROUGH_ENV: &[&str] = &[
    "PATH",
    "TMPDIR",
    "http_proxy",
    "https_proxy",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "no_proxy",
    "NO_PROXY",
    "all_proxy",
    "ALL_PROXY",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "GIT_SSL_CAINFO",
    "GIT_EXEC_PATH",
];

/// The askpass helper: answers git's username and password prompts from two variables
/// set only in the environment of the git process that needs them.
const ASKPASS_SCRIPT: &str = "#!/bin/sh\n\
case \"$1\" in\n\
  [Uu]sername*) printf '%s\\n' \"$KEELSON_GIT_USERNAME\" ;;\n\
  *) printf '%s\\n' \"$KEELSON_GIT_PASSWORD\" ;;\n\
esac\n";

/// One git invocation.
pub(crate) struct Invocation<'a> {
    /// The step, for errors and logs.
    pub step: GitStep,
    /// Arguments after the binary.
    pub args: Vec<OsString>,
    /// `GIT_DIR` for commands that work on a mirror; `None` for ls-remote and init.
    pub git_dir: Option<&'a Path>,
    /// Time limit; the process group is killed when it passes.
    pub timeout: Duration,
}

/// The configured git binary with its private home directory.
#[derive(Debug)]
pub(crate) struct GitCli {
    binary: PathBuf,
    home: PathBuf,
    askpass: PathBuf,
    keys_dir: PathBuf,
    known_hosts: Option<PathBuf>,
}

impl GitCli {
    /// Prepares `state_dir` (private `HOME`, askpass helper, SSH key directory).
    pub(crate) fn new(
        binary: PathBuf,
        state_dir: &Path,
        known_hosts: Option<PathBuf>,
    ) -> Result<GitCli, GitError> {
        use std::os::unix::fs::PermissionsExt as _;
        let home = state_dir.join("home");
        let keys_dir = state_dir.join("keys");
        for dir in [state_dir, &home, &keys_dir] {
            std::fs::create_dir_all(dir).map_err(|source| prepare_error(dir, source))?;
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
                .map_err(|source| prepare_error(dir, source))?;
        }
        let askpass = state_dir.join("askpass.sh");
        std::fs::write(&askpass, ASKPASS_SCRIPT)
            .map_err(|source| prepare_error(&askpass, source))?;
        std::fs::set_permissions(&askpass, std::fs::Permissions::from_mode(0o700))
            .map_err(|source| prepare_error(&askpass, source))?;
        Ok(GitCli {
            binary,
            home,
            askpass,
            keys_dir,
            known_hosts,
        })
    }

    /// Runs one invocation for `repo`; returns stdout on success, a classified error
    /// otherwise (`url` and secrets redacted from everything it reports).
    pub(crate) async fn run(
        &self,
        repo: &RepoAccess,
        invocation: Invocation<'_>,
    ) -> Result<Vec<u8>, GitError> {
        let url = redact_url(&repo.url);
        let step = invocation.step;
        let mut cmd = tokio::process::Command::new(&self.binary);
        cmd.args(&invocation.args)
            .current_dir(invocation.git_dir.unwrap_or(&self.home))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .process_group(0);
        self.isolate_env(&mut cmd, invocation.git_dir);
        set_config(&mut cmd, &config_overrides(repo));
        set_credentials(&mut cmd, repo);
        // The key file must outlive the process; it is deleted when dropped.
        let _key = self.set_ssh(&mut cmd, repo, &url)?;
        let child = cmd.spawn().map_err(|source| GitError::Spawn {
            step,
            binary: self.binary.display().to_string(),
            source,
        })?;
        let pid = child.id();
        let output = match tokio::time::timeout(invocation.timeout, child.wait_with_output()).await
        {
            Ok(Ok(output)) => output,
            Ok(Err(source)) => {
                return Err(GitError::Spawn {
                    step,
                    binary: self.binary.display().to_string(),
                    source,
                });
            }
            Err(_) => {
                kill_group(pid);
                return Err(GitError::Timeout {
                    step,
                    url,
                    after: invocation.timeout,
                });
            }
        };
        if output.status.success() {
            return Ok(output.stdout);
        }
        let stderr = String::from_utf8_lossy(&output.stderr);
        Err(failure(repo, step, url, &stderr))
    }

    /// Clears the inherited environment down to a safe allowlist and points git at the
    /// private home, with no system or global configuration and no prompts.
    fn isolate_env(&self, cmd: &mut tokio::process::Command, git_dir: Option<&Path>) {
        cmd.env_clear();
        for name in PASSTHROUGH_ENV {
            if let Some(value) = std::env::var_os(name) {
                cmd.env(name, value);
            }
        }
        cmd.env("HOME", &self.home)
            .env("XDG_CONFIG_HOME", self.home.join(".config"))
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_TERMINAL_PROMPT", "0")
            .env("GIT_ASKPASS", &self.askpass)
            .env("SSH_ASKPASS", &self.askpass)
            .env("LC_ALL", "C")
            .env("LANG", "C");
        if let Some(parent) = self.home.parent() {
            cmd.env("GIT_CEILING_DIRECTORIES", parent);
        }
        if let Some(dir) = git_dir {
            cmd.env("GIT_DIR", dir);
        }
    }

    /// Sets `GIT_SSH_COMMAND` for SSH URLs, writing the private key (if any) to a 0600
    /// temporary file that the returned guard deletes. Host-key checking follows
    /// `insecure`: insecure skips it; otherwise keys must be in the configured known-hosts
    /// file (or the system one, `/etc/ssh/ssh_known_hosts`).
    fn set_ssh(
        &self,
        cmd: &mut tokio::process::Command,
        repo: &RepoAccess,
        url: &str,
    ) -> Result<Option<tempfile::NamedTempFile>, GitError> {
        if !is_ssh(&repo.url) {
            return Ok(None);
        }
        let mut ssh = String::from("ssh -o BatchMode=yes");
        let key = match repo
            .ssh_private_key
            .as_deref()
            .filter(|k| !k.trim().is_empty())
        {
            Some(key) => Some(self.write_key(key, url)?),
            None => None,
        };
        if let Some(file) = &key {
            ssh.push_str(&format!(
                " -i {} -o IdentitiesOnly=yes",
                shell_quote(&file.path().display().to_string())
            ));
        }
        if repo.insecure {
            ssh.push_str(" -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null");
        } else {
            ssh.push_str(" -o StrictHostKeyChecking=yes");
            if let Some(known) = &self.known_hosts {
                ssh.push_str(&format!(
                    " -o UserKnownHostsFile={}",
                    shell_quote(&known.display().to_string())
                ));
            }
        }
        cmd.env("GIT_SSH_COMMAND", ssh)
            .env("GIT_SSH_VARIANT", "ssh");
        Ok(key)
    }

    /// Writes an SSH private key (with the trailing newline OpenSSH insists on) to a new
    /// 0600 file in the private key directory.
    fn write_key(&self, key: &str, url: &str) -> Result<tempfile::NamedTempFile, GitError> {
        let write_error = |source| GitError::WriteSshKey {
            url: url.to_string(),
            source,
        };
        let mut file = tempfile::Builder::new()
            .prefix("key-")
            .tempfile_in(&self.keys_dir)
            .map_err(write_error)?;
        let mut contents = key.trim_end().replace("\r\n", "\n");
        contents.push('\n');
        file.write_all(contents.as_bytes()).map_err(write_error)?;
        file.flush().map_err(write_error)?;
        Ok(file)
    }
}

/// Configuration for this one process, given as `GIT_CONFIG_COUNT`/`KEY_n`/`VALUE_n`
/// environment variables so nothing lands in argv, logs or the mirror's config file.
fn config_overrides(repo: &RepoAccess) -> Vec<(&'static str, String)> {
    let mut config = vec![
        ("credential.helper", String::new()),
        ("gc.autoDetach", "false".to_string()),
        ("maintenance.autoDetach", "false".to_string()),
        // Never run commands named by a URL (`ext::sh -c …`), whatever git's default.
        ("protocol.ext.allow", "never".to_string()),
    ];
    if repo.insecure {
        config.push(("http.sslVerify", "false".to_string()));
    }
    if let Some(proxy) = repo.proxy.as_deref().filter(|p| !p.is_empty()) {
        config.push(("http.proxy", proxy.to_string()));
    }
    config
}

/// Applies configuration overrides through the environment.
fn set_config(cmd: &mut tokio::process::Command, config: &[(&str, String)]) {
    cmd.env("GIT_CONFIG_COUNT", config.len().to_string());
    for (index, (key, value)) in config.iter().enumerate() {
        cmd.env(format!("GIT_CONFIG_KEY_{index}"), key)
            .env(format!("GIT_CONFIG_VALUE_{index}"), value);
    }
}

/// Hands HTTPS credentials to the askpass helper through the environment.
fn set_credentials(cmd: &mut tokio::process::Command, repo: &RepoAccess) {
    let password = repo.password.as_deref().unwrap_or_default();
    let username = match repo.username.as_deref().filter(|u| !u.is_empty()) {
        Some(user) => user,
        None if !password.is_empty() => DEFAULT_USERNAME,
        None => "",
    };
    cmd.env("KEELSON_GIT_USERNAME", username)
        .env("KEELSON_GIT_PASSWORD", password);
}

/// Turns a failed command's stderr into a typed, redacted error.
fn failure(repo: &RepoAccess, step: GitStep, url: String, stderr: &str) -> GitError {
    let secrets: Vec<&str> = [repo.password.as_deref(), repo.proxy.as_deref()]
        .into_iter()
        .flatten()
        .collect();
    let detail = redact_secrets(&stderr_detail(stderr), &secrets);
    if matches!(step, GitStep::Init | GitStep::Fsck) {
        return GitError::Command { step, url, detail };
    }
    match classify_stderr(stderr) {
        RemoteFailure::NotFound => GitError::RepositoryNotFound { url, detail },
        RemoteFailure::Authentication => GitError::AuthenticationFailed { url, detail },
        RemoteFailure::Unreachable => GitError::Unreachable { url, detail },
        RemoteFailure::Other => GitError::Command { step, url, detail },
    }
}

/// Kills the process group led by `pid` (git and its helpers: ssh, remote-https,
/// upload-pack). Errors are ignored: the group may already be gone.
fn kill_group(pid: Option<u32>) {
    let Some(pid) = pid.and_then(|p| i32::try_from(p).ok()) else {
        return;
    };
    if let Some(pid) = rustix::process::Pid::from_raw(pid) {
        let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
    }
}

/// Single-quotes a word for the shell that runs `GIT_SSH_COMMAND`.
fn shell_quote(word: &str) -> String {
    format!("'{}'", word.replace('\'', "'\\''"))
}

/// The error for a directory or file of the private state that could not be prepared.
fn prepare_error(path: &Path, source: std::io::Error) -> GitError {
    GitError::PrepareRoot {
        path: path.display().to_string(),
        source,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn askpass_answers_username_and_password_prompts() {
        let dir = tempfile::tempdir().unwrap();
        let cli = GitCli::new(PathBuf::from("git"), dir.path(), None).unwrap();
        let ask = |prompt: &str| {
            let out = std::process::Command::new(&cli.askpass)
                .arg(prompt)
                .env_clear()
                .env("KEELSON_GIT_USERNAME", "robot")
                .env("KEELSON_GIT_PASSWORD", "t0ken")
                .output()
                .unwrap();
            String::from_utf8(out.stdout).unwrap()
        };
        assert_eq!(ask("Username for 'https://h': "), "robot\n");
        assert_eq!(ask("Password for 'https://robot@h': "), "t0ken\n");
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&cli.keys_dir)
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o700);
    }

    #[test]
    fn ssh_keys_are_private_files_with_a_trailing_newline() {
        let dir = tempfile::tempdir().unwrap();
        let cli = GitCli::new(PathBuf::from("git"), dir.path(), None).unwrap();
        let key = cli
            .write_key("-----BEGIN KEY-----\r\nabc\r\n-----END KEY-----", "u")
            .unwrap();
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(key.path()).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(
            std::fs::read_to_string(key.path()).unwrap(),
            "-----BEGIN KEY-----\nabc\n-----END KEY-----\n"
        );
        let path = key.path().to_path_buf();
        drop(key);
        assert!(!path.exists(), "the key file is deleted after use");
    }

    #[test]
    fn quoting_survives_single_quotes() {
        assert_eq!(shell_quote("/a b/c'd"), "'/a b/c'\\''d'");
    }

    #[test]
    fn overrides_follow_access_flags() {
        let repo = RepoAccess {
            url: "https://h/r".into(),
            insecure: true,
            proxy: Some("http://p:3128".into()),
            ..RepoAccess::default()
        };
        let keys: Vec<&str> = config_overrides(&repo).iter().map(|(k, _)| *k).collect();
        assert!(keys.contains(&"http.sslVerify"));
        assert!(keys.contains(&"http.proxy"));
        let plain = RepoAccess {
            url: "https://h/r".into(),
            ..RepoAccess::default()
        };
        assert!(
            !config_overrides(&plain)
                .iter()
                .any(|(k, _)| *k == "http.sslVerify")
        );
    }
}
