//! Property tests over generated policies: random nesting of choose/when/otherwise, random
//! subscriptions, limits and named values, comments (some containing limit-like markup), and
//! whitespace/quoting styles. For every edit the invariants of the crate must hold.

mod common;
use aigw_policy_xml::*;
use proptest::prelude::*;

const SUBS: usize = 6;

fn subscriptions() -> Vec<SubscriptionFacts> {
    vec![
        SubscriptionFacts::in_product("s0", "p0"),
        SubscriptionFacts::in_product("s1", "p0"),
        SubscriptionFacts::in_product("s2", "p1"),
        SubscriptionFacts::all_apis("s3"),
        SubscriptionFacts::in_product("s4", "p1"),
        SubscriptionFacts::master(),
    ]
}

fn named_values(name: &str) -> Option<String> {
    match name {
        "nv-0" => Some("1234".into()),
        "nv-1" => Some("5678".into()),
        _ => None,
    }
}

#[derive(Clone, Debug)]
enum Cond {
    Subs(Vec<usize>),
    Product(usize, bool),
    Opaque,
    Constant(bool),
}

#[derive(Clone, Debug)]
enum Item {
    Token { tpm: u32, named: Option<usize>, quota: Option<u32> },
    Rate { calls: u32, renewal: u32 },
    Other,
    Comment(bool),
    Choose { whens: Vec<(Cond, Vec<Item>)>, otherwise: Option<Vec<Item>> },
}

#[derive(Clone, Debug)]
struct Style {
    newline: &'static str,
    unit: &'static str,
    quoting: u8,
}

fn cond() -> impl Strategy<Value = Cond> {
    prop_oneof![
        4 => prop::collection::vec(0..SUBS, 1..3).prop_map(Cond::Subs),
        3 => (0..2usize, any::<bool>()).prop_map(|(p, n)| Cond::Product(p, n)),
        1 => Just(Cond::Opaque),
        1 => any::<bool>().prop_map(Cond::Constant),
    ]
}

fn item() -> impl Strategy<Value = Item> {
    let leaf = prop_oneof![
        4 => (1u32..500_000, prop::option::weighted(0.2, 0..2usize), prop::option::weighted(0.3, 1u32..10_000_000))
            .prop_map(|(tpm, named, quota)| Item::Token { tpm, named, quota }),
        3 => (1u32..5000, prop::sample::select(vec![30u32, 60, 60, 120])).prop_map(|(calls, renewal)| Item::Rate { calls, renewal }),
        2 => Just(Item::Other),
        1 => any::<bool>().prop_map(Item::Comment),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        (
            prop::collection::vec((cond(), prop::collection::vec(inner.clone(), 0..3)), 1..4),
            prop::option::of(prop::collection::vec(inner, 0..3)),
        )
            .prop_map(|(whens, otherwise)| Item::Choose { whens, otherwise })
    })
}

fn style() -> impl Strategy<Value = Style> {
    (prop::sample::select(vec!["\n", "\r\n", ""]), prop::sample::select(vec!["  ", "    ", "\t"]), 0u8..3)
        .prop_map(|(newline, unit, quoting)| Style { newline, unit, quoting })
}

fn render_cond(c: &Cond, s: &Style) -> String {
    let lit = |v: &str| match s.quoting {
        0 => format!("&quot;{v}&quot;"),
        _ => format!("\"{v}\""),
    };
    let body = match c {
        Cond::Subs(ids) => ids
            .iter()
            .map(|i| {
                let id = subscriptions()[*i].id.clone();
                format!("context.Subscription.Id == {}", lit(&id))
            })
            .collect::<Vec<_>>()
            .join(" || "),
        Cond::Product(p, true) => format!("context.Product?.Id == {}", lit(&format!("p{p}"))),
        Cond::Product(p, false) => {
            format!("(string)context.Product?.Id == {}", lit(&format!("p{p}")))
        }
        Cond::Opaque => {
            format!("context.Request.Headers.GetValueOrDefault({}, {}) == {}", lit("x-h"), lit(""), lit("1"))
        }
        Cond::Constant(b) => b.to_string(),
    };
    match s.quoting {
        1 => format!("condition='@({body})'"),
        _ => format!("condition=\"@({body})\""),
    }
}

fn render_items(items: &[Item], s: &Style, depth: usize, out: &mut String) {
    let ind = if s.newline.is_empty() { String::new() } else { s.unit.repeat(depth) };
    for it in items {
        out.push_str(&ind);
        match it {
            Item::Token { tpm, named, quota } => {
                let tpm = match named {
                    Some(n) => format!("{{{{nv-{n}}}}}"),
                    None => tpm.to_string(),
                };
                out.push_str(&format!("<llm-token-limit counter-key=\"@(context.Subscription.Id)\" tokens-per-minute=\"{tpm}\""));
                if let Some(q) = quota {
                    out.push_str(&format!(" token-quota=\"{q}\" token-quota-period=\"Daily\""));
                }
                out.push_str(" estimate-prompt-tokens=\"false\" />");
            }
            Item::Rate { calls, renewal } => out.push_str(&format!(
                "<rate-limit-by-key calls=\"{calls}\" renewal-period=\"{renewal}\" counter-key=\"@(context.Subscription.Id)\" />"
            )),
            Item::Other => out.push_str("<set-header name=\"x-sub\" exists-action=\"override\"><value>@(context.Subscription?.Id ?? \"none\")</value></set-header>"),
            Item::Comment(true) => out.push_str("<!-- <llm-token-limit counter-key=\"x\" tokens-per-minute=\"1\" /> -->"),
            Item::Comment(false) => out.push_str("<!-- note -->"),
            Item::Choose { whens, otherwise } => {
                out.push_str(&format!("<choose>{}", s.newline));
                let ind1 = if s.newline.is_empty() { String::new() } else { s.unit.repeat(depth + 1) };
                for (c, body) in whens {
                    out.push_str(&format!("{ind1}<when {}>{}", render_cond(c, s), s.newline));
                    render_items(body, s, depth + 2, out);
                    out.push_str(&format!("{ind1}</when>{}", s.newline));
                }
                if let Some(body) = otherwise {
                    out.push_str(&format!("{ind1}<otherwise>{}", s.newline));
                    render_items(body, s, depth + 2, out);
                    out.push_str(&format!("{ind1}</otherwise>{}", s.newline));
                }
                out.push_str(&format!("{ind}</choose>"));
            }
        }
        out.push_str(s.newline);
    }
}

fn render(items: &[Item], s: &Style) -> String {
    let nl = s.newline;
    let u = if nl.is_empty() { "" } else { s.unit };
    let mut out = format!("<policies>{nl}{u}<inbound>{nl}{u}{u}<base />{nl}");
    render_items(items, s, 2, &mut out);
    out.push_str(&format!(
        "{u}</inbound>{nl}{u}<backend>{nl}{u}{u}<forward-request />{nl}{u}</backend>{nl}</policies>{nl}"
    ));
    out
}

fn change() -> impl Strategy<Value = LimitChange> {
    let n = || prop::option::of(1u64..1_000_000);
    (
        n(),
        n(),
        prop::option::weighted(0.3, 1u64..100_000_000),
        prop::sample::select(vec![QuotaPeriod::Hourly, QuotaPeriod::Monthly]),
    )
        .prop_filter("something to change", |(t, r, q, _)| t.is_some() || r.is_some() || q.is_some())
        .prop_map(|(tpm, rpm, token_quota, p)| LimitChange {
            tpm,
            rpm,
            token_quota,
            token_quota_period: token_quota.map(|_| p),
        })
}

fn snapshot(text: &str, nv: &dyn Fn(&str) -> Option<String>) -> Vec<String> {
    let doc = PolicyDocument::parse(text).unwrap();
    let a = Analysis::of(&doc);
    subscriptions()
        .iter()
        .map(|s| {
            let e = a.effective_limits(&common::api(), s, nv);
            format!(
                "{}/{}/{} {}",
                e.tpm.short(),
                e.rpm.short(),
                e.token_quota.short(),
                e.token_quota_period.unwrap_or_default()
            )
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn generated_policies_parse_with_exact_spans(items in prop::collection::vec(item(), 0..6), s in style()) {
        let text = render(&items, &s);
        let doc = PolicyDocument::parse(&text).unwrap();
        for e in doc.elements() {
            prop_assert_eq!(&text[e.name_span.range()], e.name.as_str());
            prop_assert_eq!(text.as_bytes()[e.span.start], b'<');
            for a in &e.attributes {
                prop_assert_eq!(&text[a.value_span.range()], a.raw.as_str());
                prop_assert_eq!(text.as_bytes()[a.value_span.end] as char, a.quote);
            }
        }
        // Comments are never limits.
        let limits = Analysis::of(&doc).limits.len();
        prop_assert_eq!(limits, text.matches("<llm-token-limit").count() + text.matches("<rate-limit-by-key").count() - text.matches("<!-- <llm-token-limit").count());
    }

    #[test]
    fn edits_keep_the_invariants(
        items in prop::collection::vec(item(), 0..6),
        s in style(),
        target in 0..SUBS,
        change in change(),
    ) {
        let text = render(&items, &s);
        let subs = subscriptions();
        let sub = &subs[target];
        let ctx = EditContext { scope: common::api(), subscriptions: &subs, named_values: &named_values, named_value_users_elsewhere: &aigw_policy_xml::not_used_elsewhere };
        let out = match set_limit_for_subscription(&text, sub, &change, &ctx) {
            Ok(out) => out,
            Err(EditError::Undeterminable { .. }) => return Ok(()),
            Err(e) => return Err(TestCaseError::fail(format!("{e}\n{text}"))),
        };
        let new_text = out.text().unwrap_or(&text).to_string();
        let updates = out.named_value_updates();
        let nv2 = |n: &str| updates.iter().find(|u| u.name == n).map(|u| u.new.clone()).or_else(|| named_values(n));

        // 1. The result re-parses.
        let new_doc = PolicyDocument::parse(&new_text).map_err(|e| TestCaseError::fail(format!("{e}\n{new_text}")))?;

        // 2. Nobody else changes; the target gets the requested values (unless a stricter limit
        //    also applies, which must then be said).
        let before = snapshot(&text, &named_values);
        let after = snapshot(&new_text, &nv2);
        for i in 0..SUBS {
            if i != target {
                prop_assert_eq!(&before[i], &after[i], "subscription {} changed\n--- before\n{}\n--- after\n{}", subs[i].id, text, new_text);
            }
        }
        let e = effective_limits(&new_doc, common::api(), sub, &nv2);
        for (requested, got, field) in [(change.tpm, &e.tpm, LimitField::Tpm), (change.rpm, &e.rpm, LimitField::Rpm), (change.token_quota, &e.token_quota, LimitField::TokenQuota)] {
            if let Some(v) = requested {
                let c = out.changes().iter().find(|c| c.field == field).unwrap();
                if got.value() != Some(v) {
                    match got {
                        EffectiveLimit::Limited { value, .. } => {
                            prop_assert!(*value < v, "{:?}: {:?} instead of {}\n{}", field, got, v, new_text);
                            prop_assert!(c.notes.iter().any(|n| n.contains("another limit still applies")), "{:?}", c);
                        }
                        EffectiveLimit::Unknown { .. } => {
                            prop_assert!(c.notes.iter().any(|n| n.contains("depends on a condition")), "{:?}", c);
                        }
                        EffectiveLimit::Unlimited { .. } => prop_assert!(false, "{:?} unlimited after setting it\n{}", field, new_text),
                    }
                }
            }
        }
        if change.token_quota.is_some() && e.token_quota.value() == change.token_quota {
            prop_assert_eq!(e.token_quota_period.as_deref(), change.token_quota_period.map(|p| p.as_str()));
        }

        // 3. Only intended bytes change: a single-number edit is either a pure insertion or
        //    confined to one limit element of the original.
        let (w, _) = common::changed_window(&text, &new_text);
        let single = [change.tpm.is_some(), change.rpm.is_some(), change.token_quota.is_some()].iter().filter(|b| **b).count() == 1;
        if single && !w.is_empty() {
            let doc = PolicyDocument::parse(&text).unwrap();
            let a = Analysis::of(&doc);
            prop_assert!(a.limits.iter().any(|l| l.element.span.contains(w)), "changed {:?} outside any limit element\n{}\n---\n{}", &text[w.range()], text, new_text);
        }
        for c in ["<!-- note -->", "<!-- <llm-token-limit counter-key=\"x\" tokens-per-minute=\"1\" /> -->"] {
            prop_assert!(new_text.matches(c).count() >= text.matches(c).count());
        }
        // Line ends: a CRLF document gains no bare LF.
        if s.newline == "\r\n" {
            prop_assert!(!new_text.replace("\r\n", "").contains('\n'));
        }

        // 4. Applying the same change again changes nothing.
        let ctx2 = EditContext { scope: common::api(), subscriptions: &subs, named_values: &nv2, named_value_users_elsewhere: &aigw_policy_xml::not_used_elsewhere };
        let all_reached = out
            .changes()
            .iter()
            .all(|c| !c.notes.iter().any(|n| n.contains("another limit still applies") || n.contains("depends on a condition")));
        if all_reached {
            let again = set_limit_for_subscription(&new_text, sub, &change, &ctx2).map_err(|e| TestCaseError::fail(format!("{e}")))?;
            prop_assert!(matches!(again, EditOutcome::Unchanged { .. }), "{:?}\n{}", again, new_text);
        }
    }
}
