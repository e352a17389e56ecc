//! Test component: offers a tool named `echo`, like `testkit`, to exercise name collisions.

use aigw_pdk::{Error, Guest, Manifest, Outcome, ToolSpec, result};
use serde_json::json;

struct Twin;

impl Guest for Twin {
    fn describe() -> Manifest {
        Manifest {
            name: "twin".into(),
            version: "0.1.0".into(),
            description: "Host test component with a colliding tool name".into(),
            tools: vec![ToolSpec::read("echo", "Echo from the twin.", json!({"type": "object"})).build()],
            reads: vec![],
            writes: vec![],
        }
    }

    fn call_tool(_name: String, arguments: String) -> Result<Outcome, Error> {
        Ok(result("twin", serde_json::from_str(&arguments).unwrap_or_default()))
    }
}

aigw_pdk::export_plugin!(Twin);
