//! The shard manager: one loop per replica that renews its member lease, judges the
//! liveness of the others by its own clock, computes the desired owner of every unit with
//! the shared assignment algorithm, takes the claims of units it should own (free, or
//! held by a dead member), releases the ones it should no longer own once the step in
//! progress on them is done, and publishes the result into [`Ownership`].

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;

use crate::assignment::{Algorithm, assign};
use crate::backend::{ClaimOutcome, ClaimRecord, Coordination};
use crate::liveness::MemberTracker;
use crate::metrics::ShardMetrics;
use crate::ownership::Ownership;
use crate::unit::{ClusterInfo, UnitId, UnitLoad, units_for};

/// Where the manager learns the clusters and how many apps each holds.
pub trait ClusterSource: Send + Sync {
    /// The destination clusters with their app counts.
    fn clusters(&self) -> Vec<ClusterInfo>;
}

/// Fleet settings.
#[derive(Debug, Clone)]
pub struct ShardConfig {
    /// Member lease duration.
    pub lease: Duration,
    /// Assignment algorithm.
    pub algorithm: Algorithm,
    /// Split clusters holding more apps than this.
    pub max_apps_per_unit: Option<u64>,
    /// Longest wait for a step in progress before a unit is released anyway.
    pub release_wait: Duration,
}

/// One ownership change seen by this replica.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Move {
    /// Unit.
    pub unit: String,
    /// Previous holder (`None`: the claim was free).
    pub from: Option<String>,
    /// New holder (`None`: released).
    pub to: Option<String>,
}

/// The manager of one replica.
pub struct ShardManager<C: Coordination> {
    coord: Arc<C>,
    config: ShardConfig,
    ownership: Arc<Ownership>,
    source: Arc<dyn ClusterSource>,
    metrics: Arc<ShardMetrics>,
    tracker: MemberTracker,
    releasing_since: HashMap<UnitId, Instant>,
    names: HashMap<String, UnitId>,
}

impl<C: Coordination> std::fmt::Debug for ShardManager<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShardManager")
            .field("replica", &self.ownership.replica())
            .finish_non_exhaustive()
    }
}

impl<C: Coordination> ShardManager<C> {
    /// A manager publishing into `ownership`.
    pub fn new(
        coord: C,
        config: ShardConfig,
        ownership: Arc<Ownership>,
        source: Arc<dyn ClusterSource>,
        metrics: Arc<ShardMetrics>,
    ) -> Self {
        let tracker = MemberTracker::new(config.lease);
        ShardManager {
            coord: Arc::new(coord),
            config,
            ownership,
            source,
            metrics,
            tracker,
            releasing_since: HashMap::new(),
            names: HashMap::new(),
        }
    }

    /// Runs until `shutdown` turns true, then releases its claims and resigns. The member
    /// lease is renewed by its own task every third of a lease, so a slow round of claim
    /// work never delays a renewal; rounds run every fifth of a lease, and as soon as a
    /// member's lease runs out.
    pub async fn run(mut self, mut shutdown: watch::Receiver<bool>)
    where
        C: 'static,
    {
        let renewals = tokio::spawn(renew_loop(
            self.coord.clone(),
            self.ownership.clone(),
            self.metrics.clone(),
            self.config.lease,
        ));
        let period = self.config.lease / 5;
        loop {
            let started = Instant::now();
            self.tick().await;
            // Wake early when a member's lease runs out before the next round: its units
            // are claimed at once instead of up to a round later.
            let now = Instant::now();
            let mut wait = period.saturating_sub(now - started);
            if let Some(at) = self.tracker.next_expiry(now) {
                wait = wait.min(at - now);
            }
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = shutdown.changed() => {}
            }
            if *shutdown.borrow() {
                break;
            }
        }
        renewals.abort();
        self.ownership.clear();
        if let Err(e) = self.coord.resign().await {
            tracing::warn!(error = %e, "resigning from the fleet failed");
        }
    }

    /// One round of the protocol (the lease is renewed elsewhere).
    pub async fn tick(&mut self) {
        let me = self.ownership.replica().to_owned();
        let epoch = self.ownership.epoch();
        if !self.ownership.may_work() {
            return;
        }
        let (members, claims) = match (self.coord.members().await, self.coord.claims().await) {
            (Ok(m), Ok(c)) => (m, c),
            (Err(e), _) | (_, Err(e)) => {
                tracing::warn!(error = %e, "reading the fleet state failed");
                return;
            }
        };
        let now = Instant::now();
        for m in &members {
            self.tracker.observe(&m.id, &m.version, now);
        }
        let present: Vec<&str> = members.iter().map(|m| m.id.as_str()).collect();
        self.tracker.forget_missing(&present);
        let mut alive = self.tracker.alive(now);
        if !alive.contains(&me) {
            alive.push(me.clone());
            alive.sort();
        }
        let units = units_for(&self.source.clusters(), self.config.max_apps_per_unit);
        for u in &units {
            self.names.insert(u.unit.name(), u.unit.clone());
        }
        let desired = assign(&units, &alive, self.config.algorithm);
        let claims = self
            .reconcile_claims(epoch, &me, &alive, &units, &desired, claims)
            .await;
        self.export(&units, &claims);
    }

    /// Releases and takes claims; publishes the result. Returns the claims as they are
    /// believed to be after this round.
    async fn reconcile_claims(
        &mut self,
        epoch: u64,
        me: &str,
        alive: &[String],
        units: &[UnitLoad],
        desired: &BTreeMap<UnitId, String>,
        claims: Vec<ClaimRecord>,
    ) -> Vec<ClaimRecord> {
        let mut by_name: HashMap<String, ClaimRecord> =
            claims.into_iter().map(|c| (c.unit.clone(), c)).collect();
        let mut held = BTreeSet::new();
        let mut to_release: Vec<(ClaimRecord, Option<UnitId>)> = Vec::new();
        let mine: Vec<ClaimRecord> = by_name
            .values()
            .filter(|c| c.holder == me)
            .cloned()
            .collect();
        for claim in mine {
            let unit = self.names.get(&claim.unit).cloned();
            match unit {
                Some(u) if desired.get(&u).map(String::as_str) == Some(me) => {
                    self.releasing_since.remove(&u);
                    held.insert(u);
                }
                unit => to_release.push((claim, unit)),
            }
        }
        // Phase 1: publish the units to hand over as releasing, so no new step starts on
        // them (begin_step refuses under the same lock). Only then is "no step active"
        // final, and only then may a claim be deleted.
        let releasing: BTreeSet<UnitId> =
            to_release.iter().filter_map(|(_, u)| u.clone()).collect();
        let split = split_counts(units);
        if !self.ownership.publish_in(
            epoch,
            held.union(&releasing).cloned().collect(),
            releasing.clone(),
            split.clone(),
        ) {
            // The lease lapsed while this round ran: what it read may be stale.
            return by_name.into_values().collect();
        }
        let mut still_releasing = BTreeSet::new();
        for (claim, unit) in to_release {
            if let Some(u) = &unit
                && self.ownership.is_active(u)
            {
                let since = *self
                    .releasing_since
                    .entry(u.clone())
                    .or_insert_with(Instant::now);
                if since.elapsed() > self.config.release_wait {
                    tracing::warn!(unit = %u, "a step on a unit being handed over is still running");
                }
                still_releasing.insert(u.clone());
                continue;
            }
            match self.coord.release(&claim).await {
                Ok(()) => {
                    by_name.remove(&claim.unit);
                    if let Some(u) = &unit {
                        self.releasing_since.remove(u);
                    }
                    self.metrics.moves.inc();
                    tracing::info!(unit = %claim.unit, "released unit");
                }
                Err(e) => {
                    tracing::warn!(unit = %claim.unit, error = %e, "releasing a unit failed");
                    if let Some(u) = unit {
                        still_releasing.insert(u);
                    }
                }
            }
        }
        let releasing = still_releasing;
        held.extend(releasing.iter().cloned());
        let mut wanted = Vec::new();
        for (unit, owner) in desired {
            if owner != me || held.contains(unit) {
                continue;
            }
            if overlapping_claim_held(unit, me, alive, &by_name, &self.names) {
                continue;
            }
            let previous = by_name.get(&unit.name()).cloned();
            if let Some(p) = &previous
                && alive.contains(&p.holder)
            {
                continue; // its live holder releases it first
            }
            wanted.push((unit.clone(), previous));
        }
        // Claims are independent compare-and-swaps: send them together.
        let coord = &self.coord;
        let outcomes = futures::future::join_all(wanted.iter().map(|(unit, previous)| {
            let name = unit.name();
            async move { coord.claim(&name, previous.as_ref()).await }
        }))
        .await;
        for ((unit, previous), outcome) in wanted.into_iter().zip(outcomes) {
            match outcome {
                Ok(ClaimOutcome::Taken(record)) => {
                    if previous.is_some() {
                        self.metrics.moves.inc();
                    }
                    tracing::info!(unit = %unit, from = ?previous.as_ref().map(|p| &p.holder), "took unit");
                    by_name.insert(record.unit.clone(), record);
                    held.insert(unit);
                }
                Ok(ClaimOutcome::Conflict) => self.metrics.conflicts.inc(),
                Err(e) => tracing::warn!(unit = %unit, error = %e, "claiming a unit failed"),
            }
        }
        if self.ownership.may_work() {
            self.ownership.publish_in(epoch, held, releasing, split);
        } else {
            self.ownership.lapse();
        }
        by_name.into_values().collect()
    }

    fn export(&self, units: &[UnitLoad], claims: &[ClaimRecord]) {
        let weights: HashMap<String, u64> =
            units.iter().map(|u| (u.unit.name(), u.weight)).collect();
        let mut per: BTreeMap<String, (u64, u64)> = BTreeMap::new();
        for c in claims {
            let e = per.entry(c.holder.clone()).or_default();
            e.0 += 1;
            e.1 += weights.get(&c.unit).copied().unwrap_or(0);
        }
        self.metrics.set_fleet(&per);
    }
}

/// Renews the member lease every third of a lease; when the lease could have lapsed
/// (no successful renewal for lease − margin), drops all ownership at once.
async fn renew_loop<C: Coordination>(
    coord: Arc<C>,
    ownership: Arc<Ownership>,
    metrics: Arc<ShardMetrics>,
    lease: Duration,
) {
    let period = lease / 3;
    loop {
        if !ownership.may_work() {
            ownership.lapse();
        }
        let started = Instant::now();
        ownership.fence().renewal_started(started);
        match tokio::time::timeout(period, coord.renew()).await {
            Ok(Ok(_)) => ownership.fence().renewal_succeeded(started),
            Ok(Err(e)) => {
                metrics.renew_failures.inc();
                tracing::warn!(error = %e, "renewing the member lease failed");
            }
            Err(_) => {
                metrics.renew_failures.inc();
                tracing::warn!("renewing the member lease timed out");
            }
        }
        if !ownership.may_work() {
            ownership.lapse();
        }
        tokio::time::sleep(period.saturating_sub(started.elapsed())).await;
    }
}

/// Number of units per server.
fn split_counts(units: &[UnitLoad]) -> HashMap<String, u32> {
    let mut split: HashMap<String, u32> = HashMap::new();
    for u in units {
        *split.entry(u.unit.server.clone()).or_default() += 1;
    }
    split
}

/// Whether another live replica holds a claim on a different unit of the same cluster
/// (the cluster's split changed): taking this unit now could overlap with its work.
fn overlapping_claim_held(
    unit: &UnitId,
    me: &str,
    alive: &[String],
    claims: &HashMap<String, ClaimRecord>,
    names: &HashMap<String, UnitId>,
) -> bool {
    claims.values().any(|c| {
        c.holder != me
            && alive.contains(&c.holder)
            && names
                .get(&c.unit)
                .is_some_and(|u| u.server == unit.server && u != unit && overlaps(u, unit))
    })
}

/// Two units of one server overlap unless they are different buckets of the same split.
fn overlaps(a: &UnitId, b: &UnitId) -> bool {
    !matches!((a.bucket, b.bucket), (Some((_, ka)), Some((_, kb))) if ka == kb)
}

/// Argo CD's static mode (`ARGOCD_CONTROLLER_REPLICAS`): a fixed number of replicas, each
/// knowing its ordinal (the StatefulSet hostname suffix). No leases and no claims: every
/// replica computes the same assignment over the members `"0"…"n-1"` and works on the
/// units given to its ordinal. Like Argo CD's, this mode cannot guarantee that a unit
/// is never worked twice while replicas restart; the lease mode can.
pub async fn run_static(
    ordinal: usize,
    replicas: usize,
    config: ShardConfig,
    ownership: Arc<Ownership>,
    source: Arc<dyn ClusterSource>,
    mut shutdown: watch::Receiver<bool>,
) {
    let members: Vec<String> = (0..replicas.max(1)).map(|i| i.to_string()).collect();
    let me = ordinal.to_string();
    loop {
        let started = Instant::now();
        {
            let mut fence = ownership.fence();
            let at = fence.renewal_started(started);
            fence.renewal_succeeded(at);
        }
        let units = units_for(&source.clusters(), config.max_apps_per_unit);
        let desired = assign(&units, &members, config.algorithm);
        let held = desired
            .into_iter()
            .filter(|(_, owner)| *owner == me)
            .map(|(unit, _)| unit)
            .collect();
        ownership.publish(held, BTreeSet::new(), split_counts(&units));
        tokio::select! {
            _ = tokio::time::sleep(config.lease / 3) => {}
            _ = shutdown.changed() => {}
        }
        if *shutdown.borrow() {
            break;
        }
    }
    ownership.clear();
}

/// The ordinal of a StatefulSet pod from its hostname (`keelson-controller-2` → 2).
pub fn ordinal_from_hostname(hostname: &str) -> Option<usize> {
    hostname.rsplit('-').next()?.parse().ok()
}
