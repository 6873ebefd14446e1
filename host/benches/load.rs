//! Load benchmarks of the real `switchboard` binary, each figure next to a baseline measured
//! in the same run: a bare tokio-tungstenite echo server (this binary, re-run with
//! `--baseline-server`), or the same operation under another condition.
//!
//! `cargo bench --bench load -- [idle] [echo] [swap] [isolation] [fairness] [cluster] [kv]
//! [outbound]` (all without arguments).

#[path = "../../tests/e2e/support/mod.rs"]
mod support;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use support::clients::{Received, Ws};
use support::process::{cpu_seconds, rss_kib};
use support::{
    Listener, Server, Setup, deploy_by_rename, plugin_bytes, plugin_folder, plugins_dir, retagged,
};

/// Idle clients connected for the memory figure.
const IDLE_CLIENTS: usize = 5000;
/// Clients of the echo throughput figure.
const ECHO_CLIENTS: usize = 100;
/// How long each throughput run lasts.
const ECHO_SECONDS: u64 = 5;

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    if args.first().map(String::as_str) == Some("--baseline-server") {
        return baseline_server();
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let all = args.is_empty();
    let wants = |name: &str| all || args.iter().any(|a| a == name);
    runtime.block_on(async {
        plugins_dir();
        if wants("idle") {
            idle().await;
        }
        if wants("echo") {
            echo().await;
        }
        if wants("swap") {
            swap().await;
        }
        if wants("isolation") {
            isolation().await;
        }
        if wants("fairness") {
            fairness().await;
        }
        if wants("cluster") {
            cluster().await;
        }
        if wants("kv") {
            kv().await;
        }
        if wants("outbound") {
            outbound().await;
        }
    });
}

/// A bare tokio-tungstenite echo server with default settings, as a child process.
struct Baseline {
    child: Child,
    addr: SocketAddr,
}

impl Baseline {
    fn start() -> Self {
        let mut child = Command::new(std::env::current_exe().expect("own path"))
            .arg("--baseline-server")
            .stdout(Stdio::piped())
            .spawn()
            .expect("baseline starts");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("piped"))
            .read_line(&mut line)
            .expect("address line");
        let addr = line.trim().parse().expect("an address");
        Self { child, addr }
    }
}

impl Drop for Baseline {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn baseline_server() {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        println!("{}", listener.local_addr().expect("addr"));
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            tokio::spawn(async move {
                let Ok(mut ws) = tokio_tungstenite::accept_async(stream).await else {
                    return;
                };
                while let Some(Ok(message)) = ws.next().await {
                    if (message.is_text() || message.is_binary()) && ws.send(message).await.is_err()
                    {
                        break;
                    }
                }
            });
        }
    });
}

/// KiB of server memory per idle client: RSS after connecting `IDLE_CLIENTS`, minus RSS with
/// 100 connected (so start-up and warm-up costs are excluded).
async fn idle_kib_per_client(pid: u32, url: &str) -> f64 {
    let mut clients = Vec::with_capacity(IDLE_CLIENTS);
    for _ in 0..100 {
        clients.push(Ws::connect(url).await);
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = rss_kib(pid);
    for _ in 100..IDLE_CLIENTS {
        clients.push(Ws::connect(url).await);
    }
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let after = rss_kib(pid);
    (after - before) as f64 / (IDLE_CLIENTS - 100) as f64
}

async fn idle() {
    // Every client comes from 127.0.0.1: lift the per-address limit.
    let server = Setup::default()
        .listener(Listener::new("websocket", "echo").with("max_connections_per_ip = 0"))
        .start();
    let ours = idle_kib_per_client(server.pid(), &server.url()).await;
    let baseline = Baseline::start();
    let theirs =
        idle_kib_per_client(baseline.child.id(), &format!("ws://{}/", baseline.addr)).await;
    println!(
        "idle WebSocket client: switchboard {ours:.1} KiB, bare tokio-tungstenite {theirs:.1} KiB \
         (ratio {:.2}; {IDLE_CLIENTS} clients)",
        ours / theirs
    );
}

/// Round trips per second of `ECHO_CLIENTS` closed-loop clients sending `payload`.
async fn round_trips_per_second(url: &str, payload: &str) -> f64 {
    spread_round_trips(&[url.to_owned()], payload).await
}

async fn echo() {
    let server = Setup::one("websocket", "bench").start();
    let ours = round_trips_per_second(&server.url(), "echo:0123456789abcdef").await;
    drop(server);
    let baseline = Baseline::start();
    let theirs =
        round_trips_per_second(&format!("ws://{}/", baseline.addr), "echo:0123456789abcdef").await;
    println!(
        "echo round trips/s, {ECHO_CLIENTS} clients: switchboard+bench plugin {ours:.0}, \
         bare tokio-tungstenite {theirs:.0} (ratio {:.2})",
        ours / theirs
    );
}

/// Time from a plugin file landing to the first reply after the swap, under echo load.
async fn time_to_swap(
    server: &Server,
    dir: &std::path::Path,
    app: &str,
    bytes: &[u8],
    hash_tag: &str,
) -> Duration {
    let swaps_before = server.log().matches("swapping in a new version").count();
    let started = Instant::now();
    deploy_by_rename(dir, &format!("{app}.wasm"), bytes);
    let mut ws = Ws::connect(&server.url()).await;
    loop {
        if server.log().matches("swapping in a new version").count() > swaps_before {
            ws.send_text(hash_tag).await;
            assert_eq!(ws.recv().await, Received::Text(hash_tag.to_owned()));
            return started.elapsed();
        }
        assert!(started.elapsed() < Duration::from_secs(60), "no swap");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

async fn swap() {
    // Every plugin that echoes plain text unchanged can stand in for `echo` (the probe does).
    let candidates = ["echo", "probe", "echo-go", "echo-js", "echo-py"];
    for name in candidates {
        if !plugins_dir().join(format!("{name}.wasm")).exists() {
            continue;
        }
        let bytes = plugin_bytes(name);
        let dir = plugin_folder(&["echo"]);
        let cache = tempfile::tempdir().expect("cache dir");
        let mut setup = Setup::one("websocket", "echo").worker(&format!(
            "cache_dir = {:?}",
            cache.path().display().to_string()
        ));
        setup.plugins_dir = Some(dir.path().to_owned());
        let server = setup.start();
        let seen = std::sync::Arc::new(LoadSeen::default());
        let load_started = Instant::now();
        let load = tokio::spawn(round_trips_per_second_until(
            server.url(),
            Duration::from_secs(120),
            seen.clone(),
        ));
        // Fresh bytes each time: compiled from scratch.
        let mut cold = Vec::new();
        for i in 0..3 {
            let version = retagged(bytes.clone(), &format!("cold{i}"));
            cold.push(time_to_swap(&server, dir.path(), "echo", &version, "x").await);
        }
        // Alternating between two versions already compiled: served from the cache.
        let a = retagged(bytes.clone(), "warm-a");
        let b = retagged(bytes.clone(), "warm-b");
        time_to_swap(&server, dir.path(), "echo", &a, "x").await;
        time_to_swap(&server, dir.path(), "echo", &b, "x").await;
        let mut warm = Vec::new();
        for i in 0..3 {
            let version = if i % 2 == 0 { &a } else { &b };
            warm.push(time_to_swap(&server, dir.path(), "echo", version, "x").await);
        }
        load.abort();
        let load_secs = load_started.elapsed().as_secs_f64();
        let median = |mut v: Vec<Duration>| {
            v.sort();
            v[v.len() / 2]
        };
        println!(
            "swap {name} ({} KiB) under load: compiled {:?}, from cache {:?} (median of 3); \
             the load meanwhile: {:.0} round trips/s, slowest {:.1} ms (20 clients, 8 swaps)",
            bytes.len() / 1024,
            median(cold),
            median(warm),
            seen.round_trips.load(std::sync::atomic::Ordering::Relaxed) as f64 / load_secs,
            seen.slowest_micros
                .load(std::sync::atomic::Ordering::Relaxed) as f64
                / 1000.0
        );
    }
}

/// What the echo load saw while the swaps ran.
#[derive(Default)]
struct LoadSeen {
    round_trips: std::sync::atomic::AtomicU64,
    slowest_micros: std::sync::atomic::AtomicU64,
}

/// Echo load from 20 clients until aborted (dropping the set aborts every client); counts
/// round trips and the slowest one into `seen`.
async fn round_trips_per_second_until(
    url: String,
    limit: Duration,
    seen: std::sync::Arc<LoadSeen>,
) {
    use std::sync::atomic::Ordering::Relaxed;
    let deadline = Instant::now() + limit;
    let mut clients = tokio::task::JoinSet::new();
    for _ in 0..20 {
        let mut ws = Ws::connect(&url).await;
        let seen = seen.clone();
        clients.spawn(async move {
            while Instant::now() < deadline {
                let sent = Instant::now();
                ws.send_text("load").await;
                if ws.try_recv(Duration::from_secs(5)).await.is_none() {
                    break;
                }
                let micros = u64::try_from(sent.elapsed().as_micros()).unwrap_or(u64::MAX);
                seen.round_trips.fetch_add(1, Relaxed);
                seen.slowest_micros.fetch_max(micros, Relaxed);
            }
        });
    }
    clients.join_all().await;
}

/// Latency percentiles (p50, p99) of `clients` closed-loop echo clients for `run`.
async fn echo_latency(url: &str, clients: usize, run: Duration) -> (Duration, Duration) {
    let deadline = Instant::now() + run;
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let mut ws = Ws::connect(url).await;
        tasks.push(tokio::spawn(async move {
            let mut samples = Vec::new();
            while Instant::now() < deadline {
                let sent = Instant::now();
                ws.send_text("ping").await;
                assert_eq!(ws.recv().await, Received::Text("ping".into()));
                samples.push(sent.elapsed());
            }
            samples
        }));
    }
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await.expect("client"));
    }
    all.sort_unstable();
    let at = |q: f64| all[((all.len() - 1) as f64 * q) as usize];
    (at(0.5), at(0.99))
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Another app's echo latency while one app's plugin computes for its whole deadline on
/// every instance, against the same app's latency with the other one idle.
async fn isolation() {
    let server = Setup::default()
        .listener(Listener::new("websocket", "probe"))
        .listener(Listener::new("websocket", "echo"))
        .worker("instances = 2")
        .worker("event_deadline_ms = 10000")
        .start();
    let echo_url = format!("ws://{}/", server.addrs[1]);
    let run = Duration::from_secs(4);
    let (quiet50, quiet99) = echo_latency(&echo_url, 10, run).await;
    let mut spinners = Vec::new();
    for _ in 0..8 {
        spinners.push(Ws::connect(&server.url()).await);
    }
    for ws in &mut spinners {
        ws.send_text(r#"{"id":1,"op":"spin"}"#).await;
    }
    let (busy50, busy99) = echo_latency(&echo_url, 10, run).await;
    println!(
        "another app's echo while one app spins on every instance: p50 {:.2} ms, p99 {:.2} ms; \
         with it idle: p50 {:.2} ms, p99 {:.2} ms (p99 {:+.2} ms)",
        ms(busy50),
        ms(busy99),
        ms(quiet50),
        ms(quiet99),
        ms(busy99) - ms(quiet99)
    );
}

/// How long a light client waits on an instance that another client floods, against the
/// flood's own event time.
async fn fairness() {
    const EVENT_MS: u64 = 10;
    const FLOOD: u64 = 200;
    let server = Setup::one("websocket", "probe")
        .worker("instances = 1")
        .start();
    let mut flooder = Ws::connect(&server.url()).await;
    let mut light = Ws::connect(&server.url()).await;
    let busy = format!(r#"{{"id":0,"op":"busy","ms":{EVENT_MS}}}"#);
    for _ in 0..FLOOD {
        flooder.send_text(&busy).await;
    }
    // The light client asks once per flood event while the flood lasts.
    let mut waits = Vec::new();
    for _ in 0..FLOOD / 4 {
        let sent = Instant::now();
        light.send_text(r#"{"id":1,"op":"whoami"}"#).await;
        light.recv().await;
        waits.push(sent.elapsed());
    }
    waits.sort_unstable();
    let p99 = waits[(waits.len() - 1) * 99 / 100];
    println!(
        "a light client on an instance flooded with {FLOOD} events of {EVENT_MS} ms: waits \
         p50 {:.1} ms, p99 {:.1} ms ({:.1} flood events; first in, first out would be {FLOOD})",
        ms(waits[waits.len() / 2]),
        ms(p99),
        ms(p99) / EVENT_MS as f64
    );
}

/// Server CPU used by `pids` while `work` runs, with what `work` returns.
async fn with_cpu<T>(pids: &[u32], work: impl std::future::Future<Output = T>) -> (T, f64) {
    let before: f64 = pids.iter().map(|&p| cpu_seconds(p)).sum();
    let out = work.await;
    let after: f64 = pids.iter().map(|&p| cpu_seconds(p)).sum();
    (out, after - before)
}

/// Round trips per second of `ECHO_CLIENTS` closed-loop clients spread over `urls`.
async fn spread_round_trips(urls: &[String], payload: &str) -> f64 {
    let mut tasks = Vec::new();
    let mut clients = Vec::new();
    for i in 0..ECHO_CLIENTS {
        clients.push(Ws::connect(&urls[i % urls.len()]).await);
    }
    let deadline = Instant::now() + Duration::from_secs(ECHO_SECONDS);
    for mut ws in clients {
        let payload = payload.to_owned();
        tasks.push(tokio::spawn(async move {
            let mut n = 0u64;
            while Instant::now() < deadline {
                ws.send_text(&payload).await;
                assert_eq!(ws.recv().await, Received::Text(payload.clone()));
                n += 1;
            }
            n
        }));
    }
    let mut total = 0;
    for task in tasks {
        total += task.await.expect("client");
    }
    total as f64 / ECHO_SECONDS as f64
}

/// Members of the fan-out group.
const GROUP_MEMBERS: usize = 500;

/// Deliveries per second to a group of `GROUP_MEMBERS` spread over `urls`: one sender keeps
/// up to 8 group sends in flight (its own copy comes back), every member counts what it gets.
async fn group_deliveries(urls: &[String]) -> f64 {
    let mut members = Vec::new();
    for i in 0..GROUP_MEMBERS {
        let mut ws = Ws::connect(&urls[i % urls.len()]).await;
        ws.send_text("join:g").await;
        members.push(ws);
    }
    // The joins are applied in order before the sender's first send on each gateway: wait
    // until a probe send reaches everyone.
    let mut sender = members.pop().expect("a member");
    sender.send_text("group:g:ready").await;
    for ws in &mut members {
        while ws.recv_text().await != "ready" {}
    }
    while sender.recv_text().await != "ready" {}
    let received = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut readers = Vec::new();
    for mut ws in members {
        let (received, stop) = (received.clone(), stop.clone());
        readers.push(tokio::spawn(async move {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                if ws.try_recv(Duration::from_millis(200)).await.is_some() {
                    received.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
            }
        }));
    }
    let started = Instant::now();
    let run = Duration::from_secs(ECHO_SECONDS);
    let (mut sent, mut back) = (0u64, 0u64);
    while started.elapsed() < run {
        while sent - back < 8 {
            sender.send_text("group:g:x").await;
            sent += 1;
        }
        sender.recv().await;
        back += 1;
    }
    let elapsed = started.elapsed();
    let counted = received.load(std::sync::atomic::Ordering::Relaxed);
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for reader in readers {
        let _ = reader.await;
    }
    // The sender's own copies are deliveries too.
    (counted + back) as f64 / elapsed.as_secs_f64()
}

/// A cluster member's config: the bench app on WebSocket.
fn member_config(nats: &str, role: &str) -> String {
    format!(
        "{}\n[cluster]\nnats_url = \"{nats}\"\nrole = \"{role}\"\n",
        Setup::one("websocket", "bench").toml()
    )
}

/// Embedded against cluster (2 gateways, 2 workers, one NATS, on this machine): echo round
/// trips and group deliveries per second, and the CPU all server processes spend on each.
async fn cluster() {
    let payload = "echo:0123456789abcdef";
    let embedded = Setup::one("websocket", "bench").start();
    let urls = [embedded.url()];
    let (e_rt, e_rt_cpu) = with_cpu(&[embedded.pid()], spread_round_trips(&urls, payload)).await;
    let (e_fan, e_fan_cpu) = with_cpu(&[embedded.pid()], group_deliveries(&urls)).await;
    drop(embedded);

    let nats = support::nats::NatsServer::start();
    let workers = [
        Server::start(&member_config(&nats.url, "worker")),
        Server::start(&member_config(&nats.url, "worker")),
    ];
    let gateways = [
        Server::start(&member_config(&nats.url, "gateway")),
        Server::start(&member_config(&nats.url, "gateway")),
    ];
    for gateway in &gateways {
        gateway.wait_for_count("serves bench", 2).await;
    }
    let mut pids: Vec<u32> = gateways.iter().chain(&workers).map(Server::pid).collect();
    pids.push(nats.pid());
    let urls: Vec<String> = gateways.iter().map(Server::url).collect();
    let cpu_of = |pids: &[u32]| pids.iter().map(|&p| cpu_seconds(p)).sum::<f64>();
    let split_before = [cpu_of(&pids[..2]), cpu_of(&pids[2..4]), cpu_of(&pids[4..])];
    let (c_rt, c_rt_cpu) = with_cpu(&pids, spread_round_trips(&urls, payload)).await;
    let split_after = [cpu_of(&pids[..2]), cpu_of(&pids[2..4]), cpu_of(&pids[4..])];
    let (c_fan, c_fan_cpu) = with_cpu(&pids, group_deliveries(&urls)).await;

    let us = |cpu: f64, rate: f64| cpu / (rate * ECHO_SECONDS as f64) * 1e6;
    println!(
        "echo, {ECHO_CLIENTS} clients: embedded {e_rt:.0} round trips/s ({:.1} us CPU each), \
         cluster {c_rt:.0}/s ({:.1} us CPU each, all processes and NATS): throughput ratio {:.2}, \
         CPU ratio {:.2}",
        us(e_rt_cpu, e_rt),
        us(c_rt_cpu, c_rt),
        c_rt / e_rt,
        us(c_rt_cpu, c_rt) / us(e_rt_cpu, e_rt)
    );
    let share = |i: usize| (split_after[i] - split_before[i]) / c_rt_cpu * 100.0;
    println!(
        "  cluster echo CPU: gateways {:.0}%, workers {:.0}%, nats-server {:.0}%",
        share(0),
        share(1),
        share(2)
    );
    println!(
        "group of {GROUP_MEMBERS}: embedded {e_fan:.0} deliveries/s ({:.2} us CPU each), \
         cluster {c_fan:.0}/s ({:.2} us CPU each): throughput ratio {:.2}, CPU ratio {:.2}",
        us(e_fan_cpu, e_fan),
        us(c_fan_cpu, c_fan),
        c_fan / e_fan,
        us(c_fan_cpu, c_fan) / us(e_fan_cpu, e_fan)
    );
}

/// Store operations timed inside one event of the probe plugin, and directly.
const KV_OPS: u64 = 2000;

/// Operations per second of `n` taking `elapsed_us`.
fn per_second(n: u64, elapsed_us: u64) -> f64 {
    n as f64 * 1e6 / elapsed_us.max(1) as f64
}

/// `n` times `request` inside one probe event; operations per second.
async fn repeated(probe: &mut support::probe::Probe, n: u64, request: serde_json::Value) -> f64 {
    let reply = probe
        .ok("repeat", serde_json::json!({ "n": n, "request": request }))
        .await;
    per_second(n, reply["elapsed_us"].as_u64().expect("elapsed_us"))
}

/// Key-value set, get and increment per second from a plugin (the embedded store, one
/// instance, one call after the other), against the same store called directly.
async fn kv() {
    use serde_json::json;
    use switchboard::worker::capabilities::kv::{Entry, KvBackend, now_ms};
    let data = tempfile::tempdir().expect("temp dir");
    let server = Setup::one("websocket", "probe")
        .worker(&format!(
            "data_dir = {:?}",
            data.path().display().to_string()
        ))
        .worker("event_deadline_ms = 600000")
        .start();
    let mut probe = support::probe::Probe::connect(&server.url()).await;
    let value = "0123456789abcdef0123456789abcdef";
    let set = repeated(
        &mut probe,
        KV_OPS,
        json!({"op": "kv-set", "key": "k", "value": value}),
    )
    .await;
    let get = repeated(&mut probe, KV_OPS * 10, json!({"op": "kv-get", "key": "k"})).await;
    let incr = repeated(&mut probe, KV_OPS, json!({"op": "kv-incr", "key": "n"})).await;
    drop(server);

    let direct = tempfile::tempdir().expect("temp dir");
    let store = KvBackend::embedded(direct.path())
        .expect("store")
        .store()
        .clone();
    let started = Instant::now();
    for _ in 0..KV_OPS {
        let entry = Entry::new(value.as_bytes().to_vec(), None, now_ms());
        store.set("app", "k", entry).await.expect("set");
    }
    let direct_set = per_second(KV_OPS, started.elapsed().as_micros() as u64);
    let started = Instant::now();
    for _ in 0..KV_OPS * 10 {
        store.get("app", "k").await.expect("get");
    }
    let direct_get = per_second(KV_OPS * 10, started.elapsed().as_micros() as u64);
    println!(
        "kv from a plugin (embedded, 32-byte values): set {set:.0}/s, get {get:.0}/s, \
         increment {incr:.0}/s; the store called directly: set {direct_set:.0}/s, \
         get {direct_get:.0}/s (ratios {:.2}, {:.2})",
        set / direct_set,
        get / direct_get
    );
}

/// Outbound HTTP calls one after the other.
const OUTBOUND_CALLS: u64 = 500;

/// The cost of an outbound HTTP GET from a plugin to a server on this machine, against the
/// same request sent from this process on a new connection (as the host does).
async fn outbound() {
    use serde_json::json;
    use support::web::{Answer, Web};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let web = Web::start(|_| Answer::Now(200, "ok".into())).await;
    let config = format!(
        "{}\n[apps.probe]\nallowed_outbound_hosts = [\"{}\"]\n",
        Setup::one("websocket", "probe")
            .worker("event_deadline_ms = 600000")
            .toml(),
        web.origin()
    );
    let server = Server::start(&config);
    let mut probe = support::probe::Probe::connect(&server.url()).await;
    let url = format!("{}/", web.origin());
    let ours = repeated(
        &mut probe,
        OUTBOUND_CALLS,
        json!({"op": "http", "url": url}),
    )
    .await;
    drop(server);
    let started = Instant::now();
    for _ in 0..OUTBOUND_CALLS {
        let mut stream = tokio::net::TcpStream::connect(web.addr)
            .await
            .expect("connect");
        stream
            .write_all(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
            .await
            .expect("request");
        let mut response = Vec::new();
        stream.read_to_end(&mut response).await.expect("response");
    }
    let direct = per_second(OUTBOUND_CALLS, started.elapsed().as_micros() as u64);
    println!(
        "outbound HTTP GET to a local server: from a plugin {:.0} µs per call ({ours:.0}/s), \
         from this process on a new connection {:.0} µs ({direct:.0}/s)",
        1e6 / ours,
        1e6 / direct
    );
}
