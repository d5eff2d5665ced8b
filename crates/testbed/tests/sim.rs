//! `keelson sim` as a separate process: clusters are reachable with kube clients over plain
//! HTTP and TLS, and with the real kubectl over TLS (kubectl sends bearer tokens only over
//! TLS). Needs `target/debug/keelson` (or `$KEELSON_BIN`); fails, never skips, without it.

use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use keelson_testbed::{Sim, SimOptions, kubectl, kubectl_checked};
use kube::api::{Api, ListParams, PostParams};

fn config_map(name: &str) -> anyhow::Result<ConfigMap> {
    Ok(serde_json::from_value(serde_json::json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": { "name": name, "namespace": "default" },
        "data": { "k": "v" }
    }))?)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_http_clusters_are_isolated() -> anyhow::Result<()> {
    let options = SimOptions {
        clusters: 2,
        tls: false,
        ..SimOptions::default()
    };
    let sim = tokio::task::spawn_blocking(move || Sim::start(options)).await??;
    assert_eq!(sim.clusters().len(), 2);
    assert!(sim.ca_pem().is_none());
    assert!(sim.clusters()[0].server.starts_with("http://127.0.0.1:"));
    assert!(sim.kubeconfig_path(1)?.is_file());
    assert!(sim.combined_kubeconfig_path().is_file());

    let c1: Api<ConfigMap> = Api::namespaced(sim.client(0)?, "default");
    let c2: Api<ConfigMap> = Api::namespaced(sim.client(1)?, "default");
    c1.create(&PostParams::default(), &config_map("only-in-c1")?)
        .await?;
    assert!(c1.get("only-in-c1").await.is_ok());
    assert!(c2.get_opt("only-in-c1").await?.is_none());
    assert!(sim.client(2).is_err());
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_clusters_serve_kube_clients_and_kubectl() -> anyhow::Result<()> {
    let options = SimOptions {
        clusters: 2,
        tls: true,
        ..SimOptions::default()
    };
    let sim = tokio::task::spawn_blocking(move || Sim::start(options)).await??;
    assert!(sim.ca_pem().is_some());
    assert!(sim.clusters()[0].server.starts_with("https://127.0.0.1:"));

    let namespaces: Api<Namespace> = Api::all(sim.client(0)?);
    let list = namespaces.list(&ListParams::default()).await?;
    assert!(
        list.items
            .iter()
            .any(|n| n.metadata.name.as_deref() == Some("default"))
    );
    let c1: Api<ConfigMap> = Api::namespaced(sim.client(0)?, "default");
    c1.create(&PostParams::default(), &config_map("only-in-c1")?)
        .await?;

    let c1_kubeconfig = sim.kubeconfig_path(0)?.to_path_buf();
    let c2_kubeconfig = sim.kubeconfig_path(1)?.to_path_buf();
    let (in_c1, in_c2) = tokio::task::spawn_blocking(move || {
        let in_c1 = kubectl_checked(
            &c1_kubeconfig,
            &["get", "configmap", "only-in-c1", "-o", "jsonpath={.data.k}"],
        )?;
        let in_c2 = kubectl(&c2_kubeconfig, &["get", "configmap", "only-in-c1"])?;
        anyhow::Ok((in_c1, in_c2))
    })
    .await??;
    assert_eq!(String::from_utf8_lossy(&in_c1.stdout), "v");
    assert!(!in_c2.status.success());
    assert!(
        String::from_utf8_lossy(&in_c2.stderr).contains("NotFound"),
        "{}",
        String::from_utf8_lossy(&in_c2.stderr)
    );
    Ok(())
}
