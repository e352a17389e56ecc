//! The high-level operation: set one subscription's TPM, RPM and/or token quota, changing nothing
//! for any other subscription.
//!
//! For each requested number, in the order TPM, token quota (with its period), RPM:
//!
//! 1. **Own branch** (the limit is inside a `<when>` that selects exactly this subscription):
//!    edit the attribute in place, or add it / add the element to that branch when missing.
//! 2. **Shared** (a product branch, an `||` of several subscriptions, an `<otherwise>`, or an
//!    unconditional element): first give the subscription its own copy, then edit the copy.
//!    Inside a `<choose>`, a `<when>` for the subscription whose content is a byte-for-byte copy
//!    of the shared branch is inserted right ahead of it (first match wins, so nothing changes for
//!    anyone yet; the subscription keeps every other policy of that branch). An unconditional
//!    element is wrapped as `<choose><when (subscription)>copy</when><otherwise>original</otherwise></choose>`.
//!    The subscriptions that share the old value are reported.
//! 3. **Named value** (`tokens-per-minute="{{tpm-team}}"` in the subscription's own branch, used
//!    nowhere else in the document): the result is a named-value update and the XML is not
//!    touched. If the named value is used by other branches or subscriptions it is shared: an
//!    override is added as in 2, and the outcome says so.
//! 4. **No limit applies**: when an `llm-token-limit` already applies (TPM without a quota, or a
//!    quota without TPM), the missing attributes are added to it (after giving the subscription
//!    its own copy, as in 2, if it is shared), so there is never a second element on the same
//!    counter. Otherwise the element is added to the subscription's own branch if it has one;
//!    else a branch for the subscription is added to the `<choose>` that holds the document's
//!    limits (copying the branch the subscription currently takes there, if any); else a new
//!    `<choose>` is added to `<inbound>` after `<base />`.
//!
//! RPM is always written as `rate-limit-by-key calls="N" renewal-period="60"` keyed on the
//! subscription. After editing, every other subscription's effective limits are recomputed and
//! compared with before; any difference is reported as [`EditError::Internal`] instead of
//! returning the edit.
//!
//! # Bounds
//!
//! APIM documents no maximum for these attributes, so the bounds are chosen to reject typos and
//! values the gateway cannot hold, not to second-guess capacity planning:
//!
//! * `tpm` and `rpm`: 1 to 2,147,483,647 ([`MAX_PER_MINUTE`]). Policy attributes are read by the
//!   .NET gateway as 32-bit integers (inferred: the documented values and examples are all `int`);
//!   a larger number would fail APIM validation at PUT.
//! * `token_quota`: 1 to 9,007,199,254,740,991 ([`MAX_TOKEN_QUOTA`], 2^53 - 1). A monthly or
//!   yearly quota can legitimately exceed 2^31 tokens; 2^53 - 1 is the largest integer every JSON
//!   client (including JavaScript agents) round-trips exactly.
//! * `token_quota` needs a period (`Hourly`, `Daily`, `Weekly`, `Monthly` or `Yearly`): the one
//!   given, else the one already on the element being edited.
//! * Zero is rejected everywhere: removing a limit is not an edit this crate plans.

use std::fmt;

use crate::analysis::{Analysis, BranchIndex, BranchKind, LimitElement, LimitKind, ValueRef};
use crate::condition::Truth;
use crate::edit::{
    EditError, NewLimit, Style, add_attribute, append_child, child_indent, insert_branch_copy,
    insert_subscription_branch, insert_subscription_choose, render_limit, set_attribute, validate_subscription_id,
    wrap_in_subscription_choose,
};
use crate::effective::{EffectiveLimit, LimitSource, Measure, QuotaPeriod, ScopeLabel, SubscriptionFacts};
use crate::parse::PolicyDocument;

/// Largest accepted `tpm` and `rpm` (2^31 - 1); see the module documentation.
pub const MAX_PER_MINUTE: u64 = 2_147_483_647;
/// Largest accepted `token_quota` (2^53 - 1); see the module documentation.
pub const MAX_TOKEN_QUOTA: u64 = 9_007_199_254_740_991;

/// The requested new limits for one subscription; `None` leaves a number as it is.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LimitChange {
    /// Tokens per minute.
    pub tpm: Option<u64>,
    /// Requests per minute (a 60-second `rate-limit-by-key` window).
    pub rpm: Option<u64>,
    /// Tokens per `token_quota_period`.
    pub token_quota: Option<u64>,
    /// The token quota's period.
    pub token_quota_period: Option<QuotaPeriod>,
}

impl LimitChange {
    /// Checks the values against the bounds in the module documentation. Errors name the field.
    pub fn validate(&self) -> Result<(), EditError> {
        let check = |field: &str, v: Option<u64>, max: u64| match v {
            Some(0) => Err(invalid(field, "must be a positive whole number, not 0".to_string())),
            Some(n) if n > max => Err(invalid(field, format!("{n} is above the maximum of {max}"))),
            _ => Ok(()),
        };
        check("tpm", self.tpm, MAX_PER_MINUTE)?;
        check("rpm", self.rpm, MAX_PER_MINUTE)?;
        check("token_quota", self.token_quota, MAX_TOKEN_QUOTA)?;
        if self.tpm.is_none() && self.rpm.is_none() && self.token_quota.is_none() && self.token_quota_period.is_none() {
            return Err(invalid(
                "tpm",
                "nothing to change: give tpm, rpm, token_quota or token_quota_period".to_string(),
            ));
        }
        Ok(())
    }
}

fn invalid(field: &str, message: String) -> EditError {
    EditError::InvalidValue { field: field.to_string(), message }
}

/// Everything the editor needs besides the text and the subscription.
pub struct EditContext<'a> {
    /// The scope of the document (for labels).
    pub scope: ScopeLabel,
    /// All subscriptions of the service: used to report who shares a limit and to check that no
    /// other subscription's limits change.
    pub subscriptions: &'a [SubscriptionFacts],
    /// Resolves `{{named values}}`.
    pub named_values: &'a dyn Fn(&str) -> Option<String>,
    /// Who uses `{{name}}` outside this document (subscriptions whose limits in another policy
    /// reference it, or labels such as "product 'gold' policy"). A named value is only updated
    /// when nobody else uses it; a non-empty answer makes it shared, so the subscription gets its
    /// own number in this document instead. Use [`not_used_elsewhere`] when this document is the
    /// only one that can reference named values.
    pub named_value_users_elsewhere: &'a dyn Fn(&str) -> Vec<String>,
}

/// For [`EditContext::named_value_users_elsewhere`]: no other document uses any named value.
pub fn not_used_elsewhere(_name: &str) -> Vec<String> {
    Vec::new()
}

/// Which number a [`FieldChange`] is about.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum LimitField {
    /// `tpm`.
    Tpm,
    /// `rpm`.
    Rpm,
    /// `token_quota`.
    TokenQuota,
    /// `token_quota_period`.
    TokenQuotaPeriod,
}

impl LimitField {
    /// The input field name.
    pub fn name(self) -> &'static str {
        match self {
            LimitField::Tpm => "tpm",
            LimitField::Rpm => "rpm",
            LimitField::TokenQuota => "token_quota",
            LimitField::TokenQuotaPeriod => "token_quota_period",
        }
    }
}

impl fmt::Display for LimitField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LimitField::Tpm => "TPM",
            LimitField::Rpm => "RPM",
            LimitField::TokenQuota => "token quota",
            LimitField::TokenQuotaPeriod => "token quota period",
        })
    }
}

/// How a number was changed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Already at the requested value.
    Unchanged,
    /// The attribute in the subscription's own branch was replaced (or added).
    EditedInPlace,
    /// A copy of the shared branch was inserted ahead of it for the subscription and edited.
    OverrideInserted {
        /// Label of the shared branch.
        shared_branch: String,
    },
    /// The unconditional element was wrapped in a `<choose>` with a branch for the subscription.
    WrappedInChoose,
    /// A new element was added to the subscription's own branch.
    AddedToOwnBranch,
    /// A branch for the subscription was added to an existing `<choose>`.
    BranchAdded {
        /// Label of the choose.
        choose: String,
    },
    /// A new `<choose>` with a branch for the subscription was added to `<inbound>`.
    ChooseCreated,
    /// The named value is to be updated; the XML is unchanged.
    NamedValue {
        /// The named value's name.
        name: String,
    },
}

/// The plan for one number.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldChange {
    /// Which number.
    pub field: LimitField,
    /// The value before ("100000", "unlimited", "Monthly").
    pub old: String,
    /// The requested value.
    pub new: String,
    /// Where the old value came from.
    pub old_source: Option<LimitSource>,
    /// What was done.
    pub action: Action,
    /// Other subscriptions the old value applies to (they keep it).
    pub shared_with: Vec<String>,
    /// The subscription's effective value after the change, re-analysed from the result.
    pub effective_after: String,
    /// Anything else the operator should know.
    pub notes: Vec<String>,
    /// One line: old → new and how.
    pub summary: String,
}

/// A named-value update to make instead of (or besides) an XML edit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NamedValueUpdate {
    /// The named value's display name.
    pub name: String,
    /// Its current value.
    pub old: String,
    /// The value to set.
    pub new: String,
    /// Other subscriptions that use it (always empty: a named value used by anyone else, in this
    /// document or, per [`EditContext::named_value_users_elsewhere`], in another one, is
    /// overridden in XML instead).
    pub shared_with: Vec<String>,
}

/// The result of [`set_limit_for_subscription`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EditOutcome {
    /// Only the policy text changes.
    Xml {
        /// The new policy text.
        text: String,
        /// One entry per requested number.
        changes: Vec<FieldChange>,
    },
    /// Only a named value changes; the policy text is untouched.
    NamedValue {
        /// The named value's display name.
        name: String,
        /// Its current value.
        old: String,
        /// The value to set.
        new: String,
        /// See [`NamedValueUpdate::shared_with`].
        shared_with: Vec<String>,
        /// One entry per requested number.
        changes: Vec<FieldChange>,
    },
    /// Several kinds of change (e.g. TPM through a named value, RPM in the XML).
    Mixed {
        /// The new policy text, if it changes.
        text: Option<String>,
        /// Named values to update.
        named_values: Vec<NamedValueUpdate>,
        /// One entry per requested number.
        changes: Vec<FieldChange>,
    },
    /// Every number is already at the requested value.
    Unchanged {
        /// One entry per requested number.
        changes: Vec<FieldChange>,
    },
}

impl EditOutcome {
    /// The new policy text, if it changes.
    pub fn text(&self) -> Option<&str> {
        match self {
            EditOutcome::Xml { text, .. } => Some(text),
            EditOutcome::Mixed { text, .. } => text.as_deref(),
            _ => None,
        }
    }

    /// The named values to update.
    pub fn named_value_updates(&self) -> Vec<NamedValueUpdate> {
        match self {
            EditOutcome::NamedValue { name, old, new, shared_with, .. } => vec![NamedValueUpdate {
                name: name.clone(),
                old: old.clone(),
                new: new.clone(),
                shared_with: shared_with.clone(),
            }],
            EditOutcome::Mixed { named_values, .. } => named_values.clone(),
            _ => Vec::new(),
        }
    }

    /// One entry per requested number.
    pub fn changes(&self) -> &[FieldChange] {
        match self {
            EditOutcome::Xml { changes, .. }
            | EditOutcome::NamedValue { changes, .. }
            | EditOutcome::Mixed { changes, .. }
            | EditOutcome::Unchanged { changes } => changes,
        }
    }
}

#[derive(Copy, Clone, Debug)]
enum Op {
    Tpm(u64),
    Rpm(u64),
    Quota(Option<u64>, Option<QuotaPeriod>),
}

impl Op {
    fn measure(self) -> Measure {
        match self {
            Op::Tpm(_) => Measure::Tpm,
            Op::Rpm(_) => Measure::Rpm,
            Op::Quota(..) => Measure::TokenQuota,
        }
    }

    fn field(self) -> LimitField {
        match self {
            Op::Tpm(_) => LimitField::Tpm,
            Op::Rpm(_) => LimitField::Rpm,
            Op::Quota(Some(_), _) => LimitField::TokenQuota,
            Op::Quota(None, _) => LimitField::TokenQuotaPeriod,
        }
    }

    fn new_text(self) -> String {
        match self {
            Op::Tpm(v) | Op::Rpm(v) => v.to_string(),
            Op::Quota(Some(q), Some(p)) => format!("{q} {p}"),
            Op::Quota(Some(q), None) => q.to_string(),
            Op::Quota(None, Some(p)) => p.to_string(),
            Op::Quota(None, None) => String::new(),
        }
    }

    /// The number the named value / attribute should get.
    fn number(self) -> Option<u64> {
        match self {
            Op::Tpm(v) | Op::Rpm(v) => Some(v),
            Op::Quota(q, _) => q,
        }
    }
}

/// What one step did.
struct Step {
    action: Action,
    named_value: Option<NamedValueUpdate>,
    notes: Vec<String>,
}

/// Sets `sub`'s limits in the policy `text` (see the module documentation).
pub fn set_limit_for_subscription(
    text: &str,
    sub: &SubscriptionFacts,
    change: &LimitChange,
    ctx: &EditContext<'_>,
) -> Result<EditOutcome, EditError> {
    change.validate()?;
    validate_subscription_id(&sub.id)?;
    let original = PolicyDocument::parse(text)?;
    let before = Analysis::of(&original);
    let target_before = before.effective_limits(&ctx.scope, sub, ctx.named_values);
    let others: Vec<&SubscriptionFacts> = ctx.subscriptions.iter().filter(|s| s.id != sub.id).collect();
    let snapshot = |a: &Analysis<'_>, nv: &dyn Fn(&str) -> Option<String>| -> Vec<String> {
        others
            .iter()
            .map(|s| {
                let e = a.effective_limits(&ctx.scope, s, nv);
                format!(
                    "{}: {}/{}/{} {}",
                    s.id,
                    e.tpm.short(),
                    e.rpm.short(),
                    e.token_quota.short(),
                    e.token_quota_period.unwrap_or_default()
                )
            })
            .collect()
    };
    let others_before = snapshot(&before, ctx.named_values);

    let mut ops = Vec::new();
    if let Some(t) = change.tpm {
        ops.push(Op::Tpm(t));
    }
    if change.token_quota.is_some() || change.token_quota_period.is_some() {
        ops.push(Op::Quota(change.token_quota, change.token_quota_period));
    }
    if let Some(r) = change.rpm {
        ops.push(Op::Rpm(r));
    }

    let mut current = text.to_string();
    let mut changes = Vec::new();
    let mut named_values: Vec<NamedValueUpdate> = Vec::new();
    for op in ops {
        let old_limit = target_before.get(op.measure()).clone();
        let old = match (op, &old_limit) {
            (Op::Quota(None, _), EffectiveLimit::Limited { .. }) => {
                target_before.token_quota_period.clone().unwrap_or_else(|| "none".to_string())
            }
            (_, l) => l.short(),
        };
        let old_source = old_limit.source().cloned();
        let shared_with = match &old_source {
            Some(src) => {
                let s = before.sharing(src.element_span, ctx.subscriptions, ctx.named_values);
                s.subscriptions.into_iter().filter(|id| *id != sub.id).collect()
            }
            None => Vec::new(),
        };
        let step = apply(&mut current, sub, op, ctx, 0)?;
        if let Some(nv) = step.named_value.clone() {
            named_values.push(nv);
        }
        changes.push(FieldChange {
            field: op.field(),
            old,
            new: op.new_text(),
            old_source,
            action: step.action,
            shared_with,
            effective_after: String::new(),
            notes: step.notes,
            summary: String::new(),
        });
    }

    // Re-analyse the result: the target gets the new values, nobody else changes.
    let updated_nv = |name: &str| {
        named_values.iter().find(|u| u.name == name).map(|u| u.new.clone()).or_else(|| (ctx.named_values)(name))
    };
    let result = PolicyDocument::parse(&current)
        .map_err(|e| EditError::Internal(format!("edited policy does not parse: {e}")))?;
    let after = Analysis::of(&result);
    let others_after = snapshot(&after, &updated_nv);
    if let Some((b, a)) = others_before.iter().zip(&others_after).find(|(b, a)| b != a) {
        return Err(EditError::Internal(format!(
            "the edit would change another subscription's limits ({b} became {a})"
        )));
    }
    let target_after = after.effective_limits(&ctx.scope, sub, &updated_nv);
    for c in &mut changes {
        c.effective_after = match c.field {
            LimitField::Tpm => target_after.tpm.short(),
            LimitField::Rpm => target_after.rpm.short(),
            LimitField::TokenQuota => target_after.token_quota.short(),
            LimitField::TokenQuotaPeriod => target_after.token_quota_period.clone().unwrap_or_default(),
        };
        let requested = c.new.split(' ').next().unwrap_or_default();
        if c.effective_after != requested {
            let other = match c.field {
                LimitField::Tpm => &target_after.tpm,
                LimitField::Rpm => &target_after.rpm,
                _ => &target_after.token_quota,
            };
            match other {
                EffectiveLimit::Limited { source, .. } => c.notes.push(format!(
                    "another limit still applies and is lower: {} at {}",
                    source.raw_value, source.branch
                )),
                EffectiveLimit::Unknown { reason, .. } => c.notes.push(format!(
                    "after the change the effective value depends on a condition that cannot be evaluated: {reason}"
                )),
                EffectiveLimit::Unlimited { .. } => {}
            }
        }
        c.summary = summarise(c, &sub.id);
    }

    let text_changed = current != text;
    Ok(match (text_changed, named_values.len()) {
        (false, 0) => EditOutcome::Unchanged { changes },
        (true, 0) => EditOutcome::Xml { text: current, changes },
        (false, 1) => {
            let u = named_values.remove(0);
            EditOutcome::NamedValue { name: u.name, old: u.old, new: u.new, shared_with: u.shared_with, changes }
        }
        _ => EditOutcome::Mixed { text: text_changed.then_some(current), named_values, changes },
    })
}

fn summarise(c: &FieldChange, id: &str) -> String {
    let how = match &c.action {
        Action::Unchanged => "already set; nothing to do".to_string(),
        Action::EditedInPlace => format!(
            "edited in place at {}",
            c.old_source.as_ref().map_or("its own branch".to_string(), |s| s.branch.clone())
        ),
        Action::OverrideInserted { shared_branch } => {
            format!("added an override branch for '{id}' ahead of the shared {shared_branch}")
        }
        Action::WrappedInChoose => format!(
            "wrapped the {} element in a <choose> with a branch for '{id}'",
            c.old_source.as_ref().map_or("shared", |s| s.branch.as_str())
        ),
        Action::AddedToOwnBranch => format!("added to the branch of '{id}'"),
        Action::BranchAdded { choose } => format!("added a branch for '{id}' to {choose}"),
        Action::ChooseCreated => format!("added a <choose> with a branch for '{id}' to <inbound>"),
        Action::NamedValue { name } => {
            format!("update named value {{{{{name}}}}} (policy XML unchanged)")
        }
    };
    let mut s = format!("{} for '{id}': {} → {}; {how}", c.field, c.old, c.new);
    if !c.shared_with.is_empty() && !matches!(c.action, Action::EditedInPlace | Action::NamedValue { .. }) {
        s.push_str(&format!("; {} keep {}", short_list(&c.shared_with), c.old));
    }
    s
}

/// At most [`SUMMARY_NAMES`] names, then "and N others", so summaries stay short on large
/// tenants (the full list is in [`FieldChange::shared_with`]).
fn short_list(names: &[String]) -> String {
    if names.len() <= SUMMARY_NAMES {
        return names.join(", ");
    }
    format!("{} and {} others", names[..SUMMARY_NAMES].join(", "), names.len() - SUMMARY_NAMES)
}

/// How many subscription names a summary line lists.
const SUMMARY_NAMES: usize = 5;

/// Applies one operation to `text`. `depth` guards the "make it own, then edit" recursion.
fn apply(
    text: &mut String,
    sub: &SubscriptionFacts,
    op: Op,
    ctx: &EditContext<'_>,
    depth: u8,
) -> Result<Step, EditError> {
    let nv = ctx.named_values;
    let doc = PolicyDocument::parse(text)?;
    let a = Analysis::of(&doc);
    let eff = a.effective_limits(&ctx.scope, sub, nv);
    let field = op.field().name().to_string();
    match eff.get(op.measure()).clone() {
        EffectiveLimit::Unknown { reason, .. } => Err(EditError::Undeterminable { field, reason }),
        EffectiveLimit::Limited { value, source, .. } => {
            let limit = a
                .limit_at(source.element_span)
                .ok_or_else(|| EditError::Internal("source element not found".into()))?;
            let element = limit.element;
            let attr = element
                .attr(&source.attribute)
                .ok_or_else(|| EditError::Internal("source attribute not found".into()))?;
            let own = is_own(limit, sub, nv);
            let current_period = element.attr("token-quota-period").and_then(|p| p.value().parse::<QuotaPeriod>().ok());
            let renewal = element.attr("renewal-period").map(|r| r.value().trim().to_string());
            let unchanged = match op {
                Op::Tpm(v) => v == value,
                Op::Rpm(v) => v == value && renewal.as_deref() == Some("60"),
                Op::Quota(q, p) => q.is_none_or(|q| q == value) && p.is_none_or(|p| Some(p) == current_period),
            };
            if unchanged {
                return Ok(Step { action: Action::Unchanged, named_value: None, notes: Vec::new() });
            }
            if let Op::Quota(Some(_), None) = op
                && current_period.is_none()
            {
                return Err(invalid(
                    "token_quota_period",
                    "required: the existing token quota has no valid period".into(),
                ));
            }
            let mut notes = Vec::new();
            let number_changes = op.number().is_some_and(|n| n != value);
            match ValueRef::of(attr) {
                ValueRef::NamedValue(name) if number_changes => {
                    let usage = a.named_value_usage(&name, ctx.subscriptions, nv);
                    let mut users = usage.sharing.others_than(&sub.id);
                    for user in (ctx.named_value_users_elsewhere)(&name) {
                        if user != sub.id && !users.contains(&user) {
                            users.push(user);
                        }
                    }
                    users.dedup();
                    let shared = !own || usage.references.len() > 1 || !users.is_empty();
                    if !shared {
                        let old = nv(&name).unwrap_or_default();
                        let mut step = Step {
                            action: Action::NamedValue { name: name.clone() },
                            named_value: Some(NamedValueUpdate {
                                name,
                                old,
                                new: op.number().unwrap_or_default().to_string(),
                                shared_with: Vec::new(),
                            }),
                            notes,
                        };
                        // A period change is still an attribute edit in the own branch.
                        if let Op::Quota(_, Some(p)) = op
                            && Some(p) != current_period
                        {
                            *text = set_or_add(text, element.span.start, "token-quota-period", p.as_str())?;
                            step.notes.push(format!("token-quota-period set to {p} in the policy"));
                        }
                        return Ok(step);
                    }
                    let who = if users.is_empty() { "other policy elements".to_string() } else { users.join(", ") };
                    notes.push(format!(
                        "named value {{{{{name}}}}} is shared with {who}; added an override for '{}' instead of changing it",
                        sub.id
                    ));
                    if own {
                        // Own branch, but the named value is shared: write the number into the
                        // subscription's own element instead of changing the named value.
                        notes.pop();
                        notes.push(format!(
                            "named value {{{{{name}}}}} is shared with {who}; replaced the reference with the number in the branch of '{}' instead of changing the named value",
                            sub.id
                        ));
                        edit_in_place(text, element.span.start, op, true, &mut notes)?;
                        return Ok(Step { action: Action::EditedInPlace, named_value: None, notes });
                    }
                }
                _ if own => {
                    edit_in_place(text, element.span.start, op, number_changes, &mut notes)?;
                    return Ok(Step { action: Action::EditedInPlace, named_value: None, notes });
                }
                _ => {}
            }
            // Shared: give the subscription its own copy first (changes nothing for anyone),
            // then edit the copy.
            if depth > 0 {
                return Err(EditError::Internal("the override did not give the subscription its own branch".into()));
            }
            let action = make_own(text, &a, limit, sub)?;
            if let Some(key) = &source.counter_key
                && !key.is_per_subscription()
            {
                notes.push(format!(
                    "the copied element keeps its counter-key `{}` ({key}): the new limit is checked against that shared counter",
                    key.raw()
                ));
            }
            let inner = apply(text, sub, op, ctx, depth + 1)?;
            notes.extend(inner.notes);
            Ok(Step { action, named_value: None, notes })
        }
        EffectiveLimit::Unlimited { .. } => add_limit(text, &doc, &a, sub, op, ctx, depth),
    }
}

/// Gives `sub` its own copy of the shared `limit`, changing nothing for anyone: inside a
/// `<choose>`, a `<when>` for the subscription holding a byte-for-byte copy of the limit's branch
/// is inserted ahead of that branch; an unconditional limit is wrapped in a `<choose>` whose
/// `<when>` holds a copy and whose `<otherwise>` holds the original.
fn make_own(
    text: &mut String,
    a: &Analysis<'_>,
    limit: &LimitElement<'_>,
    sub: &SubscriptionFacts,
) -> Result<Action, EditError> {
    Ok(match limit.path.last() {
        None => {
            *text = wrap_in_subscription_choose(text, limit.element, &sub.id, None)?;
            Action::WrappedInChoose
        }
        Some(step) => {
            let choose = a.choose(step.choose).ok_or_else(|| EditError::Internal("choose not found".into()))?;
            *text = insert_branch_copy(text, choose, step.branch, &sub.id, step.branch)?;
            Action::OverrideInserted { shared_branch: step.to_string() }
        }
    })
}

/// Whether `limit` sits in a branch that selects exactly `sub`.
fn is_own(limit: &LimitElement<'_>, sub: &SubscriptionFacts, nv: &dyn Fn(&str) -> Option<String>) -> bool {
    limit.path.iter().any(|s| matches!(s.recognise(nv), Some(Ok(c)) if c.is_only_subscription(&sub.id)))
}

/// Sets attribute `name` of the element starting at `start` (adding it when missing).
fn set_or_add(text: &str, start: usize, name: &str, value: &str) -> Result<String, EditError> {
    let doc = PolicyDocument::parse(text)?;
    let e = doc
        .elements()
        .into_iter()
        .find(|e| e.span.start == start)
        .ok_or_else(|| EditError::Internal(format!("no element at {start}")))?;
    match e.attr(name) {
        Some(a) => set_attribute(text, a, value),
        None => add_attribute(text, e, name, value),
    }
}

/// Edits the limit element starting at `start` in place. The number attribute is only written
/// when `number_changes` (so an unchanged `{{named value}}` reference is kept when only the
/// period or the window changes).
fn edit_in_place(
    text: &mut String,
    start: usize,
    op: Op,
    number_changes: bool,
    notes: &mut Vec<String>,
) -> Result<(), EditError> {
    match op {
        Op::Tpm(v) => *text = set_or_add(text, start, "tokens-per-minute", &v.to_string())?,
        Op::Rpm(v) => {
            let doc = PolicyDocument::parse(text)?;
            let renewal = doc
                .elements()
                .into_iter()
                .find(|e| e.span.start == start)
                .and_then(|e| e.attr("renewal-period").map(|r| r.value().trim().to_string()));
            if number_changes {
                *text = set_or_add(text, start, "calls", &v.to_string())?;
            }
            if renewal.as_deref() != Some("60") {
                *text = set_or_add(text, start, "renewal-period", "60")?;
                notes.push(format!(
                    "renewal-period changed from {} s to 60 s so the limit is per minute",
                    renewal.unwrap_or_else(|| "(none)".into())
                ));
            }
        }
        Op::Quota(q, p) => {
            if let Some(q) = q.filter(|_| number_changes) {
                *text = set_or_add(text, start, "token-quota", &q.to_string())?;
            }
            if let Some(p) = p {
                *text = set_or_add(text, start, "token-quota-period", p.as_str())?;
            }
        }
    }
    Ok(())
}

/// No limit of this measure applies to the subscription: add one (see the module documentation).
fn add_limit(
    text: &mut String,
    doc: &PolicyDocument,
    a: &Analysis<'_>,
    sub: &SubscriptionFacts,
    op: Op,
    ctx: &EditContext<'_>,
    depth: u8,
) -> Result<Step, EditError> {
    let nv = ctx.named_values;
    let facts = sub.condition_facts();
    let template = a
        .limits
        .iter()
        .find(|l| l.in_effect() && l.kind.is_token_limit() && l.counter_key().is_some_and(|k| k.is_per_subscription()))
        .map(|l| l.element);
    let new_limit = match op {
        Op::Tpm(v) => {
            NewLimit::Tokens { template, keep_template_limits: false, tokens_per_minute: Some(v), token_quota: None }
        }
        Op::Rpm(v) => NewLimit::Requests { calls_per_minute: v },
        Op::Quota(Some(q), Some(p)) => NewLimit::Tokens {
            template,
            keep_template_limits: false,
            tokens_per_minute: None,
            token_quota: Some((q, p)),
        },
        Op::Quota(None, _) => {
            return Err(invalid(
                "token_quota_period",
                format!("no token quota applies to '{}'; give token_quota together with the period", sub.id),
            ));
        }
        Op::Quota(Some(_), None) => {
            return Err(invalid(
                "token_quota_period",
                "required when adding a token quota (Hourly, Daily, Weekly, Monthly or Yearly)".into(),
            ));
        }
    };
    let mut notes = Vec::new();

    // 0. A token limit already applies (TPM without quota, or the reverse): add the missing
    //    attributes to that element rather than a second element on the same counter.
    if let NewLimit::Tokens { tokens_per_minute, token_quota, .. } = &new_limit {
        let applying: Vec<_> = a
            .limits
            .iter()
            .filter(|l| l.in_effect() && l.kind.is_token_limit() && a.path_truth(&l.path, &facts, nv) == Truth::True)
            .collect();
        let host =
            applying.iter().find(|l| l.counter_key().is_some_and(|k| k.is_per_subscription())).or(applying.first());
        if let Some(host) = host {
            let label = if host.path.is_empty() {
                ctx.scope.wide_label().to_string()
            } else {
                crate::analysis::path_label(&host.path)
            };
            if is_own(host, sub, nv) {
                let start = host.element.span.start;
                if let Some(t) = tokens_per_minute {
                    *text = set_or_add(text, start, "tokens-per-minute", &t.to_string())?;
                }
                if let Some((q, p)) = token_quota {
                    *text = set_or_add(text, start, "token-quota", &q.to_string())?;
                    *text = set_or_add(text, start, "token-quota-period", p.as_str())?;
                }
                notes.push(format!("added to the <{}> that already applies at {label}", host.element.name));
                return Ok(Step { action: Action::EditedInPlace, named_value: None, notes });
            }
            if depth > 0 {
                return Err(EditError::Internal("the copy did not give the subscription its own token limit".into()));
            }
            let action = make_own(text, a, host, sub)?;
            let inner = apply(text, sub, op, ctx, depth + 1)?;
            notes.extend(inner.notes);
            return Ok(Step { action, named_value: None, notes });
        }
    }

    // 1. The subscription's own branch.
    for choose in a.chooses.iter().filter(|c| c.in_effect()) {
        for b in &choose.branches {
            let BranchKind::When { .. } = b.kind else {
                continue;
            };
            let Some(path) = choose.path_into(b.index) else {
                continue;
            };
            let own =
                matches!(path.last().and_then(|s| s.recognise(nv)), Some(Ok(c)) if c.is_only_subscription(&sub.id));
            if own && a.path_truth(&path, &facts, nv) == Truth::True {
                let style = Style::detect(doc);
                let indent = child_indent(text, b.element, &style);
                let markup = render_limit(text, &style, &new_limit, indent.as_deref())?;
                *text = append_child(text, b.element, &markup)?;
                return Ok(Step { action: Action::AddedToOwnBranch, named_value: None, notes });
            }
        }
    }

    // 2. The choose that holds the document's limits, if the subscription reaches it.
    let same_kind = |k: LimitKind| match op {
        Op::Rpm(_) => k == LimitKind::RateLimitByKey,
        _ => k.is_token_limit(),
    };
    let holds = |ordinal: usize, pred: &dyn Fn(LimitKind) -> bool| {
        a.limits.iter().any(|l| l.in_effect() && pred(l.kind) && l.path.iter().any(|s| s.choose == ordinal))
    };
    let reachable =
        |c: &&crate::analysis::Choose<'_>| c.in_effect() && a.path_truth(&c.path, &facts, nv) == Truth::True;
    let choose = a
        .chooses
        .iter()
        .filter(reachable)
        .find(|c| holds(c.ordinal, &same_kind))
        .or_else(|| a.chooses.iter().filter(reachable).find(|c| holds(c.ordinal, &|_| true)));
    if let Some(choose) = choose {
        let mut taken = None;
        for b in &choose.branches {
            let path = choose.path_into(b.index).unwrap_or_default();
            match a.step_truth(path.last().expect("non-empty"), &facts, nv) {
                Truth::True => {
                    taken = Some(b.index);
                    break;
                }
                Truth::False => {}
                Truth::Unknown(reason) => {
                    return Err(EditError::Undeterminable {
                        field: op.field().name().to_string(),
                        reason: format!("cannot tell which branch of choose[{}] applies: {reason}", choose.ordinal),
                    });
                }
            }
        }
        let label = format!("choose[{}]", choose.ordinal);
        return match taken {
            Some(b) => {
                if depth > 0 {
                    return Err(EditError::Internal("the copied branch is not the subscription's own".into()));
                }
                *text = insert_branch_copy(text, choose, b, &sub.id, b)?;
                let inner = apply(text, sub, op, ctx, depth + 1)?;
                notes.extend(inner.notes);
                Ok(Step { action: Action::BranchAdded { choose: label }, named_value: None, notes })
            }
            None => {
                *text = insert_subscription_branch(
                    text,
                    choose,
                    BranchIndex(choose.branches.len()),
                    &sub.id,
                    &[new_limit],
                )?;
                Ok(Step { action: Action::BranchAdded { choose: label }, named_value: None, notes })
            }
        };
    }

    // 3. A new choose in <inbound>.
    let inbound = a.inbound.ok_or_else(|| EditError::NotPossible {
        reason: "the policy has no <inbound> section to add a limit to".into(),
    })?;
    *text = insert_subscription_choose(text, inbound, &sub.id, &[new_limit])?;
    Ok(Step { action: Action::ChooseCreated, named_value: None, notes })
}
