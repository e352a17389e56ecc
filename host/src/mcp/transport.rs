//! Serving the MCP server over stdio (the default) or streamable HTTP.
//!
//! stdio: stdout carries only protocol messages (logs go to stderr), and the server returns
//! as soon as the client closes stdin.
//! HTTP: bound to loopback unless the operator explicitly allows another address, with rmcp's
//! Host-header allow-list against DNS rebinding.

use std::net::SocketAddr;
use std::sync::Arc;

use rmcp::ServiceExt;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};

use super::GatewayServer;

/// Serves on stdin/stdout until the client closes stdin.
pub async fn serve_stdio(server: GatewayServer) -> anyhow::Result<()> {
    // When stdin and stdout are pipes (how most clients start a server), read and write them
    // on the I/O reactor: tokio's stdin/stdout hand every read and write to a blocking-pool
    // thread, which cost ~40 µs of CPU per tool call (BENCHMARKS.md). Anything else (a
    // terminal, a file, a socket) falls back to those blocking handles.
    let running = server.serve(rmcp::transport::stdio_pipes()).await?;
    let reason = running.waiting().await?;
    tracing::info!("client disconnected ({reason:?}); exiting");
    Ok(())
}

/// Serves streamable HTTP at `http://{addr}/mcp` until Ctrl-C.
pub async fn serve_http(server: GatewayServer, addr: SocketAddr, allow_remote: bool) -> anyhow::Result<()> {
    if !addr.ip().is_loopback() && !allow_remote {
        anyhow::bail!(
            "refusing to serve MCP over HTTP on {addr}: it is not a loopback address. The server holds \
             Azure credentials and has no client authentication; pass --allow-remote-http only behind \
             an authenticating proxy"
        );
    }
    let cancel = tokio_util::sync::CancellationToken::new();
    let mut config = StreamableHttpServerConfig::default();
    config.cancellation_token = cancel.clone();
    if allow_remote {
        config.allowed_hosts.push(addr.ip().to_string());
    }
    let service =
        StreamableHttpService::new(move || Ok(server.clone()), Arc::new(LocalSessionManager::default()), config);
    let router = axum::Router::new().nest_service("/mcp", service);
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    tracing::info!("MCP streamable HTTP listening on http://{bound}/mcp");
    eprintln!("azure-ai-gateway-mcp: MCP endpoint http://{bound}/mcp");
    axum::serve(listener, router)
        .with_graceful_shutdown(async move {
            let _ = tokio::signal::ctrl_c().await;
            cancel.cancel();
        })
        .await?;
    Ok(())
}
