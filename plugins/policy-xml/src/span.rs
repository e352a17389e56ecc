//! Byte ranges into the original policy text, and line/column conversion for error reports.

use std::fmt;
use std::ops::Range;

/// A half-open byte range `start..end` into the original policy text.
///
/// Every structural item the crate reports (elements, tags, attribute names and values, comments,
/// text) carries a `Span`; edits are expressed as replacements of spans of the original text.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Span {
    /// First byte of the range.
    pub start: usize,
    /// One past the last byte of the range.
    pub end: usize,
}

impl Span {
    /// Creates the span `start..end`.
    pub const fn new(start: usize, end: usize) -> Self {
        Span { start, end }
    }

    /// An empty span at `at` (an insertion point).
    pub const fn empty(at: usize) -> Self {
        Span { start: at, end: at }
    }

    /// The span as a `Range<usize>`, for slicing.
    pub const fn range(self) -> Range<usize> {
        self.start..self.end
    }

    /// Number of bytes covered.
    pub const fn len(self) -> usize {
        self.end - self.start
    }

    /// Whether the span covers no bytes.
    pub const fn is_empty(self) -> bool {
        self.start == self.end
    }

    /// Whether `other` lies entirely inside `self`.
    pub const fn contains(self, other: Span) -> bool {
        self.start <= other.start && other.end <= self.end
    }

    /// The text this span covers in `text`.
    ///
    /// # Panics
    /// If the span is out of bounds or not on character boundaries of `text`.
    pub fn of(self, text: &str) -> &str {
        &text[self.range()]
    }
}

impl fmt::Display for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}..{}", self.start, self.end)
    }
}

/// 1-based line and column (column counted in characters) of byte `offset` in `text`.
///
/// Offsets past the end are clamped to the end; offsets inside a multi-byte character are moved
/// back to its first byte.
pub fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line = before.bytes().filter(|&b| b == b'\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = text[line_start..offset].chars().count() + 1;
    (line, column)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_column_counts_lines_and_chars() {
        let t = "ab\r\ncé d\nx";
        assert_eq!(line_column(t, 0), (1, 1));
        assert_eq!(line_column(t, 4), (2, 1));
        // 'd' is after "cé " (é is two bytes)
        let d = t.find('d').unwrap();
        assert_eq!(line_column(t, d), (2, 4));
        assert_eq!(line_column(t, t.len() + 10), (3, 2));
    }
}
