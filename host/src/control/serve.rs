//! The embedded host: gateway and worker host in one process, joined by direct calls, with
//! the control socket and the admin listener around them.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use tokio::signal::unix::{Signal, SignalKind, signal};
use tokio::sync::Notify;

use super::process::{PidFile, ProcessError};
use super::socket::{self, Request, Response};
use super::status::Status;
use super::{load_config, metrics};
use crate::bus::{GatewayId, Gateways, Workers};
use crate::config::Config;
use crate::gateway::{Gateway, GatewayError, GatewayStats};
use crate::worker::{AppStatus, WorkerError, WorkerHost};

/// Why the server stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// It could not start; the user must fix something (exit code 2).
    #[error(transparent)]
    Start(StartError),
    /// Waiting for a stop signal failed.
    #[error("cannot listen for stop signals: {0}")]
    Signal(std::io::Error),
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// Another server runs, or the run directory is unusable.
    #[error(transparent)]
    Process(#[from] ProcessError),
    /// A listener could not be bound.
    #[error(transparent)]
    Gateway(#[from] GatewayError),
    /// The plugins could not be loaded.
    #[error(transparent)]
    Worker(#[from] WorkerError),
    /// The cluster transport could not start (NATS options, credentials, subscriptions).
    #[error(transparent)]
    Cluster(#[from] crate::bus::nats::ClusterError),
    /// The control socket or the admin listener could not be bound.
    #[error("cannot listen on {what}: {source}")]
    Listen {
        /// Which.
        what: String,
        /// Why.
        source: std::io::Error,
    },
}

/// The running server, as the control socket and the admin listener see it.
struct Running {
    gateway: Arc<Gateway>,
    workers: Arc<WorkerHost>,
    config_path: Option<PathBuf>,
    /// The apps the listeners name.
    apps: Vec<String>,
    admin_addr: Option<std::net::SocketAddr>,
    started: Instant,
    stop: Notify,
}

impl Running {
    async fn figures(&self) -> (GatewayStats, Vec<AppStatus>) {
        (self.gateway.stats(), self.workers.status().await)
    }
}

#[async_trait]
impl socket::Handler for Running {
    async fn handle(&self, request: Request) -> Response {
        match request {
            Request::Status => {
                let (gateway, apps) = self.figures().await;
                let uptime = self.started.elapsed().as_secs();
                Response::Status(Box::new(Status::gather(
                    uptime,
                    &gateway,
                    &apps,
                    self.admin_addr,
                )))
            }
            Request::Reload => match load_config(self.config_path.clone()) {
                Ok(config) => {
                    let mut changes = self.gateway.reconfigure(&config.listeners);
                    changes.extend(self.workers.reload(&config).await);
                    Response::Reloaded { changes }
                }
                Err(e) => Response::Error {
                    message: format!("config not reloaded: {e}"),
                },
            },
            Request::Stop => {
                self.stop.notify_one();
                Response::Stopping
            }
        }
    }
}

#[async_trait]
impl metrics::Source for Running {
    async fn figures(&self) -> (GatewayStats, Vec<AppStatus>) {
        Running::figures(self).await
    }

    fn ready(&self) -> bool {
        self.apps.iter().all(|app| self.workers.serves(app))
    }
}

/// Serves until Ctrl-C, SIGTERM or `switchboard stop`, then stops cleanly: clients get
/// close frames, instances get `on-worker-stop`.
pub async fn run(config: Config, config_path: Option<PathBuf>) -> Result<(), ServeError> {
    let start = |e: StartError| ServeError::Start(e);
    let mut signals = StopSignals::install().map_err(ServeError::Signal)?;
    let pid_file = PidFile::claim(&config.run).map_err(|e| start(e.into()))?;
    let gateway = Gateway::new(GatewayId::random());
    // Bind first so a port in use is reported before plugins are compiled.
    let listeners = gateway
        .bind(&config.listeners)
        .await
        .map_err(|e| start(e.into()))?;
    let control = socket::bind(&config.run.socket()).map_err(|source| {
        start(StartError::Listen {
            what: config.run.socket().display().to_string(),
            source,
        })
    })?;
    let admin = match config.admin.addr {
        Some(addr) => Some(metrics::bind(addr).await.map_err(|source| {
            start(StartError::Listen {
                what: format!("admin address {addr}"),
                source,
            })
        })?),
        None => None,
    };
    let gateways: Arc<dyn Gateways> = gateway.clone();
    let workers = WorkerHost::new(&config, gateways).map_err(|e| start(e.into()))?;
    // Listeners accept at once, and refuse clients (WebSocket: 503) until their app is
    // loaded: nobody waits in a backlog while plugins compile.
    let addrs: Vec<_> = listeners.iter().map(|l| l.local_addr()).collect();
    gateway.serve(listeners, workers.clone() as Arc<dyn Workers>);
    for (addr, l) in addrs.iter().zip(&config.listeners) {
        tracing::info!("listening on {addr} ({}, app {})", l.protocol.name(), l.app);
    }
    let apps = config.apps();
    let running = Arc::new(Running {
        gateway: gateway.clone(),
        workers: workers.clone(),
        config_path,
        apps: apps.iter().map(|app| app.to_string()).collect(),
        admin_addr: admin.as_ref().and_then(|l| l.local_addr().ok()),
        started: Instant::now(),
        stop: Notify::new(),
    });
    let admin_task = admin.map(|listener| {
        if let Some(addr) = running.admin_addr {
            tracing::info!("admin endpoints on http://{addr}/metrics and /health");
        }
        tokio::spawn(metrics::serve(listener, running.clone()))
    });
    workers.load(&apps).await.map_err(|e| start(e.into()))?;
    let control_task = tokio::spawn(socket::serve(control, running.clone()));
    tracing::info!(gateway = %gateway.id(), pid = std::process::id(), "switchboard ready");

    tokio::select! {
        () = signals.recv() => {}
        () = running.stop.notified() => {}
    }
    tracing::info!("stopping: closing clients");
    gateway
        .shutdown(Duration::from_millis(config.run.stop_timeout_ms))
        .await;
    tracing::info!("stopping: retiring plugin instances");
    workers.shutdown().await;
    control_task.abort();
    if let Some(task) = admin_task {
        task.abort();
    }
    drop(pid_file);
    tracing::info!("stopped");
    Ok(())
}

/// Ctrl-C (SIGINT) and SIGTERM, caught from the moment this exists: a signal that comes
/// while plugins load, or just after "ready" is logged, still stops the server cleanly.
pub(super) struct StopSignals {
    interrupt: Signal,
    terminate: Signal,
}

impl StopSignals {
    pub(super) fn install() -> std::io::Result<Self> {
        Ok(Self {
            interrupt: signal(SignalKind::interrupt())?,
            terminate: signal(SignalKind::terminate())?,
        })
    }

    /// Waits for either signal.
    pub(super) async fn recv(&mut self) {
        tokio::select! {
            _ = self.interrupt.recv() => {}
            _ = self.terminate.recv() => {}
        }
    }
}
