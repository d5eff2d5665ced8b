//! Keelson test harness: starts real components on free loopback ports with temp dirs,
//! waits (bounded) for them to be ready, and stops them when their guard is dropped, also
//! during a panic unwind.
//!
//! Components: [`Etcd`], [`KubeApiServer`] (on its own etcd), [`Redis`] and
//! [`SentinelGroup`], [`Sim`] (`keelson sim` as a separate process), [`GitRepo`] fixture
//! repositories, and the real `kubectl`/`helm` binaries.
//!
//! * Tools are looked up in `<workspace>/.tools/bin` (or `$KEELSON_TOOLS_DIR`), then on
//!   `PATH`. A missing tool is [`TestbedError::ToolMissing`] — tests fail, they never skip.
//!   Run `scripts/install-deps` to install everything.
//! * `start()` functions are synchronous so both sync and async tests can call them (they
//!   block briefly; in an async test prefer `tokio::task::spawn_blocking` if that matters).
//! * `client()` methods build `kube::Client`s and must be called inside a tokio runtime;
//!   they install rustls' `ring` provider first ([`install_crypto_provider`]).
//! * Every wait is bounded; failures name the component and quote its last log lines.
//! * Only SIGKILL of the test process itself can leak children: the guards cannot run then.

pub mod application_fields;
mod controller;
mod error;
mod etcd;
mod git;
mod kube_apiserver;
mod kubeconfig;
mod kubectl;
mod management;
mod ports;
mod probe;
mod process;
mod redis;
mod repo_server;
mod sim;
mod tools;

pub use controller::{CONTROLLER_READY_TIMEOUT, ControllerProcess};
pub use error::{INSTALL_HINT, Result, TestbedError};
pub use etcd::{ETCD_READY_TIMEOUT, Etcd};
pub use git::GitRepo;
pub use kube_apiserver::{ADMIN_USER, APISERVER_READY_TIMEOUT, KubeApiServer};
pub use kubeconfig::{
    KubeconfigEntry, build_client, client_config, install_crypto_provider, kubeconfig_document,
    write_kubeconfig,
};
pub use kubectl::{helm, helm_path, kubectl, kubectl_checked, kubectl_path};
pub use management::{
    application_resource, create_ignoring_conflict, prepare_management, wait_until,
};
pub use ports::{free_port, free_ports};
pub use probe::{ProbeResponse, http_get, https_get, pem_certificates};
pub use process::{ChildGuard, ERROR_LOG_LINES, run, run_checked, tail_lines};
pub use redis::{Redis, RespValue, SentinelGroup, resp_command};
pub use repo_server::{REPO_SERVER_READY_TIMEOUT, RepoServerProcess};
pub use sim::{Sim, SimCluster, SimInfo, SimOptions, keelson_bin};
pub use tools::{TOOLS_DIR_ENV, find_tool, tools_dir, workspace_root};
