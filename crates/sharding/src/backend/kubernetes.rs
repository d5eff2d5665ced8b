//! Membership and claims over `coordination.k8s.io/v1` Leases in one namespace.
//!
//! * Member: Lease `keelson-member-<replica id>` (labels `app.kubernetes.io/part-of:
//!   keelson`, `keelson.io/role: member`), `holderIdentity` = replica id,
//!   `leaseDurationSeconds` = the lease, `renewTime` rewritten by every renewal (a
//!   server-side apply, so one request), version = `resourceVersion`.
//! * Claim: Lease `keelson-claim-<unit>` (label `keelson.io/role: claim`, annotation
//!   `keelson.io/unit: <unit>`), `holderIdentity` = holder, version = `resourceVersion`;
//!   created with POST (409 → conflict) or replaced with PUT carrying the previous
//!   `resourceVersion` (409/404 → conflict); released with a DELETE precondition.
//!
//! Names are sanitized to DNS labels by [`object_name`]. Every request is bounded by the
//! request timeout (default `lease/3`), so a renewal fails fast instead of hanging.

use std::collections::BTreeMap;
use std::future::Future;
use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::Timestamp;
use kube::Api;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams, Preconditions};
use parking_lot::Mutex;

use super::{ClaimOutcome, ClaimRecord, Coordination, CoordinationError, MemberRecord, Renewal};

/// Name prefix of member Leases.
pub const MEMBER_PREFIX: &str = "keelson-member-";
/// Name prefix of claim Leases.
pub const CLAIM_PREFIX: &str = "keelson-claim-";
/// Label present on every Lease this backend writes, value `keelson`.
pub const PART_OF_LABEL: &str = "app.kubernetes.io/part-of";
/// Label saying `member` or `claim`.
pub const ROLE_LABEL: &str = "keelson.io/role";
/// Annotation of a claim Lease holding the unit name verbatim.
pub const UNIT_ANNOTATION: &str = "keelson.io/unit";

const PART_OF: &str = "keelson";
const FIELD_MANAGER: &str = "keelson-coordination";
/// Longest object name Kubernetes accepts for a Lease (a DNS-1123 subdomain).
const MAX_NAME: usize = 253;

/// Coordination over Kubernetes Leases; see the module docs for the object layout.
pub struct KubernetesCoordination {
    api: Api<Lease>,
    replica_id: String,
    member_name: String,
    lease: Duration,
    request_timeout: Duration,
    /// The uid of the member Lease written by the last successful renewal.
    member_uid: Mutex<Option<String>>,
}

impl KubernetesCoordination {
    /// A backend storing Leases in `namespace`; requests time out after `lease/3`.
    pub fn new(
        client: kube::Client,
        namespace: &str,
        replica_id: impl Into<String>,
        lease: Duration,
    ) -> KubernetesCoordination {
        let replica_id = replica_id.into();
        KubernetesCoordination {
            api: Api::namespaced(client, namespace),
            member_name: object_name(MEMBER_PREFIX, &replica_id),
            replica_id,
            lease,
            request_timeout: (lease / 3).max(Duration::from_millis(10)),
            member_uid: Mutex::new(None),
        }
    }

    /// Overrides the per-request timeout (keep it at most `lease/3`).
    pub fn with_request_timeout(mut self, timeout: Duration) -> KubernetesCoordination {
        self.request_timeout = timeout;
        self
    }

    /// The per-request timeout.
    pub fn request_timeout(&self) -> Duration {
        self.request_timeout
    }

    /// The name of this replica's member Lease.
    pub fn member_name(&self) -> &str {
        &self.member_name
    }

    /// Runs one request under the request timeout; the inner result is the API's answer.
    async fn bounded<T>(
        &self,
        step: &'static str,
        request: impl Future<Output = Result<T, kube::Error>>,
    ) -> Result<Result<T, kube::Error>, CoordinationError> {
        tokio::time::timeout(self.request_timeout, request)
            .await
            .map_err(|_| CoordinationError::Timeout {
                step,
                after: self.request_timeout,
            })
    }

    async fn list(&self, role: &str, step: &'static str) -> Result<Vec<Lease>, CoordinationError> {
        let selector = format!("{PART_OF_LABEL}={PART_OF},{ROLE_LABEL}={role}");
        let params = ListParams::default().labels(&selector);
        let list = self
            .bounded(step, self.api.list(&params))
            .await?
            .map_err(|source| CoordinationError::Kubernetes { step, source })?;
        Ok(list.items)
    }

    fn member_object(&self) -> Lease {
        let rounded_up = self.lease.as_secs() + u64::from(self.lease.subsec_nanos() > 0);
        let seconds = i32::try_from(rounded_up).unwrap_or(i32::MAX).max(1);
        Lease {
            metadata: ObjectMeta {
                name: Some(self.member_name.clone()),
                labels: Some(labels("member")),
                ..ObjectMeta::default()
            },
            spec: Some(LeaseSpec {
                holder_identity: Some(self.replica_id.clone()),
                lease_duration_seconds: Some(seconds),
                renew_time: Some(MicroTime(Timestamp::now())),
                ..LeaseSpec::default()
            }),
        }
    }

    fn claim_object(&self, unit: &str, resource_version: Option<String>) -> Lease {
        Lease {
            metadata: ObjectMeta {
                name: Some(object_name(CLAIM_PREFIX, unit)),
                labels: Some(labels("claim")),
                annotations: Some(BTreeMap::from([(
                    UNIT_ANNOTATION.to_string(),
                    unit.to_string(),
                )])),
                resource_version,
                ..ObjectMeta::default()
            },
            spec: Some(LeaseSpec {
                holder_identity: Some(self.replica_id.clone()),
                acquire_time: Some(MicroTime(Timestamp::now())),
                ..LeaseSpec::default()
            }),
        }
    }

    async fn delete_member(&self) -> Result<(), CoordinationError> {
        const STEP: &str = "deleting the member lease";
        let deleted = self
            .bounded(
                STEP,
                self.api.delete(&self.member_name, &DeleteParams::default()),
            )
            .await?;
        match deleted {
            Ok(_) => Ok(()),
            Err(e) if status_code(&e) == Some(404) => Ok(()),
            Err(source) => Err(CoordinationError::Kubernetes { step: STEP, source }),
        }
    }
}

impl Coordination for KubernetesCoordination {
    async fn renew(&self) -> Result<Renewal, CoordinationError> {
        const STEP: &str = "renewing the member lease";
        let params = PatchParams::apply(FIELD_MANAGER).force();
        let object = self.member_object();
        let written = self
            .bounded(
                STEP,
                self.api
                    .patch(&self.member_name, &params, &Patch::Apply(&object)),
            )
            .await?
            .map_err(|source| CoordinationError::Kubernetes { step: STEP, source })?;
        let uid = written.metadata.uid;
        let mut known = self.member_uid.lock();
        let renewal = match (known.as_ref(), uid.as_ref()) {
            (None, _) => Renewal::Created,
            (Some(old), Some(new)) if old == new => Renewal::Renewed,
            (Some(_), _) => Renewal::Recreated,
        };
        if renewal == Renewal::Recreated {
            tracing::warn!(replica = %self.replica_id, "member lease was gone and has been recreated");
        }
        *known = uid;
        Ok(renewal)
    }

    async fn members(&self) -> Result<Vec<MemberRecord>, CoordinationError> {
        let leases = self.list("member", "listing member leases").await?;
        Ok(leases
            .into_iter()
            .filter_map(|lease| {
                Some(MemberRecord {
                    id: lease.spec?.holder_identity?,
                    version: lease.metadata.resource_version?,
                })
            })
            .collect())
    }

    async fn claims(&self) -> Result<Vec<ClaimRecord>, CoordinationError> {
        let leases = self.list("claim", "listing claim leases").await?;
        Ok(leases
            .into_iter()
            .filter_map(|lease| {
                let unit = lease.metadata.annotations?.remove(UNIT_ANNOTATION)?;
                Some(ClaimRecord {
                    unit,
                    holder: lease.spec?.holder_identity?,
                    version: lease.metadata.resource_version?,
                })
            })
            .collect())
    }

    async fn claim(
        &self,
        unit: &str,
        previous: Option<&ClaimRecord>,
    ) -> Result<ClaimOutcome, CoordinationError> {
        let params = PostParams::default();
        let written = match previous {
            None => {
                const STEP: &str = "creating a claim lease";
                let object = self.claim_object(unit, None);
                let created = self.api.create(&params, &object);
                (STEP, self.bounded(STEP, created).await?)
            }
            Some(previous) => {
                const STEP: &str = "replacing a claim lease";
                if previous.unit != unit {
                    return Err(CoordinationError::UnitMismatch {
                        unit: unit.to_string(),
                        previous: previous.unit.clone(),
                    });
                }
                let object = self.claim_object(unit, Some(previous.version.clone()));
                let name = object_name(CLAIM_PREFIX, unit);
                let replaced = self.api.replace(&name, &params, &object);
                (STEP, self.bounded(STEP, replaced).await?)
            }
        };
        match written {
            (_, Ok(lease)) => {
                let version = lease.metadata.resource_version.unwrap_or_default();
                tracing::debug!(unit, %version, holder = %self.replica_id, "claim taken");
                Ok(ClaimOutcome::Taken(ClaimRecord {
                    unit: unit.to_string(),
                    holder: self.replica_id.clone(),
                    version,
                }))
            }
            (_, Err(e)) if matches!(status_code(&e), Some(404 | 409)) => {
                tracing::debug!(unit, holder = %self.replica_id, "claim conflict");
                Ok(ClaimOutcome::Conflict)
            }
            (step, Err(source)) => Err(CoordinationError::Kubernetes { step, source }),
        }
    }

    async fn release(&self, claim: &ClaimRecord) -> Result<(), CoordinationError> {
        const STEP: &str = "deleting a claim lease";
        let params = DeleteParams {
            preconditions: Some(Preconditions {
                resource_version: Some(claim.version.clone()),
                uid: None,
            }),
            ..DeleteParams::default()
        };
        let name = object_name(CLAIM_PREFIX, &claim.unit);
        match self.bounded(STEP, self.api.delete(&name, &params)).await? {
            Ok(_) => Ok(()),
            Err(e) if matches!(status_code(&e), Some(404 | 409)) => Ok(()),
            Err(source) => Err(CoordinationError::Kubernetes { step: STEP, source }),
        }
    }

    async fn resign(&self) -> Result<(), CoordinationError> {
        self.delete_member().await?;
        *self.member_uid.lock() = None;
        for claim in self.claims().await? {
            if claim.holder == self.replica_id {
                self.release(&claim).await?;
            }
        }
        Ok(())
    }

    fn replica_id(&self) -> &str {
        &self.replica_id
    }
}

fn labels(role: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        (PART_OF_LABEL.to_string(), PART_OF.to_string()),
        (ROLE_LABEL.to_string(), role.to_string()),
    ])
}

fn status_code(error: &kube::Error) -> Option<u16> {
    match error {
        kube::Error::Api(status) => Some(status.code),
        _ => None,
    }
}

/// `prefix` + `raw` made a valid object name: lowercase `[a-z0-9-]`, other characters
/// replaced by `-`, edges trimmed. When that changed `raw` (or it had to be shortened), an
/// 8-hex-digit FNV-1a hash of `raw` is appended so distinct inputs keep distinct names.
pub fn object_name(prefix: &str, raw: &str) -> String {
    let cleaned: String = raw
        .chars()
        .map(|c| match c {
            'a'..='z' | '0'..='9' | '-' => c,
            'A'..='Z' => c.to_ascii_lowercase(),
            _ => '-',
        })
        .collect();
    let trimmed = cleaned.trim_matches('-');
    let room = MAX_NAME - prefix.len();
    if trimmed == raw && trimmed.len() <= room {
        return format!("{prefix}{trimmed}");
    }
    let hash = format!("{:08x}", fnv1a32(raw.as_bytes()));
    let keep = trimmed.len().min(room - hash.len() - 1);
    let head = trimmed[..keep].trim_end_matches('-');
    if head.is_empty() {
        format!("{prefix}{hash}")
    } else {
        format!("{prefix}{head}-{hash}")
    }
}

fn fnv1a32(bytes: &[u8]) -> u32 {
    bytes.iter().fold(0x811c_9dc5_u32, |hash, b| {
        (hash ^ u32::from(*b)).wrapping_mul(0x0100_0193)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_names_are_kept() {
        assert_eq!(
            object_name(MEMBER_PREFIX, "keelson-0"),
            "keelson-member-keelson-0"
        );
    }

    #[test]
    fn odd_names_are_sanitized_and_disambiguated() {
        let a = object_name(CLAIM_PREFIX, "Cluster_A/3");
        let b = object_name(CLAIM_PREFIX, "cluster-a-3");
        assert!(a.starts_with("keelson-claim-cluster-a-3-"), "{a}");
        assert_eq!(b, "keelson-claim-cluster-a-3");
        assert_ne!(a, b);
        assert_eq!(
            object_name(CLAIM_PREFIX, "///"),
            format!("{CLAIM_PREFIX}{:08x}", fnv1a32(b"///"))
        );
        let long = object_name(CLAIM_PREFIX, &"x".repeat(400));
        assert!(long.len() <= MAX_NAME);
        assert!(long.ends_with(&format!("{:08x}", fnv1a32("x".repeat(400).as_bytes()))));
    }
}
