//! Progress of a tool call on its way to the MCP client: coalesced and rate-limited.
//!
//! Threat: a plugin calls `progress::report` as often as it likes (300,000 times in a few
//! seconds is easy). Forwarding each report as its own notification queued every one of them
//! in the transport, and the server grew to a gigabyte. So:
//! - a report only replaces the call's latest one (a `watch` channel: one slot, latest wins);
//!   reporting is a store, never a send, and costs the same whether the client keeps up or not;
//! - one forwarding task per call sends the latest report, then waits the progress interval
//!   (`[defaults] progress_interval_ms`, [`crate::config::DEFAULT_PROGRESS_INTERVAL`]) before it
//!   sends again, so a call makes the host send at most one notification per interval;
//! - when the call ends, [`ProgressForwarder::finish`] sends the latest report not sent yet
//!   *before* the result goes out (clients drop progress for requests already answered), and
//!   ends the task;
//! - messages are cut at [`MAX_PROGRESS_MESSAGE_BYTES`]; reports with a non-finite number (JSON
//!   has no NaN) are dropped.

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use rmcp::model::{ProgressNotificationParam, ProgressToken};
use tokio::sync::{oneshot, watch};

use crate::runtime::imports::ProgressSink;

/// Longest progress message forwarded, in bytes. A progress message is a status line
/// ("fetched 40 of 120 subscriptions"); 1 KiB is plenty and bounds every notification.
pub const MAX_PROGRESS_MESSAGE_BYTES: usize = 1024;

/// Sends one notification (the peer's `notify_progress`, or a test's recorder).
pub type Notify = Arc<dyn Fn(ProgressNotificationParam) -> BoxFuture<'static, ()> + Send + Sync>;

/// The forwarding task of one call and the sink its plugin reports into.
pub struct ProgressForwarder {
    sink: ProgressSink,
    finish: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<u64>,
}

impl ProgressForwarder {
    /// Starts forwarding reports for `token` through `send`, at most one per `interval`.
    pub fn start(token: ProgressToken, interval: Duration, send: Notify) -> Self {
        let (latest, mut seen) = watch::channel::<Option<ProgressNotificationParam>>(None);
        let sink: ProgressSink = Arc::new(move |done, total: Option<f64>, message: Option<String>| {
            if !done.is_finite() || total.is_some_and(|t| !t.is_finite()) {
                return;
            }
            let mut param = ProgressNotificationParam::new(token.clone(), done);
            if let Some(total) = total {
                param = param.with_total(total);
            }
            if let Some(message) = message {
                param = param.with_message(cut(message));
            }
            latest.send_replace(Some(param));
        });
        let (finish, mut finished) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let mut sent = 0;
            loop {
                tokio::select! {
                    biased;
                    _ = &mut finished => break,
                    changed = seen.changed() => if changed.is_err() { break },
                }
                let report = seen.borrow_and_update().clone();
                if let Some(report) = report {
                    send(report).await;
                    sent += 1;
                }
                tokio::select! {
                    biased;
                    _ = &mut finished => break,
                    _ = tokio::time::sleep(interval) => {}
                }
            }
            let unsent = if seen.has_changed().unwrap_or(false) { seen.borrow_and_update().clone() } else { None };
            if let Some(report) = unsent {
                send(report).await;
                sent += 1;
            }
            sent
        });
        Self { sink, finish: Some(finish), task }
    }

    /// What the plugin's `progress::report` calls.
    pub fn sink(&self) -> ProgressSink {
        self.sink.clone()
    }

    /// Sends the latest report not sent yet and ends the task; returns how many notifications
    /// the call sent.
    pub async fn finish(mut self) -> u64 {
        if let Some(finish) = self.finish.take() {
            let _ = finish.send(());
        }
        (&mut self.task).await.unwrap_or(0)
    }
}

impl Drop for ProgressForwarder {
    fn drop(&mut self) {
        // Not finished (the call was cancelled): nothing more is worth sending.
        if self.finish.is_some() {
            self.task.abort();
        }
    }
}

/// `message` cut to [`MAX_PROGRESS_MESSAGE_BYTES`] at a character boundary, marked with `…`.
fn cut(mut message: String) -> String {
    if message.len() > MAX_PROGRESS_MESSAGE_BYTES {
        let mut at = MAX_PROGRESS_MESSAGE_BYTES;
        while !message.is_char_boundary(at) {
            at -= 1;
        }
        message.truncate(at);
        message.push('…');
    }
    message
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    fn recorder() -> (Notify, Arc<Mutex<Vec<ProgressNotificationParam>>>) {
        let seen: Arc<Mutex<Vec<ProgressNotificationParam>>> = Arc::default();
        let into = seen.clone();
        let send: Notify = Arc::new(move |param| {
            into.lock().unwrap().push(param);
            Box::pin(async {})
        });
        (send, seen)
    }

    #[tokio::test]
    async fn a_flood_of_reports_becomes_a_few_notifications_ending_with_the_latest() {
        let (send, seen) = recorder();
        let forwarder = ProgressForwarder::start(
            ProgressToken(rmcp::model::NumberOrString::Number(1)),
            Duration::from_millis(50),
            send,
        );
        let sink = forwarder.sink();
        let started = std::time::Instant::now();
        for i in 0..300_000 {
            sink(i as f64, Some(300_000.0), Some(format!("step {i}")));
            if i % 10_000 == 0 {
                tokio::task::yield_now().await;
            }
        }
        let elapsed = started.elapsed();
        let sent = forwarder.finish().await;
        let seen = seen.lock().unwrap();
        assert_eq!(sent as usize, seen.len());
        let bound = 2 + (elapsed.as_millis() / 50) as usize;
        assert!(seen.len() <= bound, "{} notifications in {elapsed:?}", seen.len());
        let last = seen.last().unwrap();
        assert_eq!((last.progress, last.message.as_deref()), (299_999.0, Some("step 299999")));
    }

    #[tokio::test]
    async fn messages_are_cut_and_non_finite_reports_dropped() {
        let (send, seen) = recorder();
        let forwarder = ProgressForwarder::start(
            ProgressToken(rmcp::model::NumberOrString::Number(1)),
            Duration::from_millis(10),
            send,
        );
        let sink = forwarder.sink();
        sink(1.0, None, Some("é".repeat(5000)));
        tokio::time::sleep(Duration::from_millis(30)).await;
        sink(f64::NAN, None, None);
        forwarder.finish().await;
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 1);
        assert!(seen[0].message.as_ref().unwrap().len() <= MAX_PROGRESS_MESSAGE_BYTES + 3);
    }
}
