//! Effective limits of one subscription under one policy document, with where each number comes
//! from, and which subscriptions share a limit.
//!
//! Semantics follow the gateway: inside `<choose>` the first `<when>` whose condition is true
//! wins, else `<otherwise>`; every limit element on the path that is taken applies, so when
//! several elements of the same measure apply, the smallest value is the effective one (the
//! others are listed in `also_applies`). Conditions are evaluated three-valued: an unrecognised
//! condition that could change which limit applies makes the result [`EffectiveLimit::Unknown`]
//! (never a guess); one that only guards elements without limits changes nothing.
//!
//! Only elements in `<inbound>` count (APIM rejects limit policies elsewhere); those found in
//! other sections are reported in [`EffectiveLimits::caveats`]. This module looks at one document
//! (one scope): combining global, product and API scopes is the caller's job, guided by
//! [`EffectiveLimits::inherits_parent`].

use std::fmt;
use std::str::FromStr;

use crate::analysis::{
    Analysis, Branch, BranchKind, BranchStep, LimitElement, LimitKind, ValueRef, named_value_refs, path_label,
    substitute_named_values,
};
use crate::condition::{Condition, ConditionFacts, CounterKey, Field, Truth};
use crate::parse::{Attr, PolicyDocument};
use crate::span::Span;

/// The policy scope a document belongs to, used to label sources.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum ScopeLabel {
    /// The service-wide (global) policy.
    Global,
    /// A product policy; the product id.
    Product(String),
    /// An API policy; the API id.
    Api(String),
    /// An operation policy.
    Operation {
        /// The API id.
        api: String,
        /// The operation id.
        operation: String,
    },
}

impl ScopeLabel {
    /// How an unconditional element of this scope is described, e.g. "API-wide (no condition)".
    pub fn wide_label(&self) -> &'static str {
        match self {
            ScopeLabel::Global => "service-wide (no condition)",
            ScopeLabel::Product(_) => "product-wide (no condition)",
            ScopeLabel::Api(_) => "API-wide (no condition)",
            ScopeLabel::Operation { .. } => "operation-wide (no condition)",
        }
    }
}

impl fmt::Display for ScopeLabel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ScopeLabel::Global => f.write_str("global policy"),
            ScopeLabel::Product(p) => write!(f, "product '{p}' policy"),
            ScopeLabel::Api(a) => write!(f, "API '{a}' policy"),
            ScopeLabel::Operation { api, operation } => {
                write!(f, "operation '{api}/{operation}' policy")
            }
        }
    }
}

/// What an APIM subscription is scoped to.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum SubscriptionScopeKind {
    /// `/products/{id}`: `context.Product` is that product.
    Product,
    /// `/apis`: all APIs, no product (`context.Product` is null).
    AllApis,
    /// `/apis/{id}`: one API, no product.
    Api,
    /// The service itself (the built-in `master` subscription).
    Service,
}

/// What the gateway knows about a subscription when it evaluates policy conditions.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct SubscriptionFacts {
    /// The subscription's resource name (sid): `context.Subscription.Id`.
    pub id: String,
    /// The product id (resource name) for product-scoped subscriptions: `context.Product.Id`.
    pub product_id: Option<String>,
    /// The product's display name, if known: `context.Product.Name`.
    pub product_name: Option<String>,
    /// Whether this is the built-in all-access `master` subscription.
    pub is_master: bool,
    /// What the subscription is scoped to.
    pub scope_kind: SubscriptionScopeKind,
}

impl SubscriptionFacts {
    /// A subscription scoped to product `product_id`.
    pub fn in_product(id: &str, product_id: &str) -> Self {
        SubscriptionFacts {
            id: id.to_string(),
            product_id: Some(product_id.to_string()),
            product_name: None,
            is_master: false,
            scope_kind: SubscriptionScopeKind::Product,
        }
    }

    /// A subscription scoped to all APIs (`/apis`), without a product.
    pub fn all_apis(id: &str) -> Self {
        SubscriptionFacts {
            id: id.to_string(),
            product_id: None,
            product_name: None,
            is_master: false,
            scope_kind: SubscriptionScopeKind::AllApis,
        }
    }

    /// A subscription scoped to a single API (`/apis/{id}`), without a product.
    pub fn single_api(id: &str) -> Self {
        SubscriptionFacts { scope_kind: SubscriptionScopeKind::Api, ..Self::all_apis(id) }
    }

    /// The built-in `master` subscription.
    pub fn master() -> Self {
        SubscriptionFacts {
            id: "master".to_string(),
            product_id: None,
            product_name: None,
            is_master: true,
            scope_kind: SubscriptionScopeKind::Service,
        }
    }

    /// The facts conditions are evaluated against.
    pub fn condition_facts(&self) -> ConditionFacts<'_> {
        ConditionFacts {
            subscription_id: &self.id,
            product_id: self.product_id.as_deref(),
            product_name: self.product_name.as_deref(),
        }
    }
}

/// The limits this crate computes and edits.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum Measure {
    /// Tokens per minute: `tokens-per-minute` of `llm-token-limit`.
    Tpm,
    /// Requests per minute: `rate-limit-by-key` calls, normalised to a 60 s window.
    Rpm,
    /// Token quota: `token-quota` of `llm-token-limit` (per `token-quota-period`).
    TokenQuota,
}

impl Measure {
    /// "TPM limit", "RPM limit", "token quota".
    pub fn noun(self) -> &'static str {
        match self {
            Measure::Tpm => "TPM limit",
            Measure::Rpm => "RPM limit",
            Measure::TokenQuota => "token quota",
        }
    }

    /// "a TPM limit", "an RPM limit", "a token quota".
    pub fn with_article(self) -> &'static str {
        match self {
            Measure::Tpm => "a TPM limit",
            Measure::Rpm => "an RPM limit",
            Measure::TokenQuota => "a token quota",
        }
    }
}

impl fmt::Display for Measure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Measure::Tpm => "TPM",
            Measure::Rpm => "RPM",
            Measure::TokenQuota => "token quota",
        })
    }
}

/// `token-quota-period` values.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum QuotaPeriod {
    /// `Hourly`.
    Hourly,
    /// `Daily`.
    Daily,
    /// `Weekly`.
    Weekly,
    /// `Monthly`.
    Monthly,
    /// `Yearly`.
    Yearly,
}

impl QuotaPeriod {
    /// The attribute value APIM expects.
    pub fn as_str(self) -> &'static str {
        match self {
            QuotaPeriod::Hourly => "Hourly",
            QuotaPeriod::Daily => "Daily",
            QuotaPeriod::Weekly => "Weekly",
            QuotaPeriod::Monthly => "Monthly",
            QuotaPeriod::Yearly => "Yearly",
        }
    }
}

impl fmt::Display for QuotaPeriod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for QuotaPeriod {
    type Err = String;
    /// Case-insensitive.
    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s.trim().to_ascii_lowercase().as_str() {
            "hourly" => QuotaPeriod::Hourly,
            "daily" => QuotaPeriod::Daily,
            "weekly" => QuotaPeriod::Weekly,
            "monthly" => QuotaPeriod::Monthly,
            "yearly" => QuotaPeriod::Yearly,
            _ => {
                return Err(format!("`{s}` is not a quota period (Hourly, Daily, Weekly, Monthly or Yearly)"));
            }
        })
    }
}

/// Where a limit value comes from.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct LimitSource {
    /// The policy scope of the document.
    pub scope: ScopeLabel,
    /// Human-readable branch chain, e.g. `choose[1]/when[2] condition="..."`, or
    /// "API-wide (no condition)".
    pub branch: String,
    /// The branch chain, outermost first.
    pub path: Vec<BranchStep>,
    /// Element name, e.g. `llm-token-limit`.
    pub element: String,
    /// Span of the element in the document.
    pub element_span: Span,
    /// The attribute holding the number, e.g. `tokens-per-minute`.
    pub attribute: String,
    /// The attribute value as written.
    pub raw_value: String,
    /// When the value is `{{name}}`: the named value's name.
    pub named_value: Option<String>,
    /// How the element's counter is keyed (`None` when it has no `counter-key`).
    pub counter_key: Option<CounterKey>,
    /// Extra explanation, e.g. how an RPM was normalised from another window.
    pub note: Option<String>,
}

impl fmt::Display for LimitSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}, {}, <{} {}=\"{}\">", self.scope, self.branch, self.element, self.attribute, self.raw_value)?;
        if let Some(nv) = &self.named_value {
            write!(f, " (named value {{{{{nv}}}}})")?;
        }
        Ok(())
    }
}

/// The effective value of one measure for one subscription.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EffectiveLimit {
    /// A number applies.
    Limited {
        /// The effective value (the smallest of those that apply).
        value: u64,
        /// Where it comes from (boxed: keeps the enum small when listing many subscriptions).
        source: Box<LimitSource>,
        /// Other elements of the same measure that also apply (with larger or equal values).
        also_applies: Vec<LimitSource>,
    },
    /// No element of this measure applies.
    Unlimited {
        /// Why, e.g. "the built-in master subscription matches none of the branches ...".
        reason: String,
    },
    /// Cannot be determined without guessing.
    Unknown {
        /// Why (an unrecognised condition, an expression-valued attribute, a missing named value).
        reason: String,
        /// Elements that may apply.
        candidates: Vec<LimitSource>,
    },
}

impl EffectiveLimit {
    /// The value, when limited.
    pub fn value(&self) -> Option<u64> {
        match self {
            EffectiveLimit::Limited { value, .. } => Some(*value),
            _ => None,
        }
    }

    /// The source, when limited.
    pub fn source(&self) -> Option<&LimitSource> {
        match self {
            EffectiveLimit::Limited { source, .. } => Some(source),
            _ => None,
        }
    }

    /// A short description: "200000", "unlimited", "unknown".
    pub fn short(&self) -> String {
        match self {
            EffectiveLimit::Limited { value, .. } => value.to_string(),
            EffectiveLimit::Unlimited { .. } => "unlimited".to_string(),
            EffectiveLimit::Unknown { .. } => "unknown".to_string(),
        }
    }
}

/// A limit of a kind this crate reports but does not compute (`rate-limit`, `quota-by-key`,
/// `quota`) that applies, or may apply, to the subscription.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OtherLimit {
    /// The policy.
    pub kind: LimitKind,
    /// Its number-bearing attributes as written, e.g. `calls="100" renewal-period="60"`.
    pub description: String,
    /// Where it is (attribute `calls` or `bandwidth`).
    pub source: LimitSource,
    /// `true` when it certainly applies, `false` when it depends on a condition not understood.
    pub certain: bool,
}

/// All effective limits of one subscription under one document.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EffectiveLimits {
    /// The subscription.
    pub subscription_id: String,
    /// The document's scope.
    pub scope: ScopeLabel,
    /// Tokens per minute.
    pub tpm: EffectiveLimit,
    /// Requests per minute.
    pub rpm: EffectiveLimit,
    /// Token quota.
    pub token_quota: EffectiveLimit,
    /// The period of the effective token quota (as written, named values resolved).
    pub token_quota_period: Option<String>,
    /// `rate-limit`, `quota-by-key` and `quota` elements that apply.
    pub other_limits: Vec<OtherLimit>,
    /// Whether `<inbound>` has `<base />`, i.e. whether parent-scope limits also apply.
    pub inherits_parent: bool,
    /// Things the caller should know: included fragments (not analysed), limit elements outside
    /// `<inbound>` (ignored), counters shared between subscriptions.
    pub caveats: Vec<String>,
}

impl EffectiveLimits {
    /// The effective limit of `measure`.
    pub fn get(&self, measure: Measure) -> &EffectiveLimit {
        match measure {
            Measure::Tpm => &self.tpm,
            Measure::Rpm => &self.rpm,
            Measure::TokenQuota => &self.token_quota,
        }
    }
}

/// Which subscriptions a limit element applies to.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Sharing {
    /// Subscriptions the element certainly applies to.
    pub subscriptions: Vec<String>,
    /// Subscriptions it may apply to, depending on conditions not understood.
    pub possibly: Vec<String>,
}

impl Sharing {
    /// Every subscription it certainly or possibly applies to.
    pub fn all(&self) -> impl Iterator<Item = &String> {
        self.subscriptions.iter().chain(&self.possibly)
    }

    /// Every subscription it certainly or possibly applies to, other than `id`.
    pub fn others_than(&self, id: &str) -> Vec<String> {
        self.all().filter(|other| *other != id).cloned().collect()
    }
}

/// Where a named value is used in a document.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NamedValueUsage {
    /// Spans of the attribute values and text nodes referencing `{{name}}`.
    pub references: Vec<Span>,
    /// Limit elements referencing it, and which subscriptions those apply to.
    pub sharing: Sharing,
}

/// Computes the effective limits of `sub` under `doc` (see the module documentation).
pub fn effective_limits(
    doc: &PolicyDocument,
    scope: ScopeLabel,
    sub: &SubscriptionFacts,
    named_values: &dyn Fn(&str) -> Option<String>,
) -> EffectiveLimits {
    Analysis::of(doc).effective_limits(&scope, sub, named_values)
}

/// Which of `all` share the limit element that `source` points at (it applies to them).
pub fn subscriptions_sharing(
    doc: &PolicyDocument,
    source: &LimitSource,
    all: &[SubscriptionFacts],
    named_values: &dyn Fn(&str) -> Option<String>,
) -> Sharing {
    Analysis::of(doc).sharing(source.element_span, all, named_values)
}

/// Where `{{name}}` is referenced in `doc`, and which of `all` the referencing limit elements
/// apply to.
pub fn named_value_usage(
    doc: &PolicyDocument,
    name: &str,
    all: &[SubscriptionFacts],
    named_values: &dyn Fn(&str) -> Option<String>,
) -> NamedValueUsage {
    Analysis::of(doc).named_value_usage(name, all, named_values)
}

struct Candidate<'a, 'd> {
    limit: &'a LimitElement<'d>,
    truth: Truth,
    value: Result<u64, String>,
    /// Built only for candidates that may apply.
    source: Option<LimitSource>,
}

impl Candidate<'_, '_> {
    fn source(&self) -> &LimitSource {
        self.source.as_ref().expect("built for every candidate that may apply")
    }
}

impl<'d> Analysis<'d> {
    /// Evaluates one branch's own condition (not its position) for a subscription.
    fn branch_condition(
        &self,
        choose: usize,
        branch: &Branch<'_>,
        facts: &ConditionFacts<'_>,
        nv: &dyn Fn(&str) -> Option<String>,
    ) -> Truth {
        let BranchKind::When { ordinal, .. } = branch.kind else {
            return Truth::True;
        };
        let label = || format!("choose[{choose}]/when[{ordinal}]");
        let truth = match &branch.recognised {
            Some(c) => c.evaluate(facts),
            None => {
                let text = branch.condition_text().unwrap_or_default();
                match substitute_named_values(&text, nv) {
                    Err(name) => {
                        return Truth::Unknown(format!(
                            "{}: condition uses named value {{{{{name}}}}}, which is not defined",
                            label()
                        ));
                    }
                    Ok(t) => Condition::recognise(&t).evaluate(facts),
                }
            }
        };
        match truth {
            Truth::Unknown(r) => Truth::Unknown(format!("{}: {r}", label())),
            t => t,
        }
    }

    /// Whether the branch of `step` is the one taken for the subscription.
    pub fn step_truth(
        &self,
        step: &BranchStep,
        facts: &ConditionFacts<'_>,
        named_values: &dyn Fn(&str) -> Option<String>,
    ) -> Truth {
        let Some(choose) = self.choose(step.choose) else {
            return Truth::Unknown(format!("choose[{}] not found", step.choose));
        };
        let mut unknown = None;
        for b in choose.branches.iter().take(step.branch.0) {
            if b.kind == BranchKind::Otherwise {
                continue;
            }
            match self.branch_condition(choose.ordinal, b, facts, named_values) {
                Truth::True => return Truth::False,
                Truth::False => {}
                Truth::Unknown(r) => {
                    unknown.get_or_insert(r);
                }
            }
        }
        let Some(this) = choose.branches.get(step.branch.0) else {
            return Truth::Unknown(format!("choose[{}] has no branch {}", step.choose, step.branch.0));
        };
        match (self.branch_condition(choose.ordinal, this, facts, named_values), unknown) {
            (Truth::False, _) => Truth::False,
            (Truth::Unknown(r), _) | (Truth::True, Some(r)) => Truth::Unknown(r),
            (Truth::True, None) => Truth::True,
        }
    }

    /// Whether a whole branch chain is taken for the subscription.
    pub fn path_truth(
        &self,
        path: &[BranchStep],
        facts: &ConditionFacts<'_>,
        named_values: &dyn Fn(&str) -> Option<String>,
    ) -> Truth {
        let mut unknown = None;
        for step in path {
            match self.step_truth(step, facts, named_values) {
                Truth::False => return Truth::False,
                Truth::Unknown(r) => {
                    unknown.get_or_insert(r);
                }
                Truth::True => {}
            }
        }
        unknown.map_or(Truth::True, Truth::Unknown)
    }

    fn source(&self, scope: &ScopeLabel, limit: &LimitElement<'_>, attr: &Attr, note: Option<String>) -> LimitSource {
        LimitSource {
            scope: scope.clone(),
            branch: if limit.path.is_empty() { scope.wide_label().to_string() } else { path_label(&limit.path) },
            path: limit.path.clone(),
            element: limit.element.name.clone(),
            element_span: limit.element.span,
            attribute: attr.name.clone(),
            raw_value: attr.raw.clone(),
            named_value: match ValueRef::of(attr) {
                ValueRef::NamedValue(n) => Some(n),
                _ => None,
            },
            counter_key: limit.counter_key(),
            note,
        }
    }

    fn candidates<'a>(
        &'a self,
        measure: Measure,
        scope: &ScopeLabel,
        facts: &ConditionFacts<'_>,
        nv: &dyn Fn(&str) -> Option<String>,
    ) -> Vec<Candidate<'a, 'd>> {
        let mut out = Vec::new();
        for limit in self.limits.iter().filter(|l| l.in_effect()) {
            let (attr, value, note) = match measure {
                Measure::Tpm | Measure::TokenQuota if limit.kind.is_token_limit() => {
                    let name = if measure == Measure::Tpm { "tokens-per-minute" } else { "token-quota" };
                    let Some(attr) = limit.element.attr(name) else {
                        continue;
                    };
                    (attr, resolve(attr, nv), None)
                }
                Measure::Rpm if limit.kind == LimitKind::RateLimitByKey => {
                    let Some(calls) = limit.element.attr("calls") else {
                        continue;
                    };
                    let renewal = limit.element.attr("renewal-period");
                    let (value, note) = match (resolve(calls, nv), renewal.map(|r| resolve(r, nv))) {
                        (Err(e), _) => (Err(e), None),
                        (_, None) => (Err("rate-limit-by-key has no renewal-period".to_string()), None),
                        (_, Some(Err(e))) => (Err(format!("renewal-period: {e}")), None),
                        (Ok(_), Some(Ok(0))) => (Err("renewal-period is 0".to_string()), None),
                        (Ok(c), Some(Ok(60))) => (Ok(c), None),
                        (Ok(c), Some(Ok(r))) => {
                            let per_minute = c.saturating_mul(60) / r;
                            let exact = c.saturating_mul(60) % r == 0;
                            (
                                Ok(per_minute),
                                Some(format!(
                                    "normalised from {c} calls per {r} s to {}{per_minute} per minute",
                                    if exact { "" } else { "about " }
                                )),
                            )
                        }
                    };
                    (calls, value, note)
                }
                _ => continue,
            };
            let truth = self.path_truth(&limit.path, facts, nv);
            let source = (truth != Truth::False).then(|| self.source(scope, limit, attr, note));
            out.push(Candidate { limit, truth, value, source });
        }
        out
    }

    fn effective(
        &self,
        measure: Measure,
        scope: &ScopeLabel,
        sub: &SubscriptionFacts,
        nv: &dyn Fn(&str) -> Option<String>,
    ) -> (EffectiveLimit, Option<&LimitElement<'d>>) {
        let facts = sub.condition_facts();
        let all = self.candidates(measure, scope, &facts, nv);
        let (certain, maybe): (Vec<_>, Vec<_>) =
            all.iter().filter(|c| c.truth != Truth::False).partition(|c| c.truth == Truth::True);
        if let Some(bad) = certain.iter().find(|c| c.value.is_err()) {
            return (
                EffectiveLimit::Unknown {
                    reason: format!("{measure} value at {}: {}", bad.source().branch, bad.value.clone().unwrap_err()),
                    candidates: certain.iter().map(|c| c.source().clone()).collect(),
                },
                None,
            );
        }
        let best = certain.iter().min_by_key(|c| *c.value.as_ref().expect("checked above")).copied();
        if !maybe.is_empty() {
            let dominated = best
                .is_some_and(|b| maybe.iter().all(|m| matches!((&m.value, &b.value), (Ok(mv), Ok(bv)) if mv >= bv)));
            if !dominated {
                let reason = match &maybe[0].truth {
                    Truth::Unknown(r) => r.clone(),
                    _ => unreachable!(),
                };
                return (
                    EffectiveLimit::Unknown {
                        reason: format!("{measure} depends on a condition that cannot be evaluated: {reason}"),
                        candidates: certain.iter().chain(&maybe).map(|c| c.source().clone()).collect(),
                    },
                    None,
                );
            }
        }
        match best {
            Some(b) => (
                EffectiveLimit::Limited {
                    value: *b.value.as_ref().expect("checked above"),
                    source: Box::new(b.source().clone()),
                    also_applies: certain
                        .iter()
                        .filter(|c| c.limit.element.span != b.limit.element.span)
                        .map(|c| c.source().clone())
                        .collect(),
                },
                Some(b.limit),
            ),
            None => (EffectiveLimit::Unlimited { reason: self.unlimited_reason(measure, sub, &all) }, None),
        }
    }

    fn unlimited_reason(&self, measure: Measure, sub: &SubscriptionFacts, all: &[Candidate<'_, '_>]) -> String {
        let element = match measure {
            Measure::Tpm | Measure::TokenQuota => "llm-token-limit",
            Measure::Rpm => "rate-limit-by-key",
        };
        if all.is_empty() {
            return format!("the policy sets no {} in <inbound> (no {element})", measure.noun());
        }
        if sub.is_master {
            return format!(
                "the built-in master (all-access) subscription matches no branch that sets {}",
                measure.with_article()
            );
        }
        let product_branches = all.iter().any(|c| {
            c.limit.path.iter().any(|s| {
                matches!(s.recognise(&|_| None), Some(Ok(Condition::AnyOf(t)))
                    if t.iter().any(|t| t.field != Field::SubscriptionId))
            })
        });
        if sub.product_id.is_none() && product_branches {
            let scope = match sub.scope_kind {
                SubscriptionScopeKind::Api => "a single API",
                _ => "all APIs",
            };
            return format!(
                "subscription '{}' is scoped to {scope} (no product), so no product branch that sets {} matches it",
                sub.id,
                measure.with_article()
            );
        }
        format!("no branch that sets {} matches subscription '{}'", measure.with_article(), sub.id)
    }

    /// The effective limits of `sub` under this document.
    pub fn effective_limits(
        &self,
        scope: &ScopeLabel,
        sub: &SubscriptionFacts,
        named_values: &dyn Fn(&str) -> Option<String>,
    ) -> EffectiveLimits {
        let (tpm, _) = self.effective(Measure::Tpm, scope, sub, named_values);
        let (rpm, _) = self.effective(Measure::Rpm, scope, sub, named_values);
        let (token_quota, quota_element) = self.effective(Measure::TokenQuota, scope, sub, named_values);
        let token_quota_period = quota_element
            .and_then(|l| l.element.attr("token-quota-period"))
            .map(|a| substitute_named_values(&a.value(), named_values).unwrap_or_else(|_| a.value().into_owned()));

        let facts = sub.condition_facts();
        let mut other_limits = Vec::new();
        for limit in self.limits.iter().filter(|l| l.in_effect()) {
            if !matches!(limit.kind, LimitKind::RateLimit | LimitKind::QuotaByKey | LimitKind::Quota) {
                continue;
            }
            let truth = self.path_truth(&limit.path, &facts, named_values);
            if truth == Truth::False {
                continue;
            }
            let Some(attr) = limit.element.attr("calls").or_else(|| limit.element.attr("bandwidth")) else {
                continue;
            };
            let description = limit
                .element
                .attributes
                .iter()
                .filter(|a| matches!(a.name.as_str(), "calls" | "bandwidth" | "renewal-period" | "counter-key"))
                .map(|a| format!("{}=\"{}\"", a.name, a.raw))
                .collect::<Vec<_>>()
                .join(" ");
            other_limits.push(OtherLimit {
                kind: limit.kind,
                description,
                source: self.source(scope, limit, attr, None),
                certain: truth == Truth::True,
            });
        }

        let mut caveats = Vec::new();
        for f in &self.fragments {
            let id = f.attr("fragment-id").map(|a| a.raw.clone()).unwrap_or_default();
            caveats.push(format!("policy fragment '{id}' is included; limits inside fragments are not analysed"));
        }
        for l in self.limits.iter().filter(|l| !l.in_effect()) {
            caveats.push(format!(
                "<{}> outside <inbound> is ignored (APIM only applies limits in inbound)",
                l.element.name
            ));
        }
        for (m, e) in [(Measure::Tpm, &tpm), (Measure::Rpm, &rpm), (Measure::TokenQuota, &token_quota)] {
            if let EffectiveLimit::Limited { source, .. } = e
                && let Some(key) = &source.counter_key
                && !key.is_per_subscription()
            {
                caveats.push(format!(
                    "{m} counter is not per subscription: {key}; the limit is shared by every request using that key"
                ));
            }
        }
        EffectiveLimits {
            subscription_id: sub.id.clone(),
            scope: scope.clone(),
            tpm,
            rpm,
            token_quota,
            token_quota_period,
            other_limits,
            inherits_parent: self.inbound_has_base || self.doc.root().name != "policies",
            caveats,
        }
    }

    /// Which of `all` the limit element at `element_span` applies to.
    pub fn sharing(
        &self,
        element_span: Span,
        all: &[SubscriptionFacts],
        named_values: &dyn Fn(&str) -> Option<String>,
    ) -> Sharing {
        let mut out = Sharing::default();
        let Some(limit) = self.limit_at(element_span) else {
            return out;
        };
        for sub in all {
            match self.path_truth(&limit.path, &sub.condition_facts(), named_values) {
                Truth::True => out.subscriptions.push(sub.id.clone()),
                Truth::Unknown(_) => out.possibly.push(sub.id.clone()),
                Truth::False => {}
            }
        }
        out
    }

    /// Where `{{name}}` is used, and which of `all` the limit elements using it apply to.
    pub fn named_value_usage(
        &self,
        name: &str,
        all: &[SubscriptionFacts],
        named_values: &dyn Fn(&str) -> Option<String>,
    ) -> NamedValueUsage {
        let mut usage = NamedValueUsage::default();
        let uses = |t: &str| named_value_refs(t).iter().any(|n| n == name);
        for e in self.doc.elements() {
            for a in &e.attributes {
                if uses(&a.raw) {
                    usage.references.push(a.value_span);
                }
            }
            for c in &e.children {
                if let crate::parse::Node::Text(s) | crate::parse::Node::CData(s) = c
                    && uses(self.doc.slice(*s))
                {
                    usage.references.push(*s);
                }
            }
        }
        for limit in &self.limits {
            if !limit.element.attributes.iter().any(|a| uses(&a.raw)) {
                continue;
            }
            let s = self.sharing(limit.element.span, all, named_values);
            for id in s.subscriptions {
                if !usage.sharing.subscriptions.contains(&id) {
                    usage.sharing.subscriptions.push(id);
                }
            }
            for id in s.possibly {
                if !usage.sharing.possibly.contains(&id) {
                    usage.sharing.possibly.push(id);
                }
            }
        }
        let certain = usage.sharing.subscriptions.clone();
        usage.sharing.possibly.retain(|id| !certain.contains(id));
        usage
    }
}

/// Resolves a number-bearing attribute.
fn resolve(attr: &Attr, nv: &dyn Fn(&str) -> Option<String>) -> Result<u64, String> {
    let parse =
        |v: &str, what: &str| v.trim().parse::<u64>().map_err(|_| format!("{what} is \"{v}\", not a whole number"));
    match ValueRef::of(attr) {
        ValueRef::Literal(n) => Ok(n),
        ValueRef::NamedValue(name) => match nv(&name) {
            Some(v) => parse(&v, &format!("named value {{{{{name}}}}}")),
            None => Err(format!("named value {{{{{name}}}}} is not defined")),
        },
        ValueRef::Expression(e) => Err(format!("computed per request by `{e}`")),
        ValueRef::Other(t) => match substitute_named_values(&t, nv) {
            Ok(v) => parse(&v, &format!("`{t}`")),
            Err(name) => Err(format!("named value {{{{{name}}}}} is not defined")),
        },
    }
}
