//! Soak: many chat clients talking at a steady rate for minutes, through the real binary and
//! the `chat` plugin (which keeps every message in its room's history in the key-value
//! store). It checks what a long run must show: no message lost, and server memory flat.
//!
//! `cargo bench --bench soak -- [--clients N] [--minutes M] [--room R] [--rate PER_SECOND]`
//! (defaults: 10 000 clients in rooms of 5, each sending 1 message a second, for 10 minutes).
//! Prints the server's RSS every 30 s, then sent, expected and received deliveries, the
//! loss, the RSS spread after the first minute, and the server's CPU.

#[path = "../../tests/e2e/support/mod.rs"]
mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use support::{Listener, Setup};
use tokio_tungstenite::tungstenite::Message;

/// What one run does.
struct Plan {
    clients: usize,
    minutes: u64,
    room: usize,
    rate: f64,
}

impl Plan {
    fn from_args() -> Self {
        let mut plan = Self {
            clients: 10_000,
            minutes: 10,
            room: 5,
            rate: 1.0,
        };
        let mut args = std::env::args().skip(1).filter(|a| a != "--bench");
        while let Some(arg) = args.next() {
            const USAGE: &str = "usage: soak [--clients N] [--minutes M] [--room R] [--rate R]";
            let value = args
                .next()
                .and_then(|v| v.parse::<f64>().ok())
                .filter(|v| *v > 0.0)
                .expect(USAGE);
            match arg.as_str() {
                "--clients" => plan.clients = value as usize,
                "--minutes" => plan.minutes = value as u64,
                "--room" => plan.room = value as usize,
                "--rate" => plan.rate = value,
                _ => panic!("{USAGE}"),
            }
        }
        plan
    }
}

/// How long a room stays quiet before a stopped client stops reading.
const QUIET: Duration = Duration::from_secs(3);

/// What every client counts.
#[derive(Default)]
struct Tally {
    sent: AtomicU64,
    received: AtomicU64,
    /// Clients whose connection ended before the run did.
    dropped: AtomicU64,
}

fn main() {
    let plan = Plan::from_args();
    support::process::raise_file_limit();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(soak(plan));
}

async fn soak(plan: Plan) {
    let data = tempfile::tempdir().expect("temp dir");
    let server = Setup::default()
        .listener(
            Listener::new("websocket", "chat")
                .with("max_connections_per_ip = 0")
                .with("ping_interval_ms = 0"),
        )
        // Every line waits for two durable writes (the room's history): the store commits
        // the writes waiting side by side together, so instances set the batch (docs/API.md).
        .worker(&format!(
            "instances = 64\ndata_dir = {:?}",
            data.path().display().to_string()
        ))
        .start();
    let url = server.url();
    let pid = server.pid();
    println!(
        "soak: {} clients in rooms of {}, {} message(s)/s each, {} min, through chat",
        plan.clients, plan.room, plan.rate, plan.minutes
    );

    // Everyone joins first, so each room's members all see each other's messages.
    let tally = Arc::new(Tally::default());
    let mut ready = Vec::with_capacity(plan.clients);
    for n in 0..plan.clients {
        let (mut ws, _) = tokio_tungstenite::connect_async(url.as_str())
            .await
            .expect("connects");
        for line in [format!("/nick u{n}"), format!("/join r{}", n / plan.room)] {
            ws.send(Message::text(line)).await.expect("sends");
        }
        ready.push(ws);
    }
    let joined = Instant::now();
    // The last room may be smaller.
    let members = |n: usize| plan.room.min(plan.clients - n / plan.room * plan.room);

    let stop = Arc::new(AtomicBool::new(false));
    let period = Duration::from_secs_f64(1.0 / plan.rate);
    let mut clients = Vec::with_capacity(plan.clients);
    for (n, ws) in ready.into_iter().enumerate() {
        let (tally, stop) = (tally.clone(), stop.clone());
        // Spread over the period so the load is steady rather than a beat.
        let phase = period.mul_f64(n as f64 / plan.clients as f64);
        clients.push(tokio::spawn(talk(ws, n, phase, period, tally, stop)));
    }

    let cpu_before = support::process::cpu_seconds(pid);
    let run = Duration::from_secs(plan.minutes * 60);
    let started = Instant::now();
    let mut rss = Vec::new();
    while started.elapsed() < run {
        tokio::time::sleep(Duration::from_secs(30).min(run - started.elapsed())).await;
        let kib = support::process::rss_kib(pid);
        println!(
            "  {:>4} s  RSS {:>8.1} MiB  sent {:>9}  received {:>10}",
            started.elapsed().as_secs(),
            kib as f64 / 1024.0,
            tally.sent.load(Relaxed),
            tally.received.load(Relaxed)
        );
        rss.push((started.elapsed(), kib));
    }
    stop.store(true, Relaxed);
    let sent_per_client: Vec<u64> = futures_util::future::join_all(clients)
        .await
        .into_iter()
        .map(|c| c.expect("client task"))
        .collect();
    let cpu = support::process::cpu_seconds(pid) - cpu_before;
    // Only the messages each member of a room sent count for the others: a room's
    // expected deliveries are its messages times its size.
    let expected: u64 = (0..plan.clients)
        .map(|n| sent_per_client[n] * members(n) as u64)
        .sum();
    let received = tally.received.load(Relaxed);
    let sent = tally.sent.load(Relaxed);
    let steady: Vec<u64> = rss
        .iter()
        .filter(|(at, _)| *at >= Duration::from_secs(60))
        .map(|&(_, kib)| kib)
        .collect();
    let spread = match (steady.iter().min(), steady.iter().max()) {
        (Some(&lo), Some(&hi)) if lo > 0 => {
            format!("{:.1} %", (hi - lo) as f64 * 100.0 / lo as f64)
        }
        _ => "n/a (run shorter than 90 s)".to_owned(),
    };
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "soak results ({:.0} s after joining):",
        joined.elapsed().as_secs_f64()
    );
    println!(
        "  messages sent        {sent} ({:.0}/s)",
        sent as f64 / seconds
    );
    println!("  deliveries expected  {expected}");
    println!("  deliveries received  {received}");
    println!(
        "  lost                 {}",
        expected.saturating_sub(received)
    );
    println!("  clients dropped      {}", tally.dropped.load(Relaxed));
    println!("  server RSS spread after the first minute: {spread}");
    println!(
        "  server CPU           {cpu:.0} s ({:.2} cores, {:.1} µs per delivery)",
        cpu / seconds,
        cpu * 1e6 / received.max(1) as f64
    );
}

/// One client: sends `m<seq>` every `period` after `phase` and counts its room's chat lines.
/// After the stop it keeps reading until its own last line came back and the room has been
/// quiet for [`QUIET`] (others may have sent one more), at most a minute. Returns what it
/// sent.
async fn talk(
    ws: tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
    n: usize,
    phase: Duration,
    period: Duration,
    tally: Arc<Tally>,
    stop: Arc<AtomicBool>,
) -> u64 {
    let (mut write, mut read) = ws.split();
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + phase, period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let me = format!("u{n}: ");
    let (mut sent, mut echoed) = (0u64, 0u64);
    // Once stopped: when to give up, and when the room has been quiet long enough.
    let mut draining: Option<tokio::time::Instant> = None;
    let mut quiet_until = tokio::time::Instant::now();
    loop {
        let done_waiting = match draining {
            Some(deadline) if echoed >= sent => deadline.min(quiet_until),
            Some(deadline) => deadline,
            None => tokio::time::Instant::now() + Duration::from_secs(86_400),
        };
        tokio::select! {
            _ = tick.tick(), if draining.is_none() => {
                if stop.load(Relaxed) {
                    draining = Some(tokio::time::Instant::now() + Duration::from_secs(60));
                    quiet_until = tokio::time::Instant::now() + QUIET;
                    continue;
                }
                sent += 1;
                tally.sent.fetch_add(1, Relaxed);
                if write.send(Message::text(format!("m{sent}"))).await.is_err() {
                    tally.dropped.fetch_add(1, Relaxed);
                    return sent;
                }
            }
            frame = read.next() => match frame {
                Some(Ok(Message::Text(text))) => {
                    // Chat lines are `NICK: TEXT`; notices start with `*`, replies with `[`.
                    if text.starts_with('u') && text.contains(": m") {
                        tally.received.fetch_add(1, Relaxed);
                        if text.starts_with(me.as_str()) {
                            echoed += 1;
                        }
                        quiet_until = tokio::time::Instant::now() + QUIET;
                    }
                }
                Some(Ok(_)) => {}
                _ => {
                    tally.dropped.fetch_add(1, Relaxed);
                    return sent;
                }
            },
            () = tokio::time::sleep_until(done_waiting), if draining.is_some() => return sent,
        }
    }
}
