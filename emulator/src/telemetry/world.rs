//! The emulated world as the traffic model needs it, compiled from the store: which subscriptions
//! send traffic, to which operation, through which policy pipeline, and what each backend is
//! (a pool of members, or a URL that does or does not reach a known Azure OpenAI deployment).
//!
//! A `World` is rebuilt whenever the store's generation changes (any ARM write), so every
//! simulated minute runs under the policies and backends stored when it is simulated.
//! Only the sandbox service carries traffic.

use std::collections::{BTreeMap, HashMap};

use crate::store::{AoaiDeployment, BackendKind, BreakerRule, State};

use super::policy_eval::{Caller, Pipeline, Policies};
use super::profile::Profile;

/// The Azure OpenAI data-plane API version clients use.
pub const AOAI_API_VERSION: &str = "2024-10-21";

/// Where a single backend's URL leads.
#[derive(Debug, Clone, PartialEq)]
pub enum Reach {
    /// The URL is a known deployment's endpoint.
    Deployment(usize),
    /// The host is a known account but the path is not its endpoint: the account answers 404.
    WrongPath(usize),
    /// Nothing answers at that host: connection failure.
    Unreachable,
}

/// A backend as the gateway routes to it.
#[derive(Debug, Clone)]
pub struct Backend {
    pub name: String,
    /// The lower-cased name (breaker and outage state are keyed by it).
    pub key: String,
    pub url: String,
    pub kind: Kind,
    pub breaker: Option<BreakerRule>,
}

#[derive(Debug, Clone)]
pub enum Kind {
    Single(Reach),
    /// Members as (backend index, priority, weight); missing members are left out.
    Pool(Vec<(usize, u32, u32)>),
}

/// One subscription's traffic: who, where to, and how the gateway treats it.
#[derive(Debug, Clone)]
pub struct Plan {
    pub sub: String,
    pub active: bool,
    pub product: String,
    pub user: String,
    pub api: String,
    pub operation: String,
    /// The gateway URL clients call.
    pub url: String,
    /// The path and query appended to a backend URL.
    pub backend_path: String,
    pub profile: Profile,
    pub pipeline: Pipeline,
}

/// Everything the model needs for one generation of the store.
#[derive(Debug, Clone, Default)]
pub struct World {
    /// Unique per compilation (caches keyed on a world use it).
    pub id: u64,
    pub generation: u64,
    pub hostname: String,
    /// The service's region as Azure displays it (`East US`).
    pub region: String,
    pub plans: Vec<Plan>,
    pub backends: Vec<Backend>,
    pub backend_index: HashMap<String, usize>,
    pub deployments: Vec<AoaiDeployment>,
}

impl World {
    /// The backend called `name` (case-insensitive).
    pub fn backend(&self, name: &str) -> Option<usize> {
        self.backend_index.get(&name.to_ascii_lowercase()).copied()
    }

    /// Compiles `state` for `profiles` (by lower-cased subscription id).
    pub fn compile(state: &State, profiles: &BTreeMap<String, Profile>, generation: u64) -> World {
        static NEXT_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        let id = NEXT_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let Some(svc) = state.sandbox() else {
            return World { id, generation, ..World::default() };
        };
        let hostname = format!("{}.azure-api.net", svc.name);
        let deployments = state.aoai_deployments.clone();
        let mut backends: Vec<Backend> = svc
            .backend_infos()
            .into_iter()
            .map(|b| {
                let (url, kind) = match &b.kind {
                    BackendKind::Single { url } => (url.clone(), Kind::Single(reach(url, &deployments))),
                    BackendKind::Pool { .. } => (String::new(), Kind::Pool(Vec::new())),
                };
                Backend {
                    key: b.name.to_ascii_lowercase(),
                    name: b.name.clone(),
                    url,
                    kind,
                    breaker: b.circuit_breaker.first().cloned(),
                }
            })
            .collect();
        let backend_index: HashMap<String, usize> =
            backends.iter().enumerate().map(|(i, b)| (b.name.to_ascii_lowercase(), i)).collect();
        for b in svc.backend_infos() {
            if let BackendKind::Pool { members } = &b.kind {
                let resolved: Vec<(usize, u32, u32)> = members
                    .iter()
                    .filter_map(|m| {
                        let i = *backend_index.get(&m.backend.to_ascii_lowercase())?;
                        // The gateway treats a missing priority as 0 (the highest) and a missing
                        // weight as 1.
                        Some((i, m.priority.unwrap_or(0), m.weight.unwrap_or(1)))
                    })
                    .collect();
                if let Some(&i) = backend_index.get(&b.name.to_ascii_lowercase()) {
                    backends[i].kind = Kind::Pool(resolved);
                }
            }
        }

        let policies = Policies::parse(svc);
        let mut plans = Vec::new();
        for sub in svc.subscription_infos() {
            let Some(profile) = profiles.get(&sub.name.to_ascii_lowercase()) else { continue };
            let api_id = match (&sub.product_id, &sub.api_id) {
                (Some(p), _) => {
                    let mut ids = svc.product_api_ids(p);
                    ids.sort();
                    ids.into_iter()
                        .find(|a| svc.apis.get(&a.to_ascii_lowercase()).is_some_and(|a| !a.operations.is_empty()))
                }
                (None, Some(a)) => Some(a.clone()),
                (None, None) if sub.all_apis => {
                    if svc.apis.contains_key("inference-api") {
                        Some("inference-api".to_string())
                    } else {
                        svc.apis.values().find(|a| !a.operations.is_empty()).map(|a| a.entity.name.clone())
                    }
                }
                _ => None,
            };
            let Some(api) = api_id.and_then(|a| svc.apis.get(&a.to_ascii_lowercase())) else { continue };
            let Some(op) = api.operations.values().next() else { continue };
            let template = op.entity.str("urlTemplate").unwrap_or("/");
            let path_and_query =
                template.replace("{deployment-id}", &profile.deployment).replace("{api-version}", AOAI_API_VERSION);
            let api_path = api.entity.str("path").unwrap_or("").trim_matches('/').to_string();
            let product_name = sub
                .product_id
                .as_ref()
                .and_then(|p| svc.products.get(&p.to_ascii_lowercase()))
                .and_then(|p| p.entity.str("displayName").map(str::to_string));
            let caller = Caller {
                sub: &sub,
                product_name,
                api_id: &api.entity.name,
                api_name: api.entity.str("displayName").unwrap_or_default().to_string(),
                api_path: api_path.clone(),
                operation_id: Some(&op.entity.name),
                operation_name: op.entity.str("displayName").unwrap_or_default().to_string(),
                region: &svc.location,
                service_name: &svc.name,
            };
            let pipeline = policies.pipeline(&caller);
            plans.push(Plan {
                sub: sub.name.clone(),
                active: sub.state == "active",
                product: sub.product_id.clone().unwrap_or_default(),
                user: sub.user_id.clone().unwrap_or_default(),
                api: api.entity.name.clone(),
                operation: op.entity.name.clone(),
                url: format!("https://{hostname}/{api_path}{path_and_query}"),
                backend_path: path_and_query,
                profile: profile.clone(),
                pipeline,
            });
        }
        World { id, generation, hostname, region: svc.location.clone(), plans, backends, backend_index, deployments }
    }
}

/// Where `url` leads among the known deployments. URLs are compared without scheme case,
/// host case or trailing slashes.
pub fn reach(url: &str, deployments: &[AoaiDeployment]) -> Reach {
    let norm = |u: &str| u.trim().trim_end_matches('/').to_ascii_lowercase();
    let host = |u: &str| {
        let u = norm(u);
        let rest = u.split_once("://").map_or(u.as_str(), |(_, r)| r).to_string();
        rest.split('/').next().unwrap_or_default().to_string()
    };
    let u = norm(url);
    if let Some(i) = deployments.iter().position(|d| norm(&d.endpoint) == u) {
        return Reach::Deployment(i);
    }
    match deployments.iter().position(|d| host(&d.endpoint) == host(url)) {
        Some(i) => Reach::WrongPath(i),
        None => Reach::Unreachable,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::seed::{EASTUS_ENDPOINT, WESTEUROPE_ENDPOINT, sandbox_state};

    #[test]
    fn the_seed_compiles_to_six_plans_routed_to_the_pool() {
        let state = sandbox_state();
        let profiles: BTreeMap<String, Profile> =
            super::super::profile::seeded().into_iter().map(|(k, v)| (k.to_string(), v)).collect();
        let w = World::compile(&state, &profiles, 1);
        let subs: Vec<&str> = w.plans.iter().map(|p| p.sub.as_str()).collect();
        assert_eq!(subs, ["data-science", "growth", "master", "prod-critical", "search", "support"]);
        let growth = &w.plans[1];
        assert_eq!(growth.api, "inference-api");
        assert_eq!(growth.operation, "chat-completions");
        assert_eq!(
            growth.url,
            "https://apim-sandbox.azure-api.net/inference/openai/deployments/gpt-4o/chat/completions?api-version=2024-10-21"
        );
        let pool = w.backend("aoai-pool").unwrap();
        let east = w.backend("AOAI-EASTUS").unwrap();
        assert!(matches!(&w.backends[pool].kind, Kind::Pool(m) if m == &vec![(east, 1, 1)]));
        assert!(matches!(w.backends[east].kind, Kind::Single(Reach::Deployment(0))));
        assert_eq!(w.backends[east].breaker.as_ref().unwrap().count, Some(5));
        let d = &state.aoai_deployments;
        assert_eq!(reach(&format!("{WESTEUROPE_ENDPOINT}/"), d), Reach::Deployment(1));
        assert_eq!(reach(&EASTUS_ENDPOINT.to_uppercase(), d), Reach::Deployment(0));
        assert_eq!(reach("https://aoai-westeurope.openai.azure.com", d), Reach::WrongPath(1));
        assert_eq!(reach("https://aoai-swedencentral.openai.azure.com/openai", d), Reach::Unreachable);
    }
}
