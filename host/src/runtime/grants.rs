//! Which resource kinds a plugin may read and change.
//!
//! Two sides must agree, as in Zed's capability granter: the plugin *declares* the kinds it
//! needs in its manifest, and the operator's config may *narrow* them (never widen). A request
//! is allowed only if its kind is in the effective set. A kind is a path's collection names
//! joined with `/` (see `arm::scope`); `*` in a list matches every kind.

/// Every resource kind a plugin may declare or an operator may list, besides `*`: the ARM
/// collections (and POST actions) under an API Management service that the product uses, as
/// `arm::scope` computes them from a path — collection names at even positions joined with `/`,
/// spelled as ARM spells them (camelCase, matched case-sensitively like every grant), plus
/// `metrics` (the service's Azure Monitor metrics) and `logs` (Log Analytics queries).
///
/// A kind outside this list could never match a request, so declaring one is a typo
/// (`backend`, `namedvalues`) that would only surface as a denial at call time: the loader
/// refuses it at load instead, naming the kind and this list.
pub const KNOWN_KINDS: &[&str] = &[
    "service",
    "apis",
    "apis/operations",
    "apis/policies",
    "apis/operations/policies",
    "apis/diagnostics",
    "apis/revisions",
    "apis/releases",
    "apis/schemas",
    "apis/tags",
    "products",
    "products/apis",
    "products/apiLinks",
    "products/policies",
    "products/groups",
    "products/subscriptions",
    "products/tags",
    "subscriptions",
    "subscriptions/listSecrets",
    "subscriptions/regeneratePrimaryKey",
    "subscriptions/regenerateSecondaryKey",
    "users",
    "users/subscriptions",
    "groups",
    "groups/users",
    "namedValues",
    "namedValues/listValue",
    "namedValues/refreshSecret",
    "backends",
    "backends/reconnect",
    "policies",
    "allPolicies",
    "policyFragments",
    "loggers",
    "diagnostics",
    "caches",
    "tags",
    "gateways",
    "gateways/listDebugCredentials",
    "gateways/listTrace",
    "quotas",
    "quotas/periods",
    "metrics",
    "logs",
];

/// Accepts `*` and the [`KNOWN_KINDS`]; otherwise says which kind is unknown, suggests the
/// closest known one, and lists them all.
pub fn check_known_kind(kind: &str) -> Result<(), String> {
    if kind == "*" || KNOWN_KINDS.contains(&kind) {
        return Ok(());
    }
    let hint = crate::config::closest(kind, KNOWN_KINDS.iter().copied())
        .map(|k| format!("did you mean {k:?}? "))
        .unwrap_or_default();
    Err(format!(
        "resource kind {kind:?} is unknown; {hint}known kinds (case-sensitive, as ARM spells its collections): {}, \
         or \"*\" for all",
        KNOWN_KINDS.join(", ")
    ))
}

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
    fn a_typo_in_a_kind_is_unknown_and_the_refusal_suggests_the_real_one_and_lists_them() {
        let err = check_known_kind("backend").unwrap_err();
        assert!(err.contains("\"backend\"") && err.contains("did you mean \"backends\"?"), "{err}");
        assert!(err.contains("namedValues") && err.contains("apis/operations/policies"), "{err}");
        let err = check_known_kind("namedvalues").unwrap_err();
        assert!(err.contains("did you mean \"namedValues\"?"), "{err}");
        for kind in ["*", "service", "apis/policies", "namedValues", "products/subscriptions", "metrics", "logs"] {
            assert!(check_known_kind(kind).is_ok(), "{kind}");
        }
    }

    #[test]
    fn every_known_kind_is_the_kind_scope_computes_for_a_path_of_it() {
        let service = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.ApiManagement/service/apim";
        for kind in KNOWN_KINDS.iter().filter(|k| !matches!(**k, "service" | "metrics" | "logs")) {
            let path: Vec<String> = kind.split('/').map(|c| format!("{c}/x")).collect();
            let scoped = crate::arm::ScopedPath::resolve(service, &path.join("/")).unwrap();
            assert_eq!(scoped.kind, *kind);
        }
        let metrics = crate::arm::ScopedPath::resolve(service, "providers/Microsoft.Insights/metrics").unwrap();
        assert_eq!(metrics.kind, "metrics");
        assert_eq!(crate::arm::ScopedPath::resolve(service, "").unwrap().kind, "service");
    }

    #[test]
    fn a_wildcard_grant_allows_every_kind() {
        let g = Grants::new("p", &strings(&["*"]), &[], None, None);
        assert!(g.check(Access::Read, "apis/operations/policies", "x").is_ok());
    }
}
