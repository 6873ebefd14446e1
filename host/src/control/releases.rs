//! A cluster worker follows the cluster's releases: it runs the version of each app the
//! release store names, publishes files dropped into its folder, and sets an app back for
//! every worker when it refuses a version (at its canary, or by rolling back after it).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures_util::StreamExt;
use tokio::task::JoinHandle;

use crate::bus::nats::releases::{Outcome, Releases, Report};
use crate::bus::{AppName, sha256_hex};
use crate::worker::{Publish, WorkerHost};

/// How often a worker checks whether it rolled back a release after its first events.
const ROLLBACK_CHECK: Duration = Duration::from_secs(1);

/// Releases files dropped into a worker's folder to the whole cluster.
pub(super) struct Publisher(pub(super) Releases);

#[async_trait]
impl Publish for Publisher {
    async fn publish(&self, app: &str, path: &Path) -> Result<(), String> {
        let bytes = tokio::fs::read(path)
            .await
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let sha = self
            .0
            .publish(app, &bytes)
            .await
            .map_err(|e| e.to_string())?;
        tracing::info!(
            app,
            version = &sha[..12],
            path = %path.display(),
            "plugin released to every worker"
        );
        Ok(())
    }
}

/// Seeds the store with the apps this worker loaded from its folder that the cluster does
/// not know yet, then follows the store until aborted.
pub(super) async fn follow(
    releases: Releases,
    host: Arc<WorkerHost>,
    worker: u32,
    dir: PathBuf,
) -> JoinHandle<()> {
    for (app, _) in host.versions() {
        if let Some(bytes) = running_bytes(&host, &app).await {
            match releases.seed(&app, &bytes).await {
                Ok(true) => tracing::info!(app = &*app, "first release of the app: this worker's"),
                Ok(false) => {}
                Err(e) => tracing::warn!(app = &*app, "cannot seed the release store: {e}"),
            }
        }
    }
    tokio::spawn(async move {
        let mut follower = Follower {
            releases,
            host,
            worker,
            dir,
            running: BTreeMap::new(),
        };
        let mut changes = match follower.releases.watch().await {
            Ok(changes) => Box::pin(changes),
            Err(e) => {
                tracing::error!("cannot follow the cluster's releases: {e}");
                return;
            }
        };
        let mut check = tokio::time::interval(ROLLBACK_CHECK);
        loop {
            tokio::select! {
                change = changes.next() => match change {
                    Some((app, sha)) => follower.release(app, sha).await,
                    None => {
                        tracing::error!("the release watch ended: releases are no longer followed");
                        return;
                    }
                },
                _ = check.tick() => follower.check_rollbacks().await,
            }
        }
    })
}

/// The state of one worker following the releases.
struct Follower {
    releases: Releases,
    host: Arc<WorkerHost>,
    worker: u32,
    /// Where fetched versions are written, one folder per version.
    dir: PathBuf,
    /// The release of each app this worker took on.
    running: BTreeMap<AppName, String>,
}

impl Follower {
    /// Makes `sha` the running version of `app`, or refuses it and sets the cluster back.
    async fn release(&mut self, app: AppName, sha: String) {
        if self
            .host
            .running(&app)
            .is_some_and(|(running, _)| running == sha)
        {
            self.running.insert(app.clone(), sha.clone());
            self.report(&app, &sha, Outcome::Running).await;
            return;
        }
        let short = sha.get(..12).unwrap_or(&sha).to_owned();
        tracing::info!(app = &*app, version = short, "new release: fetching");
        let outcome = match self.install(&app, &sha).await {
            Ok(()) => {
                self.running.insert(app.clone(), sha.clone());
                Outcome::Running
            }
            Err(reason) => {
                tracing::error!(app = &*app, version = short, "release refused: {reason}");
                Outcome::Refused { reason }
            }
        };
        let refused = matches!(outcome, Outcome::Refused { .. });
        self.report(&app, &sha, outcome).await;
        if refused {
            self.set_back(&app, &sha).await;
        }
    }

    async fn install(&self, app: &str, sha: &str) -> Result<(), String> {
        let bytes = self
            .releases
            .fetch(app, sha)
            .await
            .map_err(|e| e.to_string())?;
        let path = self.dir.join(sha).join(format!("{app}.wasm"));
        write_whole(&path, &bytes)
            .await
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        self.host
            .deploy(&path)
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    /// An app this worker took a release on but has since rolled back (its first events
    /// failed): the release is refused for every worker.
    async fn check_rollbacks(&mut self) {
        let mut rolled_back = Vec::new();
        for (app, sha) in &self.running {
            if self.host.running(app).is_some_and(|(now, _)| &now != sha) {
                rolled_back.push((app.clone(), sha.clone()));
            }
        }
        for (app, sha) in rolled_back {
            self.running.remove(&app);
            let reason = "rolled back after its first events failed".to_owned();
            self.report(&app, &sha, Outcome::Refused { reason }).await;
            self.set_back(&app, &sha).await;
        }
    }

    /// Sets the cluster's release of `app` back from `refused` to what this worker runs.
    async fn set_back(&self, app: &str, refused: &str) {
        let Some(bytes) = running_bytes(&self.host, app).await else {
            tracing::error!(
                app,
                "no previous version to roll the cluster back to: the release stays"
            );
            return;
        };
        match self.releases.roll_back(app, refused, &bytes).await {
            Ok(true) => tracing::warn!(
                app,
                restored = &sha256_hex(&bytes)[..12],
                "release rolled back on every worker"
            ),
            Ok(false) => {}
            Err(e) => tracing::error!(app, "cannot roll the cluster back: {e}"),
        }
    }

    async fn report(&self, app: &AppName, sha: &str, outcome: Outcome) {
        let report = Report {
            worker: self.worker,
            app: app.clone(),
            sha256: sha.to_owned(),
            outcome,
        };
        self.releases.report(&report).await;
    }
}

/// The bytes of the version `app` runs, if its file still holds them.
async fn running_bytes(host: &WorkerHost, app: &str) -> Option<Vec<u8>> {
    let (sha, path) = host.running(app)?;
    let bytes = tokio::fs::read(&path).await.ok()?;
    if sha256_hex(&bytes) == sha {
        Some(bytes)
    } else {
        tracing::warn!(app, path = %path.display(), "the running version's file has changed since it was loaded");
        None
    }
}

/// Writes a fetched version where it is named by its digest, through a temporary file so a
/// reader never sees half of it.
async fn write_whole(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    tokio::fs::create_dir_all(dir).await?;
    let partial = path.with_extension("partial");
    tokio::fs::write(&partial, bytes).await?;
    tokio::fs::rename(&partial, path).await
}
