//! The HTTP face of the simulator: routes `/clusters/{name}/…` requests to a cluster
//! (authentication, fault injection, body decoding, verbs, Table output, watch
//! streams) and `/sim/…` to the admin API (fault settings, request statistics).

use crate::api_error::{ApiError, ApiResult};
use crate::cluster::Cluster;
use crate::faults::FaultSettings;
use crate::gc::{self, DeleteOptions};
use crate::request::{Query, ResourcePath, Route, parse_path};
use crate::selectors::{FieldSelector, LabelSelector};
use crate::server::{Shared, Verb};
use crate::verbs::{self, ListQuery, PatchKind, WriteOptions};
use crate::{discovery, table, watch};
use bytes::Bytes;
use futures::StreamExt;
use http::{HeaderMap, Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full, Limited, StreamBody, combinators::BoxBody};
use hyper::body::{Frame, Incoming};
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;

/// Response body type of the simulator.
pub type Body = BoxBody<Bytes, std::io::Error>;

/// Largest request body accepted, as the real API server's default limit.
const MAX_BODY: usize = 3 * 1024 * 1024;
/// Longest watch a client may ask for.
const MAX_WATCH: Duration = Duration::from_secs(1_800);

/// Handles one request. An `Err` cuts the connection (an unreachable cluster).
pub(crate) async fn handle(
    shared: Arc<Shared>,
    req: Request<Incoming>,
) -> Result<Response<Body>, std::io::Error> {
    let path = req.uri().path().to_owned();
    if let Some(rest) = path.strip_prefix("/sim/") {
        return Ok(admin(&shared, req, rest)
            .await
            .unwrap_or_else(|e| error_response(&e)));
    }
    let Some((cluster_name, rest)) = path
        .strip_prefix("/clusters/")
        .map(|r| r.split_once('/').unwrap_or((r, "")))
    else {
        return Ok(error_response(&ApiError::no_route(&path)));
    };
    let Some(cluster) = shared.clusters.get(cluster_name).cloned() else {
        return Ok(error_response(&ApiError::no_route(&path)));
    };
    if cluster.faults.unreachable() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::ConnectionRefused,
            "cluster unreachable",
        ));
    }
    if let Some(delay) = cluster.faults.latency() {
        tokio::time::sleep(delay).await;
    }
    let rest = format!("/{rest}");
    Ok(match serve(&shared, &cluster, req, &rest).await {
        Ok(resp) => resp,
        Err(e) => error_response(&e),
    })
}

async fn serve(
    shared: &Arc<Shared>,
    cluster: &Arc<Cluster>,
    req: Request<Incoming>,
    path: &str,
) -> ApiResult<Response<Body>> {
    let token = bearer(req.headers());
    if token != Some(cluster.token.as_str()) {
        return Err(ApiError::unauthorized());
    }
    if cluster.faults.should_fail() {
        return Err(ApiError::internal("injected failure"));
    }
    let route = parse_path(path)?;
    let types = || cluster.lock().types().to_vec();
    let found = |v: Option<Value>| v.ok_or_else(|| ApiError::no_route(path));
    match route {
        Route::Version => Ok(json_response(StatusCode::OK, &discovery::version_info())),
        Route::Health => Ok(text_response("ok")),
        Route::CoreVersions => Ok(json_response(
            StatusCode::OK,
            &discovery::core_api_versions(&shared.addr),
        )),
        Route::Groups => Ok(json_response(
            StatusCode::OK,
            &discovery::api_group_list(&types()),
        )),
        Route::Group(g) => Ok(json_response(
            StatusCode::OK,
            &found(discovery::api_group(&types(), &g))?,
        )),
        Route::ResourceList { group, version } => Ok(json_response(
            StatusCode::OK,
            &found(discovery::api_resource_list(&types(), &group, &version))?,
        )),
        Route::OpenApiV2 if accepts_protobuf(req.headers()) => Ok(bytes_response(
            "application/com.github.proto-openapi.spec.v2@v1.0+protobuf",
            discovery::openapi_v2_protobuf(),
        )),
        Route::OpenApiV2 => Ok(json_response(StatusCode::OK, &discovery::openapi_v2())),
        Route::OpenApiV3Index => Ok(json_response(
            StatusCode::OK,
            &discovery::openapi_v3_index(&types()),
        )),
        Route::OpenApiV3 { group, version } => Ok(json_response(
            StatusCode::OK,
            &found(discovery::openapi_v3_group_version(
                &types(),
                &group,
                &version,
            ))?,
        )),
        Route::Resource(rp) => resource(shared, cluster, req, rp).await,
    }
}

async fn resource(
    shared: &Arc<Shared>,
    cluster: &Arc<Cluster>,
    req: Request<Incoming>,
    rp: ResourcePath,
) -> ApiResult<Response<Body>> {
    let rt = cluster
        .lock()
        .find(&rp.group, &rp.version, &rp.plural)
        .ok_or_else(|| ApiError::no_route(&format!("{}/{}/{}", rp.group, rp.version, rp.plural)))?;
    if rp
        .subresource
        .as_deref()
        .is_some_and(|s| s != "status" || !rt.has_status)
    {
        return Err(ApiError::no_route(&format!(
            "{}/{}",
            rp.plural,
            rp.subresource.unwrap_or_default()
        )));
    }
    if rt.namespaced && rp.name.is_some() && rp.namespace.is_none() {
        return Err(ApiError::no_route(&rp.plural));
    }
    let q = Query::parse(req.uri().query());
    let accept = header_value(req.headers(), header::ACCEPT);
    let content_type = header_value(req.headers(), header::CONTENT_TYPE);
    let user_agent = header_value(req.headers(), header::USER_AGENT);
    let method = req.method().clone();
    let ns = if rt.namespaced {
        rp.namespace.as_deref()
    } else {
        None
    };
    let opts = WriteOptions {
        manager: q
            .get("fieldManager")
            .map(str::to_owned)
            .unwrap_or_else(|| user_agent.split('/').next().unwrap_or_default().to_owned()),
        dry_run: q.get("dryRun").is_some_and(|v| v == "All"),
        force: q.flag("force"),
        subresource: rp.subresource.clone(),
    };
    let name = rp.name.clone();
    let (verb, result) = match (&method, name.as_deref()) {
        (&Method::GET, Some(name)) => (Verb::Get, verbs::get(cluster, &rt, ns, name)),
        (&Method::GET, None) if q.flag("watch") => {
            shared.stats.count(Verb::Watch);
            return open_watch(shared, cluster, rt, rp.namespace, &q);
        }
        (&Method::GET, None) => (
            Verb::List,
            verbs::list(
                cluster,
                &rt,
                rp.namespace.as_deref().filter(|_| rt.namespaced),
                &list_query(&q)?,
            ),
        ),
        (&Method::POST, None) => {
            let body = read_body(req, &content_type).await?;
            (Verb::Create, verbs::create(cluster, &rt, ns, body, &opts))
        }
        (&Method::PUT, Some(name)) => {
            let body = read_body(req, &content_type).await?;
            (
                Verb::Update,
                verbs::update(cluster, &rt, ns, name, body, &opts),
            )
        }
        (&Method::PATCH, Some(name)) => {
            let kind = PatchKind::from_content_type(&content_type)?;
            let body = read_body(
                req,
                if kind == PatchKind::Apply {
                    "application/yaml"
                } else {
                    "application/json"
                },
            )
            .await?;
            (
                Verb::Patch,
                verbs::patch(cluster, &rt, ns, name, kind, &body, &opts),
            )
        }
        (&Method::DELETE, Some(name)) => {
            let body = read_optional_body(req).await?;
            let del =
                DeleteOptions::parse(body.as_ref(), q.get("propagationPolicy"), opts.dry_run)?;
            (Verb::Delete, gc::delete(cluster, &rt, ns, name, &del))
        }
        (&Method::DELETE, None) => {
            let body = read_optional_body(req).await?;
            let del =
                DeleteOptions::parse(body.as_ref(), q.get("propagationPolicy"), opts.dry_run)?;
            (
                Verb::DeleteCollection,
                gc::delete_collection(cluster, &rt, ns, &list_query(&q)?, &del),
            )
        }
        _ => {
            return Err(ApiError::method_not_allowed(format!(
                "{method} is not supported here"
            )));
        }
    };
    shared.stats.count(verb);
    let value = result?;
    let status = if verb == Verb::Create {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    if table::wants_table(&accept) && matches!(verb, Verb::Get | Verb::List) {
        let objects = match value["items"].as_array() {
            Some(items) => items.clone(),
            None => vec![value.clone()],
        };
        let meta = value.get("items").map(|_| &value["metadata"]);
        return Ok(json_response(status, &table::table(&objects, meta)));
    }
    Ok(json_response(status, &value))
}

fn open_watch(
    shared: &Arc<Shared>,
    cluster: &Arc<Cluster>,
    rt: Arc<crate::resources::ResourceType>,
    namespace: Option<String>,
    q: &Query,
) -> ApiResult<Response<Body>> {
    let namespace = namespace.filter(|_| rt.namespaced);
    let timeout = q
        .number("timeoutSeconds")?
        .map_or(MAX_WATCH, |s| Duration::from_secs(s).min(MAX_WATCH));
    let req = watch::WatchRequest {
        rt,
        namespace,
        query: list_query(q)?,
        resource_version: q.get("resourceVersion").map(str::to_owned),
        bookmarks: q.flag("allowWatchBookmarks"),
        send_initial_events: q.flag("sendInitialEvents"),
        timeout,
        bookmark_interval: shared.config.bookmark_interval,
    };
    let stream = watch::open(Arc::clone(cluster), req)?;
    let body = StreamBody::new(stream.map(|chunk| chunk.map(Frame::data)));
    let mut resp = Response::new(BodyExt::boxed(body));
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    resp.headers_mut().insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-cache, private"),
    );
    Ok(resp)
}

fn list_query(q: &Query) -> ApiResult<ListQuery> {
    let labels = q
        .get("labelSelector")
        .filter(|s| !s.is_empty())
        .map(LabelSelector::parse)
        .transpose()
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    let fields = q
        .get("fieldSelector")
        .filter(|s| !s.is_empty())
        .map(FieldSelector::parse)
        .transpose()
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    Ok(ListQuery {
        labels,
        fields,
        limit: usize::try_from(q.number("limit")?.unwrap_or(0)).unwrap_or(usize::MAX),
        continue_token: q
            .get("continue")
            .filter(|s| !s.is_empty())
            .map(str::to_owned),
    })
}

async fn read_bytes(req: Request<Incoming>) -> ApiResult<Bytes> {
    match Limited::new(req.into_body(), MAX_BODY).collect().await {
        Ok(c) => Ok(c.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(ApiError::too_large(MAX_BODY)),
        Err(e) => Err(ApiError::bad_request(format!(
            "reading the request body failed: {e}"
        ))),
    }
}

async fn read_body(req: Request<Incoming>, content_type: &str) -> ApiResult<Value> {
    let bytes = read_bytes(req).await?;
    decode(&bytes, content_type)
}

async fn read_optional_body(req: Request<Incoming>) -> ApiResult<Option<Value>> {
    let bytes = read_bytes(req).await?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    decode(&bytes, "application/json").map(Some)
}

fn decode(bytes: &[u8], content_type: &str) -> ApiResult<Value> {
    if content_type.contains("protobuf") || content_type.contains("cbor") {
        // Clients fall back to JSON on 415, as they do with API servers built without
        // these serializers.
        return Err(ApiError::unsupported_media_type(content_type));
    }
    if content_type.contains("yaml") {
        return serde_yaml_ng::from_slice(bytes).map_err(|e| {
            ApiError::bad_request(format!("the request body is not valid YAML: {e}"))
        });
    }
    serde_json::from_slice(bytes)
        .map_err(|e| ApiError::bad_request(format!("the request body is not valid JSON: {e}")))
}

fn header_value(headers: &HeaderMap, name: header::HeaderName) -> String {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
        .map(str::trim)
}

async fn admin(
    shared: &Arc<Shared>,
    req: Request<Incoming>,
    rest: &str,
) -> ApiResult<Response<Body>> {
    if bearer(req.headers()) != Some(shared.admin_token.as_str()) {
        return Err(ApiError::unauthorized());
    }
    let segs: Vec<&str> = rest.split('/').filter(|s| !s.is_empty()).collect();
    match (req.method().clone(), segs.as_slice()) {
        (Method::GET, ["stats"]) => Ok(json_response(StatusCode::OK, &shared.stats_json())),
        (Method::GET, ["clusters", name, "faults"]) => {
            let c = shared
                .clusters
                .get(*name)
                .ok_or_else(|| ApiError::not_found("clusters", name))?;
            Ok(json_response(
                StatusCode::OK,
                &serde_json::to_value(c.faults.get()).unwrap_or_default(),
            ))
        }
        (Method::PUT, ["clusters", name, "faults"]) => {
            let c = shared
                .clusters
                .get(*name)
                .cloned()
                .ok_or_else(|| ApiError::not_found("clusters", name))?;
            let body = read_body(req, "application/json").await?;
            let settings: FaultSettings =
                serde_json::from_value(body).map_err(|e| ApiError::bad_request(e.to_string()))?;
            c.faults.set(settings);
            Ok(json_response(
                StatusCode::OK,
                &serde_json::to_value(c.faults.get()).unwrap_or_default(),
            ))
        }
        _ => Err(ApiError::no_route(rest)),
    }
}

/// A JSON response.
pub(crate) fn json_response(status: StatusCode, value: &Value) -> Response<Body> {
    let bytes = serde_json::to_vec(value).unwrap_or_default();
    let mut resp = bytes_response("application/json", bytes);
    *resp.status_mut() = status;
    resp
}

fn accepts_protobuf(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("protobuf"))
}

fn bytes_response(content_type: &'static str, bytes: Vec<u8>) -> Response<Body> {
    let mut resp = Response::new(
        Full::new(Bytes::from(bytes))
            .map_err(|never| match never {})
            .boxed(),
    );
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static(content_type),
    );
    resp
}

fn text_response(text: &'static str) -> Response<Body> {
    bytes_response("text/plain", text.as_bytes().to_vec())
}

fn error_response(e: &ApiError) -> Response<Body> {
    json_response(
        StatusCode::from_u16(e.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        &e.to_status(),
    )
}
