//! Faulty: a test fixture (not an example), a version that can never start, for the tests
//! of hot swap. Its `on-worker-start`
//! greets every client (which a trial run must never let through) and then traps, so it
//! fails the check every new version passes before it serves.

use switchboard_sdk::{Message, Plugin, export};

/// The plugin; it never gets past its start.
#[derive(Default)]
struct Faulty;

impl Plugin for Faulty {
    fn on_worker_start(&mut self, _worker_id: u32) {
        let _ = switchboard_sdk::send_to_all(Message::text("faulty: hello from a trial"), &[]);
        panic!("faulty: this version cannot start");
    }
}

export!(Faulty);
