//! Where the host's Azure token comes from. Tokens never leave this module except as the
//! `Authorization` header of a request to the configured ARM endpoint.
//!
//! Selection, like the Azure SDKs: `AZURE_TOKEN_CREDENTIALS` pins one credential (`dev` for the
//! developer tools, `prod` for environment/workload/managed identity, or a credential name);
//! otherwise a client secret (`AZURE_TENANT_ID` + `AZURE_CLIENT_ID` + `AZURE_CLIENT_SECRET`),
//! workload identity (`AZURE_FEDERATED_TOKEN_FILE`), managed identity (`IDENTITY_ENDPOINT` or
//! `MSI_ENDPOINT`), and finally the developer tools (Azure CLI, then Azure Developer CLI).

use std::collections::HashMap;
use std::sync::Arc;

use azure_core::credentials::{AccessToken, Secret, TokenCredential};
use azure_core::time::{Duration, OffsetDateTime};
use azure_identity::{
    AzureCliCredential, AzureDeveloperCliCredential, ClientSecretCredential, DeveloperToolsCredential,
    ManagedIdentityCredential, ManagedIdentityCredentialOptions, UserAssignedId, WorkloadIdentityCredential,
};

/// The scope of Azure Resource Manager tokens.
pub const ARM_SCOPE: &str = "https://management.azure.com/.default";

/// A source of bearer tokens.
#[derive(Clone)]
pub enum Credential {
    /// A fixed token (the sandbox's emulator).
    Static(Arc<str>),
    /// An azure_identity credential; `identity` describes it for error messages.
    Azure { credential: Arc<dyn TokenCredential>, identity: String, cache: Arc<TokenCache> },
}

/// Tokens by scope, reused until [`REFRESH_MARGIN`] before they expire. Some azure_identity
/// credentials cache their tokens, but the developer tools (Azure CLI, azd) do not: without
/// this cache every ARM request would run `az account get-access-token`, a process start of
/// 0.5–1 s. The lock is held while a token is fetched, so concurrent calls wait for one fetch.
#[derive(Default)]
pub struct TokenCache(tokio::sync::Mutex<HashMap<String, AccessToken>>);

/// A cached token is refreshed this long before it expires (the Azure SDKs' margin).
const REFRESH_MARGIN: Duration = Duration::minutes(5);

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe())
    }
}

impl Credential {
    /// Chooses the Azure credential from the environment (see the module docs).
    pub fn from_environment() -> anyhow::Result<Self> {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        let pinned = var("AZURE_TOKEN_CREDENTIALS").map(|v| v.to_ascii_lowercase());
        let has_secret = var("AZURE_TENANT_ID").is_some()
            && var("AZURE_CLIENT_ID").is_some()
            && var("AZURE_CLIENT_SECRET").is_some();
        let has_workload = var("AZURE_FEDERATED_TOKEN_FILE").is_some();
        let has_msi = var("IDENTITY_ENDPOINT").is_some() || var("MSI_ENDPOINT").is_some();
        let choice = match pinned.as_deref() {
            Some("dev") => "developer",
            Some("prod") if has_secret => "secret",
            Some("prod") if has_workload => "workload",
            Some("prod") => "managed",
            Some("environmentcredential") => "secret",
            Some("workloadidentitycredential") => "workload",
            Some("managedidentitycredential") => "managed",
            Some("azureclicredential") => "cli",
            Some("azuredeveloperclicredential") => "azd",
            Some(other) => anyhow::bail!(
                "AZURE_TOKEN_CREDENTIALS={other} is not a credential this server knows; use dev, prod, \
                 EnvironmentCredential, WorkloadIdentityCredential, ManagedIdentityCredential, \
                 AzureCliCredential or AzureDeveloperCliCredential"
            ),
            None if has_secret => "secret",
            None if has_workload => "workload",
            None if has_msi => "managed",
            None => "developer",
        };
        let client_id = var("AZURE_CLIENT_ID");
        let (credential, identity): (Arc<dyn TokenCredential>, String) = match choice {
            "secret" => {
                let tenant = var("AZURE_TENANT_ID").ok_or_else(|| anyhow::anyhow!("AZURE_TENANT_ID is not set"))?;
                let client = client_id.clone().ok_or_else(|| anyhow::anyhow!("AZURE_CLIENT_ID is not set"))?;
                let secret =
                    var("AZURE_CLIENT_SECRET").ok_or_else(|| anyhow::anyhow!("AZURE_CLIENT_SECRET is not set"))?;
                (
                    ClientSecretCredential::new(&tenant, client.clone(), Secret::new(secret), None)?,
                    format!("service principal {client} (client secret)"),
                )
            }
            "workload" => {
                (WorkloadIdentityCredential::new(None)?, format!("workload identity {}", client_id.unwrap_or_default()))
            }
            "managed" => {
                let options = ManagedIdentityCredentialOptions {
                    user_assigned_id: client_id.clone().map(UserAssignedId::ClientId),
                    ..Default::default()
                };
                let who = client_id.map_or("system-assigned managed identity".into(), |c| {
                    format!("user-assigned managed identity {c}")
                });
                (ManagedIdentityCredential::new(Some(options))?, who)
            }
            "cli" => (AzureCliCredential::new(None)?, "the Azure CLI's signed-in account".into()),
            "azd" => (AzureDeveloperCliCredential::new(None)?, "the Azure Developer CLI's signed-in account".into()),
            _ => (
                DeveloperToolsCredential::new(None)?,
                "the developer tools' signed-in account (Azure CLI, then azd)".into(),
            ),
        };
        Ok(Self::Azure { credential, identity, cache: Arc::default() })
    }

    /// A bearer token for ARM. Never log the result.
    pub async fn token(&self) -> Result<String, String> {
        self.token_for(ARM_SCOPE).await
    }

    /// A bearer token for `scope` (ARM, or Log Analytics). Never log the result.
    pub async fn token_for(&self, scope: &str) -> Result<String, String> {
        match self {
            Self::Static(token) => Ok(token.to_string()),
            Self::Azure { credential, identity, cache } => {
                let mut tokens = cache.0.lock().await;
                if let Some(token) = tokens.get(scope)
                    && token.expires_on > OffsetDateTime::now_utc() + REFRESH_MARGIN
                {
                    return Ok(token.token.secret().to_string());
                }
                let token = credential
                    .get_token(&[scope], None)
                    .await
                    .map_err(|e| format!("could not get an Azure token for {identity}: {e}"))?;
                let secret = token.token.secret().to_string();
                tokens.insert(scope.to_string(), token);
                Ok(secret)
            }
        }
    }

    /// Who the credential is, for messages (never the token).
    pub fn describe(&self) -> String {
        match self {
            Self::Static(_) => "the sandbox emulator's static token".into(),
            Self::Azure { identity, .. } => identity.clone(),
        }
    }
}
