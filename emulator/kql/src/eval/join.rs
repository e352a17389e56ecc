//! `join`: hash join of the pipeline (left) with a subquery or table (right).
//!
//! Invariants:
//! - Output rows follow the left side's order; for each left row, matching right rows follow
//!   the right side's order.
//! - Output columns are all left columns, then all right columns; a right column whose name is
//!   taken gets a numeric suffix (`CorrelationId1`, `TimeGenerated1`), as in Kusto.
//!   `leftsemi`/`leftanti` output the left columns only.
//! - Keys match on equal values of compatible types; null keys never match (the empty string
//!   is a value and does). `innerunique` (KQL's default) keeps only the first left row per key.
//! - `leftouter` rows without a match get nulls (empty strings) in the right columns.

use super::keys::{NO_MATCH, combine, encode_pair};
use super::{Ctx, FCol, Frame, unique_name};
use crate::ast::{JoinKey, JoinKind, TabularExpr};
use crate::error::KqlError;
use crate::table::NULL_ROW;
use crate::value::ColumnType;

fn compatible(a: ColumnType, b: ColumnType) -> bool {
    a == b || (a.is_numeric() && b.is_numeric()) || (a.is_stringy() && b.is_stringy())
}

pub(crate) fn join(
    ctx: &Ctx,
    left: Frame,
    kind: JoinKind,
    right_expr: &TabularExpr,
    on: &[JoinKey],
) -> Result<Frame, KqlError> {
    let right = ctx.exec_tabular(right_expr)?;
    // Key codes shared by both sides.
    let mut lcodes: Option<(Vec<u32>, usize)> = None;
    let mut rcodes: Option<(Vec<u32>, usize)> = None;
    for key in on {
        let li = left.find(&key.left.name).ok_or_else(|| {
            KqlError::unresolved(
                format!("'join' operator: Failed to resolve column named '{}' on the left side", key.left.name),
                key.left.span,
            )
        })?;
        let ri = right.find(&key.right.name).ok_or_else(|| {
            KqlError::unresolved(
                format!("'join' operator: Failed to resolve column named '{}' on the right side", key.right.name),
                key.right.span,
            )
        })?;
        let (lc, rc) = (left.cols[li].materialize(), right.cols[ri].materialize());
        if !compatible(lc.ty(), rc.ty()) {
            return Err(KqlError::semantic(
                format!(
                    "'join' operator: the join keys '{}' ({}) and '{}' ({}) have different types",
                    key.left.name,
                    lc.ty(),
                    key.right.name,
                    rc.ty()
                ),
                key.left.span.to(key.right.span),
            ));
        }
        let (l, r, card) = encode_pair(&lc, &rc);
        // Combine with the previous keys over the concatenation of both sides, so the
        // combined numbering is shared.
        (lcodes, rcodes) = match (lcodes, rcodes) {
            (Some((pl, pn)), Some((pr, _))) => {
                let nl = l.len();
                let a: Vec<u32> = pl.iter().chain(&pr).copied().collect();
                let b: Vec<u32> = l.iter().chain(&r).copied().collect();
                let (c, n) = combine(&a, pn, &b, card);
                (Some((c[..nl].to_vec(), n)), Some((c[nl..].to_vec(), n)))
            }
            _ => (Some((l, card)), Some((r, card))),
        };
    }
    let (lc, card) = lcodes.expect("join has at least one key");
    let (rc, _) = rcodes.expect("join has at least one key");

    // Right rows by key: counting sort into buckets.
    let mut start = vec![0u32; card + 1];
    for &c in &rc {
        if c != NO_MATCH {
            start[c as usize + 1] += 1;
        }
    }
    for k in 1..=card {
        start[k] += start[k - 1];
    }
    let mut rows = vec![0u32; start[card] as usize];
    let mut fill = start.clone();
    for (j, &c) in rc.iter().enumerate() {
        if c != NO_MATCH {
            rows[fill[c as usize] as usize] = j as u32;
            fill[c as usize] += 1;
        }
    }
    let bucket = |c: u32| -> &[u32] {
        if c == NO_MATCH { &[] } else { &rows[start[c as usize] as usize..start[c as usize + 1] as usize] }
    };

    let mut li: Vec<u32> = Vec::new();
    let mut ri: Vec<u32> = Vec::new();
    let mut seen_left = vec![false; if kind == JoinKind::InnerUnique { card } else { 0 }];
    for (i, &c) in lc.iter().enumerate() {
        let b = bucket(c);
        match kind {
            JoinKind::Inner | JoinKind::InnerUnique => {
                if kind == JoinKind::InnerUnique && c != NO_MATCH {
                    if seen_left[c as usize] {
                        continue;
                    }
                    seen_left[c as usize] = true;
                }
                for &j in b {
                    li.push(i as u32);
                    ri.push(j);
                }
            }
            JoinKind::LeftOuter => {
                if b.is_empty() {
                    li.push(i as u32);
                    ri.push(NULL_ROW);
                } else {
                    for &j in b {
                        li.push(i as u32);
                        ri.push(j);
                    }
                }
            }
            JoinKind::LeftSemi => {
                if !b.is_empty() {
                    li.push(i as u32);
                }
            }
            JoinKind::LeftAnti => {
                if b.is_empty() {
                    li.push(i as u32);
                }
            }
        }
    }

    let mut out = left.select(&li);
    if matches!(kind, JoinKind::LeftSemi | JoinKind::LeftAnti) {
        return Ok(out);
    }
    let rsel = right.select(&ri);
    for c in rsel.cols {
        let name = unique_name(&c.name, |n| out.find(n).is_some());
        out.cols.push(FCol { name, ..c });
    }
    Ok(out)
}
