//! The one wasmtime [`Engine`] the host runs every plugin on, and its epoch ticker.
//!
//! The engine narrows wasmtime to what plugins need: the component model, async host imports
//! (ARM calls are network I/O), epoch interruption (deadlines), and the pooling allocator
//! (fast per-call instantiation). Every number below bounds something; the comment says what.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

/// How often the epoch advances. A plugin running wasm yields to the async executor at every
/// tick and is interrupted at the first tick past its deadline, so this is both the scheduling
/// quantum and the deadline's precision.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

/// Most plugin calls (component instances) alive at once. Calls beyond this wait for a slot
/// (see `Runtime`), they do not fail. 64 is four times the 16-in-flight benchmark target.
pub const MAX_CONCURRENT_CALLS: u32 = 64;

/// Largest linear memory any plugin may be configured to use. Per-call caps (64 MiB by
/// default) are enforced by each store's limiter; this only sizes the pool's slots.
pub const MAX_MEMORY_CAP: usize = 1 << 30;

/// Most bytes of a pool slot's linear memory (and of its tables) reset in place between calls
/// rather than returned to the kernel. A trivial call dirties ~30 KiB; the bound keeps what
/// an idle slot holds small (it is at most what the slot's last call dirtied).
const KEEP_RESIDENT: usize = 256 << 10;

/// Builds the engine: pooling allocator when the machine allows its address-space
/// reservations, the on-demand allocator otherwise (with a warning, since instantiation is
/// ~3x slower there but everything else behaves the same).
pub fn build_engine() -> anyhow::Result<Engine> {
    match Engine::new(&config(true)) {
        Ok(engine) => Ok(engine),
        Err(pooling_error) => {
            tracing::warn!("pooling allocator unavailable ({pooling_error}); using on-demand instance allocation");
            Ok(Engine::new(&config(false))?)
        }
    }
}

fn config(pooling: bool) -> Config {
    let mut config = Config::new();
    config.wasm_component_model(true);
    // Deadlines: the store's epoch callback yields each tick and traps past the deadline.
    config.epoch_interruption(true);
    // Copy-on-write images make a fresh instance per call cost microseconds, not a memcpy.
    config.memory_init_cow(true);
    if pooling {
        let mut pool = PoolingAllocationConfig::default();
        // A Rust wasm32-wasip2 component holds 1 main module plus a few small shim modules
        // produced by wasm-component-ld: 4 core instances per component instance is ample.
        pool.total_component_instances(MAX_CONCURRENT_CALLS);
        pool.total_core_instances(MAX_CONCURRENT_CALLS * 4);
        pool.max_core_instances_per_component(16);
        // One linear memory per component (the main module's); shims share it.
        pool.total_memories(MAX_CONCURRENT_CALLS * 2);
        pool.max_memories_per_component(2);
        pool.total_tables(MAX_CONCURRENT_CALLS * 4);
        pool.max_tables_per_component(8);
        // Each async call runs on a fiber stack from the pool: one per concurrent call.
        pool.total_stacks(MAX_CONCURRENT_CALLS);
        // Slot size bounds the largest per-plugin memory cap; pages are only committed when
        // touched, so this is address space, not RSS.
        pool.max_memory_size(MAX_MEMORY_CAP);
        // Reset a finished instance's memory by copying back only the pages it dirtied (found
        // with the PAGEMAP_SCAN ioctl) instead of madvise: no page faults on the next call and
        // no TLB-shootdown IPIs to the other cores, ~20 µs of CPU per call (BENCHMARKS.md).
        // At most KEEP_RESIDENT bytes per slot stay resident; more is madvised as before.
        // Kernels without PAGEMAP_SCAN (< 6.7) keep the madvise path.
        if PoolingAllocationConfig::is_pagemap_scan_available() {
            pool.pagemap_scan(wasmtime::Enabled::Yes);
            pool.linear_memory_keep_resident(KEEP_RESIDENT);
            pool.table_keep_resident(KEEP_RESIDENT);
        }
        config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    }
    config
}

/// Advances an engine's epoch every [`EPOCH_TICK`] while at least one call runs, and sleeps
/// otherwise: an idle server (most of a desktop client's session) wakes no CPU for deadlines.
/// The thread holds only a weak reference to the engine and ends soon after it is dropped.
#[derive(Clone)]
pub struct EpochTicker {
    running: Arc<AtomicUsize>,
    thread: std::thread::Thread,
}

/// While alive, `engine`'s epoch advances (see [`EpochTicker::running`]).
pub struct RunningCall {
    running: Arc<AtomicUsize>,
}

/// How often an idle ticker checks whether its engine is gone.
const IDLE_CHECK: Duration = Duration::from_secs(1);

impl EpochTicker {
    /// Starts the ticker thread for `engine`.
    pub fn start(engine: &Engine) -> Self {
        let weak = engine.weak();
        let running = Arc::new(AtomicUsize::new(0));
        let seen = running.clone();
        let handle = std::thread::Builder::new()
            .name("aigw-epoch".into())
            .spawn(move || {
                loop {
                    if seen.load(Ordering::Acquire) == 0 {
                        // Woken by `running()` (an unpark before this park makes it return at
                        // once) or by the timeout. Either way tick once before parking again,
                        // so back-to-back short calls wake this thread at most once per tick.
                        std::thread::park_timeout(IDLE_CHECK);
                    }
                    let Some(engine) = weak.upgrade() else { break };
                    engine.increment_epoch();
                    drop(engine);
                    std::thread::sleep(EPOCH_TICK);
                }
            })
            .expect("could not start the epoch ticker thread");
        Self { running, thread: handle.thread().clone() }
    }

    /// Marks a call as running until the returned guard is dropped. Deadlines are only
    /// enforced for wasm that runs while such a guard lives.
    pub fn running(&self) -> RunningCall {
        if self.running.fetch_add(1, Ordering::AcqRel) == 0 {
            self.thread.unpark();
        }
        RunningCall { running: self.running.clone() }
    }
}

impl Drop for RunningCall {
    fn drop(&mut self) {
        self.running.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A short hex fingerprint of everything that makes compiled code engine-specific (wasmtime
/// version, target, settings). Part of the compile cache key.
pub fn compatibility_fingerprint(engine: &Engine) -> String {
    use sha2::{Digest, Sha256};
    use std::hash::{Hash, Hasher};
    struct ShaHasher(Sha256);
    impl Hasher for ShaHasher {
        fn finish(&self) -> u64 {
            0
        }
        fn write(&mut self, bytes: &[u8]) {
            self.0.update(bytes);
        }
    }
    let mut hasher = ShaHasher(Sha256::new());
    engine.precompile_compatibility_hash().hash(&mut hasher);
    hex(&hasher.0.finalize()[..8])
}

/// Lowercase hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
