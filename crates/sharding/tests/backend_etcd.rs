//! The etcd coordination backend against a real etcd (keelson-testbed).

mod backend_contract;

use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use backend_contract as contract;
use keelson_sharding::backend::{
    ClaimOutcome, Coordination, CoordinationError, EtcdCoordination, Renewal,
};
use keelson_testbed::Etcd;

const PREFIX: &str = "/keelson-test";
const LEASE: Duration = Duration::from_secs(10);

async fn start_etcd() -> Result<Etcd> {
    Ok(tokio::task::spawn_blocking(Etcd::start).await??)
}

async fn replica(etcd: &Etcd, id: &str, lease: Duration) -> Result<EtcdCoordination> {
    Ok(EtcdCoordination::connect(&etcd.endpoints(), PREFIX, id, lease).await?)
}

#[tokio::test]
async fn etcd_renew_creates_then_changes_version() -> Result<()> {
    let etcd = start_etcd().await?;
    let a = replica(&etcd, "replica-a", LEASE).await?;
    contract::renew_creates_then_changes_version(&a).await?;
    ensure!(a.member_key() == "/keelson-test/members/replica-a");
    ensure!(a.ttl_seconds() == 10);
    Ok(())
}

#[tokio::test]
async fn etcd_members_lists_all_replicas() -> Result<()> {
    let etcd = start_etcd().await?;
    let a = replica(&etcd, "replica-a", LEASE).await?;
    let b = replica(&etcd, "replica-b", LEASE).await?;
    let c = replica(&etcd, "replica-c", LEASE).await?;
    contract::members_lists_all(&[&a, &b, &c]).await
}

#[tokio::test]
async fn etcd_claim_races_have_exactly_one_winner() -> Result<()> {
    let etcd = start_etcd().await?;
    let a = replica(&etcd, "replica-a", LEASE).await?;
    let b = replica(&etcd, "replica-b", LEASE).await?;
    a.renew().await?;
    b.renew().await?;
    contract::claim_races_have_one_winner(&a, &b).await
}

#[tokio::test]
async fn etcd_takeover_with_stale_version_conflicts() -> Result<()> {
    let etcd = start_etcd().await?;
    let a = replica(&etcd, "replica-a", LEASE).await?;
    let b = replica(&etcd, "replica-b", LEASE).await?;
    a.renew().await?;
    b.renew().await?;
    contract::takeover_needs_the_current_version(&a, &b).await
}

#[tokio::test]
async fn etcd_release_needs_the_current_version() -> Result<()> {
    let etcd = start_etcd().await?;
    let a = replica(&etcd, "replica-a", LEASE).await?;
    let b = replica(&etcd, "replica-b", LEASE).await?;
    a.renew().await?;
    b.renew().await?;
    contract::release_needs_the_current_version(&a, &b).await
}

#[tokio::test]
async fn etcd_resign_revokes_member_and_claims() -> Result<()> {
    let etcd = start_etcd().await?;
    let a = replica(&etcd, "replica-a", LEASE).await?;
    let b = replica(&etcd, "replica-b", LEASE).await?;
    contract::resign_removes_member_and_claims(&a, &b).await
}

#[tokio::test]
async fn etcd_claim_before_renew_is_refused() -> Result<()> {
    let etcd = start_etcd().await?;
    let a = replica(&etcd, "replica-a", LEASE).await?;
    let refused = a.claim("unit", None).await;
    ensure!(
        matches!(refused, Err(CoordinationError::NotRenewed { .. })),
        "{refused:?}"
    );
    Ok(())
}

/// A replica that stops renewing loses its member key and every claim it holds once its
/// etcd lease (TTL 2 s) expires; its next renewal grants a new lease.
#[tokio::test]
async fn etcd_silent_replica_loses_member_and_claims_after_ttl() -> Result<()> {
    let etcd = start_etcd().await?;
    let silent = replica(&etcd, "silent", Duration::from_secs(2)).await?;
    let alive = replica(&etcd, "alive", LEASE).await?;
    ensure!(silent.ttl_seconds() == 2);
    silent.renew().await?;
    alive.renew().await?;
    contract::taken(silent.claim("silent-unit", None).await?)?;
    let kept = contract::taken(alive.claim("alive-unit", None).await?)?;
    let started = Instant::now();
    let deadline = Duration::from_secs(10);
    loop {
        let member = contract::member(&alive, "silent").await?;
        let claim = contract::claim_of(&alive, "silent-unit").await?;
        if member.is_none() && claim.is_none() {
            break;
        }
        ensure!(
            started.elapsed() < deadline,
            "silent replica still present after {deadline:?}: {member:?} {claim:?}"
        );
        alive.renew().await?;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let gone_after = started.elapsed();
    eprintln!("silent replica's member key and claim gone after {gone_after:?}");
    ensure!(
        gone_after >= Duration::from_secs(1),
        "gone after {gone_after:?}, before its lease could expire"
    );
    ensure!(contract::member(&alive, "alive").await?.is_some());
    ensure!(contract::claim_of(&alive, "alive-unit").await? == Some(kept));
    ensure!(silent.renew().await? == Renewal::Recreated);
    ensure!(contract::member(&alive, "silent").await?.is_some());
    let again = silent.claim("silent-unit", None).await?;
    ensure!(matches!(again, ClaimOutcome::Taken(_)), "{again:?}");
    Ok(())
}

/// Requests against a frozen etcd fail within the request timeout instead of hanging.
#[tokio::test]
async fn etcd_requests_time_out_when_etcd_hangs() -> Result<()> {
    let mut etcd = start_etcd().await?;
    let lease = Duration::from_secs(3);
    let a = replica(&etcd, "replica-a", lease).await?;
    a.renew().await?;
    etcd.process().pause()?;
    let started = Instant::now();
    let renewed = a.renew().await;
    let took = started.elapsed();
    etcd.process().resume()?;
    ensure!(renewed.is_err(), "renew succeeded against a frozen etcd");
    ensure!(
        took <= lease / 3 + Duration::from_millis(500),
        "renew took {took:?}"
    );
    eprintln!("renew against a frozen etcd failed after {took:?}: {renewed:?}");
    a.renew().await.context("renew after resume")?;
    Ok(())
}
