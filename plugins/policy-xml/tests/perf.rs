//! Benchmark for `list_subscriptions`' share of the work: effective limits of 10,000
//! subscriptions under one analysed document. Ignored by default (timing on shared CI cores is
//! noisy); run with
//! `cargo test --release --manifest-path plugins/Cargo.toml -p aigw-policy-xml --test perf -- --ignored --nocapture`.
//! Reference: about 30 ms natively on the 2-core build machine.

mod common;
use aigw_policy_xml::{Analysis, PolicyDocument, SubscriptionFacts};
use common::*;

#[test]
#[ignore]
fn effective_limits_of_10000_subscriptions() {
    let doc = PolicyDocument::parse(SANDBOX).unwrap();
    let subs: Vec<_> = (0..10_000)
        .map(|i| match i % 3 {
            0 => SubscriptionFacts::all_apis(&format!("s{i}")),
            _ => SubscriptionFacts::in_product(&format!("s{i}"), "aoai"),
        })
        .collect();
    let started = std::time::Instant::now();
    let analysis = Analysis::of(&doc);
    let limited = subs
        .iter()
        .filter(|s| analysis.effective_limits(&api(), s, &sandbox_named_values).tpm.value().is_some())
        .count();
    let elapsed = started.elapsed();
    eprintln!("10,000 subscriptions: {elapsed:?}");
    assert_eq!(limited, 6666);
    assert!(elapsed.as_millis() < 1000, "{elapsed:?}");
}
