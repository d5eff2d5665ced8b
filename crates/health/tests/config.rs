//! Reading customizations from argocd-cm data.

use keelson_health::HealthConfig;
use std::collections::BTreeMap;

fn data(entries: &[(&str, &str)]) -> BTreeMap<String, String> {
    entries
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

#[test]
fn split_keys_override_the_legacy_blob() -> anyhow::Result<()> {
    let blob = "apps/Deployment:\n  health.lua: legacy\n  useOpenLibs: true\n  actions: |\n    discovery.lua: d\n    definitions:\n    - name: x\n      action.lua: a\n  ignoreDifferences: |\n    jsonPointers: [/spec]\n";
    let config = HealthConfig::from_config_map(&data(&[
        ("resource.customizations", blob),
        ("resource.customizations.health.apps_Deployment", "split"),
        (
            "resource.customizations.ignoreDifferences.all",
            "jsonPointers: [/status]",
        ),
        ("resource.customizations.health.Pod", "core"),
        ("resource.exclusions", "ignored"),
    ]))?;
    let deployment = config
        .exact("apps/Deployment")
        .ok_or_else(|| anyhow::anyhow!("missing"))?;
    assert_eq!(deployment.health_lua.as_deref(), Some("split"));
    assert!(deployment.use_open_libs);
    let actions = deployment
        .actions
        .as_ref()
        .ok_or_else(|| anyhow::anyhow!("no actions"))?;
    assert_eq!(actions.discovery_lua, "d");
    assert_eq!(actions.definitions[0].name, "x");
    assert_eq!(actions.definitions[0].action_lua, "a");
    assert_eq!(config.health_script("Pod"), Some(("core", false)));
    assert!(config.overrides().contains_key("*/*"));
    assert_eq!(config.health_script("apps/StatefulSet"), None);
    Ok(())
}

#[test]
fn bad_values_are_rejected() {
    for (key, value) in [
        ("resource.customizations", "not: [valid"),
        (
            "resource.customizations.actions.apps_Deployment",
            "definitions: 3",
        ),
        ("resource.customizations.health.a_b_c", "x"),
    ] {
        assert!(
            HealthConfig::from_config_map(&data(&[(key, value)])).is_err(),
            "{key}"
        );
    }
}
