//! Errors of parsing and executing a query, with the position of the offending token.
//!
//! Invariants:
//! - Every error raised while parsing or evaluating a piece of the query carries the byte span of
//!   that piece (`span`); `parse`/`execute`/`run` resolve it to a [`Position`] (1-based line and
//!   column, byte offset) before returning, so callers never see a span without a position.
//! - Errors about the request rather than the query text (a bad `timespan`) carry no position.
//! - The HTTP shape of an error is produced by `response.rs`; this module only classifies.

use std::fmt;

/// A half-open byte range `[start, end)` in the query text.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Default)]
pub struct Span {
    pub start: usize,
    pub end: usize,
}

impl Span {
    pub fn new(start: usize, end: usize) -> Span {
        Span { start, end }
    }
    /// The smallest span covering both.
    pub fn to(self, other: Span) -> Span {
        Span::new(self.start.min(other.start), self.end.max(other.end))
    }
}

/// Where an error is in the query text.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Position {
    /// 1-based line.
    pub line: usize,
    /// 1-based column, counted in characters.
    pub column: usize,
    /// 0-based byte offset from the start of the query.
    pub offset: usize,
}

impl Position {
    /// Resolves a byte offset in `source` to a line and column.
    pub fn locate(source: &str, offset: usize) -> Position {
        let offset = offset.min(source.len());
        let before = &source[..floor_char_boundary(source, offset)];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let column = before[line_start..].chars().count() + 1;
        Position { line, column, offset }
    }
}

fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    while i > 0 && !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// What went wrong.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// The text is not valid KQL (unexpected token, unterminated string, bad literal).
    Syntax,
    /// Valid KQL outside the emulator's subset: an operator, function, join kind or literal
    /// form the emulator does not implement. The message names it.
    Unsupported,
    /// A name (column, table, `let` variable) that does not resolve.
    UnresolvedName,
    /// A well-formed query that is wrong: type mismatches, wrong argument counts, an aggregate
    /// outside `summarize`, a non-constant where a constant is required.
    Semantic,
    /// A bad request parameter (the `timespan`), not a problem in the query text.
    InvalidArgument,
}

/// A query error.
#[derive(Clone, Debug, PartialEq)]
pub struct KqlError {
    kind: ErrorKind,
    message: String,
    span: Option<Span>,
    token: Option<String>,
    position: Option<Position>,
}

impl KqlError {
    pub(crate) fn new(kind: ErrorKind, message: impl Into<String>, span: Option<Span>) -> Self {
        KqlError { kind, message: message.into(), span, token: None, position: None }
    }

    pub(crate) fn syntax(message: impl Into<String>, span: Span) -> Self {
        Self::new(ErrorKind::Syntax, message, Some(span))
    }

    pub(crate) fn unsupported(message: impl Into<String>, span: Span) -> Self {
        Self::new(ErrorKind::Unsupported, message, Some(span))
    }

    pub(crate) fn unresolved(message: impl Into<String>, span: Span) -> Self {
        Self::new(ErrorKind::UnresolvedName, message, Some(span))
    }

    pub(crate) fn semantic(message: impl Into<String>, span: Span) -> Self {
        Self::new(ErrorKind::Semantic, message, Some(span))
    }

    pub(crate) fn invalid_argument(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidArgument, message, None)
    }

    /// Fills in the position and the offending token from the query text. Idempotent.
    pub(crate) fn locate(mut self, source: &str) -> Self {
        if let (Some(span), None) = (self.span, self.position) {
            let start = floor_char_boundary(source, span.start.min(source.len()));
            let end = floor_char_boundary(source, span.end.clamp(start, source.len()));
            self.position = Some(Position::locate(source, start));
            let tok = &source[start..end];
            let tok = if tok.is_empty() { "<EOF>" } else { tok };
            if matches!(self.kind, ErrorKind::Syntax | ErrorKind::Unsupported) {
                // Azure's wording; `pos` there is the 0-based column.
                let p = self.position.unwrap_or(Position { line: 1, column: 1, offset: 0 });
                self.message = format!(
                    "Query could not be parsed at '{tok}' on line [{},{}]: {}",
                    p.line,
                    p.column - 1,
                    self.message
                );
            }
            self.token = Some(tok.to_string());
        }
        self
    }

    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The message. Syntax and unsupported-feature errors read like Azure's
    /// (`Query could not be parsed at 'mv-expand' on line [1,27]: ...`, the second number being
    /// the 0-based column); semantic errors use Kusto's wording without a position.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// Where in the query the error is; `None` for request-level errors.
    pub fn position(&self) -> Option<Position> {
        self.position
    }

    /// The byte span of the offending text, if any.
    pub fn span(&self) -> Option<Span> {
        self.span
    }

    /// The offending text (`<EOF>` at the end of the query), once located.
    pub fn token(&self) -> Option<&str> {
        self.token.as_deref()
    }

    /// The HTTP status the Log Analytics API answers with (always 400 for query errors).
    pub fn http_status(&self) -> u16 {
        400
    }
}

impl fmt::Display for KqlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)?;
        match (self.kind, self.position) {
            (ErrorKind::Syntax | ErrorKind::Unsupported, _) | (_, None) => Ok(()),
            (_, Some(p)) => write!(f, " (line {}, column {})", p.line, p.column),
        }
    }
}

impl std::error::Error for KqlError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_count_lines_and_characters() {
        let src = "T\n| where é == 1\n| mv-expand x";
        let off = src.find("mv-expand").unwrap();
        let p = Position::locate(src, off);
        assert_eq!((p.line, p.column, p.offset), (3, 3, off));
        let off = src.find("==").unwrap();
        // 'é' is two bytes but one column.
        assert_eq!(Position::locate(src, off).column, 11);
    }

    #[test]
    fn located_errors_carry_token_and_position() {
        let src = "T | foo";
        let e = KqlError::syntax("x", Span::new(4, 7)).locate(src);
        assert_eq!(e.token(), Some("foo"));
        assert_eq!(e.position().unwrap().column, 5);
        let e = KqlError::syntax("x", Span::new(7, 7)).locate(src);
        assert_eq!(e.token(), Some("<EOF>"));
    }
}
