//! Shared helpers for the integration tests.
#![allow(dead_code)]

use aigw_policy_xml::{EffectiveLimits, PolicyDocument, ScopeLabel, SubscriptionFacts, effective_limits};

/// The sandbox tenant's API-scope policy.
pub const SANDBOX: &str = include_str!("../fixtures/sandbox_api_policy.xml");

/// The token-rate-limiting lab: one API-wide limit, attributes on separate lines.
pub const LAB: &str = include_str!("../fixtures/lab_single_limit.xml");
/// The finops lab: per-product tiers with quotas, single-quoted conditions, no `<otherwise>`.
pub const FINOPS: &str = include_str!("../fixtures/finops_products.xml");

/// Per-subscription `<when>`s with `||`, an `<otherwise>`, a header-routing `<choose>`, a
/// multi-line `@{ }` block, comments; tabs and CRLF, as APIM returns normalised XML.
pub fn tabs_crlf() -> String {
    include_str!("../fixtures/per_subscription_tabs.xml").replace("\r\n", "\n").replace('\n', "\r\n")
}

/// Named values used by the finops fixture.
pub fn finops_named_values(name: &str) -> Option<String> {
    match name {
        "silver-tpm" => Some("500".to_string()),
        "silver-quota" => Some("250000".to_string()),
        _ => None,
    }
}

/// No named values.
pub fn no_named_values(_: &str) -> Option<String> {
    None
}

/// The sandbox tenant's named values.
pub fn sandbox_named_values(name: &str) -> Option<String> {
    match name {
        "tpm-data-science" => Some("300000".to_string()),
        _ => None,
    }
}

/// The sandbox tenant's subscriptions.
pub fn sandbox_subscriptions() -> Vec<SubscriptionFacts> {
    vec![
        SubscriptionFacts::in_product("growth", "aoai"),
        SubscriptionFacts::in_product("prod-critical", "aoai"),
        SubscriptionFacts::in_product("data-science", "aoai"),
        SubscriptionFacts::in_product("search", "aoai"),
        SubscriptionFacts::in_product("support", "aoai"),
        SubscriptionFacts::all_apis("lab-all-apis"),
        SubscriptionFacts::master(),
    ]
}

/// The scope label used by the tests.
pub fn api() -> ScopeLabel {
    ScopeLabel::Api("azure-openai".to_string())
}

/// Effective limits of every subscription, as compact strings "tpm/rpm/quota".
pub fn summary(text: &str, subs: &[SubscriptionFacts], nv: &dyn Fn(&str) -> Option<String>) -> Vec<(String, String)> {
    let doc = PolicyDocument::parse(text).expect("parses");
    subs.iter()
        .map(|s| {
            let e: EffectiveLimits = effective_limits(&doc, api(), s, nv);
            (s.id.clone(), format!("{}/{}/{}", e.tpm.short(), e.rpm.short(), e.token_quota.short()))
        })
        .collect()
}

/// The changed window between two texts: (range in `old`, range in `new`), by longest common
/// prefix and suffix.
pub fn changed_window(old: &str, new: &str) -> (aigw_policy_xml::Span, aigw_policy_xml::Span) {
    let (o, n) = (old.as_bytes(), new.as_bytes());
    let prefix = o.iter().zip(n).take_while(|(a, b)| a == b).count();
    let max_suffix = o.len().min(n.len()) - prefix;
    let suffix = o.iter().rev().zip(n.iter().rev()).take(max_suffix).take_while(|(a, b)| a == b).count();
    (aigw_policy_xml::Span::new(prefix, o.len() - suffix), aigw_policy_xml::Span::new(prefix, n.len() - suffix))
}

/// Asserts that every changed byte of `old` lies inside `allowed` (a range of `old`).
pub fn assert_changed_only_within(old: &str, new: &str, allowed: aigw_policy_xml::Span) {
    let (w, _) = changed_window(old, new);
    assert!(
        allowed.start <= w.start && w.end <= allowed.end,
        "changed window {w} of the old text is outside the allowed {allowed}\n--- old\n{old}\n--- new\n{new}"
    );
}

/// Asserts that `new` is `old` with one string inserted (no byte of `old` removed or changed).
pub fn assert_pure_insertion(old: &str, new: &str) -> usize {
    let (w, nw) = changed_window(old, new);
    assert!(w.is_empty(), "expected a pure insertion, but old bytes {w} changed\n--- new\n{new}");
    assert_eq!(&new[..nw.start], &old[..w.start]);
    assert_eq!(&new[nw.end..], &old[w.end..]);
    w.start
}

/// Asserts that `new` is exactly `old` with a string inserted at byte `at` of `old`; returns the
/// inserted string.
pub fn assert_inserted_at<'n>(old: &str, new: &'n str, at: usize) -> &'n str {
    assert!(new.len() >= old.len());
    let len = new.len() - old.len();
    assert_eq!(&new[..at], &old[..at], "bytes before the insertion point changed");
    assert_eq!(&new[at + len..], &old[at..], "bytes after the insertion point changed");
    &new[at..at + len]
}
