//! Conformance: every Argo CD resource in the shared conformance manifests deserializes
//! into the typed model, validates, and serializes back to exactly the input; every
//! Secret parses with the matching secret parser.

use std::path::PathBuf;

use anyhow::{Context, Result, bail, ensure};
use k8s_openapi::api::core::v1::Secret;
use keelson_model::annotations::SECRET_TYPE;
use keelson_model::{
    AppProject, Application, ApplicationSet, ClusterSpec, RepoCredsSpec, RepoSpec,
};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// `shared/conformance/manifests`: from `KEELSON_SHARED_DIR` when set, else the `shared`
/// directory beside the checkout.
fn manifests_dir() -> PathBuf {
    let shared = match std::env::var_os("KEELSON_SHARED_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared"),
    };
    shared.join("conformance").join("manifests")
}

/// Every YAML document of every `*.yaml` file, with its origin for messages.
fn documents() -> Result<Vec<(String, Value)>> {
    let dir = manifests_dir();
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .with_context(|| format!("read conformance dir {}", dir.display()))?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.extension().is_some_and(|ext| ext == "yaml"))
        .collect();
    files.sort();
    ensure!(!files.is_empty(), "no manifests in {}", dir.display());
    let mut docs = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file)?;
        let name = file
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        for (i, doc) in serde_yaml_ng::Deserializer::from_str(&text).enumerate() {
            let value = Value::deserialize(doc).with_context(|| format!("{name} doc {i}"))?;
            if !value.is_null() {
                docs.push((format!("{name}#{i}"), value));
            }
        }
    }
    Ok(docs)
}

/// Deserializes, checks the serialized form equals the input, and returns the typed value.
fn round_trip<T: DeserializeOwned + Serialize>(origin: &str, input: &Value) -> Result<T> {
    let typed: T =
        serde_json::from_value(input.clone()).with_context(|| format!("{origin}: deserialize"))?;
    let output = serde_json::to_value(&typed)?;
    if output != *input {
        bail!(
            "{origin}: round trip changed the object\ninput:  {}\noutput: {}",
            serde_json::to_string(input)?,
            serde_json::to_string(&output)?
        );
    }
    Ok(typed)
}

#[test]
fn every_argo_cd_resource_round_trips_and_validates() -> Result<()> {
    let mut counts = [0usize; 4];
    for (origin, doc) in documents()? {
        let api_version = doc["apiVersion"].as_str().unwrap_or_default();
        let kind = doc["kind"].as_str().unwrap_or_default();
        match (api_version, kind) {
            ("argoproj.io/v1alpha1", "Application") => {
                let app: Application = round_trip(&origin, &doc)?;
                app.validate()
                    .with_context(|| format!("{origin}: validate"))?;
                counts[0] += 1;
            }
            ("argoproj.io/v1alpha1", "AppProject") => {
                let project: AppProject = round_trip(&origin, &doc)?;
                project
                    .validate()
                    .with_context(|| format!("{origin}: validate"))?;
                counts[1] += 1;
            }
            ("argoproj.io/v1alpha1", "ApplicationSet") => {
                let set: ApplicationSet = round_trip(&origin, &doc)?;
                set.validate()
                    .with_context(|| format!("{origin}: validate"))?;
                counts[2] += 1;
            }
            ("v1", "Secret") => {
                check_secret(&origin, doc)?;
                counts[3] += 1;
            }
            _ => {}
        }
    }
    // The shared set holds all four kinds; make sure none silently vanished.
    ensure!(
        counts.iter().all(|c| *c > 0),
        "kinds seen (app, project, appset, secret): {counts:?}"
    );
    Ok(())
}

fn check_secret(origin: &str, doc: Value) -> Result<()> {
    let secret: Secret =
        serde_json::from_value(doc).with_context(|| format!("{origin}: secret"))?;
    let secret_type = secret
        .metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(SECRET_TYPE))
        .cloned()
        .unwrap_or_default();
    match secret_type.as_str() {
        "cluster" => {
            let cluster =
                ClusterSpec::from_secret(&secret).with_context(|| format!("{origin}: cluster"))?;
            ensure!(!cluster.server.is_empty(), "{origin}: empty server");
        }
        "repository" => {
            let repo =
                RepoSpec::from_secret(&secret).with_context(|| format!("{origin}: repository"))?;
            ensure!(
                repo.creds.has_credentials(),
                "{origin}: repository without credentials"
            );
        }
        "repo-creds" => {
            RepoCredsSpec::from_secret(&secret).with_context(|| format!("{origin}: repo-creds"))?;
        }
        other => bail!("{origin}: secret with unexpected type {other:?}"),
    }
    Ok(())
}

#[test]
fn round_trip_keeps_fields_keelson_does_not_model() -> Result<()> {
    // Every conformance Application with one unknown field added at each level that
    // users extend: top level, spec, source, syncPolicy, status.
    for (origin, mut doc) in documents()? {
        if doc["kind"] != "Application" {
            continue;
        }
        doc["x-top"] = Value::from(1);
        doc["spec"]["futureField"] = serde_json::json!({"a": [1, 2]});
        doc["spec"]["source"]["futureSourceField"] = Value::from("x");
        doc["spec"]["syncPolicy"]["futurePolicy"] = Value::from(true);
        doc["status"]["futureStatus"] = serde_json::json!({"nested": {"k": "v"}});
        let _: Application = round_trip(&origin, &doc)?;
    }
    Ok(())
}
