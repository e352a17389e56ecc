//! Structural analysis: every `<choose>` with its branches, and every limit element with the
//! chain of `<choose>/<when>/<otherwise>` branches that encloses it.
//!
//! Numbering used in labels: `choose[n]` is the n-th `<choose>` of the document in document order
//! (1-based, counting nested ones); `when[k]` is the k-th `<when>` of that choose (1-based).

use std::fmt;

use crate::condition::{Condition, CounterKey};
use crate::parse::{Attr, Element, PolicyDocument};
use crate::span::Span;

/// The section of a `<policies>` document an element is in.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum Section {
    /// `<inbound>`: where token and rate limits take effect.
    Inbound,
    /// `<backend>`.
    Backend,
    /// `<outbound>`.
    Outbound,
    /// `<on-error>`.
    OnError,
}

impl Section {
    fn from_name(name: &str) -> Option<Section> {
        Some(match name {
            "inbound" => Section::Inbound,
            "backend" => Section::Backend,
            "outbound" => Section::Outbound,
            "on-error" => Section::OnError,
            _ => return None,
        })
    }
}

/// The limit policies the analysis looks for.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum LimitKind {
    /// `llm-token-limit`: tokens-per-minute, token-quota(-period), per counter-key.
    LlmTokenLimit,
    /// `azure-openai-token-limit`: the legacy alias of `llm-token-limit`.
    AzureOpenAiTokenLimit,
    /// `rate-limit-by-key`: calls per renewal-period (sliding window), per counter-key.
    RateLimitByKey,
    /// `rate-limit`: calls per renewal-period per subscription (reported, not edited).
    RateLimit,
    /// `quota-by-key`: calls/bandwidth per renewal-period, per counter-key (reported, not edited).
    QuotaByKey,
    /// `quota`: calls/bandwidth per renewal-period per subscription (reported, not edited).
    Quota,
}

impl LimitKind {
    /// The kind for an element name, if it is a limit policy.
    pub fn from_element_name(name: &str) -> Option<LimitKind> {
        Some(match name {
            "llm-token-limit" => LimitKind::LlmTokenLimit,
            "azure-openai-token-limit" => LimitKind::AzureOpenAiTokenLimit,
            "rate-limit-by-key" => LimitKind::RateLimitByKey,
            "rate-limit" => LimitKind::RateLimit,
            "quota-by-key" => LimitKind::QuotaByKey,
            "quota" => LimitKind::Quota,
            _ => return None,
        })
    }

    /// The element name.
    pub fn element_name(self) -> &'static str {
        match self {
            LimitKind::LlmTokenLimit => "llm-token-limit",
            LimitKind::AzureOpenAiTokenLimit => "azure-openai-token-limit",
            LimitKind::RateLimitByKey => "rate-limit-by-key",
            LimitKind::RateLimit => "rate-limit",
            LimitKind::QuotaByKey => "quota-by-key",
            LimitKind::Quota => "quota",
        }
    }

    /// Whether this is a token limit (`llm-token-limit` or its legacy alias).
    pub fn is_token_limit(self) -> bool {
        matches!(self, LimitKind::LlmTokenLimit | LimitKind::AzureOpenAiTokenLimit)
    }
}

/// Position of a branch within its `<choose>`: 0-based over the `<when>` and `<otherwise>`
/// children in document order.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct BranchIndex(pub usize);

/// What a branch is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BranchKind {
    /// `<when condition="...">`.
    When {
        /// 1-based position among the `<when>`s of the choose.
        ordinal: usize,
        /// The `condition` attribute (absent only in invalid documents).
        condition: Option<Attr>,
    },
    /// `<otherwise>`.
    Otherwise,
}

/// A `<when>` or `<otherwise>` of a [`Choose`].
#[derive(Clone, Debug)]
pub struct Branch<'d> {
    /// Position in the choose.
    pub index: BranchIndex,
    /// The branch element.
    pub element: &'d Element,
    /// When or otherwise.
    pub kind: BranchKind,
    /// The condition as recognised when the document was analysed; `None` for `<otherwise>` and
    /// for conditions that reference `{{named values}}` (those are substituted and recognised when
    /// evaluated).
    pub recognised: Option<Condition>,
}

impl Branch<'_> {
    /// The condition text, entity-decoded (`None` for `<otherwise>`).
    pub fn condition_text(&self) -> Option<String> {
        match &self.kind {
            BranchKind::When { condition, .. } => {
                Some(condition.as_ref().map(|a| a.value().into_owned()).unwrap_or_default())
            }
            BranchKind::Otherwise => None,
        }
    }
}

/// A `<choose>` element and its branches.
#[derive(Clone, Debug)]
pub struct Choose<'d> {
    /// 1-based position among all `<choose>` elements in document order.
    pub ordinal: usize,
    /// The choose element.
    pub element: &'d Element,
    /// Its `<when>`/`<otherwise>` children in order (other children are ignored).
    pub branches: Vec<Branch<'d>>,
    /// Section containing it.
    pub section: Option<Section>,
    /// Branches enclosing the choose itself (outermost first).
    pub path: Vec<BranchStep>,
}

impl Choose<'_> {
    /// The `<otherwise>` branch, if any.
    pub fn otherwise(&self) -> Option<&Branch<'_>> {
        self.branches.iter().find(|b| b.kind == BranchKind::Otherwise)
    }

    /// The branch chain leading into branch `index` (the choose's own path plus that branch).
    pub fn path_into(&self, index: BranchIndex) -> Option<Vec<BranchStep>> {
        let b = self.branches.get(index.0)?;
        let mut path = self.path.clone();
        path.push(BranchStep {
            choose: self.ordinal,
            choose_span: self.element.span,
            branch: b.index,
            branch_span: b.element.span,
            when: match b.kind {
                BranchKind::When { ordinal, .. } => Some(ordinal),
                BranchKind::Otherwise => None,
            },
            condition: b.condition_text(),
        });
        Some(path)
    }

    /// Whether the choose takes effect on requests (see [`LimitElement::in_effect`]).
    pub fn in_effect(&self) -> bool {
        matches!(self.section, None | Some(Section::Inbound))
    }
}

/// One step of a branch chain: "inside branch `branch` of choose number `choose`".
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct BranchStep {
    /// Ordinal of the choose (see the module documentation).
    pub choose: usize,
    /// Span of the choose element.
    pub choose_span: Span,
    /// Index of the branch in the choose.
    pub branch: BranchIndex,
    /// Span of the branch element.
    pub branch_span: Span,
    /// 1-based ordinal among whens; `None` for `<otherwise>`.
    pub when: Option<usize>,
    /// The condition, entity-decoded; `None` for `<otherwise>`.
    pub condition: Option<String>,
}

impl BranchStep {
    /// Recognises the step's condition, substituting `{{named values}}` first.
    /// `Err` names a named value that could not be resolved.
    pub fn recognise(&self, named_values: &dyn Fn(&str) -> Option<String>) -> Option<Result<Condition, String>> {
        let text = self.condition.as_deref()?;
        Some(substitute_named_values(text, named_values).map(|t| Condition::recognise(&t)))
    }
}

impl fmt::Display for BranchStep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.when, &self.condition) {
            (Some(k), Some(c)) => write!(f, "choose[{}]/when[{k}] condition=\"{c}\"", self.choose),
            _ => write!(f, "choose[{}]/otherwise", self.choose),
        }
    }
}

/// Formats a branch chain: `choose[1]/when[2] condition="..." > choose[2]/otherwise`.
pub fn path_label(path: &[BranchStep]) -> String {
    path.iter().map(ToString::to_string).collect::<Vec<_>>().join(" > ")
}

/// A limit element found in the document.
#[derive(Clone, Debug)]
pub struct LimitElement<'d> {
    /// Which policy.
    pub kind: LimitKind,
    /// The element.
    pub element: &'d Element,
    /// Section containing it (`None` outside a `<policies>` section, e.g. in a fragment).
    pub section: Option<Section>,
    /// Enclosing branches, outermost first; empty when unconditional.
    pub path: Vec<BranchStep>,
}

impl LimitElement<'_> {
    /// The element's `counter-key`, classified (`None` for `rate-limit`/`quota`, which count per
    /// subscription implicitly, or when missing).
    pub fn counter_key(&self) -> Option<CounterKey> {
        self.element.attr("counter-key").map(|a| CounterKey::classify(&a.raw))
    }

    /// Whether the element takes effect on requests (it is in `<inbound>`, or the document has no
    /// sections, as in a fragment).
    pub fn in_effect(&self) -> bool {
        matches!(self.section, None | Some(Section::Inbound))
    }
}

/// An attribute value as a number source.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ValueRef {
    /// A literal number.
    Literal(u64),
    /// Exactly `{{name}}`: the value of a named value.
    NamedValue(String),
    /// A policy expression `@(...)`/`@{...}`: computed per request.
    Expression(String),
    /// Anything else (text mixing named values, or not a number).
    Other(String),
}

impl ValueRef {
    /// Classifies an attribute value.
    pub fn of(attr: &Attr) -> ValueRef {
        let value = attr.value();
        let t = value.trim();
        if let Some(name) = named_value_name(t) {
            return ValueRef::NamedValue(name.to_string());
        }
        if t.starts_with('@') {
            return ValueRef::Expression(t.to_string());
        }
        match t.parse::<u64>() {
            Ok(n) => ValueRef::Literal(n),
            Err(_) => ValueRef::Other(t.to_string()),
        }
    }
}

/// If `text` is exactly `{{name}}`, the name.
pub(crate) fn named_value_name(text: &str) -> Option<&str> {
    let name = text.strip_prefix("{{")?.strip_suffix("}}")?;
    (!name.is_empty() && !name.contains(['{', '}'])).then_some(name.trim())
}

/// Replaces every `{{name}}` in `text` using `named_values`; `Err` names the first that is
/// unresolved.
pub(crate) fn substitute_named_values(
    text: &str,
    named_values: &dyn Fn(&str) -> Option<String>,
) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = text;
    while let Some(i) = rest.find("{{") {
        let Some(j) = rest[i..].find("}}") else { break };
        let name = rest[i + 2..i + j].trim();
        out.push_str(&rest[..i]);
        out.push_str(&named_values(name).ok_or_else(|| name.to_string())?);
        rest = &rest[i + j + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

/// The names of all `{{named values}}` referenced in `text`.
pub(crate) fn named_value_refs(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find("{{") {
        let Some(j) = rest[i..].find("}}") else { break };
        out.push(rest[i + 2..i + j].trim().to_string());
        rest = &rest[i + j + 2..];
    }
    out
}

/// The structure of a policy document relevant to limits.
#[derive(Clone, Debug)]
pub struct Analysis<'d> {
    /// The document analysed.
    pub doc: &'d PolicyDocument,
    /// Every `<choose>` in document order (`chooses[n - 1]` has ordinal `n`).
    pub chooses: Vec<Choose<'d>>,
    /// Every limit element in document order, in any section.
    pub limits: Vec<LimitElement<'d>>,
    /// `<include-fragment>` elements: limits inside fragments are not visible here.
    pub fragments: Vec<&'d Element>,
    /// The `<inbound>` section, if the root is `<policies>` and has one.
    pub inbound: Option<&'d Element>,
    /// Whether `<inbound>` contains `<base />` (so parent-scope policies also run).
    pub inbound_has_base: bool,
}

impl<'d> Analysis<'d> {
    /// Analyses `doc`.
    pub fn of(doc: &'d PolicyDocument) -> Analysis<'d> {
        let mut a = Analysis {
            doc,
            chooses: Vec::new(),
            limits: Vec::new(),
            fragments: Vec::new(),
            inbound: None,
            inbound_has_base: false,
        };
        let root = doc.root();
        if root.name == "policies" {
            for section in root.child_elements() {
                let s = Section::from_name(&section.name);
                if s == Some(Section::Inbound) && a.inbound.is_none() {
                    a.inbound = Some(section);
                    a.inbound_has_base = section.child_elements().any(|e| e.name == "base");
                }
                a.walk(section, s, &mut Vec::new());
            }
        } else {
            a.walk(root, None, &mut Vec::new());
        }
        a
    }

    fn walk(&mut self, parent: &'d Element, section: Option<Section>, path: &mut Vec<BranchStep>) {
        for e in parent.child_elements() {
            if e.name == "choose" {
                self.visit_choose(e, section, path);
            } else if let Some(kind) = LimitKind::from_element_name(&e.name) {
                self.limits.push(LimitElement { kind, element: e, section, path: path.clone() });
            } else {
                if e.name == "include-fragment" {
                    self.fragments.push(e);
                }
                self.walk(e, section, path);
            }
        }
    }

    fn visit_choose(&mut self, e: &'d Element, section: Option<Section>, path: &mut Vec<BranchStep>) {
        let ordinal = self.chooses.len() + 1;
        let mut branches = Vec::new();
        let mut whens = 0;
        for b in e.child_elements() {
            let kind = match b.name.as_str() {
                "when" => {
                    whens += 1;
                    BranchKind::When { ordinal: whens, condition: b.attr("condition").cloned() }
                }
                "otherwise" => BranchKind::Otherwise,
                _ => continue,
            };
            let recognised = match &kind {
                BranchKind::When { condition, .. } => {
                    let text = condition.as_ref().map(|a| a.value().into_owned()).unwrap_or_default();
                    (!text.contains("{{")).then(|| Condition::recognise(&text))
                }
                BranchKind::Otherwise => None,
            };
            branches.push(Branch { index: BranchIndex(branches.len()), element: b, kind, recognised });
        }
        self.chooses.push(Choose { ordinal, element: e, branches: branches.clone(), section, path: path.clone() });
        for b in &branches {
            path.push(BranchStep {
                choose: ordinal,
                choose_span: e.span,
                branch: b.index,
                branch_span: b.element.span,
                when: match b.kind {
                    BranchKind::When { ordinal, .. } => Some(ordinal),
                    BranchKind::Otherwise => None,
                },
                condition: b.condition_text(),
            });
            self.walk(b.element, section, path);
            path.pop();
        }
    }

    /// The choose with the given ordinal.
    pub fn choose(&self, ordinal: usize) -> Option<&Choose<'d>> {
        self.chooses.get(ordinal.checked_sub(1)?)
    }

    /// The limit element whose element span is `span`.
    pub fn limit_at(&self, span: Span) -> Option<&LimitElement<'d>> {
        self.limits.iter().find(|l| l.element.span == span)
    }
}
