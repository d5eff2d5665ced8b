//! Takeover progress of the units this replica gained: when each was claimed, how many
//! of its apps are still to be compared by this replica, and when the last one was —
//! the moment the unit is reconciled again after a move (a failover, a rebalance or the
//! replica's start). Served as `GET /api/v1/units` on the telemetry address and as the
//! histogram `keelson_unit_takeover_seconds`.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
pub use keelson_sharding::takeover::UnitProgress;
use keelson_sharding::unit::UnitId;
use parking_lot::Mutex;

use crate::refresh_requests::RefreshSlot;
use crate::shared::AppKey;

/// Takeover progress of every unit held, written by the ownership follower (gains and
/// losses) and the refresh workers (apps compared).
#[derive(Debug, Default)]
pub struct Takeovers {
    state: Mutex<Progress>,
}

#[derive(Debug, Default)]
struct Progress {
    units: BTreeMap<UnitId, UnitProgress>,
    /// App → unit, for apps of gained units not compared yet.
    waiting: HashMap<AppKey, UnitId>,
}

impl Takeovers {
    /// Units no longer in `held` are forgotten; `unit`s newly gained at `at_unix_ms`
    /// start waiting for their apps (a unit without apps is reconciled at once).
    pub fn follow(
        &self,
        held: &BTreeSet<UnitId>,
        gained: BTreeMap<UnitId, Vec<AppKey>>,
        at_unix_ms: u64,
    ) {
        let mut state = self.state.lock();
        state.units.retain(|unit, _| held.contains(unit));
        state.waiting.retain(|_, unit| held.contains(unit));
        for (unit, keys) in gained {
            let apps = keys.len();
            let left = apps;
            for key in keys {
                // An app moved between units waits for its new unit only.
                if let Some(before) = state.waiting.insert(key, unit.clone())
                    && let Some(p) = state.units.get_mut(&before)
                {
                    p.left = p.left.saturating_sub(1);
                }
            }
            let progress = UnitProgress {
                unit: unit.to_string(),
                gained_unix_ms: at_unix_ms,
                apps,
                left,
                reconciled_unix_ms: (left == 0).then_some(at_unix_ms),
            };
            state.units.insert(unit, progress);
        }
    }

    /// `key` was compared by a refresh that started at `started_unix_ms` and ended at
    /// `at_unix_ms`; returns the seconds its unit took from the claim when `key` was the
    /// unit's last app. A refresh that started before the claim does not count.
    pub fn compared(&self, key: &AppKey, started_unix_ms: u64, at_unix_ms: u64) -> Option<f64> {
        let mut state = self.state.lock();
        let unit = state.waiting.get(key)?;
        let gained = state.units.get(unit).map(|p| p.gained_unix_ms)?;
        if started_unix_ms < gained {
            return None;
        }
        let unit = state.waiting.remove(key)?;
        let progress = state.units.get_mut(&unit)?;
        progress.left = progress.left.saturating_sub(1);
        if progress.left > 0 {
            return None;
        }
        progress.reconciled_unix_ms = Some(at_unix_ms);
        Some(at_unix_ms.saturating_sub(progress.gained_unix_ms) as f64 / 1000.0)
    }

    /// Every held unit's progress.
    pub fn units(&self) -> Vec<UnitProgress> {
        self.state.lock().units.values().cloned().collect()
    }

    /// Gained units with apps still to compare.
    pub fn reconciling(&self) -> usize {
        let state = self.state.lock();
        state.units.values().filter(|p| p.left > 0).count()
    }
}

/// The `GET /api/v1/units` route: `{"units": [UnitProgress…]}`, 503 until the controller
/// is in `slot`.
pub fn router(slot: RefreshSlot) -> Router {
    Router::new()
        .route("/api/v1/units", get(units))
        .with_state(slot)
}

async fn units(State(slot): State<RefreshSlot>) -> impl IntoResponse {
    match slot.get().and_then(|h| h.0.upgrade()) {
        Some(shared) => (
            StatusCode::OK,
            axum::Json(serde_json::json!({ "units": shared.takeovers.units() })),
        ),
        None => (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(serde_json::json!({ "error": "the controller is starting" })),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unit(server: &str) -> UnitId {
        UnitId::cluster(server)
    }

    fn held(units: &[&str]) -> BTreeSet<UnitId> {
        units.iter().copied().map(unit).collect()
    }

    #[test]
    fn a_unit_is_reconciled_when_its_last_app_is_compared_and_forgotten_when_lost() {
        let t = Takeovers::default();
        let gained = BTreeMap::from([
            (unit("a"), vec![AppKey::from("ns/1"), AppKey::from("ns/2")]),
            (unit("b"), vec![]),
        ]);
        t.follow(&held(&["a", "b"]), gained, 1_000);
        assert_eq!(t.reconciling(), 1);
        let b = t.units().into_iter().find(|u| u.unit == "b");
        assert_eq!(b.and_then(|u| u.reconciled_unix_ms), Some(1_000));
        // Started before the claim: does not count.
        assert_eq!(t.compared(&AppKey::from("ns/1"), 900, 1_500), None);
        assert_eq!(t.reconciling(), 1);
        assert_eq!(t.compared(&AppKey::from("ns/1"), 1_100, 1_600), None);
        assert_eq!(t.compared(&AppKey::from("ns/1"), 1_700, 1_800), None);
        assert_eq!(t.compared(&AppKey::from("ns/2"), 3_000, 3_500), Some(2.5));
        assert_eq!(t.reconciling(), 0);
        // Lost, then gained again: waits for its apps afresh.
        t.follow(&held(&["b"]), BTreeMap::new(), 4_000);
        assert_eq!(t.units().len(), 1);
        let again = BTreeMap::from([(unit("a"), vec![AppKey::from("ns/1")])]);
        t.follow(&held(&["a", "b"]), again, 5_000);
        let a = t.units().into_iter().find(|u| u.unit == "a");
        assert_eq!(a.map(|u| (u.apps, u.left)), Some((1, 1)));
        assert_eq!(t.compared(&AppKey::from("ns/1"), 5_000, 5_250), Some(0.25));
    }
}
