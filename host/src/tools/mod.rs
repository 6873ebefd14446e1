//! Plugin developer tools: `switchboard new`, `build`, `check` and `dev`.
//!
//! [`build`] and [`new`] need no wasmtime, so `cargo xtask` builds the repository's plugins
//! with the same code (it depends on this library without the `runtime` feature).

pub mod build;
#[cfg(feature = "runtime")]
pub mod check;
#[cfg(feature = "runtime")]
pub mod cli;
#[cfg(feature = "runtime")]
pub mod dev;
pub mod new;
pub mod toolchain;

use std::path::Path;

/// Why a tool failed; the message is what the user sees.
#[derive(Debug, thiserror::Error)]
pub enum ToolError {
    /// A file or folder could not be used.
    #[error("{action} {path}: {source}")]
    Io {
        /// What was being done ("reading", "creating", …).
        action: &'static str,
        /// The file or folder.
        path: String,
        /// Why it failed.
        source: std::io::Error,
    },
    /// Anything else, said in full.
    #[error("{0}")]
    Failed(String),
}

impl ToolError {
    /// An I/O failure while `action` `path`.
    pub fn io(path: &Path, action: &'static str, source: std::io::Error) -> Self {
        Self::Io {
            action,
            path: path.display().to_string(),
            source,
        }
    }
}
