//! `keelson shard status`: the fleet as stored — members, the units each holds and the
//! apps in them, unclaimed units, and the most recent moves — as a table or JSON. It
//! only reads: it never renews, claims or releases.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Subcommand};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Secret;
use keelson_model::annotations::{SECRET_TYPE, SECRET_TYPE_CLUSTER};
use keelson_model::{Application, ClusterSpec};
use keelson_sharding::backend::{
    ClaimRecord, Coordination, EtcdCoordination, KubernetesCoordination, MemberRecord, ROLE_LABEL,
    UNIT_ANNOTATION,
};
use keelson_sharding::unit::{ClusterInfo, spread_hash, units_for};
use kube::api::{Api, ListParams};
use serde_json::{Value, json};

use crate::fleet_args::Coordination as Backend;

/// `keelson shard` subcommands.
#[derive(Debug, Subcommand)]
pub enum ShardCommand {
    /// Print members, units per member, apps per member and recent moves.
    Status(StatusArgs),
}

/// Flags of `keelson shard status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Namespace of the controllers (Applications, Secrets, Leases).
    #[arg(long, env = "ARGOCD_NAMESPACE", default_value = "argocd")]
    namespace: String,
    /// Kubeconfig of the management cluster.
    #[arg(long, env = "KUBECONFIG")]
    kubeconfig: Option<PathBuf>,
    /// Coordination backend of the fleet.
    #[arg(
        long,
        env = "KEELSON_COORDINATION",
        value_enum,
        default_value = "kubernetes"
    )]
    coordination: Backend,
    /// etcd endpoints.
    #[arg(long, env = "KEELSON_ETCD_ENDPOINTS", value_delimiter = ',')]
    etcd_endpoints: Vec<String>,
    /// Key prefix in etcd.
    #[arg(long, env = "KEELSON_ETCD_PREFIX", default_value = "/keelson")]
    etcd_prefix: String,
    /// The fleet's --max-apps-per-unit.
    #[arg(long, env = "KEELSON_MAX_APPS_PER_UNIT")]
    max_apps_per_unit: Option<u64>,
    /// Print JSON instead of a table.
    #[arg(long, env = "KEELSON_SHARD_STATUS_JSON")]
    json: bool,
}

/// Runs a `keelson shard` command.
pub async fn run(cmd: ShardCommand) -> anyhow::Result<()> {
    let ShardCommand::Status(args) = cmd;
    let client = crate::controller_command::management_client(args.kubeconfig.as_ref()).await?;
    let lease = Duration::from_secs(10);
    let reader = "keelson-shard-status";
    let (members, claims) = match args.coordination {
        Backend::Kubernetes => {
            let c = KubernetesCoordination::new(client.clone(), &args.namespace, reader, lease);
            (c.members().await?, c.claims().await?)
        }
        Backend::Etcd => {
            let c =
                EtcdCoordination::connect(&args.etcd_endpoints, &args.etcd_prefix, reader, lease)
                    .await?;
            (c.members().await?, c.claims().await?)
        }
        Backend::None => anyhow::bail!("a fleet without coordination has no shared state to show"),
    };
    let weights = unit_weights(&client, &args.namespace, args.max_apps_per_unit).await?;
    let moves = if args.coordination == Backend::Kubernetes {
        recent_moves(&client, &args.namespace).await?
    } else {
        Vec::new()
    };
    let report = build_report(&members, &claims, &weights, moves);
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_table(&report);
    }
    Ok(())
}

/// Unit name → (display, apps), from the Applications and cluster Secrets.
async fn unit_weights(
    client: &kube::Client,
    namespace: &str,
    max_apps_per_unit: Option<u64>,
) -> anyhow::Result<HashMap<String, (String, u64)>> {
    let secrets: Api<Secret> = Api::namespaced(client.clone(), namespace);
    let list = secrets
        .list(&ListParams::default().labels(&format!("{SECRET_TYPE}={SECRET_TYPE_CLUSTER}")))
        .await
        .context("listing cluster secrets")?;
    let specs: Vec<ClusterSpec> = list
        .items
        .iter()
        .filter_map(|s| ClusterSpec::from_secret(s).ok())
        .collect();
    let apps: Api<Application> = Api::namespaced(client.clone(), namespace);
    let apps = apps
        .list(&ListParams::default())
        .await
        .context("listing applications")?;
    let mut counts: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    for app in &apps.items {
        let key = format!(
            "{}/{}",
            app.metadata.namespace.as_deref().unwrap_or_default(),
            app.metadata.name.as_deref().unwrap_or_default()
        );
        let dest = &app.spec.destination;
        let server = match (dest.server(), dest.name()) {
            (Some(s), _) if !s.is_empty() => Some(s.trim_end_matches('/').to_owned()),
            (_, Some(n)) => specs
                .iter()
                .find(|s| s.name == n)
                .map(|s| s.server.trim_end_matches('/').to_owned())
                .or_else(|| {
                    (n == keelson_controller::IN_CLUSTER_NAME)
                        .then(|| keelson_controller::IN_CLUSTER_SERVER.to_owned())
                }),
            _ => None,
        };
        if let Some(server) = server {
            counts.entry(server).or_default().push(spread_hash(&key));
        }
    }
    let mut infos: Vec<ClusterInfo> = specs
        .iter()
        .map(|s| {
            let server = s.server.trim_end_matches('/').to_owned();
            let app_hashes = counts.remove(&server).unwrap_or_default();
            ClusterInfo {
                apps: app_hashes.len() as u64,
                app_hashes,
                buckets: s
                    .annotations
                    .get(keelson_controller::SHARD_BUCKETS_ANNOTATION)
                    .and_then(|v| v.parse().ok())
                    .filter(|k| *k > 1),
                pinned_shard: s.shard,
                id: s.secret.clone(),
                server,
            }
        })
        .collect();
    for (server, app_hashes) in counts {
        infos.push(ClusterInfo {
            server,
            apps: app_hashes.len() as u64,
            app_hashes,
            ..ClusterInfo::default()
        });
    }
    Ok(units_for(&infos, max_apps_per_unit)
        .into_iter()
        .map(|u| (u.unit.name(), (u.unit.to_string(), u.weight)))
        .collect())
}

/// Claim Leases by acquire time, newest first (Kubernetes backend only).
async fn recent_moves(client: &kube::Client, namespace: &str) -> anyhow::Result<Vec<Value>> {
    let leases: Api<Lease> = Api::namespaced(client.clone(), namespace);
    let list = leases
        .list(&ListParams::default().labels(&format!("{ROLE_LABEL}=claim")))
        .await
        .context("listing claim leases")?;
    let mut moves: Vec<(String, Value)> = list
        .items
        .iter()
        .filter_map(|l| {
            let spec = l.spec.as_ref()?;
            let at = spec.acquire_time.as_ref()?.0.to_string();
            let unit = l
                .metadata
                .annotations
                .as_ref()?
                .get(UNIT_ANNOTATION)?
                .clone();
            Some((
                at.clone(),
                json!({"unit": unit, "holder": spec.holder_identity, "acquired": at}),
            ))
        })
        .collect();
    moves.sort_by(|a, b| b.0.cmp(&a.0));
    Ok(moves.into_iter().take(10).map(|(_, v)| v).collect())
}

fn build_report(
    members: &[MemberRecord],
    claims: &[ClaimRecord],
    weights: &HashMap<String, (String, u64)>,
    moves: Vec<Value>,
) -> Value {
    let mut per: BTreeMap<String, (u64, u64)> =
        members.iter().map(|m| (m.id.clone(), (0, 0))).collect();
    let mut units = Vec::new();
    for c in claims {
        let (display, apps) = weights
            .get(&c.unit)
            .cloned()
            .unwrap_or_else(|| (c.unit.clone(), 0));
        let e = per.entry(c.holder.clone()).or_default();
        e.0 += 1;
        e.1 += apps;
        units.push(json!({"unit": display, "name": c.unit, "holder": c.holder, "apps": apps}));
    }
    let claimed: std::collections::HashSet<&str> = claims.iter().map(|c| c.unit.as_str()).collect();
    let unclaimed: Vec<Value> = weights
        .iter()
        .filter(|(name, _)| !claimed.contains(name.as_str()))
        .map(|(name, (display, apps))| json!({"unit": display, "name": name, "apps": apps}))
        .collect();
    json!({
        "members": per.iter().map(|(id, (u, a))| json!({"id": id, "units": u, "apps": a})).collect::<Vec<_>>(),
        "units": units,
        "unclaimed": unclaimed,
        "recentMoves": moves,
    })
}

fn print_table(report: &Value) {
    println!("{:<32} {:>6} {:>8}", "MEMBER", "UNITS", "APPS");
    for m in report["members"].as_array().into_iter().flatten() {
        println!(
            "{:<32} {:>6} {:>8}",
            m["id"].as_str().unwrap_or_default(),
            m["units"].as_u64().unwrap_or(0),
            m["apps"].as_u64().unwrap_or(0)
        );
    }
    let unclaimed = report["unclaimed"].as_array().map_or(0, Vec::len);
    println!(
        "\nunits: {} claimed, {unclaimed} unclaimed",
        report["units"].as_array().map_or(0, Vec::len)
    );
    let moves = report["recentMoves"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    if !moves.is_empty() {
        println!("\nRECENT MOVES");
        for m in moves {
            println!(
                "{}  {} -> {}",
                m["acquired"].as_str().unwrap_or_default(),
                m["unit"].as_str().unwrap_or_default(),
                m["holder"].as_str().unwrap_or_default()
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_counts_units_and_apps_per_member() {
        let members = vec![
            MemberRecord {
                id: "a".into(),
                version: "1".into(),
            },
            MemberRecord {
                id: "b".into(),
                version: "1".into(),
            },
        ];
        let claims = vec![ClaimRecord {
            unit: "u1".into(),
            holder: "a".into(),
            version: "1".into(),
        }];
        let weights = HashMap::from([
            ("u1".to_owned(), ("https://c1".to_owned(), 7)),
            ("u2".to_owned(), ("https://c2".to_owned(), 3)),
        ]);
        let r = build_report(&members, &claims, &weights, Vec::new());
        assert_eq!(r["members"][0], json!({"id": "a", "units": 1, "apps": 7}));
        assert_eq!(r["members"][1], json!({"id": "b", "units": 0, "apps": 0}));
        assert_eq!(r["unclaimed"][0]["unit"], "https://c2");
    }
}
