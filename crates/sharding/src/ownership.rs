//! `Ownership`: what this replica may work on right now — the units whose claims it
//! holds, minus those being released, and nothing at all once its own member lease could
//! have expired (self-fencing). Written by the shard manager, read by the controller
//! before every reconcile and every write.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::{Mutex, RwLock};
use tokio::sync::watch;

use crate::liveness::SelfFence;
use crate::unit::{UnitId, unit_of_app};

#[derive(Debug, Default)]
struct Held {
    /// Units whose claims this replica holds.
    units: BTreeSet<UnitId>,
    /// Units being released: no new work starts on them.
    releasing: BTreeSet<UnitId>,
    /// Number of units each cluster is split into (1 when not split).
    split: HashMap<String, u32>,
}

/// The shared view of this replica's ownership.
#[derive(Debug)]
pub struct Ownership {
    replica: String,
    held: RwLock<Held>,
    fence: Mutex<SelfFence>,
    active: Mutex<HashMap<UnitId, usize>>,
    changed: watch::Sender<u64>,
    /// Bumped whenever the lease lapsed and everything was dropped; a manager round that
    /// began before a lapse must not publish what it read then.
    epoch: std::sync::atomic::AtomicU64,
}

/// Marks a step in progress on a unit; the unit is not released while it lives.
#[derive(Debug)]
pub struct StepGuard {
    ownership: Arc<Ownership>,
    unit: UnitId,
}

impl Drop for StepGuard {
    fn drop(&mut self) {
        let mut active = self.ownership.active.lock();
        if let Some(n) = active.get_mut(&self.unit) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                active.remove(&self.unit);
            }
        }
    }
}

impl Ownership {
    /// A replica that holds nothing yet. `lease` is its member lease duration and
    /// `margin` how long before the lease could expire it stops working.
    pub fn new(replica: impl Into<String>, lease: Duration, margin: Duration) -> Arc<Self> {
        let (changed, _) = watch::channel(0);
        Arc::new(Ownership {
            replica: replica.into(),
            held: RwLock::new(Held::default()),
            fence: Mutex::new(SelfFence::new(lease, margin)),
            active: Mutex::new(HashMap::new()),
            changed,
            epoch: std::sync::atomic::AtomicU64::new(0),
        })
    }

    /// This replica's id.
    pub fn replica(&self) -> &str {
        &self.replica
    }

    /// The unit an app belongs to, with the current split of its cluster.
    pub fn unit_of(&self, server: &str, app_key: &str) -> UnitId {
        let count = self.held.read().split.get(server).copied().unwrap_or(1);
        unit_of_app(server, app_key, count)
    }

    /// Whether the self-fence allows work now.
    pub fn may_work(&self) -> bool {
        self.fence.lock().may_work(Instant::now())
    }

    /// Whether this replica may work on the app now: it holds the app's unit, is not
    /// releasing it, and its own lease is fresh.
    pub fn owns(&self, server: &str, app_key: &str) -> bool {
        if !self.may_work() {
            return false;
        }
        let unit = self.unit_of(server, app_key);
        let held = self.held.read();
        held.units.contains(&unit) && !held.releasing.contains(&unit)
    }

    /// Starts a step on the app's unit when this replica owns it.
    ///
    /// The check and the count happen under the ownership's read lock, so once the
    /// manager has published a unit as releasing (under the write lock), every step on
    /// it either is already counted or will be refused: the manager's `is_active` check
    /// after that publish cannot miss a step.
    pub fn begin_step(self: &Arc<Self>, server: &str, app_key: &str) -> Option<StepGuard> {
        if !self.may_work() {
            return None;
        }
        let held = self.held.read();
        let count = held.split.get(server).copied().unwrap_or(1);
        let unit = unit_of_app(server, app_key, count);
        if !held.units.contains(&unit) || held.releasing.contains(&unit) {
            return None;
        }
        *self.active.lock().entry(unit.clone()).or_default() += 1;
        drop(held);
        Some(StepGuard {
            ownership: self.clone(),
            unit,
        })
    }

    /// Servers with at least one held unit.
    pub fn held_servers(&self) -> BTreeSet<String> {
        self.held
            .read()
            .units
            .iter()
            .map(|u| u.server.clone())
            .collect()
    }

    /// Held units.
    pub fn held_units(&self) -> BTreeSet<UnitId> {
        self.held.read().units.clone()
    }

    /// A receiver notified whenever the held set or the split changes.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }

    pub(crate) fn fence(&self) -> parking_lot::MutexGuard<'_, SelfFence> {
        self.fence.lock()
    }

    pub(crate) fn is_active(&self, unit: &UnitId) -> bool {
        self.active.lock().get(unit).is_some_and(|n| *n > 0)
    }

    /// The current lapse epoch.
    pub(crate) fn epoch(&self) -> u64 {
        self.epoch.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// The lease lapsed: drop everything and start a new epoch.
    pub(crate) fn lapse(&self) {
        let mut held = self.held.write();
        self.epoch.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        if held.units.is_empty() && held.releasing.is_empty() {
            return;
        }
        held.units.clear();
        held.releasing.clear();
        drop(held);
        self.changed.send_modify(|g| *g += 1);
    }

    /// Publishes only if no lapse happened since `epoch` was read (checked under the
    /// same lock a lapse takes). Returns whether it published.
    pub(crate) fn publish_in(
        &self,
        epoch: u64,
        units: BTreeSet<UnitId>,
        releasing: BTreeSet<UnitId>,
        split: HashMap<String, u32>,
    ) -> bool {
        let mut held = self.held.write();
        if self.epoch() != epoch {
            return false;
        }
        if held.units == units && held.releasing == releasing && held.split == split {
            return true;
        }
        held.units = units;
        held.releasing = releasing;
        held.split = split;
        drop(held);
        self.changed.send_modify(|g| *g += 1);
        true
    }

    /// Replaces the ownership (manager only); notifies subscribers when it changed.
    pub(crate) fn publish(
        &self,
        units: BTreeSet<UnitId>,
        releasing: BTreeSet<UnitId>,
        split: HashMap<String, u32>,
    ) {
        let mut held = self.held.write();
        if held.units == units && held.releasing == releasing && held.split == split {
            return;
        }
        held.units = units;
        held.releasing = releasing;
        held.split = split;
        drop(held);
        self.changed.send_modify(|g| *g += 1);
    }

    /// Drops everything (self-fenced): no more work until claims are confirmed again.
    pub(crate) fn clear(&self) {
        let split = self.held.read().split.clone();
        self.publish(BTreeSet::new(), BTreeSet::new(), split);
    }

    /// Per-server split counts (for metrics and status).
    pub fn split(&self) -> BTreeMap<String, u32> {
        self.held
            .read()
            .split
            .iter()
            .map(|(k, v)| (k.clone(), *v))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn working(o: &Ownership) {
        let mut fence = o.fence();
        let at = fence.renewal_started(Instant::now());
        fence.renewal_succeeded(at);
    }

    #[test]
    fn releasing_units_refuse_new_steps_and_active_steps_are_seen() {
        let o = Ownership::new("r1", Duration::from_secs(9), Duration::from_secs(3));
        working(&o);
        let a = UnitId::cluster("https://a");
        let b = UnitId::cluster("https://b");
        o.publish(
            [a.clone(), b.clone()].into_iter().collect(),
            BTreeSet::new(),
            HashMap::new(),
        );
        let guard = o.begin_step("https://a", "argocd/x");
        assert!(guard.is_some());
        assert!(o.is_active(&a));
        // The manager marks `a` and `b` releasing: no new step on them, the running one
        // still counts until it ends.
        o.publish(
            [a.clone(), b.clone()].into_iter().collect(),
            [a.clone(), b.clone()].into_iter().collect(),
            HashMap::new(),
        );
        assert!(o.begin_step("https://b", "argocd/y").is_none());
        assert!(!o.owns("https://a", "argocd/x"));
        assert!(o.is_active(&a));
        drop(guard);
        assert!(!o.is_active(&a));
    }

    #[test]
    fn nothing_is_owned_without_a_fresh_lease() {
        let o = Ownership::new("r1", Duration::from_secs(9), Duration::from_secs(3));
        o.publish(
            [UnitId::cluster("https://a")].into_iter().collect(),
            BTreeSet::new(),
            HashMap::new(),
        );
        assert!(!o.owns("https://a", "argocd/x"));
        assert!(o.begin_step("https://a", "argocd/x").is_none());
    }
}
