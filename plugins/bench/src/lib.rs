//! Bench: a tiny text protocol for load tests (see README.md).
//!
//! - `echo:<payload>` — the whole message, unchanged, back to the sender only;
//! - `all:<payload>` — `<payload>` to every client;
//! - `join:<group>` — the sender joins `<group>`, no reply;
//! - `group:<group>:<payload>` — `<payload>` to every member of `<group>`;
//! - anything else is ignored (logged at debug level).
//!
//! Allocation-light: payloads are cut out of the received string in place.

use switchboard_sdk::{Context, LogLevel, Message, Plugin, export, log};

/// The bench plugin; it keeps no state.
#[derive(Default)]
struct Bench;

impl Plugin for Bench {
    fn on_message(&mut self, ctx: &Context, message: Message) {
        let Message::Text(mut text) = message else {
            log(LogLevel::Debug, "bench: binary message ignored");
            return;
        };
        let result = if text.starts_with("echo:") {
            ctx.client().send(Message::Text(text))
        } else if text.starts_with("all:") {
            text.replace_range(.."all:".len(), "");
            switchboard_sdk::send_to_all(Message::Text(text), &[])
        } else if let Some(group) = text.strip_prefix("join:") {
            ctx.client().join(group)
        } else if let Some((group, _)) = text
            .strip_prefix("group:")
            .and_then(|rest| rest.split_once(':'))
        {
            let group = group.to_owned();
            // "group:" + group + ":" is cut off the front; the payload stays in place.
            text.replace_range(.."group:".len() + group.len() + 1, "");
            switchboard_sdk::send_to_group(&group, Message::Text(text), &[])
        } else {
            log(LogLevel::Debug, "bench: unknown message ignored");
            Ok(())
        };
        if let Err(e) = result {
            log(LogLevel::Debug, &format!("bench: {e}"));
        }
    }
}

export!(Bench);
