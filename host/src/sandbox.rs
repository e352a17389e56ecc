//! The sandbox: the same server, pointed at the in-process APIM emulator.
//!
//! Nothing in the host or the plugins knows it is a sandbox except the ARM endpoint and the
//! credential: the emulator listens on a loopback port and the host talks to it over HTTP with
//! the same ARM client it uses for Azure.

use std::net::{Ipv4Addr, SocketAddr};

use aigw_emulator::{Emulator, RunningEmulator};

use crate::arm::{ArmTarget, Credential};

/// The sandbox tenant's Log Analytics workspace id.
pub const SANDBOX_WORKSPACE_ID: &str = "11111111-1111-1111-1111-111111111111";

/// A running sandbox emulator and how to reach it.
pub struct Sandbox {
    pub emulator: RunningEmulator,
    pub target: ArmTarget,
    pub credential: Credential,
}

/// Starts the emulator on `127.0.0.1:port` (0: any free port) with a fresh random token.
pub async fn start(port: u16, api_version: &str) -> anyhow::Result<Sandbox> {
    let token = format!("sandbox-{}", uuid::Uuid::new_v4().simple());
    let emulator = Emulator::new(aigw_emulator::Options::new(token.clone()))?;
    let running = emulator.serve(SocketAddr::from((Ipv4Addr::LOCALHOST, port))).await?;
    tracing::info!("sandbox emulator listening on {}", running.base_url);
    let target = ArmTarget {
        endpoint: running.base_url.clone(),
        service_id: aigw_emulator::sandbox_service_id(),
        api_version: api_version.to_string(),
    };
    Ok(Sandbox { target, credential: Credential::Static(token.into()), emulator: running })
}

/// The server's instructions in sandbox mode: say plainly that nothing reaches Azure.
pub fn instructions(base_url: &str) -> String {
    format!(
        "LOCAL SANDBOX. This server governs a local emulator of Azure API Management ({base_url}), seeded \
         with a demo tenant: service apim-sandbox, API inference-api, product aoai, team subscriptions \
         growth, prod-critical, data-science, search and support, backend pool aoai-pool. Changes you \
         make go to the emulator only; nothing reaches Azure. {}",
        crate::cli::TOOL_GUIDANCE
    )
}
