//! Echo: sends every message back to its sender unchanged (text stays text, binary stays binary).

use switchboard_sdk::{Context, Message, Plugin, export};

/// The echo plugin; it keeps no state.
#[derive(Default)]
struct Echo;

impl Plugin for Echo {
    fn on_message(&mut self, ctx: &Context, message: Message) {
        if let Err(e) = ctx.client().send(message) {
            switchboard_sdk::warn!("echo to {} failed: {e}", ctx.client());
        }
    }
}

export!(Echo);
