//! Load benchmarks of the real `switchboard` binary, each figure next to a baseline measured
//! in the same run: a native tokio-tungstenite server (this binary, re-run with
//! `--baseline-server`: 4 KiB read buffer, a writer task per connection, the bench plugin's
//! protocol done in Rust), or the same operation under another condition.
//!
//! `cargo bench --bench load -- [echo100] [echo1000] [group] [all] [idle] [handshakes] [swap]
//! [isolation] [fairness] [cluster] [kv] [outbound] [instructions]` (all but `instructions`
//! without arguments; `echo` runs `echo100` and `echo1000`). The gateway figures (echo,
//! group, all, idle, handshakes) print server CPU per operation read from /proc, throughput,
//! and the ratio to the baseline. The echo cases run both servers at once and load them in
//! turns, half a second each, so that the machine's load weighs on both alike.
//! The idle figure holds 15 000 clients: the bench raises its soft file limit to the hard
//! one, and the servers it starts inherit it.
//! With `SWITCHBOARD_BENCH_CPUS=SERVERS:CLIENTS` (taskset's CPU lists, such as `0:1`) the
//! servers run on the first CPUs and the bench's own clients on the second.

#[path = "../../tests/e2e/support/mod.rs"]
mod support;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use support::clients::{Received, Ws};
use support::process::{bench_cpus, cpu_seconds, pin, raise_file_limit, rss_kib, server_command};
use support::{
    Listener, Server, Setup, deploy_by_rename, plugin_bytes, plugin_folder, plugins_dir, retagged,
};

/// Idle clients connected for the memory figure.
const IDLE_CLIENTS: usize = 15_000;
/// Clients of the echo figure in the cluster comparison.
const ECHO_CLIENTS: usize = 100;
/// How long each throughput run lasts.
const ECHO_SECONDS: u64 = 5;
/// Slices each server's echo run is cut into, alternating with the other server's.
const ECHO_SLICES: u32 = 10;
/// Connections opened for the handshake figure.
const HANDSHAKES: usize = 10_000;
/// Handshakes in flight at once in the handshake figure.
const HANDSHAKE_CONCURRENCY: usize = 64;
/// Members of the group and clients of the broadcast in the fan-out figures.
const FAN_OUT_CLIENTS: usize = 1000;

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    if args.first().map(String::as_str) == Some("--baseline-server") {
        return baseline_server();
    }
    raise_file_limit();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    if let Some((_, clients)) = bench_cpus() {
        pin(std::process::id(), &clients);
    }
    let all = args.is_empty();
    let wants = |name: &str| all || args.iter().any(|a| a == name);
    runtime.block_on(async {
        plugins_dir();
        if wants("echo100") || wants("echo") {
            compare_echo(100).await;
        }
        if wants("echo1000") || wants("echo") {
            compare_echo(1000).await;
        }
        if wants("group") {
            compare_fan_out(FanOut::Group).await;
        }
        if wants("all") {
            compare_fan_out(FanOut::All).await;
        }
        if wants("idle") {
            idle().await;
        }
        if wants("handshakes") {
            handshakes().await;
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
        // Not in "all": it runs both servers under valgrind, which takes a minute.
        if args.iter().any(|a| a == "instructions") {
            instructions().await;
        }
    });
}

/// The native baseline server, as a child process.
struct Baseline {
    child: Child,
    addr: SocketAddr,
}

impl Baseline {
    fn start() -> Self {
        Self::spawn(server_command(std::env::current_exe().expect("own path")))
    }

    /// Runs `cmd`, this bench binary (under whatever runs it), as the baseline server.
    fn spawn(mut cmd: std::process::Command) -> Self {
        let mut child = cmd
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

    fn url(&self) -> String {
        format!("ws://{}/", self.addr)
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Baseline {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What the baseline's connections write.
type BaselineOut = tokio_tungstenite::tungstenite::Message;

/// The baseline's clients: a sender per connection for the fan-out, and groups of ids.
#[derive(Default)]
struct BaselineClients {
    senders: std::collections::HashMap<u64, tokio::sync::mpsc::Sender<BaselineOut>>,
    groups: std::collections::HashMap<String, Vec<u64>>,
}

/// A native server speaking the bench plugin's protocol (`echo:`, `join:`, `group:`, `all:`;
/// anything else is echoed): tokio-tungstenite with a 4 KiB read buffer, a reader in the
/// connection's task and a writer task per connection draining a bounded queue in batches,
/// fan-out targets collected under a lock and fed outside it, one frame shared by all.
fn baseline_server() {
    use std::sync::{Arc, Mutex};
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        println!("{}", listener.local_addr().expect("addr"));
        let clients = Arc::new(Mutex::new(BaselineClients::default()));
        let mut next_id = 0u64;
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let _ = stream.set_nodelay(true);
            next_id += 1;
            tokio::spawn(baseline_connection(stream, next_id, clients.clone()));
        }
    });
}

/// One connection of the baseline server.
async fn baseline_connection(
    stream: tokio::net::TcpStream,
    id: u64,
    clients: std::sync::Arc<std::sync::Mutex<BaselineClients>>,
) {
    use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
    let config = WebSocketConfig::default()
        .read_buffer_size(4096)
        .write_buffer_size(0);
    let Ok(ws) = tokio_tungstenite::accept_async_with_config(stream, Some(config)).await else {
        return;
    };
    let (mut sink, mut stream) = ws.split();
    let (tx, mut rx) = tokio::sync::mpsc::channel::<BaselineOut>(1024);
    clients.lock().expect("lock").senders.insert(id, tx.clone());
    let writer = tokio::spawn(async move {
        while let Some(first) = rx.recv().await {
            if sink.feed(first).await.is_err() {
                return;
            }
            while let Ok(next) = rx.try_recv() {
                if sink.feed(next).await.is_err() {
                    return;
                }
            }
            if sink.flush().await.is_err() {
                return;
            }
        }
    });
    while let Some(Ok(message)) = stream.next().await {
        let BaselineOut::Text(text) = &message else {
            if message.is_binary() && tx.send(message).await.is_err() {
                break;
            }
            continue;
        };
        let text = text.as_str();
        let fan_out = if let Some(group) = text.strip_prefix("join:") {
            let mut clients = clients.lock().expect("lock");
            clients.groups.entry(group.to_owned()).or_default().push(id);
            continue;
        } else if let Some((group, payload)) = text
            .strip_prefix("group:")
            .and_then(|rest| rest.split_once(':'))
        {
            let clients = clients.lock().expect("lock");
            let members = clients.groups.get(group).map(Vec::as_slice);
            let targets: Vec<_> = members
                .unwrap_or_default()
                .iter()
                .filter_map(|m| clients.senders.get(m).cloned())
                .collect();
            Some((BaselineOut::text(payload), targets))
        } else if let Some(payload) = text.strip_prefix("all:") {
            let clients = clients.lock().expect("lock");
            let targets: Vec<_> = clients.senders.values().cloned().collect();
            Some((BaselineOut::text(payload), targets))
        } else {
            None
        };
        match fan_out {
            Some((frame, targets)) => {
                for target in targets {
                    let _ = target.try_send(frame.clone());
                }
            }
            None => {
                if tx.send(message).await.is_err() {
                    break;
                }
            }
        }
    }
    {
        let mut clients = clients.lock().expect("lock");
        clients.senders.remove(&id);
        for members in clients.groups.values_mut() {
            members.retain(|m| *m != id);
        }
    }
    drop(tx);
    let _ = writer.await;
}

/// A throughput figure: operations per second, and server CPU per operation.
#[derive(Clone, Copy)]
struct Figure {
    per_second: f64,
    cpu_us: f64,
}

impl Figure {
    fn new(ops: u64, elapsed: Duration, cpu_seconds: f64) -> Self {
        Self {
            per_second: ops as f64 / elapsed.as_secs_f64(),
            cpu_us: cpu_seconds / ops.max(1) as f64 * 1e6,
        }
    }

    /// This run and another of as many operations, as one.
    fn and(self, other: Figure) -> Self {
        Self {
            per_second: 2.0 / (1.0 / self.per_second + 1.0 / other.per_second),
            cpu_us: (self.cpu_us + other.cpu_us) / 2.0,
        }
    }
}

/// Prints one case: switchboard and the baseline side by side, with the ratios.
fn print_comparison(case: &str, unit: &str, ours: Figure, theirs: Figure) {
    println!(
        "{case}: switchboard {:.2} us CPU/{unit}, {:.0} {unit}/s | native {:.2} us CPU/{unit}, \
         {:.0} {unit}/s | CPU ratio {:.2}, throughput ratio {:.2}",
        ours.cpu_us,
        ours.per_second,
        theirs.cpu_us,
        theirs.per_second,
        ours.cpu_us / theirs.cpu_us,
        ours.per_second / theirs.per_second
    );
}

/// A switchboard with the bench app on WebSocket, every client allowed from 127.0.0.1.
fn bench_server() -> Server {
    Setup::default()
        .listener(Listener::new("websocket", "bench").with("max_connections_per_ip = 0"))
        .start()
}

/// Echo round trips of `clients` closed-loop clients, switchboard against the baseline, in
/// alternating slices: both servers run at once, each with its own clients, and only one is
/// loaded at a time, in the order ours, native, native, ours, … A change in the machine's load
/// during the run then weighs on both figures alike.
async fn compare_echo(clients: usize) {
    let payload = "echo:0123456789abcdef";
    let server = bench_server();
    let baseline = Baseline::start();
    let mut ours = EchoLoad::connect(&[server.pid()], &[server.url()], clients).await;
    let mut theirs = EchoLoad::connect(&[baseline.pid()], &[baseline.url()], clients).await;
    let slice = Duration::from_secs(ECHO_SECONDS) / ECHO_SLICES;
    for i in 0..ECHO_SLICES {
        let (first, second) = match i % 2 {
            0 => (&mut ours, &mut theirs),
            _ => (&mut theirs, &mut ours),
        };
        first.run(payload, slice).await;
        second.run(payload, slice).await;
    }
    print_comparison(
        &format!("echo, {clients} clients"),
        "round trip",
        ours.figure(),
        theirs.figure(),
    );
}

/// Group deliveries or broadcasts, switchboard against the baseline.
async fn compare_fan_out(kind: FanOut) {
    let server = bench_server();
    let ours = fan_out_figure(&[server.pid()], &[server.url()], FAN_OUT_CLIENTS, kind).await;
    drop(server);
    let baseline = Baseline::start();
    let theirs = fan_out_figure(&[baseline.pid()], &[baseline.url()], FAN_OUT_CLIENTS, kind).await;
    let case = match kind {
        FanOut::Group => format!("fan-out to a group of {FAN_OUT_CLIENTS}"),
        FanOut::All => format!("fan-out to all {FAN_OUT_CLIENTS} clients"),
    };
    print_comparison(&case, "delivery", ours, theirs);
}

/// A client with tungstenite's buffers small, so 15 000 of them fit in this process.
async fn small_client(url: &str) -> impl Send + use<> {
    use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
    let config = WebSocketConfig::default()
        .read_buffer_size(4096)
        .write_buffer_size(0);
    let connect = tokio_tungstenite::connect_async_with_config(url, Some(config), true);
    tokio::time::timeout(support::clients::TIMEOUT, connect)
        .await
        .expect("handshake in time")
        .expect("handshake succeeds")
}

/// KiB of server memory per idle client: RSS after connecting `IDLE_CLIENTS`, minus RSS with
/// 100 connected (so start-up and warm-up costs are excluded).
async fn idle_kib_per_client(pid: u32, url: &str) -> f64 {
    let mut clients = Vec::with_capacity(IDLE_CLIENTS);
    for _ in 0..100 {
        clients.push(small_client(url).await);
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = rss_kib(pid);
    for _ in 100..IDLE_CLIENTS {
        clients.push(small_client(url).await);
    }
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let after = rss_kib(pid);
    (after - before) as f64 / (IDLE_CLIENTS - 100) as f64
}

async fn idle() {
    let server = bench_server();
    let ours = idle_kib_per_client(server.pid(), &server.url()).await;
    drop(server);
    let baseline = Baseline::start();
    let theirs = idle_kib_per_client(baseline.pid(), &baseline.url()).await;
    println!(
        "idle WebSocket client: switchboard {ours:.2} KiB RSS | native {theirs:.2} KiB | \
         ratio {:.2} ({IDLE_CLIENTS} clients held)",
        ours / theirs
    );
}

/// Connects `HANDSHAKES` clients, `HANDSHAKE_CONCURRENCY` at a time, and holds them until
/// all are open: connects per second, and server CPU per connect.
async fn handshake_figure(pid: u32, url: &str) -> Figure {
    let before = cpu_seconds(pid);
    let started = Instant::now();
    let held: Vec<_> = futures_util::stream::iter(0..HANDSHAKES)
        .map(|_| small_client(url))
        .buffer_unordered(HANDSHAKE_CONCURRENCY)
        .collect()
        .await;
    let elapsed = started.elapsed();
    let cpu = cpu_seconds(pid) - before;
    drop(held);
    Figure::new(HANDSHAKES as u64, elapsed, cpu)
}

/// Handshakes to a new switchboard and to a new baseline, in the order ours, theirs, theirs,
/// ours, so that neither side gains from going second. The first 10 000 connects on a
/// machine grow the kernel's socket caches, paid by the server that accepts them: a round
/// against a throwaway baseline pays that before either is measured.
async fn handshakes() {
    let warm_up = Baseline::start();
    handshake_figure(warm_up.pid(), &warm_up.url()).await;
    drop(warm_up);
    let ours_first = ours_handshakes().await;
    let theirs = theirs_handshakes().await.and(theirs_handshakes().await);
    let ours = ours_first.and(ours_handshakes().await);
    print_comparison(
        &format!("{HANDSHAKES} WebSocket handshakes (two rounds each)"),
        "connect",
        ours,
        theirs,
    );
}

/// One round of handshakes to a new switchboard.
async fn ours_handshakes() -> Figure {
    let server = bench_server();
    handshake_figure(server.pid(), &server.url()).await
}

/// One round of handshakes to a new baseline.
async fn theirs_handshakes() -> Figure {
    let baseline = Baseline::start();
    handshake_figure(baseline.pid(), &baseline.url()).await
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

/// The loads of the instruction count: (clients, round trips each).
const COUNTED: [(usize, usize); 2] = [(1, 1000), (100, 100)];
/// Counts taken of each load; the least is reported.
const COUNTS: usize = 3;

/// User-space instructions per echo round trip, switchboard against the baseline, each
/// server run under valgrind's callgrind. Unlike CPU time, the count does not move with the
/// machine's load, so it shows changes of a few percent that the CPU figures cannot. Its
/// noise only adds: valgrind runs one thread at a time, so clients' messages batch
/// differently from run to run, and calls 50 times slower sometimes trip the pool's rule
/// against slow inline calls. So the least of [`COUNTS`] counts is the figure. It leaves out
/// the kernel, half of the real cost.
async fn instructions() {
    if std::process::Command::new("valgrind")
        .arg("--version")
        .output()
        .is_err()
    {
        println!("instructions: needs valgrind (apt-get install valgrind)");
        return;
    }
    let payload = "echo:0123456789abcdef";
    let ours = {
        // The server's folder holds its config and the counts; it goes with the server.
        let dir = tempfile::tempdir().expect("temp dir");
        let config = dir.path().join("switchboard.toml");
        let toml = Setup::default()
            .listener(Listener::new("websocket", "bench").with("max_connections_per_ip = 0"))
            .toml();
        std::fs::write(&config, toml).expect("config written");
        let out = dir.path().join("callgrind");
        let mut cmd = callgrind(&out);
        cmd.arg(env!("CARGO_BIN_EXE_switchboard"))
            .arg("start")
            .arg("-c")
            .arg(&config);
        let server = Server::spawn(cmd, dir);
        counted(server.pid(), &out, &server.url(), payload).await
    };
    let theirs = {
        let dir = tempfile::tempdir().expect("temp dir");
        let out = dir.path().join("callgrind");
        let mut cmd = callgrind(&out);
        cmd.arg(std::env::current_exe().expect("own path"));
        let baseline = Baseline::spawn(cmd);
        counted(baseline.pid(), &out, &baseline.url(), payload).await
    };
    for (((clients, _), ours), theirs) in COUNTED.iter().zip(ours).zip(theirs) {
        println!(
            "echo instructions, {clients} clients: switchboard {ours:.0} per round trip | \
             native {theirs:.0} | ratio {:.2} (the least of {COUNTS} counts)",
            ours / theirs
        );
    }
}

/// `valgrind --tool=callgrind`, writing its counts to `out`; the program comes next.
fn callgrind(out: &std::path::Path) -> std::process::Command {
    let mut cmd = std::process::Command::new("valgrind");
    cmd.args(["--tool=callgrind", "--dump-instr=no", "--quiet"])
        .arg(format!("--callgrind-out-file={}", out.display()));
    cmd
}

/// For each load of [`COUNTED`], the least instructions the process `pid` (under callgrind,
/// counting into `out`) ran per round trip in [`COUNTS`] counts; counted from after a
/// warm-up, so connecting and first calls are left out.
async fn counted(pid: u32, out: &std::path::Path, url: &str, payload: &str) -> Vec<f64> {
    let most = COUNTED
        .iter()
        .map(|&(clients, _)| clients)
        .max()
        .unwrap_or(1);
    let mut clients = Vec::new();
    for _ in 0..most {
        clients.push(Ws::connect(url).await);
    }
    let mut clients = echo_rounds(clients, 20, payload).await;
    let control = |what: &str| {
        let status = std::process::Command::new("callgrind_control")
            .arg(what)
            .arg(pid.to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("callgrind_control runs");
        assert!(status.success(), "callgrind_control {what} failed");
    };
    let mut dumps = 0;
    let mut least = Vec::new();
    for &(n, rounds) in &COUNTED {
        let mut counts = Vec::new();
        for _ in 0..COUNTS {
            control("-z");
            let rest = clients.split_off(n);
            clients = echo_rounds(clients, rounds, payload).await;
            clients.extend(rest);
            control("-d");
            dumps += 1;
            let dump = std::fs::read_to_string(format!("{}.{dumps}", out.display()))
                .expect("callgrind dump");
            let counted: f64 = dump
                .lines()
                .find_map(|l| l.strip_prefix("summary:"))
                .and_then(|n| n.trim().parse().ok())
                .expect("a summary line");
            counts.push(counted / (n * rounds) as f64);
        }
        least.push(counts.into_iter().fold(f64::INFINITY, f64::min));
    }
    least
}

/// Has every client make `rounds` echo round trips, all at once; gives the clients back.
async fn echo_rounds(clients: Vec<Ws>, rounds: usize, payload: &str) -> Vec<Ws> {
    let tasks: Vec<_> = clients
        .into_iter()
        .map(|mut ws| {
            let payload = payload.to_owned();
            tokio::spawn(async move {
                for _ in 0..rounds {
                    ws.send_text(&payload).await;
                    assert_eq!(ws.recv().await, Received::Text(payload.clone()));
                }
                ws
            })
        })
        .collect();
    let mut back = Vec::new();
    for task in tasks {
        back.push(task.await.expect("client"));
    }
    back
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

/// Round trips of `clients` closed-loop clients spread over `urls`, and the CPU `pids` spend
/// on them (counted from the first send, so connecting is left out).
async fn echo_figure(pids: &[u32], urls: &[String], clients: usize, payload: &str) -> Figure {
    let mut load = EchoLoad::connect(pids, urls, clients).await;
    load.run(payload, Duration::from_secs(ECHO_SECONDS)).await;
    load.figure()
}

/// Closed-loop echo clients of one server (or cluster), and what their runs added up to.
struct EchoLoad {
    pids: Vec<u32>,
    clients: Vec<Ws>,
    round_trips: u64,
    elapsed: Duration,
    cpu_seconds: f64,
}

impl EchoLoad {
    /// `clients` clients spread over `urls`, served by the processes `pids`.
    async fn connect(pids: &[u32], urls: &[String], clients: usize) -> Self {
        let mut connected = Vec::new();
        for i in 0..clients {
            connected.push(Ws::connect(&urls[i % urls.len()]).await);
        }
        Self {
            pids: pids.to_vec(),
            clients: connected,
            round_trips: 0,
            elapsed: Duration::ZERO,
            cpu_seconds: 0.0,
        }
    }

    /// Every client echoes `payload` in a closed loop for `run`; adds up round trips, time
    /// and the servers' CPU.
    async fn run(&mut self, payload: &str, run: Duration) {
        let started = Instant::now();
        let deadline = started + run;
        let clients = std::mem::take(&mut self.clients);
        let work = async {
            let tasks: Vec<_> = clients
                .into_iter()
                .map(|mut ws| {
                    let payload = payload.to_owned();
                    tokio::spawn(async move {
                        let mut n = 0u64;
                        while Instant::now() < deadline {
                            ws.send_text(&payload).await;
                            assert_eq!(ws.recv().await, Received::Text(payload.clone()));
                            n += 1;
                        }
                        (ws, n)
                    })
                })
                .collect();
            let (mut clients, mut total) = (Vec::new(), 0);
            for task in tasks {
                let (ws, n) = task.await.expect("client");
                clients.push(ws);
                total += n;
            }
            (clients, total)
        };
        let ((clients, round_trips), cpu) = with_cpu(&self.pids, work).await;
        self.clients = clients;
        self.round_trips += round_trips;
        self.elapsed += started.elapsed();
        self.cpu_seconds += cpu;
    }

    /// All runs so far as one figure.
    fn figure(&self) -> Figure {
        Figure::new(self.round_trips, self.elapsed, self.cpu_seconds)
    }
}

/// What a fan-out figure sends.
#[derive(Clone, Copy)]
enum FanOut {
    /// `group:g:…` to a group every client joined.
    Group,
    /// `all:…` to every client.
    All,
}

/// Deliveries to `clients` clients spread over `urls`, and the CPU `pids` spend on them: one
/// sender keeps up to 8 group sends or broadcasts in flight (its own copy comes back), every
/// other client counts what it gets.
async fn fan_out_figure(pids: &[u32], urls: &[String], clients: usize, kind: FanOut) -> Figure {
    let (send, ready) = match kind {
        FanOut::Group => ("group:g:x", "group:g:ready"),
        FanOut::All => ("all:x", "all:ready"),
    };
    let mut members = Vec::new();
    for i in 0..clients {
        let mut ws = Ws::connect(&urls[i % urls.len()]).await;
        if let FanOut::Group = kind {
            ws.send_text("join:g").await;
        }
        members.push(ws);
    }
    // Joins are applied in order before the sender's first send on each gateway, and a
    // broadcast reaches only clients already registered: wait until a probe reaches everyone.
    let mut sender = members.pop().expect("a member");
    sender.send_text(ready).await;
    for ws in &mut members {
        while ws.recv_text().await != "ready" {}
    }
    while sender.recv_text().await != "ready" {}
    let received = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let mut readers = Vec::new();
    for mut ws in members {
        let received = received.clone();
        readers.push(tokio::spawn(async move {
            while let Received::Text(_) | Received::Binary(_) = ws.recv().await {
                received.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
        }));
    }
    let run = Duration::from_secs(ECHO_SECONDS);
    let started = Instant::now();
    let work = async {
        let (mut sent, mut back) = (0u64, 0u64);
        while started.elapsed() < run {
            while sent - back < 8 {
                sender.send_text(send).await;
                sent += 1;
            }
            sender.recv().await;
            back += 1;
        }
        back
    };
    let (back, cpu) = with_cpu(pids, work).await;
    let elapsed = started.elapsed();
    let counted = received.load(std::sync::atomic::Ordering::Relaxed);
    for reader in &readers {
        reader.abort();
    }
    // The sender's own copies are deliveries too.
    Figure::new(counted + back, elapsed, cpu)
}

/// A cluster member's config: the bench app on WebSocket.
fn member_config(nats: &str, role: &str) -> String {
    format!(
        "{}\n[cluster]\nnats_url = \"{nats}\"\nrole = \"{role}\"\n",
        Setup::one("websocket", "bench").toml()
    )
}

/// Members of the fan-out group in the cluster comparison.
const GROUP_MEMBERS: usize = 500;

/// Embedded against cluster (2 gateways, 2 workers, one NATS, on this machine): echo round
/// trips and group deliveries per second, and the CPU all server processes spend on each.
async fn cluster() {
    let payload = "echo:0123456789abcdef";
    let embedded = Setup::one("websocket", "bench").start();
    let urls = [embedded.url()];
    let e_rt = echo_figure(&[embedded.pid()], &urls, ECHO_CLIENTS, payload).await;
    let e_fan = fan_out_figure(&[embedded.pid()], &urls, GROUP_MEMBERS, FanOut::Group).await;
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
    let c_rt = echo_figure(&pids, &urls, ECHO_CLIENTS, payload).await;
    let split_after = [cpu_of(&pids[..2]), cpu_of(&pids[2..4]), cpu_of(&pids[4..])];
    let c_fan = fan_out_figure(&pids, &urls, GROUP_MEMBERS, FanOut::Group).await;

    println!(
        "echo, {ECHO_CLIENTS} clients: embedded {:.0} round trips/s ({:.1} us CPU each), \
         cluster {:.0}/s ({:.1} us CPU each, all processes and NATS): throughput ratio {:.2}, \
         CPU ratio {:.2}",
        e_rt.per_second,
        e_rt.cpu_us,
        c_rt.per_second,
        c_rt.cpu_us,
        c_rt.per_second / e_rt.per_second,
        c_rt.cpu_us / e_rt.cpu_us
    );
    let spent: f64 = split_after.iter().sum::<f64>() - split_before.iter().sum::<f64>();
    let share = |i: usize| (split_after[i] - split_before[i]) / spent * 100.0;
    println!(
        "  cluster echo CPU: gateways {:.0}%, workers {:.0}%, nats-server {:.0}%",
        share(0),
        share(1),
        share(2)
    );
    println!(
        "group of {GROUP_MEMBERS}: embedded {:.0} deliveries/s ({:.2} us CPU each), \
         cluster {:.0}/s ({:.2} us CPU each): throughput ratio {:.2}, CPU ratio {:.2}",
        e_fan.per_second,
        e_fan.cpu_us,
        c_fan.per_second,
        c_fan.cpu_us,
        c_fan.per_second / e_fan.per_second,
        c_fan.cpu_us / e_fan.cpu_us
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
