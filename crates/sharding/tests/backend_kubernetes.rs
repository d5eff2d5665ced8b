//! The Kubernetes Lease coordination backend against a real kube-apiserver
//! (keelson-testbed).

mod backend_contract;

use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use backend_contract as contract;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Namespace;
use keelson_sharding::backend::{Coordination, KubernetesCoordination, Renewal};
use keelson_testbed::KubeApiServer;
use kube::Api;
use kube::api::{DeleteParams, ObjectMeta, PostParams};

const NAMESPACE: &str = "keelson-system";
const LEASE: Duration = Duration::from_secs(10);

async fn start_apiserver() -> Result<KubeApiServer> {
    Ok(tokio::task::spawn_blocking(KubeApiServer::start).await??)
}

/// A client for the server with the test namespace created.
async fn client(server: &KubeApiServer) -> Result<kube::Client> {
    let client = server.client()?;
    let namespace = Namespace {
        metadata: ObjectMeta {
            name: Some(NAMESPACE.to_string()),
            ..ObjectMeta::default()
        },
        ..Namespace::default()
    };
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &namespace)
        .await
        .context("creating the test namespace")?;
    Ok(client)
}

fn replica(client: &kube::Client, id: &str, lease: Duration) -> KubernetesCoordination {
    KubernetesCoordination::new(client.clone(), NAMESPACE, id, lease)
}

fn label<'a>(lease: &'a Lease, key: &str) -> Option<&'a str> {
    lease.metadata.labels.as_ref()?.get(key).map(String::as_str)
}

#[tokio::test]
async fn kubernetes_membership_renew_list_and_resign() -> Result<()> {
    let server = start_apiserver().await?;
    let client = client(&server).await?;
    let a = replica(&client, "keelson-0", LEASE);
    let b = replica(&client, "keelson-1", LEASE);
    let c = replica(&client, "Keelson_2", LEASE);
    contract::renew_creates_then_changes_version(&a).await?;
    contract::members_lists_all(&[&a, &b, &c]).await?;

    let leases: Api<Lease> = Api::namespaced(client.clone(), NAMESPACE);
    let member = leases.get("keelson-member-keelson-0").await?;
    ensure!(label(&member, "app.kubernetes.io/part-of") == Some("keelson"));
    ensure!(label(&member, "keelson.io/role") == Some("member"));
    let spec = member.spec.context("member lease without spec")?;
    ensure!(spec.holder_identity.as_deref() == Some("keelson-0"));
    ensure!(spec.lease_duration_seconds == Some(10));
    ensure!(spec.renew_time.is_some());
    let odd = leases.get(c.member_name()).await?;
    ensure!(
        odd.spec.and_then(|s| s.holder_identity).as_deref() == Some("Keelson_2"),
        "sanitized member {} lost the replica id",
        c.member_name()
    );

    // A member lease deleted behind the replica's back is recreated and reported so.
    leases
        .delete(b.member_name(), &DeleteParams::default())
        .await?;
    ensure!(b.renew().await? == Renewal::Recreated);
    ensure!(contract::member(&a, "keelson-1").await?.is_some());

    contract::resign_removes_member_and_claims(&a, &b).await
}

#[tokio::test]
async fn kubernetes_claims_are_compare_and_swap() -> Result<()> {
    let server = start_apiserver().await?;
    let client = client(&server).await?;
    let a = replica(&client, "keelson-0", LEASE);
    let b = replica(&client, "keelson-1", LEASE);
    a.renew().await?;
    b.renew().await?;
    contract::claim_races_have_one_winner(&a, &b).await?;
    contract::takeover_needs_the_current_version(&a, &b).await?;
    contract::release_needs_the_current_version(&a, &b).await?;

    // Object layout; unit names are opaque, so odd ones still round-trip.
    let unit = "in-cluster/Bucket 3";
    let taken = contract::taken(a.claim(unit, None).await?)?;
    ensure!(contract::claim_of(&b, unit).await? == Some(taken.clone()));
    let leases: Api<Lease> = Api::namespaced(client.clone(), NAMESPACE);
    let race = leases.get("keelson-claim-race-0").await?;
    ensure!(label(&race, "keelson.io/role") == Some("claim"));
    ensure!(label(&race, "app.kubernetes.io/part-of") == Some("keelson"));
    let annotation = race
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get("keelson.io/unit"))
        .map(String::as_str);
    ensure!(annotation == Some("race-0"), "{annotation:?}");
    ensure!(race.metadata.resource_version.is_some());
    ensure!(
        b.members().await?.len() == 2,
        "claims must not be listed as members"
    );
    Ok(())
}

/// With the API server frozen (SIGSTOP) or dead (SIGKILL), every request fails within the
/// request timeout (`lease/3`) instead of hanging.
#[tokio::test]
async fn kubernetes_requests_time_out_when_apiserver_hangs_or_dies() -> Result<()> {
    let mut server = start_apiserver().await?;
    let client = client(&server).await?;
    let lease = Duration::from_secs(3);
    let a = replica(&client, "keelson-0", lease);
    ensure!(a.request_timeout() == Duration::from_secs(1));
    let bound = lease / 3 + Duration::from_millis(500);
    a.renew().await?;

    server.process().pause()?;
    let started = Instant::now();
    let renewed = a.renew().await;
    let took = started.elapsed();
    let listed = a.claims().await;
    server.process().resume()?;
    eprintln!("renew against a frozen apiserver: {took:?} {renewed:?}");
    ensure!(
        renewed.as_ref().is_err_and(|e| e.is_timeout()),
        "{renewed:?}"
    );
    ensure!(took <= bound, "renew took {took:?}");
    ensure!(
        listed.is_err_and(|e| e.is_timeout()),
        "list did not time out"
    );

    let mut recovered = false;
    for _ in 0..20 {
        if a.renew().await.is_ok() {
            recovered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    ensure!(recovered, "renew did not recover after resume");

    server.process().kill()?;
    let started = Instant::now();
    let renewed = a.renew().await;
    let took = started.elapsed();
    eprintln!("renew against a dead apiserver: {took:?} {renewed:?}");
    ensure!(renewed.is_err(), "renew succeeded against a dead apiserver");
    ensure!(took <= bound, "renew took {took:?}");
    let claimed = a.claim("unit", None).await;
    ensure!(claimed.is_err(), "claim succeeded against a dead apiserver");
    Ok(())
}
