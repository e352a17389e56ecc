//! Reading the part of the tenant a call needs, in as few concurrent batches as possible, and
//! every policy document at most once.
//!
//! A call starts with one batch holding its own first reads plus the tenant basics
//! ([`Tenant::first_paths`]: global policy, named values, APIs, products); then one batch for the
//! products its subscriptions are in (their API lists and policies), then one for the API
//! policies those subscriptions reach. A subscription scoped to a product reaches the product's
//! APIs; one scoped to all APIs, or the service (`master`), reaches every API; one scoped to an
//! API reaches that API.

use std::collections::{BTreeMap, BTreeSet};

use aigw_pdk::Error;
use aigw_policy_xml::ScopeLabel;

use crate::arm::{self, Arm, PAGE, Resp, page_path, seg};
use crate::limits::{Analyses, Combined, Doc, DocKey, Docs};
use crate::model::{Named, NamedValues, Products, Scope, Subscription, api_ids};

/// The global policy, raw.
pub const GLOBAL_POLICY: &str = "policies/policy?format=rawxml";

fn raw(scope: &ScopeLabel) -> String {
    format!("{}?format=rawxml", crate::limits::policy_path(scope))
}

/// What a call knows about the tenant.
#[derive(Default)]
pub struct Tenant {
    /// Every API (current revisions).
    pub apis: Vec<String>,
    /// Products with display names.
    pub products: Products,
    /// Named values.
    pub named_values: NamedValues,
    /// Each product's APIs (`None`: the product does not exist), by lowercase id.
    pub product_apis: BTreeMap<String, Option<Vec<String>>>,
    /// The policy documents read.
    pub docs: Docs,
    /// Lowercase ids of the APIs whose policy was read (present or not).
    apis_read: BTreeSet<String>,
}

/// Which APIs a subscription's key works on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reach {
    /// These APIs.
    Apis(Vec<String>),
    /// None, and why.
    Nothing(String),
}

impl Tenant {
    /// The tenant reads every call makes in its first batch.
    pub fn first_paths() -> Vec<String> {
        vec![
            GLOBAL_POLICY.to_string(),
            page_path("namedValues", PAGE, 0, ""),
            page_path("apis", PAGE, 0, ""),
            page_path("products", PAGE, 0, ""),
        ]
    }

    /// The tenant from the answers to [`Tenant::first_paths`], in that order.
    pub fn from_first(arm: &dyn Arm, answers: Vec<Result<Resp, Error>>) -> Result<Tenant, Error> {
        let [global, nvs, apis, products]: [Result<Resp, Error>; 4] =
            answers.try_into().map_err(|_| Error::Internal("first batch: wrong number of answers".into()))?;
        let mut t = Tenant::default();
        if let Some(read) = arm::policy(GLOBAL_POLICY, global)? {
            t.docs.insert(DocKey::Global, Doc::new(ScopeLabel::Global, read));
        }
        let nvs: Vec<Named> = arm::collection(arm, "namedValues", nvs)?.unwrap_or_default();
        t.named_values = NamedValues::new(&nvs);
        let apis: Vec<Named> = arm::collection(arm, "apis", apis)?.unwrap_or_default();
        t.apis = api_ids(&apis);
        let products: Vec<Named> = arm::collection(arm, "products", products)?.unwrap_or_default();
        t.products = Products::new(&products);
        Ok(t)
    }

    /// The reads for product `p` (its APIs, its policy), for the same batch as other reads.
    pub fn product_paths(p: &str) -> [String; 2] {
        [page_path(&format!("products/{}/apis", seg(p)), PAGE, 0, ""), raw(&ScopeLabel::Product(p.to_string()))]
    }

    /// Takes the answers to [`Tenant::product_paths`].
    pub fn ingest_product(
        &mut self,
        arm: &dyn Arm,
        p: &str,
        apis: Result<Resp, Error>,
        policy: Result<Resp, Error>,
    ) -> Result<(), Error> {
        let path = format!("products/{}/apis", seg(p));
        let linked: Option<Vec<Named>> = arm::collection(arm, &path, apis)?;
        self.product_apis.insert(p.to_ascii_lowercase(), linked.map(|l| l.into_iter().map(|a| a.name).collect()));
        let scope = ScopeLabel::Product(p.to_string());
        if let Some(read) = arm::policy(&raw(&scope), policy)? {
            self.docs.insert(DocKey::product(p), Doc::new(scope, read));
        }
        Ok(())
    }

    /// Reads the products of `subs` not read yet (one batch).
    pub fn read_products<'s>(
        &mut self,
        arm: &dyn Arm,
        subs: impl IntoIterator<Item = &'s Subscription>,
    ) -> Result<(), Error> {
        self.read_product_ids(arm, subs.into_iter().filter_map(|s| s.scope.product()).map(str::to_string))
    }

    /// Reads products `ids` not read yet (one batch).
    pub fn read_product_ids(&mut self, arm: &dyn Arm, ids: impl IntoIterator<Item = String>) -> Result<(), Error> {
        let mut wanted: Vec<String> = Vec::new();
        for p in ids {
            let key = p.to_ascii_lowercase();
            if !self.product_apis.contains_key(&key) && !wanted.iter().any(|w| w.eq_ignore_ascii_case(&p)) {
                wanted.push(p);
            }
        }
        if wanted.is_empty() {
            return Ok(());
        }
        let paths: Vec<String> = wanted.iter().flat_map(|p| Tenant::product_paths(p)).collect();
        let mut answers = arm.get_many(&paths).into_iter();
        for p in &wanted {
            let (a, b) = (answers.next(), answers.next());
            let missing = || Error::Internal("get-many answered fewer paths than asked".into());
            self.ingest_product(arm, p, a.ok_or_else(missing)?, b.ok_or_else(missing)?)?;
        }
        Ok(())
    }

    /// Reads the policies of `apis` not read yet (one batch).
    pub fn read_api_policies(&mut self, arm: &dyn Arm, apis: &[String]) -> Result<(), Error> {
        let mut wanted: Vec<String> = Vec::new();
        for a in apis {
            if self.apis_read.insert(a.to_ascii_lowercase()) {
                wanted.push(a.clone());
            }
        }
        if wanted.is_empty() {
            return Ok(());
        }
        let paths: Vec<String> = wanted.iter().map(|a| raw(&ScopeLabel::Api(a.clone()))).collect();
        for ((a, path), answer) in wanted.iter().zip(&paths).zip(arm.get_many(&paths)) {
            if let Some(read) = arm::policy(path, answer)? {
                let scope = ScopeLabel::Api(a.clone());
                self.docs.insert(DocKey::api(a), Doc::new(scope, read));
            }
        }
        Ok(())
    }

    /// The read of API `a`'s policy, for a batch of the caller's.
    pub fn api_policy_path(a: &str) -> String {
        raw(&ScopeLabel::Api(a.to_string()))
    }

    /// Takes the answer to [`Tenant::api_policy_path`].
    pub fn ingest_api_policy(&mut self, a: &str, answer: Result<Resp, Error>) -> Result<(), Error> {
        self.apis_read.insert(a.to_ascii_lowercase());
        if let Some(read) = arm::policy(&Tenant::api_policy_path(a), answer)? {
            self.docs.insert(DocKey::api(a), Doc::new(ScopeLabel::Api(a.to_string()), read));
        }
        Ok(())
    }

    /// Reads what `subs`' limits depend on: their products, then the APIs they reach.
    pub fn read_for(&mut self, arm: &dyn Arm, subs: &[Subscription]) -> Result<(), Error> {
        self.read_products(arm, subs)?;
        let mut apis: Vec<String> = Vec::new();
        for s in subs {
            if let Reach::Apis(list) = self.reach(s) {
                for a in list {
                    if !apis.iter().any(|x| x.eq_ignore_ascii_case(&a)) {
                        apis.push(a);
                    }
                }
            }
        }
        self.read_api_policies(arm, &apis)
    }

    /// The APIs `sub`'s key works on.
    pub fn reach(&self, sub: &Subscription) -> Reach {
        match &sub.scope {
            Scope::Product(p) => match self.product_apis.get(&p.to_ascii_lowercase()) {
                Some(Some(apis)) if !apis.is_empty() => Reach::Apis(apis.clone()),
                Some(Some(_)) => Reach::Nothing(format!("product '{p}' has no APIs")),
                Some(None) => Reach::Nothing(format!("product '{p}' does not exist")),
                None => Reach::Nothing(format!("product '{p}' was not read")),
            },
            Scope::AllApis | Scope::Service if self.apis.is_empty() => Reach::Nothing("the service has no APIs".into()),
            Scope::AllApis | Scope::Service => Reach::Apis(self.apis.clone()),
            Scope::Api(a) => Reach::Apis(vec![a.clone()]),
            Scope::Unknown(s) => Reach::Nothing(format!("scope '{s}' is not a product, an API or all APIs")),
        }
    }

    /// Whether a subscription reaches the document at `key` (its limits may come from it).
    pub fn reaches_doc(&self, sub: &Subscription, key: &DocKey) -> bool {
        match key {
            DocKey::Global => true,
            DocKey::Product(p) => sub.scope.product().is_some_and(|sp| sp.eq_ignore_ascii_case(p)),
            DocKey::Api(a) => match self.reach(sub) {
                Reach::Apis(apis) => apis.iter().any(|x| x.eq_ignore_ascii_case(a)),
                Reach::Nothing(_) => false,
            },
        }
    }
}

/// A subscription's limits on a group of APIs where they are the same.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiLimits {
    /// The APIs.
    pub apis: Vec<String>,
    /// The limits.
    pub limits: Combined,
}

/// `sub`'s limits on every API it reaches, APIs with identical limits grouped.
pub fn limits_of(tenant: &Tenant, analyses: &Analyses<'_>, sub: &Subscription) -> Result<Vec<ApiLimits>, String> {
    limits_with(tenant, analyses, sub, &tenant.named_values)
}

/// [`limits_of`] with other named values (to re-check a planned named-value update).
pub fn limits_with(
    tenant: &Tenant,
    analyses: &Analyses<'_>,
    sub: &Subscription,
    nv: &NamedValues,
) -> Result<Vec<ApiLimits>, String> {
    let apis = match tenant.reach(sub) {
        Reach::Apis(apis) => apis,
        Reach::Nothing(why) => return Err(why),
    };
    let facts = sub.facts(&tenant.products);
    let mut out: Vec<ApiLimits> = Vec::new();
    for api in apis {
        let chain = analyses.chain(sub, &api);
        let limits = analyses.combined(&facts, &chain, nv);
        match out.iter_mut().find(|g| g.limits == limits) {
            Some(g) => g.apis.push(api),
            None => out.push(ApiLimits { apis: vec![api], limits }),
        }
    }
    Ok(out)
}
