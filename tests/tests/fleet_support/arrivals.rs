//! When each of a set of Applications first reached a state, seen through a watch on
//! the management cluster — exact to the event, and without re-listing every app (a
//! debug-built test listing 600 apps in a loop would starve the replicas it measures).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use kube::api::{Api, DynamicObject};
use kube::runtime::watcher;
use serde_json::Value;

/// A predicate on an Application's JSON.
pub type AppPredicate = Box<dyn Fn(&Value) -> bool + Send + Sync>;

/// First times (since `since`) each watched app satisfied each predicate.
pub struct Arrivals {
    first: Arc<Mutex<Vec<BTreeMap<String, Duration>>>>,
    apps: BTreeSet<String>,
    task: tokio::task::JoinHandle<()>,
}

impl Arrivals {
    /// Starts watching `apps` (by name) for every predicate in `states`.
    pub fn watch(
        api: Api<DynamicObject>,
        since: Instant,
        apps: BTreeSet<String>,
        states: Vec<AppPredicate>,
    ) -> Arrivals {
        let first = Arc::new(Mutex::new(vec![BTreeMap::new(); states.len()]));
        let (record, names) = (first.clone(), apps.clone());
        let task = tokio::spawn(async move {
            let stream = watcher(api, watcher::Config::default());
            futures::pin_mut!(stream);
            while let Some(event) = stream.next().await {
                let (Ok(watcher::Event::Apply(obj)) | Ok(watcher::Event::InitApply(obj))) = event
                else {
                    continue;
                };
                let Ok(app) = serde_json::to_value(&obj) else {
                    continue;
                };
                let name = app["metadata"]["name"].as_str().unwrap_or_default();
                if !names.contains(name) {
                    continue;
                }
                let at = since.elapsed();
                if let Ok(mut maps) = record.lock() {
                    for (map, state) in maps.iter_mut().zip(&states) {
                        if state(&app) {
                            map.entry(name.to_owned()).or_insert(at);
                        }
                    }
                }
            }
        });
        Arrivals { first, apps, task }
    }

    /// When the last app reached state `i`, once all have.
    pub fn all_reached(&self, i: usize) -> Option<Duration> {
        let maps = self.first.lock().ok()?;
        let map = maps.get(i)?;
        if map.len() < self.apps.len() {
            return None;
        }
        map.values().max().copied()
    }
}

impl Drop for Arrivals {
    fn drop(&mut self) {
        self.task.abort();
    }
}
