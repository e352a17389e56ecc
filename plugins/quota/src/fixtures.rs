//! Test fixtures: the sandbox tenant as the emulator serves it (ARM JSON in `fixtures/`, built
//! from the emulator's seed), and a fake [`Arm`] that answers from them, pages collections like
//! ARM (`$top`, `$skip`, `count`, `nextLink`, `$filter=state eq '…'`), counts every call and can
//! run the what-if KQL on the emulator's KQL engine.

use std::cell::RefCell;
use std::collections::BTreeMap;

use aigw_pdk::Error;
use aigw_policy_xml::ScopeLabel;
use serde_json::{Value, json};

use crate::arm::{Arm, PolicyRead, Resp};
use crate::limits::{Doc, DocKey, Docs};
use crate::model::{Named, NamedValues, Products, Subscription};

/// The sandbox service id.
pub const SVC: &str = "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg-ai-gateway/providers/Microsoft.ApiManagement/service/apim-sandbox";

/// `inference-api`'s policy GET (`?format=rawxml`) body.
pub const INFERENCE_API_POLICY: &str = include_str!("../fixtures/inference-api.policy.json");
/// The `aoai` product policy GET body.
pub const AOAI_POLICY: &str = include_str!("../fixtures/aoai.policy.json");
/// The global policy GET body (APIM's default).
pub const GLOBAL_POLICY: &str = include_str!("../fixtures/global.policy.json");
/// The subscriptions (`master` carries keys, as a misbehaving endpoint might).
pub const SUBSCRIPTIONS: &str = include_str!("../fixtures/subscriptions.json");
/// Named values: `tpm-data-science` = 50000 and a secret logger credential.
pub const NAMED_VALUES: &str = include_str!("../fixtures/named-values.json");
/// APIs: `inference-api`.
pub const APIS: &str = include_str!("../fixtures/apis.json");
/// Products: `aoai`.
pub const PRODUCTS: &str = include_str!("../fixtures/products.json");

fn json(text: &str) -> Value {
    serde_json::from_str(text).unwrap()
}

/// The XML of a policy GET body.
pub fn xml_of(body: &str) -> String {
    json(body)["properties"]["value"].as_str().unwrap().to_string()
}

/// A document from XML.
pub fn doc(scope: ScopeLabel, xml: &str) -> Doc {
    let body = json!({"properties": {"format": "rawxml", "value": xml}});
    Doc::new(scope, PolicyRead { etag: Some("\"etag\"".into()), body, xml: xml.to_string() })
}

/// A policy whose `<inbound>` is `<base />` followed by `inbound`.
pub fn policy_xml(inbound: &str) -> String {
    format!(
        "<policies>\r\n\t<inbound>\r\n\t\t<base />\r\n\t\t{inbound}\r\n\t</inbound>\r\n\t<backend>\r\n\t\t<base />\r\n\t</backend>\r\n\t<outbound>\r\n\t\t<base />\r\n\t</outbound>\r\n\t<on-error>\r\n\t\t<base />\r\n\t</on-error>\r\n</policies>"
    )
}

/// The sandbox's three policy documents.
pub fn sandbox_docs() -> Docs {
    let mut docs = Docs::default();
    docs.insert(
        DocKey::api("inference-api"),
        doc(ScopeLabel::Api("inference-api".into()), &xml_of(INFERENCE_API_POLICY)),
    );
    docs.insert(DocKey::product("aoai"), doc(ScopeLabel::Product("aoai".into()), &xml_of(AOAI_POLICY)));
    docs.insert(DocKey::Global, doc(ScopeLabel::Global, &xml_of(GLOBAL_POLICY)));
    docs
}

/// The sandbox's named values.
pub fn sandbox_named_values() -> NamedValues {
    let items: Vec<Named> = serde_json::from_str(NAMED_VALUES).unwrap();
    NamedValues::new(&items)
}

/// Named values from (resource name, display name, value; `None` = secret).
pub fn named_values(items: &[(&str, &str, Option<&str>)]) -> NamedValues {
    let items: Vec<Named> = items
        .iter()
        .map(|(n, d, v)| {
            serde_json::from_value(
                json!({"name": n, "properties": {"displayName": d, "value": v, "secret": v.is_none()}}),
            )
            .unwrap()
        })
        .collect();
    NamedValues::new(&items)
}

/// The sandbox's products.
pub fn sandbox_products() -> Products {
    let items: Vec<Named> = serde_json::from_str(PRODUCTS).unwrap();
    Products::new(&items)
}

/// The sandbox's subscriptions.
pub fn sandbox_subscriptions() -> Vec<Subscription> {
    serde_json::from_str(SUBSCRIPTIONS).unwrap()
}

/// A subscription contract item.
pub fn subscription_item(sid: &str, scope: &str, state: &str) -> Value {
    json!({
        "id": format!("{SVC}/subscriptions/{sid}"), "type": "Microsoft.ApiManagement/service/subscriptions", "name": sid,
        "properties": {"ownerId": format!("{SVC}/users/u-{sid}"), "scope": format!("{SVC}{scope}"), "displayName": format!("Team {sid}"),
            "state": state, "createdDate": "2025-07-01T00:00:00Z", "allowTracing": false}
    })
}

/// Answers a logs query (query, timespan).
pub type LogsFn = dyn Fn(&str, Option<&str>) -> Result<String, Error>;

/// A fake ARM + Log Analytics endpoint.
pub struct FakeArm {
    /// Collections by path (no query): paged like ARM.
    pub collections: BTreeMap<String, Vec<Value>>,
    /// Single resources by path (with query, as requested): ETag and body.
    pub resources: BTreeMap<String, (String, Value)>,
    /// Every `get_many` batch, in order.
    pub batches: RefCell<Vec<Vec<String>>>,
    /// Every `list` call.
    pub lists: RefCell<Vec<String>>,
    /// Every logs query (query, timespan).
    pub queries: RefCell<Vec<(String, Option<String>)>>,
    /// Whether pages carry `count`.
    pub with_count: bool,
    /// Answers logs queries.
    pub logs: Option<Box<LogsFn>>,
}

impl FakeArm {
    /// An empty service.
    pub fn new() -> Self {
        FakeArm {
            collections: BTreeMap::new(),
            resources: BTreeMap::new(),
            batches: RefCell::new(Vec::new()),
            lists: RefCell::new(Vec::new()),
            queries: RefCell::new(Vec::new()),
            with_count: true,
            logs: None,
        }
    }

    /// Adds a single resource.
    pub fn resource(&mut self, path: &str, etag: &str, body: Value) {
        self.resources.insert(path.to_string(), (etag.to_string(), body));
    }

    fn answer(&self, path: &str) -> Result<Resp, Error> {
        let (bare, query) = path.split_once('?').unwrap_or((path, ""));
        if let Some(items) = self.collections.get(bare) {
            let params: BTreeMap<&str, &str> = query.split('&').filter_map(|kv| kv.split_once('=')).collect();
            let top = params.get("$top").map_or(100, |t| t.parse::<usize>().unwrap().min(100));
            let skip = params.get("$skip").map_or(0, |s| s.parse::<usize>().unwrap());
            let matching: Vec<&Value> = match params.get("$filter") {
                Some(f) => {
                    let f = f.replace("%20", " ").replace("%27", "'");
                    let state = f.strip_prefix("state eq '").and_then(|s| s.strip_suffix('\'')).expect("filter");
                    items.iter().filter(|i| i["properties"]["state"] == state).collect()
                }
                None => items.iter().collect(),
            };
            let page: Vec<&Value> = matching.iter().skip(skip).take(top).copied().collect();
            let mut body = json!({"value": page});
            if self.with_count {
                body["count"] = json!(matching.len());
            }
            if skip + top < matching.len() {
                body["nextLink"] = json!(format!("https://management.azure.com{SVC}/{bare}?$skip={}", skip + top));
            }
            return Ok(Resp { status: 200, etag: None, body: body.to_string() });
        }
        match self.resources.get(path) {
            Some((etag, body)) => Ok(Resp { status: 200, etag: Some(etag.clone()), body: body.to_string() }),
            None => Err(Error::NotFound(format!("{path} not found."))),
        }
    }
}

impl Arm for FakeArm {
    fn get_many(&self, paths: &[String]) -> Vec<Result<Resp, Error>> {
        self.batches.borrow_mut().push(paths.to_vec());
        paths.iter().map(|p| self.answer(p)).collect()
    }

    fn list(&self, path: &str) -> Result<Vec<String>, Error> {
        self.lists.borrow_mut().push(path.to_string());
        let (bare, _) = path.split_once('?').unwrap_or((path, ""));
        match self.collections.get(bare) {
            Some(items) => Ok(items.iter().map(Value::to_string).collect()),
            None => Err(Error::NotFound(format!("{path} not found."))),
        }
    }

    fn query_logs(&self, query: &str, timespan: Option<&str>) -> Result<String, Error> {
        self.queries.borrow_mut().push((query.to_string(), timespan.map(str::to_string)));
        match &self.logs {
            Some(f) => f(query, timespan),
            None => Err(Error::Denied("no Log Analytics workspace is configured".into())),
        }
    }
}

/// The sandbox tenant behind a fake ARM, as the emulator seeds it.
pub fn sandbox_arm() -> FakeArm {
    let mut arm = FakeArm::new();
    let list = |text: &str| -> Vec<Value> { serde_json::from_str(text).unwrap() };
    arm.collections.insert("subscriptions".into(), list(SUBSCRIPTIONS));
    let in_aoai: Vec<Value> = list(SUBSCRIPTIONS).into_iter().filter(|s| s["name"] != "master").collect();
    arm.collections.insert("products/aoai/subscriptions".into(), in_aoai);
    arm.collections.insert("apis".into(), list(APIS));
    arm.collections.insert("products".into(), list(PRODUCTS));
    arm.collections.insert("products/aoai/apis".into(), list(APIS));
    arm.collections.insert("namedValues".into(), list(NAMED_VALUES));
    for s in list(SUBSCRIPTIONS) {
        let sid = s["name"].as_str().unwrap().to_string();
        arm.resource(&format!("subscriptions/{sid}"), &format!("\"etag-{sid}\""), s);
    }
    for nv in list(NAMED_VALUES) {
        let name = nv["name"].as_str().unwrap().to_string();
        arm.resource(&format!("namedValues/{name}"), "\"etag-nv-1\"", nv);
    }
    arm.resource(
        "apis/inference-api/policies/policy?format=rawxml",
        "\"etag-api-policy-7\"",
        json(INFERENCE_API_POLICY),
    );
    arm.resource("products/aoai/policies/policy?format=rawxml", "\"etag-aoai-policy-3\"", json(AOAI_POLICY));
    arm.resource("policies/policy?format=rawxml", "\"etag-global-1\"", json(GLOBAL_POLICY));
    arm
}

/// Sets the XML of a policy in the fake.
pub fn set_policy(arm: &mut FakeArm, path: &str, xml: &str) {
    let (etag, body) = arm.resources.get_mut(&format!("{path}?format=rawxml")).expect("policy exists");
    body["properties"]["value"] = json!(xml);
    *etag = match etag.strip_suffix('"') {
        Some(open) => format!("{open}+\""),
        None => format!("{etag}+"),
    };
}
