//! The values events and commands carry: messages, sessions, contexts and client facts.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::ids::{ClientId, GatewayId, Group, Uid};

/// Largest encoded session per client.
pub const MAX_SESSION_BYTES: usize = 64 * 1024;

/// One complete message to or from a client. Cloning shares the bytes.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "RawMessage", into = "RawMessage")]
pub struct Message {
    kind: MessageKind,
    data: Bytes,
}

/// Whether a message is text or binary.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum MessageKind {
    /// UTF-8 text.
    Text,
    /// Raw bytes.
    Binary,
}

impl Message {
    /// A text message.
    pub fn text(text: impl Into<String>) -> Self {
        Self {
            kind: MessageKind::Text,
            data: Bytes::from(text.into()),
        }
    }

    /// A text message from bytes already known to be UTF-8; `None` if they are not.
    pub fn text_from_utf8(data: Bytes) -> Option<Self> {
        std::str::from_utf8(&data).ok()?;
        Some(Self {
            kind: MessageKind::Text,
            data,
        })
    }

    /// A binary message.
    pub fn binary(data: impl Into<Bytes>) -> Self {
        Self {
            kind: MessageKind::Binary,
            data: data.into(),
        }
    }

    /// Text if the bytes are UTF-8, binary otherwise: how a text-protocol line is delivered.
    pub fn text_or_binary(data: Bytes) -> Self {
        match std::str::from_utf8(&data) {
            Ok(_) => Self {
                kind: MessageKind::Text,
                data,
            },
            Err(_) => Self::binary(data),
        }
    }

    /// Text or binary.
    pub fn kind(&self) -> MessageKind {
        self.kind
    }

    /// The payload bytes.
    pub fn data(&self) -> &Bytes {
        &self.data
    }

    /// The payload bytes, taken out of the message.
    pub fn into_data(self) -> Bytes {
        self.data
    }

    /// The text, if this is a text message.
    pub fn as_text(&self) -> Option<&str> {
        match self.kind {
            // The constructors guarantee text messages hold UTF-8.
            MessageKind::Text => std::str::from_utf8(&self.data).ok(),
            MessageKind::Binary => None,
        }
    }

    /// Payload length in bytes.
    pub fn len(&self) -> usize {
        self.data.len()
    }

    /// Whether the payload is empty.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }
}

impl std::fmt::Debug for Message {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.as_text() {
            Some(text) => write!(f, "Text({text:?})"),
            None => write!(f, "Binary({} bytes)", self.data.len()),
        }
    }
}

/// The wire form of [`Message`], checked for UTF-8 when decoded.
#[derive(Serialize, Deserialize)]
struct RawMessage {
    kind: MessageKind,
    data: Bytes,
}

impl TryFrom<RawMessage> for Message {
    type Error = &'static str;

    fn try_from(raw: RawMessage) -> Result<Self, Self::Error> {
        match raw.kind {
            MessageKind::Text => {
                Message::text_from_utf8(raw.data).ok_or("text message is not UTF-8")
            }
            MessageKind::Binary => Ok(Message::binary(raw.data)),
        }
    }
}

impl From<Message> for RawMessage {
    fn from(m: Message) -> Self {
        RawMessage {
            kind: m.kind,
            data: m.data,
        }
    }
}

/// A client's session: string keys to string values. Cloning is a reference-count bump, so
/// every event can carry a snapshot; changes copy on write.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session(Arc<BTreeMap<String, String>>);

/// A session above [`MAX_SESSION_BYTES`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("session of {0} bytes is above the limit of {MAX_SESSION_BYTES} bytes")]
pub struct SessionTooLarge(pub usize);

impl Session {
    /// A session of these pairs (a later duplicate key wins), if it fits the limit.
    pub fn new(pairs: impl IntoIterator<Item = (String, String)>) -> Result<Self, SessionTooLarge> {
        let session = Self(Arc::new(pairs.into_iter().collect()));
        session.check_size()?;
        Ok(session)
    }

    /// The pairs, sorted by key.
    pub fn iter(&self) -> impl Iterator<Item = (&String, &String)> {
        self.0.iter()
    }

    /// The value of `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }

    /// Whether the session has no keys.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Shallow merge: the keys of `update` overwrite, the others stay. Fails, leaving the
    /// session unchanged, if the result would be too large.
    pub fn merge(&mut self, update: &Session) -> Result<(), SessionTooLarge> {
        let mut merged = (*self.0).clone();
        merged.extend(update.iter().map(|(k, v)| (k.clone(), v.clone())));
        let merged = Session(Arc::new(merged));
        merged.check_size()?;
        *self = merged;
        Ok(())
    }

    /// The encoded size that the limit applies to: each key and value with a length prefix.
    pub fn encoded_size(&self) -> usize {
        self.0.iter().map(|(k, v)| k.len() + v.len() + 8).sum()
    }

    fn check_size(&self) -> Result<(), SessionTooLarge> {
        match self.encoded_size() {
            n if n > MAX_SESSION_BYTES => Err(SessionTooLarge(n)),
            _ => Ok(()),
        }
    }
}

/// How a client is connected.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Protocol {
    /// WebSocket.
    WebSocket,
    /// Newline-delimited lines over TCP.
    Text,
    /// Big-endian u32 length-prefixed frames over TCP.
    Frame,
}

impl Protocol {
    /// The name used in config files and status output.
    pub fn name(self) -> &'static str {
        match self {
            Protocol::WebSocket => "websocket",
            Protocol::Text => "text",
            Protocol::Frame => "frame",
        }
    }
}

/// What an event says about its client.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Context {
    /// The client.
    pub client: ClientId,
    /// Its remote address.
    pub remote_addr: SocketAddr,
    /// Its uid, if bound.
    pub uid: Option<Uid>,
    /// A snapshot of its session when the event left the gateway.
    pub session: Session,
}

/// What a client was bound to when it left.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bound {
    /// Its uid, if any.
    pub uid: Option<Uid>,
    /// Its groups, sorted.
    pub groups: Vec<Group>,
}

/// A WebSocket upgrade request.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HttpRequest {
    /// The path.
    pub path: String,
    /// The query string without `?`.
    pub query: String,
    /// Header names (lowercase) and values, in the order received.
    pub headers: Vec<(String, String)>,
}

/// A refused WebSocket handshake.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rejection {
    /// HTTP status, 400..=599.
    pub status: u16,
    /// Reason sent as the body.
    pub reason: String,
}

/// Which parts of [`ClientInfo`] to fill.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct InfoFields {
    /// The remote IP.
    pub remote_ip: bool,
    /// The remote port.
    pub remote_port: bool,
    /// The uid.
    pub uid: bool,
    /// The session.
    pub session: bool,
    /// The groups.
    pub groups: bool,
    /// Connection facts.
    pub system: bool,
}

/// Connection facts a gateway keeps.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SystemInfo {
    /// The listener's protocol.
    pub protocol: Protocol,
    /// Connect time, ms since the Unix epoch.
    pub connected_at_ms: u64,
    /// Last time the client sent anything, ms since the Unix epoch.
    pub last_active_ms: u64,
    /// Message bytes received.
    pub bytes_in: u64,
    /// Message bytes sent.
    pub bytes_out: u64,
    /// The gateway holding the client.
    pub gateway: GatewayId,
}

/// What `get-client-info` answers; only the asked fields are `Some`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientInfo {
    /// The client.
    pub client: ClientId,
    /// Remote IP, if asked.
    pub remote_ip: Option<std::net::IpAddr>,
    /// Remote port, if asked.
    pub remote_port: Option<u16>,
    /// Uid, if asked and bound.
    pub uid: Option<Uid>,
    /// Session, if asked.
    pub session: Option<Session>,
    /// Groups, sorted, if asked.
    pub groups: Option<Vec<Group>>,
    /// Connection facts, if asked.
    pub system: Option<SystemInfo>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(pairs: &[(&str, &str)]) -> Session {
        Session::new(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string()))).expect("fits")
    }

    #[test]
    fn merge_is_shallow() {
        let mut s = session(&[("a", "1"), ("b", "2")]);
        s.merge(&session(&[("b", "3"), ("c", "4")])).expect("fits");
        assert_eq!(s, session(&[("a", "1"), ("b", "3"), ("c", "4")]));
    }

    #[test]
    fn oversized_sessions_are_refused_and_merge_leaves_the_old_one() {
        let big = "x".repeat(MAX_SESSION_BYTES);
        assert!(Session::new([("k".to_string(), big.clone())]).is_err());
        let mut s = session(&[("a", "1")]);
        let half = "y".repeat(MAX_SESSION_BYTES / 2);
        s.merge(&session(&[("b", &half)])).expect("fits");
        assert!(s.merge(&session(&[("c", &half)])).is_err());
        assert_eq!(s.get("c"), None);
        assert_eq!(s.get("a"), Some("1"));
    }

    #[test]
    fn text_or_binary_follows_utf8() {
        assert_eq!(
            Message::text_or_binary(Bytes::from_static(b"hi")).kind(),
            MessageKind::Text
        );
        assert_eq!(
            Message::text_or_binary(Bytes::from_static(b"\xff")).kind(),
            MessageKind::Binary
        );
    }
}
