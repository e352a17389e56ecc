//! Test component built against `aigw:plugin@0.2.0`, a contract version this host does not
//! speak. The host must refuse it at load and name both versions.

wit_bindgen::generate!({ world: "plugin-world", path: "wit" });

use aigw::plugin::types::{Error, Manifest, Outcome};
use exports::aigw::plugin::plugin::Guest;

struct Future;

impl Guest for Future {
    fn describe() -> Manifest {
        Manifest {
            name: "future".into(),
            version: "9.0.0".into(),
            description: "from the future".into(),
            tools: vec![],
            reads: vec![],
            writes: vec![],
        }
    }

    fn call_tool(_name: String, _arguments: String) -> Result<Outcome, Error> {
        Err(Error::Internal("unreachable".into()))
    }
}

export!(Future);
