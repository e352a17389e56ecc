//! On-disk cache of compiled plugins (`.cwasm`), so a warm start deserialises in ~0.2 ms what
//! takes Cranelift ~35 ms (release) to compile.
//!
//! Deserialising compiled code is `unsafe`: wasmtime trusts the machine code in the file. The
//! cache therefore only loads files it could have written itself for *these exact bytes on
//! this exact engine*: the file name is `{sha256 of the component}-{engine fingerprint}.cwasm`,
//! where the fingerprint hashes wasmtime's compatibility data (version, target, settings).
//! A changed plugin has a new hash and a new wasmtime a new fingerprint, so a stale or foreign
//! `.cwasm` is never even opened. Inside, each entry starts with a header naming the digest of
//! the component it was compiled from, checked before deserialising, so a file copied or renamed
//! into place is recompiled rather than trusted; wasmtime additionally checks its own header. Files are
//! written to a temporary name and renamed, so a crash never leaves a half-written entry. A
//! file that still fails to load is deleted and the component recompiled.
//!
//! The cache directory must be writable only by the user running the host (it is in the
//! user's cache directory by default).

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

use super::engine::{compatibility_fingerprint, hex};

/// Where a component came from this time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheOutcome {
    /// Loaded from a `.cwasm` in the cache.
    Hit,
    /// Compiled, and written to the cache.
    Compiled,
    /// Compiled; caching is off.
    Uncached,
}

/// The compile cache. `dir: None` disables it.
pub struct CompileCache {
    dir: Option<PathBuf>,
    engine_fingerprint: String,
}

impl CompileCache {
    /// A cache in `dir` (created on first write) for `engine`.
    pub fn new(engine: &Engine, dir: Option<PathBuf>) -> Self {
        Self { dir, engine_fingerprint: compatibility_fingerprint(engine) }
    }

    /// The SHA-256 of a component, in hex: its identity in the cache and in `plugins list`.
    pub fn digest(bytes: &[u8]) -> String {
        hex(&Sha256::digest(bytes))
    }

    /// The cache file for a component with this digest.
    pub fn entry_path(&self, digest: &str) -> Option<PathBuf> {
        self.dir.as_ref().map(|d| d.join(format!("{digest}-{}.cwasm", self.engine_fingerprint)))
    }

    /// Returns the compiled component for `bytes`, from the cache when possible.
    pub fn load(&self, engine: &Engine, bytes: &[u8], digest: &str) -> anyhow::Result<(Component, CacheOutcome)> {
        let Some(entry) = self.entry_path(digest) else {
            return Ok((Component::new(engine, bytes)?, CacheOutcome::Uncached));
        };
        if let Ok(file) = std::fs::read(&entry) {
            match strip_header(&file, digest) {
                // SAFETY: the name binds the file to this engine, the header to these component
                // bytes, and only this cache writes such files (see the module docs).
                Some(artifact) => match unsafe { Component::deserialize(engine, artifact) } {
                    Ok(component) => return Ok((component, CacheOutcome::Hit)),
                    Err(e) => tracing::warn!(path = %entry.display(), "discarding unusable compile cache entry: {e}"),
                },
                None => {
                    tracing::warn!(path = %entry.display(), "discarding a compile cache entry made from other bytes")
                }
            }
            let _ = std::fs::remove_file(&entry);
        }
        let compiled = engine.precompile_component(bytes)?;
        let mut file = header(digest);
        file.extend_from_slice(&compiled);
        if let Err(e) = write_atomically(&entry, &file) {
            tracing::warn!(path = %entry.display(), "could not write the compile cache: {e}");
        }
        // SAFETY: `compiled` was produced by this engine a moment ago.
        let component = unsafe { Component::deserialize(engine, &compiled)? };
        Ok((component, CacheOutcome::Compiled))
    }
}

/// What starts every cache entry: a magic line and the component's digest.
fn header(digest: &str) -> Vec<u8> {
    format!("aigw-cwasm-v1 {digest}\n").into_bytes()
}

/// The compiled artifact of `file`, if its header names `digest`.
fn strip_header<'a>(file: &'a [u8], digest: &str) -> Option<&'a [u8]> {
    file.strip_prefix(header(digest).as_slice())
}

fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().expect("cache entries live in a directory");
    std::fs::create_dir_all(dir)?;
    // Unique per writer (threads of one process included), so concurrent loads never share it.
    let unique = uuid::Uuid::new_v4().simple();
    let tmp = dir.join(format!(".{}.{unique}.tmp", path.file_name().unwrap().to_string_lossy()));
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
}
