//! Watches the plugin folder: a new or changed `*.wasm` file is deployed, a removed one is
//! reported. A file known to be complete (renamed into place, or closed by its writer) is
//! taken at once; other changes wait until the file has been quiet for a moment, so a
//! half-written file is not read where the platform reports no close.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Weak;
use std::time::Duration;

use notify::event::{AccessKind, AccessMode, ModifyKind, RenameMode};
use notify::{EventKind, RecursiveMode, Watcher};
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::WorkerHost;
use super::plugin::app_of;

/// How long a file whose completion was not reported must be quiet before it is read.
const QUIET: Duration = Duration::from_millis(150);

/// Keeps the folder watched until dropped.
pub struct FolderWatch {
    _watcher: notify::RecommendedWatcher,
}

/// Starts watching `dir` for `host` (held weakly: the watch ends with the host).
pub fn watch(dir: &Path, host: Weak<WorkerHost>) -> notify::Result<FolderWatch> {
    let (tx, rx) = mpsc::unbounded_channel();
    let mut watcher =
        notify::recommended_watcher(move |event: notify::Result<notify::Event>| match event {
            Ok(event) => {
                if let Some(settled) = settled(&event.kind) {
                    for path in event.paths {
                        let _ = tx.send((path, settled));
                    }
                }
            }
            Err(e) => tracing::warn!("plugin folder watch: {e}"),
        })?;
    watcher.watch(dir, RecursiveMode::NonRecursive)?;
    tokio::spawn(debounce(rx, host));
    Ok(FolderWatch { _watcher: watcher })
}

/// Whether an event says the file is complete (`Some(true)`), changed (`Some(false)`), or
/// does not matter (`None`).
fn settled(kind: &EventKind) -> Option<bool> {
    match kind {
        EventKind::Access(AccessKind::Close(AccessMode::Write))
        | EventKind::Modify(ModifyKind::Name(RenameMode::To | RenameMode::Both)) => Some(true),
        EventKind::Create(_) | EventKind::Modify(_) | EventKind::Remove(_) => Some(false),
        _ => None,
    }
}

/// Collects changed plugin paths and hands each to the host when it is due: at once if it
/// is complete, else once it has been quiet for [`QUIET`].
async fn debounce(mut changes: mpsc::UnboundedReceiver<(PathBuf, bool)>, host: Weak<WorkerHost>) {
    let mut pending: BTreeMap<PathBuf, Instant> = BTreeMap::new();
    loop {
        let due = pending.values().min().copied();
        tokio::select! {
            change = changes.recv() => match change {
                Some((path, settled)) if app_of(&path).is_some() => {
                    let due = if settled { Instant::now() } else { Instant::now() + QUIET };
                    pending.insert(path, due);
                }
                Some(_) => {}
                None => return,
            },
            _ = sleep_until(due), if due.is_some() => {
                let now = Instant::now();
                let ready: Vec<PathBuf> = pending
                    .iter()
                    .filter(|(_, due)| **due <= now)
                    .map(|(path, _)| path.clone())
                    .collect();
                let Some(host) = host.upgrade() else { return };
                for path in ready {
                    pending.remove(&path);
                    host.file_changed(&path).await;
                }
            }
        }
    }
}

async fn sleep_until(due: Option<Instant>) {
    if let Some(due) = due {
        tokio::time::sleep_until(due).await;
    }
}
