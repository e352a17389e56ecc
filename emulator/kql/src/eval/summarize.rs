//! `summarize` (and `distinct`): grouping and aggregate functions.
//!
//! Invariants:
//! - Output columns are the `by` columns first, then the aggregate columns, in query order;
//!   groups come out in order of first appearance.
//! - Without `by` there is always exactly one output row, even over zero input rows (`count()`
//!   is then 0); with `by`, zero input rows give zero groups.
//! - An aggregate item may be an expression over aggregates (`countif(..) * 100.0 / count()`):
//!   the aggregates are computed per group first, then the expression over the group results.
//! - `percentile` is exact nearest-rank (Kusto's definition, which Kusto estimates); `dcount` is
//!   exact. Aggregates skip nulls; `sum`/`avg`/`min`/`max`/`percentile` of a group with only
//!   nulls are null.

use std::sync::Arc;

use rustc_hash::FxHashSet;

use super::expr::{Env, Vect, bools, f64s, i64s, strs};
use super::keys::{combine, encode};
use super::{Ctx, Frame, unique_name};
use crate::ast::{Expr, ExprKind, Func, Ident, InList, NamedExpr};
use crate::error::{KqlError, Span};
use crate::table::{Column, ColumnData, NULL_I64};
use crate::value::{ColumnType, Value};

/// A placeholder column name for the k-th aggregate; not writable in KQL.
fn placeholder(k: usize) -> String {
    format!("\u{1}agg{k}")
}

struct AggCall {
    func: Func,
    args: Vec<Expr>,
    span: Span,
}

/// Copies `e` with every aggregate call replaced by a placeholder name, collecting the calls.
fn extract(e: &Expr, calls: &mut Vec<AggCall>, in_agg: bool) -> Result<Expr, KqlError> {
    let b = |x: &Expr, calls: &mut Vec<AggCall>| extract(x, calls, in_agg).map(Box::new);
    let kind = match &e.kind {
        ExprKind::Call { func, name_span, args } if func.is_aggregate() => {
            if in_agg {
                return Err(KqlError::semantic(
                    "'summarize' operator: aggregate functions cannot be nested",
                    *name_span,
                ));
            }
            for a in args {
                extract(a, calls, true)?;
            }
            calls.push(AggCall { func: *func, args: args.clone(), span: e.span });
            ExprKind::Name(placeholder(calls.len() - 1))
        }
        ExprKind::Call { func, name_span, args } => ExprKind::Call {
            func: *func,
            name_span: *name_span,
            args: args.iter().map(|a| extract(a, calls, in_agg)).collect::<Result<_, _>>()?,
        },
        ExprKind::Literal(..) | ExprKind::Name(_) => e.kind.clone(),
        ExprKind::Neg(x) => ExprKind::Neg(b(x, calls)?),
        ExprKind::Binary { op, lhs, rhs } => ExprKind::Binary { op: *op, lhs: b(lhs, calls)?, rhs: b(rhs, calls)? },
        ExprKind::In { expr, list, negated, case_insensitive } => ExprKind::In {
            expr: b(expr, calls)?,
            list: match list {
                InList::Values(vs) => {
                    InList::Values(vs.iter().map(|v| extract(v, calls, in_agg)).collect::<Result<_, _>>()?)
                }
                InList::Tabular(t) => InList::Tabular(t.clone()),
            },
            negated: *negated,
            case_insensitive: *case_insensitive,
        },
        ExprKind::Between { expr, lo, hi, negated } => {
            ExprKind::Between { expr: b(expr, calls)?, lo: b(lo, calls)?, hi: b(hi, calls)?, negated: *negated }
        }
        ExprKind::Index { expr, key } => ExprKind::Index { expr: b(expr, calls)?, key: b(key, calls)? },
    };
    Ok(Expr { kind, span: e.span })
}

fn column_name_of(e: &Expr) -> Option<&str> {
    match &e.kind {
        ExprKind::Name(n) => Some(n),
        _ => None,
    }
}

/// Kusto's default name for a `by` expression: the column, also through `bin()` and
/// conversions of a single column.
fn default_key_name(e: &Expr) -> Option<String> {
    match &e.kind {
        ExprKind::Name(_) | ExprKind::Index { .. } => super::implicit_name(e),
        ExprKind::Call {
            func:
                Func::Bin
                | Func::Floor
                | Func::ToString
                | Func::ToLong
                | Func::ToInt
                | Func::ToReal
                | Func::ToLower
                | Func::ToUpper
                | Func::StartOfDay
                | Func::StartOfWeek
                | Func::StartOfMonth,
            args,
            ..
        } => args.first().and_then(column_name_of).map(str::to_string),
        _ => None,
    }
}

/// Kusto's default name for an aggregate item: `count_`, `sum_Col`, `percentile_Col_95`.
fn default_agg_name(e: &Expr) -> Option<String> {
    let ExprKind::Call { func, args, .. } = &e.kind else {
        return None;
    };
    if !func.is_aggregate() {
        return None;
    }
    let col = args.first().and_then(column_name_of).unwrap_or("");
    Some(match func {
        Func::Count | Func::CountIf => format!("{}_", func.name()),
        Func::Percentile => {
            let p = match args.get(1).map(|a| &a.kind) {
                Some(ExprKind::Literal(Value::Long(p), _)) => p.to_string(),
                Some(ExprKind::Literal(Value::Real(p), _)) => crate::eval::expr::format_real(*p).replace('.', "_"),
                _ => String::new(),
            };
            format!("percentile_{col}_{p}")
        }
        _ => format!("{}_{col}", func.name()),
    })
}

pub(crate) fn distinct(ctx: &Ctx, frame: &Frame, cols: &[Ident]) -> Result<Frame, KqlError> {
    let by: Vec<NamedExpr> = cols
        .iter()
        .map(|c| NamedExpr { name: None, expr: Expr { kind: ExprKind::Name(c.name.clone()), span: c.span } })
        .collect();
    group(ctx, frame, &[], &by, "distinct")
}

pub(crate) fn summarize(ctx: &Ctx, frame: &Frame, aggs: &[NamedExpr], by: &[NamedExpr]) -> Result<Frame, KqlError> {
    group(ctx, frame, aggs, by, "summarize")
}

fn group(ctx: &Ctx, frame: &Frame, aggs: &[NamedExpr], by: &[NamedExpr], op: &'static str) -> Result<Frame, KqlError> {
    let env = Env::new(ctx, frame, op);
    let n = frame.len;
    let mut names: Vec<String> = Vec::new();
    let mut unnamed = 0usize;
    let mut fresh = |names: &Vec<String>| {
        loop {
            unnamed += 1;
            let c = format!("Column{unnamed}");
            if !names.contains(&c) {
                return c;
            }
        }
    };

    // Group keys.
    let mut keys: Vec<Arc<Column>> = Vec::new();
    for item in by {
        let v = env.eval(&item.expr)?;
        keys.push(v.to_column(n));
        let base = match &item.name {
            Some(id) => id.name.clone(),
            None => default_key_name(&item.expr).unwrap_or_else(|| fresh(&names)),
        };
        let name = unique_name(&base, |c| names.iter().any(|x| x == c));
        names.push(name);
    }
    let (gids, ngroups) = if keys.is_empty() {
        (vec![0u32; n], 1usize)
    } else {
        let (mut codes, mut card) = encode(&keys[0]);
        for k in &keys[1..] {
            let (c2, n2) = encode(k);
            (codes, card) = combine(&codes, card, &c2, n2);
        }
        (codes, card)
    };
    let mut first = vec![u32::MAX; ngroups];
    for (i, &g) in gids.iter().enumerate() {
        let f = &mut first[g as usize];
        if *f == u32::MAX {
            *f = i as u32;
        }
    }
    let mut out_cols: Vec<(String, Arc<Column>)> =
        names.iter().cloned().zip(keys.iter().map(|k| Arc::new(k.gather(&first)))).collect();

    // Aggregates.
    let mut calls = Vec::new();
    let mut items = Vec::new();
    for item in aggs {
        let before = calls.len();
        let rewritten = extract(&item.expr, &mut calls, false)?;
        if calls.len() == before {
            return Err(KqlError::semantic(
                "'summarize' operator: this expression is not an aggregate; use an aggregate function (count(), sum(), ...) or move it to 'by'",
                item.expr.span,
            ));
        }
        items.push((item, rewritten));
    }
    let mut agg_cols: Vec<(String, Arc<Column>)> = Vec::new();
    for (k, call) in calls.iter().enumerate() {
        let col = aggregate(&env, call, &gids, ngroups)?;
        agg_cols.push((placeholder(k), Arc::new(col)));
    }
    let agg_frame = Frame::from_columns(out_cols.iter().cloned().chain(agg_cols.iter().cloned()).collect(), ngroups);
    let agg_env = Env::new(ctx, &agg_frame, op);
    for (item, rewritten) in items {
        let col = match &rewritten.kind {
            ExprKind::Name(p) if p.starts_with('\u{1}') => {
                let k = agg_frame.find(p).expect("placeholder exists");
                agg_frame.cols[k].data.clone()
            }
            _ => agg_env.eval(&rewritten)?.to_column(ngroups),
        };
        let base = match &item.name {
            Some(id) => id.name.clone(),
            None => default_agg_name(&item.expr).unwrap_or_else(|| fresh(&names)),
        };
        let name = unique_name(&base, |c| names.iter().any(|x| x == c));
        names.push(name.clone());
        out_cols.push((name, col));
    }
    Ok(Frame::from_columns(out_cols, ngroups))
}

/// Rows a conditional aggregate counts (`countif`, `sumif` ...): where the predicate is true.
fn predicate_mask(env: &Env, e: &Expr, func: Func) -> Result<Vec<bool>, KqlError> {
    let mut v = env.eval(e)?;
    if v.ty() == ColumnType::Dynamic {
        v = env.convert(v, ColumnType::Bool);
    }
    if v.ty() != ColumnType::Bool {
        return Err(KqlError::semantic(
            format!("'summarize' operator: the predicate of {}() must be of type bool, got {}", func.name(), v.ty()),
            e.span,
        ));
    }
    let b = bools(&v);
    Ok((0..env.frame.len).map(|i| b.get(i) == Some(true)).collect())
}

fn aggregate(env: &Env, call: &AggCall, gids: &[u32], ng: usize) -> Result<Column, KqlError> {
    let n = gids.len();
    let f = call.func;
    let type_err = |what: &str, t: ColumnType, span: Span| {
        KqlError::semantic(format!("'summarize' operator: {}() {what}, got {t}", f.name()), span)
    };
    // Which rows count, for the *if variants.
    let mask: Option<Vec<bool>> = match f {
        Func::CountIf => Some(predicate_mask(env, &call.args[0], f)?),
        Func::SumIf | Func::AvgIf | Func::DCountIf => Some(predicate_mask(env, &call.args[1], f)?),
        _ => None,
    };
    let on = |i: usize| mask.as_ref().is_none_or(|m| m[i]);
    if matches!(f, Func::Count | Func::CountIf) {
        let mut counts = vec![0i64; ng];
        for (i, &g) in gids.iter().enumerate() {
            if on(i) {
                counts[g as usize] += 1;
            }
        }
        return Ok(Column::from_data(ColumnType::Long, ColumnData::I64(counts)));
    }
    let arg = &call.args[0];
    let mut x = env.eval(arg)?;
    if x.ty() == ColumnType::Dynamic && !matches!(f, Func::DCount | Func::DCountIf) {
        x = env.convert(x, ColumnType::Real);
    }
    let x = Vect::Col(x.to_column(n));
    let t = x.ty();
    match f {
        Func::Sum | Func::SumIf => {
            if t.is_integral() || t == ColumnType::Timespan {
                let a = i64s(&x);
                let mut sums = vec![0i64; ng];
                let mut seen = vec![false; ng];
                for (i, &g) in gids.iter().enumerate() {
                    let v = a.get(i);
                    if v != NULL_I64 && on(i) {
                        let g = g as usize;
                        sums[g] = sums[g].wrapping_add(v);
                        seen[g] = true;
                    }
                }
                for (s, seen) in sums.iter_mut().zip(&seen) {
                    if !seen {
                        *s = NULL_I64;
                    }
                }
                let out_ty = if t == ColumnType::Timespan { t } else { ColumnType::Long };
                Ok(Column::from_data(out_ty, ColumnData::I64(sums)))
            } else if t == ColumnType::Real {
                let a = f64s(&x);
                let mut sums: Vec<Option<f64>> = vec![None; ng];
                for (i, &g) in gids.iter().enumerate() {
                    if let Some(v) = a.get(i)
                        && on(i)
                    {
                        let s = &mut sums[g as usize];
                        *s = Some(s.unwrap_or(0.0) + v);
                    }
                }
                Ok(Column::from_data(ColumnType::Real, ColumnData::F64(sums)))
            } else {
                Err(type_err("needs a numeric or timespan argument", t, arg.span))
            }
        }
        Func::Avg | Func::AvgIf => {
            if !(t.is_numeric() || t == ColumnType::Timespan) {
                return Err(type_err("needs a numeric or timespan argument", t, arg.span));
            }
            let a = f64s(&x);
            let ticks = i64s(&x);
            let mut sums = vec![0f64; ng];
            let mut counts = vec![0u64; ng];
            for (i, &g) in gids.iter().enumerate() {
                let v = if t == ColumnType::Timespan {
                    let k = ticks.get(i);
                    (k != NULL_I64).then_some(k as f64)
                } else {
                    a.get(i)
                };
                if let Some(v) = v
                    && on(i)
                {
                    sums[g as usize] += v;
                    counts[g as usize] += 1;
                }
            }
            let avgs = sums.iter().zip(&counts).map(|(s, &c)| (c > 0).then(|| s / c as f64));
            if t == ColumnType::Timespan {
                Ok(Column::from_data(
                    t,
                    ColumnData::I64(avgs.map(|v| v.map_or(NULL_I64, |v| v.round() as i64)).collect()),
                ))
            } else {
                Ok(Column::from_data(ColumnType::Real, ColumnData::F64(avgs.collect())))
            }
        }
        Func::Max | Func::Min => {
            let max = f == Func::Max;
            match &x {
                Vect::Col(c) => match &c.data {
                    ColumnData::I64(v) => {
                        let mut best = vec![NULL_I64; ng];
                        for (i, &g) in gids.iter().enumerate() {
                            let x = v[i];
                            if x == NULL_I64 {
                                continue;
                            }
                            let b = &mut best[g as usize];
                            if *b == NULL_I64 || (max && x > *b) || (!max && x < *b) {
                                *b = x;
                            }
                        }
                        Ok(Column::from_data(t, ColumnData::I64(best)))
                    }
                    ColumnData::F64(v) => {
                        let mut best: Vec<Option<f64>> = vec![None; ng];
                        for (i, &g) in gids.iter().enumerate() {
                            let Some(x) = v[i].filter(|x| !x.is_nan()) else {
                                continue;
                            };
                            let b = &mut best[g as usize];
                            if b.is_none_or(|b| (max && x > b) || (!max && x < b)) {
                                *b = Some(x);
                            }
                        }
                        Ok(Column::from_data(t, ColumnData::F64(best)))
                    }
                    ColumnData::Str { dict, codes } => {
                        let s = strs(&x);
                        let mut best: Vec<Option<u32>> = vec![None; ng];
                        for (i, &g) in gids.iter().enumerate() {
                            let b = &mut best[g as usize];
                            let better = match b {
                                None => true,
                                Some(bc) => {
                                    let o = s.get(i).cmp(dict.get(*bc));
                                    if max { o.is_gt() } else { o.is_lt() }
                                }
                            };
                            if better {
                                *b = Some(codes[i]);
                            }
                        }
                        Ok(Column::from_data(
                            t,
                            ColumnData::Str {
                                dict: dict.clone(),
                                codes: best.into_iter().map(|c| c.unwrap_or(0)).collect(),
                            },
                        ))
                    }
                    ColumnData::Bool(v) => {
                        let mut best: Vec<Option<bool>> = vec![None; ng];
                        for (i, &g) in gids.iter().enumerate() {
                            let Some(x) = v[i] else { continue };
                            let b = &mut best[g as usize];
                            *b = Some(match *b {
                                None => x,
                                Some(y) => {
                                    if max {
                                        x || y
                                    } else {
                                        x && y
                                    }
                                }
                            });
                        }
                        Ok(Column::from_data(t, ColumnData::Bool(best)))
                    }
                    ColumnData::Dyn(_) => Err(type_err("cannot compare dynamic values", t, arg.span)),
                },
                Vect::Const(..) => unreachable!("materialized above"),
            }
        }
        Func::Percentile => {
            let p = match env.eval(&call.args[1])? {
                Vect::Const(Value::Long(p), _) => p as f64,
                Vect::Const(Value::Real(p), _) => p,
                _ => {
                    return Err(KqlError::semantic(
                        "'summarize' operator: the percentile must be a numeric constant",
                        call.args[1].span,
                    ));
                }
            };
            if !(0.0..=100.0).contains(&p) {
                return Err(KqlError::semantic(
                    "'summarize' operator: the percentile must be between 0 and 100",
                    call.args[1].span,
                ));
            }
            if t.is_integral() || matches!(t, ColumnType::DateTime | ColumnType::Timespan) {
                let a = i64s(&x);
                let vals: Vec<Option<i64>> = (0..n).map(|i| Some(a.get(i)).filter(|&v| v != NULL_I64)).collect();
                let picked = nearest_rank(&vals, gids, ng, p, |a, b| a.cmp(b));
                Ok(Column::from_data(t, ColumnData::I64(picked.into_iter().map(|v| v.unwrap_or(NULL_I64)).collect())))
            } else if t == ColumnType::Real {
                let a = f64s(&x);
                let vals: Vec<Option<f64>> = (0..n).map(|i| a.get(i).filter(|v| !v.is_nan())).collect();
                let picked = nearest_rank(&vals, gids, ng, p, |a, b| a.total_cmp(b));
                Ok(Column::from_data(t, ColumnData::F64(picked)))
            } else {
                Err(type_err("needs a numeric, datetime or timespan argument", t, arg.span))
            }
        }
        Func::DCount | Func::DCountIf => {
            let Vect::Col(c) = &x else { unreachable!() };
            let (codes, _) = encode(c);
            let mut seen: FxHashSet<u64> = FxHashSet::default();
            let mut counts = vec![0i64; ng];
            for (i, &g) in gids.iter().enumerate() {
                if !on(i) || c.is_null(i) {
                    continue;
                }
                if seen.insert(((g as u64) << 32) | codes[i] as u64) {
                    counts[g as usize] += 1;
                }
            }
            Ok(Column::from_data(ColumnType::Long, ColumnData::I64(counts)))
        }
        _ => Err(KqlError::semantic(format!("'summarize' operator: '{}' is not an aggregate", f.name()), call.span)),
    }
}

/// Per group, the smallest value v with at least p% of the group's values <= v.
fn nearest_rank<T: Copy + Default>(
    vals: &[Option<T>],
    gids: &[u32],
    ng: usize,
    p: f64,
    cmp: impl Fn(&T, &T) -> std::cmp::Ordering,
) -> Vec<Option<T>> {
    let mut counts = vec![0usize; ng + 1];
    for (v, &g) in vals.iter().zip(gids) {
        if v.is_some() {
            counts[g as usize + 1] += 1;
        }
    }
    for k in 1..=ng {
        counts[k] += counts[k - 1];
    }
    let mut buf = vec![T::default(); counts[ng]];
    let mut fill = counts.clone();
    for (v, &g) in vals.iter().zip(gids) {
        if let Some(v) = v {
            buf[fill[g as usize]] = *v;
            fill[g as usize] += 1;
        }
    }
    (0..ng)
        .map(|g| {
            let seg = &mut buf[counts[g]..counts[g + 1]];
            if seg.is_empty() {
                return None;
            }
            let len = seg.len();
            let rank = ((p / 100.0) * len as f64).ceil() as usize;
            let k = rank.clamp(1, len) - 1;
            let (_, v, _) = seg.select_nth_unstable_by(k, &cmp);
            Some(*v)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_matches_the_definition() {
        let vals: Vec<Option<i64>> = [15, 20, 35, 40, 50].iter().map(|&v| Some(v)).collect();
        let g = vec![0u32; 5];
        let pick = |p| nearest_rank(&vals, &g, 1, p, |a, b| a.cmp(b))[0];
        // The Wikipedia example for nearest rank.
        assert_eq!(pick(5.0), Some(15));
        assert_eq!(pick(30.0), Some(20));
        assert_eq!(pick(40.0), Some(20));
        assert_eq!(pick(50.0), Some(35));
        assert_eq!(pick(100.0), Some(50));
        assert_eq!(pick(0.0), Some(15));
    }
}
