//! The MCP surface: the server handler, the tool registry, confirmation, and the transports.

pub mod confirm;
pub mod host_tools;
pub mod pending;
pub mod progress;
pub mod registry;
pub mod server;
pub mod transport;

pub use server::{CallSession, GatewayServer, ServerOptions};
