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
        let (code, message) = query_error(&text);
        Err(ArmError::Upstream { status, code, message, request_id })
    }
}

/// The `(code, message)` of a Log Analytics error body, for the plugin that sent the query.
///
/// Log Analytics nests its errors: a generic outer one (`BadArgumentError`, "The request had
/// some invalid properties"), a category (`SemanticError`, "A semantic error occurred."), and
/// innermost the one that says what is wrong ("'summarize' operator: Failed to resolve scalar
/// expression named 'Foo'", code `SEM0100`, with `line`/`pos`/`token` when it has a position).
/// The code stays the outer one (what a plugin matches on); the message is the innermost one,
/// followed by its code and position, so the author sees which name and where.
pub fn query_error(body: &str) -> (String, String) {
    let parsed: serde_json::Value = serde_json::from_str(body).unwrap_or_default();
    let outer = &parsed["error"];
    let code = outer["code"].as_str().unwrap_or("QueryError").to_string();
    let mut innermost = outer;
    // Bounded: a body is at most a few levels deep, and a hostile one must not spin us.
    for _ in 0..16 {
        match innermost.get("innererror") {
            Some(inner) if inner.is_object() => innermost = inner,
            _ => break,
        }
    }
    let Some(message) = innermost["message"].as_str().filter(|m| !m.is_empty()) else {
        let shown: String = body.chars().take(300).collect();
        let message = if shown.trim().is_empty() {
            "Log Analytics refused the query (no error body)".to_string()
        } else {
            format!("Log Analytics refused the query: {shown}")
        };
        return (code, message);
    };
    if std::ptr::eq(innermost, outer) {
        return (code, message.to_string());
    }
    let mut detail = vec![innermost["code"].as_str().unwrap_or("").to_string()];
    if let Some(line) = innermost["line"].as_u64() {
        detail.push(format!("line {line}"));
    }
    if let Some(pos) = innermost["pos"].as_u64() {
        detail.push(format!("position {pos}"));
    }
    if let Some(token) = innermost["token"].as_str().filter(|t| !t.is_empty()) {
        detail.push(format!("token {token:?}"));
    }
    detail.retain(|d| !d.is_empty());
    let detail = if detail.is_empty() { String::new() } else { format!(" ({})", detail.join(", ")) };
    (code, format!("{message}{detail}"))
}

#[cfg(test)]
mod tests {
    use super::query_error;

    #[test]
    fn a_nested_query_error_gives_the_innermost_message_its_code_and_position_under_the_outer_code() {
        let body = r#"{"error": {"code": "BadArgumentError", "message": "The request had some invalid properties",
            "innererror": {"code": "SemanticError", "message": "A semantic error occurred.",
            "innererror": {"code": "SEM0100", "message": "'summarize' operator: Failed to resolve scalar expression named 'Foo'",
            "line": 1, "pos": 42, "token": "Foo"}}}}"#;
        let (code, message) = query_error(body);
        assert_eq!(code, "BadArgumentError");
        assert_eq!(
            message,
            "'summarize' operator: Failed to resolve scalar expression named 'Foo' (SEM0100, line 1, position 42, token \"Foo\")"
        );
    }

    #[test]
    fn a_flat_or_missing_error_still_says_something() {
        let (code, message) =
            query_error(r#"{"error": {"code": "WorkspaceNotFoundError", "message": "no such workspace"}}"#);
        assert_eq!((code.as_str(), message.as_str()), ("WorkspaceNotFoundError", "no such workspace"));
        let (code, message) = query_error("");
        assert_eq!(code, "QueryError");
        assert!(message.contains("no error body"), "{message}");
        let (_, message) = query_error("<html>bad gateway</html>");
        assert!(message.contains("bad gateway"), "{message}");
    }
}
