//! The MCP surface: the server handler, the tool registry, and the transports.

pub mod registry;
pub mod server;
pub mod transport;

pub use server::GatewayServer;
