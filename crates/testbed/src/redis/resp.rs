//! A tiny blocking RESP2 client: encode a command, read one reply. Enough for readiness
//! probes, `INFO`, and `SENTINEL` queries without a Redis crate.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use crate::error::{Result, TestbedError};

/// Time budget for connecting, writing and reading one reply.
const RESP_TIMEOUT: Duration = Duration::from_secs(3);

/// Deepest array nesting accepted in a reply.
const MAX_DEPTH: usize = 8;

/// Largest bulk string or array accepted in a reply.
const MAX_LEN: i64 = 64 * 1024 * 1024;

/// One RESP2 reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RespValue {
    /// `+OK`
    Simple(String),
    /// `-ERR ...`
    Error(String),
    /// `:42`
    Integer(i64),
    /// `$n` bulk string; `None` for the null bulk string.
    Bulk(Option<String>),
    /// `*n` array; `None` for the null array.
    Array(Option<Vec<RespValue>>),
}

impl RespValue {
    /// The text of a simple or bulk string reply.
    pub fn as_text(&self) -> Option<&str> {
        match self {
            RespValue::Simple(s) | RespValue::Bulk(Some(s)) => Some(s),
            _ => None,
        }
    }

    /// The elements of a non-null array reply.
    pub fn as_array(&self) -> Option<&[RespValue]> {
        match self {
            RespValue::Array(Some(items)) => Some(items),
            _ => None,
        }
    }
}

/// Sends one command to the Redis (or Sentinel) at `addr` on a fresh connection and returns
/// the reply. An error reply (`-ERR`) is returned as [`RespValue::Error`], not as `Err`.
pub fn resp_command(addr: SocketAddr, args: &[&str]) -> Result<RespValue> {
    let io = |step: &'static str| {
        move |source: std::io::Error| TestbedError::Io {
            step,
            path: addr.to_string(),
            source,
        }
    };
    let mut stream =
        TcpStream::connect_timeout(&addr, RESP_TIMEOUT).map_err(io("connecting to redis"))?;
    stream
        .set_read_timeout(Some(RESP_TIMEOUT))
        .and_then(|()| stream.set_write_timeout(Some(RESP_TIMEOUT)))
        .map_err(io("setting socket timeouts"))?;
    stream
        .write_all(&encode_command(args))
        .map_err(io("writing a redis command"))?;
    let mut reader = BufReader::new(stream);
    read_value(&mut reader, 0).map_err(|detail| TestbedError::Protocol {
        component: format!("redis at {addr}"),
        detail,
    })
}

/// Encodes a command as a RESP array of bulk strings.
pub fn encode_command(args: &[&str]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for arg in args {
        out.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
        out.extend_from_slice(arg.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// Reads one reply; errors are text (I/O or malformed data).
pub fn read_value(reader: &mut impl BufRead, depth: usize) -> Result<RespValue, String> {
    if depth > MAX_DEPTH {
        return Err("reply nested too deeply".to_string());
    }
    let line = read_line(reader)?;
    let (kind, rest) = line.split_at(line.chars().next().map_or(0, char::len_utf8));
    match kind {
        "+" => Ok(RespValue::Simple(rest.to_string())),
        "-" => Ok(RespValue::Error(rest.to_string())),
        ":" => parse_int(rest).map(RespValue::Integer),
        "$" => read_bulk(reader, parse_int(rest)?),
        "*" => {
            let n = parse_int(rest)?;
            if n < 0 {
                return Ok(RespValue::Array(None));
            }
            if n > MAX_LEN {
                return Err(format!("array of {n} elements is too long"));
            }
            let items = (0..n)
                .map(|_| read_value(reader, depth + 1))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(RespValue::Array(Some(items)))
        }
        other => Err(format!("unknown reply type {other:?} in {line:?}")),
    }
}

fn read_bulk(reader: &mut impl BufRead, len: i64) -> Result<RespValue, String> {
    if len < 0 {
        return Ok(RespValue::Bulk(None));
    }
    if len > MAX_LEN {
        return Err(format!("bulk string of {len} bytes is too long"));
    }
    let len = usize::try_from(len).map_err(|e| e.to_string())?;
    let mut buf = vec![0u8; len + 2];
    reader
        .read_exact(&mut buf)
        .map_err(|e| format!("reading bulk string: {e}"))?;
    if !buf.ends_with(b"\r\n") {
        return Err("bulk string not terminated by CRLF".to_string());
    }
    buf.truncate(len);
    Ok(RespValue::Bulk(Some(
        String::from_utf8_lossy(&buf).into_owned(),
    )))
}

fn read_line(reader: &mut impl BufRead) -> Result<String, String> {
    let mut line = String::new();
    let n = reader
        .take(64 * 1024)
        .read_line(&mut line)
        .map_err(|e| format!("reading reply: {e}"))?;
    if n == 0 {
        return Err("connection closed before a reply".to_string());
    }
    line.strip_suffix("\r\n")
        .map(str::to_string)
        .ok_or_else(|| format!("reply line not terminated by CRLF: {line:?}"))
}

fn parse_int(text: &str) -> Result<i64, String> {
    text.parse()
        .map_err(|_| format!("bad integer {text:?} in reply"))
}

/// Turns a flat `[k1, v1, k2, v2, ...]` reply (e.g. `SENTINEL master`) into pairs.
pub fn pairs(value: &RespValue) -> Vec<(String, String)> {
    let Some(items) = value.as_array() else {
        return Vec::new();
    };
    items
        .chunks(2)
        .filter_map(|kv| match kv {
            [k, v] => Some((k.as_text()?.to_string(), v.as_text()?.to_string())),
            _ => None,
        })
        .collect()
}

/// The value of `field` in `INFO` output (`field:value` lines).
pub fn info_field<'a>(info: &'a str, field: &str) -> Option<&'a str> {
    info.lines().find_map(|line| {
        line.trim_end()
            .strip_prefix(field)
            .and_then(|rest| rest.strip_prefix(':'))
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn parse(bytes: &[u8]) -> Result<RespValue, String> {
        read_value(&mut BufReader::new(bytes), 0)
    }

    #[test]
    fn encodes_commands() {
        assert_eq!(
            encode_command(&["SET", "k", ""]),
            b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$0\r\n\r\n".to_vec()
        );
    }

    #[test]
    fn parses_every_reply_type() {
        assert_eq!(
            parse(b"+PONG\r\n").unwrap(),
            RespValue::Simple("PONG".into())
        );
        assert_eq!(
            parse(b"-ERR no\r\n").unwrap(),
            RespValue::Error("ERR no".into())
        );
        assert_eq!(parse(b":-7\r\n").unwrap(), RespValue::Integer(-7));
        assert_eq!(parse(b"$-1\r\n").unwrap(), RespValue::Bulk(None));
        assert_eq!(parse(b"*-1\r\n").unwrap(), RespValue::Array(None));
        let v = parse(b"*2\r\n$9\r\n127.0.0.1\r\n$4\r\n6379\r\n").unwrap();
        assert_eq!(
            v,
            RespValue::Array(Some(vec![
                RespValue::Bulk(Some("127.0.0.1".into())),
                RespValue::Bulk(Some("6379".into()))
            ]))
        );
        assert_eq!(
            pairs(&v),
            vec![("127.0.0.1".to_string(), "6379".to_string())]
        );
    }

    #[test]
    fn rejects_malformed_replies() {
        assert!(parse(b"").is_err());
        assert!(parse(b"?x\r\n").is_err());
        assert!(parse(b"$5\r\nab\r\n").is_err());
        assert!(parse(b":12").is_err());
        assert!(parse(&b"*1\r\n".repeat(20)).is_err());
    }

    #[test]
    fn reads_info_fields() {
        let info = "# Replication\r\nrole:slave\r\nmaster_link_status:up\r\n";
        assert_eq!(info_field(info, "role"), Some("slave"));
        assert_eq!(info_field(info, "master_link_status"), Some("up"));
        assert_eq!(info_field(info, "master"), None);
    }
}
