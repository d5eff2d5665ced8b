//! Watches on a few kinds that record, per `Kind/name`, a value for the first event of
//! interest (when an object was deleted, the resourceVersion it was created at), so the
//! tests can check the order in which the controller did things.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use futures::StreamExt;
use kube::api::Api;
use kube::runtime::watcher;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// Picks the object and the value to record from one watch event.
pub type Pick<K, V> = for<'a> fn(&'a watcher::Event<K>) -> Option<(&'a K, V)>;

/// The first recorded value per `Kind/name`, fed by one task per watched kind.
pub struct FirstSeen<V> {
    seen: Arc<Mutex<HashMap<String, V>>>,
    tasks: Vec<JoinHandle<()>>,
    ready_tx: mpsc::Sender<()>,
    ready_rx: mpsc::Receiver<()>,
}

impl<V: Send + Clone + 'static> FirstSeen<V> {
    /// No watch yet.
    pub fn new() -> Self {
        let (ready_tx, ready_rx) = mpsc::channel(16);
        FirstSeen {
            seen: Arc::default(),
            tasks: Vec::new(),
            ready_tx,
            ready_rx,
        }
    }

    /// Adds a watch on `api`, recording what `pick` selects under `kind/name`.
    pub fn watch<K>(mut self, api: Api<K>, kind: &'static str, pick: Pick<K, V>) -> Self
    where
        K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug + Send + 'static,
    {
        let seen = self.seen.clone();
        let ready = self.ready_tx.clone();
        self.tasks.push(tokio::spawn(async move {
            let stream = watcher(api, watcher::Config::default());
            futures::pin_mut!(stream);
            while let Some(Ok(event)) = stream.next().await {
                if matches!(event, watcher::Event::InitDone) {
                    let _ = ready.send(()).await;
                }
                if let Some((obj, value)) = pick(&event) {
                    let key = format!("{kind}/{}", obj.meta().name.clone().unwrap_or_default());
                    if let Ok(mut m) = seen.lock() {
                        m.entry(key).or_insert(value);
                    }
                }
            }
        }));
        self
    }

    /// Waits (bounded) until every watch has listed what exists.
    pub async fn started(mut self) -> anyhow::Result<Self> {
        for _ in 0..self.tasks.len() {
            tokio::time::timeout(Duration::from_secs(30), self.ready_rx.recv())
                .await
                .context("watches did not start")?;
        }
        Ok(self)
    }

    /// What was recorded so far.
    pub fn snapshot(&self) -> HashMap<String, V> {
        self.seen.lock().map(|m| m.clone()).unwrap_or_default()
    }
}

impl<V> Drop for FirstSeen<V> {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// When an object was deleted (as the event arrived).
pub fn deleted_at<K>(event: &watcher::Event<K>) -> Option<(&K, Instant)> {
    match event {
        watcher::Event::Delete(obj) => Some((obj, Instant::now())),
        _ => None,
    }
}

/// The resourceVersion an object was first seen at: its creation, when the watch
/// started before it existed.
pub fn created_at_version<K: kube::Resource>(event: &watcher::Event<K>) -> Option<(&K, u64)> {
    match event {
        watcher::Event::Apply(obj) | watcher::Event::InitApply(obj) => {
            let rv = obj
                .meta()
                .resource_version
                .as_deref()
                .and_then(|r| r.parse::<u64>().ok())
                .unwrap_or(u64::MAX);
            Some((obj, rv))
        }
        _ => None,
    }
}
