//! The ARM broker: the host's only door to Azure Resource Manager.
//!
//! Plugins reach ARM through the host's `arm` import; the runtime resolves their paths with
//! [`scope`] and sends them with [`client`]; credentials live in [`credential`].

pub mod client;
pub mod credential;
pub mod kql_guard;
pub mod logs;
pub mod retry;
pub mod scope;

pub use client::{ArmClient, ArmError, ArmResponse, ArmTarget, Precondition};
pub use credential::Credential;
pub use logs::LogsClient;
pub use scope::ScopedPath;

use std::sync::{Arc, OnceLock};

/// A reqwest client built on first use. Building one loads the platform's trusted root
/// certificates (every file under /etc/ssl/certs on Linux): 3-5 ms of CPU, half of a warm
/// start in sandbox mode (two clients) before this was lazy. A server that only starts,
/// lists its tools, or never reaches Azure does not pay it; the first request does, once.
#[derive(Clone)]
pub(crate) struct LazyHttp {
    client: Arc<OnceLock<Result<reqwest::Client, String>>>,
    build: fn() -> reqwest::Result<reqwest::Client>,
}

impl LazyHttp {
    pub(crate) fn new(build: fn() -> reqwest::Result<reqwest::Client>) -> Self {
        Self { client: Arc::default(), build }
    }

    /// The client, built now if this is the first request.
    pub(crate) fn get(&self) -> Result<&reqwest::Client, String> {
        self.client
            .get_or_init(|| (self.build)().map_err(|e| format!("could not start the HTTP client: {e}")))
            .as_ref()
            .map_err(Clone::clone)
    }
}
