//! Dense integer codes for column values: the basis of grouping (`summarize`, `distinct`,
//! `dcount`) and of join matching.
//!
//! Invariants:
//! - `encode` gives equal values equal codes and distinct values distinct codes, numbered
//!   `0..card` in order of first appearance, so groups come out in first-appearance order.
//!   Nulls are one value (KQL groups nulls together).
//! - `encode_pair` codes two columns with one shared numbering so equal values on both sides
//!   match; for joins, a null never matches (`NO_MATCH`), while the empty string is a value.

use rustc_hash::FxHashMap;

use crate::table::{Column, ColumnData, NULL_I64};

/// A code that matches nothing (null join keys).
pub(crate) const NO_MATCH: u32 = u32::MAX;

/// The canonical bits of a real for equality (`0.0 == -0.0`, one NaN).
fn real_bits(f: f64) -> u64 {
    if f == 0.0 {
        0
    } else if f.is_nan() {
        f64::NAN.to_bits()
    } else {
        f.to_bits()
    }
}

/// Codes for the values of `col` in first-appearance order, and how many distinct values.
pub(crate) fn encode(col: &Column) -> (Vec<u32>, usize) {
    match &col.data {
        ColumnData::Str { dict, codes } => {
            let mut map = vec![u32::MAX; dict.len()];
            let mut next = 0u32;
            let out = codes
                .iter()
                .map(|&c| {
                    let slot = &mut map[c as usize];
                    if *slot == u32::MAX {
                        *slot = next;
                        next += 1;
                    }
                    *slot
                })
                .collect();
            (out, next as usize)
        }
        ColumnData::I64(v) => {
            let mut map: FxHashMap<i64, u32> = FxHashMap::default();
            let mut out = Vec::with_capacity(v.len());
            // Sorted or clustered keys (time bins) repeat: skip the lookup when they do.
            let mut last: Option<(i64, u32)> = None;
            for &x in v {
                let code = match last {
                    Some((lx, lc)) if lx == x => lc,
                    _ => {
                        let n = map.len() as u32;
                        let c = *map.entry(x).or_insert(n);
                        last = Some((x, c));
                        c
                    }
                };
                out.push(code);
            }
            (out, map.len())
        }
        ColumnData::F64(v) => {
            let mut map: FxHashMap<Option<u64>, u32> = FxHashMap::default();
            let out = v
                .iter()
                .map(|x| {
                    let n = map.len() as u32;
                    *map.entry(x.map(real_bits)).or_insert(n)
                })
                .collect();
            (out, map.len())
        }
        ColumnData::Bool(v) => {
            let mut map = [u32::MAX; 3];
            let mut next = 0u32;
            let out = v
                .iter()
                .map(|b| {
                    let k = match b {
                        None => 0,
                        Some(false) => 1,
                        Some(true) => 2,
                    };
                    if map[k] == u32::MAX {
                        map[k] = next;
                        next += 1;
                    }
                    map[k]
                })
                .collect();
            (out, next as usize)
        }
        ColumnData::Dyn(v) => {
            let mut map: FxHashMap<String, u32> = FxHashMap::default();
            let out = v
                .iter()
                .map(|j| {
                    let key = j.as_ref().map_or_else(|| "\u{0}".to_string(), |j| j.to_string());
                    let n = map.len() as u32;
                    *map.entry(key).or_insert(n)
                })
                .collect();
            (out, map.len())
        }
    }
}

/// Combines two code vectors (for multi-column keys) into dense codes, first-appearance order.
/// `NO_MATCH` in either input stays `NO_MATCH`.
pub(crate) fn combine(a: &[u32], na: usize, b: &[u32], nb: usize) -> (Vec<u32>, usize) {
    debug_assert_eq!(a.len(), b.len());
    let product = na.saturating_mul(nb);
    let mut next = 0u32;
    if product <= (1 << 22) || product <= a.len() {
        // Direct table.
        let mut table = vec![u32::MAX; product];
        let out = a
            .iter()
            .zip(b)
            .map(|(&x, &y)| {
                if x == NO_MATCH || y == NO_MATCH {
                    return NO_MATCH;
                }
                let slot = &mut table[x as usize * nb + y as usize];
                if *slot == u32::MAX {
                    *slot = next;
                    next += 1;
                }
                *slot
            })
            .collect();
        (out, next as usize)
    } else {
        let mut map: FxHashMap<u64, u32> = FxHashMap::default();
        let out = a
            .iter()
            .zip(b)
            .map(|(&x, &y)| {
                if x == NO_MATCH || y == NO_MATCH {
                    return NO_MATCH;
                }
                let n = map.len() as u32;
                *map.entry(((x as u64) << 32) | y as u64).or_insert(n)
            })
            .collect();
        (out, map.len())
    }
}

/// Shared codes for a left and a right join-key column; `NO_MATCH` for nulls. Returns the
/// codes of each side and the size of the shared code space. The columns must be of
/// compatible types (checked by the caller).
pub(crate) fn encode_pair(l: &Column, r: &Column) -> (Vec<u32>, Vec<u32>, usize) {
    match (&l.data, &r.data) {
        (ColumnData::Str { dict: dl, codes: cl }, ColumnData::Str { dict: dr, codes: cr }) => {
            if std::sync::Arc::ptr_eq(dl, dr) {
                return (cl.clone(), cr.clone(), dl.len());
            }
            // Translate the right dictionary into the left one's numbering, extending it.
            let mut extra: FxHashMap<&str, u32> = FxHashMap::default();
            let base = dl.len() as u32;
            let rmap: Vec<u32> = dr
                .values()
                .iter()
                .map(|s| {
                    dl.lookup(s).unwrap_or_else(|| {
                        let n = base + extra.len() as u32;
                        *extra.entry(&**s).or_insert(n)
                    })
                })
                .collect();
            let rc = cr.iter().map(|&c| rmap[c as usize]).collect();
            (cl.clone(), rc, base as usize + extra.len())
        }
        (ColumnData::I64(a), ColumnData::I64(b)) => {
            let mut map: FxHashMap<i64, u32> = FxHashMap::default();
            let mut code = |x: i64| {
                if x == NULL_I64 {
                    return NO_MATCH;
                }
                let n = map.len() as u32;
                *map.entry(x).or_insert(n)
            };
            let rc: Vec<u32> = b.iter().map(|&x| code(x)).collect();
            let lc: Vec<u32> = a.iter().map(|&x| code(x)).collect();
            (lc, rc, map.len())
        }
        _ => {
            // Mixed numeric (long vs real), reals, bools, dynamics: by canonical text.
            let mut map: FxHashMap<String, u32> = FxHashMap::default();
            let mut code_col = |c: &Column| -> Vec<u32> {
                (0..c.len())
                    .map(|i| {
                        let v = c.get(i);
                        if v.is_null() {
                            return NO_MATCH;
                        }
                        let key = match v {
                            crate::value::Value::Long(x) => format!("n{}", real_bits(x as f64)),
                            crate::value::Value::Real(f) => format!("n{}", real_bits(f)),
                            other => crate::eval::expr::value_key(&other),
                        };
                        let n = map.len() as u32;
                        *map.entry(key).or_insert(n)
                    })
                    .collect()
            };
            let rc = code_col(r);
            let lc = code_col(l);
            (lc, rc, map.len())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::{ColumnType, Value};

    fn col(ty: ColumnType, vals: &[Value]) -> Column {
        Column::from_values(ty, vals.iter().cloned()).unwrap()
    }

    #[test]
    fn codes_follow_first_appearance() {
        let c = col(ColumnType::String, &["b".into(), "a".into(), "b".into(), "".into()]);
        assert_eq!(encode(&c), (vec![0, 1, 0, 2], 3));
        let c = col(ColumnType::Long, &[Value::Long(5), Value::Null, Value::Long(5), Value::Null]);
        assert_eq!(encode(&c), (vec![0, 1, 0, 1], 2));
        let (codes, n) = combine(&[0, 1, 0, 1], 2, &[0, 0, 0, 1], 2);
        assert_eq!((codes, n), (vec![0, 1, 0, 2], 3));
    }

    #[test]
    fn pair_codes_match_across_dictionaries() {
        let l = col(ColumnType::String, &["x".into(), "y".into()]);
        let r = col(ColumnType::String, &["y".into(), "z".into(), "x".into()]);
        let (lc, rc, _) = encode_pair(&l, &r);
        assert_eq!(lc[0], rc[2]);
        assert_eq!(lc[1], rc[0]);
        assert!(!lc.contains(&rc[1]));
        let l = col(ColumnType::Long, &[Value::Null, Value::Long(1)]);
        let r = col(ColumnType::Real, &[Value::Real(1.0), Value::Null]);
        let (lc, rc, _) = encode_pair(&l, &r);
        assert_eq!(lc[0], NO_MATCH);
        assert_eq!(lc[1], rc[0]);
        assert_eq!(rc[1], NO_MATCH);
    }
}
