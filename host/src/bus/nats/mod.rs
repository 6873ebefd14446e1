//! The NATS transport of the bus: gateways and workers in separate processes.
//!
//! [`NatsWorkers`] is the gateway side's [`Workers`] and [`NatsGateways`] the worker side's
//! [`Gateways`]; [`serve_gateway`] and [`serve_worker`] feed what arrives into the local
//! `Gateway` and `WorkerHost`, so neither changes. The rules are plain data in the
//! submodules (liveness in [`peers`], worker choice in [`route`], query merging in
//! [`merge`], subjects and envelopes in [`wire`]); the tasks here only move bytes.
//!
//! Ordering: a gateway consumes everything addressed to it through one wildcard
//! subscription, and NATS keeps one publisher's order per subscription, so a worker's
//! `join-group` is applied before its following `send-to-group`. A client's events all go to
//! the one worker it is bound to, on that worker's one subject.

pub mod backlog;
pub mod merge;
pub mod peers;
pub mod releases;
pub mod route;
pub mod wire;

use std::collections::{BTreeSet, HashMap};
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use async_nats::{Client, ConnectOptions, RequestErrorKind, ServerAddr};
use async_trait::async_trait;
use bytes::Bytes;
use futures_util::StreamExt;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tracing::{debug, info, warn};

use super::codec::{decode, encode};
use super::{
    AppName, BusError, Command, Event, EventKind, GatewayId, Gateways, Handshake, Query, Rejection,
    Reply, SessionTooLarge, Workers,
};
use crate::config::ClusterConfig;
use backlog::Backlog;
use merge::Plan;
use peers::{Heard, Peers};
use route::Bindings;
use wire::{Answer, Heartbeat, Side, Subjects, ToGateway, ToWorker, Verdict};

/// How long a WebSocket handshake waits for the worker's verdict.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Why the cluster transport could not start.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// A file named by `[cluster]` could not be used.
    #[error("{key}: cannot use {path}: {reason}")]
    File {
        /// The config key, such as `cluster.credentials`.
        key: &'static str,
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
    /// The NATS client refused the options or could not subscribe.
    #[error("NATS: {0}")]
    Nats(String),
}

/// What happened to the NATS connection, counted.
#[derive(Debug, Default)]
pub struct ConnectionEvents {
    /// Times a subscription's buffer was full, so the client dropped messages.
    pub slow_consumer: AtomicU64,
    /// Times the connection was lost.
    pub disconnects: AtomicU64,
}

/// Connects to NATS with the `[cluster]` settings. The connection is made in the background
/// and retried (jittered) until the server answers, so a cluster can start in any order.
/// `events` counts what happens to it later.
pub async fn connect(
    config: &ClusterConfig,
    name: &str,
    events: Arc<ConnectionEvents>,
) -> Result<Client, ClusterError> {
    let file_error =
        |key: &'static str, path: &std::path::Path, e: &dyn std::fmt::Display| ClusterError::File {
            key,
            path: path.display().to_string(),
            reason: e.to_string(),
        };
    let mut options = ConnectOptions::new()
        .name(name)
        .retry_on_initial_connect()
        // The default 60 s would notice a hung server only after minutes.
        .ping_interval(Duration::from_secs(5))
        .subscription_capacity(64 * 1024)
        .event_callback(move |event| {
            let events = events.clone();
            async move {
                match event {
                    async_nats::Event::Connected => info!("NATS connected"),
                    async_nats::Event::Disconnected => {
                        events.disconnects.fetch_add(1, Ordering::Relaxed);
                        warn!("NATS disconnected; reconnecting");
                    }
                    async_nats::Event::SlowConsumer(sid) => {
                        events.slow_consumer.fetch_add(1, Ordering::Relaxed);
                        warn!(
                            subscription = sid,
                            "NATS slow consumer: messages were dropped"
                        );
                    }
                    other => warn!("NATS: {other}"),
                }
            }
        });
    if let Some(path) = &config.credentials {
        options = options
            .credentials_file(path)
            .await
            .map_err(|e| file_error("cluster.credentials", path, &e))?;
    }
    if let Some(path) = &config.nkey_seed {
        let seed =
            std::fs::read_to_string(path).map_err(|e| file_error("cluster.nkey_seed", path, &e))?;
        options = options.nkey(seed.trim().to_owned());
    }
    if let Some(path) = &config.tls_ca {
        options = options
            .add_root_certificates(path.clone())
            .require_tls(true);
    }
    if let (Some(cert), Some(key)) = (&config.tls_cert, &config.tls_key) {
        options = options
            .add_client_certificate(cert.clone(), key.clone())
            .require_tls(true);
    }
    let mut servers = Vec::new();
    for url in config.nats_url.list() {
        servers.push(ServerAddr::from_str(url).map_err(|e| ClusterError::Nats(e.to_string()))?);
    }
    options
        .connect(servers)
        .await
        .map_err(|e| ClusterError::Nats(e.to_string()))
}

/// What a worker tells the cluster in its heartbeats.
#[derive(Clone, Debug, Default)]
pub struct WorkerState {
    /// The apps it serves now.
    pub serving: Vec<AppName>,
    /// Every app it has loaded, with the version it runs (12 hex digits).
    pub versions: Vec<(AppName, String)>,
}

/// This process on the bus: its connection, what it is, and who else is alive.
pub struct Node {
    client: Client,
    subjects: Subjects,
    epoch: u64,
    gateway: Option<GatewayId>,
    worker: Option<u32>,
    /// The live gateways, as heard by this process.
    gateways: Mutex<Peers>,
    /// The live workers, as heard by this process.
    workers: Mutex<Peers>,
    /// What this process's worker tells the cluster now, for its heartbeats.
    serving: OnceLock<Box<dyn Fn() -> WorkerState + Send + Sync>>,
    /// How long a query waits for every gateway.
    query_timeout: Duration,
    /// The bounds of a gateway's backlog: events, and age.
    backlog: (usize, Duration),
    /// Events sent to workers that expired before a heartbeat confirmed them.
    unconfirmed: AtomicU64,
    /// Events this worker dropped because their app's queue was full.
    worker_dropped: AtomicU64,
}

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Node")
            .field("gateway", &self.gateway)
            .field("worker", &self.worker.map(|w| format!("{w:08x}")))
            .finish_non_exhaustive()
    }
}

impl Node {
    /// A process holding the gateway `gateway` and/or the worker `worker`, in the cluster
    /// `config` describes.
    pub fn new(
        client: Client,
        config: &ClusterConfig,
        gateway: Option<GatewayId>,
        worker: Option<u32>,
    ) -> Arc<Self> {
        let epoch = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        Arc::new(Self {
            client,
            subjects: Subjects::new(&config.prefix),
            epoch,
            gateway,
            worker,
            gateways: Mutex::default(),
            workers: Mutex::default(),
            serving: OnceLock::new(),
            query_timeout: config.query_timeout(),
            backlog: (config.backlog_events, config.backlog_age()),
            unconfirmed: AtomicU64::new(0),
            worker_dropped: AtomicU64::new(0),
        })
    }

    /// A fresh random worker id.
    pub fn random_worker_id() -> u32 {
        loop {
            let id: u32 = rand::random();
            if id != 0 {
                return id;
            }
        }
    }

    /// Tells the node what its worker serves, asked at every heartbeat.
    pub fn set_serving(&self, serving: impl Fn() -> WorkerState + Send + Sync + 'static) {
        let _ = self.serving.set(Box::new(serving));
    }

    /// Whether the NATS connection is up now.
    fn connected(&self) -> bool {
        self.client.connection_state() == async_nats::connection::State::Connected
    }

    /// The NATS connection, for the release store.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The live workers with the versions of the apps each has loaded.
    pub fn worker_versions(&self) -> Vec<(u32, Vec<(AppName, String)>)> {
        lock(&self.workers).versions()
    }

    /// The NATS connection's state: pending, connected or disconnected.
    pub fn nats_state(&self) -> String {
        self.client.connection_state().to_string()
    }

    /// This process's worker id, if it runs plugins.
    pub fn worker_id(&self) -> Option<u32> {
        self.worker
    }

    /// The live gateways with their boot epochs.
    pub fn live_gateways(&self) -> Vec<(u32, u64)> {
        lock(&self.gateways).epochs()
    }

    /// The live workers with their boot epochs.
    pub fn live_workers(&self) -> Vec<(u32, u64)> {
        lock(&self.workers).epochs()
    }

    /// Publishes this process's heartbeats (or goodbyes).
    async fn beat(&self, goodbye: bool) {
        let mut beats = Vec::new();
        if let Some(g) = self.gateway {
            beats.push((Side::Gateway, g.get(), WorkerState::default()));
        }
        if let Some(w) = self.worker {
            let state = self.serving.get().map(|f| f()).unwrap_or_default();
            beats.push((Side::Worker, w, state));
        }
        for (side, node, state) in beats {
            let beat = Heartbeat {
                side,
                node,
                epoch: self.epoch,
                apps: state.serving,
                versions: state.versions,
                goodbye,
            };
            let subject = self.subjects.heartbeat(side, node);
            if let Err(e) = self.client.publish(subject, encode(&beat).into()).await {
                warn!("cannot publish a heartbeat: {e}");
            }
        }
    }

    /// Listens to the cluster's heartbeats and beats every second until the task is
    /// aborted. Subscribed before it returns, so no beat sent afterwards is missed.
    pub async fn start_heartbeats(self: &Arc<Self>) -> Result<JoinHandle<()>, ClusterError> {
        let mut beats = self
            .client
            .subscribe(self.subjects.heartbeats())
            .await
            .map_err(|e| ClusterError::Nats(e.to_string()))?;
        let node = self.clone();
        Ok(tokio::spawn(async move {
            let mut tick = tokio::time::interval(peers::PERIOD);
            loop {
                tokio::select! {
                    _ = tick.tick() => {
                        node.beat(false).await;
                        node.expire(Instant::now());
                    }
                    message = beats.next() => {
                        let Some(message) = message else { break };
                        match decode::<Heartbeat>(&message.payload) {
                            Ok(beat) => node.heard(&beat).await,
                            Err(e) => warn!(subject = %message.subject, "heartbeat refused: {e}"),
                        }
                    }
                }
            }
        }))
    }

    async fn heard(&self, beat: &Heartbeat) {
        let table = match beat.side {
            Side::Gateway => &self.gateways,
            Side::Worker => &self.workers,
        };
        let heard = lock(table).heard(beat, Instant::now());
        let side = format!("{:?}", beat.side).to_lowercase();
        let node = format!("{:08x}", beat.node);
        if matches!(heard, Heard::New | Heard::Restarted | Heard::AppsChanged)
            && !beat.apps.is_empty()
        {
            let apps: Vec<&str> = beat.apps.iter().map(|a| &**a).collect();
            info!("{side} {node} serves {}", apps.join(", "));
        }
        match heard {
            Heard::New | Heard::Restarted => {
                info!(node, epoch = beat.epoch, "{side} joined");
                // Beat back at once so the newcomer learns this process within a round trip,
                // not a second.
                self.beat(false).await;
            }
            Heard::Gone => info!(node, "{side} said goodbye"),
            Heard::AppsChanged | Heard::Alive | Heard::Stale => {}
        }
    }

    fn expire(&self, now: Instant) {
        for (side, table) in [("gateway", &self.gateways), ("worker", &self.workers)] {
            for (node, unconfirmed) in lock(table).expire(now) {
                let node = format!("{node:08x}");
                warn!(node, "{side} missed {} heartbeats: gone", peers::MISSED);
                if unconfirmed > 0 {
                    self.unconfirmed.fetch_add(unconfirmed, Ordering::Relaxed);
                    warn!(
                        node,
                        "{unconfirmed} events were sent to the {side} after its last heartbeat: they may be lost"
                    );
                }
            }
        }
    }

    /// Events this worker dropped because their app's queue was full.
    pub fn worker_dropped(&self) -> u64 {
        self.worker_dropped.load(Ordering::Relaxed)
    }

    /// Events sent to workers that then expired without a heartbeat after them: at most
    /// this many were lost with those workers.
    pub fn unconfirmed(&self) -> u64 {
        self.unconfirmed.load(Ordering::Relaxed)
    }

    /// Beats now, out of turn: after a worker loaded its apps, gateways need not wait for
    /// the next tick to send it clients.
    pub async fn announce(&self) {
        self.beat(false).await;
    }

    /// Says goodbye, so peers forget this process now rather than after expiry.
    pub async fn goodbye(&self) {
        self.beat(true).await;
        if let Err(e) = self.client.flush().await {
            debug!("cannot flush the goodbye: {e}");
        }
    }
}

/// The gateway side's view of the workers, over NATS.
pub struct NatsWorkers {
    node: Arc<Node>,
    bindings: Mutex<Bindings>,
    /// Events waiting for a live worker that serves their app.
    backlog: Mutex<Backlog<Event>>,
    /// Held while events are routed and published, so a backlog being sent and new events
    /// cannot overtake each other.
    sending: tokio::sync::Mutex<()>,
    /// Events that could not be published.
    unpublished: AtomicU64,
}

impl NatsWorkers {
    /// The workers as heard by `node`; a task sends waiting events once a worker is live.
    pub fn start(node: Arc<Node>) -> Arc<Self> {
        let backlog = Backlog::new(node.backlog.0, node.backlog.1);
        let workers = Arc::new(Self {
            node,
            bindings: Mutex::default(),
            backlog: Mutex::new(backlog),
            sending: tokio::sync::Mutex::new(()),
            unpublished: AtomicU64::new(0),
        });
        let weak = Arc::downgrade(&workers);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(100));
            loop {
                tick.tick().await;
                let Some(workers) = weak.upgrade() else { break };
                workers.flush().await;
            }
        });
        workers
    }

    /// Events dropped so far: they waited too long for a live worker, the backlog was full,
    /// or they could not be published.
    pub fn dropped(&self) -> u64 {
        lock(&self.backlog).dropped() + self.unpublished.load(Ordering::Relaxed)
    }

    /// How many of this gateway's clients are bound to each worker.
    pub fn clients_per_worker(&self) -> std::collections::HashMap<u32, usize> {
        lock(&self.bindings).per_worker()
    }

    /// Events waiting for a live worker now.
    pub fn waiting(&self) -> usize {
        lock(&self.backlog).len()
    }

    /// The worker for a client of `app`, bound if it was not.
    fn route(&self, app: &str, client: super::ClientId) -> Option<u32> {
        let candidates = lock(&self.node.workers).serving(app);
        lock(&self.bindings).route(client, &candidates)
    }

    /// Publishes an event to its client's worker, or queues it if no worker serves its app.
    /// Called with `sending` held.
    async fn send_or_queue(&self, event: Event) {
        let client = event.ctx.client;
        let worker = self.route(&event.app, client);
        if matches!(event.kind, EventKind::Close(_)) {
            // Even when the close must wait: the binding must not outlive the client.
            lock(&self.bindings).unbind(client);
        }
        // While NATS is away, events wait in the backlog (bounded, counted) rather than in
        // the client library's buffer, whose publish would block once full.
        let worker = worker.filter(|_| self.node.connected());
        let Some(worker) = worker else {
            let app = event.app.clone();
            if !lock(&self.backlog).push(&app, event, Instant::now()) {
                warn!(
                    app = &*app,
                    "no live worker and the event backlog is full: event dropped"
                );
            }
            return;
        };
        let subject = self.node.subjects.worker_events(worker);
        let payload = encode(&ToWorker::Event(event));
        match self.node.client.publish(subject, payload.into()).await {
            Ok(()) => lock(&self.node.workers).sent(worker),
            Err(e) => {
                self.unpublished.fetch_add(1, Ordering::Relaxed);
                warn!("cannot publish an event: {e}");
            }
        }
    }

    /// Drops the events that waited too long, and sends the others of every app a live
    /// worker serves again, oldest first.
    async fn flush(&self) {
        if lock(&self.backlog).is_empty() {
            return;
        }
        let _sending = self.sending.lock().await;
        let (expired, apps) = {
            let mut backlog = lock(&self.backlog);
            (backlog.expire(Instant::now()), backlog.apps())
        };
        if expired > 0 {
            warn!(
                "{expired} events waited over {} ms for a live worker: dropped",
                self.node.backlog.1.as_millis()
            );
        }
        for app in apps {
            if !self.node.connected() || lock(&self.node.workers).serving(&app).is_empty() {
                continue;
            }
            let events = lock(&self.backlog).take(&app);
            info!(
                app = &*app,
                "a worker is live again: sending {} waiting events",
                events.len()
            );
            for event in events {
                self.send_or_queue(event).await;
            }
        }
    }
}

#[async_trait]
impl Workers for NatsWorkers {
    async fn event(&self, event: Event) {
        let _sending = self.sending.lock().await;
        if lock(&self.backlog).is_waiting(&event.app) {
            // Behind the app's waiting events, so a client's events stay in order.
            let app = event.app.clone();
            if !lock(&self.backlog).push(&app, event, Instant::now()) {
                warn!(app = &*app, "the event backlog is full: event dropped");
            }
            return;
        }
        self.send_or_queue(event).await;
    }

    fn serves(&self, app: &str) -> bool {
        !lock(&self.node.workers).serving(app).is_empty()
    }

    async fn handshake(&self, handshake: Handshake) -> Result<(), Rejection> {
        let unavailable = |reason: &str| Rejection {
            status: 503,
            reason: reason.into(),
        };
        let client = handshake.ctx.client;
        let worker = self
            .route(&handshake.app, client)
            .ok_or_else(|| unavailable("the app is not available"))?;
        let request = async_nats::Request::new()
            .payload(encode(&ToWorker::Handshake(handshake)).into())
            .timeout(Some(HANDSHAKE_TIMEOUT));
        let subject = self.node.subjects.worker_events(worker);
        let verdict = match self.node.client.send_request(subject, request).await {
            Ok(reply) => decode::<Result<(), Rejection>>(&reply.payload).unwrap_or_else(|e| {
                warn!("handshake verdict refused: {e}");
                Err(unavailable("the app is not available"))
            }),
            Err(e) => {
                warn!("no handshake verdict from worker {worker:08x}: {e}");
                Err(unavailable("the app did not answer"))
            }
        };
        if verdict.is_err() {
            // No close event follows a refused handshake.
            lock(&self.bindings).unbind(client);
        }
        verdict
    }
}

/// Applies what workers send to gateway `id` to the local `gateway`, in arrival order, and
/// answers its queries. Subscribed before it returns.
pub async fn serve_gateway(
    node: Arc<Node>,
    id: GatewayId,
    gateway: Arc<dyn Gateways>,
) -> Result<JoinHandle<()>, ClusterError> {
    let mut inbox = node
        .client
        .subscribe(node.subjects.gateway_all(id))
        .await
        .map_err(|e| ClusterError::Nats(e.to_string()))?;
    Ok(tokio::spawn(async move {
        while let Some(message) = inbox.next().await {
            let input = match decode::<ToGateway>(&message.payload) {
                Ok(input) => input,
                Err(e) => {
                    warn!(subject = %message.subject, "bus message refused: {e}");
                    continue;
                }
            };
            match input {
                ToGateway::Command { app, command } => {
                    let outcome = gateway.command(&app, command).await;
                    if let Err(e) = &outcome {
                        debug!(app = &*app, "command not applied: {e}");
                    }
                    if let Some(reply_to) = message.reply {
                        let verdict: Verdict = match outcome {
                            Err(BusError::SessionTooLarge(SessionTooLarge(size))) => {
                                Some(size as u64)
                            }
                            _ => None,
                        };
                        if let Err(e) = node.client.publish(reply_to, encode(&verdict).into()).await
                        {
                            warn!("cannot answer a command: {e}");
                        }
                    }
                }
                ToGateway::Query { app, query } => {
                    let Some(reply_to) = message.reply else {
                        continue;
                    };
                    match gateway.query(&app, query).await {
                        Ok(reply) => {
                            let answer = encode(&Answer { gateway: id, reply });
                            if let Err(e) = node.client.publish(reply_to, answer.into()).await {
                                warn!("cannot answer a query: {e}");
                            }
                        }
                        Err(e) => debug!(app = &*app, "query not answered: {e}"),
                    }
                }
            }
        }
    }))
}

/// Feeds the events and handshakes sent to worker `id` into the local `workers`, in arrival
/// order. Subscribed before it returns.
pub async fn serve_worker(
    node: Arc<Node>,
    id: u32,
    workers: Arc<dyn Workers>,
) -> Result<JoinHandle<()>, ClusterError> {
    let mut inbox = node
        .client
        .subscribe(node.subjects.worker_events(id))
        .await
        .map_err(|e| ClusterError::Nats(e.to_string()))?;
    Ok(tokio::spawn(async move {
        let mut apps: HashMap<AppName, mpsc::Sender<Event>> = HashMap::new();
        while let Some(message) = inbox.next().await {
            match decode::<ToWorker>(&message.payload) {
                Ok(ToWorker::Event(event)) => {
                    // One queue per app, so an app whose instances are behind holds back its
                    // own events only, never another app's.
                    let queue = apps
                        .entry(event.app.clone())
                        .or_insert_with(|| app_queue(workers.clone()));
                    if let Err(mpsc::error::TrySendError::Full(event)) = queue.try_send(event) {
                        let dropped = node.worker_dropped.fetch_add(1, Ordering::Relaxed) + 1;
                        if dropped == 1 || dropped.is_multiple_of(1000) {
                            warn!(
                                app = &*event.app,
                                "the app's queue on this worker is full ({APP_QUEUE} events): \
                                 event dropped ({dropped} so far)"
                            );
                        }
                    }
                }
                Ok(ToWorker::Handshake(handshake)) => {
                    let Some(reply_to) = message.reply else {
                        continue;
                    };
                    // The gateway waits for this verdict before sending the client's connect
                    // event, so answering aside keeps the order and the subject flowing.
                    let (workers, client) = (workers.clone(), node.client.clone());
                    tokio::spawn(async move {
                        let verdict = workers.handshake(handshake).await;
                        if let Err(e) = client.publish(reply_to, encode(&verdict).into()).await {
                            warn!("cannot answer a handshake: {e}");
                        }
                    });
                }
                Err(e) => warn!(subject = %message.subject, "bus message refused: {e}"),
            }
        }
    }))
}

/// Events a worker holds per app while that app's instances are busy.
const APP_QUEUE: usize = 16 * 1024;

/// A queue feeding one app's events into `workers`, in order.
fn app_queue(workers: Arc<dyn Workers>) -> mpsc::Sender<Event> {
    let (tx, mut rx) = mpsc::channel::<Event>(APP_QUEUE);
    tokio::spawn(async move {
        while let Some(event) = rx.recv().await {
            workers.event(event).await;
        }
    });
    tx
}

/// The worker side's view of the gateways, over NATS.
pub struct NatsGateways {
    node: Arc<Node>,
}

impl NatsGateways {
    /// The gateways as heard by `node`.
    pub fn new(node: Arc<Node>) -> Arc<Self> {
        Arc::new(Self { node })
    }

    fn live_gateways(&self) -> Vec<GatewayId> {
        lock(&self.node.gateways)
            .live()
            .into_iter()
            .filter_map(GatewayId::new)
            .collect()
    }

    async fn ask_one(&self, gateway: GatewayId, payload: Bytes) -> Result<Option<Reply>, BusError> {
        let request = async_nats::Request::new()
            .payload(payload)
            .timeout(Some(self.node.query_timeout));
        let subject = self.node.subjects.gateway_query(gateway);
        match self.node.client.send_request(subject, request).await {
            Ok(message) => match decode::<Answer>(&message.payload) {
                Ok(answer) => Ok(Some(answer.reply)),
                Err(e) => {
                    warn!("query answer refused: {e}");
                    Err(BusError::Timeout(format!("gateway {gateway}")))
                }
            },
            // Nobody holds that gateway's subject: it is gone, and so are its clients.
            Err(e) if e.kind() == RequestErrorKind::NoResponders => Ok(None),
            Err(e) => Err(BusError::Timeout(format!("gateway {gateway}: {e}"))),
        }
    }

    async fn verdict(&self, gateway: GatewayId, payload: Bytes) -> Result<(), BusError> {
        let request = async_nats::Request::new()
            .payload(payload)
            .timeout(Some(self.node.query_timeout));
        let subject = self.node.subjects.gateway_command(gateway);
        match self.node.client.send_request(subject, request).await {
            Ok(message) => match decode::<Verdict>(&message.payload) {
                Ok(None) => Ok(()),
                Ok(Some(size)) => Err(BusError::SessionTooLarge(SessionTooLarge(
                    usize::try_from(size).unwrap_or(usize::MAX),
                ))),
                Err(e) => {
                    warn!("command verdict refused: {e}");
                    Err(BusError::Timeout(format!("gateway {gateway}")))
                }
            },
            // The gateway is gone, and its clients with it: nothing to update, as for an
            // unknown client.
            Err(e) if e.kind() == RequestErrorKind::NoResponders => Ok(()),
            Err(e) => Err(BusError::Timeout(format!("gateway {gateway}: {e}"))),
        }
    }

    async fn ask_all(&self, payload: Bytes) -> Result<Vec<Reply>, BusError> {
        let expected: BTreeSet<GatewayId> = self.live_gateways().into_iter().collect();
        if expected.is_empty() {
            return Ok(Vec::new());
        }
        let client = &self.node.client;
        let inbox = client.new_inbox();
        let mut answers = client
            .subscribe(inbox.clone())
            .await
            .map_err(|e| BusError::Timeout(format!("a reply inbox: {e}")))?;
        for &g in &expected {
            let subject = self.node.subjects.gateway_query(g);
            client
                .publish_with_reply(subject, inbox.clone(), payload.clone())
                .await
                .map_err(|e| BusError::Timeout(format!("gateway {g}: {e}")))?;
        }
        let mut replies = Vec::with_capacity(expected.len());
        let mut waiting = expected;
        let gather = async {
            while let Some(message) = answers.next().await {
                match decode::<Answer>(&message.payload) {
                    Ok(answer) if waiting.remove(&answer.gateway) => replies.push(answer.reply),
                    Ok(_) => {}
                    Err(e) => warn!("query answer refused: {e}"),
                }
                if waiting.is_empty() {
                    return;
                }
            }
        };
        let timed_out = tokio::time::timeout(self.node.query_timeout, gather)
            .await
            .is_err();
        if timed_out || !waiting.is_empty() {
            let missing: Vec<String> = waiting.iter().map(ToString::to_string).collect();
            return Err(BusError::Timeout(format!(
                "gateways {}",
                missing.join(", ")
            )));
        }
        Ok(replies)
    }
}

#[async_trait]
impl Gateways for NatsGateways {
    async fn command(&self, app: &str, command: Command) -> Result<(), BusError> {
        if let Command::UpdateSession { client, .. } = &command {
            // The merged session can exceed the limit, which only the gateway can tell: wait
            // for its verdict. Same subject, so still in order with the other commands.
            let gateway = client.gateway();
            let payload = encode(&ToGateway::Command {
                app: app.into(),
                command,
            });
            return self.verdict(gateway, payload.into()).await;
        }
        if let Some(parts) = route::split_by_gateway(&command) {
            for (g, part) in parts {
                let payload = encode(&ToGateway::Command {
                    app: app.into(),
                    command: part,
                });
                let subject = self.node.subjects.gateway_command(g);
                if let Err(e) = self.node.client.publish(subject, payload.into()).await {
                    warn!("cannot publish a command to gateway {g}: {e}");
                }
            }
            return Ok(());
        }
        let targets = match route::command_gateway(&command) {
            Some(g) => vec![g],
            None => self.live_gateways(),
        };
        let payload: Bytes = encode(&ToGateway::Command {
            app: app.into(),
            command,
        })
        .into();
        for g in targets {
            let subject = self.node.subjects.gateway_command(g);
            if let Err(e) = self.node.client.publish(subject, payload.clone()).await {
                warn!("cannot publish a command to gateway {g}: {e}");
            }
        }
        Ok(())
    }

    async fn query(&self, app: &str, query: Query) -> Result<Reply, BusError> {
        let encode_query = |query: Query| -> Bytes {
            encode(&ToGateway::Query {
                app: app.into(),
                query,
            })
            .into()
        };
        let replies = match merge::plan(&query) {
            Plan::One(g) => self
                .ask_one(g, encode_query(query.clone()))
                .await?
                .into_iter()
                .collect(),
            Plan::All(ask) => self.ask_all(encode_query(ask)).await?,
        };
        merge::merge(&query, replies)
    }
}

/// Locks a mutex, ignoring poison: the tables stay usable after a panic elsewhere.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
