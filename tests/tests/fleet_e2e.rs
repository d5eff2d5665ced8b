//! The sharded controller fleet end to end, once per coordination backend (Kubernetes
//! Leases, etcd): three `keelson controller` replicas, thirty simulated clusters and six
//! hundred automated apps. Every unit is claimed by exactly one live replica and every app
//! converges; a kill -9 fails over within lease + 5 s; a restart takes back about a third
//! of the units and a fourth replica about a quarter; a replica frozen with SIGSTOP past
//! its lease does not write to units it lost; a cluster holding half of all apps, split
//! into buckets, spreads evenly. The safety checker reads every replica's apply log and
//! claim events and counts double work, which must be zero.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod fleet_support;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use fleet_support::*;
use serde_json::Value;

const CLUSTERS: usize = 30;
const APPS: usize = 600;
const LEASE: Duration = Duration::from_secs(5);
const RESYNC: Duration = Duration::from_secs(8);
/// Bound of every "all apps converge" wait.
const CONVERGE: Duration = Duration::from_secs(150);
/// Buckets of the cluster holding half of all apps.
const SPLIT_BUCKETS: u32 = 16;

/// One fleet at a time: two fleets of controllers on this 2-core machine would measure
/// each other's CPU starvation rather than failover.
static ONE_FLEET_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fleet_with_kubernetes_leases() {
    let _one = ONE_FLEET_AT_A_TIME.lock().await;
    fleet_scenario(Backend::Kubernetes).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fleet_with_etcd() {
    let _one = ONE_FLEET_AT_A_TIME.lock().await;
    fleet_scenario(Backend::Etcd).await;
}

fn ids(v: &[&str]) -> BTreeSet<String> {
    v.iter().map(|s| (*s).to_owned()).collect()
}

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

/// Waits (bounded) until every app satisfies `pred`; returns the time it took.
async fn wait_apps(
    fleet: &Fleet,
    what: &str,
    timeout: Duration,
    pred: impl Fn(&Value) -> bool,
) -> Duration {
    let start = Instant::now();
    let mut last_print = Instant::now();
    let mut summary = String::new();
    while start.elapsed() < timeout {
        match fleet.list_apps().await {
            Ok(apps) => {
                let done = apps.iter().filter(|a| pred(a)).count();
                if done == APPS && apps.len() == APPS {
                    return start.elapsed();
                }
                let mut counts: BTreeMap<String, usize> = BTreeMap::new();
                for a in apps.iter().filter(|a| !pred(a)) {
                    *counts
                        .entry(format!("{}/{}/{}", sync_status(a), health(a), holder(a)))
                        .or_default() += 1;
                }
                let example = apps
                    .iter()
                    .find(|a| !pred(a))
                    .map(|a| {
                        format!(
                            "{} on {} rev {} conditions {} op {}",
                            name(a),
                            dest_server(a),
                            sync_revision(a),
                            a["status"]["conditions"],
                            a["status"]["operationState"]["message"]
                        )
                    })
                    .unwrap_or_default();
                summary = format!("{done}/{APPS} done; not done: {counts:?}; e.g. {example}");
            }
            Err(e) => summary = format!("listing apps failed: {e:#}"),
        }
        if last_print.elapsed() > Duration::from_secs(15) {
            eprintln!("  {what}: {:.0}s: {summary}", secs(start.elapsed()));
            last_print = Instant::now();
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let detail = stuck_detail(fleet, &pred).await;
    panic!("{what}: not every app converged after {timeout:?}: {summary}\n{detail}")
}

/// For a few apps that do not satisfy `pred`: the current holder of their unit and whether
/// their ConfigMap exists on the destination.
async fn stuck_detail(fleet: &Fleet, pred: &impl Fn(&Value) -> bool) -> String {
    use k8s_openapi::api::core::v1::ConfigMap;
    let (Ok(apps), Ok(claims)) = (fleet.list_apps().await, fleet.claims().await) else {
        return String::new();
    };
    let mut out = String::new();
    for a in apps.iter().filter(|a| !pred(a)).take(6) {
        let n = name(a);
        let unit = fleet.unit_of(n);
        let holder = unit.as_ref().and_then(|u| claims.get(&u.name()));
        let idx = fleet.servers.iter().position(|s| s == dest_server(a));
        let live = match idx.map(|i| fleet.sim.client(i)) {
            Some(Ok(c)) => {
                let api: kube::Api<ConfigMap> = kube::Api::namespaced(c, APP_NS);
                match api.get_opt(&format!("cm-{n}")).await {
                    Ok(Some(cm)) => format!("present {:?}", cm.data),
                    Ok(None) => "absent".to_owned(),
                    Err(e) => format!("error {e}"),
                }
            }
            _ => "unknown cluster".to_owned(),
        };
        out.push_str(&format!(
            "  {n}: unit {} held by {holder:?}; ConfigMap on {}: {live}; status {} {} resources {}\n",
            unit.map(|u| u.to_string()).unwrap_or_default(),
            dest_server(a),
            sync_status(a),
            health(a),
            a["status"]["resources"]
        ));
    }
    out
}

/// Synced + Healthy at the app's revision in `revs`, last synced by one of `holders`.
fn at_revision(
    revs: &BTreeMap<String, String>,
    holders: &BTreeSet<String>,
) -> impl Fn(&Value) -> bool + Send + Sync + use<> {
    let revs = revs.clone();
    let holders = holders.clone();
    move |a: &Value| {
        sync_status(a) == "Synced"
            && health(a) == "Healthy"
            && revs.get(name(a)).is_some_and(|r| r == sync_revision(a))
            && holders.contains(holder(a))
    }
}

/// Max/mean apps per replica computed from the claims, and from a replica's metrics.
async fn balance(fleet: &mut Fleet, label: &str, claims: &BTreeMap<String, String>) -> f64 {
    let live = fleet.live_ids();
    let per = fleet.apps_per_holder(claims);
    let ratio = max_over_mean(&per, &live);
    let metric_text = match live.iter().next().cloned() {
        Some(id) => fleet.metrics(&id).await.unwrap_or_default(),
        None => String::new(),
    };
    let metric = shard_apps_metric(&metric_text);
    let metric_ratio = max_over_mean(&metric, &live);
    eprintln!(
        "RESULT [{}] balance {label}: max/mean apps per replica {ratio:.3} (from claims: {per:?}); keelson_shard_apps says {metric_ratio:.3} ({metric:?}); {} units",
        fleet.options.backend.flag(),
        claims.len()
    );
    ratio
}

fn moved(before: &BTreeMap<String, String>, after: &BTreeMap<String, String>) -> usize {
    before
        .iter()
        .filter(|(u, h)| after.get(*u) != Some(*h))
        .count()
}

async fn fleet_scenario(backend: Backend) {
    let t_all = Instant::now();
    let b = backend.flag();
    // Bounds that are measured (not waits) are checked at the end, so one run reports
    // every number.
    let mut failed: Vec<String> = Vec::new();
    let mut check = |ok: bool, what: String| {
        if !ok {
            eprintln!("CHECK FAILED [{b}]: {what}");
            failed.push(what);
        }
    };
    let mut fleet = Fleet::start(FleetOptions {
        backend,
        clusters: CLUSTERS,
        lease: LEASE,
        resync: RESYNC,
        max_apps_per_unit: Some(100),
        repo_servers: 2,
    })
    .await
    .unwrap();
    let (fx, sha0) = Fixture::new(APPS, CLUSTERS, "v0").unwrap();
    let apps: Vec<Value> = (0..APPS)
        .map(|i| {
            let n = Fixture::app_name(i);
            app_manifest(
                &n,
                &fx.url_of(i),
                &format!("apps/{n}"),
                &fleet.servers[i % CLUSTERS],
            )
        })
        .collect();
    fleet.create_apps(apps).await.unwrap();

    // 1. Three replicas: every unit claimed by one live replica, every app converges.
    fleet.add_replicas(&["r1", "r2", "r3"]).await.unwrap();
    let t = Instant::now();
    let claims = fleet.settled_claims(&["r1", "r2", "r3"]).await.unwrap();
    eprintln!(
        "[{b}] 1: {} units claimed by {:?} after {:.1}s",
        claims.len(),
        claims.values().collect::<BTreeSet<_>>(),
        secs(t.elapsed())
    );
    let took = wait_apps(
        &fleet,
        "initial sync",
        CONVERGE,
        at_revision(&sha0, &fleet.running_ids()),
    )
    .await;
    eprintln!(
        "[{b}] 1: {APPS} apps Synced+Healthy with a holder among the replicas after {:.1}s",
        secs(took)
    );
    let claims = fleet
        .wait_claims_stable(
            Duration::from_secs(2),
            Duration::from_secs(30),
            &["r1", "r2", "r3"],
        )
        .await
        .unwrap();
    balance(&mut fleet, "uniform, 3 replicas", &claims).await;

    // 2. kill -9 r2 and commit a change of every app right after.
    let victim = "r2";
    let lost: BTreeSet<String> = claims
        .iter()
        .filter(|(_, h)| *h == victim)
        .map(|(u, _)| u.clone())
        .collect();
    let victim_apps = fleet.apps_held_by(&claims, victim);
    assert!(!lost.is_empty(), "{victim} held no unit");
    fleet.kill9(victim).unwrap();
    let t_kill = Instant::now();
    let kill_wall = k8s_openapi::jiff::Timestamp::now();
    // Only the dead replica's apps change, so the time measured is the failover's, not
    // the survivors' own backlog.
    let changed: Vec<usize> = (0..APPS)
        .filter(|i| victim_apps.contains(&Fixture::app_name(*i)))
        .collect();
    let sha1 = fx.commit_some(&changed, "v1").unwrap();
    let survivors = fleet.running_ids();
    let reconciled: AppPredicate = {
        let sha1 = sha1.clone();
        Box::new(move |a: &Value| sha1.get(name(a)).is_some_and(|r| r == sync_revision(a)))
    };
    let arrivals = Arrivals::watch(
        fleet.apps(),
        t_kill,
        victim_apps.iter().cloned().collect(),
        vec![reconciled, Box::new(at_revision(&sha1, &survivors))],
    );
    let (mut t_units, mut t_reconciled, mut t_synced) = (None, None, None);
    while t_kill.elapsed() < LEASE + Duration::from_secs(40) && t_synced.is_none() {
        let now = fleet.claims().await.unwrap();
        if t_units.is_none()
            && lost
                .iter()
                .all(|u| now.get(u).is_some_and(|h| survivors.contains(h)))
        {
            t_units = Some(t_kill.elapsed());
        }
        t_reconciled = arrivals.all_reached(0);
        t_synced = arrivals.all_reached(1);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    drop(arrivals);
    // The same from the replicas' own records: claim events and apply logs.
    let kill_ns = kill_wall.as_nanosecond();
    let dict = fleet.unit_dictionary();
    let events = fleet.claim_events();
    let took_at = lost
        .iter()
        .map(|u| {
            let display = dict.get(u).cloned().unwrap_or_default();
            events
                .iter()
                .filter(|e| e.unit == display && e.replica != victim && e.at > kill_ns)
                .map(|e| e.at)
                .min()
        })
        .collect::<Option<Vec<i128>>>()
        .and_then(|v| v.into_iter().max());
    let writes = fleet.writes().unwrap();
    let written_at = victim_apps
        .iter()
        .map(|a| {
            let key = format!("{NS}/{a}");
            writes
                .iter()
                .filter(|w| w.app == key && w.start > kill_ns)
                .map(|w| w.end)
                .min()
        })
        .collect::<Option<Vec<i128>>>()
        .and_then(|v| v.into_iter().max());
    let rel = |t: Option<i128>| {
        t.map_or("never".to_owned(), |t| {
            format!("{:.1}s", (t - kill_ns) as f64 / 1e9)
        })
    };
    eprintln!(
        "RESULT [{b}] failover (from logs): last unit claimed by a survivor {} after the kill; last moved app written at its new revision {} after the kill",
        rel(took_at),
        rel(written_at)
    );
    let f = |d: Option<Duration>| d.map_or("never".to_owned(), |d| format!("{:.1}s", secs(d)));
    eprintln!(
        "RESULT [{b}] failover: kill -9 {victim} at {kill_wall} holding {} units / {} apps: units held by survivors after {}, apps reconciled at the new commit after {}, Synced+Healthy by survivors after {} (lease {}s)",
        lost.len(),
        victim_apps.len(),
        f(t_units),
        f(t_reconciled),
        f(t_synced),
        LEASE.as_secs()
    );
    let bound = LEASE + Duration::from_secs(5);
    check(
        t_reconciled.is_some_and(|d| d <= bound),
        format!(
            "the dead replica's apps were not reconciled within lease + 5 s: {}",
            f(t_reconciled)
        ),
    );
    wait_apps(
        &fleet,
        "after failover",
        CONVERGE,
        at_revision(&sha1, &survivors),
    )
    .await;

    // 3a. Restart r2: it takes back about a third of the units.
    let before = fleet
        .wait_claims_stable(
            Duration::from_secs(3),
            Duration::from_secs(30),
            &["r1", "r3"],
        )
        .await
        .unwrap();
    let extra = claims
        .iter()
        .filter(|(u, h)| *h != victim && before.get(*u) != Some(*h))
        .count();
    eprintln!(
        "RESULT [{b}] leave: {} units of the dead replica moved, plus {extra} units moved between survivors",
        lost.len()
    );
    fleet.restart(victim).await.unwrap();
    let t = Instant::now();
    let after = fleet.settled_claims(&["r1", "r2", "r3"]).await.unwrap();
    let back = after.values().filter(|h| *h == victim).count();
    let share = back as f64 / after.len() as f64;
    let moved_restart = moved(&before, &after);
    eprintln!(
        "RESULT [{b}] restart: {victim} took back {back}/{} units ({:.0}%); {moved_restart} units moved; stable after {:.1}s",
        after.len(),
        share * 100.0,
        secs(t.elapsed())
    );
    check(
        (0.15..=0.50).contains(&share),
        format!("restarted replica holds {share:.2} of the units"),
    );
    check(
        moved_restart as f64 <= 0.5 * after.len() as f64,
        format!("{moved_restart} units moved on restart"),
    );

    // 3b. A fourth replica joins while a change is synced over slow clusters.
    let slow: Vec<usize> = (0..6).collect();
    for i in &slow {
        fleet
            .sim_faults(*i, serde_json::json!({"latency_ms": 400}))
            .await
            .unwrap();
    }
    // The change touches the apps of the first ten clusters (the slow ones among them).
    let batch: Vec<usize> = (0..APPS).filter(|i| i % CLUSTERS < 10).collect();
    let sha2 = fx.commit_some(&batch, "v2").unwrap();
    tokio::time::sleep(Duration::from_secs(4)).await;
    fleet.add_replicas(&["r4"]).await.unwrap();
    let t = Instant::now();
    let joined = fleet
        .settled_claims(&["r1", "r2", "r3", "r4"])
        .await
        .unwrap();
    let moved_join = moved(&after, &joined);
    let r4 = joined.values().filter(|h| *h == "r4").count();
    let frac = moved_join as f64 / after.len() as f64;
    eprintln!(
        "RESULT [{b}] join: r4 took {r4}/{} units; {moved_join} units moved ({:.0}%); stable after {:.1}s",
        joined.len(),
        frac * 100.0,
        secs(t.elapsed())
    );
    check(
        frac <= 0.40,
        format!("{:.0}% of the units moved on join", frac * 100.0),
    );
    let four = ids(&["r1", "r2", "r3", "r4"]);
    wait_apps(
        &fleet,
        "change over slow clusters",
        CONVERGE,
        at_revision(&sha2, &four),
    )
    .await;
    for i in &slow {
        fleet.sim_faults(*i, serde_json::json!({})).await.unwrap();
    }
    balance(&mut fleet, "uniform, 4 replicas", &joined).await;

    // 4. SIGSTOP r3 while it works on a change, past its lease; then SIGCONT.
    let frozen = "r3";
    let log = fleet.replica(frozen).unwrap().apply_log.clone();
    let size = std::fs::metadata(&log).map(|m| m.len()).unwrap_or(0);
    // The change touches the frozen replica's apps: work it has pending when frozen.
    let held = fleet.apps_held_by(&joined, frozen);
    let batch: Vec<usize> = (0..APPS)
        .filter(|i| held.contains(&Fixture::app_name(*i)))
        .collect();
    let sha3 = fx.commit_some(&batch, "v3").unwrap();
    let t = Instant::now();
    while std::fs::metadata(&log).map(|m| m.len()).unwrap_or(0) == size {
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "{frozen} never started on the change"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    fleet.pause(frozen).unwrap();
    let t_pause = Instant::now();
    let pause_wall = k8s_openapi::jiff::Timestamp::now();
    let frozen_units: BTreeSet<String> = joined
        .iter()
        .filter(|(_, h)| *h == frozen)
        .map(|(u, _)| u.clone())
        .collect();
    let mut t_taken = None;
    while t_pause.elapsed() < LEASE + Duration::from_secs(4) {
        let now = fleet.claims().await.unwrap();
        if t_taken.is_none()
            && frozen_units
                .iter()
                .all(|u| now.get(u).is_some_and(|h| h != frozen))
        {
            t_taken = Some(t_pause.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    fleet.resume(frozen).unwrap();
    let resumed_ns = now_ns();
    eprintln!(
        "[{b}] 4: {frozen} SIGSTOP at {pause_wall}, SIGCONT at {}",
        k8s_openapi::jiff::Timestamp::now()
    );
    eprintln!(
        "RESULT [{b}] pause: {frozen} frozen for {:.1}s after it started on the change; its {} units were taken by others after {}",
        secs(t_pause.elapsed()),
        frozen_units.len(),
        f(t_taken)
    );
    check(
        t_taken.is_some(),
        "the frozen replica's units were not taken over".to_owned(),
    );
    fleet
        .settled_claims(&["r1", "r2", "r3", "r4"])
        .await
        .unwrap();
    wait_apps(
        &fleet,
        "after the pause",
        CONVERGE,
        at_revision(&sha3, &four),
    )
    .await;
    let writes = fleet.writes().unwrap();
    let after_resume: Vec<&Write> = writes
        .iter()
        .filter(|w| w.replica == frozen && w.start >= resumed_ns)
        .collect();
    eprintln!(
        "[{b}] 4: {frozen} wrote {} times after SIGCONT (checked against its claims below)",
        after_resume.len()
    );

    // 5. Balance: Zipf-skewed, then half of all apps on one split cluster.
    let zipf = zipf_counts(APPS, CLUSTERS);
    let moves = rebalance(&fleet, &zipf);
    eprintln!("[{b}] 5: {} apps move for the Zipf layout", moves.len());
    fleet.retarget(moves).await.unwrap();
    let claims = fleet
        .settled_claims(&["r1", "r2", "r3", "r4"])
        .await
        .unwrap();
    eprintln!("[{b}] 5: Zipf apps per cluster {zipf:?}");
    balance(&mut fleet, "Zipf (s=1), 4 replicas", &claims).await;
    let mut half = vec![APPS / 2];
    half.extend(
        (1..CLUSTERS)
            .map(|i| (APPS / 2) / (CLUSTERS - 1) + usize::from(i <= (APPS / 2) % (CLUSTERS - 1))),
    );
    fleet.set_buckets(0, SPLIT_BUCKETS).await.unwrap();
    let moves = rebalance(&fleet, &half);
    eprintln!(
        "[{b}] 5: {} apps move for the half-in-one-cluster layout",
        moves.len()
    );
    fleet.retarget(moves).await.unwrap();
    let claims = fleet
        .settled_claims(&["r1", "r2", "r3", "r4"])
        .await
        .unwrap();
    let ratio = balance(
        &mut fleet,
        "50% of apps on one cluster split in 16, 4 replicas",
        &claims,
    )
    .await;
    check(
        ratio <= 1.15,
        format!("max/mean apps per replica {ratio:.3} with a split half-cluster"),
    );
    wait_apps(
        &fleet,
        "after re-targeting",
        CONVERGE,
        at_revision(&sha3, &four),
    )
    .await;

    // Safety over everything above.
    let writes = fleet.writes().unwrap();
    let events = fleet.claim_events();
    let report = Safety::check(&writes, &events);
    eprintln!(
        "RESULT [{b}] safety: {} writes on {} units, {} claim events: double-work incidents {} (overlap {}, stale writer {}, not the claimer {}); total run {:.0}s",
        report.writes,
        report.units,
        events.len(),
        report.incidents(),
        report.overlaps.len(),
        report.stale_writers.len(),
        report.not_claimer.len(),
        secs(t_all.elapsed())
    );
    check(
        report.writes > APPS,
        format!("too few writes recorded: {}", report.writes),
    );
    check(
        report.incidents() == 0,
        format!("double work:\n{}", report.examples(5)),
    );
    assert!(
        failed.is_empty(),
        "{} check(s) failed:\n{}",
        failed.len(),
        failed.join("\n")
    );
}

fn now_ns() -> i128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as i128)
        .unwrap_or(0)
}

/// Apps per cluster for a Zipf (s = 1) distribution, largest remainder, summing to `apps`.
fn zipf_counts(apps: usize, clusters: usize) -> Vec<usize> {
    let w: Vec<f64> = (1..=clusters).map(|r| 1.0 / r as f64).collect();
    let total: f64 = w.iter().sum();
    let exact: Vec<f64> = w.iter().map(|x| x / total * apps as f64).collect();
    let mut counts: Vec<usize> = exact.iter().map(|x| x.floor() as usize).collect();
    let mut rest: Vec<(usize, f64)> = exact
        .iter()
        .enumerate()
        .map(|(i, x)| (i, x - x.floor()))
        .collect();
    rest.sort_by(|a, b| b.1.total_cmp(&a.1));
    let missing = apps - counts.iter().sum::<usize>();
    for (i, _) in rest.into_iter().take(missing) {
        counts[i] += 1;
    }
    counts
}

/// The fewest moves that leave `counts[i]` apps on cluster `i`: every cluster keeps
/// its first apps up to its target, the surplus fills the clusters below theirs.
/// Returns (app, server) for the apps that move.
fn rebalance(fleet: &Fleet, counts: &[usize]) -> Vec<(String, String)> {
    let mut on: Vec<Vec<String>> = vec![Vec::new(); fleet.servers.len()];
    for (app, server) in &fleet.destinations {
        if let Some(i) = fleet.servers.iter().position(|s| s == server) {
            on[i].push(app.clone());
        }
    }
    let mut pool = Vec::new();
    for (i, apps) in on.iter_mut().enumerate() {
        if apps.len() > counts[i] {
            pool.extend(apps.split_off(counts[i]));
        }
    }
    let mut moves = Vec::new();
    for (i, apps) in on.iter().enumerate() {
        for _ in apps.len()..counts[i] {
            if let Some(app) = pool.pop() {
                moves.push((app, fleet.servers[i].clone()));
            }
        }
    }
    moves
}
