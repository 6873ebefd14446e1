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
//! Timers run on the real clock (the worker host's plugin threads keep their own runtime).

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError, Weak};
use std::time::Duration;

use async_trait::async_trait;
use switchboard::bus::{
    BusError, ClientId, Command, Event, EventKind, GatewayId, Gateways, Message, Protocol, Query,
    Reply, Workers,
};
use switchboard::config::Config;
use switchboard::gateway::registry::{Entry, Registry};
use switchboard::worker::WorkerHost;
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
    _dir: tempfile::TempDir,
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
        let host = WorkerHost::new(&config, gateway.clone()).map_err(|e| setup(&e))?;
        let workers: Arc<dyn Workers> = host.clone();
        let _ = gateway.workers.set(Arc::downgrade(&workers));
        host.deploy(&file)
            .await
            .map_err(|e| KitError::Refused(e.to_string()))?;
        Ok(Self {
            app: app.to_owned(),
            host,
            gateway,
            _dir: dir,
        })
    }

    /// A new client: its `on-connect` has been delivered when this returns.
    pub async fn connect(&self) -> Client {
        let id = self.gateway.accept();
        let inbox = self
            .gateway
            .inbox(id)
            .unwrap_or_else(|| Arc::new(Inbox::default()));
        self.gateway
            .deliver(&self.app, id, EventKind::Connect)
            .await;
        Client {
            id,
            app: self.app.clone(),
            inbox,
            gateway: self.gateway.clone(),
        }
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
        self.gateway
            .deliver(&self.app, self.id, EventKind::Message(Message::text(text)))
            .await;
    }

    /// The next text message this client received, waiting up to [`RECV_TIMEOUT`]; binary
    /// messages come as lossy UTF-8.
    pub async fn recv(&self) -> Option<String> {
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
        waited
            .ok()
            .map(|m| String::from_utf8_lossy(m.data()).into_owned())
    }

    /// Everything received and not yet read, without waiting.
    pub fn drain(&self) -> Vec<String> {
        std::iter::from_fn(|| self.inbox.pop())
            .map(|m| String::from_utf8_lossy(m.data()).into_owned())
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
