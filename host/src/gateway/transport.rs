//! The socket side of a connection, one implementation per protocol behind [`Transport`].
//!
//! This is also the one place where how a connection ends becomes what the client sees
//! (WebSocket close codes, a TCP FIN or an abrupt close).

use std::future::Future;
use std::io;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures_util::{SinkExt, StreamExt};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{self, Message as WsMessage, Utf8Bytes};
use tokio_util::codec::{Decoder, Encoder};

use super::codec::{CodecError, FrameCodec, LineCodec};
use crate::bus::{Message, MessageKind};

/// How long a closing connection may take to say goodbye before it is dropped.
const LINGER: Duration = Duration::from_secs(1);

/// Bytes read from a TCP socket at a time.
const READ_CHUNK: usize = 4096;

/// One entry of a client's send queue. Kept small (a `Bytes` and a tag): every idle
/// connection's queue holds a block of these.
#[derive(Clone, Debug)]
pub enum Outgoing {
    /// A text message, UTF-8 checked once for the WebSocket frame type; shared by every
    /// client of a broadcast.
    Text(Utf8Bytes),
    /// A binary message, shared likewise.
    Binary(Bytes),
    /// The heartbeat's WebSocket ping frame.
    Ping,
    /// Close cleanly once everything queued before is written.
    Close,
}

impl Outgoing {
    /// The queued form of `message`; clones share the payload.
    pub fn of(message: &Message) -> Self {
        let data = message.data().clone();
        match message.kind() {
            MessageKind::Text => match Utf8Bytes::try_from(data) {
                Ok(text) => Self::Text(text),
                // `Message` guarantees text is UTF-8; binary is the harmless fallback.
                Err(_) => Self::Binary(message.data().clone()),
            },
            MessageKind::Binary => Self::Binary(data),
        }
    }

    /// Payload bytes, for the traffic counters.
    pub fn len(&self) -> usize {
        match self {
            Self::Text(text) => text.len(),
            Self::Binary(data) => data.len(),
            Self::Ping | Self::Close => 0,
        }
    }
}

/// What a read produced.
#[derive(Debug)]
pub enum Incoming {
    /// A complete message.
    Message(Message),
    /// The client sent something that is not a message (a control frame, part of a line).
    Activity,
    /// The client closed the connection.
    Closed,
}

/// Why a connection cannot go on.
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    /// The client sent a message above the limit.
    #[error("message above the size limit")]
    TooLarge,
    /// The connection is already closed.
    #[error("connection closed")]
    Closed,
    /// The client broke the protocol.
    #[error("protocol error: {0}")]
    Protocol(String),
    /// The socket failed.
    #[error(transparent)]
    Io(#[from] io::Error),
}

/// How a connection ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ending {
    /// Asked to close cleanly (WebSocket 1000).
    Normal,
    /// The gateway is shutting down (WebSocket 1001).
    GoingAway,
    /// The client sent a message above the limit (WebSocket 1009; TCP just closed).
    TooLarge,
    /// The client closed first; answer its close if the protocol has one.
    PeerClosed,
    /// Dropped at once: forced, too slow, silent or broken.
    Drop,
}

/// A connection's socket, with its protocol's framing.
pub trait Transport: Send {
    /// Waits for something from the client. Cancel-safe: partial input stays buffered.
    fn read(&mut self) -> impl Future<Output = Result<Incoming, Failure>> + Send;
    /// Buffers one message (never [`Outgoing::Close`]) for the next flush.
    fn feed(&mut self, out: Outgoing) -> impl Future<Output = Result<(), Failure>> + Send;
    /// Writes everything buffered.
    fn flush(&mut self) -> impl Future<Output = Result<(), Failure>> + Send;
    /// Ends the connection as `how` says, within a bounded time.
    fn end(self, how: Ending) -> impl Future<Output = ()> + Send;
}

/// A WebSocket connection after its handshake.
pub struct WsTransport {
    ws: WebSocketStream<TcpStream>,
}

impl WsTransport {
    /// Wraps an upgraded connection.
    pub fn new(ws: WebSocketStream<TcpStream>) -> Self {
        Self { ws }
    }

    /// Reads until the peer's close or an error, so the TCP close that follows is clean.
    async fn drain(&mut self) {
        while let Some(Ok(_)) = self.ws.next().await {}
    }
}

fn ws_failure(e: tungstenite::Error) -> Failure {
    match e {
        tungstenite::Error::Capacity(_) => Failure::TooLarge,
        tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed => Failure::Closed,
        tungstenite::Error::Io(e) => Failure::Io(e),
        other => Failure::Protocol(other.to_string()),
    }
}

impl Transport for WsTransport {
    async fn read(&mut self) -> Result<Incoming, Failure> {
        match self.ws.next().await {
            None => Ok(Incoming::Closed),
            Some(Err(e)) => Err(ws_failure(e)),
            Some(Ok(WsMessage::Text(text))) => {
                Ok(Message::text_from_utf8(text.into())
                    .map_or(Incoming::Activity, Incoming::Message))
            }
            Some(Ok(WsMessage::Binary(data))) => Ok(Incoming::Message(Message::binary(data))),
            Some(Ok(WsMessage::Close(_))) => Ok(Incoming::Closed),
            // Pings are answered by tungstenite itself; pongs and raw frames only show life.
            Some(Ok(WsMessage::Ping(_) | WsMessage::Pong(_) | WsMessage::Frame(_))) => {
                Ok(Incoming::Activity)
            }
        }
    }

    async fn feed(&mut self, out: Outgoing) -> Result<(), Failure> {
        let message = match out {
            Outgoing::Text(text) => WsMessage::Text(text),
            Outgoing::Binary(data) => WsMessage::Binary(data),
            Outgoing::Ping => WsMessage::Ping(Bytes::new()),
            Outgoing::Close => return Ok(()),
        };
        self.ws.feed(message).await.map_err(ws_failure)
    }

    async fn flush(&mut self) -> Result<(), Failure> {
        self.ws.flush().await.map_err(ws_failure)
    }

    async fn end(mut self, how: Ending) {
        let code = match how {
            Ending::Drop => return,
            Ending::PeerClosed => None,
            Ending::Normal => Some((CloseCode::Normal, "")),
            Ending::GoingAway => Some((CloseCode::Away, "server shutting down")),
            Ending::TooLarge => Some((CloseCode::Size, "message too large")),
        };
        let goodbye = async {
            match code {
                Some((code, reason)) => {
                    let frame = CloseFrame {
                        code,
                        reason: reason.into(),
                    };
                    if self.ws.close(Some(frame)).await.is_err() {
                        return;
                    }
                }
                // tungstenite queued the reply to the peer's close; writing it is enough.
                None => {
                    if self.ws.flush().await.is_err() {
                        return;
                    }
                }
            }
            self.drain().await;
        };
        // A peer that never answers does not hold the task.
        let _ = tokio::time::timeout(LINGER, goodbye).await;
    }
}

/// A framing for raw TCP: a codec and how its messages are delivered.
pub trait TcpFraming:
    Decoder<Item = Bytes, Error = CodecError> + Encoder<Bytes, Error = CodecError> + Send
{
    /// The message a decoded frame becomes.
    fn deliver(data: Bytes) -> Message;
}

impl TcpFraming for LineCodec {
    fn deliver(data: Bytes) -> Message {
        Message::text_or_binary(data)
    }
}

impl TcpFraming for FrameCodec {
    fn deliver(data: Bytes) -> Message {
        Message::binary(data)
    }
}

/// A raw TCP connection with a framing.
///
/// Its buffers are freed whenever they are empty, so an idle client costs only its socket.
pub struct TcpTransport<C> {
    stream: TcpStream,
    codec: C,
    read_buf: BytesMut,
    write_buf: BytesMut,
}

impl<C: TcpFraming> TcpTransport<C> {
    /// Wraps an accepted socket.
    pub fn new(stream: TcpStream, codec: C) -> Self {
        Self {
            stream,
            codec,
            read_buf: BytesMut::new(),
            write_buf: BytesMut::new(),
        }
    }

    fn decode(&mut self) -> Result<Option<Message>, Failure> {
        match self.codec.decode(&mut self.read_buf) {
            Ok(frame) => Ok(frame.map(C::deliver)),
            Err(CodecError::TooLarge { .. }) => Err(Failure::TooLarge),
            Err(CodecError::Io(e)) => Err(Failure::Io(e)),
            Err(e @ CodecError::Unframable(_)) => Err(Failure::Protocol(e.to_string())),
        }
    }
}

impl<C: TcpFraming> Transport for TcpTransport<C> {
    async fn read(&mut self) -> Result<Incoming, Failure> {
        if let Some(message) = self.decode()? {
            return Ok(Incoming::Message(message));
        }
        loop {
            if self.read_buf.is_empty() {
                self.read_buf = BytesMut::new();
            }
            // Waiting for readiness before reserving keeps idle connections buffer-free, and
            // makes this cancel-safe: the only await holds no data.
            self.stream.readable().await?;
            self.read_buf.reserve(READ_CHUNK);
            match self.stream.try_read_buf(&mut self.read_buf) {
                Ok(0) => return Ok(Incoming::Closed),
                Ok(_) => {
                    return Ok(match self.decode()? {
                        Some(message) => Incoming::Message(message),
                        None => Incoming::Activity,
                    });
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) => return Err(e.into()),
            }
        }
    }

    async fn feed(&mut self, out: Outgoing) -> Result<(), Failure> {
        let data = match out {
            Outgoing::Text(text) => text.into(),
            Outgoing::Binary(data) => data,
            // Raw TCP has no control frames; the listener never queues a ping for it.
            Outgoing::Ping | Outgoing::Close => return Ok(()),
        };
        self.codec
            .encode(data, &mut self.write_buf)
            .map_err(|e| Failure::Protocol(e.to_string()))
    }

    async fn flush(&mut self) -> Result<(), Failure> {
        self.stream.write_all(&self.write_buf).await?;
        self.write_buf = BytesMut::new();
        Ok(())
    }

    async fn end(mut self, how: Ending) {
        match how {
            // An oversized message is not answered: the client is simply cut off.
            Ending::Drop | Ending::TooLarge => {}
            Ending::PeerClosed => {
                let _ = tokio::time::timeout(LINGER, self.stream.shutdown()).await;
            }
            Ending::Normal | Ending::GoingAway => {
                // Send our FIN, then read until the client's: closing with unread input
                // would reset the connection and could destroy data still in flight.
                let goodbye = async {
                    if self.stream.shutdown().await.is_err() {
                        return;
                    }
                    let mut sink = BytesMut::new();
                    loop {
                        sink.clear();
                        sink.reserve(READ_CHUNK);
                        match tokio::io::AsyncReadExt::read_buf(&mut self.stream, &mut sink).await {
                            Ok(0) | Err(_) => return,
                            Ok(_) => {}
                        }
                    }
                };
                let _ = tokio::time::timeout(LINGER, goodbye).await;
            }
        }
    }
}
