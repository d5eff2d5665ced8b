//! Free loopback ports: bind `127.0.0.1:0`, read the port, release it, and remember it in a
//! process-wide registry so two calls in one process never hand out the same port.

use std::collections::HashSet;
use std::net::{Ipv4Addr, SocketAddrV4, TcpListener};
use std::sync::{Mutex, OnceLock};

use crate::error::{Result, TestbedError};

/// Upper bound on bind attempts for one port before giving up.
const MAX_ATTEMPTS: usize = 64;

fn registry() -> &'static Mutex<HashSet<u16>> {
    static REGISTRY: OnceLock<Mutex<HashSet<u16>>> = OnceLock::new();
    REGISTRY.get_or_init(|| Mutex::new(HashSet::new()))
}

/// Returns a loopback TCP port that was free a moment ago and was never returned before by
/// this process.
pub fn free_port() -> Result<u16> {
    for _ in 0..MAX_ATTEMPTS {
        let listener =
            TcpListener::bind(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0)).map_err(|source| {
                TestbedError::Io {
                    step: "binding a free loopback port",
                    path: "127.0.0.1:0".to_string(),
                    source,
                }
            })?;
        let port = listener
            .local_addr()
            .map_err(|source| TestbedError::Io {
                step: "reading a bound port",
                path: "127.0.0.1:0".to_string(),
                source,
            })?
            .port();
        drop(listener);
        let mut taken = registry().lock().unwrap_or_else(|p| p.into_inner());
        if taken.insert(port) {
            return Ok(port);
        }
    }
    Err(TestbedError::Io {
        step: "finding an unused loopback port",
        path: "127.0.0.1".to_string(),
        source: std::io::Error::new(
            std::io::ErrorKind::AddrInUse,
            "every port the kernel offered was already handed out",
        ),
    })
}

/// Returns `n` distinct free loopback ports.
pub fn free_ports(n: usize) -> Result<Vec<u16>> {
    (0..n).map(|_| free_port()).collect()
}

/// Start attempts made by [`retry_port_conflicts`].
pub const START_ATTEMPTS: usize = 3;

/// Runs `start` up to [`START_ATTEMPTS`] times while it fails because a freshly allocated
/// port was taken by another process between allocation and bind.
pub fn retry_port_conflicts<T>(mut start: impl FnMut() -> Result<T>) -> Result<T> {
    let mut attempt = 1;
    loop {
        match start() {
            Err(e) if e.is_port_conflict() && attempt < START_ATTEMPTS => {
                tracing::warn!(%e, attempt, "port conflict, retrying with fresh ports");
                attempt += 1;
            }
            other => return other,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn ports_are_distinct_across_calls_and_threads() {
        let handles: Vec<_> = (0..4)
            .map(|_| std::thread::spawn(|| free_ports(25).unwrap()))
            .collect();
        let mut all = HashSet::new();
        for h in handles {
            for p in h.join().unwrap() {
                assert!(all.insert(p), "port {p} handed out twice");
            }
        }
        assert_eq!(all.len(), 100);
    }

    #[test]
    fn a_returned_port_can_be_bound() {
        let port = free_port().unwrap();
        TcpListener::bind(("127.0.0.1", port)).unwrap();
    }
}
