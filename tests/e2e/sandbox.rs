//! A misbehaving plugin loses only the event it was handling: loops, traps and runaway
//! allocation are contained, the instance is replaced, and no client is disconnected.

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

    for (op, reason) in [
        ("spin", "ran past its deadline of 300 ms"),
        ("trap", "probe: trap requested"),
        ("alloc", "memory limit exceeded"),
    ] {
        // Each failure is looked for among the lines logged after its own request: the
        // lines of the failures before it must not satisfy the wait.
        let mark = server.mark();
        culprit
            .ws()
            .send_text(&json!({"id": op, "op": op}).to_string())
            .await;
        // Meanwhile every other client is served (some share the culprit's instance and
        // wait for its deadline at most).
        for other in &mut others {
            assert_eq!(other.ok("get-client-count", json!({})).await, json!(5));
        }
        server
            .wait_for_log_since(mark, "on-message failed, event lost, instance replaced")
            .await;
        // The failure's message runs over several lines (a wasm backtrace).
        server.wait_for_log_since(mark, reason).await;
        // The culprit is still connected and served again. Its events run in order, so had
        // the failed event replied, that reply would have arrived before this one.
        assert_eq!(
            culprit.ok("is-online", json!({"client": culprit.id})).await,
            json!(true)
        );
        assert_eq!(culprit.unread(), [], "{op} got a reply");
        let since = server.log_since(mark);
        assert_eq!(
            since.matches("instance replaced").count(),
            1,
            "{op}: {since}"
        );
    }
    assert_eq!(others[0].ok("get-client-count", json!({})).await, json!(5));
}

#[tokio::test]
async fn an_app_can_recycle_its_instances_after_n_events() {
    const STARTED: &str = "probe: worker 0 started";
    let config = Setup::one("websocket", "probe")
        .worker("instances = 1")
        .toml()
        + "\n[apps.probe]\nrecycle_after_events = 5\n";
    let server = crate::support::Server::start(&config);
    let mut client = Probe::connect(&server.url()).await;
    // Each step is one event that logs a marker. An instance recycled after an event is
    // replaced before the next event runs, so the starts logged before marker k are exactly
    // those due to the events before step k: no race with the replies.
    let mut starts = Vec::new();
    for step in 0..16 {
        let marker = format!("[recycle step {step}]");
        let mark = server.mark();
        client
            .ok("log", json!({"level": "info", "message": marker}))
            .await;
        let line = server.wait_for_log_since(mark, &marker).await;
        starts.push(server.log_until(line.at).matches(STARTED).count());
    }
    // Steps at which a new instance had started since the step before.
    let recycled_at: Vec<usize> = (1..starts.len())
        .filter(|&k| starts[k] != starts[k - 1])
        .collect();
    assert!(
        starts.windows(2).all(|w| w[1] - w[0] <= 1),
        "one start per recycle: {starts:?}"
    );
    // The connection's own events come first, so the first recycle falls within the first
    // five steps; after it, one every five events exactly.
    assert_eq!(recycled_at.len(), 3, "starts before each step: {starts:?}");
    assert!(recycled_at[0] <= 5, "starts before each step: {starts:?}");
    assert_eq!(
        recycled_at,
        [recycled_at[0], recycled_at[0] + 5, recycled_at[0] + 10],
        "starts before each step: {starts:?}"
    );
    assert_eq!(
        client.ok("is-online", json!({"client": client.id})).await,
        json!(true)
    );
}
