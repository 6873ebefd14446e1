//! Cluster mode (issue 9): gateways and workers as separate processes of the real binary,
//! joined by a real `nats-server`, answer like the embedded single process.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::clients::Lines;
use crate::support::nats::NatsServer;
use crate::support::probe::Probe;
use crate::support::{Listener, Server, Setup, run_to_exit};
use switchboard::bus::codec::encode;
use switchboard::bus::nats::wire::ToGateway;
use switchboard::bus::nats::wire::{Heartbeat, Side, Subjects};
use switchboard::bus::{Command, GatewayId, Message, Target};

/// The config of a member in `role`: the probe app on WebSocket and echo on text lines.
fn config(nats_url: &str, role: &str) -> String {
    let base = Setup::one("websocket", "probe")
        .listener(Listener::new("text", "echo"))
        .toml();
    format!("{base}\n[cluster]\nnats_url = \"{nats_url}\"\nrole = \"{role}\"\n")
}

/// A member in `role`, started and ready.
fn member(nats: &NatsServer, role: &str) -> Server {
    Server::start(&config(&nats.url, role))
}

/// `switchboard start` with this config in a fresh folder, run to its exit.
fn start_to_exit(config: &str, args: &[&str]) -> (Option<i32>, String) {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("switchboard.toml"), config).expect("write");
    let mut all = vec!["start"];
    all.extend(args);
    run_to_exit(&all, dir.path())
}

/// What a gateway logs when a worker serves both apps of [`config`]: clients are served.
const SERVES: &str = "serves echo, probe";

/// Waits until `server` has logged `needle` at least `times` times.
async fn logged(server: &Server, needle: &str, times: usize) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while server.log().matches(needle).count() < times {
        assert!(
            Instant::now() < deadline,
            "never logged {needle:?} {times} times; log:\n{}",
            server.log()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Two gateways and two workers, each knowing the others.
struct Cluster {
    gateways: [Server; 2],
    workers: Vec<Server>,
    nats: NatsServer,
}

impl Cluster {
    async fn start() -> Self {
        let nats = NatsServer::start();
        let gateways = [member(&nats, "gateway"), member(&nats, "gateway")];
        let workers = vec![member(&nats, "worker"), member(&nats, "worker")];
        for gateway in &gateways {
            logged(gateway, SERVES, 2).await;
        }
        for worker in &workers {
            logged(worker, "gateway joined", 2).await;
        }
        Self {
            gateways,
            workers,
            nats,
        }
    }

    fn url(&self, gateway: usize) -> String {
        format!("ws://{}/", self.gateways[gateway].addrs[0])
    }
}

#[tokio::test]
async fn a_gateway_and_a_worker_on_two_routed_nats_servers_serve_together() {
    let (near, far) = NatsServer::start_pair();
    let gateway = member(&near, "gateway");
    let _worker = member(&far, "worker");
    logged(&gateway, SERVES, 1).await;
    let url = format!("ws://{}/", gateway.addrs[0]);
    let mut a = Probe::connect(&url).await;
    let mut b = Probe::connect(&url).await;
    let ib = b.id.clone();
    a.ok("join-group", json!({"client": ib, "group": "room"}))
        .await;
    a.ok(
        "send-to-group",
        json!({"group": "room", "message": "across the route"}),
    )
    .await;
    assert_eq!(b.other_text().await, "across the route");
    assert_eq!(a.ok("get-client-count", json!({})).await, json!(2));
    let mut lines = Lines::connect(gateway.addrs[1]).await;
    lines.send(b"echo via the far node").await;
    assert_eq!(lines.recv_text().await, "echo via the far node");
}

#[tokio::test]
async fn an_app_whose_instances_are_behind_never_holds_back_another_app_on_its_worker() {
    let nats = NatsServer::start();
    let text = Setup::one("websocket", "probe")
        .listener(Listener::new("text", "echo"))
        .worker("instances = 1")
        .toml();
    let member = |role: &str| {
        Server::start(&format!(
            "{text}\n[cluster]\nnats_url = \"{}\"\nrole = \"{role}\"\n",
            nats.url
        ))
    };
    let gateway = member("gateway");
    let _worker = member("worker");
    logged(&gateway, SERVES, 1).await;
    let mut flooder = Probe::connect(&format!("ws://{}/", gateway.addrs[0])).await;
    let mut lines = Lines::connect(gateway.addrs[1]).await;
    // Far more than the instance's per-client queue holds: the probe app is behind for
    // seconds.
    for id in 0..200 {
        let request = json!({"id": id, "op": "busy", "ms": 20});
        flooder.ws().send_text(&request.to_string()).await;
    }
    flooder.ws().recv().await;
    lines.send(b"not held back").await;
    assert_eq!(lines.recv_text().await, "not held back");
    // The echo came back while the flood was still being worked through: not behind the
    // 136 of its events that do not fit the instance's per-client queue.
    let mut replies = 1;
    while flooder.ws().try_recv(Duration::ZERO).await.is_some() {
        replies += 1;
    }
    assert!(
        replies < 100,
        "the echo waited for {replies} of the flood's events"
    );
}

#[tokio::test]
async fn the_plugins_key_value_store_is_shared_by_every_worker() {
    let nats = NatsServer::start();
    let gateway = member(&nats, "gateway");
    let mut first = member(&nats, "worker");
    logged(&gateway, SERVES, 1).await;
    let url = format!("ws://{}/", gateway.addrs[0]);
    let mut probe = Probe::connect(&url).await;
    probe
        .ok("kv-set", json!({"key": "room:1", "value": "kept"}))
        .await;
    // The only worker goes; the next one, another process, reads what the first wrote.
    let _second = member(&nats, "worker");
    logged(&gateway, SERVES, 2).await;
    assert!(first.terminate().success());
    logged(&gateway, "worker said goodbye", 1).await;
    let mut probe = Probe::connect(&url).await;
    assert_eq!(
        probe.ok("kv-get", json!({"key": "room:1"})).await,
        json!("kept")
    );
}

#[tokio::test]
async fn a_gateways_metrics_show_the_cluster() {
    let nats = NatsServer::start();
    let gateway = Server::start(&format!(
        "{}\n[admin]\naddr = \"127.0.0.1:0\"\n",
        config(&nats.url, "gateway")
    ));
    let _worker = member(&nats, "worker");
    logged(&gateway, SERVES, 1).await;
    let mut client = Lines::connect(gateway.addrs[1]).await;
    client.send(b"bound").await;
    assert_eq!(client.recv_text().await, "bound");
    let admin = gateway.status_json()["admin_addr"]
        .as_str()
        .expect("admin on")
        .to_owned();
    let (code, text) = crate::support::http_get(&admin, "/metrics").await;
    assert_eq!(code, 200);
    for line in [
        "switchboard_cluster_members{side=\"worker\"} 1",
        "switchboard_cluster_members{side=\"gateway\"} 1",
        "switchboard_nats_connected 1",
        "switchboard_cluster_events_dropped_total 0",
    ] {
        assert!(text.lines().any(|l| l == line), "{line} in\n{text}");
    }
    assert!(
        text.lines().any(
            |l| l.starts_with("switchboard_cluster_worker_clients{worker=") && l.ends_with(" 1")
        ),
        "{text}"
    );
}

#[tokio::test]
async fn cluster_echo_works_through_both_gateways() {
    let cluster = Cluster::start().await;
    for gateway in &cluster.gateways {
        let mut client = Lines::connect(gateway.addrs[1]).await;
        for i in 0..20 {
            let line = format!("hello {i}");
            client.send(line.as_bytes()).await;
            assert_eq!(client.recv_text().await, line);
        }
    }
}

#[tokio::test]
async fn cluster_answers_like_one_process_with_clients_on_both_gateways() {
    let cluster = Cluster::start().await;
    let mut a = Probe::connect(&cluster.url(0)).await;
    let mut b = Probe::connect(&cluster.url(1)).await;
    let mut c = Probe::connect(&cluster.url(1)).await;
    let (ia, ib, ic) = (a.id.clone(), b.id.clone(), c.id.clone());
    assert_ne!(ia[..8], ib[..8], "two gateways, two gateway ids");
    assert_eq!(ib[..8], ic[..8]);

    // Presence and counts span the gateways.
    assert_eq!(a.ok("is-online", json!({"client": ib})).await, json!(true));
    assert_eq!(a.ok("get-client-count", json!({})).await, json!(3));

    // A send to a uid bound on the other gateway.
    a.ok("bind-uid", json!({"client": ib, "uid": "alice"}))
        .await;
    a.ok(
        "send-to-uid",
        json!({"uid": "alice", "message": "to alice"}),
    )
    .await;
    assert_eq!(b.other_text().await, "to alice");
    // The same uid on both gateways counts once, as in one process.
    a.ok("bind-uid", json!({"client": ia, "uid": "alice"}))
        .await;
    a.ok("bind-uid", json!({"client": ic, "uid": "bob"})).await;
    assert_eq!(a.ok("get-uid-count", json!({})).await, json!(2));
    assert_eq!(
        a.ok("get-uid-list", json!({"unique": true})).await,
        json!(["alice", "bob"])
    );
    assert_eq!(
        c.ok("is-uid-online", json!({"uid": "alice"})).await,
        json!(true)
    );

    // A group across gateways: joined, then sent to, in that order.
    a.ok("join-group", json!({"client": ia, "group": "room"}))
        .await;
    a.ok("join-group", json!({"client": ib, "group": "room"}))
        .await;
    c.ok("join-group", json!({"client": ic, "group": "other"}))
        .await;
    a.ok(
        "send-to-group",
        json!({"group": "room", "message": "to room"}),
    )
    .await;
    assert_eq!(a.other_text().await, "to room");
    assert_eq!(b.other_text().await, "to room");
    assert!(c.quiet_for(Duration::from_millis(200)).await);
    assert_eq!(
        b.ok("get-client-count-by-group", json!({"group": "room"}))
            .await,
        json!(2)
    );
    assert_eq!(
        b.ok("get-group-list", json!({"unique": true})).await,
        json!(["other", "room"])
    );

    // Paged lists across gateways walk every client once, in order, with a valid cursor.
    let mut all = vec![ia.clone(), ib.clone(), ic.clone()];
    all.sort();
    let mut walked: Vec<String> = Vec::new();
    let mut after = Value::Null;
    loop {
        let page = c
            .ok("get-client-list", json!({"after": after, "limit": 2}))
            .await;
        let page: Vec<String> = serde_json::from_value(page).expect("ids");
        assert!(page.len() <= 2);
        let Some(last) = page.last() else { break };
        after = json!(last);
        walked.extend(page);
    }
    assert_eq!(walked, all);

    // A session set through one gateway is read from the other worker's side.
    a.ok(
        "set-session",
        json!({"client": ib, "session": {"nick": "bee"}}),
    )
    .await;
    assert_eq!(
        c.ok("get-session", json!({"client": ib})).await,
        json!({"nick": "bee"})
    );
    // The limit on a merged session is the gateway's to tell, and the caller hears it.
    let half = "y".repeat(40 * 1024);
    a.ok(
        "update-session",
        json!({"client": ib, "session": {"h1": half}}),
    )
    .await;
    assert_eq!(
        a.err(
            "update-session",
            json!({"client": ib, "session": {"h2": half}})
        )
        .await,
        "too-large"
    );

    // Each gateway's status shows the cluster: both workers, its clients bound among them.
    for (gateway, clients) in cluster.gateways.iter().zip([1, 2]) {
        let status = gateway.status_json();
        let view = &status["cluster"];
        assert_eq!(view["role"], json!("gateway"), "{status}");
        assert_eq!(view["nats"], json!("connected"), "{status}");
        assert_eq!(
            view["gateways"].as_array().map(Vec::len),
            Some(2),
            "{status}"
        );
        let workers = view["workers"].as_array().expect("workers");
        assert_eq!(workers.len(), 2, "{status}");
        let bound: u64 = workers.iter().filter_map(|w| w["clients"].as_u64()).sum();
        assert_eq!(bound, clients, "{status}");
        assert_eq!(view["events_dropped"], json!(0), "{status}");
    }

    // A client that leaves is gone everywhere.
    drop(b);
    let deadline = Instant::now() + Duration::from_secs(10);
    while a.ok("is-online", json!({"client": ib})).await != json!(false) {
        assert!(Instant::now() < deadline, "the closed client stays online");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(a.ok("get-client-count", json!({})).await, json!(2));
}

#[tokio::test]
async fn a_gateway_that_does_not_answer_makes_queries_time_out() {
    let cluster = Cluster::start().await;
    let mut a = Probe::connect(&cluster.url(0)).await;
    assert_eq!(a.ok("get-client-count", json!({})).await, json!(1));

    // A gateway that beats and holds its subject, but never answers.
    let nats = async_nats::connect(cluster.nats.url.as_str())
        .await
        .expect("NATS");
    let subjects = Subjects::new("switchboard");
    let silent = GatewayId::new(0x0bad_cafe).expect("non-zero");
    let _held = nats
        .subscribe(subjects.gateway_all(silent))
        .await
        .expect("subscribed");
    let beat = |goodbye| Heartbeat {
        side: Side::Gateway,
        node: silent.get(),
        epoch: 1,
        apps: Vec::new(),
        versions: Vec::new(),
        goodbye,
    };
    let beating = {
        let (nats, subject, beat) = (
            nats.clone(),
            subjects.heartbeat(Side::Gateway, silent.get()),
            encode(&beat(false)),
        );
        tokio::spawn(async move {
            loop {
                let _ = nats.publish(subject.clone(), beat.clone().into()).await;
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
        })
    };
    for worker in &cluster.workers {
        logged(worker, "gateway joined", 3).await;
    }
    // No partial answer: the whole call fails with the WIT timeout error.
    assert_eq!(a.err("get-client-count", json!({})).await, "timeout");
    assert_eq!(
        a.err("get-group-list", json!({"unique": true})).await,
        "timeout"
    );
    assert_eq!(
        a.err("is-online", json!({"client": "0badcafe000000000001"}))
            .await,
        "timeout"
    );

    // Its goodbye removes it at once: the cluster answers again.
    beating.abort();
    nats.publish(
        subjects.heartbeat(Side::Gateway, silent.get()),
        encode(&beat(true)).into(),
    )
    .await
    .expect("goodbye");
    for worker in &cluster.workers {
        logged(worker, "gateway said goodbye", 1).await;
    }
    assert_eq!(a.ok("get-client-count", json!({})).await, json!(1));
}

#[tokio::test]
async fn a_bus_message_of_another_wire_version_is_refused_with_a_log_line() {
    let cluster = Cluster::start().await;
    let mut a = Probe::connect(&cluster.url(0)).await;
    let gateway =
        GatewayId::new(u32::from_str_radix(&a.id[..8], 16).expect("hex")).expect("non-zero");
    let nats = async_nats::connect(cluster.nats.url.as_str())
        .await
        .expect("NATS");
    let subject = Subjects::new("switchboard").gateway_command(gateway);
    nats.publish(subject, vec![9, 0, 1].into())
        .await
        .expect("published");
    nats.flush().await.expect("flushed");
    logged(&cluster.gateways[0], "wire version 9", 1).await;
    // Refused, not fatal: the gateway goes on serving.
    assert_eq!(a.ok("get-client-count", json!({})).await, json!(1));
}

#[tokio::test]
async fn cluster_role_all_serves_alone_and_start_role_overrides_the_config() {
    let nats = NatsServer::start();
    // The config says worker; the command line makes it both, joined over NATS.
    let both = Server::start_with_args(&config(&nats.url, "worker"), &["--role", "all"]);
    assert_eq!(both.addrs.len(), 2, "role all binds the listeners");
    logged(&both, SERVES, 1).await;
    let mut client = Lines::connect(both.addrs[1]).await;
    client.send(b"alone").await;
    assert_eq!(client.recv_text().await, "alone");
    let mut probe = Probe::connect(&format!("ws://{}/", both.addrs[0])).await;
    assert_eq!(probe.ok("get-client-count", json!({})).await, json!(1));
}

#[test]
fn bad_cluster_settings_name_the_key_and_exit_2() {
    let plain = Setup::one("websocket", "probe").toml();
    let (code, err) = start_to_exit(&plain, &["--role", "gateway"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("--role") && err.contains("[cluster]"), "{err}");

    let (code, err) = start_to_exit(&plain, &["--role", "boss"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("boss"), "{err}");

    for (table, key) in [
        (
            "nats_url = \"nats://127.0.0.1:1\"\nprefix = \"a.b\"",
            "cluster.prefix",
        ),
        ("nats_url = \"http://127.0.0.1:1\"", "cluster.nats_url"),
        ("nats_url = \"nats://127.0.0.1:1\"\nrole = \"boss\"", "role"),
        (
            "nats_url = \"nats://127.0.0.1:1\"\ncredentials = \"missing.creds\"",
            "cluster.credentials",
        ),
        (
            "nats_url = \"nats://127.0.0.1:1\"\nquery_timeout_ms = 0",
            "cluster.query_timeout_ms",
        ),
        (
            "nats_url = \"nats://127.0.0.1:1\"\nbacklog_events = 99999999",
            "cluster.backlog_events",
        ),
        (
            "nats_url = \"nats://127.0.0.1:1\"\nbacklog_ms = 99999999",
            "cluster.backlog_ms",
        ),
    ] {
        let (code, err) = start_to_exit(&format!("{plain}\n[cluster]\n{table}\n"), &[]);
        assert_eq!(code, Some(2), "{table}: {err}");
        assert!(err.contains(key), "{table}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
    }
}

#[tokio::test]
async fn a_killed_worker_disconnects_no_client_and_its_clients_are_rebound() {
    let mut cluster = Cluster::start().await;
    let mut clients = Vec::new();
    for i in 0..12 {
        let mut client = Lines::connect(cluster.gateways[i % 2].addrs[1]).await;
        client.send(b"before").await;
        assert_eq!(client.recv_text().await, "before");
        clients.push(client);
    }
    // kill -9 a worker with clients: no goodbye, so the gateways notice by missed
    // heartbeats.
    let busy = |worker: &Server| {
        let id = worker.status_json()["cluster"]["worker_id"].clone();
        cluster.gateways.iter().any(|g| {
            g.status_json()["cluster"]["workers"]
                .as_array()
                .expect("workers")
                .iter()
                .any(|w| w["id"] == id && w["clients"].as_u64() > Some(0))
        })
    };
    let victim = if busy(&cluster.workers[0]) { 0 } else { 1 };
    drop(cluster.workers.remove(victim));
    for (i, client) in clients.iter_mut().enumerate() {
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut attempt = 0;
        loop {
            attempt += 1;
            let line = format!("client {i} attempt {attempt}");
            client.send(line.as_bytes()).await;
            // A line sent to the dead worker before expiry is lost; a later one comes back.
            match tokio::time::timeout(Duration::from_millis(500), client.recv()).await {
                Ok(Some(echo)) => {
                    let echo = String::from_utf8(echo).expect("UTF-8");
                    assert!(echo.starts_with(&format!("client {i} ")), "{echo}");
                    break;
                }
                Ok(None) => panic!("client {i} was disconnected"),
                Err(_) => assert!(Instant::now() < deadline, "client {i} never rebound"),
            }
        }
    }
    // The lines sent to it after its last heartbeat are counted as maybe lost.
    let mut unconfirmed = 0;
    for gateway in &cluster.gateways {
        assert!(gateway.log().contains("missed 3 heartbeats"));
        unconfirmed += gateway.status_json()["cluster"]["events_unconfirmed"]
            .as_u64()
            .expect("a count");
    }
    assert!(unconfirmed > 0, "no event counted as maybe lost");
}

#[tokio::test]
async fn events_wait_for_a_live_worker_for_a_bounded_time_then_are_dropped_and_logged() {
    let nats = NatsServer::start();
    // The bound is a key of its own (default 5000 ms).
    let gateway = Server::start(&format!(
        "{}backlog_ms = 6000\n",
        config(&nats.url, "gateway")
    ));
    let mut worker = member(&nats, "worker");
    logged(&gateway, SERVES, 1).await;
    let mut client = Lines::connect(gateway.addrs[1]).await;
    client.send(b"first").await;
    assert_eq!(client.recv_text().await, "first");

    // The only worker stops gracefully: its goodbye makes the gateway hold events at once.
    assert!(worker.terminate().success());
    logged(&gateway, "worker said goodbye", 1).await;
    client.send(b"while none is live").await;
    let replacement = member(&nats, "worker");
    logged(&gateway, SERVES, 2).await;
    // The waiting event is delivered once a worker is live, before the ones after it.
    client.send(b"after").await;
    assert_eq!(client.recv_text().await, "while none is live");
    assert_eq!(client.recv_text().await, "after");

    // Past the bound, waiting events are dropped, with a log line, not silently; the client
    // stays connected and is served by the next worker.
    drop(replacement);
    logged(&gateway, "missed 3 heartbeats", 1).await;
    client.send(b"lost").await;
    logged(
        &gateway,
        "waited over 6000 ms for a live worker: dropped",
        1,
    )
    .await;
    let _third = member(&nats, "worker");
    logged(&gateway, SERVES, 3).await;
    client.send(b"served").await;
    assert_eq!(client.recv_text().await, "served");
}

#[tokio::test]
async fn a_nats_restart_disconnects_no_client_and_echoes_resume() {
    let nats = NatsServer::start();
    let gateway = member(&nats, "gateway");
    let _worker = member(&nats, "worker");
    logged(&gateway, SERVES, 1).await;
    let mut client = Lines::connect(gateway.addrs[1]).await;
    client.send(b"before").await;
    assert_eq!(client.recv_text().await, "before");

    // Down longer than three heartbeats: every member expires the others, and must find
    // them again when NATS is back.
    let nats = tokio::task::spawn_blocking(move || nats.restart(Duration::from_secs(4)))
        .await
        .expect("restarted");
    let restarted = Instant::now();
    let mut attempt = 0;
    loop {
        attempt += 1;
        let line = format!("attempt {attempt}");
        client.send(line.as_bytes()).await;
        match tokio::time::timeout(Duration::from_millis(500), client.recv()).await {
            Ok(Some(_)) => break,
            Ok(None) => panic!("the client was disconnected"),
            Err(_) => assert!(
                restarted.elapsed() < Duration::from_secs(5),
                "echoes never resumed; gateway log:\n{}",
                gateway.log()
            ),
        }
    }
    eprintln!(
        "echoes resumed {:?} after the NATS restart",
        restarted.elapsed()
    );
    assert!(
        gateway.log().contains("missed 3 heartbeats"),
        "the outage was meant to outlast the heartbeats"
    );
    let status = gateway.status_json();
    assert_eq!(status["cluster"]["nats"], json!("connected"), "{status}");
    assert!(
        status["cluster"]["nats_disconnects"].as_u64() >= Some(1),
        "{status}"
    );
    drop(nats);
}

#[tokio::test]
async fn with_credentials_each_role_may_use_only_its_own_subjects() {
    let gateway_keys = nkeys::KeyPair::new_user();
    let worker_keys = nkeys::KeyPair::new_user();
    let outsider = nkeys::KeyPair::new_user();
    // The README's server config: each role may use its own subjects only.
    let nats = NatsServer::start_with_config(&format!(
        r#"authorization {{
  users = [
    {{ nkey: "{}", permissions: {{
        publish: ["switchboard.hb.gw.*", "switchboard.ev.*", "_INBOX.>"],
        subscribe: ["switchboard.gw.*.>", "switchboard.hb.>", "_INBOX.>"] }} }}
    {{ nkey: "{}", permissions: {{
        publish: ["switchboard.gw.*.>", "switchboard.hb.wk.*", "switchboard.deploy.report", "_INBOX.>",
                  "$JS.API.>", "$JS.FC.>", "$O.switchboard_plugins.>", "$KV.switchboard_releases.>"],
        subscribe: ["switchboard.ev.*", "switchboard.hb.>", "_INBOX.>"] }} }}
    {{ nkey: "{}", permissions: {{ publish: {{ deny: ["switchboard.>"] }} }} }}
  ]
}}
"#,
        gateway_keys.public_key(),
        worker_keys.public_key(),
        outsider.public_key()
    ));
    let seeds = tempfile::tempdir().expect("temp dir");
    let with_seed = |role: &str, keys: &nkeys::KeyPair| {
        let seed_file = seeds.path().join(format!("{role}.nk"));
        std::fs::write(&seed_file, keys.seed().expect("seed")).expect("seed written");
        let text = config(&nats.url, role);
        Server::start(&format!(
            "{text}nkey_seed = {:?}\n",
            seed_file.display().to_string()
        ))
    };
    let gateway = with_seed("gateway", &gateway_keys);
    let worker = with_seed("worker", &worker_keys);
    logged(&gateway, SERVES, 1).await;
    let mut probe = Probe::connect(&format!("ws://{}/", gateway.addrs[0])).await;
    let gateway_id =
        GatewayId::new(u32::from_str_radix(&probe.id[..8], 16).expect("hex")).expect("non-zero");
    let subject = Subjects::new("switchboard").gateway_command(gateway_id);
    let send = |text: &str| {
        encode(&ToGateway::Command {
            app: "probe".into(),
            command: Command::Send {
                to: Target::All,
                message: Message::text(text),
                without: Vec::new(),
            },
        })
    };

    let connect_as = |keys: &nkeys::KeyPair| {
        async_nats::ConnectOptions::with_nkey(keys.seed().expect("seed")).connect(nats.url.clone())
    };
    // Neither an outsider nor a gateway (which only ever answers workers) may command a
    // gateway.
    for (who, keys) in [("outsider", &outsider), ("gateway", &gateway_keys)] {
        let intruder = connect_as(keys).await.expect("connects");
        intruder
            .publish(subject.clone(), send(who).into())
            .await
            .expect("sent, to be refused by the server");
        intruder.flush().await.expect("flushed");
    }
    // The same command with a worker's key is delivered: the subject is the right one.
    let allowed = connect_as(&worker_keys).await.expect("a worker connects");
    allowed
        .publish(subject, send("allowed").into())
        .await
        .expect("sent");
    allowed.flush().await.expect("flushed");
    assert_eq!(probe.other_text().await, "allowed");
    assert!(probe.quiet_for(Duration::from_millis(300)).await);
    // The worker's permissions cover the release store: cluster-wide deploys are on.
    assert!(
        !worker.log().contains("cluster-wide deploys are off"),
        "{}",
        worker.log()
    );
    // Without any credentials, nothing connects at all.
    assert!(
        async_nats::ConnectOptions::new()
            .connect(nats.url.clone())
            .await
            .is_err()
    );
}

/// What a gateway's command subject carried: list sends to uids, list sends to clients (the
/// ids of each), and single sends to the watched clients.
#[derive(Debug, Default)]
struct Carried {
    uid_lists: usize,
    client_lists: Vec<Vec<String>>,
    singles: usize,
}

#[tokio::test]
async fn a_list_send_to_uids_on_two_gateways_is_one_bus_message_per_gateway_and_reaches_each_once()
{
    use futures_util::StreamExt;
    use switchboard::bus::codec::decode;

    let cluster = Cluster::start().await;
    let mut p = Probe::connect(&cluster.url(0)).await;
    let mut c = [
        Probe::connect(&cluster.url(0)).await,
        Probe::connect(&cluster.url(1)).await,
        Probe::connect(&cluster.url(1)).await,
    ];
    let ids: Vec<String> = c.iter().map(|c| c.id.clone()).collect();
    let gateway_of = |id: &str| {
        GatewayId::new(u32::from_str_radix(&id[..8], 16).expect("hex")).expect("non-zero")
    };
    let gateways = [gateway_of(&ids[0]), gateway_of(&ids[1])];
    assert_ne!(gateways[0], gateways[1]);
    for (i, uid) in ["u0", "u1", "u2"].iter().enumerate() {
        p.ok("bind-uid", json!({"client": ids[i], "uid": uid}))
            .await;
    }

    // Watch both gateways' command subjects; a round trip on this connection proves the
    // subscriptions are in place before anything is sent.
    let nats = async_nats::connect(cluster.nats.url.as_str())
        .await
        .expect("NATS");
    let subjects = Subjects::new("switchboard");
    let mut watched = Vec::new();
    for g in gateways {
        let sub = nats
            .subscribe(subjects.gateway_command(g))
            .await
            .expect("subscribed");
        watched.push(sub);
    }
    let mut ready = nats.subscribe("parity.ready").await.expect("subscribed");
    nats.publish("parity.ready", "x".into())
        .await
        .expect("published");
    ready.next().await.expect("round trip");

    // 500 uids, three of them online on two gateways; u1 is skipped by `without`.
    let mut uids: Vec<String> = (0..497).map(|i| format!("offline{i}")).collect();
    uids.extend(["u2", "u0", "u1"].map(String::from));
    p.ok(
        "send-to-uids",
        json!({"uids": uids, "message": "notice", "without": [ids[1]]}),
    )
    .await;
    p.ok(
        "send-to-clients",
        json!({"clients": [ids[2], ids[0], ids[1]], "message": "listed"}),
    )
    .await;
    let mut fences = Vec::new();
    for id in &ids {
        fences.push(p.send_fence(id).await);
    }
    let want: [&[&str]; 3] = [&["notice", "listed"], &["listed"], &["notice", "listed"]];
    for ((client, want), fence) in c.iter_mut().zip(want).zip(&fences) {
        for text in want {
            assert_eq!(client.other_text().await, *text, "client {}", client.id);
        }
        client.nothing_before(fence).await;
    }

    // Each gateway's subject carried the uid list once, its own share of the client list
    // once, and the fences of its clients.
    for (g, sub) in gateways.iter().zip(&mut watched) {
        let fences_here = ids.iter().filter(|id| gateway_of(id) == *g).count();
        let mut carried = Carried::default();
        while carried.singles < fences_here {
            let message = tokio::time::timeout(Duration::from_secs(20), sub.next())
                .await
                .expect("the fences arrive")
                .expect("subscribed");
            let Ok(ToGateway::Command { command, .. }) = decode::<ToGateway>(&message.payload)
            else {
                continue;
            };
            match command {
                Command::Send {
                    to: Target::Uids(list),
                    ..
                } => {
                    assert_eq!(list.len(), 500);
                    carried.uid_lists += 1;
                }
                Command::Send {
                    to: Target::Clients(list),
                    ..
                } => carried
                    .client_lists
                    .push(list.iter().map(ToString::to_string).collect()),
                // The fences; replies to the probe are single sends too, to another client.
                Command::Send {
                    to: Target::Client(id),
                    ..
                } if ids.contains(&id.to_string()) => carried.singles += 1,
                _ => {}
            }
        }
        assert_eq!(carried.uid_lists, 1, "gateway {g}: {carried:?}");
        assert_eq!(carried.client_lists.len(), 1, "gateway {g}: {carried:?}");
        assert!(
            carried.client_lists[0]
                .iter()
                .all(|id| gateway_of(id) == *g),
            "gateway {g} got another gateway's clients: {carried:?}"
        );
        assert_eq!(carried.client_lists[0].len(), fences_here);
    }

    // The bulk queries merge across the gateways as one process would answer.
    for (i, group) in ["room", "room", "hall"].iter().enumerate() {
        p.ok("join-group", json!({"client": ids[i], "group": group}))
            .await;
    }
    assert_eq!(
        p.ok(
            "get-client-count-by-groups",
            json!({"groups": ["room", "hall", "none"]})
        )
        .await,
        json!({"hall": 1, "none": 0, "room": 2})
    );
    let mut room = [ids[0].clone(), ids[1].clone()];
    room.sort();
    let page = p
        .ok(
            "get-client-sessions-by-group",
            json!({"group": "room", "limit": 1}),
        )
        .await;
    assert_eq!(page, json!([[room[0], {}]]));
    let page = p
        .ok(
            "get-client-sessions-by-group",
            json!({"group": "room", "after": room[0], "limit": 5}),
        )
        .await;
    assert_eq!(page, json!([[room[1], {}]]));
    assert_eq!(
        p.ok("get-client-ids-by-uids", json!({"uids": ["u1", "u0", "x"]}))
            .await,
        json!({"u0": [ids[0]], "u1": [ids[1]], "x": []})
    );
    assert_eq!(
        p.ok("get-uid-list-paged", json!({"after": "u0", "limit": 1}))
            .await,
        json!(["u1"])
    );
}
