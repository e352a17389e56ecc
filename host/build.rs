//! Builds the guest components in `plugins/` for wasm32-wasip2 and embeds the built-ins.
//!
//! Built-in plugins go through the same loader, limits and grants as a dropped-in `.wasm`; they
//! are only *shipped* inside the binary. The test components in `plugins/testing/` are built in
//! the same cargo run (it costs a second) and their folder is exported to the host's tests as
//! `AIGW_TEST_PLUGINS_DIR`; they are never embedded.
//!
//! The inner cargo uses its own target directory (`target/wasm-plugins`), so it never waits on
//! the lock the outer cargo holds. A missing wasm32-wasip2 target is installed with rustup, or
//! the build stops with the exact command to run.

use std::env;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The plugins shipped inside the binary: (plugin file stem, crate artifact name).
const BUILTINS: &[&str] = &["service_info", "quota"];

fn main() {
    let manifest_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").unwrap());
    let root = manifest_dir.parent().unwrap().to_path_buf();
    let plugins = root.join("plugins");
    watch_sources(&plugins);
    println!("cargo:rerun-if-changed={}", root.join("wit").display());

    ensure_wasm_target();

    let target_dir = root.join("target").join("wasm-plugins");
    let cargo = env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut build = Command::new(cargo);
    build
        .args(["build", "--release", "--target", "wasm32-wasip2", "--workspace", "--manifest-path"])
        .arg(plugins.join("Cargo.toml"))
        .arg("--target-dir")
        .arg(&target_dir);
    // The outer build's settings are for the host, not for wasm guests.
    for var in
        ["CARGO_TARGET_DIR", "CARGO_BUILD_TARGET", "RUSTFLAGS", "CARGO_ENCODED_RUSTFLAGS", "CARGO_BUILD_RUSTFLAGS"]
    {
        build.env_remove(var);
    }
    for (key, _) in env::vars() {
        if key.starts_with("CARGO_PROFILE_") || key.starts_with("CARGO_CFG_") || key.starts_with("CARGO_FEATURE_") {
            build.env_remove(key);
        }
    }
    let status = build.status().expect("could not run cargo to build the plugins");
    if !status.success() {
        panic!("building the plugins in {} for wasm32-wasip2 failed (see the errors above)", plugins.display());
    }

    let wasm_dir = target_dir.join("wasm32-wasip2").join("release");
    let out_dir = PathBuf::from(env::var("OUT_DIR").unwrap());
    let mut source = String::from(
        "/// Built-in plugins: (file name, component bytes, SHA-256 of the bytes in hex).\n\
         pub static BUILTINS: &[(&str, &[u8], &str)] = &[\n",
    );
    for stem in BUILTINS {
        let built = wasm_dir.join(format!("{stem}.wasm"));
        let copy = out_dir.join(format!("{stem}.wasm"));
        std::fs::copy(&built, &copy).unwrap_or_else(|e| panic!("missing built-in plugin {}: {e}", built.display()));
        // Hashed here so a start does not hash ~1 MB of embedded bytes it already knows.
        let digest = sha256_hex(&std::fs::read(&copy).unwrap());
        writeln!(
            source,
            "    ({:?}, include_bytes!({:?}), {digest:?}),",
            format!("{}.wasm", stem.replace('_', "-")),
            copy.display().to_string()
        )
        .unwrap();
    }
    source.push_str("];\n");
    std::fs::write(out_dir.join("builtins.rs"), source).unwrap();
    println!("cargo:rustc-env=AIGW_TEST_PLUGINS_DIR={}", wasm_dir.display());
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// Asks cargo to rerun this script when a plugin's sources change. Only crate manifests,
/// `src/` and `wit/` are watched: a `target/` folder someone built into by hand must not
/// trigger host rebuilds.
fn watch_sources(dir: &Path) {
    println!("cargo:rerun-if-changed={}", dir.join("Cargo.toml").display());
    println!("cargo:rerun-if-changed={}", dir.join("Cargo.lock").display());
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name();
        if !path.is_dir() || name == "target" || name.to_string_lossy().starts_with('.') {
            continue;
        }
        if path.join("Cargo.toml").exists() {
            for watched in ["Cargo.toml", "src", "wit", "build.rs"] {
                if path.join(watched).exists() {
                    println!("cargo:rerun-if-changed={}", path.join(watched).display());
                }
            }
        } else {
            watch_sources(&path);
        }
    }
}

/// Makes sure the wasm32-wasip2 standard library is installed for the active toolchain.
fn ensure_wasm_target() {
    let rustc = env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let sysroot = Command::new(&rustc)
        .args(["--print", "sysroot"])
        .output()
        .ok()
        .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()));
    let installed = |root: &Path| root.join("lib/rustlib/wasm32-wasip2/lib").is_dir();
    if sysroot.as_deref().is_some_and(installed) {
        return;
    }
    println!("cargo:warning=installing the wasm32-wasip2 target (rustup target add wasm32-wasip2)");
    let added = Command::new("rustup").args(["target", "add", "wasm32-wasip2"]).status();
    if !matches!(added, Ok(s) if s.success()) {
        panic!(
            "the wasm32-wasip2 target is missing and could not be installed automatically.\n\
             Run this, then build again:\n\n    rustup target add wasm32-wasip2\n"
        );
    }
}
