//! The OData `$filter` subset APIM collections accept.
//!
//! Grammar: `expr := and ('or' and)*`, `and := unary ('and' unary)*`, `unary := 'not' unary |
//! '(' expr ')' | comparison | function | lambda`, where a comparison is `field op literal`
//! (`eq ne gt ge lt le`), a function is `contains(field, 'x')`, `startswith(field, 'x')`,
//! `endswith(field, 'x')` or `substringof('x', field)`, and a lambda is
//! `tags/any(t: t eq 'x')` / `tags/all(...)` on list fields. Literals: `'text'` (with `''` for a
//! quote), numbers, `true`, `false`, `null`. Field names may carry a `properties/` prefix.
//!
//! Each collection declares its fields and the operators each allows (`FieldSpec`); anything
//! else is a `400 ValidationError` naming the field. String comparisons ignore case, as APIM's
//! do (its store uses a case-insensitive collation).

/// What a collection lets a field do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ops {
    /// Every comparison and the string functions.
    All,
    /// `eq` only.
    Eq,
    /// `eq` and `ne`.
    EqNe,
    /// `any`/`all` lambdas (list fields such as `tags`).
    List,
}

/// A filterable field.
#[derive(Debug, Clone, Copy)]
pub struct FieldSpec {
    pub name: &'static str,
    pub ops: Ops,
}

/// Shorthand for a `FieldSpec`.
pub const fn f(name: &'static str, ops: Ops) -> FieldSpec {
    FieldSpec { name, ops }
}

/// A field's value on one entity.
#[derive(Debug, Clone, PartialEq)]
pub enum FieldValue {
    Str(String),
    Num(f64),
    Bool(bool),
    List(Vec<String>),
    Null,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Lit {
    Str(String),
    Num(f64),
    Bool(bool),
    Null,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Cmp {
    Eq,
    Ne,
    Gt,
    Ge,
    Lt,
    Le,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Func {
    Contains,
    StartsWith,
    EndsWith,
}

/// A parsed filter.
#[derive(Debug, Clone)]
pub enum Filter {
    And(Box<Filter>, Box<Filter>),
    Or(Box<Filter>, Box<Filter>),
    Not(Box<Filter>),
    Compare(&'static str, Cmp, Lit),
    Func(Func, &'static str, String),
    Lambda { field: &'static str, all: bool, cmp: Cmp, lit: Lit },
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    Str(String),
    Num(f64),
    LParen,
    RParen,
    Comma,
    Colon,
}

fn tokenize(s: &str) -> Result<Vec<Tok>, String> {
    let b = s.as_bytes();
    let mut i = 0;
    let mut out = Vec::new();
    while i < b.len() {
        let c = b[i];
        match c {
            b' ' | b'\t' => i += 1,
            b'(' => {
                out.push(Tok::LParen);
                i += 1
            }
            b')' => {
                out.push(Tok::RParen);
                i += 1
            }
            b',' => {
                out.push(Tok::Comma);
                i += 1
            }
            b':' => {
                out.push(Tok::Colon);
                i += 1
            }
            b'\'' => {
                let mut v = String::new();
                i += 1;
                loop {
                    match s[i..].find('\'') {
                        None => return Err("a string literal is not terminated".into()),
                        Some(n) => {
                            v.push_str(&s[i..i + n]);
                            i += n + 1;
                            if b.get(i) == Some(&b'\'') {
                                v.push('\'');
                                i += 1;
                            } else {
                                break;
                            }
                        }
                    }
                }
                out.push(Tok::Str(v));
            }
            b'-' | b'0'..=b'9' => {
                let start = i;
                i += 1;
                while i < b.len() && (b[i].is_ascii_digit() || b[i] == b'.') {
                    i += 1;
                }
                let n = s[start..i].parse().map_err(|_| format!("'{}' is not a number", &s[start..i]))?;
                out.push(Tok::Num(n));
            }
            c if c.is_ascii_alphabetic() || c == b'_' || c == b'$' => {
                let start = i;
                while i < b.len() && (b[i].is_ascii_alphanumeric() || matches!(b[i], b'_' | b'/' | b'.' | b'$')) {
                    i += 1;
                }
                out.push(Tok::Ident(s[start..i].to_string()));
            }
            _ => {
                return Err(format!("unexpected character '{}' at position {}", c as char, i + 1));
            }
        }
    }
    Ok(out)
}

struct P<'a> {
    toks: Vec<Tok>,
    i: usize,
    fields: &'a [FieldSpec],
}

/// Parses `$filter` text against the fields a collection allows.
pub fn parse(text: &str, fields: &[FieldSpec]) -> Result<Filter, String> {
    let mut p = P { toks: tokenize(text)?, i: 0, fields };
    let f = p.expr()?;
    if p.i != p.toks.len() {
        return Err(format!("unexpected '{}'", p.describe()));
    }
    Ok(f)
}

impl P<'_> {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.i)
    }
    fn describe(&self) -> String {
        match self.peek() {
            Some(Tok::Ident(s)) => s.clone(),
            Some(Tok::Str(s)) => format!("'{s}'"),
            Some(Tok::Num(n)) => n.to_string(),
            Some(Tok::LParen) => "(".into(),
            Some(Tok::RParen) => ")".into(),
            Some(Tok::Comma) => ",".into(),
            Some(Tok::Colon) => ":".into(),
            None => "end of filter".into(),
        }
    }
    fn keyword(&mut self, kw: &str) -> bool {
        if matches!(self.peek(), Some(Tok::Ident(s)) if s.eq_ignore_ascii_case(kw)) {
            self.i += 1;
            true
        } else {
            false
        }
    }
    fn expect(&mut self, t: Tok, what: &str) -> Result<(), String> {
        if self.peek() == Some(&t) {
            self.i += 1;
            Ok(())
        } else {
            Err(format!("expected {what} but found '{}'", self.describe()))
        }
    }
    fn expr(&mut self) -> Result<Filter, String> {
        let mut l = self.and()?;
        while self.keyword("or") {
            l = Filter::Or(Box::new(l), Box::new(self.and()?));
        }
        Ok(l)
    }
    fn and(&mut self) -> Result<Filter, String> {
        let mut l = self.unary()?;
        while self.keyword("and") {
            l = Filter::And(Box::new(l), Box::new(self.unary()?));
        }
        Ok(l)
    }
    fn unary(&mut self) -> Result<Filter, String> {
        if self.keyword("not") {
            return Ok(Filter::Not(Box::new(self.unary()?)));
        }
        if self.peek() == Some(&Tok::LParen) {
            self.i += 1;
            let e = self.expr()?;
            self.expect(Tok::RParen, "')'")?;
            return Ok(e);
        }
        let Some(Tok::Ident(name)) = self.peek().cloned() else {
            return Err(format!("expected a field or function but found '{}'", self.describe()));
        };
        self.i += 1;
        let lower = name.to_ascii_lowercase();
        if self.peek() == Some(&Tok::LParen)
            && matches!(lower.as_str(), "contains" | "startswith" | "endswith" | "substringof")
        {
            self.i += 1;
            let (field, value) = if lower == "substringof" {
                let v = self.string_lit()?;
                self.expect(Tok::Comma, "','")?;
                (self.field_name()?, v)
            } else {
                let fld = self.field_name()?;
                self.expect(Tok::Comma, "','")?;
                (fld, self.string_lit()?)
            };
            self.expect(Tok::RParen, "')'")?;
            let spec = self.spec(&field)?;
            if spec.ops != Ops::All {
                return Err(format!("function '{name}' is not supported for field '{}'", spec.name));
            }
            let func = match lower.as_str() {
                "startswith" => Func::StartsWith,
                "endswith" => Func::EndsWith,
                _ => Func::Contains,
            };
            return Ok(Filter::Func(func, spec.name, value));
        }
        // Lambda: tags/any(t: t eq 'x')
        if let Some((field, kind)) = name.rsplit_once('/')
            && (kind.eq_ignore_ascii_case("any") || kind.eq_ignore_ascii_case("all"))
        {
            let spec = self.spec(field)?;
            if spec.ops != Ops::List {
                return Err(format!("'{kind}' is not supported for field '{}'", spec.name));
            }
            self.expect(Tok::LParen, "'('")?;
            let Some(Tok::Ident(var)) = self.peek().cloned() else {
                return Err("expected a lambda variable".into());
            };
            self.i += 1;
            self.expect(Tok::Colon, "':'")?;
            match self.peek().cloned() {
                Some(Tok::Ident(v)) if v == var => self.i += 1,
                _ => return Err(format!("expected '{var}' in the lambda body")),
            }
            let cmp = self.cmp()?;
            let lit = self.literal()?;
            self.expect(Tok::RParen, "')'")?;
            return Ok(Filter::Lambda { field: spec.name, all: kind.eq_ignore_ascii_case("all"), cmp, lit });
        }
        let spec = self.spec(&name)?;
        let cmp = self.cmp()?;
        let allowed = match spec.ops {
            Ops::All => true,
            Ops::Eq => cmp == Cmp::Eq,
            Ops::EqNe => matches!(cmp, Cmp::Eq | Cmp::Ne),
            Ops::List => false,
        };
        if !allowed {
            let which = match spec.ops {
                Ops::Eq => "only 'eq' is",
                Ops::EqNe => "only 'eq' and 'ne' are",
                _ => "only 'any' and 'all' are",
            };
            return Err(format!("{which} supported for field '{}'", spec.name));
        }
        let lit = self.literal()?;
        Ok(Filter::Compare(spec.name, cmp, lit))
    }
    fn field_name(&mut self) -> Result<String, String> {
        match self.peek().cloned() {
            Some(Tok::Ident(s)) => {
                self.i += 1;
                Ok(s)
            }
            _ => Err(format!("expected a field name but found '{}'", self.describe())),
        }
    }
    fn spec(&self, name: &str) -> Result<FieldSpec, String> {
        let bare = name.strip_prefix("properties/").unwrap_or(name);
        self.fields.iter().copied().find(|f| f.name.eq_ignore_ascii_case(bare)).ok_or_else(|| {
            let names: Vec<&str> = self.fields.iter().map(|f| f.name).collect();
            format!("field '{name}' is not supported; supported fields are {}", names.join(", "))
        })
    }
    fn cmp(&mut self) -> Result<Cmp, String> {
        let c = match self.peek() {
            Some(Tok::Ident(s)) => match s.to_ascii_lowercase().as_str() {
                "eq" => Cmp::Eq,
                "ne" => Cmp::Ne,
                "gt" => Cmp::Gt,
                "ge" => Cmp::Ge,
                "lt" => Cmp::Lt,
                "le" => Cmp::Le,
                _ => {
                    return Err(format!("expected an operator (eq, ne, gt, ge, lt, le) but found '{s}'"));
                }
            },
            _ => {
                return Err(format!("expected an operator but found '{}'", self.describe()));
            }
        };
        self.i += 1;
        Ok(c)
    }
    fn string_lit(&mut self) -> Result<String, String> {
        match self.peek().cloned() {
            Some(Tok::Str(s)) => {
                self.i += 1;
                Ok(s)
            }
            _ => Err(format!("expected a quoted string but found '{}'", self.describe())),
        }
    }
    fn literal(&mut self) -> Result<Lit, String> {
        let l = match self.peek().cloned() {
            Some(Tok::Str(s)) => Lit::Str(s),
            Some(Tok::Num(n)) => Lit::Num(n),
            Some(Tok::Ident(s)) if s.eq_ignore_ascii_case("true") => Lit::Bool(true),
            Some(Tok::Ident(s)) if s.eq_ignore_ascii_case("false") => Lit::Bool(false),
            Some(Tok::Ident(s)) if s.eq_ignore_ascii_case("null") => Lit::Null,
            _ => return Err(format!("expected a value but found '{}'", self.describe())),
        };
        self.i += 1;
        Ok(l)
    }
}

fn compare(v: &FieldValue, cmp: Cmp, lit: &Lit) -> bool {
    use std::cmp::Ordering;
    let ord: Option<Ordering> = match (v, lit) {
        (FieldValue::Null, Lit::Null) => Some(Ordering::Equal),
        (FieldValue::Null, _) | (_, Lit::Null) => None,
        (FieldValue::Str(a), Lit::Str(b)) => Some(a.to_lowercase().cmp(&b.to_lowercase())),
        (FieldValue::Num(a), Lit::Num(b)) => a.partial_cmp(b),
        (FieldValue::Str(a), Lit::Num(b)) => a.parse::<f64>().ok().and_then(|a| a.partial_cmp(b)),
        (FieldValue::Bool(a), Lit::Bool(b)) => Some(a.cmp(b)),
        (FieldValue::Bool(a), Lit::Str(b)) => Some(a.to_string().cmp(&b.to_lowercase())),
        _ => None,
    };
    match (cmp, ord) {
        (Cmp::Ne, None) => true,
        (_, None) => false,
        (Cmp::Eq, Some(o)) => o == Ordering::Equal,
        (Cmp::Ne, Some(o)) => o != Ordering::Equal,
        (Cmp::Gt, Some(o)) => o == Ordering::Greater,
        (Cmp::Ge, Some(o)) => o != Ordering::Less,
        (Cmp::Lt, Some(o)) => o == Ordering::Less,
        (Cmp::Le, Some(o)) => o != Ordering::Greater,
    }
}

impl Filter {
    /// Evaluates the filter with `get` supplying field values.
    pub fn eval(&self, get: &dyn Fn(&str) -> FieldValue) -> bool {
        match self {
            Filter::And(a, b) => a.eval(get) && b.eval(get),
            Filter::Or(a, b) => a.eval(get) || b.eval(get),
            Filter::Not(a) => !a.eval(get),
            Filter::Compare(field, cmp, lit) => compare(&get(field), *cmp, lit),
            Filter::Func(func, field, needle) => {
                let FieldValue::Str(v) = get(field) else {
                    return false;
                };
                let (v, n) = (v.to_lowercase(), needle.to_lowercase());
                match func {
                    Func::Contains => v.contains(&n),
                    Func::StartsWith => v.starts_with(&n),
                    Func::EndsWith => v.ends_with(&n),
                }
            }
            Filter::Lambda { field, all, cmp, lit } => {
                let FieldValue::List(items) = get(field) else {
                    return false;
                };
                let test = |s: &String| compare(&FieldValue::Str(s.clone()), *cmp, lit);
                if *all { items.iter().all(test) } else { items.iter().any(test) }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIELDS: &[FieldSpec] =
        &[f("name", Ops::All), f("displayName", Ops::All), f("state", Ops::Eq), f("tags", Ops::List)];

    fn matches(filter: &str, name: &str, state: &str) -> bool {
        let f = parse(filter, FIELDS).unwrap();
        f.eval(&|field| match field {
            "name" => FieldValue::Str(name.into()),
            "displayName" => FieldValue::Str(format!("Team {name}")),
            "state" => FieldValue::Str(state.into()),
            "tags" => FieldValue::List(vec!["quota".into(), name.into()]),
            _ => FieldValue::Null,
        })
    }

    #[test]
    fn comparisons_functions_and_logic() {
        assert!(matches("name eq 'Growth'", "growth", "active"));
        assert!(!matches("name ne 'growth'", "growth", "active"));
        assert!(matches("startswith(name, 'gro') and state eq 'active'", "growth", "active"));
        assert!(matches("contains(properties/displayName,'team g')", "growth", "active"));
        assert!(matches("substringof('row', name)", "growth", "active"));
        assert!(matches("endswith(name,'th') or state eq 'x'", "growth", "suspended"));
        assert!(matches("not (state eq 'suspended')", "growth", "active"));
        assert!(matches("name gt 'a' and name lt 'h'", "growth", "active"));
        assert!(matches("tags/any(t: t eq 'quota')", "growth", "active"));
        assert!(!matches("tags/all(t: t eq 'quota')", "growth", "active"));
        assert!(matches("name eq 'o''brien'", "O'Brien", "active"));
    }

    #[test]
    fn errors_name_the_problem() {
        assert!(
            parse("owner eq 'x'", FIELDS)
                .unwrap_err()
                .contains("field 'owner' is not supported; supported fields are name, displayName, state, tags")
        );
        assert!(parse("state ne 'active'", FIELDS).unwrap_err().contains("only 'eq' is supported for field 'state'"));
        assert!(parse("contains(state, 'a')", FIELDS).unwrap_err().contains("not supported for field 'state'"));
        assert!(parse("name eq", FIELDS).unwrap_err().contains("expected a value"));
        assert!(parse("name eq 'x' extra", FIELDS).unwrap_err().contains("unexpected 'extra'"));
        assert!(parse("name eq 'x", FIELDS).unwrap_err().contains("not terminated"));
    }
}
