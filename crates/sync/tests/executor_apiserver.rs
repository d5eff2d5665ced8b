//! The sync executor against a real kube-apiserver: every apply method, prune with
//! propagation, a failing dry run and a refusing fence.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod executor_env;

use executor_env::scenarios::{self, Backend};
use keelson_testbed::KubeApiServer;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apiserver_executor_writes() {
    let server = tokio::task::spawn_blocking(KubeApiServer::start)
        .await
        .unwrap()
        .unwrap();
    let client = server.client().unwrap();
    scenarios::server_side_apply(&client, "exec").await;
    scenarios::client_side_apply(&client, "exec").await;
    scenarios::replace(&client, "exec").await;
    scenarios::prune_with_propagation(&client, "exec", Backend::ApiServer).await;
    scenarios::dry_run_failure_writes_nothing(&client, "exec").await;
    scenarios::fence_refuses(&client, "exec").await;
}
