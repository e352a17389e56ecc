//! The subset of APIM policy expressions (`@(...)`, C#) the traffic model evaluates.
//!
//! The model needs expressions in four places: `<when condition>`, `counter-key`, dimension
//! `value`s of `llm-emit-token-metric`, and `<retry condition>`. They are almost always simple:
//! `context.Subscription.Id == "growth"`, `context.Product?.Id == "aoai"`,
//! `"tpm-" + context.Subscription.Id`, `context.Response.StatusCode == 429 || ... == 503`.
//!
//! Supported: string (`"…"`, with C# escapes, and verbatim `@"…"`), integer, `true`/`false`/`null`
//! literals; member chains on `context` with `.` and `?.`; casts `(string)`, `(int)`, `(long)`,
//! `(bool)`; `== != < <= > >= && || ! + ?: ??` and parentheses; the methods `ToString()`,
//! `ToLower()`, `ToUpper()`, `ToLowerInvariant()`, `ToUpperInvariant()`, `Trim()`, `Equals(x)`,
//! `StartsWith(x)`, `EndsWith(x)`, `Contains(x)`, and `GetValueOrDefault[<T>](name, default)` on
//! `context.Request.Headers` / `context.Variables` (the model sends no custom headers and sets no
//! variables, so the default is returned).
//!
//! Anything else — statement blocks `@{…}`, lambdas, other methods, unknown `context` members —
//! is an [`ExprError`]. Callers decide what that means (a `<when>` whose condition cannot be
//! evaluated is not taken; see the README).
//!
//! Invariant: evaluation never panics and never loops; the parser bounds nesting depth.

use std::fmt;

/// A value of an evaluated expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Val {
    Null,
    Bool(bool),
    Int(i64),
    Str(String),
}

impl Val {
    /// The C# `ToString()` of the value (`null` → empty).
    pub fn to_text(&self) -> String {
        match self {
            Val::Null => String::new(),
            Val::Bool(b) => if *b { "True" } else { "False" }.to_string(),
            Val::Int(i) => i.to_string(),
            Val::Str(s) => s.clone(),
        }
    }

    /// The value as a condition result: only `true` is true.
    pub fn is_true(&self) -> bool {
        matches!(self, Val::Bool(true))
    }
}

/// Why an expression could not be evaluated.
#[derive(Debug, Clone, PartialEq)]
pub struct ExprError(pub String);

impl fmt::Display for ExprError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What `context.*` evaluates to. `path` is the member chain after `context`, e.g.
/// `["Subscription", "Id"]`. `None` means the member is not modelled (an error), while
/// `Some(Val::Null)` is a modelled null (e.g. `context.Product` for a key without a product).
pub trait Context {
    fn member(&self, path: &[&str]) -> Option<Val>;
}

impl<F: Fn(&[&str]) -> Option<Val>> Context for F {
    fn member(&self, path: &[&str]) -> Option<Val> {
        self(path)
    }
}

/// The body of an attribute value if it is a policy expression: `@(…)` → the text inside the
/// parentheses. `@{…}` blocks are not supported (returns `Err`). `None` if it is plain text.
pub fn expression_body(attr: &str) -> Option<Result<&str, ExprError>> {
    let t = attr.trim();
    if let Some(rest) = t.strip_prefix("@(") {
        return Some(rest.strip_suffix(')').ok_or_else(|| ExprError(format!("unterminated expression '{t}'"))));
    }
    if t.starts_with("@{") {
        return Some(Err(ExprError(
            "multi-statement expressions (@{ … }) are not evaluated by the traffic model".into(),
        )));
    }
    None
}

/// Evaluates an attribute value: a policy expression, or the literal text itself.
pub fn eval_attr(attr: &str, ctx: &dyn Context) -> Result<Val, ExprError> {
    match expression_body(attr) {
        None => Ok(Val::Str(attr.to_string())),
        Some(body) => eval(body?, ctx),
    }
}

/// Evaluates the expression text (without `@( )`).
pub fn eval(src: &str, ctx: &dyn Context) -> Result<Val, ExprError> {
    let tokens = lex(src)?;
    let mut p = Parser { toks: &tokens, pos: 0, depth: 0 };
    let e = p.ternary()?;
    if p.pos != tokens.len() {
        return Err(ExprError(format!("unexpected '{}' in expression '{src}'", tokens[p.pos].text())));
    }
    e.eval(ctx)
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    Str(String),
    Int(i64),
    Op(&'static str),
}

impl Tok {
    fn text(&self) -> String {
        match self {
            Tok::Ident(s) => s.clone(),
            Tok::Str(s) => format!("\"{s}\""),
            Tok::Int(i) => i.to_string(),
            Tok::Op(o) => o.to_string(),
        }
    }
}

const OPS: &[&str] =
    &["?.", "??", "==", "!=", "<=", ">=", "&&", "||", "(", ")", ".", ",", "<", ">", "!", "+", "?", ":", "-"];

fn lex(src: &str) -> Result<Vec<Tok>, ExprError> {
    let b = src.as_bytes();
    let mut i = 0;
    let mut out = Vec::new();
    while i < b.len() {
        let c = b[i];
        if c.is_ascii_whitespace() {
            i += 1;
            continue;
        }
        if c == b'"' || (c == b'@' && b.get(i + 1) == Some(&b'"')) {
            let verbatim = c == b'@';
            i += if verbatim { 2 } else { 1 };
            let mut s = String::new();
            loop {
                let Some(&ch) = b.get(i) else {
                    return Err(ExprError(format!("unterminated string in '{src}'")));
                };
                if ch == b'"' {
                    if verbatim && b.get(i + 1) == Some(&b'"') {
                        s.push('"');
                        i += 2;
                        continue;
                    }
                    i += 1;
                    break;
                }
                if ch == b'\\' && !verbatim {
                    let esc = b.get(i + 1).copied().unwrap_or(b'\\');
                    s.push(match esc {
                        b'n' => '\n',
                        b't' => '\t',
                        b'r' => '\r',
                        b'0' => '\0',
                        other => other as char,
                    });
                    i += 2;
                    continue;
                }
                // Copy one UTF-8 character.
                let len = utf8_len(ch);
                s.push_str(&src[i..(i + len).min(src.len())]);
                i += len;
            }
            out.push(Tok::Str(s));
            continue;
        }
        if c.is_ascii_digit() {
            let start = i;
            while i < b.len() && b[i].is_ascii_digit() {
                i += 1;
            }
            let n = src[start..i].parse::<i64>().map_err(|_| ExprError(format!("number too large in '{src}'")))?;
            out.push(Tok::Int(n));
            continue;
        }
        if c.is_ascii_alphabetic() || c == b'_' {
            let start = i;
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                i += 1;
            }
            out.push(Tok::Ident(src[start..i].to_string()));
            continue;
        }
        match OPS.iter().find(|op| src[i..].starts_with(**op)) {
            Some(op) => {
                out.push(Tok::Op(op));
                i += op.len();
            }
            None => return Err(ExprError(format!("unsupported character '{}' in '{src}'", &src[i..i + utf8_len(c)]))),
        }
    }
    Ok(out)
}

fn utf8_len(first: u8) -> usize {
    match first {
        0xF0..=0xFF => 4,
        0xE0..=0xEF => 3,
        0xC0..=0xDF => 2,
        _ => 1,
    }
}

#[derive(Debug)]
enum Expr {
    Lit(Val),
    /// `context` member chain (without `context`), `?.` treated like `.`.
    Member(Vec<String>),
    Method(Box<Expr>, String, Vec<Expr>),
    /// `GetValueOrDefault` on headers/variables: the default.
    Default(Box<Expr>),
    Cast(&'static str, Box<Expr>),
    Not(Box<Expr>),
    Neg(Box<Expr>),
    Bin(&'static str, Box<Expr>, Box<Expr>),
    Cond(Box<Expr>, Box<Expr>, Box<Expr>),
}

struct Parser<'a> {
    toks: &'a [Tok],
    pos: usize,
    depth: usize,
}

const MAX_DEPTH: usize = 64;

impl Parser<'_> {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos)
    }
    fn eat(&mut self, op: &str) -> bool {
        if self.peek() == Some(&Tok::Op(op_static(op))) {
            self.pos += 1;
            true
        } else {
            false
        }
    }
    fn expect(&mut self, op: &str) -> Result<(), ExprError> {
        if self.eat(op) {
            Ok(())
        } else {
            Err(ExprError(format!(
                "expected '{op}' but found '{}'",
                self.peek().map(Tok::text).unwrap_or_else(|| "end".into())
            )))
        }
    }
    fn enter(&mut self) -> Result<(), ExprError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH { Err(ExprError("expression nested too deeply".into())) } else { Ok(()) }
    }

    fn ternary(&mut self) -> Result<Expr, ExprError> {
        self.enter()?;
        let c = self.coalesce()?;
        let r = if self.eat("?") {
            let a = self.ternary()?;
            self.expect(":")?;
            let b = self.ternary()?;
            Expr::Cond(Box::new(c), Box::new(a), Box::new(b))
        } else {
            c
        };
        self.depth -= 1;
        Ok(r)
    }
    fn coalesce(&mut self) -> Result<Expr, ExprError> {
        let mut l = self.or()?;
        while self.eat("??") {
            let r = self.or()?;
            l = Expr::Bin("??", Box::new(l), Box::new(r));
        }
        Ok(l)
    }
    fn or(&mut self) -> Result<Expr, ExprError> {
        let mut l = self.and()?;
        while self.eat("||") {
            let r = self.and()?;
            l = Expr::Bin("||", Box::new(l), Box::new(r));
        }
        Ok(l)
    }
    fn and(&mut self) -> Result<Expr, ExprError> {
        let mut l = self.equality()?;
        while self.eat("&&") {
            let r = self.equality()?;
            l = Expr::Bin("&&", Box::new(l), Box::new(r));
        }
        Ok(l)
    }
    fn equality(&mut self) -> Result<Expr, ExprError> {
        let mut l = self.relational()?;
        loop {
            let op = if self.eat("==") {
                "=="
            } else if self.eat("!=") {
                "!="
            } else {
                return Ok(l);
            };
            let r = self.relational()?;
            l = Expr::Bin(op, Box::new(l), Box::new(r));
        }
    }
    fn relational(&mut self) -> Result<Expr, ExprError> {
        let mut l = self.additive()?;
        loop {
            let op = ["<=", ">=", "<", ">"].into_iter().find(|op| self.eat(op));
            let Some(op) = op else { return Ok(l) };
            let r = self.additive()?;
            l = Expr::Bin(op, Box::new(l), Box::new(r));
        }
    }
    fn additive(&mut self) -> Result<Expr, ExprError> {
        let mut l = self.unary()?;
        loop {
            let op = if self.eat("+") {
                "+"
            } else if self.eat("-") {
                "-"
            } else {
                return Ok(l);
            };
            let r = self.unary()?;
            l = Expr::Bin(op, Box::new(l), Box::new(r));
        }
    }
    fn unary(&mut self) -> Result<Expr, ExprError> {
        self.enter()?;
        let r = if self.eat("!") {
            Expr::Not(Box::new(self.unary()?))
        } else if self.eat("-") {
            Expr::Neg(Box::new(self.unary()?))
        } else if let Some(ty) = self.cast() {
            Expr::Cast(ty, Box::new(self.unary()?))
        } else {
            self.postfix()?
        };
        self.depth -= 1;
        Ok(r)
    }
    /// `(string)`, `(int)`, `(long)`, `(bool)` followed by an operand.
    fn cast(&mut self) -> Option<&'static str> {
        let (Some(Tok::Op("(")), Some(Tok::Ident(t)), Some(Tok::Op(")"))) =
            (self.toks.get(self.pos), self.toks.get(self.pos + 1), self.toks.get(self.pos + 2))
        else {
            return None;
        };
        let ty = match t.as_str() {
            "string" => "string",
            "int" => "int",
            "long" => "long",
            "bool" => "bool",
            _ => return None,
        };
        self.pos += 3;
        Some(ty)
    }
    fn postfix(&mut self) -> Result<Expr, ExprError> {
        let mut e = self.primary()?;
        loop {
            if !(self.eat(".") || self.eat("?.")) {
                return Ok(e);
            }
            let Some(Tok::Ident(name)) = self.peek().cloned() else {
                return Err(ExprError("expected a member name after '.'".into()));
            };
            self.pos += 1;
            // Generic type arguments: GetValueOrDefault<int>(...)
            if self.peek() == Some(&Tok::Op("<"))
                && matches!(self.toks.get(self.pos + 1), Some(Tok::Ident(_)))
                && self.toks.get(self.pos + 2) == Some(&Tok::Op(">"))
                && self.toks.get(self.pos + 3) == Some(&Tok::Op("("))
            {
                self.pos += 3;
            }
            if self.eat("(") {
                let mut args = Vec::new();
                if !self.eat(")") {
                    loop {
                        args.push(self.ternary()?);
                        if self.eat(")") {
                            break;
                        }
                        self.expect(",")?;
                    }
                }
                if name == "GetValueOrDefault" {
                    let default = args.into_iter().nth(1).unwrap_or(Expr::Lit(Val::Null));
                    match &e {
                        Expr::Member(p)
                            if matches!(p.as_slice(), [a, b] if a == "Request" && b == "Headers")
                                || matches!(p.as_slice(), [a] if a == "Variables") =>
                        {
                            e = Expr::Default(Box::new(default));
                        }
                        _ => {
                            return Err(ExprError(
                                "GetValueOrDefault is only evaluated on context.Request.Headers and context.Variables"
                                    .into(),
                            ));
                        }
                    }
                } else {
                    e = Expr::Method(Box::new(e), name, args);
                }
            } else {
                match &mut e {
                    Expr::Member(path) => path.push(name),
                    _ => return Err(ExprError(format!("member '{name}' of a computed value is not supported"))),
                }
            }
        }
    }
    fn primary(&mut self) -> Result<Expr, ExprError> {
        let Some(t) = self.peek().cloned() else {
            return Err(ExprError("unexpected end of expression".into()));
        };
        self.pos += 1;
        match t {
            Tok::Str(s) => Ok(Expr::Lit(Val::Str(s))),
            Tok::Int(i) => Ok(Expr::Lit(Val::Int(i))),
            Tok::Ident(id) => match id.as_str() {
                "true" => Ok(Expr::Lit(Val::Bool(true))),
                "false" => Ok(Expr::Lit(Val::Bool(false))),
                "null" => Ok(Expr::Lit(Val::Null)),
                "context" => Ok(Expr::Member(Vec::new())),
                other => Err(ExprError(format!("'{other}' is not evaluated by the traffic model"))),
            },
            Tok::Op("(") => {
                let e = self.ternary()?;
                self.expect(")")?;
                Ok(e)
            }
            Tok::Op(o) => Err(ExprError(format!("unexpected '{o}'"))),
        }
    }
}

fn op_static(op: &str) -> &'static str {
    OPS.iter().find(|o| **o == op).copied().unwrap_or("")
}

impl Expr {
    fn eval(&self, ctx: &dyn Context) -> Result<Val, ExprError> {
        Ok(match self {
            Expr::Lit(v) => v.clone(),
            Expr::Member(path) => {
                let p: Vec<&str> = path.iter().map(String::as_str).collect();
                ctx.member(&p)
                    .ok_or_else(|| ExprError(format!("context.{} is not modelled by the traffic model", p.join("."))))?
            }
            Expr::Default(d) => d.eval(ctx)?,
            Expr::Cast(ty, e) => {
                let v = e.eval(ctx)?;
                match (*ty, v) {
                    ("string", Val::Null) => Val::Null,
                    ("string", Val::Str(s)) => Val::Str(s),
                    ("int" | "long", Val::Int(i)) => Val::Int(i),
                    ("int" | "long", Val::Str(s)) => {
                        Val::Int(s.trim().parse().map_err(|_| ExprError(format!("cannot cast '{s}' to {ty}")))?)
                    }
                    ("bool", Val::Bool(b)) => Val::Bool(b),
                    (ty, v) => return Err(ExprError(format!("cannot cast {v:?} to {ty}"))),
                }
            }
            Expr::Not(e) => match e.eval(ctx)? {
                Val::Bool(b) => Val::Bool(!b),
                v => return Err(ExprError(format!("'!' needs a boolean, got {v:?}"))),
            },
            Expr::Neg(e) => match e.eval(ctx)? {
                Val::Int(i) => Val::Int(-i),
                v => return Err(ExprError(format!("'-' needs a number, got {v:?}"))),
            },
            Expr::Cond(c, a, b) => match c.eval(ctx)? {
                Val::Bool(true) => a.eval(ctx)?,
                Val::Bool(false) => b.eval(ctx)?,
                v => return Err(ExprError(format!("'?:' needs a boolean, got {v:?}"))),
            },
            Expr::Method(target, name, args) => {
                let t = target.eval(ctx)?;
                let args = args.iter().map(|a| a.eval(ctx)).collect::<Result<Vec<_>, _>>()?;
                method(t, name, &args)?
            }
            Expr::Bin(op, l, r) => {
                match *op {
                    "&&" => {
                        return match l.eval(ctx)? {
                            Val::Bool(false) => Ok(Val::Bool(false)),
                            Val::Bool(true) => match r.eval(ctx)? {
                                Val::Bool(b) => Ok(Val::Bool(b)),
                                v => Err(ExprError(format!("'&&' needs booleans, got {v:?}"))),
                            },
                            v => Err(ExprError(format!("'&&' needs booleans, got {v:?}"))),
                        };
                    }
                    "||" => {
                        return match l.eval(ctx)? {
                            Val::Bool(true) => Ok(Val::Bool(true)),
                            Val::Bool(false) => match r.eval(ctx)? {
                                Val::Bool(b) => Ok(Val::Bool(b)),
                                v => Err(ExprError(format!("'||' needs booleans, got {v:?}"))),
                            },
                            v => Err(ExprError(format!("'||' needs booleans, got {v:?}"))),
                        };
                    }
                    "??" => {
                        let a = l.eval(ctx)?;
                        return if a == Val::Null { r.eval(ctx) } else { Ok(a) };
                    }
                    _ => {}
                }
                let (a, b) = (l.eval(ctx)?, r.eval(ctx)?);
                binary(op, a, b)?
            }
        })
    }
}

fn binary(op: &str, a: Val, b: Val) -> Result<Val, ExprError> {
    Ok(match op {
        "==" => Val::Bool(a == b),
        "!=" => Val::Bool(a != b),
        "+" => match (a, b) {
            (Val::Int(x), Val::Int(y)) => Val::Int(x.saturating_add(y)),
            (x @ Val::Str(_), y) | (x, y @ Val::Str(_)) => Val::Str(format!("{}{}", x.to_text(), y.to_text())),
            (x, y) => return Err(ExprError(format!("cannot add {x:?} and {y:?}"))),
        },
        "-" => match (a, b) {
            (Val::Int(x), Val::Int(y)) => Val::Int(x.saturating_sub(y)),
            (x, y) => return Err(ExprError(format!("cannot subtract {y:?} from {x:?}"))),
        },
        "<" | "<=" | ">" | ">=" => match (a, b) {
            (Val::Int(x), Val::Int(y)) => Val::Bool(match op {
                "<" => x < y,
                "<=" => x <= y,
                ">" => x > y,
                _ => x >= y,
            }),
            // Lifted comparison with null is false in C#.
            (Val::Null, _) | (_, Val::Null) => Val::Bool(false),
            (x, y) => return Err(ExprError(format!("cannot compare {x:?} and {y:?} with '{op}'"))),
        },
        _ => return Err(ExprError(format!("operator '{op}' is not supported"))),
    })
}

fn method(t: Val, name: &str, args: &[Val]) -> Result<Val, ExprError> {
    let s = || match &t {
        Val::Str(s) => Ok(s.clone()),
        Val::Null => Err(ExprError(format!("NullReferenceException calling {name}() on null"))),
        other => Ok(other.to_text()),
    };
    let arg = |i: usize| match args.get(i) {
        Some(Val::Str(a)) => Ok(a.clone()),
        Some(v) => Ok(v.to_text()),
        None => Err(ExprError(format!("{name}() needs an argument"))),
    };
    Ok(match name {
        "ToString" => Val::Str(t.to_text()),
        "ToLower" | "ToLowerInvariant" => Val::Str(s()?.to_lowercase()),
        "ToUpper" | "ToUpperInvariant" => Val::Str(s()?.to_uppercase()),
        "Trim" => Val::Str(s()?.trim().to_string()),
        "Equals" => Val::Bool(args.first().is_some_and(|a| *a == t)),
        "StartsWith" => Val::Bool(s()?.starts_with(&arg(0)?)),
        "EndsWith" => Val::Bool(s()?.ends_with(&arg(0)?)),
        "Contains" => Val::Bool(s()?.contains(&arg(0)?)),
        other => return Err(ExprError(format!("method {other}() is not evaluated by the traffic model"))),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(path: &[&str]) -> Option<Val> {
        match path {
            ["Subscription", "Id"] => Some(Val::Str("growth".into())),
            ["Product"] => Some(Val::Str("aoai".into())),
            ["Product", "Id"] => Some(Val::Str("aoai".into())),
            ["Api", "Id"] => Some(Val::Null),
            ["Response", "StatusCode"] => Some(Val::Int(503)),
            ["Request", "IpAddress"] => Some(Val::Str("10.0.0.1".into())),
            _ => None,
        }
    }

    fn ev(s: &str) -> Result<Val, ExprError> {
        eval(s, &ctx)
    }

    #[test]
    fn conditions_of_real_policies() {
        assert_eq!(ev(r#"context.Subscription.Id == "growth""#), Ok(Val::Bool(true)));
        assert_eq!(ev(r#"(string)context.Product?.Id == "aoai""#), Ok(Val::Bool(true)));
        assert_eq!(ev(r#"context.Product?.Id == "gold" || context.Subscription.Id == "growth""#), Ok(Val::Bool(true)));
        assert_eq!(ev("context.Response.StatusCode == 429 || context.Response.StatusCode == 503"), Ok(Val::Bool(true)));
        assert_eq!(ev("context.Response.StatusCode >= 500 && context.Response.StatusCode < 600"), Ok(Val::Bool(true)));
        assert_eq!(ev(r#"!(context.Subscription.Id.Equals("x"))"#), Ok(Val::Bool(true)));
        assert_eq!(ev(r#"context.Subscription.Id.StartsWith("gro")"#), Ok(Val::Bool(true)));
        assert_eq!(ev("true"), Ok(Val::Bool(true)));
        assert_eq!(ev("context.Api.Id == null"), Ok(Val::Bool(true)));
    }

    #[test]
    fn keys_and_dimension_values() {
        assert_eq!(ev("context.Subscription.Id"), Ok(Val::Str("growth".into())));
        assert_eq!(ev(r#""tpm-" + context.Subscription.Id"#), Ok(Val::Str("tpm-growth".into())));
        assert_eq!(ev(r#"context.Request.Headers.GetValueOrDefault("x-user-id", "N/A")"#), Ok(Val::Str("N/A".into())));
        assert_eq!(
            ev(r#"context.Variables.GetValueOrDefault<int>("remainingTokens", -1).ToString()"#),
            Ok(Val::Str("-1".into()))
        );
        assert_eq!(ev(r#"context.Request.IpAddress"#), Ok(Val::Str("10.0.0.1".into())));
        assert_eq!(ev(r#"@"a""b" + "\t""#), Ok(Val::Str("a\"b\t".into())));
        assert_eq!(ev(r#"context.Api.Id ?? "none""#), Ok(Val::Str("none".into())));
        assert_eq!(eval_attr("@(context.Subscription.Id)", &ctx), Ok(Val::Str("growth".into())));
        assert_eq!(eval_attr("constant-key", &ctx), Ok(Val::Str("constant-key".into())));
    }

    #[test]
    fn unsupported_is_an_error_not_a_guess() {
        for bad in [
            "context.Request.Body.As<JObject>()",
            "context.User.Email == \"x\"",
            "DateTime.UtcNow.Hour > 3",
            "context.Subscription.Id ==",
            "context.Subscription.Id == 'x'",
            "(((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((1)))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))",
        ] {
            assert!(ev(bad).is_err(), "{bad}");
        }
        assert!(eval_attr("@{ return 1; }", &ctx).is_err());
        assert!(ev("context.Subscription.Id && true").is_err());
    }
}
