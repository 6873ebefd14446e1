//! Test Switchboard plugins without sockets.
//!
//! [`TestKit::load`] loads a component (any language: it is the server's own loader) into the
//! server's real worker host, whose gateway is simulated in memory with the server's real
//! client registry: connect clients, send them messages, read what each received, inspect
//! uids, groups and sessions.
//!
//! ```no_run
//! # async fn demo() -> Result<(), switchboard_test::KitError> {
//! let kit = switchboard_test::TestKit::load("target/plugins/echo.wasm").await?;
//! let ann = kit.connect().await;
//! ann.send("hi").await;
//! assert_eq!(ann.recv().await.as_deref(), Some("hi"));
//! # Ok(()) }
//! ```
//!
//! Plugin timers run on a manual clock that only [`TestKit::advance`] moves, so a test of a
//! one-hour timer takes no time.

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError, Weak};
use std::time::Duration;

use async_trait::async_trait;
use switchboard::bus::{
    BusError, ClientId, Command, Event, EventKind, GatewayId, Gateways, Handshake, HttpRequest,
    Message, MessageKind, Protocol, Query, Reply, Workers,
};
use switchboard::config::Config;
use switchboard::gateway::registry::{Entry, Registry};
use switchboard::worker::{Clock, ManualClock, WorkerHost};

pub use switchboard::bus::Rejection;
use tokio::sync::Notify;

/// How long [`Client::recv`] waits for a message before it answers `None`.
pub const RECV_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a plugin could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum KitError {
    /// The file, folder or config could not be prepared.
    #[error("{0}")]
    Setup(String),
    /// The server would refuse the plugin; the reason is the one it logs.
    #[error("{0}")]
    Refused(String),
}

/// One plugin, loaded in the server's worker host, with a simulated gateway.
pub struct TestKit {
    app: String,
    host: Arc<WorkerHost>,
    gateway: Arc<SimGateway>,
    clock: Arc<ManualClock>,
    _dir: tempfile::TempDir,
}

/// A WebSocket upgrade request, as `on-websocket-connect` sees it.
#[derive(Clone, Debug)]
pub struct Upgrade {
    path: String,
    query: String,
    headers: Vec<(String, String)>,
}

impl Upgrade {
    /// A request for `target`, a path with an optional `?query`.
    pub fn new(target: &str) -> Self {
        let (path, query) = target.split_once('?').unwrap_or((target, ""));
        Self {
            path: path.to_owned(),
            query: query.to_owned(),
            headers: Vec::new(),
        }
    }

    /// Adds a header (its name is lowercased, as the gateway passes names).
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers
            .push((name.to_ascii_lowercase(), value.to_owned()));
        self
    }
}

/// A message a client received.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Received {
    /// A text message.
    Text(String),
    /// A binary message.
    Binary(Vec<u8>),
}

impl TestKit {
    /// Loads the component at `path` as the app named by its file stem.
    pub async fn load(path: impl AsRef<Path>) -> Result<Self, KitError> {
        let path = path.as_ref();
        let app = path
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or_default()
            .to_owned();
        Self::load_as(path, &app).await
    }

    /// Loads the component at `path` as the app `app`.
    pub async fn load_as(path: &Path, app: &str) -> Result<Self, KitError> {
        let setup = |e: &dyn std::fmt::Display| KitError::Setup(e.to_string());
        let dir = tempfile::tempdir().map_err(|e| setup(&e))?;
        let plugins = dir.path().join("plugins");
        std::fs::create_dir(&plugins).map_err(|e| setup(&e))?;
        let file = plugins.join(format!("{app}.wasm"));
        std::fs::copy(path, &file).map_err(|e| setup(&format!("{}: {e}", path.display())))?;
        let text = format!(
            "[[listener]]\naddr = \"127.0.0.1:0\"\nprotocol = \"websocket\"\napp = \"{app}\"\n\
             [worker]\nplugins_dir = \"plugins\"\ncache_dir = \"cache\"\ndata_dir = \"data\"\n\
             instances = 2\nthreads = 1\n"
        );
        let config_path = dir.path().join("switchboard.toml");
        std::fs::write(&config_path, text).map_err(|e| setup(&e))?;
        let config = Config::load(&config_path).map_err(|e| setup(&e))?;
        let gateway = SimGateway::new();
        let clock = Arc::new(ManualClock::default());
        let host = WorkerHost::with_clock(&config, gateway.clone(), Clock::Manual(clock.clone()))
            .map_err(|e| setup(&e))?;
        let workers: Arc<dyn Workers> = host.clone();
        let _ = gateway.workers.set(Arc::downgrade(&workers));
        host.deploy(&file)
            .await
            .map_err(|e| KitError::Refused(e.to_string()))?;
        Ok(Self {
            app: app.to_owned(),
            host,
            gateway,
            clock,
            _dir: dir,
        })
    }

    /// A new client that asked for `/`; panics if the plugin refuses it (test refusals with
    /// [`TestKit::connect_with`]).
    pub async fn connect(&self) -> Client {
        match self.connect_with(Upgrade::new("/")).await {
            Ok(client) => client,
            Err(refused) => panic!(
                "the plugin refused a plain connection: {} {}",
                refused.status, refused.reason
            ),
        }
    }

    /// A new client asking `upgrade`: as on a real gateway it is online from `on-connect`,
    /// then `on-websocket-connect` gives the verdict. A refused client leaves every index
    /// (without `on-close`), and the rejection is returned.
    pub async fn connect_with(&self, upgrade: Upgrade) -> Result<Client, Rejection> {
        let id = self.gateway.accept();
        let inbox = self
            .gateway
            .inbox(id)
            .unwrap_or_else(|| Arc::new(Inbox::default()));
        self.gateway
            .deliver(&self.app, id, EventKind::Connect)
            .await;
        self.gateway.handshake(&self.app, id, upgrade).await?;
        Ok(Client {
            id,
            app: self.app.clone(),
            inbox,
            gateway: self.gateway.clone(),
        })
    }

    /// Moves the plugin's clock forward by `by`; returns how many `on-timer` events that
    /// queued. Each timer fires at most once per call, and a repeating timer whose last firing
    /// is still waiting skips the periods it misses (as on the real clock): read what a firing
    /// sends (e.g. [`Client::recv`]) before advancing again.
    pub fn advance(&self, by: Duration) -> usize {
        self.clock.advance(by)
    }

    /// The uid `client` is bound to.
    pub fn uid(&self, client: &Client) -> Option<String> {
        self.gateway.with(|r| {
            r.get(client.id)?
                .uid
                .as_ref()
                .map(|u| u.as_str().to_owned())
        })
    }

    /// The groups `client` is a member of, sorted.
    pub fn groups(&self, client: &Client) -> Vec<String> {
        self.gateway
            .with(|r| {
                r.get(client.id)
                    .map(|e| e.groups.iter().map(|g| g.as_str().to_owned()).collect())
            })
            .unwrap_or_default()
    }

    /// The session of `client`.
    pub fn session(&self, client: &Client) -> BTreeMap<String, String> {
        self.gateway
            .with(|r| {
                r.get(client.id).map(|e| {
                    e.session
                        .iter()
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect()
                })
            })
            .unwrap_or_default()
    }

    /// Connected clients.
    pub fn client_count(&self) -> usize {
        self.gateway.with(|r| Some(r.len())).unwrap_or_default()
    }

    /// Retires the plugin's instances (`on-worker-stop`).
    pub async fn shutdown(self) {
        self.host.shutdown().await;
    }
}

/// A simulated client of a [`TestKit`].
pub struct Client {
    id: ClientId,
    app: String,
    inbox: Arc<Inbox>,
    gateway: Arc<SimGateway>,
}

impl Client {
    /// Its client id, 20 hex digits.
    pub fn id(&self) -> String {
        self.id.to_string()
    }

    /// Sends a text message (`on-message`); returns once the event is queued to the plugin.
    pub async fn send(&self, text: &str) {
        self.send_message(Message::text(text)).await;
    }

    /// Sends a binary message (`on-message`).
    pub async fn send_binary(&self, bytes: &[u8]) {
        self.send_message(Message::binary(bytes.to_vec())).await;
    }

    async fn send_message(&self, message: Message) {
        self.gateway
            .deliver(&self.app, self.id, EventKind::Message(message))
            .await;
    }

    /// The next message this client received as text, waiting up to [`RECV_TIMEOUT`];
    /// binary messages come as lossy UTF-8 ([`Client::recv_message`] tells them apart).
    pub async fn recv(&self) -> Option<String> {
        self.recv_message().await.map(Received::into_text)
    }

    /// The next message this client received, text or binary, waiting up to
    /// [`RECV_TIMEOUT`].
    pub async fn recv_message(&self) -> Option<Received> {
        let waited = tokio::time::timeout(RECV_TIMEOUT, async {
            loop {
                let notified = self.inbox.notify.notified();
                if let Some(message) = self.inbox.pop() {
                    return message;
                }
                notified.await;
            }
        })
        .await;
        waited.ok().map(Received::from)
    }

    /// Everything received and not yet read, as text, without waiting.
    pub fn drain(&self) -> Vec<String> {
        std::iter::from_fn(|| self.inbox.pop())
            .map(|m| Received::from(m).into_text())
            .collect()
    }

    /// Whether the plugin closed this client.
    pub fn is_closed(&self) -> bool {
        self.inbox.lock().1
    }

    /// Disconnects: the client leaves every index, then `on-close` is delivered.
    pub async fn close(self) {
        self.gateway.disconnect(&self.app, self.id).await;
    }
}

impl Received {
    /// The text, or the bytes as lossy UTF-8.
    pub fn into_text(self) -> String {
        match self {
            Received::Text(text) => text,
            Received::Binary(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
        }
    }
}

impl From<Message> for Received {
    fn from(message: Message) -> Self {
        match message.kind() {
            MessageKind::Text => {
                Received::Text(String::from_utf8_lossy(message.data()).into_owned())
            }
            MessageKind::Binary => Received::Binary(message.data().to_vec()),
        }
    }
}

/// What one simulated client received, and whether it was closed.
#[derive(Debug, Default)]
struct Inbox {
    state: Mutex<(VecDeque<Message>, bool)>,
    notify: Notify,
}

impl Inbox {
    fn lock(&self) -> std::sync::MutexGuard<'_, (VecDeque<Message>, bool)> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn push(&self, message: Message) {
        self.lock().0.push_back(message);
        self.notify.notify_waiters();
    }

    fn pop(&self) -> Option<Message> {
        self.lock().0.pop_front()
    }
}

/// The gateway in memory: the server's client registry, with inboxes for connections.
struct SimGateway {
    id: GatewayId,
    next_seq: AtomicU64,
    registry: Mutex<Registry<Arc<Inbox>>>,
    workers: OnceLock<Weak<dyn Workers>>,
    /// Itself, for the close a command asks for, which completes on a task of its own.
    me: Weak<SimGateway>,
}

impl SimGateway {
    fn new() -> Arc<Self> {
        Arc::new_cyclic(|me| Self {
            id: GatewayId::random(),
            next_seq: AtomicU64::new(1),
            registry: Mutex::new(Registry::new()),
            workers: OnceLock::new(),
            me: me.clone(),
        })
    }

    fn with<T>(&self, f: impl FnOnce(&mut Registry<Arc<Inbox>>) -> Option<T>) -> Option<T> {
        f(&mut self.registry.lock().unwrap_or_else(PoisonError::into_inner))
    }

    fn accept(&self) -> ClientId {
        let seq = self.next_seq.fetch_add(1, Ordering::Relaxed);
        let id = ClientId::new(self.id, seq).unwrap_or_else(|| unreachable_id(self.id));
        let addr = SocketAddr::from(([127, 0, 0, 1], 40000 + (seq % 20000) as u16));
        let entry = Entry::new(0, addr, Protocol::WebSocket, 0, Arc::new(Inbox::default()));
        self.with(|r| Some(r.insert(id, entry)));
        id
    }

    fn inbox(&self, id: ClientId) -> Option<Arc<Inbox>> {
        self.with(|r| r.get(id).map(|e| e.handle.clone()))
    }

    fn workers(&self) -> Option<Arc<dyn Workers>> {
        self.workers.get()?.upgrade()
    }

    /// Sends an event of `client` to the plugin, with its context as of now.
    async fn deliver(&self, app: &str, client: ClientId, kind: EventKind) {
        let Some(ctx) = self.with(|r| r.context(client)) else {
            return;
        };
        if let Some(workers) = self.workers() {
            workers
                .event(Event {
                    app: app.into(),
                    ctx,
                    kind,
                })
                .await;
        }
    }

    /// Asks the app for its verdict on the registered `client`; a refused one is taken back.
    async fn handshake(
        &self,
        app: &str,
        client: ClientId,
        upgrade: Upgrade,
    ) -> Result<(), Rejection> {
        let Some(ctx) = self.with(|r| r.context(client)) else {
            return Ok(());
        };
        let Some(workers) = self.workers() else {
            return Ok(());
        };
        let verdict = workers
            .handshake(Handshake {
                app: app.into(),
                ctx,
                request: HttpRequest {
                    path: upgrade.path,
                    query: upgrade.query,
                    headers: upgrade.headers,
                },
            })
            .await;
        if verdict.is_err() {
            self.with(|r| r.remove(client));
        }
        verdict
    }

    /// Removes the client everywhere, then tells the plugin what it was bound to.
    async fn disconnect(&self, app: &str, client: ClientId) {
        let Some(removed) = self.with(|r| r.remove(client)) else {
            return;
        };
        removed.handle.lock().1 = true;
        if let Some(workers) = self.workers() {
            workers
                .event(Event {
                    app: app.into(),
                    ctx: removed.ctx,
                    kind: EventKind::Close(removed.bound),
                })
                .await;
        }
    }
}

/// Sequence numbers run out after 2^48 connections, which no test makes.
fn unreachable_id(gateway: GatewayId) -> ClientId {
    ClientId::new(gateway, 1).unwrap_or_else(|| panic!("client ids of gateway {gateway:?}"))
}

#[async_trait]
impl Gateways for SimGateway {
    async fn command(&self, app: &str, command: Command) -> Result<(), BusError> {
        let mut closed = None;
        {
            let mut registry = self.registry.lock().unwrap_or_else(PoisonError::into_inner);
            match registry.apply_state(command)? {
                Some(Command::Send {
                    to,
                    message,
                    without,
                }) => registry.for_each_target(&to, &without, |_, entry| {
                    entry.handle.push(message.clone());
                }),
                Some(Command::Close { client, .. }) => closed = Some(client),
                _ => {}
            }
        }
        if let Some(client) = closed {
            // As a real gateway: the close completes apart from the command that asked for it.
            let Some(gateway) = self.me.upgrade() else {
                return Ok(());
            };
            let app = app.to_owned();
            tokio::spawn(async move { gateway.disconnect(&app, client).await });
        }
        Ok(())
    }

    async fn query(&self, _app: &str, query: Query) -> Result<Reply, BusError> {
        Ok(self
            .registry
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .answer(&query, self.id))
    }
}
