//! A small XML parser for APIM policy documents, in both of APIM's formats.
//!
//! Policy documents are XML except for one thing: in `rawxml` (what the portal, Bicep and the
//! labs send) policy expressions are written unescaped, so an attribute like
//! `condition="@(a < b && c)"` or an element body like `<value>@(x.As<JObject>())</value>` is
//! legal although it is not well-formed XML. In `xml` format the same expressions must be
//! escaped (`&lt;`, `&amp;&amp;`). A general XML parser therefore cannot parse `rawxml`, so this
//! module has its own: strict XML everywhere, except inside expressions when parsing `rawxml`.
//!
//! Expressions are recognised where APIM recognises them: an attribute value, or an element's
//! text, that starts with `@(` or `@{`. In an attribute the expression runs to the closing quote;
//! in text it runs to the matching `)`/`}` (C# string and character literals and comments are
//! skipped while matching), and the text continues after it.
//!
//! Invariants:
//! - The parser never changes the text; it records byte offsets. `Document::position` turns an
//!   offset into a 1-based line and column (columns count characters; a tab is one column),
//!   the way .NET's `XmlReader` reports them.
//! - Error messages follow .NET's `XmlException` wording (APIM surfaces those), without the
//!   position; `XmlError::display` appends ` Line L, position C.` like .NET does.
//! - `to_xml_format` only rewrites bytes inside expression spans (`<`, `>` and bare `&`), so it is
//!   idempotent and leaves comments, attribute order and quoting, and entities untouched.

use std::ops::Range;

/// A parsed policy document.
#[derive(Debug, Clone)]
pub struct Document {
    pub root: Element,
    /// Byte ranges of every policy expression (attribute values and element text).
    pub expression_spans: Vec<Range<usize>>,
    line_starts: Vec<usize>,
    text: String,
}

/// An element with its attributes and children.
#[derive(Debug, Clone)]
pub struct Element {
    pub name: String,
    /// Byte offset of the `<`.
    pub start: usize,
    pub attributes: Vec<Attribute>,
    pub children: Vec<Node>,
}

/// An attribute. `value` has entities decoded; `raw` is the text between the quotes.
#[derive(Debug, Clone)]
pub struct Attribute {
    pub name: String,
    /// Byte offset of the attribute name.
    pub start: usize,
    /// Byte offset of the first character after the opening quote.
    pub value_start: usize,
    pub raw: String,
    pub value: String,
    pub quote: char,
    /// True when the value is a policy expression (`@(...)` or `@{...}`).
    pub expression: bool,
}

/// A child node.
#[derive(Debug, Clone)]
pub enum Node {
    Element(Element),
    /// Character data (text or CDATA); `value` has entities decoded.
    Text(Text),
    Comment {
        start: usize,
        end: usize,
    },
}

/// Text content.
#[derive(Debug, Clone)]
pub struct Text {
    pub start: usize,
    pub raw: String,
    pub value: String,
    /// True when the text (after leading whitespace) is a policy expression.
    pub expression: bool,
    pub cdata: bool,
}

/// A well-formedness error at a byte offset.
#[derive(Debug, Clone, PartialEq)]
pub struct XmlError {
    pub message: String,
    pub offset: usize,
}

/// Which of APIM's policy formats the text is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Escaped XML: strictly well-formed.
    Xml,
    /// Raw XML: expressions may contain `<`, `>` and `&` unescaped.
    RawXml,
}

impl Element {
    /// The decoded value of attribute `name`.
    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attributes.iter().find(|a| a.name == name).map(|a| a.value.as_str())
    }
    /// The attribute `name`.
    pub fn attribute(&self, name: &str) -> Option<&Attribute> {
        self.attributes.iter().find(|a| a.name == name)
    }
    /// Child elements, in order.
    pub fn elements(&self) -> impl Iterator<Item = &Element> {
        self.children.iter().filter_map(|n| match n {
            Node::Element(e) => Some(e),
            _ => None,
        })
    }
    /// Non-whitespace text children.
    pub fn texts(&self) -> impl Iterator<Item = &Text> {
        self.children.iter().filter_map(|n| match n {
            Node::Text(t) if !t.raw.trim().is_empty() => Some(t),
            _ => None,
        })
    }
}

impl Document {
    /// The 1-based (line, column) of byte `offset`.
    pub fn position(&self, offset: usize) -> (usize, usize) {
        position_in(&self.text, &self.line_starts, offset)
    }
    /// The text the document was parsed from.
    pub fn text(&self) -> &str {
        &self.text
    }
}

impl XmlError {
    /// The message with .NET's position suffix, e.g. `... Line 3, position 17.`
    pub fn display(&self, text: &str) -> String {
        let (line, col) = position_in(text, &line_starts(text), self.offset);
        format!("{} Line {line}, position {col}.", self.message)
    }
    /// The 1-based (line, column) of the error.
    pub fn position(&self, text: &str) -> (usize, usize) {
        position_in(text, &line_starts(text), self.offset)
    }
}

fn line_starts(text: &str) -> Vec<usize> {
    let mut v = vec![0];
    v.extend(text.bytes().enumerate().filter(|(_, b)| *b == b'\n').map(|(i, _)| i + 1));
    v
}

fn position_in(text: &str, starts: &[usize], offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let line = starts.partition_point(|&s| s <= offset).max(1);
    let start = starts[line - 1];
    let col = text.as_bytes()[start..offset].iter().filter(|b| (**b & 0xC0) != 0x80).count() + 1;
    (line, col)
}

/// Parses `text` as a policy document in `format`.
pub fn parse(text: &str, format: Format) -> Result<Document, XmlError> {
    let mut p = Parser { s: text.as_bytes(), i: 0, raw: format == Format::RawXml, spans: Vec::new() };
    let root = p.document()?;
    Ok(Document { root, expression_spans: p.spans, line_starts: line_starts(text), text: text.to_string() })
}

/// Converts a stored policy to APIM's `xml` export format: inside expressions, `<` and `>`
/// become `&lt;`/`&gt;` and a `&` that does not start an entity becomes `&amp;`. Nothing outside
/// expressions changes. Idempotent.
pub fn to_xml_format(doc: &Document) -> String {
    let text = doc.text();
    let mut out = String::with_capacity(text.len() + 32);
    let mut last = 0;
    for span in &doc.expression_spans {
        out.push_str(&text[last..span.start]);
        let s = &text[span.clone()];
        let b = s.as_bytes();
        let mut i = 0;
        let mut run = 0;
        while i < b.len() {
            let rep = match b[i] {
                b'<' => Some("&lt;"),
                b'>' => Some("&gt;"),
                b'&' if entity_len(&b[i..]).is_none() => Some("&amp;"),
                _ => None,
            };
            if let Some(rep) = rep {
                out.push_str(&s[run..i]);
                out.push_str(rep);
                run = i + 1;
            }
            i += 1;
        }
        out.push_str(&s[run..]);
        last = span.end;
    }
    out.push_str(&text[last..]);
    out
}

/// The length of the entity reference at the start of `b` (`&lt;`, `&#10;`, ...), if it is one.
fn entity_len(b: &[u8]) -> Option<usize> {
    let end = b.iter().take(12).position(|c| *c == b';')?;
    let name = &b[1..end];
    let ok = match name {
        b"lt" | b"gt" | b"amp" | b"quot" | b"apos" => true,
        [b'#', b'x', hex @ ..] => !hex.is_empty() && hex.iter().all(u8::is_ascii_hexdigit),
        [b'#', dec @ ..] => !dec.is_empty() && dec.iter().all(u8::is_ascii_digit),
        _ => false,
    };
    ok.then_some(end + 1)
}

fn decode_entity(b: &[u8]) -> Option<char> {
    let end = b.iter().position(|c| *c == b';')?;
    match &b[1..end] {
        b"lt" => Some('<'),
        b"gt" => Some('>'),
        b"amp" => Some('&'),
        b"quot" => Some('"'),
        b"apos" => Some('\''),
        [b'#', b'x', hex @ ..] => u32::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok().and_then(char::from_u32),
        [b'#', dec @ ..] => std::str::from_utf8(dec).ok()?.parse().ok().and_then(char::from_u32),
        _ => None,
    }
}

fn is_name_start(b: u8) -> bool {
    b.is_ascii_alphabetic() || b == b'_' || b == b':' || b >= 0x80
}

fn is_name_char(b: u8) -> bool {
    is_name_start(b) || b.is_ascii_digit() || b == b'-' || b == b'.'
}

fn is_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
    raw: bool,
    spans: Vec<Range<usize>>,
}

type R<T> = Result<T, XmlError>;

impl<'a> Parser<'a> {
    fn err<T>(&self, offset: usize, message: impl Into<String>) -> R<T> {
        Err(XmlError { message: message.into(), offset })
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn starts(&self, lit: &[u8]) -> bool {
        self.s[self.i..].starts_with(lit)
    }

    fn str(&self, r: Range<usize>) -> String {
        String::from_utf8_lossy(&self.s[r]).into_owned()
    }

    fn skip_ws(&mut self) {
        while self.peek().is_some_and(is_ws) {
            self.i += 1;
        }
    }

    fn unexpected_char(&self) -> String {
        let rest = std::str::from_utf8(&self.s[self.i..]).unwrap_or("");
        rest.chars().next().map(|c| c.to_string()).unwrap_or_default()
    }

    fn document(&mut self) -> R<Element> {
        let mut root: Option<Element> = None;
        loop {
            self.skip_ws();
            if self.i >= self.s.len() {
                break;
            }
            if self.starts(b"<?") {
                self.processing_instruction()?;
            } else if self.starts(b"<!--") {
                self.comment()?;
            } else if self.starts(b"<!") {
                return self.err(self.i, "DTDs are not allowed in policy documents.");
            } else if self.peek() == Some(b'<') {
                if root.is_some() {
                    return self.err(self.i + 1, "There are multiple root elements.");
                }
                root = Some(self.element(&mut Vec::new())?);
            } else {
                return self.err(self.i, "Data at the root level is invalid.");
            }
        }
        match root {
            Some(r) => Ok(r),
            None => self.err(self.i, "Root element is missing."),
        }
    }

    fn processing_instruction(&mut self) -> R<()> {
        let start = self.i;
        match self.s[self.i..].windows(2).position(|w| w == b"?>") {
            Some(n) => {
                self.i += n + 2;
                Ok(())
            }
            None => self.err(start, "Unexpected end of file while parsing PI has occurred."),
        }
    }

    fn comment(&mut self) -> R<(usize, usize)> {
        let start = self.i;
        self.i += 4;
        loop {
            if self.i + 1 >= self.s.len() {
                return self.err(start, "Unexpected end of file while parsing Comment has occurred.");
            }
            if self.starts(b"--") {
                if self.s.get(self.i + 2) == Some(&b'>') {
                    self.i += 3;
                    return Ok((start, self.i));
                }
                return self.err(self.i, "An XML comment cannot contain '--', and '-' cannot be the last character.");
            }
            self.i += 1;
        }
    }

    fn name(&mut self) -> R<String> {
        let start = self.i;
        match self.peek() {
            Some(b) if is_name_start(b) => {}
            Some(b) => {
                let c = self.unexpected_char();
                return self
                    .err(start, format!("Name cannot begin with the '{c}' character, hexadecimal value 0x{b:02X}."));
            }
            None => return self.err(start, "Unexpected end of file has occurred."),
        }
        while self.peek().is_some_and(is_name_char) {
            self.i += 1;
        }
        Ok(self.str(start..self.i))
    }

    /// Parses an element starting at `<`. `open` is the stack of open elements (name, offset),
    /// used for .NET's "not closed" message.
    fn element(&mut self, open: &mut Vec<(String, usize)>) -> R<Element> {
        let start = self.i;
        self.i += 1;
        let name = self.name()?;
        let mut attributes: Vec<Attribute> = Vec::new();
        loop {
            let before_ws = self.i;
            self.skip_ws();
            match self.peek() {
                None => {
                    return self.err(self.i, "Unexpected end of file has occurred.");
                }
                Some(b'/') => {
                    if self.s.get(self.i + 1) == Some(&b'>') {
                        self.i += 2;
                        return Ok(Element { name, start, attributes, children: Vec::new() });
                    }
                    return self.err(
                        self.i + 1,
                        format!(
                            "'{}' is an unexpected token. The expected token is '>'.",
                            self.s.get(self.i + 1).map(|b| *b as char).unwrap_or(' ')
                        ),
                    );
                }
                Some(b'>') => {
                    self.i += 1;
                    break;
                }
                Some(_) => {
                    if self.i == before_ws && !attributes.is_empty() {
                        let c = self.unexpected_char();
                        return self.err(self.i, format!("'{c}' is an unexpected token. Expecting white space."));
                    }
                    let a = self.attribute()?;
                    if attributes.iter().any(|x| x.name == a.name) {
                        return self.err(a.start, format!("'{}' is a duplicate attribute name.", a.name));
                    }
                    attributes.push(a);
                }
            }
        }
        open.push((name.clone(), start));
        let children = self.content(open)?;
        open.pop();
        Ok(Element { name, start, attributes, children })
    }

    fn attribute(&mut self) -> R<Attribute> {
        let start = self.i;
        let name = self.name()?;
        self.skip_ws();
        if self.peek() != Some(b'=') {
            let c = self.unexpected_char();
            return self.err(self.i, format!("'{c}' is an unexpected token. The expected token is '='."));
        }
        self.i += 1;
        self.skip_ws();
        let quote = match self.peek() {
            Some(q @ (b'"' | b'\'')) => q,
            _ => {
                let c = self.unexpected_char();
                return self.err(self.i, format!("'{c}' is an unexpected token. The expected token is '\"' or '''."));
            }
        };
        self.i += 1;
        let value_start = self.i;
        let end = match self.s[self.i..].iter().position(|b| *b == quote) {
            Some(n) => self.i + n,
            None => return self.err(value_start, "Unexpected end of file has occurred."),
        };
        let raw_bytes = &self.s[value_start..end];
        let expression = raw_bytes.starts_with(b"@(") || raw_bytes.starts_with(b"@{");
        let lenient = expression && self.raw;
        if expression {
            self.spans.push(value_start..end);
        }
        let value = self.decode(value_start, end, lenient, true)?;
        self.i = end + 1;
        Ok(Attribute {
            name,
            start,
            value_start,
            raw: self.str(value_start..end),
            value,
            quote: quote as char,
            expression,
        })
    }

    /// Decodes entities in `start..end`. Unless `lenient`, a bare `&` is an error, and so is `<`
    /// when `in_attribute`.
    fn decode(&self, start: usize, end: usize, lenient: bool, in_attribute: bool) -> R<String> {
        let b = &self.s[start..end];
        if !b.iter().any(|c| *c == b'&' || *c == b'<') {
            return Ok(self.str(start..end));
        }
        let mut out = Vec::with_capacity(b.len());
        let mut i = 0;
        while i < b.len() {
            match b[i] {
                b'&' => match (entity_len(&b[i..]), decode_entity(&b[i..])) {
                    (Some(n), Some(c)) => {
                        let mut buf = [0u8; 4];
                        out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                        i += n;
                        continue;
                    }
                    _ if lenient => out.push(b'&'),
                    _ => {
                        let name_ok = b.get(i + 1).is_some_and(|c| is_name_start(*c));
                        let semi = b[i..].iter().take(64).position(|c| *c == b';');
                        if let (true, Some(n)) = (name_ok, semi) {
                            let ent = String::from_utf8_lossy(&b[i + 1..i + n]);
                            if ent.bytes().all(is_name_char) {
                                return self.err(start + i + 1, format!("Reference to undeclared entity '{ent}'."));
                            }
                        }
                        return self.err(start + i + 1, "An error occurred while parsing EntityName.");
                    }
                },
                b'<' if in_attribute && !lenient => {
                    return self.err(start + i, "'<', hexadecimal value 0x3C, is an invalid attribute character.");
                }
                c => out.push(c),
            }
            i += 1;
        }
        Ok(String::from_utf8_lossy(&out).into_owned())
    }

    fn content(&mut self, open: &mut Vec<(String, usize)>) -> R<Vec<Node>> {
        let mut children = Vec::new();
        loop {
            if self.i >= self.s.len() {
                let names: Vec<&str> = open.iter().rev().map(|(n, _)| n.as_str()).collect();
                return self.err(
                    self.i,
                    format!(
                        "Unexpected end of file has occurred. The following elements are not closed: {}.",
                        names.join(", ")
                    ),
                );
            }
            if self.starts(b"</") {
                let (open_name, open_off) = open.last().cloned().unwrap_or_default();
                self.i += 2;
                let name_at = self.i;
                let name = self.name()?;
                if name != open_name {
                    let text = std::str::from_utf8(self.s).unwrap_or("");
                    let (l, c) = position_in(text, &line_starts(text), open_off + 1);
                    return self.err(
                        name_at,
                        format!(
                            "The '{open_name}' start tag on line {l} position {c} does not match the end tag of '{name}'."
                        ),
                    );
                }
                self.skip_ws();
                if self.peek() != Some(b'>') {
                    let c = self.unexpected_char();
                    return self.err(self.i, format!("'{c}' is an unexpected token. The expected token is '>'."));
                }
                self.i += 1;
                return Ok(children);
            } else if self.starts(b"<!--") {
                let (start, end) = self.comment()?;
                children.push(Node::Comment { start, end });
            } else if self.starts(b"<![CDATA[") {
                let start = self.i;
                let body = self.i + 9;
                match self.s[body..].windows(3).position(|w| w == b"]]>") {
                    Some(n) => {
                        let raw = self.str(body..body + n);
                        children.push(Node::Text(Text {
                            start,
                            value: raw.clone(),
                            raw,
                            expression: false,
                            cdata: true,
                        }));
                        self.i = body + n + 3;
                    }
                    None => {
                        return self.err(start, "Unexpected end of file while parsing CDATA has occurred.");
                    }
                }
            } else if self.starts(b"<?") {
                self.processing_instruction()?;
            } else if self.peek() == Some(b'<') {
                children.push(Node::Element(self.element(open)?));
            } else {
                children.push(Node::Text(self.text()?));
            }
        }
    }

    fn text(&mut self) -> R<Text> {
        let start = self.i;
        let mut ws_end = self.i;
        while self.s.get(ws_end).is_some_and(|b| is_ws(*b)) {
            ws_end += 1;
        }
        let rest = &self.s[ws_end..];
        let expression = rest.starts_with(b"@(") || rest.starts_with(b"@{");
        let mut value = String::new();
        let mut seg_start = start;
        if expression {
            let Some(end) = scan_expression(self.s, ws_end) else {
                return self.err(ws_end, "The policy expression is not terminated.");
            };
            self.spans.push(ws_end..end);
            value.push_str(&self.decode(start, ws_end, false, false)?);
            value.push_str(&self.decode(ws_end, end, self.raw, false)?);
            seg_start = end;
        }
        let end = match self.s[seg_start..].iter().position(|b| *b == b'<') {
            Some(n) => seg_start + n,
            None => self.s.len(),
        };
        value.push_str(&self.decode(seg_start, end, false, false)?);
        self.i = end;
        Ok(Text { start, raw: self.str(start..end), value, expression, cdata: false })
    }
}

/// Finds the end (exclusive) of the expression starting with `@(` or `@{` at `start`.
/// Brackets of all kinds nest; C# strings, characters and comments are skipped.
fn scan_expression(s: &[u8], start: usize) -> Option<usize> {
    let mut depth = 0i32;
    let mut i = start + 1;
    while i < s.len() {
        match s[i] {
            b'(' | b'{' | b'[' => depth += 1,
            b')' | b'}' | b']' => {
                depth -= 1;
                if depth == 0 {
                    return Some(i + 1);
                }
            }
            b'"' => {
                let verbatim = i > 0 && s[i - 1] == b'@';
                i += 1;
                while i < s.len() {
                    match s[i] {
                        b'\\' if !verbatim => i += 1,
                        b'"' if verbatim && s.get(i + 1) == Some(&b'"') => i += 1,
                        b'"' => break,
                        b'\n' if !verbatim => break,
                        _ => {}
                    }
                    i += 1;
                }
            }
            b'\'' => {
                if s.get(i + 1) == Some(&b'\\') {
                    if let Some(n) = s[i + 2..].iter().take(8).position(|c| *c == b'\'') {
                        i += 2 + n;
                    }
                } else if s.get(i + 2) == Some(&b'\'') {
                    i += 2;
                }
            }
            b'/' if s.get(i + 1) == Some(&b'/') => {
                while i < s.len() && s[i] != b'\n' {
                    i += 1;
                }
            }
            b'/' if s.get(i + 1) == Some(&b'*') => {
                i += 2;
                while i + 1 < s.len() && !(s[i] == b'*' && s[i + 1] == b'/') {
                    i += 1;
                }
                i += 1;
            }
            _ => {}
        }
        i += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(text: &str, f: Format) -> String {
        let e = parse(text, f).unwrap_err();
        e.display(text)
    }

    #[test]
    fn parses_elements_attributes_and_text() {
        let d =
            parse("<policies>\r\n\t<inbound a=\"1\" b='x &amp; y'>hi</inbound>\r\n</policies>", Format::Xml).unwrap();
        assert_eq!(d.root.name, "policies");
        let inbound = d.root.elements().next().unwrap();
        assert_eq!(inbound.attr("b"), Some("x & y"));
        assert_eq!(d.position(inbound.start), (2, 2));
    }

    #[test]
    fn rawxml_expressions_may_contain_unescaped_characters() {
        let t = "<policies><when condition=\"@(a < b && c > d)\"><value>@(x.As<JObject>()[\"k\"])</value></when></policies>";
        assert!(parse(t, Format::Xml).is_err());
        let d = parse(t, Format::RawXml).unwrap();
        let when = d.root.elements().next().unwrap();
        assert_eq!(when.attr("condition"), Some("@(a < b && c > d)"));
        let value = when.elements().next().unwrap();
        assert_eq!(value.texts().next().unwrap().value, "@(x.As<JObject>()[\"k\"])");
        assert_eq!(d.expression_spans.len(), 2);
        let xml = to_xml_format(&d);
        assert!(xml.contains("@(a &lt; b &amp;&amp; c &gt; d)"));
        assert!(xml.contains("@(x.As&lt;JObject&gt;()[\"k\"])"));
        // The escaped form is well-formed XML, and converting it again changes nothing.
        let d2 = parse(&xml, Format::Xml).unwrap();
        assert_eq!(to_xml_format(&d2), xml);
        assert_eq!(d2.root.elements().next().unwrap().attr("condition"), Some("@(a < b && c > d)"));
    }

    #[test]
    fn entities_inside_expressions_are_decoded_and_kept_raw() {
        let t = "<p c=\"@(&quot;tpm-&quot; + x)\" />";
        let d = parse(t, Format::RawXml).unwrap();
        assert_eq!(d.root.attr("c"), Some("@(\"tpm-\" + x)"));
        assert_eq!(to_xml_format(&d), t);
    }

    #[test]
    fn multi_line_code_blocks_with_braces_strings_and_comments() {
        let t = "<set-body>@{\n  // don't count } here\n  var s = \"}\";\n  if (a < b) { return s; }\n  return \"x\";\n}</set-body>";
        let d = parse(t, Format::RawXml).unwrap();
        assert!(d.root.texts().next().unwrap().expression);
        assert_eq!(d.expression_spans[0].end, t.len() - "</set-body>".len());
    }

    #[test]
    fn reports_dotnet_style_errors_with_line_and_position() {
        assert_eq!(
            err("<policies>\n  <inbound>\n  </outbound>\n</policies>", Format::RawXml),
            "The 'inbound' start tag on line 2 position 4 does not match the end tag of 'outbound'. Line 3, position 5."
        );
        assert_eq!(
            err("<policies>\n\t<a b=\"x & y\" />\n</policies>", Format::RawXml),
            "An error occurred while parsing EntityName. Line 2, position 11."
        );
        assert_eq!(
            err("<a><b></a>", Format::Xml).split(" Line").next().unwrap(),
            "The 'b' start tag on line 1 position 5 does not match the end tag of 'a'."
        );
        assert!(err("<a>", Format::Xml).starts_with(
            "Unexpected end of file has occurred. The following elements are not closed: a. Line 1, position 4."
        ));
        assert!(err("<a/><b/>", Format::Xml).starts_with("There are multiple root elements."));
        assert!(err("<a x='1' x='2'/>", Format::Xml).starts_with("'x' is a duplicate attribute name."));
        assert!(err("<a x='1'y='2'/>", Format::Xml).contains("Expecting white space"));
        assert!(err("<a x='<'/>", Format::Xml).contains("invalid attribute character"));
        assert!(err("<a><!-- a -- b --></a>", Format::Xml).contains("XML comment cannot contain '--'"));
        assert!(err("hello", Format::Xml).starts_with("Data at the root level is invalid. Line 1, position 1."));
        assert!(err("<a>&nbsp;</a>", Format::Xml).starts_with("Reference to undeclared entity 'nbsp'."));
        assert!(
            err("<a><value>@(x</value></a>", Format::RawXml).starts_with("The policy expression is not terminated.")
        );
    }

    #[test]
    fn columns_count_characters_not_bytes() {
        let t = "<a é=\"1\" b=\"&\"/>";
        let e = parse(t, Format::Xml).unwrap_err();
        assert_eq!(e.position(t), (1, 14));
    }

    #[test]
    fn comments_and_declarations_around_the_root_are_allowed() {
        let t = "<?xml version=\"1.0\"?>\r\n<!-- header -->\r\n<policies><!-- x --></policies>\r\n<!-- trailer -->";
        let d = parse(t, Format::Xml).unwrap();
        assert_eq!(d.root.name, "policies");
        assert_eq!(to_xml_format(&d), t);
    }
}
