//! Backend-independent checks of the coordination protocol, run against every backend by
//! `backend_kubernetes.rs` and `backend_etcd.rs`.

#![allow(dead_code)]

use anyhow::{Context, Result, bail, ensure};
use keelson_sharding::backend::{ClaimOutcome, ClaimRecord, Coordination, MemberRecord, Renewal};

/// Number of concurrent claim races run by [`claim_races_have_one_winner`].
pub const RACES: usize = 20;

pub async fn member<C: Coordination>(c: &C, id: &str) -> Result<Option<MemberRecord>> {
    Ok(c.members().await?.into_iter().find(|m| m.id == id))
}

pub async fn claim_of<C: Coordination>(c: &C, unit: &str) -> Result<Option<ClaimRecord>> {
    Ok(c.claims().await?.into_iter().find(|r| r.unit == unit))
}

pub fn taken(outcome: ClaimOutcome) -> Result<ClaimRecord> {
    match outcome {
        ClaimOutcome::Taken(record) => Ok(record),
        ClaimOutcome::Conflict => bail!("expected the claim to be taken, got a conflict"),
    }
}

/// The first renew creates the member record; each later one changes its version.
pub async fn renew_creates_then_changes_version<C: Coordination>(c: &C) -> Result<()> {
    let id = c.replica_id().to_string();
    ensure!(
        member(c, &id).await?.is_none(),
        "{id} is a member before renewing"
    );
    ensure!(
        c.renew().await? == Renewal::Created,
        "first renew did not create"
    );
    let first = member(c, &id)
        .await?
        .context("no member record after renew")?;
    let mut seen = vec![first.version.clone()];
    for _ in 0..3 {
        ensure!(c.renew().await? == Renewal::Renewed, "renew did not renew");
        let now = member(c, &id).await?.context("member record vanished")?;
        ensure!(
            !seen.contains(&now.version),
            "version {} did not change on renewal (seen {seen:?})",
            now.version
        );
        seen.push(now.version);
    }
    Ok(())
}

/// `members()` lists every renewing replica, each once.
pub async fn members_lists_all<C: Coordination>(replicas: &[&C]) -> Result<()> {
    for r in replicas {
        r.renew().await?;
    }
    let mut ids: Vec<String> = replicas[0]
        .members()
        .await?
        .into_iter()
        .map(|m| m.id)
        .collect();
    ids.sort();
    let mut want: Vec<String> = replicas
        .iter()
        .map(|r| r.replica_id().to_string())
        .collect();
    want.sort();
    ensure!(ids == want, "members {ids:?}, want {want:?}");
    Ok(())
}

/// Two replicas create the same claim at the same time, [`RACES`] times: exactly one
/// wins each race and the stored claim is the winner's.
pub async fn claim_races_have_one_winner<C: Coordination>(a: &C, b: &C) -> Result<()> {
    let mut wins = [0usize; 2];
    for i in 0..RACES {
        let unit = format!("race-{i}");
        let (ra, rb) = tokio::join!(a.claim(&unit, None), b.claim(&unit, None));
        let winner = match (ra?, rb?) {
            (ClaimOutcome::Taken(w), ClaimOutcome::Conflict) => {
                wins[0] += 1;
                w
            }
            (ClaimOutcome::Conflict, ClaimOutcome::Taken(w)) => {
                wins[1] += 1;
                w
            }
            (x, y) => bail!("race {i}: outcomes {x:?} and {y:?}, want one taken and one conflict"),
        };
        let stored = claim_of(a, &unit)
            .await?
            .context("winner's claim not stored")?;
        ensure!(
            stored == winner,
            "race {i}: stored {stored:?}, winner {winner:?}"
        );
    }
    eprintln!("claim races won: a={} b={}", wins[0], wins[1]);
    Ok(())
}

/// Creating an existing claim conflicts; replacing with the current version takes it
/// over; replacing with a stale version conflicts.
pub async fn takeover_needs_the_current_version<C: Coordination>(a: &C, b: &C) -> Result<()> {
    let unit = "takeover";
    let first = taken(a.claim(unit, None).await?)?;
    ensure!(
        first.holder == a.replica_id() && first.unit == unit,
        "{first:?}"
    );
    ensure!(
        b.claim(unit, None).await? == ClaimOutcome::Conflict,
        "creating an existing claim did not conflict"
    );
    let second = taken(b.claim(unit, Some(&first)).await?)?;
    ensure!(second.holder == b.replica_id(), "{second:?}");
    ensure!(
        second.version != first.version,
        "version unchanged by takeover"
    );
    ensure!(
        claim_of(a, unit).await? == Some(second.clone()),
        "stored claim is not the takeover"
    );
    ensure!(
        a.claim(unit, Some(&first)).await? == ClaimOutcome::Conflict,
        "takeover with a stale version did not conflict"
    );
    ensure!(
        claim_of(a, unit).await? == Some(second),
        "a stale takeover changed the claim"
    );
    Ok(())
}

/// Release deletes only the exact version given; stale or repeated releases are `Ok`.
pub async fn release_needs_the_current_version<C: Coordination>(a: &C, b: &C) -> Result<()> {
    let unit = "release";
    let first = taken(a.claim(unit, None).await?)?;
    let second = taken(b.claim(unit, Some(&first)).await?)?;
    a.release(&first).await.context("stale release")?;
    ensure!(
        claim_of(a, unit).await? == Some(second.clone()),
        "a stale release removed the claim"
    );
    b.release(&second).await.context("release")?;
    ensure!(claim_of(a, unit).await?.is_none(), "release left the claim");
    b.release(&second).await.context("repeated release")?;
    let again = taken(a.claim(unit, None).await?)?;
    ensure!(again.holder == a.replica_id(), "{again:?}");
    Ok(())
}

/// Resign removes the member record and the replica's claims, and leaves others' alone.
pub async fn resign_removes_member_and_claims<C: Coordination>(a: &C, b: &C) -> Result<()> {
    a.renew().await?;
    b.renew().await?;
    let mine = taken(a.claim("resign-a", None).await?)?;
    let theirs = taken(b.claim("resign-b", None).await?)?;
    a.resign().await?;
    ensure!(
        member(b, a.replica_id()).await?.is_none(),
        "member survived resign"
    );
    ensure!(
        member(b, b.replica_id()).await?.is_some(),
        "resign removed another member"
    );
    ensure!(
        claim_of(b, &mine.unit).await?.is_none(),
        "claim survived resign"
    );
    ensure!(
        claim_of(b, &theirs.unit).await? == Some(theirs),
        "resign touched another replica's claim"
    );
    ensure!(
        a.renew().await? == Renewal::Created,
        "renew after resign did not create"
    );
    ensure!(
        member(b, a.replica_id()).await?.is_some(),
        "member not back after renew"
    );
    Ok(())
}
