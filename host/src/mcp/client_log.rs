//! MCP logging: `logging/setLevel`, and log lines sent to the client as `notifications/message`.
//!
//! Opting in: a 2025-11-25 client sets a level for its session (`logging/setLevel`); a
//! 2026-07-28 client asks per request (`_meta` `io.modelcontextprotocol/logLevel`).
//!
//! What a client receives: the log lines of *its own* calls — each plugin's `log::write` lines
//! (already capped per call and escaped by the runtime) and the host's lines about the call
//! (re-plans, unconfirmed writes) — at or above the level it set. Never another session's
//! lines: on a shared HTTP server one client's calls must not show up in another's log. Nothing
//! is sent until the client sets a level. The stderr log is unchanged. No line carries a
//! secret: tokens never enter the host's log lines, and plugins never see one.
//!
//! Lines of one call leave in order through one forwarding task, fed by a channel that the
//! runtime's per-call line cap bounds.

// MCP logging is deprecated by SEP-2577 for the 2026-07-28 revision, but 2025-11-25 clients
// (and the official conformance suite) use it.
#![allow(deprecated)]

use std::sync::{Arc, Mutex};

use rmcp::RoleServer;
use rmcp::model::{LoggingLevel, LoggingMessageNotificationParam};
use rmcp::service::Peer;
use serde_json::json;
use tokio::sync::mpsc;

use crate::runtime::imports::LogSink;

/// The level one session asked for (`None`: it asked for no log lines).
#[derive(Default)]
pub struct SessionLog {
    level: Mutex<Option<LoggingLevel>>,
}

impl SessionLog {
    pub fn set(&self, level: LoggingLevel) {
        *self.level.lock().unwrap() = Some(level);
    }

    pub fn level(&self) -> Option<LoggingLevel> {
        *self.level.lock().unwrap()
    }
}

/// Severity order of MCP's (syslog) levels.
fn severity(level: LoggingLevel) -> u8 {
    match level {
        LoggingLevel::Debug => 0,
        LoggingLevel::Info => 1,
        LoggingLevel::Notice => 2,
        LoggingLevel::Warning => 3,
        LoggingLevel::Error => 4,
        LoggingLevel::Critical => 5,
        LoggingLevel::Alert => 6,
        LoggingLevel::Emergency => 7,
    }
}

/// A tracing level as MCP's.
pub fn from_tracing(level: tracing::Level) -> LoggingLevel {
    match level {
        tracing::Level::ERROR => LoggingLevel::Error,
        tracing::Level::WARN => LoggingLevel::Warning,
        tracing::Level::INFO => LoggingLevel::Info,
        _ => LoggingLevel::Debug,
    }
}

/// Sends one call's log lines to its client, in order.
pub struct CallLog {
    sink: LogSink,
    task: tokio::task::JoinHandle<()>,
}

impl CallLog {
    /// Forwards lines at or above `min` to `peer`.
    pub fn start(peer: Peer<RoleServer>, min: LoggingLevel) -> Self {
        let (tx, mut rx) = mpsc::unbounded_channel::<LoggingMessageNotificationParam>();
        let task = tokio::spawn(async move {
            while let Some(line) = rx.recv().await {
                if peer.notify_logging_message(line).await.is_err() {
                    break; // the client is gone
                }
            }
        });
        let sink: LogSink = Arc::new(move |level, logger, message| {
            let level = from_tracing(level);
            if severity(level) >= severity(min) {
                let _ = tx.send(LoggingMessageNotificationParam::new(level, json!(message)).with_logger(logger));
            }
        });
        Self { sink, task }
    }

    pub fn sink(&self) -> LogSink {
        self.sink.clone()
    }

    /// Waits until every line of the call has been sent (before the call's result).
    pub async fn finish(self) {
        let Self { sink, task } = self;
        drop(sink); // the session's clone is dropped with the call; then the channel closes
        let _ = task.await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_order_as_syslog_and_map_from_tracing() {
        assert!(severity(LoggingLevel::Warning) > severity(LoggingLevel::Info));
        assert_eq!(from_tracing(tracing::Level::WARN), LoggingLevel::Warning);
        assert_eq!(from_tracing(tracing::Level::TRACE), LoggingLevel::Debug);
    }
}
