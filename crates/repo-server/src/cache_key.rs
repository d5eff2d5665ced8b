//! Cache keys of rendered manifests: `(repo, resolved commit, path, source options,
//! tracking settings, kube version and API versions)`, and the revision-independent
//! key under which the last rendered commit of an app source is remembered, so that a
//! commit that does not touch the app's `manifest-generate-paths` reuses the previous
//! result (Argo CD's `argocd.argoproj.io/manifest-generate-paths`).

use keelson_proto::repo_server::ManifestRequest;
use sha2::{Digest, Sha256};

/// Version of the cached value format; bump to invalidate every entry.
const FORMAT: &str = "v1";

/// The key of the manifests of `req` rendered at commit `sha`.
pub fn manifests_key(req: &ManifestRequest, sha: &str) -> String {
    format!("mfst|{FORMAT}|{}|{sha}", source_hash(req))
}

/// The key remembering the last commit rendered for this source (any revision).
pub fn last_commit_key(req: &ManifestRequest) -> String {
    format!("last|{FORMAT}|{}", source_hash(req))
}

/// Hash of everything that shapes the output except the revision: the source (as
/// canonical JSON, keys sorted), repository URL, app name and namespace, tracking, kube
/// version and API versions. Credentials and the no-cache flag do not count.
pub fn source_hash(req: &ManifestRequest) -> String {
    let mut hasher = Sha256::new();
    let mut field = |bytes: &[u8]| {
        hasher.update((bytes.len() as u64).to_le_bytes());
        hasher.update(bytes);
    };
    field(normalise_url(req.repo.as_ref().map_or("", |r| r.url.as_str())).as_bytes());
    let mut source: serde_json::Value =
        serde_json::from_str(&req.source_json).unwrap_or(serde_json::Value::Null);
    // The revision is keyed as the resolved commit, not as the requested name.
    if let Some(map) = source.as_object_mut() {
        map.remove("targetRevision");
    }
    field(canonical_json(&source).as_bytes());
    field(req.app_name.as_bytes());
    field(req.namespace.as_bytes());
    let tracking = req.tracking.clone().unwrap_or_default();
    for t in [
        &tracking.method,
        &tracking.label_key,
        &tracking.app_instance,
    ] {
        field(t.as_bytes());
    }
    field(req.kube_version.as_bytes());
    let mut apis = req.api_versions.clone();
    apis.sort();
    field(apis.join(",").as_bytes());
    hex::encode(&hasher.finalize()[..16])
}

/// JSON with object keys sorted at every level, so equal values hash equally.
fn canonical_json(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::Object(map) => {
            let mut entries: Vec<_> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            let inner: Vec<String> = entries
                .iter()
                .map(|(k, v)| {
                    format!(
                        "{}:{}",
                        serde_json::Value::String((*k).clone()),
                        canonical_json(v)
                    )
                })
                .collect();
            format!("{{{}}}", inner.join(","))
        }
        serde_json::Value::Array(items) => format!(
            "[{}]",
            items
                .iter()
                .map(canonical_json)
                .collect::<Vec<_>>()
                .join(",")
        ),
        other => other.to_string(),
    }
}

/// A repository URL in the form used for keys: lower-case scheme and host, no
/// trailing `.git` or slash.
pub fn normalise_url(url: &str) -> String {
    let trimmed = url.trim().trim_end_matches('/');
    let trimmed = trimmed.strip_suffix(".git").unwrap_or(trimmed);
    match trimmed.split_once("://") {
        Some((scheme, rest)) => {
            let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
            format!(
                "{}://{}/{}",
                scheme.to_ascii_lowercase(),
                host.to_ascii_lowercase(),
                path
            )
        }
        None => trimmed.to_owned(),
    }
}

/// Whether a change to `changed` paths can affect an app whose
/// `manifest-generate-paths` annotation is `annotation` (`;`-separated; relative paths
/// are relative to the app path, absolute ones to the repo root).
pub fn paths_affected(annotation: &str, app_path: &str, changed: &[String]) -> bool {
    let app = app_path.trim_matches('/');
    let prefixes: Vec<String> = annotation
        .split(';')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|p| match p.strip_prefix('/') {
            Some(abs) => abs.trim_matches('/').to_owned(),
            None => normalise_path(&format!("{app}/{p}")),
        })
        .collect();
    if prefixes.is_empty() {
        return true;
    }
    changed.iter().any(|c| {
        let c = c.trim_matches('/');
        prefixes
            .iter()
            .any(|p| p.is_empty() || c == p || c.starts_with(&format!("{p}/")))
    })
}

/// Resolves `.` and `..` segments (never above the root).
fn normalise_path(p: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    for seg in p.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            s => out.push(s),
        }
    }
    out.join("/")
}

#[cfg(test)]
mod tests {
    use super::*;
    use keelson_proto::repo_server::Repository;

    fn req(rev: &str) -> ManifestRequest {
        ManifestRequest {
            repo: Some(Repository {
                url: "https://Example.com/org/repo.git".into(),
                password: "secret".into(),
                ..Default::default()
            }),
            revision: rev.into(),
            source_json: r#"{"repoURL": "https://example.com/org/repo", "path": "apps/a", "targetRevision": "main"}"#.into(),
            ..Default::default()
        }
    }

    #[test]
    fn keys_ignore_revision_and_credentials_but_not_options() {
        assert_eq!(source_hash(&req("main")), source_hash(&req("v1")));
        let mut other = req("main");
        if let Some(r) = other.repo.as_mut() {
            r.password = "other".into();
        }
        assert_eq!(source_hash(&req("main")), source_hash(&other));
        other.source_json = other.source_json.replace("apps/a", "apps/b");
        assert_ne!(source_hash(&req("main")), source_hash(&other));
        assert_ne!(manifests_key(&req("x"), "a"), manifests_key(&req("x"), "b"));
        let mut reordered = req("main");
        reordered.source_json = r#"{"targetRevision": "v2", "path": "apps/a", "repoURL": "https://example.com/org/repo"}"#.into();
        assert_eq!(
            source_hash(&reordered),
            source_hash(&req("main")),
            "key order and targetRevision do not matter"
        );
        let mut helm = req("main");
        helm.source_json = helm
            .source_json
            .replace("}", r#", "helm": {"releaseName": "r"}}"#);
        assert_ne!(source_hash(&helm), source_hash(&req("main")));
    }

    #[test]
    fn generate_paths_are_relative_to_the_app() {
        let changed = vec!["apps/b/deploy.yaml".to_owned()];
        assert!(!paths_affected(".", "apps/a", &changed));
        assert!(paths_affected(".", "apps/b", &changed));
        assert!(paths_affected("../b", "apps/a", &changed));
        assert!(paths_affected("/apps", "apps/a", &changed));
        assert!(!paths_affected("/other;.", "apps/a", &changed));
        assert!(
            paths_affected("", "apps/a", &changed),
            "an empty annotation means every change counts"
        );
        assert_eq!(
            normalise_url("HTTPS://GitHub.com/Org/Repo.git/"),
            "https://github.com/Org/Repo"
        );
    }
}
