//! The KQL subset the emulator's Log Analytics endpoint (`POST /v1/workspaces/{id}/query`)
//! answers: a tokenizer and recursive-descent parser with byte positions, a columnar evaluator,
//! the table model and the log-table schemas, and the query API's response and error bodies.
//!
//! ```
//! use aigw_kql::{run, schemas, DateTime, Table, Value};
//!
//! let mut logs = Table::builder(schemas::GATEWAY_LOGS, schemas::gateway_logs());
//! let now = DateTime::parse("2026-11-24T10:00:00Z").unwrap();
//! for (sub, code) in [("team-a", 200), ("team-a", 429), ("team-b", 429)] {
//!     logs.push_named([
//!         ("TimeGenerated", Value::DateTime(now)),
//!         ("ApimSubscriptionId", Value::from(sub)),
//!         ("ResponseCode", Value::from(code)),
//!     ])
//!     .unwrap();
//! }
//! let catalog = vec![logs.build()];
//! let result = run(
//!     "ApiManagementGatewayLogs | where ResponseCode == 429 | summarize n = count() by ApimSubscriptionId",
//!     &catalog,
//!     now,
//!     None,
//! )
//! .unwrap();
//! assert_eq!(result.len(), 2);
//! let body = result.to_response_json(); // {"tables":[{"name":"PrimaryResult",...}]}
//! # assert_eq!(body["tables"][0]["rows"][0][1], 1);
//!
//! let err = run("ApiManagementGatewayLogs | mv-expand Errors", &catalog, now, None).unwrap_err();
//! assert_eq!(err.position().unwrap().column, 28);
//! let body = err.to_response_json(); // HTTP 400, {"error":{"code":"BadArgumentError",...}}
//! # assert_eq!(body["error"]["innererror"]["innererror"]["token"], "mv-expand");
//! ```
//!
//! Invariants of the crate as a whole:
//! - `parse` rejects everything outside the subset (see `README.md`) with a positioned error;
//!   `execute` never sees unknown syntax.
//! - Results are deterministic for a given catalog, query, `now` and timespan.
//! - Nothing here reads the system clock or does I/O.

pub mod ast;
pub mod error;
mod eval;
pub mod lexer;
pub mod parser;
pub mod response;
pub mod schemas;
pub mod table;
pub mod value;

pub use ast::Query;
pub use error::{ErrorKind, KqlError, Position, Span};
pub use eval::PRIMARY_RESULT;
pub use table::{Catalog, Column, ColumnDef, DataError, Dict, Schema, Table, TableBuilder};
pub use value::{ColumnType, DateTime, Timespan, Value};

/// Parses a query (`let` statements, then one tabular expression).
pub fn parse(query: &str) -> Result<Query, KqlError> {
    parser::parse(query)
}

/// Lets unsized catalogs (`[Table]`) be used behind `&dyn Catalog`.
struct CatalogRef<'a, C: ?Sized>(&'a C);

impl<C: Catalog + ?Sized> Catalog for CatalogRef<'_, C> {
    fn table(&self, name: &str) -> Option<&Table> {
        self.0.table(name)
    }
}

/// Runs a parsed query. `now` is what `now()` and `ago()` are relative to.
pub fn execute<C: Catalog + ?Sized>(query: &Query, catalog: &C, now: DateTime) -> Result<Table, KqlError> {
    eval::execute(query, &CatalogRef(catalog), now, None)
}

/// Runs a parsed query with the request's time range applied to every table reference, as
/// the query API's `timespan` does (rows with the table's time column inside `[start, end]`).
pub fn execute_with_timespan<C: Catalog + ?Sized>(
    query: &Query,
    catalog: &C,
    now: DateTime,
    timespan: Option<(DateTime, DateTime)>,
) -> Result<Table, KqlError> {
    eval::execute(query, &CatalogRef(catalog), now, timespan)
}

/// Parses and runs `query`; the result table is named `PrimaryResult`.
pub fn run<C: Catalog + ?Sized>(
    query: &str,
    catalog: &C,
    now: DateTime,
    timespan: Option<(DateTime, DateTime)>,
) -> Result<Table, KqlError> {
    let q = parse(query)?;
    execute_with_timespan(&q, catalog, now, timespan)
}

/// Parses the query API's `timespan` parameter: an ISO-8601 duration ending at `now`
/// (`PT1H`, `P7D`), or an interval `start/end`, `start/duration` or `duration/end`.
pub fn parse_timespan_param(s: &str, now: DateTime) -> Result<(DateTime, DateTime), KqlError> {
    let bad = || {
        KqlError::invalid_argument(format!(
            "Invalid timespan '{s}': expected an ISO 8601 duration (PT1H) or interval (start/end)"
        ))
    };
    let dur = |p: &str| Timespan::parse_iso8601(p).filter(|t| t.ticks() >= 0);
    let (start, end) = match s.split_once('/') {
        None => {
            let d = dur(s).ok_or_else(bad)?;
            (now.checked_add(Timespan(-d.ticks())).ok_or_else(bad)?, now)
        }
        Some((a, b)) => match (DateTime::parse(a), DateTime::parse(b)) {
            (Some(x), Some(y)) => (x, y),
            (Some(x), None) => {
                let d = dur(b).ok_or_else(bad)?;
                (x, x.checked_add(d).ok_or_else(bad)?)
            }
            (None, Some(y)) => {
                let d = dur(a).ok_or_else(bad)?;
                (y.checked_add(Timespan(-d.ticks())).ok_or_else(bad)?, y)
            }
            (None, None) => return Err(bad()),
        },
    };
    if start > end {
        return Err(bad());
    }
    Ok((start, end))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shared_types_cross_threads() {
        fn send_sync<T: Send + Sync>() {}
        send_sync::<Table>();
        send_sync::<Query>();
        send_sync::<KqlError>();
        send_sync::<TableBuilder>();
    }

    #[test]
    fn timespan_parameter_forms() {
        let now = DateTime::parse("2026-11-24T10:00:00Z").unwrap();
        let at = |s| DateTime::parse(s).unwrap();
        assert_eq!(parse_timespan_param("PT1H", now).unwrap(), (at("2026-11-24T09:00:00Z"), now));
        assert_eq!(parse_timespan_param("P1D", now).unwrap(), (at("2026-11-23T10:00:00Z"), now));
        assert_eq!(
            parse_timespan_param("2026-11-20T00:00:00Z/2026-11-21T00:00:00Z", now).unwrap(),
            (at("2026-11-20T00:00:00Z"), at("2026-11-21T00:00:00Z"))
        );
        assert_eq!(
            parse_timespan_param("2026-11-20T00:00:00Z/PT2H", now).unwrap(),
            (at("2026-11-20T00:00:00Z"), at("2026-11-20T02:00:00Z"))
        );
        assert_eq!(
            parse_timespan_param("PT2H/2026-11-20T02:00:00Z", now).unwrap(),
            (at("2026-11-20T00:00:00Z"), at("2026-11-20T02:00:00Z"))
        );
        for bad in ["", "1h", "P1M", "2026-11-21T00:00:00Z/2026-11-20T00:00:00Z", "x/y"] {
            let e = parse_timespan_param(bad, now).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::InvalidArgument, "{bad}");
            assert!(e.position().is_none());
        }
    }
}
