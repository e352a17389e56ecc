//! Span parsing: a tree of elements over the original text, with the byte range of every tag,
//! attribute name and attribute value.
//!
//! The tree never owns a re-serialisable copy of the markup: names and raw attribute values are
//! copied out for convenience, but the original text (kept inside [`PolicyDocument`]) is the source
//! of truth, and all edits are made on it by span.
//!
//! Parsing uses quick-xml's slice reader. Event boundaries come from `Reader::buffer_position()`,
//! attribute name and value ranges from the borrowed slices quick-xml returns (they point into the
//! input). Policy expressions that are not well-formed XML (raw `"`, `<` or `&&` inside
//! `@( ... )` / `@{ ... }`, which APIM accepts) are masked first in a same-length copy of the text,
//! so no offset changes.

use std::borrow::Cow;
use std::fmt;

use quick_xml::events::attributes::AttrError;
use quick_xml::events::{BytesStart, Event};
use quick_xml::reader::Reader;

use crate::mask::mask_expressions;
use crate::span::{Span, line_column};
use crate::text::{decode_lenient, is_known_reference, reference_at};

/// A policy document that is not well-formed, with the position of the problem.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct XmlError {
    /// 1-based line of the problem.
    pub line: usize,
    /// 1-based column (in characters) of the problem.
    pub column: usize,
    /// Byte offset of the problem in the text.
    pub offset: usize,
    /// What is wrong.
    pub message: String,
}

impl XmlError {
    fn at(text: &str, offset: usize, message: impl Into<String>) -> Self {
        let (line, column) = line_column(text, offset);
        XmlError { line, column, offset, message: message.into() }
    }
}

impl fmt::Display for XmlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "policy XML is not well-formed at line {}, column {}: {}", self.line, self.column, self.message)
    }
}

impl std::error::Error for XmlError {}

/// One attribute of a start tag, as written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attr {
    /// Attribute name as written.
    pub name: String,
    /// The whole attribute: from the first byte of the name to the closing quote (inclusive).
    pub span: Span,
    /// The name.
    pub name_span: Span,
    /// The value, excluding the quotes.
    pub value_span: Span,
    /// The quote character delimiting the value: `"` or `'`.
    pub quote: char,
    /// The value exactly as written between the quotes (entity references not decoded).
    pub raw: String,
}

impl Attr {
    /// The value with entity and character references decoded (leniently: a bare `&`, as found in
    /// "rawxml" C# expressions, is kept).
    pub fn value(&self) -> Cow<'_, str> {
        decode_lenient(&self.raw)
    }
}

/// A node of the document tree. Everything except elements is kept only as a range.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Node {
    /// An element with its attributes and children.
    Element(Element),
    /// Character data, including entity references, between markup.
    Text(Span),
    /// A comment `<!-- ... -->` (its content is never interpreted).
    Comment(Span),
    /// A CDATA section `<![CDATA[ ... ]]>`.
    CData(Span),
    /// An XML declaration, processing instruction or document type declaration.
    Other(Span),
}

impl Node {
    /// The byte range of the node.
    pub fn span(&self) -> Span {
        match self {
            Node::Element(e) => e.span,
            Node::Text(s) | Node::Comment(s) | Node::CData(s) | Node::Other(s) => *s,
        }
    }

    /// The element, if this node is one.
    pub fn as_element(&self) -> Option<&Element> {
        match self {
            Node::Element(e) => Some(e),
            _ => None,
        }
    }
}

/// An element: its ranges, attributes in document order, and children.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Element {
    /// Tag name as written.
    pub name: String,
    /// The whole element, from `<` of the start tag to `>` of the end tag (or of `/>`).
    pub span: Span,
    /// The start tag (for a self-closing element, the whole element).
    pub start_tag: Span,
    /// The end tag; `None` for a self-closing element.
    pub end_tag: Option<Span>,
    /// The tag name inside the start tag.
    pub name_span: Span,
    /// Attributes in document order.
    pub attributes: Vec<Attr>,
    /// Child nodes in document order.
    pub children: Vec<Node>,
}

impl Element {
    /// The attribute called `name`, if present.
    pub fn attr(&self, name: &str) -> Option<&Attr> {
        self.attributes.iter().find(|a| a.name == name)
    }

    /// Whether the element is written `<name ... />`.
    pub fn is_self_closing(&self) -> bool {
        self.end_tag.is_none()
    }

    /// The range between the start and end tags (empty, at the end of the start tag, for a
    /// self-closing element).
    pub fn content_span(&self) -> Span {
        match self.end_tag {
            Some(end) => Span::new(self.start_tag.end, end.start),
            None => Span::empty(self.start_tag.end),
        }
    }

    /// Child elements in document order.
    pub fn child_elements(&self) -> impl Iterator<Item = &Element> {
        self.children.iter().filter_map(Node::as_element)
    }

    /// This element and all its descendant elements, in document (pre-)order.
    pub fn descendants(&self) -> Vec<&Element> {
        let mut out = Vec::new();
        fn walk<'a>(e: &'a Element, out: &mut Vec<&'a Element>) {
            out.push(e);
            for c in e.child_elements() {
                walk(c, out);
            }
        }
        walk(self, &mut out);
        out
    }
}

/// A parsed policy document: the original text and a span tree over it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PolicyDocument {
    text: String,
    nodes: Vec<Node>,
    root: usize,
    expressions: Vec<Span>,
}

impl PolicyDocument {
    /// Parses `text`. The document must be well-formed XML with a single root element, except
    /// that policy expressions (`@( ... )`, `@{ ... }`) may contain raw quotes, `<` and `&`, as
    /// APIM accepts in "rawxml" policies.
    pub fn parse(text: &str) -> Result<PolicyDocument, XmlError> {
        Parser::new(text).run()
    }

    /// The original text, unchanged.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The root element (normally `<policies>`; `<fragment>` for policy fragments).
    pub fn root(&self) -> &Element {
        match &self.nodes[self.root] {
            Node::Element(e) => e,
            _ => unreachable!("root index points at an element"),
        }
    }

    /// Top-level nodes: declaration, comments and whitespace around the root, and the root.
    pub fn nodes(&self) -> &[Node] {
        &self.nodes
    }

    /// The text covered by `span`.
    pub fn slice(&self, span: Span) -> &str {
        span.of(&self.text)
    }

    /// The ranges of the policy expressions (`@( ... )`, `@{ ... }`) that start an attribute value
    /// or a text node, in document order.
    pub fn expressions(&self) -> &[Span] {
        &self.expressions
    }

    /// All elements in document order.
    pub fn elements(&self) -> Vec<&Element> {
        self.root().descendants()
    }
}

struct Parser<'t> {
    text: &'t str,
}

impl<'t> Parser<'t> {
    fn new(text: &'t str) -> Self {
        Parser { text }
    }

    fn err(&self, offset: usize, message: impl Into<String>) -> XmlError {
        XmlError::at(self.text, offset, message)
    }

    fn run(self) -> Result<PolicyDocument, XmlError> {
        let masked = mask_expressions(self.text);
        let mtext = masked.text.as_str();
        let mut reader = Reader::from_str(mtext);
        reader.config_mut().check_comments = true;

        let mut stack: Vec<Element> = Vec::new();
        let mut top: Vec<Node> = Vec::new();
        loop {
            let before = reader.buffer_position() as usize;
            let event = match reader.read_event() {
                Ok(ev) => ev,
                Err(e) => return Err(self.err(reader.error_position() as usize, e.to_string())),
            };
            let after = reader.buffer_position() as usize;
            let span = Span::new(before, after);
            let node = match event {
                Event::Eof => break,
                Event::Start(tag) => {
                    let element = self.element(mtext, &tag, span, &masked.expressions)?;
                    stack.push(element);
                    continue;
                }
                Event::Empty(tag) => Node::Element(self.element(mtext, &tag, span, &masked.expressions)?),
                Event::End(_) => {
                    let mut element = stack.pop().ok_or_else(|| self.err(before, "end tag without a start tag"))?;
                    element.end_tag = Some(span);
                    element.span.end = after;
                    Node::Element(element)
                }
                Event::Text(_) => Node::Text(span),
                Event::GeneralRef(r) => {
                    let name: &str = &r;
                    if !is_known_reference(name) {
                        return Err(self.err(before, format!("unknown entity reference `&{name};`")));
                    }
                    Node::Text(span)
                }
                Event::CData(_) => Node::CData(span),
                Event::Comment(_) => Node::Comment(span),
                Event::Decl(_) | Event::PI(_) | Event::DocType(_) => Node::Other(span),
            };
            let siblings = match stack.last_mut() {
                Some(parent) => &mut parent.children,
                None => &mut top,
            };
            // Text and references arrive as several events; keep one text node per run.
            if let (Node::Text(new), Some(Node::Text(prev))) = (&node, siblings.last_mut())
                && prev.end == new.start
            {
                prev.end = new.end;
                continue;
            }
            siblings.push(node);
        }
        if let Some(open) = stack.last() {
            return Err(self.err(open.start_tag.start, format!("element <{}> is never closed", open.name)));
        }
        let mut root = None;
        for (i, node) in top.iter().enumerate() {
            match node {
                Node::Element(e) => {
                    if root.is_some() {
                        return Err(self.err(e.span.start, "more than one root element"));
                    }
                    root = Some(i);
                }
                Node::Text(s) if !s.of(self.text).trim().is_empty() => {
                    let t = s.of(self.text);
                    let at = s.start + t.len() - t.trim_start().len();
                    return Err(self.err(at, "text outside the root element"));
                }
                Node::CData(s) => return Err(self.err(s.start, "CDATA outside the root element")),
                _ => {}
            }
        }
        let root = root.ok_or_else(|| self.err(self.text.len(), "no root element"))?;
        Ok(PolicyDocument { text: self.text.to_string(), nodes: top, root, expressions: masked.expressions })
    }

    fn element(
        &self,
        mtext: &str,
        tag: &BytesStart<'_>,
        span: Span,
        expressions: &[Span],
    ) -> Result<Element, XmlError> {
        let base = mtext.as_ptr() as usize;
        let offset_of = |s: &str| s.as_ptr() as usize - base;
        let buf: &str = tag;
        let buf_start = offset_of(buf);
        let qname = tag.name();
        let name_span = Span::new(offset_of(qname.0), offset_of(qname.0) + qname.0.len());
        let mut attributes = Vec::new();
        for attr in tag.attributes() {
            let attr = attr.map_err(|e| self.attr_error(buf_start, e))?;
            let key = attr.key.0;
            let name_span = Span::new(offset_of(key), offset_of(key) + key.len());
            let value: &str = match &attr.value {
                Cow::Borrowed(v) => v,
                Cow::Owned(_) => {
                    return Err(self.err(name_span.start, "internal: attribute value not borrowed"));
                }
            };
            let value_span = Span::new(offset_of(value), offset_of(value) + value.len());
            let quote = self.text.as_bytes()[value_span.end] as char;
            debug_assert!(quote == '"' || quote == '\'');
            let raw = value_span.of(self.text);
            let in_expression = expressions.iter().any(|e| e.contains(value_span) && !e.is_empty());
            if !in_expression {
                self.check_attr_value(raw, value_span.start)?;
            }
            attributes.push(Attr {
                name: name_span.of(self.text).to_string(),
                span: Span::new(name_span.start, value_span.end + 1),
                name_span,
                value_span,
                quote,
                raw: raw.to_string(),
            });
        }
        Ok(Element {
            name: name_span.of(self.text).to_string(),
            span,
            start_tag: span,
            end_tag: None,
            name_span,
            attributes,
            children: Vec::new(),
        })
    }

    /// XML forbids `<` in attribute values and requires `&` to start a reference.
    fn check_attr_value(&self, raw: &str, start: usize) -> Result<(), XmlError> {
        if let Some(i) = raw.find('<') {
            return Err(self.err(start + i, "`<` is not allowed in an attribute value (write `&lt;`)"));
        }
        for (i, _) in raw.match_indices('&') {
            if reference_at(&raw[i..]).is_none() {
                return Err(
                    self.err(start + i, "`&` in an attribute value must start an entity reference (write `&amp;`)")
                );
            }
        }
        Ok(())
    }

    fn attr_error(&self, buf_start: usize, e: AttrError) -> XmlError {
        let (pos, message) = match e {
            AttrError::ExpectedEq(p) => (p, "attribute name must be followed by `=`".to_string()),
            AttrError::ExpectedValue(p) => (p, "`=` must be followed by a quoted value".to_string()),
            AttrError::UnquotedValue(p) => (p, "attribute value must be quoted".to_string()),
            AttrError::ExpectedQuote(p, q) => (p, format!("missing closing quote `{}` in attribute value", q as char)),
            AttrError::Duplicated(p, _) => (p, "duplicated attribute".to_string()),
        };
        self.err(buf_start + pos, message)
    }
}
