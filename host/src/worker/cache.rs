//! Compiled plugins cached by content hash, so a restart or a swap back to a known version
//! skips compilation.

use std::hash::{Hash, Hasher};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use crate::private_dir;
use wasmtime::Engine;
use wasmtime::component::Component;

/// A folder of compiled components, each named by its source's SHA-256 and the engine's
/// compatibility hash (so another wasmtime build or `Config` never picks it up).
pub struct ArtifactCache {
    dir: PathBuf,
    engine_tag: String,
}

impl ArtifactCache {
    /// A cache in `dir` for artifacts of `engine`; the folder is made on first store.
    pub fn new(dir: PathBuf, engine: &Engine) -> Self {
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        Self {
            dir,
            engine_tag: format!("{:016x}", hasher.finish()),
        }
    }

    fn path(&self, sha256: &str) -> PathBuf {
        self.dir.join(format!("{sha256}-{}.cwasm", self.engine_tag))
    }

    /// The cached component for this source hash, if there is a usable one.
    pub fn load(&self, engine: &Engine, sha256: &str) -> Option<Component> {
        let path = self.path(sha256);
        if !path.is_file() {
            return None;
        }
        // Mapped as machine code: only what this user alone could have written is trusted.
        if let Err(why) = private_dir::check(&self.dir).and_then(|()| private_dir::check(&path)) {
            tracing::warn!(path = %path.display(), "not using the compile cache: {why}");
            return None;
        }
        match deserialize(engine, &path) {
            Ok(component) => Some(component),
            Err(e) => {
                // A stale or damaged entry: drop it and compile again.
                tracing::warn!(path = %path.display(), "ignoring cached plugin: {e:#}");
                let _ = std::fs::remove_file(&path);
                None
            }
        }
    }

    /// Stores a compiled component; failures only cost a later recompile, so they are logged.
    pub fn store(&self, sha256: &str, component: &Component) {
        if let Err(e) = self.try_store(sha256, component) {
            tracing::warn!(dir = %self.dir.display(), "cannot cache compiled plugin: {e:#}");
        }
    }

    fn try_store(&self, sha256: &str, component: &Component) -> anyhow::Result<()> {
        private_dir::create(&self.dir)?;
        let bytes = component
            .serialize()
            .map_err(|e| anyhow::anyhow!("{e:#}"))?;
        let path = self.path(sha256);
        let temp = path.with_extension(format!("tmp{}", std::process::id()));
        // Only this user may write what the host will later map as trusted machine code.
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&temp)?;
        file.write_all(&bytes)?;
        file.sync_all()?;
        std::fs::rename(&temp, &path)?;
        Ok(())
    }
}

/// Maps a cached artifact.
#[allow(unsafe_code)]
fn deserialize(engine: &Engine, path: &Path) -> wasmtime::Result<Component> {
    // SAFETY: wasmtime requires the bytes to come from `Component::serialize` of a compatible
    // engine. Only `ArtifactCache::try_store` writes this folder's `.cwasm` files (mode 0600,
    // written to a temporary name and renamed, so never partial; the folder and file were
    // checked to be this user's alone), and the name carries the engine's compatibility
    // hash; wasmtime also checks its own header and version.
    unsafe { Component::deserialize_file(engine, path) }
}
