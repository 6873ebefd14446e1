//! Listeners: the bound sockets, their accept loops, heartbeat tickers and counters.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use arc_swap::{ArcSwap, ArcSwapOption};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tracing::{debug, warn};

use super::admission::PerIp;
use super::handshake;
use super::registry::Registry;
use super::tls::Tls;
use super::transport::Outgoing;
use super::{ClientHandle, Gateway, ListenerStats, World, connection, lock, now_ms};
use crate::bus::{AppName, Message, Protocol, Target, Workers};
use crate::config::ListenerConfig;

/// tungstenite's read buffer per connection, held for the connection's whole life (its
/// 128 KiB default dominates idle memory, and 4 KiB was still the largest part of an idle
/// client). The socket is read in bigger chunks all the same: `Guarded` reads ahead into a
/// buffer of its own that exists only while tungstenite has not taken it all. Messages up to
/// this size (header included) arrive in one read; larger ones in pieces of this size.
const WS_READ_BUFFER: usize = 256;

/// How much tungstenite buffers before writing to the socket (a flush always writes).
const WS_WRITE_BUFFER: usize = 4 * 1024;

/// At most one warning per this many ms about refused connections, per listener.
const REFUSAL_WARN_EVERY_MS: u64 = 10_000;

/// A bound socket and the listener it belongs to, not yet accepting.
#[derive(Debug)]
pub struct Listener {
    pub(super) tcp: TcpListener,
    pub(super) config: ListenerConfig,
    pub(super) local_addr: SocketAddr,
    pub(super) tls: Option<Arc<Tls>>,
}

impl Listener {
    /// Wraps a bound socket, with its certificate if it serves TLS.
    pub(super) fn new(
        tcp: TcpListener,
        config: ListenerConfig,
        local_addr: SocketAddr,
        tls: Option<Arc<Tls>>,
    ) -> Self {
        Self {
            tcp,
            config,
            local_addr,
            tls,
        }
    }

    /// The address actually bound (a configured port 0 becomes the chosen port).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The listener's configuration.
    pub fn config(&self) -> &ListenerConfig {
        &self.config
    }
}

/// Traffic and connection counters of one listener.
#[derive(Debug, Default)]
pub(super) struct Counters {
    /// Open sockets, handshakes included; what `max_connections` limits.
    pub connections: AtomicUsize,
    /// Clients in the registry.
    pub clients: AtomicU64,
    /// Message bytes received.
    pub bytes_in: AtomicU64,
    /// Message bytes sent.
    pub bytes_out: AtomicU64,
    /// Messages received.
    pub messages_in: AtomicU64,
    /// Messages sent.
    pub messages_out: AtomicU64,
    /// Connections refused by `max_connections`.
    pub refused: AtomicU64,
    /// Clients closed because their send queue was full.
    pub send_queue_drops: AtomicU64,
    /// Connections refused by `max_connections_per_ip`.
    pub refused_per_ip: AtomicU64,
    /// Handshakes past `handshake_timeout_ms`.
    pub handshake_timeouts: AtomicU64,
    /// Messages over `max_messages_per_second`.
    pub throttled: AtomicU64,
    /// When the last refusal warning was logged, ms since the epoch.
    last_refusal_warning_ms: AtomicU64,
    /// When the last "app not loaded" line was logged, ms since the epoch.
    last_unserved_note_ms: AtomicU64,
}

/// Adds to a counter; relaxed, since counters order nothing.
pub(super) fn add(counter: &AtomicU64, n: u64) {
    counter.fetch_add(n, Ordering::Relaxed);
}

/// Everything connection tasks share about their listener.
///
/// The settings [`Gateway::reconfigure`](super::Gateway::reconfigure) may change live sit
/// behind swaps, read at the point of use; the rest is fixed for the listener's life.
pub(super) struct ListenerState {
    /// Position in the gateway's list; stored in registry entries.
    pub index: usize,
    /// The listener's configuration now; `addr`, `protocol` and `app` never change.
    pub config: ArcSwap<ListenerConfig>,
    /// How its clients talk.
    pub protocol: Protocol,
    /// The app its events go to.
    pub app: AppName,
    /// The registry of that app, shared with its other listeners.
    pub world: Arc<World>,
    /// The bound address.
    pub local_addr: SocketAddr,
    /// Where events and handshakes go.
    pub workers: Arc<dyn Workers>,
    /// The heartbeat message now; `None`: nothing to send.
    pub ping: ArcSwapOption<Outgoing>,
    /// The heartbeat period in ms now (0: off); the ticker follows its changes.
    pub period: watch::Sender<u64>,
    /// Its figures.
    pub counters: Counters,
    /// Its certificate, if it serves TLS; renewed in place by a reload.
    pub tls: Option<Arc<Tls>>,
    /// Open connections per client address.
    pub per_ip: Mutex<PerIp>,
}

/// The heartbeat message of a listener with this configuration.
fn ping_of(config: &ListenerConfig) -> Option<Outgoing> {
    match (config.ping_data.is_empty(), config.protocol) {
        (false, _) => Some(Outgoing::from(Message::text(&*config.ping_data))),
        (true, Protocol::WebSocket) => Some(Outgoing::Ping),
        (true, Protocol::Text | Protocol::Frame) => None,
    }
}

impl ListenerState {
    /// The state of listener number `index`.
    pub(super) fn new(
        index: usize,
        config: ListenerConfig,
        local_addr: SocketAddr,
        world: Arc<World>,
        workers: Arc<dyn Workers>,
        tls: Option<Arc<Tls>>,
    ) -> Self {
        Self {
            index,
            world,
            app: config.app.as_str().into(),
            protocol: config.protocol,
            ping: ArcSwapOption::from(ping_of(&config).map(Arc::new)),
            period: watch::Sender::new(config.ping_interval_ms),
            config: ArcSwap::from_pointee(config),
            local_addr,
            workers,
            counters: Counters::default(),
            tls,
            per_ip: Mutex::default(),
        }
    }

    /// Takes on a new configuration with the same `addr`, `protocol` and `app`: connection
    /// tasks and the ticker read it from their next use on.
    pub(super) fn set_config(&self, config: ListenerConfig) {
        debug_assert_eq!(config.protocol, self.protocol);
        self.ping.store(ping_of(&config).map(Arc::new));
        let period = config.ping_interval_ms;
        self.config.store(Arc::new(config));
        self.period.send_if_modified(|p| {
            let changed = *p != period;
            *p = period;
            changed
        });
    }

    /// Buffer sizes and limits for a new WebSocket client.
    pub(super) fn ws_config(&self) -> WebSocketConfig {
        let max = self.config.load().max_message_bytes;
        WebSocketConfig::default()
            .read_buffer_size(WS_READ_BUFFER)
            .write_buffer_size(WS_WRITE_BUFFER)
            .max_message_size(Some(max))
            .max_frame_size(Some(max))
    }

    /// The listener's figures now.
    pub(super) fn stats(&self) -> ListenerStats {
        let c = &self.counters;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        ListenerStats {
            addr: self.local_addr,
            protocol: self.protocol,
            app: self.config.load().app.clone(),
            clients: get(&c.clients),
            connections: c.connections.load(Ordering::Relaxed) as u64,
            bytes_in: get(&c.bytes_in),
            bytes_out: get(&c.bytes_out),
            messages_in: get(&c.messages_in),
            messages_out: get(&c.messages_out),
            refused: get(&c.refused),
            send_queue_drops: get(&c.send_queue_drops),
            refused_per_ip: get(&c.refused_per_ip),
            handshake_timeouts: get(&c.handshake_timeouts),
            throttled: get(&c.throttled),
        }
    }

    /// Takes a connection for `ip` under `max_connections_per_ip`, or counts a refusal.
    fn try_reserve_ip(&self, ip: IpAddr) -> bool {
        let max = self.config.load().max_connections_per_ip;
        let taken = lock(&self.per_ip).try_take(ip, max);
        if !taken {
            add(&self.counters.refused_per_ip, 1);
        }
        taken
    }

    /// Takes a connection slot, or counts a refusal if the listener is full.
    fn try_reserve(&self) -> bool {
        let max = self.config.load().max_connections;
        let taken =
            self.counters
                .connections
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                    (n < max).then_some(n + 1)
                });
        if taken.is_err() {
            add(&self.counters.refused, 1);
        }
        taken.is_ok()
    }

    /// Logs a client refused because the app is not loaded: at most one info line every few
    /// seconds, debug otherwise.
    fn log_unserved(&self, remote: SocketAddr) {
        if self.due(&self.counters.last_unserved_note_ms) {
            tracing::info!(listener = %self.local_addr, app = %self.app,
                "app not loaded (yet): refusing clients");
        } else {
            debug!(listener = %self.local_addr, %remote, "app not loaded: connection refused");
        }
    }

    /// Whether a rate-limited log line stamped in `last` is due now; stamps it if so.
    fn due(&self, last: &AtomicU64) -> bool {
        let now = now_ms();
        let previous = last.load(Ordering::Relaxed);
        now.saturating_sub(previous) >= REFUSAL_WARN_EVERY_MS
            && last
                .compare_exchange(previous, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
    }

    /// Logs a refusal by `max_connections_per_ip`: a warning at most every few seconds.
    fn log_refusal_per_ip(&self, remote: SocketAddr) {
        if self.due(&self.counters.last_refusal_warning_ms) {
            warn!(listener = %self.local_addr, ip = %remote.ip(),
                max_connections_per_ip = self.config.load().max_connections_per_ip,
                refused = self.counters.refused_per_ip.load(Ordering::Relaxed),
                "an address has too many connections: refusing its new ones");
        } else {
            debug!(listener = %self.local_addr, %remote, "too many connections from the address: refused");
        }
    }

    /// Logs a refusal: a warning at most every few seconds, debug otherwise.
    fn log_refusal(&self, remote: SocketAddr) {
        let due = self.due(&self.counters.last_refusal_warning_ms);
        let refused = self.counters.refused.load(Ordering::Relaxed);
        if due {
            warn!(listener = %self.local_addr, max_connections = self.config.load().max_connections,
                refused, "listener full: refusing connections");
        } else {
            debug!(listener = %self.local_addr, %remote, refused, "listener full: connection refused");
        }
    }
}

/// A connection's claim on its listener and gateway: while it lives, the connection counts
/// against `max_connections` and keeps [`Gateway::shutdown`] waiting.
pub(super) struct Slot {
    /// The gateway.
    pub gw: Arc<Gateway>,
    /// The listener that accepted the connection.
    pub lst: Arc<ListenerState>,
    /// The client's address, counted against `max_connections_per_ip`.
    ip: IpAddr,
}

impl Slot {
    fn new(gw: Arc<Gateway>, lst: Arc<ListenerState>, ip: IpAddr) -> Self {
        gw.live.fetch_add(1, Ordering::AcqRel);
        Self { gw, lst, ip }
    }

    /// The registry this connection's client lives in: its app's.
    pub fn registry(&self) -> MutexGuard<'_, Registry<ClientHandle>> {
        lock(&self.lst.world)
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        lock(&self.lst.per_ip).release(self.ip);
        self.lst.counters.connections.fetch_sub(1, Ordering::AcqRel);
        if self.gw.live.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.gw.idle.notify_waiters();
        }
    }
}

/// Accepts connections until the gateway shuts down.
pub(super) async fn accept_loop(gw: Arc<Gateway>, lst: Arc<ListenerState>, tcp: TcpListener) {
    loop {
        let accepted = tokio::select! {
            () = gw.shutdown.cancelled() => return,
            accepted = tcp.accept() => accepted,
        };
        match accepted {
            Ok((stream, remote)) => {
                if !lst.workers.serves(&lst.app) {
                    lst.log_unserved(remote);
                    refuse(&lst, stream, "the app is not loaded yet");
                } else if !lst.try_reserve_ip(remote.ip()) {
                    lst.log_refusal_per_ip(remote);
                    refuse(&lst, stream, "too many connections from this address");
                } else if lst.try_reserve() {
                    let slot = Slot::new(gw.clone(), lst.clone(), remote.ip());
                    tokio::spawn(connection::serve(slot, stream, remote));
                } else {
                    lock(&lst.per_ip).release(remote.ip());
                    lst.log_refusal(remote);
                    refuse(&lst, stream, "too many connections");
                }
            }
            Err(e) => {
                // Usually out of file descriptors; pausing lets closing connections free some.
                warn!(listener = %lst.local_addr, error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// Closes a connection the listener cannot serve (WebSocket clients get a 503 saying why).
fn refuse(lst: &ListenerState, mut stream: TcpStream, why: &str) {
    // A TLS client would not understand a plain answer: it is only closed.
    if lst.protocol == Protocol::WebSocket && lst.tls.is_none() {
        let response = handshake::http_response(503, why);
        tokio::spawn(async move { handshake::refuse(&mut stream, &response).await });
    }
}

/// Tells each of the listener's clients that a heartbeat interval ended, every interval until
/// the gateway shuts down, following changes of the period (0: no ticks until it changes).
pub(super) async fn ticker(gw: Arc<Gateway>, lst: Arc<ListenerState>) {
    let mut period_rx = lst.period.subscribe();
    loop {
        let ms = *period_rx.borrow_and_update();
        if ms == 0 {
            tokio::select! {
                () = gw.shutdown.cancelled() => return,
                changed = period_rx.changed() => if changed.is_err() { return },
            }
            continue;
        }
        let period = Duration::from_millis(ms);
        let mut interval = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = gw.shutdown.cancelled() => return,
                changed = period_rx.changed() => match changed {
                    Ok(()) => break,
                    Err(_) => return,
                },
                _ = interval.tick() => tick(&lst),
            }
        }
    }
}

/// One heartbeat tick to every client of `lst`: a flag in each send queue, so an idle
/// connection waits on nothing but its queue (and a walk per interval costs about as much as
/// a watch channel's wake-up of every connection would).
fn tick(lst: &ListenerState) {
    lock(&lst.world).for_each_target(&Target::All, &[], |_, entry| {
        if entry.listener == lst.index {
            entry.handle.tx.tick();
        }
    });
}
