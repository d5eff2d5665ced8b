//! Lua health overrides: contract, sandbox, numbers, config lookup, time limit, cache,
//! concurrency.

use anyhow::Context;
use keelson_health::{HealthAssessor, HealthConfig, HealthError, LuaEngine};
use keelson_model::HealthStatusCode;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

fn rollout(replicas: i64) -> Value {
    json!({
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Rollout",
        "metadata": {"name": "r", "namespace": "default", "annotations": {}},
        "spec": {"replicas": replicas, "strategy": {}, "list": []},
        "status": {"phase": "Healthy", "message": "all good"}
    })
}

fn config(entries: &[(&str, &str)]) -> anyhow::Result<HealthConfig> {
    let data: BTreeMap<String, String> = entries
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    Ok(HealthConfig::from_config_map(&data)?)
}

/// Runs a sandboxed (or open) health script with a fresh engine.
fn health(script: &str, open: bool) -> Result<keelson_health::HealthAssessment, HealthError> {
    LuaEngine::default().run_health(script, &rollout(3), open)
}

#[test]
fn status_table_is_returned() -> anyhow::Result<()> {
    let got = health(
        "hs = {}\nhs.status = obj.status.phase\nhs.message = obj.status.message\nreturn hs",
        false,
    )?;
    assert_eq!(got.status, HealthStatusCode::Healthy);
    assert_eq!(got.message, "all good");
    Ok(())
}

#[test]
fn invalid_status_becomes_unknown() -> anyhow::Result<()> {
    let got = health("return {status = 'Bogus', message = 'x'}", false)?;
    assert_eq!(got.status, HealthStatusCode::Unknown);
    assert_eq!(got.message, "Lua returned an invalid health status");
    let empty = health("return {}", false)?;
    assert_eq!(empty.status, HealthStatusCode::Unknown);
    Ok(())
}

#[test]
fn nil_or_non_table_return_is_an_error() {
    for (script, actual) in [
        ("return nil", "nil"),
        ("local x = 1", "nil"),
        ("return 'Healthy'", "string"),
    ] {
        match health(script, false) {
            Err(HealthError::ReturnType {
                expected,
                actual: got,
            }) => {
                assert_eq!(expected, "table");
                assert_eq!(got, actual, "script {script:?}");
            }
            other => panic!("script {script:?}: unexpected {other:?}"),
        }
    }
    let error = health("return nil", false).err().map(|e| e.to_string());
    assert_eq!(
        error.as_deref(),
        Some("expect table output from Lua script, not nil")
    );
}

#[test]
fn os_time_and_date_are_available() -> anyhow::Result<()> {
    let script = r#"
        local os2 = require("os")
        local now = os.time()
        local year = tonumber(os.date("!%Y", now))
        local t = os.date("!*t", 0)
        local fixed = os.time({year = 2020, month = 1, day = 2, hour = 3})
        if now > 1600000000 and year >= 2024 and t.year == 1970 and t.month == 1
           and os2.time ~= nil and type(fixed) == "number" then
          return {status = "Healthy", message = os.date("!%Y-%m-%d", 86400)}
        end
        return {status = "Degraded", message = tostring(now)}
    "#;
    let got = health(script, false)?;
    assert_eq!(got.status, HealthStatusCode::Healthy, "{}", got.message);
    assert_eq!(got.message, "1970-01-02");
    Ok(())
}

#[test]
fn dangerous_functions_are_disabled_by_default_and_enabled_with_open_libs() -> anyhow::Result<()> {
    let probes = [
        "return io ~= nil",
        "return os.execute ~= nil",
        "return pcall(require, 'io')",
        "return loadfile ~= nil",
        "return dofile ~= nil",
    ];
    for probe in probes {
        let script = format!(
            "local ok = (function() {probe} end)()\nreturn {{status = ok and 'Healthy' or 'Degraded'}}"
        );
        let sandboxed = health(&script, false)?;
        assert_eq!(
            sandboxed.status,
            HealthStatusCode::Degraded,
            "sandboxed: {probe}"
        );
        let open = health(&script, true)?;
        assert_eq!(open.status, HealthStatusCode::Healthy, "open libs: {probe}");
    }
    let error = health("io.write('x')\nreturn {status='Healthy'}", false)
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(error.contains("io"), "{error}");
    Ok(())
}

#[test]
fn library_tables_cannot_be_modified_across_runs() -> anyhow::Result<()> {
    let engine = LuaEngine::default();
    let obj = rollout(1);
    let tamper = engine.run_health("string.upper = nil\nreturn {status='Healthy'}", &obj, false);
    assert!(tamper.is_err(), "modifying string must fail");
    let leak = engine.run_health("leaked = 1\nreturn {status='Healthy'}", &obj, false)?;
    assert_eq!(leak.status, HealthStatusCode::Healthy);
    let check = engine.run_health(
        "return {status = (leaked == nil and string.upper('a') == 'A') and 'Healthy' or 'Degraded'}",
        &obj,
        false,
    )?;
    assert_eq!(
        check.status,
        HealthStatusCode::Healthy,
        "globals leaked between runs"
    );
    Ok(())
}

#[test]
fn integer_fields_compare_equal_to_number_literals() -> anyhow::Result<()> {
    let script = r#"
        if obj.spec.replicas == 3 and obj.spec.replicas + 0.5 == 3.5 and #obj.spec.list == 0 then
          return {status = "Healthy", message = tostring(obj.spec.replicas)}
        end
        return {status = "Degraded", message = tostring(obj.spec.replicas)}
    "#;
    let got = health(script, false)?;
    assert_eq!(got.status, HealthStatusCode::Healthy, "{}", got.message);
    assert_eq!(got.message, "3");
    Ok(())
}

#[test]
fn exact_key_wins_over_glob_and_glob_matches() -> anyhow::Result<()> {
    let cfg = config(&[
        (
            "resource.customizations.health.argoproj.io_Rollout",
            "return {status='Suspended', message='exact'}",
        ),
        (
            "resource.customizations.health.*.io_*",
            "return {status='Degraded', message='glob'}",
        ),
        (
            "resource.customizations.health.Service",
            "return {status='Missing', message='core'}",
        ),
    ])?;
    let assessor = HealthAssessor::new(cfg);
    let exact = assessor.assess(&rollout(1)).context("rollout health")?;
    assert_eq!(
        (exact.status, exact.message.as_str()),
        (HealthStatusCode::Suspended, "exact")
    );
    let crossplane = json!({"apiVersion": "pkg.crossplane.io/v1", "kind": "Provider", "metadata": {"name": "p"}});
    let glob = assessor.assess(&crossplane).context("glob health")?;
    assert_eq!(
        (glob.status, glob.message.as_str()),
        (HealthStatusCode::Degraded, "glob")
    );
    let service =
        json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"}, "spec": {}});
    let core = assessor.assess(&service).context("core health")?;
    assert_eq!(core.status, HealthStatusCode::Missing);
    let config_map = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}});
    assert_eq!(assessor.assess(&config_map), None);
    Ok(())
}

#[test]
fn legacy_blob_and_use_open_libs_are_read() -> anyhow::Result<()> {
    let blob = "argoproj.io/Rollout:\n  health.lua: |\n    return {status = io and 'Healthy' or 'Degraded'}\n";
    let sandboxed = HealthAssessor::new(config(&[("resource.customizations", blob)])?);
    let got = sandboxed.assess(&rollout(1)).context("health")?;
    assert_eq!(got.status, HealthStatusCode::Degraded);
    let open = HealthAssessor::new(config(&[
        ("resource.customizations", blob),
        (
            "resource.customizations.useOpenLibs.argoproj.io_Rollout",
            "true",
        ),
    ])?);
    let got = open.assess(&rollout(1)).context("health")?;
    assert_eq!(got.status, HealthStatusCode::Healthy);
    assert!(config(&[("resource.customizations.bogus.apps_Deployment", "x")]).is_err());
    assert!(
        config(&[(
            "resource.customizations.useOpenLibs.apps_Deployment",
            "maybe"
        )])
        .is_err()
    );
    Ok(())
}

#[test]
fn deletion_timestamp_and_lua_errors() -> anyhow::Result<()> {
    let cfg = config(&[(
        "resource.customizations.health.argoproj.io_Rollout",
        "error('boom')",
    )])?;
    let assessor = HealthAssessor::new(cfg);
    let failed = assessor.assess(&rollout(1)).context("health")?;
    assert_eq!(failed.status, HealthStatusCode::Unknown);
    assert!(failed.message.contains("boom"), "{}", failed.message);
    assert!(!failed.message.contains("traceback"), "{}", failed.message);
    let mut deleting = rollout(1);
    deleting["metadata"]["deletionTimestamp"] = json!("2024-01-01T00:00:00Z");
    let pending = assessor.assess(&deleting).context("health")?;
    assert_eq!(pending.status, HealthStatusCode::Progressing);
    assert_eq!(pending.message, "Pending deletion");
    Ok(())
}

#[test]
fn runaway_script_is_stopped_by_the_time_limit() -> anyhow::Result<()> {
    let limit = Duration::from_millis(300);
    let engine = LuaEngine::new(limit);
    for script in [
        "while true do end",
        "while true do pcall(function() while true do end end) end",
    ] {
        let start = Instant::now();
        let result = engine.run_health(script, &rollout(1), false);
        let took = start.elapsed();
        assert!(
            matches!(result, Err(HealthError::TimeLimit(_))),
            "{script}: {result:?}"
        );
        assert!(took < limit * 2, "{script}: stopped after {took:?}");
        assert!(took >= limit, "{script}: stopped too early after {took:?}");
    }
    let after = engine.run_health("return {status='Healthy'}", &rollout(1), false)?;
    assert_eq!(
        after.status,
        HealthStatusCode::Healthy,
        "state reusable after timeout"
    );
    let cfg = config(&[(
        "resource.customizations.health.argoproj.io_Rollout",
        "while true do end",
    )])?;
    let assessed = HealthAssessor::with_time_limit(cfg, limit)
        .assess(&rollout(1))
        .context("health")?;
    assert_eq!(assessed.status, HealthStatusCode::Unknown);
    assert!(
        assessed.message.contains("time limit"),
        "{}",
        assessed.message
    );
    Ok(())
}

#[test]
fn compiled_scripts_are_cached() -> anyhow::Result<()> {
    let engine = LuaEngine::default();
    let script = "return {status='Healthy'}";
    for _ in 0..20 {
        engine.run_health(script, &rollout(1), false)?;
    }
    assert_eq!(engine.compile_count(), 1);
    engine.run_health("return {status='Degraded'}", &rollout(1), false)?;
    assert_eq!(engine.compile_count(), 2);
    Ok(())
}

#[test]
fn concurrent_use_from_eight_threads() -> anyhow::Result<()> {
    let cfg = config(&[(
        "resource.customizations.health.argoproj.io_Rollout",
        "return {status = obj.spec.replicas % 2 == 0 and 'Healthy' or 'Degraded', message = tostring(obj.spec.replicas)}",
    )])?;
    let assessor = Arc::new(HealthAssessor::new(cfg));
    let threads: Vec<_> = (0..8)
        .map(|thread| {
            let assessor = Arc::clone(&assessor);
            std::thread::spawn(move || {
                (0..200).all(|i| {
                    let replicas = thread * 1000 + i;
                    let got = assessor.assess(&rollout(replicas));
                    let expected = if replicas % 2 == 0 {
                        HealthStatusCode::Healthy
                    } else {
                        HealthStatusCode::Degraded
                    };
                    got.is_some_and(|h| h.status == expected && h.message == replicas.to_string())
                })
            })
        })
        .collect();
    for thread in threads {
        assert!(
            thread
                .join()
                .map_err(|_| anyhow::anyhow!("thread panicked"))?
        );
    }
    assert!(
        assessor.engine().compile_count() <= 8,
        "one compile per state at most"
    );
    Ok(())
}

#[test]
fn assessor_is_send_and_sync() {
    fn assert_send_sync<T: Send + Sync + 'static>() {}
    assert_send_sync::<HealthAssessor>();
    assert_send_sync::<LuaEngine>();
}
