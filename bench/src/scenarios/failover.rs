//! `failover`: a fleet of N ≥ 2 controllers over Kubernetes Leases, each writing an
//! apply log. After the scale phase, the replica holding the most units is killed with
//! SIGKILL and at once a commit changes every app of the units it held, so that a
//! survivor's reconcile of each of them shows in its status. `failover_s` (the issue's
//! "every moved unit reconciled again") runs from the kill until a survivor has compared
//! every one of those apps at that commit; `failover_synced_s` until every one is also
//! Synced and Healthy there (the survivors synced them); `takeover_s` until no claim
//! names the killed replica. Double work comes from the apply logs: writes of two
//! replicas to one unit in overlapping time intervals (must be 0).

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use anyhow::Context;
use k8s_openapi::api::coordination::v1::Lease;
use keelson_sharding::unit::UnitId;
use kube::api::{Api, ListParams};
use serde_json::Value;

use super::install::{Installation, Options, install};
use super::{Config, Scenario, target};
use crate::fleet_env::{NAMESPACE, is_done_at};
use crate::results::BenchResult;

/// Runs the scenario.
pub async fn run(config: &Config) -> anyhow::Result<BenchResult> {
    let options = Options {
        force_fleet: true,
        controllers: config.controllers.max(2),
        apply_logs: true,
        fresh_revisions: true,
        ..Options::of(config)
    };
    let mut inst = install(config, &options).await?;
    let mut result = config.result(Scenario::Failover);
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
    let victim_units: Vec<&str> = claims
        .iter()
        .filter(|(_, holder)| **holder == victim)
        .map(|(unit, _)| unit.as_str())
        .collect();
    let mut moved_clusters = BTreeSet::new();
    for c in 0..config.clusters.max(1) {
        let server = inst.env.cluster_server(c)?;
        if victim_units.iter().any(|u| unit_covers(u, &server)) {
            moved_clusters.insert(c);
        }
    }
    // Whole clusters of split units count as moved: a superset of the moved apps.
    let moved: Vec<usize> = (0..config.apps)
        .filter(|i| moved_clusters.contains(&inst.env.cluster_of(*i)))
        .collect();
    result.metric("units", claims.len() as u64);
    result.metric(
        "moved_units",
        claims.values().filter(|h| **h == victim).count() as u64,
    );
    result.metric("moved_apps", moved.len() as u64);
    inst.env
        .controllers
        .get_mut(victim_index)
        .context("no controller")?
        .kill9()?;
    let killed = Instant::now();
    let takeover = tokio::spawn(wait_taken_over(
        inst.env.mgmt.clone(),
        victim.clone(),
        config.timeout,
    ));
    let sha = inst.env.commit_change(moved.iter().copied(), "failover")?;
    let (compared, synced) = tokio::join!(
        finished(wait_moved(&inst, &moved, config.timeout, |a| {
            compared_at(a, &sha)
        })),
        finished(wait_moved(&inst, &moved, config.timeout, |a| {
            is_done_at(a, &sha)
        })),
    );
    let (not_compared, compared_at_instant) = (compared.0?, compared.1);
    let (pending, synced_at_instant) = (synced.0?, synced.1);
    result.metric("failover_s", (compared_at_instant - killed).as_secs_f64());
    result.metric("failover_uncompared_apps", not_compared as u64);
    result.metric(
        "failover_synced_s",
        (synced_at_instant - killed).as_secs_f64(),
    );
    match takeover.await? {
        Some(at) => result.metric("takeover_s", (at - killed).as_secs_f64()),
        None => result.metric("takeover_s", config.timeout.as_secs_f64()),
    }
    result.metric("failover_pending_apps", pending as u64);
    let writes = read_apply_logs(&inst)?;
    result.metric("apply_log_writes", writes.len() as u64);
    result.metric("double_work_incidents", double_work(&writes) as u64);
    let lease = config.lease.as_secs_f64();
    result.metric("lease_s", lease);
    target(&mut result, "failover_s_max", lease + 5.0);
    target(&mut result, "takeover_s_max", lease + 5.0);
    target(&mut result, "double_work_incidents_max", 0);
    target(&mut result, "failover_uncompared_apps_max", 0);
    target(&mut result, "failover_pending_apps_max", 0);
    Ok(result)
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
