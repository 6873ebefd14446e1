//! The gateway with real sockets: a recording `Workers` and plain TCP or WebSocket clients.

use std::sync::{Arc, OnceLock, Weak};
use std::time::Duration;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use super::*;
use crate::bus::{
    Bound, ClientFilter, Event, EventKind, Gateways, Group, Handshake, Message, Rejection, Target,
    Uid, Workers,
};

/// Generous bound for anything a test waits for.
const WAIT: Duration = Duration::from_secs(5);

/// The app the test listeners serve.
const APP: &str = "test";

/// Records every event and handshake; refuses handshakes whose path is `/reject`.
///
/// Two behaviours make it a real app's stand-in: while `open` is false, message events wait
/// (an app slower than its clients), and a handshake whose query says `act` binds, groups
/// and greets the client through the gateway before its verdict, as apps do in
/// on-websocket-connect.
struct Recorder {
    events: mpsc::UnboundedSender<Event>,
    handshakes: mpsc::UnboundedSender<Handshake>,
    open: watch::Receiver<bool>,
    /// What the app was asked, in order: "connect", "websocket-connect", "message", "close".
    log: Arc<Mutex<Vec<&'static str>>>,
    gw: OnceLock<Weak<Gateway>>,
}

#[async_trait]
impl Workers for Recorder {
    async fn event(&self, event: Event) {
        let waits = matches!(event.kind, EventKind::Message(_));
        let name = match event.kind {
            EventKind::Connect => "connect",
            EventKind::Message(_) => "message",
            EventKind::Close(_) => "close",
        };
        lock(&self.log).push(name);
        let _ = self.events.send(event);
        if waits {
            let _ = self.open.clone().wait_for(|open| *open).await;
        }
    }

    fn serves(&self, _app: &str) -> bool {
        true
    }

    async fn handshake(&self, handshake: Handshake) -> Result<(), Rejection> {
        lock(&self.log).push("websocket-connect");
        let reject = handshake.request.path == "/reject";
        if handshake.request.query == "act"
            && let Some(gw) = self.gw.get().and_then(Weak::upgrade)
        {
            let client = handshake.ctx.client;
            let online = gw.query(APP, Query::IsOnline(client)).await;
            let greeting = format!("hello; online: {online:?}");
            for command in [
                Command::BindUid {
                    client,
                    uid: Uid::new("u").expect("uid"),
                },
                Command::JoinGroup {
                    client,
                    group: Group::new("g").expect("group"),
                },
                Command::Send {
                    to: Target::Client(client),
                    message: Message::text(&*greeting),
                    without: vec![],
                },
            ] {
                gw.command(APP, command).await.expect("applies");
            }
        }
        let _ = self.handshakes.send(handshake);
        match reject {
            true => Err(Rejection {
                status: 401,
                reason: "no entry".into(),
            }),
            false => Ok(()),
        }
    }
}

struct Harness {
    gw: Arc<Gateway>,
    addr: SocketAddr,
    events: mpsc::UnboundedReceiver<Event>,
    handshakes: mpsc::UnboundedReceiver<Handshake>,
    /// Opens and closes the app: while false, its message events wait.
    open: watch::Sender<bool>,
    log: Arc<Mutex<Vec<&'static str>>>,
}

fn config(protocol: Protocol) -> ListenerConfig {
    ListenerConfig {
        addr: "127.0.0.1:0".parse().expect("addr"),
        protocol,
        app: APP.into(),
        ping_interval_ms: 0,
        ping_not_responding_limit: 0,
        ping_data: String::new(),
        max_message_bytes: 1024,
        max_connections: 100,
        send_queue: 16,
        write_timeout_ms: 30_000,
        tls_cert: None,
        tls_key: None,
        static_dir: None,
        max_connections_per_ip: 0,
        handshake_timeout_ms: 10_000,
        max_messages_per_second: 0,
        throttle: crate::config::Throttle::Drop,
    }
}

async fn start(config: ListenerConfig) -> Harness {
    let gw = Gateway::new(GatewayId::new(0x1234).expect("non-zero"));
    let listeners = gw.bind(&[config]).await.expect("binds");
    let addr = listeners[0].local_addr();
    let (events_tx, events) = mpsc::unbounded_channel();
    let (handshakes_tx, handshakes) = mpsc::unbounded_channel();
    let (open, open_rx) = watch::channel(true);
    let log = Arc::new(Mutex::new(Vec::new()));
    let workers = Arc::new(Recorder {
        events: events_tx,
        handshakes: handshakes_tx,
        open: open_rx,
        log: log.clone(),
        gw: OnceLock::new(),
    });
    let _ = workers.gw.set(Arc::downgrade(&gw));
    gw.serve(listeners, workers);
    Harness {
        gw,
        addr,
        events,
        handshakes,
        open,
        log,
    }
}

impl Harness {
    async fn event(&mut self) -> Event {
        tokio::time::timeout(WAIT, self.events.recv())
            .await
            .expect("an event in time")
            .expect("recorder alive")
    }

    /// Connects a TCP client and waits for its `Connect`.
    async fn tcp(&mut self) -> (TcpStream, ClientId) {
        let stream = TcpStream::connect(self.addr).await.expect("connects");
        let event = self.event().await;
        assert_eq!(event.kind, EventKind::Connect);
        assert_eq!(&*event.app, APP);
        (stream, event.ctx.client)
    }

    async fn message(&mut self) -> Message {
        match self.event().await.kind {
            EventKind::Message(m) => m,
            other => panic!("expected a message, got {other:?}"),
        }
    }

    async fn closed(&mut self, client: ClientId) -> Bound {
        let event = self.event().await;
        assert_eq!(event.ctx.client, client);
        // Removal comes first: by the time on-close runs the client is offline.
        assert_eq!(
            self.query(Query::IsOnline(client)).await,
            Reply::Bool(false)
        );
        match event.kind {
            EventKind::Close(bound) => bound,
            other => panic!("expected a close, got {other:?}"),
        }
    }

    async fn send(&self, to: Target, message: Message) {
        let send = Command::Send {
            to,
            message,
            without: vec![],
        };
        self.gw.command(APP, send).await.expect("applies");
    }

    async fn query(&self, query: Query) -> Reply {
        self.gw.query(APP, query).await.expect("answers")
    }
}

/// Reads until EOF (or reset), within the wait bound.
async fn read_to_end(stream: &mut TcpStream) -> Vec<u8> {
    let mut out = Vec::new();
    let read = tokio::time::timeout(WAIT, async {
        let mut buf = [0u8; 1024];
        while let Ok(n @ 1..) = stream.read(&mut buf).await {
            out.extend_from_slice(&buf[..n]);
        }
    });
    read.await.expect("closed in time");
    out
}

#[tokio::test]
async fn text_lines_are_byte_exact_both_ways() {
    let mut h = start(config(Protocol::Text)).await;
    let (mut client, id) = h.tcp().await;
    client
        .write_all(b"hello\r\n\xff\xfe\n\nrest")
        .await
        .expect("writes");
    assert_eq!(h.message().await, Message::text("hello\r"));
    assert_eq!(h.message().await, Message::binary(&b"\xff\xfe"[..]));
    assert_eq!(h.message().await, Message::text(""));

    h.send(Target::Client(id), Message::text("out\r")).await;
    h.send(Target::All, Message::binary(&b"\x00\xff"[..])).await;
    let mut buf = [0u8; 8];
    client.read_exact(&mut buf).await.expect("reads");
    assert_eq!(&buf, b"out\r\n\x00\xff\n");

    drop(client);
    assert_eq!(
        h.closed(id).await,
        Bound::default(),
        "the partial line is discarded"
    );
    let stats = h.gw.stats();
    assert_eq!(stats.listeners[0].messages_in, 3);
    assert_eq!(stats.listeners[0].bytes_in, 8);
    assert_eq!(stats.listeners[0].messages_out, 2);
    assert_eq!(stats.listeners[0].clients, 0);
}

#[tokio::test]
async fn frames_round_trip() {
    let mut h = start(config(Protocol::Frame)).await;
    let (mut client, id) = h.tcp().await;
    client
        .write_all(b"\x00\x00\x00\x03a\nb\x00\x00\x00\x00\x00\x00")
        .await
        .expect("writes");
    assert_eq!(h.message().await, Message::binary(&b"a\nb"[..]));
    assert_eq!(h.message().await, Message::binary(Bytes::new()));
    h.send(Target::Client(id), Message::text("hi")).await;
    let mut buf = [0u8; 6];
    client.read_exact(&mut buf).await.expect("reads");
    assert_eq!(&buf, b"\x00\x00\x00\x02hi");
}

#[tokio::test]
async fn oversized_tcp_messages_close_the_client() {
    let mut h = start(ListenerConfig {
        max_message_bytes: 8,
        ..config(Protocol::Text)
    })
    .await;
    let (mut client, id) = h.tcp().await;
    client
        .write_all(b"12345678\n123456789")
        .await
        .expect("writes");
    assert_eq!(h.message().await, Message::text("12345678"));
    h.closed(id).await;
    assert_eq!(read_to_end(&mut client).await, b"");
}

#[tokio::test]
async fn a_full_send_queue_closes_only_that_client() {
    let mut h = start(ListenerConfig {
        send_queue: 2,
        ..config(Protocol::Text)
    })
    .await;
    let (_slow, slow) = h.tcp().await;
    let (mut other, fine) = h.tcp().await;
    // A current-thread runtime: the connection tasks cannot drain between these sends.
    for _ in 0..5 {
        h.send(Target::Client(slow), Message::text("x")).await;
    }
    h.send(Target::Client(fine), Message::text("ok")).await;
    h.closed(slow).await;
    let mut buf = [0u8; 3];
    other.read_exact(&mut buf).await.expect("reads");
    assert_eq!(&buf, b"ok\n");
    assert_eq!(h.query(Query::IsOnline(fine)).await, Reply::Bool(true));
    assert_eq!(h.gw.stats().listeners[0].send_queue_drops, 1);
}

#[tokio::test]
async fn a_clean_close_flushes_what_was_queued_first() {
    let mut h = start(config(Protocol::Text)).await;
    let (mut client, id) = h.tcp().await;
    let uid = Uid::new("u").expect("uid");
    let group = Group::new("g").expect("group");
    let commands = [
        Command::BindUid {
            client: id,
            uid: uid.clone(),
        },
        Command::JoinGroup {
            client: id,
            group: group.clone(),
        },
        Command::Send {
            to: Target::Group(group.clone()),
            message: Message::text("1"),
            without: vec![],
        },
        Command::Send {
            to: Target::Uid(uid.clone()),
            message: Message::text("2"),
            without: vec![],
        },
        Command::Close {
            client: id,
            force: false,
        },
        Command::Send {
            to: Target::Client(id),
            message: Message::text("after"),
            without: vec![],
        },
    ];
    for command in commands {
        h.gw.command(APP, command).await.expect("applies");
    }
    assert_eq!(read_to_end(&mut client).await, b"1\n2\n");
    let bound = h.closed(id).await;
    assert_eq!(
        bound,
        Bound {
            uid: Some(uid),
            groups: vec![group]
        }
    );
    assert_eq!(
        h.query(Query::ClientCount(ClientFilter::All)).await,
        Reply::Count(0)
    );
}

#[tokio::test]
async fn a_forced_close_drops_at_once() {
    let mut h = start(config(Protocol::Text)).await;
    let (mut client, id) = h.tcp().await;
    // Queued, then the forced close, with no await between: the task sees both at once.
    // A clean close would write "queued" first; a forced one drops it with the connection.
    h.send(Target::Client(id), Message::text("queued")).await;
    h.gw.command(
        APP,
        Command::Close {
            client: id,
            force: true,
        },
    )
    .await
    .expect("applies");
    h.closed(id).await;
    assert_eq!(read_to_end(&mut client).await, b"", "nothing written");
    // Commands about a client that is gone are no-ops.
    h.gw.command(
        APP,
        Command::Close {
            client: id,
            force: false,
        },
    )
    .await
    .expect("no-op");
    h.send(Target::Client(id), Message::text("x")).await;
}

#[tokio::test(start_paused = true)]
async fn the_heartbeat_pings_and_closes_a_silent_client() {
    let mut h = start(ListenerConfig {
        ping_interval_ms: 40,
        ping_not_responding_limit: 3,
        ping_data: "ping".into(),
        ..config(Protocol::Text)
    })
    .await;
    let (mut client, id) = h.tcp().await;
    let started = tokio::time::Instant::now();
    let received = read_to_end(&mut client).await;
    h.closed(id).await;
    // The first period counts as active (it connected), the next two are silent and pinged,
    // the third silent one closes it.
    assert_eq!(received, b"ping\nping\n");
    assert_eq!(started.elapsed(), Duration::from_millis(160));
}

#[tokio::test(start_paused = true)]
async fn an_active_client_outlives_the_heartbeat_and_is_not_pinged() {
    let mut h = start(ListenerConfig {
        ping_interval_ms: 30,
        ping_not_responding_limit: 1,
        ping_data: "ping".into(),
        ..config(Protocol::Text)
    })
    .await;
    let (mut client, id) = h.tcp().await;
    for _ in 0..8 {
        client.write_all(b"x").await.expect("writes");
        tokio::time::sleep(Duration::from_millis(15)).await;
    }
    assert_eq!(h.query(Query::IsOnline(id)).await, Reply::Bool(true));
    let mut buf = [0u8; 16];
    assert!(
        tokio::time::timeout(Duration::from_millis(1), client.read(&mut buf))
            .await
            .is_err(),
        "a client that talks every period is not pinged"
    );
}

/// A client socket with small kernel buffers, so a few hundred KiB fill the pipe.
async fn small_buffered(addr: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().expect("socket");
    socket.set_recv_buffer_size(4096).expect("rcvbuf");
    socket.set_send_buffer_size(4096).expect("sndbuf");
    socket.connect(addr).await.expect("connects")
}

/// A WebSocket client with small socket buffers that sends its upgrade request and never
/// reads a byte.
async fn deaf_websocket(addr: SocketAddr) -> TcpStream {
    let mut deaf = small_buffered(addr).await;
    let request = "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
        Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
    deaf.write_all(request.as_bytes()).await.expect("writes");
    deaf
}

#[tokio::test]
async fn a_busy_app_slows_reading_from_its_client_while_writes_continue() {
    let mut h = start(config(Protocol::Text)).await;
    h.open.send_replace(false);
    let mut client = small_buffered(h.addr).await;
    let id = h.event().await.ctx.client;
    let line = [b"x".repeat(999), b"\n".to_vec()].concat();
    client.write_all(&line).await.expect("writes");
    assert_eq!(h.message().await.len(), 999, "the app is now busy with it");

    // The client writes until its socket takes no more: the server stopped reading.
    let mut written = 0usize;
    loop {
        client.writable().await.expect("writable");
        match client.try_write(&line[written % line.len()..]) {
            Ok(n) => written += n,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
            Err(e) => panic!("write failed: {e}"),
        }
    }
    assert_eq!(h.gw.stats().listeners[0].messages_in, 1, "reads stopped");
    // Writes go on while the app is busy.
    for n in 0..3 {
        h.send(Target::Client(id), Message::text(n.to_string()))
            .await;
        let mut buf = [0u8; 2];
        tokio::time::timeout(WAIT, client.read_exact(&mut buf))
            .await
            .expect("written while the app is busy")
            .expect("reads");
        assert_eq!(buf, [b'0' + n, b'\n']);
    }
    // Once the app is free, every whole line arrives.
    h.open.send_replace(true);
    for _ in 0..written / line.len() {
        assert_eq!(h.message().await.len(), 999);
    }
    assert_eq!(h.query(Query::IsOnline(id)).await, Reply::Bool(true));
}

#[tokio::test]
async fn a_busy_app_never_makes_its_client_drop_for_a_full_queue() {
    let mut h = start(ListenerConfig {
        send_queue: 2,
        ..config(Protocol::Text)
    })
    .await;
    h.open.send_replace(false);
    let (mut client, id) = h.tcp().await;
    client.write_all(b"busy\n").await.expect("writes");
    h.message().await;
    // More messages than the queue holds, each read by the client as it comes.
    for n in 0..10u8 {
        h.send(Target::Client(id), Message::text((n % 10).to_string()))
            .await;
        let mut buf = [0u8; 2];
        tokio::time::timeout(WAIT, client.read_exact(&mut buf))
            .await
            .expect("written in time")
            .expect("reads");
        assert_eq!(buf, [b'0' + n, b'\n']);
    }
    assert_eq!(h.query(Query::IsOnline(id)).await, Reply::Bool(true));
    assert_eq!(h.gw.stats().listeners[0].send_queue_drops, 0);
    h.open.send_replace(true);
}

/// Sends `n` messages of 64 KiB to a client that does not read them.
async fn flood(h: &Harness, id: ClientId, n: usize) {
    let big = Message::binary(vec![0u8; 64 * 1024]);
    for _ in 0..n {
        h.send(Target::Client(id), big.clone()).await;
        // Lets the writer take from the queue, so the queue never fills.
        tokio::task::yield_now().await;
    }
}

#[tokio::test]
async fn a_client_that_stops_reading_is_closed_at_the_write_deadline() {
    let mut h = start(ListenerConfig {
        write_timeout_ms: 200,
        send_queue: 1024,
        ..config(Protocol::Frame)
    })
    .await;
    let _deaf = small_buffered(h.addr).await;
    let id = h.event().await.ctx.client;
    let started = tokio::time::Instant::now();
    flood(&h, id, 64).await;
    h.closed(id).await;
    assert!(started.elapsed() >= Duration::from_millis(200));
    assert_eq!(
        h.gw.stats().listeners[0].send_queue_drops,
        0,
        "closed by the write deadline, not by a full queue"
    );
}

#[tokio::test]
async fn shutdown_ends_a_client_that_does_not_read() {
    let mut h = start(ListenerConfig {
        send_queue: 1024,
        ..config(Protocol::WebSocket)
    })
    .await;
    let _deaf = deaf_websocket(h.addr).await;
    let id = h.event().await.ctx.client;
    flood(&h, id, 64).await;
    // Its writer is stuck on a full socket with a 30 s deadline; shutdown does not wait that.
    let gw = h.gw.clone();
    tokio::time::timeout(WAIT, gw.shutdown(Duration::from_secs(60)))
        .await
        .expect("shutdown ended the client in time");
    h.closed(id).await;
}

#[tokio::test]
async fn on_websocket_connect_acts_on_an_online_client() {
    let mut h = start(config(Protocol::WebSocket)).await;
    let url = format!("ws://{}/?act", h.addr);
    let (mut ws, _) = tokio_tungstenite::connect_async(url)
        .await
        .expect("upgrades");
    // Sent before the verdict, written after the 101.
    assert_eq!(
        ws.next().await.and_then(Result::ok),
        Some(WsMessage::text("hello; online: Ok(Bool(true))"))
    );
    let handshake = h.handshakes.recv().await.expect("asked");
    let id = handshake.ctx.client;
    assert_eq!(h.event().await.kind, EventKind::Connect);
    assert_eq!(*lock(&h.log), ["connect", "websocket-connect"]);
    let uid = Uid::new("u").expect("uid");
    assert_eq!(
        h.query(Query::IsUidOnline(uid.clone())).await,
        Reply::Bool(true)
    );
    h.send(
        Target::Group(Group::new("g").expect("group")),
        Message::text("g"),
    )
    .await;
    assert_eq!(
        ws.next().await.and_then(Result::ok),
        Some(WsMessage::text("g"))
    );
    drop(ws);
    let bound = h.closed(id).await;
    assert_eq!(bound.uid, Some(uid));
}

#[tokio::test]
async fn a_rejected_handshake_undoes_what_it_did() {
    let mut h = start(config(Protocol::WebSocket)).await;
    let url = format!("ws://{}/reject?act", h.addr);
    match tokio_tungstenite::connect_async(url).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status().as_u16(), 401);
            assert_eq!(response.body().as_deref(), Some(&b"no entry"[..]));
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    let handshake = h.handshakes.recv().await.expect("asked");
    assert_eq!(h.event().await.kind, EventKind::Connect);
    assert_eq!(
        h.query(Query::IsOnline(handshake.ctx.client)).await,
        Reply::Bool(false)
    );
    assert_eq!(
        h.query(Query::IsUidOnline(Uid::new("u").expect("uid")))
            .await,
        Reply::Bool(false)
    );
    assert_eq!(
        h.query(Query::ClientCount(ClientFilter::Group(
            Group::new("g").expect("group")
        )))
        .await,
        Reply::Count(0)
    );
    assert_eq!(h.gw.stats().listeners[0].clients, 0);
    assert!(
        h.events.try_recv().is_err(),
        "no close for a refused client"
    );
    assert_eq!(*lock(&h.log), ["connect", "websocket-connect"]);
}

#[tokio::test]
async fn websocket_clients_are_asked_for_and_served() {
    let mut h = start(config(Protocol::WebSocket)).await;
    let url = format!("ws://{}/chat?room=1", h.addr);
    let (mut ws, _) = tokio_tungstenite::connect_async(url)
        .await
        .expect("upgrades");
    let handshake = h.handshakes.recv().await.expect("asked");
    assert_eq!(
        (
            handshake.request.path.as_str(),
            handshake.request.query.as_str()
        ),
        ("/chat", "room=1")
    );
    assert!(
        handshake
            .request
            .headers
            .iter()
            .any(|(n, _)| n == "sec-websocket-key")
    );
    let connect = h.event().await;
    assert_eq!(connect.kind, EventKind::Connect);
    assert_eq!(
        connect.ctx.client, handshake.ctx.client,
        "the id promised at the handshake"
    );
    let id = connect.ctx.client;

    ws.send(WsMessage::text("hé")).await.expect("sends");
    ws.send(WsMessage::binary(&b"\x00"[..]))
        .await
        .expect("sends");
    assert_eq!(h.message().await, Message::text("hé"));
    assert_eq!(h.message().await, Message::binary(&b"\x00"[..]));

    h.send(Target::All, Message::text("to all")).await;
    h.send(Target::Client(id), Message::binary(&b"\x01"[..]))
        .await;
    h.gw.command(
        APP,
        Command::Close {
            client: id,
            force: false,
        },
    )
    .await
    .expect("applies");
    assert_eq!(
        ws.next().await.and_then(Result::ok),
        Some(WsMessage::text("to all"))
    );
    assert_eq!(
        ws.next().await.and_then(Result::ok),
        Some(WsMessage::binary(&b"\x01"[..]))
    );
    match ws.next().await.and_then(Result::ok) {
        Some(WsMessage::Close(Some(frame))) => assert_eq!(frame.code, CloseCode::Normal),
        other => panic!("expected a close frame, got {other:?}"),
    }
    h.closed(id).await;
}

#[tokio::test]
async fn a_websocket_client_closing_first_is_answered_and_reported() {
    let mut h = start(config(Protocol::WebSocket)).await;
    let url = format!("ws://{}/", h.addr);
    let (mut ws, _) = tokio_tungstenite::connect_async(url)
        .await
        .expect("upgrades");
    let id = h.event().await.ctx.client;
    ws.close(None).await.expect("sends the close");
    assert!(
        matches!(ws.next().await, Some(Ok(WsMessage::Close(_)))),
        "answered"
    );
    h.closed(id).await;
}

#[tokio::test]
async fn a_rejected_websocket_handshake_gets_the_apps_status() {
    let mut h = start(config(Protocol::WebSocket)).await;
    let url = format!("ws://{}/reject", h.addr);
    match tokio_tungstenite::connect_async(url).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status().as_u16(), 401);
            assert_eq!(response.body().as_deref(), Some(&b"no entry"[..]));
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert!(h.handshakes.recv().await.is_some());
    assert_eq!(
        h.query(Query::ClientCount(ClientFilter::All)).await,
        Reply::Count(0)
    );
}

#[tokio::test]
async fn oversized_websocket_messages_get_1009() {
    let mut h = start(ListenerConfig {
        max_message_bytes: 8,
        ..config(Protocol::WebSocket)
    })
    .await;
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{}/", h.addr))
        .await
        .expect("upgrades");
    let id = h.event().await.ctx.client;
    ws.send(WsMessage::text("123456789")).await.expect("sends");
    match ws.next().await.and_then(Result::ok) {
        Some(WsMessage::Close(Some(frame))) => assert_eq!(frame.code, CloseCode::Size),
        other => panic!("expected a close frame, got {other:?}"),
    }
    h.closed(id).await;
}

#[tokio::test]
async fn a_full_listener_refuses_connections() {
    let mut h = start(ListenerConfig {
        max_connections: 1,
        ..config(Protocol::WebSocket)
    })
    .await;
    let (_first, _) = tokio_tungstenite::connect_async(format!("ws://{}/", h.addr))
        .await
        .expect("upgrades");
    h.event().await;
    match tokio_tungstenite::connect_async(format!("ws://{}/", h.addr)).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status().as_u16(), 503)
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert_eq!(h.gw.stats().listeners[0].refused, 1);
}

#[tokio::test]
async fn shutdown_closes_everyone_and_reports_each_close() {
    let mut h = start(config(Protocol::WebSocket)).await;
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{}/", h.addr))
        .await
        .expect("upgrades");
    let id = h.event().await.ctx.client;
    h.send(Target::Client(id), Message::text("last")).await;
    let gw = h.gw.clone();
    let shutdown = tokio::spawn(async move { gw.shutdown(WAIT).await });
    assert_eq!(
        ws.next().await.and_then(Result::ok),
        Some(WsMessage::text("last"))
    );
    match ws.next().await.and_then(Result::ok) {
        Some(WsMessage::Close(Some(frame))) => assert_eq!(frame.code, CloseCode::Away),
        other => panic!("expected a close frame, got {other:?}"),
    }
    drop(ws);
    h.closed(id).await;
    tokio::time::timeout(WAIT, shutdown)
        .await
        .expect("in time")
        .expect("no panic");
    assert!(
        TcpStream::connect(h.addr).await.is_err(),
        "no longer accepting"
    );
}

#[tokio::test]
async fn binding_a_used_address_names_it() {
    let h = start(config(Protocol::Text)).await;
    let taken = ListenerConfig {
        addr: h.addr,
        ..config(Protocol::Text)
    };
    let err =
        h.gw.bind(&[config(Protocol::Text), taken])
            .await
            .expect_err("in use");
    assert_eq!(
        err.to_string(),
        format!("cannot listen on {}: address in use", h.addr)
    );
}

#[tokio::test(start_paused = true)]
async fn a_reloaded_heartbeat_applies_to_connected_clients() {
    let mut h = start(config(Protocol::Text)).await;
    let (mut client, id) = h.tcp().await;
    let configured = config(Protocol::Text);

    // Off -> on, with a ping message: the client connected before gets it.
    let on = ListenerConfig {
        ping_interval_ms: 50,
        ping_data: "hb".into(),
        ..configured.clone()
    };
    assert_eq!(
        h.gw.reconfigure(std::slice::from_ref(&on)),
        [
            "listener[0] 127.0.0.1:0: ping_interval_ms 0 -> 50 (heartbeat on)",
            "listener[0] 127.0.0.1:0: ping_data \"\" -> \"hb\"",
        ]
    );
    let started = tokio::time::Instant::now();
    let mut buf = [0u8; 6];
    tokio::time::timeout(WAIT, client.read_exact(&mut buf))
        .await
        .expect("pinged in time")
        .expect("reads");
    assert_eq!(&buf, b"hb\nhb\n");
    assert_eq!(
        started.elapsed(),
        Duration::from_millis(150),
        "a quiet first period, then two pings"
    );

    // On -> off: the pings stop (after any already on the way).
    assert_eq!(h.gw.reconfigure(std::slice::from_ref(&configured)).len(), 2);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut drain = [0u8; 64];
    while let Ok(Ok(n)) =
        tokio::time::timeout(Duration::from_millis(10), client.read(&mut drain)).await
    {
        assert!(n > 0, "still open");
    }
    assert!(
        tokio::time::timeout(Duration::from_millis(300), client.read(&mut drain))
            .await
            .is_err(),
        "no pings while the heartbeat is off"
    );

    // A silence limit set live closes the silent client.
    let strict = ListenerConfig {
        ping_interval_ms: 50,
        ping_not_responding_limit: 1,
        ..configured.clone()
    };
    assert_eq!(h.gw.reconfigure(&[strict]).len(), 2);
    h.closed(id).await;
    assert_eq!(read_to_end(&mut client).await, b"");

    // Nothing changed: nothing to say; another app: a restart.
    let again = ListenerConfig {
        ping_interval_ms: 50,
        ping_not_responding_limit: 1,
        ..configured.clone()
    };
    assert!(h.gw.reconfigure(&[again]).is_empty());
    let other = ListenerConfig {
        app: "other".into(),
        ..configured
    };
    assert_eq!(
        h.gw.reconfigure(&[other]),
        ["listener[0] 127.0.0.1:0: address/protocol/app changes need a restart"]
    );
}

#[tokio::test]
async fn a_websocket_client_that_stops_reading_is_closed_at_the_write_deadline() {
    let mut h = start(ListenerConfig {
        send_queue: 1024,
        write_timeout_ms: 200,
        ..config(Protocol::WebSocket)
    })
    .await;
    let _deaf = deaf_websocket(h.addr).await;
    let id = h.event().await.ctx.client;
    flood(&h, id, 128).await;
    h.closed(id).await;
    assert_eq!(h.gw.stats().listeners[0].send_queue_drops, 0);
}
