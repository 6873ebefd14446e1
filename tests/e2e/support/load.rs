//! Echo load for the tests of swaps and deploys: many clients of the `bench` (or `echo`)
//! app, each checking that its replies come back complete and in order.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::task::JoinHandle;

use super::clients::{Received, Ws};
use super::{WAIT, eventually};

/// Echo traffic from many clients, each checking that its replies come back complete and in
/// order, with up to `WINDOW` requests in flight.
pub struct Load {
    stop: Arc<AtomicBool>,
    /// Round trips completed, per client.
    done: Arc<Vec<AtomicU64>>,
    clients: Vec<JoinHandle<Result<u64, String>>>,
}

const WINDOW: u64 = 8;

impl Load {
    pub async fn start(url: &str, clients: usize) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let done: Arc<Vec<AtomicU64>> = Arc::new((0..clients).map(|_| AtomicU64::new(0)).collect());
        let mut tasks = Vec::new();
        for idx in 0..clients {
            let ws = Ws::connect(url).await;
            tasks.push(tokio::spawn(client(ws, idx, stop.clone(), done.clone())));
        }
        Self {
            stop,
            done,
            clients: tasks,
        }
    }

    /// Round trips completed so far, per client.
    pub fn progress(&self) -> Vec<u64> {
        self.done
            .iter()
            .map(|n| n.load(Ordering::Relaxed))
            .collect()
    }

    /// Waits until every client has completed a round trip since `before`: proof that the
    /// load runs through whatever happened in between, for every client.
    pub async fn advanced_since(&self, before: &[u64]) {
        eventually("every client completes a round trip", async || {
            self.progress()
                .iter()
                .zip(before)
                .all(|(now, then)| now > then)
        })
        .await;
    }

    /// Stops sending, waits for every outstanding reply (a client fails on a lost,
    /// duplicated, reordered or foreign reply, and on a disconnect).
    pub async fn finish(self) {
        self.stop.store(true, Ordering::Relaxed);
        for task in self.clients {
            if let Err(e) = task.await.expect("client task") {
                panic!("{e}");
            }
        }
    }
}

async fn client(
    mut ws: Ws,
    idx: usize,
    stop: Arc<AtomicBool>,
    done: Arc<Vec<AtomicU64>>,
) -> Result<u64, String> {
    let (mut sent, mut received) = (0u64, 0u64);
    loop {
        while sent - received < WINDOW && !stop.load(Ordering::Relaxed) {
            ws.send_text(&format!("echo:{idx}:{sent}")).await;
            sent += 1;
        }
        if received == sent {
            return Ok(received);
        }
        match ws.recv().await {
            // Broadcast noise from the swap checker.
            Received::Text(text) if text.starts_with('#') => {}
            Received::Text(text) if text == format!("echo:{idx}:{received}") => {
                received += 1;
                done[idx].store(received, Ordering::Relaxed);
            }
            other => {
                return Err(format!(
                    "client {idx}: expected echo:{idx}:{received}, got {other:?}"
                ));
            }
        }
    }
}

/// Sends `all:#check` until the reply is the new version's (echo sends it back unchanged;
/// bench broadcast `#check`). How long that takes is a figure of `cargo bench --bench load
/// -- swap`, not a pass/fail criterion here.
pub async fn until_echo_answers(checker: &mut Ws) {
    let started = Instant::now();
    loop {
        checker.send_text("all:#check").await;
        loop {
            match checker.recv().await {
                Received::Text(text) if text == "all:#check" => return,
                Received::Text(text) if text == "#check" => break,
                Received::Text(_) => {}
                other => panic!("checker lost its connection: {other:?}"),
            }
        }
        assert!(started.elapsed() < WAIT, "the new version never took over");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
