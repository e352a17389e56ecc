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
//! require_pinned = false     # [defaults] only: refuse dropped-in plugins without a sha256 pin
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
//! price_per_1k = 0.02   # numbers and booleans too: the plugin gets "0.02"
//! ```
//!
//! Who an error belongs to decides what it stops:
//! - A file that is not TOML, an unknown top-level key, or a bad `[defaults]` value has no
//!   plugin to blame and affects every plugin: the start stops with a message naming the file,
//!   the key and the problem.
//! - An error inside `[plugins.NAME]` (an unknown key, a wrong type, a limit out of range, an
//!   unknown resource kind) belongs to that plugin alone: the section is recorded as invalid
//!   ([`ConfigFile::section_error`]), the plugin is not loaded (reported with the reason), and
//!   the server and every other plugin start normally. A section is never half-applied.
//! - A section that names no plugin is a warning, with the closest plugin name
//!   (see `runtime::Runtime::config_warnings`).
//!
//! Config values (`[plugins.NAME.config]`) reach the plugin as text through `config::get`: a
//! string as written, a number or boolean in its TOML spelling (`0.02`, `42`, `true`), a
//! date-time in RFC 3339, an array or table as JSON text (`["a","b"]`, `{"k":1}`).

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use serde::Deserialize;

use crate::runtime::engine::MAX_MEMORY_CAP;

/// The parsed configuration file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(from = "RawConfigFile")]
pub struct ConfigFile {
    pub defaults: LimitSettings,
    /// The valid plugin sections, by section name.
    pub plugins: BTreeMap<String, PluginSettings>,
    /// The invalid plugin sections: section name → what is wrong, naming the key.
    pub invalid: BTreeMap<String, String>,
}

/// The file as TOML gives it: each plugin section is checked on its own, so that one bad
/// section costs one plugin, not the start.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfigFile {
    #[serde(default)]
    defaults: LimitSettings,
    #[serde(default)]
    plugins: BTreeMap<String, toml::Value>,
}

impl From<RawConfigFile> for ConfigFile {
    fn from(raw: RawConfigFile) -> Self {
        let mut config = ConfigFile { defaults: raw.defaults, ..Self::default() };
        for (name, section) in raw.plugins {
            match PluginSettings::deserialize(section) {
                Ok(settings) => {
                    config.plugins.insert(name, settings);
                }
                Err(e) => {
                    let why = e.to_string().trim().replace('\n', " ");
                    config.invalid.insert(name, why);
                }
            }
        }
        let names: Vec<String> = config.plugins.keys().cloned().collect();
        for name in names {
            if let Err(e) = config.check_section(&name) {
                config.plugins.remove(&name);
                let why = e.to_string();
                let why = why.strip_prefix(&format!("[plugins.{name}] ")).unwrap_or(&why).to_string();
                config.invalid.insert(name, why);
            }
        }
        config
    }
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
    /// `[defaults]` only: refuse every dropped-in plugin whose section does not pin its
    /// `sha256` (built-ins are pinned by being compiled in).
    pub require_pinned: Option<bool>,
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
    /// The plugin's own settings (`[plugins.NAME.config]`), as written; see
    /// [`PluginSettings::config_text`] for what the plugin reads.
    #[serde(default)]
    pub config: BTreeMap<String, toml::Value>,
}

impl PluginSettings {
    /// The plugin's settings as `config::get` returns them: strings as written, numbers and
    /// booleans in their TOML spelling (`0.02`, `true`), date-times in RFC 3339, arrays and
    /// tables as JSON text.
    pub fn config_text(&self) -> BTreeMap<String, String> {
        self.config.iter().map(|(key, value)| (key.clone(), config_value_text(value))).collect()
    }
}

/// One config value as the text a plugin reads (see [`PluginSettings::config_text`]).
pub fn config_value_text(value: &toml::Value) -> String {
    match value {
        toml::Value::String(s) => s.clone(),
        toml::Value::Array(_) | toml::Value::Table(_) => to_json(value).to_string(),
        // Integer, float, boolean, date-time: TOML's own spelling (1.0 stays "1.0").
        scalar => scalar.to_string(),
    }
}

fn to_json(value: &toml::Value) -> serde_json::Value {
    match value {
        toml::Value::String(s) => s.clone().into(),
        toml::Value::Integer(i) => (*i).into(),
        // JSON has no NaN or infinity: those are spelled as TOML spells them, in a string.
        toml::Value::Float(f) => serde_json::Number::from_f64(*f).map_or_else(|| value.to_string().into(), Into::into),
        toml::Value::Boolean(b) => (*b).into(),
        toml::Value::Datetime(d) => d.to_string().into(),
        toml::Value::Array(items) => items.iter().map(to_json).collect(),
        toml::Value::Table(table) => table.iter().map(|(k, v)| (k.clone(), to_json(v))).collect(),
    }
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
        let in_file = |e: anyhow::Error| anyhow::anyhow!("the config file {} is invalid: {e}", path.display());
        config.limits_for("<defaults>").map_err(in_file)?;
        config.progress_interval().map_err(in_file)?;
        for (name, why) in &config.invalid {
            tracing::warn!(config = %path.display(), "[plugins.{name}] is invalid, so plugin {name:?} will not be loaded: {why}");
        }
        Ok(config)
    }

    /// The settings of plugin `name` (empty when the file has no valid section for it; see
    /// [`ConfigFile::section_error`]).
    pub fn plugin(&self, name: &str) -> PluginSettings {
        self.plugins.get(name).cloned().unwrap_or_default()
    }

    /// Why the section `[plugins.name]` is invalid, if it is: a sentence naming the section and
    /// the key. A plugin whose section is invalid is not loaded.
    pub fn section_error(&self, name: &str) -> Option<String> {
        self.invalid.get(name).map(|why| format!("[plugins.{name}] in the config file is invalid: {why}"))
    }

    /// Every section name in the file, valid or not.
    pub fn section_names(&self) -> impl Iterator<Item = &str> {
        self.plugins.keys().chain(self.invalid.keys()).map(String::as_str)
    }

    /// Checks what a parsed section says beyond its types: its limits (over `[defaults]`) and
    /// that its grant lists name known resource kinds.
    fn check_section(&self, name: &str) -> anyhow::Result<()> {
        self.limits_for(name)?;
        let section = self.plugin(name);
        for (key, kinds) in [("reads", &section.reads), ("writes", &section.writes)] {
            for kind in kinds.iter().flatten() {
                crate::runtime::grants::check_known_kind(kind).map_err(|why| anyhow::anyhow!("{key}: {why}"))?;
            }
        }
        Ok(())
    }

    /// The limits of plugin `name`: its section, else `[defaults]`, else the built-in defaults.
    pub fn limits_for(&self, name: &str) -> anyhow::Result<Limits> {
        if let Some(error) = self.section_error(name) {
            anyhow::bail!(error);
        }
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

/// The candidate closest to `wanted`, if one is close enough to be what was meant: compared
/// ignoring case and treating `_` as `-` (a file name `team_cost` for the plugin `team-cost`),
/// then by edit distance, at most 2 edits (or a third of the name, for long names).
pub fn closest<'a>(wanted: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let normal = |s: &str| s.to_ascii_lowercase().replace('_', "-");
    let wanted = normal(wanted);
    let budget = (wanted.chars().count() / 3).max(2);
    candidates
        .into_iter()
        .map(|c| (edit_distance(&wanted, &normal(c)), c))
        .filter(|(d, _)| *d <= budget)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// Levenshtein distance over characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitution = diagonal + usize::from(ca != *cb);
            diagonal = row[j + 1];
            row[j + 1] = substitution.min(row[j] + 1).min(row[j + 1] + 1);
        }
    }
    row[b.len()]
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
        assert_eq!(config.plugin("slow").config_text()["team"], "x");
    }

    #[test]
    fn out_of_range_limits_name_the_section_and_key() {
        let config: ConfigFile = toml::from_str("[plugins.hog]\nmemory_mib = 999999\n").unwrap();
        let err = config.limits_for("hog").unwrap_err().to_string();
        assert!(err.contains("[plugins.hog]") && err.contains("memory_mib = 999999: must be between 1 and"), "{err}");
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
        assert!(err.contains("[plugins.x]") && err.contains("max_concurrent_calls = 0"), "{err}");
        let fast: ConfigFile = toml::from_str("[defaults]\nprogress_interval_ms = 1\n").unwrap();
        assert!(fast.progress_interval().unwrap_err().to_string().contains("progress_interval_ms"));
    }

    #[test]
    fn unknown_keys_are_rejected_not_ignored() {
        let config = toml::from_str::<ConfigFile>("[plugins.x]\ndeadline = 5\n").unwrap();
        let err = config.section_error("x").expect("the section is invalid");
        assert!(err.contains("[plugins.x]") && err.contains("deadline"), "{err}");
        assert!(!config.plugins.contains_key("x"), "an invalid section is never half-applied");
        let err = toml::from_str::<ConfigFile>("[plugin.x]\nenabled = false\n").unwrap_err().to_string();
        assert!(err.contains("plugin"), "an unknown top-level key has no plugin to blame: {err}");
    }

    #[test]
    fn config_values_may_be_numbers_booleans_dates_arrays_and_tables() {
        let config: ConfigFile = toml::from_str(
            "[plugins.team-cost.config]\nteam = \"platform\"\nprice_per_1k = 0.02\nmonthly_budget = 1500\n\
             round = 1.0\nstrict = true\nsince = 2026-01-01T00:00:00Z\nteams = [\"growth\", \"search\"]\n\
             [plugins.team-cost.config.weights]\ngrowth = 2\n",
        )
        .unwrap();
        assert!(config.invalid.is_empty(), "{:?}", config.invalid);
        let text = config.plugin("team-cost").config_text();
        assert_eq!(text["team"], "platform");
        assert_eq!(text["price_per_1k"], "0.02");
        assert_eq!(text["monthly_budget"], "1500");
        assert_eq!(text["round"], "1.0");
        assert_eq!(text["strict"], "true");
        assert_eq!(text["since"], "2026-01-01T00:00:00Z");
        assert_eq!(text["teams"], r#"["growth","search"]"#);
        assert_eq!(text["weights"], r#"{"growth":2}"#);
    }

    #[test]
    fn a_bad_plugin_section_costs_that_plugin_and_not_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        std::fs::write(
            &path,
            "[plugins.hog]\nmemory_mib = 999999\n[plugins.typo]\ndeadline = 5\n[plugins.kinds]\nreads = [\"backend\"]\n\
             [plugins.fine]\nprefix = \"f_\"\n[plugins.fine.config]\nprice_per_1k = 0.02\n",
        )
        .unwrap();
        let config = ConfigFile::load(&path, true).expect("plugin sections never fail the file");
        let hog = config.section_error("hog").unwrap();
        assert!(hog.contains("[plugins.hog]") && hog.contains("memory_mib = 999999"), "{hog}");
        assert!(config.section_error("typo").unwrap().contains("deadline"));
        let kinds = config.section_error("kinds").unwrap();
        assert!(kinds.contains("reads") && kinds.contains("did you mean \"backends\""), "{kinds}");
        assert_eq!(config.section_error("fine"), None);
        assert_eq!(config.plugin("fine").config_text()["price_per_1k"], "0.02");
        assert_eq!(config.limits_for("fine").unwrap(), Limits::default());
    }

    #[test]
    fn a_file_that_is_not_toml_or_a_bad_default_still_stops_the_start_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        std::fs::write(&path, "[plugins.x\n").unwrap();
        let err = ConfigFile::load(&path, true).unwrap_err().to_string();
        assert!(err.contains("config.toml") && err.contains("invalid"), "{err}");
        std::fs::write(&path, "[defaults]\nmemory_mib = 999999\n").unwrap();
        let err = ConfigFile::load(&path, true).unwrap_err().to_string();
        assert!(err.contains("config.toml") && err.contains("[defaults] memory_mib"), "{err}");
    }

    #[test]
    fn the_closest_name_ignores_case_and_underscores_and_stays_close() {
        let names = ["team-cost", "quota", "service-info"];
        assert_eq!(closest("team_cost", names), Some("team-cost"));
        assert_eq!(closest("Team-Costs", names), Some("team-cost"));
        assert_eq!(closest("quotas", names), Some("quota"));
        assert_eq!(closest("billing", names), None);
    }
}
