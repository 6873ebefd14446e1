//! Isolation: each app is its own world; a plugin that computes for its whole deadline
//! delays no other app; clients of one instance take turns; timers take turns with events.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::clients::{Lines, Received, Ws};
use crate::support::probe::Probe;
use crate::support::{Listener, Setup, plugin_bytes, plugin_folder};

/// Sends `n` requests of `op` without waiting for their replies; ids `first..first + n`.
async fn flood(probe: &mut Probe, first: u64, n: u64, op: &str, args: Value) {
    for id in first..first + n {
        let mut request = args.clone();
        request["id"] = json!(id);
        request["op"] = json!(op);
        probe.ws().send_text(&request.to_string()).await;
    }
}

/// The id of a probe reply, if `received` is one.
fn reply_id(received: &Received) -> Option<u64> {
    match received {
        Received::Text(text) => serde_json::from_str::<Value>(text).ok()?["id"].as_u64(),
        _ => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plugin_burning_its_deadline_on_every_instance_never_delays_another_app() {
    let server = Setup::default()
        .listener(Listener::new("websocket", "probe"))
        .listener(Listener::new("websocket", "echo"))
        .worker("instances = 2")
        .worker("event_deadline_ms = 6000")
        .start();
    let echo_url = format!("ws://{}/", server.addrs[1]);
    // Eight spinning events: every instance of the probe computes for its whole deadline.
    let mut spinners = Vec::new();
    for _ in 0..8 {
        spinners.push(Probe::connect(&server.url()).await);
    }
    for probe in &mut spinners {
        probe.ws().send_text(r#"{"id":1,"op":"spin"}"#).await;
    }
    let spinning = Instant::now();
    let mark = server.mark();
    // Meanwhile the other app accepts, completes handshakes and answers at once.
    for n in 0..10 {
        let mut client = Ws::connect(&echo_url).await;
        for m in 0..5 {
            let text = format!("{n}.{m}");
            client.send_text(&text).await;
            assert_eq!(client.recv_text().await, text);
        }
    }
    let served_in = spinning.elapsed();
    // Before guests had threads of their own, these waited for the spinning deadline (6 s):
    // every I/O thread was inside a spinning plugin.
    assert!(
        served_in < Duration::from_secs(3),
        "the echo app waited {served_in:?} for the spinning one"
    );
    server
        .wait_for_log_since(mark, "ran past its deadline of 6000 ms")
        .await;
    // The spinners lose their events only: none of them is disconnected.
    for probe in &mut spinners {
        let received = probe.ws().try_recv(Duration::from_millis(10)).await;
        assert!(
            !matches!(received, Some(Received::Closed(_))),
            "a spinning client was disconnected"
        );
    }
}

#[tokio::test]
async fn a_flooding_client_takes_turns_with_the_others_on_its_instance() {
    let server = Setup::one("websocket", "probe")
        .worker("instances = 1")
        .start();
    let mut flooder = Probe::connect(&server.url()).await;
    let mut other = Probe::connect(&server.url()).await;
    flood(&mut flooder, 100, 30, "busy", json!({"ms": 30})).await;
    // The first reply means the instance is busy with the flood, and the rest of it is
    // queued (reading 30 small messages takes far less than one 30 ms event).
    assert_eq!(reply_id(&flooder.ws().recv().await), Some(100));
    other.ok("whoami", json!({})).await;
    // Served in turn: the other client waited for about one of the flood's events, not 29.
    let mut flood_replies = vec![100];
    while let Some(received) = flooder.ws().try_recv(Duration::from_millis(1)).await {
        flood_replies.extend(reply_id(&received));
    }
    assert!(
        flood_replies.len() <= 5,
        "the other client waited for {} of the flood's events",
        flood_replies.len()
    );
    // And the flood itself keeps its order.
    while flood_replies.len() < 30 {
        let received = flooder.ws().recv().await;
        flood_replies.extend(reply_id(&received));
    }
    assert_eq!(flood_replies, (100..130).collect::<Vec<_>>());
}

/// Short events run on the socket thread when their instance is idle; a slow one moves to
/// the plugin threads at its second epoch tick. Either way, each client's replies come in the
/// order of its requests.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_keep_their_order_as_calls_move_between_threads() {
    let server = Setup::one("websocket", "probe")
        .worker("instances = 1")
        .start();
    let mut clients = Vec::new();
    for _ in 0..3 {
        clients.push(Probe::connect(&server.url()).await);
    }
    // Per client, interleaved: quick calls, and calls of 5 ms, which move.
    for probe in &mut clients {
        for id in 0..30u64 {
            let request = match id % 3 {
                1 => json!({"id": id, "op": "busy", "ms": 5}),
                _ => json!({"id": id, "op": "whoami"}),
            };
            probe.ws().send_text(&request.to_string()).await;
        }
    }
    for probe in &mut clients {
        let mut ids = Vec::new();
        while ids.len() < 30 {
            let received = probe.ws().recv().await;
            ids.extend(reply_id(&received));
        }
        assert_eq!(ids, (0..30).collect::<Vec<_>>());
    }
}

#[tokio::test]
async fn timers_fire_while_a_client_floods_the_instance() {
    let server = Setup::one("websocket", "probe")
        .worker("instances = 1")
        .start();
    let mut client = Probe::connect(&server.url()).await;
    let me = client.id.clone();
    client
        .ok("join-group", json!({"client": me, "group": "observers"}))
        .await;
    client
        .ok("set-timer", json!({"after_ms": 20, "repeat": true}))
        .await;
    flood(&mut client, 100, 20, "busy", json!({"ms": 30})).await;
    // Replies and timer notices share this client's socket, in the order the instance
    // produced them: timer events run between the flood's events, not after all of them.
    let (mut replies, mut timers_during_flood) = (0, 0);
    while replies < 20 {
        let received = client.ws().recv().await;
        match reply_id(&received) {
            Some(_) => replies += 1,
            None if replies > 0 => timers_during_flood += 1,
            None => {}
        }
    }
    assert!(
        timers_during_flood >= 5,
        "only {timers_during_flood} timer events ran during 20 events of 30 ms"
    );
}

#[tokio::test]
async fn each_app_is_its_own_world() {
    // Two apps from the same plugin; the probe app has two listeners, which share a world.
    let plugins = plugin_folder(&["probe"]);
    std::fs::write(plugins.path().join("other.wasm"), plugin_bytes("probe")).expect("copy");
    let mut setup = Setup::default()
        .listener(Listener::new("websocket", "probe"))
        .listener(Listener::new("websocket", "other"))
        .listener(Listener::new("text", "probe"));
    setup.plugins_dir = Some(plugins.path().to_owned());
    let server = setup.start();
    let other_url = format!("ws://{}/", server.addrs[1]);
    let mut p1 = Probe::connect(&server.url()).await;
    let mut p2 = Probe::connect(&server.url()).await;
    let mut line = Lines::connect(server.addrs[2]).await;
    line.send(br#"{"id":1,"op":"get-client-count"}"#).await;
    assert_eq!(line.recv_text().await, r#"{"id":1,"ok":3}"#);
    let mut others = Vec::new();
    for _ in 0..4 {
        others.push(Probe::connect(&other_url).await);
    }
    let o1_id = others[0].id.clone();

    // Counts and lists cover the app's own clients only.
    assert_eq!(p1.ok("get-client-count", json!({})).await, json!(3));
    assert_eq!(others[0].ok("get-client-count", json!({})).await, json!(4));
    let listed = p1.ok("get-client-list", json!({"limit": 100})).await;
    assert_eq!(listed.as_array().map(Vec::len), Some(3), "{listed}");
    // A client of another app is offline to this one, and out of its reach.
    assert_eq!(
        p1.ok("is-online", json!({"client": o1_id})).await,
        json!(false)
    );
    p1.ok("bind-uid", json!({"client": o1_id, "uid": "u"}))
        .await;
    p1.ok("join-group", json!({"client": o1_id, "group": "g"}))
        .await;
    let o1 = others[0].ok("whoami", json!({})).await;
    assert_eq!(o1["uid"], Value::Null);
    assert_eq!(
        others[0]
            .ok("get-group-list", json!({"unique": true}))
            .await,
        json!([])
    );
    // The same uid in two apps names two different users.
    let p1_id = p1.id.clone();
    p1.ok("bind-uid", json!({"client": p1_id, "uid": "same"}))
        .await;
    others[0]
        .ok("bind-uid", json!({"client": o1_id, "uid": "same"}))
        .await;
    assert_eq!(
        p1.ok(
            "get-client-list-by-uid",
            json!({"uid": "same", "limit": 10})
        )
        .await,
        json!([p1_id])
    );
    // Send-to-all reaches every client of the app, on both of its listeners, and no other.
    p1.ok(
        "send-to-all",
        json!({"message": {"text": "to the probe app"}}),
    )
    .await;
    assert_eq!(p2.other_text().await, "to the probe app");
    assert_eq!(p1.other_text().await, "to the probe app");
    assert_eq!(line.recv_text().await, "to the probe app");
    for other in &mut others {
        assert!(other.quiet_for(Duration::from_millis(100)).await);
    }
}
