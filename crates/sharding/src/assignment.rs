//! Assignment of shard units to live members: the pure, deterministic algorithms every
//! replica runs on the same inputs to agree on owners without talking to each other.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use crate::unit::{UnitId, UnitLoad, spread_hash};

/// Virtual nodes per member on the consistent-hashing ring.
pub const VIRTUAL_NODES: u32 = 160;

/// Load slack of the bounded-loads ring, in percent: a member accepts a unit while its
/// load stays within `ceil((100 + LOAD_SLACK_PERCENT)% · total / members)`.
pub const LOAD_SLACK_PERCENT: u64 = 10;

/// Errors of this module.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AssignmentError {
    /// The sharding algorithm name is not one Keelson knows.
    #[error("parse sharding algorithm {0:?}: want consistent-hashing, round-robin or legacy")]
    ParseAlgorithm(String),
}

/// A sharding algorithm, named as in Argo CD's `controller.sharding.algorithm`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Algorithm {
    /// Weighted consistent hashing with bounded loads (the default).
    #[default]
    ConsistentHashing,
    /// Units sorted by id, unit `i` to member `i mod n`.
    RoundRobin,
    /// Argo CD's original: FNV-32a of the cluster id mod the member count.
    Legacy,
}

impl Algorithm {
    /// Parses Argo CD's names (`consistent-hashing`, `round-robin`, `legacy`; `hash`
    /// is taken as `legacy`). Surrounding whitespace and case are ignored.
    pub fn parse(name: &str) -> Result<Self, AssignmentError> {
        match name.trim().to_ascii_lowercase().as_str() {
            "consistent-hashing" => Ok(Self::ConsistentHashing),
            "round-robin" => Ok(Self::RoundRobin),
            "legacy" | "hash" => Ok(Self::Legacy),
            _ => Err(AssignmentError::ParseAlgorithm(name.to_owned())),
        }
    }

    /// The canonical name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ConsistentHashing => "consistent-hashing",
            Self::RoundRobin => "round-robin",
            Self::Legacy => "legacy",
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Algorithm {
    type Err = AssignmentError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// The owner of every unit among `members` (the live member set, any order,
/// duplicates ignored). Empty when `members` is empty; otherwise every unit gets
/// exactly one member. A unit pinned to `Some(i)` with `0 ≤ i < n` goes to the `i`-th
/// member in sorted order (Argo CD's shard = replica ordinal); other pins are ignored.
pub fn assign(
    units: &[UnitLoad],
    members: &[String],
    algorithm: Algorithm,
) -> BTreeMap<UnitId, String> {
    let mut sorted: Vec<&str> = members.iter().map(String::as_str).collect();
    sorted.sort_unstable();
    sorted.dedup();
    if sorted.is_empty() {
        return BTreeMap::new();
    }
    let n = sorted.len();
    let mut by_id: Vec<&UnitLoad> = units.iter().collect();
    by_id.sort_by(|a, b| a.unit.cmp(&b.unit));
    by_id.dedup_by(|a, b| a.unit == b.unit);
    let pin = |u: &UnitLoad| {
        u.pinned
            .and_then(|p| usize::try_from(p).ok())
            .filter(|p| *p < n)
    };
    let owner_idx: Vec<(usize, usize)> = match algorithm {
        Algorithm::ConsistentHashing => consistent_hashing(&by_id, &sorted, &pin),
        Algorithm::RoundRobin => by_id
            .iter()
            .enumerate()
            .map(|(i, u)| (i, pin(u).unwrap_or(i % n)))
            .collect(),
        Algorithm::Legacy => by_id
            .iter()
            .enumerate()
            .map(|(i, u)| (i, pin(u).unwrap_or_else(|| legacy_shard(u, n))))
            .collect(),
    };
    owner_idx
        .into_iter()
        .map(|(u, m)| (by_id[u].unit.clone(), sorted[m].to_owned()))
        .collect()
}

/// Argo CD's legacy shard: `fnv32a(id) mod n`, `0` for the in-cluster id `""`. A
/// bucket of a split cluster hashes `id#index` instead.
fn legacy_shard(u: &UnitLoad, n: usize) -> usize {
    let key = match u.unit.bucket {
        None if u.cluster_id.is_empty() => return 0,
        None => u.cluster_id.clone(),
        Some((i, _)) => format!("{}#{i}", u.cluster_id),
    };
    let n32 = u32::try_from(n).unwrap_or(u32::MAX);
    usize::try_from(fnv32a(&key) % n32).unwrap_or(0)
}

/// FNV-1a, 32 bit: the hash Argo CD's legacy sharding uses (Go's `hash/fnv.New32a`),
/// written out so that the shard of a cluster id is the same as Argo CD's.
pub fn fnv32a(s: &str) -> u32 {
    s.bytes().fold(0x811c_9dc5_u32, |h, b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    })
}

/// Bounded-loads consistent hashing; returns `(index into units, index into members)`.
///
/// Pinned units are placed first and count towards loads. The rest are taken
/// heaviest first, then by id; each walks the ring clockwise from the hash of its id
/// and goes to the first member that is empty or stays within capacity; if none
/// does, to the least loaded member (first met on the walk among equals).
fn consistent_hashing(
    units: &[&UnitLoad],
    members: &[&str],
    pin: &dyn Fn(&UnitLoad) -> Option<usize>,
) -> Vec<(usize, usize)> {
    let n = members.len();
    let ring = build_ring(members);
    let total: u128 = units.iter().map(|u| u128::from(u.weight)).sum();
    let denom = 100 * n as u128;
    let capacity = (total * u128::from(100 + LOAD_SLACK_PERCENT)).div_ceil(denom);
    let mut load = vec![0u128; n];
    let mut out = Vec::with_capacity(units.len());
    let mut free = Vec::new();
    for (i, u) in units.iter().enumerate() {
        match pin(u) {
            Some(m) => {
                load[m] += u128::from(u.weight);
                out.push((i, m));
            }
            None => free.push(i),
        }
    }
    free.sort_by(|a, b| {
        units[*b]
            .weight
            .cmp(&units[*a].weight)
            .then_with(|| units[*a].unit.cmp(&units[*b].unit))
    });
    let mut seen = vec![false; n];
    for i in free {
        let w = u128::from(units[i].weight);
        let start = spread_hash(&units[i].unit.to_string());
        let from = ring.partition_point(|(pos, _)| *pos < start);
        seen.iter_mut().for_each(|s| *s = false);
        let mut chosen = None;
        let mut fallback: Option<usize> = None;
        for k in 0..ring.len() {
            let m = ring[(from + k) % ring.len()].1;
            if std::mem::replace(&mut seen[m], true) {
                continue;
            }
            if load[m] == 0 || load[m] + w <= capacity {
                chosen = Some(m);
                break;
            }
            if fallback.is_none_or(|f| load[m] < load[f]) {
                fallback = Some(m);
            }
        }
        let m = chosen.or(fallback).unwrap_or(0);
        load[m] += w;
        out.push((i, m));
    }
    out
}

/// The ring: `VIRTUAL_NODES` points per member at `spread_hash("member#v")`, sorted
/// by position, then member, so equal positions resolve the same everywhere.
fn build_ring(members: &[&str]) -> Vec<(u64, usize)> {
    let mut ring = Vec::with_capacity(members.len() * VIRTUAL_NODES as usize);
    for (m, name) in members.iter().enumerate() {
        for v in 0..VIRTUAL_NODES {
            ring.push((spread_hash(&format!("{name}#{v}")), m));
        }
    }
    ring.sort_unstable();
    ring
}

/// App weight per member in `assignment` (members owning nothing are absent).
pub fn loads(assignment: &BTreeMap<UnitId, String>, units: &[UnitLoad]) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    for u in units {
        if let Some(m) = assignment.get(&u.unit) {
            *out.entry(m.clone()).or_insert(0) += u.weight;
        }
    }
    out
}

/// Max / mean of app weight per member over `members` (members owning nothing count
/// as 0). `1.0` when there are no members or no weight.
pub fn balance(
    assignment: &BTreeMap<UnitId, String>,
    units: &[UnitLoad],
    members: &[String],
) -> f64 {
    let per = loads(assignment, units);
    let mut names: Vec<&String> = members.iter().collect();
    names.sort_unstable();
    names.dedup();
    let total: u64 = names
        .iter()
        .map(|m| per.get(*m).copied().unwrap_or(0))
        .sum();
    let max = names
        .iter()
        .map(|m| per.get(*m).copied().unwrap_or(0))
        .max()
        .unwrap_or(0);
    if names.is_empty() || total == 0 {
        return 1.0;
    }
    max as f64 * names.len() as f64 / total as f64
}

/// The units whose owner differs between `before` and `after` (including units
/// present in only one of them), sorted.
pub fn moved(before: &BTreeMap<UnitId, String>, after: &BTreeMap<UnitId, String>) -> Vec<UnitId> {
    let mut out: Vec<UnitId> = before
        .iter()
        .filter(|(u, m)| after.get(*u) != Some(*m))
        .map(|(u, _)| u.clone())
        .collect();
    out.extend(after.keys().filter(|u| !before.contains_key(*u)).cloned());
    out.sort();
    out
}

#[cfg(test)]
mod tests;
