//! The plugin runtime: one wasmtime engine, the loaded plugins, and tool calls.
//!
//! Lifecycle invariants:
//! - A plugin is compiled once (or loaded from the compile cache) and kept as an `InstancePre`.
//! - **Every call gets a fresh `Store` and instance** from that `InstancePre`, and both are
//!   dropped when the call ends. Nothing survives from one call to the next, so a call can
//!   never see another call's data, and calls of the same plugin run concurrently without a lock.
//! - Each call runs under its plugin's limits: a wall-clock deadline (enforced by epoch
//!   interruption while wasm runs and by a timer while it waits on an import), a linear-memory
//!   cap (the store's limiter), and a cap on the size of its answer.
//! - A trap, a timeout, a memory cap or an oversized answer becomes one typed tool error for
//!   that call; the host and every other call carry on.
//! - At most [`engine::MAX_CONCURRENT_CALLS`] instances exist at once, and at most
//!   `max_concurrent_calls` (config) of one plugin; further calls wait, and the wait counts
//!   against their own deadline, so a plugin whose calls loop costs its own callers time, not
//!   everybody's.
//! - A call that runs wasm for more than one epoch tick moves to the plugin executor
//!   ([`executor`]): the MCP transport's worker never runs a busy plugin for long.

pub mod api;
pub mod cache;
pub mod engine;
pub mod executor;
pub mod grants;
pub mod imports;
pub mod loader;

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use tokio::sync::Semaphore;
use wasmtime::component::Linker;
use wasmtime::{Engine, Store, UpdateDeadline};

use crate::arm::{ArmClient, LogsClient};
use crate::config::{ConfigFile, Limits};
use api::{BeforeState, Plan, PlannedWrite, PluginManifest, Precondition, ToolError, ToolOutcome};
use cache::{CacheOutcome, CompileCache};
use engine::EpochTicker;
pub use grants::{Access, Grants};
use imports::{CallSinks, CallState, PluginServices, PluginWorld, PluginWorldPre, wit};
use loader::{Loader, PluginSource};

/// A plugin ready to be called.
pub struct LoadedPlugin {
    pub manifest: PluginManifest,
    /// Where it came from (`built-in service-info.wasm` or a file path).
    pub source: String,
    pub builtin: bool,
    /// SHA-256 of the component bytes.
    pub digest: String,
    pub cache: CacheOutcome,
    pub limits: Limits,
    /// Prefix for its exposed tool names, from the operator's config.
    pub prefix: Option<String>,
    /// The component's import names (all provided by this host, or it would not have loaded).
    pub imports: Vec<String>,
    pub(crate) services: PluginServices,
    pre: PluginWorldPre<CallState>,
    /// One permit per call of this plugin that may run at once (`max_concurrent_calls`).
    pub(crate) calls: Arc<Semaphore>,
}

impl LoadedPlugin {
    /// The plugin's effective grants.
    pub fn grants(&self) -> &Grants {
        &self.services.grants
    }
}

/// A plugin that could not be loaded, and why.
#[derive(Debug, Clone)]
pub struct LoadFailure {
    pub source: String,
    pub error: String,
}

/// What the runtime needs to load plugins.
pub struct RuntimeOptions {
    /// Directory of dropped-in `*.wasm` plugins (`None`: built-ins only).
    pub plugins_dir: Option<PathBuf>,
    /// Compile cache directory (`None`: always compile).
    pub cache_dir: Option<PathBuf>,
    pub config: ConfigFile,
    /// ARM access for plugin imports (`None`: imports that need Azure are denied).
    pub arm: Option<ArmClient>,
    pub logs: Option<LogsClient>,
    /// Load the built-ins (off only in tests that want a directory alone).
    pub builtins: bool,
    /// Extra plugin files, loaded after the directory (used by `plugins check`).
    pub extra_files: Vec<PathBuf>,
}

/// The loaded plugins and the engine they run on.
pub struct Runtime {
    engine: Engine,
    ticker: EpochTicker,
    plugins: Vec<Arc<LoadedPlugin>>,
    failures: Vec<LoadFailure>,
    config_warnings: Vec<String>,
    slots: Arc<Semaphore>,
    progress_interval: std::time::Duration,
}

impl Runtime {
    /// Loads the built-ins, then the directory's plugins, then `extra_files`. A plugin that
    /// fails to load is logged and recorded; the rest load regardless.
    pub async fn load(options: RuntimeOptions) -> anyhow::Result<Self> {
        let engine = engine::build_engine()?;
        let ticker = EpochTicker::start(&engine);
        let mut linker: Linker<CallState> = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
        PluginWorld::add_to_linker::<CallState, wasmtime::component::HasSelf<CallState>>(&mut linker, |s| s)?;
        let cache = CompileCache::new(&engine, options.cache_dir.clone());
        let progress_interval = options.config.progress_interval()?;

        let mut sources = if options.builtins { loader::builtin_sources() } else { Vec::new() };
        if let Some(dir) = &options.plugins_dir {
            sources.extend(loader::directory_sources(dir)?);
        }
        sources.extend(options.extra_files.iter().cloned().map(PluginSource::File));

        let services_template = PluginServices {
            plugin: Arc::from(""),
            grants: Grants::default(),
            arm: options.arm.clone(),
            logs: options.logs.clone(),
            config: Arc::default(),
        };
        let shared = Arc::new(Loader {
            engine: engine.clone(),
            ticker: ticker.clone(),
            linker,
            cache,
            config: options.config,
            services_template,
            described: Default::default(),
        });
        // Plugins load in parallel, each on a thread of its own (loading is CPU work: mapping
        // code, type-checking imports, running `describe`; a stdio server has a single async
        // worker), and are then accepted in source order, so which of two plugins with the
        // same name wins never depends on timing.
        let handle = tokio::runtime::Handle::current();
        let loads: Vec<_> = sources
            .iter()
            .cloned()
            .map(|source| {
                let (shared, handle) = (shared.clone(), handle.clone());
                tokio::task::spawn_blocking(move || {
                    let started = Instant::now();
                    (handle.block_on(shared.load(&source)), started.elapsed())
                })
            })
            .collect();
        let mut plugins: Vec<Arc<LoadedPlugin>> = Vec::new();
        let mut failures = Vec::new();
        for (source, load) in sources.iter().zip(loads) {
            let (loaded, elapsed) = match load.await {
                Ok(done) => done,
                Err(crash) => (Err(anyhow::anyhow!("the loader crashed: {crash}")), Default::default()),
            };
            match loaded {
                Ok(plugin) => {
                    let enabled = shared.config.plugin(&plugin.manifest.name).enabled.unwrap_or(true);
                    let taken = plugins.iter().position(|p| p.manifest.name == plugin.manifest.name);
                    if let Some(index) = taken.filter(|&i| plugins[i].builtin && !plugin.builtin) {
                        // A dropped-in plugin with a built-in's name replaces it: operators can
                        // update a built-in without rebuilding the host.
                        tracing::info!(plugin = %plugin.manifest.name, "{} replaces the built-in plugin", plugin.source);
                        plugins[index] = Arc::new(plugin);
                    } else if let Some(first) = taken.map(|i| &plugins[i]) {
                        let error = format!(
                            "plugin name {:?} is already taken by {}; rename one of them",
                            plugin.manifest.name, first.source
                        );
                        tracing::error!(source = %source.display(), "plugin refused: {error}");
                        failures.push(LoadFailure { source: source.display(), error });
                    } else if !enabled {
                        tracing::info!(plugin = %plugin.manifest.name, "plugin disabled by the config file");
                    } else {
                        tracing::info!(
                            plugin = %plugin.manifest.name,
                            version = %plugin.manifest.version,
                            tools = plugin.manifest.tools.len(),
                            cache = loader::describe_cache(plugin.cache),
                            elapsed_us = elapsed.as_micros() as u64,
                            "plugin loaded from {}", plugin.source
                        );
                        plugins.push(Arc::new(plugin));
                    }
                }
                Err(e) => {
                    let error = format!("{e:#}");
                    tracing::error!(source = %source.display(), "plugin not loaded: {error}");
                    failures.push(LoadFailure { source: source.display(), error });
                }
            }
        }
        // Sections that name no plugin are a warning, with the closest name: the operator meant
        // some plugin, which now runs without its settings. Only a full load (a plugin
        // directory) knows every plugin; `plugins check FILE` sees one.
        let mut config_warnings = Vec::new();
        if options.plugins_dir.is_some() {
            let described = shared.described.lock().map(|d| d.clone()).unwrap_or_default();
            for section in shared.config.section_names() {
                if described.iter().any(|name| name == section) {
                    continue;
                }
                let hint = match crate::config::closest(section, described.iter().map(String::as_str)) {
                    Some(name) => format!(
                        "did you mean [plugins.{name}]? (sections are named after the plugin's own name, not its file)"
                    ),
                    None => format!("no plugin has that name (plugins: {})", described.join(", ")),
                };
                let mut warning = format!(
                    "[plugins.{section}] in the config file matches no plugin, so it applies to nothing; {hint}"
                );
                if let Some(why) = shared.config.invalid.get(section) {
                    warning.push_str(&format!("; the section is also invalid: {why}"));
                }
                tracing::warn!("{warning}");
                config_warnings.push(warning);
            }
        }
        Ok(Self {
            engine,
            ticker,
            plugins,
            failures,
            config_warnings,
            slots: Arc::new(Semaphore::new(engine::MAX_CONCURRENT_CALLS as usize)),
            progress_interval,
        })
    }

    /// The shortest gap between two progress notifications of one call (config
    /// `[defaults] progress_interval_ms`).
    pub fn progress_interval(&self) -> std::time::Duration {
        self.progress_interval
    }

    /// The loaded plugins, in load order.
    pub fn plugins(&self) -> &[Arc<LoadedPlugin>] {
        &self.plugins
    }

    /// The plugins that failed to load.
    pub fn failures(&self) -> &[LoadFailure] {
        &self.failures
    }

    /// What is wrong in the config file without stopping anything: sections that match no
    /// plugin (with the closest plugin name).
    pub fn config_warnings(&self) -> &[String] {
        &self.config_warnings
    }

    /// Calls `tool` of `plugin` with `arguments` (a JSON object, already validated) in a
    /// fresh instance, under the plugin's limits.
    pub async fn call(
        &self,
        plugin: &LoadedPlugin,
        tool: &str,
        arguments: &str,
        sinks: CallSinks,
    ) -> Result<ToolOutcome, ToolError> {
        let limits = plugin.limits;
        let deadline = Instant::now() + limits.deadline;
        let name = plugin.manifest.name.clone();
        // Waiting for a slot counts against this call's deadline: calls of a plugin whose calls
        // all hang queue behind each other and time out, and nobody else waits.
        let busy = || ToolError::Busy {
            plugin: name.clone(),
            slots: limits.max_concurrent_calls,
            deadline_ms: limits.deadline.as_millis() as u64,
        };
        let closed = |_| ToolError::Internal("the runtime is shutting down".into());
        let own_slot = tokio::time::timeout_at(deadline.into(), plugin.calls.clone().acquire_owned())
            .await
            .map_err(|_| busy())?
            .map_err(closed)?;
        let slot = tokio::time::timeout_at(deadline.into(), self.slots.clone().acquire_owned())
            .await
            .map_err(|_| busy())?
            .map_err(closed)?;
        let state = CallState::new(plugin.services.clone(), &limits, sinks);
        let mut store = Store::new(&self.engine, state);
        let (pre, ticker, plugin_name) = (plugin.pre.clone(), self.ticker.clone(), name.clone());
        let (tool_owned, args_owned) = (tool.to_string(), arguments.to_string());
        let yielded = Arc::new(AtomicBool::new(false));
        let on_yield = yielded.clone();
        let work: executor::CallFuture<_> = Box::pin(async move {
            let _slots = (own_slot, slot);
            call_in_store(&mut store, &ticker, limits, deadline, &plugin_name, Some(on_yield), move |store| {
                Box::pin(async move {
                    let world = pre.instantiate_async(&mut *store).await?;
                    world.aigw_plugin_plugin().call_call_tool(&mut *store, &tool_owned, &args_owned).await
                })
            })
            .await
        });
        let answer = executor::run(work, yielded).await?;
        let outcome = answer.map_err(from_wit_error)?;
        let outcome = convert_outcome(&name, outcome)?;
        let size = outcome_size(&outcome);
        if size > plugin.limits.max_output_bytes {
            return Err(ToolError::Internal(format!(
                "plugin {name:?} answered with {size} bytes, more than its {} KiB cap (max_output_kib)",
                plugin.limits.max_output_bytes >> 10
            )));
        }
        Ok(outcome)
    }
}

/// Runs `f` on `store` under `limits` until `deadline`: memory cap, epoch deadline (yielding
/// to the executor every tick, and setting `yielded` when it does so after running for
/// [`executor::MOVE_AFTER`]), and a wall-clock timeout
/// covering time spent in host imports. Whatever the plugin wrote to stderr/stdout is logged
/// afterwards, also after a failure.
pub(crate) async fn call_in_store<R, F>(
    store: &mut Store<CallState>,
    ticker: &EpochTicker,
    limits: Limits,
    deadline: Instant,
    plugin: &str,
    yielded: Option<Arc<AtomicBool>>,
    f: F,
) -> Result<R, ToolError>
where
    F: for<'a> FnOnce(&'a mut Store<CallState>) -> Pin<Box<dyn Future<Output = wasmtime::Result<R>> + Send + 'a>>,
{
    store.limiter(|state| state.limiter());
    let _running = ticker.running();
    store.set_epoch_deadline(1);
    let started = Instant::now();
    store.epoch_deadline_callback(move |_| {
        let now = Instant::now();
        if now >= deadline {
            return Ok(UpdateDeadline::Interrupt);
        }
        // A short call that merely straddles a tick stays where it is; one that has run for
        // a whole tick is a long call and moves (see `executor`).
        if let Some(yielded) = &yielded
            && now - started >= executor::MOVE_AFTER
        {
            yielded.store(true, Ordering::Release);
        }
        Ok(UpdateDeadline::Yield(1))
    });
    let outcome = tokio::time::timeout_at(deadline.into(), f(store)).await;
    imports::flush_captured_output(store.data_mut());
    let deadline_ms = limits.deadline.as_millis() as u64;
    match outcome {
        Err(_elapsed) => Err(ToolError::Timeout { plugin: plugin.into(), deadline_ms }),
        Ok(Ok(value)) => Ok(value),
        Ok(Err(error)) => Err(classify_trap(plugin, &error, limits, store.data())),
    }
}

fn classify_trap(plugin: &str, error: &wasmtime::Error, limits: Limits, state: &CallState) -> ToolError {
    if let Some(wasmtime::Trap::Interrupt) = error.downcast_ref::<wasmtime::Trap>() {
        return ToolError::Timeout { plugin: plugin.into(), deadline_ms: limits.deadline.as_millis() as u64 };
    }
    let text = format!("{error:#}");
    if is_stack_overflow(error, &text) {
        return ToolError::Crashed {
            plugin: plugin.into(),
            reason: "it overflowed its stack (too deep a recursion, or too large local variables)".into(),
        };
    }
    if text.contains("growing memory") || text.contains("memory limit") || text.contains("memory allocation") {
        return ToolError::Crashed {
            plugin: plugin.into(),
            reason: format!("it exceeded its memory cap of {} MiB (memory_mib)", limits.memory_bytes >> 20),
        };
    }
    // A Rust panic prints "panicked at FILE:LINE:COL:" and its message to stderr before
    // trapping: that message says why far better than the trap does.
    let stderr = String::from_utf8_lossy(&state.stderr.contents()).into_owned();
    let trap = match error.downcast_ref::<wasmtime::Trap>() {
        Some(trap) => trap.to_string(),
        None => text.lines().last().unwrap_or("trap").trim().to_string(),
    };
    let reason = match panic_message(&stderr) {
        Some(panic) => format!("it panicked: {panic}"),
        None => trap,
    };
    ToolError::Crashed { plugin: plugin.into(), reason }
}

/// Lowest faulting address taken for a guest's shadow-stack overflow. Rust (and C) guests keep
/// their stack in linear memory below the data, growing down from 1 MiB towards address 0; one
/// frame past the bottom wraps the 32-bit stack pointer to just below 4 GiB, where no memory
/// can be (linear memories are capped at [`engine::MAX_MEMORY_CAP`], 1 GiB). Anything in the
/// top 256 MiB of the address space is such a wrapped frame (frames larger than that do not
/// exist in practice), never a heap bug reaching past the end of memory.
const SHADOW_STACK_WRAP: u64 = 0xF000_0000;

/// Fewest captured frames that make an out-of-bounds trap inside a recursion a stack overflow.
/// wasmtime captures at most 20 frames by default; a recursion that ran out of stack fills them
/// all with the few functions of its cycle.
const RECURSION_FRAMES: usize = 16;

/// Whether a trap is a stack overflow:
/// - wasmtime's own `Trap::StackOverflow` ("call stack exhausted": the wasm call stack);
/// - an out-of-bounds access at a wrapped shadow-stack address (see [`SHADOW_STACK_WRAP`]), when
///   wasmtime adds "memory fault at wasm address 0x… in linear memory of size 0x…" (it does
///   for accesses caught by a signal);
/// - an out-of-bounds access with a backtrace full of one recursion cycle (at most 3 distinct
///   functions over at least [`RECURSION_FRAMES`] frames). wasmtime 48 gives no address when
///   the access is bounds-checked explicitly, and a Rust guest's overflowing frame is usually
///   zeroed with `memory.fill`, which is: a test checks what it really reports.
fn is_stack_overflow(error: &wasmtime::Error, text: &str) -> bool {
    match error.downcast_ref::<wasmtime::Trap>() {
        Some(wasmtime::Trap::StackOverflow) => true,
        Some(wasmtime::Trap::MemoryOutOfBounds) => {
            fault_address(text).is_some_and(|at| at >= SHADOW_STACK_WRAP) || in_deep_recursion(error)
        }
        _ => false,
    }
}

/// Whether the trap's backtrace is one recursion cycle, [`RECURSION_FRAMES`] deep or more.
fn in_deep_recursion(error: &wasmtime::Error) -> bool {
    let Some(trace) = error.downcast_ref::<wasmtime::WasmBacktrace>() else { return false };
    let frames = trace.frames();
    if frames.len() < RECURSION_FRAMES {
        return false;
    }
    let mut functions: Vec<(Option<&str>, u32)> = Vec::new();
    for frame in frames {
        let function = (frame.module().name(), frame.func_index());
        if !functions.contains(&function) {
            functions.push(function);
        }
    }
    functions.len() <= 3
}

/// The faulting wasm address in a wasmtime memory-fault message, if there is one.
fn fault_address(text: &str) -> Option<u64> {
    let hex = text.split("memory fault at wasm address 0x").nth(1)?;
    let end = hex.find(|c: char| !c.is_ascii_hexdigit()).unwrap_or(hex.len());
    u64::from_str_radix(&hex[..end], 16).ok()
}

/// The message of the last Rust panic in a plugin's stderr, with its location.
fn panic_message(stderr: &str) -> Option<String> {
    let lines: Vec<&str> = stderr.lines().collect();
    let at = lines.iter().rposition(|l| l.contains("panicked at "))?;
    let location = lines[at].split("panicked at ").nth(1).unwrap_or("").trim_end_matches(':');
    let message: Vec<&str> = lines[at + 1..].iter().copied().take_while(|l| !l.starts_with("note: run with")).collect();
    Some(format!("{} (at {location})", message.join(" ").trim()))
}

fn from_wit_error(error: wit::Error) -> ToolError {
    match error {
        wit::Error::InvalidInput(f) => ToolError::InvalidInput { field: f.field, message: f.message },
        wit::Error::NotFound(m) => ToolError::NotFound(m),
        wit::Error::Conflict(m) => ToolError::Conflict(m),
        wit::Error::Denied(m) => ToolError::Denied(m),
        wit::Error::Upstream(u) => {
            ToolError::Upstream { status: u.status, code: u.code, message: u.message, request_id: u.request_id }
        }
        wit::Error::Internal(m) => ToolError::Internal(m),
    }
}

fn parse_json(plugin: &str, what: &str, text: &str) -> Result<serde_json::Value, ToolError> {
    serde_json::from_str(text)
        .map_err(|e| ToolError::Internal(format!("plugin {plugin:?} returned invalid JSON in {what}: {e}")))
}

fn convert_outcome(plugin: &str, outcome: wit::Outcome) -> Result<ToolOutcome, ToolError> {
    Ok(match outcome {
        wit::Outcome::Result(r) => ToolOutcome::Result {
            text: r.text,
            structured: r.structured.as_deref().map(|s| parse_json(plugin, "its structured result", s)).transpose()?,
        },
        wit::Outcome::Plan(p) => ToolOutcome::Plan(Plan {
            summary: p.summary,
            diff: p.diff,
            writes: p
                .writes
                .into_iter()
                .map(|w| {
                    let method = w.method.to_ascii_uppercase();
                    Ok(PlannedWrite {
                        // 0.1: an ETag is "as I read it"; a PUT without one means "this creates
                        // it" (the contract's words); a PATCH or DELETE without one claims nothing.
                        precondition: match w.if_match {
                            Some(etag) => Precondition::IfMatch(etag),
                            None if method == "PUT" => Precondition::CreateOnly,
                            None => Precondition::None,
                        },
                        method,
                        path: w.path,
                        body: w.body.as_deref().map(|b| parse_json(plugin, "a plan's write body", b)).transpose()?,
                    })
                })
                .collect::<Result<_, ToolError>>()?,
            before: p
                .before
                .into_iter()
                .map(|b| {
                    Ok(BeforeState {
                        path: b.path,
                        etag: b.etag,
                        body: b.body.as_deref().map(|s| parse_json(plugin, "a plan's before-state", s)).transpose()?,
                    })
                })
                .collect::<Result<_, ToolError>>()?,
            details: p.details.as_deref().map(|d| parse_json(plugin, "a plan's details", d)).transpose()?,
        }),
    })
}

fn outcome_size(outcome: &ToolOutcome) -> usize {
    match outcome {
        ToolOutcome::Result { text, structured } => text.len() + structured.as_ref().map_or(0, |s| s.to_string().len()),
        ToolOutcome::Plan(plan) => serde_json::to_string(plan).map_or(0, |s| s.len()),
    }
}
