//! A misbehaving plugin loses only the event it was handling: loops, traps and runaway
//! allocation are contained, the instance is replaced, and no client is disconnected.

use std::time::Duration;

use serde_json::json;

use crate::support::Setup;
use crate::support::probe::Probe;

#[tokio::test]
async fn loop_trap_and_alloc_each_lose_one_event() {
    let server = Setup::one("websocket", "probe")
        .worker("event_deadline_ms = 300")
        .worker("memory_limit_mib = 32")
        .start();
    let mut culprit = Probe::connect(&server.url()).await;
    let mut others = Vec::new();
    for _ in 0..4 {
        others.push(Probe::connect(&server.url()).await);
    }

    for (op, log) in [
        ("spin", "ran past its deadline of 300 ms"),
        ("trap", "on-message failed"),
        ("alloc", "memory limit exceeded"),
    ] {
        culprit
            .ws()
            .send_text(&json!({"id": op, "op": op}).to_string())
            .await;
        // Meanwhile every other client is served (some share the culprit's instance and
        // wait for its deadline at most).
        for other in &mut others {
            assert_eq!(other.ok("get-client-count", json!({})).await, json!(5));
        }
        server.wait_for_log(log, Duration::from_secs(10)).await;
        // The culprit's event got no reply, it is still connected, and it is served again.
        assert_eq!(
            culprit.ok("is-online", json!({"client": culprit.id})).await,
            json!(true)
        );
        assert!(culprit.quiet_for(Duration::from_millis(50)).await);
    }
    let log = server.log();
    assert!(log.contains("instance replaced"), "{log}");
    assert_eq!(others[0].ok("get-client-count", json!({})).await, json!(5));
}

#[tokio::test]
async fn an_app_can_recycle_its_instances_after_n_events() {
    let config = Setup::one("websocket", "probe")
        .worker("instances = 1")
        .toml()
        + "\n[apps.probe]\nrecycle_after_events = 5\n";
    let server = crate::support::Server::start(&config);
    let mut client = Probe::connect(&server.url()).await;
    // Connect and whoami were events 1 and 2 of this instance.
    for _ in 0..8 {
        client.ok("get-client-count", json!({})).await;
    }
    // Event 5 and event 10 each retired the instance and started a fresh one; the canary and
    // the first instance account for the other two starts.
    server
        .wait_for_log("probe: worker 0 started", Duration::from_secs(5))
        .await;
    let starts = server.log().matches("probe: worker 0 started").count();
    assert_eq!(starts, 4, "{}", server.log());
    assert_eq!(
        client.ok("is-online", json!({"client": client.id})).await,
        json!(true)
    );
}
