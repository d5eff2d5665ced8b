//! The fleet tests' Git fixture (one repository per cluster, one directory per app with
//! one ConfigMap) and the Application manifest pointing at it.

use std::collections::{BTreeMap, BTreeSet};

use keelson_testbed::GitRepo;
use serde_json::{Value, json};

use super::{APP_NS, NS};

/// An automated Application with one directory of the fixture.
pub fn app_manifest(name: &str, repo_url: &str, path: &str, server: &str) -> Value {
    json!({
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Application",
        "metadata": {"name": name, "namespace": NS},
        "spec": {
            "project": "default",
            "source": {"repoURL": repo_url, "path": path, "targetRevision": "HEAD"},
            "destination": {"server": server, "namespace": APP_NS},
            "syncPolicy": {"automated": {"prune": true, "selfHeal": true}},
        }
    })
}

/// A ConfigMap manifest (YAML).
pub fn cm_yaml(name: &str, value: &str) -> String {
    format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\ndata:\n  key: \"{value}\"\n"
    )
}

/// The fixture: `repos` Git repositories; app `i` lives in repository `i % repos`, in
/// directory `apps/<app>` holding one ConfigMap. Apps start on cluster `i % clusters`,
/// so with as many repositories as clusters a commit to one repository changes the
/// apps of one cluster only (and no other app's revision moves).
pub struct Fixture {
    pub repos: Vec<GitRepo>,
    pub apps: usize,
}

impl Fixture {
    /// Creates the repositories with every app at `value`; returns each app's revision.
    pub fn new(
        apps: usize,
        repos: usize,
        value: &str,
    ) -> anyhow::Result<(Fixture, BTreeMap<String, String>)> {
        let fx = Fixture {
            repos: (0..repos.max(1))
                .map(|_| GitRepo::init())
                .collect::<Result<Vec<_>, _>>()?,
            apps,
        };
        let revs = fx.commit_all(value)?;
        Ok((fx, revs))
    }

    /// The name of app `i`.
    pub fn app_name(i: usize) -> String {
        format!("app-{i:04}")
    }

    /// The repository index of app `i`.
    pub fn repo_of(&self, i: usize) -> usize {
        i % self.repos.len()
    }

    /// The repository URL of app `i`.
    pub fn url_of(&self, i: usize) -> String {
        self.repos[self.repo_of(i)].url()
    }

    /// Rewrites every app's ConfigMap with `value` and commits; returns every app's revision.
    pub fn commit_all(&self, value: &str) -> anyhow::Result<BTreeMap<String, String>> {
        let all: Vec<usize> = (0..self.apps).collect();
        self.commit_some(&all, value)
    }

    /// Rewrites the ConfigMaps of apps `indexes` with `value` and commits the repositories
    /// holding them; returns every app's revision (HEAD of its repository).
    pub fn commit_some(
        &self,
        indexes: &[usize],
        value: &str,
    ) -> anyhow::Result<BTreeMap<String, String>> {
        let mut touched = BTreeSet::new();
        for i in indexes {
            let n = Fixture::app_name(*i);
            self.repos[self.repo_of(*i)].write(
                &format!("apps/{n}/cm.yaml"),
                cm_yaml(&format!("cm-{n}"), value),
            )?;
            touched.insert(self.repo_of(*i));
        }
        for r in touched {
            self.repos[r].commit(&format!("apps at {value}"))?;
        }
        let heads = self
            .repos
            .iter()
            .map(GitRepo::head)
            .collect::<Result<Vec<_>, _>>()?;
        Ok((0..self.apps)
            .map(|i| (Fixture::app_name(i), heads[self.repo_of(i)].clone()))
            .collect())
    }
}
