//! `keelson admin health` and `keelson admin diff` as a person runs them: the built-in
//! health conformance cases through the binary, a Lua override, and diff exit codes.

use anyhow::{Context, Result, ensure};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const CONFORMANCE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../shared/conformance/health-builtin"
);

fn keelson(args: &[&str]) -> Result<Output> {
    let bin = keelson_testbed::keelson_bin()?;
    Command::new(&bin)
        .args(args)
        .output()
        .with_context(|| format!("running {}", bin.display()))
}

fn health_of(file: &Path, extra: &[&str]) -> Result<Value> {
    let path = file.to_string_lossy();
    let mut args = vec!["admin", "health", path.as_ref()];
    args.extend_from_slice(extra);
    let out = keelson(&args)?;
    ensure!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(serde_json::from_slice(&out.stdout)?)
}

#[test]
fn health_command_gives_the_conformance_verdicts() -> Result<()> {
    let expected: Value = serde_yaml_ng::from_str(&std::fs::read_to_string(format!(
        "{CONFORMANCE}/expected.yaml"
    ))?)?;
    let cases = expected["cases"].as_array().context("cases")?;
    ensure!(cases.len() >= 50, "only {} cases", cases.len());
    let mut wrong = Vec::new();
    for case in cases {
        let file = case["file"].as_str().context("file")?;
        let got = health_of(
            &PathBuf::from(format!("{CONFORMANCE}/testdata/{file}")),
            &[],
        )?;
        let want = match case["status"].as_str() {
            Some("none") => Value::Null,
            other => other.map(Value::from).unwrap_or(Value::Null),
        };
        let message_ok = case
            .get("message")
            .is_none_or(|m| got.get("message") == Some(m));
        if got["status"] != want || !message_ok {
            wrong.push(format!("{file}: got {got}, want {case}"));
        }
    }
    ensure!(wrong.is_empty(), "{}", wrong.join("\n"));
    Ok(())
}

#[test]
fn health_command_runs_a_lua_override() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let script = dir.path().join("health.lua");
    std::fs::write(
        &script,
        "hs = {}\nif obj.spec.replicas == 1 then hs.status = \"Suspended\" end\nhs.message = \"r\" .. obj.spec.replicas\nreturn hs\n",
    )?;
    let object = PathBuf::from(format!(
        "{CONFORMANCE}/testdata/deployment-progressing.yaml"
    ));
    let got = health_of(&object, &["--lua", &script.to_string_lossy()])?;
    ensure!(
        got["status"] == "Suspended" && got["message"] == "r1",
        "{got}"
    );
    Ok(())
}

#[test]
fn diff_command_exit_codes_and_masked_secret() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let write = |name: &str, text: &str| -> Result<String> {
        let path = dir.path().join(name);
        std::fs::write(&path, text)?;
        Ok(path.to_string_lossy().into_owned())
    };
    let desired = write(
        "desired.yaml",
        "apiVersion: v1\nkind: Secret\nmetadata: {name: s, namespace: default}\nstringData: {password: hunter2}\n",
    )?;
    let same = write(
        "same.yaml",
        "apiVersion: v1\nkind: Secret\nmetadata: {name: s, namespace: default, uid: u, resourceVersion: \"7\"}\ntype: Opaque\ndata: {password: aHVudGVyMg==}\n",
    )?;
    let other = write(
        "other.yaml",
        "apiVersion: v1\nkind: Secret\nmetadata: {name: s, namespace: default}\ntype: Opaque\ndata: {password: b3RoZXI=}\n",
    )?;
    let ignore = write(
        "ignore.yaml",
        "- kind: Secret\n  jsonPointers: [/data/password]\n",
    )?;

    let out = keelson(&["admin", "diff", &desired, &same])?;
    ensure!(out.status.code() == Some(0), "{out:?}");
    let out = keelson(&["admin", "diff", &desired, &other])?;
    ensure!(out.status.code() == Some(1), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    ensure!(text.starts_with("{\"modified\":true"), "{text}");
    ensure!(text.contains("password: +++"), "{text}");
    ensure!(
        !text.contains("b3RoZXI") && !text.contains("hunter2"),
        "{text}"
    );
    let out = keelson(&[
        "admin",
        "diff",
        &desired,
        &other,
        "--ignore-differences",
        &ignore,
    ])?;
    ensure!(out.status.code() == Some(0), "{out:?}");
    let missing = dir.path().join("missing.yaml");
    let out = keelson(&["admin", "diff", &desired, &missing.to_string_lossy()])?;
    ensure!(out.status.code() == Some(2), "{out:?}");
    Ok(())
}
