//! The resource-actions contract: discovery, modified object, impacted list, errors.

use keelson_health::{
    ActionOutcome, HealthAssessor, HealthConfig, HealthError, K8sOperation, LuaEngine,
};
use serde_json::{Value, json};
use std::collections::BTreeMap;

fn deployment() -> Value {
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default", "annotations": {"a": "b"}, "labels": {}},
        "spec": {"replicas": 2, "paused": false, "template": {"spec": {"containers": [], "securityContext": {}}}},
    })
}

const DISCOVERY: &str = r#"
local actions = {}
actions["restart"] = {}
actions["pause"] = {disabled = obj.spec.paused, iconClass = "fa fa-pause", displayName = "Pause"}
actions["resume"] = {disabled = not obj.spec.paused}
actions["scale"] = {params = {{name = "replicas", type = "number", default = "1"}}}
return actions
"#;

#[test]
fn discovery_lists_actions_sorted_with_their_fields() -> anyhow::Result<()> {
    let actions = LuaEngine::default().discover_actions(DISCOVERY, &deployment(), false)?;
    let names: Vec<&str> = actions.iter().map(|a| a.name.as_str()).collect();
    assert_eq!(names, ["pause", "restart", "resume", "scale"]);
    assert!(!actions[0].disabled);
    assert_eq!(actions[0].icon_class, "fa fa-pause");
    assert_eq!(actions[0].display_name, "Pause");
    assert!(!actions[1].disabled);
    assert!(actions[2].disabled);
    assert_eq!(actions[3].params.len(), 1);
    assert_eq!(actions[3].params[0].name, "replicas");
    assert_eq!(actions[3].params[0].param_type, "number");
    assert_eq!(actions[3].params[0].default, "1");
    let none = LuaEngine::default().discover_actions("return {}", &deployment(), false)?;
    assert!(none.is_empty());
    Ok(())
}

#[test]
fn action_returning_the_object_is_a_patch_keeping_empty_shapes() -> anyhow::Result<()> {
    let script = r#"
        obj.spec.paused = true
        obj.spec.replicas = tonumber(actionParams["replicas"])
        obj.metadata.annotations = {}
        return obj
    "#;
    let params = BTreeMap::from([("replicas".to_owned(), "5".to_owned())]);
    let outcome = LuaEngine::default().run_action(script, &deployment(), &params, false)?;
    let ActionOutcome::Patched(patched) = outcome else {
        anyhow::bail!("expected a patch, got {outcome:?}");
    };
    assert_eq!(patched["spec"]["paused"], json!(true));
    assert_eq!(patched["spec"]["replicas"], json!(5));
    assert_eq!(patched["metadata"]["annotations"], json!({}));
    assert_eq!(patched["metadata"]["labels"], json!({}));
    assert_eq!(patched["spec"]["template"]["spec"]["containers"], json!([]));
    assert_eq!(
        patched["spec"]["template"]["spec"]["securityContext"],
        json!({})
    );
    Ok(())
}

#[test]
fn action_returning_a_list_is_impacted_resources() -> anyhow::Result<()> {
    let script = r#"
        local job = {apiVersion = "batch/v1", kind = "Job", metadata = {name = obj.metadata.name .. "-job"}, spec = {}}
        obj.metadata.labels["triggered"] = "yes"
        return {{operation = "create", resource = job}, {operation = "patch", resource = obj}}
    "#;
    let outcome =
        LuaEngine::default().run_action(script, &deployment(), &BTreeMap::new(), false)?;
    let ActionOutcome::Impacted(resources) = outcome else {
        anyhow::bail!("expected impacted resources, got {outcome:?}");
    };
    assert_eq!(resources.len(), 2);
    assert_eq!(resources[0].operation, K8sOperation::Create);
    assert_eq!(resources[0].resource["metadata"]["name"], json!("web-job"));
    assert_eq!(resources[1].operation, K8sOperation::Patch);
    assert_eq!(
        resources[1].resource["metadata"]["labels"]["triggered"],
        json!("yes")
    );
    assert_eq!(
        resources[1].resource["spec"]["template"]["spec"]["containers"],
        json!([])
    );
    let serialized = serde_json::to_value(&resources[0])?;
    assert_eq!(serialized["operation"], json!("create"));
    Ok(())
}

#[test]
fn invalid_action_returns_are_errors() {
    let engine = LuaEngine::default();
    let none = BTreeMap::new();
    let cases = [
        ("return nil", "expect table output from Lua script, not nil"),
        (
            "return 42",
            "expect table output from Lua script, not number",
        ),
        (
            "return {{operation = 'delete', resource = obj}}",
            "unsupported operation",
        ),
        ("return {function() end}", "cannot encode"),
    ];
    for (script, expected) in cases {
        match engine.run_action(script, &deployment(), &none, false) {
            Err(error) => assert!(error.to_string().contains(expected), "{script}: {error}"),
            Ok(outcome) => panic!("{script}: unexpected {outcome:?}"),
        }
    }
}

#[test]
fn assessor_runs_configured_actions() -> anyhow::Result<()> {
    let actions = format!(
        "discovery.lua: |\n{}\ndefinitions:\n- name: pause\n  action.lua: |\n    obj.spec.paused = true\n    return obj\n",
        DISCOVERY
            .lines()
            .map(|l| format!("  {l}"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    let data = BTreeMap::from([(
        "resource.customizations.actions.apps_Deployment".to_owned(),
        actions,
    )]);
    let assessor = HealthAssessor::new(HealthConfig::from_config_map(&data)?);
    assert_eq!(assessor.discover_actions(&deployment())?.len(), 4);
    let outcome = assessor.run_action(&deployment(), "pause", &BTreeMap::new())?;
    assert!(matches!(outcome, ActionOutcome::Patched(ref o) if o["spec"]["paused"] == json!(true)));
    let missing = assessor.run_action(&deployment(), "nope", &BTreeMap::new());
    assert!(matches!(missing, Err(HealthError::ActionNotFound { .. })));
    Ok(())
}
