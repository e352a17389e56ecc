//! The ARM resources the tools read, reduced to what they need. Subscriptions are deserialised
//! straight into [`Subscription`]: their keys (`primaryKey`, `secondaryKey`, which Azure never
//! returns on GET but a misbehaving endpoint might) are never even held in memory.

use std::collections::BTreeMap;

use aigw_policy_xml::{SubscriptionFacts, SubscriptionScopeKind};
use serde::Deserialize;

/// What an APIM subscription is scoped to (from its full-id `scope`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Scope {
    /// `/products/{id}`.
    Product(String),
    /// `/apis`: every API, no product.
    AllApis,
    /// `/apis/{id}`: one API, no product.
    Api(String),
    /// The service itself: the built-in all-access `master` subscription.
    Service,
    /// Anything else, as written.
    Unknown(String),
}

impl Scope {
    /// Parses a scope given as a full resource id or a relative path.
    pub fn parse(raw: &str) -> Scope {
        let segs: Vec<&str> = raw.split('/').filter(|s| !s.is_empty()).collect();
        let n = segs.len();
        let is = |i: usize, name: &str| segs[i].eq_ignore_ascii_case(name);
        if n == 0 {
            return Scope::Service;
        }
        if n >= 3 && is(n - 2, "service") && is(n - 3, "Microsoft.ApiManagement") {
            return Scope::Service;
        }
        if n >= 2 && is(n - 2, "products") {
            return Scope::Product(segs[n - 1].to_string());
        }
        if n >= 2 && is(n - 2, "apis") {
            return Scope::Api(segs[n - 1].to_string());
        }
        if is(n - 1, "apis") {
            return Scope::AllApis;
        }
        Scope::Unknown(raw.to_string())
    }

    /// The kind, as reported: `product`, `all_apis`, `api`, `service`, `unknown`.
    pub fn kind(&self) -> &'static str {
        match self {
            Scope::Product(_) => "product",
            Scope::AllApis => "all_apis",
            Scope::Api(_) => "api",
            Scope::Service => "service",
            Scope::Unknown(_) => "unknown",
        }
    }

    /// The product id, for product-scoped subscriptions.
    pub fn product(&self) -> Option<&str> {
        match self {
            Scope::Product(p) => Some(p),
            _ => None,
        }
    }

    /// A short label: `aoai`, `all APIs`, `API x`, `service`.
    pub fn label(&self) -> String {
        match self {
            Scope::Product(p) => p.clone(),
            Scope::AllApis => "all APIs".into(),
            Scope::Api(a) => format!("API {a}"),
            Scope::Service => "service".into(),
            Scope::Unknown(s) => format!("scope {s}"),
        }
    }
}

/// An APIM subscription, without its keys.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Subscription {
    /// The resource name (sid): `context.Subscription.Id`.
    pub id: String,
    /// Display name.
    pub display_name: Option<String>,
    /// `active`, `suspended`, ...
    pub state: Option<String>,
    /// What it is scoped to.
    pub scope: Scope,
    /// The owner's user id (last segment of `ownerId`).
    pub owner: Option<String>,
    /// `createdDate`.
    pub created: Option<String>,
}

#[derive(Deserialize)]
struct SubscriptionJson {
    name: String,
    #[serde(default)]
    properties: SubscriptionProps,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct SubscriptionProps {
    display_name: Option<String>,
    scope: Option<String>,
    owner_id: Option<String>,
    state: Option<String>,
    created_date: Option<String>,
}

impl<'de> Deserialize<'de> for Subscription {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let j = SubscriptionJson::deserialize(d)?;
        let p = j.properties;
        Ok(Subscription {
            id: j.name,
            display_name: p.display_name,
            state: p.state,
            scope: Scope::parse(p.scope.as_deref().unwrap_or("")),
            owner: p
                .owner_id
                .as_deref()
                .and_then(|o| o.trim_end_matches('/').rsplit('/').next())
                .filter(|o| !o.is_empty())
                .map(str::to_string),
            created: p.created_date,
        })
    }
}

impl Subscription {
    /// What the gateway knows about it when evaluating conditions.
    pub fn facts(&self, products: &Products) -> SubscriptionFacts {
        let mut f = match &self.scope {
            Scope::Product(p) => SubscriptionFacts::in_product(&self.id, p),
            Scope::Api(_) => SubscriptionFacts::single_api(&self.id),
            Scope::Service => SubscriptionFacts {
                id: self.id.clone(),
                product_id: None,
                product_name: None,
                is_master: true,
                scope_kind: SubscriptionScopeKind::Service,
            },
            Scope::AllApis | Scope::Unknown(_) => SubscriptionFacts::all_apis(&self.id),
        };
        if let Some(p) = self.scope.product() {
            f.product_name = products.display_name(p).map(str::to_string);
        }
        f
    }
}

/// A resource reduced to its name (APIs, products, named values share the shape).
#[derive(Deserialize, Clone, Debug)]
pub struct Named {
    /// The resource name.
    pub name: String,
    /// Its properties (only the few fields the tools read).
    #[serde(default)]
    pub properties: NamedProps,
}

/// The properties the tools read from APIs, products and named values.
#[derive(Deserialize, Clone, Debug, Default)]
#[serde(rename_all = "camelCase")]
pub struct NamedProps {
    /// Display name (products, named values).
    pub display_name: Option<String>,
    /// `false` for non-current API revisions.
    pub is_current: Option<bool>,
    /// A named value's value (absent for secrets).
    pub value: Option<String>,
    /// Whether a named value is secret.
    pub secret: Option<bool>,
    /// A Key Vault reference (named values).
    pub key_vault: Option<serde_json::Value>,
}

/// The service's APIs (current revisions).
pub fn api_ids(apis: &[Named]) -> Vec<String> {
    apis.iter()
        .filter(|a| a.properties.is_current != Some(false) && !a.name.contains(";rev="))
        .map(|a| a.name.clone())
        .collect()
}

/// Products by id, with display names.
#[derive(Default, Debug, Clone)]
pub struct Products {
    /// Lowercase id → (id as ARM spells it, display name).
    names: BTreeMap<String, (String, Option<String>)>,
}

impl Products {
    /// From the `products` collection.
    pub fn new(items: &[Named]) -> Self {
        Products {
            names: items
                .iter()
                .map(|p| (p.name.to_ascii_lowercase(), (p.name.clone(), p.properties.display_name.clone())))
                .collect(),
        }
    }

    /// The display name of product `id`.
    pub fn display_name(&self, id: &str) -> Option<&str> {
        self.names.get(&id.to_ascii_lowercase())?.1.as_deref()
    }

    /// Every product id, as ARM spells it.
    pub fn ids(&self) -> impl Iterator<Item = &String> {
        self.names.values().map(|(id, _)| id)
    }
}

/// A named value as the tools see it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NamedValue {
    /// The resource name (for `namedValues/{name}`).
    pub name: String,
    /// The display name policies reference as `{{displayName}}`.
    pub display_name: String,
    /// The value, when not secret.
    pub value: Option<String>,
    /// Secret: the value is hidden.
    pub secret: bool,
    /// Backed by Key Vault.
    pub key_vault: bool,
}

/// The service's named values, looked up by display name (case-insensitive, like APIM).
#[derive(Default, Debug, Clone)]
pub struct NamedValues {
    by_display: BTreeMap<String, NamedValue>,
}

impl NamedValues {
    /// From the `namedValues` collection.
    pub fn new(items: &[Named]) -> Self {
        let by_display = items
            .iter()
            .map(|n| {
                let display = n.properties.display_name.clone().unwrap_or_else(|| n.name.clone());
                let secret = n.properties.secret == Some(true);
                (
                    display.to_ascii_lowercase(),
                    NamedValue {
                        name: n.name.clone(),
                        display_name: display,
                        value: if secret { None } else { n.properties.value.clone() },
                        secret,
                        key_vault: n.properties.key_vault.as_ref().is_some_and(|k| !k.is_null()),
                    },
                )
            })
            .collect();
        NamedValues { by_display }
    }

    /// The named value referenced as `{{display}}`.
    pub fn get(&self, display: &str) -> Option<&NamedValue> {
        self.by_display.get(&display.to_ascii_lowercase())
    }

    /// Sets the value of `{{display}}` (to re-check limits after a planned update).
    pub fn set_value(&mut self, display: &str, value: &str) {
        if let Some(nv) = self.by_display.get_mut(&display.to_ascii_lowercase()) {
            nv.value = Some(value.to_string());
        }
    }

    /// The resolver the policy library evaluates with: secrets resolve to nothing.
    pub fn value(&self, display: &str) -> Option<String> {
        self.get(display).and_then(|n| n.value.clone())
    }

    /// Rewrites the library's "named value {{x}} is not defined" for secret named values.
    pub fn explain(&self, reason: &str) -> String {
        let Some(start) = reason.find("named value {{") else {
            return reason.to_string();
        };
        let rest = &reason[start + "named value {{".len()..];
        let Some(end) = rest.find("}}") else {
            return reason.to_string();
        };
        let name = &rest[..end];
        match self.get(name) {
            Some(nv) if nv.secret && reason.contains("is not defined") => reason.replace(
                &format!("named value {{{{{name}}}}} is not defined"),
                &format!("secret named value {{{{{name}}}}} (its value is hidden)"),
            ),
            _ => reason.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SVC: &str = "/subscriptions/0/resourceGroups/rg/providers/Microsoft.ApiManagement/service/apim-sandbox";

    #[test]
    fn scopes_from_full_ids_and_relative_paths() {
        assert_eq!(Scope::parse(&format!("{SVC}/products/aoai")), Scope::Product("aoai".into()));
        assert_eq!(Scope::parse("/products/aoai"), Scope::Product("aoai".into()));
        assert_eq!(Scope::parse(&format!("{SVC}/apis")), Scope::AllApis);
        assert_eq!(Scope::parse("/apis/"), Scope::AllApis);
        assert_eq!(Scope::parse(&format!("{SVC}/apis/inference-api")), Scope::Api("inference-api".into()));
        assert_eq!(Scope::parse(&format!("{SVC}/")), Scope::Service);
        assert_eq!(Scope::parse(SVC), Scope::Service);
        assert_eq!(Scope::parse(""), Scope::Service);
        // A service named "apis" is still the service.
        assert_eq!(
            Scope::parse("/subscriptions/0/resourceGroups/rg/providers/Microsoft.ApiManagement/service/apis"),
            Scope::Service
        );
        assert!(matches!(Scope::parse("/users/x"), Scope::Unknown(_)));
    }

    #[test]
    fn subscriptions_never_keep_keys() {
        let json = format!(
            r#"{{"id":"{SVC}/subscriptions/growth","name":"growth","properties":{{"ownerId":"{SVC}/users/priya-raman","scope":"{SVC}/products/aoai","displayName":"Growth team","state":"active","createdDate":"2025-03-11T09:14:27.113Z","primaryKey":"SECRET-1","secondaryKey":"SECRET-2"}}}}"#
        );
        let s: Subscription = serde_json::from_str(&json).unwrap();
        assert_eq!(s.id, "growth");
        assert_eq!(s.owner.as_deref(), Some("priya-raman"));
        assert_eq!(s.scope, Scope::Product("aoai".into()));
        assert!(!format!("{s:?}").contains("SECRET"));
    }

    #[test]
    fn secret_named_values_resolve_to_nothing_and_are_explained() {
        let items: Vec<Named> = serde_json::from_str(
            r#"[{"name":"tpm-ds","properties":{"displayName":"tpm-data-science","value":"50000","secret":false}},
                {"name":"hidden","properties":{"displayName":"Hidden-TPM","secret":true}}]"#,
        )
        .unwrap();
        let nv = NamedValues::new(&items);
        assert_eq!(nv.value("TPM-Data-Science").as_deref(), Some("50000"));
        assert_eq!(nv.get("tpm-data-science").unwrap().name, "tpm-ds");
        assert_eq!(nv.value("hidden-tpm"), None);
        assert_eq!(
            nv.explain("TPM value at x: named value {{Hidden-TPM}} is not defined"),
            "TPM value at x: secret named value {{Hidden-TPM}} (its value is hidden)"
        );
        assert_eq!(nv.explain("named value {{nope}} is not defined"), "named value {{nope}} is not defined");
    }
}
