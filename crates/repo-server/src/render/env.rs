//! The build environment Argo CD gives manifest generation (`ARGOCD_APP_NAME`,
//! `ARGOCD_APP_REVISION`, ...) and its `$VAR` / `${VAR}` substitution (`$$` is a literal `$`,
//! unknown variables expand to nothing), used for Jsonnet variables, Helm parameters,
//! Kustomize options and plugin environments.

use crate::render::RenderRequest;

/// Name/value pairs of the build environment, in Argo CD's order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BuildEnv {
    /// The variables.
    pub vars: Vec<(String, String)>,
}

impl BuildEnv {
    /// The environment for one request.
    pub fn new(req: &RenderRequest<'_>) -> Self {
        let short = |n: usize| req.revision.chars().take(n).collect::<String>();
        let vars = vec![
            ("ARGOCD_APP_NAME".into(), req.app_name.into()),
            ("ARGOCD_APP_NAMESPACE".into(), req.namespace.into()),
            ("ARGOCD_APP_REVISION".into(), req.revision.into()),
            ("ARGOCD_APP_REVISION_SHORT".into(), short(7)),
            ("ARGOCD_APP_REVISION_SHORT_8".into(), short(8)),
            ("ARGOCD_APP_SOURCE_REPO_URL".into(), req.repo_url.into()),
            ("ARGOCD_APP_SOURCE_PATH".into(), req.path.into()),
            (
                "ARGOCD_APP_SOURCE_TARGET_REVISION".into(),
                req.source.target_revision.clone().unwrap_or_default(),
            ),
        ];
        BuildEnv { vars }
    }

    /// The value of `name`, if set.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.vars
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Expands `$NAME`, `${NAME}` and `$$` in `text`.
    pub fn substitute(&self, text: &str) -> String {
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        while let Some(pos) = rest.find('$') {
            out.push_str(&rest[..pos]);
            let after = &rest[pos + 1..];
            if let Some(tail) = after.strip_prefix('$') {
                out.push('$');
                rest = tail;
            } else if let Some(body) = after.strip_prefix('{') {
                match body.find('}') {
                    Some(end) => {
                        out.push_str(self.get(&body[..end]).unwrap_or(""));
                        rest = &body[end + 1..];
                    }
                    None => {
                        // Invalid syntax: the characters are dropped, as Go's os.Expand does.
                        rest = "";
                    }
                }
            } else {
                let len = after
                    .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                    .unwrap_or(after.len());
                if len == 0 {
                    out.push('$');
                } else {
                    out.push_str(self.get(&after[..len]).unwrap_or(""));
                }
                rest = &after[len..];
            }
        }
        out.push_str(rest);
        out
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn substitution_follows_os_expand() {
        let env = BuildEnv {
            vars: vec![("ARGOCD_APP_NAME".into(), "guestbook".into())],
        };
        assert_eq!(env.substitute("app-$ARGOCD_APP_NAME"), "app-guestbook");
        assert_eq!(env.substitute("${ARGOCD_APP_NAME}-x"), "guestbook-x");
        assert_eq!(env.substitute("$$ARGOCD_APP_NAME"), "$ARGOCD_APP_NAME");
        assert_eq!(env.substitute("$UNKNOWN!"), "!");
        assert_eq!(env.substitute("cost: 5$"), "cost: 5$");
        assert_eq!(env.substitute("a $ b"), "a $ b");
    }
}
