//! The bus: the only meeting point of gateways and workers.
//!
//! Gateways see the workers through [`Workers`]; workers see the gateways through
//! [`Gateways`]. In the embedded host the transport is the trait call itself: the gateway
//! implements `Gateways` and the worker host implements `Workers`, and each is handed to the
//! other. A cluster transport implements the same traits over the network (encoding with
//! [`codec`]) and feeds what arrives into the same two implementations, so neither side
//! changes.

pub mod calls;
pub mod codec;
pub mod data;
pub mod ids;
pub mod messages;
pub mod nats;

use std::future::Future;
use std::pin::Pin;

use async_trait::async_trait;

pub use data::{
    Bound, ClientInfo, Context, HttpRequest, InfoFields, MAX_SESSION_BYTES, Message, MessageKind,
    Protocol, Rejection, Session, SessionTooLarge, SystemInfo,
};
pub use ids::{
    ClientId, ClientIdText, GatewayId, Group, InvalidClientId, InvalidName, Uid, sha256_hex,
};
pub use messages::{
    AppName, ClientFilter, Command, Event, EventKind, Handshake, Query, Reply, Target,
};

/// Why the bus could not carry out a command or answer a query.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BusError {
    /// A gateway did not answer in time; no partial answer is given.
    #[error("timed out waiting for {0}")]
    Timeout(String),
    /// The command was refused because a session would exceed its limit.
    #[error(transparent)]
    SessionTooLarge(#[from] SessionTooLarge),
    /// The gateway answered a query with a reply of the wrong shape.
    #[error("unexpected reply to {query}: {reply}")]
    UnexpectedReply {
        /// The query, for the log.
        query: String,
        /// The reply, for the log.
        reply: String,
    },
}

/// The gateways, as a worker sees them. Every call is made for one app and reaches only
/// that app's clients: each app is its own world.
#[async_trait]
pub trait Gateways: Send + Sync + 'static {
    /// Applies a command of `app`. Commands from one caller are applied in the order issued.
    async fn command(&self, app: &str, command: Command) -> Result<(), BusError>;

    /// Answers a query of `app` from every gateway concerned, merged.
    async fn query(&self, app: &str, query: Query) -> Result<Reply, BusError>;
}

/// What is left of a delivery that must wait for room in the app's queue.
pub type Waiting<'a> = Pin<Box<dyn Future<Output = ()> + Send + 'a>>;

/// Delivers `event` through `workers` at once where it can be; otherwise returns the wait,
/// which holds the event and not the caller: idle connections carry no room for one.
pub fn deliver_event(workers: &dyn Workers, event: Event) -> Option<Waiting<'_>> {
    workers.try_event(event).map(|event| workers.event(event))
}

/// The workers, as a gateway sees them.
#[async_trait]
pub trait Workers: Send + Sync + 'static {
    /// Delivers an event; waits while the app's queue is full, which slows only that client.
    async fn event(&self, event: Event);

    /// Delivers an event at once if that needs no waiting; else hands it back, for
    /// [`Workers::event`]. The in-process worker host runs most events this way, on the
    /// caller's thread, without a boxed future.
    fn try_event(&self, event: Event) -> Option<Event> {
        Some(event)
    }

    /// Whether `app` is loaded and can take clients now.
    fn serves(&self, app: &str) -> bool;

    /// Asks the app whether to accept a WebSocket handshake.
    async fn handshake(&self, handshake: Handshake) -> Result<(), Rejection>;
}
