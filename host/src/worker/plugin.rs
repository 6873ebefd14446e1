//! Loading a plugin file: compile it, check it against the `plugin` world, ready it to
//! instantiate.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::{Component, Linker};

use super::bindings::PluginPre;
use super::state::InstanceState;

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
}

/// One compiled version of an app's plugin, ready to instantiate.
pub struct Version {
    /// The file it came from.
    pub path: PathBuf,
    /// The first 12 hex digits of the SHA-256 of the file: the version's name.
    pub hash: Arc<str>,
    /// When it was loaded.
    pub loaded_at: SystemTime,
    /// Size of the file in bytes.
    pub size: usize,
    /// The checked, linked component.
    pub pre: PluginPre<InstanceState>,
}

impl Version {
    /// Reads, compiles and checks a plugin file. Compiling takes CPU time: call it from a
    /// blocking thread.
    pub fn load(
        engine: &Engine,
        linker: &Linker<InstanceState>,
        path: &Path,
    ) -> Result<Self, PluginError> {
        let bytes = std::fs::read(path).map_err(|source| PluginError::Read {
            path: path.to_owned(),
            source,
        })?;
        let digest = Sha256::digest(&bytes);
        let hash: String = digest[..6].iter().map(|b| format!("{b:02x}")).collect();
        let component =
            Component::from_binary(engine, &bytes).map_err(|e| PluginError::Compile {
                path: path.to_owned(),
                reason: format!("{e:#}"),
            })?;
        let world = |e: wasmtime::Error| PluginError::World {
            path: path.to_owned(),
            reason: format!("{e:#}"),
        };
        let pre = linker.instantiate_pre(&component).map_err(world)?;
        let pre = PluginPre::new(pre).map_err(world)?;
        Ok(Self {
            path: path.to_owned(),
            hash: hash.into(),
            loaded_at: SystemTime::now(),
            size: bytes.len(),
            pre,
        })
    }
}

/// The `*.wasm` files of a folder, by app name (file stem), sorted.
pub fn scan(dir: &Path) -> std::io::Result<Vec<(String, PathBuf)>> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        let stem = path.file_stem().and_then(|s| s.to_str());
        if let Some(stem) = stem
            && path.extension().is_some_and(|e| e == "wasm")
            && crate::config::is_app_name(stem)
            && path.is_file()
        {
            found.push((stem.to_owned(), path.clone()));
        }
    }
    found.sort();
    Ok(found)
}
