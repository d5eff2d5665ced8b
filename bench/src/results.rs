//! Benchmark result files: `{"scenario", "size", "machine", "version", "metrics",
//! "targets", "pass"}`, one JSON file per run under `bench/results/`.

use serde_json::{Map, Value, json};
use std::path::PathBuf;

/// One benchmark run's result.
#[derive(Debug, Default)]
pub struct BenchResult {
    /// Scenario name.
    pub scenario: String,
    /// Size description (e.g. `500x200`).
    pub size: String,
    /// Measured values, units in the names.
    pub metrics: Map<String, Value>,
    /// Targets, units in the names.
    pub targets: Map<String, Value>,
}

impl BenchResult {
    /// Records a metric.
    pub fn metric(&mut self, name: &str, value: impl Into<Value>) {
        self.metrics.insert(name.to_owned(), value.into());
    }

    /// The result as JSON, with pass flags for metrics that have a `_max` target.
    pub fn to_json(&self) -> Value {
        let mut pass = Map::new();
        for (name, target) in &self.targets {
            if let (Some(metric), Some(limit)) = (name.strip_suffix("_max"), target.as_f64()) {
                let ok = self
                    .metrics
                    .get(metric)
                    .and_then(Value::as_f64)
                    .is_some_and(|m| m <= limit);
                pass.insert(metric.to_owned(), ok.into());
            }
        }
        json!({
            "scenario": self.scenario,
            "size": self.size,
            "machine": machine(),
            "version": env!("CARGO_PKG_VERSION"),
            "metrics": self.metrics,
            "targets": self.targets,
            "pass": pass,
        })
    }

    /// Writes the result to `dir/<scenario>-<size>.json` and returns the path.
    pub fn write(&self, dir: &std::path::Path) -> std::io::Result<PathBuf> {
        std::fs::create_dir_all(dir)?;
        let path = dir.join(format!("{}-{}.json", self.scenario, self.size));
        let text = serde_json::to_string_pretty(&self.to_json()).map_err(std::io::Error::other)?;
        std::fs::write(&path, text + "\n")?;
        Ok(path)
    }
}

fn machine() -> Value {
    let cpus = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    let mem_kb = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .next()
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse::<u64>().ok())
        })
        .unwrap_or(0);
    json!({"cpus": cpus, "memory_gib": mem_kb / 1024 / 1024})
}
