//! One task per connection: it owns the socket, reads messages into events, writes the send
//! queue in batches, runs the heartbeat and, at the end, reports the client gone. Reading and
//! writing are independent futures inside it, so neither waits for the other; the heartbeat's
//! ticks and the gateway's shutdown reach the writer through the send queue.

use std::future::{Future, poll_fn};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::Poll;
use std::time::Duration;

use tokio::net::TcpStream;
use tokio::time::Instant;

use super::tls::{Stream, Tls};
use super::tls_transport::TlsTcpTransport;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::Role;
use tracing::debug;

use super::admission::RateLimit;
use super::codec::{FrameCodec, LineCodec};
use super::handshake::{self, BadRequest, HeadError};
use super::heartbeat::{Beat, Heartbeat};
use super::listener::{Slot, add};
use super::registry::{Entry, Traffic};
use super::send_queue::{self, Next};
use super::static_files;
use super::transport::{
    Ending, Failure, Guarded, Incoming, LINGER, Outgoing, ReadHalf, TcpTransport, Transport,
    WriteHalf, WsStream, WsTransport,
};
use super::{ClientHandle, Kill, KillReason, now_ms};
use crate::bus::{
    self, ClientId, Context, Event, EventKind, Handshake, Message, Protocol, Rejection, Session,
};
use crate::config::Throttle;

/// Serves one accepted socket until it closes.
///
/// This future is the connection's task, which lives as long as the connection: it holds
/// only the slot and a pointer. Connecting (TLS, the upgrade, on-connect) runs in a boxed
/// future of its own that is freed once the client is connected; before, its state was part
/// of every task for the connection's whole life (2.5 KiB of each idle client's 11).
pub(super) async fn serve(slot: Slot, stream: TcpStream, remote: SocketAddr) {
    let connected = Box::pin(connect(&slot, stream, remote)).await;
    if let Some(served) = connected {
        served.await;
    }
}

/// A connected client's life (see [`Client::run`]), on the heap at its own protocol's size.
type Served<'a> = Pin<Box<dyn Future<Output = ()> + Send + 'a>>;

/// Boxes the life of `client` over `t`; not async, so nothing of it stays in the caller.
fn served<'a, T: Transport + 'a>(client: Client, slot: &'a Slot, t: T) -> Served<'a> {
    Box::pin(client.run(slot, t))
}

/// Takes an accepted socket to a connected client; `None` if it never got there.
async fn connect(slot: &Slot, stream: TcpStream, remote: SocketAddr) -> Option<Served<'_>> {
    let Some(id) = slot.gw.next_client_id(slot.lst.protocol) else {
        tracing::error!("client id sequence exhausted; refusing connections");
        return None;
    };
    // Messages are batched into one flush already; Nagle would only add latency.
    if let Err(e) = stream.set_nodelay(true) {
        debug!(client = %id, error = %e, "cannot set TCP_NODELAY");
    }
    // The codecs' and tungstenite's limits are fixed per connection: a changed
    // `max_message_bytes` applies to connections made after the change.
    let (max, write_timeout, handshake_timeout) = {
        let config = slot.lst.config.load();
        (
            config.max_message_bytes,
            config.write_timeout(),
            Duration::from_millis(config.handshake_timeout_ms),
        )
    };
    // The whole handshake (TLS, the request, the app's verdict, the answer) has one deadline.
    let deadline = Instant::now() + handshake_timeout;
    match (slot.lst.protocol, slot.lst.tls.clone()) {
        (Protocol::WebSocket, tls) => {
            let stream = match tls {
                None => Stream::Plain(stream),
                Some(tls) => tls_handshake(slot, &tls, stream, id, remote, deadline).await?,
            };
            let opened = open_websocket(slot, id, remote, stream, write_timeout, deadline);
            let (client, ws) = opened.await?;
            Some(served(client, slot, WsTransport::new(ws)))
        }
        (Protocol::Text, None) => {
            let client = Client::register(slot, id, remote).await;
            let t = TcpTransport::new(stream, LineCodec::new(max), write_timeout);
            Some(served(client, slot, t))
        }
        (Protocol::Frame, None) => {
            let client = Client::register(slot, id, remote).await;
            let t = TcpTransport::new(stream, FrameCodec::new(max), write_timeout);
            Some(served(client, slot, t))
        }
        (protocol, Some(tls)) => {
            // The client exists (on-connect) only once its TLS session does.
            let stream = tls_handshake(slot, &tls, stream, id, remote, deadline).await?;
            let client = Client::register(slot, id, remote).await;
            if protocol == Protocol::Text {
                let t = TlsTcpTransport::new(stream, LineCodec::new(max), write_timeout);
                Some(served(client, slot, t))
            } else {
                let t = TlsTcpTransport::new(stream, FrameCodec::new(max), write_timeout);
                Some(served(client, slot, t))
            }
        }
    }
}

/// The server side of a TLS handshake; `None` if it failed (a plain client on a TLS port, a
/// broken or slow one): such a client only loses its socket.
async fn tls_handshake(
    slot: &Slot,
    tls: &Tls,
    stream: TcpStream,
    id: ClientId,
    remote: SocketAddr,
    deadline: Instant,
) -> Option<Stream> {
    match tokio::time::timeout_at(deadline, tls.accept(stream)).await {
        Ok(Ok(stream)) => Some(stream),
        Ok(Err(e)) => {
            debug!(client = %id, %remote, error = %e, "TLS handshake failed");
            None
        }
        Err(_) => {
            handshake_timed_out(slot, id, remote);
            None
        }
    }
}

/// Counts and logs a connection whose handshake outlived `handshake_timeout_ms`.
fn handshake_timed_out(slot: &Slot, id: ClientId, remote: SocketAddr) {
    add(&slot.lst.counters.handshake_timeouts, 1);
    debug!(client = %id, %remote, "handshake not finished within handshake_timeout_ms: closed");
}

/// Reads the upgrade request, registers the client (on-connect), asks the app and answers;
/// `None` if the client is refused or gone (and then reported gone if it was accepted).
async fn open_websocket(
    slot: &Slot,
    id: ClientId,
    remote: SocketAddr,
    mut stream: Stream,
    write_timeout: Duration,
    deadline: Instant,
) -> Option<(Client, WsStream)> {
    let upgrade = tokio::select! {
        () = slot.gw.shutdown.cancelled() => None,
        upgrade = read_head(slot, id, remote, &mut stream, deadline) => upgrade,
    }?;
    // As in GatewayWorker, the client is online before the app's verdict: what on-connect
    // and on-websocket-connect do to it takes effect.
    let client = Client::register(slot, id, remote).await;
    match accept(slot, &client, stream, upgrade, write_timeout, deadline).await {
        Opened::Ws(ws) => Some((client, ws)),
        Opened::Refused => None,
        Opened::Lost => {
            leave(slot, client.id, &client.kill).await;
            None
        }
    }
}

/// Reads the upgrade request; `None` (after answering a bad one, or a plain GET with a file
/// of `static_dir`) if there is none.
async fn read_head(
    slot: &Slot,
    id: ClientId,
    remote: SocketAddr,
    stream: &mut Stream,
    deadline: Instant,
) -> Option<handshake::Upgrade> {
    match tokio::time::timeout_at(deadline, handshake::read_upgrade(stream)).await {
        Ok(Ok(upgrade)) => Some(upgrade),
        Ok(Err(HeadError::Bad(BadRequest::NotUpgrade { path, reason }))) => {
            let dir = slot.lst.config.load().static_dir.clone();
            let response = match dir {
                Some(dir) => static_files::respond(&dir, &path).await,
                None => BadRequest::NotUpgrade { path, reason }.response(),
            };
            handshake::refuse(stream, &response).await;
            None
        }
        Ok(Err(HeadError::Bad(bad))) => {
            debug!(client = %id, %remote, error = %bad, "bad WebSocket handshake");
            handshake::refuse(stream, &bad.response()).await;
            None
        }
        Ok(Err(HeadError::Io(e))) => {
            debug!(client = %id, %remote, error = %e, "connection lost during handshake");
            None
        }
        Err(_) => {
            handshake_timed_out(slot, id, remote);
            None
        }
    }
}

/// How an upgrade the app was asked about ended.
// Returned once and moved on at once: boxing the stream would only add an allocation.
#[allow(clippy::large_enum_variant)]
enum Opened {
    /// Accepted and answered: the client is served.
    Ws(WsStream),
    /// Refused by the app, and its registration undone.
    Refused,
    /// Accepted, but the client went away before taking the answer.
    Lost,
}

/// Asks the app for its verdict on a registered client and answers the upgrade.
async fn accept(
    slot: &Slot,
    client: &Client,
    mut stream: Stream,
    upgrade: handshake::Upgrade,
    write_timeout: Duration,
    deadline: Instant,
) -> Opened {
    let (id, remote, lst) = (client.id, client.remote, &slot.lst);
    // The registered client's state: whatever on-connect did is applied by now only if it
    // ran first, which the worker's per-client order guarantees for the calls it made.
    let ctx = slot.registry().context(id).unwrap_or(Context {
        client: id,
        remote_addr: remote,
        uid: None,
        session: Session::default(),
    });
    let asked = lst.workers.handshake(Handshake {
        app: lst.app.clone(),
        ctx,
        request: upgrade.request,
    });
    let verdict = match tokio::time::timeout_at(deadline, asked).await {
        Ok(verdict) => verdict,
        Err(_) => {
            handshake_timed_out(slot, id, remote);
            Err(Rejection {
                status: 503,
                reason: "the app did not answer in time".into(),
            })
        }
    };
    if let Err(rejection) = verdict {
        debug!(client = %id, %remote, status = rejection.status, "handshake rejected by the app");
        let response = handshake::rejection_response(rejection.status, &rejection.reason);
        // Undone before the answer: the refused client is offline from here on.
        client.undo(slot);
        handshake::refuse(&mut stream, &response).await;
        return Opened::Refused;
    }
    // Flushed too: TLS may hold written bytes in its session until then.
    let answer = async {
        use tokio::io::AsyncWriteExt;
        stream.write_all(&upgrade.response).await?;
        stream.flush().await
    };
    let answer_deadline = deadline.min(Instant::now() + write_timeout);
    match tokio::time::timeout_at(answer_deadline, answer).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => {
            debug!(client = %id, %remote, error = %e, "connection lost during handshake");
            return Opened::Lost;
        }
        Err(_) => {
            debug!(client = %id, %remote, "handshake answer not taken in time");
            return Opened::Lost;
        }
    }
    let mut guarded = Guarded::new(stream, write_timeout);
    // Frames the client sent right behind its request head are scanned like the rest.
    guarded.scan(&upgrade.leftover);
    Opened::Ws(
        WebSocketStream::from_partially_read(
            guarded,
            upgrade.leftover,
            Role::Server,
            Some(lst.ws_config()),
        )
        .await,
    )
}

/// A registered client: its id, and the ends of its send queue and kill switch that the
/// connection keeps.
struct Client {
    id: ClientId,
    remote: SocketAddr,
    rx: send_queue::Receiver<Outgoing>,
    kill: Arc<Kill>,
    traffic: Arc<Traffic>,
}

impl Client {
    /// Puts the client into the registry and tells the app (on-connect).
    async fn register(slot: &Slot, id: ClientId, remote: SocketAddr) -> Self {
        let lst = &slot.lst;
        // The queue's capacity is fixed here: a changed `send_queue` applies to new connections.
        let (tx, rx) = send_queue::channel(lst.config.load().send_queue);
        let kill = Arc::new(Kill::default());
        let handle = ClientHandle {
            tx,
            kill: kill.clone(),
        };
        let entry = Entry::new(lst.index, remote, lst.protocol, now_ms(), handle);
        let traffic = entry.traffic.clone();
        slot.registry().insert(id, entry);
        add(&lst.counters.clients, 1);
        // Registered after the shutdown's walk over the registry: told here instead.
        if slot.gw.is_shutting_down()
            && let Some(entry) = slot.registry().get(id)
        {
            entry.handle.tx.going_away();
        }
        let ctx = Context {
            client: id,
            remote_addr: remote,
            uid: None,
            session: Session::default(),
        };
        if let Some(waiting) =
            bus::deliver_event(&*lst.workers, event(slot, ctx, EventKind::Connect))
        {
            waiting.await;
        }
        Self {
            id,
            remote,
            rx,
            kill,
            traffic,
        }
    }

    /// Takes back a registration the app refused: out of every index, its queued messages
    /// dropped, and no on-close.
    fn undo(&self, slot: &Slot) {
        if slot.registry().remove(self.id).is_some() {
            slot.lst
                .counters
                .clients
                .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
        }
    }

    /// The connected life of a client: served, then removed and reported.
    ///
    /// Two activities run side by side in this one task and never wait for each other: the
    /// reader (limits, handing messages to the app, which is the backpressure) and the writer
    /// (the send queue, the heartbeat's silence count and pings, the write deadline).
    async fn run<T: Transport>(self, slot: &Slot, mut t: T) {
        let Self {
            id,
            mut rx,
            kill,
            traffic,
            ..
        } = self;
        let life = Life {
            active: AtomicBool::new(false),
            delivering: AtomicBool::new(false),
            traffic,
        };
        let (mut reader, mut writer) = t.split();
        let quiet = rx.quiet();
        let ending = {
            let reading = read_side(slot, id, &mut reader, &life);
            let writing = write_side(slot, id, &mut writer, &mut rx, &life);
            let killed = kill.notified();
            tokio::pin!(reading, writing, killed);
            let ending = poll_fn(|cx| {
                // Kills first: a client that cannot keep up must not be served a little longer.
                if killed.as_mut().poll(cx).is_ready() {
                    return Poll::Ready(Ending::Drop);
                }
                for _ in 0..REPOLLS {
                    if let Poll::Ready(ending) = writing.as_mut().poll(cx) {
                        return Poll::Ready(ending);
                    }
                    // The app's answers to what this poll reads (an inline call) are written
                    // in this same poll: the queue does not wake the task for them.
                    quiet.begin();
                    let read = reading.as_mut().poll(cx);
                    if !quiet.end() || read.is_ready() {
                        return read;
                    }
                    if kill.reason().is_some() {
                        return Poll::Ready(Ending::Drop);
                    }
                }
                // Messages keep coming: the rest waits for another poll, after other tasks.
                cx.waker().wake_by_ref();
                Poll::Pending
            })
            .await;
            if !ending.is_broken_rule() {
                ending
            } else {
                // The client broke a rule after messages the app may still be answering:
                // reading is over, but the writer goes on for a moment, so those answers go
                // out ahead of the close.
                tokio::select! {
                    biased;
                    () = kill.notified() => Ending::Drop,
                    _ = tokio::time::timeout(REPLY_GRACE, &mut writing) => ending,
                }
            }
        };
        if ending.is_broken_rule() {
            // Boxed, like the other paths taken once per connection at most: their state then
            // costs memory only while they run, not in every idle connection.
            let rest = Box::pin(write_rest(slot, &life.traffic, &mut writer, &mut rx));
            let _ = tokio::time::timeout(LINGER, rest).await;
        }
        drop((reader, writer, rx));
        Box::pin(async { tokio::join!(t.end(ending), leave(slot, id, &kill)) }).await;
    }
}

/// Removes a client that was online and reports it gone (on-close).
async fn leave(slot: &Slot, id: ClientId, kill: &Kill) {
    let lst = &slot.lst;
    if kill.reason() == Some(KillReason::QueueFull) {
        debug!(client = %id, queue = lst.config.load().send_queue, "send queue full: client dropped");
        add(&lst.counters.send_queue_drops, 1);
    }
    // Removed before on-close runs, so queries from it already answer "offline".
    let removed = slot.registry().remove(id);
    lst.counters
        .clients
        .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    if let Some(removed) = removed {
        let close = EventKind::Close(removed.bound);
        if let Some(waiting) = bus::deliver_event(&*lst.workers, event(slot, removed.ctx, close)) {
            waiting.await;
        }
    }
}

/// Passes over the writer and the reader in one poll of a connection while reading queues
/// answers: two serve a message answered inline; more are for a client whose messages keep
/// coming, which then yields to the other connections.
const REPOLLS: usize = 2;

/// How long the writer goes on after the client broke a rule, so the app's answers to the
/// messages read before the offence are written ahead of the close. The bus tells the
/// gateway when an event was queued, not when it was handled: this is a bound, not a proof.
const REPLY_GRACE: Duration = Duration::from_millis(100);

/// What the reader tells the heartbeat (in the writer), and the client's traffic counters;
/// atomics, since the task moves between threads.
struct Life {
    /// The client sent something since the heartbeat last looked.
    active: AtomicBool,
    /// The reader is handing a message to the app (the client is not silent, just unread).
    delivering: AtomicBool,
    /// Counted here, read by `get-client-info` through the registry.
    traffic: Arc<Traffic>,
}

/// Reads until the client closes or breaks a rule; hands each message to the app.
async fn read_side<R: ReadHalf>(slot: &Slot, id: ClientId, reader: &mut R, life: &Life) -> Ending {
    let (rate, throttle) = {
        let config = slot.lst.config.load();
        (config.max_messages_per_second, config.throttle)
    };
    let mut limit = (rate > 0).then(|| RateLimit::new(rate, std::time::Instant::now()));
    let mut throttled = 0u64;
    loop {
        match reader.read().await {
            Ok(Incoming::Message(message)) => {
                life.active.store(true, Ordering::Relaxed);
                if let Some(limit) = &mut limit
                    && !limit.allow(std::time::Instant::now())
                {
                    add(&slot.lst.counters.throttled, 1);
                    throttled += 1;
                    match throttle {
                        Throttle::Close => {
                            debug!(client = %id, rate, "over max_messages_per_second: closing");
                            return Ending::PolicyViolation;
                        }
                        Throttle::Drop => {
                            if throttled == 1 {
                                debug!(client = %id, rate, "over max_messages_per_second: dropping the excess");
                            }
                            continue;
                        }
                    }
                }
                life.delivering.store(true, Ordering::Relaxed);
                if let Some(waiting) = deliver(slot, id, &life.traffic, message) {
                    // Awaiting here is the backpressure: this client is not read while its
                    // app is busy.
                    waiting.await;
                }
                life.delivering.store(false, Ordering::Relaxed);
            }
            Ok(Incoming::Activity) => {
                life.active.store(true, Ordering::Relaxed);
                life.traffic.active(now_ms());
            }
            Ok(Incoming::Closed) => return Ending::PeerClosed,
            Err(e) => {
                let ending = e.ending();
                match e {
                    Failure::TooLarge => {
                        debug!(client = %id, max = slot.lst.config.load().max_message_bytes, "message too large: closing");
                    }
                    e => debug!(client = %id, error = %e, "read failed"),
                }
                return ending;
            }
        }
    }
}

/// Writes the send queue and the heartbeat's pings until the queue says close, a write
/// fails or stalls past the deadline, the client is silent too long, or the gateway goes
/// away (after what was queued).
async fn write_side<W: WriteHalf>(
    slot: &Slot,
    id: ClientId,
    writer: &mut W,
    rx: &mut send_queue::Receiver<Outgoing>,
    life: &Life,
) -> Ending {
    let mut beat = Heartbeat::new(slot.lst.config.load().ping_not_responding_limit);
    loop {
        // One queue for messages, ticks and the shutdown: a wake polls nothing else here.
        let (first, counted) = match rx.recv().await {
            Next::Message(first) => (first, Counted::Yes),
            Next::Tick => match heartbeat(slot, id, &mut beat, life) {
                // One write path for pings and messages keeps this future (in every idle
                // connection) small.
                Beat::Ping => match slot.lst.ping.load().as_deref().cloned() {
                    Some(ping) => (ping, Counted::No),
                    None => continue,
                },
                Beat::Quiet => continue,
                Beat::Close => return Ending::Drop,
            },
            Next::GoingAway => return Ending::GoingAway,
            // The registry holds a sender until this task removes the client.
            Next::Ended => return Ending::Drop,
        };
        // Boxed: a batch's state is allocated while it is written, so an idle connection
        // does not carry it (one allocation per batch, next to the syscalls it makes).
        let batch = write_queue(slot, &life.traffic, writer, Some(first), counted, rx);
        match Box::pin(batch).await {
            Ok(Written::Open) => {}
            Ok(Written::Closing) => return Ending::Normal,
            Err(e) => {
                debug!(client = %id, error = %e, "write failed");
                return Ending::Drop;
            }
        }
    }
}

/// Counts a heartbeat interval that ended: what the client did in it decides the beat.
fn heartbeat(slot: &Slot, id: ClientId, beat: &mut Heartbeat, life: &Life) -> Beat {
    if life.active.swap(false, Ordering::Relaxed) || life.delivering.load(Ordering::Relaxed) {
        beat.activity();
    }
    let beat = beat
        .with_limit(slot.lst.config.load().ping_not_responding_limit)
        .tick();
    if beat == Beat::Close {
        debug!(client = %id, "silent too long: closing");
    }
    beat
}

fn event(slot: &Slot, ctx: Context, kind: EventKind) -> Event {
    Event {
        app: slot.lst.app.clone(),
        ctx,
        kind,
    }
}

/// Counts a message and hands it to the app with the client's current uid and session;
/// returns the wait if the app cannot take it at once.
fn deliver<'a>(
    slot: &'a Slot,
    id: ClientId,
    traffic: &Traffic,
    message: Message,
) -> Option<bus::Waiting<'a>> {
    let len = message.len() as u64;
    add(&slot.lst.counters.messages_in, 1);
    add(&slot.lst.counters.bytes_in, len);
    traffic.received(len, now_ms());
    let ctx = slot.registry().context(id)?;
    let event = event(slot, ctx, EventKind::Message(message));
    bus::deliver_event(&*slot.lst.workers, event)
}

/// Whether the connection stays open after a batch.
enum Written {
    Open,
    Closing,
}

/// Writes everything queued now (nothing more), stopping at a close marker.
async fn write_rest<W: WriteHalf>(
    slot: &Slot,
    traffic: &Traffic,
    writer: &mut W,
    rx: &mut send_queue::Receiver<Outgoing>,
) -> Result<Written, Failure> {
    let first = rx.try_recv();
    write_queue(slot, traffic, writer, first, Counted::Yes, rx).await
}

/// Whether the first message of a batch counts as traffic (a heartbeat ping does not).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Counted {
    Yes,
    No,
}

/// Writes `first` and everything queued behind it with one flush, stopping at a close marker.
async fn write_queue<W: WriteHalf>(
    slot: &Slot,
    traffic: &Traffic,
    writer: &mut W,
    first: Option<Outgoing>,
    counted: Counted,
    rx: &mut send_queue::Receiver<Outgoing>,
) -> Result<Written, Failure> {
    // Bounded, so producers on other threads cannot keep this loop from flushing.
    let most = rx.capacity();
    let (mut messages, mut bytes) = (0u64, 0u64);
    let batch = async {
        let mut next = first;
        let mut count = counted == Counted::Yes;
        while let Some(out) = next.take() {
            if let Outgoing::Close = out {
                writer.flush().await?;
                return Ok(Written::Closing);
            }
            if std::mem::replace(&mut count, true) {
                messages += 1;
                bytes += out.len() as u64;
            }
            writer.feed(out).await?;
            if messages < most as u64 {
                next = rx.try_recv();
            }
        }
        writer.flush().await?;
        Ok(Written::Open)
    };
    let written = batch.await;
    let counters = &slot.lst.counters;
    add(&counters.messages_out, messages);
    add(&counters.bytes_out, bytes);
    traffic.sent(bytes);
    written
}
