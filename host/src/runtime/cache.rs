//! On-disk cache of compiled plugins (`.cwasm`), so a warm start maps in a fraction of a
//! millisecond what takes Cranelift ~35 ms (release) to compile.
//!
//! Deserialising compiled code is `unsafe`: wasmtime trusts the machine code in the file. The
//! cache therefore only loads files it could have written itself for *these exact bytes on
//! this exact engine*: the file name is `{sha256 of the component}-{engine fingerprint}.cwasm`,
//! where the fingerprint hashes wasmtime's compatibility data (version, target, settings).
//! A changed plugin has a new hash and a new wasmtime a new fingerprint, so a stale or foreign
//! `.cwasm` is never even opened. Each entry ends with a trailer naming the digest of the
//! component it was compiled from *and the BLAKE3 digest of the compiled code itself*; both
//! are checked before deserialising, so a file copied or renamed into place, or an entry whose
//! code was swapped for another plugin's while its trailer was kept, is recompiled rather than
//! trusted; wasmtime additionally checks its own header. BLAKE3 rather than SHA-256 because it
//! is on the warm-start path: the built-ins' 3 MiB of code hash in 0.7 ms (largest entry; the
//! loads run in parallel) instead of 2.1 ms with SHA-256 (release, 2 vCPUs, BENCHMARKS.md). What remains trusted is the
//! directory itself: someone who can write it *while* the host starts could still swap a file
//! between the check and wasmtime's mapping, which is why it must be writable only by the
//! user running the host.
//! Files are written to a temporary name and renamed, so a crash never leaves a half-written
//! entry (and a mapped entry is never rewritten in place). A file that still fails to load is
//! deleted and the component recompiled.
//!
//! Entries are memory-mapped, not read: only the pages of code a plugin actually runs become
//! resident, and wasmtime can map data segments for copy-on-write straight from the file.
//! The trailer sits at the end so the file stays a plain wasmtime artifact from byte 0.
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
        match check_entry(&entry, digest) {
            Ok(Entry::Valid) => {
                // SAFETY: the name binds the file to this engine, the trailer to these component
                // bytes and to the code it was written with (just re-hashed), and only this cache writes such files, always by rename (see the module
                // docs), so the mapped file is never modified underneath the mapping.
                match unsafe { Component::deserialize_file(engine, &entry) } {
                    Ok(component) => return Ok((component, CacheOutcome::Hit)),
                    Err(e) => tracing::warn!(path = %entry.display(), "discarding unusable compile cache entry: {e}"),
                }
                let _ = std::fs::remove_file(&entry);
            }
            Ok(Entry::OtherComponent) => {
                tracing::warn!(path = %entry.display(), "discarding a compile cache entry made from other bytes");
                let _ = std::fs::remove_file(&entry);
            }
            Ok(Entry::AlteredCode) => {
                tracing::warn!(path = %entry.display(), "discarding a compile cache entry whose code does not match its trailer");
                let _ = std::fs::remove_file(&entry);
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => tracing::warn!(path = %entry.display(), "cannot read the compile cache entry: {e}"),
        }
        let compiled = engine.precompile_component(bytes)?;
        let code_digest = blake3::hash(&compiled).to_hex().to_string();
        let mut file = compiled;
        file.extend_from_slice(&trailer(digest, &code_digest));
        if let Err(e) = write_atomically(&entry, &file) {
            tracing::warn!(path = %entry.display(), "could not write the compile cache: {e}");
        }
        // SAFETY: `file` is what this engine produced a moment ago, plus the trailer.
        let component = unsafe { Component::deserialize(engine, &file[..file.len() - TRAILER_LEN])? };
        Ok((component, CacheOutcome::Compiled))
    }
}

/// Length of the trailer that ends every cache entry: a magic word, the component's digest and
/// the digest of the compiled code before the trailer.
const TRAILER_LEN: usize = "\naigw-cwasm-v3  \n".len() + 2 * 64;

fn trailer(digest: &str, code_digest: &str) -> Vec<u8> {
    let trailer = format!("\naigw-cwasm-v3 {digest} {code_digest}\n").into_bytes();
    debug_assert_eq!(trailer.len(), TRAILER_LEN, "digests are 64 hex digits");
    trailer
}

/// What a cache entry turned out to be.
#[derive(Debug, PartialEq, Eq)]
enum Entry {
    /// Compiled from these component bytes, and its code is what was written.
    Valid,
    /// Compiled from other bytes, or from an older cache format.
    OtherComponent,
    /// The trailer names these bytes but the code before it is not the code that was written.
    AlteredCode,
}

/// Checks the entry at `path` against `digest`: its trailer first (cheap), then the BLAKE3
/// digest of everything before the trailer, read in blocks (no more than a block is resident).
fn check_entry(path: &Path, digest: &str) -> std::io::Result<Entry> {
    use std::io::{Read, Seek, SeekFrom};
    let mut file = std::fs::File::open(path)?;
    let len = file.metadata()?.len();
    if len < TRAILER_LEN as u64 {
        return Ok(Entry::OtherComponent);
    }
    file.seek(SeekFrom::End(-(TRAILER_LEN as i64)))?;
    let mut tail = [0u8; TRAILER_LEN];
    file.read_exact(&mut tail)?;
    let expected_prefix = format!("\naigw-cwasm-v3 {digest} ");
    if !tail.starts_with(expected_prefix.as_bytes()) {
        return Ok(Entry::OtherComponent);
    }
    let code_digest = &tail[expected_prefix.len()..TRAILER_LEN - 1];
    file.seek(SeekFrom::Start(0))?;
    let mut hasher = blake3::Hasher::new();
    let mut code = file.take(len - TRAILER_LEN as u64);
    let mut block = vec![0u8; 256 << 10];
    loop {
        let n = code.read(&mut block)?;
        if n == 0 {
            break;
        }
        hasher.update(&block[..n]);
    }
    Ok(if hasher.finalize().to_hex().as_bytes() == code_digest { Entry::Valid } else { Entry::AlteredCode })
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
