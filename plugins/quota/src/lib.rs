//! Built-in plugin `quota`: APIM subscriptions and their token/request limits.
//!
//! * `list_subscriptions`: every subscription with its effective TPM, RPM and token quota and
//!   where each comes from ([`list`]).
//! * `update_quota`: a plan changing exactly one subscription's limits ([`update`]).
//! * `what_if_quota`: a replay of real usage against proposed limits ([`whatif`]).
//!
//! In APIM a quota is not a field of a subscription: it is an attribute in policy XML (or a
//! named value it references). The analysis and the byte-preserving edits are
//! `aigw-policy-xml`'s; this crate reads the tenant, combines the policy scopes, pages, and
//! turns edits into plans. Everything but this file is plain Rust over the [`arm::Arm`] trait
//! and is unit-tested natively against the sandbox tenant's ARM JSON.

pub mod arm;
pub mod limits;
pub mod list;
pub mod model;
pub mod schema;
pub mod tenant;
pub mod update;
pub mod util;
pub mod whatif;

#[cfg(test)]
mod fixtures;
#[cfg(test)]
mod tests;

use aigw_pdk::bindings::aigw::plugin::{arm as host_arm, telemetry};
use aigw_pdk::{Error, Guest, Manifest, Outcome, args, result};

/// The host's imports as an [`arm::Arm`].
struct HostArm;

impl arm::Arm for HostArm {
    fn get_many(&self, paths: &[String]) -> Vec<Result<arm::Resp, Error>> {
        host_arm::get_many(paths)
            .into_iter()
            .map(|r| r.map(|r| arm::Resp { status: r.status, etag: r.etag, body: r.body }))
            .collect()
    }

    fn list(&self, path: &str) -> Result<Vec<String>, Error> {
        host_arm::list(path)
    }

    fn query_logs(&self, query: &str, timespan: Option<&str>) -> Result<String, Error> {
        telemetry::query_logs(query, timespan)
    }
}

struct Quota;

impl Guest for Quota {
    fn describe() -> Manifest {
        schema::manifest()
    }

    fn call_tool(name: String, arguments: String) -> Result<Outcome, Error> {
        match name.as_str() {
            "list_subscriptions" => {
                let (text, value) = list::run(&HostArm, &args(&arguments)?)?;
                Ok(result(text, value))
            }
            "update_quota" => update::run(&HostArm, &args(&arguments)?),
            "what_if_quota" => {
                let (text, value) = whatif::run(&HostArm, &args(&arguments)?)?;
                Ok(result(text, value))
            }
            other => Err(Error::NotFound(format!("the quota plugin has no tool named {other}"))),
        }
    }
}

aigw_pdk::export_plugin!(Quota);
