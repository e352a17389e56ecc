//! Evaluates the stored policy documents into what the gateway would do for one subscription:
//! an ordered list of inbound steps (limits, cache lookup, token metrics, backend selection), the
//! backend section's retry, and the outbound cache store.
//!
//! How the gateway composes scopes: global → product (only for keys scoped to a product) → API
//! → operation. In each section a scope's `<base />` is replaced by the enclosing scope's same
//! section; a scope without a document, or a document without that section, inherits the section
//! unchanged (as if it were `<base />`). Inside a section, `<choose>` takes the first `<when>`
//! whose condition is true, else `<otherwise>`.
//!
//! Every condition the seeded and lab policies use depends only on who is calling
//! (subscription, product, API, operation), which is fixed per subscription, so `<choose>` is
//! resolved once per subscription and policy generation, not per request. A condition that
//! cannot be evaluated (see `expr`) is treated as false and reported in `Pipeline::notes`.
//!
//! Counter keys and dimension values are evaluated once too; if they use
//! `context.Request.IpAddress` the result holds [`IP_MARK`], replaced per request with the
//! caller's address.
//!
//! `{{named values}}` are substituted in the text before parsing, as the gateway does.

use crate::store::{PolicyScope, Service, SubscriptionInfo};
use crate::validate::xml::{self, Element, Format};

use super::expr::{self, Val};

/// Stands in for the caller's IP address in keys and dimension values resolved ahead of time.
pub const IP_MARK: &str = "\u{1}ip\u{1}";
/// Stands in for the selected backend's id in dimension values resolved ahead of time.
pub const BACKEND_MARK: &str = "\u{1}backend\u{1}";

/// A token quota period (`token-quota-period`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Period {
    Hourly,
    Daily,
    Weekly,
    Monthly,
    Yearly,
}

impl Period {
    fn parse(s: &str) -> Option<Period> {
        Some(match s.to_ascii_lowercase().as_str() {
            "hourly" => Period::Hourly,
            "daily" => Period::Daily,
            "weekly" => Period::Weekly,
            "monthly" => Period::Monthly,
            "yearly" => Period::Yearly,
            _ => return None,
        })
    }
}

/// One inbound policy the model executes, in document order.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// `llm-token-limit` / `azure-openai-token-limit`.
    TokenLimit { element: String, key: String, tpm: Option<u64>, quota: Option<(u64, Period)>, estimate: bool },
    /// `rate-limit-by-key`: `calls` per sliding `period_s` seconds per key.
    RateLimitByKey { key: String, calls: u64, period_s: u32 },
    /// `quota-by-key`: `calls` per fixed `period_s` seconds per key (0 = never renews).
    QuotaByKey { key: String, calls: u64, period_s: u64 },
    /// `llm-semantic-cache-lookup` / `azure-openai-semantic-cache-lookup`.
    CacheLookup { element: String, threshold: f64, partition: String },
    /// `llm-emit-token-metric` / `azure-openai-emit-token-metric`.
    EmitTokenMetric { namespace: String, dimensions: Vec<(String, String)> },
    /// `set-backend-service`.
    SetBackend(Target),
    /// `return-response` (or `mock-response`): the gateway answers with `status` itself.
    Respond { status: u16 },
}

/// Where `set-backend-service` sends the request.
#[derive(Debug, Clone, PartialEq)]
pub enum Target {
    BackendId(String),
    BaseUrl(String),
}

/// The `<retry>` around `forward-request` in the backend section.
#[derive(Debug, Clone, PartialEq)]
pub struct Retry {
    /// The condition expression (attribute text), evaluated against each attempt's status.
    pub condition: String,
    pub count: u32,
    pub interval_s: u32,
    pub first_fast_retry: bool,
}

/// What the gateway does for one subscription's requests to one API operation.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Pipeline {
    pub inbound: Vec<Step>,
    /// The scope each inbound step comes from (`global`, `product`, `api`, `operation`), as
    /// `LastErrorScope` reports it.
    pub inbound_scopes: Vec<&'static str>,
    /// `set-backend-service` inside the backend section (overrides the inbound one).
    pub backend_target: Option<Target>,
    pub retry: Option<Retry>,
    /// `forward-request` is present in the backend section.
    pub forwards: bool,
    /// `llm-semantic-cache-store duration` in seconds, if outbound stores responses.
    pub cache_store_s: Option<u64>,
    /// Things the model could not evaluate (conditions, keys) and what it did instead.
    pub notes: Vec<String>,
}

/// The facts the gateway knows about a caller when it evaluates expressions.
#[derive(Debug, Clone)]
pub struct Caller<'a> {
    pub sub: &'a SubscriptionInfo,
    pub product_name: Option<String>,
    pub api_id: &'a str,
    pub api_name: String,
    pub api_path: String,
    pub operation_id: Option<&'a str>,
    pub operation_name: String,
    pub region: &'a str,
    pub service_name: &'a str,
}

impl Caller<'_> {
    fn member(&self, path: &[&str]) -> Option<Val> {
        let s = |v: &str| Some(Val::Str(v.to_string()));
        let opt = |v: Option<&str>| Some(v.map_or(Val::Null, |v| Val::Str(v.to_string())));
        match path {
            ["Subscription"] => s(&self.sub.name),
            ["Subscription", "Id"] => s(&self.sub.name),
            ["Subscription", "Name"] => s(&self.sub.display_name),
            ["Product"] => opt(self.sub.product_id.as_deref()),
            ["Product", rest @ ..] => match (&self.sub.product_id, rest) {
                (None, _) => Some(Val::Null),
                (Some(p), ["Id"]) => s(p),
                (Some(_), ["Name"]) => opt(self.product_name.as_deref()),
                _ => None,
            },
            ["Api", "Id"] => s(self.api_id),
            ["Api", "Name"] => s(&self.api_name),
            ["Api", "Path"] => s(&self.api_path),
            ["Operation", "Id"] => opt(self.operation_id),
            ["Operation", "Name"] => s(&self.operation_name),
            ["Operation", "Method"] | ["Request", "Method"] => s("POST"),
            ["User"] => opt(self.sub.user_id.as_deref()),
            ["User", "Id"] => opt(self.sub.user_id.as_deref()),
            ["Deployment", "Region"] => s(self.region),
            ["Deployment", "ServiceName"] => s(self.service_name),
            ["Deployment", "GatewayId"] => s("managed"),
            ["Request", "IpAddress"] => s(IP_MARK),
            _ => None,
        }
    }
}

/// The parsed policy documents of one service, ready to build pipelines from.
pub struct Policies {
    docs: Vec<(PolicyScope, Result<Element, String>)>,
}

impl Policies {
    /// Parses every policy document of `svc` (named values substituted).
    pub fn parse(svc: &Service) -> Policies {
        let docs = svc
            .policies()
            .into_iter()
            .map(|(scope, text)| {
                let text = svc.substitute_named_values(text);
                let parsed = xml::parse(&text, Format::RawXml)
                    .or_else(|_| xml::parse(&text, Format::Xml))
                    .map(|d| d.root)
                    .map_err(|e| e.display(&text));
                (scope, parsed)
            })
            .collect();
        Policies { docs }
    }

    fn doc(&self, scope: &PolicyScope) -> Option<&Result<Element, String>> {
        self.docs.iter().find(|(s, _)| scope_eq(s, scope)).map(|(_, d)| d)
    }

    /// The pipeline for `caller`.
    pub fn pipeline(&self, caller: &Caller) -> Pipeline {
        let mut chain = vec![PolicyScope::Global];
        if let Some(p) = &caller.sub.product_id {
            chain.push(PolicyScope::Product(p.clone()));
        }
        chain.push(PolicyScope::Api(caller.api_id.to_string()));
        if let Some(o) = caller.operation_id {
            chain.push(PolicyScope::Operation(caller.api_id.to_string(), o.to_string()));
        }
        let mut p = Pipeline::default();
        let mut notes = Vec::new();
        let inbound = self.section(&chain, "inbound", &mut notes);
        let backend = self.section(&chain, "backend", &mut notes);
        let outbound = self.section(&chain, "outbound", &mut notes);
        let ctx = |path: &[&str]| caller.member(path);
        for (e, scope) in flatten(&inbound, &ctx, &mut notes) {
            if let Some(step) = inbound_step(e, caller, &ctx, &mut notes) {
                p.inbound.push(step);
                p.inbound_scopes.push(scope);
            }
        }
        for (e, _) in flatten(&backend, &ctx, &mut notes) {
            match e.name.as_str() {
                "set-backend-service" => p.backend_target = target(e),
                "forward-request" => p.forwards = true,
                "retry" => {
                    let children: Vec<_> = e.elements().map(|c| (c, "")).collect();
                    let inner: Vec<&Element> = flatten(&children, &ctx, &mut notes).into_iter().map(|x| x.0).collect();
                    for i in &inner {
                        match i.name.as_str() {
                            "forward-request" => p.forwards = true,
                            "set-backend-service" => p.backend_target = target(i),
                            _ => {}
                        }
                    }
                    if inner.iter().any(|i| i.name == "forward-request") {
                        p.retry = Some(Retry {
                            condition: e.attr("condition").unwrap_or("false").to_string(),
                            count: e.attr("count").and_then(|c| c.trim().parse().ok()).unwrap_or(0),
                            interval_s: e.attr("interval").and_then(|c| c.trim().parse().ok()).unwrap_or(0),
                            first_fast_retry: e.attr("first-fast-retry").is_some_and(|v| v.trim() == "true"),
                        });
                    }
                }
                _ => {}
            }
        }
        for (e, _) in flatten(&outbound, &ctx, &mut notes) {
            if matches!(e.name.as_str(), "llm-semantic-cache-store" | "azure-openai-semantic-cache-store") {
                let d = e.attr("duration").map(|d| expr::eval_attr(d, &ctx));
                match d {
                    Some(Ok(v)) => match v.to_text().trim().parse::<u64>() {
                        Ok(s) => p.cache_store_s = Some(s),
                        Err(_) => notes.push(format!(
                            "{}: duration '{}' is not a number; nothing is stored",
                            e.name,
                            v.to_text()
                        )),
                    },
                    Some(Err(err)) => {
                        notes.push(format!("{}: duration not evaluated ({err}); nothing is stored", e.name))
                    }
                    None => {}
                }
            }
        }
        notes.dedup();
        p.notes = notes;
        p
    }

    /// The elements of `section` after `<base />` expansion along `chain` (outermost first).
    fn section<'a>(
        &'a self,
        chain: &[PolicyScope],
        section: &str,
        notes: &mut Vec<String>,
    ) -> Vec<(&'a Element, &'static str)> {
        let mut acc: Vec<(&Element, &'static str)> = Vec::new();
        for scope in chain {
            let Some(doc) = self.doc(scope) else { continue };
            let root = match doc {
                Ok(r) => r,
                Err(e) => {
                    notes.push(format!("{scope:?} policy is not parseable ({e}); it is ignored"));
                    continue;
                }
            };
            let Some(sec) = root.elements().find(|e| e.name == section) else { continue };
            let label = match scope {
                PolicyScope::Global => "global",
                PolicyScope::Product(_) => "product",
                PolicyScope::Api(_) => "api",
                PolicyScope::Operation(..) => "operation",
            };
            let mut next = Vec::new();
            for child in sec.elements() {
                if child.name == "base" {
                    next.extend(acc.iter().copied());
                } else {
                    next.push((child, label));
                }
            }
            acc = next;
        }
        acc
    }
}

fn scope_eq(a: &PolicyScope, b: &PolicyScope) -> bool {
    match (a, b) {
        (PolicyScope::Global, PolicyScope::Global) => true,
        (PolicyScope::Product(x), PolicyScope::Product(y)) | (PolicyScope::Api(x), PolicyScope::Api(y)) => {
            x.eq_ignore_ascii_case(y)
        }
        (PolicyScope::Operation(a1, o1), PolicyScope::Operation(a2, o2)) => {
            a1.eq_ignore_ascii_case(a2) && o1.eq_ignore_ascii_case(o2)
        }
        _ => false,
    }
}

/// Resolves `<choose>` (recursively) into the elements of the branch taken.
fn flatten<'a>(
    elements: &[(&'a Element, &'static str)],
    ctx: &dyn expr::Context,
    notes: &mut Vec<String>,
) -> Vec<(&'a Element, &'static str)> {
    let mut out = Vec::new();
    for &(e, scope) in elements {
        if e.name != "choose" {
            out.push((e, scope));
            continue;
        }
        let mut taken = None;
        for branch in e.elements() {
            match branch.name.as_str() {
                "when" => {
                    let cond = branch.attr("condition").unwrap_or("");
                    match expr::eval_attr(cond, ctx) {
                        Ok(v) if v.is_true() => {
                            taken = Some(branch);
                            break;
                        }
                        Ok(_) => {}
                        Err(err) => notes.push(format!(
                            "<when condition=\"{cond}\"> was not evaluated ({err}); the model treats it as false"
                        )),
                    }
                }
                "otherwise" => {
                    taken = Some(branch);
                    break;
                }
                _ => {}
            }
        }
        if let Some(b) = taken {
            let children: Vec<_> = b.elements().map(|c| (c, scope)).collect();
            out.extend(flatten(&children, ctx, notes));
        }
    }
    out
}

fn target(e: &Element) -> Option<Target> {
    if let Some(id) = e.attr("backend-id") {
        return Some(Target::BackendId(id.trim().to_string()));
    }
    e.attr("base-url").map(|u| Target::BaseUrl(u.trim().to_string()))
}

fn num(e: &Element, attr: &str, ctx: &dyn expr::Context, notes: &mut Vec<String>) -> Option<u64> {
    let raw = e.attr(attr)?;
    match expr::eval_attr(raw, ctx) {
        Ok(v) => match v {
            Val::Int(i) if i >= 0 => Some(i as u64),
            other => match other.to_text().trim().parse::<u64>() {
                Ok(n) => Some(n),
                Err(_) => {
                    notes.push(format!("{} {attr}=\"{raw}\" is not a number; the limit is ignored", e.name));
                    None
                }
            },
        },
        Err(err) => {
            notes.push(format!("{} {attr}=\"{raw}\" was not evaluated ({err}); the limit is ignored", e.name));
            None
        }
    }
}

fn key(e: &Element, ctx: &dyn expr::Context, notes: &mut Vec<String>) -> Option<String> {
    let raw = e.attr("counter-key")?;
    match expr::eval_attr(raw, ctx) {
        Ok(v) => Some(v.to_text()),
        Err(err) => {
            notes.push(format!(
                "{} counter-key=\"{raw}\" was not evaluated ({err}); its text is used as one shared key",
                e.name
            ));
            Some(raw.to_string())
        }
    }
}

fn inbound_step(e: &Element, caller: &Caller, ctx: &dyn expr::Context, notes: &mut Vec<String>) -> Option<Step> {
    let name = e.name.as_str();
    Some(match name {
        "llm-token-limit" | "azure-openai-token-limit" => {
            let key = key(e, ctx, notes)?;
            let tpm = num(e, "tokens-per-minute", ctx, notes);
            let quota = match (num(e, "token-quota", ctx, notes), e.attr("token-quota-period").and_then(Period::parse))
            {
                (Some(q), Some(p)) => Some((q, p)),
                _ => None,
            };
            let estimate = e.attr("estimate-prompt-tokens").is_some_and(|v| v.trim().eq_ignore_ascii_case("true"));
            Step::TokenLimit { element: name.to_string(), key, tpm, quota, estimate }
        }
        "rate-limit-by-key" => Step::RateLimitByKey {
            key: key(e, ctx, notes)?,
            calls: num(e, "calls", ctx, notes)?,
            period_s: num(e, "renewal-period", ctx, notes)?.clamp(1, 300) as u32,
        },
        // `rate-limit` counts per subscription (and scope); the key makes it per subscription.
        "rate-limit" => Step::RateLimitByKey {
            key: format!("rate-limit:{}", caller.sub.name),
            calls: num(e, "calls", ctx, notes)?,
            period_s: num(e, "renewal-period", ctx, notes)?.clamp(1, 300) as u32,
        },
        "quota-by-key" => Step::QuotaByKey {
            key: key(e, ctx, notes)?,
            calls: num(e, "calls", ctx, notes)?,
            period_s: num(e, "renewal-period", ctx, notes)?,
        },
        "quota" => Step::QuotaByKey {
            key: format!("quota:{}", caller.sub.name),
            calls: num(e, "calls", ctx, notes)?,
            period_s: num(e, "renewal-period", ctx, notes)?,
        },
        "llm-semantic-cache-lookup" | "azure-openai-semantic-cache-lookup" => {
            // A distance (see `model::hit_share`); without one, nothing but an identical prompt matches.
            let threshold = e.attr("score-threshold").and_then(|t| t.trim().parse::<f64>().ok()).unwrap_or(0.0);
            // vary-by children partition the cache; concatenated like the gateway does.
            let mut partition = String::new();
            for v in e.elements().filter(|c| c.name == "vary-by") {
                let text: String = v.texts().map(|t| t.value.trim().to_string()).collect();
                match expr::eval_attr(&text, ctx) {
                    Ok(val) => partition.push_str(&val.to_text()),
                    Err(err) => {
                        notes.push(format!("<vary-by>{text}</vary-by> was not evaluated ({err}); its text is used"));
                        partition.push_str(&text);
                    }
                }
            }
            Step::CacheLookup { element: name.to_string(), threshold, partition }
        }
        "llm-emit-token-metric" | "azure-openai-emit-token-metric" => {
            let namespace = e.attr("namespace").unwrap_or("API Management").to_string();
            let mut dimensions = Vec::new();
            for d in e.elements().filter(|c| c.name == "dimension") {
                let Some(dname) = d.attr("name") else { continue };
                let value = match d.attr("value") {
                    Some(v) => match expr::eval_attr(v, ctx) {
                        Ok(val) => val.to_text(),
                        Err(err) => {
                            notes.push(format!(
                                "dimension '{dname}' value \"{v}\" was not evaluated ({err}); \"N/A\" is emitted"
                            ));
                            "N/A".to_string()
                        }
                    },
                    None => default_dimension(dname, caller),
                };
                dimensions.push((dname.to_string(), value));
            }
            Step::EmitTokenMetric { namespace, dimensions }
        }
        "set-backend-service" => Step::SetBackend(target(e)?),
        "return-response" => {
            let status = e
                .elements()
                .find(|c| c.name == "set-status")
                .and_then(|s| s.attr("code"))
                .and_then(|c| c.trim().parse().ok())
                .unwrap_or(200);
            Step::Respond { status }
        }
        "mock-response" => {
            Step::Respond { status: e.attr("status-code").and_then(|c| c.trim().parse().ok()).unwrap_or(200) }
        }
        _ => return None,
    })
}

/// The value of a default dimension of `llm-emit-token-metric` (no `value` attribute).
fn default_dimension(name: &str, caller: &Caller) -> String {
    match name.to_ascii_lowercase().as_str() {
        "api id" => caller.api_id.to_string(),
        "operation id" => caller.operation_id.unwrap_or_default().to_string(),
        "product id" => caller.sub.product_id.clone().unwrap_or_default(),
        "user id" => caller.sub.user_id.clone().unwrap_or_default(),
        "subscription id" => caller.sub.name.clone(),
        "location" => caller.region.to_string(),
        "gateway id" => "managed".to_string(),
        "backend id" => BACKEND_MARK.to_string(),
        // APIM rejects other names without a value at PUT; emit nothing meaningful.
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::seed::sandbox_state;

    fn caller<'a>(svc: &'a Service, sub: &'a SubscriptionInfo) -> Caller<'a> {
        Caller {
            sub,
            product_name: sub.product_id.as_ref().map(|_| "Azure OpenAI".to_string()),
            api_id: "inference-api",
            api_name: "Inference API".into(),
            api_path: "inference/openai".into(),
            operation_id: Some("chat-completions"),
            operation_name: "chat".into(),
            region: "East US",
            service_name: &svc.name,
        }
    }

    #[test]
    fn the_seed_policy_gives_each_team_its_limits() {
        let state = sandbox_state();
        let svc = state.sandbox().unwrap();
        let policies = Policies::parse(svc);
        let expect = [
            ("growth", 200_000, 1_200),
            ("prod-critical", 400_000, 2_400),
            ("data-science", 50_000, 300),
            ("search", 100_000, 600),
            ("support", 100_000, 600),
        ];
        for (sid, tpm, rpm) in expect {
            let sub = svc.subscription(sid).unwrap();
            let p = policies.pipeline(&caller(svc, &sub));
            assert!(p.notes.is_empty(), "{sid}: {:?}", p.notes);
            assert_eq!(
                p.inbound[0],
                Step::TokenLimit {
                    element: "llm-token-limit".into(),
                    key: sid.into(),
                    tpm: Some(tpm),
                    quota: None,
                    estimate: false
                },
                "{sid}"
            );
            assert_eq!(p.inbound[1], Step::RateLimitByKey { key: sid.into(), calls: rpm, period_s: 60 });
            assert_eq!(
                p.inbound[2],
                Step::EmitTokenMetric {
                    namespace: "openai".into(),
                    dimensions: vec![
                        ("Subscription ID".into(), sid.into()),
                        ("API ID".into(), "inference-api".into()),
                        ("Client IP".into(), IP_MARK.into()),
                    ]
                }
            );
            assert_eq!(p.inbound[3], Step::SetBackend(Target::BackendId("aoai-pool".into())));
            assert_eq!(p.inbound.len(), 4);
            assert_eq!(p.inbound_scopes, ["api"; 4]);
            let r = p.retry.as_ref().unwrap();
            assert_eq!((r.count, r.interval_s, r.first_fast_retry), (1, 0, true));
            assert!(r.condition.contains("StatusCode == 429 || context.Response.StatusCode == 503"), "{}", r.condition);
            assert!(p.forwards);
            assert_eq!(p.cache_store_s, None);
        }
        // master: no product, no branch matches: metrics and routing only.
        let master = svc.subscription("master").unwrap();
        let p = policies.pipeline(&caller(svc, &master));
        assert_eq!(p.inbound.len(), 2, "{:?}", p.inbound);
        assert!(matches!(p.inbound[0], Step::EmitTokenMetric { .. }));
    }

    #[test]
    fn base_expansion_cache_and_unknown_conditions() {
        let mut state = sandbox_state();
        let svc = state.services.values_mut().next().unwrap();
        let api = svc.apis.get_mut("inference-api").unwrap();
        let policy = r#"<policies>
  <inbound>
    <llm-semantic-cache-lookup score-threshold="0.9" embeddings-backend-id="aoai-eastus" embeddings-backend-auth="system-assigned">
      <vary-by>@(context.Subscription.Id)</vary-by>
    </llm-semantic-cache-lookup>
    <base />
    <choose>
      <when condition="@(context.Request.Headers.GetValueOrDefault(&quot;x&quot;,&quot;&quot;) == &quot;y&quot;)"><rate-limit-by-key calls="1" renewal-period="60" counter-key="never" /></when>
      <when condition="@(DateTime.UtcNow.Hour > 3)"><rate-limit-by-key calls="2" renewal-period="60" counter-key="never" /></when>
      <otherwise><azure-openai-token-limit counter-key="@(&quot;ip-&quot; + context.Request.IpAddress)" tokens-per-minute="{{tpm-data-science}}" token-quota="1000" token-quota-period="Daily" estimate-prompt-tokens="true" /></otherwise>
    </choose>
  </inbound>
  <backend><base /></backend>
  <outbound><llm-semantic-cache-store duration="3600" /></outbound>
</policies>"#;
        api.policy.as_mut().unwrap().properties.insert("value".into(), policy.into());
        let svc = state.sandbox().unwrap();
        let policies = Policies::parse(svc);
        let sub = svc.subscription("growth").unwrap();
        let p = policies.pipeline(&caller(svc, &sub));
        assert_eq!(
            p.inbound[0],
            Step::CacheLookup {
                element: "llm-semantic-cache-lookup".into(),
                threshold: 0.9,
                partition: "growth".into()
            }
        );
        assert_eq!(
            p.inbound[1],
            Step::TokenLimit {
                element: "azure-openai-token-limit".into(),
                key: format!("ip-{IP_MARK}"),
                tpm: Some(50_000),
                quota: Some((1000, Period::Daily)),
                estimate: true
            }
        );
        assert_eq!(p.inbound.len(), 2, "{:?}", p.inbound);
        assert_eq!(p.notes.len(), 1, "{:?}", p.notes);
        assert!(p.notes[0].contains("DateTime"), "{:?}", p.notes);
        // The backend section is the global one (<base/>): plain forward-request, no retry.
        assert!(p.forwards && p.retry.is_none());
        assert_eq!(p.cache_store_s, Some(3600));
    }
}
