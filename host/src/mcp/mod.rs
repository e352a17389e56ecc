//! The MCP surface: the server handler, the tool registry, confirmation, prompts, resources,
//! completion, and the transports.

pub mod client_log;
pub mod completion;
pub mod confirm;
pub mod host_tools;
pub mod pending;
pub mod progress;
pub mod prompts;
pub mod registry;
pub mod resources;
pub mod server;
pub mod transport;

pub use server::{CallSession, GatewayServer, ServerOptions};
