//! Policy document validation as APIM does it on PUT, and the normalisation of stored policies.
//!
//! Checks, in document order:
//! - well-formedness (`xml.rs`; `rawxml` tolerates unescaped expressions, `xml` does not);
//! - the root is `<policies>` with at most one each of `inbound`, `backend`, `outbound`,
//!   `on-error`, and no text;
//! - every policy element is known and allowed in its section (`SPECS` below), with its
//!   required attributes, no undeclared attributes (for the policies modelled in full), and the
//!   child elements it may have; `choose`/`when`/`otherwise` and `retry` nest statements;
//! - the AI-gateway policies' attribute rules from the reference (§2): `llm-token-limit` /
//!   `azure-openai-token-limit`, `rate-limit-by-key`, `llm-emit-token-metric`,
//!   `llm-semantic-cache-lookup`/`-store`, `set-backend-service`, `retry`;
//! - every `{{name}}` reference names an existing named value (by display name), and every
//!   literal `backend-id` names an existing backend.
//!
//! Messages follow APIM's two shapes: .NET XML errors end with `Line L, position C.`; policy
//! errors read `Error in element 'x' on line L, column C: ...`. All problems found are reported,
//! in document order (after the first well-formedness error nothing else can be checked).
//!
//! Normalisation (`normalize`) is deliberately minimal and idempotent: a UTF-8 BOM is dropped and
//! line endings become CRLF. Nothing else changes — not comments, attribute order or quotes,
//! entities, whitespace, or expression text — because other code edits policies byte by byte
//! and compares round trips.

use std::collections::HashMap;

use crate::store::Service;
use crate::validate::xml::{self, Document, Element, Format, Node};

/// One validation problem; `message` already carries line and column.
#[derive(Debug, Clone, PartialEq)]
pub struct Issue {
    pub message: String,
    pub offset: usize,
}

/// CRLF line endings, no BOM. Idempotent: `normalize(normalize(x)) == normalize(x)`.
pub fn normalize(text: &str) -> String {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut out = String::with_capacity(text.len() + text.len() / 16);
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\r' => {
                if chars.peek() == Some(&'\n') {
                    chars.next();
                }
                out.push_str("\r\n");
            }
            '\n' => out.push_str("\r\n"),
            c => out.push(c),
        }
    }
    out
}

const I: u8 = 1;
const B: u8 = 2;
const O: u8 = 4;
const E: u8 = 8;
const ALL: u8 = I | B | O | E;

#[derive(Clone, Copy)]
enum Kids {
    /// No child elements and no text.
    Empty,
    /// Policy statements of the enclosing section.
    Statements,
    /// Only these child elements (their content is not checked further); text allowed only
    /// if the list is empty.
    Named(&'static [&'static str]),
    /// Anything (content not modelled by the emulator).
    Opaque,
}

struct Spec {
    name: &'static str,
    sections: u8,
    required: &'static [&'static str],
    /// `Some`: the complete attribute list; anything else is undeclared. `None`: not checked.
    attrs: Option<&'static [&'static str]>,
    kids: Kids,
}

const TOKEN_LIMIT_ATTRS: &[&str] = &[
    "counter-key",
    "tokens-per-minute",
    "token-quota",
    "token-quota-period",
    "estimate-prompt-tokens",
    "retry-after-header-name",
    "retry-after-variable-name",
    "remaining-quota-tokens-header-name",
    "remaining-quota-tokens-variable-name",
    "remaining-tokens-header-name",
    "remaining-tokens-variable-name",
    "tokens-consumed-header-name",
    "tokens-consumed-variable-name",
];
const RATE_LIMIT_BY_KEY_ATTRS: &[&str] = &[
    "calls",
    "renewal-period",
    "counter-key",
    "increment-condition",
    "increment-count",
    "retry-after-header-name",
    "retry-after-variable-name",
    "remaining-calls-header-name",
    "remaining-calls-variable-name",
    "total-calls-header-name",
];
const SEMANTIC_LOOKUP_ATTRS: &[&str] = &[
    "score-threshold",
    "embeddings-backend-id",
    "embeddings-backend-auth",
    "ignore-system-messages",
    "max-message-count",
];

macro_rules! spec {
    ($name:expr, $sections:expr, $req:expr, $attrs:expr, $kids:expr) => {
        Spec { name: $name, sections: $sections, required: $req, attrs: $attrs, kids: $kids }
    };
}

static SPECS: &[Spec] = &[
    spec!("base", ALL, &[], Some(&[]), Kids::Empty),
    spec!("choose", ALL, &[], Some(&[]), Kids::Statements),
    spec!("llm-token-limit", I, &["counter-key", "estimate-prompt-tokens"], Some(TOKEN_LIMIT_ATTRS), Kids::Empty),
    spec!(
        "azure-openai-token-limit",
        I,
        &["counter-key", "estimate-prompt-tokens"],
        Some(TOKEN_LIMIT_ATTRS),
        Kids::Empty
    ),
    spec!(
        "rate-limit-by-key",
        I,
        &["calls", "renewal-period", "counter-key"],
        Some(RATE_LIMIT_BY_KEY_ATTRS),
        Kids::Empty
    ),
    spec!("rate-limit", I, &["calls", "renewal-period"], None, Kids::Opaque),
    spec!(
        "quota-by-key",
        I,
        &["counter-key", "renewal-period"],
        Some(&[
            "counter-key",
            "calls",
            "bandwidth",
            "renewal-period",
            "increment-condition",
            "increment-count",
            "first-period-start"
        ]),
        Kids::Empty
    ),
    spec!("quota", I, &["renewal-period"], None, Kids::Opaque),
    spec!("llm-emit-token-metric", I, &[], Some(&["namespace"]), Kids::Named(&["dimension"])),
    spec!("azure-openai-emit-token-metric", I, &[], Some(&["namespace"]), Kids::Named(&["dimension"])),
    spec!("emit-metric", ALL, &["name"], Some(&["name", "namespace", "value"]), Kids::Named(&["dimension"])),
    spec!(
        "llm-semantic-cache-lookup",
        I,
        &["score-threshold", "embeddings-backend-id", "embeddings-backend-auth"],
        Some(SEMANTIC_LOOKUP_ATTRS),
        Kids::Named(&["vary-by"])
    ),
    spec!(
        "azure-openai-semantic-cache-lookup",
        I,
        &["score-threshold", "embeddings-backend-id", "embeddings-backend-auth"],
        Some(SEMANTIC_LOOKUP_ATTRS),
        Kids::Named(&["vary-by"])
    ),
    spec!("llm-semantic-cache-store", O, &["duration"], Some(&["duration"]), Kids::Empty),
    spec!("azure-openai-semantic-cache-store", O, &["duration"], Some(&["duration"]), Kids::Empty),
    spec!("llm-content-safety", I, &["backend-id"], None, Kids::Opaque),
    spec!("set-backend-service", I | B, &[], None, Kids::Empty),
    spec!(
        "forward-request",
        B,
        &[],
        Some(&[
            "timeout",
            "timeout-ms",
            "continue-timeout",
            "http-version",
            "follow-redirects",
            "buffer-request-body",
            "buffer-response",
            "fail-on-error-status-code"
        ]),
        Kids::Empty
    ),
    spec!(
        "retry",
        ALL,
        &["condition", "count", "interval"],
        Some(&["condition", "count", "interval", "max-interval", "delta", "first-fast-retry"]),
        Kids::Statements
    ),
    spec!("set-variable", ALL, &["name", "value"], Some(&["name", "value"]), Kids::Empty),
    spec!("set-header", ALL, &["name"], Some(&["name", "exists-action"]), Kids::Named(&["value"])),
    spec!("set-query-parameter", ALL, &["name"], Some(&["name", "exists-action"]), Kids::Named(&["value"])),
    spec!("set-body", ALL, &[], Some(&["template", "xsi-nil", "parse-date"]), Kids::Opaque),
    spec!("set-status", ALL, &["code"], Some(&["code", "reason"]), Kids::Empty),
    spec!("set-method", ALL, &[], Some(&[]), Kids::Opaque),
    spec!(
        "return-response",
        ALL,
        &[],
        Some(&["response-variable-name"]),
        Kids::Named(&["set-status", "set-header", "set-body"])
    ),
    spec!("mock-response", I | O | E, &[], Some(&["status-code", "content-type", "index"]), Kids::Empty),
    spec!("send-request", ALL, &[], None, Kids::Opaque),
    spec!("send-one-way-request", ALL, &[], None, Kids::Opaque),
    spec!("log-to-eventhub", ALL, &["logger-id"], None, Kids::Opaque),
    spec!("trace", ALL, &["source"], None, Kids::Opaque),
    spec!("wait", ALL, &[], Some(&["for"]), Kids::Statements),
    spec!("include-fragment", ALL, &["fragment-id"], Some(&["fragment-id"]), Kids::Empty),
    spec!("limit-concurrency", ALL, &["key", "max-count"], Some(&["key", "max-count"]), Kids::Statements),
    spec!("cors", I, &[], None, Kids::Opaque),
    spec!("validate-jwt", I, &[], None, Kids::Opaque),
    spec!("validate-azure-ad-token", I, &[], None, Kids::Opaque),
    spec!(
        "check-header",
        I,
        &["name", "failed-check-httpcode", "failed-check-error-message", "ignore-case"],
        None,
        Kids::Opaque
    ),
    spec!("ip-filter", I, &["action"], None, Kids::Opaque),
    spec!("authentication-managed-identity", I, &["resource"], None, Kids::Empty),
    spec!("authentication-basic", I, &["username", "password"], None, Kids::Empty),
    spec!("authentication-certificate", I, &[], None, Kids::Empty),
    spec!("rewrite-uri", I, &["template"], None, Kids::Empty),
    spec!("cache-lookup", I, &[], None, Kids::Opaque),
    spec!("cache-store", O, &[], None, Kids::Opaque),
    spec!("cache-lookup-value", ALL, &["key", "variable-name"], None, Kids::Empty),
    spec!("cache-store-value", ALL, &["key", "value", "duration"], None, Kids::Empty),
    spec!("cache-remove-value", ALL, &["key"], None, Kids::Empty),
    spec!("find-and-replace", ALL, &["from", "to"], None, Kids::Empty),
    spec!("json-to-xml", I | O | E, &[], None, Kids::Empty),
    spec!("xml-to-json", I | O | E, &[], None, Kids::Empty),
    spec!("xsl-transform", I | O | E, &[], None, Kids::Opaque),
    spec!("validate-content", I | O | E, &[], None, Kids::Opaque),
    spec!("validate-parameters", I, &[], None, Kids::Opaque),
    spec!("validate-headers", O | E, &[], None, Kids::Opaque),
    spec!("validate-status-code", O | E, &[], None, Kids::Opaque),
    spec!("validate-client-certificate", I, &[], None, Kids::Opaque),
    spec!("proxy", ALL, &["url"], None, Kids::Empty),
    spec!("set-backend-credentials", I | B, &[], None, Kids::Opaque),
    spec!("get-authorization-context", ALL, &[], None, Kids::Opaque),
    spec!("publish-to-dapr", ALL, &[], None, Kids::Opaque),
    spec!("invoke-dapr-binding", ALL, &[], None, Kids::Opaque),
];

fn section_name(bit: u8) -> &'static str {
    match bit {
        I => "inbound",
        B => "backend",
        O => "outbound",
        _ => "on-error",
    }
}

fn section_list(bits: u8) -> String {
    [I, B, O, E].iter().filter(|b| bits & **b != 0).map(|b| section_name(*b)).collect::<Vec<_>>().join(", ")
}

/// Dimensions `llm-emit-token-metric` fills in itself (a `value` is optional for these).
const DEFAULT_DIMENSIONS: &[&str] =
    &["API ID", "Operation ID", "Product ID", "User ID", "Subscription ID", "Location", "Gateway ID", "Backend ID"];

/// Validates `text` (already normalised) in `format` against service `svc`.
/// Returns the parsed document, or every problem found.
pub fn validate(text: &str, format: Format, svc: &Service) -> Result<Document, Vec<Issue>> {
    let doc = match xml::parse(text, format) {
        Ok(d) => d,
        Err(e) => {
            return Err(vec![Issue { message: e.display(text), offset: e.offset }]);
        }
    };
    let mut v = Validator { doc: &doc, svc, issues: Vec::new() };
    v.root(&doc.root);
    v.named_value_refs(&doc.root);
    if v.issues.is_empty() {
        Ok(doc)
    } else {
        let mut issues = v.issues;
        issues.sort_by_key(|i| i.offset);
        Err(issues)
    }
}

struct Validator<'a> {
    doc: &'a Document,
    svc: &'a Service,
    issues: Vec<Issue>,
}

impl Validator<'_> {
    fn at(&mut self, el: &Element, offset: usize, msg: impl AsRef<str>) {
        let (l, c) = self.doc.position(offset);
        self.issues.push(Issue {
            message: format!("Error in element '{}' on line {l}, column {c}: {}", el.name, msg.as_ref()),
            offset,
        });
    }

    fn err(&mut self, el: &Element, msg: impl AsRef<str>) {
        self.at(el, el.start, msg);
    }

    fn root(&mut self, root: &Element) {
        if root.name != "policies" {
            self.err(root, "The root element must be 'policies'.");
            return;
        }
        self.no_text(root);
        let mut seen = 0u8;
        for child in root.elements() {
            let bit = match child.name.as_str() {
                "inbound" => I,
                "backend" => B,
                "outbound" => O,
                "on-error" => E,
                _ => {
                    self.err(
                        child,
                        "This element is not a policy section. Allowed sections are 'inbound', 'backend', 'outbound' and 'on-error'.",
                    );
                    continue;
                }
            };
            if seen & bit != 0 {
                self.err(child, format!("The '{}' section can appear only once.", child.name));
            }
            seen |= bit;
            let mut counts = HashMap::new();
            self.statements(child, bit, &mut counts);
        }
    }

    fn no_text(&mut self, el: &Element) {
        if let Some(t) = el.texts().next() {
            let off = t.start + (t.raw.len() - t.raw.trim_start().len());
            self.at(el, off, format!("The element '{}' cannot contain text.", el.name));
        }
    }

    fn statements(&mut self, parent: &Element, section: u8, counts: &mut HashMap<&'static str, usize>) {
        self.no_text(parent);
        for child in parent.elements() {
            self.policy(child, section, counts);
        }
    }

    fn policy(&mut self, el: &Element, section: u8, counts: &mut HashMap<&'static str, usize>) {
        let Some(spec) = SPECS.iter().find(|s| s.name == el.name) else {
            self.err(el, format!("Unknown policy '{}'. Check the element name.", el.name));
            return;
        };
        if spec.sections & section == 0 {
            self.err(
                el,
                format!(
                    "Policy is not allowed in the '{}' section. Allowed sections: {}.",
                    section_name(section),
                    section_list(spec.sections)
                ),
            );
        }
        for req in spec.required {
            if el.attribute(req).is_none() {
                self.err(el, format!("The required attribute '{req}' is missing."));
            }
        }
        if let Some(allowed) = spec.attrs {
            for a in &el.attributes {
                if !allowed.contains(&a.name.as_str()) && a.name != "id" {
                    self.at(el, a.start, format!("The '{}' attribute is not declared.", a.name));
                }
            }
        }
        for a in &el.attributes {
            if a.expression {
                let v = a.raw.trim_end();
                let closed = if a.raw.starts_with("@(") { v.ends_with(')') } else { v.ends_with('}') };
                if !closed {
                    self.at(el, a.start, format!("The policy expression in attribute '{}' is not terminated.", a.name));
                }
            }
        }
        match spec.kids {
            Kids::Empty => {
                self.no_text(el);
                if let Some(c) = el.elements().next() {
                    self.at(
                        el,
                        c.start,
                        format!("The element '{}' cannot contain child element '{}'.", el.name, c.name),
                    );
                }
            }
            Kids::Statements if el.name == "choose" => self.choose(el, section, counts),
            Kids::Statements => self.statements(el, section, counts),
            Kids::Named(names) => {
                if !names.is_empty() && el.texts().next().is_some() {
                    let list = names.iter().map(|n| format!("'{n}'")).collect::<Vec<_>>().join(", ");
                    let t = el.texts().next().unwrap();
                    self.at(
                        el,
                        t.start,
                        format!(
                            "The element '{}' cannot contain text. List of possible elements expected: {list}.",
                            el.name
                        ),
                    );
                }
                for c in el.elements() {
                    if !names.contains(&c.name.as_str()) {
                        let list = names.iter().map(|n| format!("'{n}'")).collect::<Vec<_>>().join(", ");
                        self.at(el, c.start, format!("The element '{}' cannot contain child element '{}'. List of possible elements expected: {list}.", el.name, c.name));
                    }
                }
            }
            Kids::Opaque => {}
        }
        self.specific(spec.name, el, section, counts);
    }

    fn choose(&mut self, el: &Element, section: u8, counts: &mut HashMap<&'static str, usize>) {
        self.no_text(el);
        let kids: Vec<&Element> = el.elements().collect();
        if !kids.iter().any(|k| k.name == "when") {
            self.err(el, "The 'choose' policy must contain at least one 'when' element.");
        }
        for (i, k) in kids.iter().enumerate() {
            match k.name.as_str() {
                "when" => {
                    if kids[..i].iter().any(|p| p.name == "otherwise") {
                        self.err(k, "A 'when' element cannot follow 'otherwise'.");
                    }
                    if k.attribute("condition").is_none() {
                        self.err(k, "The required attribute 'condition' is missing.");
                    }
                    self.statements(k, section, counts);
                }
                "otherwise" => {
                    if kids[..i].iter().any(|p| p.name == "otherwise") {
                        self.err(k, "The 'choose' policy can contain only one 'otherwise' element.");
                    }
                    self.statements(k, section, counts);
                }
                other => self.err(
                    k,
                    format!("The element 'choose' cannot contain child element '{other}'. List of possible elements expected: 'when', 'otherwise'."),
                ),
            }
        }
    }

    /// Checks an integer attribute (after `{{named value}}` substitution) is in `min..=max`.
    fn int_attr(&mut self, el: &Element, name: &str, min: i64, max: i64, expressions: bool) {
        let Some(a) = el.attribute(name) else { return };
        let v = a.value.trim();
        if v.starts_with('@') {
            if !expressions {
                self.at(el, a.start, format!("Policy expressions are not allowed in attribute '{name}'."));
            }
            return;
        }
        let resolved = if v.contains("{{") { self.svc.substitute_named_values(v) } else { v.to_string() };
        if resolved.contains("{{") {
            return; // the unknown reference is reported on its own
        }
        let shown = if resolved != v { format!("'{v}' (= '{resolved}')") } else { format!("'{v}'") };
        match resolved.trim().parse::<i64>() {
            Ok(n) if (min..=max).contains(&n) => {}
            Ok(_) => self.at(
                el,
                a.start,
                format!("The value of attribute '{name}' must be an integer from {min} to {max}; it is {shown}."),
            ),
            Err(_) => {
                self.at(el, a.start, format!("The value of attribute '{name}' must be an integer; it is {shown}."))
            }
        }
    }

    fn bool_attr(&mut self, el: &Element, name: &str, expressions: bool) {
        let Some(a) = el.attribute(name) else { return };
        let v = a.value.trim();
        if v.starts_with('@') && expressions {
            return;
        }
        if !v.eq_ignore_ascii_case("true") && !v.eq_ignore_ascii_case("false") {
            self.at(el, a.start, format!("The value of attribute '{name}' must be 'true' or 'false'; it is '{v}'."));
        }
    }

    fn no_expression(&mut self, el: &Element, names: &[&str]) {
        for name in names {
            if let Some(a) = el.attribute(name)
                && a.expression
            {
                self.at(el, a.start, format!("Policy expressions are not allowed in attribute '{name}'."));
            }
        }
    }

    fn backend_ref(&mut self, el: &Element, attr: &str) {
        let Some(a) = el.attribute(attr) else { return };
        if a.expression || a.value.contains("{{") {
            return;
        }
        if self.svc.backend(&a.value).is_none() {
            self.at(el, a.start, format!("Backend with id '{}' could not be found.", a.value));
        }
    }

    fn once_per_section(&mut self, el: &Element, name: &'static str, counts: &mut HashMap<&'static str, usize>) {
        let n = counts.entry(name).or_insert(0);
        *n += 1;
        if *n == 2 {
            self.err(el, format!("The '{name}' policy can be used only once per section."));
        }
    }

    fn specific(&mut self, name: &'static str, el: &Element, _section: u8, counts: &mut HashMap<&'static str, usize>) {
        match name {
            "llm-token-limit" | "azure-openai-token-limit" => {
                let tpm = el.attribute("tokens-per-minute").is_some();
                let quota = el.attribute("token-quota").is_some();
                let period = el.attribute("token-quota-period");
                if !tpm && !quota {
                    self.err(
                        el,
                        "Either 'tokens-per-minute' or 'token-quota' with 'token-quota-period' must be specified.",
                    );
                }
                if quota != period.is_some() {
                    self.err(el, "'token-quota' and 'token-quota-period' must be specified together.");
                }
                self.int_attr(el, "tokens-per-minute", 0, i64::from(i32::MAX), true);
                self.int_attr(el, "token-quota", 0, i64::MAX, false);
                if let Some(p) = period {
                    let ok = ["Hourly", "Daily", "Weekly", "Monthly", "Yearly"]
                        .iter()
                        .any(|x| x.eq_ignore_ascii_case(p.value.trim()));
                    if !ok {
                        self.at(el, p.start, format!("The value of attribute 'token-quota-period' must be one of Hourly, Daily, Weekly, Monthly, Yearly; it is '{}'.", p.value));
                    }
                }
                self.bool_attr(el, "estimate-prompt-tokens", false);
                self.no_expression(
                    el,
                    &[
                        "token-quota-period",
                        "retry-after-header-name",
                        "retry-after-variable-name",
                        "remaining-quota-tokens-header-name",
                        "remaining-quota-tokens-variable-name",
                        "remaining-tokens-header-name",
                        "remaining-tokens-variable-name",
                        "tokens-consumed-header-name",
                        "tokens-consumed-variable-name",
                    ],
                );
            }
            "rate-limit-by-key" => {
                self.int_attr(el, "calls", 1, i64::from(i32::MAX), true);
                self.int_attr(el, "renewal-period", 1, 300, true);
                self.int_attr(el, "increment-count", 0, i64::from(i32::MAX), true);
            }
            "rate-limit" => {
                self.int_attr(el, "calls", 1, i64::from(i32::MAX), false);
                self.int_attr(el, "renewal-period", 1, 300, false);
            }
            "quota-by-key" => {
                if el.attribute("calls").is_none() && el.attribute("bandwidth").is_none() {
                    self.err(el, "Either 'calls' or 'bandwidth' must be specified.");
                }
                self.int_attr(el, "calls", 1, i64::MAX, true);
                self.int_attr(el, "bandwidth", 1, i64::MAX, true);
                self.int_attr(el, "renewal-period", 0, i64::MAX, true);
            }
            "llm-emit-token-metric" | "azure-openai-emit-token-metric" | "emit-metric" => {
                self.no_expression(el, &["namespace"]);
                let max = if name == "llm-emit-token-metric" { 5 } else { 10 };
                let dims: Vec<&Element> = el.elements().filter(|d| d.name == "dimension").collect();
                if dims.len() > max {
                    self.at(
                        el,
                        dims[max].start,
                        format!("At most {max} dimensions are allowed; found {}.", dims.len()),
                    );
                }
                let mut names: Vec<String> = Vec::new();
                for d in dims {
                    match d.attr("name") {
                        None => self.err(d, "The required attribute 'name' is missing."),
                        Some(n) => {
                            if names.iter().any(|x| x.eq_ignore_ascii_case(n)) {
                                self.err(d, format!("The dimension '{n}' is specified more than once."));
                            }
                            names.push(n.to_string());
                            if d.attr("value").is_none()
                                && !DEFAULT_DIMENSIONS.iter().any(|x| x.eq_ignore_ascii_case(n))
                            {
                                self.err(d, format!("The 'value' attribute is required for custom dimension '{n}'."));
                            }
                        }
                    }
                }
            }
            "llm-semantic-cache-lookup" | "azure-openai-semantic-cache-lookup" => {
                self.once_per_section(el, name, counts);
                if let Some(a) = el.attribute("score-threshold") {
                    let v = a.value.trim();
                    if !v.starts_with('@') && !v.parse::<f64>().is_ok_and(|x| (0.0..=1.0).contains(&x)) {
                        self.at(el, a.start, format!("The value of attribute 'score-threshold' must be a number from 0.0 to 1.0; it is '{v}'."));
                    }
                }
                self.backend_ref(el, "embeddings-backend-id");
                if let Some(a) = el.attribute("embeddings-backend-auth")
                    && a.value != "system-assigned"
                {
                    self.at(
                        el,
                        a.start,
                        format!(
                            "The value of attribute 'embeddings-backend-auth' must be 'system-assigned'; it is '{}'.",
                            a.value
                        ),
                    );
                }
                self.bool_attr(el, "ignore-system-messages", false);
                self.int_attr(el, "max-message-count", 1, i64::from(i32::MAX), false);
            }
            "llm-semantic-cache-store" | "azure-openai-semantic-cache-store" => {
                self.once_per_section(el, name, counts);
                self.int_attr(el, "duration", 1, i64::from(i32::MAX), true);
            }
            "llm-content-safety" => self.backend_ref(el, "backend-id"),
            "set-backend-service" => {
                match (el.attribute("base-url").is_some(), el.attribute("backend-id").is_some()) {
                    (false, false) => self.err(el, "Either 'base-url' or 'backend-id' must be specified."),
                    (true, true) => self.err(el, "Only one of 'base-url' and 'backend-id' can be specified."),
                    _ => {}
                }
                self.backend_ref(el, "backend-id");
            }
            "retry" => {
                self.int_attr(el, "count", 1, 50, true);
                self.int_attr(el, "interval", 0, 3600, true);
                self.int_attr(el, "max-interval", 0, 3600, true);
                self.int_attr(el, "delta", 0, 3600, true);
                self.bool_attr(el, "first-fast-retry", true);
                if let Some(a) = el.attribute("condition") {
                    let v = a.value.trim();
                    if !a.expression && !v.eq_ignore_ascii_case("true") && !v.eq_ignore_ascii_case("false") {
                        self.at(el, a.start, format!("The value of attribute 'condition' must be a boolean literal or a policy expression; it is '{v}'."));
                    }
                }
            }
            "forward-request" => {
                self.bool_attr(el, "buffer-request-body", false);
                self.bool_attr(el, "buffer-response", false);
                self.bool_attr(el, "follow-redirects", false);
                self.bool_attr(el, "fail-on-error-status-code", false);
                self.int_attr(el, "timeout", 0, 240, true);
            }
            "set-header" | "set-query-parameter" => {
                if let Some(a) = el.attribute("exists-action") {
                    let ok = ["override", "skip", "append", "delete"].contains(&a.value.as_str());
                    if !ok {
                        self.at(el, a.start, format!("The value of attribute 'exists-action' must be one of override, skip, append, delete; it is '{}'.", a.value));
                    }
                }
            }
            "set-status" => self.int_attr(el, "code", 100, 599, true),
            _ => {}
        }
    }

    /// Reports `{{name}}` references to named values that do not exist.
    fn named_value_refs(&mut self, el: &Element) {
        let liquid = el.name == "set-body" && el.attr("template").is_some_and(|t| t.eq_ignore_ascii_case("liquid"));
        let mut found: Vec<(usize, String)> = Vec::new();
        for a in &el.attributes {
            collect_refs(&a.raw, a.value_start, &mut found);
        }
        if !liquid {
            for n in &el.children {
                if let Node::Text(t) = n {
                    collect_refs(&t.raw, t.start + if t.cdata { 9 } else { 0 }, &mut found);
                }
            }
        }
        for (offset, name) in found {
            if self.svc.named_value(&name).is_none() {
                self.at(
                    el,
                    offset,
                    format!(
                        "Cannot find a named value with the display name '{name}' (referenced as '{{{{{name}}}}}')."
                    ),
                );
            }
        }
        for c in el.elements() {
            self.named_value_refs(c);
        }
    }
}

/// Finds `{{name}}` references (names as APIM allows them: letters, digits, `-`, `.`, `_`).
fn collect_refs(raw: &str, base: usize, out: &mut Vec<(usize, String)>) {
    let mut from = 0;
    while let Some(i) = raw[from..].find("{{") {
        let start = from + i;
        let Some(len) = raw[start + 2..].find("}}") else {
            break;
        };
        let name = raw[start + 2..start + 2 + len].trim();
        if !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._".contains(&b)) {
            out.push((base + start, name.to_string()));
            from = start + 2 + len + 2;
        } else {
            from = start + 2;
        }
    }
}

/// Every `{{name}}` reference in a stored policy (used to refuse deleting a referenced named
/// value). Comments are included: APIM substitutes before parsing.
pub fn named_value_references(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    collect_refs(text, 0, &mut out);
    out.into_iter().map(|(_, n)| n).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn svc() -> Service {
        let state = crate::seed::sandbox_state();
        state.sandbox().unwrap().clone()
    }

    fn issues(text: &str) -> Vec<String> {
        match validate(&normalize(text), Format::RawXml, &svc()) {
            Ok(_) => vec![],
            Err(v) => v.into_iter().map(|i| i.message).collect(),
        }
    }

    #[test]
    fn normalisation_is_minimal_and_idempotent() {
        let t = "\u{feff}<policies>\n\t<inbound a='x'>\r\n<!-- c -->\r</inbound></policies>";
        let n = normalize(t);
        assert_eq!(n, "<policies>\r\n\t<inbound a='x'>\r\n<!-- c -->\r\n</inbound></policies>");
        assert_eq!(normalize(&n), n);
    }

    #[test]
    fn the_seeded_policies_are_valid() {
        let s = svc();
        for (scope, xml) in s.policies() {
            let r = validate(xml, Format::RawXml, &s);
            assert!(r.is_ok(), "{scope:?}: {:?}", r.err());
        }
    }

    #[test]
    fn token_limit_requires_its_attributes() {
        let m =
            issues("<policies>\n<inbound>\n  <llm-token-limit tokens-per-minute=\"100\" />\n</inbound>\n</policies>");
        assert_eq!(
            m,
            vec![
                "Error in element 'llm-token-limit' on line 3, column 3: The required attribute 'counter-key' is missing.",
                "Error in element 'llm-token-limit' on line 3, column 3: The required attribute 'estimate-prompt-tokens' is missing.",
            ]
        );
        let m = issues(
            "<policies><inbound><llm-token-limit counter-key=\"k\" estimate-prompt-tokens=\"false\" token-quota=\"@(5)\" /></inbound></policies>",
        );
        assert!(
            m.iter().any(|x| x.contains("'token-quota' and 'token-quota-period' must be specified together")),
            "{m:?}"
        );
        assert!(m.iter().any(|x| x.contains("Policy expressions are not allowed in attribute 'token-quota'")), "{m:?}");
        let m = issues(
            "<policies><inbound><llm-token-limit counter-key=\"k\" estimate-prompt-tokens=\"false\" tokens-per-minute=\"lots\" tokens-per-minutes=\"1\" /></inbound></policies>",
        );
        assert!(m.iter().any(|x| x.contains("'tokens-per-minute' must be an integer; it is 'lots'")), "{m:?}");
        assert!(m.iter().any(|x| x.contains("The 'tokens-per-minutes' attribute is not declared.")), "{m:?}");
    }

    #[test]
    fn named_values_must_exist_and_are_substituted_for_checks() {
        let ok = issues(
            "<policies><inbound><llm-token-limit counter-key=\"k\" estimate-prompt-tokens=\"false\" tokens-per-minute=\"{{tpm-data-science}}\" /></inbound></policies>",
        );
        assert!(ok.is_empty(), "{ok:?}");
        let m = issues(
            "<policies>\n<inbound>\n\t<llm-token-limit counter-key=\"k\" estimate-prompt-tokens=\"false\" tokens-per-minute=\"{{tpm-nobody}}\" />\n</inbound></policies>",
        );
        assert_eq!(
            m,
            vec![
                "Error in element 'llm-token-limit' on line 3, column 85: Cannot find a named value with the display name 'tpm-nobody' (referenced as '{{tpm-nobody}}')."
            ]
        );
    }

    #[test]
    fn policies_must_sit_in_their_sections() {
        let m = issues(
            "<policies><outbound><rate-limit-by-key calls=\"1\" renewal-period=\"60\" counter-key=\"k\" /></outbound><backend><forward-request /></backend></policies>",
        );
        assert_eq!(m.len(), 1, "{m:?}");
        assert!(m[0].contains("Policy is not allowed in the 'outbound' section. Allowed sections: inbound."));
        let m = issues("<policies><inbound><forward-request /></inbound></policies>");
        assert!(m[0].contains("not allowed in the 'inbound' section"));
        let m = issues(
            "<policies><inbound><retry condition=\"true\" count=\"1\" interval=\"0\"><forward-request /></retry></inbound></policies>",
        );
        assert!(m[0].contains("'forward-request' on line 1"), "{m:?}");
    }

    #[test]
    fn structure_errors_name_the_element() {
        let m = issues("<policy><inbound /></policy>");
        assert!(m[0].contains("The root element must be 'policies'"));
        let m = issues("<policies><inbound /><inbound /><middle /></policies>");
        assert!(m.iter().any(|x| x.contains("can appear only once")));
        assert!(m.iter().any(|x| x.contains("'middle'") && x.contains("not a policy section")));
        let m = issues("<policies><inbound><set-header name=\"x\">text</set-header></inbound></policies>");
        assert!(
            m[0].contains("The element 'set-header' cannot contain text. List of possible elements expected: 'value'.")
        );
        let m = issues("<policies><inbound><frobnicate /></inbound></policies>");
        assert!(m[0].contains("Unknown policy 'frobnicate'"));
        let m = issues(
            "<policies><inbound><choose><otherwise /><when condition=\"@(true)\" /></choose></inbound></policies>",
        );
        assert!(m.iter().any(|x| x.contains("cannot follow 'otherwise'")));
    }

    #[test]
    fn backend_and_rate_rules() {
        let m = issues(
            "<policies><inbound><set-backend-service backend-id=\"nope\" /><rate-limit-by-key calls=\"10\" renewal-period=\"600\" counter-key=\"k\" /></inbound></policies>",
        );
        assert!(m.iter().any(|x| x.contains("Backend with id 'nope' could not be found.")));
        assert!(m.iter().any(|x| x.contains("'renewal-period' must be an integer from 1 to 300; it is '600'")));
        let m = issues(
            "<policies><backend><retry condition=\"x\" count=\"0\" interval=\"0\"><forward-request /></retry></backend></policies>",
        );
        assert!(m.iter().any(|x| x.contains("'count' must be an integer from 1 to 50")));
        assert!(m.iter().any(|x| x.contains("boolean literal or a policy expression")));
        let m = issues(
            "<policies><inbound><llm-semantic-cache-lookup score-threshold=\"1.5\" embeddings-backend-id=\"aoai-eastus\" embeddings-backend-auth=\"user\" /><llm-semantic-cache-lookup score-threshold=\"0.1\" embeddings-backend-id=\"aoai-eastus\" embeddings-backend-auth=\"system-assigned\" /></inbound><outbound><llm-semantic-cache-store /></outbound></policies>",
        );
        assert!(m.iter().any(|x| x.contains("score-threshold")));
        assert!(m.iter().any(|x| x.contains("must be 'system-assigned'")));
        assert!(m.iter().any(|x| x.contains("only once per section")));
        assert!(m.iter().any(|x| x.contains("'llm-semantic-cache-store'") && x.contains("'duration' is missing")));
    }

    #[test]
    fn token_metric_dimensions() {
        let m = issues(
            "<policies><inbound><llm-emit-token-metric namespace=\"openai\"><dimension name=\"Subscription ID\" /><dimension name=\"Team\" /></llm-emit-token-metric></inbound></policies>",
        );
        assert_eq!(m.len(), 1);
        assert!(m[0].contains("'value' attribute is required for custom dimension 'Team'"));
    }
}
