//! A real kube-apiserver: ConfigMaps created and read with a kube client and with the real
//! kubectl through the written kubeconfig. Fails (never skips) when the binary is missing.

use k8s_openapi::api::core::v1::ConfigMap;
use keelson_testbed::{KubeApiServer, kubectl, kubectl_checked};
use kube::api::{Api, PostParams};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apiserver_serves_kube_client_and_kubectl() -> anyhow::Result<()> {
    let server = tokio::task::spawn_blocking(KubeApiServer::start).await??;
    assert!(server.url().starts_with("https://127.0.0.1:"));
    assert!(!server.token().is_empty());
    assert!(String::from_utf8_lossy(server.ca_pem()).contains("BEGIN CERTIFICATE"));

    // kube client: create then get.
    let client = server.client()?;
    let api: Api<ConfigMap> = Api::namespaced(client, "default");
    let cm: ConfigMap = serde_json::from_value(serde_json::json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": { "name": "from-kube", "namespace": "default" },
        "data": { "k": "v" }
    }))?;
    api.create(&PostParams::default(), &cm).await?;
    let got = api.get("from-kube").await?;
    assert_eq!(
        got.data.unwrap_or_default().get("k").map(String::as_str),
        Some("v")
    );

    // Real kubectl: create, then read back both objects, and the kube client sees kubectl's.
    let kubeconfig = server.kubeconfig_path().to_path_buf();
    let out = tokio::task::spawn_blocking(move || {
        kubectl_checked(
            &kubeconfig,
            &[
                "create",
                "configmap",
                "from-kubectl",
                "--from-literal=a=b",
                "-n",
                "default",
            ],
        )?;
        let get = kubectl_checked(
            &kubeconfig,
            &[
                "get",
                "configmap",
                "from-kube",
                "-n",
                "default",
                "-o",
                "jsonpath={.data.k}",
            ],
        )?;
        let missing = kubectl(
            &kubeconfig,
            &["get", "configmap", "absent", "-n", "default"],
        )?;
        anyhow::Ok((get, missing))
    })
    .await??;
    assert_eq!(String::from_utf8_lossy(&out.0.stdout), "v");
    assert!(!out.1.status.success());
    assert!(String::from_utf8_lossy(&out.1.stderr).contains("NotFound"));
    let from_kubectl = api.get("from-kubectl").await?;
    assert_eq!(
        from_kubectl
            .data
            .unwrap_or_default()
            .get("a")
            .map(String::as_str),
        Some("b")
    );
    Ok(())
}
