//! Query execution: runs a parsed [`Query`] against a [`Catalog`].
//!
//! Invariants:
//! - Execution is columnar. An intermediate result is a [`Frame`]: columns shared with the
//!   source tables plus, per column, an optional row-index vector (`sel`). Filters, sorts, takes
//!   and joins only compose index vectors; a column is copied (gathered) only when an expression
//!   reads it or the final result is built.
//! - Types are decided from schemas, never from data, so a query over an empty table reports the
//!   same errors as over a full one.
//! - `now` is the caller's clock (the emulator's simulated time); nothing reads the system clock.
//! - The query API's `timespan` is applied to every table reference (including join
//!   subqueries and `let` bodies) on the table's time column, inclusive at both ends.
//! - Output row order is deterministic: operators without a defined KQL order (`summarize`,
//!   `distinct`, `join`) keep first-appearance / left-side order.

pub(crate) mod expr;
pub(crate) mod join;
pub(crate) mod keys;
pub(crate) mod ops;
pub(crate) mod summarize;

use std::collections::HashMap;
use std::sync::Arc;

use crate::ast::{ExprKind, LetValue, OpKind, Operator, Query, TabularExpr, TabularSource};
use crate::error::KqlError;
use crate::schemas::time_column;
use crate::table::{Catalog, Column, ColumnData, ColumnDef, NULL_I64, NULL_ROW, Schema, Table};
use crate::value::{ColumnType, DateTime, Value};

use expr::{Env, Vect};

/// The name of the result table in the response.
pub const PRIMARY_RESULT: &str = "PrimaryResult";

/// One column of a frame.
#[derive(Clone, Debug)]
pub(crate) struct FCol {
    pub name: String,
    pub data: Arc<Column>,
    /// Rows of `data` in frame order; `None` means all rows in order.
    pub sel: Option<Arc<[u32]>>,
}

impl FCol {
    pub fn ty(&self) -> ColumnType {
        self.data.ty()
    }

    /// The column's values in frame order.
    pub fn materialize(&self) -> Arc<Column> {
        match &self.sel {
            None => self.data.clone(),
            Some(s) => Arc::new(self.data.gather(s)),
        }
    }
}

/// An intermediate result.
#[derive(Clone, Debug)]
pub(crate) struct Frame {
    pub cols: Vec<FCol>,
    pub len: usize,
}

impl Frame {
    pub fn from_table(t: &Table) -> Frame {
        Frame {
            cols: t
                .schema()
                .columns()
                .iter()
                .enumerate()
                .map(|(i, c)| FCol { name: c.name.clone(), data: t.column_arc(i).clone(), sel: None })
                .collect(),
            len: t.len(),
        }
    }

    /// A frame of fully materialized columns.
    pub fn from_columns(cols: Vec<(String, Arc<Column>)>, len: usize) -> Frame {
        Frame {
            cols: cols
                .into_iter()
                .map(|(name, data)| {
                    debug_assert_eq!(data.len(), len);
                    FCol { name, data, sel: None }
                })
                .collect(),
            len,
        }
    }

    /// One row, no columns: the context scalar `let`s are evaluated in.
    pub fn unit() -> Frame {
        Frame { cols: Vec::new(), len: 1 }
    }

    pub fn find(&self, name: &str) -> Option<usize> {
        self.cols.iter().position(|c| c.name == name)
    }

    /// The rows at `idx` (`NULL_ROW` = an all-null row), in that order.
    pub fn select(&self, idx: &[u32]) -> Frame {
        let fresh: Arc<[u32]> = Arc::from(idx);
        // Columns sharing a selection share the composed one.
        let mut cache: Vec<(*const [u32], Arc<[u32]>)> = Vec::new();
        let cols = self
            .cols
            .iter()
            .map(|c| {
                let sel = match &c.sel {
                    None => fresh.clone(),
                    Some(old) => {
                        let key = Arc::as_ptr(old);
                        if let Some((_, s)) = cache.iter().find(|(k, _)| std::ptr::eq(*k, key)) {
                            s.clone()
                        } else {
                            let composed: Arc<[u32]> =
                                idx.iter().map(|&i| if i == NULL_ROW { NULL_ROW } else { old[i as usize] }).collect();
                            cache.push((key, composed.clone()));
                            composed
                        }
                    }
                };
                FCol { name: c.name.clone(), data: c.data.clone(), sel: Some(sel) }
            })
            .collect();
        Frame { cols, len: idx.len() }
    }

    pub fn into_table(self, name: &str) -> Table {
        // Operators keep names unique; if one ever did not, rename rather than fail.
        let mut defs: Vec<ColumnDef> = Vec::with_capacity(self.cols.len());
        for c in &self.cols {
            let n = unique_name(&c.name, |n| defs.iter().any(|d| d.name == n));
            defs.push(ColumnDef::new(n, c.ty()));
        }
        let schema = Schema::new(defs).expect("names made unique above");
        let columns = self.cols.iter().map(FCol::materialize).collect();
        Table::from_parts(name.to_string(), schema, columns, self.len)
    }
}

/// The name Kusto gives an unnamed expression when it has one: a column keeps its name, a
/// dynamic property path `d.a['b']` becomes `d_a_b`.
pub(crate) fn implicit_name(e: &crate::ast::Expr) -> Option<String> {
    match &e.kind {
        ExprKind::Name(n) => Some(n.clone()),
        ExprKind::Index { expr, key } => match &key.kind {
            ExprKind::Literal(Value::String(k), _) => implicit_name(expr).map(|base| format!("{base}_{k}")),
            ExprKind::Literal(Value::Long(i), _) => implicit_name(expr).map(|base| format!("{base}_{i}")),
            _ => None,
        },
        _ => None,
    }
}

/// `base`, else `base1`, `base2`, ... whichever `taken` says is free.
pub(crate) fn unique_name(base: &str, taken: impl Fn(&str) -> bool) -> String {
    if !taken(base) {
        return base.to_string();
    }
    (1..).map(|k| format!("{base}{k}")).find(|n| !taken(n)).expect("some suffix is free")
}

/// Execution state: the catalog, the clock, the request timespan and the `let` bindings.
pub(crate) struct Ctx<'a> {
    pub catalog: &'a dyn Catalog,
    pub now: DateTime,
    pub timespan: Option<(DateTime, DateTime)>,
    pub scalars: HashMap<String, (Value, ColumnType)>,
    pub tabulars: HashMap<String, Frame>,
}

/// Runs `q`. Errors carry positions in `q.source`.
pub(crate) fn execute(
    q: &Query,
    catalog: &dyn Catalog,
    now: DateTime,
    timespan: Option<(DateTime, DateTime)>,
) -> Result<Table, KqlError> {
    let mut ctx = Ctx { catalog, now, timespan, scalars: HashMap::new(), tabulars: HashMap::new() };
    let run = |ctx: &mut Ctx| -> Result<Table, KqlError> {
        for l in &q.lets {
            let name = l.name.name.clone();
            match &l.value {
                LetValue::Tabular(t) => {
                    let f = ctx.exec_tabular(t)?;
                    ctx.scalars.remove(&name);
                    ctx.tabulars.insert(name, f);
                }
                LetValue::Scalar(e) => {
                    // `let T2 = SomeTable;` aliases a table.
                    if let ExprKind::Name(n) = &e.kind
                        && !ctx.scalars.contains_key(n)
                        && (ctx.tabulars.contains_key(n) || ctx.catalog.table(n).is_some())
                    {
                        let t = TabularExpr {
                            source: TabularSource::Name(crate::ast::Ident { name: n.clone(), span: e.span }),
                            ops: Vec::new(),
                            span: e.span,
                        };
                        let f = ctx.exec_tabular(&t)?;
                        ctx.scalars.remove(&name);
                        ctx.tabulars.insert(name, f);
                        continue;
                    }
                    let unit = Frame::unit();
                    let v = Env::new(ctx, &unit, "let").eval(e)?;
                    let (val, ty) = match v {
                        Vect::Const(v, t) => (v, t),
                        Vect::Col(c) => (c.get(0), c.ty()),
                    };
                    ctx.tabulars.remove(&name);
                    ctx.scalars.insert(name, (val, ty));
                }
            }
        }
        let f = ctx.exec_tabular(&q.body)?;
        Ok(f.into_table(PRIMARY_RESULT))
    };
    run(&mut ctx).map_err(|e| e.locate(&q.source))
}

impl Ctx<'_> {
    pub fn exec_tabular(&self, t: &TabularExpr) -> Result<Frame, KqlError> {
        let mut frame = match &t.source {
            TabularSource::Paren(inner) => self.exec_tabular(inner)?,
            TabularSource::Name(id) => {
                if let Some(f) = self.tabulars.get(&id.name) {
                    f.clone()
                } else if let Some(table) = self.catalog.table(&id.name) {
                    self.table_frame(table)
                } else {
                    return Err(KqlError::unresolved(
                        format!("Failed to resolve table or column expression named '{}'", id.name),
                        id.span,
                    ));
                }
            }
        };
        for op in &t.ops {
            frame = self.apply(op, frame)?;
        }
        Ok(frame)
    }

    /// A table's rows, restricted to the request timespan.
    fn table_frame(&self, table: &Table) -> Frame {
        let frame = Frame::from_table(table);
        let (Some((start, end)), Some(tc)) = (self.timespan, time_column(table.schema())) else {
            return frame;
        };
        let ColumnData::I64(ticks) = &table.column(tc).data else {
            return frame;
        };
        let (s, e) = (start.ticks(), end.ticks());
        let idx: Vec<u32> = ticks
            .iter()
            .enumerate()
            .filter(|&(_, &t)| t != NULL_I64 && t >= s && t <= e)
            .map(|(i, _)| i as u32)
            .collect();
        if idx.len() == frame.len { frame } else { frame.select(&idx) }
    }

    fn apply(&self, op: &Operator, frame: Frame) -> Result<Frame, KqlError> {
        match &op.kind {
            OpKind::Where(pred) => ops::where_(self, frame, pred, op.name),
            OpKind::Extend(items) => ops::extend(self, frame, items),
            OpKind::Project(items) => ops::project(self, frame, items),
            OpKind::ProjectAway(cols) => ops::project_away(frame, cols),
            OpKind::ProjectRename(pairs) => ops::project_rename(frame, pairs),
            OpKind::Summarize { aggs, by } => summarize::summarize(self, &frame, aggs, by),
            OpKind::Sort(keys) => ops::sort(self, frame, keys, op.name),
            OpKind::Top { count, key } => ops::top(self, frame, count, key),
            OpKind::Take(count) => ops::take(self, frame, count, op.name),
            OpKind::Count => Ok(ops::count(frame)),
            OpKind::Distinct(cols) => summarize::distinct(self, &frame, cols),
            OpKind::Join { kind, right, on } => join::join(self, frame, *kind, right, on),
            OpKind::Render => Ok(frame),
        }
    }
}
