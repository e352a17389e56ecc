//! `list_subscriptions`: subscriptions with their effective limits, paged with a cursor.
//!
//! A call costs the same on a tenant of 6 or 10,000 subscriptions: it reads only its window of
//! the subscription collection (`$top`/`$skip`, the window's pages concurrently; `count` gives
//! the total), in the same batch as the global policy, named values, APIs and products; then one
//! batch for the products of the window's subscriptions; then one for the API policies they
//! reach. So: 3 batches, `ceil(limit/100) + 4 + 2·products + APIs` GETs. The cursor is the offset
//! into ARM's (stable) order. If ARM gives no `count`, the whole collection is listed instead.

use std::collections::BTreeMap;

use aigw_pdk::Error;
use aigw_policy_xml::Condition;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::arm::{self, Arm, PAGE, Page, page_path, seg};
use crate::limits::{Lim, Src};
use crate::model::{NamedValues, Scope, Subscription};
use crate::tenant::{ApiLimits, Tenant, limits_of};
use crate::util::{cursor, offset, thousands};

/// Default page size.
pub const DEFAULT_LIMIT: usize = 50;
/// Largest page size (keeps the answer under the host's default 1 MiB output cap).
pub const MAX_LIMIT: usize = 1000;
/// Rows shown in the text summary.
const TEXT_ROWS: usize = 12;
/// Bytes of rows and sources one answer may carry: the host caps a plugin's answer (1 MiB by
/// default), so a page whose rows are unusually large ends early and the cursor continues it.
const BUDGET: usize = 800 * 1024;

/// The tool's arguments.
#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
pub struct Args {
    /// Only subscriptions of this product.
    pub product_id: Option<String>,
    /// Only subscriptions in this state.
    pub state: Option<String>,
    /// Page size.
    pub limit: Option<usize>,
    /// Where to continue.
    pub cursor: Option<String>,
}

/// Runs the tool: (text, structured).
pub fn run(arm: &dyn Arm, args: &Args) -> Result<(String, Value), Error> {
    let product = args.product_id.as_deref();
    let state = args.state.as_deref();
    let limit = args.limit.unwrap_or(DEFAULT_LIMIT).clamp(1, MAX_LIMIT);
    let start = offset(args.cursor.as_deref(), product, state)?;
    let collection = match product {
        Some(p) => format!("products/{}/subscriptions", seg(p)),
        None => "subscriptions".to_string(),
    };
    let filter = state.map_or(String::new(), |s| format!("&$filter=state%20eq%20%27{}%27", arm::query_value(s)));

    // Batch 1: the window's pages, the tenant basics, and the filtered product if any.
    let windows: Vec<String> = (0..limit.div_ceil(PAGE))
        .map(|i| page_path(&collection, PAGE.min(limit - i * PAGE), start + i * PAGE, &filter))
        .collect();
    let mut paths = windows.clone();
    paths.extend(Tenant::first_paths());
    if let Some(p) = product {
        paths.extend(Tenant::product_paths(p));
    }
    let mut answers = arm.get_many(&paths);
    let product_answers = product.map(|_| {
        let policy = answers.pop().expect("asked");
        let apis = answers.pop().expect("asked");
        (apis, policy)
    });
    let first = answers.split_off(windows.len());
    let mut tenant = Tenant::from_first(arm, first)?;

    let mut total = None;
    let mut rows: Vec<Subscription> = Vec::new();
    let mut whole = false;
    for (i, (path, answer)) in windows.iter().zip(answers).enumerate() {
        let answer = match answer {
            Err(e) if arm::is_not_found(&e) && product.is_some() => {
                return Err(Error::NotFound(format!("product '{}' not found", product.unwrap_or_default())));
            }
            other => other?,
        };
        let page: Page<Subscription> = arm::parse(path, &answer.body)?;
        if i == 0 {
            total = page.count;
            // Without `count` the total is only known from a window that holds everything.
            if page.count.is_none() && (page.has_more() || start > 0) {
                whole = true;
                break;
            }
        }
        rows.extend(page.value);
    }
    let mut notes = Vec::new();
    if whole {
        // No `count`: list everything (following nextLink) and take the window.
        let all: Vec<Subscription> = arm
            .list(&format!("{collection}{}", filter.replacen('&', "?", 1)))?
            .iter()
            .map(|s| arm::parse(&collection, s))
            .collect::<Result<_, _>>()?;
        total = Some(all.len() as u64);
        rows = all.into_iter().skip(start).take(limit).collect();
        notes.push("ARM gave no count: the whole collection was listed to page it".to_string());
    }
    if let Some(s) = state {
        rows.retain(|r| r.state.as_deref().is_some_and(|x| x.eq_ignore_ascii_case(s)));
    }
    let total = total.unwrap_or(rows.len() as u64) as usize;

    // Batches 2 and 3: the products of these subscriptions, then the APIs they reach.
    if let (Some(p), Some((apis, policy))) = (product, product_answers) {
        tenant.ingest_product(arm, p, apis, policy)?;
    }
    tenant.read_for(arm, &rows)?;

    let analyses = tenant.docs.analyse();
    let mut sources = Sources::default();
    let mut out_rows = Vec::with_capacity(rows.len());
    let mut text_rows = Vec::new();
    let mut unlimited = Vec::new();
    let mut used = 0;
    for sub in &rows {
        let checkpoint = sources.list.len();
        let mut no_tpm = None;
        let limits = limits_of(&tenant, &analyses, sub);
        let mut row = json!({
            "id": sub.id,
            "display_name": sub.display_name,
            "state": sub.state,
            "scope": sub.scope.kind(),
            "owner": sub.owner,
            "created": sub.created,
        });
        match &sub.scope {
            Scope::Product(p) => row["product"] = json!(p),
            Scope::Api(a) => row["api"] = json!(a),
            _ => {}
        }
        match &limits {
            Ok(groups) => {
                row["limits"] =
                    Value::Array(groups.iter().map(|g| group_json(g, &mut sources, &tenant.named_values)).collect());
                if let Some(g) = groups.first()
                    && let Lim::Unlimited { reason } = &g.limits.tpm
                {
                    no_tpm = Some(format!("{}: {reason}", sub.id));
                }
            }
            Err(why) => {
                row["limits"] = json!([]);
                row["limits_unavailable"] = json!(why);
            }
        }
        let size =
            row.to_string().len() + sources.list[checkpoint..].iter().map(|s| s.to_string().len()).sum::<usize>();
        if used + size > BUDGET && !out_rows.is_empty() {
            sources.rollback(checkpoint);
            break;
        }
        used += size;
        unlimited.extend(no_tpm);
        if text_rows.len() < TEXT_ROWS {
            text_rows.push(text_row(sub, &limits, &tenant.named_values));
        }
        out_rows.push(row);
    }
    if out_rows.len() < rows.len() {
        notes.push(format!("the page ends after {} rows to stay under the answer size cap", out_rows.len()));
        rows.truncate(out_rows.len());
    }

    let end = start + rows.len();
    let next = (end < total && !rows.is_empty()).then(|| cursor(end, product, state));
    let mut text = match (rows.len(), total) {
        (0, 0) => format!("No subscriptions{}.", filter_label(product, state)),
        (0, t) => format!("{t} subscriptions{}; none from offset {start}.", filter_label(product, state)),
        (n, t) => format!(
            "{t} subscriptions{}; showing {}–{}:\nid | scope | state | TPM | RPM | token quota",
            filter_label(product, state),
            start + 1,
            start + n
        ),
    };
    for line in &text_rows {
        text.push('\n');
        text.push_str(line);
    }
    if rows.len() > text_rows.len() {
        text.push_str(&format!("\n… {} more rows in the structured result.", rows.len() - text_rows.len()));
    }
    if !unlimited.is_empty() {
        let shown: Vec<String> = unlimited.iter().take(3).cloned().collect();
        let more = unlimited.len().saturating_sub(3);
        text.push_str(&format!(
            "\nNo TPM limit: {}{}.",
            shown.join("; "),
            if more > 0 { format!("; and {more} more") } else { String::new() }
        ));
    }
    if let Some(c) = &next {
        text.push_str(&format!("\n{} more: pass cursor \"{c}\".", thousands((total - end) as u64)));
    }
    let structured = json!({
        "total": total,
        "offset": start,
        "returned": out_rows.len(),
        "next_cursor": next,
        "subscriptions": out_rows,
        "sources": sources.list,
        "notes": notes,
    });
    Ok((text, structured))
}

fn filter_label(product: Option<&str>, state: Option<&str>) -> String {
    match (product, state) {
        (None, None) => String::new(),
        (Some(p), None) => format!(" in product {p}"),
        (None, Some(s)) => format!(" ({s})"),
        (Some(p), Some(s)) => format!(" in product {p} ({s})"),
    }
}

/// The limit sources referenced by rows, each listed once.
#[derive(Default)]
pub struct Sources {
    ids: BTreeMap<(String, usize, String), String>,
    /// The listed sources.
    pub list: Vec<Value>,
}

impl Sources {
    /// Forgets the sources added after the first `len`.
    pub fn rollback(&mut self, len: usize) {
        self.list.truncate(len);
        self.ids.retain(|_, id| id[1..].parse::<usize>().is_ok_and(|n| n <= len));
    }

    /// The id (`s1`, `s2`, ...) of `src`, adding it when new.
    pub fn id(&mut self, src: &Src, nv: &NamedValues) -> String {
        let s = &src.source;
        let key = (format!("{:?}", src.doc), s.element_span.start, s.attribute.clone());
        if let Some(id) = self.ids.get(&key) {
            return id.clone();
        }
        let id = format!("s{}", self.list.len() + 1);
        let mut v = json!({
            "id": id,
            "policy": crate::limits::policy_path(&s.scope),
            "scope": s.scope.to_string(),
            "branch": s.branch,
            "element": s.element,
            "attribute": s.attribute,
            "value": s.raw_value,
        });
        if let Some(n) = &s.named_value {
            v["named_value"] = json!(n);
            if nv.get(n).is_some_and(|x| x.secret) {
                v["secret"] = json!(true);
            }
        }
        if let Some(only) = only_for(src, nv) {
            v["only_for"] = json!(only);
        }
        if let Some(note) = &s.note {
            v["note"] = json!(note);
        }
        self.ids.insert(key, id.clone());
        self.list.push(v);
        id
    }
}

/// The subscription a source's branch selects alone, if any (`None`: a shared branch).
pub fn only_for(src: &Src, nv: &NamedValues) -> Option<String> {
    let resolve = |n: &str| nv.value(n);
    src.source.path.iter().rev().find_map(|step| match step.recognise(&resolve) {
        Some(Ok(c @ Condition::AnyOf(_))) => match c.subscription_ids() {
            Some(ids) if ids.len() == 1 => Some(ids[0].to_string()),
            _ => None,
        },
        _ => None,
    })
}

fn lim_json(l: &Lim, sources: &mut Sources, nv: &NamedValues) -> Value {
    match l {
        Lim::Limited { value, period, source, also } => {
            let mut v = json!({"value": value, "source": sources.id(source, nv)});
            if let Some(p) = period {
                v["period"] = json!(p);
            }
            if !also.is_empty() {
                v["also"] = json!(also.iter().map(|s| sources.id(s, nv)).collect::<Vec<_>>());
            }
            v
        }
        Lim::Unlimited { reason } => json!({"unlimited": reason}),
        Lim::Unknown { reason, .. } => json!({"unknown": reason}),
    }
}

fn group_json(g: &ApiLimits, sources: &mut Sources, nv: &NamedValues) -> Value {
    let mut v = json!({
        "apis": g.apis,
        "tpm": lim_json(&g.limits.tpm, sources, nv),
        "rpm": lim_json(&g.limits.rpm, sources, nv),
        "token_quota": lim_json(&g.limits.quota, sources, nv),
    });
    if !g.limits.caveats.is_empty() {
        v["caveats"] = json!(g.limits.caveats);
    }
    v
}

/// One cell of the text table.
pub fn cell(l: &Lim, sub: &str, nv: &NamedValues, quota: bool) -> String {
    match l {
        Lim::Limited { value, period, source, .. } => {
            let mut s = thousands(*value);
            if let Some(p) = period {
                s.push_str(&format!("/{p}"));
            }
            if let Some(n) = &source.source.named_value {
                s.push_str(&format!(" ({{{{{n}}}}})"));
            } else if only_for(source, nv).as_deref() != Some(sub) {
                s.push_str(" (shared)");
            }
            s
        }
        Lim::Unlimited { .. } if quota => "–".into(),
        Lim::Unlimited { .. } => "unlimited".into(),
        Lim::Unknown { .. } => "unknown".into(),
    }
}

fn text_row(sub: &Subscription, limits: &Result<Vec<ApiLimits>, String>, nv: &NamedValues) -> String {
    let state = sub.state.as_deref().unwrap_or("?");
    let cells = match limits {
        Ok(groups) if groups.len() == 1 => {
            let l = &groups[0].limits;
            format!(
                "{} | {} | {}",
                cell(&l.tpm, &sub.id, nv, false),
                cell(&l.rpm, &sub.id, nv, false),
                cell(&l.quota, &sub.id, nv, true)
            )
        }
        Ok(_) => "varies by API | varies by API | varies by API".into(),
        Err(why) => format!("– | – | – ({why})"),
    };
    format!("{} | {} | {state} | {cells}", sub.id, sub.scope.label())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::*;

    fn call(arm: &FakeArm, args: Args) -> (String, Value) {
        run(arm, &args).unwrap()
    }

    fn row<'a>(v: &'a Value, id: &str) -> &'a Value {
        v["subscriptions"].as_array().unwrap().iter().find(|r| r["id"] == id).unwrap()
    }

    fn source<'a>(v: &'a Value, id: &Value) -> &'a Value {
        v["sources"].as_array().unwrap().iter().find(|s| &s["id"] == id).unwrap()
    }

    #[test]
    fn lists_the_sandbox_with_effective_limits_and_sources() {
        let arm = sandbox_arm();
        let (text, v) = call(&arm, Args::default());
        assert_eq!(v["total"], 6);
        assert_eq!(v["returned"], 6);
        assert_eq!(v["next_cursor"], Value::Null);
        let ids: Vec<&str> = v["subscriptions"].as_array().unwrap().iter().map(|r| r["id"].as_str().unwrap()).collect();
        assert_eq!(ids, ["data-science", "growth", "master", "prod-critical", "search", "support"]);

        let growth = row(&v, "growth");
        assert_eq!(growth["display_name"], "Growth team");
        assert_eq!((growth["scope"].as_str(), growth["product"].as_str()), (Some("product"), Some("aoai")));
        assert_eq!(growth["owner"], "priya-raman");
        assert_eq!(growth["created"], "2025-03-11T09:14:27.113Z");
        let l = &growth["limits"][0];
        assert_eq!(l["apis"], json!(["inference-api"]));
        assert_eq!(l["tpm"]["value"], 200_000);
        assert_eq!(l["rpm"]["value"], 1_200);
        assert_eq!(l["token_quota"], json!({"unlimited": "no policy sets a token quota"}));
        let s = source(&v, &l["tpm"]["source"]);
        assert_eq!(s["policy"], "apis/inference-api/policies/policy");
        assert_eq!(s["scope"], "API 'inference-api' policy");
        assert_eq!(s["element"], "llm-token-limit");
        assert_eq!(s["attribute"], "tokens-per-minute");
        assert_eq!(s["value"], "200000");
        assert_eq!(s["only_for"], "growth");
        assert!(s["branch"].as_str().unwrap().starts_with("choose[1]/when[1]"));

        let ds = &row(&v, "data-science")["limits"][0];
        assert_eq!((ds["tpm"]["value"].as_u64(), ds["rpm"]["value"].as_u64()), (Some(50_000), Some(300)));
        assert_eq!(source(&v, &ds["tpm"]["source"])["named_value"], "tpm-data-science");

        // search and support share one source: the product branch, not only for anyone.
        let search = &row(&v, "search")["limits"][0];
        let support = &row(&v, "support")["limits"][0];
        assert_eq!(search["tpm"], support["tpm"]);
        assert_eq!(search["tpm"]["value"], 100_000);
        assert_eq!(search["rpm"]["value"], 600);
        let shared = source(&v, &search["tpm"]["source"]);
        assert!(shared.get("only_for").is_none());
        assert!(shared["branch"].as_str().unwrap().contains("context.Product?.Id == \"aoai\""), "{shared}");

        let master = row(&v, "master");
        assert_eq!(master["scope"], "service");
        let reason = master["limits"][0]["tpm"]["unlimited"].as_str().unwrap();
        assert!(reason.contains("master"), "{reason}");

        // Keys never leave, even when the endpoint sends them.
        assert!(!v.to_string().contains("never-be-returned"));
        assert!(!text.contains("never-be-returned"));

        // 8 sources: TPM and RPM of growth, prod-critical, data-science and the shared branch, each once.
        assert_eq!(v["sources"].as_array().unwrap().len(), 8);
        assert_eq!(
            text,
            "6 subscriptions; showing 1–6:\n\
             id | scope | state | TPM | RPM | token quota\n\
             data-science | aoai | active | 50,000 ({{tpm-data-science}}) | 300 | –\n\
             growth | aoai | active | 200,000 | 1,200 | –\n\
             master | service | active | unlimited | unlimited | –\n\
             prod-critical | aoai | active | 400,000 | 2,400 | –\n\
             search | aoai | active | 100,000 (shared) | 600 (shared) | –\n\
             support | aoai | active | 100,000 (shared) | 600 (shared) | –\n\
             No TPM limit: master: the built-in master (all-access) subscription matches no branch that sets a TPM limit."
        );
    }

    #[test]
    fn reads_each_document_once_in_three_batches() {
        let arm = sandbox_arm();
        call(&arm, Args::default());
        let batches = arm.batches.borrow();
        assert_eq!(
            *batches,
            [
                vec![
                    "subscriptions?$top=50".to_string(),
                    "policies/policy?format=rawxml".into(),
                    "namedValues?$top=100".into(),
                    "apis?$top=100".into(),
                    "products?$top=100".into(),
                ],
                vec!["products/aoai/apis?$top=100".into(), "products/aoai/policies/policy?format=rawxml".into()],
                vec!["apis/inference-api/policies/policy?format=rawxml".into()],
            ]
        );
        assert!(arm.lists.borrow().is_empty());
    }

    #[test]
    fn product_and_state_filters() {
        let mut arm = sandbox_arm();
        arm.collections.get_mut("products/aoai/subscriptions").unwrap()[4]["properties"]["state"] = json!("suspended");
        let (text, v) =
            call(&arm, Args { product_id: Some("aoai".into()), state: Some("active".into()), ..Default::default() });
        assert_eq!(v["total"], 4);
        assert!(text.starts_with("4 subscriptions in product aoai (active); showing 1–4:"), "{text}");
        assert!(v["subscriptions"].as_array().unwrap().iter().all(|r| r["id"] != "support" && r["id"] != "master"));
        // The product's reads ride in the first batch; the API policy follows.
        let batches = arm.batches.borrow();
        assert_eq!(batches.len(), 2, "{batches:?}");
        assert_eq!(batches[0][0], "products/aoai/subscriptions?$top=50&$filter=state%20eq%20%27active%27");
        assert!(batches[0].contains(&"products/aoai/policies/policy?format=rawxml".to_string()));

        let err = run(&sandbox_arm(), &Args { product_id: Some("nope".into()), ..Default::default() }).unwrap_err();
        assert!(matches!(&err, Error::NotFound(m) if m == "product 'nope' not found"), "{err:?}");
    }

    /// 10,000 subscriptions: a page costs the same three batches; the pages of a big window are
    /// read concurrently; the cursor walks the whole tenant.
    #[test]
    fn pages_a_large_tenant_with_a_cursor() {
        let mut arm = sandbox_arm();
        let mut subs = Vec::new();
        for i in 0..10_000 {
            let scope = if i % 100 == 99 { "/apis".to_string() } else { "/products/aoai".to_string() };
            subs.push(subscription_item(&format!("team-{i:05}"), &scope, "active"));
        }
        arm.collections.insert("subscriptions".into(), subs);
        let (text, v) = call(&arm, Args { limit: Some(250), ..Default::default() });
        assert_eq!((v["total"].as_u64(), v["returned"].as_u64()), (Some(10_000), Some(250)));
        assert!(text.contains("… 238 more rows in the structured result."), "{text}");
        assert!(text.ends_with(&format!("\n9,750 more: pass cursor \"{}\".", cursor(250, None, None))), "{text}");
        {
            let batches = arm.batches.borrow();
            assert_eq!(batches.len(), 3);
            assert_eq!(
                batches[0][..3],
                ["subscriptions?$top=100", "subscriptions?$top=100&$skip=100", "subscriptions?$top=50&$skip=200"]
            );
        }
        let r = row(&v, "team-00000");
        assert_eq!(r["limits"][0]["tpm"]["value"], 100_000);
        let r = row(&v, "team-00099");
        assert_eq!(r["scope"], "all_apis");
        assert!(r["limits"][0]["tpm"]["unlimited"].as_str().unwrap().contains("all APIs"));
        assert!(text.contains("No TPM limit: team-00099: subscription 'team-00099' is scoped to all APIs"), "{text}");

        // Walk the tenant.
        let mut seen = 250;
        let mut next = v["next_cursor"].as_str().map(str::to_string);
        while let Some(c) = next {
            let (_, v) = call(&arm, Args { limit: Some(1000), cursor: Some(c), ..Default::default() });
            seen += v["returned"].as_u64().unwrap();
            next = v["next_cursor"].as_str().map(str::to_string);
        }
        assert_eq!(seen, 10_000);
    }

    #[test]
    fn a_page_of_large_rows_ends_under_the_size_cap_and_the_cursor_continues_it() {
        let mut arm = sandbox_arm();
        let subs: Vec<Value> = (0..1000)
            .map(|i| {
                let mut s = subscription_item(&format!("t{i:04}"), "/products/aoai", "active");
                s["properties"]["displayName"] = json!(format!("{i} {}", "x".repeat(1500)));
                s
            })
            .collect();
        arm.collections.insert("subscriptions".into(), subs);
        let (text, v) = call(&arm, Args { limit: Some(1000), ..Default::default() });
        let returned = v["returned"].as_u64().unwrap() as usize;
        assert!((400..1000).contains(&returned), "{returned}");
        assert!(v.to_string().len() < 1024 * 1024);
        assert_eq!(v["next_cursor"], json!(cursor(returned, None, None)));
        assert!(v["notes"][0].as_str().unwrap().contains("answer size cap"));
        assert!(text.contains(&format!("{} more: pass cursor", thousands((1000 - returned) as u64))), "{text}");
        let (_, v2) =
            call(&arm, Args { limit: Some(1000), cursor: Some(cursor(returned, None, None)), ..Default::default() });
        assert_eq!(v2["subscriptions"][0]["id"], json!(format!("t{returned:04}")));
        let mut seen = returned + v2["returned"].as_u64().unwrap() as usize;
        let mut next = v2["next_cursor"].as_str().map(str::to_string);
        while let Some(c) = next {
            let (_, v) = call(&arm, Args { limit: Some(1000), cursor: Some(c), ..Default::default() });
            seen += v["returned"].as_u64().unwrap() as usize;
            next = v["next_cursor"].as_str().map(str::to_string);
        }
        assert_eq!(seen, 1000);
        // Sources are listed once and only when referenced.
        assert_eq!(v["sources"].as_array().unwrap().len(), 2);
    }

    #[test]
    fn without_count_the_collection_is_listed_whole() {
        let mut arm = sandbox_arm();
        arm.with_count = false;
        let subs: Vec<Value> =
            (0..150).map(|i| subscription_item(&format!("t{i:03}"), "/products/aoai", "active")).collect();
        arm.collections.insert("subscriptions".into(), subs);
        let (_, v) = call(&arm, Args { limit: Some(20), cursor: Some(cursor(140, None, None)), ..Default::default() });
        assert_eq!((v["total"].as_u64(), v["returned"].as_u64()), (Some(150), Some(10)));
        assert_eq!(v["subscriptions"][0]["id"], "t140");
        assert_eq!(*arm.lists.borrow(), ["subscriptions"]);
        assert_eq!(v["next_cursor"], Value::Null);
    }
}
