//! Refreshes requested without writing to the Applications: `POST /api/v1/refresh`
//! (optionally `?repo=<url>`) on the controller's telemetry address queues a normal
//! refresh (branches resolved afresh) of every app it holds — of the apps of that
//! repository, if given — as a Git webhook would want, without the 50,000 annotation
//! writes (and their watch events) that the `argocd.argoproj.io/refresh` annotation costs
//! the API server at fleet scale. Each app's refresh resolves branches by an ls-remote
//! that started after the request arrived, shared by every app asked at once.
//! `GET /api/v1/refresh` answers how many requested refreshes have not finished yet (as
//! does the gauge `keelson_app_refresh_requests_pending`, without rendering every
//! per-app metric).

use std::collections::HashMap;
use std::sync::{Arc, OnceLock, Weak};

use axum::Router;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use keelson_model::repo_secret::normalize_repo_url;
use parking_lot::Mutex;
use serde::Deserialize;

use crate::manifests::now_unix_ms;
use crate::shared::{AppKey, Shared, app_key};

/// Apps whose refresh was requested and has not started yet, with when it was last
/// requested (Unix milliseconds), and how many requested refreshes are running.
#[derive(Debug, Default)]
pub struct RefreshRequests {
    state: Mutex<Requests>,
}

#[derive(Debug, Default)]
struct Requests {
    asked: HashMap<AppKey, u64>,
    running: usize,
}

impl RefreshRequests {
    /// Marks `keys` as asked at `at_unix_ms`; returns how many are pending now.
    pub fn ask(&self, keys: impl IntoIterator<Item = AppKey>, at_unix_ms: u64) -> usize {
        let mut state = self.state.lock();
        for key in keys {
            let at = state.asked.entry(key).or_default();
            *at = (*at).max(at_unix_ms);
        }
        state.asked.len() + state.running
    }

    /// How many requested refreshes have not finished.
    pub fn pending(&self) -> usize {
        let state = self.state.lock();
        state.asked.len() + state.running
    }

    /// The refresh of `key` starts: when it was asked, if it was (it then counts as
    /// running until [`RefreshRequests::finish`]).
    pub fn start(&self, key: &AppKey) -> Option<u64> {
        let mut state = self.state.lock();
        let at = state.asked.remove(key)?;
        state.running += 1;
        Some(at)
    }

    /// The requested refresh of `key` (asked at `at_unix_ms`) ended; `deferred` when it
    /// was put off and stays asked. Returns how many are pending.
    pub fn finish(&self, key: &AppKey, at_unix_ms: u64, deferred: bool) -> usize {
        let mut state = self.state.lock();
        state.running = state.running.saturating_sub(1);
        if deferred {
            let at = state.asked.entry(key.clone()).or_default();
            *at = (*at).max(at_unix_ms);
        }
        state.asked.len() + state.running
    }
}

/// Asks a running controller for refreshes (the endpoint's view of it).
#[derive(Debug, Clone)]
pub struct RefreshHandle(pub(crate) Weak<Shared>);

impl RefreshHandle {
    /// Queues a normal refresh of every app this replica holds, or of those with a source
    /// in `repo`; returns how many were queued (0 once the controller stopped).
    pub fn request(&self, repo: Option<&str>) -> usize {
        let Some(shared) = self.0.upgrade() else {
            return 0;
        };
        let at = now_unix_ms();
        let wanted = repo.map(normalize_repo_url);
        let keys: Vec<AppKey> = shared
            .apps
            .state()
            .iter()
            .filter(|app| held(&shared, app))
            .filter(|app| {
                wanted.as_ref().is_none_or(|w| {
                    app.spec
                        .effective_sources()
                        .iter()
                        .any(|s| normalize_repo_url(&s.repo_url) == *w)
                })
            })
            .map(|app| {
                app_key(
                    app.metadata.namespace.as_deref().unwrap_or_default(),
                    app.metadata.name.as_deref().unwrap_or_default(),
                )
            })
            .collect();
        let queued = keys.len();
        let pending = shared.refresh_requests.ask(keys.iter().cloned(), at);
        shared.metrics.set_refresh_pending(pending);
        for key in keys {
            shared.refresh_queue.add(key);
        }
        tracing::info!(queued, repo = repo.unwrap_or_default(), "refresh requested");
        queued
    }
}

impl RefreshHandle {
    /// How many requested refreshes have not finished (0 once the controller stopped).
    pub fn pending(&self) -> usize {
        self.0
            .upgrade()
            .map_or(0, |shared| shared.refresh_requests.pending())
    }
}

/// Whether this replica works on `app` (apps whose destination does not resolve are
/// refreshed, to report that).
fn held(shared: &Shared, app: &keelson_model::Application) -> bool {
    let key = app_key(
        app.metadata.namespace.as_deref().unwrap_or_default(),
        app.metadata.name.as_deref().unwrap_or_default(),
    );
    shared
        .clusters
        .resolve(&app.spec.destination)
        .map_or(true, |d| shared.fence.owns(&d.server, &key))
}

/// Where the endpoint finds the controller once it has started.
pub type RefreshSlot = Arc<OnceLock<RefreshHandle>>;

#[derive(Debug, Deserialize)]
struct RefreshQuery {
    repo: Option<String>,
}

/// The `POST` and `GET /api/v1/refresh` routes; they answer 503 until the controller is
/// in `slot`.
pub fn router(slot: RefreshSlot) -> Router {
    Router::new()
        .route("/api/v1/refresh", post(refresh).merge(get(pending)))
        .with_state(slot)
}

async fn pending(State(slot): State<RefreshSlot>) -> impl IntoResponse {
    match slot.get() {
        Some(handle) => (
            StatusCode::OK,
            axum::Json(serde_json::json!({ "pending": handle.pending() })),
        ),
        None => starting(),
    }
}

fn starting() -> (StatusCode, axum::Json<serde_json::Value>) {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        axum::Json(serde_json::json!({ "error": "the controller is starting" })),
    )
}

async fn refresh(
    State(slot): State<RefreshSlot>,
    Query(query): Query<RefreshQuery>,
) -> impl IntoResponse {
    match slot.get() {
        Some(handle) => {
            let queued = handle.request(query.repo.as_deref().filter(|r| !r.is_empty()));
            (
                StatusCode::ACCEPTED,
                axum::Json(serde_json::json!({ "queued": queued })),
            )
        }
        None => starting(),
    }
}

#[cfg(test)]
mod tests {
    use super::RefreshRequests;
    use crate::shared::AppKey;

    fn key(s: &str) -> AppKey {
        AppKey::from(s)
    }

    #[test]
    fn a_request_keeps_the_latest_ask_time_and_counts_until_finished() {
        let requests = RefreshRequests::default();
        assert_eq!(requests.ask([key("ns/a"), key("ns/b")], 100), 2);
        assert_eq!(requests.ask([key("ns/a")], 250), 2);
        assert_eq!(requests.ask([key("ns/a")], 200), 2);
        assert_eq!(requests.start(&key("ns/a")), Some(250));
        assert_eq!(requests.start(&key("ns/a")), None);
        assert_eq!(requests.pending(), 2);
        assert_eq!(requests.finish(&key("ns/a"), 250, false), 1);
        assert_eq!(requests.start(&key("ns/b")), Some(100));
        // Put off (its cluster's cache is filling): asked again, at the same time.
        assert_eq!(requests.finish(&key("ns/b"), 100, true), 1);
        assert_eq!(requests.start(&key("ns/b")), Some(100));
        assert_eq!(requests.finish(&key("ns/b"), 100, false), 0);
    }
}
