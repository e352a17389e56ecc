//! Helpers shared by the end-to-end tests: test components, plugin directories, caches.
#![allow(dead_code)]

pub mod harness;
pub mod in_process;

use std::path::{Path, PathBuf};

/// The test components built by host/build.rs (plugins/testing/*).
pub fn test_plugin(stem: &str) -> PathBuf {
    let path = Path::new(env!("AIGW_TEST_PLUGINS_DIR")).join(format!("{stem}.wasm"));
    assert!(path.exists(), "missing test component {}", path.display());
    path
}

/// A fresh plugin directory holding copies of the named test components.
pub fn plugin_dir_with(stems: &[&str]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for stem in stems {
        std::fs::copy(test_plugin(stem), dir.path().join(format!("{stem}.wasm"))).unwrap();
    }
    dir
}

/// A compile cache shared by the tests of one run, so each component compiles once.
pub fn shared_cache_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("aigw-test-compile-cache")
}

/// The host binary under test.
pub fn host_binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_azure-ai-gateway-mcp"))
}

/// The text of a tool result's first content block.
pub fn text_of(result: &rmcp::model::CallToolResult) -> String {
    result.content.first().and_then(|c| c.as_text()).map(|t| t.text.clone()).unwrap_or_default()
}

/// The plugins of `dir` alone (no built-ins, no Azure, default config), compiled through the
/// compile cache at `cache`: what the cache tests load.
pub async fn load_plugins(dir: &Path, cache: PathBuf) -> aigw_host::runtime::Runtime {
    aigw_host::runtime::Runtime::load(aigw_host::runtime::RuntimeOptions {
        plugins_dir: Some(dir.to_path_buf()),
        cache_dir: Some(cache),
        config: aigw_host::config::ConfigFile::default(),
        arm: None,
        logs: None,
        builtins: false,
        extra_files: vec![],
    })
    .await
    .unwrap()
}
