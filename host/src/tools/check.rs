//! `switchboard check FILE.wasm [--app NAME]`: would a server accept this file? It runs the
//! server's own deploy path (a [`WorkerHost`] loading the file: compile, the `plugin` world
//! check, the canary), so the answer and its reasons are the ones a server would log.

use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;

use super::ToolError;
use crate::bus::{BusError, Command, Gateways, Query, Reply};
use crate::config::Config;
use crate::worker::{Deployed, WorkerHost};

/// An accepted file: the version name a server would give it.
#[derive(Debug, Clone)]
pub struct Accepted {
    /// The app it would serve.
    pub app: String,
    /// The version (12 hex digits of its SHA-256).
    pub version: String,
}

/// Why a file would be refused, or why it could not be checked at all.
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    /// A server would refuse the file; the reason is the one it logs.
    #[error("{0}")]
    Refused(String),
    /// The check itself could not run.
    #[error(transparent)]
    Tool(#[from] ToolError),
}

/// Checks `file` as a plugin of `app` (default: the file's stem).
pub async fn check(file: &Path, app: Option<&str>) -> Result<Accepted, CheckError> {
    let app = crate::config::app_of_file(file, app).map_err(|name| {
        ToolError::Failed(format!(
            "{name:?} is no app name (letters, digits, '-' and '_'): pass --app NAME"
        ))
    })?;
    let bytes = std::fs::read(file).map_err(|e| ToolError::io(file, "reading", e))?;
    let work = tempfile::tempdir().map_err(|e| ToolError::io(Path::new("/tmp"), "creating", e))?;
    let plugins = work.path().join("plugins");
    std::fs::create_dir(&plugins).map_err(|e| ToolError::io(&plugins, "creating", e))?;
    let path = plugins.join(format!("{app}.wasm"));
    std::fs::write(&path, bytes).map_err(|e| ToolError::io(&path, "writing", e))?;
    // A server of one app with nothing listening: only its worker host is used.
    let text = format!(
        "[[listener]]\naddr = \"127.0.0.1:0\"\nprotocol = \"websocket\"\napp = \"{app}\"\n\
         [worker]\nplugins_dir = \"plugins\"\ncache_dir = \"cache\"\ndata_dir = \"data\"\n\
         instances = 1\nthreads = 1\n"
    );
    let config_path = work.path().join("switchboard.toml");
    std::fs::write(&config_path, text).map_err(|e| ToolError::io(&config_path, "writing", e))?;
    let config =
        Config::load(&config_path).map_err(|e| ToolError::Failed(format!("internal: {e}")))?;
    let host =
        WorkerHost::new(&config, Arc::new(Nobody)).map_err(|e| ToolError::Failed(e.to_string()))?;
    let outcome = host.deploy(&path).await;
    host.shutdown().await;
    match outcome {
        Ok(Deployed::Added { version }) => Ok(Accepted { app, version }),
        Ok(other) => {
            Err(ToolError::Failed(format!("internal: unexpected outcome {other:?}")).into())
        }
        Err(e) => Err(CheckError::Refused(
            e.to_string()
                .replace(&path.display().to_string(), &file.display().to_string()),
        )),
    }
}

/// Gateways with nobody connected: what the plugin sends while being checked goes nowhere.
struct Nobody;

#[async_trait]
impl Gateways for Nobody {
    async fn command(&self, _app: &str, _command: Command) -> Result<(), BusError> {
        Ok(())
    }

    async fn query(&self, _app: &str, query: Query) -> Result<Reply, BusError> {
        Ok(Reply::nobody(&query))
    }
}
