//! `keelson app …`: client commands on Applications through the management cluster's
//! API (until the API server lands): request a sync, roll back to a history entry,
//! terminate the running operation, print an app's status.

use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use keelson_model::Application;
use keelson_model::operation::{
    Operation, OperationInitiator, SyncOperation, SyncOperationResource,
};
use keelson_reconcile::history::rollback_operation;
use kube::api::{Api, Patch, PatchParams};
use serde_json::json;

/// Where the Applications are.
#[derive(Debug, Args)]
pub struct Target {
    /// Namespace of the Applications.
    #[arg(long, env = "ARGOCD_NAMESPACE", default_value = "argocd")]
    namespace: String,
    /// Kubeconfig of the management cluster.
    #[arg(long, env = "KUBECONFIG")]
    kubeconfig: Option<PathBuf>,
}

/// `keelson app` subcommands.
#[derive(Debug, Subcommand)]
pub enum AppCommand {
    /// Request a sync (sets `operation.sync` on the Application).
    Sync {
        /// Application name.
        name: String,
        /// Revision to sync to (default: the source's targetRevision).
        #[arg(long, env = "KEELSON_APP_REVISION")]
        revision: Option<String>,
        /// Delete resources no longer in Git.
        #[arg(long, env = "KEELSON_APP_PRUNE")]
        prune: bool,
        /// Only validate.
        #[arg(long, env = "KEELSON_APP_DRY_RUN")]
        dry_run: bool,
        /// Sync only these resources (`GROUP:KIND:NAME` or `GROUP:KIND:NAMESPACE/NAME`).
        #[arg(
            long = "resource",
            env = "KEELSON_APP_RESOURCES",
            value_delimiter = ','
        )]
        resources: Vec<String>,
        #[command(flatten)]
        target: Target,
    },
    /// Roll back to a history entry (apps without automated sync only).
    Rollback {
        /// Application name.
        name: String,
        /// History id.
        id: i64,
        /// Delete resources not in the rolled-back revision.
        #[arg(long, env = "KEELSON_APP_PRUNE")]
        prune: bool,
        /// Only validate.
        #[arg(long, env = "KEELSON_APP_DRY_RUN")]
        dry_run: bool,
        #[command(flatten)]
        target: Target,
    },
    /// Terminate the running operation.
    TerminateOp {
        /// Application name.
        name: String,
        #[command(flatten)]
        target: Target,
    },
    /// Print the Application's status as JSON.
    Get {
        /// Application name.
        name: String,
        #[command(flatten)]
        target: Target,
    },
}

fn parse_resource(text: &str) -> anyhow::Result<SyncOperationResource> {
    let parts: Vec<&str> = text.splitn(3, ':').collect();
    let [group, kind, rest] = parts.as_slice() else {
        bail!("resource {text:?} is not GROUP:KIND:NAME or GROUP:KIND:NAMESPACE/NAME");
    };
    let (namespace, name) = match rest.split_once('/') {
        Some((ns, name)) => (Some((*ns).to_owned()), (*name).to_owned()),
        None => (None, (*rest).to_owned()),
    };
    Ok(SyncOperationResource {
        group: (!group.is_empty()).then(|| (*group).to_owned()),
        kind: (*kind).to_owned(),
        name,
        namespace,
    })
}

async fn api(target: &Target) -> anyhow::Result<Api<Application>> {
    let client = crate::controller_command::management_client(target.kubeconfig.as_ref()).await?;
    Ok(Api::namespaced(client, &target.namespace))
}

async fn set_operation(api: &Api<Application>, name: &str, op: &Operation) -> anyhow::Result<()> {
    api.patch(
        name,
        &PatchParams::default(),
        &Patch::Merge(json!({"operation": op})),
    )
    .await
    .with_context(|| format!("setting the operation of {name}"))?;
    Ok(())
}

/// Runs a `keelson app` command.
pub async fn run(cmd: AppCommand) -> anyhow::Result<()> {
    match cmd {
        AppCommand::Sync {
            name,
            revision,
            prune,
            dry_run,
            resources,
            target,
        } => {
            let resources = resources
                .iter()
                .map(|r| parse_resource(r))
                .collect::<anyhow::Result<Vec<_>>>()?;
            let op = Operation {
                sync: Some(SyncOperation {
                    revision,
                    prune: Some(prune),
                    dry_run: Some(dry_run),
                    resources: (!resources.is_empty()).then_some(resources),
                    ..SyncOperation::default()
                }),
                initiated_by: Some(OperationInitiator {
                    username: Some("keelson-cli".to_owned()),
                    ..OperationInitiator::default()
                }),
                ..Operation::default()
            };
            set_operation(&api(&target).await?, &name, &op).await?;
            println!("sync of {name} requested");
        }
        AppCommand::Rollback {
            name,
            id,
            prune,
            dry_run,
            target,
        } => {
            let api = api(&target).await?;
            let app = api
                .get(&name)
                .await
                .with_context(|| format!("reading {name}"))?;
            let op = rollback_operation(&app, id, prune, dry_run, Some("keelson-cli"))?;
            set_operation(&api, &name, &op).await?;
            println!("rollback of {name} to history id {id} requested");
        }
        AppCommand::TerminateOp { name, target } => {
            let patch = json!({"status": {"operationState": {"phase": "Terminating"}}});
            api(&target)
                .await?
                .patch(&name, &PatchParams::default(), &Patch::Merge(patch))
                .await
                .with_context(|| format!("terminating the operation of {name}"))?;
            println!("termination of the operation of {name} requested");
        }
        AppCommand::Get { name, target } => {
            let app = api(&target).await?.get(&name).await?;
            println!("{}", serde_json::to_string_pretty(&app.status)?);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resources_parse() -> anyhow::Result<()> {
        let r = parse_resource("apps:Deployment:web/api")?;
        assert_eq!(r.group.as_deref(), Some("apps"));
        assert_eq!(r.namespace.as_deref(), Some("web"));
        assert_eq!(r.name, "api");
        let r = parse_resource(":ConfigMap:cfg")?;
        assert_eq!(r.group, None);
        assert!(parse_resource("nope").is_err());
        Ok(())
    }
}
