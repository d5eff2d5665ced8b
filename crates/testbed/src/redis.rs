//! `redis-server` instances (standalone or replica) on free loopback ports with temp dirs and
//! no persistence; Sentinel groups live in [`sentinel`], the RESP wire client in [`resp`].

mod resp;
mod sentinel;

use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use tempfile::TempDir;

pub use resp::{RespValue, resp_command};
pub use sentinel::SentinelGroup;

use crate::error::{Result, TestbedError};
use crate::ports::{free_port, retry_port_conflicts};
use crate::process::ChildGuard;
use crate::tools::find_tool;

/// How long a Redis start waits for `PING` to answer `PONG`.
pub const REDIS_READY_TIMEOUT: Duration = Duration::from_secs(20);

/// How long a replica start waits for its link to the master to come up.
pub const REPLICA_SYNC_TIMEOUT: Duration = Duration::from_secs(30);

/// A running `redis-server`; killed when dropped.
#[derive(Debug)]
pub struct Redis {
    process: ChildGuard,
    addr: SocketAddr,
    dir: TempDir,
}

impl Redis {
    /// Starts a standalone server and waits for `PING` → `PONG`.
    pub fn start() -> Result<Redis> {
        retry_port_conflicts(|| Redis::spawn("redis", &[]))
    }

    /// Starts a replica of `master` and waits until its replication link is up.
    pub fn start_replica_of(master: &Redis) -> Result<Redis> {
        let master_port = master.addr.port().to_string();
        let mut replica = retry_port_conflicts(|| {
            Redis::spawn("redis-replica", &["--replicaof", "127.0.0.1", &master_port])
        })?;
        let addr = replica.addr;
        replica
            .process
            .wait_ready(REPLICA_SYNC_TIMEOUT, || replica_link_up(addr))?;
        Ok(replica)
    }

    fn spawn(component: &str, extra: &[&str]) -> Result<Redis> {
        let server = find_tool("redis-server")?;
        let dir = temp_dir("keelson-redis-")?;
        let addr = SocketAddr::from(([127, 0, 0, 1], free_port()?));
        let mut cmd = Command::new(server);
        cmd.arg("--port")
            .arg(addr.port().to_string())
            .arg("--bind")
            .arg("127.0.0.1")
            .arg("--save")
            .arg("")
            .arg("--appendonly")
            .arg("no")
            .arg("--dir")
            .arg(dir.path())
            .args(extra);
        let mut process = ChildGuard::spawn(component, cmd, dir.path())?;
        process.wait_ready(REDIS_READY_TIMEOUT, || ping(addr))?;
        Ok(Redis { process, addr, dir })
    }

    /// The listen address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The listen port.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// `redis://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("redis://{}", self.addr)
    }

    /// Sends one command and returns the reply.
    pub fn command(&self, args: &[&str]) -> Result<RespValue> {
        resp_command(self.addr, args)
    }

    /// `PING`, expecting `PONG`.
    pub fn ping(&self) -> Result<()> {
        ping(self.addr).map_err(|detail| TestbedError::Protocol {
            component: format!("redis at {}", self.addr),
            detail,
        })
    }

    /// The `role` field of `INFO replication` (`master` or `slave`).
    pub fn role(&self) -> Result<String> {
        let info = info(self.addr, "replication").map_err(|detail| TestbedError::Protocol {
            component: format!("redis at {}", self.addr),
            detail,
        })?;
        resp::info_field(&info, "role")
            .map(str::to_string)
            .ok_or_else(|| TestbedError::Protocol {
                component: format!("redis at {}", self.addr),
                detail: "INFO replication has no role".to_string(),
            })
    }

    /// Kills the server abruptly (SIGKILL).
    pub fn kill9(&mut self) -> Result<()> {
        self.process.kill9()
    }

    /// The server process (pause, resume, logs).
    pub fn process(&mut self) -> &mut ChildGuard {
        &mut self.process
    }

    /// The temp dir holding the server's working dir and logs.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

pub(crate) fn temp_dir(prefix: &str) -> Result<TempDir> {
    tempfile::Builder::new()
        .prefix(prefix)
        .tempdir()
        .map_err(|source| TestbedError::Io {
            step: "creating a temp dir",
            path: std::env::temp_dir().display().to_string(),
            source,
        })
}

/// `PING` → `PONG`, as a readiness probe.
pub(crate) fn ping(addr: SocketAddr) -> Result<(), String> {
    match resp_command(addr, &["PING"]).map_err(|e| e.to_string())? {
        RespValue::Simple(s) if s == "PONG" => Ok(()),
        other => Err(format!("PING answered {other:?}")),
    }
}

/// The text of `INFO <section>`.
pub(crate) fn info(addr: SocketAddr, section: &str) -> Result<String, String> {
    match resp_command(addr, &["INFO", section]).map_err(|e| e.to_string())? {
        RespValue::Bulk(Some(text)) => Ok(text),
        other => Err(format!("INFO answered {other:?}")),
    }
}

fn replica_link_up(addr: SocketAddr) -> Result<(), String> {
    let info = info(addr, "replication")?;
    match resp::info_field(&info, "master_link_status") {
        Some("up") => Ok(()),
        other => Err(format!("master_link_status is {other:?}")),
    }
}
