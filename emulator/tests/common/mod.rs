//! Test harness: a real emulator on 127.0.0.1:0 and a real HTTP client.
#![allow(dead_code)]

use aigw_emulator::{Emulator, Options, RunningEmulator, sandbox_service_id};
use reqwest::Method;
use serde_json::Value;

pub const V: &str = "2024-05-01";
pub const TOKEN: &str = "test-token";

pub struct Emu {
    pub running: RunningEmulator,
    pub http: reqwest::Client,
}

pub struct Resp {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub text: String,
    pub body: Value,
}

impl Resp {
    /// The ETag header without quotes.
    pub fn etag(&self) -> String {
        let raw = self
            .headers
            .get("etag")
            .unwrap_or_else(|| panic!("no ETag header; status {} body {}", self.status, self.text));
        let raw = raw.to_str().unwrap();
        assert!(raw.starts_with('"') && raw.ends_with('"'), "ETag header must be quoted: {raw}");
        raw.trim_matches('"').to_string()
    }
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers.get(name).map(|v| v.to_str().unwrap().to_string())
    }
    pub fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or_else(|| panic!("no error code in {}", self.text))
    }
    pub fn message(&self) -> &str {
        self.body["error"]["message"].as_str().unwrap_or("")
    }
    pub fn detail_messages(&self) -> Vec<String> {
        self.body["error"]["details"]
            .as_array()
            .map(|d| d.iter().map(|d| d["message"].as_str().unwrap_or("").to_string()).collect())
            .unwrap_or_default()
    }
}

impl Emu {
    pub async fn start() -> Self {
        Self::with(Options::new(TOKEN)).await
    }

    pub async fn with(options: Options) -> Self {
        let emu = Emulator::new(options).expect("emulator");
        let running = emu.serve("127.0.0.1:0".parse().unwrap()).await.expect("serve");
        Self { running, http: reqwest::Client::new() }
    }

    /// An absolute URL for `path` (starting with `/`), with `api-version` appended.
    pub fn url(&self, path: &str) -> String {
        let sep = if path.contains('?') { '&' } else { '?' };
        format!("{}{path}{sep}api-version={V}", self.running.base_url)
    }

    /// An absolute URL for `rel` under the sandbox service (e.g. `/apis`), with api-version.
    pub fn svc(&self, rel: &str) -> String {
        self.url(&format!("{}{rel}", sandbox_service_id()))
    }

    pub async fn call(&self, method: Method, url: &str, body: Option<&Value>, headers: &[(&str, &str)]) -> Resp {
        let mut rb = self.http.request(method, url).header("authorization", format!("Bearer {TOKEN}"));
        for (k, v) in headers {
            rb = rb.header(*k, *v);
        }
        if let Some(b) = body {
            rb = rb.json(b);
        }
        let r = rb.send().await.expect("request");
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        let text = r.text().await.unwrap_or_default();
        let body = if text.is_empty() { Value::Null } else { serde_json::from_str(&text).unwrap_or(Value::Null) };
        Resp { status, headers, text, body }
    }

    pub async fn get(&self, rel: &str) -> Resp {
        self.call(Method::GET, &self.svc(rel), None, &[]).await
    }
    pub async fn head(&self, rel: &str) -> Resp {
        self.call(Method::HEAD, &self.svc(rel), None, &[]).await
    }
    pub async fn put(&self, rel: &str, body: Value) -> Resp {
        self.call(Method::PUT, &self.svc(rel), Some(&body), &[]).await
    }
    pub async fn put_if(&self, rel: &str, body: Value, etag: &str) -> Resp {
        let quoted = if etag == "*" { etag.to_string() } else { format!("\"{etag}\"") };
        self.call(Method::PUT, &self.svc(rel), Some(&body), &[("if-match", &quoted)]).await
    }
    pub async fn patch(&self, rel: &str, body: Value, etag: &str) -> Resp {
        let quoted = if etag == "*" { etag.to_string() } else { format!("\"{etag}\"") };
        self.call(Method::PATCH, &self.svc(rel), Some(&body), &[("if-match", &quoted)]).await
    }
    pub async fn delete(&self, rel: &str, etag: &str) -> Resp {
        let quoted = if etag == "*" { etag.to_string() } else { format!("\"{etag}\"") };
        self.call(Method::DELETE, &self.svc(rel), None, &[("if-match", &quoted)]).await
    }
    pub async fn post(&self, rel: &str) -> Resp {
        self.call(Method::POST, &self.svc(rel), None, &[]).await
    }

    /// An admin call (no auth).
    pub async fn admin(&self, method: Method, path: &str, body: Option<Value>) -> Resp {
        let mut rb = self.http.request(method, format!("{}{path}", self.running.base_url));
        if let Some(b) = body {
            rb = rb.json(&b);
        }
        let r = rb.send().await.expect("request");
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        let text = r.text().await.unwrap_or_default();
        let body = if text.is_empty() { Value::Null } else { serde_json::from_str(&text).unwrap_or(Value::Null) };
        Resp { status, headers, text, body }
    }
}
