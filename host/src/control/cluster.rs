//! This process's membership of a cluster (`[cluster]`): its NATS connection, its
//! heartbeats, and the bus subscriptions of its gateway and worker host.

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::task::JoinHandle;

use super::releases;
use super::status::{ClusterView, MemberView};
use crate::bus::nats::releases::Releases;
use crate::bus::nats::{self, ClusterError, NatsGateways, NatsWorkers, Node, WorkerState};
use crate::bus::{GatewayId, Gateways, Workers};
use crate::config::{ClusterConfig, Role};
use crate::gateway::Gateway;
use crate::worker::WorkerHost;
use crate::worker::capabilities::kv::KvBackend;

/// A joined cluster member.
pub(super) struct Membership {
    node: Arc<Node>,
    connection: Arc<nats::ConnectionEvents>,
    /// The gateway's view of the live workers, on a gateway.
    routes: Option<Arc<NatsWorkers>>,
    role: Role,
    prefix: String,
    /// The cluster's plugin releases, on a worker whose NATS server has JetStream.
    releases: Option<Releases>,
    /// Heartbeats and subscriptions, aborted on leaving.
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

impl Membership {
    /// Connects to NATS and starts the heartbeats of this process's parts.
    pub(super) async fn join(
        cluster: &ClusterConfig,
        gateway: Option<GatewayId>,
        worker: Option<u32>,
    ) -> Result<Self, ClusterError> {
        let role = cluster.role;
        let name = format!("switchboard {} pid {}", role.name(), std::process::id());
        let connection = Arc::new(nats::ConnectionEvents::default());
        let client = nats::connect(cluster, &name, connection.clone()).await?;
        let node = Node::new(client, cluster, gateway, worker);
        let heartbeats = node.start_heartbeats().await?;
        Ok(Self {
            node,
            connection,
            routes: None,
            releases: None,
            role,
            prefix: cluster.prefix.clone(),
            tasks: Mutex::new(vec![heartbeats]),
        })
    }

    /// The plugins' key-value store: one JetStream bucket per app, shared by every worker.
    pub(super) fn kv(&self) -> KvBackend {
        KvBackend::jetstream(self.node.client().clone(), &self.prefix)
    }

    /// The bus end a worker host uses to reach every gateway.
    pub(super) fn gateways(&self) -> Arc<dyn Gateways> {
        NatsGateways::new(self.node.clone())
    }

    /// Subscribes the worker host to its events, advertises the apps it serves, and sends
    /// files dropped into its folder to the release store (if the server has JetStream).
    /// Call before the host loads its plugins.
    pub(super) async fn serve_worker(
        &mut self,
        id: u32,
        host: &Arc<WorkerHost>,
        apps: &[String],
    ) -> Result<(), ClusterError> {
        let weak = Arc::downgrade(host);
        let advertised = apps.to_vec();
        self.node.set_serving(move || {
            let Some(host) = weak.upgrade() else {
                return WorkerState::default();
            };
            WorkerState {
                serving: advertised
                    .iter()
                    .filter(|app| host.serves(app))
                    .map(|app| app.as_str().into())
                    .collect(),
                versions: host.versions(),
            }
        });
        let task = nats::serve_worker(self.node.clone(), id, host.clone()).await?;
        self.tasks(|tasks| tasks.push(task));
        match Releases::open(self.node.client().clone(), &self.prefix).await {
            Ok(store) => {
                host.publish_through(Arc::new(releases::Publisher(store.clone())));
                self.releases = Some(store);
            }
            Err(e) => tracing::warn!(
                "cluster-wide deploys are off, each worker deploys from its own folder: {e}"
            ),
        }
        Ok(())
    }

    /// Once the host has loaded its folder: seeds the release store with the apps it does
    /// not know, then runs the versions it names, fetched into `dir`.
    pub(super) async fn follow_releases(&self, id: u32, host: &Arc<WorkerHost>, dir: PathBuf) {
        if let Some(store) = &self.releases {
            let task = releases::follow(store.clone(), host.clone(), id, dir).await;
            self.tasks(|tasks| tasks.push(task));
        }
    }

    /// Subscribes the gateway to its commands and queries; returns the bus end its
    /// listeners hand events to.
    pub(super) async fn serve_gateway(
        &mut self,
        gateway: &Arc<Gateway>,
    ) -> Result<Arc<dyn Workers>, ClusterError> {
        let routes = NatsWorkers::start(self.node.clone());
        let task = nats::serve_gateway(self.node.clone(), gateway.id(), gateway.clone()).await?;
        self.tasks(|tasks| tasks.push(task));
        self.routes = Some(routes.clone());
        Ok(routes)
    }

    /// Tells the peers this worker's apps are loaded, without waiting for a heartbeat.
    pub(super) async fn announce(&self) {
        self.node.announce().await;
    }

    /// Whether a live worker serves `app`, as this gateway sees it; `None` on a worker-only
    /// process.
    pub(super) fn routes_serve(&self, app: &str) -> Option<bool> {
        self.routes.as_ref().map(|routes| routes.serves(app))
    }

    /// Stops the heartbeats and subscriptions and says goodbye, so peers stop routing to
    /// this process now, not after three missed heartbeats.
    pub(super) async fn leave(&self) {
        self.tasks(|tasks| tasks.iter().for_each(JoinHandle::abort));
        self.node.goodbye().await;
    }

    fn tasks<T>(&self, f: impl FnOnce(&mut Vec<JoinHandle<()>>) -> T) -> T {
        f(&mut self.tasks.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// The cluster as this process sees it.
    pub(super) fn view(&self) -> ClusterView {
        let per_worker = self
            .routes
            .as_ref()
            .map(|r| r.clients_per_worker())
            .unwrap_or_default();
        let versions: std::collections::HashMap<u32, Vec<(crate::bus::AppName, String)>> =
            self.node.worker_versions().into_iter().collect();
        let view = |(id, epoch): (u32, u64), clients: Option<u64>| MemberView {
            id: format!("{id:08x}"),
            epoch,
            clients,
            versions: versions
                .get(&id)
                .map(|v| {
                    v.iter()
                        .map(|(app, hash)| (app.to_string(), hash.clone()))
                        .collect()
                })
                .unwrap_or_default(),
        };
        ClusterView {
            role: self.role.name().to_owned(),
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
            events_dropped: self.routes.as_ref().map_or(0, |r| r.dropped())
                + self.node.worker_dropped(),
            events_unconfirmed: self.node.unconfirmed(),
            nats_disconnects: self.connection.disconnects.load(Ordering::Relaxed),
            nats_slow_consumer: self.connection.slow_consumer.load(Ordering::Relaxed),
        }
    }
}
