//! Schemas of the log tables the emulator serves, so it can build tables the way Azure shapes
//! them.
//!
//! Sources: the Azure Monitor table references (`ApiManagementGatewayLogs`,
//! `ApiManagementGatewayLlmLog`, `AppMetrics`) and the classic Application Insights
//! `customMetrics` schema, as summarised in `shared/reference/apim.md` §3.3-3.4.
//!
//! Invariants:
//! - Column names and types are Azure's, in the references' (alphabetical) order; the emulator
//!   relies on the names, never on the order (use `Schema::index_of`).
//! - Each table has a time column ([`time_column`]) that the query API's `timespan` restricts:
//!   `TimeGenerated`, or `timestamp` for the classic `customMetrics`.

use crate::table::{Schema, Table};
use crate::value::ColumnType::{self, *};

pub const GATEWAY_LOGS: &str = "ApiManagementGatewayLogs";
pub const GATEWAY_LLM_LOG: &str = "ApiManagementGatewayLlmLog";
pub const APP_METRICS: &str = "AppMetrics";
pub const CUSTOM_METRICS: &str = "customMetrics";

/// Every table name with a schema here.
pub const TABLE_NAMES: &[&str] = &[GATEWAY_LOGS, GATEWAY_LLM_LOG, APP_METRICS, CUSTOM_METRICS];

const GATEWAY_LOGS_COLUMNS: &[(&str, ColumnType)] = &[
    ("ApiId", String),
    ("ApimSubscriptionId", String),
    ("ApiRevision", String),
    ("BackendId", String),
    ("BackendMethod", String),
    ("BackendProtocol", String),
    ("BackendRequestBody", String),
    ("BackendRequestHeaders", Dynamic),
    ("BackendResponseBody", String),
    ("BackendResponseCode", Int),
    ("BackendResponseHeaders", Dynamic),
    ("BackendTime", Long),
    ("BackendUrl", String),
    ("_BilledSize", Real),
    ("Cache", String),
    ("CacheTime", Long),
    ("CallerIpAddress", String),
    ("Category", String),
    ("ClientProtocol", String),
    ("ClientTime", Long),
    ("ClientTlsVersion", String),
    ("CorrelationId", String),
    ("Errors", Dynamic),
    ("_IsBillable", String),
    ("IsMasterTrace", Bool),
    ("IsRequestSuccess", Bool),
    ("IsTraceAllowed", Bool),
    ("IsTraceExpired", Bool),
    ("IsTraceRequested", Bool),
    ("LastErrorElapsed", Long),
    ("LastErrorMessage", String),
    ("LastErrorReason", String),
    ("LastErrorScope", String),
    ("LastErrorSection", String),
    ("LastErrorSource", String),
    ("Method", String),
    ("OperationId", String),
    ("OperationName", String),
    ("ProductId", String),
    ("Region", String),
    ("RequestBody", String),
    ("RequestHeaders", Dynamic),
    ("RequestSize", Int),
    ("_ResourceId", String),
    ("ResponseBody", String),
    ("ResponseCode", Int),
    ("ResponseHeaders", Dynamic),
    ("ResponseSize", Int),
    ("SourceSystem", String),
    ("_SubscriptionId", String),
    ("TenantId", String),
    ("TimeGenerated", DateTime),
    ("TotalTime", Long),
    ("TraceRecords", Dynamic),
    ("Type", String),
    ("Url", String),
    ("UserId", String),
    ("WorkspaceId", String),
];

const GATEWAY_LLM_LOG_COLUMNS: &[(&str, ColumnType)] = &[
    ("ApiVersion", String),
    ("_BilledSize", Real),
    ("CompletionTokens", Int),
    ("CorrelationId", String),
    ("DeploymentName", String),
    ("_IsBillable", String),
    ("IsStreamCompletion", Bool),
    ("ModelName", String),
    ("OperationName", String),
    ("PromptTokens", Int),
    ("Region", String),
    ("RequestId", String),
    ("RequestMessages", Dynamic),
    ("_ResourceId", String),
    ("ResponseMessages", Dynamic),
    ("SequenceNumber", Int),
    ("SourceSystem", String),
    ("_SubscriptionId", String),
    ("TenantId", String),
    ("TimeGenerated", DateTime),
    ("TotalTokens", Int),
    ("Type", String),
];

const APP_METRICS_COLUMNS: &[(&str, ColumnType)] = &[
    ("AppRoleInstance", String),
    ("AppRoleName", String),
    ("AppVersion", String),
    ("ClientBrowser", String),
    ("ClientCity", String),
    ("ClientCountryOrRegion", String),
    ("ClientIP", String),
    ("ClientModel", String),
    ("ClientOS", String),
    ("ClientStateOrProvince", String),
    ("ClientType", String),
    ("IKey", String),
    ("ItemCount", Int),
    ("Max", Real),
    ("Min", Real),
    ("Name", String),
    ("OperationId", String),
    ("OperationName", String),
    ("ParentId", String),
    ("Properties", Dynamic),
    ("ResourceGUID", String),
    ("_ResourceId", String),
    ("SDKVersion", String),
    ("SessionId", String),
    ("SourceSystem", String),
    ("_SubscriptionId", String),
    ("Sum", Real),
    ("SyntheticSource", String),
    ("TenantId", String),
    ("TimeGenerated", DateTime),
    ("Type", String),
    ("UserAccountId", String),
    ("UserAuthenticatedId", String),
    ("UserId", String),
];

/// Classic Application Insights `customMetrics` (queried through the App Insights query API).
const CUSTOM_METRICS_COLUMNS: &[(&str, ColumnType)] = &[
    ("timestamp", DateTime),
    ("name", String),
    ("value", Real),
    ("valueCount", Int),
    ("valueSum", Real),
    ("valueMin", Real),
    ("valueMax", Real),
    ("valueStdDev", Real),
    ("customDimensions", Dynamic),
    ("operation_Name", String),
    ("operation_Id", String),
    ("operation_ParentId", String),
    ("operation_SyntheticSource", String),
    ("session_Id", String),
    ("user_Id", String),
    ("user_AuthenticatedId", String),
    ("user_AccountId", String),
    ("application_Version", String),
    ("client_Type", String),
    ("client_Model", String),
    ("client_OS", String),
    ("client_IP", String),
    ("client_City", String),
    ("client_StateOrProvince", String),
    ("client_CountryOrRegion", String),
    ("client_Browser", String),
    ("cloud_RoleName", String),
    ("cloud_RoleInstance", String),
    ("appId", String),
    ("appName", String),
    ("iKey", String),
    ("sdkVersion", String),
    ("itemId", String),
    ("itemType", String),
    ("itemCount", Int),
    ("_ResourceId", String),
];

pub fn gateway_logs() -> Schema {
    Schema::from_pairs(GATEWAY_LOGS_COLUMNS)
}

pub fn gateway_llm_log() -> Schema {
    Schema::from_pairs(GATEWAY_LLM_LOG_COLUMNS)
}

pub fn app_metrics() -> Schema {
    Schema::from_pairs(APP_METRICS_COLUMNS)
}

pub fn custom_metrics() -> Schema {
    Schema::from_pairs(CUSTOM_METRICS_COLUMNS)
}

/// The schema of a known table.
pub fn schema_for(table: &str) -> Option<Schema> {
    Some(match table {
        GATEWAY_LOGS => gateway_logs(),
        GATEWAY_LLM_LOG => gateway_llm_log(),
        APP_METRICS => app_metrics(),
        CUSTOM_METRICS => custom_metrics(),
        _ => return None,
    })
}

/// An empty table with the known schema of `name`.
pub fn empty_table(name: &str) -> Option<Table> {
    schema_for(name).map(|s| Table::new(name, s))
}

/// The column the query API's `timespan` filters on: `TimeGenerated`, else `timestamp`, if it
/// is a datetime column.
pub fn time_column(schema: &Schema) -> Option<usize> {
    ["TimeGenerated", "timestamp"]
        .iter()
        .find_map(|n| schema.index_of(n).filter(|&i| schema.columns()[i].ty == ColumnType::DateTime))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schemas_have_the_columns_the_reports_use() {
        let g = gateway_logs();
        for c in [
            "TimeGenerated",
            "CorrelationId",
            "ApimSubscriptionId",
            "ResponseCode",
            "BackendResponseCode",
            "BackendId",
            "Cache",
            "LastErrorReason",
            "ProductId",
        ] {
            assert!(g.index_of(c).is_some(), "{c}");
        }
        let l = gateway_llm_log();
        assert_eq!(l.columns()[l.index_of("TotalTokens").unwrap()].ty, ColumnType::Int);
        for name in TABLE_NAMES {
            let s = schema_for(name).unwrap();
            assert!(time_column(&s).is_some(), "{name}");
        }
        assert_eq!(custom_metrics().columns()[time_column(&custom_metrics()).unwrap()].name, "timestamp");
    }
}
