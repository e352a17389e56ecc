//! Small text utilities: lenient entity decoding, attribute escaping, and detection of the
//! document's layout conventions (newline sequence, indentation unit) so inserted markup looks like
//! its neighbours.

use std::borrow::Cow;

/// Decodes the five predefined XML entities and numeric character references in `raw`.
///
/// Lenient on purpose: APIM "rawxml" policies contain bare `&&` inside C# expressions, so any `&`
/// that does not start a well-formed reference is kept as is instead of being an error.
pub fn decode_lenient(raw: &str) -> Cow<'_, str> {
    if !raw.contains('&') {
        return Cow::Borrowed(raw);
    }
    let mut out = String::with_capacity(raw.len());
    let mut rest = raw;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        rest = &rest[i..];
        match reference_at(rest) {
            Some((ch, len)) => {
                out.push(ch);
                rest = &rest[len..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    Cow::Owned(out)
}

/// If `s` starts with a well-formed entity or character reference, the character it denotes and
/// the reference's length in bytes.
pub(crate) fn reference_at(s: &str) -> Option<(char, usize)> {
    let bytes = s.as_bytes();
    if bytes.first() != Some(&b'&') {
        return None;
    }
    let end = s[..s.len().min(12)].find(';')?;
    let body = &s[1..end];
    let ch = match body {
        "lt" => '<',
        "gt" => '>',
        "amp" => '&',
        "quot" => '"',
        "apos" => '\'',
        _ => {
            let code = if let Some(hex) = body.strip_prefix("#x").or_else(|| body.strip_prefix("#X")) {
                u32::from_str_radix(hex, 16).ok()?
            } else if let Some(dec) = body.strip_prefix('#') {
                dec.parse::<u32>().ok()?
            } else {
                return None;
            };
            char::from_u32(code)?
        }
    };
    Some((ch, end + 1))
}

/// Whether `name` (the text between `&` and `;`) is a reference XML accepts without a DTD.
pub(crate) fn is_known_reference(name: &str) -> bool {
    reference_at(&format!("&{name};")).is_some()
}

/// Escapes `value` for use between `quote` characters in an attribute.
///
/// `&`, `<` and `>` are always escaped, and so is the delimiting quote character; the other quote
/// character is left alone.
pub fn escape_attr_value(value: &str, quote: char) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' if quote == '"' => out.push_str("&quot;"),
            '\'' if quote == '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

/// The layout conventions of a document, used to format inserted markup.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Layout {
    /// `"\r\n"` when the document uses CRLF line ends (the majority of its line ends), else `"\n"`.
    pub newline: &'static str,
    /// One level of indentation: a tab, or a run of spaces.
    pub indent_unit: String,
}

impl Layout {
    /// Detects the layout of `text`.
    ///
    /// The newline is the majority line end. The indentation unit is a tab when lines are
    /// indented with tabs; otherwise the most common positive difference between the indentation
    /// of consecutive indented lines, or four spaces when nothing can be learnt.
    pub fn detect(text: &str) -> Layout {
        let crlf = text.matches("\r\n").count();
        let lf = text.matches('\n').count();
        let newline = if crlf > 0 && crlf * 2 >= lf { "\r\n" } else { "\n" };

        let mut tabs = 0usize;
        let mut spaces = 0usize;
        let mut deltas = [0usize; 9];
        let mut prev: Option<usize> = None;
        for line in text.split('\n') {
            let line = line.strip_suffix('\r').unwrap_or(line);
            if line.trim().is_empty() {
                continue;
            }
            let indent: &str = &line[..line.len() - line.trim_start().len()];
            if indent.starts_with('\t') {
                tabs += 1;
            } else if indent.starts_with(' ') {
                spaces += 1;
                let n = indent.len();
                if let Some(p) = prev
                    && n > p
                    && n - p < deltas.len()
                {
                    deltas[n - p] += 1;
                }
            }
            prev = if indent.contains('\t') { None } else { Some(indent.len()) };
        }
        let indent_unit = if tabs > spaces {
            "\t".to_string()
        } else {
            let best =
                (1..deltas.len()).max_by_key(|&d| (deltas[d], usize::MAX - d)).filter(|&d| deltas[d] > 0).unwrap_or(4);
            " ".repeat(best)
        };
        Layout { newline, indent_unit }
    }
}

/// If only spaces and tabs precede `pos` on its line, that whitespace (the line's indentation);
/// `None` when `pos` is preceded by other content on the same line.
pub(crate) fn indent_before(text: &str, pos: usize) -> Option<&str> {
    let line_start = text[..pos].rfind('\n').map_or(0, |i| i + 1);
    let prefix = &text[line_start..pos];
    prefix.bytes().all(|b| b == b' ' || b == b'\t').then_some(prefix)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decode_is_lenient() {
        assert_eq!(decode_lenient("a &amp;&amp; b"), "a && b");
        assert_eq!(decode_lenient("a && b &quot;x&quot;"), "a && b \"x\"");
        assert_eq!(decode_lenient("&#34;&#x27;&foo;"), "\"'&foo;");
        assert!(matches!(decode_lenient("plain"), Cow::Borrowed(_)));
    }

    #[test]
    fn escape_keeps_other_quote() {
        assert_eq!(escape_attr_value(r#"a"b'c<&>"#, '"'), "a&quot;b'c&lt;&amp;&gt;");
        assert_eq!(escape_attr_value(r#"a"b'c"#, '\''), "a\"b&apos;c");
    }

    #[test]
    fn layout_detection() {
        let l = Layout::detect("<a>\r\n\t<b>\r\n\t\t<c/>\r\n\t</b>\r\n</a>");
        assert_eq!((l.newline, l.indent_unit.as_str()), ("\r\n", "\t"));
        let l = Layout::detect("<a>\n  <b>\n    <c/>\n  </b>\n</a>\n");
        assert_eq!((l.newline, l.indent_unit.as_str()), ("\n", "  "));
        let l = Layout::detect("<a><b/></a>");
        assert_eq!((l.newline, l.indent_unit.as_str()), ("\n", "    "));
    }

    #[test]
    fn indent_helpers() {
        let t = "<a>\n    <b/> <c/>\n</a>";
        let b = t.find("<b").unwrap();
        let c = t.find("<c").unwrap();
        assert_eq!(indent_before(t, b), Some("    "));
        assert_eq!(indent_before(t, c), None);
    }
}
