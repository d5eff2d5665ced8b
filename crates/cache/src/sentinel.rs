//! Finding the current master of a Sentinel-monitored group: ask each sentinel in turn
//! (`SENTINEL get-master-addr-by-name`), starting with the one that answered last, then
//! confirm with `ROLE` that the server really is a master (a sentinel may lag a failover).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use redis::aio::MultiplexedConnection;
use redis::{
    AsyncConnectionConfig, Client, ConnectionAddr, ConnectionInfo, IntoConnectionInfo,
    RedisConnectionInfo, RedisError, Value,
};

/// Why no master could be found or confirmed.
#[derive(Debug, thiserror::Error)]
pub enum SentinelError {
    /// Building the connection settings for a server failed.
    #[error("preparing a connection to {addr}")]
    PreparingConnection {
        /// The server address.
        addr: String,
        /// The redis crate's complaint.
        #[source]
        source: RedisError,
    },
    /// A sentinel could not be reached.
    #[error("connecting to sentinel {sentinel}")]
    ConnectingToSentinel {
        /// The sentinel address.
        sentinel: String,
        /// The connection error.
        #[source]
        source: RedisError,
    },
    /// A sentinel did not answer the master query.
    #[error("asking sentinel {sentinel} for master {master}")]
    AskingForMaster {
        /// The sentinel address.
        sentinel: String,
        /// The master name.
        master: String,
        /// The command error.
        #[source]
        source: RedisError,
    },
    /// A sentinel does not monitor a master of that name.
    #[error("sentinel {sentinel} does not know a master named {master}")]
    FindingMaster {
        /// The sentinel address.
        sentinel: String,
        /// The master name.
        master: String,
    },
    /// A sentinel's answer is not `[host, port]`.
    #[error("reading the master address from sentinel {sentinel}: {answer:?}")]
    ReadingMasterAddress {
        /// The sentinel address.
        sentinel: String,
        /// The answer.
        answer: Vec<String>,
    },
    /// A sentinel did not answer in time.
    #[error("waiting for sentinel {sentinel} for {waited:?}")]
    WaitingForSentinel {
        /// The sentinel address.
        sentinel: String,
        /// The time budget.
        waited: Duration,
    },
    /// Every sentinel failed; the last failure is the source.
    #[error("asking {count} sentinels for master {master}")]
    AskingSentinels {
        /// How many sentinels were asked.
        count: usize,
        /// The master name.
        master: String,
        /// The last sentinel's failure.
        #[source]
        last: Box<SentinelError>,
    },
    /// `ROLE` failed on the reported master.
    #[error("checking the role of {addr}")]
    CheckingRole {
        /// The server address.
        addr: String,
        /// The command error.
        #[source]
        source: RedisError,
    },
    /// The reported master says it is not a master (the failover is still settling).
    #[error("server {addr} reported as master has role {role}")]
    ConfirmingMaster {
        /// The server address.
        addr: String,
        /// The role it reported.
        role: String,
    },
}

/// The sentinels of one master and the credentials for both.
#[derive(Debug)]
pub(crate) struct SentinelTarget {
    sentinels: Vec<(String, u16)>,
    master_name: String,
    password: Option<String>,
    sentinel_password: Option<String>,
    db: i64,
    /// The sentinel that answered last; asked first next time.
    preferred: AtomicUsize,
}

impl SentinelTarget {
    /// A target over already validated `(host, port)` sentinel addresses.
    pub(crate) fn new(
        sentinels: Vec<(String, u16)>,
        master_name: String,
        password: Option<String>,
        sentinel_password: Option<String>,
        db: i64,
    ) -> SentinelTarget {
        SentinelTarget {
            sentinels,
            master_name,
            password,
            sentinel_password,
            db,
            preferred: AtomicUsize::new(0),
        }
    }

    /// Asks the sentinels in turn for the master's address, each within `per_sentinel`.
    pub(crate) async fn discover(
        &self,
        per_sentinel: Duration,
    ) -> Result<(String, u16), SentinelError> {
        let count = self.sentinels.len();
        let first = self.preferred.load(Ordering::Relaxed);
        let mut last = None;
        for i in 0..count {
            let index = (first + i) % count;
            let Some((host, port)) = self.sentinels.get(index) else {
                continue;
            };
            let sentinel = format!("{host}:{port}");
            let asked = tokio::time::timeout(per_sentinel, self.ask(host, *port, &sentinel)).await;
            match asked {
                Ok(Ok(master)) => {
                    self.preferred.store(index, Ordering::Relaxed);
                    return Ok(master);
                }
                Ok(Err(e)) => last = Some(e),
                Err(_) => {
                    last = Some(SentinelError::WaitingForSentinel {
                        sentinel,
                        waited: per_sentinel,
                    })
                }
            }
        }
        Err(SentinelError::AskingSentinels {
            count,
            master: self.master_name.clone(),
            last: Box::new(last.unwrap_or(SentinelError::FindingMaster {
                sentinel: "(none)".to_string(),
                master: self.master_name.clone(),
            })),
        })
    }

    async fn ask(
        &self,
        host: &str,
        port: u16,
        sentinel: &str,
    ) -> Result<(String, u16), SentinelError> {
        let mut settings = RedisConnectionInfo::default().set_skip_set_lib_name();
        if let Some(password) = &self.sentinel_password {
            settings = settings.set_password(password);
        }
        let info = connection_info(host, port, settings)?;
        let mut conn =
            connect(info, None)
                .await
                .map_err(|source| SentinelError::ConnectingToSentinel {
                    sentinel: sentinel.to_string(),
                    source,
                })?;
        let answer: Option<Vec<String>> = redis::cmd("SENTINEL")
            .arg("get-master-addr-by-name")
            .arg(&self.master_name)
            .query_async(&mut conn)
            .await
            .map_err(|source| SentinelError::AskingForMaster {
                sentinel: sentinel.to_string(),
                master: self.master_name.clone(),
                source,
            })?;
        let answer = answer.ok_or_else(|| SentinelError::FindingMaster {
            sentinel: sentinel.to_string(),
            master: self.master_name.clone(),
        })?;
        match answer.as_slice() {
            [host, port] => match port.parse::<u16>() {
                Ok(port) if !host.is_empty() => Ok((host.clone(), port)),
                _ => Err(SentinelError::ReadingMasterAddress {
                    sentinel: sentinel.to_string(),
                    answer,
                }),
            },
            _ => Err(SentinelError::ReadingMasterAddress {
                sentinel: sentinel.to_string(),
                answer,
            }),
        }
    }

    /// Connection settings for the master at `host:port` (password, database).
    pub(crate) fn master_info(
        &self,
        host: &str,
        port: u16,
    ) -> Result<ConnectionInfo, SentinelError> {
        let mut settings = RedisConnectionInfo::default()
            .set_skip_set_lib_name()
            .set_db(self.db);
        if let Some(password) = &self.password {
            settings = settings.set_password(password);
        }
        connection_info(host, port, settings)
    }
}

/// Checks with `ROLE` that the server behind `conn` is a master.
pub(crate) async fn confirm_master(
    conn: &mut MultiplexedConnection,
    addr: &str,
) -> Result<(), SentinelError> {
    let reply: Value = redis::cmd("ROLE")
        .query_async(conn)
        .await
        .map_err(|source| SentinelError::CheckingRole {
            addr: addr.to_string(),
            source,
        })?;
    let role = match &reply {
        Value::Array(items) => items.first().and_then(text),
        _ => None,
    }
    .unwrap_or_else(|| format!("{reply:?}"));
    if role == "master" {
        Ok(())
    } else {
        Err(SentinelError::ConfirmingMaster {
            addr: addr.to_string(),
            role,
        })
    }
}

/// Opens a multiplexed connection; `response_timeout` bounds every later command.
pub(crate) async fn connect(
    info: ConnectionInfo,
    response_timeout: Option<Duration>,
) -> Result<MultiplexedConnection, RedisError> {
    let client = Client::open(info)?;
    let config = AsyncConnectionConfig::new()
        .set_connection_timeout(None)
        .set_response_timeout(response_timeout);
    client
        .get_multiplexed_async_connection_with_config(&config)
        .await
}

fn connection_info(
    host: &str,
    port: u16,
    settings: RedisConnectionInfo,
) -> Result<ConnectionInfo, SentinelError> {
    ConnectionAddr::Tcp(host.to_string(), port)
        .into_connection_info()
        .map(|info| info.set_redis_settings(settings))
        .map_err(|source| SentinelError::PreparingConnection {
            addr: format!("{host}:{port}"),
            source,
        })
}

fn text(value: &Value) -> Option<String> {
    match value {
        Value::BulkString(bytes) => Some(String::from_utf8_lossy(bytes).into_owned()),
        Value::SimpleString(s) => Some(s.clone()),
        _ => None,
    }
}
