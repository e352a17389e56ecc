//! Example plugin: one read tool, `get_service_info`, that fetches the APIM service resource
//! and answers with its name, region, SKU, gateway URL and state.
//!
//! It is the smallest useful plugin: copy this folder, rename the crate and the tool, and
//! build with `cargo build --target wasm32-wasip2 --release`.

use aigw_pdk::{Error, Guest, Manifest, Outcome, ToolSpec, arm, result};
use serde_json::{Value, json};

struct ServiceInfo;

impl Guest for ServiceInfo {
    fn describe() -> Manifest {
        Manifest {
            name: "service-info".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: "Reads the API Management service this server governs.".into(),
            tools: vec![
                ToolSpec::read(
                    "get_service_info",
                    "Show the API Management service this server governs: name, region, SKU \
                     and capacity, gateway URL, provisioning state and publisher. Use it to \
                     confirm which service you are working on.",
                    json!({"type": "object", "properties": {}, "additionalProperties": false}),
                )
                .title("API Management service")
                .output_schema(json!({
                    "type": "object",
                    "required": ["id", "name", "location", "sku"],
                    "properties": {
                        "id": {"type": "string"},
                        "name": {"type": "string"},
                        "location": {"type": "string"},
                        "sku": {"type": "string"},
                        "capacity": {"type": ["integer", "null"]},
                        "gatewayUrl": {"type": ["string", "null"]},
                        "provisioningState": {"type": ["string", "null"]},
                        "publisherName": {"type": ["string", "null"]}
                    }
                }))
                .build(),
            ],
            reads: vec!["service".into()],
            writes: vec![],
        }
    }

    fn call_tool(name: String, _arguments: String) -> Result<Outcome, Error> {
        match name.as_str() {
            "get_service_info" => get_service_info(),
            other => Err(Error::NotFound(format!("no tool named {other}"))),
        }
    }
}

fn get_service_info() -> Result<Outcome, Error> {
    let service = arm::get("")?.body;
    let text_of = |v: &Value| v.as_str().map(str::to_string);
    let props = &service["properties"];
    let info = json!({
        "id": service["id"],
        "name": service["name"],
        "location": service["location"],
        "sku": service["sku"]["name"],
        "capacity": service["sku"]["capacity"],
        "gatewayUrl": props["gatewayUrl"],
        "provisioningState": props["provisioningState"],
        "publisherName": props["publisherName"],
    });
    let text = format!(
        "{} ({}, {} x{}) — gateway {} — {}",
        text_of(&info["name"]).unwrap_or_default(),
        text_of(&info["location"]).unwrap_or_default(),
        text_of(&info["sku"]).unwrap_or_default(),
        info["capacity"].as_i64().unwrap_or(1),
        text_of(&info["gatewayUrl"]).unwrap_or_else(|| "unknown".into()),
        text_of(&info["provisioningState"]).unwrap_or_else(|| "unknown state".into()),
    );
    Ok(result(text, info))
}

aigw_pdk::export_plugin!(ServiceInfo);
