//! Test component: declares more tools than one plugin may offer; the host must refuse it at
//! load and say why.

use aigw_pdk::{Error, Guest, Manifest, Outcome, ToolSpec, result};
use serde_json::json;

struct Crowded;

impl Guest for Crowded {
    fn describe() -> Manifest {
        Manifest {
            name: "crowded".into(),
            version: "0.1.0".into(),
            description: "Host test component with too many tools".into(),
            tools: (0..200)
                .map(|i| ToolSpec::read(&format!("tool_{i}"), "One of too many.", json!({"type": "object"})).build())
                .collect(),
            reads: vec![],
            writes: vec![],
        }
    }

    fn call_tool(name: String, _arguments: String) -> Result<Outcome, Error> {
        Ok(result(name, json!({})))
    }
}

aigw_pdk::export_plugin!(Crowded);
