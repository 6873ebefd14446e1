//! The three client protocols, byte-exact, and per-client ordering.

use std::time::Duration;

use crate::support::Setup;
use crate::support::clients::{Frames, Lines, Received, Ws};

#[tokio::test]
async fn websocket_echo_keeps_text_and_binary() {
    let server = Setup::one("websocket", "echo").start();
    let mut ws = Ws::connect(&server.url()).await;
    ws.send_text("héllo  \r").await;
    assert_eq!(ws.recv().await, Received::Text("héllo  \r".into()));
    ws.send_binary(&[0, 159, 255, 10]).await;
    assert_eq!(ws.recv().await, Received::Binary(vec![0, 159, 255, 10]));
    ws.send_text("").await;
    assert_eq!(ws.recv().await, Received::Text(String::new()));
}

#[tokio::test]
async fn text_lines_are_delivered_byte_exact() {
    let server = Setup::one("text", "echo").start();
    let mut c = Lines::connect(server.addr()).await;
    // Several lines in one write, one line across writes, a kept \r, an empty line, and
    // bytes that are not UTF-8 (delivered as binary, echoed as the same bytes).
    c.send_raw(b"one\n  two \r\n\nthr").await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    c.send_raw(b"ee\n\xff\xfe\n").await;
    assert_eq!(c.recv().await.expect("line"), b"one");
    assert_eq!(c.recv().await.expect("line"), b"  two \r");
    assert_eq!(c.recv().await.expect("line"), b"");
    assert_eq!(c.recv().await.expect("line"), b"three");
    assert_eq!(c.recv().await.expect("line"), b"\xff\xfe");
}

#[tokio::test]
async fn length_prefixed_frames_are_delivered_whole() {
    let server = Setup::one("frame", "echo").start();
    let mut c = Frames::connect(server.addr()).await;
    c.send(b"abc").await;
    assert_eq!(c.recv().await.expect("frame"), b"abc");
    c.send(b"").await;
    assert_eq!(c.recv().await.expect("frame"), b"");
    // A frame split over writes, with a newline inside, and one of 100 KiB.
    c.send_raw(&[0, 0, 0, 5, b'a']).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    c.send_raw(b"\nb\x00c").await;
    assert_eq!(c.recv().await.expect("frame"), b"a\nb\x00c");
    let big: Vec<u8> = (0..100 * 1024).map(|i| (i % 251) as u8).collect();
    c.send(&big).await;
    assert_eq!(c.recv().await.expect("frame"), big);
}

#[tokio::test]
async fn one_clients_events_arrive_in_order() {
    let server = Setup::one("websocket", "echo").start();
    let mut clients = Vec::new();
    for _ in 0..8 {
        clients.push(Ws::connect(&server.url()).await);
    }
    // Each client fires 500 numbered messages without waiting, then reads them back.
    for c in &mut clients {
        for i in 0..500 {
            c.send_text(&i.to_string()).await;
        }
    }
    for c in &mut clients {
        for i in 0..500 {
            assert_eq!(c.recv_text().await, i.to_string());
        }
    }
}

#[tokio::test]
async fn oversized_messages_close_only_the_sender() {
    let server = Setup::default()
        .listener(
            crate::support::Listener::new("websocket", "echo").with("max_message_bytes = 1024"),
        )
        .listener(crate::support::Listener::new("text", "echo").with("max_message_bytes = 1024"))
        .listener(crate::support::Listener::new("frame", "echo").with("max_message_bytes = 1024"))
        .start();
    let url = format!("ws://{}/", server.addrs[0]);
    let mut bystander = Ws::connect(&url).await;

    let mut ws = Ws::connect(&url).await;
    ws.send_text(&"x".repeat(1024)).await;
    assert_eq!(
        ws.recv_text().await.len(),
        1024,
        "the limit itself is allowed"
    );
    ws.send_text(&"x".repeat(1025)).await;
    assert_eq!(ws.closed().await.map(|(code, _)| code), Some(1009));

    let mut lines = Lines::connect(server.addrs[1]).await;
    lines.send(&[b'y'; 1024]).await;
    assert_eq!(lines.recv().await.expect("line").len(), 1024);
    lines.send(&[b'y'; 5000]).await;
    assert_eq!(lines.recv().await, None, "closed");

    let mut frames = Frames::connect(server.addrs[2]).await;
    frames.send_raw(&u32::MAX.to_be_bytes()).await;
    assert_eq!(frames.recv().await, None, "closed without reading 4 GiB");

    bystander.send_text("still here").await;
    assert_eq!(bystander.recv_text().await, "still here");
}

#[tokio::test]
async fn a_message_with_a_newline_never_reaches_a_text_client_as_several_lines() {
    let server = Setup::one("websocket", "probe")
        .listener(crate::support::Listener::new("text", "probe"))
        .start();
    let mut lines = Lines::connect(server.addrs[1]).await;
    lines.send(br#"{"id":1,"op":"whoami"}"#).await;
    let me: serde_json::Value = serde_json::from_str(&lines.recv_text().await).expect("JSON");
    let text_client = me["ok"]["client"].as_str().expect("an id").to_owned();

    // A WebSocket user tries to make the text client read a line of its choosing: sent to
    // the client by id, the plugin gets `invalid-argument` and nothing is sent…
    let mut probe = crate::support::probe::Probe::connect(&server.url()).await;
    let forged = "hello\n{\"forged\":true}";
    let to_client = serde_json::json!({"client": text_client, "message": forged});
    assert_eq!(
        probe.err("send-to-client", to_client.clone()).await,
        "invalid-argument"
    );
    let to_list = serde_json::json!({"clients": [probe.id, text_client], "message": forged});
    assert_eq!(
        probe.err("send-to-clients", to_list).await,
        "invalid-argument"
    );
    assert_eq!(
        probe.err("close-client-with", to_client).await,
        "invalid-argument"
    );
    // …and through a group, whose members the worker cannot know, the gateway drops it.
    let join = serde_json::json!({"client": text_client, "group": "g"});
    probe.ok("join-group", join).await;
    let to_group = serde_json::json!({"group": "g", "message": forged});
    let before = server.mark();
    probe.ok("send-to-group", to_group).await;
    probe
        .ok(
            "send-to-client",
            serde_json::json!({"client": text_client, "message": "after"}),
        )
        .await;
    assert_eq!(
        lines.recv_text().await,
        "after",
        "the injected line was sent"
    );
    // Waited for: the log reaches the test through a reader of its own, maybe after "after".
    server
        .wait_for_log_since(
            before,
            "a message this framing cannot express (a newline on a text connection)",
        )
        .await;
}
