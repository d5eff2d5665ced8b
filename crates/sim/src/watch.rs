//! Watches of a simulated cluster: initial state or replay from a resourceVersion
//! (410 Gone when it is too old), live events filtered by namespace and selectors
//! (objects leaving a selector are seen as DELETED), bookmarks, `sendInitialEvents`,
//! timeouts, and abrupt ends when the cluster becomes unreachable.

use crate::api_error::ApiError;
use crate::cluster::Cluster;
use crate::resources::ResourceType;
use crate::store::{Event, EventType, GroupResource};
use crate::verbs::{ListQuery, gr, present};
use bytes::Bytes;
use futures::Stream;
use serde_json::{Value, json};
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::broadcast::{self, error::RecvError};
use tokio::time::{Instant, Interval};

/// A watch request.
#[derive(Debug)]
pub struct WatchRequest {
    /// The watched type.
    pub rt: Arc<ResourceType>,
    /// Namespace, or all.
    pub namespace: Option<String>,
    /// Selectors.
    pub query: ListQuery,
    /// `resourceVersion` to start after; None or "0" for the current state first.
    pub resource_version: Option<String>,
    /// `allowWatchBookmarks`.
    pub bookmarks: bool,
    /// `sendInitialEvents`.
    pub send_initial_events: bool,
    /// `timeoutSeconds`, bounded by the server's maximum.
    pub timeout: Duration,
    /// How often bookmarks are sent.
    pub bookmark_interval: Duration,
}

struct WatchState {
    cluster: Arc<Cluster>,
    req: WatchRequest,
    resource: GroupResource,
    rx: broadcast::Receiver<Arc<Event>>,
    pending: VecDeque<Bytes>,
    last_rv: u64,
    epoch: u64,
    deadline: Instant,
    ticker: Interval,
    done: bool,
}

/// Opens a watch: a stream of newline-delimited JSON events. An `Err` item means the
/// connection must be cut (the cluster became unreachable).
pub fn open(
    cluster: Arc<Cluster>,
    req: WatchRequest,
) -> Result<impl Stream<Item = Result<Bytes, std::io::Error>> + Send, ApiError> {
    let resource = gr(&req.rt);
    let mut pending = VecDeque::new();
    let (rx, last_rv) = {
        let state = cluster.lock();
        let rx = state.store.subscribe();
        let current = state.store.resource_version();
        let from = match req.resource_version.as_deref() {
            None | Some("") | Some("0") => None,
            Some(s) => Some(
                s.parse::<u64>()
                    .map_err(|_| ApiError::bad_request(format!("invalid resourceVersion {s:?}")))?,
            ),
        };
        match from {
            None => {
                let ns = req.namespace.as_deref();
                for (_, obj) in state.store.range(&resource, ns, None) {
                    if req.query.matches(obj) {
                        pending.push_back(encode("ADDED", &present(&req.rt, obj)));
                    }
                }
                if req.send_initial_events {
                    pending.push_back(initial_events_end(&req.rt, current));
                }
            }
            Some(rv) if rv < state.store.oldest_resumable() => {
                let err = ApiError::gone(format!(
                    "too old resource version: {rv} ({})",
                    state.store.oldest_resumable()
                ));
                pending.push_back(encode("ERROR", &err.to_status()));
            }
            Some(rv) => {
                for ev in state.store.history_since(rv) {
                    if let Some(b) = filter_event(&req, &resource, ev) {
                        pending.push_back(b);
                    }
                }
            }
        }
        (rx, current)
    };
    let gone = pending
        .back()
        .is_some_and(|b| b.starts_with(b"{\"type\":\"ERROR\""));
    let mut ticker = tokio::time::interval(req.bookmark_interval.max(Duration::from_millis(50)));
    ticker.reset();
    let state = WatchState {
        epoch: cluster.faults.epoch(),
        deadline: Instant::now() + req.timeout,
        cluster,
        req,
        resource,
        rx,
        pending,
        last_rv,
        ticker,
        done: gone,
    };
    Ok(futures::stream::unfold(state, next_chunk))
}

async fn next_chunk(mut st: WatchState) -> Option<(Result<Bytes, std::io::Error>, WatchState)> {
    loop {
        if st.cluster.faults.epoch() != st.epoch && !st.done {
            st.done = true;
            st.pending.clear();
            return Some((
                Err(std::io::Error::new(
                    std::io::ErrorKind::ConnectionReset,
                    "cluster unreachable",
                )),
                st,
            ));
        }
        if let Some(b) = st.pending.pop_front() {
            return Some((Ok(b), st));
        }
        if st.done {
            return None;
        }
        tokio::select! {
            _ = tokio::time::sleep_until(st.deadline) => st.done = true,
            _ = st.ticker.tick() => {
                st.drain();
                if st.req.bookmarks && !st.done {
                    st.pending.push_back(bookmark(&st.req.rt, st.last_rv, None));
                }
            }
            r = st.rx.recv() => match r {
                Ok(ev) => st.handle(&ev),
                // A slow watcher is cut off; it resumes from its last resourceVersion.
                Err(RecvError::Lagged(_)) | Err(RecvError::Closed) => st.done = true,
            },
        }
    }
}

impl WatchState {
    fn handle(&mut self, ev: &Arc<Event>) {
        if ev.rv <= self.last_rv {
            return;
        }
        self.last_rv = ev.rv;
        if let Some(b) = filter_event(&self.req, &self.resource, ev) {
            self.pending.push_back(b);
        }
    }

    fn drain(&mut self) {
        loop {
            match self.rx.try_recv() {
                Ok(ev) => self.handle(&ev),
                Err(broadcast::error::TryRecvError::Empty) => return,
                Err(_) => {
                    self.done = true;
                    return;
                }
            }
        }
    }
}

fn filter_event(req: &WatchRequest, resource: &GroupResource, ev: &Event) -> Option<Bytes> {
    if &ev.resource != resource {
        return None;
    }
    if let Some(ns) = &req.namespace
        && ev.object["metadata"]["namespace"].as_str() != Some(ns.as_str())
    {
        return None;
    }
    let now_matches = req.query.matches(&ev.object);
    let kind = match ev.kind {
        EventType::Modified => {
            let before = ev.previous.as_deref().is_some_and(|p| req.query.matches(p));
            match (before, now_matches) {
                (true, true) => "MODIFIED",
                (false, true) => "ADDED",
                (true, false) => "DELETED",
                (false, false) => return None,
            }
        }
        other if now_matches => other.as_str(),
        _ => return None,
    };
    Some(encode(kind, &present(&req.rt, &ev.object)))
}

fn encode(kind: &str, object: &Value) -> Bytes {
    let mut out = serde_json::to_vec(&json!({"type": kind, "object": object})).unwrap_or_default();
    out.push(b'\n');
    Bytes::from(out)
}

fn bookmark(rt: &ResourceType, rv: u64, annotations: Option<Value>) -> Bytes {
    let mut meta = json!({"resourceVersion": rv.to_string()});
    if let Some(a) = annotations {
        meta["annotations"] = a;
    }
    encode(
        "BOOKMARK",
        &json!({"kind": rt.kind, "apiVersion": rt.api_version(), "metadata": meta}),
    )
}

fn initial_events_end(rt: &ResourceType, rv: u64) -> Bytes {
    bookmark(rt, rv, Some(json!({"k8s.io/initial-events-end": "true"})))
}
