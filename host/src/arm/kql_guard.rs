//! Refuses Log Analytics queries that reach beyond the configured workspace.
//!
//! Threat: `telemetry::query-logs` runs a plugin's KQL with the *host's* identity, which can
//! often read many workspaces, Application Insights apps and Data Explorer clusters. KQL can
//! name those from inside a query: `workspace()`, `app()`, `resource()` (other Log Analytics
//! or Application Insights scopes), `adx()`, `cluster()` and `database()` (Azure Data
//! Explorer). A plugin granted `logs` is meant to read the one workspace the operator
//! configured, so any call of these functions is refused before the query leaves the host.
//!
//! The check is lexical, and errs on the side of refusing: it skips string literals (`'…'` and
//! `"…"` with backslash escapes, verbatim `@'…'` / `@"…"`, multi-line ```` ```…``` ````) and
//! `//` comments, and refuses every other occurrence of one of the names followed by `(`
//! (spaces, line breaks and comments in between included), whatever its case and whatever
//! precedes it (`cluster('c').database('d')` is refused at `cluster`). A string the scanner
//! cannot close runs to the end of the query, which Log Analytics then rejects as invalid.

use std::fmt;

/// KQL functions that address data outside the configured workspace.
pub const CROSS_SCOPE_FUNCTIONS: &[&str] = &["workspace", "app", "resource", "adx", "cluster", "database"];

/// Why a query was refused: the function and where it was called (1-based line and column,
/// in characters).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KqlRefusal {
    pub function: String,
    pub line: usize,
    pub column: usize,
}

impl fmt::Display for KqlRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "query refused: {}() at line {}, column {} reaches outside the configured Log Analytics \
             workspace; queries may not call {}()",
            self.function,
            self.line,
            self.column,
            CROSS_SCOPE_FUNCTIONS.join("(), ")
        )
    }
}

/// Checks `query`; `Err` names the first cross-scope function call.
pub fn check(query: &str) -> Result<(), KqlRefusal> {
    let bytes = query.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'/' if bytes.get(i + 1) == Some(&b'/') => i = skip_line(bytes, i),
            b'`' if bytes[i..].starts_with(b"```") => i = skip_past(bytes, i + 3, b"```"),
            b'@' if matches!(bytes.get(i + 1), Some(b'\'' | b'"')) => i = skip_verbatim(bytes, i + 1),
            b'\'' | b'"' => i = skip_quoted(bytes, i),
            b if b.is_ascii_alphabetic() || b == b'_' => {
                let start = i;
                while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_') {
                    i += 1;
                }
                let word = &query[start..i];
                if let Some(function) = CROSS_SCOPE_FUNCTIONS.iter().find(|f| f.eq_ignore_ascii_case(word))
                    && bytes.get(skip_blanks(bytes, i)) == Some(&b'(')
                {
                    let (line, column) = position(query, start);
                    return Err(KqlRefusal { function: function.to_string(), line, column });
                }
            }
            // Numbers and timespans (`1d`, `0x1F`) are one token: never a function name.
            b if b.is_ascii_digit() => {
                while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_' || bytes[i] == b'.') {
                    i += 1;
                }
            }
            _ => i += 1,
        }
    }
    Ok(())
}

/// Past the end of the `//` comment starting at `i`.
fn skip_line(bytes: &[u8], i: usize) -> usize {
    bytes[i..].iter().position(|&b| b == b'\n').map_or(bytes.len(), |n| i + n + 1)
}

/// Past the first `end` at or after `from` (the end of the query if there is none).
fn skip_past(bytes: &[u8], from: usize, end: &[u8]) -> usize {
    bytes[from.min(bytes.len())..]
        .windows(end.len())
        .position(|w| w == end)
        .map_or(bytes.len(), |n| from + n + end.len())
}

/// Past a `'…'` or `"…"` string starting at `i`; a backslash escapes the next byte.
fn skip_quoted(bytes: &[u8], i: usize) -> usize {
    let quote = bytes[i];
    let mut j = i + 1;
    while j < bytes.len() {
        match bytes[j] {
            b'\\' => j += 2,
            b if b == quote => return j + 1,
            _ => j += 1,
        }
    }
    bytes.len()
}

/// Past a verbatim string whose quote is at `i`: no escapes, a doubled quote is a quote.
fn skip_verbatim(bytes: &[u8], i: usize) -> usize {
    let quote = bytes[i];
    let mut j = i + 1;
    while j < bytes.len() {
        if bytes[j] == quote {
            if bytes.get(j + 1) == Some(&quote) {
                j += 2;
                continue;
            }
            return j + 1;
        }
        j += 1;
    }
    bytes.len()
}

/// The first index at or after `i` that is neither whitespace nor inside a `//` comment.
fn skip_blanks(bytes: &[u8], mut i: usize) -> usize {
    loop {
        while i < bytes.len() && bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        if bytes[i..].starts_with(b"//") {
            i = skip_line(bytes, i);
        } else {
            return i;
        }
    }
}

/// 1-based line and column (in characters) of byte `at`.
fn position(query: &str, at: usize) -> (usize, usize) {
    let before = &query[..at];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().unwrap_or("").chars().count() + 1;
    (line, column)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(query: &str) -> KqlRefusal {
        check(query).expect_err(query)
    }

    #[test]
    fn it_accepts_queries_of_the_configured_workspace() {
        for query in [
            "ApiManagementGatewayLogs | where TimeGenerated > ago(1d) | summarize count() by ResponseCode",
            "ApiManagementGatewayLogs | extend workspace = 'w' | project workspace, app_name = ApiId",
            "T | where Url has 'workspace(' or Note == \"app('x')\"",
            "T | where Path == @'C:\\app(' | take 1",
            "T // cluster('other').database('db')\n| take 1",
            "T | extend s = ```\nworkspace('x')\n``` | take 1",
            "T | where x == 'it\\'s resource(' | take 1",
            "T | summarize applications = dcount(AppId)",
        ] {
            assert_eq!(check(query), Ok(()), "{query}");
        }
    }

    #[test]
    fn it_refuses_every_cross_scope_function_naming_it_and_its_position() {
        let r = refused("ApiManagementGatewayLogs\n| union workspace('other-ws').AppRequests");
        assert_eq!((r.function.as_str(), r.line, r.column), ("workspace", 2, 9));
        assert!(r.to_string().contains("workspace() at line 2, column 9"), "{r}");
        for (query, function) in [
            ("app('fabrikam').requests", "app"),
            ("resource('/subscriptions/x/resourceGroups/y').T", "resource"),
            ("adx('https://help.kusto.windows.net/Samples').StormEvents", "adx"),
            ("cluster('help').database('Samples').StormEvents", "cluster"),
            ("database('Samples').StormEvents", "database"),
        ] {
            assert_eq!(refused(query).function, function, "{query}");
        }
    }

    #[test]
    fn it_is_not_fooled_by_case_spacing_comments_or_string_tricks() {
        for query in [
            "T | union WORKSPACE ('x').T",
            "T | union workspace // hidden\n ('x').T",
            "T | union workspace\n\t('x').T",
            // A verbatim string has no escapes: it ends at the quote after the backslash.
            "T | where p == @'c:\\' | union workspace('x').T",
            // A doubled quote stays inside a verbatim string; the call after it does not.
            "T | where p == @'it''s' | union app('x').T",
            "T | where u == \"a\\\"b\" | union cluster('c').database('d').T",
        ] {
            assert!(check(query).is_err(), "{query}");
        }
    }

    #[test]
    fn an_unterminated_string_hides_nothing_log_analytics_would_run() {
        // Everything after the open quote is string to the scanner and a syntax error to KQL.
        assert_eq!(check("T | where x == 'open workspace('x')"), Ok(()));
    }
}
