//! Cost of one health assessment: a built-in check and a cached Lua override on the same
//! Deployment-shaped object. Run: `cargo bench -p keelson-bench --bench health`.

use divan::{Bencher, black_box};
use keelson_health::{LuaEngine, builtin_health};
use keelson_model::HealthStatusCode;
use serde_json::{Value, json};

fn main() {
    divan::main();
}

const SCRIPT: &str = r#"
local hs = {status = "Progressing", message = "waiting"}
if obj.status ~= nil and obj.status.conditions ~= nil then
  for _, c in ipairs(obj.status.conditions) do
    if c.type == "Available" and c.status == "True" then
      hs.status = "Healthy"; hs.message = c.message
    end
  end
end
return hs
"#;

fn deployment() -> Value {
    json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "shop", "generation": 1},
        "spec": {"replicas": 3},
        "status": {"observedGeneration": 1, "replicas": 3, "updatedReplicas": 3,
            "readyReplicas": 3, "availableReplicas": 3,
            "conditions": [
                {"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable", "message": "ok"},
                {"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable", "message": "ok"}]}})
}

#[divan::bench]
fn builtin(bencher: Bencher) {
    let obj = deployment();
    let verdict = builtin_health(&obj).map(|h| h.status);
    assert_eq!(verdict, Some(HealthStatusCode::Healthy));
    bencher.bench(|| builtin_health(black_box(&obj)));
}

#[divan::bench]
fn lua_cached(bencher: Bencher) {
    let obj = deployment();
    let engine = LuaEngine::default();
    let verdict = engine.run_health(SCRIPT, &obj, false).map(|h| h.status);
    assert!(
        matches!(verdict, Ok(HealthStatusCode::Healthy)),
        "{verdict:?}"
    );
    bencher.bench(|| engine.run_health(SCRIPT, black_box(&obj), false).is_ok());
}
