//! The gateway: it holds client connections and keeps what is known about each client.
//!
//! Listeners accept WebSocket, text-line and length-prefixed-frame clients; one task per
//! connection owns its socket (`connection`). What the gateway knows (uids, groups,
//! sessions) lives in plain [`registry::Registry`] values behind short-held mutexes, one per
//! app: each app is its own world, shared by the listeners that name it, and a command or
//! query of one app never sees the clients of another. Workers reach the gateway through
//! [`bus::Gateways`], which [`Gateway`] implements directly: in one process the trait call
//! is the transport.

mod admission;
pub mod codec;
mod connection;
pub mod handshake;
pub mod heartbeat;
mod listener;
pub mod registry;
mod reload;
mod send_queue;
mod static_files;
pub mod tls;
mod tls_transport;
mod transport;
mod utf8_scan;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU8, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock, RwLockReadGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use crate::bus::{
    self, AppName, BusError, ClientId, Command, GatewayId, Protocol, Query, Reply, Workers,
};
use crate::config::ListenerConfig;
pub use listener::Listener;
use listener::ListenerState;
use registry::Registry;
use transport::Outgoing;

/// Why the gateway could not start.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    /// A listener's address could not be bound.
    #[error("cannot listen on {addr}: {}", describe(source))]
    Bind {
        /// The configured address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// A listener's certificate or key cannot be used.
    #[error("listener {addr}: {source}")]
    Tls {
        /// The configured address.
        addr: SocketAddr,
        /// Why.
        source: tls::TlsError,
    },
}

/// The usual bind failures in words, the rest as the system puts them.
fn describe(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::AddrInUse => "address in use".to_owned(),
        std::io::ErrorKind::AddrNotAvailable => "address not available on this host".to_owned(),
        std::io::ErrorKind::PermissionDenied => "permission denied".to_owned(),
        _ => e.to_string(),
    }
}

/// Figures of one listener.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListenerStats {
    /// The bound address.
    pub addr: SocketAddr,
    /// Its protocol.
    pub protocol: Protocol,
    /// The app serving it.
    pub app: String,
    /// Clients connected (handshake finished).
    pub clients: u64,
    /// Open sockets, handshakes in progress included.
    pub connections: u64,
    /// Message bytes received.
    pub bytes_in: u64,
    /// Message bytes sent.
    pub bytes_out: u64,
    /// Messages received.
    pub messages_in: u64,
    /// Messages sent.
    pub messages_out: u64,
    /// Connections refused because the listener was full.
    pub refused: u64,
    /// Clients closed because they could not keep up with their send queue.
    pub send_queue_drops: u64,
    /// Connections refused because their address had `max_connections_per_ip` open.
    pub refused_per_ip: u64,
    /// Connections closed because their handshake took longer than `handshake_timeout_ms`.
    pub handshake_timeouts: u64,
    /// Messages over a client's `max_messages_per_second` (dropped, or the client closed).
    pub throttled: u64,
}

/// Figures of the whole gateway.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GatewayStats {
    /// The gateway's id.
    pub gateway: GatewayId,
    /// Per listener, in the order served.
    pub listeners: Vec<ListenerStats>,
    /// Clients connected.
    pub clients: u64,
    /// Distinct bound uids.
    pub uids: u64,
    /// Groups with members.
    pub groups: u64,
}

/// The gateway of this process: listeners, connections and the client registry.
pub struct Gateway {
    id: GatewayId,
    next_seq: AtomicU64,
    /// The registry of each app that a listener serves.
    worlds: RwLock<BTreeMap<AppName, Arc<World>>>,
    listeners: Mutex<Vec<Arc<ListenerState>>>,
    shutdown: CancellationToken,
    /// Connection tasks alive, and the signal that the count reached zero.
    live: AtomicUsize,
    idle: Notify,
}

impl std::fmt::Debug for Gateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gateway")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl Gateway {
    /// A gateway with this id, not yet listening.
    pub fn new(id: GatewayId) -> Arc<Self> {
        Arc::new(Self {
            id,
            next_seq: AtomicU64::new(1),
            worlds: RwLock::default(),
            listeners: Mutex::new(Vec::new()),
            shutdown: CancellationToken::new(),
            live: AtomicUsize::new(0),
            idle: Notify::new(),
        })
    }

    /// The gateway's id.
    pub fn id(&self) -> GatewayId {
        self.id
    }

    /// Binds every listener, or none: an address that cannot be bound is the error.
    pub async fn bind(
        self: &Arc<Self>,
        listeners: &[ListenerConfig],
    ) -> Result<Vec<Listener>, GatewayError> {
        let mut bound = Vec::with_capacity(listeners.len());
        for config in listeners {
            let bind_error = |source| GatewayError::Bind {
                addr: config.addr,
                source,
            };
            let tcp = TcpListener::bind(config.addr).await.map_err(bind_error)?;
            let local_addr = tcp.local_addr().map_err(bind_error)?;
            let tls = match config.tls().paths() {
                Some((cert, key)) => {
                    Some(
                        tls::Tls::load(cert, key, &[]).map_err(|source| GatewayError::Tls {
                            addr: config.addr,
                            source,
                        })?,
                    )
                }
                None => None,
            };
            bound.push(Listener::new(tcp, config.clone(), local_addr, tls));
        }
        Ok(bound)
    }

    /// Starts accepting on bound listeners; their clients' events go to `workers`.
    pub fn serve(self: &Arc<Self>, listeners: Vec<Listener>, workers: Arc<dyn Workers>) {
        let mut states = lock(&self.listeners);
        for listener in listeners {
            let Listener {
                tcp,
                config,
                local_addr,
                tls,
            } = listener;
            let world = self.world_or_new(&config.app);
            let state = Arc::new(ListenerState::new(
                states.len(),
                config,
                local_addr,
                world,
                workers.clone(),
                tls,
            ));
            states.push(state.clone());
            debug!(listener = %local_addr, protocol = state.protocol.name(), app = %state.app, "accepting");
            tokio::spawn(listener::ticker(self.clone(), state.clone()));
            tokio::spawn(listener::accept_loop(self.clone(), state, tcp));
        }
    }

    /// Stops accepting, closes every client (WebSocket 1001, TCP after a flush) and waits up
    /// to `grace` for their connections to end, each reporting its close as usual.
    ///
    /// Each connection is told through its own send queue, and dropped if it has not ended
    /// `LINGER` later (a client that does not read): the connections never poll the shutdown
    /// themselves, a shared lock on every wake of every connection.
    pub async fn shutdown(&self, grace: Duration) {
        // Cancelled first: a client registered after the walk below sees it (`is_shutting_down`).
        self.shutdown.cancel();
        self.each_client(|handle| handle.tx.going_away());
        let all_closed = async {
            let overdue = tokio::time::sleep(transport::LINGER);
            tokio::pin!(overdue);
            let mut dropped = false;
            loop {
                let idle = self.idle.notified();
                tokio::pin!(idle);
                idle.as_mut().enable();
                if self.live.load(Ordering::Acquire) == 0 {
                    return;
                }
                tokio::select! {
                    () = &mut idle => {}
                    () = &mut overdue, if !dropped => {
                        dropped = true;
                        self.each_client(|handle| {
                            handle.kill.kill(KillReason::Overdue);
                        });
                    }
                }
            }
        };
        if tokio::time::timeout(grace, all_closed).await.is_err() {
            warn!(
                open = self.live.load(Ordering::Acquire),
                "connections still open after the shutdown grace period"
            );
        }
    }

    /// Whether [`Gateway::shutdown`] has begun.
    fn is_shutting_down(&self) -> bool {
        self.shutdown.is_cancelled()
    }

    /// Calls `f` with every connected client's handle, in every app.
    fn each_client(&self, mut f: impl FnMut(&ClientHandle)) {
        for world in self.worlds().values() {
            lock(world).for_each_target(&bus::Target::All, &[], |_, entry| f(&entry.handle));
        }
    }

    /// Applies a reloaded configuration's listener settings to the running listeners,
    /// without dropping any client, and says what changed: one line per setting.
    ///
    /// Listeners are matched by position, configured `addr`, `protocol` and `app`. Live:
    /// `ping_interval_ms` (0 turns the heartbeat off, and back on), `ping_not_responding_limit`,
    /// `ping_data` and `max_connections` (connected clients above a lowered limit stay).
    /// New connections only: `max_message_bytes` and `send_queue`. A listener added, removed,
    /// or with another `addr`, `protocol` or `app` is left as it is: those need a restart,
    /// and their lines say so.
    pub fn reconfigure(&self, listeners: &[ListenerConfig]) -> Vec<String> {
        let states = lock(&self.listeners);
        let running: Vec<ListenerConfig> =
            states.iter().map(|l| (**l.config.load()).clone()).collect();
        let plan = reload::plan(&running, listeners);
        for &i in &plan.apply {
            states[i].set_config(listeners[i].clone());
        }
        let mut lines = plan.lines;
        lines.extend(reload::renew_certificates(&states, listeners));
        drop(states);
        for line in &lines {
            debug!("reload: {line}");
        }
        lines
    }

    /// The addresses the listeners are bound to, in the order served.
    pub fn local_addrs(&self) -> Vec<SocketAddr> {
        lock(&self.listeners).iter().map(|l| l.local_addr).collect()
    }

    /// The gateway's figures now; uids and groups are counted per app (the same name in
    /// two apps is two uids).
    pub fn stats(&self) -> GatewayStats {
        let listeners = lock(&self.listeners).iter().map(|l| l.stats()).collect();
        let (mut clients, mut uids, mut groups) = (0, 0, 0);
        for world in self.worlds().values() {
            let registry = lock(world);
            clients += registry.len() as u64;
            uids += registry.uid_count() as u64;
            groups += registry.group_count() as u64;
        }
        GatewayStats {
            gateway: self.id,
            listeners,
            clients,
            uids,
            groups,
        }
    }

    fn worlds(&self) -> RwLockReadGuard<'_, BTreeMap<AppName, Arc<World>>> {
        self.worlds.read().unwrap_or_else(PoisonError::into_inner)
    }

    /// The registry of `app`, if a listener serves it here.
    fn world(&self, app: &str) -> Option<Arc<World>> {
        self.worlds().get(app).cloned()
    }

    /// The registry of `app`, made empty if it has none yet.
    fn world_or_new(&self, app: &str) -> Arc<World> {
        let mut worlds = self.worlds.write().unwrap_or_else(PoisonError::into_inner);
        worlds.entry(app.into()).or_default().clone()
    }

    /// The next client id, for a client connected with `protocol`; `None` once 2^47
    /// connections have been made.
    fn next_client_id(&self, protocol: Protocol) -> Option<ClientId> {
        let n = self.next_seq.fetch_add(1, Ordering::Relaxed);
        ClientId::of_connection(self.id, n, protocol == Protocol::Text)
    }

    /// Applies a command of `app`; never waits, so commands apply in the order they are
    /// issued. An app no listener serves here has no clients here: nothing to do.
    fn apply(&self, app: &str, command: Command) -> Result<(), BusError> {
        let Some(world) = self.world(app) else {
            return Ok(());
        };
        let mut registry = lock(&world);
        match registry.apply_state(command)? {
            Some(Command::Send {
                to,
                message,
                without,
            }) => {
                // Built once: every client of the send shares the payload, but a single
                // client takes it itself (the first share of a payload costs an allocation).
                let single = matches!(to, bus::Target::Client(_));
                let mut out = Some(Outgoing::from(message));
                registry.for_each_target(&to, &without, |id, entry| {
                    let next = if single { out.take() } else { out.clone() };
                    if let Some(next) = next {
                        entry.handle.push(id, next);
                    }
                });
            }
            Some(Command::Close { client, force }) => {
                if let Some(entry) = registry.get(client) {
                    if force {
                        entry.handle.kill.kill(KillReason::Requested);
                    } else {
                        entry.handle.push(client, Outgoing::Close);
                    }
                }
            }
            _ => {}
        }
        Ok(())
    }
}

#[async_trait]
impl bus::Gateways for Gateway {
    async fn command(&self, app: &str, command: Command) -> Result<(), BusError> {
        self.apply(app, command)
    }

    async fn query(&self, app: &str, query: Query) -> Result<Reply, BusError> {
        Ok(match self.world(app) {
            Some(world) => lock(&world).answer(&query, self.id),
            None => Reply::nobody(&query),
        })
    }
}

/// The clients of one app on this gateway, with their uids, groups and sessions.
type World = Mutex<Registry<ClientHandle>>;

/// How the gateway reaches a connection task: its send queue and its kill switch.
#[derive(Debug)]
struct ClientHandle {
    tx: send_queue::Sender<Outgoing>,
    kill: Arc<Kill>,
}

impl ClientHandle {
    /// Queues without waiting; a client whose queue is full cannot keep up and is dropped.
    fn push(&self, id: ClientId, out: Outgoing) {
        if let Err(send_queue::Refused::Full(_)) = self.tx.try_send(out)
            && self.kill.kill(KillReason::QueueFull)
        {
            debug!(client = %id, "send queue full: closing");
        }
    }
}

/// Why a connection was killed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
enum KillReason {
    /// `close-client` with `force`.
    Requested = 1,
    /// Its send queue was full.
    QueueFull = 2,
    /// Still open `LINGER` after the gateway began to shut down.
    Overdue = 3,
}

/// A connection's kill switch: the first reason wins and wakes the task.
#[derive(Debug, Default)]
struct Kill {
    reason: AtomicU8,
    notify: Notify,
}

impl Kill {
    /// Kills the connection; `false` if it was already killed.
    fn kill(&self, reason: KillReason) -> bool {
        let first = self
            .reason
            .compare_exchange(0, reason as u8, Ordering::AcqRel, Ordering::Acquire)
            .is_ok();
        if first {
            // Stores a permit if the task is not waiting right now.
            self.notify.notify_one();
        }
        first
    }

    /// Why it was killed, if it was.
    fn reason(&self) -> Option<KillReason> {
        match self.reason.load(Ordering::Acquire) {
            1 => Some(KillReason::Requested),
            2 => Some(KillReason::QueueFull),
            3 => Some(KillReason::Overdue),
            _ => None,
        }
    }

    /// Resolves once the connection is killed.
    async fn notified(&self) {
        self.notify.notified().await;
    }
}

/// Locks a mutex, ignoring poison: a panic elsewhere while it was held must not take every
/// later connection and command down with it.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Now, in ms since the Unix epoch.
fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}
