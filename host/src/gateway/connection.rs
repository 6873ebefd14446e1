//! One task per connection: it owns the socket, reads messages into events, writes the send
//! queue in batches, runs the heartbeat and, at the end, reports the client gone.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::sync::watch;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::Role;
use tracing::debug;

use super::codec::{FrameCodec, LineCodec};
use super::handshake::{self, HeadError};
use super::heartbeat::{Beat, Heartbeat};
use super::listener::{Slot, add};
use super::registry::Entry;
use super::transport::{Ending, Failure, Incoming, Outgoing, TcpTransport, Transport, WsTransport};
use super::{ClientHandle, Kill, KillReason, now_ms};
use crate::bus::{ClientId, Context, Event, EventKind, Handshake, Message, Protocol, Session};

/// Serves one accepted socket until it closes.
pub(super) async fn serve(slot: Slot, stream: TcpStream, remote: SocketAddr) {
    let Some(id) = slot.gw.next_client_id() else {
        tracing::error!("client id sequence exhausted; refusing connections");
        return;
    };
    // Messages are batched into one flush already; Nagle would only add latency.
    if let Err(e) = stream.set_nodelay(true) {
        debug!(client = %id, error = %e, "cannot set TCP_NODELAY");
    }
    // The codecs' and tungstenite's limits are fixed per connection: a changed
    // `max_message_bytes` applies to connections made after the change.
    let max = slot.lst.config.load().max_message_bytes;
    match slot.lst.protocol {
        Protocol::WebSocket => {
            // Boxed: the handshake's state lives on the heap only while it runs, instead of
            // enlarging every connection task for its whole life.
            let opening = Box::pin(open_websocket(&slot, id, remote, stream));
            let ws = tokio::select! {
                () = slot.gw.shutdown.cancelled() => None,
                ws = opening => ws,
            };
            if let Some(ws) = ws {
                run(&slot, id, remote, WsTransport::new(ws)).await;
            }
        }
        Protocol::Text => {
            run(
                &slot,
                id,
                remote,
                TcpTransport::new(stream, LineCodec::new(max)),
            )
            .await
        }
        Protocol::Frame => {
            run(
                &slot,
                id,
                remote,
                TcpTransport::new(stream, FrameCodec::new(max)),
            )
            .await
        }
    }
}

/// Reads the upgrade request, asks the app, and answers; `None` if the client is refused.
async fn open_websocket(
    slot: &Slot,
    id: ClientId,
    remote: SocketAddr,
    mut stream: TcpStream,
) -> Option<WebSocketStream<TcpStream>> {
    let upgrade = match tokio::time::timeout(
        handshake::HEAD_TIMEOUT,
        handshake::read_upgrade(&mut stream),
    )
    .await
    {
        Ok(Ok(upgrade)) => upgrade,
        Ok(Err(HeadError::Bad(bad))) => {
            debug!(client = %id, %remote, error = %bad, "bad WebSocket handshake");
            handshake::refuse(stream, &bad.response()).await;
            return None;
        }
        Ok(Err(HeadError::Io(e))) => {
            debug!(client = %id, %remote, error = %e, "connection lost during handshake");
            return None;
        }
        Err(_) => {
            debug!(client = %id, %remote, "no WebSocket handshake in time");
            return None;
        }
    };
    let lst = &slot.lst;
    let verdict = lst
        .workers
        .handshake(Handshake {
            app: lst.app.clone(),
            ctx: Context {
                client: id,
                remote_addr: remote,
                uid: None,
                session: Session::default(),
            },
            request: upgrade.request,
        })
        .await;
    if let Err(rejection) = verdict {
        debug!(client = %id, %remote, status = rejection.status, "handshake rejected by the app");
        let response = handshake::rejection_response(rejection.status, &rejection.reason);
        handshake::refuse(stream, &response).await;
        return None;
    }
    if let Err(e) = tokio::io::AsyncWriteExt::write_all(&mut stream, &upgrade.response).await {
        debug!(client = %id, %remote, error = %e, "connection lost during handshake");
        return None;
    }
    Some(
        WebSocketStream::from_partially_read(
            stream,
            upgrade.leftover,
            Role::Server,
            Some(lst.ws_config()),
        )
        .await,
    )
}

/// The connected life of a client: registered, served, then removed and reported.
async fn run<T: Transport>(slot: &Slot, id: ClientId, remote: SocketAddr, mut t: T) {
    let (gw, lst) = (&slot.gw, &slot.lst);
    // The queue's capacity is fixed here: a changed `send_queue` applies to new connections.
    let (tx, mut rx) = mpsc::channel(lst.config.load().send_queue);
    let kill = Arc::new(Kill::default());
    let handle = ClientHandle {
        tx,
        kill: kill.clone(),
    };
    let entry = Entry::new(lst.index, remote, lst.protocol, now_ms(), handle);
    slot.registry().insert(id, entry);
    add(&lst.counters.clients, 1);
    let ctx = Context {
        client: id,
        remote_addr: remote,
        uid: None,
        session: Session::default(),
    };
    lst.workers
        .event(event(slot, ctx, EventKind::Connect))
        .await;

    let mut heartbeat = Heartbeat::new(lst.config.load().ping_not_responding_limit);
    let mut ticks = lst.subscribe_ticks();
    let ending = loop {
        tokio::select! {
            // Kills first: a client that cannot keep up must not be served a little longer.
            biased;
            () = kill.notified() => break Ending::Drop,
            () = gw.shutdown.cancelled() => {
                let ending = match rx.try_recv() {
                    Ok(first) => match write_queue(slot, id, &mut t, first, &mut rx, &kill).await {
                        Ok(Written::Closing) => Ending::Normal,
                        Ok(Written::Open) => Ending::GoingAway,
                        Err(_) => Ending::Drop,
                    },
                    Err(_) => Ending::GoingAway,
                };
                break ending;
            }
            out = rx.recv() => {
                // The registry holds a sender until this task removes the client.
                let Some(first) = out else { break Ending::Drop };
                match write_queue(slot, id, &mut t, first, &mut rx, &kill).await {
                    Ok(Written::Open) => {}
                    Ok(Written::Closing) => break Ending::Normal,
                    Err(e) => {
                        debug!(client = %id, error = %e, "write failed");
                        break Ending::Drop;
                    }
                }
            }
            () = next_tick(&mut ticks) => match heartbeat
                .with_limit(lst.config.load().ping_not_responding_limit)
                .tick()
            {
                Beat::Close => {
                    debug!(client = %id, "silent too long: closing");
                    break Ending::Drop;
                }
                Beat::Ping => {
                    let ping = lst.ping.load().as_deref().cloned();
                    if let Some(ping) = ping
                        && let Err(e) = with_kill(&kill, send_now(&mut t, ping)).await
                    {
                        debug!(client = %id, error = %e, "ping failed");
                        break Ending::Drop;
                    }
                }
            },
            read = t.read() => match read {
                Ok(Incoming::Message(message)) => {
                    heartbeat.activity();
                    deliver(slot, id, message).await;
                }
                Ok(Incoming::Activity) => {
                    heartbeat.activity();
                    if let Some(entry) = slot.registry().get_mut(id) {
                        entry.last_active_ms = now_ms();
                    }
                }
                Ok(Incoming::Closed) => break Ending::PeerClosed,
                Err(Failure::TooLarge) => {
                    debug!(client = %id, max = lst.config.load().max_message_bytes, "message too large: closing");
                    break Ending::TooLarge;
                }
                Err(e) => {
                    debug!(client = %id, error = %e, "read failed");
                    break Ending::Drop;
                }
            },
        }
    };
    if kill.reason() == Some(KillReason::QueueFull) {
        debug!(client = %id, queue = lst.config.load().send_queue, "send queue full: client dropped");
        add(&lst.counters.send_queue_drops, 1);
    }
    // Removed before on-close runs, so queries from it already answer "offline".
    let removed = slot.registry().remove(id);
    lst.counters
        .clients
        .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    drop(rx);
    let report = async {
        if let Some(removed) = removed {
            let close = EventKind::Close(removed.bound);
            lst.workers.event(event(slot, removed.ctx, close)).await;
        }
    };
    tokio::join!(t.end(ending), report);
}

fn event(slot: &Slot, ctx: Context, kind: EventKind) -> Event {
    Event {
        app: slot.lst.app.clone(),
        ctx,
        kind,
    }
}

/// Counts a message and hands it to the app with the client's current uid and session.
async fn deliver(slot: &Slot, id: ClientId, message: Message) {
    let len = message.len() as u64;
    add(&slot.lst.counters.messages_in, 1);
    add(&slot.lst.counters.bytes_in, len);
    let ctx = {
        let mut registry = slot.registry();
        if let Some(entry) = registry.get_mut(id) {
            entry.last_active_ms = now_ms();
            entry.bytes_in += len;
        }
        registry.context(id)
    };
    if let Some(ctx) = ctx {
        // Awaiting here is the backpressure: this client is not read while its app is busy.
        slot.lst
            .workers
            .event(event(slot, ctx, EventKind::Message(message)))
            .await;
    }
}

/// Whether the connection stays open after a batch.
enum Written {
    Open,
    Closing,
}

/// Writes `first` and everything queued behind it with one flush, stopping at a close marker.
async fn write_queue<T: Transport>(
    slot: &Slot,
    id: ClientId,
    t: &mut T,
    first: Outgoing,
    rx: &mut mpsc::Receiver<Outgoing>,
    kill: &Kill,
) -> Result<Written, Failure> {
    // Bounded, so producers on other threads cannot keep this loop from flushing.
    let most = slot.lst.config.load().send_queue;
    let (mut messages, mut bytes) = (0u64, 0u64);
    let batch = async {
        let mut next = Some(first);
        while let Some(out) = next.take() {
            if let Outgoing::Close = out {
                t.flush().await?;
                return Ok(Written::Closing);
            }
            messages += 1;
            bytes += out.len() as u64;
            t.feed(out).await?;
            if messages < most as u64 {
                next = rx.try_recv().ok();
            }
        }
        t.flush().await?;
        Ok(Written::Open)
    };
    let written = with_kill(kill, batch).await;
    let counters = &slot.lst.counters;
    add(&counters.messages_out, messages);
    add(&counters.bytes_out, bytes);
    if let Some(entry) = slot.registry().get_mut(id) {
        entry.bytes_out += bytes;
    }
    written
}

/// Writes one message now.
async fn send_now<T: Transport>(t: &mut T, out: Outgoing) -> Result<(), Failure> {
    t.feed(out).await?;
    t.flush().await
}

/// Runs a write unless the client is killed first: a client that stopped reading would
/// otherwise hold its task in the write forever.
async fn with_kill<R>(
    kill: &Kill,
    write: impl Future<Output = Result<R, Failure>>,
) -> Result<R, Failure> {
    tokio::select! {
        biased;
        () = kill.notified() => Err(Failure::Closed),
        r = write => r,
    }
}

/// Waits for the next heartbeat tick (none come while the heartbeat is off).
async fn next_tick(ticks: &mut watch::Receiver<u64>) {
    if ticks.changed().await.is_err() {
        std::future::pending::<()>().await;
    }
}
