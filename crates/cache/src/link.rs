//! The cache's Redis connection: one multiplexed connection, established and re-established
//! by a background task with exponential backoff (re-discovering the master through Sentinel
//! each time), and lent to requests that never wait for it longer than their own deadline.
//!
//! States: `Connecting` (an attempt is running; requests wait for its outcome within their
//! budget), `Up` (requests use the connection), `Down` (the last attempt failed; requests
//! fail at once until the next attempt). A request that sees an I/O error, a dropped
//! connection, `READONLY`, `MASTERDOWN` or `LOADING` — or three timeouts in a row — sends the
//! link back to `Connecting`, which wakes the task.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use prometheus::IntGauge;
use redis::aio::MultiplexedConnection;
use redis::{ConnectionInfo, IntoConnectionInfo, RedisError};
use tokio::sync::{Notify, watch};
use tokio::task::AbortHandle;
use tokio::time::Instant;

use crate::config::{ConfigError, RedisConfig, parse_host_port, redact_url};
use crate::sentinel::{SentinelError, SentinelTarget, confirm_master, connect};

/// Timeouts in a row after which the connection is considered dead.
const TIMEOUTS_BEFORE_RECONNECT: u32 = 3;

/// Why a connection attempt failed.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// The TCP connection or the handshake (AUTH, SELECT) failed.
    #[error("connecting to redis at {addr}")]
    Connecting {
        /// The server address (password removed).
        addr: String,
        /// The connection error.
        #[source]
        source: RedisError,
    },
    /// The new connection did not answer `PING`.
    #[error("pinging redis at {addr}")]
    Pinging {
        /// The server address (password removed).
        addr: String,
        /// The command error.
        #[source]
        source: RedisError,
    },
    /// The master could not be found or confirmed through the sentinels.
    #[error("discovering the redis master")]
    Discovering(#[source] SentinelError),
    /// The whole attempt took longer than its budget.
    #[error("connecting to redis took longer than {0:?}")]
    TimingOut(Duration),
}

/// Where the connection goes.
#[derive(Debug)]
pub(crate) enum Target {
    /// One fixed server.
    Direct(ConnectionInfo),
    /// The current master of a Sentinel group.
    Sentinel(SentinelTarget),
}

impl Target {
    /// The target described by a (validated) configuration.
    pub(crate) fn from_config(config: &RedisConfig) -> Result<Target, ConfigError> {
        match config {
            RedisConfig::Direct { url } => {
                let info = url.as_str().into_connection_info().map_err(|source| {
                    ConfigError::ParsingRedisUrl {
                        url: redact_url(url),
                        source,
                    }
                })?;
                let settings = info.redis_settings().clone().set_skip_set_lib_name();
                Ok(Target::Direct(info.set_redis_settings(settings)))
            }
            RedisConfig::Sentinel {
                sentinels,
                master_name,
                password,
                sentinel_password,
                db,
            } => {
                let addrs = sentinels
                    .iter()
                    .map(|s| parse_host_port(s))
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(Target::Sentinel(SentinelTarget::new(
                    addrs,
                    master_name.clone(),
                    password.clone(),
                    sentinel_password.clone(),
                    *db,
                )))
            }
        }
    }

    /// One connection attempt: discover (Sentinel), connect, check.
    async fn connect(
        &self,
        timeouts: &LinkTimeouts,
    ) -> Result<MultiplexedConnection, ConnectError> {
        match self {
            Target::Direct(info) => {
                let addr = info.addr().to_string();
                let mut conn =
                    connect(info.clone(), Some(timeouts.call))
                        .await
                        .map_err(|source| ConnectError::Connecting {
                            addr: addr.clone(),
                            source,
                        })?;
                redis::cmd("PING")
                    .query_async::<()>(&mut conn)
                    .await
                    .map_err(|source| ConnectError::Pinging { addr, source })?;
                Ok(conn)
            }
            Target::Sentinel(sentinel) => {
                let (host, port) = sentinel
                    .discover(timeouts.call)
                    .await
                    .map_err(ConnectError::Discovering)?;
                let addr = format!("{host}:{port}");
                let info = sentinel
                    .master_info(&host, port)
                    .map_err(ConnectError::Discovering)?;
                let mut conn = connect(info, Some(timeouts.call)).await.map_err(|source| {
                    ConnectError::Connecting {
                        addr: addr.clone(),
                        source,
                    }
                })?;
                confirm_master(&mut conn, &addr)
                    .await
                    .map_err(ConnectError::Discovering)?;
                Ok(conn)
            }
        }
    }

    fn describe(&self) -> String {
        match self {
            Target::Direct(info) => info.addr().to_string(),
            Target::Sentinel(_) => "the sentinel-reported master".to_string(),
        }
    }
}

/// Time budgets of the link.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LinkTimeouts {
    /// One command (and each sentinel query).
    pub(crate) call: Duration,
    /// One whole connection attempt.
    pub(crate) connect: Duration,
    /// First pause after a failed attempt.
    pub(crate) min_backoff: Duration,
    /// Longest pause between attempts.
    pub(crate) max_backoff: Duration,
}

#[derive(Clone)]
enum State {
    Connecting,
    Up {
        conn: MultiplexedConnection,
        generation: u64,
    },
    Down,
}

/// A connection lent to one request.
pub(crate) struct Lease {
    /// The connection (a cheap clone of the shared multiplexed one).
    pub(crate) conn: MultiplexedConnection,
    generation: u64,
}

/// How a request's command went, reported back so the link can react.
#[derive(Debug)]
pub(crate) enum CallOutcome<'a> {
    /// The command answered.
    Answered,
    /// The command failed.
    Failed(&'a RedisError),
    /// The command did not answer within the budget.
    TimedOut,
}

/// The shared connection state.
pub(crate) struct Link {
    target: Target,
    timeouts: LinkTimeouts,
    state: watch::Sender<State>,
    wake: Notify,
    timeouts_in_a_row: AtomicU32,
    connected: IntGauge,
}

/// Aborts the background task when the cache is dropped.
#[derive(Debug)]
pub(crate) struct TaskGuard(AbortHandle);

impl Drop for TaskGuard {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl Link {
    /// Starts the background connection task; the first attempt begins at once.
    pub(crate) fn start(
        target: Target,
        timeouts: LinkTimeouts,
        connected: IntGauge,
    ) -> (Arc<Link>, TaskGuard) {
        let (state, _) = watch::channel(State::Connecting);
        let link = Arc::new(Link {
            target,
            timeouts,
            state,
            wake: Notify::new(),
            timeouts_in_a_row: AtomicU32::new(0),
            connected,
        });
        let task = tokio::spawn(run(Arc::clone(&link)));
        (link, TaskGuard(task.abort_handle()))
    }

    /// The connection, if there is one by `deadline`; `None` at once while the link is down.
    pub(crate) async fn lease(&self, deadline: Instant) -> Option<Lease> {
        let mut rx = self.state.subscribe();
        loop {
            let ready = match &*rx.borrow_and_update() {
                State::Up { conn, generation } => Some(Some(Lease {
                    conn: conn.clone(),
                    generation: *generation,
                })),
                State::Down => Some(None),
                State::Connecting => None,
            };
            if let Some(lease) = ready {
                return lease;
            }
            match tokio::time::timeout_at(deadline, rx.changed()).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) | Err(_) => return None,
            }
        }
    }

    /// Takes note of a command's outcome; reconnects when the connection looks dead.
    pub(crate) fn report(&self, lease: &Lease, outcome: CallOutcome<'_>) {
        let broken = match outcome {
            CallOutcome::Answered => {
                self.timeouts_in_a_row.store(0, Ordering::Relaxed);
                false
            }
            CallOutcome::Failed(e) if e.is_timeout() => self.count_timeout(),
            CallOutcome::Failed(e) => needs_reconnect(e),
            CallOutcome::TimedOut => self.count_timeout(),
        };
        if broken {
            self.reconnect(lease.generation);
        }
    }

    fn count_timeout(&self) -> bool {
        self.timeouts_in_a_row.fetch_add(1, Ordering::Relaxed) + 1 >= TIMEOUTS_BEFORE_RECONNECT
    }

    /// Drops connection `generation` (if it is still the current one) and wakes the task.
    fn reconnect(&self, generation: u64) {
        let dropped = self.state.send_if_modified(|state| match state {
            State::Up { generation: g, .. } if *g == generation => {
                *state = State::Connecting;
                true
            }
            _ => false,
        });
        if dropped {
            self.connected.set(0);
            tracing::info!(
                redis = %self.target.describe(),
                "redis connection looks broken, reconnecting"
            );
            self.wake.notify_one();
        }
    }

    fn is_up(&self) -> bool {
        matches!(*self.state.borrow(), State::Up { .. })
    }
}

/// Errors after which the connection (or the server it points at) cannot be trusted.
fn needs_reconnect(e: &RedisError) -> bool {
    e.is_io_error()
        || e.is_connection_dropped()
        || e.is_connection_refusal()
        || e.is_unrecoverable_error()
        || matches!(e.code(), Some("READONLY" | "MASTERDOWN" | "LOADING"))
}

/// The background task: connect whenever the link is not up, backing off after failures.
async fn run(link: Arc<Link>) {
    let timeouts = link.timeouts;
    let mut backoff = timeouts.min_backoff;
    let mut generation = 0u64;
    let mut failures = 0u64;
    loop {
        if link.is_up() {
            link.wake.notified().await;
            continue;
        }
        link.state.send_if_modified(|state| {
            let change = matches!(state, State::Down);
            if change {
                *state = State::Connecting;
            }
            change
        });
        let attempt = tokio::time::timeout(timeouts.connect, link.target.connect(&timeouts)).await;
        let result = attempt.unwrap_or(Err(ConnectError::TimingOut(timeouts.connect)));
        match result {
            Ok(conn) => {
                generation += 1;
                link.timeouts_in_a_row.store(0, Ordering::Relaxed);
                link.state.send_replace(State::Up { conn, generation });
                link.connected.set(1);
                tracing::info!(redis = %link.target.describe(), generation, "redis connected");
                backoff = timeouts.min_backoff;
                failures = 0;
            }
            Err(e) => {
                link.state.send_replace(State::Down);
                link.connected.set(0);
                failures += 1;
                let error = error_chain(&e);
                if failures == 1 {
                    tracing::warn!(%error, retry_in = ?backoff, "redis unavailable, cache misses until it is back");
                } else {
                    tracing::debug!(%error, failures, retry_in = ?backoff, "redis still unavailable");
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(timeouts.max_backoff);
            }
        }
    }
}

/// The error and its sources on one line.
pub(crate) fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}
