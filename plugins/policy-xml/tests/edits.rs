//! The byte-preserving editor: primitives and the high-level operation on real tenant shapes.
//! Every edit is checked for: only the intended bytes change, the result re-parses, and
//! re-analysis gives the new value for the target and unchanged values for everyone else.

mod common;
use aigw_policy_xml::*;
use common::*;

fn parse(t: &str) -> PolicyDocument {
    PolicyDocument::parse(t).unwrap_or_else(|e| panic!("{e}\n{t}"))
}

fn element<'d>(doc: &'d PolicyDocument, name: &str) -> &'d Element {
    doc.elements().into_iter().find(|e| e.name == name).unwrap()
}

fn ctx<'a>(subs: &'a [SubscriptionFacts], nv: &'a dyn Fn(&str) -> Option<String>) -> EditContext<'a> {
    EditContext {
        scope: api(),
        subscriptions: subs,
        named_values: nv,
        named_value_users_elsewhere: &aigw_policy_xml::not_used_elsewhere,
    }
}

fn tpm(n: u64) -> LimitChange {
    LimitChange { tpm: Some(n), ..Default::default() }
}

/// Runs the high-level edit and checks the invariants; returns the outcome.
fn edit_and_check(
    text: &str,
    subs: &[SubscriptionFacts],
    nv: &dyn Fn(&str) -> Option<String>,
    target: &str,
    change: &LimitChange,
    expected_target: &str,
) -> EditOutcome {
    let before = summary(text, subs, nv);
    let sub = subs.iter().find(|s| s.id == target).unwrap();
    let out = set_limit_for_subscription(text, sub, change, &ctx(subs, nv)).unwrap_or_else(|e| panic!("{e}"));
    let new_text = out.text().unwrap_or(text);
    let updates = out.named_value_updates();
    let nv2 = |n: &str| updates.iter().find(|u| u.name == n).map(|u| u.new.clone()).or_else(|| nv(n));
    let after = summary(new_text, subs, &nv2);
    for ((id, b), (_, a)) in before.iter().zip(&after) {
        if id == target {
            assert_eq!(a, expected_target, "target {id}\n{new_text}");
        } else {
            assert_eq!(a, b, "{id} must keep its limits\n{new_text}");
        }
    }
    out
}

// ---------------------------------------------------------------- primitives

#[test]
fn set_attribute_replaces_only_the_value_and_keeps_the_quote() {
    let t = "<policies><inbound><llm-token-limit counter-key='@(context.Subscription.Id)' tokens-per-minute='100' /></inbound></policies>";
    let doc = parse(t);
    let e = element(&doc, "llm-token-limit");
    let a = e.attr("tokens-per-minute").unwrap();
    let new = set_attribute(t, a, "2500").unwrap();
    assert_eq!(new, t.replace("'100'", "'2500'"));
    assert_changed_only_within(t, &new, a.value_span);
    // Escaped for XML and for the attribute's own quote.
    let new = set_attribute(t, e.attr("counter-key").unwrap(), r#"@("a'b" + "<&>")"#).unwrap();
    assert!(new.contains(r#"counter-key='@("a&apos;b" + "&lt;&amp;&gt;")'"#), "{new}");
    parse(&new);
}

#[test]
fn edits_refuse_items_from_another_version_of_the_text() {
    let t = r#"<policies><inbound><llm-token-limit tokens-per-minute="100" /></inbound></policies>"#;
    let doc = parse(t);
    let a = element(&doc, "llm-token-limit").attr("tokens-per-minute").unwrap().clone();
    let changed = t.replace("<inbound>", "<inbound><base />");
    assert!(matches!(set_attribute(&changed, &a, "5"), Err(EditError::Stale { .. })));
    assert!(matches!(
        add_attribute(&changed, element(&doc, "llm-token-limit"), "x", "1"),
        Err(EditError::Stale { .. })
    ));
}

#[test]
fn add_attribute_follows_the_spacing_of_the_last_attribute() {
    let t = r#"<policies><inbound><rate-limit-by-key  calls="5"  renewal-period="30" /></inbound></policies>"#;
    let doc = parse(t);
    let new =
        add_attribute(t, element(&doc, "rate-limit-by-key"), "counter-key", "@(context.Subscription.Id)").unwrap();
    assert_eq!(
        new,
        t.replace(r#"renewal-period="30""#, r#"renewal-period="30"  counter-key="@(context.Subscription.Id)""#)
    );

    // One attribute per line stays one per line.
    let doc = parse(LAB);
    let new = add_attribute(LAB, element(&doc, "llm-token-limit"), "token-quota", "100000").unwrap();
    assert!(
        new.contains("remaining-tokens-variable-name=\"remainingTokens\"\n            token-quota=\"100000\" />"),
        "{new}"
    );
    assert_pure_insertion(LAB, &new);

    // Single quotes are followed; no attributes yet: one space after the name.
    let t = "<policies><inbound><x a='1'/><base/></inbound></policies>";
    let doc = parse(t);
    assert!(add_attribute(t, element(&doc, "x"), "b", "2").unwrap().contains("<x a='1' b='2'/>"));
    assert!(add_attribute(t, element(&doc, "base"), "b", "2").unwrap().contains(r#"<base b="2"/>"#));
    assert_eq!(add_attribute(t, element(&doc, "x"), "a", "2"), Err(EditError::DuplicateAttribute { name: "a".into() }));
}

#[test]
fn insert_subscription_branch_matches_indentation_newlines_and_condition_quoting() {
    let t = tabs_crlf();
    let doc = parse(&t);
    let a = Analysis::of(&doc);
    let choose = a.choose(2).unwrap();
    let template = choose.branches[2].element.child_elements().next().unwrap();
    let new = insert_subscription_branch(
        &t,
        choose,
        BranchIndex(2),
        "team-d",
        &[
            NewLimit::Tokens {
                template: Some(template),
                keep_template_limits: true,
                tokens_per_minute: Some(12345),
                token_quota: None,
            },
            NewLimit::Requests { calls_per_minute: 60 },
        ],
    )
    .unwrap();
    let at = choose.branches[2].element.span.start;
    let inserted = assert_inserted_at(&t, &new, at);
    assert_eq!(
        inserted,
        "<when condition=\"@(context.Subscription.Id == &quot;team-d&quot;)\">\r\n\
         \t\t\t\t<llm-token-limit counter-key=\"@(context.Subscription.Id)\" tokens-per-minute=\"12345\" estimate-prompt-tokens=\"true\" />\r\n\
         \t\t\t\t<rate-limit-by-key calls=\"60\" renewal-period=\"60\" counter-key=\"@(context.Subscription.Id)\" />\r\n\
         \t\t\t</when>\r\n\t\t\t"
    );
    assert!(!new.replace("\r\n", "").contains('\n'), "no bare LF in a CRLF document");
    // A <when> cannot go after <otherwise>.
    let err =
        insert_subscription_branch(&t, choose, BranchIndex(4), "x", &[NewLimit::Requests { calls_per_minute: 1 }]);
    assert!(matches!(err, Err(EditError::NotPossible { .. })));
    // Ids that cannot be written into a C# string are refused, naming the field.
    let err = insert_subscription_branch(&t, choose, BranchIndex(0), "a\"b", &[]).unwrap_err();
    assert!(err.to_string().starts_with("subscription_id:"), "{err}");

    // Single-quoted conditions with raw quotes (finops) and raw quotes in double quotes (rawxml).
    let doc = parse(FINOPS);
    let a = Analysis::of(&doc);
    let new = insert_subscription_branch(
        FINOPS,
        a.choose(1).unwrap(),
        BranchIndex(0),
        "vip",
        &[NewLimit::Requests { calls_per_minute: 1 }],
    )
    .unwrap();
    assert!(
        new.contains("      <when condition='@(context.Subscription.Id == \"vip\")'>\n        <rate-limit-by-key"),
        "{new}"
    );
    let raw = SANDBOX.replace("&quot;", "\"");
    let doc = parse(&raw);
    let a = Analysis::of(&doc);
    let new = insert_subscription_branch(
        &raw,
        a.choose(1).unwrap(),
        BranchIndex(0),
        "vip",
        &[NewLimit::Requests { calls_per_minute: 1 }],
    )
    .unwrap();
    assert!(new.contains(r#"<when condition="@(context.Subscription.Id == "vip")">"#), "{new}");
    parse(&new);
}

#[test]
fn minified_documents_stay_minified() {
    let t = r#"<policies><inbound><base/><choose><when condition="@(context.Product?.Id == &quot;p&quot;)"><llm-token-limit counter-key="@(context.Subscription.Id)" tokens-per-minute="10"/></when></choose></inbound></policies>"#;
    let doc = parse(t);
    let a = Analysis::of(&doc);
    let new = insert_branch_copy(t, a.choose(1).unwrap(), BranchIndex(0), "s", BranchIndex(0)).unwrap();
    assert_eq!(
        new,
        t.replace(
            "<choose>",
            r#"<choose><when condition="@(context.Subscription.Id == &quot;s&quot;)"><llm-token-limit counter-key="@(context.Subscription.Id)" tokens-per-minute="10"/></when>"#
        )
    );
    let subs = [SubscriptionFacts::in_product("s", "p"), SubscriptionFacts::in_product("o", "p")];
    let out = edit_and_check(
        t,
        &subs,
        &no_named_values,
        "s",
        &LimitChange { tpm: Some(5), rpm: Some(3), ..Default::default() },
        "5/3/unlimited",
    );
    assert!(!out.text().unwrap().contains('\n'));
    // API-wide element in a minified document: wrapped inline.
    let t = r#"<policies><inbound><llm-token-limit counter-key="@(context.Subscription.Id)" tokens-per-minute="10"/></inbound></policies>"#;
    let out = edit_and_check(t, &subs, &no_named_values, "s", &tpm(7), "7/unlimited/unlimited");
    assert_eq!(
        out.text().unwrap(),
        r#"<policies><inbound><choose><when condition="@(context.Subscription.Id == &quot;s&quot;)"><llm-token-limit counter-key="@(context.Subscription.Id)" tokens-per-minute="7"/></when><otherwise><llm-token-limit counter-key="@(context.Subscription.Id)" tokens-per-minute="10"/></otherwise></choose></inbound></policies>"#
    );
}

#[test]
fn wrap_preserves_the_original_element_and_only_reindents_layout() {
    let doc = parse(LAB);
    let e = element(&doc, "llm-token-limit");
    let new = wrap_in_subscription_choose(LAB, e, "a", None).unwrap();
    // Everything outside the element is untouched.
    assert_eq!(&new[..e.span.start], &LAB[..e.span.start]);
    assert_eq!(&new[new.len() - (LAB.len() - e.span.end)..], &LAB[e.span.end..]);
    let original = e.span.of(LAB);
    let moved = original.replace("\n            ", "\n                    ");
    assert!(new.contains(&format!("<otherwise>\n                {moved}\n            </otherwise>")), "{new}");
    // A no-op for every subscription.
    let subs = [SubscriptionFacts::all_apis("a"), SubscriptionFacts::all_apis("b")];
    assert_eq!(summary(&new, &subs, &no_named_values), summary(LAB, &subs, &no_named_values));
}

#[test]
fn wrap_does_not_reindent_inside_values_comments_or_text() {
    let t = "<policies>\n  <inbound>\n    <rate-limit-by-key calls=\"5\" renewal-period=\"60\"\n      counter-key=\"@{\n  return context.Subscription.Id;\n}\">\n      <!-- keep\n  this -->\n    </rate-limit-by-key>\n  </inbound>\n</policies>";
    let doc = parse(t);
    let e = element(&doc, "rate-limit-by-key");
    let new = wrap_in_subscription_choose(t, e, "a", None).unwrap();
    assert!(new.contains("\n          counter-key=\"@{\n  return context.Subscription.Id;\n}\">"), "{new}");
    assert!(new.contains("<!-- keep\n  this -->"), "{new}");
    parse(&new);
}

#[test]
fn append_child_and_new_choose() {
    let t = "<policies>\n    <inbound>\n        <choose>\n            <when condition=\"@(context.Subscription.Id == &quot;a&quot;)\" />\n            <when condition=\"@(context.Subscription.Id == &quot;b&quot;)\"></when>\n        </choose>\n    </inbound>\n</policies>";
    let doc = parse(t);
    let whens: Vec<_> = doc.elements().into_iter().filter(|e| e.name == "when").collect();
    let new = append_child(t, whens[0], "<base />").unwrap();
    assert!(new.contains("&quot;a&quot;)\">\n                <base />\n            </when>"), "{new}");
    let new = append_child(t, whens[1], "<base />").unwrap();
    assert!(new.contains("&quot;b&quot;)\">\n                <base />\n            </when>"), "{new}");

    // A new choose goes after <base />, else first, else into an empty section.
    for (inbound, expect) in [
        ("<inbound>\n\t\t<base />\n\t\t<x />\n\t</inbound>", "<base />\n\t\t<choose>\n\t\t\t<when"),
        ("<inbound>\n\t\t<x />\n\t</inbound>", "<inbound>\n\t\t<choose>\n\t\t\t<when"),
        ("<inbound>\n\t</inbound>", "<inbound>\n\t\t<choose>\n\t\t\t<when"),
        ("<inbound />", "<inbound>\n\t\t<choose>\n\t\t\t<when"),
    ] {
        let t = format!("<policies>\n\t{inbound}\n\t<backend>\n\t\t<forward-request />\n\t</backend>\n</policies>");
        let doc = parse(&t);
        let new = insert_subscription_choose(
            &t,
            element(&doc, "inbound"),
            "s",
            &[NewLimit::Requests { calls_per_minute: 9 }],
        )
        .unwrap();
        assert!(new.contains(expect), "{new}");
        assert!(new.contains("\t\t\t\t<rate-limit-by-key calls=\"9\""), "{new}");
        parse(&new);
        let e = effective_limits(&parse(&new), api(), &SubscriptionFacts::all_apis("s"), &no_named_values);
        assert_eq!(e.rpm.value(), Some(9));
    }
}

// ---------------------------------------------------------------- high level

fn lab_subs() -> Vec<SubscriptionFacts> {
    vec![SubscriptionFacts::all_apis("a"), SubscriptionFacts::all_apis("b"), SubscriptionFacts::master()]
}

#[test]
fn single_api_wide_limit_is_wrapped_for_one_subscription() {
    let out = edit_and_check(LAB, &lab_subs(), &no_named_values, "a", &tpm(500), "500/unlimited/unlimited");
    let text = out.text().unwrap();
    let doc = parse(LAB);
    assert_changed_only_within(LAB, text, element(&doc, "llm-token-limit").span);
    let c = &out.changes()[0];
    assert_eq!(c.action, Action::WrappedInChoose);
    assert_eq!(c.shared_with, ["b", "master"]);
    // Then cutting it again edits the new branch in place.
    let out2 = edit_and_check(text, &lab_subs(), &no_named_values, "a", &tpm(400), "400/unlimited/unlimited");
    assert_eq!(out2.changes()[0].action, Action::EditedInPlace);
    assert_eq!(out2.text().unwrap().len(), text.len());
}

#[test]
fn per_product_tier_gets_an_override_in_the_documents_style() {
    let subs = vec![
        SubscriptionFacts::in_product("g1", "gold"),
        SubscriptionFacts::in_product("g2", "gold"),
        SubscriptionFacts::in_product("s1", "silver"),
        SubscriptionFacts::all_apis("lab"),
    ];
    let nv = &finops_named_values;
    let out = edit_and_check(FINOPS, &subs, nv, "g1", &tpm(600), "600/unlimited/1000000");
    let text = out.text().unwrap();
    let gold = FINOPS.find("<when condition='@((string)context.Product?.Id == \"gold\")'>").unwrap();
    let ins = assert_inserted_at(FINOPS, text, gold);
    assert!(ins.starts_with("<when condition='@(context.Subscription.Id == \"g1\")'>\n        <llm-token-limit counter-key=\"@(context.Subscription.Id)\" tokens-per-minute=\"600\" token-quota=\"1000000\" token-quota-period=\"Monthly\""), "{ins}");
    assert_eq!(out.changes()[0].shared_with, ["g2"]);

    // Quota and period together for a gold subscription.
    let change = LimitChange {
        token_quota: Some(2_000_000),
        token_quota_period: Some(QuotaPeriod::Weekly),
        ..Default::default()
    };
    let out = edit_and_check(FINOPS, &subs, nv, "g2", &change, "1000/unlimited/2000000");
    let e = effective_limits(&parse(out.text().unwrap()), api(), &subs[1], nv);
    assert_eq!(e.token_quota_period.as_deref(), Some("Weekly"));
    assert_eq!(out.changes()[0].new, "2000000 Weekly");

    // A silver subscription's TPM is a named value shared by the whole tier: override, not update.
    let out = edit_and_check(FINOPS, &subs, nv, "s1", &tpm(450), "450/unlimited/250000");
    assert!(out.named_value_updates().is_empty());
    let c = &out.changes()[0];
    assert!(matches!(c.action, Action::OverrideInserted { .. }));
    // The copy keeps the quota's named value reference.
    assert!(out.text().unwrap().matches("token-quota=\"{{silver-quota}}\"").count() == 2);

    // A key without a product gets a branch at the end (there is no <otherwise>).
    let out = edit_and_check(FINOPS, &subs, nv, "lab", &tpm(50), "50/unlimited/unlimited");
    let text = out.text().unwrap();
    let end = FINOPS.find("\n    </choose>").unwrap();
    let ins = assert_inserted_at(FINOPS, text, end);
    assert!(ins.starts_with("\n      <when condition='@(context.Subscription.Id == \"lab\")'>\n        <llm-token-limit counter-key=\"@(context.Subscription.Id)\" tokens-per-minute=\"50\" estimate-prompt-tokens=\"false\""), "{ins}");
    assert!(!ins.contains("token-quota"), "an added TPM limit does not copy the template's quota: {ins}");
}

#[test]
fn own_named_value_used_elsewhere_is_written_into_the_branch() {
    let t = SANDBOX.replace(r#"tokens-per-minute="400000""#, r#"tokens-per-minute="{{tpm-data-science}}""#);
    let subs = sandbox_subscriptions();
    let out = edit_and_check(&t, &subs, &sandbox_named_values, "data-science", &tpm(1000), "1000/600/unlimited");
    assert!(out.named_value_updates().is_empty());
    let c = &out.changes()[0];
    assert_eq!(c.action, Action::EditedInPlace);
    assert!(c.notes.iter().any(|n| n.contains("{{tpm-data-science}} is shared with prod-critical")), "{:?}", c.notes);
}

#[test]
fn or_of_subscriptions_is_shared_and_crlf_tabs_are_kept() {
    let t = tabs_crlf();
    let subs = vec![
        SubscriptionFacts::all_apis("team-a"),
        SubscriptionFacts::all_apis("team-b"),
        SubscriptionFacts::all_apis("team-c"),
        SubscriptionFacts::all_apis("other"),
    ];
    let out = edit_and_check(&t, &subs, &no_named_values, "team-b", &tpm(15000), "15000/unlimited/unlimited");
    let text = out.text().unwrap();
    assert_pure_insertion(&t, text);
    assert!(!text.replace("\r\n", "").contains('\n'));
    assert_eq!(out.changes()[0].shared_with, ["team-a"]);
    // Own branch with a 30 s window: edited in place and moved to 60 s.
    let out = edit_and_check(
        &t,
        &subs,
        &no_named_values,
        "team-c",
        &LimitChange { rpm: Some(80), ..Default::default() },
        "30000/80/unlimited",
    );
    let c = &out.changes()[0];
    assert_eq!((c.old.as_str(), c.action.clone()), ("100", Action::EditedInPlace));
    assert!(c.notes[0].contains("from 30 s to 60 s"));
    let (w, _) = changed_window(&t, out.text().unwrap());
    // Only the two attribute values changed: calls 50 -> 80 and renewal-period 30 -> 60.
    assert_eq!(&t[w.range()], "50\" renewal-period=\"3");
    // Everyone else falls into <otherwise>: an override copies it ahead of it.
    let out = edit_and_check(&t, &subs, &no_named_values, "other", &tpm(4000), "4000/unlimited/unlimited");
    let text = out.text().unwrap();
    let ins = assert_inserted_at(&t, text, t.find("<otherwise>\r\n\t\t\t\t<!-- default").unwrap());
    assert!(ins.contains("<!-- default for everyone else -->"), "the copy keeps the branch's comment");
}

#[test]
fn the_document_around_the_edit_is_untouched() {
    // Comments that look like limits, CDATA, multi-line expression blocks, entity escapes.
    let t = r#"<policies>
    <inbound>
        <base />
        <!-- <llm-token-limit counter-key="@(context.Subscription.Id)" tokens-per-minute="1" /> -->
        <set-variable name="body" value="@{
            var b = context.Request.Body?.As&lt;JObject&gt;(preserveContent: true);
            return b?[&quot;model&quot;]?.ToString() ?? &quot;&quot;;
        }" />
        <set-body><![CDATA[{"note": "<llm-token-limit tokens-per-minute=\"2\"/>"}]]></set-body>
        <choose>
            <when condition="@(context.Product?.Id == &quot;aoai&quot;)">
                <llm-token-limit counter-key="@(context.Subscription.Id)" tokens-per-minute="100" />
            </when>
        </choose>
    </inbound>
</policies>"#;
    let subs = vec![SubscriptionFacts::in_product("x", "aoai"), SubscriptionFacts::in_product("y", "aoai")];
    let out = edit_and_check(t, &subs, &no_named_values, "x", &tpm(50), "50/unlimited/unlimited");
    assert_pure_insertion(t, out.text().unwrap());
    let out = edit_and_check(
        t,
        &subs,
        &no_named_values,
        "y",
        &LimitChange { rpm: Some(10), ..Default::default() },
        "100/10/unlimited",
    );
    assert_pure_insertion(t, out.text().unwrap());
}

#[test]
fn no_limit_at_all_creates_a_choose() {
    let t = "<policies>\r\n\t<inbound>\r\n\t\t<base />\r\n\t</inbound>\r\n</policies>\r\n";
    let subs = vec![SubscriptionFacts::all_apis("x"), SubscriptionFacts::all_apis("y")];
    let out = edit_and_check(
        t,
        &subs,
        &no_named_values,
        "x",
        &LimitChange { tpm: Some(10), rpm: Some(2), ..Default::default() },
        "10/2/unlimited",
    );
    assert_eq!(
        out.text().unwrap(),
        "<policies>\r\n\t<inbound>\r\n\t\t<base />\r\n\t\t<choose>\r\n\t\t\t<when condition=\"@(context.Subscription.Id == &quot;x&quot;)\">\r\n\t\t\t\t<llm-token-limit counter-key=\"@(context.Subscription.Id)\" tokens-per-minute=\"10\" estimate-prompt-tokens=\"false\" />\r\n\t\t\t\t<rate-limit-by-key calls=\"2\" renewal-period=\"60\" counter-key=\"@(context.Subscription.Id)\" />\r\n\t\t\t</when>\r\n\t\t</choose>\r\n\t</inbound>\r\n</policies>\r\n"
    );
    assert_eq!(out.changes()[0].action, Action::ChooseCreated);
    assert_eq!(out.changes()[1].action, Action::AddedToOwnBranch);
}

#[test]
fn mixed_named_value_and_xml_changes() {
    let subs = sandbox_subscriptions();
    let change = LimitChange { tpm: Some(123_000), rpm: Some(700), ..Default::default() };
    let out = edit_and_check(SANDBOX, &subs, &sandbox_named_values, "data-science", &change, "123000/700/unlimited");
    let EditOutcome::Mixed { text: Some(text), named_values, changes } = &out else { panic!("{out:?}") };
    assert_eq!(named_values[0].name, "tpm-data-science");
    assert_eq!(changes[1].action, Action::EditedInPlace);
    assert_eq!(text.len(), SANDBOX.len());
}

#[test]
fn unchanged_values_change_nothing() {
    let subs = sandbox_subscriptions();
    let change = LimitChange { tpm: Some(200_000), rpm: Some(1200), ..Default::default() };
    let out = edit_and_check(SANDBOX, &subs, &sandbox_named_values, "growth", &change, "200000/1200/unlimited");
    assert!(matches!(out, EditOutcome::Unchanged { .. }));
    assert!(out.changes().iter().all(|c| c.action == Action::Unchanged));
}

#[test]
fn values_are_validated_and_errors_name_the_field() {
    let subs = sandbox_subscriptions();
    let growth = &subs[0];
    let c = ctx(&subs, &sandbox_named_values);
    let cases = [
        (LimitChange { tpm: Some(0), ..Default::default() }, "tpm:"),
        (LimitChange { rpm: Some(MAX_PER_MINUTE + 1), ..Default::default() }, "rpm:"),
        (LimitChange { token_quota: Some(MAX_TOKEN_QUOTA + 1), ..Default::default() }, "token_quota:"),
        (LimitChange::default(), "tpm: nothing to change"),
        (LimitChange { token_quota_period: Some(QuotaPeriod::Daily), ..Default::default() }, "token_quota_period:"),
    ];
    for (change, prefix) in cases {
        let err = set_limit_for_subscription(SANDBOX, growth, &change, &c).unwrap_err();
        assert!(err.to_string().starts_with(prefix), "{err}");
    }
    assert!(
        LimitChange {
            tpm: Some(MAX_PER_MINUTE),
            rpm: Some(1),
            token_quota: Some(MAX_TOKEN_QUOTA),
            ..Default::default()
        }
        .validate()
        .is_ok()
    );
    assert_eq!("monthly".parse::<QuotaPeriod>(), Ok(QuotaPeriod::Monthly));
    assert!("Fortnightly".parse::<QuotaPeriod>().is_err());
}

#[test]
fn refuses_to_guess() {
    let t = r#"<policies><inbound><choose>
        <when condition="@(context.Request.Headers.ContainsKey(&quot;x-batch&quot;))">
            <llm-token-limit counter-key="@(context.Subscription.Id)" tokens-per-minute="10" />
        </when>
        <otherwise>
            <llm-token-limit counter-key="@(context.Subscription.Id)" tokens-per-minute="100" />
        </otherwise>
    </choose></inbound></policies>"#;
    let subs = [SubscriptionFacts::all_apis("x")];
    let err = set_limit_for_subscription(t, &subs[0], &tpm(5), &ctx(&subs, &no_named_values)).unwrap_err();
    assert!(
        matches!(&err, EditError::Undeterminable { field, reason } if field == "tpm" && reason.contains("x-batch")),
        "{err}"
    );

    let t = r#"<policies><inbound><choose><when condition="@(context.Subscription.Id == &quot;x&quot;)">
        <llm-token-limit counter-key="@(context.Subscription.Id)" tokens-per-minute="@(context.Variables.GetValueOrDefault&lt;int&gt;(&quot;tpm&quot;))" />
    </when></choose></inbound></policies>"#;
    let err = set_limit_for_subscription(t, &subs[0], &tpm(5), &ctx(&subs, &no_named_values)).unwrap_err();
    assert!(
        matches!(&err, EditError::Undeterminable { reason, .. } if reason.contains("computed per request")),
        "{err}"
    );

    assert!(matches!(
        set_limit_for_subscription("<policies>", &subs[0], &tpm(5), &ctx(&subs, &no_named_values)),
        Err(EditError::Xml(_))
    ));
}

#[test]
fn summaries_stay_short_on_large_tenants() {
    let subs: Vec<_> = (0..1000).map(|i| SubscriptionFacts::all_apis(&format!("s{i}"))).collect();
    let out = set_limit_for_subscription(LAB, &subs[0], &tpm(10), &ctx(&subs, &no_named_values)).unwrap();
    let c = &out.changes()[0];
    assert_eq!(c.shared_with.len(), 999);
    assert!(c.summary.ends_with("s1, s2, s3, s4, s5 and 994 others keep 1000"), "{}", c.summary);
}
