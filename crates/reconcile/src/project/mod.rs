//! AppProject rules: which source repositories, destinations and resource kinds a
//! project permits, the permissive `default` project, and the `InvalidSpecError`
//! conditions and per-resource messages Argo CD reports when a rule is broken.
//!
//! Semantics follow Argo CD (`AppProject.IsSourcePermitted`, `isDestinationMatched`,
//! `IsGroupKindPermitted`, `util/argo.ValidatePermissions`):
//!
//! * **Sources.** Both the rule and the application's repo URL are normalised like
//!   `git.NormalizeGitURL` (trimmed, lower-cased, `git@host:path` → `host/path`,
//!   `ssh://` dropped, trailing `.git` dropped) and additionally lose a trailing `/`.
//!   Rules are gobwas globs with `/` as separator (`*` stays in one path segment, `**`
//!   crosses segments, a bare `*` allows everything). A rule starting with `!` denies
//!   what its glob matches, and a deny wins over every allow. As in Argo CD, a deny rule
//!   also counts as an allow for the URLs it does not match.
//! * **Destinations.** Each entry's `server`, `name` and `namespace` are globs without
//!   separator; an entry matches when (server or name) and namespace match. Any field
//!   of any entry written `!glob` whose glob matches the destination denies it, whatever
//!   the entry's other fields say (Argo CD's rule).
//! * **Resources.** Cluster-scoped kinds need a `clusterResourceWhitelist` match (absent
//!   or empty: nothing) and no `clusterResourceBlacklist` match; namespaced kinds need a
//!   `namespaceResourceWhitelist` match when the list is present (an explicitly empty
//!   list allows nothing) and no `namespaceResourceBlacklist` match. Group and kind are
//!   `filepath.Match` globs.

mod glob;

use keelson_model::application::ApplicationDestination;
use keelson_model::application_status::{ApplicationCondition, CONDITION_INVALID_SPEC_ERROR};
use keelson_model::project::{AppProject, AppProjectSpec, GroupKind};
use keelson_model::{Application, ApplicationSource};
use serde_json::Value;

use glob::{Dialect, glob_match};

/// Name of the project used when an Application names none.
pub const DEFAULT_PROJECT: &str = "default";

/// The permissive `default` project Argo CD creates when none exists: every repository,
/// every destination (by server or by name), every cluster-scoped kind.
pub fn default_project(namespace: &str) -> AppProject {
    let spec = AppProjectSpec {
        source_repos: Some(vec!["*".to_owned()]),
        destinations: Some(vec![ApplicationDestination {
            server: Some("*".to_owned()),
            name: Some("*".to_owned()),
            namespace: Some("*".to_owned()),
            ..ApplicationDestination::default()
        }]),
        cluster_resource_whitelist: Some(vec![GroupKind {
            group: Some("*".to_owned()),
            kind: "*".to_owned(),
            ..GroupKind::default()
        }]),
        ..AppProjectSpec::default()
    };
    AppProject::new(DEFAULT_PROJECT, namespace, spec)
}

/// Whether the project's `sourceRepos` permit `repo_url` (see the module docs).
pub fn source_permitted(project: &AppProject, repo_url: &str) -> bool {
    let source = normalize_repo_url(repo_url);
    let mut any_allowed = false;
    for rule in project.spec.source_repos.iter().flatten() {
        let (deny, pattern) = split_deny(rule);
        let pattern = normalize_repo_url(pattern);
        let matched = glob_rule(&pattern, &source, Some('/'));
        if deny && matched {
            return false;
        }
        // A deny rule that does not match counts as an allow, as in Argo CD.
        any_allowed |= deny || matched;
    }
    any_allowed
}

/// Whether the project's `destinations` permit deploying to `namespace` on the cluster
/// with API server `server` (and, when known, cluster name `name`). Pass the cluster's
/// name even when the application names its destination by server: Argo CD matches
/// both against the project's entries.
pub fn destination_permitted(
    project: &AppProject,
    server: &str,
    name: Option<&str>,
    namespace: &str,
) -> bool {
    let name = name.unwrap_or_default();
    let mut any_matched = false;
    let mut denied = false;
    for entry in project.spec.destinations.iter().flatten() {
        let entry_server = entry.server.as_deref().unwrap_or_default();
        let entry_name = entry.name.as_deref().unwrap_or_default();
        let entry_namespace = entry.namespace.as_deref().unwrap_or_default();
        let name_matched = !name.is_empty() && field_matches(entry_name, name);
        let server_matched = !server.is_empty() && field_matches(entry_server, server);
        let namespace_matched = field_matches(entry_namespace, namespace);
        if (server_matched || name_matched) && namespace_matched {
            any_matched = true;
        } else if (!name_matched && is_deny(entry_name))
            || (!server_matched && is_deny(entry_server))
            || (!namespace_matched && is_deny(entry_namespace))
        {
            denied = true;
        }
    }
    any_matched && !denied
}

/// Whether the project permits resources of `group`/`kind` (cluster-scoped when
/// `namespaced` is false); see the module docs.
pub fn resource_permitted(project: &AppProject, group: &str, kind: &str, namespaced: bool) -> bool {
    let spec = &project.spec;
    let (allowed, blocked) = if namespaced {
        let allowed = match &spec.namespace_resource_whitelist {
            None => true,
            Some(list) => in_list(list, group, kind),
        };
        let blocked = spec
            .namespace_resource_blacklist
            .as_deref()
            .is_some_and(|list| in_list(list, group, kind));
        (allowed, blocked)
    } else {
        let allowed = spec
            .cluster_resource_whitelist
            .as_deref()
            .is_some_and(|list| in_list(list, group, kind));
        let blocked = spec
            .cluster_resource_blacklist
            .as_deref()
            .is_some_and(|list| in_list(list, group, kind));
        (allowed, blocked)
    };
    allowed && !blocked
}

/// Why a resource may not be synced (see [`resource_denial`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResourceDenial {
    /// The group/kind is not permitted (allow/deny lists).
    Kind,
    /// The group/kind is permitted, but not the resource's namespace on this cluster.
    Namespace,
}

/// Checks one resource against the project the way Argo CD's sync permission validator
/// does: first its group/kind, then (namespaced resources) its namespace as a
/// destination on the application's cluster. `None` when it is permitted; otherwise
/// render the reason with [`resource_denied_message`].
pub fn resource_denial(
    project: &AppProject,
    group: &str,
    kind: &str,
    namespace: Option<&str>,
    server: &str,
    cluster_name: Option<&str>,
) -> Option<ResourceDenial> {
    let namespace = namespace.filter(|ns| !ns.is_empty());
    if !resource_permitted(project, group, kind, namespace.is_some()) {
        return Some(ResourceDenial::Kind);
    }
    match namespace {
        Some(ns) if !destination_permitted(project, server, cluster_name, ns) => {
            Some(ResourceDenial::Namespace)
        }
        _ => None,
    }
}

/// Argo CD's message for a resource the project does not permit: with `namespace`
/// `Some(ns)` the namespace was refused (`namespace N is not permitted in project 'P'`),
/// otherwise the group/kind (`resource G:K is not permitted in project P`).
pub fn resource_denied_message(
    group: &str,
    kind: &str,
    namespace: Option<&str>,
    project: &str,
) -> String {
    match namespace {
        Some(ns) => format!("namespace {ns} is not permitted in project '{project}'"),
        None => format!("resource {group}:{kind} is not permitted in project {project}"),
    }
}

/// The `InvalidSpecError` conditions Argo CD raises for `app` under `project`: one per
/// source repository (including a source hydrator's dry source) the project does not
/// permit, and one when the destination is not permitted. `server` is the resolved API
/// server URL of the destination cluster and `cluster_name` its name, when known. The
/// conditions carry no `lastTransitionTime`; the caller stamps it.
pub fn check_application(
    project: &AppProject,
    app: &Application,
    server: &str,
    cluster_name: Option<&str>,
) -> Vec<ApplicationCondition> {
    let project_name = app.spec.project_or_default();
    let mut conditions = Vec::new();
    let mut repos: Vec<&str> = app
        .spec
        .effective_sources()
        .into_iter()
        .map(|source: &ApplicationSource| source.repo_url.as_str())
        .collect();
    if let Some(dry) = hydrator_dry_repo(app) {
        repos.push(dry);
    }
    for repo in repos {
        if !source_permitted(project, repo) {
            conditions.push(invalid_spec(format!(
                "application repo {repo} is not permitted in project '{project_name}'"
            )));
        }
    }
    let namespace = app
        .spec
        .destination
        .namespace
        .as_deref()
        .unwrap_or_default();
    let cluster_name = cluster_name.or(app.spec.destination.name());
    if !destination_permitted(project, server, cluster_name, namespace) {
        conditions.push(invalid_spec(format!(
            "application destination server '{server}' and namespace '{namespace}' do not \
             match any of the allowed destinations in project '{project_name}'"
        )));
    }
    conditions
}

/// The condition Argo CD sets when the Application's project does not exist.
pub fn project_missing_condition(name: &str) -> ApplicationCondition {
    invalid_spec(format!(
        "Application referencing project {name} which does not exist"
    ))
}

fn invalid_spec(message: String) -> ApplicationCondition {
    ApplicationCondition {
        type_: CONDITION_INVALID_SPEC_ERROR.to_owned(),
        message,
        last_transition_time: None,
    }
}

/// `spec.sourceHydrator.drySource.repoURL`, which Keelson keeps as an unmodelled field.
fn hydrator_dry_repo(app: &Application) -> Option<&str> {
    app.spec
        .extra
        .get("sourceHydrator")?
        .get("drySource")?
        .get("repoURL")
        .and_then(Value::as_str)
        .filter(|repo| !repo.is_empty())
}

/// Normalises a repository URL for comparison the way Argo CD's `NormalizeGitURL` does
/// (plus dropping a trailing `/`).
pub fn normalize_repo_url(url: &str) -> String {
    let mut url = url.trim().to_lowercase();
    if is_ssh_url(&url) && !url.starts_with("ssh://") {
        url = format!("ssh://{}", url.replacen(':', "/", 1));
    }
    let mut url = url.as_str();
    while let Some(stripped) = url.strip_suffix('/') {
        url = stripped;
    }
    let url = url.strip_suffix(".git").unwrap_or(url);
    url.strip_prefix("ssh://").unwrap_or(url).to_owned()
}

/// Argo CD's SSH URL test: `[ssh://]user@rest` with a user part free of `/` and `:` and
/// exactly one `@`.
fn is_ssh_url(url: &str) -> bool {
    let rest = url.strip_prefix("ssh://").unwrap_or(url);
    match rest.split_once('@') {
        Some((user, host)) => !user.contains(['/', ':']) && !host.is_empty() && !host.contains('@'),
        None => false,
    }
}

fn split_deny(rule: &str) -> (bool, &str) {
    match rule.strip_prefix('!') {
        Some(pattern) => (true, pattern),
        None => (false, rule),
    }
}

fn is_deny(pattern: &str) -> bool {
    pattern.starts_with('!')
}

/// A destination field: `!glob` matches what the glob does not match (Argo CD's
/// `globMatch(..., allowNegation=true)`), otherwise the glob itself.
fn field_matches(pattern: &str, value: &str) -> bool {
    match split_deny(pattern) {
        (true, glob) => !glob_rule(glob, value, None),
        (false, glob) => glob_rule(glob, value, None),
    }
}

/// A bare `*` matches everything (even across separators); anything else is a gobwas
/// glob.
fn glob_rule(pattern: &str, value: &str, separator: Option<char>) -> bool {
    pattern == "*" || glob_match(pattern, value, Dialect::Gobwas, separator)
}

fn in_list(list: &[GroupKind], group: &str, kind: &str) -> bool {
    list.iter().any(|entry| {
        glob_match(&entry.kind, kind, Dialect::Filepath, Some('/'))
            && glob_match(
                entry.group.as_deref().unwrap_or_default(),
                group,
                Dialect::Filepath,
                Some('/'),
            )
    })
}

#[cfg(test)]
mod tests;
