//! A deduplicating, rate-limited async work queue with client-go `workqueue` semantics, used
//! by the application controller's refresh and operation queues.
//!
//! * [`WorkQueue`]: queue keys with [`WorkQueue::add`], [`WorkQueue::add_after`] or
//!   [`WorkQueue::add_rate_limited`]; workers loop on [`WorkQueue::get`] and call
//!   [`WorkQueue::done`] (and [`WorkQueue::forget`] on success).
//! * [`RateLimiter`]: per-key exponential backoff (default 5 ms doubling to 1000 s), with an
//!   optional overall token bucket.
//! * [`QueueMetrics`]: the `workqueue_*` Prometheus metrics Argo CD exports.

mod metrics;
mod queue;
mod rate_limit;

pub use metrics::QueueMetrics;
pub use queue::WorkQueue;
pub use rate_limit::RateLimiter;
