//! The command line: `serve` (real Azure), `sandbox`, `emulator`, `plugins list|check`.
//!
//! Every flag has an environment variable, because MCP clients start servers with fixed
//! arguments and operators configure them through the environment.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;

use clap::{Args, Parser, Subcommand};

use crate::arm::{ArmClient, ArmTarget, Credential, LogsClient};
use crate::changes::ChangePipeline;
use crate::changes::journal::Journal;
use crate::config::ConfigFile;
use crate::mcp::{GatewayServer, ServerOptions, transport};
use crate::runtime::loader::describe_cache;
use crate::runtime::{Runtime, RuntimeOptions};

/// What every mode tells the agent about using the tools.
pub const TOOL_GUIDANCE: &str = "Read tools only read. Write tools never change anything by themselves: they \
    return a plan (summary, unified diff, exact ARM writes) that the server applies with If-Match ETags, so a \
    resource changed by someone else since the plan was made is never overwritten. Pass dry_run: true to see \
    the plan without applying it.";

/// Govern an Azure API Management AI Gateway from an AI agent, through sandboxed WebAssembly plugins.
#[derive(Debug, Parser)]
#[command(name = "azure-ai-gateway-mcp", version, about, long_about = None)]
#[command(after_help = "Without a command, `serve` runs (stdio MCP server against Azure).\n\
Start with `azure-ai-gateway-mcp sandbox` to try it against the built-in emulator.")]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Options every command understands.
#[derive(Debug, Clone, Args)]
pub struct GlobalArgs {
    /// Configuration file (TOML): per-plugin limits, prefixes, grants and settings.
    /// Default: the user's config directory, azure-ai-gateway-mcp/config.toml.
    #[arg(long, global = true, env = "AIGW_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Directory of plugin components (*.wasm) to load besides the built-ins.
    /// Default: the user's data directory, azure-ai-gateway-mcp/plugins.
    #[arg(long, global = true, env = "AIGW_PLUGINS_DIR", value_name = "DIR")]
    pub plugins: Option<PathBuf>,
    /// Where compiled plugins are cached. Default: the user's cache directory.
    #[arg(long, global = true, env = "AIGW_CACHE_DIR", value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,
    /// Compile every plugin at start instead of using the compile cache.
    #[arg(long, global = true, env = "AIGW_NO_COMPILE_CACHE", value_parser = clap::builder::BoolishValueParser::new(), action = clap::ArgAction::SetTrue)]
    pub no_compile_cache: bool,
    /// Log filter for stderr (error, warn, info, debug, trace, or a tracing directive).
    #[arg(long, global = true, env = "AIGW_LOG", default_value = "info", value_name = "FILTER")]
    pub log: String,
    /// Threads running MCP traffic and plugin calls. Default: 1 for a stdio server (one client;
    /// each extra thread adds wake-ups to every call, see BENCHMARKS.md), one per CPU for
    /// HTTP and the other commands. Heavy emulator and journal work runs on separate threads.
    #[arg(long, global = true, env = "AIGW_WORKER_THREADS", value_name = "N", value_parser = clap::value_parser!(u16).range(1..=256))]
    pub worker_threads: Option<u16>,
}

impl Cli {
    /// How many async worker threads to start (see [`GlobalArgs::worker_threads`]).
    pub fn worker_threads(&self) -> usize {
        if let Some(n) = self.global.worker_threads {
            return n.into();
        }
        let stdio = match &self.command {
            None => true,
            Some(Command::Serve(args)) => args.server.http.is_none(),
            Some(Command::Sandbox(args)) => args.server.http.is_none(),
            Some(_) => false,
        };
        if stdio { 1 } else { std::thread::available_parallelism().map_or(2, |n| n.get()) }
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve MCP for a real API Management service (the default).
    Serve(ServeArgs),
    /// Serve MCP against the built-in emulator, seeded with a demo tenant. Nothing reaches Azure.
    Sandbox(SandboxArgs),
    /// Run the APIM emulator alone (ARM on a loopback port), for scripts and other clients.
    Emulator(EmulatorArgs),
    /// Inspect plugins.
    #[command(subcommand)]
    Plugins(PluginsCommand),
}

/// How the MCP server is exposed.
#[derive(Debug, Clone, Args)]
pub struct ServerArgs {
    /// Serve streamable HTTP on ADDR (e.g. 127.0.0.1:8080) at /mcp instead of stdio.
    #[arg(long, env = "AIGW_HTTP", value_name = "ADDR")]
    pub http: Option<SocketAddr>,
    /// Allow --http on a non-loopback address (the server has no client authentication).
    #[arg(long, env = "AIGW_ALLOW_REMOTE_HTTP", value_parser = clap::builder::BoolishValueParser::new(), action = clap::ArgAction::SetTrue)]
    pub allow_remote_http: bool,
    /// Hide write tools and refuse writes.
    #[arg(long, env = "AIGW_READ_ONLY", value_parser = clap::builder::BoolishValueParser::new(), action = clap::ArgAction::SetTrue)]
    pub read_only: bool,
    /// Apply plans without asking the user. Every write it lets through is logged as a warning.
    #[arg(long, env = "AIGW_DANGEROUSLY_SKIP_CONFIRMATION", value_parser = clap::builder::BoolishValueParser::new(), action = clap::ArgAction::SetTrue)]
    pub dangerously_skip_confirmation: bool,
    /// The change journal (JSON Lines). Default: the user's data directory (serve), a
    /// temporary file per run (sandbox, whose emulator starts fresh each time).
    #[arg(long, env = "AIGW_JOURNAL", value_name = "FILE")]
    pub journal: Option<PathBuf>,
    /// ARM api-version used when a plugin does not give one.
    #[arg(long, env = "AIGW_API_VERSION", default_value = "2024-05-01")]
    pub api_version: String,
}

#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub server: ServerArgs,
    /// Resource id of the API Management service to govern
    /// (/subscriptions/SUB/resourceGroups/RG/providers/Microsoft.ApiManagement/service/NAME).
    #[arg(long, env = "AIGW_SERVICE_ID", value_name = "ID")]
    pub service_id: Option<String>,
    /// Azure subscription of the service (with --resource-group and --service-name, instead of --service-id).
    #[arg(long, env = "AZURE_SUBSCRIPTION_ID")]
    pub subscription_id: Option<String>,
    /// Resource group of the service.
    #[arg(long, env = "AZURE_RESOURCE_GROUP")]
    pub resource_group: Option<String>,
    /// Name of the API Management service.
    #[arg(long, env = "APIM_SERVICE_NAME")]
    pub service_name: Option<String>,
    /// Azure Resource Manager endpoint (sovereign clouds differ).
    #[arg(long, env = "AIGW_ARM_ENDPOINT", default_value = "https://management.azure.com")]
    pub arm_endpoint: String,
    /// Log Analytics workspace (id) holding the service's gateway logs, for log queries.
    #[arg(long, env = "AIGW_LOGS_WORKSPACE_ID")]
    pub logs_workspace_id: Option<String>,
    /// Log Analytics query endpoint.
    #[arg(long, env = "AIGW_LOGS_ENDPOINT", default_value = "https://api.loganalytics.io")]
    pub logs_endpoint: String,
}

#[derive(Debug, Clone, Args)]
pub struct SandboxArgs {
    #[command(flatten)]
    pub server: ServerArgs,
    /// Port of the in-process emulator on 127.0.0.1 (default: any free port).
    #[arg(long, env = "AIGW_EMULATOR_PORT", default_value_t = 0)]
    pub emulator_port: u16,
}

#[derive(Debug, Clone, Args)]
pub struct EmulatorArgs {
    /// Port on 127.0.0.1.
    #[arg(long, env = "AIGW_EMULATOR_PORT", default_value_t = 8480)]
    pub port: u16,
    /// Bearer token clients must send (default: a random one, printed at start).
    #[arg(long, env = "AIGW_EMULATOR_TOKEN")]
    pub token: Option<String>,
    /// Keep the emulator's state in FILE across restarts.
    #[arg(long, env = "AIGW_EMULATOR_STATE", value_name = "FILE")]
    pub state: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum PluginsCommand {
    /// List the built-in and dropped-in plugins, their tools and grants, and any that failed to load.
    List,
    /// Check a plugin file: contract version, imports, manifest and schemas; print its tools.
    Check {
        /// The plugin component (.wasm).
        file: PathBuf,
    },
}

impl GlobalArgs {
    fn runtime_options(&self, config: ConfigFile) -> RuntimeOptions {
        RuntimeOptions {
            plugins_dir: Some(self.plugins.clone().unwrap_or_else(default_plugins_dir)),
            cache_dir: if self.no_compile_cache {
                None
            } else {
                Some(self.cache_dir.clone().unwrap_or_else(default_cache_dir))
            },
            config,
            arm: None,
            logs: None,
            builtins: true,
            extra_files: Vec::new(),
        }
    }

    fn config(&self) -> anyhow::Result<ConfigFile> {
        match &self.config {
            Some(path) => ConfigFile::load(path, true),
            None => ConfigFile::load(&default_config_path(), false),
        }
    }
}

/// `~/.local/share/azure-ai-gateway-mcp/plugins` on Linux (the platform's data directory).
pub fn default_plugins_dir() -> PathBuf {
    dirs::data_dir().unwrap_or_else(std::env::temp_dir).join("azure-ai-gateway-mcp").join("plugins")
}

fn default_cache_dir() -> PathBuf {
    dirs::cache_dir().unwrap_or_else(std::env::temp_dir).join("azure-ai-gateway-mcp").join("compiled")
}

fn default_journal_path() -> PathBuf {
    dirs::data_dir().unwrap_or_else(std::env::temp_dir).join("azure-ai-gateway-mcp").join("journal.jsonl")
}

fn default_config_path() -> PathBuf {
    dirs::config_dir().unwrap_or_else(std::env::temp_dir).join("azure-ai-gateway-mcp").join("config.toml")
}

/// Runs the parsed command line.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let global = cli.global;
    match cli.command {
        None => {
            let args = ServeArgs::try_parse_from_env()?;
            serve(global, args).await
        }
        Some(Command::Serve(args)) => serve(global, args).await,
        Some(Command::Sandbox(args)) => sandbox(global, args).await,
        Some(Command::Emulator(args)) => emulator(args).await,
        Some(Command::Plugins(PluginsCommand::List)) => plugins_list(global).await,
        Some(Command::Plugins(PluginsCommand::Check { file })) => plugins_check(global, file).await,
    }
}

impl ServeArgs {
    /// `serve` with no arguments: every option from the environment.
    fn try_parse_from_env() -> anyhow::Result<Self> {
        #[derive(Parser)]
        struct Only {
            #[command(flatten)]
            args: ServeArgs,
        }
        Ok(Only::try_parse_from(["serve"])?.args)
    }

    fn service_id(&self) -> anyhow::Result<String> {
        let id = match (&self.service_id, &self.subscription_id, &self.resource_group, &self.service_name) {
            (Some(id), ..) => id.trim_end_matches('/').to_string(),
            (None, Some(sub), Some(rg), Some(name)) => {
                format!("/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.ApiManagement/service/{name}")
            }
            _ => anyhow::bail!(
                "which API Management service? Pass --service-id (or AIGW_SERVICE_ID), or set AZURE_SUBSCRIPTION_ID, \
                 AZURE_RESOURCE_GROUP and APIM_SERVICE_NAME. To try the server without Azure, run `azure-ai-gateway-mcp sandbox`."
            ),
        };
        validate_service_id(&id)?;
        Ok(id)
    }
}

/// Whether `url` points at this machine (http://127.0.0.1:..., http://localhost:..., http://[::1]:...).
fn is_loopback_url(url: &str) -> bool {
    let host = url.split_once("://").map_or(url, |(_, rest)| rest).split('/').next().unwrap_or("");
    let host =
        host.rsplit_once(':').map_or(host, |(h, port)| if port.chars().all(|c| c.is_ascii_digit()) { h } else { host });
    matches!(host, "localhost" | "[::1]") || host.parse::<std::net::Ipv4Addr>().is_ok_and(|ip| ip.is_loopback())
}

/// Checks the shape of an APIM service resource id, naming what is wrong.
pub fn validate_service_id(id: &str) -> anyhow::Result<()> {
    let parts: Vec<&str> = id.split('/').collect();
    let ok = parts.len() == 9
        && parts[0].is_empty()
        && parts[1].eq_ignore_ascii_case("subscriptions")
        && !parts[2].is_empty()
        && parts[3].eq_ignore_ascii_case("resourceGroups")
        && !parts[4].is_empty()
        && parts[5].eq_ignore_ascii_case("providers")
        && parts[6].eq_ignore_ascii_case("Microsoft.ApiManagement")
        && parts[7].eq_ignore_ascii_case("service")
        && !parts[8].is_empty()
        && parts.iter().all(|p| !p.contains(['?', '#', ' ']) && *p != "..");
    if !ok {
        anyhow::bail!(
            "--service-id {id:?} is not an API Management service id; expected \
             /subscriptions/SUB/resourceGroups/RG/providers/Microsoft.ApiManagement/service/NAME"
        );
    }
    Ok(())
}

async fn serve(global: GlobalArgs, args: ServeArgs) -> anyhow::Result<()> {
    let service_id = args.service_id()?;
    let credential = match std::env::var("AIGW_ARM_BEARER_TOKEN").ok().filter(|t| !t.is_empty()) {
        // For the standalone emulator (and tests): a fixed token, only ever sent to loopback.
        Some(token) => {
            if !is_loopback_url(&args.arm_endpoint) {
                anyhow::bail!(
                    "AIGW_ARM_BEARER_TOKEN is only accepted with a loopback --arm-endpoint (the emulator); \
                     for Azure, use a credential (see AZURE_TOKEN_CREDENTIALS)"
                );
            }
            Credential::Static(token.into())
        }
        None => Credential::from_environment()?,
    };
    tracing::info!(service = %service_id, identity = %credential.describe(), "governing API Management service");
    let target = ArmTarget {
        endpoint: args.arm_endpoint.clone(),
        service_id: service_id.clone(),
        api_version: args.server.api_version.clone(),
    };
    let logs = args
        .logs_workspace_id
        .as_deref()
        .map(|ws| LogsClient::new(&args.logs_endpoint, ws, credential.clone()))
        .transpose()?;
    let instructions = format!(
        "This server governs the Azure API Management service {service_id} through Azure Resource Manager. \
         Changes are real. {TOOL_GUIDANCE}"
    );
    let journal = args.server.journal.clone().unwrap_or_else(default_journal_path);
    let governed = Governed { target, credential, logs, instructions, journal, sandbox: None };
    run_server(global, args.server, governed).await
}

async fn sandbox(global: GlobalArgs, args: SandboxArgs) -> anyhow::Result<()> {
    let sandbox = crate::sandbox::start(args.emulator_port, &args.server.api_version).await?;
    let logs =
        LogsClient::new(&sandbox.emulator.base_url, crate::sandbox::SANDBOX_WORKSPACE_ID, sandbox.credential.clone())?;
    let instructions = crate::sandbox::instructions(&sandbox.emulator.base_url);
    // The sandbox's emulator lives in memory, so by default its journal lives as long as it does.
    let temporary_journal = args.server.journal.is_none();
    let journal = args
        .server
        .journal
        .clone()
        .unwrap_or_else(|| std::env::temp_dir().join(format!("aigw-sandbox-journal-{}.jsonl", std::process::id())));
    let controls = Arc::new(crate::sandbox::SandboxControls::new(&sandbox.emulator.base_url));
    let governed = Governed {
        target: sandbox.target.clone(),
        credential: sandbox.credential.clone(),
        logs: Some(logs),
        instructions,
        journal: journal.clone(),
        sandbox: Some(controls),
    };
    let result = run_server(global, args.server, governed).await;
    sandbox.emulator.shutdown().await;
    if temporary_journal {
        let _ = std::fs::remove_file(&journal);
    }
    result
}

/// What a server governs and with what: the service, its credential and telemetry, the
/// journal, and in sandbox mode the emulator's controls.
struct Governed {
    target: ArmTarget,
    credential: Credential,
    logs: Option<LogsClient>,
    instructions: String,
    journal: PathBuf,
    sandbox: Option<Arc<crate::sandbox::SandboxControls>>,
}

async fn run_server(global: GlobalArgs, server_args: ServerArgs, governed: Governed) -> anyhow::Result<()> {
    let Governed { target, credential, logs, instructions, journal, sandbox } = governed;
    let arm = ArmClient::new(target, credential)?;
    let mut options = global.runtime_options(global.config()?);
    options.arm = Some(arm.clone());
    options.logs = logs;
    let runtime = Arc::new(Runtime::load(options).await?);
    let journal = Journal::open(&journal)?;
    tracing::info!(journal = %journal.path().display(), "change journal");
    let changes = Arc::new(ChangePipeline::new(arm, journal));
    let options = ServerOptions {
        instructions,
        read_only: server_args.read_only,
        skip_confirmation: server_args.dangerously_skip_confirmation,
        sandbox,
    };
    let server = GatewayServer::new(runtime, Some(changes), options);
    tracing::info!(tools = server.registry().tools().len(), read_only = server_args.read_only, "MCP server ready");
    match server_args.http {
        Some(addr) => transport::serve_http(server, addr, server_args.allow_remote_http).await,
        None => transport::serve_stdio(server).await,
    }
}

async fn emulator(args: EmulatorArgs) -> anyhow::Result<()> {
    let token = args.token.unwrap_or_else(|| format!("emulator-{}", uuid::Uuid::new_v4().simple()));
    let mut options = aigw_emulator::Options::new(token);
    if let Some(state) = args.state {
        options = options.with_state_file(state);
    }
    let emulator = aigw_emulator::Emulator::new(options)?;
    let running = emulator.serve(SocketAddr::from((Ipv4Addr::LOCALHOST, args.port))).await?;
    eprintln!("{}", aigw_emulator::banner(&running));
    tokio::signal::ctrl_c().await?;
    running.shutdown().await;
    Ok(())
}

async fn plugins_list(global: GlobalArgs) -> anyhow::Result<()> {
    let options = global.runtime_options(global.config()?);
    let dir = options.plugins_dir.clone();
    let runtime = Arc::new(Runtime::load(options).await?);
    let options =
        ServerOptions { instructions: String::new(), read_only: false, skip_confirmation: false, sandbox: None };
    let server = GatewayServer::new(runtime.clone(), None, options);
    println!("plugin directory: {}", dir.map(|d| d.display().to_string()).unwrap_or_default());
    for plugin in runtime.plugins() {
        let m = &plugin.manifest;
        println!("\n{} {} — {}", m.name, m.version, m.description);
        println!("  source: {} ({})", plugin.source, describe_cache(plugin.cache));
        println!("  sha256: {}", plugin.digest);
        println!("  reads: {:?}  writes: {:?}", plugin.grants().reads(), plugin.grants().writes());
        println!(
            "  limits: deadline {} ms, memory {} MiB, output {} KiB",
            plugin.limits.deadline.as_millis(),
            plugin.limits.memory_bytes >> 20,
            plugin.limits.max_output_bytes >> 10
        );
        for entry in server.registry().entries().filter(|e| e.owner() == m.name) {
            println!("  tool {} ({})", entry.name, if entry.is_write() { "write" } else { "read" });
        }
    }
    for failure in runtime.failures() {
        println!("\nNOT LOADED {}: {}", failure.source, failure.error);
    }
    for refusal in server.registry().refusals() {
        println!("\nREFUSED {refusal}");
    }
    for warning in runtime.config_warnings() {
        println!("\nWARNING {warning}");
    }
    Ok(())
}

async fn plugins_check(global: GlobalArgs, file: PathBuf) -> anyhow::Result<()> {
    let mut options = global.runtime_options(global.config()?);
    options.builtins = false;
    options.plugins_dir = None;
    options.extra_files = vec![file.clone()];
    let runtime = Runtime::load(options).await?;
    if let Some(failure) = runtime.failures().first() {
        anyhow::bail!("{} cannot be loaded: {}", file.display(), failure.error);
    }
    let plugin = runtime
        .plugins()
        .first()
        .ok_or_else(|| anyhow::anyhow!("{} is disabled in the config file", file.display()))?;
    let m = &plugin.manifest;
    println!("{}: OK", file.display());
    println!("plugin: {} {} — {}", m.name, m.version, m.description);
    println!("contract: {}@{}", crate::runtime::imports::CONTRACT_PACKAGE, crate::runtime::imports::CONTRACT_VERSION);
    println!("imports (all provided by this host):");
    for import in &plugin.imports {
        println!("  {import}");
    }
    println!("grants: reads {:?}, writes {:?}", m.reads, m.writes);
    println!("tools (input schemas are valid JSON Schema):");
    for tool in &m.tools {
        let kind = if tool.read_only { "read" } else { "write, returns a plan" };
        println!("  {} ({kind}): {}", tool.name, tool.description.lines().next().unwrap_or(""));
    }
    Ok(())
}
