//! The sandbox tenant's API policy: the end-to-end scenarios of issue 6, at the library level.

mod common;
use aigw_policy_xml::{
    Action, EditContext, EditOutcome, EffectiveLimit, LimitChange, PolicyDocument, SubscriptionFacts, effective_limits,
    set_limit_for_subscription, subscriptions_sharing,
};
use common::*;

fn ctx<'a>(subs: &'a [SubscriptionFacts]) -> EditContext<'a> {
    EditContext {
        scope: api(),
        subscriptions: subs,
        named_values: &sandbox_named_values,
        named_value_users_elsewhere: &aigw_policy_xml::not_used_elsewhere,
    }
}

fn sub(id: &str) -> SubscriptionFacts {
    sandbox_subscriptions().into_iter().find(|s| s.id == id).unwrap()
}

fn baseline() -> Vec<(String, String)> {
    summary(SANDBOX, &sandbox_subscriptions(), &sandbox_named_values)
}

/// Asserts the summary of `text` equals the baseline except for `id`, which must be `expected`.
fn assert_only_changed(text: &str, id: &str, expected: &str) {
    let after = summary(text, &sandbox_subscriptions(), &sandbox_named_values);
    for ((bid, b), (aid, a)) in baseline().iter().zip(&after) {
        assert_eq!(bid, aid);
        if bid == id {
            assert_eq!(a, expected, "{id} after the edit");
        } else {
            assert_eq!(a, b, "{bid} must not change");
        }
    }
}

#[test]
fn lists_the_sandbox_limits_with_sources() {
    assert_eq!(
        baseline(),
        [
            ("growth", "200000/1200/unlimited"),
            ("prod-critical", "400000/2400/unlimited"),
            ("data-science", "300000/600/unlimited"),
            ("search", "100000/600/unlimited"),
            ("support", "100000/600/unlimited"),
            ("lab-all-apis", "unlimited/unlimited/unlimited"),
            ("master", "unlimited/unlimited/unlimited"),
        ]
        .map(|(a, b)| (a.to_string(), b.to_string()))
    );
    let doc = PolicyDocument::parse(SANDBOX).unwrap();
    let growth = effective_limits(&doc, api(), &sub("growth"), &sandbox_named_values);
    let src = growth.tpm.source().unwrap();
    assert_eq!(src.branch, r#"choose[1]/when[1] condition="@(context.Subscription.Id == "growth")""#);
    assert_eq!((src.element.as_str(), src.attribute.as_str()), ("llm-token-limit", "tokens-per-minute"));
    assert!(src.counter_key.as_ref().unwrap().is_per_subscription());
    assert!(growth.inherits_parent);
    assert!(growth.caveats.is_empty(), "{:?}", growth.caveats);

    let ds = effective_limits(&doc, api(), &sub("data-science"), &sandbox_named_values);
    assert_eq!(ds.tpm.source().unwrap().named_value.as_deref(), Some("tpm-data-science"));

    let search = effective_limits(&doc, api(), &sub("search"), &sandbox_named_values);
    let src = search.tpm.source().unwrap();
    assert!(src.branch.starts_with("choose[1]/when[4]"), "{}", src.branch);
    let sharing = subscriptions_sharing(&doc, src, &sandbox_subscriptions(), &sandbox_named_values);
    assert_eq!(sharing.subscriptions, ["search", "support"]);
    assert!(sharing.possibly.is_empty());

    let master = effective_limits(&doc, api(), &SubscriptionFacts::master(), &sandbox_named_values);
    let EffectiveLimit::Unlimited { reason } = &master.tpm else { panic!() };
    assert!(reason.contains("master"), "{reason}");
    let lab = effective_limits(&doc, api(), &sub("lab-all-apis"), &sandbox_named_values);
    let EffectiveLimit::Unlimited { reason } = &lab.tpm else { panic!() };
    assert!(reason.contains("no product"), "{reason}");
}

#[test]
fn cutting_growth_edits_only_its_number() {
    let subs = sandbox_subscriptions();
    let change = LimitChange { tpm: Some(100_000), ..Default::default() };
    let out = set_limit_for_subscription(SANDBOX, &sub("growth"), &change, &ctx(&subs)).unwrap();
    let EditOutcome::Xml { text, changes } = &out else { panic!("{out:?}") };
    // The only bytes changed are the value of growth's tokens-per-minute.
    let at = SANDBOX.find(r#"tokens-per-minute="200000""#).unwrap() + r#"tokens-per-minute=""#.len();
    assert_changed_only_within(SANDBOX, text, aigw_policy_xml::Span::new(at, at + 6));
    assert_eq!(text.len(), SANDBOX.len());
    assert_only_changed(text, "growth", "100000/1200/unlimited");
    let c = &changes[0];
    assert_eq!((c.old.as_str(), c.new.as_str(), c.effective_after.as_str()), ("200000", "100000", "100000"));
    assert_eq!(c.action, Action::EditedInPlace);
    assert!(c.shared_with.is_empty());
    assert!(c.summary.contains("200000 → 100000"), "{}", c.summary);
}

#[test]
fn cutting_search_adds_an_override_and_support_keeps_100k() {
    let subs = sandbox_subscriptions();
    let change = LimitChange { tpm: Some(50_000), ..Default::default() };
    let out = set_limit_for_subscription(SANDBOX, &sub("search"), &change, &ctx(&subs)).unwrap();
    let EditOutcome::Xml { text, changes } = &out else { panic!("{out:?}") };
    // Inserted right in front of the shared aoai branch, on its own line, same indentation.
    let aoai = SANDBOX.find(r#"<when condition="@(context.Product?.Id"#).unwrap();
    let inserted = assert_inserted_at(SANDBOX, text, aoai);
    assert!(
        inserted.starts_with(r#"<when condition="@(context.Subscription.Id == &quot;search&quot;)">"#),
        "{inserted}"
    );
    assert!(inserted.ends_with("</when>\n            "), "{inserted:?}");
    assert!(inserted.contains(r#"tokens-per-minute="50000""#));
    // The override keeps the branch's RPM and the element's other attributes.
    assert!(
        inserted.contains(
            r#"<rate-limit-by-key calls="600" renewal-period="60" counter-key="@(context.Subscription.Id)" />"#
        )
    );
    assert!(inserted.contains(r#"estimate-prompt-tokens="false" remaining-tokens-variable-name="remainingTokens""#));
    assert_only_changed(text, "search", "50000/600/unlimited");
    let c = &changes[0];
    assert_eq!(c.shared_with, ["support"]);
    assert!(matches!(&c.action, Action::OverrideInserted { shared_branch } if shared_branch.contains("when[4]")));
    assert!(c.summary.contains("support keep 100000"), "{}", c.summary);
}

#[test]
fn data_science_goes_to_its_named_value() {
    let subs = sandbox_subscriptions();
    let change = LimitChange { tpm: Some(250_000), ..Default::default() };
    let out = set_limit_for_subscription(SANDBOX, &sub("data-science"), &change, &ctx(&subs)).unwrap();
    let EditOutcome::NamedValue { name, old, new, shared_with, changes } = &out else { panic!("{out:?}") };
    assert_eq!((name.as_str(), old.as_str(), new.as_str()), ("tpm-data-science", "300000", "250000"));
    assert!(shared_with.is_empty());
    assert_eq!(changes[0].effective_after, "250000");
    assert!(out.text().is_none());
}

#[test]
fn rpm_for_a_shared_product_subscription() {
    let subs = sandbox_subscriptions();
    let change = LimitChange { rpm: Some(300), ..Default::default() };
    let out = set_limit_for_subscription(SANDBOX, &sub("support"), &change, &ctx(&subs)).unwrap();
    let text = out.text().unwrap();
    assert_pure_insertion(SANDBOX, text);
    assert_only_changed(text, "support", "100000/300/unlimited");
    assert_eq!(out.changes()[0].shared_with, ["search"]);
}

#[test]
fn tpm_and_rpm_together_make_one_override() {
    let subs = sandbox_subscriptions();
    let change = LimitChange { tpm: Some(80_000), rpm: Some(500), ..Default::default() };
    let out = set_limit_for_subscription(SANDBOX, &sub("search"), &change, &ctx(&subs)).unwrap();
    let text = out.text().unwrap();
    assert_pure_insertion(SANDBOX, text);
    assert_eq!(text.matches("&quot;search&quot;").count(), 1);
    assert_only_changed(text, "search", "80000/500/unlimited");
    assert_eq!(out.changes().len(), 2);
    assert!(matches!(out.changes()[1].action, Action::EditedInPlace), "RPM is edited in the override created for TPM");
}

#[test]
fn unlimited_subscriptions_get_a_branch_at_the_end() {
    let subs = sandbox_subscriptions();
    let change = LimitChange { tpm: Some(1_000), rpm: Some(10), ..Default::default() };
    for id in ["lab-all-apis", "master"] {
        let out = set_limit_for_subscription(SANDBOX, &sub(id), &change, &ctx(&subs)).unwrap();
        let text = out.text().unwrap();
        // After the last </when>, before </choose>.
        let at = SANDBOX.find("</when>\n        </choose>").unwrap() + "</when>".len();
        let inserted = assert_inserted_at(SANDBOX, text, at);
        assert!(inserted.starts_with(&format!("\n            <when condition=\"@(context.Subscription.Id == &quot;{id}&quot;)\">\n                <llm-token-limit ")), "{inserted}");
        assert_only_changed(text, id, "1000/10/unlimited");
        assert!(matches!(out.changes()[0].action, Action::BranchAdded { .. }));
        assert!(matches!(out.changes()[1].action, Action::AddedToOwnBranch));
        println!("{inserted}");
    }
}

#[test]
fn token_quota_needs_a_period_and_is_added() {
    let subs = sandbox_subscriptions();
    let change = LimitChange { token_quota: Some(5_000_000), ..Default::default() };
    let err = set_limit_for_subscription(SANDBOX, &sub("growth"), &change, &ctx(&subs)).unwrap_err();
    assert!(err.to_string().starts_with("token_quota_period:"), "{err}");
    let change = LimitChange {
        token_quota: Some(5_000_000),
        token_quota_period: Some(aigw_policy_xml::QuotaPeriod::Monthly),
        ..Default::default()
    };
    let out = set_limit_for_subscription(SANDBOX, &sub("growth"), &change, &ctx(&subs)).unwrap();
    let text = out.text().unwrap();
    // Added to growth's existing llm-token-limit: no second element on the same counter.
    let at = SANDBOX.find(r#"remaining-tokens-variable-name="remainingTokens" />"#).unwrap()
        + r#"remaining-tokens-variable-name="remainingTokens""#.len();
    let ins = assert_inserted_at(SANDBOX, text, at);
    assert_eq!(ins, r#" token-quota="5000000" token-quota-period="Monthly""#);
    assert_only_changed(text, "growth", "200000/1200/5000000");
    assert_eq!(out.changes()[0].action, Action::EditedInPlace);
    let doc = PolicyDocument::parse(text).unwrap();
    let e = effective_limits(&doc, api(), &sub("growth"), &sandbox_named_values);
    assert_eq!(e.token_quota_period.as_deref(), Some("Monthly"));
}

#[test]
fn a_quota_for_a_shared_product_subscription_extends_its_own_copy() {
    let subs = sandbox_subscriptions();
    let change = LimitChange {
        token_quota: Some(1_000_000),
        token_quota_period: Some(aigw_policy_xml::QuotaPeriod::Daily),
        ..Default::default()
    };
    let out = set_limit_for_subscription(SANDBOX, &sub("search"), &change, &ctx(&subs)).unwrap();
    let text = out.text().unwrap();
    assert_pure_insertion(SANDBOX, text);
    assert_only_changed(text, "search", "100000/600/1000000");
    let c = &out.changes()[0];
    assert!(matches!(c.action, Action::OverrideInserted { .. }), "{c:?}");
    // The override has exactly one llm-token-limit, carrying TPM and quota.
    let start = text.find("&quot;search&quot;").unwrap();
    let branch = &text[start..start + text[start..].find("</when>").unwrap()];
    assert_eq!(branch.matches("<llm-token-limit").count(), 1, "{branch}");
    assert!(branch.contains(r#"tokens-per-minute="100000" estimate-prompt-tokens="false" remaining-tokens-variable-name="remainingTokens" token-quota="1000000" token-quota-period="Daily" />"#), "{branch}");
}

#[test]
fn a_named_value_used_by_another_policy_is_not_changed() {
    // `{{tpm-data-science}}` is also referenced by another policy (e.g. a product policy): the
    // named value is shared, so data-science gets its own number in its own branch instead.
    let subs = sandbox_subscriptions();
    let elsewhere = |name: &str| {
        if name == "tpm-data-science" { vec!["product 'research' policy".to_string()] } else { Vec::new() }
    };
    let ctx = EditContext {
        scope: api(),
        subscriptions: &subs,
        named_values: &sandbox_named_values,
        named_value_users_elsewhere: &elsewhere,
    };
    let change = LimitChange { tpm: Some(250_000), ..Default::default() };
    let out = set_limit_for_subscription(SANDBOX, &sub("data-science"), &change, &ctx).unwrap();
    let EditOutcome::Xml { text, changes } = &out else { panic!("{out:?}") };
    let at = SANDBOX.find(r#""{{tpm-data-science}}""#).unwrap() + 1;
    assert_changed_only_within(SANDBOX, text, aigw_policy_xml::Span::new(at, at + "{{tpm-data-science}}".len()));
    assert!(text.contains(r#"tokens-per-minute="250000""#));
    assert_only_changed(text, "data-science", "250000/600/unlimited");
    assert_eq!(changes[0].action, Action::EditedInPlace);
    assert!(changes[0].notes.iter().any(|n| n.contains("product 'research' policy")), "{:?}", changes[0].notes);
    // The subscription itself using it elsewhere does not make it shared.
    let only_me = |_: &str| vec!["data-science".to_string()];
    let ctx = EditContext { named_value_users_elsewhere: &only_me, ..ctx };
    let out = set_limit_for_subscription(SANDBOX, &sub("data-science"), &change, &ctx).unwrap();
    assert!(matches!(out, EditOutcome::NamedValue { .. }), "{out:?}");
}
