//! The fleet-overview Grafana dashboard (`deploy/grafana/keelson-fleet.json`): its
//! structure, and that every PromQL expression in it (panel targets, targets of panels
//! nested in collapsed rows, templating queries) names only metrics that a Keelson
//! component registers.
//!
//! The exported set comes from the real code: each process's metrics are registered into a
//! `prometheus::Registry` exactly as the binaries do (controller: `ControllerMetrics`,
//! `CacheMetrics`, `QueueMetrics`, `ShardMetrics`; repo-server: `RepoMetrics` and the
//! `ManifestCache`'s metrics). The registry does not list its descriptors, so membership is
//! asked of the registry itself: registering a probe gauge under a name fails exactly when
//! a registered collector's `desc()` already holds that name (this also covers collectors
//! whose series only exist at scrape time, such as the cluster-cache gauges). Metric types,
//! needed to accept `_bucket`/`_sum`/`_count` only on histograms and summaries, come from
//! `gather()` after touching every histogram through the components' public API.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail, ensure};
use keelson_cache::{CacheConfig, ManifestCache};
use keelson_cluster_cache::CacheMetrics;
use keelson_controller::ControllerMetrics;
use keelson_repo_server::metrics::{GitRequestType, RepoMetrics};
use keelson_sharding::metrics::ShardMetrics;
use keelson_workqueue::{QueueMetrics, RateLimiter, WorkQueue};
use prometheus::Registry;
use prometheus::proto::MetricType;
use serde_json::{Value, json};

const DASHBOARD: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../deploy/grafana/keelson-fleet.json"
);
const CRATES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../crates");

// ---------------------------------------------------------------------------------------
// PromQL tokenizer and metric-name extraction
// ---------------------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq)]
enum Token {
    /// A bare identifier: metric name, function, keyword or label name.
    Ident(String),
    /// A string literal (label values, regexes, `label_replace` arguments).
    Str(String),
    /// A number or a duration (`0.95`, `5m`, `1h30m`).
    Number,
    /// A Grafana variable (`$namespace`, `${dest_server}`, `$__rate_interval`).
    Var,
    /// Any other single character: brackets, commas, operators.
    Punct(char),
}

/// PromQL keywords that are never metric names (case-insensitive): aggregation operators,
/// set and comparison modifiers, and the float literals.
const KEYWORDS: &[&str] = &[
    "sum",
    "min",
    "max",
    "avg",
    "group",
    "stddev",
    "stdvar",
    "count",
    "count_values",
    "bottomk",
    "topk",
    "quantile",
    "limitk",
    "limit_ratio",
    "and",
    "or",
    "unless",
    "atan2",
    "bool",
    "offset",
    "inf",
    "nan",
];

/// Keywords followed by a parenthesised list of label names.
const LABEL_LIST_KEYWORDS: &[&str] = &[
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
];

fn tokenize(expr: &str) -> Result<Vec<Token>> {
    let chars: Vec<char> = expr.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    let take_while = |mut j: usize, f: &dyn Fn(char) -> bool| {
        while j < chars.len() && f(chars[j]) {
            j += 1;
        }
        j
    };
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if c == '#' {
            i = take_while(i, &|c| c != '\n');
        } else if c == '"' || c == '\'' || c == '`' {
            let mut j = i + 1;
            let mut text = String::new();
            loop {
                let Some(&d) = chars.get(j) else {
                    bail!("unterminated string in {expr:?}");
                };
                j += 1;
                if d == c {
                    break;
                }
                if d == '\\' && c != '`' {
                    let Some(&e) = chars.get(j) else {
                        bail!("unterminated escape in {expr:?}");
                    };
                    j += 1;
                    text.push(e);
                } else {
                    text.push(d);
                }
            }
            tokens.push(Token::Str(text));
            i = j;
        } else if c == '$' {
            i = if chars.get(i + 1) == Some(&'{') {
                take_while(i + 1, &|c| c != '}') + 1
            } else {
                take_while(i + 1, &|c| c.is_ascii_alphanumeric() || c == '_')
            };
            tokens.push(Token::Var);
        } else if c.is_ascii_digit()
            || (c == '.' && chars.get(i + 1).is_some_and(char::is_ascii_digit))
        {
            i = take_while(i, &|c| c.is_ascii_alphanumeric() || c == '.' || c == '_');
            tokens.push(Token::Number);
        } else if c.is_ascii_alphabetic() || c == '_' || c == ':' {
            let end = take_while(i, &|c| c.is_ascii_alphanumeric() || c == '_' || c == ':');
            tokens.push(Token::Ident(chars[i..end].iter().collect()));
            i = end;
        } else if "(){}[],=!~<>+-*/%^@".contains(c) {
            tokens.push(Token::Punct(c));
            i += 1;
        } else {
            bail!("unexpected character {c:?} in {expr:?}");
        }
    }
    check_balanced(&tokens).with_context(|| format!("in {expr:?}"))?;
    Ok(tokens)
}

fn check_balanced(tokens: &[Token]) -> Result<()> {
    let mut stack = Vec::new();
    for t in tokens {
        match t {
            Token::Punct(c @ ('(' | '{' | '[')) => stack.push(*c),
            Token::Punct(c @ (')' | '}' | ']')) => {
                let open = stack.pop().ok_or_else(|| anyhow!("unopened {c:?}"))?;
                ensure!(
                    matches!((open, c), ('(', ')') | ('{', '}') | ('[', ']')),
                    "{open:?} closed by {c:?}"
                );
            }
            _ => {}
        }
    }
    ensure!(stack.is_empty(), "unclosed {stack:?}");
    Ok(())
}

/// Index just after the bracket matching the one at `tokens[open]`.
fn skip_group(tokens: &[Token], open: usize) -> usize {
    let mut depth = 0usize;
    for (i, t) in tokens.iter().enumerate().skip(open) {
        match t {
            Token::Punct('(' | '{' | '[') => depth += 1,
            Token::Punct(')' | '}' | ']') => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    return i + 1;
                }
            }
            _ => {}
        }
    }
    tokens.len()
}

/// Reads a `{…}` matcher list starting at `open`; a `__name__="x"` matcher names metric
/// `x`. Returns the index after the closing brace.
fn scan_matchers(tokens: &[Token], open: usize, names: &mut BTreeSet<String>) -> Result<usize> {
    let end = skip_group(tokens, open);
    let inner = &tokens[open + 1..end.saturating_sub(1)];
    for (i, t) in inner.iter().enumerate() {
        if *t != Token::Ident("__name__".to_string()) {
            continue;
        }
        match (inner.get(i + 1), inner.get(i + 2)) {
            (Some(Token::Punct('=')), Some(Token::Str(name))) => {
                names.insert(name.clone());
            }
            _ => bail!("a __name__ matcher other than `=\"name\"` cannot be checked"),
        }
    }
    Ok(end)
}

/// Metric names selected by a token sequence of PromQL.
fn names_in(tokens: &[Token]) -> Result<BTreeSet<String>> {
    let mut names = BTreeSet::new();
    let mut i = 0;
    while i < tokens.len() {
        match &tokens[i] {
            Token::Punct('{') => i = scan_matchers(tokens, i, &mut names)?,
            Token::Punct('[') => i = skip_group(tokens, i),
            Token::Ident(word) => {
                let lower = word.to_ascii_lowercase();
                let call = tokens.get(i + 1) == Some(&Token::Punct('('));
                if LABEL_LIST_KEYWORDS.contains(&lower.as_str()) && call {
                    i = skip_group(tokens, i + 1);
                } else {
                    if !call && !KEYWORDS.contains(&lower.as_str()) {
                        names.insert(word.clone());
                    }
                    i += 1;
                }
            }
            _ => i += 1,
        }
    }
    Ok(names)
}

/// Metric names of one PromQL expression.
fn promql_metric_names(expr: &str) -> Result<BTreeSet<String>> {
    names_in(&tokenize(expr)?)
}

/// Metric names of a Grafana Prometheus variable query: `label_values(label)`,
/// `label_values(selector, label)`, `label_names([selector])`, `query_result(expr)`.
fn template_metric_names(query: &str) -> Result<BTreeSet<String>> {
    let tokens = tokenize(query)?;
    let Some(Token::Ident(func)) = tokens.first() else {
        return names_in(&tokens);
    };
    let wrapped = tokens.get(1) == Some(&Token::Punct('('))
        && skip_group(&tokens, 1) == tokens.len()
        && tokens.len() >= 3;
    match func.as_str() {
        "label_values" | "label_names" if wrapped => {
            let inner = &tokens[2..tokens.len() - 1];
            let mut args: Vec<&[Token]> = Vec::new();
            let (mut start, mut i) = (0, 0);
            while i < inner.len() {
                match inner[i] {
                    Token::Punct('(' | '{' | '[') => i = skip_group(inner, i),
                    Token::Punct(',') => {
                        args.push(&inner[start..i]);
                        i += 1;
                        start = i;
                    }
                    _ => i += 1,
                }
            }
            args.push(&inner[start..]);
            ensure!(args.len() <= 2, "too many arguments in {query:?}");
            match (func.as_str(), args.as_slice()) {
                ("label_values", [selector, _label]) => names_in(selector),
                ("label_names", [selector]) => names_in(selector),
                _ => Ok(BTreeSet::new()),
            }
        }
        "query_result" if wrapped => names_in(&tokens[2..tokens.len() - 1]),
        "metrics" => bail!("a metrics() variable query names no metric that can be checked"),
        _ => names_in(&tokens),
    }
}

// ---------------------------------------------------------------------------------------
// The dashboard's expressions
// ---------------------------------------------------------------------------------------

#[derive(Debug)]
struct Expression {
    /// Where it sits, e.g. `panels[3].targets[0]` or `templating.namespace`.
    location: String,
    text: String,
    template: bool,
}

fn collect_exprs(value: &Value, path: &str, out: &mut Vec<Expression>) {
    match value {
        Value::Object(map) => {
            for (key, v) in map {
                match (key.as_str(), v) {
                    ("expr", Value::String(text)) => out.push(Expression {
                        location: path.to_string(),
                        text: text.clone(),
                        template: false,
                    }),
                    _ => collect_exprs(v, &format!("{path}.{key}"), out),
                }
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                collect_exprs(v, &format!("{path}[{i}]"), out);
            }
        }
        _ => {}
    }
}

/// Every expression: `expr` anywhere (panels, rows' nested panels, annotations) and the
/// queries of `query` variables (a string, or an object with a `query` field).
fn dashboard_exprs(dashboard: &Value) -> Vec<Expression> {
    let mut out = Vec::new();
    collect_exprs(dashboard, "", &mut out);
    let vars = dashboard["templating"]["list"].as_array().cloned();
    for var in vars.unwrap_or_default() {
        if var["type"] != "query" {
            continue;
        }
        let query = match &var["query"] {
            Value::String(q) => Some(q.clone()),
            obj => obj["query"].as_str().map(str::to_string),
        };
        if let Some(text) = query {
            out.push(Expression {
                location: format!("templating.{}", var["name"].as_str().unwrap_or("?")),
                text,
                template: true,
            });
        }
    }
    out
}

// ---------------------------------------------------------------------------------------
// What the components export
// ---------------------------------------------------------------------------------------

/// The registries of the two processes, built by the components' own registration code.
struct Exported {
    registries: Vec<(&'static str, Registry)>,
    kinds: BTreeMap<String, MetricType>,
    /// Kept alive so scrape-time queue series stay attached while gathering.
    _queues: Vec<WorkQueue<String>>,
}

impl Exported {
    async fn build() -> Result<Exported> {
        let controller = Registry::new();
        let app_metrics = ControllerMetrics::register(&controller)?;
        CacheMetrics::register(&controller)?;
        let queue_metrics: Arc<QueueMetrics> = QueueMetrics::register(&controller)?;
        let shard_metrics = ShardMetrics::register(&controller)?;
        app_metrics.observe_reconcile("argocd", "https://kubernetes.default.svc", 0.3);
        let limiter = || RateLimiter::exponential(Duration::from_millis(5), Duration::from_secs(1));
        let queues = ["app_reconciliation_queue", "app_operation_processing_queue"]
            .map(|name| WorkQueue::new(name, limiter(), Some(queue_metrics.clone())));
        shard_metrics.set_fleet(&BTreeMap::from([("keelson-0".to_string(), (4, 40))]));

        let repo_server = Registry::new();
        let repo_metrics = RepoMetrics::new(&repo_server)?;
        let _cache = ManifestCache::new(CacheConfig::default(), &repo_server).await?;
        repo_metrics.git_request(GitRequestType::Fetch, "https://git.example/apps.git", 0.2);
        repo_metrics.render("Directory", 0.05);

        let registries = vec![("controller", controller), ("repo-server", repo_server)];
        let kinds = registries
            .iter()
            .flat_map(|(_, r)| r.gather())
            .map(|mf| (mf.name().to_string(), mf.get_field_type()))
            .collect();
        Ok(Exported {
            registries,
            kinds,
            _queues: queues.into(),
        })
    }

    /// The process whose registry holds a descriptor called `name`.
    fn registered_by(&self, name: &str) -> Option<&'static str> {
        let probe = prometheus::Gauge::new(name, "probe for an existing descriptor").ok()?;
        self.registries.iter().find_map(|(process, registry)| {
            match registry.register(Box::new(probe.clone())) {
                Ok(()) => {
                    let _ = registry.unregister(Box::new(probe.clone()));
                    None
                }
                Err(_) => Some(*process),
            }
        })
    }

    /// How a name used in PromQL maps to an exported metric, or `None`.
    fn resolve(&self, name: &str) -> Option<String> {
        if let Some(process) = self.registered_by(name) {
            return Some(format!("{process}: {name}"));
        }
        for suffix in ["_bucket", "_sum", "_count"] {
            let Some(base) = name.strip_suffix(suffix) else {
                continue;
            };
            let kind = self.kinds.get(base).copied();
            let fits = match kind {
                Some(MetricType::HISTOGRAM) => true,
                Some(MetricType::SUMMARY) => suffix != "_bucket",
                _ => false,
            };
            if fits && let Some(process) = self.registered_by(base) {
                return Some(format!("{process}: {base} ({kind:?}) series {name}"));
            }
        }
        None
    }

    /// Names used by `dashboard` that no component exports, as `location: name`.
    fn unknown_names(&self, dashboard: &Value) -> Result<Vec<String>> {
        let mut unknown = Vec::new();
        for e in dashboard_exprs(dashboard) {
            let names = if e.template {
                template_metric_names(&e.text)
            } else {
                promql_metric_names(&e.text)
            }
            .with_context(|| format!("parsing {}", e.location))?;
            ensure!(
                !names.is_empty(),
                "{} names no metric: {:?}",
                e.location,
                e.text
            );
            for name in names {
                if self.resolve(&name).is_none() {
                    unknown.push(format!("{}: {name}", e.location));
                }
            }
        }
        Ok(unknown)
    }
}

fn load_dashboard() -> Result<Value> {
    let text =
        std::fs::read_to_string(DASHBOARD).with_context(|| format!("reading {DASHBOARD}"))?;
    serde_json::from_str(&text).context("parsing the dashboard json")
}

/// Every panel, the ones nested in rows included, with its location.
fn all_panels(dashboard: &Value) -> Vec<(String, &Value)> {
    let mut out = Vec::new();
    for (i, p) in dashboard["panels"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
    {
        out.push((format!("panels[{i}]"), p));
        for (j, c) in p["panels"].as_array().into_iter().flatten().enumerate() {
            out.push((format!("panels[{i}].panels[{j}]"), c));
        }
    }
    out
}

// ---------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn every_dashboard_metric_is_exported() -> Result<()> {
    let exported = Exported::build().await?;
    let dashboard = load_dashboard()?;
    let exprs = dashboard_exprs(&dashboard);
    let mut used = BTreeSet::new();
    for e in &exprs {
        let names = if e.template {
            template_metric_names(&e.text)?
        } else {
            promql_metric_names(&e.text)?
        };
        used.extend(names);
    }
    for name in &used {
        println!("{name} -> {:?}", exported.resolve(name));
    }
    let unknown = exported.unknown_names(&dashboard)?;
    ensure!(
        unknown.is_empty(),
        "metrics no component exports: {unknown:#?}"
    );
    ensure!(exprs.len() >= 30, "only {} expressions", exprs.len());
    ensure!(exprs.iter().filter(|e| e.template).count() == 2);
    let required = [
        "argocd_app_info",
        "argocd_app_reconcile_bucket",
        "argocd_app_sync_total",
        "workqueue_depth",
        "keelson_shard_units",
        "keelson_shard_apps",
        "keelson_shard_moves_total",
        "keelson_shard_claim_conflicts_total",
        "keelson_member_lease_renew_failures_total",
        "argocd_cluster_cache_age_seconds",
        "argocd_cluster_connection_status",
        "argocd_git_request_total",
        "argocd_git_request_duration_seconds_bucket",
        "argocd_repo_pending_request_total",
        "argocd_redis_request_total",
    ];
    let missing: Vec<_> = required.iter().filter(|n| !used.contains(**n)).collect();
    ensure!(missing.is_empty(), "dashboard lacks {missing:?}");
    Ok(())
}

#[tokio::test]
async fn checker_rejects_made_up_metrics() -> Result<()> {
    let exported = Exported::build().await?;
    let dashboard = json!({
        "panels": [
            {"id": 1, "type": "row", "panels": [
                {"id": 2, "targets": [{"refId": "A",
                    "expr": "sum(rate(keelson_made_up_total[5m])) / sum(rate(argocd_app_sync_total[5m]))"}]}
            ]},
            {"id": 3, "targets": [{"refId": "A", "expr": "sum by (le) (rate(argocd_app_info_bucket[5m]))"}]},
            {"id": 4, "targets": [{"refId": "A", "expr": "histogram_quantile(0.9, rate(argocd_app_reconcile_bucket[5m]))"}]}
        ],
        "templating": {"list": [
            {"name": "ns", "type": "query", "query": {"query": "label_values(keelson_fake_info, namespace)"}},
            {"name": "ds", "type": "datasource", "query": "prometheus"}
        ]}
    });
    let unknown = exported.unknown_names(&dashboard)?;
    assert_eq!(
        unknown,
        [
            ".panels[0].panels[0].targets[0]: keelson_made_up_total",
            ".panels[1].targets[0]: argocd_app_info_bucket",
            "templating.ns: keelson_fake_info",
        ]
    );
    Ok(())
}

#[tokio::test]
async fn suffixes_only_on_histograms() -> Result<()> {
    let exported = Exported::build().await?;
    for ok in [
        "argocd_app_reconcile_bucket",
        "argocd_app_reconcile_count",
        "argocd_app_reconcile_sum",
        "workqueue_work_duration_seconds_bucket",
        "argocd_redis_request_duration_seconds_bucket",
        "argocd_cluster_info",
        "workqueue_longest_running_processor_seconds",
    ] {
        ensure!(exported.resolve(ok).is_some(), "{ok} should resolve");
    }
    for bad in [
        "argocd_app_info_count",
        "workqueue_depth_bucket",
        "argocd_app_sync_total_sum",
        "argocd_app_reconcile_seconds",
        "keelson_made_up_total",
        "not a metric",
    ] {
        ensure!(exported.resolve(bad).is_none(), "{bad} should not resolve");
    }
    Ok(())
}

/// Every name declared in a crate's `metrics.rs` is registered by the set-up above, so the
/// exported set misses no component.
#[tokio::test]
async fn exported_set_covers_every_metrics_module() -> Result<()> {
    let exported = Exported::build().await?;
    let mut declared = Vec::new();
    for entry in std::fs::read_dir(CRATES)? {
        let path = entry?.path().join("src/metrics.rs");
        let Ok(source) = std::fs::read_to_string(&path) else {
            continue;
        };
        let source = source.split("#[cfg(test)]").next().unwrap_or_default();
        for (at, _) in source.match_indices("::new(") {
            let owner = source[..at].rsplit(|c: char| !c.is_alphanumeric()).next();
            let known = [
                "Opts",
                "HistogramOpts",
                "IntCounter",
                "IntGauge",
                "Counter",
                "Gauge",
            ];
            if !owner.is_some_and(|o| known.contains(&o)) {
                continue;
            }
            let rest = source[at + "::new(".len()..].trim_start();
            if let Some(name) = rest.strip_prefix('"').and_then(|r| r.split('"').next()) {
                declared.push((path.display().to_string(), name.to_string()));
            }
        }
    }
    ensure!(
        declared.len() >= 30,
        "only {} declared metrics found",
        declared.len()
    );
    let missing: Vec<_> = declared
        .iter()
        .filter(|(_, name)| exported.registered_by(name).is_none())
        .collect();
    ensure!(
        missing.is_empty(),
        "declared but not registered: {missing:#?}"
    );
    Ok(())
}

#[test]
fn dashboard_structure() -> Result<()> {
    let d = load_dashboard()?;
    ensure!(d["uid"] == "keelson-fleet" && d["schemaVersion"] == 39);
    ensure!(d["title"].as_str().is_some_and(|t| !t.is_empty()));
    let vars: BTreeMap<&str, &Value> = d["templating"]["list"]
        .as_array()
        .context("templating.list")?
        .iter()
        .filter_map(|v| Some((v["name"].as_str()?, v)))
        .collect();
    let ds = vars.get("datasource").context("datasource variable")?;
    ensure!(ds["type"] == "datasource" && ds["query"] == "prometheus");
    for name in ["namespace", "dest_server"] {
        let var = vars.get(name).with_context(|| format!("{name} variable"))?;
        let q = var["query"]["query"].as_str().unwrap_or_default();
        ensure!(var["type"] == "query" && q.starts_with("label_values(argocd_app_info"));
        ensure!(q.trim_end_matches(')').ends_with(name), "{name}: {q}");
        ensure!(var["datasource"]["uid"] == "${datasource}");
    }
    let mut ids = BTreeSet::new();
    let panels = all_panels(&d);
    for (at, p) in &panels {
        let id = p["id"].as_u64().with_context(|| format!("{at}: id"))?;
        ensure!(ids.insert(id), "{at}: duplicate id {id}");
        let g = &p["gridPos"];
        let [x, y, w, h] = ["x", "y", "w", "h"].map(|k| g[k].as_u64());
        let (Some(x), Some(_), Some(w), Some(h)) = (x, y, w, h) else {
            bail!("{at}: gridPos {g}");
        };
        ensure!(w >= 1 && h >= 1 && x + w <= 24, "{at}: gridPos {g}");
        ensure!(
            p["title"].as_str().is_some_and(|t| !t.is_empty()),
            "{at}: title"
        );
        if p["type"] == "row" {
            let nested = p["panels"].as_array().map_or(0, Vec::len);
            ensure!(
                p["collapsed"] == true || nested == 0,
                "{at}: open row with nested panels"
            );
            continue;
        }
        ensure!(
            p["datasource"]["uid"] == "${datasource}",
            "{at}: datasource"
        );
        let targets = p["targets"]
            .as_array()
            .with_context(|| format!("{at}: targets"))?;
        ensure!(!targets.is_empty(), "{at}: no targets");
        let mut refs = BTreeSet::new();
        for t in targets {
            let r = t["refId"]
                .as_str()
                .with_context(|| format!("{at}: refId"))?;
            ensure!(refs.insert(r), "{at}: duplicate refId {r}");
            ensure!(
                t["expr"].as_str().is_some_and(|e| !e.is_empty()),
                "{at}: expr"
            );
            ensure!(
                t["datasource"]["uid"] == "${datasource}",
                "{at}: target datasource"
            );
        }
    }
    ensure!(
        panels.iter().any(|(at, _)| at.contains("].panels[")),
        "no nested panel"
    );
    ensure!(panels.iter().any(|(_, p)| p["type"] == "heatmap"));
    ensure!(panels.len() >= 25, "only {} panels", panels.len());
    Ok(())
}

#[test]
fn tokenizer_skips_functions_keywords_labels_strings_and_durations() -> Result<()> {
    let set = |names: &[&str]| names.iter().map(|s| s.to_string()).collect::<BTreeSet<_>>();
    let cases: &[(&str, &[&str])] = &[
        (
            r#"sum by (namespace, name) (rate(foo_total{phase=~"Error|Failed", x="rate(y)"}[$__rate_interval] offset 1h))"#,
            &["foo_total"],
        ),
        (
            "histogram_quantile(0.99, sum without (pod) (rate(lat_bucket[5m:1m])))",
            &["lat_bucket"],
        ),
        (
            "a / on(le) group_left(extra) b > bool 0 or vector(0)",
            &["a", "b"],
        ),
        ("SUM BY (x) (c) AND IGNORING (y) d", &["c", "d"]),
        (
            r#"{__name__="by_name", job="x"} unless e @ start()"#,
            &["by_name", "e"],
        ),
        ("topk($n, f) # g is a comment", &["f"]),
        (
            r#"label_replace(h, "dst", "$1", "src", "(.*)") + count_values("v", i)"#,
            &["h", "i"],
        ),
        ("-j * 1e-3 + .5 + Inf", &["j"]),
        ("ns:rule:rate5m", &["ns:rule:rate5m"]),
    ];
    for (expr, want) in cases {
        assert_eq!(promql_metric_names(expr)?, set(want), "{expr}");
    }
    assert_eq!(
        template_metric_names(
            r#"label_values(argocd_app_info{namespace=~"$namespace"}, dest_server)"#
        )?,
        set(&["argocd_app_info"])
    );
    assert_eq!(template_metric_names("label_values(namespace)")?, set(&[]));
    assert_eq!(
        template_metric_names("query_result(max(k) by (l))")?,
        set(&["k"])
    );
    assert!(promql_metric_names("sum(rate(x[5m])").is_err());
    assert!(promql_metric_names(r#"x{a="b}"#).is_err());
    assert!(promql_metric_names(r#"{__name__=~"argocd_.*"}"#).is_err());
    Ok(())
}
