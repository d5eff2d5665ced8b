//! Membership and claims over etcd: one etcd lease per replica, keys attached to it.
//!
//! * Member: key `<prefix>/members/<replica id>` = replica id, attached to the replica's
//!   etcd lease (TTL = the lease in whole seconds, at least 2). Every renewal sends one
//!   keep-alive request for the lease (granting a new lease if it expired) and then
//!   re-puts the member key, so its `mod_revision` — the member version — changes on
//!   every renewal and observers see liveness by their own clock, as with Kubernetes.
//! * Claim: key `<prefix>/claims/<unit>` = holder, attached to the holder's lease, so the
//!   claims of a dead holder vanish with its lease. Taken with a transaction: create when
//!   `create_revision == 0`, or replace when `mod_revision == previous.version`. Released
//!   with a transaction deleting only when `mod_revision` matches. Version = `mod_revision`.
//! * Resign revokes the lease, which deletes the member key and every claim at once.
//!
//! Every request is bounded by the request timeout (default `lease/3`).

use std::future::Future;
use std::time::Duration;

use etcd_client::{
    Client, Compare, CompareOp, ConnectOptions, GetOptions, KeyValue, PutOptions, Txn, TxnOp,
    TxnResponse,
};
use parking_lot::Mutex;

use super::{ClaimOutcome, ClaimRecord, Coordination, CoordinationError, MemberRecord, Renewal};

/// Smallest etcd lease TTL used, in seconds.
const MIN_TTL_SECONDS: i64 = 2;

/// Coordination over etcd; see the module docs for the key layout.
pub struct EtcdCoordination {
    client: Client,
    prefix: String,
    replica_id: String,
    ttl_seconds: i64,
    request_timeout: Duration,
    /// The etcd lease this replica's keys are attached to, once granted.
    lease_id: Mutex<Option<i64>>,
}

impl EtcdCoordination {
    /// Connects to `endpoints` (e.g. `http://127.0.0.1:2379`); keys live under `prefix`
    /// (e.g. `/keelson`); requests time out after `lease/3`.
    pub async fn connect(
        endpoints: &[String],
        prefix: &str,
        replica_id: impl Into<String>,
        lease: Duration,
    ) -> Result<EtcdCoordination, CoordinationError> {
        let timeout = default_timeout(lease);
        let options = ConnectOptions::new()
            .with_timeout(timeout)
            .with_connect_timeout(timeout);
        let client = Client::connect(endpoints, Some(options))
            .await
            .map_err(|source| CoordinationError::EtcdConnect {
                endpoints: endpoints.join(","),
                source,
            })?;
        Ok(EtcdCoordination::from_client(
            client, prefix, replica_id, lease,
        ))
    }

    /// Uses an already configured client (TLS, authentication).
    pub fn from_client(
        client: Client,
        prefix: &str,
        replica_id: impl Into<String>,
        lease: Duration,
    ) -> EtcdCoordination {
        let seconds = i64::try_from(lease.as_secs()).unwrap_or(i64::MAX);
        let rounded_up = seconds.saturating_add(i64::from(lease.subsec_nanos() > 0));
        EtcdCoordination {
            client,
            prefix: prefix.trim_end_matches('/').to_string(),
            replica_id: replica_id.into(),
            ttl_seconds: rounded_up.max(MIN_TTL_SECONDS),
            request_timeout: default_timeout(lease),
            lease_id: Mutex::new(None),
        }
    }

    /// Overrides the per-request timeout (keep it at most `lease/3`).
    pub fn with_request_timeout(mut self, timeout: Duration) -> EtcdCoordination {
        self.request_timeout = timeout;
        self
    }

    /// The etcd lease TTL in seconds.
    pub fn ttl_seconds(&self) -> i64 {
        self.ttl_seconds
    }

    /// The etcd lease currently held, if any.
    pub fn lease_id(&self) -> Option<i64> {
        *self.lease_id.lock()
    }

    /// The key of this replica's member record.
    pub fn member_key(&self) -> String {
        format!("{}/members/{}", self.prefix, self.replica_id)
    }

    /// The key of a unit's claim.
    pub fn claim_key(&self, unit: &str) -> String {
        format!("{}{unit}", self.claims_prefix())
    }

    fn members_prefix(&self) -> String {
        format!("{}/members/", self.prefix)
    }

    fn claims_prefix(&self) -> String {
        format!("{}/claims/", self.prefix)
    }

    async fn bounded<T>(
        &self,
        step: &'static str,
        request: impl Future<Output = Result<T, etcd_client::Error>>,
    ) -> Result<T, CoordinationError> {
        tokio::time::timeout(self.request_timeout, request)
            .await
            .map_err(|_| CoordinationError::Timeout {
                step,
                after: self.request_timeout,
            })?
            .map_err(|source| CoordinationError::Etcd { step, source })
    }

    async fn grant(&self) -> Result<i64, CoordinationError> {
        let mut client = self.client.clone();
        let granted = self
            .bounded(
                "granting the member lease",
                client.lease_grant(self.ttl_seconds, None),
            )
            .await?;
        Ok(granted.id())
    }

    /// One keep-alive request and its answer; whether the lease was still alive.
    async fn keep_alive(&self, lease: i64) -> Result<bool, CoordinationError> {
        const STEP: &str = "keeping the member lease alive";
        let mut client = self.client.clone();
        // `lease_keep_alive` sends the request and reads the answer itself; an answer with
        // TTL 0 (the lease expired or was revoked) is its `LeaseKeepAliveError`. The
        // returned stream is dropped at once, so each renewal is exactly one request.
        match self.bounded(STEP, client.lease_keep_alive(lease)).await {
            Ok(_) => Ok(true),
            Err(CoordinationError::Etcd {
                source: etcd_client::Error::LeaseKeepAliveError(message),
                ..
            }) if message.contains("not found") => Ok(false),
            Err(e) => Err(e),
        }
    }

    async fn put_member(&self, lease: i64) -> Result<(), CoordinationError> {
        let mut client = self.client.clone();
        let options = PutOptions::new().with_lease(lease);
        self.bounded(
            "writing the member key",
            client.put(self.member_key(), self.replica_id.as_str(), Some(options)),
        )
        .await?;
        Ok(())
    }

    async fn list(
        &self,
        prefix: String,
        step: &'static str,
    ) -> Result<Vec<KeyValue>, CoordinationError> {
        let mut client = self.client.clone();
        let mut answer = self
            .bounded(
                step,
                client.get(prefix, Some(GetOptions::new().with_prefix())),
            )
            .await?;
        Ok(answer.take_kvs())
    }

    async fn txn(&self, step: &'static str, txn: Txn) -> Result<TxnResponse, CoordinationError> {
        let mut client = self.client.clone();
        self.bounded(step, client.txn(txn)).await
    }
}

impl Coordination for EtcdCoordination {
    async fn renew(&self) -> Result<Renewal, CoordinationError> {
        let current = self.lease_id();
        let (lease, renewal) = match current {
            None => (self.grant().await?, Renewal::Created),
            Some(lease) if self.keep_alive(lease).await? => (lease, Renewal::Renewed),
            Some(expired) => {
                tracing::warn!(replica = %self.replica_id, lease = expired, "member lease expired; granting a new one");
                (self.grant().await?, Renewal::Recreated)
            }
        };
        *self.lease_id.lock() = Some(lease);
        self.put_member(lease).await?;
        Ok(renewal)
    }

    async fn members(&self) -> Result<Vec<MemberRecord>, CoordinationError> {
        let prefix = self.members_prefix();
        let kvs = self.list(prefix.clone(), "listing member keys").await?;
        Ok(kvs
            .iter()
            .filter_map(|kv| {
                let id = kv.key_str().ok()?.strip_prefix(&prefix)?;
                Some(MemberRecord {
                    id: id.to_string(),
                    version: kv.mod_revision().to_string(),
                })
            })
            .collect())
    }

    async fn claims(&self) -> Result<Vec<ClaimRecord>, CoordinationError> {
        let prefix = self.claims_prefix();
        let kvs = self.list(prefix.clone(), "listing claim keys").await?;
        Ok(kvs
            .iter()
            .filter_map(|kv| {
                let unit = kv.key_str().ok()?.strip_prefix(&prefix)?;
                Some(ClaimRecord {
                    unit: unit.to_string(),
                    holder: kv.value_str().ok()?.to_string(),
                    version: kv.mod_revision().to_string(),
                })
            })
            .collect())
    }

    async fn claim(
        &self,
        unit: &str,
        previous: Option<&ClaimRecord>,
    ) -> Result<ClaimOutcome, CoordinationError> {
        let Some(lease) = self.lease_id() else {
            return Err(CoordinationError::NotRenewed {
                unit: unit.to_string(),
            });
        };
        let key = self.claim_key(unit);
        let condition = match previous {
            None => Compare::create_revision(key.as_str(), CompareOp::Equal, 0),
            Some(previous) if previous.unit != unit => {
                return Err(CoordinationError::UnitMismatch {
                    unit: unit.to_string(),
                    previous: previous.unit.clone(),
                });
            }
            Some(previous) => match previous.version.parse::<i64>() {
                Ok(version) => Compare::mod_revision(key.as_str(), CompareOp::Equal, version),
                // Not a version this backend wrote: it cannot match.
                Err(_) => return Ok(ClaimOutcome::Conflict),
            },
        };
        let put = TxnOp::put(
            key.as_str(),
            self.replica_id.as_str(),
            Some(PutOptions::new().with_lease(lease)),
        );
        let answer = self
            .txn(
                "writing a claim key",
                Txn::new().when([condition]).and_then([put]),
            )
            .await?;
        if !answer.succeeded() {
            tracing::debug!(unit, holder = %self.replica_id, "claim conflict");
            return Ok(ClaimOutcome::Conflict);
        }
        let version = answer.header().map(|h| h.revision()).unwrap_or_default();
        tracing::debug!(unit, version, holder = %self.replica_id, "claim taken");
        Ok(ClaimOutcome::Taken(ClaimRecord {
            unit: unit.to_string(),
            holder: self.replica_id.clone(),
            version: version.to_string(),
        }))
    }

    async fn release(&self, claim: &ClaimRecord) -> Result<(), CoordinationError> {
        let Ok(version) = claim.version.parse::<i64>() else {
            return Ok(());
        };
        let key = self.claim_key(&claim.unit);
        let condition = Compare::mod_revision(key.as_str(), CompareOp::Equal, version);
        let txn = Txn::new()
            .when([condition])
            .and_then([TxnOp::delete(key.as_str(), None)]);
        self.txn("deleting a claim key", txn).await?;
        Ok(())
    }

    async fn resign(&self) -> Result<(), CoordinationError> {
        let Some(lease) = self.lease_id.lock().take() else {
            return Ok(());
        };
        let mut client = self.client.clone();
        match self
            .bounded("revoking the member lease", client.lease_revoke(lease))
            .await
        {
            Ok(_) => Ok(()),
            Err(CoordinationError::Etcd {
                source: etcd_client::Error::GRpcStatus(status),
                ..
            }) if status.code() == tonic::Code::NotFound => Ok(()),
            Err(e) => {
                // Keep the lease so a retried resign revokes it.
                *self.lease_id.lock() = Some(lease);
                Err(e)
            }
        }
    }

    fn replica_id(&self) -> &str {
        &self.replica_id
    }
}

fn default_timeout(lease: Duration) -> Duration {
    (lease / 3).max(Duration::from_millis(10))
}
