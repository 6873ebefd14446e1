//! The running server: this process's gateway, worker host or both (joined by direct calls,
//! or through NATS in a cluster), with the control socket and the admin listener around them.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use tokio::signal::unix::{Signal, SignalKind, signal};
use tokio::sync::Notify;

use super::cluster::Membership;
use super::process::{PidFile, ProcessError};
use super::socket::{self, Request, Response};
use super::status::Status;
use super::{load_config, metrics};
use crate::bus::nats::Node;
use crate::bus::{GatewayId, Gateways, Workers};
use crate::config::{Config, Role};
use crate::gateway::tls::{self, Tls, bind_web};
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
    /// The HTTP API's tokens could not be read.
    #[error("{0}")]
    ApiTokens(String),
    /// The compile cache is not this user's alone: its native code would not be trusted.
    #[error("cache_dir: {0}")]
    CacheDir(#[from] crate::private_dir::PrivateDirError),
    /// The admin listener or the HTTP API could not be set up.
    #[error("{what}: {source}")]
    Web {
        /// Which, and its address.
        what: String,
        /// Why.
        source: crate::gateway::tls::BindError,
    },
    /// The control socket could not be bound.
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
    /// The id shown in status: the gateway's, or the worker's on a worker-only process.
    id: GatewayId,
    gateway: Option<Arc<Gateway>>,
    workers: Option<Arc<WorkerHost>>,
    /// With `[cluster]`: the NATS side of this process.
    cluster: Option<Membership>,
    config_path: Option<PathBuf>,
    /// The apps the listeners name.
    apps: Vec<String>,
    admin_addr: Option<std::net::SocketAddr>,
    /// The certificates of the admin listener and the HTTP API, renewed by a reload.
    web_tls: [Option<Arc<Tls>>; 2],
    started: Instant,
    stop: Notify,
}

impl Running {
    async fn figures(&self) -> (GatewayStats, Vec<AppStatus>) {
        let gateway = match &self.gateway {
            Some(gateway) => gateway.stats(),
            None => GatewayStats {
                gateway: self.id,
                listeners: Vec::new(),
                clients: 0,
                uids: 0,
                groups: 0,
            },
        };
        let apps = match &self.workers {
            Some(workers) => workers.status().await,
            None => Vec::new(),
        };
        (gateway, apps)
    }
}

#[async_trait]
impl socket::Handler for Running {
    async fn handle(&self, request: Request) -> Response {
        match request {
            Request::Status => {
                let (gateway, apps) = self.figures().await;
                let uptime = self.started.elapsed().as_secs();
                let mut status = Status::gather(uptime, &gateway, &apps, self.admin_addr);
                status.cluster = self.cluster.as_ref().map(Membership::view);
                Response::Status(Box::new(status))
            }
            Request::Reload => match load_config(self.config_path.clone()) {
                Ok(config) => {
                    let mut changes = Vec::new();
                    if let Some(gateway) = &self.gateway {
                        changes.extend(gateway.reconfigure(&config.listeners));
                    }
                    if let Some(workers) = &self.workers {
                        changes.extend(workers.reload(&config).await);
                    }
                    let api_files = config.api.as_ref().map(|a| a.tls()).unwrap_or_default();
                    let files = [("admin", config.admin.tls()), ("api", api_files)];
                    for (tls, (what, files)) in self.web_tls.iter().zip(files) {
                        if let Some(tls) = tls {
                            changes.push(tls::renew(what, tls, &files, tls::HTTP1));
                        }
                    }
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

    fn cluster(&self) -> Option<super::status::ClusterView> {
        self.cluster.as_ref().map(Membership::view)
    }

    /// A gateway is ready once each of its apps is served (by a live worker, in a
    /// cluster); a worker-only process once it has loaded them.
    fn ready(&self) -> bool {
        self.apps.iter().all(|app| {
            let routed = self.cluster.as_ref().and_then(|c| c.routes_serve(app));
            match (routed, &self.workers) {
                (Some(served), _) => served,
                (None, Some(workers)) => workers.serves(app),
                (None, None) => false,
            }
        })
    }
}

/// Serves until Ctrl-C, SIGTERM or `switchboard stop` (or, with `stop_on_stdin_eof`, until
/// standard input closes), then stops cleanly: clients get close frames, cluster peers a
/// goodbye, instances `on-worker-stop`.
///
/// Without `[cluster]` the gateway and the worker host of this process are joined by
/// direct calls; with it, each part of the process joins the others over NATS.
pub async fn run(
    config: Config,
    config_path: Option<PathBuf>,
    stop_on_stdin_eof: bool,
) -> Result<(), ServeError> {
    let start = |e: StartError| ServeError::Start(e);
    let mut signals = StopSignals::install(stop_on_stdin_eof).map_err(ServeError::Signal)?;
    let pid_file = PidFile::claim(&config.run).map_err(|e| start(e.into()))?;
    let role = config.cluster.as_ref().map_or(Role::All, |c| c.role);
    let gateway = role.is_gateway().then(|| Gateway::new(GatewayId::random()));
    let worker_id = role.is_worker().then(Node::random_worker_id);
    if role.is_worker() {
        // Said now, once, rather than as a warning on every load that skips the cache.
        crate::private_dir::create(&config.worker.cache_dir).map_err(|e| start(e.into()))?;
    }
    // Bind first so a port in use is reported before anything else starts.
    let listeners = match &gateway {
        Some(gateway) => gateway
            .bind(&config.listeners)
            .await
            .map_err(|e| start(e.into()))?,
        None => Vec::new(),
    };
    let control = socket::bind(&config.run.socket()).map_err(|source| {
        start(StartError::Listen {
            what: config.run.socket().display().to_string(),
            source,
        })
    })?;
    let admin = match config.admin.addr {
        Some(addr) => Some(
            bind_web(addr, &config.admin.tls())
                .await
                .map_err(|source| {
                    start(StartError::Web {
                        what: format!("admin address {addr}"),
                        source,
                    })
                })?,
        ),
        None => None,
    };
    let api = match &config.api {
        Some(api) => {
            let tokens = api
                .load_tokens()
                .map_err(|e| start(StartError::ApiTokens(e)))?;
            let listener = bind_web(api.addr, &api.tls()).await.map_err(|source| {
                start(StartError::Web {
                    what: format!("api address {}", api.addr),
                    source,
                })
            })?;
            Some((listener, tokens))
        }
        None => None,
    };
    let mut cluster = match &config.cluster {
        Some(cluster) => Some(
            Membership::join(cluster, gateway.as_ref().map(|g| g.id()), worker_id)
                .await
                .map_err(|e| start(e.into()))?,
        ),
        None => None,
    };
    let apps: Vec<String> = config.apps().iter().map(|a| a.to_string()).collect();

    let workers = match worker_id {
        Some(id) => {
            let gateways: Arc<dyn Gateways> = match (&cluster, &gateway) {
                (Some(cluster), _) => cluster.gateways(),
                (None, Some(gateway)) => gateway.clone(),
                (None, None) => unreachable!("without [cluster] a process has every role"),
            };
            // In a cluster the plugins' key-value store is shared by every worker.
            let host = match &cluster {
                Some(cluster) => WorkerHost::with_kv(&config, gateways, cluster.kv()),
                None => WorkerHost::new(&config, gateways),
            }
            .map_err(|e| start(e.into()))?;
            if let Some(cluster) = &mut cluster {
                cluster
                    .serve_worker(id, &host, &apps)
                    .await
                    .map_err(|e| start(e.into()))?;
            }
            Some(host)
        }
        None => None,
    };
    if let Some(gateway) = &gateway {
        let routes: Arc<dyn Workers> = match (&mut cluster, &workers) {
            (Some(cluster), _) => cluster
                .serve_gateway(gateway)
                .await
                .map_err(|e| start(e.into()))?,
            (None, Some(workers)) => workers.clone(),
            (None, None) => unreachable!("without [cluster] a process has every role"),
        };
        // Listeners accept at once, and refuse clients (WebSocket: 503) until their app is
        // served: nobody waits in a backlog while plugins compile.
        let addrs: Vec<_> = listeners.iter().map(|l| l.local_addr()).collect();
        gateway.serve(listeners, routes);
        for (addr, l) in addrs.iter().zip(&config.listeners) {
            tracing::info!("listening on {addr} ({}, app {})", l.protocol.name(), l.app);
        }
    }
    let running = Arc::new(Running {
        id: gateway
            .as_ref()
            .map(|g| g.id())
            .or_else(|| worker_id.and_then(GatewayId::new))
            .unwrap_or_else(GatewayId::random),
        gateway: gateway.clone(),
        workers: workers.clone(),
        cluster,
        config_path,
        apps: apps.clone(),
        admin_addr: admin.as_ref().map(|l| l.addr()),
        web_tls: [
            admin.as_ref().and_then(|l| l.tls()),
            api.as_ref().and_then(|(l, _)| l.tls()),
        ],
        started: Instant::now(),
        stop: Notify::new(),
    });
    let admin_task = admin.map(|listener| {
        let url = listener.base_url();
        tracing::info!("admin endpoints on {url}/metrics and /health");
        tokio::spawn(metrics::serve(listener, running.clone()))
    });
    // The API calls the gateways the way a worker does: through the cluster if there is one.
    let api_task = api.map(|(listener, tokens)| {
        let gateways: Arc<dyn Gateways> = match (&running.cluster, &gateway) {
            (Some(cluster), _) => cluster.gateways(),
            (None, Some(gateway)) => gateway.clone(),
            (None, None) => unreachable!("without [cluster] a process has every role"),
        };
        tracing::info!("HTTP API on {}/api/v1/", listener.base_url());
        let api = crate::api::Api::new(gateways, apps.clone(), &tokens);
        tokio::spawn(crate::api::serve(listener, Arc::new(api)))
    });
    if let Some(workers) = &workers {
        let required: Vec<&str> = apps.iter().map(String::as_str).collect();
        workers.load(&required).await.map_err(|e| start(e.into()))?;
        if let (Some(cluster), Some(id)) = (&running.cluster, worker_id) {
            let dir = config.run.releases_dir();
            cluster.follow_releases(id, workers, dir).await;
            cluster.announce().await;
        }
    }
    let control_task = tokio::spawn(socket::serve(control, running.clone()));
    tracing::info!(
        role = role.name(),
        gateway = ?gateway.as_ref().map(|g| g.id().to_string()),
        worker = ?worker_id.map(|w| format!("{w:08x}")),
        pid = std::process::id(),
        "switchboard ready"
    );

    tokio::select! {
        () = signals.recv() => {}
        () = running.stop.notified() => {}
    }
    if let Some(gateway) = &gateway {
        tracing::info!("stopping: closing clients");
        gateway
            .shutdown(Duration::from_millis(config.run.stop_timeout_ms))
            .await;
    }
    if let Some(cluster) = &running.cluster {
        cluster.leave().await;
    }
    if let Some(workers) = &workers {
        tracing::info!("stopping: retiring plugin instances");
        workers.shutdown().await;
    }
    control_task.abort();
    for task in [admin_task, api_task].into_iter().flatten() {
        task.abort();
    }
    drop(pid_file);
    tracing::info!("stopped");
    Ok(())
}

/// Ctrl-C (SIGINT) and SIGTERM, caught from the moment this exists: a signal that comes
/// while plugins load, or just after "ready" is logged, still stops the server cleanly.
/// Optionally the end of standard input too: a parent that holds the other end (`switchboard
/// dev`) and dies, even by SIGKILL, takes its server with it.
struct StopSignals {
    interrupt: Signal,
    terminate: Signal,
    stdin_closed: Option<tokio::sync::oneshot::Receiver<()>>,
}

impl StopSignals {
    fn install(stop_on_stdin_eof: bool) -> std::io::Result<Self> {
        let stdin_closed = match stop_on_stdin_eof {
            true => Some(stdin_closed()?),
            false => None,
        };
        Ok(Self {
            interrupt: signal(SignalKind::interrupt())?,
            terminate: signal(SignalKind::terminate())?,
            stdin_closed,
        })
    }

    /// Waits for either signal, or the end of standard input if it is watched.
    async fn recv(&mut self) {
        let stdin_closed = async {
            match &mut self.stdin_closed {
                Some(closed) => {
                    let _ = closed.await;
                    tracing::info!("standard input closed: the parent process is gone");
                }
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = self.interrupt.recv() => {}
            _ = self.terminate.recv() => {}
            () = stdin_closed => {}
        }
    }
}

/// Resolves once standard input reaches its end (or fails): a thread of its own reads and
/// drops it, since reading a pipe blocks.
fn stdin_closed() -> std::io::Result<tokio::sync::oneshot::Receiver<()>> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("stdin-watch".into())
        .spawn(move || {
            let _ = std::io::copy(&mut std::io::stdin().lock(), &mut std::io::sink());
            let _ = tx.send(());
        })?;
    Ok(rx)
}
