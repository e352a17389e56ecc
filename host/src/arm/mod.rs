//! The ARM broker: the host's only door to Azure Resource Manager.
//!
//! Plugins reach ARM through the host's `arm` import; the runtime resolves their paths with
//! [`scope`] and sends them with [`client`]; credentials live in [`credential`].

pub mod client;
pub mod credential;
pub mod logs;
pub mod retry;
pub mod scope;

pub use client::{ArmClient, ArmError, ArmResponse, ArmTarget};
pub use credential::Credential;
pub use logs::LogsClient;
pub use scope::ScopedPath;
