//! Shard units: what a replica owns (a cluster, or one bucket of a split cluster's
//! apps), the stable hashes every replica must agree on, and the cluster → units split.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Most buckets one cluster is ever split into, whatever the annotation or the
/// `max_apps_per_unit` arithmetic asks for: every unit is a claim object, so an
/// unbounded split would turn one mis-set annotation into millions of objects.
pub const MAX_BUCKETS: u32 = 1024;

/// Errors of this module.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum UnitError {
    /// The text has no server part.
    #[error("parse unit id {0:?}: empty server")]
    ParseServer(String),
    /// The `#i/k` suffix is malformed or out of range.
    #[error("parse unit id {text:?}: invalid bucket {bucket:?} (want i/k with i < k)")]
    ParseBucket {
        /// The whole text.
        text: String,
        /// The part after `#`.
        bucket: String,
    },
}

/// One unit of work in the fleet: a whole cluster (`bucket: None`) or bucket
/// `index` of `count` of a cluster whose apps are split by [`bucket_of`].
///
/// Ordered by server, then bucket (whole cluster first), which is the deterministic
/// order every algorithm relies on.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct UnitId {
    /// Cluster API server URL (`spec.destination.server` of the apps it holds).
    pub server: String,
    /// `(index, count)` when the cluster is split into `count` buckets.
    pub bucket: Option<(u32, u32)>,
}

impl UnitId {
    /// A whole-cluster unit.
    pub fn cluster(server: impl Into<String>) -> Self {
        Self {
            server: server.into(),
            bucket: None,
        }
    }

    /// Bucket `index` of `count` of `server`.
    pub fn bucket(server: impl Into<String>, index: u32, count: u32) -> Self {
        Self {
            server: server.into(),
            bucket: Some((index, count)),
        }
    }

    /// A name usable as a Kubernetes object-name suffix and an etcd key segment:
    /// `u-<16 lowercase hex digits of stable_hash(server)>` plus `-<i>of<k>` for a
    /// bucket, e.g. `u-1a2b3c4d5e6f7a8b-2of4`. At most 42 characters, `[a-z0-9-]` only.
    pub fn name(&self) -> String {
        let h = stable_hash(&self.server);
        match self.bucket {
            None => format!("u-{h:016x}"),
            Some((i, k)) => format!("u-{h:016x}-{i}of{k}"),
        }
    }

    /// Whether an app of `server` with `app_key` belongs to this unit.
    pub fn contains_app(&self, server: &str, app_key: &str) -> bool {
        if self.server != server {
            return false;
        }
        match self.bucket {
            None => true,
            Some((i, k)) => bucket_of(app_key, k) == i,
        }
    }
}

impl fmt::Display for UnitId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.bucket {
            None => f.write_str(&self.server),
            Some((i, k)) => write!(f, "{}#{i}/{k}", self.server),
        }
    }
}

impl FromStr for UnitId {
    type Err = UnitError;

    /// Parses [`Display`](fmt::Display) output. A trailing `#<digits>/<digits>` is
    /// always read as a bucket (server URLs carry no such fragment); any other `#`
    /// stays part of the server.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let Some((server, suffix)) = text.rsplit_once('#') else {
            return whole(text);
        };
        let Some((i, k)) = suffix.split_once('/') else {
            return whole(text);
        };
        let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        if !digits(i) || !digits(k) {
            return whole(text);
        }
        let bad = || UnitError::ParseBucket {
            text: text.to_owned(),
            bucket: suffix.to_owned(),
        };
        let i: u32 = i.parse().map_err(|_| bad())?;
        let k: u32 = k.parse().map_err(|_| bad())?;
        if i >= k {
            return Err(bad());
        }
        if server.is_empty() {
            return Err(UnitError::ParseServer(text.to_owned()));
        }
        Ok(Self::bucket(server, i, k))
    }
}

fn whole(text: &str) -> Result<UnitId, UnitError> {
    if text.is_empty() {
        return Err(UnitError::ParseServer(text.to_owned()));
    }
    Ok(UnitId::cluster(text))
}

impl TryFrom<String> for UnitId {
    type Error = UnitError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<UnitId> for String {
    fn from(u: UnitId) -> Self {
        u.to_string()
    }
}

/// FNV-1a, 64 bit, over the UTF-8 bytes of `s`.
///
/// Written by hand on purpose: every replica, of every release, must compute the
/// same value for the same text, or two replicas disagree on who owns a unit.
/// `std`'s `DefaultHasher` is explicitly unspecified across releases (and
/// `RandomState` is seeded per process), so it cannot be used here; FNV-1a is fixed
/// by its published offset basis and prime.
pub fn stable_hash(s: &str) -> u64 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    s.bytes()
        .fold(OFFSET, |h, b| (h ^ u64::from(b)).wrapping_mul(PRIME))
}

/// [`stable_hash`] followed by a fixed 64-bit finalizer (xor-shift / multiply, the
/// MurmurHash3 `fmix64` constants), for uses that need every bit well spread.
///
/// FNV-1a alone is weak there: texts differing only in their last byte (`m#1`,
/// `m#2`, …) land within ~2^48 of each other on a 2^64 ring, and its low bits are
/// poor for `mod` by a power of two. Equally stable across replicas and releases.
pub fn spread_hash(s: &str) -> u64 {
    let mut z = stable_hash(s);
    z ^= z >> 33;
    z = z.wrapping_mul(0xff51_afd7_ed55_8ccd);
    z ^= z >> 33;
    z = z.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    z ^ (z >> 33)
}

/// The bucket (in `0..count`) that the app with `app_key` falls in when its cluster
/// is split into `count` buckets. `count` 0 or 1 gives bucket 0.
pub fn bucket_of(app_key: &str, count: u32) -> u32 {
    if count <= 1 {
        return 0;
    }
    // The remainder is < count ≤ u32::MAX, so the conversion cannot fail.
    u32::try_from(spread_hash(app_key) % u64::from(count)).unwrap_or(0)
}

/// The unit that owns the app `app_key` (`namespace/name`) of cluster `server`, when
/// that cluster has `units_of_cluster` units (0 or 1: the whole cluster).
pub fn unit_of_app(server: &str, app_key: &str, units_of_cluster: u32) -> UnitId {
    if units_of_cluster <= 1 {
        UnitId::cluster(server)
    } else {
        UnitId::bucket(
            server,
            bucket_of(app_key, units_of_cluster),
            units_of_cluster,
        )
    }
}

/// What the assignment needs to know about one cluster.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ClusterInfo {
    /// API server URL.
    pub server: String,
    /// The cluster Secret's uid; `""` for the in-cluster destination.
    pub id: String,
    /// Number of apps targeting the cluster.
    pub apps: u64,
    /// The `keelson.io/shard-buckets` annotation, when set.
    pub buckets: Option<u32>,
    /// The cluster Secret's `shard` field, when set.
    pub pinned_shard: Option<i64>,
    /// [`spread_hash`] of every app key targeting the cluster, when the caller knows
    /// them: a split cluster's buckets are then weighed by their real app counts
    /// instead of an even estimate.
    pub app_hashes: Vec<u64>,
}

/// One unit with the figures the algorithms weigh it by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnitLoad {
    /// The unit.
    pub unit: UnitId,
    /// Apps in the unit (estimated evenly for a split cluster).
    pub weight: u64,
    /// The cluster's `shard` pin.
    pub pinned: Option<i64>,
    /// The cluster Secret's uid (`""` in-cluster), used by the legacy algorithm.
    pub cluster_id: String,
}

/// How many units `cluster` becomes: its `buckets` annotation when set (≥ 2 splits),
/// else `ceil(apps / max)` when it has more than `max_apps_per_unit` apps, else 1.
/// Capped at [`MAX_BUCKETS`].
pub fn unit_count(cluster: &ClusterInfo, max_apps_per_unit: Option<u64>) -> u32 {
    let k = match (cluster.buckets, max_apps_per_unit) {
        (Some(b), _) => u64::from(b),
        (None, Some(max)) if max > 0 && cluster.apps > max => cluster.apps.div_ceil(max),
        _ => 1,
    };
    u32::try_from(k.clamp(1, u64::from(MAX_BUCKETS))).unwrap_or(MAX_BUCKETS)
}

/// Apps per bucket of a cluster split into `k`: counted from the app hashes when they
/// cover every app, else `apps / k` with the remainder on the first buckets.
fn bucket_weights(c: &ClusterInfo, k: u32) -> Vec<u64> {
    let k64 = u64::from(k);
    if !c.app_hashes.is_empty() && c.app_hashes.len() as u64 == c.apps {
        let mut counts = vec![0u64; k as usize];
        for h in &c.app_hashes {
            if let Some(slot) = usize::try_from(h % k64)
                .ok()
                .and_then(|i| counts.get_mut(i))
            {
                *slot += 1;
            }
        }
        return counts;
    }
    let (base, rem) = (c.apps / k64, c.apps % k64);
    (0..k64).map(|i| base + u64::from(i < rem)).collect()
}

/// The units of all `clusters`, sorted by [`UnitId`].
///
/// A split cluster's apps are spread over its `k` buckets by [`bucket_of`]; each
/// bucket's weight is its real app count when [`ClusterInfo::app_hashes`] is given,
/// else `apps / k` with the remainder one app each on the first buckets. Every bucket
/// inherits the cluster's pin and id.
pub fn units_for(clusters: &[ClusterInfo], max_apps_per_unit: Option<u64>) -> Vec<UnitLoad> {
    let mut out = Vec::with_capacity(clusters.len());
    for c in clusters {
        let k = unit_count(c, max_apps_per_unit);
        if k == 1 {
            out.push(UnitLoad {
                unit: UnitId::cluster(c.server.clone()),
                weight: c.apps,
                pinned: c.pinned_shard,
                cluster_id: c.id.clone(),
            });
            continue;
        }
        let weights = bucket_weights(c, k);
        for (i, weight) in (0..k).zip(weights) {
            out.push(UnitLoad {
                unit: UnitId::bucket(c.server.clone(), i, k),
                weight,
                pinned: c.pinned_shard,
                cluster_id: c.id.clone(),
            });
        }
    }
    out.sort_by(|a, b| a.unit.cmp(&b.unit));
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn fnv1a_64_matches_published_vectors() {
        assert_eq!(stable_hash(""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(stable_hash("a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(stable_hash("foobar"), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn display_and_parse_round_trip() {
        let whole = UnitId::cluster("https://10.0.0.1:6443");
        assert_eq!(whole.to_string(), "https://10.0.0.1:6443");
        assert_eq!(whole.to_string().parse::<UnitId>().unwrap(), whole);
        let b = UnitId::bucket("https://kubernetes.default.svc", 2, 4);
        assert_eq!(b.to_string(), "https://kubernetes.default.svc#2/4");
        assert_eq!(b.to_string().parse::<UnitId>().unwrap(), b);
        // A '#' that is not a bucket suffix stays in the server.
        let odd: UnitId = "https://x#frag".parse().unwrap();
        assert_eq!(odd, UnitId::cluster("https://x#frag"));
        assert!(matches!(
            "s#4/4".parse::<UnitId>(),
            Err(UnitError::ParseBucket { .. })
        ));
        assert!(matches!(
            "s#1/0".parse::<UnitId>(),
            Err(UnitError::ParseBucket { .. })
        ));
        assert!(matches!(
            "s#1/99999999999".parse::<UnitId>(),
            Err(UnitError::ParseBucket { .. })
        ));
        assert!(matches!(
            "".parse::<UnitId>(),
            Err(UnitError::ParseServer(_))
        ));
        assert!(matches!(
            "#0/2".parse::<UnitId>(),
            Err(UnitError::ParseServer(_))
        ));
        let json = serde_json::to_string(&b).unwrap();
        assert_eq!(json, "\"https://kubernetes.default.svc#2/4\"");
        assert_eq!(serde_json::from_str::<UnitId>(&json).unwrap(), b);
    }

    #[test]
    fn name_is_a_valid_object_name_suffix() {
        let b = UnitId::bucket("https://kubernetes.default.svc", 2, 4);
        let n = b.name();
        let h = stable_hash("https://kubernetes.default.svc");
        assert_eq!(n, format!("u-{h:016x}-2of4"));
        assert!(
            n.bytes()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-')
        );
        assert_eq!(
            UnitId::cluster("https://kubernetes.default.svc")
                .name()
                .len(),
            18
        );
        let long = UnitId::bucket("s", u32::MAX - 1, u32::MAX).name();
        assert!(long.len() <= 42, "{long}");
    }

    #[test]
    fn ordering_puts_whole_cluster_before_buckets() {
        let mut v = [
            UnitId::bucket("b", 1, 2),
            UnitId::cluster("b"),
            UnitId::bucket("a", 0, 2),
            UnitId::bucket("b", 0, 2),
        ];
        v.sort();
        let s: Vec<String> = v.iter().map(ToString::to_string).collect();
        assert_eq!(s, ["a#0/2", "b", "b#0/2", "b#1/2"]);
    }

    #[test]
    fn split_buckets_weigh_their_real_apps() {
        let keys: Vec<String> = (0..300).map(|i| format!("argocd/app-{i}")).collect();
        let info = ClusterInfo {
            server: "https://big".into(),
            apps: 300,
            buckets: Some(16),
            app_hashes: keys.iter().map(|k| spread_hash(k)).collect(),
            ..ClusterInfo::default()
        };
        let units = units_for(&[info], None);
        assert_eq!(units.len(), 16);
        for u in &units {
            let (i, k) = u.unit.bucket.unwrap();
            let real = keys.iter().filter(|key| bucket_of(key, k) == i).count() as u64;
            assert_eq!(u.weight, real, "bucket {i}");
        }
        assert_eq!(units.iter().map(|u| u.weight).sum::<u64>(), 300);
    }

    fn cluster(server: &str, apps: u64) -> ClusterInfo {
        ClusterInfo {
            server: server.into(),
            id: format!("uid-{server}"),
            apps,
            buckets: None,
            pinned_shard: None,
            app_hashes: Vec::new(),
        }
    }

    #[test]
    fn units_for_splits_by_annotation_then_by_max() {
        let mut annotated = cluster("c", 10);
        annotated.buckets = Some(3);
        annotated.pinned_shard = Some(1);
        let clusters = vec![cluster("b", 250), annotated, cluster("a", 100)];
        let units = units_for(&clusters, Some(100));
        let got: Vec<(String, u64)> = units
            .iter()
            .map(|u| (u.unit.to_string(), u.weight))
            .collect();
        assert_eq!(
            got,
            [
                ("a".to_owned(), 100),
                ("b#0/3".to_owned(), 84),
                ("b#1/3".to_owned(), 83),
                ("b#2/3".to_owned(), 83),
                ("c#0/3".to_owned(), 4),
                ("c#1/3".to_owned(), 3),
                ("c#2/3".to_owned(), 3),
            ]
        );
        assert!(
            units[4..]
                .iter()
                .all(|u| u.pinned == Some(1) && u.cluster_id == "uid-c")
        );
        // No max: one unit per unannotated cluster; annotation 1 or 0 means whole.
        let mut one = cluster("d", 5);
        one.buckets = Some(1);
        let mut zero = cluster("e", 5);
        zero.buckets = Some(0);
        let units = units_for(&[cluster("b", 250), one, zero], None);
        assert!(units.iter().all(|u| u.unit.bucket.is_none()));
        // The cap holds.
        assert_eq!(unit_count(&cluster("f", 1 << 40), Some(1)), MAX_BUCKETS);
    }

    #[test]
    fn unit_of_app_matches_contains_app() {
        for k in [0, 1, 2, 3, 8] {
            for a in 0..200 {
                let key = format!("argocd/app-{a}");
                let u = unit_of_app("s", &key, k);
                assert!(u.contains_app("s", &key));
                assert!(!u.contains_app("t", &key));
                assert_eq!(u.bucket.is_some(), k > 1);
            }
        }
    }

    #[test]
    fn bucket_of_spreads_apps_evenly() {
        for k in [2u32, 3, 4, 8, 16] {
            let mut counts = vec![0u32; k as usize];
            let n = 16_000u32;
            for a in 0..n {
                counts[bucket_of(&format!("argocd/app-{a}"), k) as usize] += 1;
            }
            let mean = f64::from(n) / f64::from(k);
            for c in counts {
                assert!((f64::from(c) - mean).abs() / mean < 0.1, "k={k} count={c}");
            }
        }
    }

    proptest! {
        #[test]
        fn parse_inverts_display(server in "[a-z:/.0-9]{1,30}(#[a-z0-9]{0,5})?", bucket in proptest::option::of((0u32..1000, 1u32..1000))) {
            // A '#' fragment without '/' can never look like a bucket suffix.
            let bucket = bucket.map(|(i, k)| (i % k, k));
            let id = UnitId { server, bucket };
            prop_assert_eq!(id.to_string().parse::<UnitId>(), Ok(id.clone()));
            prop_assert!(id.name().starts_with("u-"));
        }
    }
}
