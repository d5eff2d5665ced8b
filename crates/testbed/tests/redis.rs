//! redis-server and a Sentinel group: PING, replication, and a real failover.

use std::time::Duration;

use keelson_testbed::{Redis, RespValue, SentinelGroup};

#[test]
fn redis_answers_ping_and_commands() -> anyhow::Result<()> {
    let redis = Redis::start()?;
    redis.ping()?;
    assert_eq!(
        redis.command(&["SET", "k", "v"])?,
        RespValue::Simple("OK".into())
    );
    assert_eq!(
        redis.command(&["GET", "k"])?,
        RespValue::Bulk(Some("v".into()))
    );
    assert_eq!(redis.role()?, "master");
    Ok(())
}

#[test]
fn replica_follows_master() -> anyhow::Result<()> {
    let master = Redis::start()?;
    let replica = Redis::start_replica_of(&master)?;
    assert_eq!(replica.role()?, "slave");
    master.command(&["SET", "replicated", "yes"])?;
    let mut seen = None;
    for _ in 0..100 {
        seen = replica
            .command(&["GET", "replicated"])?
            .as_text()
            .map(str::to_string);
        if seen.is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(seen.as_deref(), Some("yes"));
    Ok(())
}

#[test]
fn sentinel_group_fails_over_when_the_master_dies() -> anyhow::Result<()> {
    let mut group = SentinelGroup::start("keelson", 1, 3)?;
    assert_eq!(group.master_name(), "keelson");
    assert_eq!(group.sentinel_addrs().len(), 3);
    let before = group.master_addr()?;
    assert_eq!(before, group.nodes()[0].addr());

    let killed = group.kill_master()?;
    assert_eq!(killed, before);
    let after = group.wait_for_failover(Duration::from_secs(60))?;
    assert_ne!(after, before);
    assert_eq!(after, group.nodes()[1].addr());
    assert_eq!(group.master_addr()?, after);
    assert_eq!(group.nodes()[1].role()?, "master");
    Ok(())
}
