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
    // Read and write stdin/stdout on the I/O reactor when they are pipes (Rust, Python, Go
    // clients) or Unix sockets (Node's child_process: Claude Desktop, VS Code, Cursor). tokio's
    // stdin/stdout hand every read and write to a blocking-pool thread, which cost ~40-60 µs
    // of CPU per tool call (BENCHMARKS.md). A terminal or a file keeps those blocking handles.
    #[cfg(unix)]
    let running = match unix_socket_stdio() {
        Some(socket) => server.serve(socket).await?,
        None => server.serve(rmcp::transport::stdio_pipes()).await?,
    };
    #[cfg(not(unix))]
    let running = server.serve(rmcp::transport::stdio_pipes()).await?;
    let reason = running.waiting().await?;
    tracing::info!("client disconnected ({reason:?}); exiting");
    Ok(())
}

/// stdin and stdout as non-blocking tokio streams, when both are Unix sockets. Setting
/// O_NONBLOCK reaches the descriptors' open file descriptions, so this process's fds 0 and 1
/// become non-blocking: fine, since nothing but this transport uses them in stdio mode (logs
/// go to stderr). The client's ends of its socketpairs are separate descriptions.
#[cfg(unix)]
fn unix_socket_stdio() -> Option<(tokio::net::UnixStream, tokio::net::UnixStream)> {
    use std::os::fd::AsFd;
    use std::os::unix::net::UnixStream;
    let stdin = UnixStream::from(std::io::stdin().as_fd().try_clone_to_owned().ok()?);
    let stdout = UnixStream::from(std::io::stdout().as_fd().try_clone_to_owned().ok()?);
    // getsockname fails unless the descriptor is an AF_UNIX socket (not a pipe, tty or file).
    stdin.local_addr().ok()?;
    stdout.local_addr().ok()?;
    let nonblocking = |stream: UnixStream| {
        stream.set_nonblocking(true).ok()?;
        tokio::net::UnixStream::from_std(stream).ok()
    };
    let (stdin, stdout) = (nonblocking(stdin)?, nonblocking(stdout)?);
    tracing::debug!("stdio: serving over the non-blocking Unix sockets of stdin/stdout");
    Some((stdin, stdout))
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
        StreamableHttpService::new(move || Ok(server.for_session()), Arc::new(LocalSessionManager::default()), config);
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
