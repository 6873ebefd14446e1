//! Each room's last [`KEPT`] messages, in the app's key-value store, so they outlive the
//! instances, a restart of the server and a hot swap of the plugin.
//!
//! Instances run side by side, so there is no read-modify-write of a list: a message takes
//! the room's next sequence number from an atomic `increment`, and is stored in the slot
//! `seq % KEPT` with its number in front. Reading takes the slots of the last `KEPT` numbers
//! and keeps those whose number matches (a slot not yet written, or already reused, is
//! skipped).

use switchboard_sdk::kv;

/// Messages kept per room.
pub const KEPT: u64 = 50;

fn seq_key(room: &str) -> String {
    format!("history:{room}:seq")
}

fn slot_key(room: &str, seq: u64) -> String {
    format!("history:{room}:{:02}", seq % KEPT)
}

/// Records `line` as the room's newest message.
pub fn record(room: &str, line: &str) -> kv::Result<()> {
    let seq = kv::increment(&seq_key(room), 1)?;
    let seq = u64::try_from(seq).unwrap_or(0);
    kv::set(&slot_key(room, seq), format!("{seq}\n{line}"))
}

/// The room's last messages, oldest first.
pub fn recent(room: &str) -> kv::Result<Vec<String>> {
    let last = match kv::get_string(&seq_key(room))? {
        Some(n) => n.trim().parse::<u64>().unwrap_or(0),
        None => return Ok(Vec::new()),
    };
    let first = last.saturating_sub(KEPT - 1).max(1);
    let mut lines = Vec::new();
    for seq in first..=last {
        if let Some(stored) = kv::get_string(&slot_key(room, seq))?
            && let Some((number, line)) = stored.split_once('\n')
            && number == seq.to_string()
        {
            lines.push(line.to_owned());
        }
    }
    Ok(lines)
}
