//! The Log Analytics query API's JSON bodies: results and errors.
//!
//! Invariants:
//! - A result is `{"tables":[{"name":"PrimaryResult","columns":[{"name","type"}],"rows":[[...]]}]}`
//!   with one row array per row, values in column order. `long`/`int`/`real` are JSON numbers
//!   (non-finite reals as the strings `"NaN"`, `"Infinity"`, `"-Infinity"`), `bool` JSON
//!   booleans, `datetime` ISO-8601 UTC strings ending in `Z` (fraction only when non-zero),
//!   `timespan` `[d.]hh:mm:ss[.fffffff]` strings, `dynamic` JSON *text* (as Log Analytics sends
//!   it), strings as strings; nulls are JSON `null` (an empty `guid` too).
//! - An error is the OneAPI shape Log Analytics uses for HTTP 400: a generic outer error
//!   (`BadArgumentError`), a category (`SyntaxError`/`SemanticError`), and an innermost error
//!   with a specific code, the message, and `line`/`pos`/`token` when the error has a position
//!   (`line` 1-based, `pos` the 0-based column on that line, as Azure reports them).

use serde_json::{Map, Value as Json, json};

use crate::error::{ErrorKind, KqlError};
use crate::table::{Column, ColumnData, NULL_I64, Table};
use crate::value::{ColumnType, DateTime, Timespan};

/// The outer message Log Analytics returns for every 400 on a query.
pub const BAD_ARGUMENT_MESSAGE: &str = "The request had some invalid properties";

fn real_json(x: f64) -> Json {
    match serde_json::Number::from_f64(x) {
        Some(n) => Json::Number(n),
        None if x.is_nan() => Json::String("NaN".into()),
        None if x > 0.0 => Json::String("Infinity".into()),
        None => Json::String("-Infinity".into()),
    }
}

/// The JSON cell for row `i` of `c`.
fn cell(c: &Column, i: usize) -> Json {
    match &c.data {
        ColumnData::Bool(v) => v[i].map_or(Json::Null, Json::Bool),
        ColumnData::I64(v) => {
            let x = v[i];
            if x == NULL_I64 {
                return Json::Null;
            }
            match c.ty() {
                ColumnType::DateTime => DateTime::from_ticks(x).map_or(Json::Null, |d| Json::String(d.to_string())),
                ColumnType::Timespan => Json::String(Timespan(x).to_string()),
                _ => Json::from(x),
            }
        }
        ColumnData::F64(v) => v[i].map_or(Json::Null, real_json),
        ColumnData::Str { dict, codes } => {
            let s = dict.get(codes[i]);
            if c.ty() == ColumnType::Guid && s.is_empty() { Json::Null } else { Json::String(s.to_string()) }
        }
        ColumnData::Dyn(v) => v[i].as_ref().map_or(Json::Null, |j| Json::String(j.to_string())),
    }
}

impl Table {
    /// This table as one entry of the response's `tables` array.
    pub fn to_table_json(&self) -> Json {
        let columns: Vec<Json> =
            self.schema().columns().iter().map(|c| json!({"name": c.name, "type": c.ty.name()})).collect();
        let cols: Vec<&Column> = (0..self.schema().len()).map(|k| self.column(k)).collect();
        let rows: Vec<Json> = (0..self.len()).map(|i| Json::Array(cols.iter().map(|c| cell(c, i)).collect())).collect();
        json!({"name": self.name(), "columns": columns, "rows": rows})
    }

    /// The whole `200 OK` body of the query API with this table as the primary result.
    pub fn to_response_json(&self) -> Json {
        json!({"tables": [self.to_table_json()]})
    }
}

impl KqlError {
    /// The `400 Bad Request` body of the query API for this error.
    pub fn to_response_json(&self) -> Json {
        let (category, category_message, code) = match self.kind() {
            ErrorKind::Syntax | ErrorKind::Unsupported => {
                ("SyntaxError", "A recognition error occurred in the query.", "SYN0002")
            }
            ErrorKind::UnresolvedName => ("SemanticError", "A semantic error occurred.", "SEM0100"),
            ErrorKind::Semantic => ("SemanticError", "A semantic error occurred.", "SEM0001"),
            ErrorKind::InvalidArgument => {
                return json!({"error": {
                    "message": BAD_ARGUMENT_MESSAGE,
                    "code": "BadArgumentError",
                    "innererror": {"code": "InvalidArgument", "message": self.message()},
                }});
            }
        };
        let mut inner = Map::new();
        inner.insert("code".into(), code.into());
        inner.insert("message".into(), self.message().into());
        if let Some(p) = self.position() {
            inner.insert("line".into(), p.line.into());
            inner.insert("pos".into(), (p.column - 1).into());
            inner.insert("token".into(), self.token().unwrap_or("").into());
        }
        json!({"error": {
            "message": BAD_ARGUMENT_MESSAGE,
            "code": "BadArgumentError",
            "innererror": {
                "code": category,
                "message": category_message,
                "innererror": Json::Object(inner),
            },
        }})
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::table::Schema;
    use crate::value::Value;

    #[test]
    fn cells_are_shaped_like_log_analytics() {
        let mut t = Table::new(
            "PrimaryResult",
            Schema::from_pairs(&[
                ("d", ColumnType::DateTime),
                ("n", ColumnType::Long),
                ("r", ColumnType::Real),
                ("s", ColumnType::Timespan),
                ("j", ColumnType::Dynamic),
                ("g", ColumnType::Guid),
                ("b", ColumnType::Bool),
            ]),
        );
        t.push_row([
            Value::DateTime(DateTime::parse("2026-11-24T10:00:00Z").unwrap()),
            Value::Long(429),
            Value::Real(f64::NAN),
            Value::Timespan(Timespan::from_minutes(90)),
            Value::dynamic(json!({"a": [1]})),
            Value::string(""),
            Value::Null,
        ])
        .unwrap();
        assert_eq!(
            t.to_response_json(),
            json!({"tables": [{
                "name": "PrimaryResult",
                "columns": [
                    {"name": "d", "type": "datetime"}, {"name": "n", "type": "long"},
                    {"name": "r", "type": "real"}, {"name": "s", "type": "timespan"},
                    {"name": "j", "type": "dynamic"}, {"name": "g", "type": "guid"},
                    {"name": "b", "type": "bool"}
                ],
                "rows": [["2026-11-24T10:00:00Z", 429, "NaN", "01:30:00", "{\"a\":[1]}", null, null]]
            }]})
        );
    }
}
