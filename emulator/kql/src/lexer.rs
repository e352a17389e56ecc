//! Tokenizer: turns query text into tokens, each with the byte span it came from.
//!
//! Invariants:
//! - Every token's span indexes the original text, so parser errors can point at it; the list
//!   always ends with one `Eof` token whose span is empty and sits at the end of the text.
//! - Keywords are not distinguished here: `where`, `and`, `by` ... are `Ident`s and the parser
//!   decides by context (KQL has almost no reserved words). Negated operators (`!has`,
//!   `!contains`, `!in~`) and `in~` are single `Ident`s so `!` never has to be a prefix operator.
//! - Typed literals whose contents are not ordinary KQL tokens (`datetime(2026-11-24T10:00Z)`,
//!   `timespan(01:00:00)`, `dynamic([1,2])`, `guid(...)`, `long(null)`, ...) are captured whole as
//!   `Typed` with their raw inside text; the parser validates the inside.
//! - `//` comments and whitespace are skipped.

use crate::error::{KqlError, Span};
use crate::value::Timespan;

#[derive(Clone, Debug, PartialEq)]
pub enum TokKind {
    /// An identifier or keyword; also `!has`-style negated operators, `in~`, `$left`/`$right`.
    Ident(String),
    /// A string literal, escapes resolved.
    Str(String),
    Long(i64),
    Real(f64),
    /// A timespan literal (`1h`, `30m`, `100ms`), in ticks.
    Timespan(i64),
    /// `ty(raw)`, e.g. `datetime(2026-11-24)`; `raw_span` covers `raw`.
    Typed {
        ty: String,
        raw: String,
        raw_span: Span,
    },
    Punct(&'static str),
    Eof,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Token {
    pub kind: TokKind,
    pub span: Span,
}

impl Token {
    /// True if this is the identifier/keyword `word`.
    pub fn is_word(&self, word: &str) -> bool {
        matches!(&self.kind, TokKind::Ident(s) if s == word)
    }
    pub fn is_punct(&self, p: &str) -> bool {
        matches!(&self.kind, TokKind::Punct(q) if *q == p)
    }
}

/// Names that introduce a typed literal when followed by `(`.
const TYPED_LITERALS: &[&str] =
    &["datetime", "timespan", "time", "dynamic", "guid", "long", "int", "real", "double", "bool", "boolean", "decimal"];

/// Punctuation, longest first.
const PUNCTS: &[&str] = &[
    "!=", "!~", "==", "=~", "<=", ">=", "<>", "..", "|", "(", ")", "[", "]", "{", "}", ",", ";", ".", "=", "<", ">",
    "+", "-", "*", "/", "%", ":", "!", "~", "?",
];

/// Tokenizes `src`.
pub fn tokenize(src: &str) -> Result<Vec<Token>, KqlError> {
    Lexer { src, b: src.as_bytes(), i: 0 }.run()
}

struct Lexer<'a> {
    src: &'a str,
    b: &'a [u8],
    i: usize,
}

fn is_ident_start(c: u8) -> bool {
    c.is_ascii_alphabetic() || c == b'_'
}

fn is_ident_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_'
}

impl Lexer<'_> {
    fn peek_at(&self, k: usize) -> Option<u8> {
        self.b.get(self.i + k).copied()
    }

    fn run(mut self) -> Result<Vec<Token>, KqlError> {
        let mut out = Vec::new();
        loop {
            self.skip_trivia();
            let start = self.i;
            let Some(c) = self.peek_at(0) else {
                out.push(Token { kind: TokKind::Eof, span: Span::new(start, start) });
                return Ok(out);
            };
            let kind = if (c == b'@' || c == b'h' || c == b'H') && matches!(self.peek_at(1), Some(b'\'' | b'"')) {
                let verbatim = c == b'@';
                self.i += 1;
                TokKind::Str(self.string(verbatim)?)
            } else if c == b'\'' || c == b'"' {
                if self.src[self.i..].starts_with("```") {
                    return Err(KqlError::unsupported(
                        "multi-line ``` string literals are not supported by the emulator's KQL subset",
                        Span::new(start, start + 3),
                    ));
                }
                TokKind::Str(self.string(false)?)
            } else if c.is_ascii_digit() {
                self.number()?
            } else if c == b'$' && self.peek_at(1).is_some_and(is_ident_start) {
                self.i += 1;
                while self.peek_at(0).is_some_and(is_ident_char) {
                    self.i += 1;
                }
                TokKind::Ident(self.src[start..self.i].to_string())
            } else if c == b'!' && self.peek_at(1).is_some_and(|c| c.is_ascii_alphabetic()) {
                self.i += 1;
                self.ident_rest();
                self.tilde_suffix(start);
                TokKind::Ident(self.src[start..self.i].to_string())
            } else if is_ident_start(c) {
                self.ident_rest();
                let word = &self.src[start..self.i];
                if TYPED_LITERALS.contains(&word) && self.next_non_ws() == Some(b'(') {
                    let ty = word.to_string();
                    self.typed_literal(ty)?
                } else {
                    self.tilde_suffix(start);
                    TokKind::Ident(self.src[start..self.i].to_string())
                }
            } else if let Some(p) = PUNCTS.iter().find(|p| self.src[self.i..].starts_with(**p)) {
                self.i += p.len();
                TokKind::Punct(p)
            } else {
                let ch = self.src[self.i..].chars().next().unwrap_or('?');
                return Err(KqlError::syntax("unexpected character", Span::new(start, start + ch.len_utf8())));
            };
            out.push(Token { kind, span: Span::new(start, self.i) });
        }
    }

    fn skip_trivia(&mut self) {
        loop {
            while self.peek_at(0).is_some_and(|c| c.is_ascii_whitespace()) {
                self.i += 1;
            }
            if self.peek_at(0) == Some(b'/') && self.peek_at(1) == Some(b'/') {
                while self.peek_at(0).is_some_and(|c| c != b'\n') {
                    self.i += 1;
                }
            } else {
                return;
            }
        }
    }

    fn ident_rest(&mut self) {
        while self.peek_at(0).is_some_and(is_ident_char) {
            self.i += 1;
        }
    }

    /// `in~` / `!in~`: the `~` belongs to the operator.
    fn tilde_suffix(&mut self, start: usize) {
        let word = &self.src[start..self.i];
        if (word == "in" || word == "!in") && self.peek_at(0) == Some(b'~') {
            self.i += 1;
        }
    }

    fn next_non_ws(&self) -> Option<u8> {
        self.b[self.i..].iter().copied().find(|c| !c.is_ascii_whitespace())
    }

    /// After a typed-literal keyword: captures `( raw )`, balancing parentheses and skipping
    /// over quoted text inside.
    fn typed_literal(&mut self, ty: String) -> Result<TokKind, KqlError> {
        while self.peek_at(0).is_some_and(|c| c.is_ascii_whitespace()) {
            self.i += 1;
        }
        let open = self.i;
        self.i += 1; // '('
        let raw_start = self.i;
        let mut depth = 1;
        let mut quote: Option<u8> = None;
        while let Some(c) = self.peek_at(0) {
            match quote {
                Some(q) => {
                    if c == b'\\' {
                        self.i += 1;
                    } else if c == q {
                        quote = None;
                    }
                }
                None => match c {
                    b'\'' | b'"' => quote = Some(c),
                    b'(' => depth += 1,
                    b')' => {
                        depth -= 1;
                        if depth == 0 {
                            let raw = self.src[raw_start..self.i].to_string();
                            let raw_span = Span::new(raw_start, self.i);
                            self.i += 1;
                            return Ok(TokKind::Typed { ty, raw, raw_span });
                        }
                    }
                    _ => {}
                },
            }
            self.i += 1;
        }
        Err(KqlError::syntax(format!("missing ')' after '{ty}('"), Span::new(open, open + 1)))
    }

    fn string(&mut self, verbatim: bool) -> Result<String, KqlError> {
        let start = self.i;
        let q = self.b[self.i];
        self.i += 1;
        let mut out = String::new();
        loop {
            let Some(c) = self.peek_at(0) else {
                return Err(KqlError::syntax("unterminated string literal", Span::new(start, self.b.len())));
            };
            if c == b'\n' && !verbatim {
                return Err(KqlError::syntax("unterminated string literal", Span::new(start, self.i)));
            }
            if c == q {
                if verbatim && self.peek_at(1) == Some(q) {
                    out.push(q as char);
                    self.i += 2;
                    continue;
                }
                self.i += 1;
                return Ok(out);
            }
            if c == b'\\' && !verbatim {
                let esc_start = self.i;
                self.i += 1;
                let e = self
                    .peek_at(0)
                    .ok_or_else(|| KqlError::syntax("unterminated string literal", Span::new(start, self.b.len())))?;
                self.i += 1;
                match e {
                    b'n' => out.push('\n'),
                    b't' => out.push('\t'),
                    b'r' => out.push('\r'),
                    b'0' => out.push('\0'),
                    b'\\' => out.push('\\'),
                    b'\'' => out.push('\''),
                    b'"' => out.push('"'),
                    b'u' => {
                        let hex = self.src.get(self.i..self.i + 4).unwrap_or("");
                        let ch = u32::from_str_radix(hex, 16).ok().and_then(char::from_u32);
                        match ch {
                            Some(ch) if hex.len() == 4 => {
                                out.push(ch);
                                self.i += 4;
                            }
                            _ => {
                                return Err(KqlError::syntax("invalid \\u escape", Span::new(esc_start, self.i)));
                            }
                        }
                    }
                    _ => {
                        return Err(KqlError::syntax(
                            format!("invalid escape sequence '\\{}'", e as char),
                            Span::new(esc_start, self.i),
                        ));
                    }
                }
                continue;
            }
            // Copy one UTF-8 character.
            let ch = self.src[self.i..].chars().next().unwrap_or('\u{fffd}');
            out.push(ch);
            self.i += ch.len_utf8();
        }
    }

    fn number(&mut self) -> Result<TokKind, KqlError> {
        let start = self.i;
        if self.peek_at(0) == Some(b'0') && matches!(self.peek_at(1), Some(b'x' | b'X')) {
            self.i += 2;
            let ds = self.i;
            while self.peek_at(0).is_some_and(|c| c.is_ascii_hexdigit()) {
                self.i += 1;
            }
            return i64::from_str_radix(&self.src[ds..self.i], 16)
                .map(TokKind::Long)
                .map_err(|_| KqlError::syntax("invalid hexadecimal literal", Span::new(start, self.i)));
        }
        while self.peek_at(0).is_some_and(|c| c.is_ascii_digit()) {
            self.i += 1;
        }
        let mut real = false;
        if self.peek_at(0) == Some(b'.') && self.peek_at(1).is_some_and(|c| c.is_ascii_digit()) {
            real = true;
            self.i += 1;
            while self.peek_at(0).is_some_and(|c| c.is_ascii_digit()) {
                self.i += 1;
            }
        }
        if matches!(self.peek_at(0), Some(b'e' | b'E')) {
            let sign = matches!(self.peek_at(1), Some(b'+' | b'-')) as usize;
            if self.peek_at(1 + sign).is_some_and(|c| c.is_ascii_digit()) {
                real = true;
                self.i += 1 + sign;
                while self.peek_at(0).is_some_and(|c| c.is_ascii_digit()) {
                    self.i += 1;
                }
            }
        }
        let num = &self.src[start..self.i];
        if self.peek_at(0).is_some_and(|c| c.is_ascii_alphabetic()) {
            let us = self.i;
            while self.peek_at(0).is_some_and(|c| c.is_ascii_alphabetic()) {
                self.i += 1;
            }
            let unit = &self.src[us..self.i];
            let per = Timespan::unit_ticks(unit).ok_or_else(|| {
                KqlError::syntax(
                    format!("'{unit}' is not a timespan unit (use d, h, m, s, ms, microsecond or tick)"),
                    Span::new(us, self.i),
                )
            })?;
            let n: f64 = num.parse().unwrap_or(f64::NAN);
            let t = (n * per as f64).round();
            if !t.is_finite() || t.abs() >= i64::MAX as f64 {
                return Err(KqlError::syntax("timespan literal out of range", Span::new(start, self.i)));
            }
            return Ok(TokKind::Timespan(t as i64));
        }
        if real {
            num.parse()
                .map(TokKind::Real)
                .map_err(|_| KqlError::syntax("invalid real literal", Span::new(start, self.i)))
        } else {
            match num.parse::<i64>() {
                Ok(v) => Ok(TokKind::Long(v)),
                // Too big for a long: Kusto reads it as a real.
                Err(_) => Ok(TokKind::Real(num.parse().unwrap_or(f64::INFINITY))),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(s: &str) -> Vec<TokKind> {
        tokenize(s).unwrap().into_iter().map(|t| t.kind).collect()
    }

    fn id(s: &str) -> TokKind {
        TokKind::Ident(s.to_string())
    }

    #[test]
    fn tokens_carry_spans() {
        let src = "T | where x >= 10";
        let toks = tokenize(src).unwrap();
        let texts: Vec<&str> = toks.iter().map(|t| &src[t.span.start..t.span.end]).collect();
        assert_eq!(texts, ["T", "|", "where", "x", ">=", "10", ""]);
        assert_eq!(toks.last().unwrap().kind, TokKind::Eof);
    }

    #[test]
    fn literals() {
        assert_eq!(
            kinds("42 4.5 1e3 0x10 1h 30m 100ms 1.5d 2days"),
            vec![
                TokKind::Long(42),
                TokKind::Real(4.5),
                TokKind::Real(1000.0),
                TokKind::Long(16),
                TokKind::Timespan(36_000_000_000),
                TokKind::Timespan(18_000_000_000),
                TokKind::Timespan(1_000_000),
                TokKind::Timespan(1_296_000_000_000),
                TokKind::Timespan(1_728_000_000_000),
                TokKind::Eof
            ]
        );
        assert_eq!(
            kinds(r#"'a\'b' "c\"d" @'e\f' @"g""h" h'secret'"#),
            vec![
                TokKind::Str("a'b".into()),
                TokKind::Str("c\"d".into()),
                TokKind::Str("e\\f".into()),
                TokKind::Str("g\"h".into()),
                TokKind::Str("secret".into()),
                TokKind::Eof
            ]
        );
    }

    #[test]
    fn range_dots_do_not_make_reals() {
        assert_eq!(
            kinds("(1..5)"),
            vec![
                TokKind::Punct("("),
                TokKind::Long(1),
                TokKind::Punct(".."),
                TokKind::Long(5),
                TokKind::Punct(")"),
                TokKind::Eof
            ]
        );
    }

    #[test]
    fn typed_literals_capture_raw_text() {
        let toks = tokenize("datetime(2026-11-24T10:00:00Z) + dynamic({\"a\": \"(\"})").unwrap();
        match &toks[0].kind {
            TokKind::Typed { ty, raw, raw_span } => {
                assert_eq!(ty, "datetime");
                assert_eq!(raw, "2026-11-24T10:00:00Z");
                assert_eq!(*raw_span, Span::new(9, 29));
            }
            k => panic!("{k:?}"),
        }
        match &toks[2].kind {
            TokKind::Typed { raw, .. } => assert_eq!(raw, "{\"a\": \"(\"}"),
            k => panic!("{k:?}"),
        }
    }

    #[test]
    fn negated_and_tilde_operators_are_single_tokens() {
        assert_eq!(
            kinds("a !has 'x' and b in~ ('y') and c !in~ ('z') and d !contains_cs 'w'"),
            vec![
                id("a"),
                id("!has"),
                TokKind::Str("x".into()),
                id("and"),
                id("b"),
                id("in~"),
                TokKind::Punct("("),
                TokKind::Str("y".into()),
                TokKind::Punct(")"),
                id("and"),
                id("c"),
                id("!in~"),
                TokKind::Punct("("),
                TokKind::Str("z".into()),
                TokKind::Punct(")"),
                id("and"),
                id("d"),
                id("!contains_cs"),
                TokKind::Str("w".into()),
                TokKind::Eof
            ]
        );
    }

    #[test]
    fn comments_are_skipped() {
        assert_eq!(
            kinds("T // all rows\n| take 1"),
            vec![id("T"), TokKind::Punct("|"), id("take"), TokKind::Long(1), TokKind::Eof]
        );
    }

    #[test]
    fn lexical_errors_point_at_the_offender() {
        let e = tokenize("T | where x == 'abc").unwrap_err();
        assert_eq!(e.span(), Some(Span::new(15, 19)));
        let e = tokenize("T | where x > 5q").unwrap_err();
        assert_eq!(e.span(), Some(Span::new(15, 16)));
        let e = tokenize("T | where x # 1").unwrap_err();
        assert_eq!(e.span(), Some(Span::new(12, 13)));
    }
}
