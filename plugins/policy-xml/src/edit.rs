//! Byte-preserving edits of policy text.
//!
//! Every function takes the current text and items parsed from that same text, and returns the
//! new full text. Each changes one contiguous range (an attribute value, an insertion point, or
//! the element being wrapped); every byte outside that range is identical in the result. Items
//! are checked against the text first: if an item's spans no longer match (the text changed since
//! it was parsed) the edit fails with [`EditError::Stale`] instead of corrupting the document.
//!
//! Inserted markup follows the document's conventions, detected from the text: `\r\n` or `\n`,
//! tab or space indentation (and its width), the indentation of the siblings at the insertion
//! point, `" />"` or `"/>"` for empty elements, the attribute quote, and how existing `<when>`
//! conditions quote C# strings (`&quot;`, or raw `"` inside `'...'` or inside `"..."`).

use std::fmt;

use crate::analysis::{BranchIndex, BranchKind, Choose};
use crate::effective::QuotaPeriod;
use crate::parse::{Attr, Element, Node, PolicyDocument, XmlError};
use crate::span::Span;
use crate::text::{Layout, escape_attr_value, indent_before};

/// Why an edit could not be made.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EditError {
    /// The item's spans do not match the text: it was parsed from a different version.
    Stale {
        /// What did not match.
        what: String,
    },
    /// The element already has this attribute.
    DuplicateAttribute {
        /// The attribute name.
        name: String,
    },
    /// A requested value is invalid; `field` names the input field.
    InvalidValue {
        /// The input field, e.g. `tpm`, `token_quota_period`, `subscription_id`.
        field: String,
        /// What is wrong.
        message: String,
    },
    /// The current limit cannot be determined, so no safe edit can be planned.
    Undeterminable {
        /// The input field whose limit is unknown.
        field: String,
        /// Why.
        reason: String,
    },
    /// The edit is not possible on this document.
    NotPossible {
        /// Why.
        reason: String,
    },
    /// The text does not parse.
    Xml(XmlError),
    /// A self-check failed (a bug): the edit would have changed something it should not.
    Internal(String),
}

impl fmt::Display for EditError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EditError::Stale { what } => write!(f, "the policy changed since it was read ({what})"),
            EditError::DuplicateAttribute { name } => {
                write!(f, "attribute `{name}` already exists")
            }
            EditError::InvalidValue { field, message } => write!(f, "{field}: {message}"),
            EditError::Undeterminable { field, reason } => {
                write!(f, "{field}: the current limit cannot be determined: {reason}")
            }
            EditError::NotPossible { reason } => f.write_str(reason),
            EditError::Xml(e) => e.fmt(f),
            EditError::Internal(m) => write!(f, "internal error: {m}"),
        }
    }
}

impl std::error::Error for EditError {}

impl From<XmlError> for EditError {
    fn from(e: XmlError) -> Self {
        EditError::Xml(e)
    }
}

/// A limit element to create.
#[derive(Clone, Debug)]
pub enum NewLimit<'a> {
    /// An `llm-token-limit` (or the template's element name).
    ///
    /// With a template, the template's element is copied byte for byte (name, `counter-key`,
    /// `estimate-prompt-tokens`, variable names, attribute order and quoting) and only the given
    /// values are set; when `keep_template_limits` is false the template's own
    /// `tokens-per-minute`/`token-quota`/`token-quota-period` are dropped unless set here.
    /// Without a template: `<llm-token-limit counter-key="@(context.Subscription.Id)"
    /// tokens-per-minute=".." estimate-prompt-tokens="false" />`.
    Tokens {
        /// Element to copy, from the same text.
        template: Option<&'a Element>,
        /// Keep the template's limit attributes that are not set here.
        keep_template_limits: bool,
        /// `tokens-per-minute`.
        tokens_per_minute: Option<u64>,
        /// `token-quota` and `token-quota-period`.
        token_quota: Option<(u64, QuotaPeriod)>,
    },
    /// `<rate-limit-by-key calls=".." renewal-period="60" counter-key="@(context.Subscription.Id)" />`.
    Requests {
        /// Calls per 60-second window.
        calls_per_minute: u64,
    },
}

/// How `<when>` conditions quote the C# string literal.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum ConditionQuoting {
    /// `condition="@(context.Subscription.Id == &quot;x&quot;)"` (the default; what APIM returns).
    DoubleEntity,
    /// `condition='@(context.Subscription.Id == "x")'`.
    SingleRaw,
    /// `condition="@(context.Subscription.Id == "x")"` (APIM "rawxml").
    DoubleRaw,
}

/// Formatting conventions detected from a document.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Style {
    /// Newline and indentation unit.
    pub layout: Layout,
    /// How empty elements end: `" />"` or `"/>"`.
    pub self_close: &'static str,
    /// The quote most attributes use.
    pub attr_quote: char,
    /// How conditions quote strings.
    pub condition_quoting: ConditionQuoting,
}

impl Style {
    /// Detects the conventions of `doc`.
    pub fn detect(doc: &PolicyDocument) -> Style {
        let text = doc.text();
        let mut spaced = 0;
        let mut tight = 0;
        let mut single = 0;
        let mut double = 0;
        let mut quoting = None;
        for e in doc.elements() {
            if e.is_self_closing() {
                if text[..e.span.end].ends_with(" />") {
                    spaced += 1;
                } else {
                    tight += 1;
                }
            }
            for a in &e.attributes {
                if a.quote == '\'' {
                    single += 1;
                } else {
                    double += 1;
                }
            }
            if quoting.is_none()
                && e.name == "when"
                && let Some(c) = e.attr("condition")
            {
                quoting = if c.quote == '\'' && c.raw.contains('"') {
                    Some(ConditionQuoting::SingleRaw)
                } else if c.quote == '"' && c.raw.contains("&quot;") {
                    Some(ConditionQuoting::DoubleEntity)
                } else if c.quote == '"' && c.raw.contains('"') {
                    Some(ConditionQuoting::DoubleRaw)
                } else {
                    None
                };
            }
        }
        Style {
            layout: Layout::detect(text),
            self_close: if tight > spaced { "/>" } else { " />" },
            attr_quote: if single > double { '\'' } else { '"' },
            condition_quoting: quoting.unwrap_or(ConditionQuoting::DoubleEntity),
        }
    }

    /// The `condition="..."` attribute selecting exactly `subscription_id`.
    pub fn subscription_condition(&self, subscription_id: &str) -> String {
        match self.condition_quoting {
            ConditionQuoting::DoubleEntity => {
                format!("condition=\"@(context.Subscription.Id == &quot;{subscription_id}&quot;)\"")
            }
            ConditionQuoting::SingleRaw => {
                format!("condition='@(context.Subscription.Id == \"{subscription_id}\")'")
            }
            ConditionQuoting::DoubleRaw => {
                format!("condition=\"@(context.Subscription.Id == \"{subscription_id}\")\"")
            }
        }
    }
}

/// Checks that a subscription id can be embedded in a C# string literal inside an attribute.
pub fn validate_subscription_id(id: &str) -> Result<(), EditError> {
    let bad = id.is_empty()
        || id.len() > 256
        || id.chars().any(|c| c.is_whitespace() || c.is_control() || "\"'\\<>&{}".contains(c));
    if bad {
        return Err(EditError::InvalidValue {
            field: "subscription_id".to_string(),
            message: format!(
                "`{id}` is not a subscription id that can be written into a condition (1-256 characters, no whitespace, quotes, backslash, <, >, & or braces)"
            ),
        });
    }
    Ok(())
}

fn check_attr(text: &str, attr: &Attr) -> Result<(), EditError> {
    let ok = text.get(attr.value_span.range()) == Some(attr.raw.as_str())
        && text.get(attr.name_span.range()) == Some(attr.name.as_str())
        && text.as_bytes().get(attr.value_span.end) == Some(&(attr.quote as u8));
    if ok { Ok(()) } else { Err(EditError::Stale { what: format!("attribute `{}` at {}", attr.name, attr.span) }) }
}

fn check_element(text: &str, e: &Element) -> Result<(), EditError> {
    let ok = text.get(e.name_span.range()) == Some(e.name.as_str())
        && e.name_span.start == e.span.start + 1
        && text.as_bytes().get(e.span.start) == Some(&b'<')
        && e.span.end <= text.len()
        && text.as_bytes()[e.span.end - 1] == b'>'
        && e.attributes.iter().all(|a| check_attr(text, a).is_ok());
    if ok { Ok(()) } else { Err(EditError::Stale { what: format!("element <{}> at {}", e.name, e.span) }) }
}

fn splice(text: &str, span: Span, replacement: &str) -> String {
    let mut out = String::with_capacity(text.len() + replacement.len());
    out.push_str(&text[..span.start]);
    out.push_str(replacement);
    out.push_str(&text[span.end..]);
    out
}

/// Replaces only the value bytes of `attr` with `new_value`, escaped for XML and for the
/// attribute's own quote character (which is kept).
pub fn set_attribute(text: &str, attr: &Attr, new_value: &str) -> Result<String, EditError> {
    check_attr(text, attr)?;
    Ok(splice(text, attr.value_span, &escape_attr_value(new_value, attr.quote)))
}

/// Adds `name="value"` after the element's last attribute, separated by the same whitespace that
/// precedes the last attribute (so attributes written one per line stay one per line) and
/// quoted like it; after the tag name with a single space when the element has no attributes.
pub fn add_attribute(text: &str, element: &Element, name: &str, value: &str) -> Result<String, EditError> {
    check_element(text, element)?;
    if element.attr(name).is_some() {
        return Err(EditError::DuplicateAttribute { name: name.to_string() });
    }
    let (at, sep, quote) = match element.attributes.last() {
        Some(last) => {
            let before = &text[element.name_span.end..last.span.start];
            let ws_start = before.trim_end_matches([' ', '\t', '\r', '\n']).len();
            let sep = &before[ws_start..];
            let sep = if sep.is_empty() { " " } else { sep };
            (last.span.end, sep.to_string(), last.quote)
        }
        None => (element.name_span.end, " ".to_string(), '"'),
    };
    let insert = format!("{sep}{name}={quote}{}{quote}", escape_attr_value(value, quote));
    Ok(splice(text, Span::empty(at), &insert))
}

/// Removes an attribute and the whitespace before it.
pub(crate) fn remove_attribute(text: &str, element: &Element, attr: &Attr) -> Result<String, EditError> {
    check_element(text, element)?;
    let before = &text[element.name_span.end..attr.span.start];
    let ws = before.len() - before.trim_end_matches([' ', '\t', '\r', '\n']).len();
    Ok(splice(text, Span::new(attr.span.start - ws, attr.span.end), ""))
}

/// Newline positions inside `e` that are layout (between attributes, or in whitespace-only text),
/// not content: re-indenting there cannot change any value.
fn structural_newlines(text: &str, e: &Element) -> Vec<usize> {
    let mut out = Vec::new();
    let tag = |span: Span, attrs: &[Attr], out: &mut Vec<usize>| {
        for (i, b) in text[span.range()].bytes().enumerate() {
            let p = span.start + i;
            if b == b'\n' && !attrs.iter().any(|a| a.value_span.start <= p && p < a.value_span.end) {
                out.push(p);
            }
        }
    };
    tag(e.start_tag, &e.attributes, &mut out);
    for c in &e.children {
        match c {
            Node::Element(child) => out.extend(structural_newlines(text, child)),
            Node::Text(s) if s.of(text).trim().is_empty() => {
                out.extend(s.range().filter(|&p| text.as_bytes()[p] == b'\n'));
            }
            _ => {}
        }
    }
    if let Some(end) = e.end_tag {
        tag(end, &[], &mut out);
    }
    out.sort_unstable();
    out
}

/// The element's text with `extra` added after every structural newline (see
/// [`structural_newlines`]).
fn indented_copy(text: &str, e: &Element, extra: &str) -> String {
    let newlines = structural_newlines(text, e);
    let mut out = String::new();
    let mut last = e.span.start;
    for p in newlines {
        out.push_str(&text[last..=p]);
        out.push_str(extra);
        last = p + 1;
    }
    out.push_str(&text[last..e.span.end]);
    out
}

/// Renders a [`NewLimit`] as markup for a line indented with `indent` (`None`: inline).
pub(crate) fn render_limit(
    text: &str,
    style: &Style,
    limit: &NewLimit<'_>,
    indent: Option<&str>,
) -> Result<String, EditError> {
    let q = style.attr_quote;
    match limit {
        NewLimit::Requests { calls_per_minute } => Ok(format!(
            "<rate-limit-by-key calls={q}{calls_per_minute}{q} renewal-period={q}60{q} counter-key={q}@(context.Subscription.Id){q}{}",
            style.self_close
        )),
        NewLimit::Tokens { template: None, tokens_per_minute, token_quota, .. } => {
            let mut s = format!("<llm-token-limit counter-key={q}@(context.Subscription.Id){q}");
            if let Some(t) = tokens_per_minute {
                s.push_str(&format!(" tokens-per-minute={q}{t}{q}"));
            }
            if let Some((n, p)) = token_quota {
                s.push_str(&format!(" token-quota={q}{n}{q} token-quota-period={q}{p}{q}"));
            }
            s.push_str(&format!(" estimate-prompt-tokens={q}false{q}{}", style.self_close));
            Ok(s)
        }
        NewLimit::Tokens { template: Some(t), keep_template_limits, tokens_per_minute, token_quota } => {
            check_element(text, t)?;
            // Copy the template, re-indented for its new place, then edit the copy as a
            // document of its own.
            let copy = match (indent, indent_before(text, t.span.start)) {
                (Some(to), Some(from)) if to.starts_with(from) => indented_copy(text, t, &to[from.len()..]),
                _ => t.span.of(text).to_string(),
            };
            let mut copy = copy;
            let mut set = |name: &str, value: Option<String>| -> Result<(), EditError> {
                let doc = PolicyDocument::parse(&copy)?;
                let e = doc.root();
                copy = match (e.attr(name), value) {
                    (Some(a), Some(v)) => set_attribute(&copy, a, &v)?,
                    (None, Some(v)) => add_attribute(&copy, e, name, &v)?,
                    (Some(a), None) if !keep_template_limits => remove_attribute(&copy, e, a)?,
                    _ => return Ok(()),
                };
                Ok(())
            };
            set("tokens-per-minute", tokens_per_minute.map(|v| v.to_string()))?;
            set("token-quota", token_quota.map(|(n, _)| n.to_string()))?;
            set("token-quota-period", token_quota.map(|(_, p)| p.to_string()))?;
            Ok(copy)
        }
    }
}

/// Indentation of the children of `parent`: the indentation of its first child element that
/// starts a line, else the parent's indentation plus one unit. `None` when the parent is written
/// inline (not at the start of a line) and has no child on its own line.
pub(crate) fn child_indent(text: &str, parent: &Element, style: &Style) -> Option<String> {
    for c in &parent.children {
        if let Node::Element(_) | Node::Comment(_) = c
            && let Some(ind) = indent_before(text, c.span().start)
        {
            return Some(ind.to_string());
        }
    }
    indent_before(text, parent.span.start).map(|p| format!("{p}{}", style.layout.indent_unit))
}

/// Appends `markup` as the last child of `parent`, on its own line indented like its siblings
/// (inline when the parent is written inline). A self-closing parent gets an end tag.
pub fn append_child(text: &str, parent: &Element, markup: &str) -> Result<String, EditError> {
    check_element(text, parent)?;
    let doc = PolicyDocument::parse(text)?;
    let style = Style::detect(&doc);
    let nl = style.layout.newline;
    let parent_indent = indent_before(text, parent.span.start);
    let ind = child_indent(text, parent, &style);
    if parent.is_self_closing() {
        let tag = parent.start_tag.of(text);
        let open = tag.strip_suffix("/>").unwrap_or(tag).trim_end();
        let body = match (&ind, parent_indent) {
            (Some(ci), Some(pi)) => format!("{open}>{nl}{ci}{markup}{nl}{pi}</{}>", parent.name),
            _ => format!("{open}>{markup}</{}>", parent.name),
        };
        return Ok(splice(text, parent.span, &body));
    }
    let last = parent.children.iter().rev().find(|c| !matches!(c, Node::Text(s) if s.of(text).trim().is_empty()));
    match last {
        Some(last) => {
            let at = last.span().end;
            let insert = match indent_before(text, last.span().start) {
                Some(li) => format!("{nl}{li}{markup}"),
                None => markup.to_string(),
            };
            Ok(splice(text, Span::empty(at), &insert))
        }
        None => {
            let content = parent.content_span();
            let body = match (&ind, parent_indent) {
                (Some(ci), Some(pi)) => format!("{nl}{ci}{markup}{nl}{pi}"),
                _ => markup.to_string(),
            };
            Ok(splice(text, content, &body))
        }
    }
}

/// Renders `<when condition>` + body lines + `</when>` for a branch indented with `indent`.
fn render_when(style: &Style, subscription_id: &str, indent: Option<&str>, body: &[String]) -> String {
    let cond = style.subscription_condition(subscription_id);
    let nl = style.layout.newline;
    match indent {
        Some(ind) => {
            let mut s = format!("<when {cond}>");
            for b in body {
                s.push_str(&format!("{nl}{ind}{}{b}", style.layout.indent_unit));
            }
            s.push_str(&format!("{nl}{ind}</when>"));
            s
        }
        None => format!("<when {cond}>{}</when>", body.concat()),
    }
}

/// The unit by which a branch's children are indented relative to the branch.
fn branch_unit(text: &str, choose: &Choose<'_>, style: &Style) -> String {
    for b in &choose.branches {
        if let (Some(bi), Some(ci)) = (indent_before(text, b.element.span.start), child_indent(text, b.element, style))
            && ci.len() > bi.len()
            && ci.starts_with(bi)
        {
            return ci[bi.len()..].to_string();
        }
    }
    style.layout.indent_unit.clone()
}

fn insertion_point(
    text: &str,
    choose: &Choose<'_>,
    before: BranchIndex,
) -> Result<(usize, Option<String>, bool), EditError> {
    check_element(text, choose.element)?;
    if let Some(i) = choose.branches.iter().position(|b| b.kind == BranchKind::Otherwise)
        && before.0 > i
    {
        return Err(EditError::NotPossible {
            reason: format!("choose[{}]: a <when> cannot follow <otherwise>", choose.ordinal),
        });
    }
    if before.0 > choose.branches.len() {
        return Err(EditError::NotPossible {
            reason: format!("choose[{}] has only {} branches", choose.ordinal, choose.branches.len()),
        });
    }
    Ok(match choose.branches.get(before.0) {
        // Insert in front of an existing branch: the new branch takes its line, the existing
        // branch moves to the next line with the same indentation.
        Some(b) => (b.element.span.start, indent_before(text, b.element.span.start).map(str::to_string), true),
        None => match choose.branches.last() {
            Some(last) => {
                (last.element.span.end, indent_before(text, last.element.span.start).map(str::to_string), false)
            }
            None => {
                return Err(EditError::NotPossible { reason: format!("choose[{}] has no branches", choose.ordinal) });
            }
        },
    })
}

fn insert_rendered_branch(
    text: &str,
    at: usize,
    indent: Option<&str>,
    in_front: bool,
    branch: &str,
    nl: &str,
) -> String {
    let insert = match (indent, in_front) {
        (Some(ind), true) => format!("{branch}{nl}{ind}"),
        (Some(ind), false) => format!("{nl}{ind}{branch}"),
        (None, _) => branch.to_string(),
    };
    splice(text, Span::empty(at), &insert)
}

/// Inserts `<when condition="@(context.Subscription.Id == "id")">` holding `elements` into
/// `choose`, in front of branch `before` (or after the last `<when>` when `before` equals the
/// number of branches), indented like the sibling branches, quoting the condition the way the
/// document's conditions do.
pub fn insert_subscription_branch(
    text: &str,
    choose: &Choose<'_>,
    before: BranchIndex,
    subscription_id: &str,
    elements: &[NewLimit<'_>],
) -> Result<String, EditError> {
    validate_subscription_id(subscription_id)?;
    let (at, indent, in_front) = insertion_point(text, choose, before)?;
    let doc = PolicyDocument::parse(text)?;
    let style = Style::detect(&doc);
    let unit = branch_unit(text, choose, &style);
    let style = Style { layout: Layout { indent_unit: unit, ..style.layout.clone() }, ..style };
    let child_indent = indent.as_deref().map(|i| format!("{i}{}", style.layout.indent_unit));
    let body = elements
        .iter()
        .map(|e| render_limit(text, &style, e, child_indent.as_deref()))
        .collect::<Result<Vec<_>, _>>()?;
    let branch = render_when(&style, subscription_id, indent.as_deref(), &body);
    Ok(insert_rendered_branch(text, at, indent.as_deref(), in_front, &branch, style.layout.newline))
}

/// Inserts, in front of branch `before`, a `<when>` for `subscription_id` whose content is a
/// byte-for-byte copy of the content of branch `copy_of`. When `before == copy_of` this changes
/// nothing for any subscription: the subscription gets its own branch with exactly the policies it
/// had, which can then be edited in place without touching the shared branch.
pub fn insert_branch_copy(
    text: &str,
    choose: &Choose<'_>,
    before: BranchIndex,
    subscription_id: &str,
    copy_of: BranchIndex,
) -> Result<String, EditError> {
    validate_subscription_id(subscription_id)?;
    let (at, indent, in_front) = insertion_point(text, choose, before)?;
    let source = choose.branches.get(copy_of.0).ok_or_else(|| EditError::NotPossible {
        reason: format!("choose[{}] has no branch {}", choose.ordinal, copy_of.0),
    })?;
    check_element(text, source.element)?;
    let doc = PolicyDocument::parse(text)?;
    let style = Style::detect(&doc);
    let content = source.element.content_span().of(text);
    let branch = format!("<when {}>{content}</when>", style.subscription_condition(subscription_id));
    Ok(insert_rendered_branch(text, at, indent.as_deref(), in_front, &branch, style.layout.newline))
}

/// Replaces `element` by
/// `<choose><when condition="(subscription)">NEW</when><otherwise>ELEMENT</otherwise></choose>`,
/// where NEW is `replacement` (or, when `None`, a copy of the element itself, which makes the
/// change a no-op for every subscription) and ELEMENT is the original bytes re-indented two
/// levels deeper (only layout whitespace between attributes or children changes).
pub fn wrap_in_subscription_choose(
    text: &str,
    element: &Element,
    subscription_id: &str,
    replacement: Option<&[NewLimit<'_>]>,
) -> Result<String, EditError> {
    validate_subscription_id(subscription_id)?;
    check_element(text, element)?;
    let doc = PolicyDocument::parse(text)?;
    let style = Style::detect(&doc);
    let nl = style.layout.newline;
    let unit = style.layout.indent_unit.as_str();
    let cond = style.subscription_condition(subscription_id);
    let wrapped = match indent_before(text, element.span.start) {
        Some(ind) => {
            let inner = format!("{ind}{unit}{unit}");
            let moved = indented_copy(text, element, &format!("{unit}{unit}"));
            let new = match replacement {
                Some(items) => {
                    items.iter().map(|e| render_limit(text, &style, e, Some(&inner))).collect::<Result<Vec<_>, _>>()?
                }
                None => vec![moved.clone()],
            };
            let mut s = format!("<choose>{nl}{ind}{unit}<when {cond}>");
            for n in &new {
                s.push_str(&format!("{nl}{inner}{n}"));
            }
            s.push_str(&format!(
                "{nl}{ind}{unit}</when>{nl}{ind}{unit}<otherwise>{nl}{inner}{moved}{nl}{ind}{unit}</otherwise>{nl}{ind}</choose>"
            ));
            s
        }
        None => {
            let original = element.span.of(text);
            let new = match replacement {
                Some(items) => {
                    items.iter().map(|e| render_limit(text, &style, e, None)).collect::<Result<Vec<_>, _>>()?.concat()
                }
                None => original.to_string(),
            };
            format!("<choose><when {cond}>{new}</when><otherwise>{original}</otherwise></choose>")
        }
    };
    Ok(splice(text, element.span, &wrapped))
}

/// Adds `<choose><when condition="(subscription)">elements</when></choose>` to `section`
/// (normally `<inbound>`): after its `<base />` when it has one, else as its first child.
pub fn insert_subscription_choose(
    text: &str,
    section: &Element,
    subscription_id: &str,
    elements: &[NewLimit<'_>],
) -> Result<String, EditError> {
    validate_subscription_id(subscription_id)?;
    check_element(text, section)?;
    let doc = PolicyDocument::parse(text)?;
    let style = Style::detect(&doc);
    let nl = style.layout.newline;
    let unit = style.layout.indent_unit.clone();
    let indent = child_indent(text, section, &style);
    let render = |indent: Option<&str>| -> Result<String, EditError> {
        let when_indent = indent.map(|i| format!("{i}{unit}"));
        let inner = indent.map(|i| format!("{i}{unit}{unit}"));
        let body =
            elements.iter().map(|e| render_limit(text, &style, e, inner.as_deref())).collect::<Result<Vec<_>, _>>()?;
        let when = render_when(&style, subscription_id, when_indent.as_deref(), &body);
        Ok(match (indent, when_indent) {
            (Some(i), Some(wi)) => format!("<choose>{nl}{wi}{when}{nl}{i}</choose>"),
            _ => format!("<choose>{when}</choose>"),
        })
    };
    match section.child_elements().filter(|e| e.name == "base").last() {
        Some(base) => {
            let ind = indent_before(text, base.span.start).map(str::to_string);
            let markup = render(ind.as_deref())?;
            let insert = match ind {
                Some(i) => format!("{nl}{i}{markup}"),
                None => markup,
            };
            Ok(splice(text, Span::empty(base.span.end), &insert))
        }
        None => match section.children.iter().find(|c| !matches!(c, Node::Text(s) if s.of(text).trim().is_empty())) {
            Some(first) => {
                let ind = indent_before(text, first.span().start).map(str::to_string);
                let markup = render(ind.as_deref())?;
                let insert = match ind {
                    Some(i) => format!("{markup}{nl}{i}"),
                    None => markup,
                };
                Ok(splice(text, Span::empty(first.span().start), &insert))
            }
            None => {
                let markup = render(indent.as_deref())?;
                append_child(text, section, &markup)
            }
        },
    }
}
