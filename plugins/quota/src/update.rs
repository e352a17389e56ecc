//! `update_quota`: a plan that changes exactly one subscription's TPM, RPM or token quota.
//!
//! Reads (3 batches): the subscription, the first page of all subscriptions and the tenant basics;
//! then the other subscription pages, every product's API list and policy, and every API policy
//! (who shares a limit, and whether a named value is used by another policy, can only be answered
//! from all of them); then, for a named-value change, the named value itself (for its ETag).
//!
//! Where each number is changed: in the document its current effective limit comes from (the
//! smallest that applies, on every API the subscription reaches); when nothing limits it, in the
//! API policy that holds the tenant's limits (or the only API's policy, else the product's, else
//! the global policy). The edit itself is `aigw_policy_xml::set_limit_for_subscription`: in
//! place when the subscription has its own branch, an override ahead of a shared branch, or the
//! named value when only this subscription uses it. After planning, the subscription's limits
//! are recomputed over all scopes and any number that would not take effect is reported.

use std::collections::{BTreeMap, BTreeSet};
use std::str::FromStr;

use aigw_pdk::arm::Resource;
use aigw_pdk::{Error, Outcome, PlanBuilder, diff};
use aigw_policy_xml::{
    Action, EditContext, EditError, FieldChange, LimitChange, LimitField, LimitKind, Measure, QuotaPeriod, ScopeLabel,
    SubscriptionFacts, set_limit_for_subscription,
};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::arm::{self, Arm, PAGE, Page, page_path, seg};
use crate::limits::{Analyses, Doc, DocKey, Docs, Lim, policy_path};
use crate::model::{Scope, Subscription};
use crate::tenant::{Reach, Tenant, limits_of, limits_with};
use crate::util::{few, pretty};

/// The tool's arguments.
#[derive(Deserialize, Debug, Default, Clone)]
#[serde(deny_unknown_fields)]
pub struct Args {
    /// The APIM subscription (sid).
    pub subscription_id: String,
    /// New tokens per minute.
    pub tpm: Option<u64>,
    /// New requests per minute.
    pub rpm: Option<u64>,
    /// New token quota.
    pub token_quota: Option<u64>,
    /// Its period.
    pub token_quota_period: Option<String>,
}

/// A policy with no limits, for a scope that has no policy yet.
const EMPTY_POLICY: &str = "<policies>\r\n\t<inbound>\r\n\t\t<base />\r\n\t</inbound>\r\n\t<backend>\r\n\t\t<base />\r\n\t</backend>\r\n\t<outbound>\r\n\t\t<base />\r\n\t</outbound>\r\n\t<on-error>\r\n\t\t<base />\r\n\t</on-error>\r\n</policies>";

/// The requested change, checked.
pub fn change_of(args: &Args) -> Result<LimitChange, Error> {
    if args.tpm.is_none() && args.rpm.is_none() && args.token_quota.is_none() && args.token_quota_period.is_none() {
        return Err(Error::invalid(
            "tpm, rpm, token_quota, token_quota_period",
            "give at least one of tpm, rpm, token_quota (with token_quota_period)",
        ));
    }
    let period = args
        .token_quota_period
        .as_deref()
        .map(QuotaPeriod::from_str)
        .transpose()
        .map_err(|e| Error::invalid("token_quota_period", e))?;
    let change =
        LimitChange { tpm: args.tpm, rpm: args.rpm, token_quota: args.token_quota, token_quota_period: period };
    change.validate().map_err(|e| edit_error(e, &args.subscription_id))?;
    Ok(change)
}

fn edit_error(e: EditError, sid: &str) -> Error {
    match e {
        EditError::InvalidValue { field, message } => Error::invalid(&field, message),
        EditError::Undeterminable { field, reason } => Error::Conflict(format!(
            "cannot change {field} of '{sid}' safely: the current limit cannot be determined: {reason}"
        )),
        EditError::NotPossible { reason } => Error::Conflict(format!("cannot change the limits of '{sid}': {reason}")),
        EditError::Xml(x) => Error::Conflict(format!("the policy does not parse, so it cannot be edited: {x}")),
        other => Error::Internal(format!("planning the change for '{sid}' failed: {other}")),
    }
}

/// Runs the tool.
pub fn run(arm: &dyn Arm, args: &Args) -> Result<Outcome, Error> {
    let change = change_of(args)?;
    let sid = args.subscription_id.as_str();

    // Batch 1: the subscription, the first page of all subscriptions, the tenant basics.
    let mut paths = vec![format!("subscriptions/{}", seg(sid)), page_path("subscriptions", PAGE, 0, "")];
    paths.extend(Tenant::first_paths());
    let mut answers = arm.get_many(&paths).into_iter();
    let target: Subscription = match answers.next().expect("asked") {
        Ok(r) => arm::parse(&paths[0], &r.body)?,
        Err(e) if arm::is_not_found(&e) => {
            return Err(Error::NotFound(format!("subscription '{sid}' not found")));
        }
        Err(e) => return Err(e),
    };
    let first_page: Page<Subscription> = arm::parse(&paths[1], &answers.next().expect("asked")?.body)?;
    let mut tenant = Tenant::from_first(arm, answers.collect())?;

    // Batch 2: the other subscription pages, every product, every API policy.
    let more = first_page.has_more();
    let mut subs = first_page.value;
    let sub_pages: Vec<String> = match (more, first_page.count) {
        (true, Some(count)) if !subs.is_empty() => {
            (subs.len()..count as usize).step_by(PAGE).map(|skip| page_path("subscriptions", PAGE, skip, "")).collect()
        }
        _ => Vec::new(),
    };
    if more && sub_pages.is_empty() {
        subs = arm.list("subscriptions")?.iter().map(|s| arm::parse("subscriptions", s)).collect::<Result<_, _>>()?;
    }
    let mut products: Vec<String> = tenant.products.ids().cloned().collect();
    if let Some(p) = target.scope.product()
        && !products.iter().any(|x| x.eq_ignore_ascii_case(p))
    {
        products.push(p.to_string());
    }
    let mut apis = tenant.apis.clone();
    if let Scope::Api(a) = &target.scope
        && !apis.iter().any(|x| x.eq_ignore_ascii_case(a))
    {
        apis.push(a.clone());
    }
    let mut paths = sub_pages.clone();
    for p in &products {
        paths.extend(Tenant::product_paths(p));
    }
    paths.extend(apis.iter().map(|a| Tenant::api_policy_path(a)));
    let mut answers = arm.get_many(&paths).into_iter();
    for path in &sub_pages {
        let page: Page<Subscription> = arm::parse(path, &answers.next().expect("asked")?.body)?;
        subs.extend(page.value);
    }
    for p in &products {
        let (a, b) = (answers.next().expect("asked"), answers.next().expect("asked"));
        tenant.ingest_product(arm, p, a, b)?;
    }
    for a in &apis {
        tenant.ingest_api_policy(a, answers.next().expect("asked"))?;
    }
    if !subs.iter().any(|s| s.id == target.id) {
        subs.push(target.clone());
    }

    let analyses = tenant.docs.analyse();
    let plan = plan_edits(&tenant, &analyses, &subs, &target, &change)?;
    if nothing_to_do(&plan) {
        return Err(unchanged_error(sid, &plan));
    }

    // Batch 3: named values to update, for their ETags.
    let mut nv_reads = BTreeMap::new();
    if !plan.named_values.is_empty() {
        let names: Vec<&String> = plan.named_values.keys().collect();
        let paths: Vec<String> = names
            .iter()
            .map(|display| {
                let name = tenant.named_values.get(display).map_or(display.as_str(), |n| n.name.as_str());
                format!("namedValues/{}", seg(name))
            })
            .collect();
        for ((display, path), answer) in names.into_iter().zip(paths.clone()).zip(arm.get_many(&paths)) {
            let r = answer?;
            let body: Value = arm::parse(&path, &r.body)?;
            if body["properties"]["keyVault"].is_object() {
                return Err(Error::Conflict(format!(
                    "named value {{{{{display}}}}} is a Key Vault reference: change the secret in Key Vault, or give '{sid}' its own number"
                )));
            }
            nv_reads.insert(display.clone(), (path, Resource { etag: r.etag, body }));
        }
    }
    Ok(assemble(&tenant, &analyses, &target, &change, plan, nv_reads))
}

/// What the edits of every document amount to.
pub struct Edits {
    /// New XML per document.
    pub xml: BTreeMap<DocKey, (ScopeLabel, String)>,
    /// Named values to set: display name → (old, new).
    pub named_values: BTreeMap<String, (String, String)>,
    /// Every number's change, with its document.
    pub changes: Vec<(ScopeLabel, FieldChange)>,
    /// APIs on which the subscription stays unlimited (nothing to edit there).
    pub unlimited_on: Vec<(Measure, Vec<String>)>,
}

fn family(m: Measure, k: LimitKind) -> bool {
    match m {
        Measure::Rpm => k == LimitKind::RateLimitByKey,
        _ => k.is_token_limit(),
    }
}

/// The documents each measure is changed in (see the module documentation).
fn targets(
    tenant: &Tenant,
    analyses: &Analyses<'_>,
    sub: &Subscription,
    m: Measure,
) -> Result<(BTreeSet<DocKey>, Vec<String>), Error> {
    let groups = limits_of(tenant, analyses, sub)
        .map_err(|why| Error::Conflict(format!("'{}' reaches no API, so no limit applies to it: {why}", sub.id)))?;
    let mut docs = BTreeSet::new();
    let mut unlimited = Vec::new();
    for g in &groups {
        match g.limits.get(m) {
            Lim::Limited { source, .. } => {
                docs.insert(source.doc.clone());
            }
            Lim::Unknown { doc: Some(d), .. } => {
                docs.insert(d.clone());
            }
            Lim::Unknown { reason, doc: None } => {
                return Err(Error::Conflict(format!("cannot change the {m} of '{}' safely: {reason}", sub.id)));
            }
            Lim::Unlimited { .. } => unlimited.extend(g.apis.iter().cloned()),
        }
    }
    if !docs.is_empty() {
        return Ok((docs, unlimited));
    }
    // Nothing limits it anywhere: add the limit where the tenant keeps its limits.
    let Reach::Apis(apis) = tenant.reach(sub) else { unreachable!("limits_of succeeded") };
    let holding: BTreeSet<DocKey> = apis
        .iter()
        .map(|a| DocKey::api(a))
        .filter(|k| {
            matches!(analyses.analysis(k), Some(Ok(a)) if a.limits.iter().any(|l| l.in_effect() && family(m, l.kind)))
        })
        .collect();
    let docs = if !holding.is_empty() {
        holding
    } else if apis.len() == 1 {
        BTreeSet::from([DocKey::api(&apis[0])])
    } else if let Some(p) = sub.scope.product() {
        BTreeSet::from([DocKey::product(p)])
    } else {
        BTreeSet::from([DocKey::Global])
    };
    Ok((docs, Vec::new()))
}

/// The scope label and current XML of `key` (an empty policy when the scope has none).
fn scope_and_text(tenant: &Tenant, analyses: &Analyses<'_>, key: &DocKey, sub: &Subscription) -> (ScopeLabel, String) {
    if let Some(d) = analyses.doc(key) {
        return (d.scope.clone(), d.read.xml.clone());
    }
    let scope = match key {
        DocKey::Global => ScopeLabel::Global,
        DocKey::Product(p) => {
            ScopeLabel::Product(sub.scope.product().filter(|x| x.eq_ignore_ascii_case(p)).unwrap_or(p).to_string())
        }
        DocKey::Api(a) => ScopeLabel::Api(
            match tenant.reach(sub) {
                Reach::Apis(apis) => apis.into_iter().find(|x| x.eq_ignore_ascii_case(a)),
                Reach::Nothing(_) => None,
            }
            .unwrap_or_else(|| a.clone()),
        ),
    };
    (scope, EMPTY_POLICY.to_string())
}

/// Plans the edits of every document (no I/O).
pub fn plan_edits(
    tenant: &Tenant,
    analyses: &Analyses<'_>,
    subs: &[Subscription],
    sub: &Subscription,
    change: &LimitChange,
) -> Result<Edits, Error> {
    // Which document gets which part of the change.
    let mut per_doc: BTreeMap<DocKey, LimitChange> = BTreeMap::new();
    let mut unlimited_on = Vec::new();
    let mut wanted = Vec::new();
    if change.tpm.is_some() {
        wanted.push(Measure::Tpm);
    }
    if change.token_quota.is_some() || change.token_quota_period.is_some() {
        wanted.push(Measure::TokenQuota);
    }
    if change.rpm.is_some() {
        wanted.push(Measure::Rpm);
    }
    for m in wanted {
        let (docs, unlimited) = targets(tenant, analyses, sub, m)?;
        if !unlimited.is_empty() {
            unlimited_on.push((m, unlimited));
        }
        for d in docs {
            let c = per_doc.entry(d).or_default();
            match m {
                Measure::Tpm => c.tpm = change.tpm,
                Measure::Rpm => c.rpm = change.rpm,
                Measure::TokenQuota => {
                    c.token_quota = change.token_quota;
                    c.token_quota_period = change.token_quota_period;
                }
            }
        }
    }

    let facts_of = |key: &DocKey| -> Vec<SubscriptionFacts> {
        subs.iter().filter(|s| tenant.reaches_doc(s, key)).map(|s| s.facts(&tenant.products)).collect()
    };
    let resolve = |n: &str| tenant.named_values.value(n);
    let target_facts = sub.facts(&tenant.products);
    let mut edits = Edits { xml: BTreeMap::new(), named_values: BTreeMap::new(), changes: Vec::new(), unlimited_on };
    for (key, doc_change) in per_doc {
        let (scope, text) = scope_and_text(tenant, analyses, &key, sub);
        let all = facts_of(&key);
        // Who uses a named value in the other documents (other than this subscription).
        let elsewhere = |name: &str| -> Vec<String> {
            let mut users = Vec::new();
            for other in analyses.keys().filter(|k| **k != key) {
                let (Some(doc), Some(Ok(a))) = (analyses.doc(other), analyses.analysis(other)) else {
                    continue;
                };
                let usage = a.named_value_usage(name, &facts_of(other), &resolve);
                if usage.references.is_empty() {
                    continue;
                }
                let mine = usage.sharing.all().any(|id| *id == sub.id);
                let others = usage.sharing.others_than(&sub.id);
                if others.is_empty() && !mine {
                    users.push(doc.scope.to_string());
                }
                for id in others {
                    if !users.contains(&id) {
                        users.push(id);
                    }
                }
            }
            users
        };
        let ctx = EditContext {
            scope: scope.clone(),
            subscriptions: &all,
            named_values: &resolve,
            named_value_users_elsewhere: &elsewhere,
        };
        let outcome =
            set_limit_for_subscription(&text, &target_facts, &doc_change, &ctx).map_err(|e| edit_error(e, &sub.id))?;
        if let Some(new) = outcome.text() {
            edits.xml.insert(key.clone(), (scope.clone(), new.to_string()));
        }
        for u in outcome.named_value_updates() {
            edits.named_values.insert(u.name, (u.old, u.new));
        }
        edits.changes.extend(outcome.changes().iter().cloned().map(|c| (scope.clone(), c)));
    }
    Ok(edits)
}

fn action_label(a: &Action) -> &'static str {
    match a {
        Action::Unchanged => "unchanged",
        Action::EditedInPlace => "edited_in_place",
        Action::OverrideInserted { .. } => "override_inserted",
        Action::WrappedInChoose => "wrapped_in_choose",
        Action::AddedToOwnBranch => "added_to_own_branch",
        Action::BranchAdded { .. } => "branch_added",
        Action::ChooseCreated => "choose_created",
        Action::NamedValue { .. } => "named_value",
    }
}

/// One change as a short phrase: `TPM 200,000 → 100,000 (edited in place, API 'x' policy)`.
pub fn phrase(scope: &ScopeLabel, c: &FieldChange) -> String {
    let how = match &c.action {
        Action::Unchanged => "already set".to_string(),
        Action::EditedInPlace => format!("edited in place, {scope}"),
        Action::OverrideInserted { .. } => {
            format!("own override added ahead of the shared branch, {scope}")
        }
        Action::WrappedInChoose => {
            format!("shared limit wrapped in a <choose> with its own branch, {scope}")
        }
        Action::AddedToOwnBranch => format!("added to its own branch, {scope}"),
        Action::BranchAdded { .. } => format!("own branch added, {scope}"),
        Action::ChooseCreated => format!("new <choose> with its own branch, {scope}"),
        Action::NamedValue { name } => format!("named value {name}; policy XML unchanged"),
    };
    let mut s = format!("{} {} → {} ({how}", c.field, pretty(&c.old), pretty(&c.new));
    if !c.shared_with.is_empty() && !matches!(c.action, Action::EditedInPlace | Action::NamedValue { .. }) {
        let verb = if c.shared_with.len() == 1 { "keeps" } else { "keep" };
        s.push_str(&format!("; {} {verb} {}", few(&c.shared_with, 3), pretty(&c.old)));
    }
    s.push(')');
    s
}

/// Builds the plan from the planned edits and the named values read for their ETags.
pub fn assemble(
    tenant: &Tenant,
    analyses: &Analyses<'_>,
    sub: &Subscription,
    change: &LimitChange,
    edits: Edits,
    nv_reads: BTreeMap<String, (String, Resource)>,
) -> Outcome {
    let mut builder = PlanBuilder::new();
    let mut notes: Vec<String> = Vec::new();
    for (display, (old, new)) in &edits.named_values {
        let Some((path, before)) = nv_reads.get(display) else {
            continue;
        };
        let mut after = before.body["properties"].clone();
        after["value"] = json!(new);
        let mut shown_before = before.body["properties"].clone();
        if shown_before.get("value").is_none() {
            shown_before["value"] = json!(old);
        }
        builder = builder.patch(path, before, json!({"properties": {"value": new}})).diff(&diff::unified_json(
            path,
            &shown_before,
            &after,
        ));
    }
    for (key, (scope, new)) in &edits.xml {
        let path = policy_path(scope);
        let (before, old_text) = match analyses.doc(key) {
            Some(d) => (Some(Resource { etag: d.read.etag.clone(), body: d.read.body.clone() }), d.read.xml.clone()),
            None => {
                notes.push(format!("{scope} does not exist yet: the plan creates it"));
                (None, String::new())
            }
        };
        builder = builder
            .put(&path, before.as_ref(), json!({"properties": {"format": "rawxml", "value": new}}))
            .diff(&diff::unified(&path, &old_text, new));
    }

    // Re-check over every scope: does each requested number take effect?
    let mut docs = Docs::default();
    for k in analyses.keys() {
        let d = analyses.doc(k).expect("listed");
        let mut read = d.read.clone();
        if let Some((_, new)) = edits.xml.get(k) {
            read.xml = new.clone();
        }
        docs.insert(k.clone(), Doc::new(d.scope.clone(), read));
    }
    for (k, (scope, new)) in &edits.xml {
        if analyses.doc(k).is_none() {
            let read = crate::arm::PolicyRead { etag: None, body: Value::Null, xml: new.clone() };
            docs.insert(k.clone(), Doc::new(scope.clone(), read));
        }
    }
    let mut nv = tenant.named_values.clone();
    for (display, (_, new)) in &edits.named_values {
        nv.set_value(display, new);
    }
    let after = docs.analyse();
    if let Ok(groups) = limits_with(tenant, &after, sub, &nv) {
        for g in groups {
            for (m, want) in [
                (Measure::Tpm, change_value(change, Measure::Tpm)),
                (Measure::Rpm, change_value(change, Measure::Rpm)),
                (Measure::TokenQuota, change_value(change, Measure::TokenQuota)),
            ] {
                let Some(want) = want else { continue };
                let got = g.limits.get(m);
                if got.value() != Some(want) && !matches!(got, Lim::Unlimited { .. }) {
                    let why = match got {
                        Lim::Limited { source, .. } => format!(
                            "{} {} at {}, {} still applies",
                            source.source.attribute, source.source.raw_value, source.source.branch, source.source.scope
                        ),
                        other => other.short(),
                    };
                    notes.push(format!("on {}: the effective {m} stays {} ({why})", g.apis.join(", "), got.short()));
                }
            }
        }
    }
    for (m, apis) in &edits.unlimited_on {
        notes.push(format!("{m} stays unlimited on {} (no limit there to change)", apis.join(", ")));
    }

    let phrases: Vec<String> = edits.changes.iter().map(|(s, c)| phrase(s, c)).collect();
    // No final period: the host appends its own sentence ("… . Undo with rollback_change.").
    let mut summary = format!("{}: {}", sub.id, phrases.join("; "));
    for n in &notes {
        summary.push_str(&format!(". Note: {n}"));
    }
    let details = json!({
        "subscription_id": sub.id,
        "changes": edits.changes.iter().map(|(scope, c)| json!({
            "field": c.field.name(),
            "old": c.old,
            "new": c.new,
            "effective_after": c.effective_after,
            "policy": policy_path(scope),
            "action": action_label(&c.action),
            "source": c.old_source.as_ref().map(|s| json!({"branch": s.branch, "element": s.element, "attribute": s.attribute, "value": s.raw_value, "named_value": s.named_value})),
            "shared_with": c.shared_with.iter().take(20).collect::<Vec<_>>(),
            "shared_with_count": c.shared_with.len(),
            "notes": c.notes,
        })).collect::<Vec<_>>(),
        "named_values": edits.named_values.iter().map(|(n, (old, new))| json!({"name": n, "old": old, "new": new})).collect::<Vec<_>>(),
        "notes": notes,
    });
    builder.build(summary, Some(details))
}

fn change_value(c: &LimitChange, m: Measure) -> Option<u64> {
    match m {
        Measure::Tpm => c.tpm,
        Measure::Rpm => c.rpm,
        Measure::TokenQuota => c.token_quota,
    }
}

/// Whether a plan has any write (an unchanged request has none).
pub fn nothing_to_do(edits: &Edits) -> bool {
    edits.xml.is_empty() && edits.named_values.is_empty()
}

/// The error for a request that changes nothing.
pub fn unchanged_error(sub: &str, edits: &Edits) -> Error {
    let what: Vec<String> =
        edits.changes.iter().map(|(_, c)| format!("{} is already {}", c.field, pretty(&c.new))).collect();
    let field = edits.changes.first().map_or(LimitField::Tpm, |(_, c)| c.field).name();
    Error::invalid(field, format!("nothing to change: for '{sub}', {}", what.join(", ")))
}
