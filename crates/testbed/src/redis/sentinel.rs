//! A Redis Sentinel group: one master, N replicas and M `redis-sentinel` processes that
//! monitor it with a 1 s down-after and a 3 s failover timeout, for failover tests.

use std::net::SocketAddr;
use std::process::Command;
use std::time::{Duration, Instant};

use tempfile::TempDir;

use super::resp::{RespValue, pairs, resp_command};
use super::{Redis, info, ping, temp_dir};
use crate::error::{Result, TestbedError};
use crate::ports::{free_port, retry_port_conflicts};
use crate::process::{ChildGuard, ERROR_LOG_LINES};
use crate::tools::find_tool;

/// How long a sentinel start waits for `PING` → `PONG`.
const SENTINEL_READY_TIMEOUT: Duration = Duration::from_secs(20);

/// How long the group waits for every sentinel to see all replicas and peers.
const DISCOVERY_TIMEOUT: Duration = Duration::from_secs(30);

/// Pause between polls in bounded waits.
const POLL: Duration = Duration::from_millis(100);

/// One `redis-sentinel` process.
#[derive(Debug)]
struct Sentinel {
    process: ChildGuard,
    addr: SocketAddr,
    _dir: TempDir,
}

/// A monitored master, its replicas and the sentinels; everything is killed when dropped.
#[derive(Debug)]
pub struct SentinelGroup {
    // Sentinels first: they stop before the servers they watch.
    sentinels: Vec<Sentinel>,
    nodes: Vec<Redis>,
    master_name: String,
    known_master: SocketAddr,
}

impl SentinelGroup {
    /// Starts a master, `replicas` replicas and `sentinels` sentinels (quorum: a majority),
    /// then waits until every sentinel knows all replicas and all other sentinels.
    pub fn start(master_name: &str, replicas: usize, sentinels: usize) -> Result<SentinelGroup> {
        let master = Redis::start()?;
        let master_addr = master.addr();
        let mut nodes = vec![master];
        for _ in 0..replicas {
            let replica = Redis::start_replica_of(&nodes[0])?;
            nodes.push(replica);
        }
        let quorum = sentinels / 2 + 1;
        let mut group = SentinelGroup {
            sentinels: Vec::with_capacity(sentinels),
            nodes,
            master_name: master_name.to_string(),
            known_master: master_addr,
        };
        for _ in 0..sentinels {
            let sentinel =
                retry_port_conflicts(|| Sentinel::start(&group.master_name, master_addr, quorum))?;
            group.sentinels.push(sentinel);
        }
        group.wait_for_discovery(replicas, sentinels)?;
        Ok(group)
    }

    fn wait_for_discovery(&mut self, replicas: usize, sentinels: usize) -> Result<()> {
        let deadline = Instant::now() + DISCOVERY_TIMEOUT;
        let name = self.master_name.clone();
        for sentinel in &mut self.sentinels {
            let addr = sentinel.addr;
            let remaining = deadline.saturating_duration_since(Instant::now());
            sentinel.process.wait_ready(remaining, || {
                let reply = resp_command(addr, &["SENTINEL", "MASTER", &name])
                    .map_err(|e| e.to_string())?;
                let fields = pairs(&reply);
                let get = |k: &str| {
                    fields
                        .iter()
                        .find(|(key, _)| key == k)
                        .map(|(_, v)| v.as_str())
                };
                let seen_replicas = get("num-slaves").unwrap_or("?");
                let seen_peers = get("num-other-sentinels").unwrap_or("?");
                if seen_replicas == replicas.to_string()
                    && seen_peers == sentinels.saturating_sub(1).to_string()
                {
                    Ok(())
                } else {
                    Err(format!(
                        "sentinel sees {seen_replicas}/{replicas} replicas and \
                         {seen_peers}/{} other sentinels",
                        sentinels.saturating_sub(1)
                    ))
                }
            })?;
        }
        Ok(())
    }

    /// The monitored master's name.
    pub fn master_name(&self) -> &str {
        &self.master_name
    }

    /// Sentinel addresses as `127.0.0.1:<port>` strings.
    pub fn sentinel_addrs(&self) -> Vec<String> {
        self.sentinels.iter().map(|s| s.addr.to_string()).collect()
    }

    /// The current master according to the first sentinel that answers
    /// `SENTINEL get-master-addr-by-name`.
    pub fn master_addr(&self) -> Result<SocketAddr> {
        let mut last = None;
        for sentinel in &self.sentinels {
            match master_addr_from(sentinel.addr, &self.master_name) {
                Ok(addr) => return Ok(addr),
                Err(e) => last = Some(e),
            }
        }
        Err(TestbedError::Protocol {
            component: "redis-sentinel".to_string(),
            detail: last.unwrap_or_else(|| "the group has no sentinels".to_string()),
        })
    }

    /// Kills (SIGKILL) the server that the sentinels currently report as master and
    /// returns its address.
    pub fn kill_master(&mut self) -> Result<SocketAddr> {
        let addr = self.master_addr()?;
        let node = self
            .nodes
            .iter_mut()
            .find(|n| n.addr() == addr)
            .ok_or_else(|| TestbedError::Protocol {
                component: "redis-sentinel".to_string(),
                detail: format!("reported master {addr} is not a server of this group"),
            })?;
        node.kill9()?;
        Ok(addr)
    }

    /// Waits until every live sentinel reports a master other than the last known one and
    /// that server says it is a master; returns the new master's address.
    pub fn wait_for_failover(&mut self, timeout: Duration) -> Result<SocketAddr> {
        let start = Instant::now();
        let old = self.known_master;
        let mut detail = String::from("not polled yet");
        while start.elapsed() < timeout {
            match self.failover_state(old) {
                Ok(new) => {
                    tracing::debug!(%old, %new, elapsed = ?start.elapsed(), "failover done");
                    self.known_master = new;
                    return Ok(new);
                }
                Err(why) => detail = why,
            }
            std::thread::sleep(POLL);
        }
        let logs: Vec<String> = self
            .sentinels
            .iter()
            .map(|s| s.process.log_tail(ERROR_LOG_LINES / 3))
            .collect();
        Err(TestbedError::Timeout {
            component: format!("sentinel group {}", self.master_name),
            what: format!("failover away from {old}"),
            waited: start.elapsed(),
            detail: format!("{detail}\n{}", logs.join("\n")),
        })
    }

    fn failover_state(&mut self, old: SocketAddr) -> Result<SocketAddr, String> {
        let mut agreed = None;
        for sentinel in &mut self.sentinels {
            if !sentinel.process.is_running() {
                continue;
            }
            let addr = master_addr_from(sentinel.addr, &self.master_name)?;
            if addr == old {
                return Err(format!("sentinel {} still reports {old}", sentinel.addr));
            }
            match agreed {
                None => agreed = Some(addr),
                Some(a) if a == addr => {}
                Some(a) => return Err(format!("sentinels disagree: {a} vs {addr}")),
            }
        }
        let new = agreed.ok_or_else(|| "no live sentinel".to_string())?;
        let replication = info(new, "replication")?;
        match super::resp::info_field(&replication, "role") {
            Some("master") => Ok(new),
            role => Err(format!("new master {new} reports role {role:?}")),
        }
    }

    /// The servers of the group; index 0 is the initial master.
    pub fn nodes(&self) -> &[Redis] {
        &self.nodes
    }

    /// Mutable access to the servers (pause, kill).
    pub fn nodes_mut(&mut self) -> &mut [Redis] {
        &mut self.nodes
    }

    /// The process of sentinel `i` (pause, kill, logs).
    pub fn sentinel_process(&mut self, i: usize) -> Result<&mut ChildGuard> {
        self.sentinels
            .get_mut(i)
            .map(|s| &mut s.process)
            .ok_or(TestbedError::NoSuchIndex {
                component: "sentinel group".to_string(),
                what: "sentinel",
                index: i,
            })
    }
}

impl Sentinel {
    fn start(master_name: &str, master: SocketAddr, quorum: usize) -> Result<Sentinel> {
        let program = find_tool("redis-sentinel")?;
        let dir = temp_dir("keelson-sentinel-")?;
        let addr = SocketAddr::from(([127, 0, 0, 1], free_port()?));
        let config = sentinel_config(addr.port(), dir.path(), master_name, master, quorum);
        let config_path = dir.path().join("sentinel.conf");
        std::fs::write(&config_path, config).map_err(|source| TestbedError::Io {
            step: "writing a sentinel config",
            path: config_path.display().to_string(),
            source,
        })?;
        let mut cmd = Command::new(program);
        cmd.arg(&config_path);
        let mut process = ChildGuard::spawn("redis-sentinel", cmd, dir.path())?;
        process.wait_ready(SENTINEL_READY_TIMEOUT, || ping(addr))?;
        Ok(Sentinel {
            process,
            addr,
            _dir: dir,
        })
    }
}

/// The sentinel configuration file text (sentinels rewrite it, so it lives in a temp dir).
fn sentinel_config(
    port: u16,
    dir: &std::path::Path,
    name: &str,
    master: SocketAddr,
    quorum: usize,
) -> String {
    format!(
        "port {port}\n\
         bind 127.0.0.1\n\
         dir \"{dir}\"\n\
         sentinel resolve-hostnames no\n\
         sentinel monitor {name} {ip} {mport} {quorum}\n\
         sentinel down-after-milliseconds {name} 1000\n\
         sentinel failover-timeout {name} 3000\n\
         sentinel parallel-syncs {name} 1\n",
        dir = dir.display(),
        ip = master.ip(),
        mport = master.port(),
    )
}

fn master_addr_from(sentinel: SocketAddr, name: &str) -> Result<SocketAddr, String> {
    let reply = resp_command(sentinel, &["SENTINEL", "get-master-addr-by-name", name])
        .map_err(|e| e.to_string())?;
    let parts: Vec<&str> = reply
        .as_array()
        .map(|items| items.iter().filter_map(RespValue::as_text).collect())
        .unwrap_or_default();
    match parts.as_slice() {
        [ip, port] => format!("{ip}:{port}")
            .parse()
            .map_err(|e| format!("bad master address {ip}:{port}: {e}")),
        _ => Err(format!("sentinel {sentinel} answered {reply:?}")),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn config_monitors_the_master_with_quorum() {
        let text = sentinel_config(
            26379,
            std::path::Path::new("/tmp/x"),
            "mymaster",
            "127.0.0.1:6379".parse().unwrap(),
            2,
        );
        assert!(text.contains("port 26379\n"));
        assert!(text.contains("sentinel monitor mymaster 127.0.0.1 6379 2\n"));
        assert!(text.contains("sentinel down-after-milliseconds mymaster 1000\n"));
        assert!(text.contains("sentinel failover-timeout mymaster 3000\n"));
        assert!(text.contains("sentinel resolve-hostnames no\n"));
        assert!(text.contains("bind 127.0.0.1\n"));
    }
}
