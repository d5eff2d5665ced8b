//! The client-go workqueue metrics (`workqueue_*`, label `name`) that Argo CD exports, so
//! existing dashboards work. `workqueue_unfinished_work_seconds` and
//! `workqueue_longest_running_processor_seconds` are computed at scrape time from the
//! processing start times of every live queue registered with the metrics.

use std::collections::BTreeMap;
use std::sync::{Arc, Weak};

use parking_lot::Mutex;
use prometheus::core::{Collector, Desc};
use prometheus::proto::MetricFamily;
use prometheus::{
    GaugeVec, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry,
};

/// Metrics shared by all queues of a process; each queue's series carry its `name`.
#[derive(Debug)]
pub struct QueueMetrics {
    adds: IntCounterVec,
    depth: IntGaugeVec,
    queue_duration: HistogramVec,
    work_duration: HistogramVec,
    retries: IntCounterVec,
    clocks: Arc<ClockCollector>,
}

/// The label children of one queue, resolved once.
#[derive(Debug, Clone)]
pub(crate) struct QueueSeries {
    pub(crate) adds: IntCounter,
    pub(crate) depth: IntGauge,
    pub(crate) queue_duration: Histogram,
    pub(crate) work_duration: Histogram,
    pub(crate) retries: IntCounter,
}

/// What a queue tells the scrape-time collector: the summed and the longest age, in
/// seconds, of the keys being processed now.
pub(crate) trait ProcessingClock: Send + Sync {
    fn processing_ages(&self) -> (f64, f64);
}

struct Source {
    name: String,
    clock: Weak<dyn ProcessingClock>,
}

impl std::fmt::Debug for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Source").field("name", &self.name).finish()
    }
}

/// Computes the two in-progress gauges when the registry is gathered.
#[derive(Debug)]
struct ClockCollector {
    unfinished: GaugeVec,
    longest: GaugeVec,
    sources: Mutex<Vec<Source>>,
}

/// client-go's buckets for the two duration histograms: 10 ns to 10 s, ×10 each.
fn duration_buckets() -> Vec<f64> {
    (0..10).map(|i| 1e-8 * 10f64.powi(i)).collect()
}

impl QueueMetrics {
    /// Creates the metrics and registers them into `registry`.
    pub fn register(registry: &Registry) -> prometheus::Result<Arc<QueueMetrics>> {
        let adds = IntCounterVec::new(
            Opts::new(
                "workqueue_adds_total",
                "Total number of adds handled by workqueue",
            ),
            &["name"],
        )?;
        let depth = IntGaugeVec::new(
            Opts::new("workqueue_depth", "Current depth of workqueue"),
            &["name"],
        )?;
        let queue_duration = HistogramVec::new(
            HistogramOpts::new(
                "workqueue_queue_duration_seconds",
                "How long in seconds an item stays in workqueue before being requested",
            )
            .buckets(duration_buckets()),
            &["name"],
        )?;
        let work_duration = HistogramVec::new(
            HistogramOpts::new(
                "workqueue_work_duration_seconds",
                "How long in seconds processing an item from workqueue takes",
            )
            .buckets(duration_buckets()),
            &["name"],
        )?;
        let retries = IntCounterVec::new(
            Opts::new(
                "workqueue_retries_total",
                "Total number of retries handled by workqueue",
            ),
            &["name"],
        )?;
        let clocks = Arc::new(ClockCollector {
            unfinished: GaugeVec::new(
                Opts::new(
                    "workqueue_unfinished_work_seconds",
                    "How many seconds of work has been done that is in progress and hasn't \
                     been observed by work_duration. Large values indicate stuck threads",
                ),
                &["name"],
            )?,
            longest: GaugeVec::new(
                Opts::new(
                    "workqueue_longest_running_processor_seconds",
                    "How many seconds has the longest running processor for workqueue been running",
                ),
                &["name"],
            )?,
            sources: Mutex::new(Vec::new()),
        });
        registry.register(Box::new(adds.clone()))?;
        registry.register(Box::new(depth.clone()))?;
        registry.register(Box::new(queue_duration.clone()))?;
        registry.register(Box::new(work_duration.clone()))?;
        registry.register(Box::new(retries.clone()))?;
        registry.register(Box::new(SharedCollector(Arc::clone(&clocks))))?;
        Ok(Arc::new(QueueMetrics {
            adds,
            depth,
            queue_duration,
            work_duration,
            retries,
            clocks,
        }))
    }

    /// The series of the queue called `name`, and its registration for scrape-time gauges.
    pub(crate) fn attach(&self, name: &str, clock: Weak<dyn ProcessingClock>) -> QueueSeries {
        self.clocks.sources.lock().push(Source {
            name: name.to_owned(),
            clock,
        });
        QueueSeries {
            adds: self.adds.with_label_values(&[name]),
            depth: self.depth.with_label_values(&[name]),
            queue_duration: self.queue_duration.with_label_values(&[name]),
            work_duration: self.work_duration.with_label_values(&[name]),
            retries: self.retries.with_label_values(&[name]),
        }
    }
}

/// Registers the shared clock collector (the registry wants an owned collector).
struct SharedCollector(Arc<ClockCollector>);

impl Collector for SharedCollector {
    fn desc(&self) -> Vec<&Desc> {
        let mut d = self.0.unfinished.desc();
        d.extend(self.0.longest.desc());
        d
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let mut by_name: BTreeMap<String, (f64, f64)> = BTreeMap::new();
        {
            let mut sources = self.0.sources.lock();
            sources.retain(|s| s.clock.strong_count() > 0);
            for source in sources.iter() {
                let Some(clock) = source.clock.upgrade() else {
                    continue;
                };
                let (total, longest) = clock.processing_ages();
                let entry = by_name.entry(source.name.clone()).or_insert((0.0, 0.0));
                entry.0 += total;
                entry.1 = entry.1.max(longest);
            }
        }
        self.0.unfinished.reset();
        self.0.longest.reset();
        for (name, (total, longest)) in &by_name {
            self.0.unfinished.with_label_values(&[name]).set(*total);
            self.0.longest.with_label_values(&[name]).set(*longest);
        }
        let mut families = self.0.unfinished.collect();
        families.extend(self.0.longest.collect());
        families
    }
}
