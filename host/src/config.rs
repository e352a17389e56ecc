//! The operator's configuration file (TOML): per-plugin limits, prefixes, grant narrowing and
//! settings. Flags and environment variables cover everything else (see `main.rs`).
//!
//! ```toml
//! [defaults]            # for every plugin
//! deadline_ms = 30000   # wall-clock budget of one call
//! memory_mib = 64       # linear memory cap of one call
//! max_output_kib = 1024 # cap on a call's answer
//! max_plan_writes = 100 # writes one plan may make
//! max_log_lines = 1000  # log lines one call may write; the rest are counted, not logged
//! max_concurrent_calls = 16  # calls of one plugin running at once; more wait (on their deadline)
//! progress_interval_ms = 100 # [defaults] only: fastest rate progress reaches the client
//!
//! [plugins.my-reports]  # by plugin name
//! enabled = true
//! file = "my-reports.wasm"   # the file this section binds to (default: named after the plugin)
//! sha256 = "…"               # refuse any file with another digest
//! prefix = "reports_"   # exposed tool names get this prefix (resolves name collisions)
//! deadline_ms = 60000
//! reads = ["service", "apis"]  # narrow the plugin's declared grants (never widens)
//! writes = []
//! [plugins.my-reports.config]  # what the plugin reads with config::get
//! team = "platform"
//! ```

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use serde::Deserialize;

use crate::runtime::engine::MAX_MEMORY_CAP;

/// The parsed configuration file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    #[serde(default)]
    pub defaults: LimitSettings,
    #[serde(default)]
    pub plugins: BTreeMap<String, PluginSettings>,
}

/// Limits as written in the file; unset values fall back to the defaults.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitSettings {
    pub deadline_ms: Option<u64>,
    pub memory_mib: Option<u64>,
    pub max_output_kib: Option<u64>,
    pub max_plan_writes: Option<u64>,
    pub max_log_lines: Option<u32>,
    pub max_concurrent_calls: Option<u32>,
    /// Shortest gap between two progress notifications of one call. Server-wide: the
    /// forwarder is set up before the call is routed to a plugin.
    pub progress_interval_ms: Option<u64>,
}

/// One plugin's section.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PluginSettings {
    pub enabled: Option<bool>,
    /// The file this section belongs to (default: the file named after the plugin).
    pub file: Option<String>,
    /// The SHA-256 the plugin's file must have (hex); anything else is refused.
    pub sha256: Option<String>,
    pub prefix: Option<String>,
    pub deadline_ms: Option<u64>,
    pub memory_mib: Option<u64>,
    pub max_output_kib: Option<u64>,
    pub max_plan_writes: Option<u64>,
    pub max_log_lines: Option<u32>,
    pub max_concurrent_calls: Option<u32>,
    pub reads: Option<Vec<String>>,
    pub writes: Option<Vec<String>>,
    #[serde(default)]
    pub config: BTreeMap<String, String>,
}

/// The limits one call of a plugin runs under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub deadline: Duration,
    pub memory_bytes: usize,
    pub max_output_bytes: usize,
    /// Writes one plan may make (see `changes::MAX_PLAN_WRITES`).
    pub max_plan_writes: usize,
    /// Most log lines (`log::write` plus captured stderr lines) one call may write.
    pub max_log_lines: u32,
    /// Most calls of this plugin running at once.
    pub max_concurrent_calls: u32,
}

/// Default cap on the log lines of one call. A chatty plugin logs a few dozen lines a call;
/// 1000 leaves room for real debugging while bounding one call's stderr to about 4 MiB
/// (1000 × [`crate::runtime::imports::MAX_LOG_LINE_BYTES`]). Past it lines are counted, and one
/// summary line says how many were dropped.
pub const DEFAULT_MAX_LOG_LINES: u32 = 1000;

/// Default number of calls of one plugin that run at once; further calls of that plugin wait
/// for a slot, and the wait counts against their own deadline. 16 is the in-flight target of
/// the benchmarks (BENCHMARKS.md), so ordinary use never queues, while a plugin whose calls
/// all loop holds at most 16 of the runtime's [`crate::runtime::engine::MAX_CONCURRENT_CALLS`]
/// (64) instances: three other plugins still find room.
pub const DEFAULT_MAX_CONCURRENT_CALLS: u32 = 16;

/// Default shortest gap between two progress notifications of one call. Ten updates a second
/// is smoother than any progress bar needs, and caps what one call can make the host send at
/// ten small messages a second, whatever the plugin reports (the latest report wins).
pub const DEFAULT_PROGRESS_INTERVAL: Duration = Duration::from_millis(100);

impl Default for Limits {
    fn default() -> Self {
        Self {
            deadline: Duration::from_secs(30),
            memory_bytes: 64 << 20,
            max_output_bytes: 1 << 20,
            max_plan_writes: crate::changes::MAX_PLAN_WRITES,
            max_log_lines: DEFAULT_MAX_LOG_LINES,
            max_concurrent_calls: DEFAULT_MAX_CONCURRENT_CALLS,
        }
    }
}

impl ConfigFile {
    /// Reads `path`. A missing file at the default location is an empty config; a file that
    /// does not parse is an error naming the file and the problem.
    pub fn load(path: &Path, must_exist: bool) -> anyhow::Result<Self> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !must_exist => return Ok(Self::default()),
            Err(e) => anyhow::bail!("cannot read the config file {}: {e}", path.display()),
        };
        let config: Self =
            toml::from_str(&text).map_err(|e| anyhow::anyhow!("the config file {} is invalid: {e}", path.display()))?;
        config.limits_for("<defaults>")?;
        config.progress_interval()?;
        for name in config.plugins.keys() {
            config.limits_for(name)?;
        }
        Ok(config)
    }

    /// The settings of plugin `name` (empty when the file has no section for it).
    pub fn plugin(&self, name: &str) -> PluginSettings {
        self.plugins.get(name).cloned().unwrap_or_default()
    }

    /// The limits of plugin `name`: its section, else `[defaults]`, else the built-in defaults.
    pub fn limits_for(&self, name: &str) -> anyhow::Result<Limits> {
        let section = self.plugin(name);
        let builtin = Limits::default();
        let deadline_ms =
            section.deadline_ms.or(self.defaults.deadline_ms).unwrap_or(builtin.deadline.as_millis() as u64);
        let memory_mib = section.memory_mib.or(self.defaults.memory_mib).unwrap_or((builtin.memory_bytes >> 20) as u64);
        let output_kib =
            section.max_output_kib.or(self.defaults.max_output_kib).unwrap_or((builtin.max_output_bytes >> 10) as u64);
        let plan_writes =
            section.max_plan_writes.or(self.defaults.max_plan_writes).unwrap_or(builtin.max_plan_writes as u64);
        let log_lines = section.max_log_lines.or(self.defaults.max_log_lines).unwrap_or(builtin.max_log_lines);
        let concurrency =
            section.max_concurrent_calls.or(self.defaults.max_concurrent_calls).unwrap_or(builtin.max_concurrent_calls);
        let scope = if name == "<defaults>" { "[defaults]".to_string() } else { format!("[plugins.{name}]") };
        if !(10..=600_000).contains(&deadline_ms) {
            anyhow::bail!("{scope} deadline_ms = {deadline_ms}: must be between 10 and 600000");
        }
        let max_mib = (MAX_MEMORY_CAP >> 20) as u64;
        if !(1..=max_mib).contains(&memory_mib) {
            anyhow::bail!("{scope} memory_mib = {memory_mib}: must be between 1 and {max_mib}");
        }
        if !(1..=65_536).contains(&output_kib) {
            anyhow::bail!("{scope} max_output_kib = {output_kib}: must be between 1 and 65536");
        }
        if !(1..=1000).contains(&plan_writes) {
            anyhow::bail!("{scope} max_plan_writes = {plan_writes}: must be between 1 and 1000");
        }
        if log_lines > 1_000_000 {
            anyhow::bail!("{scope} max_log_lines = {log_lines}: must be at most 1000000");
        }
        let max_calls = crate::runtime::engine::MAX_CONCURRENT_CALLS;
        if !(1..=max_calls).contains(&concurrency) {
            anyhow::bail!("{scope} max_concurrent_calls = {concurrency}: must be between 1 and {max_calls}");
        }
        Ok(Limits {
            deadline: Duration::from_millis(deadline_ms),
            memory_bytes: (memory_mib as usize) << 20,
            max_output_bytes: (output_kib as usize) << 10,
            max_plan_writes: plan_writes as usize,
            max_log_lines: log_lines,
            max_concurrent_calls: concurrency,
        })
    }

    /// The shortest gap between two progress notifications of a call (`[defaults]
    /// progress_interval_ms`, else [`DEFAULT_PROGRESS_INTERVAL`]).
    pub fn progress_interval(&self) -> anyhow::Result<Duration> {
        match self.defaults.progress_interval_ms {
            None => Ok(DEFAULT_PROGRESS_INTERVAL),
            Some(ms @ 10..=60_000) => Ok(Duration::from_millis(ms)),
            Some(ms) => anyhow::bail!("[defaults] progress_interval_ms = {ms}: must be between 10 and 60000"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plugin_sections_override_defaults_which_override_builtins() {
        let config: ConfigFile = toml::from_str(
            "[defaults]\nmemory_mib = 32\n[plugins.slow]\ndeadline_ms = 90000\n[plugins.slow.config]\nteam = \"x\"\n",
        )
        .unwrap();
        let slow = config.limits_for("slow").unwrap();
        assert_eq!(slow.deadline, Duration::from_secs(90));
        assert_eq!(slow.memory_bytes, 32 << 20);
        assert_eq!(config.limits_for("other").unwrap().deadline, Duration::from_secs(30));
        assert_eq!(config.plugin("slow").config["team"], "x");
    }

    #[test]
    fn out_of_range_limits_name_the_section_and_key() {
        let config: ConfigFile = toml::from_str("[plugins.hog]\nmemory_mib = 999999\n").unwrap();
        let err = config.limits_for("hog").unwrap_err().to_string();
        assert!(err.contains("[plugins.hog] memory_mib"), "{err}");
    }

    #[test]
    fn log_lines_and_concurrency_are_configurable_per_plugin_and_bounded() {
        let config: ConfigFile = toml::from_str(
            "[defaults]\nmax_log_lines = 10\nprogress_interval_ms = 250\n[plugins.busy]\nmax_concurrent_calls = 2\n",
        )
        .unwrap();
        let busy = config.limits_for("busy").unwrap();
        assert_eq!((busy.max_log_lines, busy.max_concurrent_calls), (10, 2));
        assert_eq!(config.limits_for("other").unwrap().max_concurrent_calls, DEFAULT_MAX_CONCURRENT_CALLS);
        assert_eq!(config.progress_interval().unwrap(), Duration::from_millis(250));
        let zero: ConfigFile = toml::from_str("[plugins.x]\nmax_concurrent_calls = 0\n").unwrap();
        let err = zero.limits_for("x").unwrap_err().to_string();
        assert!(err.contains("[plugins.x] max_concurrent_calls = 0"), "{err}");
        let fast: ConfigFile = toml::from_str("[defaults]\nprogress_interval_ms = 1\n").unwrap();
        assert!(fast.progress_interval().unwrap_err().to_string().contains("progress_interval_ms"));
    }

    #[test]
    fn unknown_keys_are_rejected_not_ignored() {
        let err = toml::from_str::<ConfigFile>("[plugins.x]\ndeadline = 5\n").unwrap_err().to_string();
        assert!(err.contains("deadline"), "{err}");
    }
}
