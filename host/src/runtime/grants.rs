//! Which resource kinds a plugin may read and change.
//!
//! Two sides must agree, as in Zed's capability granter: the plugin *declares* the kinds it
//! needs in its manifest, and the operator's config may *narrow* them (never widen). A request
//! is allowed only if its kind is in the effective set. A kind is a path's collection names
//! joined with `/` (see `arm::scope`); `*` in a list matches every kind.

/// Read or write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Read,
    Write,
}

impl Access {
    fn verb(self) -> &'static str {
        match self {
            Access::Read => "read",
            Access::Write => "change",
        }
    }
}

/// The effective grants of one plugin.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Grants {
    plugin: String,
    reads: Vec<String>,
    writes: Vec<String>,
}

impl Grants {
    /// Intersects what `plugin` declared with what the operator allows (`None`: no narrowing).
    pub fn new(
        plugin: &str,
        declared_reads: &[String],
        declared_writes: &[String],
        operator_reads: Option<&[String]>,
        operator_writes: Option<&[String]>,
    ) -> Self {
        Self {
            plugin: plugin.to_string(),
            reads: narrow(declared_reads, operator_reads),
            writes: narrow(declared_writes, operator_writes),
        }
    }

    /// Allows `kind` for `access`, or says exactly what was refused and why.
    pub fn check(&self, access: Access, kind: &str, path: &str) -> Result<(), String> {
        let granted = match access {
            Access::Read => &self.reads,
            Access::Write => &self.writes,
        };
        if granted.iter().any(|g| g == "*" || g == kind) {
            return Ok(());
        }
        Err(format!(
            "plugin {:?} may not {} {:?} resources (path {:?}): its grant allows {}",
            self.plugin,
            access.verb(),
            kind,
            path,
            if granted.is_empty() { "nothing".to_string() } else { format!("{granted:?}") }
        ))
    }

    /// The kinds granted for reading.
    pub fn reads(&self) -> &[String] {
        &self.reads
    }

    /// The kinds granted for writing.
    pub fn writes(&self) -> &[String] {
        &self.writes
    }
}

fn narrow(declared: &[String], operator: Option<&[String]>) -> Vec<String> {
    match operator {
        None => declared.to_vec(),
        Some(allowed) => {
            let mut kinds: Vec<String> = declared
                .iter()
                .flat_map(|d| {
                    if d == "*" {
                        allowed.to_vec()
                    } else if allowed.iter().any(|a| a == "*" || a == d) {
                        vec![d.clone()]
                    } else {
                        vec![]
                    }
                })
                .collect();
            kinds.dedup();
            kinds
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn it_allows_a_declared_kind_when_the_operator_does_not_narrow() {
        let g = Grants::new("quota", &strings(&["apis/policies"]), &[], None, None);
        assert!(g.check(Access::Read, "apis/policies", "apis/a/policies/policy").is_ok());
    }

    #[test]
    fn it_refuses_an_undeclared_kind_and_names_plugin_kind_and_path() {
        let g = Grants::new("quota", &strings(&["apis/policies"]), &[], None, None);
        let err = g.check(Access::Read, "backends", "backends/x").unwrap_err();
        assert!(err.contains("\"quota\"") && err.contains("\"backends\"") && err.contains("backends/x"), "{err}");
    }

    #[test]
    fn it_refuses_writes_when_only_reads_are_granted() {
        let g = Grants::new("p", &strings(&["backends"]), &[], None, None);
        let err = g.check(Access::Write, "backends", "backends/x").unwrap_err();
        assert!(err.contains("may not change") && err.contains("nothing"), "{err}");
    }

    #[test]
    fn the_operator_can_narrow_but_never_widen() {
        let g = Grants::new("p", &strings(&["backends", "apis"]), &[], Some(&strings(&["apis", "namedValues"])), None);
        assert_eq!(g.reads(), &strings(&["apis"]));
        assert!(g.check(Access::Read, "namedValues", "namedValues/x").is_err());
    }

    #[test]
    fn a_wildcard_declaration_is_narrowed_to_the_operators_list() {
        let g = Grants::new("p", &strings(&["*"]), &strings(&["*"]), Some(&strings(&["service"])), Some(&[]));
        assert_eq!(g.reads(), &strings(&["service"]));
        assert!(g.writes().is_empty());
    }

    #[test]
    fn a_wildcard_grant_allows_every_kind() {
        let g = Grants::new("p", &strings(&["*"]), &[], None, None);
        assert!(g.check(Access::Read, "apis/operations/policies", "x").is_ok());
    }
}
