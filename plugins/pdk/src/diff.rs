//! Unified diffs for plans, so the user reviews exactly what a write changes.

use similar::TextDiff;

/// A unified diff of `before` → `after`, labelled with `path` (3 lines of context).
/// Empty when the texts are equal.
pub fn unified(path: &str, before: &str, after: &str) -> String {
    if before == after {
        return String::new();
    }
    TextDiff::from_lines(before, after)
        .unified_diff()
        .context_radius(3)
        .header(&format!("a/{path}"), &format!("b/{path}"))
        .to_string()
}

/// A unified diff of two JSON values, pretty-printed with sorted keys.
pub fn unified_json(path: &str, before: &serde_json::Value, after: &serde_json::Value) -> String {
    let pretty = |v: &serde_json::Value| {
        let mut text = serde_json::to_string_pretty(v).unwrap_or_default();
        text.push('\n');
        text
    };
    unified(path, &pretty(before), &pretty(after))
}
