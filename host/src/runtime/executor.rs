//! Where plugin code runs, so that a busy plugin cannot slow the MCP transport.
//!
//! A stdio server has one async worker (`--worker-threads`, BENCHMARKS.md): it reads requests,
//! writes answers, and polls every call. Wasm runs on the thread that polls it and yields only
//! at epoch ticks, so calls that loop used to take that worker for 10 ms at a time each, and
//! every other call (of any plugin) waited behind them.
//!
//! Invariants:
//! - A call starts on the thread that awaits it (no thread hop, no extra wake-up: a trivial
//!   call costs what it did), and **moves to the plugin executor at the first epoch yield
//!   after it has run for [`MOVE_AFTER`]** (a call that merely straddles a tick stays). From
//!   then on the transport's worker only awaits its result. A call therefore costs the
//!   transport at most two ticks (20 ms) of CPU, whatever it does afterwards.
//! - The executor is one multi-threaded tokio runtime for the whole process, created on first
//!   use and never dropped, with [`executor_threads`] workers named `aigw-wasm`. Long calls
//!   share it round-robin, one tick at a time; how many of them one plugin can have there is
//!   bounded by its `max_concurrent_calls` (see `Runtime::call`).
//! - A moved call is aborted when whoever awaited it goes away (a cancelled MCP request), as
//!   an inline one is dropped.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};

/// How long a call runs before its next epoch yield moves it to the plugin executor: one
/// [`super::engine::EPOCH_TICK`] (10 ms), two hundred times a trivial call (~50 µs), so
/// trivial calls never pay a thread hop, and short enough that a looping plugin holds the
/// transport for at most two ticks per call.
pub const MOVE_AFTER: std::time::Duration = super::engine::EPOCH_TICK;

/// A boxed call future, movable between threads between polls.
pub type CallFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// Worker threads of the plugin executor: one per CPU, at least two, so that two long calls
/// progress in parallel on any machine and the executor never has more threads than cores
/// to fight the transport for (`AIGW_PLUGIN_THREADS` overrides it; 1–256).
pub fn executor_threads() -> usize {
    if let Some(n) = std::env::var("AIGW_PLUGIN_THREADS").ok().and_then(|v| v.trim().parse::<usize>().ok())
        && (1..=256).contains(&n)
    {
        return n;
    }
    std::thread::available_parallelism().map_or(2, |n| n.get()).max(2)
}

fn executor() -> &'static tokio::runtime::Runtime {
    static EXECUTOR: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    EXECUTOR.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(executor_threads())
            .thread_name("aigw-wasm")
            .enable_all()
            .build()
            .expect("could not start the plugin executor's threads")
    })
}

/// Runs `call` inline until it yields for CPU (`busy` is set by the store's epoch callback when
/// it yields at a tick), then on the plugin executor. See the module docs.
pub fn run<T: Send + 'static>(call: CallFuture<T>, busy: Arc<AtomicBool>) -> Offloaded<T> {
    Offloaded { state: State::Inline(call), busy }
}

/// The future of [`run`].
pub struct Offloaded<T> {
    state: State<T>,
    busy: Arc<AtomicBool>,
}

enum State<T> {
    Inline(CallFuture<T>),
    Moved(tokio::task::JoinHandle<T>),
    Finished,
}

impl<T: Send + 'static> Future for Offloaded<T> {
    type Output = T;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T> {
        let this = self.get_mut();
        loop {
            match &mut this.state {
                State::Inline(call) => match call.as_mut().poll(cx) {
                    Poll::Ready(value) => {
                        this.state = State::Finished;
                        return Poll::Ready(value);
                    }
                    Poll::Pending if this.busy.load(Ordering::Acquire) => {
                        let State::Inline(call) = std::mem::replace(&mut this.state, State::Finished) else {
                            unreachable!()
                        };
                        this.state = State::Moved(executor().spawn(call));
                    }
                    Poll::Pending => return Poll::Pending,
                },
                State::Moved(handle) => {
                    return match Pin::new(handle).poll(cx) {
                        Poll::Ready(Ok(value)) => {
                            this.state = State::Finished;
                            Poll::Ready(value)
                        }
                        Poll::Ready(Err(error)) if error.is_panic() => std::panic::resume_unwind(error.into_panic()),
                        Poll::Ready(Err(error)) => panic!("the plugin executor dropped a call: {error}"),
                        Poll::Pending => Poll::Pending,
                    };
                }
                State::Finished => panic!("a plugin call was polled after it finished"),
            }
        }
    }
}

impl<T> Drop for Offloaded<T> {
    fn drop(&mut self) {
        if let State::Moved(handle) = &self.state {
            handle.abort();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_call_that_never_yields_for_cpu_stays_on_its_thread() {
        let here = std::thread::current().id();
        let busy = Arc::new(AtomicBool::new(false));
        let ran_on = run(Box::pin(async { std::thread::current().id() }), busy).await;
        assert_eq!(ran_on, here);
    }

    #[tokio::test]
    async fn a_call_that_yields_for_cpu_moves_to_the_plugin_executor() {
        let busy = Arc::new(AtomicBool::new(false));
        let flag = busy.clone();
        let call = Box::pin(async move {
            flag.store(true, Ordering::Release);
            tokio::task::yield_now().await;
            std::thread::current().name().map(str::to_string)
        });
        assert_eq!(run(call, busy).await.as_deref(), Some("aigw-wasm"));
    }
}
