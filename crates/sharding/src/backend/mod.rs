//! The membership and claim protocol storage (ARCHITECTURE.md §4): one small
//! [`Coordination`] trait, implemented over Kubernetes Leases ([`KubernetesCoordination`])
//! and over etcd leases and transactions ([`EtcdCoordination`]).
//!
//! Every controller replica holds one member record, renewed every `lease/3`; its
//! `version` changes on every renewal, so observers judge liveness with their own clock
//! from when they last saw the version change. A claim `{unit, holder}` is written only
//! with compare-and-swap on its `version`, so of two replicas racing for a unit exactly one
//! wins. Judging whether a holder is alive, and deciding who should own what, is not done
//! here (see `liveness` and `assignment`).

mod error;
mod etcd;
mod kubernetes;

use std::future::Future;

pub use error::CoordinationError;
pub use etcd::EtcdCoordination;
pub use kubernetes::{
    CLAIM_PREFIX, KubernetesCoordination, MEMBER_PREFIX, PART_OF_LABEL, ROLE_LABEL,
    UNIT_ANNOTATION, object_name,
};

/// One replica's member record as seen by an observer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberRecord {
    /// The replica id.
    pub id: String,
    /// Opaque; changes on every renewal.
    pub version: String,
}

/// One unit's claim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimRecord {
    /// The unit name, opaque to the backends.
    pub unit: String,
    /// The replica id of the holder.
    pub holder: String,
    /// Compare-and-swap token; changes on every write of the claim.
    pub version: String,
}

/// The result of [`Coordination::claim`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClaimOutcome {
    /// The claim is now held by this replica.
    Taken(ClaimRecord),
    /// Someone else created or changed the claim first (or it is gone when a previous
    /// version was given); list the claims again before retrying.
    Conflict,
}

/// What [`Coordination::renew`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Renewal {
    /// The first renewal of this instance: the member record was written.
    Created,
    /// The existing member record was renewed.
    Renewed,
    /// The member record of this instance was gone (expired or deleted) and has been
    /// created again. Claims written before may be lost or held by others: re-list them.
    Recreated,
}

/// Membership and claim storage shared by every controller replica.
pub trait Coordination: Send + Sync {
    /// Creates (first call) or renews this replica's member record.
    fn renew(&self) -> impl Future<Output = Result<Renewal, CoordinationError>> + Send;

    /// Every member record currently stored, this replica's included.
    fn members(&self) -> impl Future<Output = Result<Vec<MemberRecord>, CoordinationError>> + Send;

    /// Every claim currently stored.
    fn claims(&self) -> impl Future<Output = Result<Vec<ClaimRecord>, CoordinationError>> + Send;

    /// Compare-and-swap: creates the claim of `unit` for this replica when `previous` is
    /// `None`, else replaces exactly `previous` (same version).
    fn claim(
        &self,
        unit: &str,
        previous: Option<&ClaimRecord>,
    ) -> impl Future<Output = Result<ClaimOutcome, CoordinationError>> + Send;

    /// Compare-and-delete of exactly `claim`; a claim that changed or is gone is left as it
    /// is and still `Ok`.
    fn release(
        &self,
        claim: &ClaimRecord,
    ) -> impl Future<Output = Result<(), CoordinationError>> + Send;

    /// Clean shutdown: deletes this replica's member record and the claims it holds. A
    /// later [`Coordination::renew`] starts over with [`Renewal::Created`].
    fn resign(&self) -> impl Future<Output = Result<(), CoordinationError>> + Send;

    /// This replica's id.
    fn replica_id(&self) -> &str;
}
