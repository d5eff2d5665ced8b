//! `failover`: a fleet of N ≥ 2 controllers over Kubernetes Leases, each writing an
//! apply log. After the scale phase, the replica holding the most units is killed with
//! SIGKILL. `failover_s` (the issue's "every moved unit reconciled again") runs from the
//! kill until every unit it held was claimed by a survivor and every app of the unit
//! compared there, as the survivors report it (`GET /api/v1/units`); `takeover_s` until
//! no claim names the killed replica. With `--commit-at-kill` (result `failover-commit`)
//! a commit changes every moved app at the kill, so each survivor's reconcile renders a
//! new commit and shows in the app's status: `failover_compared_s` runs until every moved
//! app was compared at that commit, `failover_synced_s` until every one is also Synced
//! and Healthy there. Double work comes from the apply logs: writes of two replicas to
//! one unit in overlapping time intervals (must be 0).

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::Context;
use k8s_openapi::api::coordination::v1::Lease;
use keelson_sharding::unit::UnitId;
use kube::api::{Api, ListParams};
use serde_json::Value;

use super::install::{Installation, Options, install};
use super::{Config, Scenario, target};
use crate::fleet_env::{NAMESPACE, is_done_at, units};
use crate::results::BenchResult;

/// The result name of a run with `--commit-at-kill`.
pub const COMMIT_VARIANT: &str = "failover-commit";

/// Runs the scenario.
pub async fn run(config: &Config) -> anyhow::Result<BenchResult> {
    let options = Options {
        force_fleet: true,
        controllers: config.controllers.max(2),
        apply_logs: true,
        fresh_revisions: config.commit_at_kill,
        ..Options::of(config)
    };
    let mut inst = install(config, &options).await?;
    let mut result = config.result(Scenario::Failover);
    if config.commit_at_kill {
        result.scenario = COMMIT_VARIANT.to_owned();
    }
    result.metric("controllers", options.controllers as u64);
    let synced = inst.scale_phase_complete(config).await?;
    result.metric("synced_all_s", synced.synced_s);
    let claims = claims(&inst).await?;
    // The replica holding the most units (ties: the first).
    let (victim_index, victim) = inst
        .replicas
        .iter()
        .enumerate()
        .max_by_key(|(i, r)| (claims.values().filter(|h| h == r).count(), usize::MAX - i))
        .map(|(i, r)| (i, r.clone()))
        .context("no replica")?;
    let victim_units: BTreeSet<String> = claims
        .iter()
        .filter(|(_, holder)| **holder == victim)
        .map(|(unit, _)| unit_name(unit))
        .collect();
    let moved = moved_apps(&inst, config, &victim_units)?;
    result.metric("units", claims.len() as u64);
    result.metric("moved_units", victim_units.len() as u64);
    result.metric("moved_apps", moved.len() as u64);
    let survivors = (0..inst.env.controllers.len())
        .filter(|i| *i != victim_index)
        .map(|i| inst.env.controller_addr(i))
        .collect::<anyhow::Result<Vec<_>>>()?;
    inst.env
        .controllers
        .get_mut(victim_index)
        .context("no controller")?
        .kill9()?;
    let killed = Instant::now();
    let killed_ms = unix_ms();
    let takeover = tokio::spawn(wait_taken_over(
        inst.env.mgmt.clone(),
        victim.clone(),
        config.timeout,
    ));
    let sha = match config.commit_at_kill {
        true => Some(inst.env.commit_change(moved.iter().copied(), "failover")?),
        false => None,
    };
    let statuses = async {
        let sha = sha.as_deref()?;
        Some(tokio::join!(
            finished(wait_moved(&inst, &moved, config.timeout, |a| {
                compared_at(a, sha)
            })),
            finished(wait_moved(&inst, &moved, config.timeout, |a| {
                is_done_at(a, sha)
            })),
        ))
    };
    let (reconciled, statuses) = tokio::join!(
        wait_reconciled(&survivors, &victim_units, killed_ms, config.timeout),
        statuses
    );
    let reconciled = reconciled?;
    result.metric(
        "failover_s",
        reconciled
            .last_unix_ms
            .map_or(config.timeout.as_secs_f64(), |at| {
                at.saturating_sub(killed_ms) as f64 / 1000.0
            }),
    );
    result.metric("failover_unreconciled_units", reconciled.left as u64);
    result.metric("failover_reconciled_apps", reconciled.apps as u64);
    if let Some((compared, synced)) = statuses {
        result.metric("failover_compared_s", (compared.1 - killed).as_secs_f64());
        result.metric("failover_uncompared_apps", compared.0? as u64);
        result.metric("failover_synced_s", (synced.1 - killed).as_secs_f64());
        result.metric("failover_pending_apps", synced.0? as u64);
        target(&mut result, "failover_uncompared_apps_max", 0);
        target(&mut result, "failover_pending_apps_max", 0);
    }
    match takeover.await? {
        Some(at) => result.metric("takeover_s", (at - killed).as_secs_f64()),
        None => result.metric("takeover_s", config.timeout.as_secs_f64()),
    }
    let writes = read_apply_logs(&inst)?;
    result.metric("apply_log_writes", writes.len() as u64);
    result.metric("double_work_incidents", double_work(&writes) as u64);
    let lease = config.lease.as_secs_f64();
    result.metric("lease_s", lease);
    target(&mut result, "failover_s_max", lease + 5.0);
    target(&mut result, "takeover_s_max", lease + 5.0);
    target(&mut result, "double_work_incidents_max", 0);
    target(&mut result, "failover_unreconciled_units_max", 0);
    Ok(result)
}

/// Indices of the apps on clusters of `units`; whole clusters of split units count, a
/// superset of the moved apps.
fn moved_apps(
    inst: &Installation,
    config: &Config,
    units: &BTreeSet<String>,
) -> anyhow::Result<Vec<usize>> {
    let mut moved_clusters = BTreeSet::new();
    for c in 0..config.clusters.max(1) {
        let server = inst.env.cluster_server(c)?;
        if units.iter().any(|u| unit_covers(u, &server)) {
            moved_clusters.insert(c);
        }
    }
    Ok((0..config.apps)
        .filter(|i| moved_clusters.contains(&inst.env.cluster_of(*i)))
        .collect())
}

/// Now, Unix milliseconds (the controllers report their takeover times so).
fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// How far the survivors got in reconciling the moved units.
#[derive(Debug, Default)]
struct Reconciled {
    /// When the last moved unit was reconciled, Unix ms (none: not all were).
    last_unix_ms: Option<u64>,
    /// Moved units not reconciled (or not claimed) since the kill.
    left: usize,
    /// Apps of the moved units the survivors compared.
    apps: usize,
}

/// Polls the survivors' `GET /api/v1/units` every 100 ms until each unit of `moved` was
/// claimed by one of them after `killed_ms` and every app of it compared there.
async fn wait_reconciled(
    survivors: &[SocketAddr],
    moved: &BTreeSet<String>,
    killed_ms: u64,
    timeout: Duration,
) -> anyhow::Result<Reconciled> {
    let started = Instant::now();
    loop {
        let mut seen = Reconciled::default();
        let mut done = BTreeSet::new();
        for addr in survivors {
            // A survivor busy past the request timeout counts as not done yet.
            let Ok(units) = units(*addr).await else {
                continue;
            };
            for u in units {
                let (Some(at), true) = (u.reconciled_unix_ms, u.gained_unix_ms >= killed_ms) else {
                    continue;
                };
                let name = unit_name(&u.unit);
                if moved.contains(&name) && done.insert(name) {
                    seen.apps += u.apps;
                    seen.last_unix_ms = Some(seen.last_unix_ms.unwrap_or(0).max(at));
                }
            }
        }
        seen.left = moved.len() - done.len().min(moved.len());
        if seen.left == 0 || started.elapsed() >= timeout {
            if seen.left > 0 {
                seen.last_unix_ms = None;
            }
            return Ok(seen);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A unit's object-name form (`u-<hash>[-iofk]`), from either of its forms.
fn unit_name(unit: &str) -> String {
    if unit.starts_with("u-") && !unit.contains('/') {
        return unit.to_owned();
    }
    unit.parse::<UnitId>()
        .map_or_else(|_| unit.to_owned(), |u| u.name())
}

/// Awaits `wait` and notes when it ended.
async fn finished<T>(wait: impl Future<Output = T>) -> (T, Instant) {
    let out = wait.await;
    (out, Instant::now())
}

/// Whether `app`'s status was last compared at `revision` (whatever its sync status).
fn compared_at(app: &keelson_model::Application, revision: &str) -> bool {
    app.status
        .as_ref()
        .and_then(|s| s.sync.as_ref())
        .and_then(|s| s.revision.as_deref())
        == Some(revision)
}

/// Whether claim `unit` (a unit id `server[#i/k]` or its object-name form
/// `u-<hash>[-iofk]`) is, or is a bucket of, the cluster at `server`.
fn unit_covers(unit: &str, server: &str) -> bool {
    let name = UnitId::cluster(server).name();
    unit == server
        || unit
            .strip_prefix(server)
            .is_some_and(|rest| rest.starts_with('#'))
        || unit == name
        || unit
            .strip_prefix(name.as_str())
            .is_some_and(|rest| rest.starts_with('-'))
}

/// Unit → holder of every claim Lease.
async fn claims(inst: &Installation) -> anyhow::Result<BTreeMap<String, String>> {
    let api: Api<Lease> = Api::namespaced(inst.env.mgmt.clone(), NAMESPACE);
    let list = api
        .list(&ListParams::default().labels("keelson.io/role=claim"))
        .await?;
    Ok(list
        .items
        .into_iter()
        .filter_map(|l| {
            let unit = l.metadata.annotations?.get("keelson.io/unit")?.clone();
            Some((unit, l.spec?.holder_identity?))
        })
        .collect())
}

/// When no claim is held by `victim` any more (each of its units taken by a survivor),
/// polled every 250 ms; `None` after `timeout`.
async fn wait_taken_over(
    client: kube::Client,
    victim: String,
    timeout: Duration,
) -> Option<Instant> {
    let api: Api<Lease> = Api::namespaced(client, NAMESPACE);
    let started = Instant::now();
    let params = ListParams::default().labels("keelson.io/role=claim");
    while started.elapsed() < timeout {
        if let Ok(list) = api.list(&params).await {
            let held_by_victim = list.items.iter().any(|l| {
                l.spec
                    .as_ref()
                    .and_then(|s| s.holder_identity.as_deref())
                    .is_none_or(|h| h == victim)
            });
            if !held_by_victim {
                return Some(Instant::now());
            }
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    None
}

/// Watches until every app of `moved` satisfies `reached`; returns how many do not.
async fn wait_moved(
    inst: &Installation,
    moved: &[usize],
    timeout: Duration,
    reached: impl Fn(&keelson_model::Application) -> bool,
) -> anyhow::Result<usize> {
    let wanted: BTreeSet<String> = moved.iter().map(|i| format!("app-{i:05}")).collect();
    let arrived = |a: &keelson_model::Application| {
        a.metadata.name.as_ref().is_some_and(|n| wanted.contains(n)) && reached(a)
    };
    let progress = inst.env.wait_apps(arrived, wanted.len(), timeout).await?;
    Ok(wanted.len().saturating_sub(progress.done))
}

/// One write of an apply log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Write {
    /// Replica that wrote.
    pub replica: String,
    /// Shard unit.
    pub unit: String,
    /// Start, ns since the epoch.
    pub start_ns: u128,
    /// End, ns since the epoch.
    pub end_ns: u128,
}

fn read_apply_logs(inst: &Installation) -> anyhow::Result<Vec<Write>> {
    let mut out = Vec::new();
    for path in &inst.apply_logs {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
        };
        out.extend(text.lines().filter_map(parse_write));
    }
    Ok(out)
}

/// One apply-log line (`start_ns`/`end_ns` are decimal strings or numbers).
pub fn parse_write(line: &str) -> Option<Write> {
    let v: Value = serde_json::from_str(line).ok()?;
    let ns = |k: &str| match v.get(k)? {
        Value::String(s) => s.parse::<u128>().ok(),
        Value::Number(n) => n.as_u64().map(u128::from),
        _ => None,
    };
    Some(Write {
        replica: v.get("replica")?.as_str()?.to_owned(),
        unit: v.get("unit")?.as_str()?.to_owned(),
        start_ns: ns("start_ns")?,
        end_ns: ns("end_ns")?,
    })
}

/// Writes that overlap in time an earlier-started write of another replica to the
/// same unit.
pub fn double_work(writes: &[Write]) -> usize {
    let mut by_unit: BTreeMap<&str, Vec<&Write>> = BTreeMap::new();
    for w in writes {
        by_unit.entry(&w.unit).or_default().push(w);
    }
    let mut incidents = 0;
    for list in by_unit.values_mut() {
        list.sort_by_key(|w| w.start_ns);
        let mut last_end: BTreeMap<&str, u128> = BTreeMap::new();
        for w in list.iter() {
            if last_end
                .iter()
                .any(|(r, end)| *r != w.replica && *end > w.start_ns)
            {
                incidents += 1;
            }
            let e = last_end.entry(&w.replica).or_insert(0);
            *e = (*e).max(w.end_ns);
        }
    }
    incidents
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(replica: &str, unit: &str, start: u128, end: u128) -> Write {
        Write {
            replica: replica.into(),
            unit: unit.into(),
            start_ns: start,
            end_ns: end,
        }
    }

    #[test]
    fn counts_only_overlaps_of_different_replicas_on_one_unit() {
        let writes = [
            w("a", "u1", 0, 10),
            w("a", "u1", 5, 12),
            w("b", "u1", 20, 30),
            w("b", "u2", 0, 10),
            w("c", "u2", 9, 11),
        ];
        assert_eq!(double_work(&writes), 1);
        let server = "https://127.0.0.1:1/clusters/c2";
        let name = UnitId::cluster(server).name();
        assert!(unit_covers(&name, server));
        assert!(unit_covers(&format!("{name}-0of2"), server));
        assert!(unit_covers(&format!("{server}#1/2"), server));
        assert!(!unit_covers(&format!("{server}0"), server));
        let line = r#"{"replica":"a","unit":"u","app":"argocd/x","verb":"Apply","resource":"r","start_ns":"5","end_ns":"7"}"#;
        assert_eq!(parse_write(line), Some(w("a", "u", 5, 7)));
    }
}
