//! Effective limits of a subscription on one API, combining the policy scopes the gateway runs
//! for it: the API policy, then (through `<base />` in its `<inbound>`) the product policy for
//! product-scoped subscriptions, then the global policy. Every limit element on that path
//! applies, so for each measure the smallest value wins; the others are kept as "also applies".
//! A policy that does not exist behaves like one that only has `<base />`.
//!
//! Operation-level policies are not read (the tools would need one call per operation); the
//! tools say so in their notes.

use std::collections::BTreeMap;

use aigw_policy_xml::{
    Analysis, EffectiveLimit, EffectiveLimits, LimitSource, Measure, PolicyDocument, ScopeLabel, SubscriptionFacts,
};

use crate::arm::PolicyRead;
use crate::model::{NamedValues, Scope, Subscription};

/// Which policy document: the key is case-insensitive (ids are lowercased).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum DocKey {
    /// `policies/policy`.
    Global,
    /// `products/{id}/policies/policy`.
    Product(String),
    /// `apis/{id}/policies/policy`.
    Api(String),
}

impl DocKey {
    /// The key of product `id`'s policy.
    pub fn product(id: &str) -> DocKey {
        DocKey::Product(id.to_ascii_lowercase())
    }

    /// The key of API `id`'s policy.
    pub fn api(id: &str) -> DocKey {
        DocKey::Api(id.to_ascii_lowercase())
    }
}

/// The ARM path of a scope's policy (without `?format=rawxml`).
pub fn policy_path(scope: &ScopeLabel) -> String {
    use crate::arm::seg;
    match scope {
        ScopeLabel::Global => "policies/policy".into(),
        ScopeLabel::Product(p) => format!("products/{}/policies/policy", seg(p)),
        ScopeLabel::Api(a) => format!("apis/{}/policies/policy", seg(a)),
        ScopeLabel::Operation { api, operation } => {
            format!("apis/{}/operations/{}/policies/policy", seg(api), seg(operation))
        }
    }
}

/// One policy document as read.
pub struct Doc {
    /// Its scope (with the id as ARM spells it).
    pub scope: ScopeLabel,
    /// The GET answer.
    pub read: PolicyRead,
    /// The parsed document, or why it does not parse.
    pub parsed: Result<PolicyDocument, String>,
}

impl Doc {
    /// Parses `read`.
    pub fn new(scope: ScopeLabel, read: PolicyRead) -> Doc {
        let parsed = PolicyDocument::parse(&read.xml).map_err(|e| e.to_string());
        Doc { scope, read, parsed }
    }

    /// Its ARM path.
    pub fn path(&self) -> String {
        policy_path(&self.scope)
    }
}

/// Every policy document read for a call, by key.
#[derive(Default)]
pub struct Docs {
    /// The documents; scopes without a policy are absent.
    pub map: BTreeMap<DocKey, Doc>,
}

impl Docs {
    /// Adds a document.
    pub fn insert(&mut self, key: DocKey, doc: Doc) {
        self.map.insert(key, doc);
    }

    /// Analyses every document once.
    pub fn analyse(&self) -> Analyses<'_> {
        Analyses {
            map: self
                .map
                .iter()
                .map(|(k, d)| {
                    let a = d.parsed.as_ref().map(Analysis::of).map_err(Clone::clone);
                    (k.clone(), (d, a))
                })
                .collect(),
        }
    }
}

/// A limit's source: the document and the element.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Src {
    /// Which document.
    pub doc: DocKey,
    /// The element, attribute and branch (its `scope` labels the document).
    pub source: LimitSource,
}

/// One measure's combined effective limit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Lim {
    /// A number applies.
    Limited {
        /// The smallest value that applies.
        value: u64,
        /// For token quotas: the period of the effective quota.
        period: Option<String>,
        /// Where it comes from (boxed: keeps the enum small).
        source: Box<Src>,
        /// Other elements of the same measure that apply (larger or equal values).
        also: Vec<Src>,
    },
    /// Nothing limits it.
    Unlimited {
        /// Why.
        reason: String,
    },
    /// Cannot be determined without guessing.
    Unknown {
        /// Why.
        reason: String,
        /// The document where it became unknown.
        doc: Option<DocKey>,
    },
}

impl Lim {
    /// The value, when limited.
    pub fn value(&self) -> Option<u64> {
        match self {
            Lim::Limited { value, .. } => Some(*value),
            _ => None,
        }
    }

    /// The source, when limited.
    pub fn source(&self) -> Option<&Src> {
        match self {
            Lim::Limited { source, .. } => Some(source.as_ref()),
            _ => None,
        }
    }

    /// "200000", "unlimited", "unknown".
    pub fn short(&self) -> String {
        match self {
            Lim::Limited { value, .. } => value.to_string(),
            Lim::Unlimited { .. } => "unlimited".into(),
            Lim::Unknown { .. } => "unknown".into(),
        }
    }
}

/// A subscription's limits on one API.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Combined {
    /// Tokens per minute.
    pub tpm: Lim,
    /// Requests per minute.
    pub rpm: Lim,
    /// Token quota (with its period).
    pub quota: Lim,
    /// Included fragments, limits outside `<inbound>`, counters shared by several subscriptions.
    pub caveats: Vec<String>,
}

impl Combined {
    /// The limit of `m`.
    pub fn get(&self, m: Measure) -> &Lim {
        match m {
            Measure::Tpm => &self.tpm,
            Measure::Rpm => &self.rpm,
            Measure::TokenQuota => &self.quota,
        }
    }
}

/// The analysed documents of a call.
pub struct Analyses<'d> {
    map: BTreeMap<DocKey, (&'d Doc, Result<Analysis<'d>, String>)>,
}

impl<'d> Analyses<'d> {
    /// The document at `key`, if the scope has a policy.
    pub fn doc(&self, key: &DocKey) -> Option<&'d Doc> {
        self.map.get(key).map(|(d, _)| *d)
    }

    /// The analysis at `key` (`None`: no policy; `Err`: does not parse).
    pub fn analysis(&self, key: &DocKey) -> Option<&Result<Analysis<'d>, String>> {
        self.map.get(key).map(|(_, a)| a)
    }

    /// Every document key.
    pub fn keys(&self) -> impl Iterator<Item = &DocKey> {
        self.map.keys()
    }

    fn inherits(&self, key: &DocKey) -> bool {
        match self.map.get(key) {
            None | Some((_, Err(_))) => true,
            Some((_, Ok(a))) => a.inbound_has_base || a.doc.root().name != "policies",
        }
    }

    /// The documents that run for `sub` calling `api`, most specific first.
    pub fn chain(&self, sub: &Subscription, api: &str) -> Vec<DocKey> {
        let mut chain = Vec::new();
        let api_key = DocKey::api(api);
        let mut inherits = self.inherits(&api_key);
        if self.map.contains_key(&api_key) {
            chain.push(api_key);
        }
        if inherits && let Scope::Product(p) = &sub.scope {
            let key = DocKey::product(p);
            inherits = self.inherits(&key);
            if self.map.contains_key(&key) {
                chain.push(key);
            }
        }
        if inherits && self.map.contains_key(&DocKey::Global) {
            chain.push(DocKey::Global);
        }
        chain
    }

    /// The limits of `facts` under `chain` (see the module documentation).
    pub fn combined(&self, facts: &SubscriptionFacts, chain: &[DocKey], nv: &NamedValues) -> Combined {
        let resolve = |name: &str| nv.value(name);
        let mut per_doc: Vec<(DocKey, Result<EffectiveLimits, String>)> = Vec::new();
        for key in chain {
            let Some((doc, analysis)) = self.map.get(key) else {
                continue;
            };
            let eff = match analysis {
                Ok(a) => Ok(a.effective_limits(&doc.scope, facts, &resolve)),
                Err(e) => Err(format!("{}: the policy XML does not parse: {e}", doc.scope)),
            };
            per_doc.push((key.clone(), eff));
        }
        let mut caveats = Vec::new();
        for (_, e) in &per_doc {
            if let Ok(e) = e {
                for c in &e.caveats {
                    let c = format!("{}: {c}", e.scope);
                    if !caveats.contains(&c) {
                        caveats.push(c);
                    }
                }
            }
        }
        let combine = |m: Measure| combine(m, &per_doc, nv);
        Combined {
            tpm: combine(Measure::Tpm),
            rpm: combine(Measure::Rpm),
            quota: combine(Measure::TokenQuota),
            caveats,
        }
    }
}

fn combine(m: Measure, per_doc: &[(DocKey, Result<EffectiveLimits, String>)], nv: &NamedValues) -> Lim {
    let mut limited: Vec<(u64, Option<String>, Src, Vec<Src>)> = Vec::new();
    let mut reasons = Vec::new();
    for (key, eff) in per_doc {
        let eff = match eff {
            Ok(e) => e,
            Err(reason) => {
                return Lim::Unknown { reason: reason.clone(), doc: Some(key.clone()) };
            }
        };
        match eff.get(m) {
            EffectiveLimit::Unknown { reason, .. } => {
                return Lim::Unknown {
                    reason: format!("{}: {}", eff.scope, nv.explain(reason)),
                    doc: Some(key.clone()),
                };
            }
            EffectiveLimit::Limited { value, source, also_applies } => {
                let src = |s: &LimitSource| Src { doc: key.clone(), source: s.clone() };
                let period = (m == Measure::TokenQuota).then(|| eff.token_quota_period.clone()).flatten();
                limited.push((*value, period, src(source), also_applies.iter().map(src).collect()));
            }
            EffectiveLimit::Unlimited { reason } => reasons.push(reason.clone()),
        }
    }
    if limited.is_empty() {
        let informative = reasons.into_iter().find(|r| !r.starts_with("the policy sets no"));
        let what = match m {
            Measure::Tpm => "a TPM limit",
            Measure::Rpm => "an RPM limit",
            Measure::TokenQuota => "a token quota",
        };
        return Lim::Unlimited {
            reason: informative.unwrap_or_else(|| {
                if per_doc.is_empty() {
                    format!("no policy applies, so nothing sets {what}")
                } else {
                    format!("no policy sets {what}")
                }
            }),
        };
    }
    // The smallest wins; on a tie the most specific scope (first in the chain) is the source.
    let best = (0..limited.len()).min_by_key(|&i| limited[i].0).expect("non-empty");
    let (value, period, source, mut also) = limited.remove(best);
    for (_, _, s, rest) in limited {
        also.push(s);
        also.extend(rest);
    }
    Lim::Limited { value, period, source: Box::new(source), also }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::*;

    #[test]
    fn the_sandbox_limits_on_inference_api() {
        let docs = sandbox_docs();
        let a = docs.analyse();
        let nv = sandbox_named_values();
        let products = sandbox_products();
        let subs = sandbox_subscriptions();
        let get = |id: &str| {
            let s = subs.iter().find(|s| s.id == id).unwrap();
            let chain = a.chain(s, "inference-api");
            a.combined(&s.facts(&products), &chain, &nv)
        };
        let growth = get("growth");
        assert_eq!((growth.tpm.value(), growth.rpm.value()), (Some(200_000), Some(1_200)));
        assert!(matches!(&growth.quota, Lim::Unlimited { reason } if reason == "no policy sets a token quota"));
        let src = growth.tpm.source().unwrap();
        assert_eq!(src.doc, DocKey::api("inference-api"));
        assert!(src.source.branch.starts_with("choose[1]/when[1]"), "{}", src.source.branch);
        let ds = get("data-science");
        assert_eq!(ds.tpm.value(), Some(50_000));
        assert_eq!(ds.tpm.source().unwrap().source.named_value.as_deref(), Some("tpm-data-science"));
        assert_eq!(ds.rpm.value(), Some(300));
        for id in ["search", "support"] {
            let c = get(id);
            assert_eq!((c.tpm.value(), c.rpm.value()), (Some(100_000), Some(600)), "{id}");
            assert!(c.tpm.source().unwrap().source.branch.starts_with("choose[1]/when[4]"));
        }
        let master = get("master");
        let Lim::Unlimited { reason } = &master.tpm else { panic!("{master:?}") };
        assert!(reason.contains("master"), "{reason}");
        assert!(growth.caveats.is_empty(), "{:?}", growth.caveats);
    }

    #[test]
    fn scopes_combine_smallest_wins_and_base_matters() {
        let mut docs = sandbox_docs();
        // A product-wide 150k TPM: growth (200k in the API policy) is capped by it.
        docs.insert(
            DocKey::product("aoai"),
            doc(ScopeLabel::Product("aoai".into()), &policy_xml(
                r#"<llm-token-limit counter-key="@(context.Subscription.Id)" tokens-per-minute="150000" estimate-prompt-tokens="false" />"#,
            )),
        );
        let nv = sandbox_named_values();
        let products = sandbox_products();
        let subs = sandbox_subscriptions();
        let growth = subs.iter().find(|s| s.id == "growth").unwrap();
        let a = docs.analyse();
        let chain = a.chain(growth, "inference-api");
        assert_eq!(chain, [DocKey::api("inference-api"), DocKey::product("aoai"), DocKey::Global]);
        let c = a.combined(&growth.facts(&products), &chain, &nv);
        let Lim::Limited { value, source, also, .. } = &c.tpm else { panic!() };
        assert_eq!(*value, 150_000);
        assert_eq!(source.doc, DocKey::product("aoai"));
        assert_eq!(source.source.branch, "product-wide (no condition)");
        assert_eq!(also.len(), 1);
        assert_eq!(also[0].source.raw_value, "200000");
        // master is in no product: the product policy does not run for it.
        let master = subs.iter().find(|s| s.id == "master").unwrap();
        assert_eq!(a.chain(master, "inference-api"), [DocKey::api("inference-api"), DocKey::Global]);

        // An API policy without <base /> in <inbound> cuts the product and global scopes off.
        docs.insert(
            DocKey::api("inference-api"),
            doc(
                ScopeLabel::Api("inference-api".into()),
                "<policies><inbound /><backend /><outbound /><on-error /></policies>",
            ),
        );
        let a = docs.analyse();
        assert_eq!(a.chain(growth, "inference-api"), [DocKey::api("inference-api")]);
        let c = a.combined(&growth.facts(&products), &a.chain(growth, "inference-api"), &nv);
        assert!(matches!(&c.tpm, Lim::Unlimited { reason } if reason == "no policy sets a TPM limit"));
        // An API without a policy inherits.
        assert_eq!(a.chain(growth, "other-api"), [DocKey::product("aoai"), DocKey::Global]);
        assert!(a.combined(&growth.facts(&products), &[], &nv).tpm.short() == "unlimited");
    }

    #[test]
    fn unparsable_and_secret_policies_are_unknown_never_guessed() {
        let mut docs = sandbox_docs();
        docs.insert(DocKey::Global, doc(ScopeLabel::Global, "<policies><inbound>"));
        let nv = sandbox_named_values();
        let products = sandbox_products();
        let subs = sandbox_subscriptions();
        let growth = subs.iter().find(|s| s.id == "growth").unwrap();
        let a = docs.analyse();
        let c = a.combined(&growth.facts(&products), &a.chain(growth, "inference-api"), &nv);
        let Lim::Unknown { reason, doc: at } = &c.tpm else { panic!("{c:?}") };
        assert!(reason.starts_with("global policy: the policy XML does not parse"), "{reason}");
        assert_eq!(at.as_ref(), Some(&DocKey::Global));

        let mut docs = sandbox_docs();
        docs.insert(
            DocKey::Global,
            doc(ScopeLabel::Global, &policy_xml(r#"<llm-token-limit counter-key="@(context.Subscription.Id)" tokens-per-minute="{{Hidden-TPM}}" />"#)),
        );
        let nv =
            named_values(&[("tpm-data-science", "tpm-data-science", Some("50000")), ("hidden", "Hidden-TPM", None)]);
        let a = docs.analyse();
        let c = a.combined(&growth.facts(&products), &a.chain(growth, "inference-api"), &nv);
        let Lim::Unknown { reason, .. } = &c.tpm else { panic!("{c:?}") };
        assert!(reason.contains("secret named value {{Hidden-TPM}} (its value is hidden)"), "{reason}");
    }
}
