//! The seeded sandbox tenant: what every demo, doc and test starts from.
//!
//! Names are fixed (docs and tests rely on them); see the README's table. Keys are random per
//! seed (so no two emulators share keys) but `Store::reset` restores the same seed, keys
//! included. Timestamps are fixed so listings look the same on every run.
//!
//! Where the limits live: one API-scope policy on `inference-api` with a `<choose>` whose
//! `<when>` branches match `context.Subscription.Id` for growth, prod-critical and data-science,
//! then `context.Product?.Id == "aoai"` for everyone else in the product (search, support),
//! each with `llm-token-limit` and `rate-limit-by-key` keyed by subscription id. The
//! data-science TPM is the named value `tpm-data-science`. `master` is in no product and
//! matches no branch, so it is unlimited (as in real tenants).
//!
//! The West Europe Azure OpenAI deployment exists in `State::aoai_deployments` but is not a
//! backend: adding it to the pool is the demo's job.

use serde_json::{Value, json};

use crate::store::{AoaiDeployment, Api, Entity, EtagSeq, Operation, Product, ResourceGroup, Service, State, Table};
use crate::util::random_key;
use crate::validate::policy::normalize;
use crate::{SANDBOX_RESOURCE_GROUP, SANDBOX_SERVICE_NAME, SANDBOX_SUBSCRIPTION_ID, sandbox_service_id};

/// When the sandbox service was created.
pub const SERVICE_CREATED: &str = "2025-02-18T14:03:51.229Z";
/// The East US Azure OpenAI endpoint (a backend).
pub const EASTUS_ENDPOINT: &str = "https://aoai-eastus.openai.azure.com/openai";
/// The West Europe Azure OpenAI endpoint (a deployment, not yet a backend).
pub const WESTEUROPE_ENDPOINT: &str = "https://aoai-westeurope.openai.azure.com/openai";

/// APIM's default global policy, as a new instance has it.
pub const DEFAULT_GLOBAL_POLICY: &str = r#"<!--
	IMPORTANT:
	- Policy elements can appear only within the <inbound>, <outbound>, <backend> section elements.
	- Only the <forward-request> policy element can appear within the <backend> section element.
	- To apply a policy to the incoming request (before it is forwarded to the backend service), place a corresponding policy element within the <inbound> section element.
	- To apply a policy to the outgoing response (before it is sent back to the caller), place a corresponding policy element within the <outbound> section element.
	- To add a policy position the cursor at the desired insertion point and click on the round button associated with the policy.
	- To remove a policy, delete the corresponding policy statement from the policy document.
	- Policies are applied in the order of their appearance, from the top down.
-->
<policies>
	<inbound />
	<backend>
		<forward-request />
	</backend>
	<outbound />
	<on-error />
</policies>"#;

/// The `aoai` product policy: inherits everything; the limits are in the API policy.
pub const AOAI_PRODUCT_POLICY: &str = r#"<!--
	Product: Azure OpenAI (aoai).
	Per-team limits are in the inference-api API policy, keyed by subscription id.
-->
<policies>
	<inbound>
		<base />
	</inbound>
	<backend>
		<base />
	</backend>
	<outbound>
		<base />
	</outbound>
	<on-error>
		<base />
	</on-error>
</policies>"#;

/// The `inference-api` policy: per-team limits, token metrics, routing to the pool with retry.
pub const INFERENCE_API_POLICY: &str = r#"<!--
	inference-api: per-team token (TPM) and request (RPM) limits, routed to the AOAI pool.
	Owner: platform-ai@contoso.com. Change through the platform change process.
	Branches are evaluated top to bottom and the first match wins. Keys outside the aoai
	product (master, /apis-scoped keys) match no branch and are not limited here.
-->
<policies>
	<inbound>
		<base />
		<choose>
			<!-- growth: 200k TPM / 1,200 RPM (raised for the summer launch) -->
			<when condition="@(context.Subscription.Id == &quot;growth&quot;)">
				<llm-token-limit counter-key="@(context.Subscription.Id)" tokens-per-minute="200000" estimate-prompt-tokens="false" remaining-tokens-variable-name="remainingTokens" tokens-consumed-variable-name="consumedTokens" />
				<rate-limit-by-key calls="1200" renewal-period="60" counter-key="@(context.Subscription.Id)" />
			</when>
			<!-- prod-critical: 400k TPM / 2,400 RPM -->
			<when condition='@(context.Subscription.Id == "prod-critical")'>
				<llm-token-limit counter-key="@(context.Subscription.Id)" tokens-per-minute="400000" estimate-prompt-tokens="false" remaining-tokens-variable-name="remainingTokens" tokens-consumed-variable-name="consumedTokens" />
				<rate-limit-by-key calls="2400" renewal-period="60" counter-key="@(context.Subscription.Id)" />
			</when>
			<!-- data-science: TPM from the tpm-data-science named value, 300 RPM -->
			<when condition='@(context.Subscription.Id == "data-science")'>
				<llm-token-limit counter-key="@(context.Subscription.Id)" tokens-per-minute="{{tpm-data-science}}" estimate-prompt-tokens="false" remaining-tokens-variable-name="remainingTokens" tokens-consumed-variable-name="consumedTokens" />
				<rate-limit-by-key calls="300" renewal-period="60" counter-key="@(context.Subscription.Id)" />
			</when>
			<!-- everyone else in aoai (search, support): product default, counted per key -->
			<when condition='@(context.Product?.Id == "aoai")'>
				<llm-token-limit counter-key="@(context.Subscription.Id)" tokens-per-minute="100000" estimate-prompt-tokens="false" remaining-tokens-variable-name="remainingTokens" tokens-consumed-variable-name="consumedTokens" />
				<rate-limit-by-key calls="600" renewal-period="60" counter-key="@(context.Subscription.Id)" />
			</when>
		</choose>
		<llm-emit-token-metric namespace="openai">
			<dimension name="Subscription ID" />
			<dimension name="API ID" />
			<dimension name="Client IP" value="@(context.Request.IpAddress)" />
		</llm-emit-token-metric>
		<set-backend-service backend-id="aoai-pool" />
	</inbound>
	<backend>
		<!-- One fast retry on throttling or an open breaker: the pool picks the next healthy member. -->
		<retry count="1" interval="0" first-fast-retry="true" condition="@(context.Response.StatusCode == 429 || context.Response.StatusCode == 503)">
			<forward-request buffer-request-body="true" />
		</retry>
	</backend>
	<outbound>
		<base />
		<set-header name="x-ratelimit-remaining-tokens" exists-action="override">
			<value>@(context.Variables.GetValueOrDefault<int>("remainingTokens", -1).ToString())</value>
		</set-header>
	</outbound>
	<on-error>
		<base />
		<choose>
			<when condition="@(context.Response.StatusCode == 503 &amp;&amp; context.LastError.Source == &quot;set-backend-service&quot;)">
				<return-response>
					<set-status code="503" reason="Service Unavailable" />
					<set-header name="Retry-After" exists-action="override">
						<value>10</value>
					</set-header>
				</return-response>
			</when>
		</choose>
	</on-error>
</policies>"#;

/// One seeded team subscription.
pub struct TeamSeed {
    pub sid: &'static str,
    pub display_name: &'static str,
    pub owner: &'static str,
    pub created: &'static str,
    /// Tokens per minute as configured (data-science: through the named value).
    pub tpm: u64,
    pub rpm: u64,
}

/// The seeded team subscriptions, all in product `aoai`.
pub const TEAMS: &[TeamSeed] = &[
    TeamSeed {
        sid: "growth",
        display_name: "Growth team",
        owner: "priya-raman",
        created: "2025-03-11T09:14:27.113Z",
        tpm: 200_000,
        rpm: 1_200,
    },
    TeamSeed {
        sid: "prod-critical",
        display_name: "Prod-critical workloads",
        owner: "marcus-lee",
        created: "2025-02-24T16:41:05.870Z",
        tpm: 400_000,
        rpm: 2_400,
    },
    TeamSeed {
        sid: "data-science",
        display_name: "Data Science",
        owner: "lena-fischer",
        created: "2025-04-02T11:08:52.346Z",
        tpm: 50_000,
        rpm: 300,
    },
    TeamSeed {
        sid: "search",
        display_name: "Search relevance",
        owner: "diego-alvarez",
        created: "2025-05-19T13:27:40.502Z",
        tpm: 100_000,
        rpm: 600,
    },
    TeamSeed {
        sid: "support",
        display_name: "Support copilot",
        owner: "aisha-okafor",
        created: "2025-06-30T08:55:13.921Z",
        tpm: 100_000,
        rpm: 600,
    },
];

const USERS: &[(&str, &str, &str, &str, &str)] = &[
    ("priya-raman", "Priya", "Raman", "priya.raman@contoso.com", "2025-03-10T17:02:11.480Z"),
    ("marcus-lee", "Marcus", "Lee", "marcus.lee@contoso.com", "2025-02-24T15:58:40.019Z"),
    ("lena-fischer", "Lena", "Fischer", "lena.fischer@contoso.com", "2025-04-01T08:30:02.765Z"),
    ("diego-alvarez", "Diego", "Alvarez", "diego.alvarez@contoso.com", "2025-05-19T12:11:54.337Z"),
    ("aisha-okafor", "Aisha", "Okafor", "aisha.okafor@contoso.com", "2025-06-27T10:45:29.608Z"),
];

/// The secret named value APIM created for the Application Insights logger's key.
pub const LOGGER_CREDENTIAL_NAMED_VALUE: &str = "Logger-Credentials--67b4a1f2e9c3d05a8b1f7e62";

fn entity(seq: &mut EtagSeq, name: &str, props: Value) -> Entity {
    Entity { name: name.to_string(), etag: seq.issue(), properties: props.as_object().cloned().unwrap_or_default() }
}

fn policy(seq: &mut EtagSeq, text: &str) -> Option<Entity> {
    Some(entity(seq, "policy", json!({ "value": normalize(text) })))
}

fn midnight(ts: &str) -> String {
    format!("{}T00:00:00Z", &ts[..10])
}

/// The whole seeded world: the sandbox service, its resource group, the AOAI deployments.
pub fn sandbox_state() -> State {
    let mut seq = EtagSeq::default();
    let sid = sandbox_service_id();
    let mut svc = Service {
        subscription_id: SANDBOX_SUBSCRIPTION_ID.into(),
        resource_group: SANDBOX_RESOURCE_GROUP.into(),
        name: SANDBOX_SERVICE_NAME.into(),
        etag: seq.issue(),
        location: "East US".into(),
        sku: json!({"name": "StandardV2", "capacity": 1}),
        identity: Some(json!({
            "type": "SystemAssigned",
            "principalId": "5f3c9a1e-7b2d-4c8e-9a61-2f0d4b7e8c13",
            "tenantId": "8d5a7f2c-1e4b-4f6a-9c3d-2b7e5a1f0c48"
        })),
        tags: json!({"env": "sandbox", "owner": "platform-ai", "costCenter": "CC-4410"})
            .as_object()
            .cloned()
            .unwrap_or_default(),
        properties: {
            let mut p = json!({
                "publisherEmail": "platform-ai@contoso.com",
                "publisherName": "Contoso Platform AI",
                "notificationSenderEmail": "apimgmt-noreply@mail.windowsazure.com",
                "hostnameConfigurations": [{
                    "type": "Proxy", "hostName": format!("{SANDBOX_SERVICE_NAME}.azure-api.net"),
                    "negotiateClientCertificate": false, "defaultSslBinding": true, "certificateSource": "BuiltIn"
                }],
                "publicNetworkAccess": "Enabled",
                "virtualNetworkType": "None",
                "disableGateway": false,
                "apiVersionConstraint": {"minApiVersion": null},
            })
            .as_object()
            .cloned()
            .unwrap_or_default();
            for (k, v) in crate::arm::service::computed_properties(SANDBOX_SERVICE_NAME, SERVICE_CREATED, "StandardV2")
            {
                p.insert(k, v);
            }
            p
        },
        policy: None,
        products: Table::new(),
        apis: Table::new(),
        subscriptions: Table::new(),
        backends: Table::new(),
        named_values: Table::new(),
        loggers: Table::new(),
        diagnostics: Table::new(),
        users: Table::new(),
    };
    crate::arm::service::add_builtins(&mut svc, &mut seq, SERVICE_CREATED);
    // The Administrator's address is the publisher's.
    if let Some(admin) = svc.users.get_mut("1") {
        admin.properties.insert("email".into(), json!("platform-ai@contoso.com"));
        admin.properties.insert("identities".into(), json!([{"provider": "Azure", "id": "platform-ai@contoso.com"}]));
    }

    for (id, first, last, email, registered) in USERS {
        let u = entity(
            &mut seq,
            id,
            json!({
                "firstName": first, "lastName": last, "email": email, "state": "active",
                "registrationDate": registered, "note": null,
                "identities": [{"provider": "Azure", "id": email}]
            }),
        );
        svc.users.insert(id.to_string(), u);
    }

    // Named values: the data-science TPM, and the logger credential APIM keeps as a secret.
    svc.named_values.insert(
        "tpm-data-science".into(),
        entity(&mut seq, "tpm-data-science", json!({"displayName": "tpm-data-science", "value": "50000", "secret": false, "tags": ["quota", "data-science"]})),
    );
    svc.named_values.insert(
        LOGGER_CREDENTIAL_NAMED_VALUE.to_ascii_lowercase(),
        entity(
            &mut seq,
            LOGGER_CREDENTIAL_NAMED_VALUE,
            json!({"displayName": LOGGER_CREDENTIAL_NAMED_VALUE, "value": "3f6c2a9e-51d8-4b7a-9e0c-7d4f1b2a8c65", "secret": true, "tags": []}),
        ),
    );

    // Backends: East US with a circuit breaker, in the priority pool.
    svc.backends.insert(
        "aoai-eastus".into(),
        entity(
            &mut seq,
            "aoai-eastus",
            json!({
                "title": "aoai-eastus",
                "description": "Azure OpenAI East US (gpt-4o, 1,000K TPM)",
                "type": "Single",
                "url": EASTUS_ENDPOINT,
                "protocol": "http",
                "tls": {"validateCertificateChain": true, "validateCertificateName": true},
                "circuitBreaker": {"rules": [{
                    "name": "aoai-eastus-breaker",
                    "failureCondition": {
                        "count": 5,
                        "interval": "PT1M",
                        "statusCodeRanges": [{"min": 429, "max": 429}, {"min": 500, "max": 599}],
                        "errorReasons": ["Server errors"]
                    },
                    "tripDuration": "PT5M",
                    "acceptRetryAfter": true
                }]}
            }),
        ),
    );
    svc.backends.insert(
        "aoai-pool".into(),
        entity(
            &mut seq,
            "aoai-pool",
            json!({
                "description": "Azure OpenAI priority pool for inference-api",
                "type": "Pool",
                "pool": {"services": [{"id": format!("{sid}/backends/aoai-eastus"), "priority": 1, "weight": 1}]}
            }),
        ),
    );

    // The inference API and its operation.
    let mut api = Api {
        entity: entity(
            &mut seq,
            "inference-api",
            json!({
                "displayName": "Inference API",
                "apiRevision": "1",
                "description": "Azure OpenAI-compatible inference endpoint behind the AI gateway. Clients send their APIM key in the api-key header.",
                "subscriptionRequired": true,
                "serviceUrl": null,
                "path": "inference/openai",
                "protocols": ["https"],
                "subscriptionKeyParameterNames": {"header": "api-key", "query": "api-key"},
                "isCurrent": true,
                "type": "http"
            }),
        ),
        policy: policy(&mut seq, INFERENCE_API_POLICY),
        operations: Table::new(),
        diagnostics: Table::new(),
    };
    api.operations.insert(
        "chat-completions".into(),
        Operation {
            entity: entity(
                &mut seq,
                "chat-completions",
                json!({
                    "displayName": "Creates a completion for the chat message",
                    "method": "POST",
                    "urlTemplate": "/deployments/{deployment-id}/chat/completions?api-version={api-version}",
                    "templateParameters": [
                        {"name": "deployment-id", "description": "Deployment id of the model which was deployed.", "type": "string", "required": true, "values": []},
                        {"name": "api-version", "description": "The Azure OpenAI API version.", "type": "string", "required": true, "values": []}
                    ],
                    "description": "Creates a model response for the given chat conversation.",
                    "request": {"queryParameters": [], "headers": [], "representations": [{"contentType": "application/json"}]},
                    "responses": [{"statusCode": 200, "description": "OK", "representations": [{"contentType": "application/json"}], "headers": []}],
                    "policies": null
                }),
            ),
            policy: None,
        },
    );
    let logger_id = format!("{sid}/loggers/appinsights-logger");
    api.diagnostics.insert(
        "applicationinsights".into(),
        entity(
            &mut seq,
            "applicationinsights",
            json!({
                "alwaysLog": "allErrors",
                "httpCorrelationProtocol": "W3C",
                "verbosity": "information",
                "logClientIp": true,
                "loggerId": logger_id,
                "sampling": {"samplingType": "fixed", "percentage": 100.0},
                "frontend": {"request": {"headers": [], "body": {"bytes": 0}}, "response": {"headers": [], "body": {"bytes": 0}}},
                "backend": {"request": {"headers": [], "body": {"bytes": 0}}, "response": {"headers": [], "body": {"bytes": 0}}},
                "metrics": true,
                "operationNameFormat": "Name"
            }),
        ),
    );
    svc.apis.insert("inference-api".into(), api);

    // The aoai product, linked to the API.
    let mut aoai = Product {
        entity: entity(
            &mut seq,
            "aoai",
            json!({
                "displayName": "Azure OpenAI",
                "description": "Chat completions on the shared Azure OpenAI capacity (gpt-4o). Per-team limits are set in the Inference API policy.",
                "terms": "Usage is logged per subscription for chargeback. Do not send customer PII in prompts.",
                "subscriptionRequired": true,
                "approvalRequired": true,
                "subscriptionsLimit": null,
                "state": "published"
            }),
        ),
        policy: policy(&mut seq, AOAI_PRODUCT_POLICY),
        api_links: Table::new(),
    };
    aoai.api_links.insert(
        "inference-api".into(),
        entity(&mut seq, "inference-api", json!({"apiId": format!("{sid}/apis/inference-api")})),
    );
    svc.products.insert("aoai".into(), aoai);

    // Team subscriptions in aoai.
    for t in TEAMS {
        let e = entity(
            &mut seq,
            t.sid,
            json!({
                "ownerId": format!("{sid}/users/{}", t.owner),
                "scope": format!("{sid}/products/aoai"),
                "displayName": t.display_name,
                "state": "active",
                "createdDate": t.created,
                "startDate": midnight(t.created),
                "expirationDate": null,
                "endDate": null,
                "notificationDate": null,
                "stateComment": null,
                "allowTracing": false,
                "primaryKey": random_key(),
                "secondaryKey": random_key()
            }),
        );
        svc.subscriptions.insert(t.sid.to_string(), e);
    }

    // Logger (credential held in a secret named value).
    svc.loggers.insert(
        "appinsights-logger".into(),
        entity(
            &mut seq,
            "appinsights-logger",
            json!({
                "loggerType": "applicationInsights",
                "description": "Application Insights appi-ai-gateway (token metrics, request telemetry)",
                "credentials": {"instrumentationKey": format!("{{{{{LOGGER_CREDENTIAL_NAMED_VALUE}}}}}")},
                "isBuffered": true,
                "resourceId": format!("/subscriptions/{SANDBOX_SUBSCRIPTION_ID}/resourceGroups/{SANDBOX_RESOURCE_GROUP}/providers/microsoft.insights/components/appi-ai-gateway")
            }),
        ),
    );

    svc.etag = seq.issue();
    let mut state = State {
        etag_seq: seq,
        resource_groups: Default::default(),
        services: Default::default(),
        aoai_deployments: vec![
            AoaiDeployment {
                account: "aoai-eastus".into(),
                region: "eastus".into(),
                endpoint: EASTUS_ENDPOINT.into(),
                deployment: "gpt-4o".into(),
                model: "gpt-4o".into(),
                model_version: "2024-08-06".into(),
                capacity_tpm: 1_000_000,
                capacity_rpm: 6_000,
            },
            AoaiDeployment {
                account: "aoai-westeurope".into(),
                region: "westeurope".into(),
                endpoint: WESTEUROPE_ENDPOINT.into(),
                deployment: "gpt-4o".into(),
                model: "gpt-4o".into(),
                model_version: "2024-08-06".into(),
                capacity_tpm: 600_000,
                capacity_rpm: 3_600,
            },
        ],
    };
    state.resource_groups.insert(
        format!("{SANDBOX_SUBSCRIPTION_ID}/{SANDBOX_RESOURCE_GROUP}").to_ascii_lowercase(),
        ResourceGroup {
            subscription_id: SANDBOX_SUBSCRIPTION_ID.into(),
            name: SANDBOX_RESOURCE_GROUP.into(),
            location: "eastus".into(),
        },
    );
    state
        .services
        .insert(State::service_key(SANDBOX_SUBSCRIPTION_ID, SANDBOX_RESOURCE_GROUP, SANDBOX_SERVICE_NAME), svc);
    state
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{BackendKind, PolicyScope};

    #[test]
    fn the_sandbox_has_the_documented_tenant() {
        let s = sandbox_state();
        let svc = s.sandbox().unwrap();
        assert_eq!(svc.sku["name"], "StandardV2");
        assert_eq!(svc.location, "East US");
        let subs = svc.subscription_infos();
        let names: Vec<&str> = subs.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["data-science", "growth", "master", "prod-critical", "search", "support"]);
        for t in TEAMS {
            let info = svc.subscription(t.sid).unwrap();
            assert_eq!(info.product_id.as_deref(), Some("aoai"));
            assert_eq!(info.state, "active");
            assert_eq!(info.primary_key.len(), 32);
        }
        let master = svc.subscription("master").unwrap();
        assert!(master.all_apis && master.product_id.is_none());
        assert_eq!(master.scope, format!("{}/", sandbox_service_id()));
        assert_eq!(svc.named_value("tpm-data-science").unwrap().value.as_deref(), Some("50000"));
        let pool = svc.backend("aoai-pool").unwrap();
        assert_eq!(
            pool.kind,
            BackendKind::Pool {
                members: vec![crate::store::PoolMember {
                    backend: "aoai-eastus".into(),
                    priority: Some(1),
                    weight: Some(1)
                }]
            }
        );
        let east = svc.backend("aoai-eastus").unwrap();
        assert_eq!(east.circuit_breaker[0].trip_duration, std::time::Duration::from_secs(300));
        assert_eq!(east.circuit_breaker[0].status_code_ranges, vec![(429, 429), (500, 599)]);
        assert!(svc.backend("aoai-westeurope").is_none());
        assert!(s.aoai_deployments.iter().any(|d| d.endpoint == WESTEUROPE_ENDPOINT));
        assert_eq!(svc.product_api_ids("aoai"), vec!["inference-api".to_string()]);
        let xml = svc.policy_xml(&PolicyScope::Api("inference-api".into())).unwrap();
        assert!(xml.contains("\r\n\t<inbound>"));
        assert!(!xml.replace("\r\n", "").contains('\n'));
        assert!(svc.substitute_named_values(xml).contains("tokens-per-minute=\"50000\""));
    }

    #[test]
    fn every_seed_builds_fresh_keys() {
        let a = sandbox_state();
        let b = sandbox_state();
        assert_ne!(
            a.sandbox().unwrap().subscription("growth").unwrap().primary_key,
            b.sandbox().unwrap().subscription("growth").unwrap().primary_key
        );
    }
}
