//! Watches the plugin folder: a new or changed `*.wasm` file is deployed, a removed one is
//! reported. Bursts of file events are debounced, so an in-place copy is read once it is
//! complete and a write-to-temp-then-rename is seen as one change.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Weak;
use std::time::Duration;

use notify::{EventKind, RecursiveMode, Watcher};
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::WorkerHost;
use super::plugin::app_of;

/// How long a file must be quiet before it is read.
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
            Ok(event) if matters(&event.kind) => {
                for path in event.paths {
                    let _ = tx.send(path);
                }
            }
            Ok(_) => {}
            Err(e) => tracing::warn!("plugin folder watch: {e}"),
        })?;
    watcher.watch(dir, RecursiveMode::NonRecursive)?;
    tokio::spawn(debounce(rx, host));
    Ok(FolderWatch { _watcher: watcher })
}

fn matters(kind: &EventKind) -> bool {
    matches!(
        kind,
        EventKind::Create(_) | EventKind::Modify(_) | EventKind::Remove(_)
    )
}

/// Collects changed plugin paths and hands each to the host once it has been quiet.
async fn debounce(mut changes: mpsc::UnboundedReceiver<PathBuf>, host: Weak<WorkerHost>) {
    let mut pending: BTreeMap<PathBuf, Instant> = BTreeMap::new();
    loop {
        let due = pending.values().min().map(|&last| last + QUIET);
        tokio::select! {
            change = changes.recv() => match change {
                Some(path) if app_of(&path).is_some() => {
                    pending.insert(path, Instant::now());
                }
                Some(_) => {}
                None => return,
            },
            _ = sleep_until(due), if due.is_some() => {
                let now = Instant::now();
                let ready: Vec<PathBuf> = pending
                    .iter()
                    .filter(|(_, last)| **last + QUIET <= now)
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
