//! etcd starts on loopback, reports healthy, and is gone after the guard drops.

use keelson_testbed::{Etcd, http_get};

#[test]
fn etcd_starts_healthy_and_stops_on_drop() -> anyhow::Result<()> {
    let mut etcd = Etcd::start()?;
    assert!(etcd.is_healthy());
    let endpoints = etcd.endpoints();
    assert_eq!(endpoints.len(), 1);
    assert!(endpoints[0].starts_with("http://127.0.0.1:"));
    let health = http_get(etcd.client_addr(), "/health").map_err(anyhow::Error::msg)?;
    assert_eq!(health.status, 200);
    assert!(
        health.body.contains(r#""health":"true""#),
        "{}",
        health.body
    );

    let pid = etcd.process().pid();
    let addr = etcd.client_addr();
    drop(etcd);
    assert!(!std::path::Path::new(&format!("/proc/{pid}")).exists());
    assert!(http_get(addr, "/health").is_err());
    Ok(())
}
