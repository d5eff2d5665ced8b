//! Pure helpers on repository URLs: the normalised form that names a mirror, and
//! redaction of credentials from URLs and from free text (git's stderr) before anything
//! is logged or returned to a user.

use sha2::{Digest, Sha256};

/// What replaces a credential in redacted text.
const REDACTED: &str = "***";

/// The normalised form of a repository URL: trimmed, no credentials, scheme and host
/// lowercased, no trailing `/` or `.git`. Two spellings of one repository share a mirror.
pub fn normalize(url: &str) -> String {
    let url = url.trim();
    let mut out = match url.split_once("://") {
        Some((scheme, rest)) => {
            let (authority, path) = match rest.find('/') {
                Some(at) => rest.split_at(at),
                None => (rest, ""),
            };
            let host = match authority.rsplit_once('@') {
                Some((_, host)) => host,
                None => authority,
            };
            format!(
                "{}://{}{}",
                scheme.to_ascii_lowercase(),
                host.to_ascii_lowercase(),
                path
            )
        }
        None => match scp_parts(url) {
            Some((user, host, path)) => {
                format!("{user}{}:{path}", host.to_ascii_lowercase())
            }
            None => url.to_string(),
        },
    };
    while out.ends_with('/') {
        out.pop();
    }
    if let Some(stripped) = out.strip_suffix(".git") {
        out = stripped.to_string();
    }
    out
}

/// The directory name of the mirror of `url`: hex sha256 of its normalised form.
pub fn mirror_dir_name(url: &str) -> String {
    hex::encode(Sha256::digest(normalize(url).as_bytes()))
}

/// `url` without credentials: `https://user:token@host/x` becomes `https://***@host/x`;
/// for other schemes only the password is hidden (`ssh://git:***@host/x`).
pub fn redact_url(url: &str) -> String {
    redact_text(url)
}

/// Hides the user information of every `scheme://userinfo@host` URL inside `text`.
pub fn redact_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("://") {
        let (before, after) = rest.split_at(at + 3);
        out.push_str(before);
        let scheme_start = before[..at]
            .rfind(|c: char| !(c.is_ascii_alphanumeric() || c == '+' || c == '-' || c == '.'))
            .map_or(0, |i| i + 1);
        let scheme = before[scheme_start..at].to_ascii_lowercase();
        let end = after
            .find(|c: char| c == '/' || c.is_whitespace() || c == '\'' || c == '"')
            .unwrap_or(after.len());
        let authority = &after[..end];
        match authority.rsplit_once('@') {
            Some((userinfo, host)) => {
                if scheme.starts_with("http") {
                    out.push_str(REDACTED);
                } else {
                    match userinfo.split_once(':') {
                        Some((user, _)) => {
                            out.push_str(user);
                            out.push(':');
                            out.push_str(REDACTED);
                        }
                        None => out.push_str(userinfo),
                    }
                }
                out.push('@');
                out.push_str(host);
            }
            None => out.push_str(authority),
        }
        rest = &after[end..];
    }
    out.push_str(rest);
    out
}

/// Replaces every occurrence of each non-empty secret in `text`.
pub fn redact_secrets(text: &str, secrets: &[&str]) -> String {
    let mut out = redact_text(text);
    for secret in secrets.iter().filter(|s| s.len() >= 3) {
        out = out.replace(secret, REDACTED);
    }
    out
}

/// Splits an scp-like SSH address `user@host:path` into (`user@`, `host`, `path`).
fn scp_parts(url: &str) -> Option<(&str, &str, &str)> {
    let (authority, path) = url.split_once(':')?;
    if authority.contains('/') || path.starts_with("//") {
        return None;
    }
    match authority.rsplit_once('@') {
        Some((user, host)) => Some((&url[..user.len() + 1], host, path)),
        None => Some(("", authority, path)),
    }
}

/// Whether `url` uses SSH (an `ssh://` URL or an scp-like `user@host:path`).
pub fn is_ssh(url: &str) -> bool {
    let url = url.trim();
    match url.split_once("://") {
        Some((scheme, _)) => scheme.eq_ignore_ascii_case("ssh") || scheme.contains("ssh"),
        None => scp_parts(url).is_some_and(|(user, _, _)| !user.is_empty()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalize_drops_credentials_case_and_suffixes() {
        assert_eq!(
            normalize(" HTTPS://User:Tok@GitHub.com/Org/Repo.git/ "),
            "https://github.com/Org/Repo"
        );
        assert_eq!(
            normalize("git@GitHub.com:Org/Repo.git"),
            "git@github.com:Org/Repo"
        );
        assert_eq!(normalize("file:///tmp/Repo"), "file:///tmp/Repo");
        assert_eq!(
            mirror_dir_name("https://github.com/org/repo"),
            mirror_dir_name("https://x:y@GITHUB.com/org/repo.git")
        );
        assert_ne!(
            mirror_dir_name("file:///tmp/a"),
            mirror_dir_name("file:///tmp/A")
        );
    }

    #[test]
    fn redaction_hides_userinfo() {
        assert_eq!(
            redact_url("https://user:secret@host/x.git"),
            "https://***@host/x.git"
        );
        assert_eq!(
            redact_url("https://token@host/x.git"),
            "https://***@host/x.git"
        );
        assert_eq!(
            redact_url("ssh://git:pw@host:22/x"),
            "ssh://git:***@host:22/x"
        );
        assert_eq!(redact_url("git@host:org/x"), "git@host:org/x");
        assert_eq!(
            redact_text("fatal: unable to access 'https://a:b@h/r/': 403"),
            "fatal: unable to access 'https://***@h/r/': 403"
        );
        assert_eq!(
            redact_secrets("password hunter2 leaked", &["hunter2", ""]),
            "password *** leaked"
        );
    }

    #[test]
    fn ssh_detection() {
        assert!(is_ssh("git@github.com:org/repo"));
        assert!(is_ssh("ssh://git@github.com/org/repo"));
        assert!(!is_ssh("https://github.com/org/repo"));
        assert!(!is_ssh("file:///tmp/repo"));
        assert!(!is_ssh("/tmp/repo"));
    }
}
