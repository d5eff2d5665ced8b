//! Pure revision handling: recognising full and abbreviated SHAs, parsing `git
//! ls-remote` output, and matching a revision against the remote's refs the way Argo CD
//! does (`HEAD`, a full ref name, a branch, then a tag; annotated tags peeled).

use std::collections::HashMap;

/// The refs a remote advertises, each mapped to the commit it points at.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RemoteRefs {
    refs: HashMap<String, String>,
}

impl RemoteRefs {
    /// Parses `git ls-remote` output (`<sha>\t<ref>` lines; `<ref>^{}` lines carry the
    /// commit an annotated tag points at and win over the tag object's own id).
    pub fn parse(stdout: &str) -> RemoteRefs {
        let mut direct = HashMap::new();
        let mut peeled = HashMap::new();
        for line in stdout.lines() {
            let Some((sha, name)) = line.trim_end().split_once('\t') else {
                continue;
            };
            let sha = sha.trim().to_ascii_lowercase();
            if !is_full_sha(&sha) {
                continue;
            }
            match name.strip_suffix("^{}") {
                Some(tag) => peeled.insert(tag.to_string(), sha),
                None => direct.insert(name.to_string(), sha),
            };
        }
        for (name, sha) in peeled {
            direct.insert(name, sha);
        }
        RemoteRefs { refs: direct }
    }

    /// The commit `revision` names: `HEAD` or a full ref name as is, else
    /// `refs/heads/<revision>`, else `refs/tags/<revision>`.
    pub fn lookup(&self, revision: &str) -> Option<&str> {
        let candidates = [
            revision.to_string(),
            format!("refs/heads/{revision}"),
            format!("refs/tags/{revision}"),
        ];
        candidates
            .iter()
            .find_map(|name| self.refs.get(name))
            .map(String::as_str)
    }

    /// Number of refs.
    pub fn len(&self) -> usize {
        self.refs.len()
    }

    /// Whether the remote advertised no refs (an empty repository).
    pub fn is_empty(&self) -> bool {
        self.refs.is_empty()
    }
}

/// A full 40-digit hexadecimal SHA-1.
pub fn is_full_sha(revision: &str) -> bool {
    revision.len() == 40 && revision.bytes().all(|b| b.is_ascii_hexdigit())
}

/// An abbreviated SHA: 4 to 39 hexadecimal digits.
pub fn is_short_sha(revision: &str) -> bool {
    (4..40).contains(&revision.len()) && revision.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The revision actually meant: trimmed, `""` → `HEAD`.
pub fn effective_revision(revision: &str) -> &str {
    match revision.trim() {
        "" => "HEAD",
        rev => rev,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    const B: &str = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
    const C: &str = "cccccccccccccccccccccccccccccccccccccccc";

    #[test]
    fn lookup_prefers_exact_then_branch_then_tag() {
        let out = format!(
            "{A}\tHEAD\n{A}\trefs/heads/main\n{B}\trefs/heads/v1\n{C}\trefs/tags/v1\n{B}\trefs/tags/v2\n{A}\trefs/tags/v2^{{}}\ngarbage\n"
        );
        let refs = RemoteRefs::parse(&out);
        assert_eq!(refs.lookup("HEAD"), Some(A));
        assert_eq!(refs.lookup("main"), Some(A));
        assert_eq!(refs.lookup("refs/heads/main"), Some(A));
        assert_eq!(refs.lookup("v1"), Some(B));
        assert_eq!(refs.lookup("refs/tags/v1"), Some(C));
        assert_eq!(refs.lookup("v2"), Some(A), "annotated tags are peeled");
        assert_eq!(refs.lookup("nope"), None);
        assert_eq!(refs.len(), 5);
    }

    #[test]
    fn sha_shapes() {
        assert!(is_full_sha(A));
        assert!(!is_full_sha("abc"));
        assert!(is_short_sha("abcd"));
        assert!(!is_short_sha("abc"));
        assert!(!is_short_sha("main"));
        assert!(!is_short_sha(A));
        assert_eq!(effective_revision("  "), "HEAD");
        assert_eq!(effective_revision(" main "), "main");
    }
}
