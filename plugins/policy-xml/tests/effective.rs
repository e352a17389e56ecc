//! Effective limits and their sources on the shapes real tenants use.

mod common;
use aigw_policy_xml::{
    EffectiveLimit, EffectiveLimits, LimitKind, PolicyDocument, ScopeLabel, SubscriptionFacts, effective_limits,
    named_value_usage, subscriptions_sharing,
};
use common::*;

fn eff(text: &str, sub: &SubscriptionFacts, nv: &dyn Fn(&str) -> Option<String>) -> EffectiveLimits {
    let doc = PolicyDocument::parse(text).unwrap();
    effective_limits(&doc, api(), sub, nv)
}

fn unknown_reason(l: &EffectiveLimit) -> &str {
    match l {
        EffectiveLimit::Unknown { reason, .. } => reason,
        other => panic!("expected unknown, got {other:?}"),
    }
}

#[test]
fn single_api_wide_limit_applies_to_every_key() {
    for sub in [SubscriptionFacts::all_apis("a"), SubscriptionFacts::in_product("b", "p"), SubscriptionFacts::master()]
    {
        let e = eff(LAB, &sub, &no_named_values);
        assert_eq!(e.tpm.value(), Some(1000));
        let src = e.tpm.source().unwrap();
        assert_eq!(src.branch, "API-wide (no condition)");
        assert!(src.path.is_empty());
        assert!(
            matches!(e.rpm, EffectiveLimit::Unlimited { ref reason } if reason == "the policy sets no RPM limit in <inbound> (no rate-limit-by-key)")
        );
    }
    let doc = PolicyDocument::parse(LAB).unwrap();
    let e = effective_limits(
        &doc,
        ScopeLabel::Product("starter".into()),
        &SubscriptionFacts::all_apis("a"),
        &no_named_values,
    );
    assert_eq!(e.tpm.source().unwrap().branch, "product-wide (no condition)");
}

#[test]
fn per_product_tiers_with_quota_and_named_values() {
    let gold = eff(FINOPS, &SubscriptionFacts::in_product("g1", "gold"), &finops_named_values);
    assert_eq!(gold.tpm.value(), Some(1000));
    assert_eq!(gold.token_quota.value(), Some(1_000_000));
    assert_eq!(gold.token_quota_period.as_deref(), Some("Monthly"));
    assert_eq!(
        gold.tpm.source().unwrap().branch,
        r#"choose[1]/when[2] condition="@((string)context.Product?.Id == "gold")""#
    );

    let silver = eff(FINOPS, &SubscriptionFacts::in_product("s1", "silver"), &finops_named_values);
    assert_eq!(silver.tpm.value(), Some(500));
    assert_eq!(silver.tpm.source().unwrap().named_value.as_deref(), Some("silver-tpm"));
    assert_eq!(silver.token_quota.value(), Some(250_000));

    // Without the named values the number is unknown, and says why.
    let silver = eff(FINOPS, &SubscriptionFacts::in_product("s1", "silver"), &no_named_values);
    assert!(unknown_reason(&silver.tpm).contains("{{silver-tpm}} is not defined"));

    // No <otherwise>: keys without a product are unlimited, with the reason.
    let lab = eff(FINOPS, &SubscriptionFacts::all_apis("lab"), &finops_named_values);
    let EffectiveLimit::Unlimited { reason } = &lab.tpm else { panic!() };
    assert!(reason.contains("scoped to all APIs (no product)"), "{reason}");
    let one_api = eff(FINOPS, &SubscriptionFacts::single_api("one"), &finops_named_values);
    let EffectiveLimit::Unlimited { reason } = &one_api.tpm else { panic!() };
    assert!(reason.contains("a single API"), "{reason}");
    let bronze = eff(FINOPS, &SubscriptionFacts::in_product("b1", "bronze"), &finops_named_values);
    let EffectiveLimit::Unlimited { reason } = &bronze.tpm else { panic!() };
    assert!(reason.contains("no branch"), "{reason}");

    let doc = PolicyDocument::parse(FINOPS).unwrap();
    let subs = [
        SubscriptionFacts::in_product("g1", "gold"),
        SubscriptionFacts::in_product("g2", "gold"),
        SubscriptionFacts::in_product("p1", "platinum"),
        SubscriptionFacts::all_apis("lab"),
    ];
    let sharing = subscriptions_sharing(&doc, gold.tpm.source().unwrap(), &subs, &finops_named_values);
    assert_eq!(sharing.subscriptions, ["g1", "g2"]);
}

#[test]
fn product_access_without_null_check_is_unknown_for_keys_without_product() {
    let t = FINOPS.replace("context.Product?.Id", "context.Product.Id");
    let lab = eff(&t, &SubscriptionFacts::all_apis("lab"), &finops_named_values);
    assert!(unknown_reason(&lab.tpm).contains("would throw"), "{lab:?}");
    let gold = eff(&t, &SubscriptionFacts::in_product("g1", "gold"), &finops_named_values);
    assert_eq!(gold.tpm.value(), Some(1000));
}

#[test]
fn per_subscription_branches_with_or_and_otherwise() {
    let t = tabs_crlf();
    let a = eff(&t, &SubscriptionFacts::all_apis("team-a"), &no_named_values);
    assert_eq!(a.tpm.value(), Some(20000));
    // The header-routing choose is choose[1]; it guards no limit, so it does not matter.
    assert!(a.tpm.source().unwrap().branch.starts_with("choose[2]/when[1]"));
    let c = eff(&t, &SubscriptionFacts::all_apis("team-c"), &no_named_values);
    assert_eq!(c.tpm.value(), Some(30000));
    // 50 calls per 30 s, normalised and explained.
    assert_eq!(c.rpm.value(), Some(100));
    assert!(c.rpm.source().unwrap().note.as_deref().unwrap().contains("50 calls per 30 s"));
    let other = eff(&t, &SubscriptionFacts::master(), &no_named_values);
    assert_eq!(other.tpm.value(), Some(5000));
    assert_eq!(other.tpm.source().unwrap().branch, "choose[2]/otherwise");
}

#[test]
fn an_unrecognised_condition_in_front_of_a_limit_makes_it_unknown() {
    let t = r#"<policies><inbound>
        <choose>
            <when condition="@(context.Subscription.Id == &quot;vip&quot;)">
                <llm-token-limit counter-key="@(context.Subscription.Id)" tokens-per-minute="9000" />
            </when>
            <when condition="@(context.Request.Headers.GetValueOrDefault(&quot;x-batch&quot;,&quot;&quot;) == &quot;1&quot;)">
                <llm-token-limit counter-key="@(context.Subscription.Id)" tokens-per-minute="100" />
            </when>
            <otherwise>
                <llm-token-limit counter-key="@(context.Subscription.Id)" tokens-per-minute="1000" />
            </otherwise>
        </choose>
    </inbound></policies>"#;
    // vip's branch comes first: certain.
    assert_eq!(eff(t, &SubscriptionFacts::all_apis("vip"), &no_named_values).tpm.value(), Some(9000));
    // Everyone else: 100 or 1000 depending on a header; reported verbatim, not guessed.
    let e = eff(t, &SubscriptionFacts::all_apis("x"), &no_named_values);
    let reason = unknown_reason(&e.tpm);
    assert!(reason.contains("choose[1]/when[2]: unrecognised condition"), "{reason}");
    assert!(reason.contains(r#"GetValueOrDefault("x-batch","") == "1""#), "{reason}");
    let EffectiveLimit::Unknown { candidates, .. } = &e.tpm else { panic!() };
    assert_eq!(candidates.len(), 2);
}

#[test]
fn several_applicable_limits_the_smallest_wins_and_the_others_are_listed() {
    let t = r#"<policies><inbound>
        <llm-token-limit counter-key="@(context.Subscription.Id)" tokens-per-minute="5000" />
        <choose>
            <when condition="@(context.Subscription.Id == &quot;small&quot;)">
                <llm-token-limit counter-key="@(context.Subscription.Id)" tokens-per-minute="2000" />
            </when>
            <when condition="@(context.Subscription.Id == &quot;big&quot;)">
                <llm-token-limit counter-key="@(context.Subscription.Id)" tokens-per-minute="8000" />
            </when>
            <when condition="@(context.Request.IpAddress == &quot;10.0.0.1&quot;)">
                <llm-token-limit counter-key="@(context.Subscription.Id)" tokens-per-minute="7000" />
            </when>
        </choose>
    </inbound></policies>"#;
    let small = eff(t, &SubscriptionFacts::all_apis("small"), &no_named_values);
    let EffectiveLimit::Limited { value, source, also_applies } = &small.tpm else { panic!() };
    assert_eq!(*value, 2000);
    assert!(source.branch.contains("small"));
    assert_eq!(also_applies.len(), 1);
    assert_eq!(also_applies[0].branch, "API-wide (no condition)");
    let big = eff(t, &SubscriptionFacts::all_apis("big"), &no_named_values);
    assert_eq!(big.tpm.value(), Some(5000));
    assert_eq!(big.tpm.source().unwrap().branch, "API-wide (no condition)");
    // For others an unrecognised condition guards 7000, but 5000 applies anyway: still certain.
    let other = eff(t, &SubscriptionFacts::all_apis("other"), &no_named_values);
    assert_eq!(other.tpm.value(), Some(5000));
}

#[test]
fn other_limits_fragments_sections_and_shared_counters_are_reported() {
    let t = r#"<policies>
    <inbound>
        <include-fragment fragment-id="common-limits" />
        <rate-limit calls="100" renewal-period="60" />
        <quota-by-key calls="10000" renewal-period="86400" counter-key="@(context.Subscription.Id)" />
        <llm-token-limit counter-key="all-callers" tokens-per-minute="50000" />
    </inbound>
    <outbound>
        <llm-token-limit counter-key="@(context.Subscription.Id)" tokens-per-minute="1" />
    </outbound>
</policies>"#;
    let e = eff(t, &SubscriptionFacts::all_apis("x"), &no_named_values);
    assert_eq!(e.tpm.value(), Some(50000), "the outbound element is ignored");
    assert_eq!(e.other_limits.len(), 2);
    assert_eq!(e.other_limits[0].kind, LimitKind::RateLimit);
    assert_eq!(e.other_limits[0].description, r#"calls="100" renewal-period="60""#);
    assert_eq!(e.other_limits[1].kind, LimitKind::QuotaByKey);
    assert!(e.other_limits.iter().all(|o| o.certain));
    assert!(!e.inherits_parent, "no <base /> in inbound");
    let c = e.caveats.join("\n");
    assert!(c.contains("fragment 'common-limits'"), "{c}");
    assert!(c.contains("outside <inbound> is ignored"), "{c}");
    assert!(c.contains("TPM counter is not per subscription: shared counter \"all-callers\""), "{c}");
}

#[test]
fn conditions_can_use_named_values() {
    let t = r#"<policies><inbound><choose>
        <when condition="@(context.Subscription.Id == &quot;{{vip-sub}}&quot;)">
            <llm-token-limit counter-key="@(context.Subscription.Id)" tokens-per-minute="9000" />
        </when>
    </choose></inbound></policies>"#;
    let nv = |n: &str| (n == "vip-sub").then(|| "alice".to_string());
    assert_eq!(eff(t, &SubscriptionFacts::all_apis("alice"), &nv).tpm.value(), Some(9000));
    assert!(matches!(eff(t, &SubscriptionFacts::all_apis("bob"), &nv).tpm, EffectiveLimit::Unlimited { .. }));
    let e = eff(t, &SubscriptionFacts::all_apis("alice"), &no_named_values);
    assert!(unknown_reason(&e.tpm).contains("{{vip-sub}}"));
}

#[test]
fn expression_valued_limits_are_unknown() {
    let t = r#"<policies><inbound>
        <llm-token-limit counter-key="@(context.Subscription.Id)" tokens-per-minute="@(context.Subscription.Id.StartsWith(&quot;a&quot;) ? 100 : 200)" />
    </inbound></policies>"#;
    let e = eff(t, &SubscriptionFacts::all_apis("x"), &no_named_values);
    assert!(unknown_reason(&e.tpm).contains("computed per request"));
}

#[test]
fn named_value_usage_reports_every_reference() {
    let doc = PolicyDocument::parse(FINOPS).unwrap();
    let subs = [SubscriptionFacts::in_product("s1", "silver"), SubscriptionFacts::in_product("g1", "gold")];
    let u = named_value_usage(&doc, "silver-tpm", &subs, &finops_named_values);
    assert_eq!(u.references.len(), 1);
    assert_eq!(u.sharing.subscriptions, ["s1"]);
    let t = FINOPS.replace(r#"tokens-per-minute="1000""#, r#"tokens-per-minute="{{silver-tpm}}""#);
    let doc = PolicyDocument::parse(&t).unwrap();
    let u = named_value_usage(&doc, "silver-tpm", &subs, &finops_named_values);
    assert_eq!(u.references.len(), 2);
    assert_eq!(u.sharing.subscriptions, ["g1", "s1"]);
}
