//! Row and column operators: `where`, `extend`, `project` (+ `-away`, `-rename`), `order by`,
//! `top`, `take`, `count`.
//!
//! Invariants:
//! - Row operators (`where`, `order`, `top`, `take`) only compose row-index vectors; they never
//!   copy column data.
//! - `order by` is stable: rows with equal keys keep their input order; `top` gives the same
//!   rows `order by ... | take N` would.
//! - Column names stay unique in every frame: `extend` of an existing name replaces that column
//!   in place, unnamed expressions get `Column1`, `Column2`, ...

use std::cmp::Ordering;
use std::sync::Arc;

use super::expr::{Env, Vect, bools};
use super::{Ctx, FCol, Frame, implicit_name};
use crate::ast::{Expr, ExprKind, Ident, NamedExpr, SortKey};
use crate::error::KqlError;
use crate::table::{Column, ColumnData, NULL_I64};
use crate::value::{ColumnType, Value};

pub(crate) fn where_(ctx: &Ctx, frame: Frame, pred: &Expr, op: &'static str) -> Result<Frame, KqlError> {
    let env = Env::new(ctx, &frame, op);
    let mut v = env.eval(pred)?;
    if v.ty() == ColumnType::Dynamic {
        v = env.convert(v, ColumnType::Bool);
    }
    if v.ty() != ColumnType::Bool {
        return Err(KqlError::semantic(
            format!("'{op}' operator: the predicate must be of type bool, got {}", v.ty()),
            pred.span,
        ));
    }
    let idx: Vec<u32> = match &v {
        Vect::Const(Value::Bool(true), _) => return Ok(frame),
        Vect::Const(..) => Vec::new(),
        Vect::Col(_) => {
            let b = bools(&v);
            (0..frame.len).filter(|&i| b.get(i) == Some(true)).map(|i| i as u32).collect()
        }
    };
    drop(env);
    if idx.len() == frame.len {
        return Ok(frame);
    }
    Ok(frame.select(&idx))
}

/// The name of an unnamed `extend` expression: Kusto's implicit name, else `ColumnN`.
fn extend_name(e: &Expr, frame: &Frame) -> String {
    implicit_name(e).unwrap_or_else(|| {
        let mut k = 1;
        loop {
            let c = format!("Column{k}");
            if frame.find(&c).is_none() {
                return c;
            }
            k += 1;
        }
    })
}

pub(crate) fn extend(ctx: &Ctx, mut frame: Frame, items: &[NamedExpr]) -> Result<Frame, KqlError> {
    for item in items {
        let col = {
            let env = Env::new(ctx, &frame, "extend");
            env.eval(&item.expr)?.to_column(frame.len)
        };
        let name = match &item.name {
            Some(id) => id.name.clone(),
            None => extend_name(&item.expr, &frame),
        };
        let fc = FCol { name: name.clone(), data: col, sel: None };
        match frame.find(&name) {
            Some(i) => frame.cols[i] = fc,
            None => frame.cols.push(fc),
        }
    }
    Ok(frame)
}

pub(crate) fn project(ctx: &Ctx, frame: Frame, items: &[NamedExpr]) -> Result<Frame, KqlError> {
    let env = Env::new(ctx, &frame, "project");
    let mut out: Vec<FCol> = Vec::new();
    let mut unnamed = 0;
    for item in items {
        // A plain column keeps its (lazy) selection instead of being copied.
        let (name, fc) = match (&item.expr.kind, &item.name) {
            (ExprKind::Name(n), alias) if frame.find(n).is_some() => {
                let src = &frame.cols[frame.find(n).expect("checked")];
                let name = alias.as_ref().map_or_else(|| n.clone(), |a| a.name.clone());
                (name, src.clone())
            }
            _ => {
                let data = env.eval(&item.expr)?.to_column(frame.len);
                let name = match &item.name {
                    Some(a) => a.name.clone(),
                    None => match implicit_name(&item.expr) {
                        Some(n) => n,
                        None => loop {
                            unnamed += 1;
                            let c = format!("Column{unnamed}");
                            if !out.iter().any(|f| f.name == c) {
                                break c;
                            }
                        },
                    },
                };
                (name, FCol { name: String::new(), data, sel: None })
            }
        };
        if out.iter().any(|c| c.name == name) {
            return Err(KqlError::semantic(
                format!("'project' operator: the column '{name}' is projected more than once"),
                item.name.as_ref().map_or(item.expr.span, |a| a.span),
            ));
        }
        out.push(FCol { name, ..fc });
    }
    let len = frame.len;
    Ok(Frame { cols: out, len })
}

fn resolve(frame: &Frame, id: &Ident, op: &str) -> Result<usize, KqlError> {
    frame.find(&id.name).ok_or_else(|| {
        KqlError::unresolved(format!("'{op}' operator: Failed to resolve column named '{}'", id.name), id.span)
    })
}

pub(crate) fn project_away(mut frame: Frame, cols: &[Ident]) -> Result<Frame, KqlError> {
    for id in cols {
        let i = resolve(&frame, id, "project-away")?;
        frame.cols.remove(i);
    }
    Ok(frame)
}

pub(crate) fn project_rename(mut frame: Frame, pairs: &[(Ident, Ident)]) -> Result<Frame, KqlError> {
    for (new, old) in pairs {
        let i = resolve(&frame, old, "project-rename")?;
        if let Some(j) = frame.find(&new.name)
            && j != i
        {
            return Err(KqlError::semantic(
                format!("'project-rename' operator: a column named '{}' already exists", new.name),
                new.span,
            ));
        }
        frame.cols[i].name = new.name.clone();
    }
    Ok(frame)
}

pub(crate) fn count(frame: Frame) -> Frame {
    Frame::from_columns(
        vec![(
            "Count".to_string(),
            Arc::new(Column::from_data(ColumnType::Long, ColumnData::I64(vec![frame.len as i64]))),
        )],
        1,
    )
}

/// A non-negative constant row count (`take N`, `top N`).
fn row_count(ctx: &Ctx, frame: &Frame, e: &Expr, op: &'static str) -> Result<usize, KqlError> {
    let env = Env::new(ctx, frame, op);
    match env.eval(e)? {
        Vect::Const(Value::Long(n), _) => Ok(n.max(0) as usize),
        v => Err(KqlError::semantic(
            format!(
                "'{op}' operator: the row count must be a constant long, got {}{}",
                if v.is_const() { "" } else { "a column of " },
                v.ty()
            ),
            e.span,
        )),
    }
}

pub(crate) fn take(ctx: &Ctx, frame: Frame, count: &Expr, op: &'static str) -> Result<Frame, KqlError> {
    let n = row_count(ctx, &frame, count, op)?;
    if n >= frame.len {
        return Ok(frame);
    }
    let idx: Vec<u32> = (0..n as u32).collect();
    Ok(frame.select(&idx))
}

/// A sort key, prepared for fast comparison.
enum KeyCol {
    I64(Vec<i64>),
    F64(Vec<Option<f64>>),
    /// Ranks of strings (dictionary codes mapped to sort order).
    Rank(Vec<u32>),
    Bool(Vec<Option<bool>>),
    Text(Vec<Option<String>>),
}

struct Key {
    col: KeyCol,
    desc: bool,
    nulls_first: bool,
}

impl Key {
    fn cmp(&self, a: usize, b: usize) -> Ordering {
        fn with_nulls<T>(
            x: Option<T>,
            y: Option<T>,
            desc: bool,
            nulls_first: bool,
            f: impl Fn(&T, &T) -> Ordering,
        ) -> Ordering {
            match (x, y) {
                (None, None) => Ordering::Equal,
                (None, Some(_)) => {
                    if nulls_first {
                        Ordering::Less
                    } else {
                        Ordering::Greater
                    }
                }
                (Some(_), None) => {
                    if nulls_first {
                        Ordering::Greater
                    } else {
                        Ordering::Less
                    }
                }
                (Some(x), Some(y)) => {
                    let o = f(&x, &y);
                    if desc { o.reverse() } else { o }
                }
            }
        }
        let (d, nf) = (self.desc, self.nulls_first);
        match &self.col {
            KeyCol::I64(v) => {
                let o = |x: i64| (x != NULL_I64).then_some(x);
                with_nulls(o(v[a]), o(v[b]), d, nf, |x, y| x.cmp(y))
            }
            KeyCol::F64(v) => with_nulls(v[a], v[b], d, nf, |x, y| x.total_cmp(y)),
            KeyCol::Rank(v) => with_nulls(Some(v[a]), Some(v[b]), d, nf, |x, y| x.cmp(y)),
            KeyCol::Bool(v) => with_nulls(v[a], v[b], d, nf, |x, y| x.cmp(y)),
            KeyCol::Text(v) => with_nulls(v[a].as_ref(), v[b].as_ref(), d, nf, |x, y| x.cmp(y)),
        }
    }
}

fn sort_keys(ctx: &Ctx, frame: &Frame, keys: &[SortKey], op: &'static str) -> Result<Vec<Key>, KqlError> {
    let env = Env::new(ctx, frame, op);
    keys.iter()
        .map(|k| {
            let c = env.eval(&k.expr)?.to_column(frame.len);
            let col = match &c.data {
                ColumnData::I64(v) => KeyCol::I64(v.clone()),
                ColumnData::F64(v) => KeyCol::F64(v.clone()),
                ColumnData::Bool(v) => KeyCol::Bool(v.clone()),
                ColumnData::Str { dict, codes } => {
                    let mut order: Vec<u32> = (0..dict.len() as u32).collect();
                    order.sort_by(|&a, &b| dict.get(a).cmp(dict.get(b)));
                    let mut rank = vec![0u32; dict.len()];
                    for (r, &code) in order.iter().enumerate() {
                        rank[code as usize] = r as u32;
                    }
                    KeyCol::Rank(codes.iter().map(|&c| rank[c as usize]).collect())
                }
                ColumnData::Dyn(v) => KeyCol::Text(v.iter().map(|j| j.as_ref().map(|j| j.to_string())).collect()),
            };
            Ok(Key { col, desc: k.desc, nulls_first: k.nulls_first })
        })
        .collect()
}

fn compare_rows(keys: &[Key], a: u32, b: u32) -> Ordering {
    for k in keys {
        let o = k.cmp(a as usize, b as usize);
        if o != Ordering::Equal {
            return o;
        }
    }
    a.cmp(&b)
}

pub(crate) fn sort(ctx: &Ctx, frame: Frame, keys: &[SortKey], op: &'static str) -> Result<Frame, KqlError> {
    let keys = sort_keys(ctx, &frame, keys, op)?;
    let mut idx: Vec<u32> = (0..frame.len as u32).collect();
    // The row index breaks ties, so an unstable sort is stable.
    idx.sort_unstable_by(|&a, &b| compare_rows(&keys, a, b));
    Ok(frame.select(&idx))
}

pub(crate) fn top(ctx: &Ctx, frame: Frame, count: &Expr, key: &SortKey) -> Result<Frame, KqlError> {
    let n = row_count(ctx, &frame, count, "top")?;
    let keys = sort_keys(ctx, &frame, std::slice::from_ref(key), "top")?;
    let mut idx: Vec<u32> = (0..frame.len as u32).collect();
    if n < idx.len() {
        if n == 0 {
            idx.clear();
        } else {
            idx.select_nth_unstable_by(n - 1, |&a, &b| compare_rows(&keys, a, b));
            idx.truncate(n);
        }
    }
    idx.sort_unstable_by(|&a, &b| compare_rows(&keys, a, b));
    Ok(frame.select(&idx))
}
