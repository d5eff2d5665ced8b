//! The work queue: deduplicated FIFO of keys, at most one worker per key, delayed and
//! rate-limited re-adds, client-go `workqueue` semantics.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet, VecDeque};
use std::hash::Hash;
use std::sync::{Arc, Weak};
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::metrics::{ProcessingClock, QueueMetrics, QueueSeries};
use crate::rate_limit::{LimiterState, RateLimiter};

/// A deduplicating, rate-limited work queue of keys, cheap to clone (clones share the queue).
///
/// * A key is queued at most once: adding a queued key again does nothing.
/// * A key added while a worker processes it is marked dirty and queued again when the worker
///   calls [`WorkQueue::done`], so two workers never hold the same key at once.
/// * Otherwise keys come out in the order they were added.
/// * [`WorkQueue::add_after`] keeps delayed keys in one heap per queue, moved into the queue by
///   [`WorkQueue::get`] (waiting getters sleep until the earliest delay) and by
///   [`WorkQueue::len`]; no task per key, no background task at all.
/// * After [`WorkQueue::shut_down`] adds are ignored, delayed keys are dropped, and `get`
///   returns the keys still queued, then `None`.
///
/// No lock is held across an `.await`.
pub struct WorkQueue<K> {
    inner: Arc<Inner<K>>,
}

impl<K> Clone for WorkQueue<K> {
    fn clone(&self) -> Self {
        Self {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<K> std::fmt::Debug for WorkQueue<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkQueue")
            .field("name", &self.inner.name)
            .finish_non_exhaustive()
    }
}

struct Inner<K> {
    name: String,
    limiter: RateLimiter,
    state: Mutex<State<K>>,
    /// Wakes getters: a key was queued, the earliest delay moved forward, or shutdown.
    ready: Notify,
    /// Wakes `shut_down_with_drain` when no key is being processed.
    idle: Notify,
    series: Option<QueueSeries>,
}

struct State<K> {
    queue: VecDeque<K>,
    /// Keys queued or waiting to be queued again when their processing is done.
    dirty: HashSet<K>,
    /// Keys being processed, with when their worker got them.
    processing: HashMap<K, Instant>,
    /// When a dirty key was first added, for `workqueue_queue_duration_seconds`.
    added_at: HashMap<K, Instant>,
    /// Delayed keys: ready time and the sequence number of their live heap entry.
    waiting: HashMap<K, (Instant, u64)>,
    /// Ready times of delayed keys; entries whose sequence is gone from `timer_keys` are stale.
    timers: BinaryHeap<Reverse<(Instant, u64)>>,
    timer_keys: HashMap<u64, K>,
    next_seq: u64,
    limits: LimiterState<K>,
    shutting_down: bool,
}

impl<K: Clone + Eq + Hash + Send + Sync + 'static> WorkQueue<K> {
    /// Creates a queue. `name` is the `name` label of its metrics (Argo CD uses e.g.
    /// `app_reconciliation_queue`, `app_operation_processing_queue`).
    pub fn new(name: &str, rate_limiter: RateLimiter, metrics: Option<Arc<QueueMetrics>>) -> Self {
        let inner = Arc::new_cyclic(|weak: &Weak<Inner<K>>| {
            let clock: Weak<dyn ProcessingClock> = weak.clone();
            let series = metrics.as_ref().map(|m| m.attach(name, clock));
            Inner {
                name: name.to_owned(),
                state: Mutex::new(State {
                    queue: VecDeque::new(),
                    dirty: HashSet::new(),
                    processing: HashMap::new(),
                    added_at: HashMap::new(),
                    waiting: HashMap::new(),
                    timers: BinaryHeap::new(),
                    timer_keys: HashMap::new(),
                    next_seq: 0,
                    limits: LimiterState::new(&rate_limiter),
                    shutting_down: false,
                }),
                limiter: rate_limiter,
                ready: Notify::new(),
                idle: Notify::new(),
                series,
            }
        });
        Self { inner }
    }

    /// The queue's name.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// Queues `key` unless it is already queued; if it is being processed it is queued again
    /// when that processing is done.
    pub fn add(&self, key: K) {
        let mut st = self.inner.state.lock();
        self.add_locked(&mut st, key, Instant::now());
    }

    /// Queues `key` after `delay` (at once for a zero delay). If the key already waits for a
    /// delay, the earlier of the two ready times wins. Counts in `workqueue_retries_total`,
    /// as client-go's `AddAfter` does.
    pub fn add_after(&self, key: K, delay: Duration) {
        let mut st = self.inner.state.lock();
        self.add_after_locked(&mut st, key, delay);
    }

    /// Queues `key` after its rate-limited backoff: each call without a [`WorkQueue::forget`]
    /// in between grows the delay (see [`RateLimiter`]).
    pub fn add_rate_limited(&self, key: K) {
        let mut st = self.inner.state.lock();
        let delay = st
            .limits
            .when(&self.inner.limiter, key.clone(), Instant::now());
        self.add_after_locked(&mut st, key, delay);
    }

    /// Clears the failure count of `key`, so its next rate-limited add starts from the base
    /// delay again. Call it when the key was processed successfully.
    pub fn forget(&self, key: &K) {
        self.inner.state.lock().limits.forget(key);
    }

    /// How many rate-limited adds `key` had since it was last forgotten.
    pub fn num_requeues(&self, key: &K) -> u32 {
        self.inner.state.lock().limits.failures(key)
    }

    /// Waits for the next key and marks it as being processed; the caller must call
    /// [`WorkQueue::done`] with it. Returns `None` once the queue is shut down and drained.
    pub async fn get(&self) -> Option<K> {
        loop {
            let notified = self.inner.ready.notified();
            let mut notified = std::pin::pin!(notified);
            notified.as_mut().enable();
            let deadline = {
                let mut st = self.inner.state.lock();
                let now = Instant::now();
                self.promote_due(&mut st, now);
                if let Some(key) = st.queue.pop_front() {
                    self.start_processing(&mut st, &key, now);
                    if !st.queue.is_empty() {
                        self.inner.ready.notify_one();
                    }
                    return Some(key);
                }
                if st.shutting_down {
                    return None;
                }
                st.next_timer()
            };
            match deadline {
                Some(at) => {
                    // Either a wake-up or the earliest delay passing: both mean look again.
                    let _ = tokio::time::timeout_at(at, notified).await;
                }
                None => notified.await,
            }
        }
    }

    /// Marks `key` as processed; if it was added meanwhile it is queued again.
    pub fn done(&self, key: &K) {
        let mut st = self.inner.state.lock();
        let Some(started) = st.processing.remove(key) else {
            return;
        };
        if let Some(series) = &self.inner.series {
            series.work_duration.observe(
                Instant::now()
                    .saturating_duration_since(started)
                    .as_secs_f64(),
            );
        }
        if st.dirty.contains(key) {
            st.queue.push_back(key.clone());
            self.inner.ready.notify_one();
        }
        if st.processing.is_empty() {
            self.inner.idle.notify_waiters();
        }
    }

    /// How many keys are queued and ready (not counting delayed keys or keys being processed).
    pub fn len(&self) -> usize {
        let mut st = self.inner.state.lock();
        self.promote_due(&mut st, Instant::now());
        st.queue.len()
    }

    /// Whether no key is queued and ready.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Stops the queue: later adds are ignored, delayed keys are dropped, waiting getters
    /// wake and get the remaining keys, then `None`.
    pub fn shut_down(&self) {
        let mut st = self.inner.state.lock();
        if !st.shutting_down {
            tracing::debug!(queue = %self.inner.name, queued = st.queue.len(), "work queue shutting down");
        }
        st.shutting_down = true;
        st.waiting.clear();
        st.timers.clear();
        st.timer_keys.clear();
        drop(st);
        self.inner.ready.notify_waiters();
    }

    /// Shuts the queue down and waits until no key is being processed.
    pub async fn shut_down_with_drain(&self) {
        self.shut_down();
        loop {
            let notified = self.inner.idle.notified();
            let mut notified = std::pin::pin!(notified);
            notified.as_mut().enable();
            if self.inner.state.lock().processing.is_empty() {
                return;
            }
            notified.await;
        }
    }

    /// Whether [`WorkQueue::shut_down`] was called.
    pub fn is_shutting_down(&self) -> bool {
        self.inner.state.lock().shutting_down
    }

    fn add_locked(&self, st: &mut State<K>, key: K, now: Instant) {
        if st.shutting_down || st.dirty.contains(&key) {
            return;
        }
        st.added_at.entry(key.clone()).or_insert(now);
        st.dirty.insert(key.clone());
        if let Some(series) = &self.inner.series {
            series.adds.inc();
            series.depth.set(gauge_value(st.dirty.len()));
        }
        if st.processing.contains_key(&key) {
            return;
        }
        st.queue.push_back(key);
        self.inner.ready.notify_one();
    }

    fn add_after_locked(&self, st: &mut State<K>, key: K, delay: Duration) {
        if st.shutting_down {
            return;
        }
        if let Some(series) = &self.inner.series {
            series.retries.inc();
        }
        let now = Instant::now();
        if delay.is_zero() {
            self.add_locked(st, key, now);
            return;
        }
        let ready_at = now + delay;
        if let Some(&(existing, seq)) = st.waiting.get(&key) {
            if existing <= ready_at {
                return;
            }
            st.timer_keys.remove(&seq);
        }
        let earliest = st.next_timer();
        let seq = st.next_seq;
        st.next_seq = st.next_seq.wrapping_add(1);
        st.timers.push(Reverse((ready_at, seq)));
        st.timer_keys.insert(seq, key.clone());
        st.waiting.insert(key, (ready_at, seq));
        if earliest.is_none_or(|e| ready_at < e) {
            // Sleeping getters wait for the old earliest time; let them look again.
            self.inner.ready.notify_waiters();
        }
    }

    /// Moves delayed keys whose time has come into the queue.
    fn promote_due(&self, st: &mut State<K>, now: Instant) {
        while let Some(&Reverse((at, seq))) = st.timers.peek() {
            if at > now {
                break;
            }
            st.timers.pop();
            if let Some(key) = st.timer_keys.remove(&seq) {
                st.waiting.remove(&key);
                self.add_locked(st, key, now);
            }
        }
    }

    fn start_processing(&self, st: &mut State<K>, key: &K, now: Instant) {
        st.dirty.remove(key);
        st.processing.insert(key.clone(), now);
        let added = st.added_at.remove(key);
        if let Some(series) = &self.inner.series {
            series.depth.set(gauge_value(st.dirty.len()));
            if let Some(added) = added {
                series
                    .queue_duration
                    .observe(now.saturating_duration_since(added).as_secs_f64());
            }
        }
    }
}

impl<K> State<K> {
    /// The earliest live delay, dropping stale heap entries on the way.
    fn next_timer(&mut self) -> Option<Instant> {
        while let Some(&Reverse((at, seq))) = self.timers.peek() {
            if self.timer_keys.contains_key(&seq) {
                return Some(at);
            }
            self.timers.pop();
        }
        None
    }
}

fn gauge_value(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

impl<K: Send + Sync> ProcessingClock for Inner<K> {
    fn processing_ages(&self) -> (f64, f64) {
        let now = Instant::now();
        let st = self.state.lock();
        st.processing
            .values()
            .map(|started| now.saturating_duration_since(*started).as_secs_f64())
            .fold((0.0, 0.0), |(sum, max), age| {
                (sum + age, f64::max(max, age))
            })
    }
}
