//! Cluster, repository and repo-creds Secrets: parsing from `data` and `stringData`,
//! errors for bad fields, conversion to a working `kube::Config`, and credential
//! template selection.

use anyhow::Result;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use k8s_openapi::api::core::v1::Secret;
use keelson_model::cluster_secret::ClusterSecretError;
use keelson_model::repo_secret::{RepoType, best_repo_creds, normalize_repo_url};
use keelson_model::secret_data::SecretDataError;
use keelson_model::{ClusterSpec, RepoCredsSpec, RepoSecretError, RepoSpec};
use serde_json::json;

fn secret(secret_type: &str, fields: serde_json::Value, as_data: bool) -> Result<Secret> {
    let mut value = json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {
            "name": "s1", "namespace": "argocd",
            "labels": {"argocd.argoproj.io/secret-type": secret_type, "env": "prod"}
        }
    });
    if as_data {
        let encoded: serde_json::Map<String, serde_json::Value> = fields
            .as_object()
            .into_iter()
            .flatten()
            .map(|(k, v)| {
                (
                    k.clone(),
                    STANDARD.encode(v.as_str().unwrap_or_default()).into(),
                )
            })
            .collect();
        value["data"] = encoded.into();
    } else {
        value["stringData"] = fields;
    }
    Ok(serde_json::from_value(value)?)
}

struct Pki {
    ca_pem: String,
    ca_der: Vec<u8>,
    client_cert_pem: String,
    client_key_pem: String,
}

fn pki() -> Result<Pki> {
    let ca = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()])?;
    let client = rcgen::generate_simple_self_signed(vec!["client".to_owned()])?;
    Ok(Pki {
        ca_pem: ca.cert.pem(),
        ca_der: ca.cert.der().to_vec(),
        client_cert_pem: client.cert.pem(),
        client_key_pem: client.signing_key.serialize_pem(),
    })
}

#[tokio::test]
async fn cluster_secret_with_client_certificate_builds_a_kube_client() -> Result<()> {
    let pki = pki()?;
    let config = json!({
        "tlsClientConfig": {
            "insecure": false,
            "serverName": "kube.internal",
            "caData": STANDARD.encode(&pki.ca_pem),
            "certData": STANDARD.encode(&pki.client_cert_pem),
            "keyData": STANDARD.encode(&pki.client_key_pem),
        }
    });
    let fields = json!({
        "name": "prod-eu",
        "server": "https://127.0.0.1:6443",
        "namespaces": "web, api,,jobs",
        "clusterResources": "true",
        "shard": "2",
        "project": "team-a",
        "config": config.to_string(),
    });
    let cluster = ClusterSpec::from_secret(&secret("cluster", fields, true)?)?;
    assert_eq!(cluster.secret, "argocd/s1");
    assert_eq!(cluster.name, "prod-eu");
    assert_eq!(cluster.namespaces, ["web", "api", "jobs"]);
    assert!(cluster.cluster_resources);
    assert_eq!(cluster.shard, Some(2));
    assert_eq!(cluster.project.as_deref(), Some("team-a"));
    assert_eq!(cluster.labels["env"], "prod");
    assert_eq!(
        cluster.config.tls_client_config.key_data.as_deref(),
        Some(pki.client_key_pem.as_bytes())
    );
    assert!(
        !format!("{cluster:?}").contains("PRIVATE KEY"),
        "debug output leaks the key"
    );

    let kube_config = cluster.to_kube_config()?;
    assert_eq!(
        kube_config.cluster_url.to_string(),
        "https://127.0.0.1:6443/"
    );
    assert_eq!(kube_config.root_cert, Some(vec![pki.ca_der]));
    assert_eq!(
        kube_config.tls_server_name.as_deref(),
        Some("kube.internal")
    );
    assert!(!kube_config.accept_invalid_certs);
    // The real client accepts the CA and the client identity (PEM parsed by rustls).
    kube::Client::try_from(kube_config)?;
    Ok(())
}

#[test]
fn cluster_secret_with_bearer_token_and_insecure_tls() -> Result<()> {
    let fields = json!({
        "name": "dev",
        "server": "https://10.0.0.1:6443",
        "config": r#"{"bearerToken": "tok3n", "tlsClientConfig": {"insecure": true}}"#,
    });
    let cluster = ClusterSpec::from_secret(&secret("cluster", fields, false)?)?;
    let config = cluster.to_kube_config()?;
    assert!(config.accept_invalid_certs);
    let auth = serde_json::to_value(&config.auth_info)?;
    assert_eq!(auth["token"], "tok3n");
    assert_eq!(cluster.namespaces, Vec::<String>::new());
    assert!(!cluster.cluster_resources);
    Ok(())
}

#[test]
fn bearer_token_secret_parses_back_to_the_same_connection() -> Result<()> {
    let insecure =
        keelson_model::bearer_token_secret("argocd", "dev", "https://127.0.0.1:1", "t", None);
    assert_eq!(insecure.metadata.name.as_deref(), Some("cluster-dev"));
    let spec = ClusterSpec::from_secret(&insecure)?;
    assert_eq!(
        (spec.name.as_str(), spec.server.as_str()),
        ("dev", "https://127.0.0.1:1")
    );
    assert!(spec.to_kube_config()?.accept_invalid_certs);
    let pem = b"-----BEGIN CERTIFICATE-----\nnot a real one\n-----END CERTIFICATE-----\n";
    let pinned =
        keelson_model::bearer_token_secret("argocd", "dev", "https://127.0.0.1:1", "t", Some(pem));
    let config: serde_json::Value = serde_json::from_str(
        pinned
            .string_data
            .as_ref()
            .and_then(|d| d.get("config"))
            .map_or("{}", String::as_str),
    )?;
    assert_eq!(config["tlsClientConfig"]["caData"], STANDARD.encode(pem));
    assert_eq!(config["bearerToken"], "t");
    Ok(())
}

#[test]
fn cluster_secret_basic_auth_and_in_cluster_without_config() -> Result<()> {
    let basic = json!({"server": "https://k", "config": r#"{"username": "u", "password": "p"}"#});
    let cluster = ClusterSpec::from_secret(&secret("cluster", basic, false)?)?;
    let auth = serde_json::to_value(cluster.to_kube_config()?.auth_info)?;
    assert_eq!(
        (auth["username"].as_str(), auth["password"].as_str()),
        (Some("u"), Some("p"))
    );
    assert_eq!(cluster.display_name(), "https://k");

    let in_cluster = json!({"name": "in-cluster", "server": "https://kubernetes.default.svc"});
    let cluster = ClusterSpec::from_secret(&secret("cluster", in_cluster, false)?)?;
    assert!(cluster.is_in_cluster());
    assert_eq!(cluster.config, Default::default());
    Ok(())
}

#[test]
fn cluster_secret_errors_name_the_problem() -> Result<()> {
    let parse = |fields: serde_json::Value| -> Result<ClusterSecretError> {
        match ClusterSpec::from_secret(&secret("cluster", fields, false)?) {
            Ok(c) => anyhow::bail!("parsed unexpectedly: {c:?}"),
            Err(e) => Ok(e),
        }
    };
    assert!(matches!(
        parse(json!({"name": "x"}))?,
        ClusterSecretError::MissingServer { .. }
    ));
    assert!(matches!(
        parse(json!({"server": "https://k", "shard": "one"}))?,
        ClusterSecretError::ParseShard { .. }
    ));
    assert!(matches!(
        parse(json!({"server": "https://k", "config": "{not json"}))?,
        ClusterSecretError::ParseConfig { .. }
    ));
    let err = parse(
        json!({"server": "https://k", "config": r#"{"tlsClientConfig": {"caData": "%%%"}}"#}),
    )?;
    assert_eq!(
        err.to_string(),
        "cluster secret argocd/s1 has invalid base64 in config.tlsClientConfig.caData"
    );
    let wrong_type = ClusterSpec::from_secret(&secret(
        "repository",
        json!({"server": "https://k"}),
        false,
    )?);
    assert!(matches!(
        wrong_type,
        Err(ClusterSecretError::ReadSecret {
            source: SecretDataError::WrongType { .. },
            ..
        })
    ));
    Ok(())
}

#[test]
fn cluster_conversion_errors() -> Result<()> {
    let convert = |config: serde_json::Value| -> Result<ClusterSecretError> {
        let fields = json!({"name": "c", "server": "https://k", "config": config.to_string()});
        let cluster = ClusterSpec::from_secret(&secret("cluster", fields, false)?)?;
        match cluster.to_kube_config() {
            Ok(_) => anyhow::bail!("converted unexpectedly"),
            Err(e) => Ok(e),
        }
    };
    let exec = json!({"execProviderConfig": {"command": "argocd-k8s-auth", "args": ["gcp"], "apiVersion": "client.authentication.k8s.io/v1beta1"}});
    assert!(matches!(
        convert(exec)?,
        ClusterSecretError::UnsupportedExecProvider { .. }
    ));
    let aws =
        json!({"awsAuthConfig": {"clusterName": "eks-1", "roleARN": "arn:aws:iam::1:role/x"}});
    assert!(matches!(
        convert(aws)?,
        ClusterSecretError::UnsupportedAwsAuth { .. }
    ));
    let not_pem =
        json!({"tlsClientConfig": {"caData": STANDARD.encode("-----BEGIN CERTIFICATE---")}});
    assert!(matches!(
        convert(not_pem)?,
        ClusterSecretError::ReadCaPem { .. } | ClusterSecretError::CaWithoutCertificates { .. }
    ));
    let key_only = json!({"tlsClientConfig": {"caData": STANDARD.encode(pki()?.client_key_pem)}});
    assert!(matches!(
        convert(key_only)?,
        ClusterSecretError::CaWithoutCertificates { .. }
    ));
    let half = json!({"tlsClientConfig": {"certData": STANDARD.encode("x")}});
    assert!(matches!(
        convert(half)?,
        ClusterSecretError::ClientCertPair { .. }
    ));
    Ok(())
}

#[test]
fn exec_and_aws_configs_are_parsed() -> Result<()> {
    let config = json!({
        "execProviderConfig": {"command": "aws", "args": ["eks", "get-token"], "env": {"AWS_PROFILE": "p"}},
        "awsAuthConfig": {"clusterName": "eks-1", "roleARN": "arn:aws:iam::1:role/x", "profile": "p"},
    });
    let fields = json!({"server": "https://k", "config": config.to_string()});
    let cluster = ClusterSpec::from_secret(&secret("cluster", fields, false)?)?;
    let exec = cluster.config.exec_provider_config.unwrap_or_default();
    assert_eq!(exec.args, ["eks", "get-token"]);
    assert_eq!(exec.env["AWS_PROFILE"], "p");
    let aws = cluster.config.aws_auth_config.unwrap_or_default();
    assert_eq!(aws.role_arn.as_deref(), Some("arn:aws:iam::1:role/x"));
    Ok(())
}

#[test]
fn repository_secret_fields_are_typed() -> Result<()> {
    let fields = json!({
        "type": "helm", "name": "bitnami", "url": "https://charts.bitnami.com/bitnami",
        "project": "team-a", "username": "u", "password": "p\n", "insecure": "true",
        "enableLfs": "false", "enableOCI": "True", "forceHttpBasicAuth": "1",
        "githubAppID": "123", "githubAppInstallationID": "456", "proxy": "http://proxy:3128",
        "tlsClientCertData": "-----BEGIN CERTIFICATE-----\n", "tlsClientCertKey": "k",
    });
    let repo = RepoSpec::from_secret(&secret("repository", fields, true)?)?;
    assert_eq!(repo.repo_type, RepoType::Helm);
    assert_eq!(repo.name.as_deref(), Some("bitnami"));
    assert!(repo.insecure && repo.enable_oci && !repo.enable_lfs);
    assert_eq!(repo.creds.password.as_deref(), Some("p\n"));
    assert!(repo.creds.force_http_basic_auth);
    assert_eq!(
        (
            repo.creds.github_app_id,
            repo.creds.github_app_installation_id
        ),
        (Some(123), Some(456))
    );
    assert_eq!(repo.creds.proxy.as_deref(), Some("http://proxy:3128"));
    assert!(
        !format!("{repo:?}").contains("p\\n"),
        "debug output leaks the password"
    );
    Ok(())
}

#[test]
fn repository_secret_errors_name_the_problem() -> Result<()> {
    let parse = |fields: serde_json::Value| -> Result<RepoSecretError> {
        match RepoSpec::from_secret(&secret("repository", fields, false)?) {
            Ok(r) => anyhow::bail!("parsed unexpectedly: {r:?}"),
            Err(e) => Ok(e),
        }
    };
    assert!(matches!(
        parse(json!({"username": "u"}))?,
        RepoSecretError::MissingUrl { .. }
    ));
    let err = parse(json!({"url": "https://x", "type": "svn"}))?;
    assert_eq!(
        err.to_string(),
        "repository secret argocd/s1 has unknown type \"svn\" (expected git, helm or oci)"
    );
    assert!(matches!(
        parse(json!({"url": "https://x", "insecure": "yes"}))?,
        RepoSecretError::ReadSecret {
            source: SecretDataError::ParseBool {
                key: "insecure",
                ..
            },
            ..
        }
    ));
    assert!(matches!(
        parse(json!({"url": "https://x", "githubAppID": "abc"}))?,
        RepoSecretError::ParseGithubAppId {
            field: "githubAppID",
            ..
        }
    ));
    Ok(())
}

fn creds(url: &str, username: &str) -> Result<RepoCredsSpec> {
    let fields = json!({"url": url, "username": username, "password": "pw"});
    Ok(RepoCredsSpec::from_secret(&secret(
        "repo-creds",
        fields,
        false,
    )?)?)
}

#[test]
fn longest_prefix_credential_template_wins() -> Result<()> {
    let templates = vec![
        creds("https://github.com", "all")?,
        creds("https://github.com/team-a", "team-a")?,
        creds("https://GitHub.com/team-a/", "team-a-dup")?,
        creds("git@github.com:team-a", "ssh-team-a")?,
        creds("https://gitlab.com/team-a", "gitlab")?,
    ];
    let pick = |url: &str| {
        best_repo_creds(&templates, url).map(|t| t.creds.username.clone().unwrap_or_default())
    };
    assert_eq!(
        pick("https://github.com/team-a/app.git").as_deref(),
        Some("team-a")
    );
    assert_eq!(
        pick("https://github.com/team-b/app").as_deref(),
        Some("all")
    );
    assert_eq!(
        pick("git@github.com:team-a/app.git").as_deref(),
        Some("ssh-team-a")
    );
    assert_eq!(pick("https://bitbucket.org/x/y"), None);
    assert_eq!(
        normalize_repo_url("git@GitHub.com:org/repo.git/"),
        "ssh://git@github.com/org/repo"
    );

    let bare = RepoSpec::from_secret(&secret(
        "repository",
        json!({"url": "https://github.com/team-a/app.git", "proxy": "http://own-proxy"}),
        false,
    )?)?;
    let inherited = bare.with_inherited_creds(&templates);
    assert_eq!(inherited.creds.username.as_deref(), Some("team-a"));
    assert_eq!(inherited.creds.proxy.as_deref(), Some("http://own-proxy"));

    let own = RepoSpec::from_secret(&secret(
        "repository",
        json!({"url": "https://github.com/team-a/app.git", "username": "mine"}),
        false,
    )?)?;
    assert_eq!(own.with_inherited_creds(&templates), own);
    Ok(())
}
