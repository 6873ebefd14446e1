//! The client-event handlers a plugin version leaves to its SDK's default (`api.unhandled`):
//! the host stops calling them and does what the default would have done, which is nothing
//! (and, for a handshake, to accept it).

use std::sync::atomic::{AtomicU8, Ordering};

use super::bindings::switchboard::plugin::api::ClientHandler;
use crate::bus::EventKind;

/// The handlers one version does not implement, as its instances reported them.
#[derive(Debug, Default)]
pub struct Unhandled(AtomicU8);

impl Unhandled {
    /// Records `handler`; true the first time.
    pub fn insert(&self, handler: ClientHandler) -> bool {
        let bit = bit(handler);
        self.0.fetch_or(bit, Ordering::Relaxed) & bit == 0
    }

    /// Whether `handler` was reported.
    pub fn contains(&self, handler: ClientHandler) -> bool {
        self.0.load(Ordering::Relaxed) & bit(handler) != 0
    }

    /// Whether the handler of an event of `kind` was reported.
    pub fn skips(&self, kind: &EventKind) -> bool {
        self.contains(handler_of(kind))
    }

    /// Whether every handler `other` records is recorded here too.
    pub fn covers(&self, other: &Unhandled) -> bool {
        let theirs = other.0.load(Ordering::Relaxed);
        self.0.load(Ordering::Relaxed) & theirs == theirs
    }

    /// Makes this record a copy of `other`.
    pub fn copy(&self, other: &Unhandled) {
        self.0
            .store(other.0.load(Ordering::Relaxed), Ordering::Relaxed);
    }

    /// Whether a handshake's verdict is known without the instance: both `on-connect`, which
    /// runs first and whose effects the 101 response must follow, and the verdict itself are
    /// left to the defaults.
    pub fn accepts_handshakes(&self) -> bool {
        let both = bit(ClientHandler::OnConnect) | bit(ClientHandler::OnWebsocketConnect);
        self.0.load(Ordering::Relaxed) & both == both
    }
}

/// The handler an event of `kind` goes to.
pub fn handler_of(kind: &EventKind) -> ClientHandler {
    match kind {
        EventKind::Connect => ClientHandler::OnConnect,
        EventKind::Message(_) => ClientHandler::OnMessage,
        EventKind::Close(_) => ClientHandler::OnClose,
    }
}

/// The WIT name of a handler, for the log.
pub fn name(handler: ClientHandler) -> &'static str {
    match handler {
        ClientHandler::OnConnect => "on-connect",
        ClientHandler::OnWebsocketConnect => "on-websocket-connect",
        ClientHandler::OnMessage => "on-message",
        ClientHandler::OnClose => "on-close",
    }
}

fn bit(handler: ClientHandler) -> u8 {
    match handler {
        ClientHandler::OnConnect => 1,
        ClientHandler::OnWebsocketConnect => 2,
        ClientHandler::OnMessage => 4,
        ClientHandler::OnClose => 8,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handlers_are_recorded_once_each_and_handshakes_need_both() {
        let unhandled = Unhandled::default();
        assert!(!unhandled.skips(&EventKind::Connect));
        assert!(unhandled.insert(ClientHandler::OnWebsocketConnect));
        assert!(!unhandled.insert(ClientHandler::OnWebsocketConnect));
        assert!(
            !unhandled.accepts_handshakes(),
            "on-connect still runs first"
        );
        assert!(unhandled.insert(ClientHandler::OnConnect));
        assert!(unhandled.accepts_handshakes());
        assert!(unhandled.skips(&EventKind::Connect));
        assert!(!unhandled.contains(ClientHandler::OnMessage));
        assert!(!unhandled.contains(ClientHandler::OnClose));

        let mirror = Unhandled::default();
        assert!(!mirror.covers(&unhandled));
        mirror.copy(&unhandled);
        assert!(mirror.covers(&unhandled) && mirror.accepts_handshakes());
    }
}
