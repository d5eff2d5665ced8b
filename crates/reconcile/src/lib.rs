//! Keelson's reconcile logic, pure part: everything the controller decides about an
//! Application from data alone — comparing desired with live objects
//! ([`compare`]), enforcing AppProject rules ([`project`]), deciding automated syncs and
//! self-heal ([`automation`]) and keeping the revision history and rollbacks
//! ([`history`]). No clients, no clocks read behind the caller's back: the controller
//! crate does the I/O and calls these functions.

pub mod automation;
pub mod compare;
pub mod history;
pub mod project;
