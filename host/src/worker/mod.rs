//! The worker host: runs the apps' plugins in wasmtime and hands them the events.
//!
//! One engine per process. Each `*.wasm` file of the plugin folder is an app ([`app`]) with a
//! pool of instances ([`pool`]). The folder is watched ([`watch`]): a new file adds an app, a
//! changed one is compiled off the event path (or taken from the [`cache`]), checked, tried
//! in a canary instance and swapped in without dropping or reordering an event. Every import
//! of the `plugin` world is implemented in [`host_api`] and [`capabilities`]; each instance's
//! store ([`state`]) grants WASI nothing but a clock, randomness and a log, and reaches only
//! what its app's `[apps.NAME]` table grants: variables, its own key-value store, outbound
//! HTTP to allowed hosts.

mod app;
mod bindings;
mod cache;
mod canary;
pub mod capabilities;
mod engine;
mod host_api;
mod instance;
mod limits;
mod log_budget;
mod plugin;
mod pool;
mod state;
pub mod stats;
mod stdio;
mod threads;
mod timers;
mod turns;
mod unhandled;
mod watch;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, OnceLock, PoisonError, RwLock};
use std::time::{Duration, Instant, SystemTime};

use async_trait::async_trait;
use futures_util::StreamExt;
use tokio::sync::oneshot;
use wasmtime::Engine;
use wasmtime::component::{HasSelf, Linker};

use crate::bus::{AppName, Event, Gateways, Handshake, Rejection, Workers};
use crate::config::Config;
pub use app::Rejected;
use app::{App, AppControl, RollbackPolicy};
use capabilities::{Grants, KvBackend, Outbound};
use engine::{Activity, EpochTicker};
use instance::Limits;
pub use plugin::PluginError;
use plugin::{Loader, app_of};
use pool::{Job, PoolEnv, Recycle};
use state::InstanceState;
use stats::LatencySnapshot;
use threads::GuestThreads;
pub use timers::{Clock, ManualClock};

/// Why the worker host cannot start.
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    /// The wasmtime engine or linker could not be set up.
    #[error("cannot set up the WebAssembly engine: {0}")]
    Engine(String),
    /// The plugin folder cannot be read or watched.
    #[error("cannot use plugins_dir {path}: {reason}")]
    PluginsDir {
        /// The folder.
        path: PathBuf,
        /// Why.
        reason: String,
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
    /// The key-value store cannot be opened.
    #[error("cannot open the key-value store in worker.data_dir {path}: {reason}")]
    Store {
        /// The folder.
        path: PathBuf,
        /// Why.
        reason: String,
    },
}

/// A snapshot of one app for status output.
#[derive(Clone, Debug)]
pub struct AppStatus {
    /// The app's name.
    pub name: String,
    /// The version: the first 12 hex digits of the plugin file's SHA-256.
    pub version: String,
    /// The plugin file.
    pub path: PathBuf,
    /// The plugin file's size in bytes.
    pub size: usize,
    /// When this version was loaded.
    pub loaded_at: SystemTime,
    /// Instances in the pool.
    pub instances: usize,
    /// Events handled.
    pub events: u64,
    /// Events lost to traps, deadlines or the memory cap.
    pub failures: u64,
    /// Events left to the SDK's default handler, not delivered.
    pub skipped: u64,
    /// Instances created, replacements included.
    pub instantiations: u64,
    /// Healthy instances replaced by the app's recycling policy.
    pub recycles: u64,
    /// The most linear memory one instance used, in bytes.
    pub peak_memory_bytes: u64,
    /// Time events took in the plugin.
    pub latency: LatencySnapshot,
    /// Versions swapped in since start.
    pub swaps: u64,
    /// Automatic rollbacks since start.
    pub rollbacks: u64,
    /// The last plugin file refused for this app, and why.
    pub last_rejected: Option<Rejected>,
}

/// What a changed plugin file led to.
#[derive(Debug)]
pub enum Deployed {
    /// A new app started.
    Added {
        /// The version.
        version: String,
    },
    /// The app now runs this version.
    Swapped {
        /// The version replaced.
        from: String,
        /// The version now running.
        to: String,
    },
    /// The file has the content of the running version.
    Unchanged,
}

/// Where a cluster worker sends a plugin file dropped into its folder.
#[async_trait::async_trait]
pub trait Publish: Send + Sync {
    /// Releases the file as the version of `app` on every worker, this one included.
    async fn publish(&self, app: &str, path: &Path) -> Result<(), String>;
}

/// The settings that `reload` can change.
#[derive(Clone, Debug, PartialEq)]
struct Settings {
    instances: usize,
    memory_limit_mib: u64,
    event_deadline_ms: u64,
    policy: RollbackPolicy,
    recycle: BTreeMap<String, Recycle>,
    /// Each app's variables and outbound HTTP, from `[apps.NAME]`.
    granted: BTreeMap<String, Granted>,
}

/// What an `[apps.NAME]` table grants, as configured (the store is the host's).
#[derive(Clone, Debug, Default, PartialEq)]
struct Granted {
    variables: Arc<BTreeMap<String, String>>,
    outbound: Arc<Outbound>,
}

impl Settings {
    fn of(config: &Config) -> Self {
        let w = &config.worker;
        Self {
            instances: w.instances,
            memory_limit_mib: w.memory_limit_mib,
            event_deadline_ms: w.event_deadline_ms,
            policy: RollbackPolicy {
                window: w.rollback_window,
                failure_ratio: w.rollback_failure_ratio,
            },
            recycle: config
                .apps
                .iter()
                .map(|(name, app)| {
                    let recycle = Recycle {
                        after_events: app.recycle_after_events,
                        above_memory_bytes: app.recycle_above_memory_mib.map(|mib| mib << 20),
                    };
                    (name.clone(), recycle)
                })
                .collect(),
            granted: config
                .apps
                .iter()
                .map(|(name, app)| {
                    let granted = Granted {
                        variables: Arc::new(app.variable_values()),
                        outbound: Arc::new(Outbound {
                            policy: app.outbound_policy(),
                            timeout: Duration::from_millis(app.outbound_timeout_ms),
                        }),
                    };
                    (name.clone(), granted)
                })
                .collect(),
        }
    }

    /// What the instances of `app` share.
    fn env(
        &self,
        app: &str,
        gateways: &Arc<dyn Gateways>,
        guests: &tokio::runtime::Handle,
        kv: &KvBackend,
        clock: &Clock,
        activity: &Activity,
    ) -> Arc<PoolEnv> {
        let granted = self.granted.get(app).cloned().unwrap_or_default();
        Arc::new(PoolEnv {
            limits: Limits {
                memory_bytes: (self.memory_limit_mib as usize) << 20,
                deadline: Duration::from_millis(self.event_deadline_ms),
                activity: activity.clone(),
            },
            recycle: self.recycle.get(app).copied().unwrap_or_default(),
            gateways: gateways.clone(),
            guests: guests.clone(),
            grants: Grants {
                variables: granted.variables,
                outbound: granted.outbound,
                kv: kv.clone(),
            },
            clock: clock.clone(),
        })
    }

    /// Whether `app`'s pool must be rebuilt to move from `self` to `new`.
    fn pool_changes(&self, new: &Settings, app: &str) -> bool {
        (
            self.instances,
            self.memory_limit_mib,
            self.event_deadline_ms,
        ) != (new.instances, new.memory_limit_mib, new.event_deadline_ms)
            || self.recycle.get(app) != new.recycle.get(app)
            || self.granted.get(app) != new.granted.get(app)
    }
}

/// The worker host: every app of the plugin folder, running.
pub struct WorkerHost {
    loader: Arc<Loader>,
    gateways: Arc<dyn Gateways>,
    plugins_dir: PathBuf,
    require_plugins: bool,
    apps: RwLock<BTreeMap<AppName, Arc<App>>>,
    settings: Mutex<Settings>,
    /// Deployments happen one at a time.
    deploying: tokio::sync::Mutex<()>,
    watch: Mutex<Option<watch::FolderWatch>>,
    /// In a cluster: where a file dropped into the folder goes instead of a local deploy.
    publisher: OnceLock<Arc<dyn Publish>>,
    /// The threads plugin code runs on; `threads` as configured at start.
    guests: GuestThreads,
    threads: usize,
    kv: KvBackend,
    clock: Clock,
    ticker: EpochTicker,
}

impl WorkerHost {
    /// Sets up the engine and the plugin threads, with the embedded key-value store in
    /// `[worker] data_dir`. No app runs yet ([`WorkerHost::load`] loads them), so the
    /// listeners can refuse clients at once while plugins compile.
    pub fn new(config: &Config, gateways: Arc<dyn Gateways>) -> Result<Arc<Self>, WorkerError> {
        Self::with_clock(config, gateways, Clock::Real)
    }

    /// [`WorkerHost::new`] whose plugin timers count time on `clock` (a test's manual clock).
    pub fn with_clock(
        config: &Config,
        gateways: Arc<dyn Gateways>,
        clock: Clock,
    ) -> Result<Arc<Self>, WorkerError> {
        let data_dir = &config.worker.data_dir;
        let kv = KvBackend::embedded(data_dir).map_err(|e| WorkerError::Store {
            path: data_dir.clone(),
            reason: e.to_string(),
        })?;
        Self::build(config, gateways, kv, clock)
    }

    /// [`WorkerHost::new`] with another key-value store (a cluster's).
    pub fn with_kv(
        config: &Config,
        gateways: Arc<dyn Gateways>,
        kv: KvBackend,
    ) -> Result<Arc<Self>, WorkerError> {
        Self::build(config, gateways, kv, Clock::Real)
    }

    fn build(
        config: &Config,
        gateways: Arc<dyn Gateways>,
        kv: KvBackend,
        clock: Clock,
    ) -> Result<Arc<Self>, WorkerError> {
        let settings = Settings::of(config);
        let config = &config.worker;
        let engine = engine::new_engine().map_err(|e| WorkerError::Engine(format!("{e:#}")))?;
        let linker = new_linker(&engine)?;
        let ticker = EpochTicker::start(&engine).map_err(|e| WorkerError::Engine(e.to_string()))?;
        let guests = GuestThreads::start(config.threads)
            .map_err(|e| WorkerError::Engine(format!("cannot start the plugin threads: {e}")))?;
        Ok(Arc::new(Self {
            loader: Arc::new(Loader::new(engine, linker, config.cache_dir.clone())),
            gateways,
            plugins_dir: config.plugins_dir.clone(),
            require_plugins: config.require_plugins,
            apps: RwLock::default(),
            settings: Mutex::new(settings),
            deploying: tokio::sync::Mutex::new(()),
            watch: Mutex::new(None),
            publisher: OnceLock::new(),
            guests,
            threads: config.threads,
            kv,
            clock,
            ticker,
        }))
    }

    /// Loads every `*.wasm` in the plugin folder as the app named by its file stem, then
    /// watches the folder for new versions. Plugins compile in parallel (as many at once as
    /// there are cores), and each app starts serving as soon as its own plugin is ready. With `require_plugins`, every app in
    /// `required` (those the listeners name) must be there.
    pub async fn load(self: &Arc<Self>, required: &[&str]) -> Result<(), WorkerError> {
        let dir = &self.plugins_dir;
        let dir_error = |reason: String| WorkerError::PluginsDir {
            path: dir.clone(),
            reason,
        };
        let files = plugin::scan(dir).map_err(|e| dir_error(e.to_string()))?;
        let missing = required
            .iter()
            .find(|app| !files.iter().any(|(name, _)| name == *app));
        if let Some(app) = missing
            && self.require_plugins
        {
            return Err(WorkerError::MissingPlugin {
                app: app.to_string(),
                path: dir.join(format!("{app}.wasm")),
            });
        }
        // The apps the listeners wait for first, then the smallest: on a small machine a
        // large plugin (an 18 MiB Python one takes seconds) must not hold up the others.
        let mut files: Vec<(String, PathBuf, u64)> = files
            .into_iter()
            .map(|(name, path)| {
                let size = std::fs::metadata(&path).map_or(u64::MAX, |m| m.len());
                (name, path, size)
            })
            .collect();
        files.sort_by_key(|(name, _, size)| (!required.contains(&name.as_str()), *size));
        let parallel = std::thread::available_parallelism().map_or(2, usize::from);
        let deploying = self.deploying.lock().await;
        let mut compiling = futures_util::stream::iter(files)
            .map(|(name, path, _)| async move {
                let started = Instant::now();
                let loaded = self.loader.load(path.clone()).await;
                (name, path, loaded, started)
            })
            .buffer_unordered(parallel);
        // At start a bad file is an error the operator sees at once; later it is only
        // refused, and the running version keeps serving.
        while let Some((name, path, loaded, started)) = compiling.next().await {
            self.install(&name, &path, loaded, started).await?;
        }
        drop(compiling);
        drop(deploying);
        let watch =
            watch::watch(dir, Arc::downgrade(self)).map_err(|e| dir_error(e.to_string()))?;
        *self.lock_watch() = Some(watch);
        Ok(())
    }

    fn lock_watch(&self) -> std::sync::MutexGuard<'_, Option<watch::FolderWatch>> {
        self.watch.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn settings(&self) -> Settings {
        self.settings
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Every app, without holding the map's lock.
    fn apps(&self) -> Vec<(AppName, Arc<App>)> {
        self.apps
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .map(|(name, app)| (name.clone(), app.clone()))
            .collect()
    }

    fn app(&self, name: &str) -> Option<Arc<App>> {
        self.apps
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(name)
            .cloned()
    }

    /// Loads a plugin file and makes it the running version of its app: compiled off the
    /// event path (or mapped from the cache), checked against the world, tried in a canary
    /// instance, then swapped in. On any failure the running version keeps serving.
    pub async fn deploy(&self, path: &Path) -> Result<Deployed, PluginError> {
        let _one_at_a_time = self.deploying.lock().await;
        let Some(name) = app_of(path) else {
            return Ok(Deployed::Unchanged);
        };
        let existing = self.app(&name);
        if let Some(app) = &existing {
            let digest = tokio::task::spawn_blocking({
                let path = path.to_owned();
                move || Loader::digest(&path).map(|(sha, _)| sha)
            })
            .await;
            if let Ok(Ok(sha256)) = digest
                && sha256 == app.control.current().version.sha256
            {
                return Ok(Deployed::Unchanged);
            }
        }
        let started = Instant::now();
        let loaded = self.loader.load(path.to_owned()).await;
        self.install(&name, path, loaded, started).await
    }

    /// Makes a loaded version the running one of app `name`, once it passed its trial;
    /// on any failure the running version keeps serving and the failure is recorded.
    async fn install(
        &self,
        name: &str,
        path: &Path,
        loaded: Result<Arc<plugin::Version>, PluginError>,
        started: Instant,
    ) -> Result<Deployed, PluginError> {
        let existing = self.app(name);
        let settings = self.settings();
        let env = settings.env(
            name,
            &self.gateways,
            self.guests.handle(),
            &self.kv,
            &self.clock,
            self.ticker.activity(),
        );
        let outcome = match loaded {
            Ok(version) => canary::rehearse(name.into(), version.clone(), env.clone())
                .await
                .map(|()| version),
            Err(e) => Err(e),
        };
        let version = match outcome {
            Ok(version) => version,
            Err(e) => {
                if let Some(app) = &existing {
                    app.control.reject(Rejected {
                        path: path.to_owned(),
                        reason: e.to_string(),
                        at: SystemTime::now(),
                    });
                }
                return Err(e);
            }
        };
        let to = version.hash.to_string();
        let log = |what: &str| {
            tracing::info!(
                app = name,
                version = to,
                bytes = version.size,
                cached = version.cached,
                load_ms = version.load_time.as_millis() as u64,
                total_ms = started.elapsed().as_millis() as u64,
                path = %path.display(),
                "{what}"
            );
        };
        match existing {
            Some(app) => {
                let from = app.control.current().version.hash.to_string();
                log(&format!("swapping in a new version (was {from})"));
                app.control.swap(version.clone(), settings.policy);
                Ok(Deployed::Swapped { from, to })
            }
            None => {
                log("plugin loaded");
                let control = Arc::new(AppControl::new(name.into(), version.clone()));
                let app = Arc::new(App::start(control, env, settings.instances));
                self.apps
                    .write()
                    .unwrap_or_else(PoisonError::into_inner)
                    .insert(name.into(), app);
                Ok(Deployed::Added { version: to })
            }
        }
    }

    /// Makes this host one of a cluster's workers: plugin files dropped into the folder are
    /// handed to `publisher` (which releases them to every worker) instead of deployed here,
    /// and `reload` leaves the versions to the cluster. Call before [`WorkerHost::load`].
    pub fn publish_through(&self, publisher: Arc<dyn Publish>) {
        let _ = self.publisher.set(publisher);
    }

    /// The version `app` runs: its SHA-256 (hex) and the file it came from.
    pub fn running(&self, app: &str) -> Option<(String, PathBuf)> {
        let app = self.app(app)?;
        let version = app.control.current().version.clone();
        Some((version.sha256.clone(), version.path.clone()))
    }

    /// Every loaded app with the version it runs (12 hex digits).
    pub fn versions(&self) -> Vec<(AppName, String)> {
        self.apps()
            .into_iter()
            .map(|(name, app)| {
                let hash = app.control.current().version.hash.to_string();
                (name, hash)
            })
            .collect()
    }

    /// Reacts to a change in the plugin folder (called by the watcher).
    async fn file_changed(&self, path: &Path) {
        if let Some(publisher) = self.publisher.get()
            && path.is_file()
            && let Some(app) = app_of(path)
        {
            if let Err(e) = publisher.publish(&app, path).await {
                tracing::error!(
                    app,
                    path = %path.display(),
                    "plugin not released to the cluster, the running version keeps serving: {e}"
                );
            }
        } else if path.is_file() {
            if let Err(e) = self.deploy(path).await {
                tracing::error!("plugin refused, the running version keeps serving: {e}");
            }
        } else if let Some(name) = app_of(path)
            && self.app(&name).is_some()
        {
            tracing::warn!(
                app = name,
                path = %path.display(),
                "plugin file removed; the app keeps running until `switchboard reload`"
            );
        }
    }

    /// Applies a changed `[worker]` table and re-scans the plugin folder: new and changed
    /// files are deployed, apps whose file is gone are unloaded. One line per change.
    pub async fn reload(&self, config: &Config) -> Vec<String> {
        let new = Settings::of(config);
        let config = &config.worker;
        let mut changes = Vec::new();
        if config.threads != self.threads {
            changes.push(format!(
                "worker.threads: still {} (a new count needs a restart)",
                self.threads
            ));
        }
        if config.plugins_dir != self.plugins_dir {
            changes.push(format!(
                "worker.plugins_dir: still {} (a new folder needs a restart)",
                self.plugins_dir.display()
            ));
        }
        let old = self.settings();
        if new != old {
            *self.settings.lock().unwrap_or_else(PoisonError::into_inner) = new.clone();
            describe_changes(&old, &new, &mut changes);
            for (name, app) in self.apps() {
                if old.pool_changes(&new, &name) {
                    let env = new.env(
                        &name,
                        &self.gateways,
                        self.guests.handle(),
                        &self.kv,
                        &self.clock,
                        self.ticker.activity(),
                    );
                    app.restart_pool(env, new.instances).await;
                }
            }
        }
        if self.publisher.get().is_some() {
            changes.push(
                "plugins: versions follow the cluster's releases (switchboard deploy, or a file dropped into the folder)"
                    .into(),
            );
            return changes;
        }
        let files = match plugin::scan(&self.plugins_dir) {
            Ok(files) => files,
            Err(e) => {
                changes.push(format!("cannot read {}: {e}", self.plugins_dir.display()));
                return changes;
            }
        };
        for (name, path) in &files {
            match self.deploy(path).await {
                Ok(Deployed::Added { version }) => {
                    changes.push(format!("app {name}: added, version {version}"))
                }
                Ok(Deployed::Swapped { from, to }) => {
                    changes.push(format!("app {name}: version {from} -> {to}"))
                }
                Ok(Deployed::Unchanged) => {}
                Err(e) => changes.push(format!("app {name}: refused: {e}")),
            }
        }
        let gone: Vec<AppName> = self
            .apps
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .keys()
            .filter(|name| !files.iter().any(|(file, _)| file.as_str() == &***name))
            .cloned()
            .collect();
        for name in gone {
            let removed = self
                .apps
                .write()
                .unwrap_or_else(PoisonError::into_inner)
                .remove(&name);
            if let Some(app) = removed {
                app.stop().await;
                changes.push(format!("app {name}: unloaded (its file was removed)"));
            }
        }
        changes
    }

    /// What each loaded app runs and how it fares, sorted by name.
    pub async fn status(&self) -> Vec<AppStatus> {
        let apps = self.apps();
        let mut status = Vec::with_capacity(apps.len());
        for (name, app) in apps {
            let control = &app.control;
            let version = control.current().version.clone();
            let stats = &control.stats;
            status.push(AppStatus {
                name: name.to_string(),
                version: version.hash.to_string(),
                path: version.path.clone(),
                size: version.size,
                loaded_at: version.loaded_at,
                instances: app.instances().await,
                events: stats.events.load(Ordering::Relaxed),
                failures: stats.failures.load(Ordering::Relaxed),
                skipped: stats.skipped.load(Ordering::Relaxed),
                instantiations: stats.instantiations.load(Ordering::Relaxed),
                recycles: stats.recycles.load(Ordering::Relaxed),
                peak_memory_bytes: stats.peak_memory_bytes.load(Ordering::Relaxed),
                latency: stats.latency.snapshot(),
                swaps: control.swaps(),
                rollbacks: control.rollbacks(),
                last_rejected: control.last_rejected(),
            });
        }
        status
    }

    /// Stops watching, lets every instance finish its queued events and run
    /// `on-worker-stop`.
    pub async fn shutdown(&self) {
        self.lock_watch().take();
        for (_, app) in self.apps() {
            app.stop().await;
        }
    }
}

/// One line per changed setting.
fn describe_changes(old: &Settings, new: &Settings, changes: &mut Vec<String>) {
    let mut line = |key: &str, from: String, to: String| {
        if from != to {
            changes.push(format!("{key}: {from} -> {to}"));
        }
    };
    line(
        "worker.instances",
        old.instances.to_string(),
        new.instances.to_string(),
    );
    line(
        "worker.memory_limit_mib",
        old.memory_limit_mib.to_string(),
        new.memory_limit_mib.to_string(),
    );
    line(
        "worker.event_deadline_ms",
        old.event_deadline_ms.to_string(),
        new.event_deadline_ms.to_string(),
    );
    line(
        "worker.rollback_window",
        old.policy.window.to_string(),
        new.policy.window.to_string(),
    );
    line(
        "worker.rollback_failure_ratio",
        old.policy.failure_ratio.to_string(),
        new.policy.failure_ratio.to_string(),
    );
    let apps: std::collections::BTreeSet<&String> =
        old.recycle.keys().chain(new.recycle.keys()).collect();
    for app in apps {
        let show = |r: Option<&Recycle>| format!("{:?}", r.copied().unwrap_or_default());
        line(
            &format!("apps.{app}"),
            show(old.recycle.get(app)),
            show(new.recycle.get(app)),
        );
        // Values may be secrets: only the names of changed variables are shown.
        let (before, after) = (old.granted.get(app), new.granted.get(app));
        let vars = |g: Option<&Granted>| g.map(|g| g.variables.clone()).unwrap_or_default();
        let (vb, va) = (vars(before), vars(after));
        let names: std::collections::BTreeSet<&String> = vb.keys().chain(va.keys()).collect();
        for name in names {
            let (from, to) = match (vb.get(name), va.get(name)) {
                (Some(_), None) => ("(set)", "(unset)"),
                (None, Some(_)) => ("(unset)", "(set)"),
                (Some(b), Some(a)) if a != b => ("(old value)", "(new value)"),
                _ => continue,
            };
            line(
                &format!("apps.{app}.variables.{name}"),
                from.into(),
                to.into(),
            );
        }
        let outbound = |g: Option<&Granted>| g.map(|g| g.outbound.to_string()).unwrap_or_default();
        line(
            &format!("apps.{app}.outbound"),
            outbound(before),
            outbound(after),
        );
    }
}

#[async_trait]
impl Workers for WorkerHost {
    fn try_event(&self, event: Event) -> Option<Event> {
        match self.app(&event.app) {
            Some(app) if app.control.unhandled().skips(&event.kind) => {
                app.control.stats.skipped.fetch_add(1, Ordering::Relaxed);
                None
            }
            Some(app) => app.try_run(event),
            None => Some(event),
        }
    }

    async fn event(&self, event: Event) {
        match self.app(&event.app) {
            Some(app) if app.control.unhandled().skips(&event.kind) => {
                app.control.stats.skipped.fetch_add(1, Ordering::Relaxed);
            }
            Some(app) => {
                let client = event.ctx.client;
                app.dispatch(client, Job::Event(event)).await;
            }
            None => tracing::warn!(
                app = &*event.app,
                "event for an app that is not loaded; dropped"
            ),
        }
    }

    fn serves(&self, app: &str) -> bool {
        self.app(app).is_some()
    }

    async fn handshake(&self, handshake: Handshake) -> Result<(), Rejection> {
        let unavailable = || Rejection {
            status: 503,
            reason: "the app is not available".into(),
        };
        let app = self.app(&handshake.app).ok_or_else(unavailable)?;
        if app.control.unhandled().accepts_handshakes() {
            app.control.stats.skipped.fetch_add(1, Ordering::Relaxed);
            return Ok(());
        }
        let client = handshake.ctx.client;
        let (reply, verdict) = oneshot::channel();
        app.dispatch(client, Job::Handshake(handshake, reply)).await;
        verdict.await.unwrap_or_else(|_| Err(unavailable()))
    }
}

/// The linker every plugin is checked and instantiated against: WASI p2 and the API.
fn new_linker(engine: &Engine) -> Result<Linker<InstanceState>, WorkerError> {
    let mut linker = Linker::new(engine);
    let engine_error = |e: wasmtime::Error| WorkerError::Engine(format!("{e:#}"));
    wasmtime_wasi::p2::add_to_linker_async(&mut linker).map_err(engine_error)?;
    wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker).map_err(engine_error)?;
    bindings::Plugin::add_to_linker::<_, HasSelf<_>>(&mut linker, |state| state)
        .map_err(engine_error)?;
    Ok(linker)
}

/// Polls `f` once, with a waker that does nothing (so outside any runtime, too).
#[cfg(test)]
fn poll_once<F: Future>(f: std::pin::Pin<&mut F>) -> std::task::Poll<F::Output> {
    f.poll(&mut std::task::Context::from_waker(std::task::Waker::noop()))
}
