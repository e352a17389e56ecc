//! The operator's configuration file (TOML): per-plugin limits, prefixes, grant narrowing and
//! settings. Flags and environment variables cover everything else (see `main.rs`).
//!
//! ```toml
//! [defaults]            # for every plugin
//! deadline_ms = 30000   # wall-clock budget of one call
//! memory_mib = 64       # linear memory cap of one call
//! max_output_kib = 1024 # cap on a call's answer
//! max_plan_writes = 100 # writes one plan may make
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
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            deadline: Duration::from_secs(30),
            memory_bytes: 64 << 20,
            max_output_bytes: 1 << 20,
            max_plan_writes: crate::changes::MAX_PLAN_WRITES,
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
        Ok(Limits {
            deadline: Duration::from_millis(deadline_ms),
            memory_bytes: (memory_mib as usize) << 20,
            max_output_bytes: (output_kib as usize) << 10,
            max_plan_writes: plan_writes as usize,
        })
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
    fn unknown_keys_are_rejected_not_ignored() {
        let err = toml::from_str::<ConfigFile>("[plugins.x]\ndeadline = 5\n").unwrap_err().to_string();
        assert!(err.contains("deadline"), "{err}");
    }
}
