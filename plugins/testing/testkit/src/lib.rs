//! Test component: a trivial echo tool (benchmarks, concurrency), a tool that GETs any path it
//! is given (path scoping seen from a plugin), a tool that runs a log query and answers with
//! the host's error as the plugin received it, and write tools that return a plan.

use aigw_pdk::{Error, Guest, Manifest, Outcome, PlanBuilder, ToolSpec, arm, result};
use serde_json::{Value, json};

struct Testkit;

impl Guest for Testkit {
    fn describe() -> Manifest {
        Manifest {
            name: "testkit".into(),
            version: "0.1.0".into(),
            description: "Host test component".into(),
            tools: vec![
                ToolSpec::read(
                    "echo",
                    "Echo the arguments back.",
                    json!({"type": "object", "properties": {"text": {"type": "string", "maxLength": 100000}}, "required": ["text"]}),
                )
                .build(),
                ToolSpec::read(
                    "arm_get",
                    "GET an ARM path relative to the service.",
                    json!({"type": "object", "properties": {"path": {"type": "string"}}, "required": ["path"]}),
                )
                .build(),
                ToolSpec::read(
                    "config_get",
                    "Read a config key.",
                    json!({"type": "object", "properties": {"key": {"type": "string"}}, "required": ["key"]}),
                )
                .build(),
                ToolSpec::read(
                    "query_logs",
                    "Run a KQL query; a query error is answered as a result showing the error the plugin got.",
                    json!({"type": "object", "properties": {"query": {"type": "string"}, "timespan": {"type": "string"}}, "required": ["query"]}),
                )
                .build(),
                ToolSpec::write(
                    "tag_service",
                    "Plan a PATCH of the service's tags.",
                    json!({"type": "object", "properties": {"tag": {"type": "string"}}, "required": ["tag"]}),
                )
                .build(),
                ToolSpec::write(
                    "annotate_policy",
                    "Plan a comment at the top of the inference-api policy's inbound section.",
                    json!({"type": "object", "properties": {"note": {"type": "string"}}, "required": ["note"]}),
                )
                .build(),
                ToolSpec::write(
                    "set_named_values",
                    "Plan one PUT per named value, in order.",
                    json!({"type": "object", "properties": {"values": {"type": "object", "additionalProperties": {"type": "string"}}}, "required": ["values"]}),
                )
                .build(),
            ],
            reads: vec!["service".into(), "backends".into(), "apis".into(), "apis/policies".into(), "namedValues".into(), "logs".into()],
            writes: vec!["service".into(), "apis/policies".into(), "namedValues".into()],
        }
    }

    fn call_tool(name: String, arguments: String) -> Result<Outcome, Error> {
        let args: Value = aigw_pdk::args(&arguments)?;
        match name.as_str() {
            "echo" => Ok(result(args["text"].as_str().unwrap_or_default().to_string(), args)),
            "arm_get" => {
                let resource = arm::get(args["path"].as_str().unwrap_or_default())?;
                Ok(result(format!("etag {:?}", resource.etag), resource.body))
            }
            "config_get" => {
                let value = aigw_pdk::config(args["key"].as_str().unwrap_or_default());
                Ok(result(format!("{value:?}"), json!({ "value": value })))
            }
            "query_logs" => {
                let query = args["query"].as_str().unwrap_or_default();
                match aigw_pdk::query_logs(query, args["timespan"].as_str()) {
                    Ok(body) => Ok(result("ok", json!({ "body": body }))),
                    Err(Error::Upstream(e)) => Ok(result(
                        e.message.clone(),
                        json!({"error": {"status": e.status, "code": e.code, "message": e.message}}),
                    )),
                    Err(other) => Err(other),
                }
            }
            "tag_service" => {
                let service = arm::get("")?;
                let tag = args["tag"].as_str().unwrap_or_default();
                let mut after = service.body.clone();
                after["tags"]["owner"] = json!(tag);
                let diff = aigw_pdk::diff::unified_json("", &service.body, &after);
                Ok(PlanBuilder::new()
                    .patch("", &service, json!({"tags": {"owner": tag}}))
                    .diff(&diff)
                    .build(format!("Tag the service with owner={tag}"), None))
            }
            "annotate_policy" => {
                let path = "apis/inference-api/policies/policy?format=rawxml";
                let policy = arm::get(path)?;
                let xml = policy.body["properties"]["value"].as_str().unwrap_or_default().to_string();
                let note = args["note"].as_str().unwrap_or_default();
                let at = xml
                    .find("<inbound>")
                    .map(|i| i + "<inbound>".len())
                    .ok_or_else(|| Error::Internal("no <inbound>".into()))?;
                let edited = format!("{}<!-- {note} -->{}", &xml[..at], &xml[at..]);
                let diff = aigw_pdk::diff::unified("apis/inference-api/policies/policy", &xml, &edited);
                Ok(PlanBuilder::new()
                    .put(path, Some(&policy), json!({"properties": {"format": "rawxml", "value": edited}}))
                    .diff(&diff)
                    .build(format!("Add the comment {note:?} to the inference-api policy"), None))
            }
            "set_named_values" => {
                let mut plan = PlanBuilder::new();
                let values = args["values"].as_object().cloned().unwrap_or_default();
                for (name, value) in &values {
                    let path = format!("namedValues/{name}");
                    let current = arm::get_optional(&path)?;
                    let body = json!({"properties": {"displayName": name, "value": value, "secret": false}});
                    let before = current.as_ref().map(|c| c.body.clone()).unwrap_or(Value::Null);
                    plan = plan.diff(&aigw_pdk::diff::unified_json(&path, &before, &body)).put(
                        &path,
                        current.as_ref(),
                        body,
                    );
                }
                Ok(plan.build(format!("Set {} named value(s)", values.len()), None))
            }
            other => Err(Error::NotFound(format!("no tool named {other}"))),
        }
    }
}

aigw_pdk::export_plugin!(Testkit);
