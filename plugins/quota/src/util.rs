//! Small helpers: number formatting for the texts, and the listing cursor.

use aigw_pdk::Error;

/// `200000` → `200,000`.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A value as the policy library prints it (`"200000"`, `"unlimited"`), with separators.
pub fn pretty(v: &str) -> String {
    let (head, rest) = v.split_once(' ').map_or((v, None), |(h, r)| (h, Some(r)));
    let head = head.parse::<u64>().map_or_else(|_| head.to_string(), thousands);
    match rest {
        Some(r) => format!("{head} {r}"),
        None => head,
    }
}

/// At most `n` names, then "and N others".
pub fn few(names: &[String], n: usize) -> String {
    if names.len() <= n {
        return names.join(", ");
    }
    format!("{} and {} others", names[..n].join(", "), thousands((names.len() - n) as u64))
}

/// FNV-1a, to tie a cursor to the query it came from.
fn fingerprint(parts: &[Option<&str>]) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    for p in parts {
        for b in p.unwrap_or("\u{0}").to_ascii_lowercase().bytes().chain([0xff]) {
            h ^= u32::from(b);
            h = h.wrapping_mul(0x0100_0193);
        }
    }
    h
}

/// The cursor for the next page: the offset into ARM's order and the query's fingerprint.
pub fn cursor(offset: usize, product_id: Option<&str>, state: Option<&str>) -> String {
    format!("{offset}.{:08x}", fingerprint(&[product_id, state]))
}

/// The offset a cursor points at; an error names `cursor` when it is malformed or belongs to a
/// different `product_id`/`state`.
pub fn offset(cursor: Option<&str>, product_id: Option<&str>, state: Option<&str>) -> Result<usize, Error> {
    let Some(c) = cursor else { return Ok(0) };
    let bad = || Error::invalid("cursor", "not a cursor from list_subscriptions; call it again without cursor");
    let (o, f) = c.split_once('.').ok_or_else(bad)?;
    let o: usize = o.parse().map_err(|_| bad())?;
    if f != format!("{:08x}", fingerprint(&[product_id, state])) {
        return Err(Error::invalid(
            "cursor",
            "this cursor belongs to a listing with another product_id or state; pass the same filters, or drop cursor",
        ));
    }
    Ok(o)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands_separators() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1_200), "1,200");
        assert_eq!(thousands(200_000), "200,000");
        assert_eq!(thousands(2_147_483_647), "2,147,483,647");
        assert_eq!(pretty("50000"), "50,000");
        assert_eq!(pretty("unlimited"), "unlimited");
        assert_eq!(pretty("5000000 Monthly"), "5,000,000 Monthly");
        let names: Vec<String> = ["a", "b", "c"].map(String::from).to_vec();
        assert_eq!(few(&names, 2), "a, b and 1 others");
        assert_eq!(few(&names, 3), "a, b, c");
    }

    #[test]
    fn cursors_round_trip_and_are_tied_to_their_filters() {
        let c = cursor(150, Some("aoai"), None);
        assert_eq!(offset(Some(&c), Some("aoai"), None).unwrap(), 150);
        assert_eq!(offset(Some(&c), Some("AOAI"), None).unwrap(), 150);
        assert_eq!(offset(None, None, None).unwrap(), 0);
        for (bad, product, state) in [
            (c.as_str(), None, None),
            (c.as_str(), Some("aoai"), Some("active")),
            ("x", None, None),
            ("1.zz", None, None),
        ] {
            match offset(Some(bad), product, state) {
                Err(Error::InvalidInput(f)) => assert_eq!(f.field, "cursor"),
                other => panic!("{bad}: {other:?}"),
            }
        }
        // product "a" + state None differs from product None + state "a".
        assert_ne!(cursor(0, Some("a"), None), cursor(0, None, Some("a")));
    }
}
