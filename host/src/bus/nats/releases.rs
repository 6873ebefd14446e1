//! Cluster-wide plugin releases on NATS JetStream: every version ever deployed in an object
//! store (`<prefix>_plugins`, objects `<app>/<sha256>`), and which one each app runs in a
//! key-value bucket (`<prefix>_releases`, key = app, value = sha256). Workers watch the
//! bucket and swap; whoever refuses a version sets the key back, so every worker returns to
//! the previous version. Reports of what each worker did go to `<prefix>.deploy.report`.

use std::time::Duration;

use async_nats::jetstream::{self, kv, object_store};
use futures_util::{Stream, StreamExt};
use serde::{Deserialize, Serialize};
use tokio::io::AsyncReadExt;

use super::wire::Subjects;
use crate::bus::codec::{decode, encode};
use crate::bus::{AppName, sha256_hex};

/// The largest plugin file the store takes (a Python plugin is ~20 MiB).
pub const MAX_PLUGIN_BYTES: usize = 256 << 20;

/// How long opening the store may take before cluster-wide deploys are declared off.
const OPEN_TIMEOUT: Duration = Duration::from_secs(5);

/// Why a release could not be published, fetched or watched.
#[derive(Debug, thiserror::Error)]
pub enum ReleaseError {
    /// JetStream is off on the NATS server, or a bucket could not be opened.
    #[error("JetStream: {0} (is the NATS server started with -js?)")]
    Unavailable(String),
    /// A store operation failed.
    #[error("release store: {0}")]
    Store(String),
    /// The version named is not in the store.
    #[error("version {sha} of app {app} is not in the release store")]
    Missing {
        /// The app.
        app: String,
        /// Its SHA-256, hex.
        sha: String,
    },
}

/// What one worker did with a release, published for `switchboard deploy` to collect.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    /// The worker.
    pub worker: u32,
    /// The app.
    pub app: AppName,
    /// The SHA-256 of the version the report is about, hex.
    pub sha256: String,
    /// What happened.
    pub outcome: Outcome,
}

/// What a worker did with a release.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Outcome {
    /// It runs the version now (swapped, added, or already running it).
    Running,
    /// It refused the version and keeps running the previous one; the cluster rolls back.
    Refused {
        /// Why, as the worker logged it.
        reason: String,
    },
}

/// The release store of one cluster.
#[derive(Clone)]
pub struct Releases {
    client: async_nats::Client,
    subjects: Subjects,
    objects: object_store::ObjectStore,
    pointers: kv::Store,
}

impl std::fmt::Debug for Releases {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Releases").finish_non_exhaustive()
    }
}

impl Releases {
    /// Opens (creating if needed) the buckets of the cluster under `prefix`. Fails at once
    /// when JetStream is off, rather than on the first deploy.
    pub async fn open(client: async_nats::Client, prefix: &str) -> Result<Self, ReleaseError> {
        let js = jetstream::new(client.clone());
        let unavailable = |e: &dyn std::fmt::Display| ReleaseError::Unavailable(e.to_string());
        let open = async {
            let objects = js
                .create_object_store(object_store::Config {
                    bucket: format!("{prefix}_plugins"),
                    description: Some("switchboard plugin versions, <app>/<sha256>".into()),
                    ..Default::default()
                })
                .await
                .map_err(|e| unavailable(&e))?;
            let pointers = js
                .create_key_value(kv::Config {
                    bucket: format!("{prefix}_releases"),
                    description: "switchboard: the version each app runs (sha256)".into(),
                    history: 16,
                    ..Default::default()
                })
                .await
                .map_err(|e| unavailable(&e))?;
            Ok::<_, ReleaseError>((objects, pointers))
        };
        // JetStream calls wait for an answer that never comes when it is off or denied.
        let (objects, pointers) =
            tokio::time::timeout(OPEN_TIMEOUT, open)
                .await
                .map_err(|_| {
                    ReleaseError::Unavailable(format!(
                        "no answer within {} s",
                        OPEN_TIMEOUT.as_secs()
                    ))
                })??;
        Ok(Self {
            client,
            subjects: Subjects::new(prefix),
            objects,
            pointers,
        })
    }

    /// Stores `bytes` as a version of `app` (once per content) and makes it the one every
    /// worker runs. Returns its SHA-256.
    pub async fn publish(&self, app: &str, bytes: &[u8]) -> Result<String, ReleaseError> {
        let sha = self.store(app, bytes).await?;
        self.pointers
            .put(app, sha.clone().into())
            .await
            .map_err(|e| ReleaseError::Store(e.to_string()))?;
        Ok(sha)
    }

    /// Makes `bytes` the version of `app` only if the cluster has none yet: how the first
    /// worker's plugin folder seeds the store. Returns whether it did.
    pub async fn seed(&self, app: &str, bytes: &[u8]) -> Result<bool, ReleaseError> {
        let sha = self.store(app, bytes).await?;
        match self.pointers.create(app, sha.into()).await {
            Ok(_) => Ok(true),
            Err(e) if e.kind() == kv::CreateErrorKind::AlreadyExists => Ok(false),
            Err(e) => Err(ReleaseError::Store(e.to_string())),
        }
    }

    /// Sets `app` back from `from` to `to` (whose bytes are `to_bytes`), unless someone has
    /// moved it on since. Returns whether this call did it.
    pub async fn roll_back(
        &self,
        app: &str,
        from: &str,
        to_bytes: &[u8],
    ) -> Result<bool, ReleaseError> {
        let entry = self
            .pointers
            .entry(app)
            .await
            .map_err(|e| ReleaseError::Store(e.to_string()))?;
        let Some(entry) = entry else {
            return Ok(false);
        };
        if entry.value != from.as_bytes() {
            return Ok(false);
        }
        let to = self.store(app, to_bytes).await?;
        match self.pointers.update(app, to.into(), entry.revision).await {
            Ok(_) => Ok(true),
            Err(e) if e.kind() == kv::UpdateErrorKind::WrongLastRevision => Ok(false),
            Err(e) => Err(ReleaseError::Store(e.to_string())),
        }
    }

    /// The bytes of version `sha` of `app`, checked against their name.
    pub async fn fetch(&self, app: &str, sha: &str) -> Result<Vec<u8>, ReleaseError> {
        let missing = || ReleaseError::Missing {
            app: app.to_owned(),
            sha: sha.to_owned(),
        };
        let mut object =
            self.objects
                .get(object_name(app, sha))
                .await
                .map_err(|e| match e.kind() {
                    object_store::GetErrorKind::NotFound => missing(),
                    _ => ReleaseError::Store(e.to_string()),
                })?;
        let mut bytes = Vec::with_capacity(object.info().size.min(MAX_PLUGIN_BYTES));
        object
            .read_to_end(&mut bytes)
            .await
            .map_err(|e| ReleaseError::Store(e.to_string()))?;
        if sha256_hex(&bytes) != sha {
            return Err(ReleaseError::Store(format!(
                "version {sha} of app {app}: the stored bytes do not match their digest"
            )));
        }
        Ok(bytes)
    }

    /// The version each app runs now, then every change: `(app, sha256)`.
    pub async fn watch(
        &self,
    ) -> Result<impl Stream<Item = (AppName, String)> + use<>, ReleaseError> {
        let watch = self
            .pointers
            .watch_with_history(">")
            .await
            .map_err(|e| ReleaseError::Store(e.to_string()))?;
        Ok(watch.filter_map(|entry| async move {
            let entry = match entry {
                Ok(entry) => entry,
                Err(e) => {
                    tracing::warn!("release watch: {e}");
                    return None;
                }
            };
            if entry.operation != kv::Operation::Put {
                return None;
            }
            let sha = String::from_utf8(entry.value.to_vec()).ok()?;
            Some((AppName::from(entry.key.as_str()), sha))
        }))
    }

    /// Tells whoever deploys what this worker did.
    pub async fn report(&self, report: &Report) {
        let subject = self.subjects.deploy_reports();
        if let Err(e) = self.client.publish(subject, encode(report).into()).await {
            tracing::warn!("cannot publish a deploy report: {e}");
        }
    }

    /// Every worker's reports from now on.
    pub async fn reports(&self) -> Result<impl Stream<Item = Report> + use<>, ReleaseError> {
        let subscriber = self
            .client
            .subscribe(self.subjects.deploy_reports())
            .await
            .map_err(|e| ReleaseError::Store(e.to_string()))?;
        Ok(subscriber.filter_map(|message| async move {
            decode::<Report>(&message.payload)
                .inspect_err(|e| tracing::warn!("deploy report refused: {e}"))
                .ok()
        }))
    }

    /// Puts `bytes` in the object store unless that version is there already.
    async fn store(&self, app: &str, bytes: &[u8]) -> Result<String, ReleaseError> {
        if bytes.len() > MAX_PLUGIN_BYTES {
            return Err(ReleaseError::Store(format!(
                "a plugin of {} bytes is over the store's limit of {MAX_PLUGIN_BYTES}",
                bytes.len()
            )));
        }
        let sha = sha256_hex(bytes);
        let name = object_name(app, &sha);
        if self.objects.info(&name).await.is_ok_and(|i| !i.deleted) {
            return Ok(sha);
        }
        let mut reader = bytes;
        self.objects
            .put(name.as_str(), &mut reader)
            .await
            .map_err(|e| ReleaseError::Store(e.to_string()))?;
        Ok(sha)
    }
}

fn object_name(app: &str, sha: &str) -> String {
    format!("{app}/{sha}")
}
