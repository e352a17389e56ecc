//! The Log Analytics query client: the host's door to the service's gateway logs.
//!
//! Plugins send KQL; the host sends it to the one workspace the operator configured, with a
//! token for the Log Analytics audience. The answer is returned as JSON text.

use std::time::Duration;

use super::LazyHttp;
use super::client::ArmError;
use super::credential::Credential;

/// The scope of Log Analytics tokens.
pub const LOGS_SCOPE: &str = "https://api.loganalytics.io/.default";

/// A client for one Log Analytics workspace.
#[derive(Clone)]
pub struct LogsClient {
    http: LazyHttp,
    endpoint: String,
    workspace_id: String,
    credential: Credential,
}

impl LogsClient {
    /// `endpoint` is `https://api.loganalytics.io` in Azure, the emulator's URL in the sandbox.
    pub fn new(endpoint: &str, workspace_id: &str, credential: Credential) -> anyhow::Result<Self> {
        let http = LazyHttp::new(|| {
            reqwest::Client::builder()
                .user_agent(concat!("azure-ai-gateway-mcp/", env!("CARGO_PKG_VERSION")))
                .timeout(Duration::from_secs(60))
                .build()
        });
        Ok(Self {
            http,
            endpoint: endpoint.trim_end_matches('/').into(),
            workspace_id: workspace_id.into(),
            credential,
        })
    }

    /// Runs `query` over `timespan` (ISO-8601 duration or interval) and returns the JSON body.
    pub async fn query(&self, query: &str, timespan: Option<&str>) -> Result<String, ArmError> {
        let request_id = uuid::Uuid::new_v4().to_string();
        let token = self.credential.token_for(LOGS_SCOPE).await.map_err(ArmError::Refused)?;
        let mut body = serde_json::json!({ "query": query });
        if let Some(timespan) = timespan {
            body["timespan"] = timespan.into();
        }
        let url = format!("{}/v1/workspaces/{}/query", self.endpoint, self.workspace_id);
        let http =
            self.http.get().map_err(|message| ArmError::Transport { message, request_id: request_id.clone() })?;
        let response = http
            .post(url)
            .bearer_auth(token)
            .header("x-ms-client-request-id", &request_id)
            .json(&body)
            .send()
            .await
            .map_err(|e| ArmError::Transport {
                message: format!("Log Analytics query failed: {e}"),
                request_id: request_id.clone(),
            })?;
        let status = response.status().as_u16();
        let text = response
            .text()
            .await
            .map_err(|e| ArmError::Transport { message: e.to_string(), request_id: request_id.clone() })?;
        if (200..300).contains(&status) {
            return Ok(text);
        }
        let parsed: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
        let error = &parsed["error"];
        let mut message = error["message"].as_str().unwrap_or("Log Analytics refused the query").to_string();
        if let Some(inner) = error["innererror"]["message"].as_str() {
            message = format!("{message}: {inner}");
        }
        Err(ArmError::Upstream {
            status,
            code: error["code"].as_str().unwrap_or("QueryError").into(),
            message,
            request_id,
        })
    }
}
