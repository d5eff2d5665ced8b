//! `keelson demo`: the zero-setup demo. In one process it starts the simulator (a
//! management cluster and two target clusters with workload behaviour), an in-process
//! repo-server and a controller; turns `examples/` into a local Git repository;
//! registers the example Applications; and shows their progress until every app is
//! Synced and Healthy — then keeps following Git until Ctrl-C.

use std::path::{Path, PathBuf};
use std::process::Command as Process;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Args;
use k8s_openapi::api::core::v1::{Namespace, Secret};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use keelson_cache::CacheConfig;
use keelson_controller::{Controller, ControllerConfig, ControllerSettings, OwnAll};
use keelson_model::{Application, ClusterSpec};
use keelson_repo_server::pool::RepoClient;
use keelson_sim::kubeconfig::ClusterEndpoint;
use keelson_sim::{SimConfig, SimHandle, WorkloadConfig};
use kube::api::{Api, ObjectMeta, PostParams};

use crate::demo_view;
use crate::repo_server_command::{RenderArgs, build_service};

/// Flags of `keelson demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// The example GitOps repository content.
    #[arg(long, env = "KEELSON_DEMO_EXAMPLES", default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples"))]
    examples: PathBuf,
    /// Work directory for the demo's Git repository (a temporary one by default).
    #[arg(long, env = "KEELSON_DEMO_DIR")]
    dir: Option<PathBuf>,
    /// Exit (status 0) as soon as every app is Synced and Healthy.
    #[arg(long, env = "KEELSON_DEMO_EXIT_WHEN_SYNCED")]
    exit_when_synced: bool,
    /// Give up when the apps are not all Synced and Healthy after this long.
    #[arg(long, env = "KEELSON_DEMO_TIMEOUT", default_value = "5m", value_parser = humantime::parse_duration)]
    timeout: Duration,
    /// How often every app is refreshed (how soon a Git change is seen without a webhook).
    #[arg(long, env = "KEELSON_DEMO_RESYNC", default_value = "10s", value_parser = humantime::parse_duration)]
    resync: Duration,
    /// Print the progress table as plain lines instead of redrawing the screen.
    #[arg(long, env = "KEELSON_DEMO_PLAIN")]
    plain: bool,
    #[command(flatten)]
    render: RenderArgs,
}

/// Namespace of the demo's Applications.
const NAMESPACE: &str = "argocd";

fn git(dir: &Path, args: &[&str]) -> anyhow::Result<()> {
    let out = Process::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_AUTHOR_NAME", "Keelson Demo")
        .env("GIT_AUTHOR_EMAIL", "demo@keelson.invalid")
        .env("GIT_COMMITTER_NAME", "Keelson Demo")
        .env("GIT_COMMITTER_EMAIL", "demo@keelson.invalid")
        .output()
        .context("running git (is it installed?)")?;
    if !out.status.success() {
        bail!(
            "git {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

fn copy_tree(from: &Path, to: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(to).with_context(|| format!("creating {}", to.display()))?;
    for entry in std::fs::read_dir(from).with_context(|| format!("reading {}", from.display()))? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_tree(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), &target)
                .with_context(|| format!("copying {}", entry.path().display()))?;
        }
    }
    Ok(())
}

/// Copies the examples into a fresh Git repository and commits them.
fn make_repo(examples: &Path, dir: &Path) -> anyhow::Result<PathBuf> {
    let repo = dir.join("gitops-repo");
    if repo.exists() {
        std::fs::remove_dir_all(&repo).with_context(|| format!("clearing {}", repo.display()))?;
    }
    copy_tree(examples, &repo)?;
    git(&repo, &["init", "-q", "-b", "main"])?;
    git(&repo, &["add", "-A"])?;
    git(&repo, &["commit", "-q", "-m", "keelson demo: examples"])?;
    Ok(repo)
}

/// A cluster Secret for a simulated cluster.
fn cluster_secret(name: &str, ep: &ClusterEndpoint, ca_pem: Option<&str>) -> Secret {
    keelson_model::bearer_token_secret(
        NAMESPACE,
        name,
        &ep.server,
        &ep.token,
        ca_pem.map(str::as_bytes),
    )
}

fn client_for(secret: &Secret) -> anyhow::Result<kube::Client> {
    let spec = ClusterSpec::from_secret(secret)?;
    Ok(kube::Client::try_from(spec.to_kube_config()?)?)
}

async fn create<K>(api: &Api<K>, obj: &K) -> anyhow::Result<()>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + serde::Serialize + std::fmt::Debug,
{
    match api.create(&PostParams::default(), obj).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(e)) if e.code == 409 => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Prepares the management cluster: CRDs, the namespace and the cluster Secrets.
async fn prepare_management(mgmt: &kube::Client, secrets: &[Secret]) -> anyhow::Result<()> {
    let crds: Api<CustomResourceDefinition> = Api::all(mgmt.clone());
    for crd in keelson_model::crds::all() {
        create(&crds, &crd).await.context("installing the CRDs")?;
    }
    let ns: Api<Namespace> = Api::all(mgmt.clone());
    let namespace = Namespace {
        metadata: ObjectMeta {
            name: Some(NAMESPACE.to_owned()),
            ..ObjectMeta::default()
        },
        ..Namespace::default()
    };
    create(&ns, &namespace)
        .await
        .context("creating the argocd namespace")?;
    let api: Api<Secret> = Api::namespaced(mgmt.clone(), NAMESPACE);
    for s in secrets {
        create(&api, s)
            .await
            .context("registering the target clusters")?;
    }
    Ok(())
}

/// Reads `examples/applications/*.yaml` with the placeholders filled in.
fn applications(
    examples: &Path,
    repo_url: &str,
    dev: &str,
    prod_server: &str,
) -> anyhow::Result<Vec<Application>> {
    let dir = examples.join("applications");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
        .collect();
    files.sort();
    let mut apps = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(&f)?
            .replace("REPO_URL", repo_url)
            .replace("DEST_SERVER", prod_server)
            .replace("DEST_NAME", dev);
        let app: Application =
            serde_yaml_ng::from_str(&text).with_context(|| format!("parsing {}", f.display()))?;
        apps.push(app);
    }
    Ok(apps)
}

fn tool_default(path: &mut PathBuf, name: &str) {
    if path.as_os_str() == name {
        let local = Path::new(".tools/bin").join(name);
        if let Ok(absolute) = local.canonicalize() {
            *path = absolute;
        }
    }
}

/// Runs the demo.
pub async fn run(mut args: DemoArgs) -> anyhow::Result<()> {
    tool_default(&mut args.render.helm_path, "helm");
    tool_default(&mut args.render.kubectl_path, "kubectl");
    args.render.revision_cache_ttl = args.resync.min(args.render.revision_cache_ttl);
    let work = tempfile::Builder::new().prefix("keelson-demo-").tempdir()?;
    let dir = args
        .dir
        .clone()
        .unwrap_or_else(|| work.path().to_path_buf());
    let examples = args
        .examples
        .canonicalize()
        .with_context(|| format!("finding the examples at {}", args.examples.display()))?;
    let repo = make_repo(&examples, &dir)?;
    let repo_url = format!("file://{}", repo.display());
    let sim = SimHandle::start(SimConfig {
        clusters: 3,
        tls: true,
        workload: Some(WorkloadConfig {
            ready_delay: Duration::from_millis(1500),
            ..WorkloadConfig::default()
        }),
        ..SimConfig::default()
    })
    .await?;
    let endpoints = sim.endpoints();
    let [mgmt_ep, dev_ep, prod_ep] = endpoints.as_slice() else {
        bail!("the simulator did not start three clusters");
    };
    let ca = sim.ca_pem.as_deref();
    let kubeconfig = dir.join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        keelson_sim::kubeconfig::kubeconfig(&endpoints, ca, None),
    )
    .with_context(|| format!("writing {}", kubeconfig.display()))?;
    let mgmt = client_for(&cluster_secret("management", mgmt_ep, ca))?;
    let secrets = [
        cluster_secret("dev", dev_ep, ca),
        cluster_secret("prod", prod_ep, ca),
    ];
    prepare_management(&mgmt, &secrets).await?;
    let registry = keelson_telemetry::Registry::new();
    let (service, _render_work) =
        build_service(&args.render, CacheConfig::default(), &registry).await?;
    let controller = Controller::start(ControllerConfig {
        settings: ControllerSettings {
            namespace: NAMESPACE.to_owned(),
            app_resync: args.resync,
            app_resync_jitter: Duration::from_secs(1),
            ..ControllerSettings::default()
        },
        client: mgmt.clone(),
        repo: RepoClient::in_process(service),
        registry,
        fence: Arc::new(OwnAll),
    })
    .await?;
    let apps_api: Api<Application> = Api::namespaced(mgmt.clone(), NAMESPACE);
    for app in applications(&examples, &repo_url, "dev", &prod_ep.server)? {
        create(&apps_api, &app)
            .await
            .context("creating the example applications")?;
    }
    println!(
        "keelson demo: simulator on {} (contexts c1 = management, c2 = dev, c3 = prod in {}), Git repo {}",
        sim.addr,
        kubeconfig.display(),
        repo.display()
    );
    let outcome = follow(&apps_api, &args).await;
    match outcome {
        Ok(()) if args.exit_when_synced => {
            controller.shutdown().await;
            return Ok(());
        }
        Ok(()) => print_next_steps(&repo),
        Err(e) => {
            controller.shutdown().await;
            return Err(e);
        }
    }
    let plain = args.plain;
    let watcher = tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_secs(5)).await;
            if let Ok(list) = apps_api.list(&Default::default()).await {
                if plain {
                    continue;
                }
                print!("\x1b[2J\x1b[H{}", demo_view::table(&list.items));
                print_next_steps_short();
            }
        }
    });
    crate::signals::shutdown().await;
    watcher.abort();
    controller.shutdown().await;
    Ok(())
}

/// Shows the table until every app is Synced and Healthy (or the timeout).
async fn follow(api: &Api<Application>, args: &DemoArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    let mut last = String::new();
    loop {
        let list = api.list(&Default::default()).await?;
        let table = demo_view::table(&list.items);
        if table != last {
            if args.plain {
                println!("[{:>5.1}s]\n{table}", started.elapsed().as_secs_f64());
            } else {
                print!(
                    "\x1b[2J\x1b[H[{:>5.1}s]\n{table}",
                    started.elapsed().as_secs_f64()
                );
            }
            last = table;
        }
        // The app-of-apps adds children; wait for them to exist too (5 examples + children).
        let done = list.items.len() > 5 && list.items.iter().all(demo_view::is_done);
        if done {
            println!(
                "all {} applications are Synced and Healthy after {:.1}s",
                list.items.len(),
                started.elapsed().as_secs_f64()
            );
            return Ok(());
        }
        if started.elapsed() > args.timeout {
            bail!(
                "not every application was Synced and Healthy after {:?}",
                args.timeout
            );
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

fn print_next_steps(repo: &Path) {
    println!(
        "\nKeelson now keeps the clusters equal to Git. Try:\n  \
         cd {}\n  \
         sed -i 's/replicas: 1/replicas: 3/' guestbook/*.yaml && git commit -am 'scale guestbook'\n\
         and watch the guestbook app go OutOfSync and back to Synced within a resync period.\n\
         Press Ctrl-C to stop.",
        repo.display()
    );
}

fn print_next_steps_short() {
    println!("\nChange the Git repository above and commit; Ctrl-C stops the demo.");
}
