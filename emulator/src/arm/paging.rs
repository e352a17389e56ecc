//! Collection responses: `$filter`, `$top`, `$skip`, `count` and an absolute `nextLink`.
//!
//! Pages hold 100 items by default; `$top` sets the page size (1–100; larger values are
//! clamped to 100, the maximum page size APIM serves). `count` is the number of items that
//! match the filter, on every page. `nextLink` is built from the request's `Host` header and
//! path and keeps every query parameter (`api-version`, `$filter`, `$top`, ...) with `$skip`
//! advanced; it is `""` on the last page, as in Azure's examples. Items are in the store's order (case-insensitive
//! name order), so `$skip` paging is stable while nothing is written.

use serde_json::{Value, json};

use super::ArmRequest;
use super::envelope::{ArmError, ArmResponse};
use super::filter::{self, FieldSpec, FieldValue, Filter};

/// The default and maximum page size.
pub const PAGE_SIZE: usize = 100;

/// Page parameters of one request.
#[derive(Debug, Clone, Copy)]
pub struct Page {
    pub top: usize,
    pub skip: usize,
    top_given: bool,
}

/// Reads `$top` and `$skip`.
pub fn page_params(req: &ArmRequest) -> Result<Page, ArmError> {
    let top = match req.query("$top") {
        None => None,
        Some(t) => match t.trim().parse::<i64>() {
            Ok(n) if n >= 1 => Some((n as usize).min(PAGE_SIZE)),
            _ => {
                return Err(ArmError::field(
                    "$top",
                    format!("'$top' must be an integer greater than or equal to 1; it is '{t}'."),
                ));
            }
        },
    };
    let skip = match req.query("$skip") {
        None => 0,
        Some(s) => match s.trim().parse::<i64>() {
            Ok(n) if n >= 0 => n as usize,
            _ => {
                return Err(ArmError::field(
                    "$skip",
                    format!("'$skip' must be an integer greater than or equal to 0; it is '{s}'."),
                ));
            }
        },
    };
    Ok(Page { top: top.unwrap_or(PAGE_SIZE), skip, top_given: top.is_some() })
}

/// Parses `$filter` against `fields` (an empty list means the collection takes no filter).
pub fn filter_param(req: &ArmRequest, fields: &[FieldSpec]) -> Result<Option<Filter>, ArmError> {
    let Some(text) = req.query("$filter").filter(|t| !t.trim().is_empty()) else {
        return Ok(None);
    };
    if fields.is_empty() {
        return Err(ArmError::field("$filter", "This collection does not support '$filter'."));
    }
    filter::parse(text, fields)
        .map(Some)
        .map_err(|why| ArmError::field("$filter", format!("Invalid $filter '{text}': {why}.")))
}

/// Lists `items`: filters with `fields`/`field_of`, pages, renders the page with `render`.
pub fn list<'a, T: 'a>(
    req: &ArmRequest,
    items: impl Iterator<Item = &'a T>,
    fields: &[FieldSpec],
    field_of: impl Fn(&T, &str) -> FieldValue,
    render: impl Fn(&T) -> Value,
) -> Result<ArmResponse, ArmError> {
    let page = page_params(req)?;
    let filter = filter_param(req, fields)?;
    let mut count = 0usize;
    let mut value = Vec::with_capacity(page.top.min(PAGE_SIZE));
    for item in items {
        if let Some(f) = &filter
            && !f.eval(&|name| field_of(item, name))
        {
            continue;
        }
        if count >= page.skip && count < page.skip + page.top {
            value.push(render(item));
        }
        count += 1;
    }
    let mut body = json!({ "value": value, "count": count });
    // Azure's collections end with `"nextLink": ""` (ApiManagementListSubscriptions.json), so
    // clients must treat an empty link as the end; the emulator sends it the same way.
    body["nextLink"] =
        if page.skip + page.top < count { json!(next_link(req, page.skip + page.top, page)) } else { json!("") };
    Ok(ArmResponse::ok(body))
}

/// A single-page collection (policies): `value`, `count` and an empty `nextLink`, as Azure's
/// `ApiManagementListPolicies.json` shows.
pub fn single_page(req: &ArmRequest, value: Vec<Value>) -> Result<ArmResponse, ArmError> {
    filter_param(req, &[])?;
    let count = value.len();
    Ok(ArmResponse::ok(json!({ "value": value, "count": count, "nextLink": "" })))
}

fn next_link(req: &ArmRequest, next_skip: usize, page: Page) -> String {
    use crate::util::percent_encode;
    let mut parts: Vec<String> = req
        .query_pairs()
        .iter()
        .filter(|(k, _)| !k.eq_ignore_ascii_case("$skip") && !k.eq_ignore_ascii_case("$top"))
        .map(|(k, v)| format!("{}={}", percent_encode(k), percent_encode(v)))
        .collect();
    if page.top_given {
        parts.push(format!("%24top={}", page.top));
    }
    parts.push(format!("%24skip={next_skip}"));
    format!("{}{}?{}", req.base_url(), req.path, parts.join("&"))
}
