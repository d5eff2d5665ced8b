//! A management cluster made ready for controllers (Keelson's CRDs, the control
//! namespace, simulated clusters registered as cluster Secrets) and the bounded poll the
//! end-to-end tests and benchmarks wait with.

use std::future::Future;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Namespace, Secret};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, ApiResource, DynamicObject, ListParams, PostParams};

use crate::error::{Result, TestbedError};
use crate::sim::SimCluster;

/// The Application resource as served by the management cluster.
pub fn application_resource() -> ApiResource {
    ApiResource {
        group: "argoproj.io".to_owned(),
        version: "v1alpha1".to_owned(),
        api_version: "argoproj.io/v1alpha1".to_owned(),
        kind: "Application".to_owned(),
        plural: "applications".to_owned(),
    }
}

/// Creates `obj`; an object of that name already there counts as success.
pub async fn create_ignoring_conflict<K>(api: &Api<K>, obj: &K, step: &'static str) -> Result<()>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + serde::Serialize + std::fmt::Debug,
{
    match api.create(&PostParams::default(), obj).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(e)) if e.code == 409 => Ok(()),
        Err(source) => Err(TestbedError::Kube { step, source }),
    }
}

/// Installs Keelson's CRDs, creates `namespace`, registers every one of `clusters` as a
/// bearer-token cluster Secret (trusting `ca_pem`, or insecure without it) and waits
/// (bounded) until Applications are served, so a controller started next finds them.
pub async fn prepare_management(
    mgmt: &kube::Client,
    namespace: &str,
    clusters: &[SimCluster],
    ca_pem: Option<&[u8]>,
) -> Result<()> {
    let crds: Api<CustomResourceDefinition> = Api::all(mgmt.clone());
    for crd in keelson_model::crds::all() {
        create_ignoring_conflict(&crds, &crd, "installing the CRDs").await?;
    }
    let ns = Namespace {
        metadata: ObjectMeta {
            name: Some(namespace.to_owned()),
            ..ObjectMeta::default()
        },
        ..Namespace::default()
    };
    create_ignoring_conflict(&Api::all(mgmt.clone()), &ns, "creating the namespace").await?;
    let secrets: Api<Secret> = Api::namespaced(mgmt.clone(), namespace);
    for c in clusters {
        let secret =
            keelson_model::bearer_token_secret(namespace, &c.name, &c.server, &c.token, ca_pem);
        create_ignoring_conflict(&secrets, &secret, "registering a simulated cluster").await?;
    }
    let apps: Api<DynamicObject> =
        Api::namespaced_with(mgmt.clone(), namespace, &application_resource());
    wait_until(
        "the Application CRD to be served",
        Duration::from_secs(30),
        Duration::from_millis(200),
        || async {
            apps.list(&ListParams::default().limit(1))
                .await
                .map(|_| Some(()))
        },
    )
    .await
}

/// Polls `probe` every `poll` until it yields `Some`, for at most `timeout`. The error
/// names `what` and quotes the probe's last error.
pub async fn wait_until<T, E, F, Fut>(
    what: &str,
    timeout: Duration,
    poll: Duration,
    mut probe: F,
) -> Result<T>
where
    E: std::fmt::Display,
    F: FnMut() -> Fut,
    Fut: Future<Output = std::result::Result<Option<T>, E>>,
{
    let start = Instant::now();
    let mut last_error = None;
    loop {
        match probe().await {
            Ok(Some(v)) => return Ok(v),
            Ok(None) => {}
            Err(e) => last_error = Some(format!("{e:#}")),
        }
        if start.elapsed() >= timeout {
            return Err(TestbedError::NotReached {
                what: what.to_owned(),
                waited: timeout,
                last_error,
            });
        }
        tokio::time::sleep(poll).await;
    }
}
