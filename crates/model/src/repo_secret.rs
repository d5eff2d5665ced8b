//! Repository (`secret-type: repository`) and credential template (`secret-type:
//! repo-creds`) Secrets: typed parsing into [`RepoSpec`] / [`RepoCredsSpec`], and the
//! longest-URL-prefix choice of credentials for a repository, as Argo CD does it.

use std::fmt;

use k8s_openapi::api::core::v1::Secret;

use crate::annotations::{SECRET_TYPE_REPO_CREDS, SECRET_TYPE_REPOSITORY};
use crate::secret_data::{
    SecretDataError, expect_secret_type, parse_go_bool, secret_display_name, secret_fields,
};
use crate::string_enum::string_enum;

/// Errors from parsing a repository or repo-creds Secret.
#[derive(Debug, thiserror::Error)]
pub enum RepoSecretError {
    /// The Secret's type label or data could not be read, or a flag is not a boolean.
    #[error("read repository secret {secret}")]
    ReadSecret {
        /// `namespace/name` of the Secret.
        secret: String,
        /// Underlying error.
        #[source]
        source: SecretDataError,
    },
    /// The `url` field is missing or empty.
    #[error("repository secret {secret} has no url")]
    MissingUrl {
        /// `namespace/name` of the Secret.
        secret: String,
    },
    /// The `type` field is not `git`, `helm` or `oci`.
    #[error("repository secret {secret} has unknown type {value:?} (expected git, helm or oci)")]
    ParseType {
        /// `namespace/name` of the Secret.
        secret: String,
        /// The rejected value.
        value: String,
    },
    /// A GitHub App id field is not an integer.
    #[error("repository secret {secret} has invalid {field} {value:?}")]
    ParseGithubAppId {
        /// `namespace/name` of the Secret.
        secret: String,
        /// `githubAppID` or `githubAppInstallationID`.
        field: &'static str,
        /// The rejected value.
        value: String,
        /// Underlying error.
        #[source]
        source: std::num::ParseIntError,
    },
}

string_enum! {
    /// Kind of repository.
    pub enum RepoType ("repository type") {
        /// Git repository (the default).
        Git => "git",
        /// Helm chart repository.
        Helm => "helm",
        /// OCI registry.
        Oci => "oci",
    }
}

/// Credentials and connection options shared by repositories and credential templates.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct RepoCredentials {
    /// HTTPS user.
    pub username: Option<String>,
    /// HTTPS password or token.
    pub password: Option<String>,
    /// Bearer token (Bitbucket Data Center / Helm OCI).
    pub bearer_token: Option<String>,
    /// SSH private key (PEM / OpenSSH).
    pub ssh_private_key: Option<String>,
    /// TLS client certificate (PEM).
    pub tls_client_cert_data: Option<String>,
    /// TLS client key (PEM).
    pub tls_client_cert_key: Option<String>,
    /// GitHub App private key (PEM).
    pub github_app_private_key: Option<String>,
    /// GitHub App id.
    pub github_app_id: Option<i64>,
    /// GitHub App installation id.
    pub github_app_installation_id: Option<i64>,
    /// GitHub Enterprise API base URL.
    pub github_app_enterprise_base_url: Option<String>,
    /// Google Cloud service account key (JSON).
    pub gcp_service_account_key: Option<String>,
    /// HTTP(S) proxy URL.
    pub proxy: Option<String>,
    /// Hosts that bypass the proxy.
    pub no_proxy: Option<String>,
    /// Always send basic auth instead of waiting for a challenge.
    pub force_http_basic_auth: bool,
}

impl fmt::Debug for RepoCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let redact = |v: &Option<String>| v.as_ref().map(|_| "<redacted>");
        f.debug_struct("RepoCredentials")
            .field("username", &self.username)
            .field("password", &redact(&self.password))
            .field("bearer_token", &redact(&self.bearer_token))
            .field("ssh_private_key", &redact(&self.ssh_private_key))
            .field(
                "tls_client_cert_data",
                &self.tls_client_cert_data.as_ref().map(String::len),
            )
            .field("tls_client_cert_key", &redact(&self.tls_client_cert_key))
            .field(
                "github_app_private_key",
                &redact(&self.github_app_private_key),
            )
            .field("github_app_id", &self.github_app_id)
            .field(
                "github_app_installation_id",
                &self.github_app_installation_id,
            )
            .field(
                "github_app_enterprise_base_url",
                &self.github_app_enterprise_base_url,
            )
            .field(
                "gcp_service_account_key",
                &redact(&self.gcp_service_account_key),
            )
            .field("proxy", &self.proxy)
            .field("no_proxy", &self.no_proxy)
            .field("force_http_basic_auth", &self.force_http_basic_auth)
            .finish()
    }
}

impl RepoCredentials {
    /// Whether any authentication material is set (Argo CD's `HasCredentials`).
    pub fn has_credentials(&self) -> bool {
        self.username.is_some()
            || self.bearer_token.is_some()
            || self.ssh_private_key.is_some()
            || self.tls_client_cert_data.is_some()
            || self.github_app_private_key.is_some()
            || self.gcp_service_account_key.is_some()
    }

    /// Fills every unset field from `template` (Argo CD's `CopyCredentialsFrom`).
    pub fn fill_from(&mut self, template: &RepoCredentials) {
        fn fill<T: Clone>(mine: &mut Option<T>, theirs: &Option<T>) {
            if mine.is_none() {
                mine.clone_from(theirs);
            }
        }
        fill(&mut self.username, &template.username);
        fill(&mut self.password, &template.password);
        fill(&mut self.bearer_token, &template.bearer_token);
        fill(&mut self.ssh_private_key, &template.ssh_private_key);
        fill(
            &mut self.tls_client_cert_data,
            &template.tls_client_cert_data,
        );
        fill(&mut self.tls_client_cert_key, &template.tls_client_cert_key);
        fill(
            &mut self.github_app_private_key,
            &template.github_app_private_key,
        );
        fill(&mut self.github_app_id, &template.github_app_id);
        fill(
            &mut self.github_app_installation_id,
            &template.github_app_installation_id,
        );
        fill(
            &mut self.github_app_enterprise_base_url,
            &template.github_app_enterprise_base_url,
        );
        fill(
            &mut self.gcp_service_account_key,
            &template.gcp_service_account_key,
        );
        fill(&mut self.proxy, &template.proxy);
        fill(&mut self.no_proxy, &template.no_proxy);
        self.force_http_basic_auth |= template.force_http_basic_auth;
    }
}

/// A repository registered with Argo CD (`secret-type: repository`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepoSpec {
    /// `namespace/name` of the Secret.
    pub secret: String,
    /// Repository URL.
    pub url: String,
    /// Repository kind (`git` when absent).
    pub repo_type: RepoType,
    /// Display name (required by Argo CD for Helm repositories).
    pub name: Option<String>,
    /// Project the repository is scoped to.
    pub project: Option<String>,
    /// Skip TLS verification / host key checking.
    pub insecure: bool,
    /// Fetch Git LFS objects.
    pub enable_lfs: bool,
    /// The Helm repository is an OCI registry.
    pub enable_oci: bool,
    /// Credentials and proxy settings.
    pub creds: RepoCredentials,
}

/// A credential template (`secret-type: repo-creds`) applied to repositories whose URL
/// starts with `url`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepoCredsSpec {
    /// `namespace/name` of the Secret.
    pub secret: String,
    /// URL prefix.
    pub url: String,
    /// Repository kind the template is meant for, when given.
    pub repo_type: Option<RepoType>,
    /// The Helm repositories are OCI registries.
    pub enable_oci: bool,
    /// Credentials and proxy settings.
    pub creds: RepoCredentials,
}

/// Fields common to both secret kinds, read once.
struct Parsed {
    secret: String,
    url: String,
    repo_type: Option<RepoType>,
    fields: std::collections::BTreeMap<String, String>,
}

impl Parsed {
    fn read(secret: &Secret, expected: &'static str) -> Result<Self, RepoSecretError> {
        let display = secret_display_name(secret);
        let read_err = |source| RepoSecretError::ReadSecret {
            secret: display.clone(),
            source,
        };
        expect_secret_type(secret, expected).map_err(read_err)?;
        let fields = secret_fields(secret).map_err(read_err)?;
        let parsed = Parsed {
            url: String::new(),
            repo_type: None,
            secret: display,
            fields,
        };
        let url = parsed
            .get("url")
            .ok_or_else(|| RepoSecretError::MissingUrl {
                secret: parsed.secret.clone(),
            })?
            .to_owned();
        let repo_type = parsed
            .get("type")
            .map(|value| {
                value
                    .parse::<RepoType>()
                    .map_err(|_| RepoSecretError::ParseType {
                        secret: parsed.secret.clone(),
                        value: value.to_owned(),
                    })
            })
            .transpose()?;
        Ok(Parsed {
            url,
            repo_type,
            ..parsed
        })
    }

    fn get(&self, key: &str) -> Option<&str> {
        self.fields
            .get(key)
            .map(|v| v.trim())
            .filter(|v| !v.is_empty())
    }

    /// Like `get` but keeps surrounding whitespace (keys and certificates end in newlines).
    fn raw(&self, key: &str) -> Option<String> {
        self.fields
            .get(key)
            .filter(|v| !v.trim().is_empty())
            .cloned()
    }

    fn flag(&self, key: &'static str) -> Result<bool, RepoSecretError> {
        parse_go_bool(key, self.get(key)).map_err(|source| RepoSecretError::ReadSecret {
            secret: self.secret.clone(),
            source,
        })
    }

    fn int(&self, field: &'static str) -> Result<Option<i64>, RepoSecretError> {
        self.get(field)
            .map(|value| {
                value
                    .parse::<i64>()
                    .map_err(|source| RepoSecretError::ParseGithubAppId {
                        secret: self.secret.clone(),
                        field,
                        value: value.to_owned(),
                        source,
                    })
            })
            .transpose()
    }

    fn credentials(&self) -> Result<RepoCredentials, RepoSecretError> {
        let text = |key: &str| self.get(key).map(str::to_owned);
        Ok(RepoCredentials {
            username: text("username"),
            password: self.raw("password"),
            bearer_token: text("bearerToken"),
            ssh_private_key: self.raw("sshPrivateKey"),
            tls_client_cert_data: self.raw("tlsClientCertData"),
            tls_client_cert_key: self.raw("tlsClientCertKey"),
            github_app_private_key: self.raw("githubAppPrivateKey"),
            github_app_id: self.int("githubAppID")?,
            github_app_installation_id: self.int("githubAppInstallationID")?,
            github_app_enterprise_base_url: text("githubAppEnterpriseBaseUrl"),
            gcp_service_account_key: self.raw("gcpServiceAccountKey"),
            proxy: text("proxy"),
            no_proxy: text("noProxy"),
            force_http_basic_auth: self.flag("forceHttpBasicAuth")?,
        })
    }
}

impl RepoSpec {
    /// Parses a `repository` Secret. Requires the secret-type label and `url`.
    pub fn from_secret(secret: &Secret) -> Result<Self, RepoSecretError> {
        let parsed = Parsed::read(secret, SECRET_TYPE_REPOSITORY)?;
        Ok(RepoSpec {
            creds: parsed.credentials()?,
            repo_type: parsed.repo_type.unwrap_or(RepoType::Git),
            name: parsed.get("name").map(str::to_owned),
            project: parsed.get("project").map(str::to_owned),
            insecure: parsed.flag("insecure")?,
            enable_lfs: parsed.flag("enableLfs")?,
            enable_oci: parsed.flag("enableOCI")?,
            url: parsed.url,
            secret: parsed.secret,
        })
    }

    /// The repository with credentials inherited from the best-matching template, when
    /// it has none of its own (Argo CD's behaviour). Unchanged otherwise.
    pub fn with_inherited_creds(&self, templates: &[RepoCredsSpec]) -> RepoSpec {
        let mut repo = self.clone();
        if repo.creds.has_credentials() {
            return repo;
        }
        if let Some(template) = best_repo_creds(templates, &repo.url) {
            repo.creds.fill_from(&template.creds);
            repo.enable_oci |= template.enable_oci;
        }
        repo
    }
}

impl RepoCredsSpec {
    /// Parses a `repo-creds` Secret. Requires the secret-type label and `url`.
    pub fn from_secret(secret: &Secret) -> Result<Self, RepoSecretError> {
        let parsed = Parsed::read(secret, SECRET_TYPE_REPO_CREDS)?;
        Ok(RepoCredsSpec {
            creds: parsed.credentials()?,
            repo_type: parsed.repo_type,
            enable_oci: parsed.flag("enableOCI")?,
            url: parsed.url,
            secret: parsed.secret,
        })
    }
}

/// The credential template whose (normalized) URL is the longest prefix of the
/// (normalized) `repo_url`; the first one wins a tie. `None` when no template matches.
pub fn best_repo_creds<'a>(
    templates: &'a [RepoCredsSpec],
    repo_url: &str,
) -> Option<&'a RepoCredsSpec> {
    let repo = normalize_repo_url(repo_url);
    let mut best: Option<(usize, &RepoCredsSpec)> = None;
    for template in templates {
        let prefix = normalize_repo_url(&template.url);
        if repo.starts_with(&prefix) && best.is_none_or(|(len, _)| prefix.len() > len) {
            best = Some((prefix.len(), template));
        }
    }
    best.map(|(_, template)| template)
}

/// Normalizes a repository URL for comparison like Argo CD's `NormalizeGitURL`: trimmed,
/// lower-cased, without a trailing `/` or `.git`, and with scp-style SSH addresses
/// (`git@host:org/repo`) rewritten as `ssh://git@host/org/repo`.
pub fn normalize_repo_url(url: &str) -> String {
    let mut url = url.trim().to_lowercase();
    if !url.contains("://")
        && let Some((user_host, path)) = url.split_once(':')
        && user_host.contains('@')
    {
        url = format!("ssh://{user_host}/{}", path.trim_start_matches('/'));
    }
    let url = url.trim_end_matches('/');
    url.strip_suffix(".git").unwrap_or(url).to_owned()
}
