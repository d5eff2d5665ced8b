//! Keelson's sharded fleet (ARCHITECTURE.md §4): shard units, the pure assignment
//! algorithms shared by every replica, observer-clock liveness, and the membership and
//! claim protocol over Kubernetes Leases or etcd.

pub mod assignment;
pub mod backend;
pub mod liveness;
pub mod manager;
pub mod metrics;
pub mod ownership;
pub mod takeover;
pub mod unit;
