//! The change journal: an append-only JSON Lines file with one change per applied plan.
//!
//! Each change is two lines with the same `id`: a `planned` record, written and flushed to disk
//! (fsync) **before the first write is sent**, and a `completed` record written after the last
//! one (outcome, every write's status, ETag and after-body, compensation). A change whose
//! `completed` line is missing was interrupted (the host died mid-apply): `list_changes` shows
//! it as `interrupted` with its before-states, so an operator can see what may be half-done.
//!
//! Invariants: lines are only ever appended; secrets (subscription keys, secret named values,
//! credentials) are replaced by [`REDACTED`] before anything is written.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::runtime::api::{BeforeState, PlannedWrite};

/// What secrets are replaced with.
pub const REDACTED: &str = "<redacted>";

/// The MCP client that asked for a change.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ClientInfo {
    pub name: String,
    pub version: String,
}

/// The first line of a change: what is about to be written, and the state before.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PlannedRecord {
    pub id: String,
    pub time: String,
    pub client: Option<ClientInfo>,
    pub tool: String,
    pub plugin: String,
    pub arguments: Value,
    /// The plugin's summary (its words).
    pub summary: String,
    /// The diff the host rendered from live state: what the user was shown.
    pub diff: String,
    /// The plugin's own diff (its words), when it gave one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plugin_diff: Option<String>,
    /// The writes, with the preconditions the host derived.
    pub writes: Vec<PlannedWrite>,
    /// Every resource written, as the host read it just before the change.
    pub before: Vec<BeforeState>,
    /// How the user agreed: `elicitation`, `input-required`, or `skipped` (flag).
    pub confirmation: String,
    /// The change this one rolls back, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollback_of: Option<String>,
}

/// One write that was sent, and what it left behind.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct WriteRecord {
    pub method: String,
    pub path: String,
    pub status: u16,
    pub etag: Option<String>,
    /// The resource after the write (the write's answer), `None` after a DELETE.
    pub after: Option<Value>,
    pub client_request_id: String,
}

/// How a change ended.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// Every write was made.
    Applied,
    /// The first write failed; nothing was written.
    Failed,
    /// A later write failed; the earlier ones were restored to their before-state.
    Compensated,
    /// A later write failed and restoring the earlier ones failed too: see `compensation`.
    CompensationFailed,
}

/// The second line of a change.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CompletedRecord {
    pub id: String,
    pub time: String,
    pub outcome: Outcome,
    pub writes: Vec<WriteRecord>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<Value>,
    /// Restoring writes after a failure: each restore's method, path and result.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub compensation: Vec<Value>,
}

// One record is built, written and dropped per journal line; boxing would only add noise.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "record", rename_all = "kebab-case")]
enum Record {
    Planned(PlannedRecord),
    Completed(CompletedRecord),
}

/// A change as read back: its plan and, unless it was interrupted, how it ended.
#[derive(Debug, Clone)]
pub struct Change {
    pub planned: PlannedRecord,
    pub completed: Option<CompletedRecord>,
}

impl Change {
    /// `applied`, `failed`, `compensated`, `compensation-failed` or `interrupted`.
    pub fn status(&self) -> String {
        match &self.completed {
            None => "interrupted".into(),
            Some(c) => {
                serde_json::to_value(c.outcome).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default()
            }
        }
    }
}

/// The journal file.
#[derive(Debug)]
pub struct Journal {
    path: PathBuf,
    lock: tokio::sync::Mutex<()>,
}

impl Journal {
    /// Opens the journal at `path`, checking it can be appended to, so a misconfigured path
    /// fails at start and not at the first write. A journal that does not exist yet is created
    /// by the first change, not here: a server that changes nothing leaves no file behind.
    pub fn open(path: &Path) -> anyhow::Result<Self> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|e| anyhow::anyhow!("cannot create the journal directory {}: {e}", dir.display()))?;
        }
        let existed = path.exists();
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|e| anyhow::anyhow!("cannot open the change journal {} for appending: {e}", path.display()))?;
        if !existed {
            let _ = std::fs::remove_file(path);
        }
        Ok(Self { path: path.to_path_buf(), lock: tokio::sync::Mutex::new(()) })
    }

    /// Where the journal lives.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends the `planned` record and syncs it to disk. Redacts secrets first.
    pub async fn planned(&self, mut record: PlannedRecord) -> anyhow::Result<()> {
        record.arguments = redact(&record.arguments);
        for write in &mut record.writes {
            write.body = write.body.as_ref().map(redact);
        }
        for before in &mut record.before {
            before.body = before.body.as_ref().map(redact);
        }
        self.append(&Record::Planned(record)).await
    }

    /// Appends the `completed` record and syncs it to disk. Redacts secrets first.
    pub async fn completed(&self, mut record: CompletedRecord) -> anyhow::Result<()> {
        for write in &mut record.writes {
            write.after = write.after.as_ref().map(redact);
        }
        self.append(&Record::Completed(record)).await
    }

    async fn append(&self, record: &Record) -> anyhow::Result<()> {
        let mut line = serde_json::to_string(record)?;
        line.push('\n');
        let _guard = self.lock.lock().await;
        let path = self.path.clone();
        tokio::task::spawn_blocking(move || -> std::io::Result<()> {
            let mut file = std::fs::OpenOptions::new().create(true).append(true).open(&path)?;
            file.write_all(line.as_bytes())?;
            file.sync_data()
        })
        .await?
        .map_err(|e| anyhow::anyhow!("cannot append to the change journal {}: {e}", self.path.display()))
    }

    /// Every change, oldest first. A line that does not parse (a torn last line after a crash)
    /// is skipped with a warning.
    pub fn changes(&self) -> anyhow::Result<Vec<Change>> {
        let text = match std::fs::read_to_string(&self.path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => anyhow::bail!("cannot read the change journal {}: {e}", self.path.display()),
        };
        let mut changes: Vec<Change> = Vec::new();
        for (number, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
            match serde_json::from_str::<Record>(line) {
                Ok(Record::Planned(planned)) => changes.push(Change { planned, completed: None }),
                Ok(Record::Completed(completed)) => {
                    if let Some(change) = changes.iter_mut().rev().find(|c| c.planned.id == completed.id) {
                        change.completed = Some(completed);
                    }
                }
                Err(e) => {
                    tracing::warn!(journal = %self.path.display(), line = number + 1, "skipping an unreadable journal line: {e}")
                }
            }
        }
        Ok(changes)
    }

    /// The change with `id`.
    pub fn find(&self, id: &str) -> anyhow::Result<Option<Change>> {
        Ok(self.changes()?.into_iter().find(|c| c.planned.id == id))
    }
}

/// A new change id: sortable by time, unique.
pub fn new_change_id() -> String {
    let now = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
    let compact: String = now.chars().filter(|c| c.is_ascii_alphanumeric()).collect();
    format!("chg-{}-{}", compact.to_lowercase(), &uuid::Uuid::new_v4().simple().to_string()[..8])
}

/// Now, as RFC 3339 with milliseconds.
pub fn now_rfc3339() -> String {
    humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string()
}

/// Keys whose values are secrets wherever they appear.
const SECRET_KEYS: &[&str] = &[
    "primarykey",
    "secondarykey",
    "password",
    "clientsecret",
    "connectionstring",
    "instrumentationkey",
    "accesskey",
    "sharedaccesskey",
    "token",
    "authorization",
    "secret",
];

/// A copy of `value` with secrets replaced: values under secret-looking keys, and the `value`
/// of any object marked `"secret": true` (a secret named value).
pub fn redact(value: &Value) -> Value {
    match value {
        Value::Object(map) => {
            let is_secret_entity = map.get("secret").and_then(Value::as_bool) == Some(true);
            Value::Object(
                map.iter()
                    .map(|(k, v)| {
                        let key = k.to_ascii_lowercase();
                        let hide = (SECRET_KEYS.contains(&key.as_str()) && !v.is_boolean())
                            || (is_secret_entity && key == "value");
                        (k.clone(), if hide { Value::String(REDACTED.into()) } else { redact(v) })
                    })
                    .collect(),
            )
        }
        Value::Array(items) => Value::Array(items.iter().map(redact).collect()),
        other => other.clone(),
    }
}

/// Whether `value` contains a redacted secret (such a body cannot be written back).
pub fn contains_redaction(value: &Value) -> bool {
    match value {
        Value::String(s) => s == REDACTED,
        Value::Object(map) => map.values().any(contains_redaction),
        Value::Array(items) => items.iter().any(contains_redaction),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn keys_and_secret_named_values_are_redacted_but_flags_are_kept() {
        let redacted = redact(&json!({
            "properties": {"primaryKey": "k1", "secondaryKey": "k2", "displayName": "Growth"},
            "nv": {"properties": {"secret": true, "value": "s3cr3t", "displayName": "x"}},
            "plain": {"properties": {"secret": false, "value": "50000"}},
            "logger": {"credentials": {"instrumentationKey": "ikey"}}
        }));
        let text = redacted.to_string();
        for secret in ["k1", "k2", "s3cr3t", "ikey"] {
            assert!(!text.contains(secret), "{secret} leaked: {text}");
        }
        assert_eq!(redacted["plain"]["properties"]["value"], "50000");
        assert_eq!(redacted["nv"]["properties"]["secret"], true);
        assert!(contains_redaction(&redacted));
    }

    #[tokio::test]
    async fn a_change_is_two_lines_and_reads_back_merged() {
        let dir = tempfile::tempdir().unwrap();
        let journal = Journal::open(&dir.path().join("j/journal.jsonl")).unwrap();
        assert!(!journal.path().exists(), "no change, no file");
        let id = new_change_id();
        journal
            .planned(PlannedRecord {
                id: id.clone(),
                time: now_rfc3339(),
                client: Some(ClientInfo { name: "test".into(), version: "1".into() }),
                tool: "update_quota".into(),
                plugin: "quota".into(),
                arguments: json!({"subscription_id": "growth", "tpm": 100000}),
                summary: "growth TPM 200,000 -> 100,000".into(),
                diff: "-a\n+b\n".into(),
                plugin_diff: None,
                writes: vec![],
                before: vec![],
                confirmation: "elicitation".into(),
                rollback_of: None,
            })
            .await
            .unwrap();
        assert_eq!(journal.changes().unwrap()[0].status(), "interrupted");
        journal
            .completed(CompletedRecord {
                id: id.clone(),
                time: now_rfc3339(),
                outcome: Outcome::Applied,
                writes: vec![],
                error: None,
                compensation: vec![],
            })
            .await
            .unwrap();
        let text = std::fs::read_to_string(journal.path()).unwrap();
        assert_eq!(text.lines().count(), 2);
        for line in text.lines() {
            serde_json::from_str::<Value>(line).unwrap();
        }
        let change = journal.find(&id).unwrap().unwrap();
        assert_eq!(change.status(), "applied");
        assert_eq!(change.planned.arguments["tpm"], 100000);
    }
}
