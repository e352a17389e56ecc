//! Recursive-descent parser from tokens to [`ast::Query`](crate::ast::Query).
//!
//! Invariants:
//! - The parser accepts exactly the subset documented in the crate README. Anything else fails
//!   here, before execution: unknown syntax as `ErrorKind::Syntax`, real KQL outside the subset
//!   (`mv-expand`, `union`, `make_set()`, `kind=fullouter` ...) as `ErrorKind::Unsupported`
//!   naming the construct, both with the span of the offending token.
//! - Precedence, loosest first: `or`, `and`, comparisons / string operators / `in` / `between`
//!   (non-associative), `+ -`, `* / %`, unary `-`, postfix `.key` / `[index]`.
//! - Nesting depth is bounded, so hostile input cannot overflow the stack.

use crate::ast::*;
use crate::error::{KqlError, Span};
use crate::lexer::{TokKind, Token, tokenize};
use crate::value::{ColumnType, DateTime, Timespan, Value};

/// Parser recursion (parentheses, nested calls, subqueries): each level costs several stack
/// frames here.
const MAX_DEPTH: usize = 64;
/// Depth of an expression tree (recursion plus chains such as `a + b + c`): the evaluator
/// recurses once per level.
const MAX_TREE_DEPTH: usize = 256;

/// Tabular operators the parser implements (for messages).
pub const SUPPORTED_OPERATORS: &[&str] = &[
    "where",
    "filter",
    "summarize",
    "extend",
    "project",
    "project-away",
    "project-rename",
    "order by",
    "sort by",
    "top",
    "take",
    "limit",
    "count",
    "distinct",
    "join",
    "render",
];

/// Real KQL tabular operators outside the subset: named as "not supported" rather than unknown.
const KNOWN_UNSUPPORTED_OPERATORS: &[&str] = &[
    "as",
    "consume",
    "evaluate",
    "facet",
    "find",
    "fork",
    "getschema",
    "invoke",
    "lookup",
    "make-series",
    "mv-apply",
    "mv-expand",
    "parse",
    "parse-kv",
    "parse-where",
    "partition",
    "project-keep",
    "project-reorder",
    "reduce",
    "sample",
    "sample-distinct",
    "scan",
    "search",
    "serialize",
    "top-hitters",
    "top-nested",
    "union",
    "range",
    "print",
    "datatable",
    "externaldata",
    "materialize",
    "summarize-ex",
    "extend-ex",
];

/// Tabular sources outside the subset (`union A, B`, `print x = 1`, `datatable(...)[...]`).
const UNSUPPORTED_SOURCES: &[&str] = &[
    "union",
    "print",
    "range",
    "datatable",
    "externaldata",
    "search",
    "find",
    "materialize",
    "table",
    "evaluate",
    "cluster",
    "database",
    "workspace",
    "app",
    "resource",
];

/// Parses a whole query.
pub fn parse(src: &str) -> Result<Query, KqlError> {
    parse_inner(src).map_err(|e| e.locate(src))
}

fn parse_inner(src: &str) -> Result<Query, KqlError> {
    let toks = tokenize(src)?;
    let mut p = Parser { toks, pos: 0, depth: 0, tree: 0 };
    let mut lets = Vec::new();
    let body = loop {
        while p.eat_punct(";") {}
        if p.peek().is_word("let") {
            lets.push(p.let_stmt()?);
            if !p.eat_punct(";") {
                return Err(p.err_here("expected ';' after the let statement"));
            }
            continue;
        }
        if matches!(p.peek().kind, TokKind::Eof) {
            return Err(p.err_here(if lets.is_empty() {
                "the query is empty"
            } else {
                "expected a tabular expression after the let statements"
            }));
        }
        let body = p.tabular()?;
        while p.eat_punct(";") {}
        if !matches!(p.peek().kind, TokKind::Eof) {
            if p.peek().is_word("let") {
                return Err(
                    p.err_here("let statements must come before the query (only one tabular expression is allowed)")
                );
            }
            return Err(p.err_here("expected '|' or the end of the query"));
        }
        break body;
    };
    Ok(Query { source: src.to_string(), lets, body })
}

struct Parser {
    toks: Vec<Token>,
    pos: usize,
    depth: usize,
    tree: usize,
}

fn word_of(t: &Token) -> Option<&str> {
    match &t.kind {
        TokKind::Ident(s) => Some(s),
        _ => None,
    }
}

impl Parser {
    fn peek(&self) -> &Token {
        &self.toks[self.pos.min(self.toks.len() - 1)]
    }

    fn peek_at(&self, k: usize) -> &Token {
        &self.toks[(self.pos + k).min(self.toks.len() - 1)]
    }

    fn bump(&mut self) -> Token {
        let t = self.peek().clone();
        if self.pos < self.toks.len() - 1 {
            self.pos += 1;
        }
        t
    }

    fn prev_end(&self) -> usize {
        if self.pos == 0 { 0 } else { self.toks[self.pos - 1].span.end }
    }

    fn eat_punct(&mut self, p: &str) -> bool {
        if self.peek().is_punct(p) {
            self.bump();
            true
        } else {
            false
        }
    }

    fn eat_word(&mut self, w: &str) -> bool {
        if self.peek().is_word(w) {
            self.bump();
            true
        } else {
            false
        }
    }

    fn err_here(&self, detail: impl Into<String>) -> KqlError {
        KqlError::syntax(detail, self.peek().span)
    }

    fn expect_punct(&mut self, p: &str, context: &str) -> Result<Span, KqlError> {
        if self.peek().is_punct(p) {
            Ok(self.bump().span)
        } else {
            Err(self.err_here(format!("expected '{p}' {context}")))
        }
    }

    fn expect_word(&mut self, w: &str, context: &str) -> Result<Span, KqlError> {
        if self.peek().is_word(w) {
            Ok(self.bump().span)
        } else {
            Err(self.err_here(format!("expected '{w}' {context}")))
        }
    }

    fn ident(&mut self, what: &str) -> Result<Ident, KqlError> {
        let t = self.peek().clone();
        match &t.kind {
            TokKind::Ident(s) if !s.starts_with('!') && !s.starts_with('$') => {
                self.bump();
                Ok(Ident { name: s.clone(), span: t.span })
            }
            // ['Column Name'] / ["Column Name"]
            TokKind::Punct("[") => {
                if let TokKind::Str(s) = &self.peek_at(1).kind
                    && self.peek_at(2).is_punct("]")
                {
                    let name = s.clone();
                    self.bump();
                    self.bump();
                    let end = self.bump().span;
                    return Ok(Ident { name, span: t.span.to(end) });
                }
                Err(self.err_here(format!("expected {what}")))
            }
            _ => Err(self.err_here(format!("expected {what}"))),
        }
    }

    fn enter(&mut self) -> Result<(), KqlError> {
        self.depth += 1;
        self.tree += 1;
        if self.depth > MAX_DEPTH || self.tree > MAX_TREE_DEPTH {
            return Err(self.err_here("the query is nested too deeply"));
        }
        Ok(())
    }

    fn leave(&mut self) {
        self.depth -= 1;
        self.tree -= 1;
    }

    /// One more level of a left-deep chain (`a or b or c`, `a + b + c`).
    fn chain(&mut self, links: &mut usize) -> Result<(), KqlError> {
        *links += 1;
        self.tree += 1;
        if self.tree > MAX_TREE_DEPTH {
            return Err(self.err_here("the expression is nested too deeply"));
        }
        Ok(())
    }

    fn unchain(&mut self, links: usize) {
        self.tree -= links;
    }

    // ---------------------------------------------------------------- statements

    fn let_stmt(&mut self) -> Result<LetStmt, KqlError> {
        self.bump(); // let
        let name = self.ident("a name after 'let'")?;
        self.expect_punct("=", "after the let name")?;
        // User-defined functions: `let f = (x: long) { ... }` / `let f = () { ... }`.
        if self.peek().is_punct("(") && (self.peek_at(1).is_punct(")") || self.peek_at(2).is_punct(":")) {
            return Err(KqlError::unsupported(
                "user-defined functions (let f = (...) { ... }) are not supported by the emulator's KQL subset",
                self.peek().span,
            ));
        }
        if self.peek().is_word("view") || self.peek().is_word("materialize") {
            let w = word_of(self.peek()).unwrap_or_default().to_string();
            return Err(KqlError::unsupported(
                format!("'{w}' in let statements is not supported by the emulator's KQL subset"),
                self.peek().span,
            ));
        }
        let value =
            if self.starts_tabular() { LetValue::Tabular(self.tabular()?) } else { LetValue::Scalar(self.expr()?) };
        Ok(LetStmt { name, value })
    }

    /// True if the next tokens start a tabular expression rather than a scalar: `Name |`,
    /// `( Name |`, or a tabular source keyword.
    fn starts_tabular(&self) -> bool {
        let is_name = |t: &Token| matches!(&t.kind, TokKind::Ident(s) if !s.starts_with(['!', '$']));
        if is_name(self.peek()) && self.peek_at(1).is_punct("|") {
            return true;
        }
        if self.peek().is_punct("(") && is_name(self.peek_at(1)) && self.peek_at(2).is_punct("|") {
            return true;
        }
        matches!(word_of(self.peek()), Some(w) if UNSUPPORTED_SOURCES.contains(&w))
            && !self.peek_at(1).is_punct(";")
            && !self.peek_at(1).is_punct("(")
    }

    // ---------------------------------------------------------------- tabular

    fn tabular(&mut self) -> Result<TabularExpr, KqlError> {
        self.enter()?;
        let start = self.peek().span;
        let source = if self.peek().is_punct("(") {
            self.bump();
            let inner = self.tabular()?;
            self.expect_punct(")", "to close the parenthesized tabular expression")?;
            TabularSource::Paren(Box::new(inner))
        } else {
            let t = self.peek().clone();
            if let Some(w) = word_of(&t)
                && UNSUPPORTED_SOURCES.contains(&w)
                && !matches!(self.peek_at(1).kind, TokKind::Eof)
                && !self.peek_at(1).is_punct("|")
                && !self.peek_at(1).is_punct(")")
                && !self.peek_at(1).is_punct(";")
            {
                return Err(KqlError::unsupported(
                    format!(
                        "the '{w}' operator is not supported by the emulator's KQL subset; a query must start from a table name"
                    ),
                    t.span,
                ));
            }
            TabularSource::Name(self.ident("a table name")?)
        };
        let mut ops = Vec::new();
        while self.peek().is_punct("|") {
            self.bump();
            ops.push(self.operator()?);
        }
        self.leave();
        Ok(TabularExpr { source, ops, span: start.to(Span::new(self.prev_end(), self.prev_end())) })
    }

    /// An operator name, joining hyphenated names written without spaces (`mv-expand`).
    fn operator_name(&mut self) -> Result<(String, Span), KqlError> {
        let t = self.peek().clone();
        let Some(first) = word_of(&t) else {
            return Err(self.err_here("expected a tabular operator after '|'"));
        };
        let mut name = first.to_string();
        let mut span = t.span;
        self.bump();
        loop {
            let dash = self.peek().clone();
            let next = self.peek_at(1).clone();
            if dash.is_punct("-")
                && dash.span.start == span.end
                && next.span.start == dash.span.end
                && let Some(w) = word_of(&next)
            {
                name.push('-');
                name.push_str(w);
                span = span.to(next.span);
                self.bump();
                self.bump();
            } else {
                break;
            }
        }
        Ok((name, span))
    }

    fn operator(&mut self) -> Result<Operator, KqlError> {
        let (name, span) = self.operator_name()?;
        let (kind, static_name): (OpKind, &'static str) = match name.as_str() {
            "where" | "filter" => (OpKind::Where(self.expr()?), if name == "where" { "where" } else { "filter" }),
            "extend" => (OpKind::Extend(self.named_list(false)?), "extend"),
            "project" => (OpKind::Project(self.named_list(false)?), "project"),
            "project-away" => {
                let mut cols = vec![self.column_name_no_wildcard()?];
                while self.eat_punct(",") {
                    cols.push(self.column_name_no_wildcard()?);
                }
                (OpKind::ProjectAway(cols), "project-away")
            }
            "project-rename" => {
                let mut pairs = Vec::new();
                loop {
                    let new = self.ident("a new column name")?;
                    self.expect_punct("=", "in project-rename (NewName = OldName)")?;
                    let old = self.ident("an existing column name")?;
                    pairs.push((new, old));
                    if !self.eat_punct(",") {
                        break;
                    }
                }
                (OpKind::ProjectRename(pairs), "project-rename")
            }
            "summarize" => (self.summarize()?, "summarize"),
            "order" | "sort" => {
                self.expect_word("by", &format!("after '{name}'"))?;
                let mut keys = vec![self.sort_key()?];
                while self.eat_punct(",") {
                    keys.push(self.sort_key()?);
                }
                (OpKind::Sort(keys), if name == "order" { "order" } else { "sort" })
            }
            "top" => {
                let count = self.expr()?;
                self.expect_word("by", "after 'top N'")?;
                let key = self.sort_key()?;
                if self.peek().is_punct(",") {
                    return Err(KqlError::unsupported(
                        "'top' with more than one sort key is not supported by the emulator's KQL subset",
                        self.peek().span,
                    ));
                }
                (OpKind::Top { count, key }, "top")
            }
            "take" | "limit" => (OpKind::Take(self.expr()?), if name == "take" { "take" } else { "limit" }),
            "count" => (OpKind::Count, "count"),
            "distinct" => {
                if self.peek().is_punct("*") {
                    return Err(KqlError::unsupported(
                        "'distinct *' is not supported by the emulator's KQL subset; list the columns",
                        self.peek().span,
                    ));
                }
                let mut cols = vec![self.ident("a column name")?];
                while self.eat_punct(",") {
                    cols.push(self.ident("a column name")?);
                }
                (OpKind::Distinct(cols), "distinct")
            }
            "join" => (self.join()?, "join"),
            "render" => {
                self.skip_render();
                (OpKind::Render, "render")
            }
            other if KNOWN_UNSUPPORTED_OPERATORS.contains(&other) => {
                return Err(KqlError::unsupported(
                    format!(
                        "the '{other}' operator is not supported by the emulator's KQL subset (supported: {})",
                        SUPPORTED_OPERATORS.join(", ")
                    ),
                    span,
                ));
            }
            other => {
                return Err(KqlError::syntax(
                    format!("'{other}' is not a tabular operator (supported: {})", SUPPORTED_OPERATORS.join(", ")),
                    span,
                ));
            }
        };
        Ok(Operator { kind, name: static_name, span })
    }

    fn column_name_no_wildcard(&mut self) -> Result<Ident, KqlError> {
        let id = self.ident("a column name")?;
        if self.peek().is_punct("*") && self.peek().span.start == id.span.end {
            return Err(KqlError::unsupported(
                "column wildcards are not supported by the emulator's KQL subset",
                id.span.to(self.peek().span),
            ));
        }
        Ok(id)
    }

    fn skip_render(&mut self) {
        let mut depth = 0usize;
        loop {
            let t = self.peek();
            if matches!(t.kind, TokKind::Eof) || (depth == 0 && (t.is_punct("|") || t.is_punct(";") || t.is_punct(")")))
            {
                return;
            }
            if t.is_punct("(") {
                depth += 1;
            } else if t.is_punct(")") {
                depth -= 1;
            }
            self.bump();
        }
    }

    /// `[name =] expr, ...`
    fn named_list(&mut self, allow_empty: bool) -> Result<Vec<NamedExpr>, KqlError> {
        let mut items = Vec::new();
        if allow_empty && (self.peek().is_word("by") || self.at_pipeline_end()) {
            return Ok(items);
        }
        loop {
            items.push(self.named_expr()?);
            if !self.eat_punct(",") {
                break;
            }
        }
        Ok(items)
    }

    fn at_pipeline_end(&self) -> bool {
        let t = self.peek();
        matches!(t.kind, TokKind::Eof) || t.is_punct("|") || t.is_punct(";") || t.is_punct(")")
    }

    fn named_expr(&mut self) -> Result<NamedExpr, KqlError> {
        if self.peek().is_punct("(") {
            // `(a, b) = ...` tuple naming.
            let mut k = 1;
            while matches!(self.peek_at(k).kind, TokKind::Ident(_)) || self.peek_at(k).is_punct(",") {
                k += 1;
            }
            if k > 1 && self.peek_at(k).is_punct(")") && self.peek_at(k + 1).is_punct("=") {
                return Err(KqlError::unsupported(
                    "tuple assignment '(a, b) = ...' is not supported by the emulator's KQL subset",
                    self.peek().span,
                ));
            }
        }
        let named = match &self.peek().kind {
            TokKind::Ident(s) if !s.starts_with(['!', '$']) => self.peek_at(1).is_punct("="),
            TokKind::Punct("[") => {
                matches!(self.peek_at(1).kind, TokKind::Str(_))
                    && self.peek_at(2).is_punct("]")
                    && self.peek_at(3).is_punct("=")
            }
            _ => false,
        };
        if named {
            let name = self.ident("a column name")?;
            self.bump(); // =
            let expr = self.expr()?;
            Ok(NamedExpr { name: Some(name), expr })
        } else {
            Ok(NamedExpr { name: None, expr: self.expr()? })
        }
    }

    fn summarize(&mut self) -> Result<OpKind, KqlError> {
        // Hints such as `hint.shufflekey=...` are not supported.
        if let Some(w) = word_of(self.peek())
            && w.starts_with("hint")
            && self.peek_at(1).is_punct(".")
        {
            return Err(KqlError::unsupported(
                "summarize hints are not supported by the emulator's KQL subset",
                self.peek().span,
            ));
        }
        let aggs = self.named_list(true)?;
        let by = if self.eat_word("by") { self.named_list(false)? } else { Vec::new() };
        if aggs.is_empty() && by.is_empty() {
            return Err(self.err_here("summarize needs an aggregate or a 'by' clause"));
        }
        Ok(OpKind::Summarize { aggs, by })
    }

    fn sort_key(&mut self) -> Result<SortKey, KqlError> {
        let expr = self.expr()?;
        let desc = if self.eat_word("asc") {
            false
        } else {
            // KQL sorts descending unless told otherwise.
            self.eat_word("desc");
            true
        };
        let nulls_first = if self.eat_word("nulls") {
            if self.eat_word("first") {
                true
            } else {
                self.expect_word("last", "after 'nulls' (first or last)")?;
                false
            }
        } else {
            !desc
        };
        Ok(SortKey { expr, desc, nulls_first })
    }

    fn join(&mut self) -> Result<OpKind, KqlError> {
        let mut kind = JoinKind::InnerUnique;
        loop {
            let t = self.peek().clone();
            let Some(w) = word_of(&t) else { break };
            if w == "kind" && self.peek_at(1).is_punct("=") {
                self.bump();
                self.bump();
                let kt = self.peek().clone();
                let k = word_of(&kt).unwrap_or_default().to_string();
                kind = match k.as_str() {
                    "inner" => JoinKind::Inner,
                    "innerunique" => JoinKind::InnerUnique,
                    "leftouter" => JoinKind::LeftOuter,
                    "leftsemi" => JoinKind::LeftSemi,
                    "leftanti" | "anti" | "leftantisemi" => JoinKind::LeftAnti,
                    "rightouter" | "fullouter" | "rightsemi" | "rightanti" | "rightantisemi" | "semi" => {
                        return Err(KqlError::unsupported(
                            format!(
                                "join kind '{k}' is not supported by the emulator's KQL subset (supported: inner, innerunique, leftouter, leftsemi, leftanti)"
                            ),
                            kt.span,
                        ));
                    }
                    _ => {
                        return Err(KqlError::syntax(
                            "expected a join kind (inner, innerunique, leftouter, leftsemi, leftanti)",
                            kt.span,
                        ));
                    }
                };
                self.bump();
            } else if w.starts_with("hint") && self.peek_at(1).is_punct(".") {
                return Err(KqlError::unsupported("join hints are not supported by the emulator's KQL subset", t.span));
            } else {
                break;
            }
        }
        let right = if self.peek().is_punct("(") {
            self.bump();
            let r = self.tabular()?;
            self.expect_punct(")", "to close the join's right side")?;
            r
        } else {
            let id = self.ident("the right side of the join: a table name or '(subquery)'")?;
            TabularExpr { span: id.span, source: TabularSource::Name(id), ops: Vec::new() }
        };
        self.expect_word("on", "after the join's right side")?;
        let mut on = vec![self.join_key()?];
        while self.eat_punct(",") || self.eat_word("and") {
            on.push(self.join_key()?);
        }
        Ok(OpKind::Join { kind, right: Box::new(right), on })
    }

    fn join_key(&mut self) -> Result<JoinKey, KqlError> {
        let side = |p: &mut Parser| -> Result<Option<(bool, Ident)>, KqlError> {
            let t = p.peek().clone();
            match word_of(&t) {
                Some("$left") | Some("$right") => {
                    let left = t.is_word("$left");
                    p.bump();
                    p.expect_punct(".", "after $left/$right")?;
                    Ok(Some((left, p.ident("a column name")?)))
                }
                _ => Ok(None),
            }
        };
        if let Some((a_left, a)) = side(self)? {
            self.expect_punct("==", "between the $left and $right join columns")?;
            let Some((b_left, b)) = side(self)? else {
                return Err(self.err_here("expected $left.Column or $right.Column"));
            };
            if a_left == b_left {
                return Err(KqlError::syntax(
                    "a join condition must compare a $left column with a $right column",
                    a.span.to(b.span),
                ));
            }
            let (left, right) = if a_left { (a, b) } else { (b, a) };
            return Ok(JoinKey { left, right });
        }
        let id = self.ident("a join column")?;
        Ok(JoinKey { left: id.clone(), right: id })
    }

    // ---------------------------------------------------------------- expressions

    pub(crate) fn expr(&mut self) -> Result<Expr, KqlError> {
        self.enter()?;
        let e = self.or_expr();
        self.leave();
        e
    }

    fn or_expr(&mut self) -> Result<Expr, KqlError> {
        let mut links = 0;
        let r = (|| {
            let mut lhs = self.and_expr()?;
            while self.peek().is_word("or") {
                self.bump();
                self.chain(&mut links)?;
                let rhs = self.and_expr()?;
                lhs = binary(BinOp::Or, lhs, rhs);
            }
            Ok(lhs)
        })();
        self.unchain(links);
        r
    }

    fn and_expr(&mut self) -> Result<Expr, KqlError> {
        let mut links = 0;
        let r = (|| {
            let mut lhs = self.cmp_expr()?;
            while self.peek().is_word("and") {
                self.bump();
                self.chain(&mut links)?;
                let rhs = self.cmp_expr()?;
                lhs = binary(BinOp::And, lhs, rhs);
            }
            Ok(lhs)
        })();
        self.unchain(links);
        r
    }

    fn cmp_expr(&mut self) -> Result<Expr, KqlError> {
        let lhs = self.add_expr()?;
        let t = self.peek().clone();
        let op = match &t.kind {
            TokKind::Punct(p) => match *p {
                "==" => Some(BinOp::Eq),
                "!=" | "<>" => Some(BinOp::Ne),
                "<" => Some(BinOp::Lt),
                "<=" => Some(BinOp::Le),
                ">" => Some(BinOp::Gt),
                ">=" => Some(BinOp::Ge),
                "=~" => Some(BinOp::EqCi),
                "!~" => Some(BinOp::NeCi),
                _ => None,
            },
            TokKind::Ident(w) => {
                let (negated, base) = match w.strip_prefix('!') {
                    Some(rest) => (true, rest),
                    None => (false, w.as_str()),
                };
                match base {
                    "in" | "in~" => {
                        self.bump();
                        return self.in_expr(lhs, negated, base == "in~");
                    }
                    "between" => {
                        self.bump();
                        return self.between_expr(lhs, negated);
                    }
                    _ => {}
                }
                let (cs, stem) = match base.strip_suffix("_cs") {
                    Some(s) => (true, s),
                    None => (false, base),
                };
                let sop = match stem {
                    "has" => Some(StrOp::Has),
                    "contains" => Some(StrOp::Contains),
                    "startswith" => Some(StrOp::StartsWith),
                    "endswith" => Some(StrOp::EndsWith),
                    "hasprefix" => Some(StrOp::HasPrefix),
                    _ => None,
                };
                match sop {
                    Some(op) => Some(BinOp::Str { op, case_sensitive: cs, negated }),
                    None => {
                        if matches!(
                            base,
                            "has_any"
                                | "has_all"
                                | "matches"
                                | "hassuffix"
                                | "hassuffix_cs"
                                | "like"
                                | "has_any_cs"
                                | "has_all_cs"
                        ) {
                            return Err(KqlError::unsupported(
                                format!("the '{w}' operator is not supported by the emulator's KQL subset"),
                                t.span,
                            ));
                        }
                        None
                    }
                }
            }
            _ => None,
        };
        let Some(op) = op else { return Ok(lhs) };
        self.bump();
        let rhs = self.add_expr()?;
        Ok(binary(op, lhs, rhs))
    }

    fn in_expr(&mut self, lhs: Expr, negated: bool, ci: bool) -> Result<Expr, KqlError> {
        self.expect_punct("(", "after 'in'")?;
        let list = if self.starts_tabular() {
            InList::Tabular(Box::new(self.tabular()?))
        } else {
            let mut items = vec![self.expr()?];
            while self.eat_punct(",") {
                items.push(self.expr()?);
            }
            InList::Values(items)
        };
        let end = self.expect_punct(")", "to close the 'in' list")?;
        Ok(Expr {
            span: lhs.span.to(end),
            kind: ExprKind::In { expr: Box::new(lhs), list, negated, case_insensitive: ci },
        })
    }

    fn between_expr(&mut self, lhs: Expr, negated: bool) -> Result<Expr, KqlError> {
        self.expect_punct("(", "after 'between'")?;
        let lo = self.expr()?;
        self.expect_punct("..", "between the bounds of 'between (lo .. hi)'")?;
        let hi = self.expr()?;
        let end = self.expect_punct(")", "to close 'between'")?;
        Ok(Expr {
            span: lhs.span.to(end),
            kind: ExprKind::Between { expr: Box::new(lhs), lo: Box::new(lo), hi: Box::new(hi), negated },
        })
    }

    fn add_expr(&mut self) -> Result<Expr, KqlError> {
        let mut links = 0;
        let r = (|| {
            let mut lhs = self.mul_expr()?;
            loop {
                let op = if self.peek().is_punct("+") {
                    BinOp::Add
                } else if self.peek().is_punct("-") {
                    BinOp::Sub
                } else {
                    return Ok(lhs);
                };
                self.bump();
                self.chain(&mut links)?;
                let rhs = self.mul_expr()?;
                lhs = binary(op, lhs, rhs);
            }
        })();
        self.unchain(links);
        r
    }

    fn mul_expr(&mut self) -> Result<Expr, KqlError> {
        let mut links = 0;
        let r = (|| {
            let mut lhs = self.unary()?;
            loop {
                let op = if self.peek().is_punct("*") {
                    BinOp::Mul
                } else if self.peek().is_punct("/") {
                    BinOp::Div
                } else if self.peek().is_punct("%") {
                    BinOp::Mod
                } else {
                    return Ok(lhs);
                };
                self.bump();
                self.chain(&mut links)?;
                let rhs = self.unary()?;
                lhs = binary(op, lhs, rhs);
            }
        })();
        self.unchain(links);
        r
    }

    fn unary(&mut self) -> Result<Expr, KqlError> {
        if self.peek().is_punct("-") || self.peek().is_punct("+") {
            let t = self.bump();
            self.enter()?;
            let inner = self.unary();
            self.leave();
            let inner = inner?;
            if t.is_punct("+") {
                return Ok(inner);
            }
            // Fold negative numeric literals right away.
            let span = t.span.to(inner.span);
            return Ok(match inner.kind {
                ExprKind::Literal(Value::Long(v), ty) => {
                    Expr { kind: ExprKind::Literal(Value::Long(v.wrapping_neg()), ty), span }
                }
                ExprKind::Literal(Value::Real(v), ty) => Expr { kind: ExprKind::Literal(Value::Real(-v), ty), span },
                ExprKind::Literal(Value::Timespan(v), ty) => {
                    Expr { kind: ExprKind::Literal(Value::Timespan(Timespan(-v.0)), ty), span }
                }
                kind => Expr { kind: ExprKind::Neg(Box::new(Expr { kind, span: inner.span })), span },
            });
        }
        self.postfix()
    }

    fn postfix(&mut self) -> Result<Expr, KqlError> {
        let mut links = 0;
        let r = self.postfix_chain(&mut links);
        self.unchain(links);
        r
    }

    fn postfix_chain(&mut self, links: &mut usize) -> Result<Expr, KqlError> {
        let mut e = self.primary()?;
        loop {
            if self.peek().is_punct(".") || self.peek().is_punct("[") {
                self.chain(links)?;
            }
            if self.peek().is_punct(".") {
                self.bump();
                let key = if self.peek().is_punct("[") {
                    self.bump();
                    let k = self.expr()?;
                    self.expect_punct("]", "to close the index")?;
                    k
                } else {
                    let id = self.ident("a property name after '.'")?;
                    Expr { kind: ExprKind::Literal(Value::string(&id.name), ColumnType::String), span: id.span }
                };
                let span = e.span.to(Span::new(self.prev_end(), self.prev_end()));
                e = Expr { kind: ExprKind::Index { expr: Box::new(e), key: Box::new(key) }, span };
            } else if self.peek().is_punct("[") {
                self.bump();
                let key = self.expr()?;
                let end = self.expect_punct("]", "to close the index")?;
                let span = e.span.to(end);
                e = Expr { kind: ExprKind::Index { expr: Box::new(e), key: Box::new(key) }, span };
            } else {
                return Ok(e);
            }
        }
    }

    fn primary(&mut self) -> Result<Expr, KqlError> {
        let t = self.peek().clone();
        let lit = |v: Value, ty: ColumnType| Expr { kind: ExprKind::Literal(v, ty), span: t.span };
        match &t.kind {
            TokKind::Long(v) => {
                self.bump();
                Ok(lit(Value::Long(*v), ColumnType::Long))
            }
            TokKind::Real(v) => {
                self.bump();
                Ok(lit(Value::Real(*v), ColumnType::Real))
            }
            TokKind::Str(s) => {
                self.bump();
                Ok(lit(Value::string(s), ColumnType::String))
            }
            TokKind::Timespan(v) => {
                self.bump();
                Ok(lit(Value::Timespan(Timespan(*v)), ColumnType::Timespan))
            }
            TokKind::Typed { ty, raw, raw_span } => {
                self.bump();
                let (v, cty) = typed_literal(ty, raw, *raw_span)?;
                Ok(lit(v, cty))
            }
            TokKind::Punct("(") => {
                self.bump();
                if self.starts_tabular() {
                    return Err(KqlError::unsupported(
                        "tabular subqueries used as scalars (toscalar) are not supported by the emulator's KQL subset",
                        self.peek().span,
                    ));
                }
                let inner = self.expr()?;
                let end = self.expect_punct(")", "to close the parenthesis")?;
                Ok(Expr { kind: inner.kind, span: t.span.to(end) })
            }
            TokKind::Punct("[") => {
                let id = self.ident("an expression")?;
                Ok(Expr { kind: ExprKind::Name(id.name), span: id.span })
            }
            TokKind::Ident(w) => {
                match w.as_str() {
                    "true" | "True" | "TRUE" => {
                        self.bump();
                        return Ok(lit(Value::Bool(true), ColumnType::Bool));
                    }
                    "false" | "False" | "FALSE" => {
                        self.bump();
                        return Ok(lit(Value::Bool(false), ColumnType::Bool));
                    }
                    _ => {}
                }
                if w.starts_with('$') {
                    return Err(KqlError::syntax(format!("'{w}' can only be used in a join's 'on' clause"), t.span));
                }
                if w.starts_with('!') {
                    return Err(self.err_here("expected an expression"));
                }
                if self.peek_at(1).is_punct("(") {
                    return self.call();
                }
                self.bump();
                Ok(Expr { kind: ExprKind::Name(w.clone()), span: t.span })
            }
            _ => Err(self.err_here("expected an expression")),
        }
    }

    fn call(&mut self) -> Result<Expr, KqlError> {
        let name_tok = self.bump();
        let name = word_of(&name_tok).unwrap_or_default().to_string();
        let Some(func) = Func::from_name(&name) else {
            return Err(KqlError::unsupported(
                format!("the function '{name}' is not supported by the emulator's KQL subset"),
                name_tok.span,
            ));
        };
        self.bump(); // (
        let mut args = Vec::new();
        if !self.peek().is_punct(")") {
            loop {
                args.push(self.expr()?);
                if !self.eat_punct(",") {
                    break;
                }
            }
        }
        let end = self.expect_punct(")", &format!("to close the call to {name}()"))?;
        let (min, max) = func.arity();
        if args.len() < min || args.len() > max {
            let expected = if min == max {
                format!("{min}")
            } else if max >= 64 {
                format!("at least {min}")
            } else {
                format!("{min} to {max}")
            };
            return Err(KqlError::semantic(
                format!("function '{name}' expects {expected} argument(s), got {}", args.len()),
                name_tok.span.to(end),
            ));
        }
        Ok(Expr { kind: ExprKind::Call { func, name_span: name_tok.span, args }, span: name_tok.span.to(end) })
    }
}

fn binary(op: BinOp, lhs: Expr, rhs: Expr) -> Expr {
    Expr { span: lhs.span.to(rhs.span), kind: ExprKind::Binary { op, lhs: Box::new(lhs), rhs: Box::new(rhs) } }
}

/// Validates the inside of `datetime(...)`, `timespan(...)`, `long(...)` ...
fn typed_literal(ty: &str, raw: &str, span: Span) -> Result<(Value, ColumnType), KqlError> {
    let inner = raw.trim();
    let unquoted = inner
        .strip_prefix('"')
        .and_then(|s| s.strip_suffix('"'))
        .or_else(|| inner.strip_prefix('\'').and_then(|s| s.strip_suffix('\'')))
        .unwrap_or(inner);
    let is_null = inner == "null";
    let bad = |what: &str| KqlError::syntax(format!("invalid {what} literal '{raw}'"), span);
    Ok(match ty {
        "datetime" => {
            if is_null {
                (Value::Null, ColumnType::DateTime)
            } else {
                let d = DateTime::parse(unquoted).ok_or_else(|| bad("datetime"))?;
                (Value::DateTime(d), ColumnType::DateTime)
            }
        }
        "timespan" | "time" => {
            if is_null {
                (Value::Null, ColumnType::Timespan)
            } else {
                let t = Timespan::parse(unquoted).ok_or_else(|| bad("timespan"))?;
                (Value::Timespan(t), ColumnType::Timespan)
            }
        }
        "long" | "int" => {
            let cty = if ty == "int" { ColumnType::Int } else { ColumnType::Long };
            if is_null {
                (Value::Null, cty)
            } else {
                let v: i64 = inner.parse().map_err(|_| bad(ty))?;
                if cty == ColumnType::Int && i32::try_from(v).is_err() {
                    return Err(bad(ty));
                }
                (Value::Long(v), cty)
            }
        }
        "real" | "double" => {
            let v = match inner {
                "null" => return Ok((Value::Null, ColumnType::Real)),
                "nan" => f64::NAN,
                "+inf" | "inf" => f64::INFINITY,
                "-inf" => f64::NEG_INFINITY,
                _ => inner.parse().map_err(|_| bad(ty))?,
            };
            (Value::Real(v), ColumnType::Real)
        }
        "bool" | "boolean" => match inner {
            "null" => (Value::Null, ColumnType::Bool),
            "true" | "True" | "TRUE" | "1" => (Value::Bool(true), ColumnType::Bool),
            "false" | "False" | "FALSE" | "0" => (Value::Bool(false), ColumnType::Bool),
            _ => return Err(bad(ty)),
        },
        "guid" => {
            if is_null {
                (Value::string(""), ColumnType::Guid)
            } else {
                let ok = unquoted.len() == 36
                    && unquoted
                        .chars()
                        .enumerate()
                        .all(|(i, c)| if [8, 13, 18, 23].contains(&i) { c == '-' } else { c.is_ascii_hexdigit() });
                if !ok {
                    return Err(bad("guid"));
                }
                (Value::string(unquoted.to_ascii_lowercase()), ColumnType::Guid)
            }
        }
        "dynamic" => {
            let v: serde_json::Value = serde_json::from_str(inner).map_err(|_| {
                KqlError::unsupported(
                    format!("dynamic literal '{raw}' is not supported: the emulator accepts JSON inside dynamic(...)"),
                    span,
                )
            })?;
            if v.is_null() { (Value::Null, ColumnType::Dynamic) } else { (Value::dynamic(v), ColumnType::Dynamic) }
        }
        _ => {
            return Err(KqlError::unsupported(
                format!("{ty} literals are not supported by the emulator's KQL subset"),
                span,
            ));
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;

    fn ok(q: &str) -> Query {
        parse(q).unwrap_or_else(|e| panic!("{q}: {e}"))
    }

    fn err(q: &str) -> KqlError {
        parse(q).expect_err(q)
    }

    #[test]
    fn parses_a_pipeline() {
        let q = ok(
            "ApiManagementGatewayLogs\n| where ResponseCode == 429 and TimeGenerated > ago(1h)\n| summarize n = count(), sum(ResponseSize) by ApimSubscriptionId, bin(TimeGenerated, 1h)\n| order by n desc\n| take 10",
        );
        assert!(q.lets.is_empty());
        let names: Vec<&str> = q.body.ops.iter().map(|o| o.name).collect();
        assert_eq!(names, ["where", "summarize", "order", "take"]);
        match &q.body.source {
            TabularSource::Name(id) => assert_eq!(id.name, "ApiManagementGatewayLogs"),
            _ => panic!(),
        }
        match &q.body.ops[1].kind {
            OpKind::Summarize { aggs, by } => {
                assert_eq!(aggs.len(), 2);
                assert_eq!(aggs[0].name.as_ref().unwrap().name, "n");
                assert_eq!(by.len(), 2);
            }
            _ => panic!(),
        }
    }

    #[test]
    fn operator_spans_point_at_the_operator_name() {
        let src = "T | where x > 1 | take 5";
        let q = ok(src);
        let s = q.body.ops[1].span;
        assert_eq!(&src[s.start..s.end], "take");
    }

    #[test]
    fn precedence_and_binds_tighter_than_or() {
        let q = ok("T | where a == 1 or b == 2 and c == 3");
        let OpKind::Where(e) = &q.body.ops[0].kind else { panic!() };
        match &e.kind {
            ExprKind::Binary { op: BinOp::Or, rhs, .. } => {
                assert!(matches!(rhs.kind, ExprKind::Binary { op: BinOp::And, .. }))
            }
            k => panic!("{k:?}"),
        }
        let q = ok("T | extend x = 1 + 2 * 3");
        let OpKind::Extend(items) = &q.body.ops[0].kind else { panic!() };
        match &items[0].expr.kind {
            ExprKind::Binary { op: BinOp::Add, rhs, .. } => {
                assert!(matches!(rhs.kind, ExprKind::Binary { op: BinOp::Mul, .. }))
            }
            k => panic!("{k:?}"),
        }
    }

    #[test]
    fn lets_and_literals() {
        let q = ok(
            "let since = ago(2h);\nlet big = 1000;\nlet start = datetime(2026-11-24T10:00:00Z);\nlet errs = T | where ResponseCode >= 500;\nerrs | where TimeGenerated > since and x > big and TimeGenerated >= start",
        );
        assert_eq!(q.lets.len(), 4);
        assert!(matches!(q.lets[3].value, LetValue::Tabular(_)));
        match &q.lets[2].value {
            LetValue::Scalar(Expr { kind: ExprKind::Literal(Value::DateTime(d), ColumnType::DateTime), .. }) => {
                assert_eq!(d.to_string(), "2026-11-24T10:00:00Z")
            }
            v => panic!("{v:?}"),
        }
    }

    #[test]
    fn string_operators_in_and_between() {
        let q = ok(
            "T | where a has 'x' and b !contains_cs \"y\" and c in (1, 2) and d !in~ ('A') and e between (1 .. 5) and f !between (now() .. 1h)",
        );
        let OpKind::Where(e) = &q.body.ops[0].kind else { panic!() };
        let mut ors = 0;
        fn walk(e: &Expr, n: &mut usize) {
            match &e.kind {
                ExprKind::Binary { lhs, rhs, .. } => {
                    walk(lhs, n);
                    walk(rhs, n);
                }
                ExprKind::In { .. } | ExprKind::Between { .. } => *n += 1,
                _ => {}
            }
        }
        walk(e, &mut ors);
        assert_eq!(ors, 4);
    }

    #[test]
    fn joins() {
        let q = ok("L | join kind=leftouter (R | where x > 1) on CorrelationId");
        match &q.body.ops[0].kind {
            OpKind::Join { kind, on, .. } => {
                assert_eq!(*kind, JoinKind::LeftOuter);
                assert_eq!(on[0].left.name, "CorrelationId");
            }
            _ => panic!(),
        }
        let q = ok("L | join R on $right.B == $left.A");
        match &q.body.ops[0].kind {
            OpKind::Join { kind, on, .. } => {
                assert_eq!(*kind, JoinKind::InnerUnique);
                assert_eq!((on[0].left.name.as_str(), on[0].right.name.as_str()), ("A", "B"));
            }
            _ => panic!(),
        }
    }

    #[test]
    fn unsupported_operator_is_named_with_its_position() {
        let src = "ApiManagementGatewayLogs\n| where ResponseCode == 429\n| mv-expand Errors";
        let e = err(src);
        assert_eq!(e.kind(), ErrorKind::Unsupported);
        assert_eq!(e.token(), Some("mv-expand"));
        let p = e.position().unwrap();
        assert_eq!((p.line, p.column), (3, 3));
        assert_eq!(p.offset, src.find("mv-expand").unwrap());
        assert!(
            e.message().starts_with(
                "Query could not be parsed at 'mv-expand' on line [3,2]: the 'mv-expand' operator is not supported"
            ),
            "{}",
            e.message()
        );
    }

    #[test]
    fn unsupported_functions_kinds_and_sources() {
        let e = err("T | summarize make_set(x)");
        assert_eq!(e.kind(), ErrorKind::Unsupported);
        assert_eq!(e.token(), Some("make_set"));
        assert_eq!(e.position().unwrap().column, 15);
        let e = err("T | join kind=fullouter (U) on X");
        assert_eq!(e.token(), Some("fullouter"));
        let e = err("union A, B");
        assert_eq!(e.token(), Some("union"));
        let e = err("T | where a has_any ('x')");
        assert_eq!(e.token(), Some("has_any"));
    }

    #[test]
    fn syntax_errors_point_at_the_token() {
        let e = err("T | where (x > 1");
        assert_eq!(e.kind(), ErrorKind::Syntax);
        assert_eq!(e.token(), Some("<EOF>"));
        let e = err("T | where x > ");
        assert_eq!(e.token(), Some("<EOF>"));
        let e = err("T | frobnicate");
        assert_eq!(e.kind(), ErrorKind::Syntax);
        assert_eq!(e.token(), Some("frobnicate"));
        let e = err("T | where x == 1 )");
        assert_eq!(e.token(), Some(")"));
        assert_eq!(e.position().unwrap().offset, 17);
        let e = err("T | where t > datetime(2026-13-01)");
        assert_eq!(e.token(), Some("2026-13-01"));
        let e = err("let x = 1 T");
        assert_eq!(e.token(), Some("T"));
        let e = err("");
        assert_eq!(e.token(), Some("<EOF>"));
        let e = err("T | summarize count(1)");
        assert_eq!(e.kind(), ErrorKind::Semantic);
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_crash() {
        let q = format!("T | where {}1{}", "(".repeat(5000), ")".repeat(5000));
        assert_eq!(err(&q).kind(), ErrorKind::Syntax);
        let q = format!("T | where {}1", "-".repeat(5000));
        assert_eq!(err(&q).kind(), ErrorKind::Syntax);
    }

    #[test]
    fn dynamic_access_and_bracketed_names() {
        let q =
            ok("customMetrics | extend s = tostring(customDimensions['Subscription ID']), t = d.a.b, u = ['odd name']");
        let OpKind::Extend(items) = &q.body.ops[0].kind else { panic!() };
        assert_eq!(items.len(), 3);
        assert!(matches!(items[1].expr.kind, ExprKind::Index { .. }));
        assert!(matches!(&items[2].expr.kind, ExprKind::Name(n) if n == "odd name"));
    }
}
