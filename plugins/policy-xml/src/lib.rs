//! # aigw-policy-xml
//!
//! Reads and edits Azure API Management policy XML for the AI Gateway MCP server: where a
//! subscription's TPM, RPM and token quota come from, and how to change exactly one
//! subscription's limits.
//!
//! In APIM a quota is not a field of a subscription. It is an attribute in policy XML
//! (`llm-token-limit tokens-per-minute="..."`, `rate-limit-by-key calls="..."`), usually inside
//! `<choose>` branches keyed on the subscription or its product, sometimes through a
//! `{{named value}}`. This crate is pure Rust (no I/O) and builds for `wasm32-wasip2`, so the
//! plugin that calls ARM can use it inside the sandbox.
//!
//! ## Modules
//!
//! * [`parse`]: [`PolicyDocument::parse`] builds a span tree over the original text (elements,
//!   tags, attribute names and values with their quote character; comments, text and CDATA
//!   as ranges). APIM "rawxml" expressions with raw `"`, `<` or `&&` are accepted.
//! * [`condition`]: recognises `<when>` conditions on `context.Subscription.Id` /
//!   `context.Product.Id` / `context.Product.Name` (and `||` of them), and classifies
//!   `counter-key`s. Anything else is opaque and reported verbatim.
//! * [`analysis`]: every `<choose>` and every limit element with its branch chain.
//! * [`effective`]: [`effective_limits`] of one subscription, each number with its
//!   [`LimitSource`]; [`subscriptions_sharing`] and [`named_value_usage`].
//! * [`edit`]: byte-preserving primitives ([`set_attribute`], [`add_attribute`],
//!   [`insert_subscription_branch`], [`wrap_in_subscription_choose`], ...).
//! * [`update`]: [`set_limit_for_subscription`], the operation `update_quota` plans with.
//!
//! ## Invariants
//!
//! * **Never re-serialise.** The original text is the source of truth. Parsing records byte
//!   ranges. An edit replaces one range of that text and returns the new full text. Nothing
//!   is reformatted: comments, C# expressions, entity escapes (`&quot;`), attribute order and
//!   quoting, whitespace and line ends are kept.
//! * **Only the intended bytes change.** Every byte outside the edited range is identical.
//!   Edited ranges are: an attribute value, an insertion point (a new branch, attribute or
//!   element), or the single element being wrapped in a `<choose>`. A wrap only adds layout
//!   whitespace inside that element, never inside values, comments or text.
//! * **Inserted markup looks like its neighbours.** It uses the document's newline (`\r\n` or
//!   `\n`), indentation (tabs or N spaces, matching the siblings), empty-element style, and
//!   condition quoting.
//! * **Nobody else changes.** [`set_limit_for_subscription`] re-analyses its result. It refuses
//!   ([`EditError::Internal`]) any edit that would change another subscription's effective
//!   limits.
//! * **Never guess.** An unrecognised condition that could decide which limit applies makes
//!   the value [`EffectiveLimit::Unknown`] (and the edit [`EditError::Undeterminable`]). It
//!   is never treated as true or false.
//!
//! ## Example
//!
//! ```
//! use aigw_policy_xml::*;
//!
//! let policy = r#"<policies>
//!     <inbound>
//!         <base />
//!         <choose>
//!             <when condition="@(context.Product?.Id == &quot;aoai&quot;)">
//!                 <llm-token-limit counter-key="@(context.Subscription.Id)" tokens-per-minute="100000" estimate-prompt-tokens="false" />
//!             </when>
//!         </choose>
//!     </inbound>
//! </policies>"#;
//! let subs = [SubscriptionFacts::in_product("search", "aoai"), SubscriptionFacts::in_product("support", "aoai")];
//! let no_named_values = |_: &str| None;
//!
//! let doc = PolicyDocument::parse(policy)?;
//! let limits = effective_limits(&doc, ScopeLabel::Api("openai".into()), &subs[0], &no_named_values);
//! assert_eq!(limits.tpm.value(), Some(100000));
//! assert_eq!(limits.tpm.source().unwrap().branch, r#"choose[1]/when[1] condition="@(context.Product?.Id == "aoai")""#);
//!
//! // Cut search to 50k: the product branch is shared with support, so an override is inserted.
//! let ctx = EditContext {
//!     scope: ScopeLabel::Api("openai".into()),
//!     subscriptions: &subs,
//!     named_values: &no_named_values,
//!     named_value_users_elsewhere: &not_used_elsewhere,
//! };
//! let change = LimitChange { tpm: Some(50_000), ..Default::default() };
//! let outcome = set_limit_for_subscription(policy, &subs[0], &change, &ctx)?;
//! let new_policy = outcome.text().unwrap();
//! assert!(new_policy.contains(r#"<when condition="@(context.Subscription.Id == &quot;search&quot;)">"#));
//! assert_eq!(outcome.changes()[0].shared_with, ["support"]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![warn(missing_docs)]

pub mod analysis;
pub mod condition;
pub mod edit;
pub mod effective;
mod mask;
pub mod parse;
pub mod span;
pub mod text;
pub mod update;

pub use analysis::{
    Analysis, Branch, BranchIndex, BranchKind, BranchStep, Choose, LimitElement, LimitKind, Section, ValueRef,
};
pub use condition::{Condition, CounterKey, Truth};
pub use edit::{
    ConditionQuoting, EditError, NewLimit, Style, add_attribute, append_child, insert_branch_copy,
    insert_subscription_branch, insert_subscription_choose, set_attribute, validate_subscription_id,
    wrap_in_subscription_choose,
};
pub use effective::{
    EffectiveLimit, EffectiveLimits, LimitSource, Measure, NamedValueUsage, OtherLimit, QuotaPeriod, ScopeLabel,
    Sharing, SubscriptionFacts, SubscriptionScopeKind, effective_limits, named_value_usage, subscriptions_sharing,
};
pub use parse::{Attr, Element, Node, PolicyDocument, XmlError};
pub use span::Span;
pub use update::{
    Action, EditContext, EditOutcome, FieldChange, LimitChange, LimitField, MAX_PER_MINUTE, MAX_TOKEN_QUOTA,
    NamedValueUpdate, not_used_elsewhere, set_limit_for_subscription,
};
