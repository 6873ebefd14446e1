//! The worker host: runs the apps' plugins in wasmtime and hands them the events.
//!
//! One engine per process; per app, one compiled [`plugin::Version`] and a [`pool::Pool`] of
//! instances. Every import of the `plugin` world is implemented in [`host_api`]; the store of
//! each instance ([`state`]) grants WASI nothing but a clock, randomness and a log.

mod bindings;
mod engine;
mod host_api;
mod instance;
mod limits;
mod plugin;
mod pool;
mod state;
pub mod stats;
mod stdio;
mod timers;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use tokio::sync::oneshot;
use wasmtime::Engine;
use wasmtime::component::{HasSelf, Linker};

use crate::bus::{AppName, Event, Gateways, Handshake, Rejection, Workers};
use crate::config::WorkerConfig;
use engine::EpochTicker;
use instance::Limits;
pub use plugin::PluginError;
use plugin::Version;
use pool::{Job, Pool, PoolEnv};
use state::InstanceState;
use stats::{AppStats, LatencySnapshot};

/// Why the worker host cannot start.
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    /// The wasmtime engine or linker could not be set up.
    #[error("cannot set up the WebAssembly engine: {0}")]
    Engine(String),
    /// The plugin folder cannot be read.
    #[error("cannot read plugins_dir {path}: {source}")]
    PluginsDir {
        /// The folder.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A listener names an app without a plugin file.
    #[error("no plugin for app {app:?}: expected {path}")]
    MissingPlugin {
        /// The app.
        app: String,
        /// Where its file should be.
        path: PathBuf,
    },
    /// A plugin file cannot be used.
    #[error(transparent)]
    Plugin(#[from] PluginError),
}

/// A snapshot of one app for status output.
#[derive(Clone, Debug)]
pub struct AppStatus {
    /// The app's name.
    pub name: String,
    /// The version: a prefix of the plugin file's SHA-256.
    pub version: String,
    /// The plugin file.
    pub path: PathBuf,
    /// The plugin file's size in bytes.
    pub size: usize,
    /// When this version was loaded.
    pub loaded_at: SystemTime,
    /// Events handled.
    pub events: u64,
    /// Events lost to traps, deadlines or the memory cap.
    pub failures: u64,
    /// Instances created, replacements included.
    pub instantiations: u64,
    /// The most linear memory one instance used, in bytes.
    pub peak_memory_bytes: u64,
    /// Time events took in the plugin.
    pub latency: LatencySnapshot,
}

/// One app: its version and its running pool.
struct App {
    version: Arc<Version>,
    pool: Pool,
    stats: Arc<AppStats>,
}

/// The worker host: every app of the plugin folder, running.
pub struct WorkerHost {
    apps: BTreeMap<AppName, App>,
    _ticker: EpochTicker,
}

impl WorkerHost {
    /// Loads every `*.wasm` in the plugin folder as the app named by its file stem and starts
    /// its instances. `required` apps (those the listeners name) must be among them.
    pub async fn start(
        config: &WorkerConfig,
        required: &[&str],
        gateways: Arc<dyn Gateways>,
    ) -> Result<Self, WorkerError> {
        let engine = engine::new_engine().map_err(|e| WorkerError::Engine(format!("{e:#}")))?;
        let linker = Arc::new(new_linker(&engine)?);
        let dir = &config.plugins_dir;
        let files = plugin::scan(dir).map_err(|source| WorkerError::PluginsDir {
            path: dir.clone(),
            source,
        })?;
        for app in required {
            if !files.iter().any(|(name, _)| name == app) {
                return Err(WorkerError::MissingPlugin {
                    app: app.to_string(),
                    path: dir.join(format!("{app}.wasm")),
                });
            }
        }
        let ticker = EpochTicker::start(&engine).map_err(|e| WorkerError::Engine(e.to_string()))?;
        let limits = || Limits {
            memory_bytes: (config.memory_limit_mib as usize) << 20,
            deadline: Duration::from_millis(config.event_deadline_ms),
        };
        let mut apps = BTreeMap::new();
        for (name, path) in files {
            let version = load(&engine, &linker, path).await?;
            let app: AppName = name.into();
            tracing::info!(
                app = &*app,
                version = &*version.hash,
                bytes = version.size,
                path = %version.path.display(),
                "plugin loaded"
            );
            let stats = Arc::new(AppStats::default());
            let env = Arc::new(PoolEnv {
                app: app.clone(),
                limits: limits(),
                gateways: gateways.clone(),
                stats: stats.clone(),
            });
            let pool = Pool::start(version.clone(), env, config.instances);
            apps.insert(
                app,
                App {
                    version,
                    pool,
                    stats,
                },
            );
        }
        Ok(Self {
            apps,
            _ticker: ticker,
        })
    }

    /// What each loaded app runs and how it fares, sorted by name.
    pub fn status(&self) -> Vec<AppStatus> {
        self.apps
            .iter()
            .map(|(name, app)| AppStatus {
                name: name.to_string(),
                version: app.version.hash.to_string(),
                path: app.version.path.clone(),
                size: app.version.size,
                loaded_at: app.version.loaded_at,
                events: app.stats.events.load(Ordering::Relaxed),
                failures: app.stats.failures.load(Ordering::Relaxed),
                instantiations: app.stats.instantiations.load(Ordering::Relaxed),
                peak_memory_bytes: app.stats.peak_memory_bytes.load(Ordering::Relaxed),
                latency: app.stats.latency.snapshot(),
            })
            .collect()
    }

    /// Lets every instance finish its queued events and run `on-worker-stop`.
    pub async fn shutdown(&self) {
        for app in self.apps.values() {
            app.pool.stop().await;
        }
    }

    fn app(&self, name: &str) -> Option<&App> {
        let app = self.apps.get(name);
        if app.is_none() {
            tracing::warn!(app = name, "event for an app that is not loaded; dropped");
        }
        app
    }
}

#[async_trait]
impl Workers for WorkerHost {
    async fn event(&self, event: Event) {
        if let Some(app) = self.app(&event.app) {
            let client = event.ctx.client;
            app.pool.dispatch(client, Job::Event(event)).await;
        }
    }

    async fn handshake(&self, handshake: Handshake) -> Result<(), Rejection> {
        let unavailable = || Rejection {
            status: 503,
            reason: "the app is not available".into(),
        };
        let app = self.app(&handshake.app).ok_or_else(unavailable)?;
        let client = handshake.ctx.client;
        let (reply, verdict) = oneshot::channel();
        app.pool
            .dispatch(client, Job::Handshake(handshake, reply))
            .await;
        verdict.await.unwrap_or_else(|_| Err(unavailable()))
    }
}

/// The linker every plugin is checked and instantiated against: WASI p2 and the API.
fn new_linker(engine: &Engine) -> Result<Linker<InstanceState>, WorkerError> {
    let mut linker = Linker::new(engine);
    let engine_error = |e: wasmtime::Error| WorkerError::Engine(format!("{e:#}"));
    wasmtime_wasi::p2::add_to_linker_async(&mut linker).map_err(engine_error)?;
    bindings::Plugin::add_to_linker::<_, HasSelf<_>>(&mut linker, |state| state)
        .map_err(engine_error)?;
    Ok(linker)
}

/// Loads a plugin file on a blocking thread (compiling takes CPU time).
async fn load(
    engine: &Engine,
    linker: &Arc<Linker<InstanceState>>,
    path: PathBuf,
) -> Result<Arc<Version>, PluginError> {
    let (engine, linker) = (engine.clone(), linker.clone());
    let path_for_error = path.clone();
    tokio::task::spawn_blocking(move || Version::load(&engine, &linker, &path).map(Arc::new))
        .await
        .unwrap_or_else(|e| {
            Err(PluginError::Compile {
                path: path_for_error,
                reason: format!("the compiler thread failed: {e}"),
            })
        })
}
