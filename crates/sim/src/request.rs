//! Parsing of request paths and query strings of the Kubernetes REST API, below a
//! cluster's base URL.

use crate::api_error::{ApiError, ApiResult};
use std::collections::HashMap;

/// What a request path names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// `/version`.
    Version,
    /// `/healthz`, `/readyz`, `/livez`.
    Health,
    /// `/api`.
    CoreVersions,
    /// `/apis`.
    Groups,
    /// `/apis/{group}`.
    Group(String),
    /// `/api/v1` or `/apis/{group}/{version}`.
    ResourceList { group: String, version: String },
    /// `/openapi/v2`.
    OpenApiV2,
    /// `/openapi/v3`.
    OpenApiV3Index,
    /// `/openapi/v3/api/v1` or `/openapi/v3/apis/{group}/{version}`.
    OpenApiV3 { group: String, version: String },
    /// A resource collection, object or subresource.
    Resource(ResourcePath),
}

/// A path below `/api/v1` or `/apis/{group}/{version}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourcePath {
    /// API group.
    pub group: String,
    /// API version.
    pub version: String,
    /// Plural resource name.
    pub plural: String,
    /// Namespace from the path.
    pub namespace: Option<String>,
    /// Object name.
    pub name: Option<String>,
    /// Subresource (`status`, …).
    pub subresource: Option<String>,
}

/// Parses a path (below the cluster prefix, starting with `/`).
pub fn parse_path(path: &str) -> ApiResult<Route> {
    let segs: Vec<String> = path
        .split('/')
        .filter(|s| !s.is_empty())
        .map(|s| {
            urlencoding::decode(s)
                .map(|c| c.into_owned())
                .unwrap_or_else(|_| s.to_owned())
        })
        .collect();
    let s: Vec<&str> = segs.iter().map(String::as_str).collect();
    let route = match s.as_slice() {
        ["version"] => Route::Version,
        ["healthz" | "readyz" | "livez", ..] => Route::Health,
        ["api"] => Route::CoreVersions,
        ["apis"] => Route::Groups,
        ["apis", g] => Route::Group((*g).to_owned()),
        ["api", v] => Route::ResourceList {
            group: String::new(),
            version: (*v).to_owned(),
        },
        ["apis", g, v] => Route::ResourceList {
            group: (*g).to_owned(),
            version: (*v).to_owned(),
        },
        ["openapi", "v2"] => Route::OpenApiV2,
        ["openapi", "v3"] => Route::OpenApiV3Index,
        ["openapi", "v3", "api", v] => Route::OpenApiV3 {
            group: String::new(),
            version: (*v).to_owned(),
        },
        ["openapi", "v3", "apis", g, v] => Route::OpenApiV3 {
            group: (*g).to_owned(),
            version: (*v).to_owned(),
        },
        ["api", v, rest @ ..] => {
            Route::Resource(resource_path("", v, rest).ok_or_else(|| ApiError::no_route(path))?)
        }
        ["apis", g, v, rest @ ..] => {
            Route::Resource(resource_path(g, v, rest).ok_or_else(|| ApiError::no_route(path))?)
        }
        _ => return Err(ApiError::no_route(path)),
    };
    Ok(route)
}

fn resource_path(group: &str, version: &str, rest: &[&str]) -> Option<ResourcePath> {
    let mk = |ns: Option<&str>, plural: &str, name: Option<&str>, sub: Option<&str>| ResourcePath {
        group: group.to_owned(),
        version: version.to_owned(),
        plural: plural.to_owned(),
        namespace: ns.map(str::to_owned),
        name: name.map(str::to_owned),
        subresource: sub.map(str::to_owned),
    };
    Some(match rest {
        [plural] => mk(None, plural, None, None),
        ["namespaces", ns, plural] if !matches!(*plural, "status" | "finalize") => {
            mk(Some(ns), plural, None, None)
        }
        ["namespaces", ns, plural, name] => mk(Some(ns), plural, Some(name), None),
        ["namespaces", ns, plural, name, sub] => mk(Some(ns), plural, Some(name), Some(sub)),
        [plural, name] => mk(None, plural, Some(name), None),
        [plural, name, sub] => mk(None, plural, Some(name), Some(sub)),
        _ => return None,
    })
}

/// Decoded query parameters.
#[derive(Debug, Default, Clone)]
pub struct Query(HashMap<String, String>);

impl Query {
    /// Parses a raw query string.
    pub fn parse(raw: Option<&str>) -> Self {
        let mut map = HashMap::new();
        for pair in raw.unwrap_or_default().split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let decode = |s: &str| {
                urlencoding::decode(&s.replace('+', " "))
                    .map(|c| c.into_owned())
                    .unwrap_or_default()
            };
            map.insert(decode(k), decode(v));
        }
        Self(map)
    }

    /// A parameter's value.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }

    /// A boolean parameter (`true`/`1`).
    pub fn flag(&self, key: &str) -> bool {
        matches!(self.get(key), Some("true" | "1"))
    }

    /// A numeric parameter.
    pub fn number(&self, key: &str) -> ApiResult<Option<u64>> {
        self.get(key)
            .filter(|s| !s.is_empty())
            .map(|s| {
                s.parse()
                    .map_err(|_| ApiError::bad_request(format!("invalid {key}: {s:?}")))
            })
            .transpose()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn paths_parse() {
        let r = parse_path("/api/v1/namespaces/default/configmaps/x").unwrap();
        let Route::Resource(p) = r else {
            panic!("not a resource")
        };
        assert_eq!(
            (p.namespace.as_deref(), p.plural.as_str(), p.name.as_deref()),
            (Some("default"), "configmaps", Some("x"))
        );
        let Route::Resource(p) = parse_path("/api/v1/namespaces/default").unwrap() else {
            panic!()
        };
        assert_eq!(
            (p.plural.as_str(), p.name.as_deref()),
            ("namespaces", Some("default"))
        );
        let Route::Resource(p) = parse_path("/api/v1/namespaces/default/status").unwrap() else {
            panic!()
        };
        assert_eq!(p.subresource.as_deref(), Some("status"));
        let Route::Resource(p) = parse_path("/apis/apps/v1/deployments").unwrap() else {
            panic!()
        };
        assert_eq!(
            (p.group.as_str(), p.namespace, p.name),
            ("apps", None, None)
        );
        assert_eq!(
            parse_path("/apis/apps").unwrap(),
            Route::Group("apps".into())
        );
        assert!(parse_path("/nope").is_err());
        let q = Query::parse(Some("labelSelector=app%3Dx%2Cb+in+(1)&watch=true"));
        assert_eq!(q.get("labelSelector"), Some("app=x,b in (1)"));
        assert!(q.flag("watch"));
    }
}
