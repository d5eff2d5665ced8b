//! Level 2: GET, SET with a TTL and DEL against Redis, each bounded by the call budget
//! (waiting for a connection included), counted in `argocd_redis_request_*`, and never an
//! error for the caller: a failure is a miss or a dropped write.

use std::sync::Arc;
use std::time::Duration;

use redis::{Cmd, FromRedisValue};
use tokio::time::Instant;

use crate::link::{CallOutcome, Link, LinkTimeouts, Target, TaskGuard, error_chain};
use crate::metrics::Metrics;

/// The answer of a level-2 lookup.
#[derive(Debug)]
pub(crate) enum Fetched {
    /// The stored (encoded) value.
    Hit(Vec<u8>),
    /// No such key.
    Miss,
    /// Redis failed, timed out or was unreachable.
    Failed,
}

/// A Redis-backed store of encoded values under prefixed keys.
pub(crate) struct RedisStore {
    link: Arc<Link>,
    _task: TaskGuard,
    metrics: Metrics,
    call_timeout: Duration,
    ttl_seconds: u64,
    prefix: String,
}

impl RedisStore {
    /// Starts connecting in the background; returns at once.
    pub(crate) fn start(
        target: Target,
        timeouts: LinkTimeouts,
        ttl: Duration,
        prefix: String,
        metrics: Metrics,
    ) -> RedisStore {
        let (link, task) = Link::start(target, timeouts, metrics.redis_connected.clone());
        RedisStore {
            link,
            _task: task,
            metrics,
            call_timeout: timeouts.call,
            ttl_seconds: ttl.as_secs().max(1),
            prefix,
        }
    }

    /// The redis key for a cache key.
    pub(crate) fn redis_key(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }

    /// `GET`.
    pub(crate) async fn get(&self, key: &str) -> Fetched {
        let mut cmd = redis::cmd("GET");
        cmd.arg(self.redis_key(key));
        match self.call::<Option<Vec<u8>>>(&cmd).await {
            Some(Some(value)) => Fetched::Hit(value),
            Some(None) => Fetched::Miss,
            None => Fetched::Failed,
        }
    }

    /// `SET key value EX ttl`; false if the write was dropped.
    pub(crate) async fn set(&self, key: &str, value: Vec<u8>) -> bool {
        let mut cmd = redis::cmd("SET");
        cmd.arg(self.redis_key(key))
            .arg(value)
            .arg("EX")
            .arg(self.ttl_seconds);
        self.call::<()>(&cmd).await.is_some()
    }

    /// `DEL`; false if Redis could not be told.
    pub(crate) async fn del(&self, key: &str) -> bool {
        let mut cmd = redis::cmd("DEL");
        cmd.arg(self.redis_key(key));
        self.call::<i64>(&cmd).await.is_some()
    }

    /// Runs one command within the call budget; `None` on any failure (already counted).
    async fn call<T: FromRedisValue>(&self, cmd: &Cmd) -> Option<T> {
        let started = Instant::now();
        let deadline = started + self.call_timeout;
        let Some(mut lease) = self.link.lease(deadline).await else {
            self.metrics
                .observe_redis(true, started.elapsed().as_secs_f64());
            return None;
        };
        let answer = tokio::time::timeout_at(deadline, cmd.query_async::<T>(&mut lease.conn)).await;
        let seconds = started.elapsed().as_secs_f64();
        match answer {
            Ok(Ok(value)) => {
                self.link.report(&lease, CallOutcome::Answered);
                self.metrics.observe_redis(false, seconds);
                Some(value)
            }
            Ok(Err(e)) => {
                tracing::debug!(error = %error_chain(&e), "redis command failed");
                self.link.report(&lease, CallOutcome::Failed(&e));
                self.metrics.observe_redis(true, seconds);
                None
            }
            Err(_) => {
                tracing::debug!(budget = ?self.call_timeout, "redis command timed out");
                self.link.report(&lease, CallOutcome::TimedOut);
                self.metrics.observe_redis(true, seconds);
                None
            }
        }
    }
}
