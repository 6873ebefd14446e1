//! A cluster member: the gateway, the worker host or both of this process, joined to the
//! others over NATS (`[cluster]`), with the control socket and the admin listener around
//! them as in the embedded process ([`super::serve`]).

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use tokio::sync::Notify;

use super::process::PidFile;
use super::serve::{ServeError, StartError, StopSignals};
use super::socket::{self, Request, Response};
use super::status::{ClusterView, MemberView, Status};
use super::{load_config, metrics};
use crate::bus::nats::{self, NatsGateways, NatsWorkers, Node};
use crate::bus::{GatewayId, Workers};
use crate::config::Config;
use crate::gateway::{Gateway, GatewayStats};
use crate::worker::{AppStatus, WorkerHost};

/// This process's parts, as the control socket and the admin listener see them.
struct Member {
    /// The id shown in status: the gateway's, or the worker's on a worker-only process.
    id: GatewayId,
    gateway: Option<Arc<Gateway>>,
    workers: Option<Arc<WorkerHost>>,
    /// The gateway's view of the live workers.
    routes: Option<Arc<NatsWorkers>>,
    node: Arc<Node>,
    connection: Arc<nats::ConnectionEvents>,
    role: &'static str,
    prefix: String,
    config_path: Option<PathBuf>,
    apps: Vec<String>,
    admin_addr: Option<std::net::SocketAddr>,
    started: Instant,
    stop: Notify,
}

impl Member {
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

    /// The cluster as this process sees it.
    fn cluster_view(&self) -> ClusterView {
        let per_worker = self
            .routes
            .as_ref()
            .map(|r| r.clients_per_worker())
            .unwrap_or_default();
        let view = |(id, epoch): (u32, u64), clients: Option<u64>| MemberView {
            id: format!("{id:08x}"),
            epoch,
            clients,
        };
        ClusterView {
            role: self.role.to_owned(),
            prefix: self.prefix.clone(),
            nats: self.node.nats_state(),
            worker_id: self.node.worker_id().map(|w| format!("{w:08x}")),
            gateways: self
                .node
                .live_gateways()
                .into_iter()
                .map(|g| view(g, None))
                .collect(),
            workers: self
                .node
                .live_workers()
                .into_iter()
                .map(|w| {
                    let clients = self
                        .routes
                        .as_ref()
                        .map(|_| per_worker.get(&w.0).copied().unwrap_or(0) as u64);
                    view(w, clients)
                })
                .collect(),
            events_waiting: self.routes.as_ref().map_or(0, |r| r.waiting() as u64),
            events_dropped: self.routes.as_ref().map_or(0, |r| r.dropped()),
            nats_disconnects: self.connection.disconnects.load(Ordering::Relaxed),
            nats_slow_consumer: self.connection.slow_consumer.load(Ordering::Relaxed),
        }
    }
}

#[async_trait]
impl socket::Handler for Member {
    async fn handle(&self, request: Request) -> Response {
        match request {
            Request::Status => {
                let (gateway, apps) = self.figures().await;
                let uptime = self.started.elapsed().as_secs();
                let mut status = Status::gather(uptime, &gateway, &apps, self.admin_addr);
                status.cluster = Some(self.cluster_view());
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
impl metrics::Source for Member {
    async fn figures(&self) -> (GatewayStats, Vec<AppStatus>) {
        Member::figures(self).await
    }

    /// A gateway is ready once a live worker serves each of its apps; a worker once it
    /// has loaded them.
    fn ready(&self) -> bool {
        self.apps
            .iter()
            .all(|app| match (&self.routes, &self.workers) {
                (Some(routes), _) => routes.serves(app),
                (None, Some(workers)) => workers.serves(app),
                (None, None) => false,
            })
    }
}

/// Serves as a cluster member until Ctrl-C, SIGTERM or `switchboard stop`, then stops
/// cleanly: clients get close frames, peers get a goodbye, instances get `on-worker-stop`.
pub async fn run(config: Config, config_path: Option<PathBuf>) -> Result<(), ServeError> {
    let Some(cluster) = config.cluster.clone() else {
        return super::serve::run(config, config_path).await;
    };
    let start = |e: StartError| ServeError::Start(e);
    let role = cluster.role;
    let mut signals = StopSignals::install().map_err(ServeError::Signal)?;
    let pid_file = PidFile::claim(&config.run).map_err(|e| start(e.into()))?;
    let gateway_id = role.is_gateway().then(GatewayId::random);
    let worker_id = role.is_worker().then(Node::random_worker_id);
    // Bind first so a port in use is reported before anything else starts.
    let (gateway, listeners) = match gateway_id {
        Some(id) => {
            let gateway = Gateway::new(id);
            let listeners = gateway
                .bind(&config.listeners)
                .await
                .map_err(|e| start(e.into()))?;
            (Some(gateway), listeners)
        }
        None => (None, Vec::new()),
    };
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
    let name = format!("switchboard {} pid {}", role.name(), std::process::id());
    let connection = Arc::new(nats::ConnectionEvents::default());
    let client = nats::connect(&cluster, &name, connection.clone())
        .await
        .map_err(|e| start(e.into()))?;
    let node = Node::new(client, &cluster.prefix, gateway_id, worker_id);
    let heartbeats = node.start_heartbeats().await.map_err(|e| start(e.into()))?;
    let apps: Vec<String> = config.apps().iter().map(|a| a.to_string()).collect();

    let mut tasks = vec![heartbeats];
    let workers = match worker_id {
        Some(id) => {
            let host = WorkerHost::new(&config, NatsGateways::new(node.clone()))
                .map_err(|e| start(e.into()))?;
            let weak = Arc::downgrade(&host);
            let advertised = apps.clone();
            node.set_serving(move || {
                let Some(host) = weak.upgrade() else {
                    return Vec::new();
                };
                advertised
                    .iter()
                    .filter(|app| host.serves(app))
                    .map(|app| app.as_str().into())
                    .collect()
            });
            let task = nats::serve_worker(node.clone(), id, host.clone())
                .await
                .map_err(|e| start(e.into()))?;
            tasks.push(task);
            Some(host)
        }
        None => None,
    };
    let routes = match &gateway {
        Some(gateway) => {
            let routes = NatsWorkers::start(node.clone());
            let task = nats::serve_gateway(node.clone(), gateway.id(), gateway.clone())
                .await
                .map_err(|e| start(e.into()))?;
            tasks.push(task);
            // Listeners accept at once and refuse clients until a live worker serves
            // their app.
            let addrs: Vec<_> = listeners.iter().map(|l| l.local_addr()).collect();
            gateway.serve(listeners, routes.clone() as Arc<dyn Workers>);
            for (addr, l) in addrs.iter().zip(&config.listeners) {
                tracing::info!("listening on {addr} ({}, app {})", l.protocol.name(), l.app);
            }
            Some(routes)
        }
        None => None,
    };
    let member = Arc::new(Member {
        id: gateway_id
            .or_else(|| worker_id.and_then(GatewayId::new))
            .unwrap_or_else(GatewayId::random),
        gateway: gateway.clone(),
        workers: workers.clone(),
        routes,
        node: node.clone(),
        connection,
        role: role.name(),
        prefix: cluster.prefix.clone(),
        config_path,
        apps: apps.clone(),
        admin_addr: admin.as_ref().and_then(|l| l.local_addr().ok()),
        started: Instant::now(),
        stop: Notify::new(),
    });
    let admin_task = admin.map(|listener| {
        if let Some(addr) = member.admin_addr {
            tracing::info!("admin endpoints on http://{addr}/metrics and /health");
        }
        tokio::spawn(metrics::serve(listener, member.clone()))
    });
    if let Some(host) = &workers {
        let required: Vec<&str> = apps.iter().map(String::as_str).collect();
        host.load(&required).await.map_err(|e| start(e.into()))?;
        node.announce().await;
    }
    let control_task = tokio::spawn(socket::serve(control, member.clone()));
    tracing::info!(
        role = role.name(),
        gateway = ?gateway_id.map(|g| g.to_string()),
        worker = ?worker_id.map(|w| format!("{w:08x}")),
        prefix = %cluster.prefix,
        pid = std::process::id(),
        "switchboard ready"
    );

    tokio::select! {
        () = signals.recv() => {}
        () = member.stop.notified() => {}
    }
    if let Some(gateway) = &gateway {
        tracing::info!("stopping: closing clients");
        gateway
            .shutdown(Duration::from_millis(config.run.stop_timeout_ms))
            .await;
    }
    // Peers stop routing to this process now, not after three missed heartbeats.
    for task in &tasks {
        task.abort();
    }
    node.goodbye().await;
    if let Some(workers) = &workers {
        tracing::info!("stopping: retiring plugin instances");
        workers.shutdown().await;
    }
    control_task.abort();
    if let Some(task) = admin_task {
        task.abort();
    }
    drop(pid_file);
    tracing::info!("stopped");
    Ok(())
}
