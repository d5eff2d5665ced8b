//! Cache configuration (sizes, TTL, Redis endpoints and timeouts) and its validation.

use std::fmt;
use std::time::Duration;

/// Default L1 budget: 256 MiB of keys and values.
pub const DEFAULT_L1_MAX_BYTES: usize = 256 * 1024 * 1024;

/// Default TTL of every entry (Argo CD's `--repo-cache-expiration` default).
pub const DEFAULT_TTL: Duration = Duration::from_secs(24 * 60 * 60);

/// Default prefix of every Redis key.
pub const DEFAULT_KEY_PREFIX: &str = "keelson|";

/// Default `initiator` label of the `argocd_redis_*` metrics (what Argo CD's repo-server uses).
pub const DEFAULT_INITIATOR: &str = "argocd-repo-server";

/// Default budget for one Redis call, waiting for a connection included.
pub const DEFAULT_REDIS_TIMEOUT: Duration = Duration::from_millis(500);

/// Default budget for one (re)connection attempt, Sentinel discovery included.
pub const DEFAULT_REDIS_CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// Default first pause between failed connection attempts.
pub const DEFAULT_RECONNECT_MIN_BACKOFF: Duration = Duration::from_millis(50);

/// Default longest pause between failed connection attempts.
pub const DEFAULT_RECONNECT_MAX_BACKOFF: Duration = Duration::from_secs(1);

/// Default largest decoded value accepted from Redis (a guard against corrupt headers).
pub const DEFAULT_MAX_VALUE_BYTES: usize = 256 * 1024 * 1024;

/// Configuration of a [`crate::ManifestCache`].
#[derive(Clone)]
pub struct CacheConfig {
    /// Budget of the in-process LRU, counting key and value bytes; 0 disables L1.
    pub l1_max_bytes: usize,
    /// Lifetime of every entry, in L1 and in Redis (`SET … EX`).
    pub ttl: Duration,
    /// Redis (L2); `None` means L1 only.
    pub redis: Option<RedisConfig>,
    /// Prefix put in front of every key in Redis.
    pub key_prefix: String,
    /// Value of the `initiator` label of `argocd_redis_request_total` and
    /// `argocd_redis_request_duration_seconds`.
    pub initiator: String,
    /// Time budget of one Redis call (GET, SET, DEL), waiting for a connection included.
    pub redis_timeout: Duration,
    /// Time budget of one connection attempt (Sentinel discovery, connect, role check).
    pub redis_connect_timeout: Duration,
    /// First pause after a failed connection attempt; doubles up to `reconnect_max_backoff`.
    pub reconnect_min_backoff: Duration,
    /// Longest pause between connection attempts.
    pub reconnect_max_backoff: Duration,
    /// Largest decoded value accepted from Redis; bigger ones are treated as corrupt.
    pub max_value_bytes: usize,
}

impl Default for CacheConfig {
    fn default() -> Self {
        CacheConfig {
            l1_max_bytes: DEFAULT_L1_MAX_BYTES,
            ttl: DEFAULT_TTL,
            redis: None,
            key_prefix: DEFAULT_KEY_PREFIX.to_string(),
            initiator: DEFAULT_INITIATOR.to_string(),
            redis_timeout: DEFAULT_REDIS_TIMEOUT,
            redis_connect_timeout: DEFAULT_REDIS_CONNECT_TIMEOUT,
            reconnect_min_backoff: DEFAULT_RECONNECT_MIN_BACKOFF,
            reconnect_max_backoff: DEFAULT_RECONNECT_MAX_BACKOFF,
            max_value_bytes: DEFAULT_MAX_VALUE_BYTES,
        }
    }
}

impl fmt::Debug for CacheConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CacheConfig")
            .field("l1_max_bytes", &self.l1_max_bytes)
            .field("ttl", &self.ttl)
            .field("redis", &self.redis)
            .field("key_prefix", &self.key_prefix)
            .field("initiator", &self.initiator)
            .field("redis_timeout", &self.redis_timeout)
            .field("redis_connect_timeout", &self.redis_connect_timeout)
            .field("reconnect_min_backoff", &self.reconnect_min_backoff)
            .field("reconnect_max_backoff", &self.reconnect_max_backoff)
            .field("max_value_bytes", &self.max_value_bytes)
            .finish()
    }
}

/// How Redis is reached.
#[derive(Clone)]
pub enum RedisConfig {
    /// One server: `redis://[user][:password@]host:port[/db]`.
    Direct {
        /// The server URL.
        url: String,
    },
    /// The master of a Sentinel-monitored group, re-discovered after a failover.
    Sentinel {
        /// Sentinel addresses, `host:port` (IPv6 as `[addr]:port`).
        sentinels: Vec<String>,
        /// The monitored master's name (`--redis-master`).
        master_name: String,
        /// Password of the Redis servers.
        password: Option<String>,
        /// Password of the sentinels.
        sentinel_password: Option<String>,
        /// Database number on the master.
        db: i64,
    },
}

impl fmt::Debug for RedisConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let redact = |p: &Option<String>| p.as_ref().map(|_| "<redacted>");
        match self {
            RedisConfig::Direct { url } => f
                .debug_struct("Direct")
                .field("url", &redact_url(url))
                .finish(),
            RedisConfig::Sentinel {
                sentinels,
                master_name,
                password,
                sentinel_password,
                db,
            } => f
                .debug_struct("Sentinel")
                .field("sentinels", sentinels)
                .field("master_name", master_name)
                .field("password", &redact(password))
                .field("sentinel_password", &redact(sentinel_password))
                .field("db", db)
                .finish(),
        }
    }
}

/// A configuration that cannot work.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The direct URL does not parse.
    #[error("parsing the redis url {url}")]
    ParsingRedisUrl {
        /// The URL with any password replaced.
        url: String,
        /// The parser's complaint.
        #[source]
        source: redis::RedisError,
    },
    /// Sentinel mode without any sentinel.
    #[error("redis sentinel mode needs at least one sentinel address")]
    ListingSentinels,
    /// Sentinel mode without a master name.
    #[error("redis sentinel mode needs a master name")]
    NamingMaster,
    /// A sentinel address is not `host:port`.
    #[error("parsing the sentinel address {addr:?}: {reason}")]
    ParsingSentinelAddress {
        /// The address as given.
        addr: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A zero duration where a positive one is needed.
    #[error("{field} must be greater than zero")]
    CheckingDuration {
        /// The configuration field.
        field: &'static str,
    },
}

/// Checks the fields that would make the cache misbehave rather than merely miss.
pub(crate) fn validate(config: &CacheConfig) -> Result<(), ConfigError> {
    for (field, value) in [
        ("ttl", config.ttl),
        ("redis_timeout", config.redis_timeout),
        ("redis_connect_timeout", config.redis_connect_timeout),
        ("reconnect_min_backoff", config.reconnect_min_backoff),
        ("reconnect_max_backoff", config.reconnect_max_backoff),
    ] {
        if value.is_zero() {
            return Err(ConfigError::CheckingDuration { field });
        }
    }
    if let Some(RedisConfig::Sentinel {
        sentinels,
        master_name,
        ..
    }) = &config.redis
    {
        if sentinels.is_empty() {
            return Err(ConfigError::ListingSentinels);
        }
        if master_name.trim().is_empty() {
            return Err(ConfigError::NamingMaster);
        }
        for addr in sentinels {
            parse_host_port(addr)?;
        }
    }
    Ok(())
}

/// Splits `host:port` or `[v6]:port` into its parts.
pub(crate) fn parse_host_port(addr: &str) -> Result<(String, u16), ConfigError> {
    let bad = |reason| ConfigError::ParsingSentinelAddress {
        addr: addr.to_string(),
        reason,
    };
    let (host, port) = addr.rsplit_once(':').ok_or_else(|| bad("missing :port"))?;
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    if host.is_empty() {
        return Err(bad("empty host"));
    }
    if host.contains(':') && !addr.starts_with('[') {
        return Err(bad("an IPv6 host must be in brackets"));
    }
    let port: u16 = port.parse().map_err(|_| bad("port is not a number"))?;
    if port == 0 {
        return Err(bad("port 0"));
    }
    Ok((host.to_string(), port))
}

/// The URL with the userinfo part (which may hold a password) replaced.
pub(crate) fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => format!("{scheme}://<redacted>@{}", &rest[at + 1..]),
        None => url.to_string(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn host_port_forms() {
        assert_eq!(
            parse_host_port("127.0.0.1:26379").unwrap(),
            ("127.0.0.1".to_string(), 26379)
        );
        assert_eq!(
            parse_host_port("[::1]:26379").unwrap(),
            ("::1".to_string(), 26379)
        );
        assert_eq!(
            parse_host_port("sentinel-0.svc:26379").unwrap(),
            ("sentinel-0.svc".to_string(), 26379)
        );
        for bad in ["", "host", ":1", "host:x", "host:0", "::1:26379", "h:70000"] {
            assert!(parse_host_port(bad).is_err(), "{bad} should not parse");
        }
    }

    #[test]
    fn sentinel_mode_needs_sentinels_and_a_master() {
        let sentinel = |sentinels: Vec<&str>, name: &str| CacheConfig {
            redis: Some(RedisConfig::Sentinel {
                sentinels: sentinels.into_iter().map(String::from).collect(),
                master_name: name.to_string(),
                password: None,
                sentinel_password: None,
                db: 0,
            }),
            ..CacheConfig::default()
        };
        assert!(matches!(
            validate(&sentinel(vec![], "m")),
            Err(ConfigError::ListingSentinels)
        ));
        assert!(matches!(
            validate(&sentinel(vec!["127.0.0.1:1"], " ")),
            Err(ConfigError::NamingMaster)
        ));
        assert!(validate(&sentinel(vec!["127.0.0.1:1"], "m")).is_ok());
        let zero_ttl = CacheConfig {
            ttl: Duration::ZERO,
            ..CacheConfig::default()
        };
        assert!(matches!(
            validate(&zero_ttl),
            Err(ConfigError::CheckingDuration { field: "ttl" })
        ));
    }

    #[test]
    fn debug_never_shows_passwords() {
        let direct = RedisConfig::Direct {
            url: "redis://user:hunter2@127.0.0.1:6379/0".to_string(),
        };
        let text = format!("{direct:?}");
        assert!(!text.contains("hunter2"), "{text}");
        assert!(text.contains("127.0.0.1:6379/0"), "{text}");
        let sentinel = RedisConfig::Sentinel {
            sentinels: vec!["127.0.0.1:26379".to_string()],
            master_name: "m".to_string(),
            password: Some("hunter2".to_string()),
            sentinel_password: Some("hunter3".to_string()),
            db: 0,
        };
        let text = format!("{sentinel:?}");
        assert!(!text.contains("hunter"), "{text}");
        assert_eq!(
            redact_url("redis://127.0.0.1:1/a@b"),
            "redis://127.0.0.1:1/a@b"
        );
    }
}
