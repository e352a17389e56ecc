//! azure-ai-gateway-mcp: an MCP server that governs an Azure API Management AI Gateway
//! through sandboxed WebAssembly component plugins.
//!
//! Data flows one way: MCP client → [`mcp`] (tools/list, tools/call, validation) →
//! [`runtime`] (wasmtime, one fresh instance per call, limits, grants) → plugin → host imports
//! → [`arm`] (the only door to Azure) → Azure or the [`sandbox`]'s emulator. Plans that write
//! tools return go through [`changes`]. The host owns credentials, the network, the transport
//! and every write; plugins only read (through scoped imports) and propose.

pub mod arm;
pub mod changes;
pub mod cli;
pub mod config;
pub mod mcp;
pub mod runtime;
pub mod sandbox;
