//! Prometheus metrics of cluster caches, with Argo CD's names and labels:
//! `argocd_cluster_api_resource_objects{server}`, `argocd_cluster_api_resources{server}`,
//! `argocd_cluster_cache_age_seconds{server}`,
//! `argocd_cluster_connection_status{server,k8s_version}`,
//! `argocd_cluster_info{server,name,k8s_version}` (read from live caches at scrape time) and
//! `argocd_cluster_events_total{server,group,kind}`.

use std::collections::HashMap;
use std::sync::{Arc, Weak};

use parking_lot::Mutex;
use prometheus::core::{Collector, Desc};
use prometheus::proto::MetricFamily;
use prometheus::{GaugeVec, IntCounterVec, Opts, Registry};

/// A point-in-time reading of one cluster cache.
#[derive(Debug, Clone)]
pub(crate) struct Sample {
    pub name: String,
    pub objects: usize,
    pub api_resources: usize,
    pub age_seconds: f64,
    pub connected: bool,
    pub k8s_version: String,
}

/// Something that can be sampled (a running cluster cache).
pub(crate) trait ClusterSource: Send + Sync {
    fn sample(&self) -> Sample;
}

type Sources = Arc<Mutex<HashMap<String, Weak<dyn ClusterSource>>>>;

/// Metrics shared by all cluster caches of a process.
pub struct CacheMetrics {
    events: IntCounterVec,
    sources: Sources,
}

impl std::fmt::Debug for CacheMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CacheMetrics").finish_non_exhaustive()
    }
}

struct Gauges {
    objects: GaugeVec,
    resources: GaugeVec,
    age: GaugeVec,
    connection: GaugeVec,
    info: GaugeVec,
}

fn gauges() -> prometheus::Result<Gauges> {
    Ok(Gauges {
        objects: GaugeVec::new(
            Opts::new(
                "argocd_cluster_api_resource_objects",
                "Number of k8s resource objects in the cache.",
            ),
            &["server"],
        )?,
        resources: GaugeVec::new(
            Opts::new(
                "argocd_cluster_api_resources",
                "Number of monitored kubernetes API resources.",
            ),
            &["server"],
        )?,
        age: GaugeVec::new(
            Opts::new(
                "argocd_cluster_cache_age_seconds",
                "Cluster cache age in seconds.",
            ),
            &["server"],
        )?,
        connection: GaugeVec::new(
            Opts::new(
                "argocd_cluster_connection_status",
                "The k8s cluster current connection status.",
            ),
            &["server", "k8s_version"],
        )?,
        info: GaugeVec::new(
            Opts::new("argocd_cluster_info", "Information about cluster."),
            &["server", "name", "k8s_version"],
        )?,
    })
}

struct ClusterCollector {
    descs: Vec<Desc>,
    sources: Sources,
}

impl Collector for ClusterCollector {
    fn desc(&self) -> Vec<&Desc> {
        self.descs.iter().collect()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let Ok(g) = gauges() else {
            return Vec::new();
        };
        let live: Vec<(String, Arc<dyn ClusterSource>)> = {
            let mut map = self.sources.lock();
            map.retain(|_, w| w.strong_count() > 0);
            map.iter()
                .filter_map(|(k, w)| w.upgrade().map(|s| (k.clone(), s)))
                .collect()
        };
        for (server, src) in live {
            let s = src.sample();
            let server = server.as_str();
            g.objects.with_label_values(&[server]).set(s.objects as f64);
            g.resources
                .with_label_values(&[server])
                .set(s.api_resources as f64);
            g.age.with_label_values(&[server]).set(s.age_seconds);
            let v = s.k8s_version.as_str();
            g.connection
                .with_label_values(&[server, v])
                .set(if s.connected { 1.0 } else { 0.0 });
            g.info
                .with_label_values(&[server, s.name.as_str(), v])
                .set(1.0);
        }
        [g.objects, g.resources, g.age, g.connection, g.info]
            .iter()
            .flat_map(|v| v.collect())
            .collect()
    }
}

impl CacheMetrics {
    /// Creates the metrics and registers them.
    pub fn register(registry: &Registry) -> prometheus::Result<Arc<CacheMetrics>> {
        let events = IntCounterVec::new(
            Opts::new(
                "argocd_cluster_events_total",
                "Number of processes k8s resource events",
            ),
            &["server", "group", "kind"],
        )?;
        registry.register(Box::new(events.clone()))?;
        let g = gauges()?;
        let descs = [&g.objects, &g.resources, &g.age, &g.connection, &g.info]
            .iter()
            .flat_map(|v| v.desc().into_iter().cloned())
            .collect();
        let sources: Sources = Arc::default();
        registry.register(Box::new(ClusterCollector {
            descs,
            sources: sources.clone(),
        }))?;
        Ok(Arc::new(CacheMetrics { events, sources }))
    }

    pub(crate) fn event(&self, server: &str, group: &str, kind: &str) {
        self.events.with_label_values(&[server, group, kind]).inc();
    }

    pub(crate) fn add_cluster(&self, server: &str, source: Weak<dyn ClusterSource>) {
        self.sources.lock().insert(server.to_string(), source);
    }

    /// Drops every series of a cluster.
    pub(crate) fn remove_cluster(&self, server: &str, kinds: &[(String, String)]) {
        self.sources.lock().remove(server);
        for (group, kind) in kinds {
            let _ = self.events.remove_label_values(&[server, group, kind]);
        }
    }
}
