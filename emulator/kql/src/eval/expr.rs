//! Scalar expression evaluation over a frame, one whole column at a time.
//!
//! Invariants:
//! - `eval` returns a [`Vect`]: a constant (literal, `let` value, or anything computed only from
//!   constants, folded once) or a column with exactly one value per frame row.
//! - Result types depend only on argument types, so type errors surface even on empty frames.
//! - Nulls propagate through arithmetic and comparisons (a null comparison is null, which
//!   `where` treats as false); strings are never null, so string functions see `""` instead.
//! - String predicates against a constant are computed once per distinct string (dictionary
//!   entry) when that is cheaper than once per row.

use std::cell::RefCell;
use std::cmp::Ordering;
use std::sync::Arc;

use rustc_hash::FxHashSet;

use super::{Ctx, Frame};
use crate::ast::{BinOp, Expr, ExprKind, Func, InList, StrOp};
use crate::error::{KqlError, Span};
use crate::table::{Column, ColumnData, Dict, NULL_I64, value_to_json};
use crate::value::DateTime as Dt;
use crate::value::{
    ColumnType, DateTime, TICKS_PER_DAY, TICKS_PER_HOUR, TICKS_PER_MILLISECOND, TICKS_PER_MINUTE, TICKS_PER_SECOND,
    Timespan, Value, day_of_week, start_of_month, start_of_year,
};

/// An evaluated expression.
#[derive(Clone, Debug)]
pub(crate) enum Vect {
    Const(Value, ColumnType),
    Col(Arc<Column>),
}

impl Vect {
    pub fn ty(&self) -> ColumnType {
        match self {
            Vect::Const(_, t) => *t,
            Vect::Col(c) => c.ty(),
        }
    }

    pub fn is_const(&self) -> bool {
        matches!(self, Vect::Const(..))
    }

    pub fn get(&self, i: usize) -> Value {
        match self {
            Vect::Const(v, _) => v.clone(),
            Vect::Col(c) => c.get(i),
        }
    }

    /// As a column of `n` rows (constants are repeated).
    pub fn to_column(&self, n: usize) -> Arc<Column> {
        match self {
            Vect::Col(c) => c.clone(),
            Vect::Const(v, t) => {
                let mut one = Column::with_capacity(*t, 1);
                one.push_or_null(v);
                Arc::new(one.gather(&vec![0; n]))
            }
        }
    }
}

// ------------------------------------------------------------------ typed accessors

#[derive(Clone, Copy)]
pub(crate) enum I64s<'a> {
    C(&'a [i64]),
    K(i64),
}

impl I64s<'_> {
    #[inline]
    pub fn get(&self, i: usize) -> i64 {
        match self {
            I64s::C(v) => v[i],
            I64s::K(k) => *k,
        }
    }
}

pub(crate) fn i64s(v: &Vect) -> I64s<'_> {
    match v {
        Vect::Const(val, _) => I64s::K(match val {
            Value::Long(x) => *x,
            Value::DateTime(d) => d.ticks(),
            Value::Timespan(t) => t.0,
            Value::Bool(b) => *b as i64,
            _ => NULL_I64,
        }),
        Vect::Col(c) => match &c.data {
            ColumnData::I64(v) => I64s::C(v),
            _ => I64s::K(NULL_I64),
        },
    }
}

#[derive(Clone, Copy)]
pub(crate) enum F64s<'a> {
    I(&'a [i64]),
    F(&'a [Option<f64>]),
    K(Option<f64>),
}

impl F64s<'_> {
    #[inline]
    pub fn get(&self, i: usize) -> Option<f64> {
        match self {
            F64s::I(v) => {
                let x = v[i];
                (x != NULL_I64).then_some(x as f64)
            }
            F64s::F(v) => v[i],
            F64s::K(k) => *k,
        }
    }
}

pub(crate) fn f64s(v: &Vect) -> F64s<'_> {
    match v {
        Vect::Const(val, _) => F64s::K(match val {
            Value::Long(x) => Some(*x as f64),
            Value::Real(x) => Some(*x),
            _ => None,
        }),
        Vect::Col(c) => match &c.data {
            ColumnData::I64(v) => F64s::I(v),
            ColumnData::F64(v) => F64s::F(v),
            _ => F64s::K(None),
        },
    }
}

#[derive(Clone, Copy)]
pub(crate) enum Bools<'a> {
    C(&'a [Option<bool>]),
    K(Option<bool>),
}

impl Bools<'_> {
    #[inline]
    pub fn get(&self, i: usize) -> Option<bool> {
        match self {
            Bools::C(v) => v[i],
            Bools::K(k) => *k,
        }
    }
}

pub(crate) fn bools(v: &Vect) -> Bools<'_> {
    match v {
        Vect::Const(Value::Bool(b), _) => Bools::K(Some(*b)),
        Vect::Const(..) => Bools::K(None),
        Vect::Col(c) => match &c.data {
            ColumnData::Bool(v) => Bools::C(v),
            _ => Bools::K(None),
        },
    }
}

#[derive(Clone, Copy)]
pub(crate) enum Strs<'a> {
    C(&'a Dict, &'a [u32]),
    K(&'a str),
}

impl<'a> Strs<'a> {
    #[inline]
    pub fn get(&self, i: usize) -> &'a str {
        match self {
            Strs::C(d, codes) => d.get(codes[i]),
            Strs::K(s) => s,
        }
    }
}

pub(crate) fn strs(v: &Vect) -> Strs<'_> {
    match v {
        Vect::Const(Value::String(s), _) => Strs::K(s),
        Vect::Const(..) => Strs::K(""),
        Vect::Col(c) => match &c.data {
            ColumnData::Str { dict, codes } => Strs::C(dict, codes),
            _ => Strs::K(""),
        },
    }
}

/// `f` over every string: once per dictionary entry when that is fewer evaluations.
fn str_pred(s: Strs<'_>, n: usize, f: impl Fn(&str) -> bool) -> Vec<Option<bool>> {
    match s {
        Strs::C(dict, codes) if dict.len() <= codes.len() => {
            let t: Vec<bool> = dict.values().iter().map(|v| f(v)).collect();
            codes.iter().map(|&c| Some(t[c as usize])).collect()
        }
        _ => (0..n).map(|i| Some(f(s.get(i)))).collect(),
    }
}

fn bool_col(v: Vec<Option<bool>>) -> Column {
    Column::from_data(ColumnType::Bool, ColumnData::Bool(v))
}

fn i64_col(ty: ColumnType, v: Vec<i64>) -> Column {
    Column::from_data(ty, ColumnData::I64(v))
}

fn f64_col(v: Vec<Option<f64>>) -> Column {
    Column::from_data(ColumnType::Real, ColumnData::F64(v))
}

/// A column result, folded to a constant when every input was constant (then it has one row).
fn wrap(col: Column, all_const: bool) -> Vect {
    if all_const {
        let ty = col.ty();
        Vect::Const(col.get(0), ty)
    } else {
        Vect::Col(Arc::new(col))
    }
}

fn datetime_ok(t: i64) -> i64 {
    if DateTime::from_ticks(t).is_some() { t } else { NULL_I64 }
}

// ------------------------------------------------------------------ environment

/// Evaluates expressions over one frame, for one operator (named in error messages).
pub(crate) struct Env<'a> {
    pub ctx: &'a Ctx<'a>,
    pub frame: &'a Frame,
    pub op: &'static str,
    cache: RefCell<Vec<Option<Arc<Column>>>>,
}

impl<'a> Env<'a> {
    pub fn new(ctx: &'a Ctx<'a>, frame: &'a Frame, op: &'static str) -> Env<'a> {
        Env { ctx, frame, op, cache: RefCell::new(vec![None; frame.cols.len()]) }
    }

    /// Rows to compute: 1 when folding constants, else the frame's length.
    fn n(&self, args: &[&Vect]) -> usize {
        if args.iter().all(|a| a.is_const()) { 1 } else { self.frame.len }
    }

    fn all_const(args: &[&Vect]) -> bool {
        args.iter().all(|a| a.is_const())
    }

    fn type_err(&self, msg: String, span: Span) -> KqlError {
        KqlError::semantic(format!("'{}' operator: {msg}", self.op), span)
    }

    pub fn eval(&self, e: &Expr) -> Result<Vect, KqlError> {
        match &e.kind {
            ExprKind::Literal(v, t) => Ok(Vect::Const(v.clone(), *t)),
            ExprKind::Name(n) => self.name(n, e.span),
            ExprKind::Neg(x) => {
                let v = self.eval(x)?;
                self.negate(v, e.span)
            }
            ExprKind::Binary { op, lhs, rhs } => {
                let l = self.eval(lhs)?;
                let r = self.eval(rhs)?;
                match op {
                    BinOp::Add | BinOp::Sub | BinOp::Mul | BinOp::Div | BinOp::Mod => self.arith(*op, l, r, e.span),
                    BinOp::And | BinOp::Or => self.logic(*op, l, r, lhs.span, rhs.span),
                    BinOp::Str { op: sop, case_sensitive, negated } => {
                        Ok(self.strop(*sop, *case_sensitive, *negated, l, r))
                    }
                    _ => self.compare(*op, l, r, e.span),
                }
            }
            ExprKind::In { expr, list, negated, case_insensitive } => {
                self.in_list(expr, list, *negated, *case_insensitive, e.span)
            }
            ExprKind::Between { expr, lo, hi, negated } => {
                let x = self.eval(expr)?;
                let lo = self.eval(lo)?;
                let mut hi = self.eval(hi)?;
                if matches!(x.ty(), ColumnType::DateTime)
                    && lo.ty() == ColumnType::DateTime
                    && hi.ty() == ColumnType::Timespan
                {
                    hi = self.arith(BinOp::Add, lo.clone(), hi, e.span)?;
                }
                let ge = self.compare(BinOp::Ge, x.clone(), lo, e.span)?;
                let le = self.compare(BinOp::Le, x, hi, e.span)?;
                let both = self.logic(BinOp::And, ge, le, e.span, e.span)?;
                Ok(if *negated { self.not(&both) } else { both })
            }
            ExprKind::Call { func, name_span, args } => self.call(*func, args, e.span, *name_span),
            ExprKind::Index { expr, key } => {
                let x = self.eval(expr)?;
                let k = self.eval(key)?;
                if x.ty() != ColumnType::Dynamic {
                    return Err(self.type_err(format!("indexing needs a dynamic value, got {}", x.ty()), expr.span));
                }
                if !(k.ty().is_stringy() || k.ty().is_integral()) {
                    return Err(self.type_err(format!("an index must be a string or a long, got {}", k.ty()), key.span));
                }
                Ok(self.map_rows(&[&x, &k], ColumnType::Dynamic, |a| index_json(&a[0], &a[1])))
            }
        }
    }

    fn name(&self, n: &str, span: Span) -> Result<Vect, KqlError> {
        if let Some(i) = self.frame.find(n) {
            let mut cache = self.cache.borrow_mut();
            let c = cache[i].get_or_insert_with(|| self.frame.cols[i].materialize());
            return Ok(Vect::Col(c.clone()));
        }
        if let Some((v, t)) = self.ctx.scalars.get(n) {
            return Ok(Vect::Const(v.clone(), *t));
        }
        let msg = if self.op == "let" {
            format!("Failed to resolve scalar expression named '{n}'")
        } else {
            format!("'{}' operator: Failed to resolve scalar expression named '{n}'", self.op)
        };
        Err(KqlError::unresolved(msg, span))
    }

    // -------------------------------------------------------------- generic row-wise mapping

    /// `f` over the row values of `args`, producing a column of `out` (values that do not fit
    /// become null). Folded when all arguments are constant.
    pub fn map_rows(&self, args: &[&Vect], out: ColumnType, f: impl Fn(&[Value]) -> Value) -> Vect {
        let all_const = Self::all_const(args);
        let n = self.n(args);
        let mut col = Column::with_capacity(out, n);
        let mut buf = Vec::with_capacity(args.len());
        for i in 0..n {
            buf.clear();
            buf.extend(args.iter().map(|a| a.get(i)));
            col.push_or_null(&f(&buf));
        }
        wrap(col, all_const)
    }

    fn map_i64(&self, v: &Vect, out: ColumnType, f: impl Fn(i64) -> i64) -> Vect {
        let n = self.n(&[v]);
        let a = i64s(v);
        let res: Vec<i64> = (0..n)
            .map(|i| {
                let x = a.get(i);
                if x == NULL_I64 { NULL_I64 } else { f(x) }
            })
            .collect();
        wrap(i64_col(out, res), v.is_const())
    }

    fn zip_i64(&self, a: &Vect, b: &Vect, out: ColumnType, f: impl Fn(i64, i64) -> i64) -> Vect {
        let n = self.n(&[a, b]);
        let (x, y) = (i64s(a), i64s(b));
        let res: Vec<i64> = (0..n)
            .map(|i| {
                let (p, q) = (x.get(i), y.get(i));
                if p == NULL_I64 || q == NULL_I64 { NULL_I64 } else { f(p, q) }
            })
            .collect();
        wrap(i64_col(out, res), Self::all_const(&[a, b]))
    }

    fn map_f64(&self, v: &Vect, f: impl Fn(f64) -> f64) -> Vect {
        let n = self.n(&[v]);
        let a = f64s(v);
        let res: Vec<Option<f64>> = (0..n).map(|i| a.get(i).map(&f)).collect();
        wrap(f64_col(res), v.is_const())
    }

    fn zip_f64(&self, a: &Vect, b: &Vect, f: impl Fn(f64, f64) -> f64) -> Vect {
        let n = self.n(&[a, b]);
        let (x, y) = (f64s(a), f64s(b));
        let res: Vec<Option<f64>> = (0..n)
            .map(|i| match (x.get(i), y.get(i)) {
                (Some(p), Some(q)) => Some(f(p, q)),
                _ => None,
            })
            .collect();
        wrap(f64_col(res), Self::all_const(&[a, b]))
    }

    /// `f` over every string, once per dictionary entry, producing a string column.
    fn map_str(&self, v: &Vect, f: impl Fn(&str) -> String) -> Vect {
        match v {
            Vect::Const(val, _) => {
                let s = match val {
                    Value::String(s) => f(s),
                    _ => f(""),
                };
                Vect::Const(Value::string(s), ColumnType::String)
            }
            Vect::Col(c) => match &c.data {
                ColumnData::Str { dict, codes } => {
                    let mut nd = Dict::new();
                    let map: Vec<u32> = dict.values().iter().map(|s| nd.intern(&f(s))).collect();
                    let codes = codes.iter().map(|&c| map[c as usize]).collect();
                    Vect::Col(Arc::new(Column::from_data(
                        ColumnType::String,
                        ColumnData::Str { dict: Arc::new(nd), codes },
                    )))
                }
                _ => self.map_rows(&[v], ColumnType::String, |a| Value::string(f(&to_str(&a[0])))),
            },
        }
    }

    // -------------------------------------------------------------- conversions

    /// `v` converted to `to` with KQL's `tostring`/`tolong`/... rules.
    pub fn convert(&self, v: Vect, to: ColumnType) -> Vect {
        let from = v.ty();
        if from == to || (from.is_stringy() && to.is_stringy()) {
            return v;
        }
        if from.is_integral() && to.is_integral() {
            return match v {
                Vect::Const(val, _) => {
                    let val = match val {
                        Value::Long(x) if to == ColumnType::Int && i32::try_from(x).is_err() => Value::Null,
                        other => other,
                    };
                    Vect::Const(val, to)
                }
                Vect::Col(c) => {
                    let ColumnData::I64(xs) = &c.data else { unreachable!() };
                    let xs = if to == ColumnType::Int {
                        xs.iter().map(|&x| if i32::try_from(x).is_ok() { x } else { NULL_I64 }).collect()
                    } else {
                        xs.clone()
                    };
                    Vect::Col(Arc::new(i64_col(to, xs)))
                }
            };
        }
        if to == ColumnType::String {
            return self.map_rows(&[&v], to, |a| Value::string(to_str(&a[0])));
        }
        // Strings: convert each distinct string once.
        if let Vect::Col(c) = &v
            && let ColumnData::Str { dict, codes } = &c.data
            && dict.len() <= codes.len()
        {
            let vals: Vec<Value> = dict.values().iter().map(|s| convert_value(&Value::String(s.clone()), to)).collect();
            let mut col = Column::with_capacity(to, codes.len());
            for &code in codes {
                col.push_or_null(&vals[code as usize]);
            }
            return Vect::Col(Arc::new(col));
        }
        self.map_rows(&[&v], to, |a| convert_value(&a[0], to))
    }

    // -------------------------------------------------------------- operators

    fn negate(&self, v: Vect, span: Span) -> Result<Vect, KqlError> {
        let t = v.ty();
        match t {
            ColumnType::Int | ColumnType::Long | ColumnType::Timespan => {
                Ok(self.map_i64(&v, t, |x| x.checked_neg().unwrap_or(NULL_I64)))
            }
            ColumnType::Real => Ok(self.map_f64(&v, |x| -x)),
            ColumnType::Dynamic => {
                let r = self.convert(v, ColumnType::Real);
                Ok(self.map_f64(&r, |x| -x))
            }
            _ => Err(self.type_err(format!("unary '-' cannot be applied to {t}"), span)),
        }
    }

    pub fn arith(&self, op: BinOp, l: Vect, r: Vect, span: Span) -> Result<Vect, KqlError> {
        use ColumnType::*;
        let (lt, rt) = (l.ty(), r.ty());
        if lt == Dynamic || rt == Dynamic {
            let to = |v: Vect, other: ColumnType| {
                if v.ty() == Dynamic {
                    self.convert(v, if matches!(other, DateTime | Timespan) { Timespan } else { Real })
                } else {
                    v
                }
            };
            let (l2, r2) = (to(l, rt), to(r, lt));
            return self.arith(op, l2, r2, span);
        }
        let int_op = |a: i64, b: i64| -> i64 {
            let r = match op {
                BinOp::Add => a.checked_add(b),
                BinOp::Sub => a.checked_sub(b),
                BinOp::Mul => a.checked_mul(b),
                BinOp::Div => a.checked_div(b),
                BinOp::Mod => a.checked_rem(b),
                _ => None,
            };
            r.unwrap_or(NULL_I64)
        };
        let real_op = |a: f64, b: f64| -> f64 {
            match op {
                BinOp::Add => a + b,
                BinOp::Sub => a - b,
                BinOp::Mul => a * b,
                BinOp::Div => a / b,
                BinOp::Mod => a % b,
                _ => f64::NAN,
            }
        };
        let bad = || {
            self.type_err(format!("the binary operator '{}' cannot be applied to types {lt} and {rt}", op.text()), span)
        };
        Ok(match (lt, rt) {
            (a, b) if a.is_integral() && b.is_integral() => {
                let out = if a == Int && b == Int { Int } else { Long };
                let v = self.zip_i64(&l, &r, Long, int_op);
                if out == Int { self.convert(v, Int) } else { v }
            }
            (a, b) if a.is_numeric() && b.is_numeric() => self.zip_f64(&l, &r, real_op),
            (DateTime, Timespan) => match op {
                BinOp::Add => self.zip_i64(&l, &r, DateTime, |a, b| datetime_ok(a.saturating_add(b))),
                BinOp::Sub => self.zip_i64(&l, &r, DateTime, |a, b| datetime_ok(a.saturating_sub(b))),
                _ => return Err(bad()),
            },
            (Timespan, DateTime) if op == BinOp::Add => {
                self.zip_i64(&l, &r, DateTime, |a, b| datetime_ok(a.saturating_add(b)))
            }
            (DateTime, DateTime) if op == BinOp::Sub => self.zip_i64(&l, &r, Timespan, int_op),
            (Timespan, Timespan) => match op {
                BinOp::Add | BinOp::Sub | BinOp::Mod => self.zip_i64(&l, &r, Timespan, int_op),
                BinOp::Div => self.zip_f64(&self.convert(l, Real), &self.convert(r, Real), real_op),
                _ => return Err(bad()),
            },
            (Timespan, b) if b.is_numeric() && matches!(op, BinOp::Mul | BinOp::Div) => {
                let lr = self.convert(l, Real);
                let v = self.zip_f64(&lr, &r, real_op);
                self.real_to_ticks(v)
            }
            (a, Timespan) if a.is_numeric() && op == BinOp::Mul => {
                let rr = self.convert(r, Real);
                let v = self.zip_f64(&l, &rr, real_op);
                self.real_to_ticks(v)
            }
            _ => return Err(bad()),
        })
    }

    /// A real column of tick counts as a timespan column.
    fn real_to_ticks(&self, v: Vect) -> Vect {
        let n = self.n(&[&v]);
        let a = f64s(&v);
        let res: Vec<i64> = (0..n)
            .map(|i| match a.get(i) {
                Some(x) if x.is_finite() && x.abs() < 9.2e18 => x.round() as i64,
                _ => NULL_I64,
            })
            .collect();
        wrap(i64_col(ColumnType::Timespan, res), v.is_const())
    }

    pub fn compare(&self, op: BinOp, l: Vect, r: Vect, span: Span) -> Result<Vect, KqlError> {
        use ColumnType::*;
        let (lt, rt) = (l.ty(), r.ty());
        if lt == Dynamic || rt == Dynamic {
            let target = |other: ColumnType| {
                if other.is_numeric() {
                    Real
                } else if other == Dynamic {
                    String
                } else {
                    other
                }
            };
            let l2 = if lt == Dynamic { self.convert(l, target(rt)) } else { l };
            let r2 = if rt == Dynamic { self.convert(r, target(lt)) } else { r };
            return self.compare(op, l2, r2, span);
        }
        let ci = matches!(op, BinOp::EqCi | BinOp::NeCi);
        let all_const = Self::all_const(&[&l, &r]);
        let n = self.n(&[&l, &r]);
        let out: Vec<Option<bool>> = if lt.is_stringy() && rt.is_stringy() {
            self.compare_strings(op, &l, &r, n)
        } else if ci {
            return Err(self.type_err(format!("'{}' needs string operands, got {lt} and {rt}", op.text()), span));
        } else if (lt.is_integral() && rt.is_integral()) || (lt == rt && matches!(lt, DateTime | Timespan | Bool)) {
            if lt == Bool {
                let (a, b) = (bools(&l), bools(&r));
                (0..n)
                    .map(|i| match (a.get(i), b.get(i)) {
                        (Some(x), Some(y)) => Some(ord_op(op, x.cmp(&y))),
                        _ => None,
                    })
                    .collect()
            } else {
                let (a, b) = (i64s(&l), i64s(&r));
                (0..n)
                    .map(|i| {
                        let (x, y) = (a.get(i), b.get(i));
                        if x == NULL_I64 || y == NULL_I64 { None } else { Some(ord_op(op, x.cmp(&y))) }
                    })
                    .collect()
            }
        } else if lt.is_numeric() && rt.is_numeric() {
            let (a, b) = (f64s(&l), f64s(&r));
            (0..n)
                .map(|i| match (a.get(i), b.get(i)) {
                    (Some(x), Some(y)) => x.partial_cmp(&y).map(|o| ord_op(op, o)),
                    _ => None,
                })
                .collect()
        } else {
            return Err(
                self.type_err(format!("Cannot compare values of types {lt} and {rt}. Try adding explicit casts"), span)
            );
        };
        Ok(wrap(bool_col(out), all_const))
    }

    fn compare_strings(&self, op: BinOp, l: &Vect, r: &Vect, n: usize) -> Vec<Option<bool>> {
        let (a, b) = (strs(l), strs(r));
        let ne = matches!(op, BinOp::Ne | BinOp::NeCi);
        match (a, b, op) {
            // Column == constant: one dictionary lookup.
            (Strs::C(dict, codes), Strs::K(s), BinOp::Eq | BinOp::Ne)
            | (Strs::K(s), Strs::C(dict, codes), BinOp::Eq | BinOp::Ne) => {
                let target = dict.lookup(s);
                codes.iter().map(|&c| Some((Some(c) == target) != ne)).collect()
            }
            (Strs::C(dict, codes), Strs::K(s), _) => str_pred(Strs::C(dict, codes), n, |x| str_cmp(op, x, s)),
            (Strs::K(s), Strs::C(dict, codes), _) => str_pred(Strs::C(dict, codes), n, |x| str_cmp(op, s, x)),
            (Strs::C(d1, c1), Strs::C(d2, c2), BinOp::Eq | BinOp::Ne) if std::ptr::eq(d1, d2) => {
                c1.iter().zip(c2).map(|(x, y)| Some((x == y) != ne)).collect()
            }
            _ => (0..n).map(|i| Some(str_cmp(op, a.get(i), b.get(i)))).collect(),
        }
    }

    fn as_bool(&self, v: Vect, span: Span, what: &str) -> Result<Vect, KqlError> {
        match v.ty() {
            ColumnType::Bool => Ok(v),
            ColumnType::Dynamic => Ok(self.convert(v, ColumnType::Bool)),
            t => Err(self.type_err(format!("{what} must be of type bool, got {t}"), span)),
        }
    }

    fn logic(&self, op: BinOp, l: Vect, r: Vect, lspan: Span, rspan: Span) -> Result<Vect, KqlError> {
        let word = if op == BinOp::And { "and" } else { "or" };
        let l = self.as_bool(l, lspan, &format!("the left operand of '{word}'"))?;
        let r = self.as_bool(r, rspan, &format!("the right operand of '{word}'"))?;
        let n = self.n(&[&l, &r]);
        let (a, b) = (bools(&l), bools(&r));
        let out: Vec<Option<bool>> = if op == BinOp::And {
            (0..n)
                .map(|i| match (a.get(i), b.get(i)) {
                    (Some(false), _) | (_, Some(false)) => Some(false),
                    (Some(true), Some(true)) => Some(true),
                    _ => None,
                })
                .collect()
        } else {
            (0..n)
                .map(|i| match (a.get(i), b.get(i)) {
                    (Some(true), _) | (_, Some(true)) => Some(true),
                    (Some(false), Some(false)) => Some(false),
                    _ => None,
                })
                .collect()
        };
        Ok(wrap(bool_col(out), Self::all_const(&[&l, &r])))
    }

    fn not(&self, v: &Vect) -> Vect {
        let n = self.n(&[v]);
        let a = bools(v);
        wrap(bool_col((0..n).map(|i| a.get(i).map(|x| !x)).collect()), v.is_const())
    }

    fn strop(&self, op: StrOp, cs: bool, negated: bool, l: Vect, r: Vect) -> Vect {
        let l = self.convert(l, ColumnType::String);
        let r = self.convert(r, ColumnType::String);
        let n = self.n(&[&l, &r]);
        let all_const = Self::all_const(&[&l, &r]);
        let out = match (strs(&l), strs(&r)) {
            (hay, Strs::K(needle)) => str_pred(hay, n, |h| str_match(op, cs, h, needle) != negated),
            (a, b) => (0..n).map(|i| Some(str_match(op, cs, a.get(i), b.get(i)) != negated)).collect(),
        };
        wrap(bool_col(out), all_const)
    }

    fn in_list(&self, expr: &Expr, list: &InList, negated: bool, ci: bool, span: Span) -> Result<Vect, KqlError> {
        let mut x = self.eval(expr)?;
        let mut items: Vec<Value> = Vec::new();
        // `x in (name)` where `name` is a tabular `let` or a table.
        let tabular_name = match list {
            InList::Values(es) => match es.as_slice() {
                [Expr { kind: ExprKind::Name(n), span: nspan }]
                    if self.frame.find(n).is_none()
                        && !self.ctx.scalars.contains_key(n)
                        && (self.ctx.tabulars.contains_key(n) || self.ctx.catalog.table(n).is_some()) =>
                {
                    Some(crate::ast::TabularExpr {
                        source: crate::ast::TabularSource::Name(crate::ast::Ident { name: n.clone(), span: *nspan }),
                        ops: Vec::new(),
                        span: *nspan,
                    })
                }
                _ => None,
            },
            InList::Tabular(_) => None,
        };
        let tabular = match (&tabular_name, list) {
            (Some(t), _) => Some(t),
            (None, InList::Tabular(t)) => Some(&**t),
            (None, InList::Values(_)) => None,
        };
        match (tabular, list) {
            (None, InList::Tabular(_)) => unreachable!("a tabular list is always Some above"),
            (None, InList::Values(es)) => {
                for e in es {
                    match self.eval(e)? {
                        Vect::Const(Value::Dynamic(j), _) if j.is_array() => {
                            items.extend(j.as_array().into_iter().flatten().map(json_to_value))
                        }
                        Vect::Const(v, _) => items.push(v),
                        Vect::Col(_) => {
                            return Err(
                                self.type_err("the values of an 'in' list must be constants".to_string(), e.span)
                            );
                        }
                    }
                }
            }
            (Some(t), _) => {
                let f = self.ctx.exec_tabular(t)?;
                let Some(first) = f.cols.first() else {
                    return Err(self.type_err("the 'in' subquery returns no columns".to_string(), t.span));
                };
                let c = first.materialize();
                let mut seen = FxHashSet::default();
                for i in 0..c.len() {
                    let v = c.get(i);
                    if seen.insert(value_key(&v)) {
                        items.push(v);
                    }
                }
            }
        }
        if x.ty() == ColumnType::Dynamic {
            x = self.convert(x, ColumnType::String);
        }
        let n = self.n(&[&x]);
        let t = x.ty();
        let mismatch =
            |v: &Value| self.type_err(format!("the 'in' list value {} does not match the type {t}", describe(v)), span);
        let out: Vec<Option<bool>> = if t.is_stringy() {
            let set: FxHashSet<String> = items
                .iter()
                .map(|v| {
                    let s = to_str(v);
                    if ci { s.to_lowercase() } else { s }
                })
                .collect();
            str_pred(strs(&x), n, |s| {
                let hit = if ci { set.contains(&s.to_lowercase()) } else { set.contains(s) };
                hit != negated
            })
        } else if t.is_integral() || matches!(t, ColumnType::DateTime | ColumnType::Timespan) {
            let mut set = FxHashSet::default();
            let mut reals = Vec::new();
            for v in &items {
                match (v, t) {
                    (Value::Long(k), t) if t.is_integral() => {
                        set.insert(*k);
                    }
                    (Value::Real(f), t) if t.is_integral() => reals.push(*f),
                    (Value::DateTime(d), ColumnType::DateTime) => {
                        set.insert(d.ticks());
                    }
                    (Value::Timespan(s), ColumnType::Timespan) => {
                        set.insert(s.0);
                    }
                    (Value::Null, _) => {}
                    (v, _) => return Err(mismatch(v)),
                }
            }
            let a = i64s(&x);
            (0..n)
                .map(|i| {
                    let v = a.get(i);
                    if v == NULL_I64 {
                        return Some(negated);
                    }
                    let hit = set.contains(&v) || reals.contains(&(v as f64));
                    Some(hit != negated)
                })
                .collect()
        } else if t == ColumnType::Real {
            let mut vals = Vec::new();
            for v in &items {
                match v {
                    Value::Long(k) => vals.push(*k as f64),
                    Value::Real(f) => vals.push(*f),
                    Value::Null => {}
                    v => return Err(mismatch(v)),
                }
            }
            let a = f64s(&x);
            (0..n)
                .map(|i| match a.get(i) {
                    None => Some(negated),
                    Some(v) => Some(vals.contains(&v) != negated),
                })
                .collect()
        } else if t == ColumnType::Bool {
            let mut vals = Vec::new();
            for v in &items {
                match v {
                    Value::Bool(b) => vals.push(*b),
                    Value::Null => {}
                    v => return Err(mismatch(v)),
                }
            }
            let a = bools(&x);
            (0..n)
                .map(|i| match a.get(i) {
                    None => Some(negated),
                    Some(v) => Some(vals.contains(&v) != negated),
                })
                .collect()
        } else {
            return Err(self.type_err(format!("'in' cannot be applied to type {t}"), span));
        };
        Ok(wrap(bool_col(out), x.is_const()))
    }

    // -------------------------------------------------------------- functions

    fn call(&self, func: Func, args: &[Expr], span: Span, name_span: Span) -> Result<Vect, KqlError> {
        use ColumnType::*;
        if func.is_aggregate() {
            return Err(self.type_err(
                format!("the aggregate function '{}' can only be used in summarize", func.name()),
                name_span,
            ));
        }
        let a: Vec<Vect> = args.iter().map(|x| self.eval(x)).collect::<Result<_, _>>()?;
        let arg_err = |k: usize, want: &str| {
            self.type_err(
                format!("argument {} of '{}' must be {want}, got {}", k + 1, func.name(), a[k].ty()),
                args[k].span,
            )
        };
        let want = |k: usize, ok: bool, what: &str| if ok { Ok(()) } else { Err(arg_err(k, what)) };
        let now = self.ctx.now.ticks();
        Ok(match func {
            Func::Ago => {
                want(0, a[0].ty() == Timespan, "a timespan")?;
                self.map_i64(&a[0], DateTime, |t| datetime_ok(now.saturating_sub(t)))
            }
            Func::Now => {
                if let Some(off) = a.first() {
                    want(0, off.ty() == Timespan, "a timespan")?;
                    self.map_i64(off, DateTime, |t| datetime_ok(now.saturating_add(t)))
                } else {
                    Vect::Const(Value::DateTime(self.ctx.now), DateTime)
                }
            }
            Func::Bin | Func::Floor => {
                let (x, s) = (&a[0], &a[1]);
                match (x.ty(), s.ty()) {
                    (DateTime | Timespan, Timespan) => {
                        let t = x.ty();
                        self.zip_i64(x, s, t, |v, s| if s <= 0 { NULL_I64 } else { v - v.rem_euclid(s) })
                    }
                    (p, q) if p.is_integral() && q.is_integral() => {
                        let v = self.zip_i64(x, s, Long, |v, s| if s <= 0 { NULL_I64 } else { v.div_euclid(s) * s });
                        self.convert(v, p)
                    }
                    (p, q) if p.is_numeric() && q.is_numeric() => {
                        self.zip_f64(x, s, |v, s| if s <= 0.0 { f64::NAN } else { (v / s).floor() * s })
                    }
                    (p, _) if !(p.is_numeric() || matches!(p, DateTime | Timespan)) => {
                        return Err(arg_err(0, "a number, datetime or timespan"));
                    }
                    _ => return Err(arg_err(1, "a bin size of a matching type")),
                }
            }
            Func::Not => {
                let v = self.as_bool(a[0].clone(), args[0].span, "the argument of 'not'")?;
                self.not(&v)
            }
            Func::IsEmpty | Func::IsNotEmpty | Func::IsNull | Func::IsNotNull => {
                let x = &a[0];
                let n = self.n(&[x]);
                let empty_test = matches!(func, Func::IsEmpty | Func::IsNotEmpty);
                let neg = matches!(func, Func::IsNotEmpty | Func::IsNotNull);
                let out: Vec<Option<bool>> = if x.ty().is_stringy() {
                    if empty_test { str_pred(strs(x), n, |s| s.is_empty() != neg) } else { vec![Some(neg); n] }
                } else {
                    (0..n)
                        .map(|i| {
                            let v = x.get(i);
                            let empty = match &v {
                                Value::Null => true,
                                Value::Dynamic(j) if empty_test => j.as_str() == Some("") || j.is_null(),
                                _ => false,
                            };
                            Some(empty != neg)
                        })
                        .collect()
                };
                wrap(bool_col(out), x.is_const())
            }
            Func::Iff => {
                let c = self.as_bool(a[0].clone(), args[0].span, "the condition of 'iff'")?;
                let t = unify(a[1].ty(), a[2].ty()).ok_or_else(|| {
                    self.type_err(
                        format!("'iff' branches have incompatible types {} and {}", a[1].ty(), a[2].ty()),
                        span,
                    )
                })?;
                let (x, y) = (self.convert(a[1].clone(), t), self.convert(a[2].clone(), t));
                self.map_rows(&[&c, &x, &y], t, |v| if v[0] == Value::Bool(true) { v[1].clone() } else { v[2].clone() })
            }
            Func::Coalesce => {
                let mut t = a[0].ty();
                for (k, v) in a.iter().enumerate().skip(1) {
                    t = unify(t, v.ty()).ok_or_else(|| arg_err(k, &format!("of a type compatible with {t}")))?;
                }
                let conv: Vec<Vect> = a.iter().map(|v| self.convert(v.clone(), t)).collect();
                let refs: Vec<&Vect> = conv.iter().collect();
                self.map_rows(&refs, t, |vals| {
                    vals.iter()
                        .find(|v| !matches!(v, Value::Null) && !matches!(v, Value::String(s) if s.is_empty()))
                        .cloned()
                        .unwrap_or(Value::Null)
                })
            }
            Func::ToString => self.convert(a[0].clone(), String),
            Func::ToLong => self.convert(a[0].clone(), Long),
            Func::ToInt => self.convert(a[0].clone(), Int),
            Func::ToReal => self.convert(a[0].clone(), Real),
            Func::ToBool => self.convert(a[0].clone(), Bool),
            Func::ToDateTime => self.convert(a[0].clone(), DateTime),
            Func::ToTimespan => self.convert(a[0].clone(), Timespan),
            Func::ToDynamic => self.convert(a[0].clone(), Dynamic),
            Func::Round => {
                want(0, a[0].ty().is_numeric() || a[0].ty() == Dynamic, "a number")?;
                let digits = match a.get(1) {
                    None => 0,
                    Some(Vect::Const(Value::Long(d), _)) => *d,
                    Some(_) => return Err(arg_err(1, "a constant long")),
                };
                let x = if a[0].ty() == Dynamic { self.convert(a[0].clone(), Real) } else { a[0].clone() };
                if x.ty().is_integral() && digits >= 0 {
                    x
                } else if x.ty().is_integral() {
                    let p = 10i64.checked_pow((-digits) as u32).unwrap_or(i64::MAX);
                    let t = x.ty();
                    self.map_i64(&x, t, |v| {
                        let r = (v as f64 / p as f64).round() * p as f64;
                        r as i64
                    })
                } else {
                    let p = 10f64.powi(digits.clamp(-300, 300) as i32);
                    self.map_f64(&x, |v| (v * p).round() / p)
                }
            }
            Func::Ceiling | Func::Abs | Func::Sqrt | Func::Log | Func::Log10 | Func::Exp => {
                want(0, a[0].ty().is_numeric() || a[0].ty() == Dynamic, "a number")?;
                let x = if a[0].ty() == Dynamic { self.convert(a[0].clone(), Real) } else { a[0].clone() };
                match func {
                    Func::Ceiling if x.ty().is_integral() => x,
                    Func::Abs if x.ty().is_integral() => {
                        let t = x.ty();
                        self.map_i64(&x, t, |v| v.checked_abs().unwrap_or(NULL_I64))
                    }
                    Func::Ceiling => self.map_f64(&x, f64::ceil),
                    Func::Abs => self.map_f64(&x, f64::abs),
                    Func::Sqrt => self.map_f64(&x, f64::sqrt),
                    Func::Log => self.map_f64(&x, f64::ln),
                    Func::Log10 => self.map_f64(&x, f64::log10),
                    _ => self.map_f64(&x, f64::exp),
                }
            }
            Func::Pow => {
                want(0, a[0].ty().is_numeric(), "a number")?;
                want(1, a[1].ty().is_numeric(), "a number")?;
                self.zip_f64(&a[0], &a[1], f64::powf)
            }
            Func::StrCat => {
                let conv: Vec<Vect> = a.iter().map(|v| self.convert(v.clone(), String)).collect();
                let refs: Vec<&Vect> = conv.iter().collect();
                self.map_rows(&refs, String, |vals| {
                    let mut s = std::string::String::new();
                    for v in vals {
                        if let Value::String(x) = v {
                            s.push_str(x);
                        }
                    }
                    Value::string(s)
                })
            }
            Func::StrLen => {
                let s = self.convert(a[0].clone(), String);
                self.map_rows(&[&s], Long, |v| Value::Long(to_str(&v[0]).chars().count() as i64))
            }
            Func::ToLower => {
                let s = self.convert(a[0].clone(), String);
                self.map_str(&s, str::to_lowercase)
            }
            Func::ToUpper => {
                let s = self.convert(a[0].clone(), String);
                self.map_str(&s, str::to_uppercase)
            }
            Func::Substring => {
                let s = self.convert(a[0].clone(), String);
                want(1, a[1].ty().is_integral(), "a long")?;
                if let Some(l) = a.get(2) {
                    want(2, l.ty().is_integral(), "a long")?;
                }
                let len = a.get(2).cloned().unwrap_or(Vect::Const(Value::Null, Long));
                self.map_rows(&[&s, &a[1], &len], String, |v| {
                    let text = to_str(&v[0]);
                    let count = text.chars().count() as i64;
                    let start = match v[1] {
                        Value::Long(x) => x.clamp(0, count),
                        _ => return Value::string(""),
                    };
                    let take = match v[2] {
                        Value::Long(x) => x.max(0),
                        _ => count,
                    };
                    Value::string(
                        text.chars().skip(start as usize).take(take as usize).collect::<std::string::String>(),
                    )
                })
            }
            Func::StartOfDay | Func::StartOfWeek | Func::StartOfMonth | Func::StartOfYear | Func::EndOfDay => {
                want(0, a[0].ty() == DateTime, "a datetime")?;
                match func {
                    Func::StartOfDay => self.map_i64(&a[0], DateTime, |t| t - t.rem_euclid(TICKS_PER_DAY)),
                    Func::EndOfDay => {
                        self.map_i64(&a[0], DateTime, |t| t - t.rem_euclid(TICKS_PER_DAY) + TICKS_PER_DAY - 1)
                    }
                    Func::StartOfWeek => self.map_i64(&a[0], DateTime, |t| {
                        let day = t - t.rem_euclid(TICKS_PER_DAY);
                        let dow = day_of_week(Dt::from_ticks(t).unwrap_or(Dt::UNIX_EPOCH));
                        datetime_ok(day - dow * TICKS_PER_DAY)
                    }),
                    Func::StartOfMonth => self.map_i64(&a[0], DateTime, |t| {
                        Dt::from_ticks(t).map_or(NULL_I64, |d| start_of_month(d).ticks())
                    }),
                    _ => self
                        .map_i64(&a[0], DateTime, |t| Dt::from_ticks(t).map_or(NULL_I64, |d| start_of_year(d).ticks())),
                }
            }
            Func::HourOfDay => {
                want(0, a[0].ty() == DateTime, "a datetime")?;
                self.map_i64(&a[0], Int, |t| t.rem_euclid(TICKS_PER_DAY) / TICKS_PER_HOUR)
            }
            Func::DayOfWeek => {
                want(0, a[0].ty() == DateTime, "a datetime")?;
                self.map_i64(&a[0], Timespan, |t| {
                    Dt::from_ticks(t).map_or(NULL_I64, |d| day_of_week(d) * TICKS_PER_DAY)
                })
            }
            Func::DatetimeAdd | Func::DatetimeDiff => {
                let Vect::Const(Value::String(part), _) = &a[0] else {
                    return Err(arg_err(0, "a constant string naming the period"));
                };
                let part = part.to_lowercase();
                let unit = period_ticks(&part);
                if unit.is_none() && !matches!(part.as_str(), "month" | "year" | "quarter") {
                    return Err(self.type_err(
                        format!("'{}' is not a supported period (year, quarter, month, week, day, hour, minute, second, millisecond)", part),
                        args[0].span,
                    ));
                }
                if func == Func::DatetimeAdd {
                    want(1, a[1].ty().is_integral(), "a long")?;
                    want(2, a[2].ty() == DateTime, "a datetime")?;
                    self.map_rows(&[&a[1], &a[2]], DateTime, |v| match (&v[0], &v[1]) {
                        (Value::Long(k), Value::DateTime(d)) => datetime_add(&part, *k, *d),
                        _ => Value::Null,
                    })
                } else {
                    want(1, a[1].ty() == DateTime, "a datetime")?;
                    want(2, a[2].ty() == DateTime, "a datetime")?;
                    self.map_rows(&[&a[1], &a[2]], Long, |v| match (&v[0], &v[1]) {
                        (Value::DateTime(x), Value::DateTime(y)) => datetime_diff(&part, *x, *y),
                        _ => Value::Null,
                    })
                }
            }
            _ => unreachable!("aggregates are rejected above"),
        })
    }
}

fn ord_op(op: BinOp, o: Ordering) -> bool {
    match op {
        BinOp::Eq | BinOp::EqCi => o == Ordering::Equal,
        BinOp::Ne | BinOp::NeCi => o != Ordering::Equal,
        BinOp::Lt => o == Ordering::Less,
        BinOp::Le => o != Ordering::Greater,
        BinOp::Gt => o == Ordering::Greater,
        BinOp::Ge => o != Ordering::Less,
        _ => false,
    }
}

fn eq_ci(a: &str, b: &str) -> bool {
    if a.is_ascii() && b.is_ascii() { a.eq_ignore_ascii_case(b) } else { a.to_lowercase() == b.to_lowercase() }
}

fn str_cmp(op: BinOp, a: &str, b: &str) -> bool {
    match op {
        BinOp::EqCi => eq_ci(a, b),
        BinOp::NeCi => !eq_ci(a, b),
        _ => ord_op(op, a.cmp(b)),
    }
}

fn is_term_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b >= 0x80
}

/// `has`, `contains`, `startswith`, `endswith`, `hasprefix` of `needle` in `hay`.
/// `has` matches whole terms: the match may not extend an alphanumeric run of `hay`.
pub(crate) fn str_match(op: StrOp, cs: bool, hay: &str, needle: &str) -> bool {
    if !cs && !needle.is_ascii() {
        return str_match(op, true, &hay.to_lowercase(), &needle.to_lowercase());
    }
    let (h, n) = (hay.as_bytes(), needle.as_bytes());
    let eq = |w: &[u8]| {
        if cs { w == n } else { w.eq_ignore_ascii_case(n) }
    };
    if n.is_empty() {
        return true;
    }
    if h.len() < n.len() {
        return false;
    }
    match op {
        StrOp::StartsWith => eq(&h[..n.len()]),
        StrOp::EndsWith => eq(&h[h.len() - n.len()..]),
        StrOp::Contains => h.windows(n.len()).any(eq),
        StrOp::Has | StrOp::HasPrefix => (0..=h.len() - n.len()).any(|s| {
            if !eq(&h[s..s + n.len()]) {
                return false;
            }
            let before = s == 0 || !is_term_byte(h[s - 1]) || !is_term_byte(n[0]);
            let end = s + n.len();
            let after =
                op == StrOp::HasPrefix || end == h.len() || !is_term_byte(h[end]) || !is_term_byte(n[n.len() - 1]);
            before && after
        }),
    }
}

/// The common type of two branches (`iff`, `coalesce`).
fn unify(a: ColumnType, b: ColumnType) -> Option<ColumnType> {
    use ColumnType::*;
    Some(match (a, b) {
        _ if a == b => a,
        (x, y) if x.is_integral() && y.is_integral() => Long,
        (x, y) if x.is_numeric() && y.is_numeric() => Real,
        (x, y) if x.is_stringy() && y.is_stringy() => String,
        (Dynamic, _) | (_, Dynamic) => Dynamic,
        _ => return None,
    })
}

/// `tostring` of a value.
pub(crate) fn to_str(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::Bool(b) => b.to_string(),
        Value::Long(x) => x.to_string(),
        Value::Real(x) => format_real(*x),
        Value::String(s) => s.to_string(),
        Value::DateTime(d) => d.to_string(),
        Value::Timespan(t) => t.to_string(),
        Value::Dynamic(j) => match &**j {
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        },
    }
}

pub(crate) fn format_real(x: f64) -> String {
    if x.is_nan() {
        "NaN".into()
    } else if x.is_infinite() {
        if x > 0.0 { "Infinity".into() } else { "-Infinity".into() }
    } else if x.fract() == 0.0 && x.abs() < 1e15 {
        format!("{}", x as i64)
    } else {
        format!("{x}")
    }
}

/// KQL's conversion functions (`tolong`, `todouble`, `todatetime`, ...) on one value; null when
/// the value does not convert.
pub(crate) fn convert_value(v: &Value, to: ColumnType) -> Value {
    use ColumnType::*;
    let json_scalar = |j: &serde_json::Value| -> Value { json_to_value(j) };
    match to {
        String | Guid => Value::string(to_str(v)),
        Int | Long => {
            let x = match v {
                Value::Long(x) => Some(*x),
                Value::Real(f) if f.is_finite() && f.abs() < 9.2e18 => Some(f.trunc() as i64),
                Value::Bool(b) => Some(*b as i64),
                Value::String(s) => parse_long(s),
                Value::DateTime(d) => Some(d.ticks()),
                Value::Timespan(t) => Some(t.0),
                Value::Dynamic(j) => return convert_value(&json_scalar(j), to),
                _ => None,
            };
            match x {
                Some(x) if to == Int && i32::try_from(x).is_err() => Value::Null,
                Some(x) => Value::Long(x),
                None => Value::Null,
            }
        }
        Real => match v {
            Value::Long(x) => Value::Real(*x as f64),
            Value::Real(f) => Value::Real(*f),
            Value::Bool(b) => Value::Real(*b as i64 as f64),
            Value::String(s) => s.trim().parse::<f64>().map_or(Value::Null, Value::Real),
            Value::DateTime(d) => Value::Real(d.ticks() as f64),
            Value::Timespan(t) => Value::Real(t.0 as f64),
            Value::Dynamic(j) => convert_value(&json_scalar(j), to),
            Value::Null => Value::Null,
        },
        Bool => match v {
            Value::Bool(b) => Value::Bool(*b),
            Value::Long(x) => Value::Bool(*x != 0),
            Value::Real(f) => Value::Bool(*f != 0.0),
            Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
                "true" | "1" => Value::Bool(true),
                "false" | "0" => Value::Bool(false),
                _ => Value::Null,
            },
            Value::Dynamic(j) => convert_value(&json_scalar(j), to),
            _ => Value::Null,
        },
        DateTime => match v {
            Value::DateTime(d) => Value::DateTime(*d),
            Value::String(s) => crate::value::DateTime::parse(s).map_or(Value::Null, Value::DateTime),
            Value::Long(x) => crate::value::DateTime::from_ticks(*x).map_or(Value::Null, Value::DateTime),
            Value::Dynamic(j) => convert_value(&json_scalar(j), to),
            _ => Value::Null,
        },
        Timespan => match v {
            Value::Timespan(t) => Value::Timespan(*t),
            Value::String(s) => crate::value::Timespan::parse(s).map_or(Value::Null, Value::Timespan),
            Value::Long(x) => Value::Timespan(crate::value::Timespan(*x)),
            Value::Real(f) if f.is_finite() => Value::Timespan(crate::value::Timespan(f.round() as i64)),
            Value::Dynamic(j) => convert_value(&json_scalar(j), to),
            _ => Value::Null,
        },
        Dynamic => match v {
            Value::Null => Value::Null,
            Value::Dynamic(j) => Value::Dynamic(j.clone()),
            Value::String(s) => match serde_json::from_str::<serde_json::Value>(s) {
                Ok(serde_json::Value::Null) => Value::Null,
                Ok(j) => Value::dynamic(j),
                Err(_) => Value::dynamic(serde_json::Value::String(s.to_string())),
            },
            other => Value::dynamic(value_to_json(other)),
        },
    }
}

fn parse_long(s: &str) -> Option<i64> {
    let s = s.trim();
    s.parse::<i64>()
        .ok()
        .or_else(|| s.parse::<f64>().ok().filter(|f| f.is_finite() && f.abs() < 9.2e18).map(|f| f.trunc() as i64))
}

/// A JSON scalar as the closest KQL value (objects and arrays stay dynamic).
pub(crate) fn json_to_value(j: &serde_json::Value) -> Value {
    match j {
        serde_json::Value::Null => Value::Null,
        serde_json::Value::Bool(b) => Value::Bool(*b),
        serde_json::Value::Number(n) => {
            n.as_i64().map(Value::Long).unwrap_or_else(|| Value::Real(n.as_f64().unwrap_or(f64::NAN)))
        }
        serde_json::Value::String(s) => Value::string(s),
        other => Value::dynamic(other.clone()),
    }
}

fn index_json(x: &Value, k: &Value) -> Value {
    let Value::Dynamic(j) = x else {
        return Value::Null;
    };
    let child = match k {
        Value::String(key) => j.get(&**key),
        Value::Long(i) => j.as_array().and_then(|a| {
            let idx = if *i < 0 { a.len() as i64 + i } else { *i };
            usize::try_from(idx).ok().and_then(|u| a.get(u))
        }),
        _ => None,
    };
    match child {
        None | Some(serde_json::Value::Null) => Value::Null,
        Some(c) => Value::dynamic(c.clone()),
    }
}

/// A hashable identity of a value (for distinct sets).
pub(crate) fn value_key(v: &Value) -> String {
    match v {
        Value::Null => "\u{0}null".into(),
        Value::Real(f) => format!("r{}", f.to_bits()),
        Value::Long(x) => format!("l{x}"),
        Value::String(s) => format!("s{s}"),
        other => format!("{other:?}"),
    }
}

fn describe(v: &Value) -> String {
    match v {
        Value::String(s) => format!("'{s}' (string)"),
        Value::Long(x) => format!("{x} (long)"),
        Value::Real(x) => format!("{x} (real)"),
        Value::Bool(b) => format!("{b} (bool)"),
        Value::DateTime(d) => format!("{d} (datetime)"),
        Value::Timespan(t) => format!("{t} (timespan)"),
        Value::Dynamic(j) => format!("{j} (dynamic)"),
        Value::Null => "null".into(),
    }
}

fn period_ticks(part: &str) -> Option<i64> {
    Some(match part {
        "week" => 7 * TICKS_PER_DAY,
        "day" => TICKS_PER_DAY,
        "hour" => TICKS_PER_HOUR,
        "minute" => TICKS_PER_MINUTE,
        "second" => TICKS_PER_SECOND,
        "millisecond" => TICKS_PER_MILLISECOND,
        _ => return None,
    })
}

fn datetime_add(part: &str, k: i64, d: DateTime) -> Value {
    let res = match period_ticks(part) {
        Some(unit) => k.checked_mul(unit).and_then(|t| d.checked_add(Timespan(t))),
        None => {
            let months = match part {
                "year" => k.checked_mul(12),
                "quarter" => k.checked_mul(3),
                _ => Some(k),
            };
            months.and_then(|m| add_months(d, m))
        }
    };
    res.map_or(Value::Null, Value::DateTime)
}

fn add_months(d: DateTime, months: i64) -> Option<DateTime> {
    let (y, m, day, ..) = d.to_parts();
    let total = y.checked_mul(12)? + (m as i64 - 1) + months;
    let (ny, nm) = (total.div_euclid(12), (total.rem_euclid(12) + 1) as u32);
    let tod = d.ticks().rem_euclid(TICKS_PER_DAY);
    // Clamp the day to the target month's length.
    let base = (1..=day).rev().find_map(|dd| DateTime::from_ymd_hms(ny, nm, dd, 0, 0, 0))?;
    DateTime::from_ticks(base.ticks() + tod)
}

fn datetime_diff(part: &str, a: DateTime, b: DateTime) -> Value {
    let v = match part {
        "year" => a.to_parts().0 - b.to_parts().0,
        "quarter" | "month" => {
            let (ya, ma, ..) = a.to_parts();
            let (yb, mb, ..) = b.to_parts();
            let months = (ya * 12 + ma as i64) - (yb * 12 + mb as i64);
            if part == "quarter" { (ya * 4 + (ma as i64 - 1) / 3) - (yb * 4 + (mb as i64 - 1) / 3) } else { months }
        }
        "week" => {
            let sw = |d: DateTime| (d.ticks().div_euclid(TICKS_PER_DAY) - day_of_week(d)) / 7;
            sw(a) - sw(b)
        }
        _ => {
            let unit = period_ticks(part).unwrap_or(TICKS_PER_DAY);
            a.ticks().div_euclid(unit) - b.ticks().div_euclid(unit)
        }
    };
    Value::Long(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn has_matches_whole_terms_only() {
        use StrOp::*;
        assert!(str_match(Has, false, "Token limit is exceeded", "limit"));
        assert!(str_match(Has, false, "Token limit is exceeded", "LIMIT"));
        assert!(!str_match(Has, false, "Token limit is exceeded", "limi"));
        assert!(!str_match(Has, false, "unlimited", "limit"));
        assert!(str_match(Has, false, "rate-limit-by-key", "limit"));
        assert!(str_match(Has, false, "a api-v1 b", "api-v1"));
        assert!(!str_match(Has, true, "Token limit", "LIMIT"));
        assert!(str_match(HasPrefix, false, "Token limiter", "limit"));
        assert!(str_match(Contains, false, "unlimited", "LIMIT"));
        assert!(str_match(StartsWith, false, "westeurope", "WEST"));
        assert!(str_match(EndsWith, true, "westeurope", "europe"));
        assert!(str_match(Contains, false, "Straße", "STRASSE") == "straße".contains("strasse"));
        assert!(str_match(Contains, false, "ÄBC", "äb"));
    }

    #[test]
    fn conversions() {
        assert_eq!(convert_value(&Value::string(" 42 "), ColumnType::Long), Value::Long(42));
        assert_eq!(convert_value(&Value::string("4.7"), ColumnType::Long), Value::Long(4));
        assert_eq!(convert_value(&Value::string("x"), ColumnType::Long), Value::Null);
        assert_eq!(convert_value(&Value::Real(3.0), ColumnType::String), Value::string("3"));
        assert_eq!(convert_value(&Value::Real(2.5), ColumnType::String), Value::string("2.5"));
        assert_eq!(
            convert_value(&Value::string("{\"a\":1}"), ColumnType::Dynamic),
            Value::dynamic(serde_json::json!({"a": 1}))
        );
        assert_eq!(convert_value(&Value::dynamic(serde_json::json!("s")), ColumnType::String), Value::string("s"));
        assert_eq!(convert_value(&Value::Long(1 << 40), ColumnType::Int), Value::Null);
    }

    #[test]
    fn calendar_arithmetic() {
        let d = DateTime::parse("2026-01-31T10:00:00Z").unwrap();
        assert_eq!(datetime_add("month", 1, d), Value::DateTime(DateTime::parse("2026-02-28T10:00:00Z").unwrap()));
        let e = DateTime::parse("2026-03-01T00:00:00Z").unwrap();
        assert_eq!(datetime_diff("month", e, d), Value::Long(2));
        assert_eq!(datetime_diff("day", e, d), Value::Long(29));
    }
}
