//! Replays Microsoft's published REST examples (`x-ms-examples` of `Azure/azure-rest-api-specs`,
//! kept in `tests/examples/`, see its README for source, commits and licence) against a fresh
//! emulator and checks that the emulator answers like Azure:
//!
//! - **status**: the response status is one the example lists;
//! - **keys**: the response carries every key the example shows, at the top level, in
//!   `properties`, and in the items (and their `properties`) of `value` lists;
//! - **type**: the resource `type` of the answer and of its list items is the example's;
//! - **echo**: the response does not echo a request key that the example's answer leaves out
//!   (write-only input such as a user's `confirmation` or a policy's `format`);
//! - **headers**: an `ETag` on entity reads and writes, and `Location` / `Azure-AsyncOperation`
//!   where the example's answer for that status has them.
//!
//! Each example's path names the service as `rg1/apimService1`; the suite maps it onto the
//! seeded sandbox service (`rg-ai-gateway/apim-sandbox`) and creates what the example expects
//! to exist first (the case's `setup`).
//!
//! Deliberate deviations are listed in [`DEVIATIONS`], and only there, each with its reason.
//! An unlisted failure fails the test; so does a listed deviation that no longer happens, so the
//! list stays true. The test prints a summary (examples, passes, deviations).

mod common;

use std::collections::BTreeSet;
use std::fmt::Write as _;

use aigw_emulator::sandbox_service_id;
use common::Emu;
use reqwest::Method;
use serde_json::Value;

/// What each example exercises. `path` is relative to the service and uses the example's
/// parameter names in braces.
struct Case {
    file: &'static str,
    family: &'static str,
    method: &'static str,
    path: &'static str,
    /// Example parameters sent as query parameters (besides `api-version`).
    query: &'static [&'static str],
    setup: &'static [Setup],
}

/// A prerequisite created before the example runs; it must succeed.
enum Setup {
    /// Send another example's request (its answer is not checked).
    Example(&'static str),
    /// `PUT` this body at this service-relative path.
    Put(&'static str, &'static str),
    /// `DELETE` this service-relative path (`""` is the service itself) with `If-Match: *`.
    Delete(&'static str),
}

/// One check of one example.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Check {
    Status,
    Keys,
    Echo,
    Headers,
    /// The resource `type` (top level and list items) is the example's.
    Type,
}

/// The deliberate deviations from Azure: (example file, check, reason). The one place they are
/// listed; the emulator README points here.
const DEVIATIONS: &[(&str, Check, &str)] = &[
    (
        "ApiManagementCreateApiRevisionFromExistingApi.json",
        Check::Status,
        "API revisions are not emulated: creating 'echo-api;rev=3' is a 400 that says so",
    ),
    (
        "ApiManagementCreateService.json",
        Check::Headers,
        "long-running operations complete synchronously: no Location / Azure-AsyncOperation to poll",
    ),
    (
        "ApiManagementCreateApi.json",
        Check::Headers,
        "long-running operations complete synchronously: no Location / Azure-AsyncOperation to poll",
    ),
    (
        "ApiManagementCreateGraphQLApi.json",
        Check::Headers,
        "long-running operations complete synchronously: no Location / Azure-AsyncOperation to poll",
    ),
    (
        "ApiManagementCreateNamedValue.json",
        Check::Headers,
        "long-running operations complete synchronously: no Location / Azure-AsyncOperation to poll",
    ),
    (
        "ApiManagementCreateNamedValueWithKeyVault.json",
        Check::Headers,
        "long-running operations complete synchronously: no Location / Azure-AsyncOperation to poll",
    ),
];

const NO_SETUP: &[Setup] = &[];
const BACKEND_1_TO_4: &[Setup] = &[
    Setup::Put("/backends/backend-1", r#"{"properties":{"url":"https://backend-1.example.com","protocol":"http"}}"#),
    Setup::Put("/backends/backend-2", r#"{"properties":{"url":"https://backend-2.example.com","protocol":"http"}}"#),
    Setup::Put("/backends/backend-3", r#"{"properties":{"url":"https://backend-3.example.com","protocol":"http"}}"#),
    Setup::Put("/backends/backend-4", r#"{"properties":{"url":"https://backend-4.example.com","protocol":"http"}}"#),
];
const SF_BACKEND: &[Setup] = &[Setup::Example("ApiManagementCreateBackendServiceFabric.json")];
const PROXY_BACKEND: &[Setup] = &[Setup::Example("ApiManagementCreateBackendProxyBackend.json")];

/// API `echo-api` of Microsoft's API and product examples.
const ECHO_API: Setup =
    Setup::Put("/apis/echo-api", r#"{"properties":{"displayName":"Echo API","path":"echo","protocols":["https"]}}"#);
const UNLIMITED: Setup = Setup::Put(
    "/products/unlimited",
    r#"{"properties":{"displayName":"Unlimited","description":"Subscribers have completely unlimited access to the API. Administrator approval is required.","subscriptionRequired":true,"approvalRequired":true,"subscriptionsLimit":1,"state":"published"}}"#,
);
const TESTPRODUCT: Setup = Setup::Put(
    "/products/testproduct",
    r#"{"properties":{"displayName":"Test product","description":"Subscribers have completely unlimited access to the API. Administrator approval is required."}}"#,
);
/// The service-scope `applicationinsights` diagnostic, on logger `applicationinsights`.
const SERVICE_DIAGNOSTIC: &[Setup] = &[
    Setup::Put(
        "/loggers/applicationinsights",
        r#"{"properties":{"loggerType":"applicationInsights","credentials":{"instrumentationKey":"00000000-0000-0000-0000-000000000001"}}}"#,
    ),
    Setup::Put("/diagnostics/applicationinsights", r#"{"properties":{"loggerId":"/loggers/applicationinsights"}}"#),
];
/// A policy document that inherits everything.
const BASE_POLICY: &str = r#"{"properties":{"format":"rawxml","value":"<policies><inbound><base /></inbound><backend><base /></backend><outbound><base /></outbound><on-error><base /></on-error></policies>"}}"#;
/// The SOAP operation of Microsoft's operation get/delete examples.
const SOAP_OPERATION: &[Setup] = &[
    Setup::Put(
        "/apis/57d2ef278aa04f0888cba3f3",
        r#"{"properties":{"displayName":"Fazio","path":"fazio","type":"soap"}}"#,
    ),
    Setup::Put(
        "/apis/57d2ef278aa04f0888cba3f3/operations/57d2ef278aa04f0ad01d6cdc",
        r#"{"properties":{"displayName":"CancelOrder","method":"POST","urlTemplate":"/?soapAction=http://tempuri.org/IFazioService/CancelOrder","templateParameters":[],
            "request":{"description":"IFazioService_CancelOrder_InputMessage","queryParameters":[],"headers":[],"representations":[{"contentType":"text/xml","schemaId":"6980a395-f08b-4a59-8295-1440cbd909b8","typeName":"CancelOrder"}]},
            "responses":[{"statusCode":200,"description":"IFazioService_CancelOrder_OutputMessage","representations":[{"contentType":"text/xml","schemaId":"6980a395-f08b-4a59-8295-1440cbd909b8","typeName":"CancelOrderResponse"}],"headers":[]}]}}"#,
    ),
];
/// Named value `testarmTemplateproperties2` of Microsoft's get/listValue examples.
const PROP_NAME: &[Setup] = &[Setup::Put(
    "/namedValues/testarmTemplateproperties2",
    r#"{"properties":{"displayName":"propName","value":"propValue","tags":["foo","bar"],"secret":false}}"#,
)];
/// The owners and product Microsoft's subscription examples refer to.
const SUBSCRIPTION_PARENTS: &[Setup] = &[
    Setup::Put(
        "/users/5931a75ae4bbd512a88c680b",
        r#"{"properties":{"firstName":"Ada","lastName":"Lovelace","email":"ada@example.com"}}"#,
    ),
    Setup::Put(
        "/users/57127d485157a511ace86ae7",
        r#"{"properties":{"firstName":"Alan","lastName":"Turing","email":"alan@example.com"}}"#,
    ),
    Setup::Put("/products/5600b59475ff190048060002", r#"{"properties":{"displayName":"Unlimited"}}"#),
];
/// `testsub` as Microsoft's update/delete/regenerate examples expect it.
const TESTSUB: &[Setup] = &[
    Setup::Put(
        "/users/5931a75ae4bbd512a88c680b",
        r#"{"properties":{"firstName":"Ada","lastName":"Lovelace","email":"ada@example.com"}}"#,
    ),
    Setup::Put("/products/5600b59475ff190048060002", r#"{"properties":{"displayName":"Unlimited"}}"#),
    Setup::Put(
        "/subscriptions/testsub",
        r#"{"properties":{"displayName":"testsub","scope":"/products/5600b59475ff190048060002","ownerId":"/users/5931a75ae4bbd512a88c680b"}}"#,
    ),
];
/// Subscription `5931a769d8d14f0ad8ce13b8` of Microsoft's get/head/listSecrets examples.
const UNLIMITED_SUB: &[Setup] = &[
    Setup::Put(
        "/users/5931a75ae4bbd512a88c680b",
        r#"{"properties":{"firstName":"Ada","lastName":"Lovelace","email":"ada@example.com"}}"#,
    ),
    Setup::Put("/products/5600b59475ff190048060002", r#"{"properties":{"displayName":"Unlimited"}}"#),
    Setup::Put(
        "/subscriptions/5931a769d8d14f0ad8ce13b8",
        r#"{"properties":{"displayName":"Unlimited","scope":"/products/5600b59475ff190048060002","ownerId":"/users/5931a75ae4bbd512a88c680b","state":"submitted"}}"#,
    ),
];

const fn case(
    file: &'static str,
    family: &'static str,
    method: &'static str,
    path: &'static str,
    setup: &'static [Setup],
) -> Case {
    Case { file, family, method, path, query: &[], setup }
}

const CASES: &[Case] = &[
    // Backends
    case("ApiManagementCreateBackendServiceFabric.json", "backends", "PUT", "/backends/{backendId}", NO_SETUP),
    case("ApiManagementCreateBackendProxyBackend.json", "backends", "PUT", "/backends/{backendId}", NO_SETUP),
    case(
        "ApiManagementCreateBackendWithPriorityBasedLoadBalancer.json",
        "backends",
        "PUT",
        "/backends/{backendId}",
        BACKEND_1_TO_4,
    ),
    case(
        "ApiManagementCreateBackendWithWeightedLoadBalancer.json",
        "backends",
        "PUT",
        "/backends/{backendId}",
        BACKEND_1_TO_4,
    ),
    case("ApiManagementGetBackend.json", "backends", "GET", "/backends/{backendId}", SF_BACKEND),
    case("ApiManagementHeadBackend.json", "backends", "HEAD", "/backends/{backendId}", SF_BACKEND),
    case("ApiManagementUpdateBackend.json", "backends", "PATCH", "/backends/{backendId}", PROXY_BACKEND),
    case("ApiManagementDeleteBackend.json", "backends", "DELETE", "/backends/{backendId}", SF_BACKEND),
    case(
        "ApiManagementListBackends.json",
        "backends",
        "GET",
        "/backends",
        &[
            Setup::Example("ApiManagementCreateBackendServiceFabric.json"),
            Setup::Example("ApiManagementCreateBackendProxyBackend.json"),
        ],
    ),
    case("ApiManagementBackendReconnect.json", "backends", "POST", "/backends/{backendId}/reconnect", PROXY_BACKEND),
    // Named values
    case(
        "ApiManagementGetNamedValueWithKeyVault.json",
        "named values",
        "GET",
        "/namedValues/{namedValueId}",
        &[Setup::Example("ApiManagementCreateNamedValueWithKeyVault.json")],
    ),
    case(
        "ApiManagementListNamedValues.json",
        "named values",
        "GET",
        "/namedValues",
        &[Setup::Example("ApiManagementCreateNamedValueWithKeyVault.json")],
    ),
    case("ApiManagementHeadNamedValue.json", "named values", "HEAD", "/namedValues/{namedValueId}", PROP_NAME),
    case("ApiManagementGetNamedValue.json", "named values", "GET", "/namedValues/{namedValueId}", PROP_NAME),
    case(
        "ApiManagementNamedValueListValue.json",
        "named values",
        "POST",
        "/namedValues/{namedValueId}/listValue",
        PROP_NAME,
    ),
    case(
        "ApiManagementUpdateNamedValue.json",
        "named values",
        "PATCH",
        "/namedValues/{namedValueId}",
        &[Setup::Example("ApiManagementCreateNamedValue.json")],
    ),
    case(
        "ApiManagementDeleteNamedValue.json",
        "named values",
        "DELETE",
        "/namedValues/{namedValueId}",
        &[Setup::Example("ApiManagementCreateNamedValue.json")],
    ),
    case(
        "ApiManagementRefreshNamedValue.json",
        "named values",
        "POST",
        "/namedValues/{namedValueId}/refreshSecret",
        &[Setup::Put(
            "/namedValues/testprop2",
            r#"{"properties":{"displayName":"prop6namekv","secret":true,"tags":["foo","bar"],"keyVault":{"secretIdentifier":"https://rpbvtkeyvaultintegration.vault.azure.net/secrets/msitestingCert","identityClientId":"2d2df842-44d8-4885-8dec-77cc1a984a31"}}}"#,
        )],
    ),
    case("ApiManagementCreateNamedValue.json", "named values", "PUT", "/namedValues/{namedValueId}", NO_SETUP),
    case(
        "ApiManagementCreateNamedValueWithKeyVault.json",
        "named values",
        "PUT",
        "/namedValues/{namedValueId}",
        NO_SETUP,
    ),
    // Service
    case("ApiManagementServiceGetService.json", "service", "GET", "", NO_SETUP),
    // The example creates the service its path names: the sandbox, deleted first.
    case("ApiManagementCreateService.json", "service", "PUT", "", &[Setup::Delete("")]),
    case("ApiManagementUpdateServicePublisherDetails.json", "service", "PATCH", "", NO_SETUP),
    case("ApiManagementServiceDeleteService.json", "service", "DELETE", "", NO_SETUP),
    // APIs
    case("ApiManagementListApis.json", "APIs", "GET", "/apis", &[ECHO_API]),
    case(
        "ApiManagementGetApiContract.json",
        "APIs",
        "GET",
        "/apis/{apiId}",
        &[Setup::Put(
            "/apis/57d1f7558aa04f15146d9d8a",
            r#"{"properties":{"displayName":"Service","path":"schulte","protocols":["https"],"serviceUrl":"https://api.plexonline.com/DataSource/Service.asmx","type":"soap",
                "authenticationSettings":{"oAuth2AuthenticationSettings":[{"authorizationServerId":"authorizationServerId2283","scope":"oauth2scope2580"},{"authorizationServerId":"authorizationServerId2284","scope":"oauth2scope2581"}]}}}"#,
        )],
    ),
    case("ApiManagementCreateApi.json", "APIs", "PUT", "/apis/{apiId}", NO_SETUP),
    case("ApiManagementCreateGraphQLApi.json", "APIs", "PUT", "/apis/{apiId}", NO_SETUP),
    case("ApiManagementCreateApiRevisionFromExistingApi.json", "APIs", "PUT", "/apis/{apiId}", &[ECHO_API]),
    case(
        "ApiManagementHeadApi.json",
        "APIs",
        "HEAD",
        "/apis/{apiId}",
        &[Setup::Put("/apis/57d1f7558aa04f15146d9d8a", r#"{"properties":{"displayName":"Service","path":"schulte"}}"#)],
    ),
    case("ApiManagementListApiOperations.json", "APIs", "GET", "/apis/{apiId}/operations", SOAP_OPERATION),
    case("ApiManagementGetApiOperation.json", "APIs", "GET", "/apis/{apiId}/operations/{operationId}", SOAP_OPERATION),
    case(
        "ApiManagementDeleteApiOperation.json",
        "APIs",
        "DELETE",
        "/apis/{apiId}/operations/{operationId}",
        SOAP_OPERATION,
    ),
    case("ApiManagementUpdateApi.json", "APIs", "PATCH", "/apis/{apiId}", &[ECHO_API]),
    case(
        "ApiManagementCreateApiOperation.json",
        "APIs",
        "PUT",
        "/apis/{apiId}/operations/{operationId}",
        &[Setup::Put(
            "/apis/PetStoreTemplate2",
            r#"{"properties":{"displayName":"Petstore","path":"petstore","protocols":["https"]}}"#,
        )],
    ),
    case(
        "ApiManagementDeleteApi.json",
        "APIs",
        "DELETE",
        "/apis/{apiId}",
        &[Setup::Put(
            "/apis/echo-api",
            r#"{"properties":{"displayName":"Echo API","path":"echo","protocols":["https"]}}"#,
        )],
    ),
    // Policies
    case("ApiManagementCreatePolicy.json", "policies", "PUT", "/policies/{policyId}", NO_SETUP),
    case("ApiManagementGetPolicy.json", "policies", "GET", "/policies/{policyId}", NO_SETUP),
    case("ApiManagementListPolicies.json", "policies", "GET", "/policies", NO_SETUP),
    case("ApiManagementDeletePolicy.json", "policies", "DELETE", "/policies/{policyId}", NO_SETUP),
    case(
        "ApiManagementListApiPolicies.json",
        "policies",
        "GET",
        "/apis/{apiId}/policies",
        &[
            Setup::Put("/apis/5600b59475ff190048040001", r#"{"properties":{"displayName":"Echo","path":"echo"}}"#),
            Setup::Put("/apis/5600b59475ff190048040001/policies/policy", BASE_POLICY),
        ],
    ),
    case(
        "ApiManagementGetApiPolicy.json",
        "policies",
        "GET",
        "/apis/{apiId}/policies/{policyId}",
        &[
            Setup::Put("/apis/5600b59475ff190048040001", r#"{"properties":{"displayName":"Echo","path":"echo"}}"#),
            Setup::Put("/apis/5600b59475ff190048040001/policies/policy", BASE_POLICY),
        ],
    ),
    case(
        "ApiManagementGetProductPolicy.json",
        "policies",
        "GET",
        "/products/{productId}/policies/{policyId}",
        &[
            Setup::Put("/products/kjoshiarmTemplateProduct4", r#"{"properties":{"displayName":"Product 4"}}"#),
            Setup::Put("/products/kjoshiarmTemplateProduct4/policies/policy", BASE_POLICY),
        ],
    ),
    case(
        "ApiManagementGetApiOperationPolicy.json",
        "policies",
        "GET",
        "/apis/{apiId}/operations/{operationId}/policies/{policyId}",
        &[
            Setup::Put("/apis/5600b539c53f5b0062040001", r#"{"properties":{"displayName":"Echo","path":"echo"}}"#),
            Setup::Put(
                "/apis/5600b539c53f5b0062040001/operations/5600b53ac53f5b0062080006",
                r#"{"properties":{"displayName":"Retrieve","method":"GET","urlTemplate":"/resource"}}"#,
            ),
            Setup::Put(
                "/apis/5600b539c53f5b0062040001/operations/5600b53ac53f5b0062080006/policies/policy",
                BASE_POLICY,
            ),
        ],
    ),
    Case {
        file: "ApiManagementGetPolicyFormat.json",
        family: "policies",
        method: "GET",
        path: "/policies/{policyId}",
        query: &["format"],
        setup: NO_SETUP,
    },
    case(
        "ApiManagementCreateApiOperationPolicy.json",
        "policies",
        "PUT",
        "/apis/{apiId}/operations/{operationId}/policies/{policyId}",
        &[
            Setup::Put(
                "/apis/5600b57e7e8880006a040001",
                r#"{"properties":{"displayName":"Echo","path":"echo","protocols":["https"]}}"#,
            ),
            Setup::Put(
                "/apis/5600b57e7e8880006a040001/operations/5600b57e7e8880006a080001",
                r#"{"properties":{"displayName":"Retrieve resource","method":"GET","urlTemplate":"/resource"}}"#,
            ),
        ],
    ),
    case(
        "ApiManagementCreateApiPolicy.json",
        "policies",
        "PUT",
        "/apis/{apiId}/policies/{policyId}",
        &[Setup::Put(
            "/apis/5600b57e7e8880006a040001",
            r#"{"properties":{"displayName":"Echo","path":"echo","protocols":["https"]}}"#,
        )],
    ),
    case(
        "ApiManagementCreateProductPolicy.json",
        "policies",
        "PUT",
        "/products/{productId}/policies/{policyId}",
        &[
            Setup::Put("/products/5702e97e5157a50f48dce801", r#"{"properties":{"displayName":"Starter"}}"#),
            Setup::Put("/namedValues/call-count", r#"{"properties":{"displayName":"call-count","value":"5"}}"#),
        ],
    ),
    // Products
    case("ApiManagementCreateProduct.json", "products", "PUT", "/products/{productId}", NO_SETUP),
    case("ApiManagementListProducts.json", "products", "GET", "/products", &[UNLIMITED]),
    case(
        "ApiManagementListProductApis.json",
        "products",
        "GET",
        "/products/{productId}/apis",
        &[
            Setup::Put("/products/5768181ea40f7eb6c49f6ac7", r#"{"properties":{"displayName":"Product"}}"#),
            Setup::Put(
                "/apis/57681820a40f7eb6c49f6aca",
                r#"{"properties":{"displayName":"api","description":"An API","path":"suffix","serviceUrl":"http://contoso/api"}}"#,
            ),
            Setup::Put("/products/5768181ea40f7eb6c49f6ac7/apis/57681820a40f7eb6c49f6aca", "{}"),
        ],
    ),
    case(
        "ApiManagementListProductSubscriptions.json",
        "products",
        "GET",
        "/products/{productId}/subscriptions",
        &[
            Setup::Put("/products/5600b57e7e8880006a060002", r#"{"properties":{"displayName":"Starter"}}"#),
            Setup::Put(
                "/subscriptions/5600b57e7e8880006a070002",
                r#"{"properties":{"displayName":"Starter","scope":"/products/5600b57e7e8880006a060002","ownerId":"/users/1","state":"active"}}"#,
            ),
        ],
    ),
    case(
        "ApiManagementGetProduct.json",
        "products",
        "GET",
        "/products/{productId}",
        &[Setup::Put(
            "/products/unlimited",
            r#"{"properties":{"displayName":"Unlimited","description":"Subscribers have completely unlimited access to the API. Administrator approval is required.","subscriptionRequired":true,"approvalRequired":true,"subscriptionsLimit":1,"state":"published"}}"#,
        )],
    ),
    case(
        "ApiManagementCreateProductApi.json",
        "products",
        "PUT",
        "/products/{productId}/apis/{apiId}",
        &[TESTPRODUCT, ECHO_API],
    ),
    case(
        "ApiManagementCreateProductApiLink.json",
        "products",
        "PUT",
        "/products/{productId}/apiLinks/{apiLinkId}",
        &[TESTPRODUCT, ECHO_API],
    ),
    case("ApiManagementUpdateProduct.json", "products", "PATCH", "/products/{productId}", &[TESTPRODUCT]),
    case("ApiManagementHeadProduct.json", "products", "HEAD", "/products/{productId}", &[UNLIMITED]),
    Case {
        file: "ApiManagementDeleteProduct.json",
        family: "products",
        method: "DELETE",
        path: "/products/{productId}",
        query: &["deleteSubscriptions"],
        setup: &[TESTPRODUCT],
    },
    case(
        "ApiManagementHeadProductApi.json",
        "products",
        "HEAD",
        "/products/{productId}/apis/{apiId}",
        &[
            Setup::Put("/products/5931a75ae4bbd512a88c680b", r#"{"properties":{"displayName":"Starter"}}"#),
            Setup::Put(
                "/apis/59306a29e4bbd510dc24e5f9",
                r#"{"properties":{"displayName":"Echo","path":"echo","protocols":["https"]}}"#,
            ),
            Setup::Put("/products/5931a75ae4bbd512a88c680b/apis/59306a29e4bbd510dc24e5f9", "{}"),
        ],
    ),
    case(
        "ApiManagementDeleteProductApi.json",
        "products",
        "DELETE",
        "/products/{productId}/apis/{apiId}",
        &[TESTPRODUCT, ECHO_API, Setup::Example("ApiManagementCreateProductApi.json")],
    ),
    case(
        "ApiManagementGetProductApiLink.json",
        "products",
        "GET",
        "/products/{productId}/apiLinks/{apiLinkId}",
        &[TESTPRODUCT, ECHO_API, Setup::Example("ApiManagementCreateProductApiLink.json")],
    ),
    case(
        "ApiManagementDeleteProductApiLink.json",
        "products",
        "DELETE",
        "/products/{productId}/apiLinks/{apiLinkId}",
        &[TESTPRODUCT, ECHO_API, Setup::Example("ApiManagementCreateProductApiLink.json")],
    ),
    case(
        "ApiManagementListProductApiLinks.json",
        "products",
        "GET",
        "/products/{productId}/apiLinks",
        &[
            Setup::Put("/products/product1", r#"{"properties":{"displayName":"Product 1"}}"#),
            ECHO_API,
            Setup::Put("/products/product1/apiLinks/link1", r#"{"properties":{"apiId":"/apis/echo-api"}}"#),
        ],
    ),
    // Loggers and diagnostics
    case("ApiManagementListLoggers.json", "loggers", "GET", "/loggers", NO_SETUP),
    case("ApiManagementCreateAILogger.json", "loggers", "PUT", "/loggers/{loggerId}", NO_SETUP),
    case("ApiManagementCreateEHLogger.json", "loggers", "PUT", "/loggers/{loggerId}", NO_SETUP),
    case(
        "ApiManagementGetLogger.json",
        "loggers",
        "GET",
        "/loggers/{loggerId}",
        &[Setup::Put(
            "/loggers/templateLogger",
            r#"{"properties":{"loggerType":"azureEventHub","description":"testeventhub3again","credentials":{"name":"testeventhub4","connectionString":"Endpoint=sb://eventhubapim.servicebus.windows.net/;SharedAccessKeyName=Sender;SharedAccessKey=xxxx"},"resourceId":"/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg-ai-gateway/providers/Microsoft.EventHub/namespaces/eventhubapim"}}"#,
        )],
    ),
    case(
        "ApiManagementUpdateLogger.json",
        "loggers",
        "PATCH",
        "/loggers/{loggerId}",
        &[Setup::Example("ApiManagementCreateEHLogger.json")],
    ),
    case(
        "ApiManagementDeleteLogger.json",
        "loggers",
        "DELETE",
        "/loggers/{loggerId}",
        &[Setup::Example("ApiManagementCreateAILogger.json")],
    ),
    case("ApiManagementListDiagnostics.json", "diagnostics", "GET", "/diagnostics", SERVICE_DIAGNOSTIC),
    case(
        "ApiManagementUpdateDiagnostic.json",
        "diagnostics",
        "PATCH",
        "/diagnostics/{diagnosticId}",
        SERVICE_DIAGNOSTIC,
    ),
    case(
        "ApiManagementDeleteDiagnostic.json",
        "diagnostics",
        "DELETE",
        "/diagnostics/{diagnosticId}",
        SERVICE_DIAGNOSTIC,
    ),
    case(
        "ApiManagementGetDiagnostic.json",
        "diagnostics",
        "GET",
        "/diagnostics/{diagnosticId}",
        &[
            Setup::Put(
                "/loggers/aisamplingtest",
                r#"{"properties":{"loggerType":"applicationInsights","credentials":{"instrumentationKey":"00000000-0000-0000-0000-000000000001"}}}"#,
            ),
            Setup::Put(
                "/diagnostics/applicationinsights",
                r#"{"properties":{"alwaysLog":"allErrors","httpCorrelationProtocol":"Legacy","logClientIp":true,"loggerId":"/loggers/aisamplingtest","sampling":{"samplingType":"fixed","percentage":100},
                    "frontend":{"request":{"headers":[],"body":{"bytes":100}},"response":{"headers":[],"body":{"bytes":100}}},"backend":{"request":{"headers":[],"body":{"bytes":100}},"response":{"headers":[],"body":{"bytes":100}}}}}"#,
            ),
        ],
    ),
    case(
        "ApiManagementCreateApiDiagnostic.json",
        "diagnostics",
        "PUT",
        "/apis/{apiId}/diagnostics/{diagnosticId}",
        &[
            Setup::Put(
                "/apis/57d1f7558aa04f15146d9d8a",
                r#"{"properties":{"displayName":"Service","path":"schulte"}}"#,
            ),
            Setup::Put(
                "/loggers/applicationinsights",
                r#"{"properties":{"loggerType":"applicationInsights","credentials":{"instrumentationKey":"00000000-0000-0000-0000-000000000001"}}}"#,
            ),
        ],
    ),
    case(
        "ApiManagementCreateDiagnostic.json",
        "diagnostics",
        "PUT",
        "/diagnostics/{diagnosticId}",
        &[Setup::Put("/loggers/azuremonitor", r#"{"properties":{"loggerType":"azureMonitor"}}"#)],
    ),
    // Subscriptions
    case("ApiManagementCreateSubscription.json", "subscriptions", "PUT", "/subscriptions/{sid}", SUBSCRIPTION_PARENTS),
    case("ApiManagementGetSubscription.json", "subscriptions", "GET", "/subscriptions/{sid}", UNLIMITED_SUB),
    case("ApiManagementHeadSubscription.json", "subscriptions", "HEAD", "/subscriptions/{sid}", UNLIMITED_SUB),
    case("ApiManagementListSubscriptions.json", "subscriptions", "GET", "/subscriptions", UNLIMITED_SUB),
    case("ApiManagementUpdateSubscription.json", "subscriptions", "PATCH", "/subscriptions/{sid}", TESTSUB),
    case("ApiManagementDeleteSubscription.json", "subscriptions", "DELETE", "/subscriptions/{sid}", TESTSUB),
    case(
        "ApiManagementSubscriptionListSecrets.json",
        "subscriptions",
        "POST",
        "/subscriptions/{sid}/listSecrets",
        UNLIMITED_SUB,
    ),
    case(
        "ApiManagementSubscriptionRegeneratePrimaryKey.json",
        "subscriptions",
        "POST",
        "/subscriptions/{sid}/regeneratePrimaryKey",
        TESTSUB,
    ),
    // Users
    case("ApiManagementListUsers.json", "users", "GET", "/users", NO_SETUP),
    case(
        "ApiManagementListUserSubscriptions.json",
        "users",
        "GET",
        "/users/{userId}/subscriptions",
        &[
            Setup::Put(
                "/users/57681833a40f7eb6c49f6acf",
                r#"{"properties":{"firstName":"foo","lastName":"bar","email":"foo@example.com"}}"#,
            ),
            Setup::Put("/products/5768181ea40f7eb6c49f6ac7", r#"{"properties":{"displayName":"Product"}}"#),
            Setup::Put(
                "/subscriptions/57681850a40f7eb6c49f6ae3",
                r#"{"properties":{"displayName":"57681850a40f7eb6c49f6ae5","scope":"/products/5768181ea40f7eb6c49f6ac7","ownerId":"/users/57681833a40f7eb6c49f6acf","state":"active"}}"#,
            ),
        ],
    ),
    case(
        "ApiManagementUpdateUser.json",
        "users",
        "PATCH",
        "/users/{userId}",
        &[Setup::Put(
            "/users/5931a75ae4bbd512a88c680b",
            r#"{"properties":{"firstName":"foo","lastName":"bar","email":"foobar@outlook.com"}}"#,
        )],
    ),
    case(
        "ApiManagementGetUser.json",
        "users",
        "GET",
        "/users/{userId}",
        &[Setup::Put(
            "/users/5931a75ae4bbd512a88c680b",
            r#"{"properties":{"firstName":"foo","lastName":"bar","email":"foobar@outlook.com"}}"#,
        )],
    ),
    case("ApiManagementCreateUser.json", "users", "PUT", "/users/{userId}", NO_SETUP),
    case(
        "ApiManagementDeleteUser.json",
        "users",
        "DELETE",
        "/users/{userId}",
        &[Setup::Example("ApiManagementCreateUser.json")],
    ),
];

const EXAMPLE_RG: &str = "rg1";
const EXAMPLE_SERVICE: &str = "apimService1";
const SANDBOX_RG: &str = "rg-ai-gateway";
const SANDBOX_SERVICE: &str = "apim-sandbox";

fn load(file: &str) -> Value {
    let path = format!("{}/tests/examples/{file}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let v: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"));
    map_service(v)
}

/// Maps the example's resource group and service onto the sandbox's, everywhere.
fn map_service(v: Value) -> Value {
    match v {
        Value::String(s) if s == EXAMPLE_RG => Value::String(SANDBOX_RG.into()),
        Value::String(s) if s == EXAMPLE_SERVICE => Value::String(SANDBOX_SERVICE.into()),
        Value::String(s) => Value::String(
            s.replace(&format!("/resourceGroups/{EXAMPLE_RG}/"), &format!("/resourceGroups/{SANDBOX_RG}/"))
                .replace(&format!("/service/{EXAMPLE_SERVICE}"), &format!("/service/{SANDBOX_SERVICE}")),
        ),
        Value::Array(a) => Value::Array(a.into_iter().map(map_service).collect()),
        Value::Object(o) => Value::Object(o.into_iter().map(|(k, v)| (k, map_service(v))).collect()),
        other => other,
    }
}

fn param_str(params: &Value, name: &str) -> String {
    match &params[name] {
        Value::String(s) => s.clone(),
        Value::Null => panic!("example has no parameter '{name}'"),
        other => other.to_string(),
    }
}

fn fill(template: &str, params: &Value) -> String {
    let mut out = String::new();
    let mut rest = template;
    while let Some(i) = rest.find('{') {
        out.push_str(&rest[..i]);
        let j = rest[i..].find('}').expect("closing brace") + i;
        out.push_str(&param_str(params, &rest[i + 1..j]));
        rest = &rest[j + 1..];
    }
    out.push_str(rest);
    out
}

/// Sends `case`'s request as the example describes it.
async fn send(emu: &Emu, case: &Case, example: &Value) -> common::Resp {
    let params = &example["parameters"];
    let mut rel = fill(case.path, params);
    for (i, q) in case.query.iter().enumerate() {
        let sep = if i == 0 { '?' } else { '&' };
        let _ = write!(rel, "{sep}{q}={}", param_str(params, q));
    }
    // The example's own api-version (preview examples use a preview one).
    let version = param_str(params, "api-version");
    let sep = if rel.contains('?') { '&' } else { '?' };
    let url = format!("{}{}{rel}{sep}api-version={version}", emu.running.base_url, sandbox_service_id());
    let method = Method::from_bytes(case.method.as_bytes()).unwrap();
    let body = params.get("parameters");
    let if_match = params.get("If-Match").and_then(Value::as_str);
    let headers: Vec<(&str, &str)> = if_match.map(|m| ("if-match", m)).into_iter().collect();
    emu.call(method, &url, body, &headers).await
}

fn object_keys(v: &Value) -> BTreeSet<String> {
    v.as_object().map(|o| o.keys().cloned().collect()).unwrap_or_default()
}

/// Keys the example shows that `got` lacks, as dotted paths.
fn missing_keys(want: &Value, got: &Value) -> Vec<String> {
    let mut out = Vec::new();
    flat_missing("", want, got, &mut out);
    nested_missing("properties.", &want["properties"], &got["properties"], &mut out);
    // List items: the keys every example item has (keys only some items have depend on their
    // data) must be on every item the emulator returns.
    if let (Some(wv), Some(gv)) = (want["value"].as_array(), got["value"].as_array()) {
        for (prefix, sub) in [("value[].", None), ("value[].properties.", Some("properties"))] {
            let pick = |it: &Value| -> BTreeSet<String> { object_keys(sub.map_or(it, |s| &it[s])) };
            let Some(common) = wv.iter().map(pick).reduce(|a, b| a.intersection(&b).cloned().collect()) else {
                continue;
            };
            let missing: BTreeSet<String> =
                gv.iter().flat_map(|it| common.difference(&pick(it)).cloned().collect::<Vec<_>>()).collect();
            out.extend(missing.into_iter().map(|k| format!("{prefix}{k}")));
        }
    }
    out
}

fn flat_missing(prefix: &str, want: &Value, got: &Value, out: &mut Vec<String>) {
    for k in object_keys(want).difference(&object_keys(got)) {
        out.push(format!("{prefix}{k}"));
    }
}

/// Fields whose keys are data (maps), not schema: their keys are not compared.
const MAPS: &[&str] = &["tags", "customProperties", "userAssignedIdentities", "header", "query"];

/// Keys of `want` missing in `got`, recursing into objects (not arrays, not [`MAPS`]).
fn nested_missing(prefix: &str, want: &Value, got: &Value, out: &mut Vec<String>) {
    let Some(w) = want.as_object() else { return };
    let g = got.as_object();
    for (k, wv) in w {
        match g.and_then(|g| g.get(k)) {
            None => out.push(format!("{prefix}{k}")),
            Some(gv) if wv.is_object() && !MAPS.contains(&k.as_str()) => {
                nested_missing(&format!("{prefix}{k}."), wv, gv, out)
            }
            Some(_) => {}
        }
    }
}

/// Resource types that differ from the example's, top level and in list items.
fn wrong_types(want: &Value, got: &Value) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(t) = want["type"].as_str()
        && got["type"].as_str() != Some(t)
    {
        out.push(format!("type is {} instead of {t}", got["type"]));
    }
    let want_item = want["value"].as_array().and_then(|v| v.first()).and_then(|i| i["type"].as_str());
    if let (Some(t), Some(items)) = (want_item, got["value"].as_array()) {
        for it in items.iter().filter(|it| it["type"].as_str() != Some(t)) {
            out.push(format!("item {} has type {} instead of {t}", it["name"], it["type"]));
        }
    }
    out
}

/// Request keys (top level and `properties`) the response echoes but Azure's answer does not.
fn echoed_keys(request: &Value, want: &Value, got: &Value) -> Vec<String> {
    let mut out = Vec::new();
    let mut cmp = |prefix: &str, r: &Value, w: &Value, g: &Value| {
        let (r, w, g) = (object_keys(r), object_keys(w), object_keys(g));
        for k in r.iter().filter(|k| !w.contains(*k) && g.contains(*k)) {
            out.push(format!("{prefix}{k}"));
        }
    };
    cmp("", request, want, got);
    cmp("properties.", &request["properties"], &want["properties"], &got["properties"]);
    out
}

/// Runs one example; returns the failed checks with what went wrong.
async fn run(case: &Case) -> Vec<(Check, String)> {
    let emu = Emu::start().await;
    for s in case.setup {
        let r = match s {
            Setup::Example(file) => {
                let c = CASES.iter().find(|c| c.file == *file).expect("setup example is a case");
                send(&emu, c, &load(file)).await
            }
            Setup::Put(rel, body) => emu.put(rel, serde_json::from_str(body).unwrap()).await,
            Setup::Delete(rel) => emu.delete(rel, "*").await,
        };
        if r.status >= 300 {
            return vec![(Check::Status, format!("setup failed with {}: {}", r.status, r.text))];
        }
    }
    let example = load(case.file);
    let r = send(&emu, case, &example).await;
    let mut failed = Vec::new();
    let responses = example["responses"].as_object().expect("responses");
    let status = r.status.to_string();
    let Some(want) = responses.get(&status) else {
        let listed: Vec<&String> = responses.keys().collect();
        failed.push((Check::Status, format!("answered {status} (listed: {listed:?}): {}", r.text)));
        return failed;
    };
    if let Some(want_body) = want.get("body") {
        let missing = missing_keys(want_body, &r.body);
        if !missing.is_empty() {
            failed.push((Check::Keys, format!("missing {missing:?} in {}", r.text)));
        }
        let wrong = wrong_types(want_body, &r.body);
        if !wrong.is_empty() {
            failed.push((Check::Type, wrong.join("; ")));
        }
        let request = example["parameters"].get("parameters").cloned().unwrap_or(Value::Null);
        let echoed = echoed_keys(&request, want_body, &r.body);
        if !echoed.is_empty() {
            failed.push((Check::Echo, format!("echoes write-only {echoed:?}")));
        }
    }
    let mut missing_headers = Vec::new();
    let entity = !case.path.ends_with('s') && !matches!(case.method, "DELETE" | "POST");
    if entity && matches!(r.status, 200 | 201) && r.header("etag").is_none() {
        missing_headers.push("ETag".to_string());
    }
    for h in want.get("headers").and_then(Value::as_object).into_iter().flat_map(|h| h.keys()) {
        let lower = h.to_ascii_lowercase();
        if matches!(lower.as_str(), "location" | "azure-asyncoperation") && r.header(&lower).is_none() {
            missing_headers.push(h.clone());
        }
    }
    if !missing_headers.is_empty() {
        failed.push((Check::Headers, format!("missing headers {missing_headers:?}")));
    }
    failed
}

#[tokio::test]
async fn the_emulator_answers_microsofts_published_examples_like_azure() {
    for (file, _, _) in DEVIATIONS {
        assert!(CASES.iter().any(|c| c.file == *file), "deviation for {file}, which is not a case");
    }
    let mut report = String::new();
    let mut problems = Vec::new();
    let (mut passed, mut deviating) = (0, 0);
    for case in CASES {
        let failed = run(case).await;
        let listed: Vec<&(&str, Check, &str)> = DEVIATIONS.iter().filter(|d| d.0 == case.file).collect();
        for (check, why) in &failed {
            if !listed.iter().any(|d| d.1 == *check) {
                problems.push(format!("{} ({:?}): {why}", case.file, check));
            }
        }
        for d in &listed {
            if !failed.iter().any(|(c, _)| *c == d.1) {
                problems.push(format!(
                    "{} ({:?}) passes now: remove its entry from DEVIATIONS ('{}')",
                    case.file, d.1, d.2
                ));
            }
        }
        let unexpected = failed.iter().any(|(c, _)| !listed.iter().any(|d| d.1 == *c));
        let verdict = if failed.is_empty() {
            passed += 1;
            "pass".to_string()
        } else if unexpected {
            "FAIL".to_string()
        } else {
            deviating += 1;
            let checks: Vec<String> = failed.iter().map(|(c, _)| format!("{c:?}")).collect();
            format!("deviation ({})", checks.join(", "))
        };
        let _ = writeln!(report, "  {:<14} {:<62} {verdict}", case.family, case.file);
    }
    let total = CASES.len();
    eprintln!(
        "Microsoft REST examples: {total} examples, {passed} pass, {deviating} with deviations listed ({} entries in DEVIATIONS)\n{report}",
        DEVIATIONS.len()
    );
    assert!(problems.is_empty(), "{} unexpected result(s):\n{}", problems.len(), problems.join("\n"));
}
