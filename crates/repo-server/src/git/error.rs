//! The Git layer's error type, the git steps it names, and the pure classification of
//! git's stderr into failures a user can act on (missing repository, bad credentials,
//! unreachable host).

use std::time::Duration;

/// A git step that shells out to the `git` CLI.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GitStep {
    /// `git ls-remote` (revision resolution, connectivity test).
    LsRemote,
    /// `git init --bare` of a new mirror.
    Init,
    /// `git fetch` into a mirror (first clone or update).
    Fetch,
    /// `git fsck --connectivity-only` of a mirror after a failed fetch.
    Fsck,
}

impl std::fmt::Display for GitStep {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            GitStep::LsRemote => "ls-remote",
            GitStep::Init => "init",
            GitStep::Fetch => "fetch",
            GitStep::Fsck => "fsck",
        })
    }
}

/// Everything that can go wrong in the Git layer. URLs in messages are redacted.
#[derive(Debug, thiserror::Error)]
pub enum GitError {
    /// The mirror root or the private git home could not be prepared.
    #[error("preparing {path} for git mirrors")]
    PrepareRoot {
        /// The directory or file.
        path: String,
        /// The I/O failure.
        #[source]
        source: std::io::Error,
    },
    /// The remote says the repository does not exist (or is hidden from these credentials).
    #[error("repository {url} not found: {detail}")]
    RepositoryNotFound {
        /// Redacted repository URL.
        url: String,
        /// git's explanation, redacted.
        detail: String,
    },
    /// The remote rejected the credentials, or asked for some that were not given.
    #[error("authentication to {url} failed: {detail}")]
    AuthenticationFailed {
        /// Redacted repository URL.
        url: String,
        /// git's explanation, redacted.
        detail: String,
    },
    /// The host could not be reached (DNS, connection, TLS, proxy).
    #[error("repository {url} is unreachable: {detail}")]
    Unreachable {
        /// Redacted repository URL.
        url: String,
        /// git's explanation, redacted.
        detail: String,
    },
    /// No branch, tag or commit matches the revision.
    #[error("unable to resolve revision \"{revision}\" in {url}")]
    RevisionNotFound {
        /// The revision as asked.
        revision: String,
        /// Redacted repository URL.
        url: String,
    },
    /// A short SHA matches more than one object.
    #[error("revision \"{revision}\" is ambiguous in {url}: give more hex digits")]
    AmbiguousRevision {
        /// The revision as asked.
        revision: String,
        /// Redacted repository URL.
        url: String,
    },
    /// The revision names an object that is not a commit (a tree or a blob).
    #[error("revision \"{revision}\" in {url} is not a commit")]
    NotACommit {
        /// The revision as asked.
        revision: String,
        /// Redacted repository URL.
        url: String,
    },
    /// A git step ran past its time limit and was killed.
    #[error("git {step} of {url} timed out after {}s", after.as_secs_f64())]
    Timeout {
        /// The step.
        step: GitStep,
        /// Redacted repository URL.
        url: String,
        /// The limit.
        after: Duration,
    },
    /// A git step failed for another reason.
    #[error("git {step} of {url} failed: {detail}")]
    Command {
        /// The step.
        step: GitStep,
        /// Redacted repository URL.
        url: String,
        /// git's stderr, redacted and shortened.
        detail: String,
    },
    /// The git binary could not be started.
    #[error("starting {binary} for git {step}")]
    Spawn {
        /// The step.
        step: GitStep,
        /// The binary.
        binary: String,
        /// The I/O failure.
        #[source]
        source: std::io::Error,
    },
    /// The SSH private key could not be written to its temporary file.
    #[error("writing the ssh private key for {url}")]
    WriteSshKey {
        /// Redacted repository URL.
        url: String,
        /// The I/O failure.
        #[source]
        source: std::io::Error,
    },
    /// Moving a fresh clone into place failed.
    #[error("installing the mirror of {url} at {path}")]
    InstallMirror {
        /// Redacted repository URL.
        url: String,
        /// The mirror directory.
        path: String,
        /// The I/O failure.
        #[source]
        source: std::io::Error,
    },
    /// The mirror could not be opened by gix (missing or corrupt).
    #[error("opening the mirror of {url}")]
    OpenMirror {
        /// Redacted repository URL.
        url: String,
        /// gix's error.
        #[source]
        source: gix::Error,
    },
    /// An object could not be read from the mirror.
    #[error("reading object {id} from the mirror of {url}")]
    ReadObject {
        /// Redacted repository URL.
        url: String,
        /// The object id.
        id: String,
        /// gix's error.
        #[source]
        source: gix::Error,
    },
    /// An object referenced by the mirror is missing or of the wrong kind.
    #[error("object {id} is missing or damaged in the mirror of {url}")]
    DamagedObject {
        /// Redacted repository URL.
        url: String,
        /// The object id.
        id: String,
    },
    /// A tree entry's name would escape or corrupt a checkout (`..`, `/`, `.git`).
    #[error("unsafe path {path:?} in {url}")]
    UnsafePath {
        /// The offending path (lossy UTF-8).
        path: String,
        /// Redacted repository URL.
        url: String,
    },
    /// The tree has more entries or depth than the layer walks.
    #[error("the tree of {url} is too large (more than {limit} entries or levels)")]
    TreeTooLarge {
        /// Redacted repository URL.
        url: String,
        /// The limit that was hit.
        limit: usize,
    },
    /// Writing a checkout failed.
    #[error("writing {path} of a checkout")]
    WriteCheckout {
        /// The file or directory.
        path: String,
        /// The I/O failure.
        #[source]
        source: std::io::Error,
    },
    /// The glob given to `get_files` is invalid.
    #[error("invalid glob {glob:?}")]
    InvalidGlob {
        /// The glob.
        glob: String,
        /// globset's error.
        #[source]
        source: globset::Error,
    },
    /// The files matching a glob are larger in total than the limit.
    #[error("files matching {glob:?} in {url} exceed {limit} bytes")]
    FilesTooLarge {
        /// The glob.
        glob: String,
        /// Redacted repository URL.
        url: String,
        /// The limit in bytes.
        limit: u64,
    },
    /// A blocking gix task panicked or was cancelled.
    #[error("running a blocking git read")]
    BlockingTask {
        /// Tokio's join error.
        #[source]
        source: tokio::task::JoinError,
    },
}

impl GitError {
    /// Whether the error comes from the remote side (network, credentials, missing
    /// repository, time limit) rather than from the local mirror.
    pub fn is_remote(&self) -> bool {
        matches!(
            self,
            GitError::RepositoryNotFound { .. }
                | GitError::AuthenticationFailed { .. }
                | GitError::Unreachable { .. }
                | GitError::Timeout { .. }
        )
    }

    /// Whether the error means the local mirror is damaged and should be re-cloned.
    pub fn is_mirror_damage(&self) -> bool {
        matches!(
            self,
            GitError::OpenMirror { .. }
                | GitError::ReadObject { .. }
                | GitError::DamagedObject { .. }
        )
    }

    /// A copy of a remote failure, so requests that waited on one shared fetch or
    /// ls-remote get the same answer; `None` for errors that carry an I/O source.
    pub fn shareable(&self) -> Option<GitError> {
        Some(match self {
            GitError::RepositoryNotFound { url, detail } => GitError::RepositoryNotFound {
                url: url.clone(),
                detail: detail.clone(),
            },
            GitError::AuthenticationFailed { url, detail } => GitError::AuthenticationFailed {
                url: url.clone(),
                detail: detail.clone(),
            },
            GitError::Unreachable { url, detail } => GitError::Unreachable {
                url: url.clone(),
                detail: detail.clone(),
            },
            GitError::Timeout { step, url, after } => GitError::Timeout {
                step: *step,
                url: url.clone(),
                after: *after,
            },
            GitError::Command { step, url, detail } => GitError::Command {
                step: *step,
                url: url.clone(),
                detail: detail.clone(),
            },
            _ => return None,
        })
    }
}

/// What git's stderr says went wrong with a remote operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RemoteFailure {
    /// The repository does not exist or is not visible.
    NotFound,
    /// Credentials were rejected or missing, or the SSH host key was not trusted.
    Authentication,
    /// The host could not be reached.
    Unreachable,
    /// Anything else.
    Other,
}

/// Classifies git's stderr (`LC_ALL=C`) of a failed clone, fetch or ls-remote.
pub fn classify_stderr(stderr: &str) -> RemoteFailure {
    let text = stderr.to_ascii_lowercase();
    let has = |needles: &[&str]| needles.iter().any(|n| text.contains(n));
    if has(&[
        "authentication failed",
        "could not read username",
        "could not read password",
        "permission denied (publickey",
        "permission denied, please try again",
        "http basic: access denied",
        "invalid username or password",
        "host key verification failed",
        "the requested url returned error: 401",
        "the requested url returned error: 403",
        "terminal prompts disabled",
    ]) {
        RemoteFailure::Authentication
    } else if has(&[
        "repository not found",
        "does not appear to be a git repository",
        "' not found",
        "the requested url returned error: 404",
        "no such repository",
        "project not found",
    ]) {
        RemoteFailure::NotFound
    } else if has(&[
        "could not resolve host",
        "could not resolve hostname",
        "connection refused",
        "connection timed out",
        "failed to connect",
        "network is unreachable",
        "no route to host",
        "ssl certificate problem",
        "server certificate verification failed",
        "could not resolve proxy",
        "proxy connect aborted",
        "connection reset",
    ]) {
        RemoteFailure::Unreachable
    } else {
        RemoteFailure::Other
    }
}

/// The useful part of git's stderr: the `fatal:`/`error:`/`remote:` lines, at most
/// about 500 characters. Redaction is the caller's job.
pub fn stderr_detail(stderr: &str) -> String {
    let lines: Vec<&str> = stderr
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .filter(|l| !l.starts_with("hint:"))
        .collect();
    let important: Vec<&str> = lines
        .iter()
        .copied()
        .filter(|l| l.starts_with("fatal:") || l.starts_with("error:") || l.starts_with("remote:"))
        .collect();
    let chosen = if important.is_empty() {
        lines
    } else {
        important
    };
    let mut detail = chosen.join("; ");
    if detail.is_empty() {
        detail = "no error output".to_string();
    }
    if detail.len() > 500 {
        let mut cut = 500;
        while !detail.is_char_boundary(cut) {
            cut -= 1;
        }
        detail.truncate(cut);
        detail.push('…');
    }
    detail
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_common_git_failures() {
        assert_eq!(
            classify_stderr(
                "fatal: '/tmp/nope' does not appear to be a git repository\nfatal: Could not read from remote repository."
            ),
            RemoteFailure::NotFound
        );
        assert_eq!(
            classify_stderr(
                "remote: Repository not found.\nfatal: repository 'https://github.com/a/b/' not found"
            ),
            RemoteFailure::NotFound
        );
        assert_eq!(
            classify_stderr("fatal: Authentication failed for 'https://h/r/'"),
            RemoteFailure::Authentication
        );
        assert_eq!(
            classify_stderr("git@github.com: Permission denied (publickey)."),
            RemoteFailure::Authentication
        );
        assert_eq!(
            classify_stderr("fatal: unable to access 'https://x/': Could not resolve host: x"),
            RemoteFailure::Unreachable
        );
        assert_eq!(classify_stderr("fatal: bad object"), RemoteFailure::Other);
    }

    #[test]
    fn detail_keeps_fatal_lines() {
        assert_eq!(
            stderr_detail("hint: x\nwarning: y\nfatal: broken\n"),
            "fatal: broken"
        );
        assert_eq!(stderr_detail(""), "no error output");
        assert!(stderr_detail(&"x".repeat(2000)).len() < 510);
    }
}
