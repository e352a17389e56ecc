//! Expression masking: lets a strict XML reader read APIM "rawxml" policies.
//!
//! APIM accepts policy expressions that are not well-formed XML, and Microsoft's own examples use
//! them: `value="@(context.Request.Headers.GetValueOrDefault("User-Agent",""))"` (raw `"` inside a
//! `"`-delimited attribute), `@{ ... As<JObject>() ... }` (raw `<` in text) and `@(a && b)` (bare
//! `&`). The gateway finds the end of each `@( ... )` / `@{ ... }` by lexing C# before it parses
//! the XML.
//!
//! This module does the same: it finds every expression that starts an attribute value or a text
//! node, lexes it as C# (string, verbatim, interpolated and character literals, comments, nested
//! brackets; entity references such as `&quot;` count as the character they denote), and returns a
//! copy of the text in which the XML-significant bytes of each expression (`<`, `>`, `&`, `"`, `'`)
//! are replaced by `_`. The copy has exactly the same length and byte offsets as the original, so
//! the XML reader runs on the copy while every reported span, name and value is read from the
//! original text. When an expression cannot be delimited (unbalanced brackets), it is left alone
//! and the XML reader reports whatever is wrong with it.

use crate::span::Span;
use crate::text::reference_at;

/// The masked copy of a document and the expression ranges that were masked.
pub(crate) struct Masked {
    /// Same length as the input; XML-significant bytes inside expressions replaced by `_`.
    pub text: String,
    /// The masked expression ranges, in document order.
    pub expressions: Vec<Span>,
}

/// Masks every policy expression of `text` (see the module documentation).
pub(crate) fn mask_expressions(text: &str) -> Masked {
    let s = text.as_bytes();
    let mut expressions = Vec::new();
    let mut i = 0;
    while i < s.len() {
        if s[i] != b'<' {
            i += 1;
            continue;
        }
        let rest = &s[i..];
        if rest.starts_with(b"<!--") {
            i = find(s, i + 4, b"-->").map_or(s.len(), |j| j + 3);
        } else if rest.starts_with(b"<![CDATA[") {
            i = find(s, i + 9, b"]]>").map_or(s.len(), |j| j + 3);
        } else if rest.starts_with(b"<?") {
            i = find(s, i + 2, b"?>").map_or(s.len(), |j| j + 2);
        } else if rest.starts_with(b"<!") || rest.starts_with(b"</") {
            i = find(s, i + 2, b">").map_or(s.len(), |j| j + 1);
        } else {
            let (end, self_closing) = scan_start_tag(s, i + 1, &mut expressions);
            i = end;
            if !self_closing {
                // Text content that is an expression: `<value>@( ... )</value>`, `@{ ... }`.
                let mut j = i;
                while j < s.len() && s[j].is_ascii_whitespace() {
                    j += 1;
                }
                if is_expression_start(s, j)
                    && let Some(e) = expression_end(s, j)
                {
                    expressions.push(Span::new(j, e));
                    i = e;
                }
            }
        }
    }
    let mut masked = s.to_vec();
    for span in &expressions {
        for b in &mut masked[span.range()] {
            if matches!(*b, b'<' | b'>' | b'&' | b'"' | b'\'') {
                *b = b'_';
            }
        }
    }
    // Only ASCII bytes were replaced by an ASCII byte, so the copy is still valid UTF-8.
    let text = String::from_utf8(masked).expect("masking keeps UTF-8 valid");
    Masked { text, expressions }
}

/// Scans a start tag whose name begins at `i`; records expression-valued attributes. Returns the
/// index after the tag's `>` and whether the tag was self-closing.
fn scan_start_tag(s: &[u8], mut i: usize, expressions: &mut Vec<Span>) -> (usize, bool) {
    while i < s.len() {
        match s[i] {
            b'>' => return (i + 1, false),
            b'/' if s.get(i + 1) == Some(&b'>') => return (i + 2, true),
            b'"' | b'\'' => {
                let quote = s[i];
                let start = i + 1;
                if is_expression_start(s, start)
                    && let Some(e) = expression_end(s, start)
                {
                    let mut close = e;
                    while close < s.len() && s[close].is_ascii_whitespace() {
                        close += 1;
                    }
                    if s.get(close) == Some(&quote) {
                        expressions.push(Span::new(start, e));
                        i = close + 1;
                        continue;
                    }
                }
                // An ordinary value: skip to its closing quote.
                i = s[start..].iter().position(|&b| b == quote).map_or(s.len(), |p| start + p + 1);
            }
            _ => i += 1,
        }
    }
    (s.len(), false)
}

fn is_expression_start(s: &[u8], i: usize) -> bool {
    s.get(i) == Some(&b'@') && matches!(s.get(i + 1), Some(b'(') | Some(b'{'))
}

fn find(s: &[u8], from: usize, needle: &[u8]) -> Option<usize> {
    s.get(from..)?.windows(needle.len()).position(|w| w == needle).map(|p| from + p)
}

/// The character at `i`, decoding an entity reference, and its length in bytes.
fn char_at(s: &[u8], i: usize) -> (u8, usize) {
    if s[i] == b'&' {
        let end = (i + 12).min(s.len());
        let t = match std::str::from_utf8(&s[i..end]) {
            Ok(t) => t,
            Err(e) => std::str::from_utf8(&s[i..i + e.valid_up_to()]).unwrap_or(""),
        };
        if let Some((ch, len)) = reference_at(t)
            && ch.is_ascii()
        {
            return (ch as u8, len);
        }
    }
    (s[i], 1)
}

/// Given `@(` or `@{` at `start`, the index just after the matching `)` or `}`, or `None` when the
/// expression is not balanced before the end of the text.
pub(crate) fn expression_end(s: &[u8], start: usize) -> Option<usize> {
    debug_assert!(is_expression_start(s, start));
    let close = if s[start + 1] == b'(' { b')' } else { b'}' };
    lex_until(s, start + 2, close)
}

/// Lexes C# from `i` until the bracket `close` that balances the (already consumed) opener.
/// Returns the index after it.
fn lex_until(s: &[u8], mut i: usize, close: u8) -> Option<usize> {
    let mut stack = vec![close];
    while i < s.len() {
        let (c, w) = char_at(s, i);
        match c {
            b'(' => stack.push(b')'),
            b'[' => stack.push(b']'),
            b'{' => stack.push(b'}'),
            b')' | b']' | b'}' => {
                if stack.pop() != Some(c) {
                    return None;
                }
                if stack.is_empty() {
                    return Some(i + w);
                }
            }
            b'"' => {
                i = skip_string(s, i + w, false, false)?;
                continue;
            }
            b'\'' => {
                i = skip_char_literal(s, i + w)?;
                continue;
            }
            b'@' | b'$' => {
                // String prefixes: @"..." (verbatim), $"..." (interpolated), $@"..." / @$"...".
                let mut j = i + w;
                let mut verbatim = c == b'@';
                let mut interpolated = c == b'$';
                if j < s.len() {
                    let (c2, w2) = char_at(s, j);
                    if (c2 == b'@' || c2 == b'$') && c2 != c {
                        verbatim |= c2 == b'@';
                        interpolated |= c2 == b'$';
                        j += w2;
                    }
                }
                if j < s.len() && char_at(s, j).0 == b'"' {
                    let w3 = char_at(s, j).1;
                    i = skip_string(s, j + w3, verbatim, interpolated)?;
                    continue;
                }
            }
            b'/' if i + 1 < s.len() && s[i + 1] == b'/' => {
                i = s[i..].iter().position(|&b| b == b'\n').map_or(s.len(), |p| i + p);
                continue;
            }
            b'/' if i + 1 < s.len() && s[i + 1] == b'*' => {
                i = find(s, i + 2, b"*/")? + 2;
                continue;
            }
            _ => {}
        }
        i += w;
    }
    None
}

/// Skips a string literal body starting at `i` (after the opening quote); returns the index after
/// the closing quote.
fn skip_string(s: &[u8], mut i: usize, verbatim: bool, interpolated: bool) -> Option<usize> {
    while i < s.len() {
        let (c, w) = char_at(s, i);
        match c {
            b'\\' if !verbatim => {
                i += w;
                if i < s.len() {
                    i += char_at(s, i).1;
                }
                continue;
            }
            b'"' => {
                if verbatim && i + w < s.len() && char_at(s, i + w).0 == b'"' {
                    i += w + char_at(s, i + w).1;
                    continue;
                }
                return Some(i + w);
            }
            b'{' if interpolated => {
                if i + w < s.len() && char_at(s, i + w).0 == b'{' {
                    i += w + char_at(s, i + w).1;
                    continue;
                }
                i = lex_until(s, i + w, b'}')?;
                continue;
            }
            _ => {}
        }
        i += w;
    }
    None
}

/// Skips a character literal body (after the opening `'`); returns the index after the closing `'`.
fn skip_char_literal(s: &[u8], mut i: usize) -> Option<usize> {
    let limit = (i + 16).min(s.len());
    while i < limit {
        let (c, w) = char_at(s, i);
        match c {
            b'\\' => {
                i += w;
                if i < s.len() {
                    i += char_at(s, i).1;
                }
                continue;
            }
            b'\'' => return Some(i + w),
            _ => {}
        }
        i += w;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn end(s: &str) -> Option<&str> {
        expression_end(s.as_bytes(), 0).map(|e| &s[..e])
    }

    #[test]
    fn expression_ends() {
        assert_eq!(end("@(a.b(\"x)\"))\" rest"), Some("@(a.b(\"x)\"))"));
        assert_eq!(end("@(&quot;a)&quot; + b) x"), Some("@(&quot;a)&quot; + b)"));
        assert_eq!(end("@{ var s = @\"a\"\")\"; return '}'; }x"), Some("@{ var s = @\"a\"\")\"; return '}'; }"));
        assert_eq!(end("@($\"{x[\"k\"]})\" )z"), Some("@($\"{x[\"k\"]})\" )"));
        assert_eq!(end("@{ // }\n return 1; /* } */ }!"), Some("@{ // }\n return 1; /* } */ }"));
        assert_eq!(end("@(a.As<JObject>() > 2 && b)"), Some("@(a.As<JObject>() > 2 && b)"));
        assert_eq!(end("@(a(b)"), None);
        assert_eq!(end("@(a]"), None);
    }

    #[test]
    fn masks_raw_quotes_and_angle_brackets_only_inside_expressions() {
        let t = r#"<a v="@(x.Get("k", "") != "")" w="1 &amp; 2"><b>@{ return a < b && c; }</b><!-- @(") --></a>"#;
        let m = mask_expressions(t);
        assert_eq!(m.text.len(), t.len());
        assert_eq!(m.expressions.len(), 2);
        assert_eq!(
            m.text,
            r#"<a v="@(x.Get(_k_, __) != __)" w="1 &amp; 2"><b>@{ return a _ b __ c; }</b><!-- @(") --></a>"#
        );
    }

    #[test]
    fn unbalanced_expression_is_left_alone() {
        let t = r#"<a v="@(x" />"#;
        let m = mask_expressions(t);
        assert_eq!(m.text, t);
        assert!(m.expressions.is_empty());
    }
}
