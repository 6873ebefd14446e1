//! What the gateway does on its own: heartbeats, connection limits, slow clients.

use std::time::{Duration, Instant};

use crate::support::clients::{Lines, Received, Ws};
use crate::support::{Listener, Setup};

#[tokio::test]
async fn heartbeat_closes_a_silent_client_and_keeps_a_talking_one() {
    let server = Setup::default()
        .listener(
            // Wide enough for a loaded machine: the talker's 50 ms beats against 600 ms.
            Listener::new("text", "echo")
                .with("ping_interval_ms = 200")
                .with("ping_not_responding_limit = 3")
                .with("ping_data = \"ping\""),
        )
        .start();
    let started = Instant::now();
    let mut silent = Lines::connect(server.addr()).await;
    let mut talker = Lines::connect(server.addr()).await;
    // Talks for longer than the silent client lives.
    let talking = tokio::spawn(async move {
        for _ in 0..20 {
            talker.send(b"pong").await;
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        talker
    });
    // The silent client receives the ping data, then is closed after about 3 intervals.
    let mut pings = 0;
    while let Some(line) = silent.recv().await {
        assert_eq!(line, b"ping");
        pings += 1;
    }
    let lived = started.elapsed();
    assert!(pings >= 1, "ping_data was sent");
    assert!(
        lived >= Duration::from_millis(400),
        "closed too early: {lived:?}"
    );
    assert!(lived < Duration::from_secs(5), "closed too late: {lived:?}");
    let mut talker = talking.await.expect("talker");
    talker.send(b"still").await;
    loop {
        let line = talker.recv().await.expect("the talker is connected");
        if line == b"still" {
            break;
        }
    }
}

#[tokio::test]
async fn websocket_heartbeat_uses_ping_frames_that_clients_answer() {
    let server = Setup::default()
        .listener(
            // A second of silence closes: a reading client answers well within it even
            // on a loaded machine (at 100 ms × 2, one CI run saw its answers come too late).
            Listener::new("websocket", "echo")
                .with("ping_interval_ms = 250")
                .with("ping_not_responding_limit = 4"),
        )
        .start();
    // tungstenite answers pings while it reads, so a reading client stays connected.
    let mut ws = Ws::connect(&server.url()).await;
    assert_eq!(ws.try_recv(Duration::from_millis(2000)).await, None);
    ws.send_text("alive").await;
    assert_eq!(ws.recv_text().await, "alive");
    // A client that never reads (and so never answers) is closed.
    let mut deaf = tokio::net::TcpStream::connect(server.addr())
        .await
        .expect("connect");
    let key = "dGhlIHNhbXBsZSBub25jZQ==";
    let request = format!(
        "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    tokio::io::AsyncWriteExt::write_all(&mut deaf, request.as_bytes())
        .await
        .expect("write");
    let mut buf = vec![0u8; 4096];
    let closed = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match tokio::io::AsyncReadExt::read(&mut deaf, &mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(_) => continue,
            }
        }
    })
    .await;
    assert!(closed.is_ok(), "a silent WebSocket client was not closed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_client_is_closed_and_others_are_not_slowed() {
    const TOTAL: usize = 2048;
    const BATCH: usize = 32;
    let server = Setup::default()
        .listener(Listener::new("websocket", "bench").with("send_queue = 64"))
        .start();
    let url = server.url();
    // The slow client joins the group, then never reads again.
    let mut slow = Ws::connect(&url).await;
    slow.send_text("join:g").await;
    let mut fast = Ws::connect(&url).await;
    fast.send_text("join:g").await;
    let mut sender = Ws::connect(&url).await;
    tokio::time::sleep(Duration::from_millis(100)).await;

    let (progress_tx, mut progress) = tokio::sync::watch::channel(0usize);
    let reader = tokio::spawn(async move {
        for got in 1..=TOTAL {
            match fast.recv().await {
                Received::Text(_) => progress_tx.send_replace(got),
                other => panic!("the fast client lost its connection: {other:?}"),
            };
        }
        fast
    });
    // The fast client keeps up (it is never more than a batch behind); the slow one's queue
    // fills up behind its full socket buffers.
    let payload = "p".repeat(16 * 1024);
    for sent in (BATCH..=TOTAL).step_by(BATCH) {
        for _ in 0..BATCH {
            sender.send_text(&format!("group:g:{payload}")).await;
        }
        tokio::time::timeout(
            Duration::from_secs(10),
            progress.wait_for(|&got| got >= sent),
        )
        .await
        .expect("the fast client was not slowed down")
        .expect("reader alive");
    }
    let mut fast = reader.await.expect("reader");
    fast.send_text("echo:ok").await;
    assert_eq!(fast.recv_text().await, "echo:ok");
    // The slow client was closed: after what was buffered, the stream ends.
    let ended = tokio::time::timeout(Duration::from_secs(10), slow.closed()).await;
    assert!(ended.is_ok(), "the slow client was not closed");
}

/// Sends a line on a connection the server may refuse, and reads the answer: `None` if the
/// server closed it. A refused socket can fail the write (EPIPE, reset) as well as the read:
/// that is the server doing the right thing, not an error of the test.
async fn try_line(addr: std::net::SocketAddr, line: &[u8]) -> Option<Vec<u8>> {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
    let stream = tokio::net::TcpStream::connect(addr).await.ok()?;
    let (read, mut write) = stream.into_split();
    write.write_all(&[line, b"\n"].concat()).await.ok()?;
    let mut reader = tokio::io::BufReader::new(read);
    let mut answer = Vec::new();
    let n = tokio::time::timeout(
        Duration::from_secs(10),
        reader.read_until(b'\n', &mut answer),
    )
    .await
    .expect("an answer or a close in time")
    .ok()?;
    (n > 0).then(|| answer[..n - 1].to_vec())
}

/// Two clients of `addr` are served, a third is refused, and once one of the two leaves a new
/// client gets its slot.
async fn two_are_served_a_third_is_refused_until_one_leaves(addr: std::net::SocketAddr) {
    let mut a = Lines::connect(addr).await;
    let mut b = Lines::connect(addr).await;
    a.send(b"a").await;
    b.send(b"b").await;
    assert_eq!(a.recv().await.expect("a"), b"a");
    assert_eq!(b.recv().await.expect("b"), b"b");
    assert_eq!(
        try_line(addr, b"c").await,
        None,
        "the third client is refused"
    );
    drop(a);
    let deadline = Instant::now() + Duration::from_secs(5);
    while try_line(addr, b"d").await.as_deref() != Some(&b"d"[..]) {
        assert!(Instant::now() < deadline, "the freed slot was never reused");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn connections_beyond_the_limit_are_refused() {
    let server = Setup::default()
        .listener(Listener::new("text", "echo").with("max_connections = 2"))
        .start();
    two_are_served_a_third_is_refused_until_one_leaves(server.addr()).await;
}

#[tokio::test]
async fn one_address_cannot_take_more_than_max_connections_per_ip() {
    let server = Setup::default()
        .listener(Listener::new("text", "echo").with("max_connections_per_ip = 2"))
        .start();
    let mark = server.mark();
    // Every client of this test comes from 127.0.0.1.
    two_are_served_a_third_is_refused_until_one_leaves(server.addr()).await;
    // Waited for, not read at once: the line may still be on its way from the server's stderr.
    server
        .wait_for_log_since(
            mark,
            "an address has too many connections: refusing its new ones",
        )
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_open_handshakes_are_closed_at_the_timeout_while_a_normal_client_connects() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    /// As many as issue 13 names: each holds a socket on both sides.
    const HALF_OPEN: usize = 10_000;
    crate::support::process::raise_file_limit();
    let server = Setup::one("websocket", "echo")
        .listener(
            Listener::new("websocket", "probe")
                .with("handshake_timeout_ms = 2000")
                .with("max_connections_per_ip = 0"),
        )
        .start();
    let slow_addr = server.addrs[1];
    // A slowloris from one address: connections that start a request head and never finish.
    let mut slow = Vec::with_capacity(HALF_OPEN);
    for i in 0..HALF_OPEN {
        let mut stream = match tokio::net::TcpStream::connect(slow_addr).await {
            Ok(stream) => stream,
            Err(e) => panic!("half-open connection {i} of {HALF_OPEN}: {e}"),
        };
        // The server may have closed the earliest ones already: a failed write is fine.
        let _ = stream.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n").await;
        slow.push(stream);
    }
    // Meanwhile a normal client of the same listener connects and is served.
    let mut probe = crate::support::probe::Probe::connect(&format!("ws://{slow_addr}/")).await;
    probe.ok("whoami", serde_json::json!({})).await;
    // Every half-open connection is closed by the server, none left hanging.
    for mut stream in slow {
        let mut buf = [0u8; 64];
        let read = tokio::time::timeout(Duration::from_secs(30), stream.read(&mut buf))
            .await
            .expect("closed within the timeout, not left open");
        assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frame_headers_announcing_a_mebibyte_then_silence_cost_no_memory() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    const CLIENTS: usize = 1000;
    const ANNOUNCED: u32 = 1 << 20;
    let server = Setup::one("frame", "echo").start();
    let pid = server.pid();
    let before = crate::support::process::data_kib(pid);
    // Each client announces a frame of the largest size allowed, and sends nothing more.
    let mut silent = Vec::with_capacity(CLIENTS);
    for _ in 0..CLIENTS {
        let mut stream = tokio::net::TcpStream::connect(server.addrs[0])
            .await
            .expect("connects");
        stream
            .write_all(&ANNOUNCED.to_be_bytes())
            .await
            .expect("a header");
        silent.push(stream);
    }
    // Reserving ahead of the payload would take CLIENTS MiB; watch for a second.
    let bound_kib = CLIENTS as u64 * u64::from(ANNOUNCED) / 1024 / 16;
    for _ in 0..20 {
        let grown = crate::support::process::data_kib(pid).saturating_sub(before);
        assert!(
            grown < bound_kib,
            "{grown} KiB reserved for {CLIENTS} silent headers"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The headers were taken as announced: the last silent client sends its payload at last
    // and gets its frame back whole.
    let mut last = silent.pop().expect("clients");
    let payload = vec![7u8; ANNOUNCED as usize];
    last.write_all(&payload).await.expect("the payload");
    let mut echoed = vec![0u8; 4 + payload.len()];
    tokio::time::timeout(Duration::from_secs(30), last.read_exact(&mut echoed))
        .await
        .expect("echoed in time")
        .expect("echoed");
    assert_eq!(echoed[..4], ANNOUNCED.to_be_bytes());
    assert!(echoed[4..] == payload[..]);
}

#[tokio::test]
async fn a_client_over_its_message_rate_is_throttled_as_configured() {
    let server = Setup::default()
        .listener(
            Listener::new("websocket", "echo")
                .with("max_messages_per_second = 5")
                .with("throttle = \"drop\""),
        )
        .listener(
            Listener::new("websocket", "echo")
                .with("max_messages_per_second = 5")
                .with("throttle = \"close\""),
        )
        .start();
    // drop: a burst of one second's worth gets through, the excess is dropped, and the
    // client stays to be served once its rate allows.
    let mut dropping = Ws::connect(&format!("ws://{}/", server.addrs[0])).await;
    for i in 0..50 {
        dropping.send_text(&format!("m{i}")).await;
    }
    dropping.send_text("fence").await;
    let mut echoed = Vec::new();
    while let Some(Received::Text(text)) = dropping.try_recv(Duration::from_millis(500)).await {
        echoed.push(text);
    }
    // A slow sender earns a few more tokens while it sends; far from all 51.
    assert!(
        (5..=25).contains(&echoed.len()),
        "{} of 51 echoed: {echoed:?}",
        echoed.len()
    );
    assert_eq!(echoed[..5], ["m0", "m1", "m2", "m3", "m4"]);
    tokio::time::sleep(Duration::from_millis(1200)).await;
    dropping.send_text("after").await;
    assert_eq!(dropping.recv_text().await, "after");
    // close: the client is closed with 1008.
    let mut closing = Ws::connect(&format!("ws://{}/", server.addrs[1])).await;
    for i in 0..50 {
        closing.send_text(&format!("m{i}")).await;
    }
    assert_eq!(closing.closed().await.map(|(code, _)| code), Some(1008));
}
