//! The fleet's safety checker. Reads every replica's apply log (one JSON line per write
//! to a destination cluster) and every replica's claim events ("took unit" / "released
//! unit" log lines) and counts double work:
//!
//! 1. overlap: two different replicas wrote to overlapping units (same unit, or a whole
//!    cluster and one of its buckets, or buckets of different splits) in overlapping
//!    `[start_ns, end_ns]` intervals — unless the cluster applied them in the order they
//!    were started: when both writes carry the resourceVersion they left (one counter
//!    per cluster), a write started earlier with a lower version reached the server
//!    first. That is the case of a write in flight when its replica froze (SIGSTOP) that
//!    still landed before the new owner's writes; its call only returned after the
//!    resume, but the server had serialised it first;
//! 2. stale writer: after a takeover of unit U by R2 (R2's first write on U following
//!    R1's), R1 started a write on U without having claimed U again in between;
//! 3. not the claimer: a write on U started while the latest claim event of U (before
//!    the write) was not "R took U" — another replica had taken it, or R had released it,
//!    or no claim of U by anyone had been recorded.

use std::collections::{BTreeMap, HashMap};

use anyhow::Context;
use k8s_openapi::jiff::Timestamp;
use keelson_sharding::unit::UnitId;
use serde_json::Value;

/// One write to a destination cluster.
#[derive(Debug, Clone)]
pub struct Write {
    pub replica: String,
    pub unit: String,
    pub app: String,
    pub verb: String,
    pub resource: String,
    pub start: i128,
    pub end: i128,
    /// resourceVersion the write left on the cluster (absent for deletes).
    pub rv: Option<u64>,
}

/// What a claim event says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClaimKind {
    Took,
    Released,
}

/// A claim event from a replica's log.
#[derive(Debug, Clone)]
pub struct ClaimEvent {
    pub replica: String,
    /// Unit in Display form (`server` or `server#i/k`).
    pub unit: String,
    pub at: i128,
    pub kind: ClaimKind,
}

fn ns(v: &Value) -> Option<i128> {
    match v {
        Value::String(s) => s.parse().ok(),
        Value::Number(n) => n.as_u64().map(i128::from),
        _ => None,
    }
}

/// Parses an apply log (lines that do not parse are an error: the log is unbuffered and
/// each line is one `write`, so a torn line means a lost record).
pub fn parse_apply_log(text: &str) -> anyhow::Result<Vec<Write>> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let v: Value = serde_json::from_str(line)
            .with_context(|| format!("apply log line {}: {line:?}", n + 1))?;
        let s = |k: &str| v[k].as_str().unwrap_or_default().to_owned();
        out.push(Write {
            replica: s("replica"),
            unit: s("unit"),
            app: s("app"),
            verb: s("verb"),
            resource: s("resource"),
            start: ns(&v["start_ns"]).with_context(|| format!("start_ns of {line}"))?,
            end: ns(&v["end_ns"]).with_context(|| format!("end_ns of {line}"))?,
            rv: v["rv"].as_u64(),
        });
    }
    Ok(out)
}

/// Removes ANSI escape sequences.
pub fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' && chars.peek() == Some(&'[') {
            chars.next();
            for d in chars.by_ref() {
                if d.is_ascii_alphabetic() {
                    break;
                }
            }
            continue;
        }
        out.push(c);
    }
    out
}

/// The value of `key=` after `from` in a log line, up to the next space.
fn field<'a>(line: &'a str, from: usize, key: &str) -> Option<&'a str> {
    let rest = &line[from..];
    let at = rest.find(&format!(" {key}="))?;
    let v = &rest[at + key.len() + 2..];
    Some(v.split_whitespace().next().unwrap_or_default())
}

/// "took unit" / "released unit" events of one log; `dict` maps unit names
/// (`u-…`) to their Display form (release lines carry names).
pub fn parse_claim_events(
    replica: &str,
    text: &str,
    dict: &BTreeMap<String, String>,
) -> Vec<ClaimEvent> {
    let mut out = Vec::new();
    for raw in text.lines() {
        if !raw.contains("took unit") && !raw.contains("released unit") {
            continue;
        }
        let line = strip_ansi(raw);
        let Some(ts) = line.split_whitespace().next() else {
            continue;
        };
        let Ok(at) = ts.parse::<Timestamp>() else {
            continue;
        };
        let (kind, pos) = if let Some(p) = line.find("took unit") {
            (ClaimKind::Took, p)
        } else if let Some(p) = line.find("released unit") {
            (ClaimKind::Released, p)
        } else {
            continue;
        };
        let Some(unit) = field(&line, pos, "unit") else {
            continue;
        };
        let unit = dict.get(unit).cloned().unwrap_or_else(|| unit.to_owned());
        out.push(ClaimEvent {
            replica: replica.to_owned(),
            unit,
            at: at.as_nanosecond(),
            kind,
        });
    }
    out
}

/// What the checker found.
#[derive(Debug, Default)]
pub struct SafetyReport {
    pub writes: usize,
    pub units: usize,
    pub overlaps: Vec<String>,
    pub stale_writers: Vec<String>,
    pub not_claimer: Vec<String>,
}

impl SafetyReport {
    /// Double-work incidents of every rule.
    pub fn incidents(&self) -> usize {
        self.overlaps.len() + self.stale_writers.len() + self.not_claimer.len()
    }

    /// A few examples of each rule.
    pub fn examples(&self, n: usize) -> String {
        let mut s = String::new();
        for (name, v) in [
            ("overlap", &self.overlaps),
            ("stale writer", &self.stale_writers),
            ("not the claimer", &self.not_claimer),
        ] {
            for e in v.iter().take(n) {
                s.push_str(&format!("  [{name}] {e}\n"));
            }
        }
        s
    }
}

/// The checker.
pub struct Safety;

fn units_overlap(a: &UnitId, b: &UnitId) -> bool {
    if a.server != b.server {
        return false;
    }
    match (a.bucket, b.bucket) {
        (Some((ia, ka)), Some((ib, kb))) => ka != kb || ia == ib,
        _ => true,
    }
}

fn t(ns: i128) -> String {
    Timestamp::from_nanosecond(ns)
        .map(|t| t.to_string())
        .unwrap_or_else(|_| ns.to_string())
}

fn describe(w: &Write) -> String {
    format!(
        "{} {} {} {} on {} [{} .. {}] rv {}",
        w.replica,
        w.verb,
        w.resource,
        w.app,
        w.unit,
        t(w.start),
        t(w.end),
        w.rv.map_or_else(|| "-".to_owned(), |v| v.to_string())
    )
}

/// Whether the cluster applied `first` (started earlier) before `second`, as their
/// resourceVersions show; unknown (a delete) counts as not.
fn applied_in_start_order(first: &Write, second: &Write) -> bool {
    matches!((first.rv, second.rv), (Some(a), Some(b)) if a < b)
}

impl Safety {
    /// Runs every rule over `writes` and `events`.
    pub fn check(writes: &[Write], events: &[ClaimEvent]) -> SafetyReport {
        let mut report = SafetyReport {
            writes: writes.len(),
            ..SafetyReport::default()
        };
        let parsed: Vec<(UnitId, &Write)> = writes
            .iter()
            .map(|w| {
                let u = w
                    .unit
                    .parse()
                    .unwrap_or_else(|_| UnitId::cluster(w.unit.clone()));
                (u, w)
            })
            .collect();
        // Rule 1, per server, sweeping by start.
        let mut by_server: HashMap<&str, Vec<&(UnitId, &Write)>> = HashMap::new();
        for p in &parsed {
            by_server.entry(p.0.server.as_str()).or_default().push(p);
        }
        for list in by_server.values_mut() {
            list.sort_by_key(|(_, w)| w.start);
            for i in 0..list.len() {
                let (ui, wi) = list[i];
                for (uj, wj) in list.iter().skip(i + 1).map(|p| (&p.0, p.1)) {
                    if wj.start >= wi.end {
                        break;
                    }
                    if wi.replica != wj.replica
                        && units_overlap(ui, uj)
                        && !applied_in_start_order(wi, wj)
                    {
                        report
                            .overlaps
                            .push(format!("{} overlaps {}", describe(wi), describe(wj)));
                    }
                }
            }
        }
        // Rules 2 and 3, per exact unit.
        let mut by_unit: BTreeMap<&str, Vec<&Write>> = BTreeMap::new();
        for w in writes {
            by_unit.entry(w.unit.as_str()).or_default().push(w);
        }
        let mut events_by_unit: HashMap<&str, Vec<&ClaimEvent>> = HashMap::new();
        for e in events {
            events_by_unit.entry(e.unit.as_str()).or_default().push(e);
        }
        for v in events_by_unit.values_mut() {
            v.sort_by_key(|e| e.at);
        }
        report.units = by_unit.len();
        for (unit, list) in &mut by_unit {
            list.sort_by_key(|w| w.start);
            let evs = events_by_unit.get(unit).cloned().unwrap_or_default();
            let mut current: Option<&str> = None;
            let mut displaced: HashMap<&str, i128> = HashMap::new();
            for w in list.iter() {
                if current != Some(w.replica.as_str()) {
                    if let Some(td) = displaced.get(w.replica.as_str()) {
                        let reclaimed = evs.iter().any(|e| {
                            e.kind == ClaimKind::Took
                                && e.replica == w.replica
                                && e.at > *td
                                && e.at <= w.start
                        });
                        if !reclaimed {
                            report.stale_writers.push(format!(
                                "{} started after another replica took over at {}",
                                describe(w),
                                t(*td)
                            ));
                        }
                    }
                    if let Some(c) = current {
                        displaced.insert(c, w.start);
                    }
                    displaced.remove(w.replica.as_str());
                    current = Some(w.replica.as_str());
                }
                let latest = evs.iter().rev().find(|e| e.at < w.start);
                match latest {
                    Some(e) if e.kind == ClaimKind::Took && e.replica == w.replica => {}
                    Some(e) => report.not_claimer.push(format!(
                        "{} while the latest claim event was {} {:?} at {}",
                        describe(w),
                        e.replica,
                        e.kind,
                        t(e.at)
                    )),
                    None => report.not_claimer.push(format!(
                        "{} with no claim of the unit recorded",
                        describe(w)
                    )),
                }
            }
        }
        report
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(replica: &str, unit: &str, start: i128, end: i128) -> Write {
        Write {
            replica: replica.into(),
            unit: unit.into(),
            app: "argocd/a".into(),
            verb: "Apply".into(),
            resource: "ConfigMap/fleet/x".into(),
            start,
            end,
            rv: None,
        }
    }

    fn took(replica: &str, unit: &str, at: i128) -> ClaimEvent {
        ClaimEvent {
            replica: replica.into(),
            unit: unit.into(),
            at,
            kind: ClaimKind::Took,
        }
    }

    #[test]
    fn the_checker_sees_each_kind_of_double_work() {
        let events = vec![
            took("r1", "s", 0),
            took("r2", "s", 100),
            took("r1", "s", 300),
        ];
        // A clean handover r1 → r2 → r1.
        let ok = vec![
            w("r1", "s", 10, 20),
            w("r2", "s", 110, 120),
            w("r1", "s", 310, 320),
        ];
        assert_eq!(Safety::check(&ok, &events).incidents(), 0);
        // r1 writes between r2's takeover and its own re-claim.
        let stale = vec![
            w("r1", "s", 10, 20),
            w("r2", "s", 110, 120),
            w("r1", "s", 200, 210),
        ];
        let r = Safety::check(&stale, &events);
        assert_eq!(r.stale_writers.len(), 1);
        assert_eq!(r.not_claimer.len(), 1);
        // Overlapping intervals on a whole cluster and one of its buckets.
        let overlap = vec![w("r1", "s", 10, 150), w("r2", "s#1/4", 110, 120)];
        assert_eq!(Safety::check(&overlap, &events).overlaps.len(), 1);
        // Different buckets of one split do not overlap.
        let apart = vec![w("r1", "s#0/4", 10, 150), w("r2", "s#1/4", 110, 120)];
        assert!(Safety::check(&apart, &events).overlaps.is_empty());
        // A write in flight across a freeze: it landed first (lower resourceVersion), so
        // it is no double work; had it landed after the new owner's write, it would be.
        let versioned = |r: &str, start, end, rv| Write {
            rv: Some(rv),
            ..w(r, "s", start, end)
        };
        let landed_first = vec![versioned("r1", 10, 150, 7), versioned("r2", 110, 120, 9)];
        assert!(Safety::check(&landed_first, &events).overlaps.is_empty());
        let landed_late = vec![versioned("r1", 10, 150, 9), versioned("r2", 110, 120, 7)];
        assert_eq!(Safety::check(&landed_late, &events).overlaps.len(), 1);
    }

    #[test]
    fn claim_events_are_parsed_from_tracing_lines() {
        let dict = BTreeMap::from([("u-00ff".to_owned(), "https://x/c1".to_owned())]);
        let text = "2026-12-04T18:23:00.123456Z  INFO keelson_sharding::manager: took unit \u{1b}[3munit\u{1b}[0m\u{1b}[2m=\u{1b}[0mhttps://x/c1#2/4 \u{1b}[3mfrom\u{1b}[0m\u{1b}[2m=\u{1b}[0mNone\n\
                    2026-12-04T18:23:01Z  INFO keelson_sharding::manager: released unit unit=u-00ff\n";
        let ev = parse_claim_events("r1", text, &dict);
        assert_eq!(ev.len(), 2);
        assert_eq!(ev[0].unit, "https://x/c1#2/4");
        assert_eq!(ev[0].kind, ClaimKind::Took);
        assert_eq!(ev[1].unit, "https://x/c1");
        assert_eq!(ev[1].kind, ClaimKind::Released);
        assert!(ev[1].at > ev[0].at);
    }
}
