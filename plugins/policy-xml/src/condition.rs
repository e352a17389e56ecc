//! Recognition and evaluation of the `<when condition="...">` forms that select limits per
//! subscription or product, and classification of `counter-key` expressions.
//!
//! Recognised (whitespace-insensitive, on the entity-decoded value, after `{{named value}}`
//! substitution):
//!
//! * `@(context.Subscription.Id == "growth")`, with `?.` (`context.Subscription?.Id`), with a
//!   `(string)` cast, with the literal on either side, and `context.Subscription.Id.Equals("x")`;
//! * the same over `context.Product.Id` / `context.Product?.Id` and `context.Product.Name`;
//! * `||` of any number of those, with optional parentheses: `@(A || (B) || C)`;
//! * the constants `true` / `false` and `@(true)` / `@(false)`;
//! * C# regular (`"x"`, with `\` escapes) and verbatim (`@"x"`) string literals.
//!
//! Anything else (`&&`, `!=`, header tests, `@{ ... }` blocks, method calls other than `Equals`) is
//! [`Condition::Opaque`]: reported verbatim, never guessed. A recognised test on
//! `context.Product.Id` *without* `?.` evaluates to unknown for a subscription without a product,
//! because the gateway would throw a `NullReferenceException` there.

use std::fmt;

use crate::text::decode_lenient;

/// The subscription-level value a recognised test compares.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum Field {
    /// `context.Subscription.Id`: the subscription's resource name (sid), e.g. `growth`.
    SubscriptionId,
    /// `context.Product.Id`: the product's resource name; null for subscriptions without a product.
    ProductId,
    /// `context.Product.Name`: the product's display name; null without a product.
    ProductName,
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Field::SubscriptionId => "context.Subscription.Id",
            Field::ProductId => "context.Product.Id",
            Field::ProductName => "context.Product.Name",
        })
    }
}

/// One recognised equality test: `field == "value"`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Test {
    /// The field compared.
    pub field: Field,
    /// Whether the access was null-safe (`?.`), so a missing product yields `false` rather than
    /// an exception.
    pub null_safe: bool,
    /// The string literal compared with (ordinal, case-sensitive, as C# `==`).
    pub value: String,
}

/// A `<when>` condition, recognised or not.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Condition {
    /// A boolean constant.
    Constant(bool),
    /// True when any of the tests is true (a single test is a one-element list).
    AnyOf(Vec<Test>),
    /// Not recognised; the decoded condition text, verbatim.
    Opaque(String),
}

/// Facts a condition is evaluated against.
#[derive(Copy, Clone, Debug)]
pub struct ConditionFacts<'a> {
    /// `context.Subscription.Id`.
    pub subscription_id: &'a str,
    /// `context.Product.Id`, `None` when the subscription is not scoped to a product.
    pub product_id: Option<&'a str>,
    /// `context.Product.Name`, when known.
    pub product_name: Option<&'a str>,
}

/// Three-valued result of evaluating a condition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Truth {
    /// The condition is true for the subscription.
    True,
    /// The condition is false for the subscription.
    False,
    /// The condition cannot be evaluated from the facts; the reason says why.
    Unknown(String),
}

impl Condition {
    /// Recognises a condition from its attribute value (raw or decoded; entities are decoded
    /// here). `{{named values}}` must already be substituted, otherwise the condition is opaque.
    pub fn recognise(value: &str) -> Condition {
        let decoded = decode_lenient(value);
        let text = decoded.trim();
        match text {
            "true" => return Condition::Constant(true),
            "false" => return Condition::Constant(false),
            _ => {}
        }
        let opaque = || Condition::Opaque(text.to_string());
        let Some(inner) = text.strip_prefix("@(").and_then(|t| t.strip_suffix(')')) else {
            return opaque();
        };
        let Some(tokens) = tokenize(inner) else {
            return opaque();
        };
        let mut p = CondParser { t: &tokens, i: 0 };
        match p.or_expr() {
            Some(c) if p.i == tokens.len() => c,
            _ => opaque(),
        }
    }

    /// Evaluates the condition for a subscription.
    pub fn evaluate(&self, facts: &ConditionFacts<'_>) -> Truth {
        match self {
            Condition::Constant(true) => Truth::True,
            Condition::Constant(false) => Truth::False,
            Condition::Opaque(text) => Truth::Unknown(format!("unrecognised condition `{text}`")),
            Condition::AnyOf(tests) => {
                let mut unknown = None;
                for t in tests {
                    match t.evaluate(facts) {
                        Truth::True => return Truth::True,
                        Truth::False => {}
                        Truth::Unknown(r) => unknown = unknown.or(Some(r)),
                    }
                }
                unknown.map_or(Truth::False, Truth::Unknown)
            }
        }
    }

    /// If the condition is exactly "the subscription is one of these ids", the ids.
    pub fn subscription_ids(&self) -> Option<Vec<&str>> {
        match self {
            Condition::AnyOf(tests) if tests.iter().all(|t| t.field == Field::SubscriptionId) => {
                Some(tests.iter().map(|t| t.value.as_str()).collect())
            }
            _ => None,
        }
    }

    /// Whether the condition selects exactly one subscription, `id`, and nothing else.
    pub fn is_only_subscription(&self, id: &str) -> bool {
        self.subscription_ids().is_some_and(|ids| !ids.is_empty() && ids.iter().all(|&i| i == id))
    }
}

impl Test {
    /// Evaluates this test for a subscription.
    pub fn evaluate(&self, facts: &ConditionFacts<'_>) -> Truth {
        let actual = match self.field {
            Field::SubscriptionId => Some(facts.subscription_id),
            Field::ProductId => facts.product_id,
            Field::ProductName => match (facts.product_id, facts.product_name) {
                (Some(_), None) => {
                    return Truth::Unknown(format!(
                        "`{}` needs the product's display name, which is not known",
                        self.field
                    ));
                }
                (_, name) => name,
            },
        };
        match actual {
            Some(v) if v == self.value => Truth::True,
            Some(_) => Truth::False,
            None if self.null_safe => Truth::False,
            None => Truth::Unknown(format!(
                "`{}` is null for a subscription without a product; the gateway would throw",
                self.field
            )),
        }
    }
}

impl fmt::Display for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Condition::Constant(b) => write!(f, "{b}"),
            Condition::Opaque(t) => write!(f, "unrecognised `{t}`"),
            Condition::AnyOf(tests) => {
                for (i, t) in tests.iter().enumerate() {
                    if i > 0 {
                        f.write_str(" or ")?;
                    }
                    write!(f, "{} == \"{}\"", t.field, t.value)?;
                }
                Ok(())
            }
        }
    }
}

/// How a `counter-key` partitions the counter.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum CounterKey {
    /// One counter per subscription: the key is `@(context.Subscription.Id)`, possibly
    /// concatenated with string literals (`@("tpm-" + context.Subscription.Id)`).
    PerSubscription {
        /// The attribute value as written.
        raw: String,
    },
    /// A constant key: one counter shared by every request that reaches this element (at every
    /// scope using the same key).
    Shared {
        /// The constant key value.
        key: String,
        /// The attribute value as written.
        raw: String,
    },
    /// Any other expression (client IP, headers, named values, ...): not known to be
    /// per-subscription.
    Other {
        /// The attribute value as written.
        raw: String,
    },
}

impl CounterKey {
    /// Classifies a `counter-key` attribute value (raw, as written).
    pub fn classify(raw: &str) -> CounterKey {
        let decoded = decode_lenient(raw);
        let text = decoded.trim();
        let raw = raw.to_string();
        if !text.starts_with('@') {
            if text.contains("{{") {
                return CounterKey::Other { raw };
            }
            return CounterKey::Shared { key: text.to_string(), raw };
        }
        let Some(inner) = text.strip_prefix("@(").and_then(|t| t.strip_suffix(')')) else {
            return CounterKey::Other { raw };
        };
        let Some(tokens) = tokenize(inner) else {
            return CounterKey::Other { raw };
        };
        // A `+`-concatenation of string literals and at most one context.Subscription.Id.
        let mut p = CondParser { t: &tokens, i: 0 };
        let mut literal = String::new();
        let mut per_subscription = false;
        loop {
            match p.operand() {
                Some(Operand::Str(s)) => literal.push_str(&s),
                Some(Operand::Field(Field::SubscriptionId, _)) if !per_subscription => per_subscription = true,
                _ => return CounterKey::Other { raw },
            }
            if p.i == tokens.len() {
                break;
            }
            if !p.eat(&Tok::Plus) {
                return CounterKey::Other { raw };
            }
        }
        if per_subscription { CounterKey::PerSubscription { raw } } else { CounterKey::Shared { key: literal, raw } }
    }

    /// Whether the counter is per subscription.
    pub fn is_per_subscription(&self) -> bool {
        matches!(self, CounterKey::PerSubscription { .. })
    }

    /// The attribute value as written.
    pub fn raw(&self) -> &str {
        match self {
            CounterKey::PerSubscription { raw } | CounterKey::Shared { raw, .. } | CounterKey::Other { raw } => raw,
        }
    }
}

impl fmt::Display for CounterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CounterKey::PerSubscription { .. } => f.write_str("per subscription"),
            CounterKey::Shared { key, .. } => write!(f, "shared counter \"{key}\""),
            CounterKey::Other { raw } => {
                write!(f, "counter key `{raw}` (not known to be per subscription)")
            }
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Tok {
    Ident(String),
    Str(String),
    Dot,
    QDot,
    LParen,
    RParen,
    EqEq,
    OrOr,
    Plus,
    Other,
}

/// Tokenises the small C# subset the recognisers need. `None` on a malformed literal.
fn tokenize(s: &str) -> Option<Vec<Tok>> {
    let c: Vec<char> = s.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < c.len() {
        let ch = c[i];
        if ch.is_whitespace() {
            i += 1;
            continue;
        }
        if ch.is_alphabetic() || ch == '_' {
            let start = i;
            while i < c.len() && (c[i].is_alphanumeric() || c[i] == '_') {
                i += 1;
            }
            out.push(Tok::Ident(c[start..i].iter().collect()));
            continue;
        }
        if ch == '"' || (ch == '@' && c.get(i + 1) == Some(&'"')) {
            let verbatim = ch == '@';
            i += if verbatim { 2 } else { 1 };
            let mut value = String::new();
            loop {
                let x = *c.get(i)?;
                i += 1;
                match x {
                    '"' if verbatim && c.get(i) == Some(&'"') => {
                        value.push('"');
                        i += 1;
                    }
                    '"' => break,
                    '\\' if !verbatim => {
                        let e = *c.get(i)?;
                        i += 1;
                        value.push(match e {
                            'n' => '\n',
                            't' => '\t',
                            'r' => '\r',
                            '0' => '\0',
                            '\\' | '"' | '\'' => e,
                            _ => return None,
                        });
                    }
                    x => value.push(x),
                }
            }
            out.push(Tok::Str(value));
            continue;
        }
        let two: String = c[i..(i + 2).min(c.len())].iter().collect();
        let (tok, w) = match two.as_str() {
            "?." => (Tok::QDot, 2),
            "==" => (Tok::EqEq, 2),
            "||" => (Tok::OrOr, 2),
            _ => match ch {
                '.' => (Tok::Dot, 1),
                '(' => (Tok::LParen, 1),
                ')' => (Tok::RParen, 1),
                '+' => (Tok::Plus, 1),
                _ => (Tok::Other, 1),
            },
        };
        out.push(tok);
        i += w;
    }
    Some(out)
}

enum Operand {
    Str(String),
    /// A field and whether every member access on the way was null-safe where it matters.
    Field(Field, bool),
}

struct CondParser<'a> {
    t: &'a [Tok],
    i: usize,
}

impl CondParser<'_> {
    fn peek(&self, k: usize) -> Option<&Tok> {
        self.t.get(self.i + k)
    }

    fn eat(&mut self, tok: &Tok) -> bool {
        if self.peek(0) == Some(tok) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    fn ident(&mut self, name: &str) -> bool {
        if matches!(self.peek(0), Some(Tok::Ident(n)) if n == name) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    fn is_cast(&self) -> bool {
        self.peek(0) == Some(&Tok::LParen)
            && matches!(self.peek(1), Some(Tok::Ident(n)) if n == "string")
            && self.peek(2) == Some(&Tok::RParen)
    }

    /// or := primary ("||" primary)*
    fn or_expr(&mut self) -> Option<Condition> {
        let mut tests = Vec::new();
        let mut constant = None;
        loop {
            match self.primary()? {
                Condition::AnyOf(t) => tests.extend(t),
                Condition::Constant(b) => constant = Some(constant.unwrap_or(false) || b),
                Condition::Opaque(_) => return None,
            }
            if !self.eat(&Tok::OrOr) {
                break;
            }
        }
        match (constant, tests.is_empty()) {
            (Some(true), _) => Some(Condition::Constant(true)),
            (Some(false), true) => Some(Condition::Constant(false)),
            _ => Some(Condition::AnyOf(tests)),
        }
    }

    /// primary := "(" or ")" | "true" | "false" | test
    fn primary(&mut self) -> Option<Condition> {
        if self.peek(0) == Some(&Tok::LParen) && !self.is_cast() {
            self.i += 1;
            let inner = self.or_expr()?;
            return self.eat(&Tok::RParen).then_some(inner);
        }
        if self.ident("true") {
            return Some(Condition::Constant(true));
        }
        if self.ident("false") {
            return Some(Condition::Constant(false));
        }
        self.test().map(|t| Condition::AnyOf(vec![t]))
    }

    /// test := operand "==" operand | operand "." "Equals" "(" operand ")"
    fn test(&mut self) -> Option<Test> {
        let left = self.operand()?;
        let right = if self.eat(&Tok::EqEq) {
            self.operand()?
        } else if self.eat(&Tok::Dot) && self.ident("Equals") && self.eat(&Tok::LParen) {
            let r = self.operand()?;
            if !self.eat(&Tok::RParen) {
                return None;
            }
            // `x.Equals(..)` on a null `x` throws, whatever the access path said.
            match left {
                Operand::Field(f, _) => return field_test(Operand::Field(f, false), r),
                Operand::Str(_) => r,
            }
        } else {
            return None;
        };
        field_test(left, right)
    }

    /// operand := "(string)" operand | string | field
    fn operand(&mut self) -> Option<Operand> {
        if self.is_cast() {
            self.i += 3;
            return self.operand();
        }
        if let Some(Tok::Str(s)) = self.peek(0) {
            let s = s.clone();
            self.i += 1;
            return Some(Operand::Str(s));
        }
        // context ("." | "?.") (Subscription | Product) ("." | "?.") (Id | Name)
        if !self.ident("context") {
            return None;
        }
        if !(self.eat(&Tok::Dot) || self.eat(&Tok::QDot)) {
            return None;
        }
        let subscription = if self.ident("Subscription") {
            true
        } else if self.ident("Product") {
            false
        } else {
            return None;
        };
        let null_safe = if self.eat(&Tok::QDot) {
            true
        } else if self.eat(&Tok::Dot) {
            false
        } else {
            return None;
        };
        let field = match (subscription, self.peek(0)) {
            (true, Some(Tok::Ident(n))) if n == "Id" => Field::SubscriptionId,
            (false, Some(Tok::Ident(n))) if n == "Id" => Field::ProductId,
            (false, Some(Tok::Ident(n))) if n == "Name" => Field::ProductName,
            _ => return None,
        };
        self.i += 1;
        Some(Operand::Field(field, null_safe))
    }
}

fn field_test(a: Operand, b: Operand) -> Option<Test> {
    match (a, b) {
        (Operand::Field(field, null_safe), Operand::Str(value))
        | (Operand::Str(value), Operand::Field(field, null_safe)) => Some(Test { field, null_safe, value }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sub(id: &str, product: Option<&str>) -> ConditionFacts<'static> {
        let id: &'static str = Box::leak(id.to_string().into_boxed_str());
        let product: Option<&'static str> = product.map(|p| &*Box::leak(p.to_string().into_boxed_str()));
        ConditionFacts { subscription_id: id, product_id: product, product_name: None }
    }

    fn ids(c: &str) -> Vec<String> {
        match Condition::recognise(c) {
            Condition::AnyOf(t) => t.into_iter().map(|t| format!("{:?}={}", t.field, t.value)).collect(),
            other => panic!("not recognised: {c} -> {other:?}"),
        }
    }

    #[test]
    fn recognises_subscription_forms() {
        for c in [
            r#"@(context.Subscription.Id == "growth")"#,
            r#"@(context.Subscription?.Id == "growth")"#,
            r#"@((string)context.Subscription.Id == "growth")"#,
            r#"@( "growth" == context.Subscription.Id )"#,
            "@(context.Subscription.Id == &quot;growth&quot;)",
            r#"@(context.Subscription.Id.Equals("growth"))"#,
            r#"@((context.Subscription.Id == @"growth"))"#,
            "@(context.Subscription.Id\n    == \"growth\")",
        ] {
            assert_eq!(ids(c), ["SubscriptionId=growth"], "{c}");
        }
    }

    #[test]
    fn recognises_products_and_disjunctions() {
        assert_eq!(ids(r#"@(context.Product?.Id == "aoai")"#), ["ProductId=aoai"]);
        assert_eq!(ids(r#"@((string)context.Product?.Id == "gold")"#), ["ProductId=gold"]);
        assert_eq!(ids(r#"@(context.Product.Name == "Gold tier")"#), ["ProductName=Gold tier"]);
        assert_eq!(
            ids(
                r#"@(context.Subscription.Id == "a" || (context.Subscription.Id == "b") || context.Product?.Id == "p")"#
            ),
            ["SubscriptionId=a", "SubscriptionId=b", "ProductId=p"]
        );
        assert_eq!(Condition::recognise("true"), Condition::Constant(true));
        assert_eq!(Condition::recognise("@(false)"), Condition::Constant(false));
    }

    #[test]
    fn everything_else_is_opaque() {
        for c in [
            r#"@(context.Subscription.Id != "a")"#,
            r#"@(context.Subscription.Id == "a" && context.Product?.Id == "b")"#,
            r#"@(context.Request.Headers.GetValueOrDefault("x","") == "y")"#,
            r#"@{ return context.Subscription.Id == "a"; }"#,
            r#"@(context.Subscription.Id.StartsWith("a"))"#,
            r#"@(context.Subscription.Name == "a")"#,
            "@(context.Subscription.Id == {{x}})",
            r#"context.Subscription.Id == "a""#,
        ] {
            assert!(matches!(Condition::recognise(c), Condition::Opaque(_)), "{c}");
        }
    }

    #[test]
    fn evaluation_is_three_valued() {
        let c = Condition::recognise(r#"@(context.Product?.Id == "aoai")"#);
        assert_eq!(c.evaluate(&sub("s", Some("aoai"))), Truth::True);
        assert_eq!(c.evaluate(&sub("s", Some("x"))), Truth::False);
        assert_eq!(c.evaluate(&sub("s", None)), Truth::False);
        let c = Condition::recognise(r#"@(context.Product.Id == "aoai")"#);
        assert!(matches!(c.evaluate(&sub("s", None)), Truth::Unknown(_)));
        let c = Condition::recognise(r#"@(context.Product.Name == "Gold")"#);
        assert!(matches!(c.evaluate(&sub("s", Some("gold"))), Truth::Unknown(_)));
        let c = Condition::recognise(r#"@(context.Subscription.Id == "a" || context.Product.Id == "p")"#);
        assert_eq!(c.evaluate(&sub("a", None)), Truth::True);
        assert!(matches!(c.evaluate(&sub("b", None)), Truth::Unknown(_)));
        assert!(c.subscription_ids().is_none());
        let c = Condition::recognise(r#"@(context.Subscription.Id == "a")"#);
        assert!(c.is_only_subscription("a"));
        assert!(!c.is_only_subscription("b"));
    }

    #[test]
    fn counter_keys() {
        assert!(CounterKey::classify("@(context.Subscription.Id)").is_per_subscription());
        assert!(CounterKey::classify("@(context.Subscription?.Id)").is_per_subscription());
        assert!(CounterKey::classify("@(&quot;tpm-&quot; + context.Subscription.Id)").is_per_subscription());
        assert_eq!(
            CounterKey::classify("@(\"team-a\")"),
            CounterKey::Shared { key: "team-a".into(), raw: "@(\"team-a\")".into() }
        );
        assert!(matches!(CounterKey::classify("all"), CounterKey::Shared { .. }));
        assert!(matches!(CounterKey::classify("@(context.Request.IpAddress)"), CounterKey::Other { .. }));
        assert!(matches!(CounterKey::classify("{{key}}"), CounterKey::Other { .. }));
    }
}
