//! Observer-clock liveness: when this replica considers another member alive
//! ([`MemberTracker`]), and when it must stop its own work because its lease may no
//! longer be current ([`SelfFence`]). Pure state machines; callers pass instants.
//!
//! No wall-clock timestamps written by other machines are ever compared: a member's
//! record (Lease `resourceVersion`, etcd mod revision, …) is an opaque version, and
//! only *when this observer first saw that version*, on its own monotonic clock, counts.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// Tracks, per member, the instant this observer first saw the current version of the
/// member's record. A member is alive while that instant is less than `lease` ago.
#[derive(Debug, Clone)]
pub struct MemberTracker {
    lease: Duration,
    seen: BTreeMap<String, Seen>,
}

#[derive(Debug, Clone)]
struct Seen {
    version: String,
    changed_at: Instant,
}

impl MemberTracker {
    /// A tracker judging members dead `lease` after their record last changed.
    pub fn new(lease: Duration) -> Self {
        Self {
            lease,
            seen: BTreeMap::new(),
        }
    }

    /// The lease duration.
    pub fn lease(&self) -> Duration {
        self.lease
    }

    /// Records that member `id`'s record has `version` as of `now`. A version not seen
    /// before (including the first sighting of a member) counts as a change at `now`;
    /// seeing the same version again changes nothing.
    pub fn observe(&mut self, id: &str, version: &str, now: Instant) {
        match self.seen.get_mut(id) {
            Some(s) if s.version == version => {}
            Some(s) => {
                s.version = version.to_owned();
                s.changed_at = now;
            }
            None => {
                self.seen.insert(
                    id.to_owned(),
                    Seen {
                        version: version.to_owned(),
                        changed_at: now,
                    },
                );
            }
        }
    }

    /// Forgets every member not in `present` (its record was deleted). A forgotten
    /// member that reappears is alive again from when it is next observed.
    pub fn forget_missing(&mut self, present: &[&str]) {
        self.seen.retain(|id, _| present.contains(&id.as_str()));
    }

    /// Whether `id` is alive at `now`: its last change was seen less than `lease` ago.
    /// Unknown members are not alive.
    pub fn is_alive(&self, id: &str, now: Instant) -> bool {
        self.seen
            .get(id)
            .is_some_and(|s| now.saturating_duration_since(s.changed_at) < self.lease)
    }

    /// The alive members at `now`, sorted.
    pub fn alive(&self, now: Instant) -> Vec<String> {
        self.seen
            .keys()
            .filter(|id| self.is_alive(id, now))
            .cloned()
            .collect()
    }

    /// The instant `id` becomes dead unless its record changes first.
    pub fn expires_at(&self, id: &str) -> Option<Instant> {
        self.seen
            .get(id)
            .and_then(|s| s.changed_at.checked_add(self.lease))
    }

    /// The earliest instant after `now` at which some currently alive member expires:
    /// when the caller should recompute the member set if nothing else happens.
    pub fn next_expiry(&self, now: Instant) -> Option<Instant> {
        self.seen
            .keys()
            .filter_map(|id| self.expires_at(id))
            .filter(|at| *at > now)
            .min()
    }
}

/// Self-fencing: whether this replica may still work on its units.
///
/// Only renewals that *succeeded* extend the fence, and they extend it from the
/// instant the renewal *started* (before the write could have landed): the replica
/// may work while `now < last_successful_renewal_start + lease − margin`.
///
/// Why this stops a replica strictly before anyone can take its units: an observer
/// dates a change of our record no earlier than the write landing, which is after the
/// renewal started, and declares us dead only `lease` after that on its own clock.
/// So the earliest takeover is ≥ start + lease, while we stop at start + lease −
/// margin. The margin absorbs clock-rate differences between the two monotonic
/// clocks and the time a step in progress needs to notice `may_work` turned false.
/// This holds as long as the taker confirms a member's death against a fresh read
/// of its record (a newer version resets the observer's clock), which the claim
/// protocol does before taking a unit.
#[derive(Debug, Clone)]
pub struct SelfFence {
    lease: Duration,
    margin: Duration,
    last_success_start: Option<Instant>,
    in_flight: Option<Instant>,
}

impl SelfFence {
    /// A fence for a member lease of `lease`, stopping `margin` early.
    pub fn new(lease: Duration, margin: Duration) -> Self {
        Self {
            lease,
            margin,
            last_success_start: None,
            in_flight: None,
        }
    }

    /// Notes that a renewal starts at `now` (call before sending the write) and returns
    /// `now`, to pass to [`SelfFence::renewal_succeeded`] once the write is confirmed.
    pub fn renewal_started(&mut self, now: Instant) -> Instant {
        self.in_flight = Some(now);
        now
    }

    /// Notes that the renewal started at `started` succeeded. An older success
    /// arriving late never moves the fence backwards.
    pub fn renewal_succeeded(&mut self, started: Instant) {
        if self.in_flight.is_some_and(|f| f <= started) {
            self.in_flight = None;
        }
        self.last_success_start = Some(match self.last_success_start {
            Some(prev) => prev.max(started),
            None => started,
        });
    }

    /// The instant work must stop unless a later renewal succeeds; `None` before the
    /// first successful renewal (no work allowed yet).
    pub fn deadline(&self) -> Option<Instant> {
        let start = self.last_success_start?;
        start.checked_add(self.lease.saturating_sub(self.margin))
    }

    /// Whether this replica may work at `now`.
    pub fn may_work(&self, now: Instant) -> bool {
        self.deadline().is_some_and(|d| now < d)
    }

    /// Start of the renewal in progress, if one was started and has not succeeded.
    pub fn renewal_in_flight(&self) -> Option<Instant> {
        self.in_flight
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LEASE: Duration = Duration::from_secs(10);
    const NS: Duration = Duration::from_nanos(1);

    #[test]
    fn member_dies_exactly_lease_after_last_seen_change() {
        let t0 = Instant::now();
        let mut tr = MemberTracker::new(LEASE);
        tr.observe("a", "1", t0);
        tr.observe("b", "7", t0);
        // First sighting counts as a change: alive right away.
        assert_eq!(tr.alive(t0), ["a", "b"]);
        // a keeps renewing every lease/3; b stops changing.
        let mut now = t0;
        for v in 2..=6 {
            now = t0 + LEASE / 3 * (v - 1);
            tr.observe("a", &v.to_string(), now);
            tr.observe("b", "7", now); // same version: not a change
        }
        assert!(tr.is_alive("b", t0 + LEASE - NS));
        assert!(!tr.is_alive("b", t0 + LEASE));
        assert_eq!(tr.expires_at("b"), Some(t0 + LEASE));
        assert_eq!(tr.alive(t0 + LEASE), ["a"]);
        assert_eq!(tr.next_expiry(t0 + LEASE), Some(now + LEASE));
        // a stops too: dead exactly lease after its last change was seen.
        assert!(tr.is_alive("a", now + LEASE - NS));
        assert!(!tr.is_alive("a", now + LEASE));
        assert!(tr.alive(now + LEASE).is_empty());
        assert_eq!(tr.next_expiry(now + LEASE), None);
    }

    #[test]
    fn observer_clock_not_writer_clock_decides() {
        // The observer sees the record late (t0 + 4s): the lease runs from then.
        let t0 = Instant::now();
        let mut tr = MemberTracker::new(LEASE);
        tr.observe("a", "1", t0 + Duration::from_secs(4));
        assert!(tr.is_alive("a", t0 + Duration::from_secs(13)));
        assert!(!tr.is_alive("a", t0 + Duration::from_secs(14)));
        // A dead member that changes again is alive again.
        tr.observe("a", "2", t0 + Duration::from_secs(20));
        assert!(tr.is_alive("a", t0 + Duration::from_secs(20)));
    }

    #[test]
    fn forget_missing_drops_deleted_members() {
        let t0 = Instant::now();
        let mut tr = MemberTracker::new(LEASE);
        for m in ["a", "b", "c"] {
            tr.observe(m, "1", t0);
        }
        tr.forget_missing(&["c", "a"]);
        assert_eq!(tr.alive(t0), ["a", "c"]);
        assert!(!tr.is_alive("b", t0));
        // Reappearing with the old version is a first sighting again.
        tr.observe("b", "1", t0 + LEASE * 2);
        assert!(tr.is_alive("b", t0 + LEASE * 2));
    }

    #[test]
    fn self_fence_stops_before_any_observer_can_declare_death() {
        let margin = Duration::from_secs(2);
        let t0 = Instant::now();
        let mut fence = SelfFence::new(LEASE, margin);
        assert!(!fence.may_work(t0), "no work before the first renewal");
        let started = fence.renewal_started(t0);
        assert_eq!(fence.renewal_in_flight(), Some(t0));
        // The write lands 1 s later; an observer sees it 0.5 s after that.
        let landed = t0 + Duration::from_secs(1);
        fence.renewal_succeeded(started);
        assert_eq!(fence.renewal_in_flight(), None);
        let mut observer = MemberTracker::new(LEASE);
        observer.observe("me", "v1", landed + Duration::from_millis(500));
        // Renewals now fail: find the first instants each side changes its mind.
        let stop = fence.deadline().unwrap_or(t0);
        let death = observer.expires_at("me").unwrap_or(t0);
        assert_eq!(stop, t0 + LEASE - margin);
        assert!(fence.may_work(stop - NS));
        assert!(!fence.may_work(stop));
        assert!(observer.is_alive("me", stop));
        assert!(stop < death, "fence {stop:?} must precede death {death:?}");
        // Even an observer seeing the write at the very instant it started.
        let mut eager = MemberTracker::new(LEASE);
        eager.observe("me", "v1", t0);
        assert!(eager.is_alive("me", stop) && !fence.may_work(stop));
    }

    #[test]
    fn self_fence_extends_only_on_success_and_never_backwards() {
        let margin = Duration::from_secs(1);
        let t0 = Instant::now();
        let mut fence = SelfFence::new(LEASE, margin);
        let s1 = fence.renewal_started(t0);
        fence.renewal_succeeded(s1);
        let s2 = fence.renewal_started(t0 + Duration::from_secs(3));
        // s2 fails (never reported): the fence still runs from s1.
        assert_eq!(fence.renewal_in_flight(), Some(s2));
        assert!(!fence.may_work(t0 + LEASE - margin));
        let s3 = fence.renewal_started(t0 + Duration::from_secs(6));
        fence.renewal_succeeded(s3);
        // A late success of an older renewal does not move it back.
        fence.renewal_succeeded(s1);
        assert_eq!(fence.deadline(), Some(s3 + LEASE - margin));
        assert!(fence.may_work(s3 + LEASE - margin - NS));
        // A margin larger than the lease never allows work.
        let mut silly = SelfFence::new(LEASE, LEASE * 2);
        let s = silly.renewal_started(t0);
        silly.renewal_succeeded(s);
        assert!(!silly.may_work(t0));
    }
}
