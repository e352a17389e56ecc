//! The emulator's state: every APIM service with its entities, the ETag sequence, and the
//! world facts the traffic model needs (Azure OpenAI deployments). Also its persistence.
//!
//! Invariants:
//! - Entities are stored in `BTreeMap`s keyed by their lower-cased name (APIM ids are
//!   case-insensitive); `Entity::name` keeps the case the client created it with. Lists are
//!   therefore in case-insensitive name order, which makes `$skip` paging stable.
//! - Every write takes a fresh ETag from `EtagSeq`, a strictly increasing counter that survives
//!   reset and restarts, so an ETag is never reissued for a different version of anything.
//!   Deletes bump the counter too; `Store::generation` is that counter and so changes on every
//!   write (readers such as the telemetry model can cache on it).
//! - Stored properties are the *stored* form: references (`scope`, `ownerId`, `loggerId`, pool
//!   member ids) as full ARM ids, secrets (subscription keys, secret named values) included.
//!   Hiding secrets is the job of the ARM renderers, never of the store.
//! - Writers validate before they mutate: a closure passed to `Store::write` that returns `Err`
//!   must not have changed anything.
//! - With a state file, every successful write is persisted before the response is sent:
//!   write to a temporary file in the same directory, fsync, rename over the file, fsync the
//!   directory. If persisting fails, the in-memory change is rolled back and the write fails.
//!   A file that cannot be parsed is refused, never replaced.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::RwLock;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::util::etag_for;
use crate::validate::backend::parse_iso8601_duration;

/// An entity's `properties` object.
pub type Props = Map<String, Value>;

/// A collection of entities keyed by lower-cased name.
pub type Table<T = Entity> = BTreeMap<String, T>;

/// The key an entity name is stored under.
pub fn key(name: &str) -> String {
    name.to_ascii_lowercase()
}

/// One stored ARM proxy resource: name, current ETag and properties (stored form).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entity {
    pub name: String,
    pub etag: String,
    pub properties: Props,
}

impl Entity {
    /// A string property, if present and a string.
    pub fn str(&self, prop: &str) -> Option<&str> {
        self.properties.get(prop).and_then(Value::as_str)
    }
    /// A boolean property, if present and a boolean.
    pub fn bool(&self, prop: &str) -> Option<bool> {
        self.properties.get(prop).and_then(Value::as_bool)
    }
}

/// The ETag sequence. `issue` hands out a new ETag; `bump` advances without one (deletes).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct EtagSeq(pub u64);

impl EtagSeq {
    pub fn issue(&mut self) -> String {
        self.0 += 1;
        etag_for(self.0)
    }
    pub fn bump(&mut self) {
        self.0 += 1;
    }
}

/// The whole emulated world.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct State {
    pub etag_seq: EtagSeq,
    /// Resource groups that exist, keyed by `"{subscriptionId}/{rg}"` lower-cased.
    pub resource_groups: BTreeMap<String, ResourceGroup>,
    /// APIM services keyed by `"{subscriptionId}/{rg}/{name}"` lower-cased.
    pub services: BTreeMap<String, Service>,
    /// Azure OpenAI deployments that exist in the emulated world, whether or not an APIM
    /// backend points at them (the sandbox's West Europe deployment is not a backend yet).
    #[serde(default)]
    pub aoai_deployments: Vec<AoaiDeployment>,
}

impl State {
    /// The key of the service `sub/rg/name`.
    pub fn service_key(sub: &str, rg: &str, name: &str) -> String {
        format!("{sub}/{rg}/{name}").to_ascii_lowercase()
    }
    /// The service `sub/rg/name`, if it exists.
    pub fn service(&self, sub: &str, rg: &str, name: &str) -> Option<&Service> {
        self.services.get(&Self::service_key(sub, rg, name))
    }
    /// The sandbox service (present unless someone deleted it).
    pub fn sandbox(&self) -> Option<&Service> {
        self.service(crate::SANDBOX_SUBSCRIPTION_ID, crate::SANDBOX_RESOURCE_GROUP, crate::SANDBOX_SERVICE_NAME)
    }
}

/// A resource group the emulator knows (services can only be created in known groups).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ResourceGroup {
    pub subscription_id: String,
    pub name: String,
    pub location: String,
}

/// An Azure OpenAI model deployment in the emulated world.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AoaiDeployment {
    /// The Azure OpenAI account (resource) name, e.g. `aoai-eastus`.
    pub account: String,
    /// Azure region name, e.g. `eastus`.
    pub region: String,
    /// The endpoint APIM backends use, e.g. `https://aoai-eastus.openai.azure.com/openai`.
    pub endpoint: String,
    /// The deployment name clients put in the URL (`/deployments/{name}/chat/completions`).
    pub deployment: String,
    pub model: String,
    pub model_version: String,
    /// Deployment capacity in tokens per minute (1 capacity unit = 1,000 TPM).
    pub capacity_tpm: u64,
    /// Requests per minute the deployment allows (6 per 1,000 TPM for chat models).
    pub capacity_rpm: u64,
}

/// One APIM service and everything under it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Service {
    pub subscription_id: String,
    pub resource_group: String,
    pub name: String,
    pub etag: String,
    pub location: String,
    pub sku: Value,
    #[serde(default)]
    pub identity: Option<Value>,
    #[serde(default)]
    pub tags: Props,
    pub properties: Props,
    /// The global (service-scope) policy.
    #[serde(default)]
    pub policy: Option<Entity>,
    #[serde(default)]
    pub products: Table<Product>,
    #[serde(default)]
    pub apis: Table<Api>,
    #[serde(default)]
    pub subscriptions: Table,
    #[serde(default)]
    pub backends: Table,
    #[serde(default)]
    pub named_values: Table,
    #[serde(default)]
    pub loggers: Table,
    /// Service-scope diagnostics.
    #[serde(default)]
    pub diagnostics: Table,
    /// Users (read-only through ARM in this emulator; subscription owners point at them).
    #[serde(default)]
    pub users: Table,
}

/// A product with its policy and API links.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Product {
    pub entity: Entity,
    #[serde(default)]
    pub policy: Option<Entity>,
    /// API links keyed by lower-cased link name; each has `properties.apiId` (full ARM id).
    #[serde(default)]
    pub api_links: Table,
}

/// An API with its policy, operations and API-scope diagnostics.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Api {
    pub entity: Entity,
    #[serde(default)]
    pub policy: Option<Entity>,
    #[serde(default)]
    pub operations: Table<Operation>,
    #[serde(default)]
    pub diagnostics: Table,
}

/// An operation with its policy.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Operation {
    pub entity: Entity,
    #[serde(default)]
    pub policy: Option<Entity>,
}

/// Where a policy document is attached.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PolicyScope {
    Global,
    Product(String),
    Api(String),
    Operation(String, String),
}

/// A subscription as the traffic model sees it (keys included: the gateway checks them).
#[derive(Debug, Clone, PartialEq)]
pub struct SubscriptionInfo {
    pub name: String,
    pub display_name: String,
    pub state: String,
    /// Full ARM scope id.
    pub scope: String,
    /// The product id when the scope is a product.
    pub product_id: Option<String>,
    /// The API id when the scope is a single API.
    pub api_id: Option<String>,
    /// True for `/apis` and service-wide (`master`) scopes.
    pub all_apis: bool,
    /// The owner's user id (last segment of `ownerId`), if any.
    pub user_id: Option<String>,
    pub primary_key: String,
    pub secondary_key: String,
    pub created_date: Option<String>,
}

/// A backend as the traffic model sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct BackendInfo {
    pub name: String,
    pub kind: BackendKind,
    pub circuit_breaker: Vec<BreakerRule>,
}

/// `Single` (one URL) or `Pool` (members by backend name).
#[derive(Debug, Clone, PartialEq)]
pub enum BackendKind {
    Single { url: String },
    Pool { members: Vec<PoolMember> },
}

/// One pool member: the member backend's name and its priority/weight (null in ARM → `None`).
#[derive(Debug, Clone, PartialEq)]
pub struct PoolMember {
    pub backend: String,
    pub priority: Option<u32>,
    pub weight: Option<u32>,
}

/// A circuit-breaker rule with durations parsed. Months/years count as 30/365 days.
#[derive(Debug, Clone, PartialEq)]
pub struct BreakerRule {
    pub name: String,
    pub count: Option<u32>,
    pub percentage: Option<u32>,
    pub interval: Duration,
    pub status_code_ranges: Vec<(u16, u16)>,
    pub error_reasons: Vec<String>,
    pub trip_duration: Duration,
    pub accept_retry_after: bool,
}

/// A named value (secret values included).
#[derive(Debug, Clone, PartialEq)]
pub struct NamedValueInfo {
    pub name: String,
    pub display_name: String,
    pub value: Option<String>,
    pub secret: bool,
}

impl Service {
    /// The service's ARM id.
    pub fn id(&self) -> String {
        format!(
            "/subscriptions/{}/resourceGroups/{}/providers/Microsoft.ApiManagement/service/{}",
            self.subscription_id, self.resource_group, self.name
        )
    }

    /// The policy XML (stored raw form, CRLF line endings) at `scope`.
    pub fn policy_xml(&self, scope: &PolicyScope) -> Option<&str> {
        let e = match scope {
            PolicyScope::Global => self.policy.as_ref(),
            PolicyScope::Product(p) => self.products.get(&key(p))?.policy.as_ref(),
            PolicyScope::Api(a) => self.apis.get(&key(a))?.policy.as_ref(),
            PolicyScope::Operation(a, o) => self.apis.get(&key(a))?.operations.get(&key(o))?.policy.as_ref(),
        }?;
        e.str("value")
    }

    /// Every policy document in the service with its scope.
    pub fn policies(&self) -> Vec<(PolicyScope, &str)> {
        fn push<'a>(out: &mut Vec<(PolicyScope, &'a str)>, scope: PolicyScope, e: &'a Option<Entity>) {
            if let Some(v) = e.as_ref().and_then(|e| e.str("value")) {
                out.push((scope, v));
            }
        }
        let mut out = Vec::new();
        push(&mut out, PolicyScope::Global, &self.policy);
        for p in self.products.values() {
            push(&mut out, PolicyScope::Product(p.entity.name.clone()), &p.policy);
        }
        for a in self.apis.values() {
            push(&mut out, PolicyScope::Api(a.entity.name.clone()), &a.policy);
            for o in a.operations.values() {
                push(&mut out, PolicyScope::Operation(a.entity.name.clone(), o.entity.name.clone()), &o.policy);
            }
        }
        out
    }

    /// All subscriptions, in name order.
    pub fn subscription_infos(&self) -> Vec<SubscriptionInfo> {
        self.subscriptions.values().map(|e| self.subscription_info(e)).collect()
    }

    /// One subscription by name (case-insensitive).
    pub fn subscription(&self, name: &str) -> Option<SubscriptionInfo> {
        self.subscriptions.get(&key(name)).map(|e| self.subscription_info(e))
    }

    fn subscription_info(&self, e: &Entity) -> SubscriptionInfo {
        let scope = e.str("scope").unwrap_or_default().to_string();
        let (product_id, api_id, all_apis) = self.classify_scope(&scope);
        SubscriptionInfo {
            name: e.name.clone(),
            display_name: e.str("displayName").unwrap_or_default().to_string(),
            state: e.str("state").unwrap_or_default().to_string(),
            scope,
            product_id,
            api_id,
            all_apis,
            user_id: e.str("ownerId").and_then(|o| o.rsplit('/').next()).map(str::to_string),
            primary_key: e.str("primaryKey").unwrap_or_default().to_string(),
            secondary_key: e.str("secondaryKey").unwrap_or_default().to_string(),
            created_date: e.str("createdDate").map(str::to_string),
        }
    }

    /// Splits a full subscription scope into (product, api, all-apis).
    pub fn classify_scope(&self, scope: &str) -> (Option<String>, Option<String>, bool) {
        let id = self.id();
        let rest = if scope.len() >= id.len() && scope[..id.len()].eq_ignore_ascii_case(&id) {
            &scope[id.len()..]
        } else {
            scope
        };
        let parts: Vec<&str> = rest.split('/').filter(|s| !s.is_empty()).collect();
        match parts.as_slice() {
            [] => (None, None, true),
            [c] if c.eq_ignore_ascii_case("apis") => (None, None, true),
            [c, a] if c.eq_ignore_ascii_case("apis") => (None, Some(a.to_string()), false),
            [c, p] if c.eq_ignore_ascii_case("products") => (Some(p.to_string()), None, false),
            _ => (None, None, false),
        }
    }

    /// One backend by name (case-insensitive), with pool members and breaker rules parsed.
    pub fn backend(&self, name: &str) -> Option<BackendInfo> {
        self.backends.get(&key(name)).map(backend_info)
    }

    /// All backends, in name order.
    pub fn backend_infos(&self) -> Vec<BackendInfo> {
        self.backends.values().map(backend_info).collect()
    }

    /// A named value by display name (how policies reference it as `{{displayName}}`),
    /// case-insensitive.
    pub fn named_value(&self, display_name: &str) -> Option<NamedValueInfo> {
        self.named_values
            .values()
            .find(|e| e.str("displayName").is_some_and(|d| d.eq_ignore_ascii_case(display_name)))
            .map(named_value_info)
    }

    /// All named values, in name order.
    pub fn named_value_infos(&self) -> Vec<NamedValueInfo> {
        self.named_values.values().map(named_value_info).collect()
    }

    /// Replaces every `{{name}}` whose named value exists with its value (what the gateway
    /// does before evaluating a policy); unknown references are left as they are.
    pub fn substitute_named_values(&self, text: &str) -> String {
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        while let Some(start) = rest.find("{{") {
            out.push_str(&rest[..start]);
            let after = &rest[start + 2..];
            match after.find("}}") {
                Some(end) => {
                    let name = after[..end].trim();
                    match self.named_value(name).and_then(|n| n.value) {
                        Some(v) => out.push_str(&v),
                        None => out.push_str(&rest[start..start + 2 + end + 2]),
                    }
                    rest = &after[end + 2..];
                }
                None => {
                    out.push_str(&rest[start..]);
                    rest = "";
                }
            }
        }
        out.push_str(rest);
        out
    }

    /// The API ids linked to product `product` (case-insensitive).
    pub fn product_api_ids(&self, product: &str) -> Vec<String> {
        self.products
            .get(&key(product))
            .map(|p| {
                p.api_links
                    .values()
                    .filter_map(|l| l.str("apiId").and_then(|id| id.rsplit('/').next()))
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default()
    }
}

fn named_value_info(e: &Entity) -> NamedValueInfo {
    NamedValueInfo {
        name: e.name.clone(),
        display_name: e.str("displayName").unwrap_or(&e.name).to_string(),
        value: e.str("value").map(str::to_string),
        secret: e.bool("secret").unwrap_or(false),
    }
}

fn backend_info(e: &Entity) -> BackendInfo {
    let is_pool = e.str("type").is_some_and(|t| t.eq_ignore_ascii_case("pool"));
    let kind = if is_pool {
        let members = e
            .properties
            .get("pool")
            .and_then(|p| p.get("services"))
            .and_then(Value::as_array)
            .map(|items| {
                items
                    .iter()
                    .map(|m| PoolMember {
                        backend: m
                            .get("id")
                            .and_then(Value::as_str)
                            .and_then(|id| id.rsplit('/').next())
                            .unwrap_or_default()
                            .to_string(),
                        priority: m.get("priority").and_then(Value::as_u64).map(|v| v as u32),
                        weight: m.get("weight").and_then(Value::as_u64).map(|v| v as u32),
                    })
                    .collect()
            })
            .unwrap_or_default();
        BackendKind::Pool { members }
    } else {
        BackendKind::Single { url: e.str("url").unwrap_or_default().to_string() }
    };
    let rules = e
        .properties
        .get("circuitBreaker")
        .and_then(|c| c.get("rules"))
        .and_then(Value::as_array)
        .map(|rules| rules.iter().map(breaker_rule).collect())
        .unwrap_or_default();
    BackendInfo { name: e.name.clone(), kind, circuit_breaker: rules }
}

fn breaker_rule(r: &Value) -> BreakerRule {
    let fc = r.get("failureCondition").cloned().unwrap_or(Value::Null);
    let dur = |v: Option<&Value>| v.and_then(Value::as_str).and_then(parse_iso8601_duration).unwrap_or_default();
    BreakerRule {
        name: r.get("name").and_then(Value::as_str).unwrap_or_default().to_string(),
        count: fc.get("count").and_then(Value::as_u64).map(|v| v as u32),
        percentage: fc.get("percentage").and_then(Value::as_u64).map(|v| v as u32),
        interval: dur(fc.get("interval")),
        status_code_ranges: fc
            .get("statusCodeRanges")
            .and_then(Value::as_array)
            .map(|rs| {
                rs.iter()
                    .map(|r| {
                        let g = |k| r.get(k).and_then(Value::as_u64).unwrap_or(0) as u16;
                        (g("min"), g("max"))
                    })
                    .collect()
            })
            .unwrap_or_default(),
        error_reasons: fc
            .get("errorReasons")
            .and_then(Value::as_array)
            .map(|rs| rs.iter().filter_map(Value::as_str).map(str::to_string).collect())
            .unwrap_or_default(),
        trip_duration: dur(r.get("tripDuration")),
        accept_retry_after: r.get("acceptRetryAfter").and_then(Value::as_bool).unwrap_or(false),
    }
}

/// Why persisting failed.
#[derive(Debug)]
pub struct PersistError(pub String);

/// The state behind a lock, the seed it resets to, and the optional state file.
pub struct Store {
    state: RwLock<State>,
    seed: State,
    file: Option<PathBuf>,
}

const FILE_FORMAT: &str = "aigw-emulator-state";
const FILE_VERSION: u64 = 1;

impl Store {
    /// A store over `seed`, or over the state in `file` when that file exists.
    /// A file that exists but cannot be read as an emulator state is an error.
    pub fn open(seed: State, file: Option<PathBuf>) -> anyhow::Result<Self> {
        let (state, seed) = match &file {
            Some(path) if path.exists() => {
                let (mut loaded, saved_seed) = load_file(path)?;
                // The seed is saved with the state, so a reset after a restart restores the
                // same tenant (keys included) as before the restart.
                let seed = saved_seed.unwrap_or(seed);
                // Keep ETags unique even if the seed's counter is ahead of the file's.
                loaded.etag_seq.0 = loaded.etag_seq.0.max(seed.etag_seq.0);
                (loaded, seed)
            }
            Some(path) => {
                persist(path, &seed, &seed).map_err(|e| anyhow::anyhow!("{}", e.0))?;
                (seed.clone(), seed)
            }
            None => (seed.clone(), seed),
        };
        Ok(Self { state: RwLock::new(state), seed, file })
    }

    /// Runs `f` with shared access to the state.
    pub fn read<R>(&self, f: impl FnOnce(&State) -> R) -> R {
        let guard = self.state.read().unwrap_or_else(|p| p.into_inner());
        f(&guard)
    }

    /// Runs `f` with exclusive access; persists if it succeeded and wrote something.
    /// `f` must not change anything when it returns `Err`.
    pub fn write<R, E: From<PersistError>>(&self, f: impl FnOnce(&mut State) -> Result<R, E>) -> Result<R, E> {
        let mut guard = self.state.write().unwrap_or_else(|p| p.into_inner());
        let before = guard.etag_seq;
        let backup = self.file.as_ref().map(|_| guard.clone());
        let result = f(&mut guard)?;
        if guard.etag_seq != before
            && let (Some(path), Some(backup)) = (&self.file, backup)
            && let Err(e) = persist(path, &guard, &self.seed)
        {
            *guard = backup;
            return Err(E::from(e));
        }
        Ok(result)
    }

    /// A copy of the whole state.
    pub fn snapshot(&self) -> State {
        self.read(State::clone)
    }

    /// The write generation: changes on every write (it is the ETag sequence).
    pub fn generation(&self) -> u64 {
        self.read(|s| s.etag_seq.0)
    }

    /// Puts the seed back (keeping the ETag sequence moving forward) and persists it.
    pub fn reset(&self) -> Result<(), PersistError> {
        self.write(|state| {
            let seq = state.etag_seq.0.max(self.seed.etag_seq.0) + 1;
            *state = self.seed.clone();
            state.etag_seq.0 = seq;
            Ok::<_, PersistError>(())
        })
    }

    /// The state file, if any.
    pub fn file(&self) -> Option<&Path> {
        self.file.as_deref()
    }
}

#[derive(Serialize)]
struct FileOut<'a> {
    format: &'static str,
    version: u64,
    state: &'a State,
    seed: &'a State,
}

#[derive(Deserialize)]
struct FileIn {
    format: String,
    version: u64,
    state: State,
    #[serde(default)]
    seed: Option<State>,
}

fn load_file(path: &Path) -> anyhow::Result<(State, Option<State>)> {
    let bytes =
        std::fs::read(path).map_err(|e| anyhow::anyhow!("cannot read emulator state file {}: {e}", path.display()))?;
    let refuse = |why: String| {
        anyhow::anyhow!(
            "emulator state file {} is not usable ({why}); refusing to start so it is not \
             overwritten. Move or delete it to start again from the sandbox seed.",
            path.display()
        )
    };
    let parsed: FileIn = serde_json::from_slice(&bytes).map_err(|e| refuse(format!("invalid JSON: {e}")))?;
    if parsed.format != FILE_FORMAT {
        return Err(refuse(format!("format is '{}', expected '{FILE_FORMAT}'", parsed.format)));
    }
    if parsed.version != FILE_VERSION {
        return Err(refuse(format!(
            "version {} is not supported (this emulator reads version {FILE_VERSION})",
            parsed.version
        )));
    }
    Ok((parsed.state, parsed.seed))
}

fn persist(path: &Path, state: &State, seed: &State) -> Result<(), PersistError> {
    let fail = |what: &str, e: std::io::Error| {
        PersistError(format!("cannot {what} emulator state file {}: {e}", path.display()))
    };
    let bytes = serde_json::to_vec_pretty(&FileOut { format: FILE_FORMAT, version: FILE_VERSION, state, seed })
        .map_err(|e| PersistError(format!("cannot serialise emulator state: {e}")))?;
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let file_name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = dir.join(format!(".{file_name}.tmp-{}", std::process::id()));
    let mut f = std::fs::File::create(&tmp).map_err(|e| fail("create temporary", e))?;
    f.write_all(&bytes).map_err(|e| fail("write temporary", e))?;
    f.sync_all().map_err(|e| fail("fsync temporary", e))?;
    drop(f);
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        fail("replace", e)
    })?;
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}
