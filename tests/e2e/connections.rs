//! One connection's life as a client sees it: the handshake's order of events, reading and
//! writing that do not wait for each other, the write deadline, and when pings are sent.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpSocket;
use tokio_tungstenite::tungstenite::Message;

use crate::support::clients::{Lines, Ws};
use crate::support::probe::Probe;
use crate::support::{Listener, Server, Setup};

#[tokio::test]
async fn on_websocket_connect_binds_joins_and_greets_an_online_client() {
    let server = Setup::one("websocket", "probe").start();
    let url = format!("{}?bind=ann&join=lobby&greet=welcome", server.url());
    let mut ann = Probe::connect(&url).await;
    // Sent before the verdict, written after the 101, ahead of every reply.
    assert_eq!(ann.other_text().await, "welcome");
    let mut other = Probe::connect(&server.url()).await;
    assert_eq!(
        other.ok("is-uid-online", json!({"uid": "ann"})).await,
        json!(true)
    );
    assert_eq!(
        other
            .ok(
                "get-client-list-by-group",
                json!({"group": "lobby", "limit": 10})
            )
            .await,
        json!([ann.id])
    );
}

#[tokio::test]
async fn a_rejected_handshake_undoes_its_binds_and_gets_no_on_close() {
    let server = Setup::one("websocket", "probe").start();
    let mut observer = Probe::connect(&server.url()).await;
    let id = observer.id.clone();
    observer
        .ok("join-group", json!({"client": id, "group": "observers"}))
        .await;

    let url = format!("{}?bind=eve&join=lobby&greet=hi&reject=401", server.url());
    match tokio_tungstenite::connect_async(url).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status().as_u16(), 401)
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert_eq!(
        observer.ok("is-uid-online", json!({"uid": "eve"})).await,
        json!(false)
    );
    assert_eq!(
        observer
            .ok("get-client-count-by-group", json!({"group": "lobby"}))
            .await,
        json!(0)
    );
    assert_eq!(observer.ok("get-client-count", json!({})).await, json!(1));
    // The next on-close the observers hear is that of a client closed after the refusal.
    let mut later = Probe::connect(&server.url()).await;
    let later_id = later.id.clone();
    later.ws().send_text("bye").await;
    observer
        .ok("close-client", json!({"client": later_id, "force": true}))
        .await;
    later.closed().await;
    assert_eq!(observer.notice().await["client"], json!(later_id));
}

/// A probe client with a small receive buffer that learns its id and then stops reading.
async fn deaf_probe(
    addr: std::net::SocketAddr,
) -> (
    tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>,
    String,
) {
    let socket = TcpSocket::new_v4().expect("socket");
    socket.set_recv_buffer_size(4096).expect("rcvbuf");
    let stream = socket.connect(addr).await.expect("connects");
    let (mut ws, _) = tokio_tungstenite::client_async(format!("ws://{addr}/"), stream)
        .await
        .expect("upgrades");
    let whoami = json!({"id": 1, "op": "whoami"}).to_string();
    ws.send(Message::text(whoami)).await.expect("sends");
    let reply = match ws.next().await {
        Some(Ok(Message::Text(text))) => text,
        other => panic!("expected the whoami reply, got {other:?}"),
    };
    let reply: serde_json::Value = serde_json::from_str(&reply).expect("JSON");
    let id = reply["ok"]["client"].as_str().expect("an id").to_owned();
    (ws, id)
}

#[tokio::test]
async fn a_client_that_stops_reading_is_closed_at_the_write_deadline() {
    // A queue that cannot fill: only the write deadline can close the deaf client.
    let server = Setup::default()
        .listener(
            Listener::new("websocket", "probe")
                .with("send_queue = 100000")
                .with("write_timeout_ms = 300"),
        )
        .start();
    let (mut deaf, deaf_id) = deaf_probe(server.addr()).await;
    let mut observer = Probe::connect(&server.url()).await;
    let id = observer.id.clone();
    observer
        .ok("join-group", json!({"client": id, "group": "observers"}))
        .await;
    observer
        .ok("join-group", json!({"client": deaf_id, "group": "g"}))
        .await;
    // 16 MiB: more than the kernel buffers in between (tcp_wmem allows 4 MiB) can hold.
    let payload = "p".repeat(16 * 1024);
    let mut sent = 0;
    let notice = loop {
        observer
            .ok("send-to-group", json!({"group": "g", "message": payload}))
            .await;
        sent += 1;
        if sent == 1024 {
            // The rest of the wait is for the deadline, told by the on-close notice.
            break observer.notice().await;
        }
    };
    assert_eq!(notice["event"], json!("close"));
    assert_eq!(notice["client"], json!(deaf_id));
    // The deaf client reads what the server managed to write, then the end.
    let mut read = 0usize;
    while let Some(Ok(message)) = deaf.next().await {
        read += usize::from(message.is_text());
    }
    assert!(
        read < 1024,
        "all {read} messages were written: the pipe never filled"
    );
}

#[tokio::test]
async fn shutdown_ends_a_client_that_does_not_read_within_the_stop_timeout() {
    // No heartbeat and a write deadline far away: only shutdown can end the deaf client, and
    // a stop that waited for it would take the whole minute of stop_timeout_ms.
    let setup = Setup::default().listener(
        Listener::new("websocket", "probe")
            .with("send_queue = 100000")
            .with("ping_interval_ms = 0")
            .with("write_timeout_ms = 3600000"),
    );
    let mut server = Server::start(&format!(
        "{}\n[run]\nstop_timeout_ms = 60000\n",
        setup.toml()
    ));
    let (_deaf, deaf_id) = deaf_probe(server.addr()).await;
    let mut observer = Probe::connect(&server.url()).await;
    observer
        .ok("join-group", json!({"client": deaf_id, "group": "g"}))
        .await;
    // 16 MiB: the deaf client's writer is stuck on a full socket after this.
    let payload = "p".repeat(16 * 1024);
    for _ in 0..1024 {
        observer
            .ok("send-to-group", json!({"group": "g", "message": payload}))
            .await;
    }
    let status = tokio::task::spawn_blocking(move || {
        let status = server.terminate();
        (status, server.log())
    })
    .await
    .expect("terminate");
    assert!(status.0.success(), "{:?}\n{}", status.0, status.1);
    assert!(
        !status
            .1
            .contains("still open after the shutdown grace period"),
        "shutdown waited for the deaf client:\n{}",
        status.1
    );
}

#[tokio::test]
async fn a_client_that_talks_every_period_is_never_pinged() {
    let server = Setup::default()
        .listener(
            Listener::new("text", "echo")
                .with("ping_interval_ms = 400")
                .with("ping_not_responding_limit = 2")
                .with("ping_data = \"ping\""),
        )
        .start();
    let mut talker = Lines::connect(server.addr()).await;
    let mut silent = Lines::connect(server.addr()).await;
    // The silent client is pinged at least once (then closed): the heartbeat is running.
    let pinged = tokio::spawn(async move { silent.recv().await });
    // Talking ten times a period leaves a wide margin for a busy machine.
    for i in 0..30 {
        talker.send(format!("t{i}").as_bytes()).await;
        assert_eq!(
            talker.recv().await.expect("echo"),
            format!("t{i}").as_bytes()
        );
        tokio::time::sleep(Duration::from_millis(40)).await;
    }
    assert_eq!(
        pinged.await.expect("silent client").as_deref(),
        Some(&b"ping"[..])
    );
}

/// A raw WebSocket connection, upgraded by hand so the test can send any bytes.
async fn raw_websocket(addr: std::net::SocketAddr) -> tokio::net::TcpStream {
    let mut stream = tokio::net::TcpStream::connect(addr)
        .await
        .expect("connects");
    let request = "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
        Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
    stream.write_all(request.as_bytes()).await.expect("writes");
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut byte = [0u8; 1];
        tokio::io::AsyncReadExt::read_exact(&mut stream, &mut byte)
            .await
            .expect("101");
        head.push(byte[0]);
    }
    assert!(head.starts_with(b"HTTP/1.1 101"), "upgraded");
    stream
}

/// A masked client frame: `first` is the FIN/RSV/opcode byte.
fn masked(first: u8, payload: &[u8]) -> Vec<u8> {
    assert!(payload.len() < 126);
    let mask = [1u8, 2, 3, 4];
    let mut frame = vec![first, 0x80 | payload.len() as u8];
    frame.extend_from_slice(&mask);
    frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    frame
}

/// The client side of a raw connection, for reading what the server sends.
async fn client_of(stream: tokio::net::TcpStream) -> Ws {
    Ws::from(
        tokio_tungstenite::WebSocketStream::from_raw_socket(
            tokio_tungstenite::MaybeTlsStream::Plain(stream),
            tokio_tungstenite::tungstenite::protocol::Role::Client,
            None,
        )
        .await,
    )
}

#[tokio::test]
async fn a_message_before_a_protocol_error_is_answered_before_the_1002_close() {
    let server = Setup::one("websocket", "echo").start();
    let mut stream = raw_websocket(server.addr()).await;
    // A valid text message, then a frame with a reserved bit set, in one write.
    let mut bytes = masked(0x81, b"hello");
    bytes.extend(masked(0x80 | 0x40 | 0x1, b"bad"));
    stream.write_all(&bytes).await.expect("writes");
    let mut ws = client_of(stream).await;
    assert_eq!(ws.recv_text().await, "hello");
    assert_eq!(ws.closed().await.map(|(code, _)| code), Some(1002));
}

#[tokio::test]
async fn invalid_utf8_in_a_fragment_fails_at_that_fragment_with_1007() {
    let server = Setup::one("websocket", "echo").start();
    let mut stream = raw_websocket(server.addr()).await;
    // A text message's first fragment (not final) with a byte that can never be UTF-8; the
    // rest of the message never comes, so only checking the fragment can fail it.
    stream
        .write_all(&masked(0x01, &[b'o', b'k', 0xff]))
        .await
        .expect("writes");
    let mut ws = client_of(stream).await;
    assert_eq!(ws.closed().await.map(|(code, _)| code), Some(1007));
}

#[tokio::test]
async fn invalid_utf8_fails_in_the_middle_of_a_frame() {
    let server = Setup::one("websocket", "echo").start();
    let mut stream = raw_websocket(server.addr()).await;
    // The frame announces 100 bytes; only the first few come, the last of them not UTF-8.
    let mut frame = masked(0x81, &[b'a'; 100]);
    frame[2 + 4 + 3] ^= 0xff;
    stream.write_all(&frame[..2 + 4 + 4]).await.expect("writes");
    let mut ws = client_of(stream).await;
    assert_eq!(ws.closed().await.map(|(code, _)| code), Some(1007));
}
