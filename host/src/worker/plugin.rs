//! Loading a plugin file: compile it (or take it from the cache), check it against the
//! `plugin` world, ready it to instantiate.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use wasmtime::Engine;
use wasmtime::component::{Component, Linker};

use super::bindings::PluginPre;
use super::cache::ArtifactCache;
use super::state::InstanceState;
use super::unhandled::Unhandled;
use crate::bus::sha256_hex;

/// Why a plugin file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum PluginError {
    /// The file could not be read.
    #[error("cannot read plugin {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The bytes are not a valid component.
    #[error("plugin {path} is not a valid WebAssembly component: {reason}")]
    Compile {
        /// The file.
        path: PathBuf,
        /// The compiler's message.
        reason: String,
    },
    /// The component does not fit the `plugin` world (or imports what the host withholds).
    #[error("plugin {path} does not match the switchboard:plugin world: {reason}")]
    World {
        /// The file.
        path: PathBuf,
        /// What does not match.
        reason: String,
    },
    /// The canary instance failed to start.
    #[error("plugin {path} failed its start check: {reason}")]
    Canary {
        /// The file.
        path: PathBuf,
        /// What failed.
        reason: String,
    },
}

/// One compiled version of an app's plugin, ready to instantiate.
pub struct Version {
    /// The file it came from.
    pub path: PathBuf,
    /// The first 12 hex digits of the SHA-256 of the file: the version's name.
    pub hash: Arc<str>,
    /// The full SHA-256 of the file, hex.
    pub sha256: String,
    /// When it was loaded.
    pub loaded_at: SystemTime,
    /// How long reading and compiling (or mapping from the cache) took.
    pub load_time: Duration,
    /// Whether the compiled code came from the cache.
    pub cached: bool,
    /// Size of the file in bytes.
    pub size: usize,
    /// The checked, linked component.
    pub pre: PluginPre<InstanceState>,
    /// The handlers its instances said they leave to the SDK's default.
    pub unhandled: Arc<Unhandled>,
}

/// Turns plugin files into [`Version`]s: one engine, one linker, one artifact cache.
pub struct Loader {
    engine: Engine,
    linker: Linker<InstanceState>,
    cache: ArtifactCache,
}

impl Loader {
    /// A loader checking plugins against `linker`'s world, caching in `cache_dir`.
    pub fn new(engine: Engine, linker: Linker<InstanceState>, cache_dir: PathBuf) -> Self {
        let cache = ArtifactCache::new(cache_dir, &engine);
        Self {
            engine,
            linker,
            cache,
        }
    }

    /// The SHA-256 of a file, hex; cheap next to compiling, so a touched but unchanged file
    /// can be recognised.
    pub fn digest(path: &Path) -> Result<(String, Vec<u8>), PluginError> {
        let bytes = std::fs::read(path).map_err(|source| PluginError::Read {
            path: path.to_owned(),
            source,
        })?;
        Ok((sha256_hex(&bytes), bytes))
    }

    /// Reads, compiles (or maps from the cache) and checks a plugin file. Takes CPU time:
    /// call it from a blocking thread.
    pub fn load_blocking(&self, path: &Path) -> Result<Version, PluginError> {
        let started = Instant::now();
        let (sha256, bytes) = Self::digest(path)?;
        let (component, cached) = match self.cache.load(&self.engine, &sha256) {
            Some(component) => (component, true),
            None => {
                let component = Component::from_binary(&self.engine, &bytes).map_err(|e| {
                    PluginError::Compile {
                        path: path.to_owned(),
                        reason: format!("{e:#}"),
                    }
                })?;
                (component, false)
            }
        };
        let world = |e: wasmtime::Error| PluginError::World {
            path: path.to_owned(),
            reason: format!("{e:#}"),
        };
        let pre = self.linker.instantiate_pre(&component).map_err(world)?;
        let pre = PluginPre::new(pre).map_err(world)?;
        Ok(Version {
            path: path.to_owned(),
            hash: sha256[..12].into(),
            sha256,
            loaded_at: SystemTime::now(),
            load_time: started.elapsed(),
            cached,
            size: bytes.len(),
            pre,
            unhandled: Arc::default(),
        })
    }

    /// [`Self::load_blocking`] on the blocking pool, off the event path. A freshly compiled
    /// version is written to the cache afterwards, so the swap does not wait for the disk.
    pub async fn load(self: &Arc<Self>, path: PathBuf) -> Result<Arc<Version>, PluginError> {
        let loader = self.clone();
        let path_for_error = path.clone();
        let version = tokio::task::spawn_blocking(move || loader.load_blocking(&path))
            .await
            .unwrap_or_else(|e| {
                Err(PluginError::Compile {
                    path: path_for_error,
                    reason: format!("the compiler thread failed: {e}"),
                })
            })?;
        let version = Arc::new(version);
        if !version.cached {
            let (loader, version) = (self.clone(), version.clone());
            tokio::task::spawn_blocking(move || {
                let component = version.pre.instance_pre().component();
                loader.cache.store(&version.sha256, component);
            });
        }
        Ok(version)
    }
}

/// The `*.wasm` files of a folder, by app name (file stem), sorted.
pub fn scan(dir: &Path) -> std::io::Result<Vec<(String, PathBuf)>> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if let Some(app) = app_of(&path)
            && path.is_file()
        {
            found.push((app, path.clone()));
        }
    }
    found.sort();
    Ok(found)
}

/// The app a plugin file serves: the stem of a `*.wasm` file whose stem is a valid app name
/// (so temporary files such as `.chat.wasm.tmp` or `chat.wasm~` are not plugins).
pub fn app_of(path: &Path) -> Option<String> {
    let stem = path.file_stem()?.to_str()?;
    (path.extension()? == "wasm" && crate::config::is_app_name(stem)).then(|| stem.to_owned())
}
