//! The socket side of a connection, one implementation per protocol behind [`Transport`].
//!
//! A transport splits into a read half and a write half that work independently: a write
//! blocked on a client that stopped reading never holds up reading, and the other way
//! round. Every write is under a deadline that counts time without progress.
//!
//! This is also the one place where how a connection ends becomes what the client sees
//! (WebSocket close codes, a TCP FIN or an abrupt close).

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::Sleep;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{self, Message as WsMessage, Utf8Bytes};
use tokio_util::codec::{Decoder, Encoder};

use super::codec::{CodecError, FrameCodec, LineCodec};
use super::tls::Stream;
use super::utf8_scan::{InvalidUtf8, Utf8Scan};
use crate::bus::{Message, MessageKind};

/// How long a closing connection may take to say goodbye before it is dropped.
pub(super) const LINGER: Duration = Duration::from_secs(1);

/// Bytes read from a TCP socket at a time.
pub(super) const READ_CHUNK: usize = 4096;

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

impl From<Message> for Outgoing {
    /// The queued form of `message`; clones share the payload.
    fn from(message: Message) -> Self {
        let kind = message.kind();
        let data = message.into_data();
        match kind {
            // Never fails: `Message`'s constructors and its decoding check text for UTF-8.
            MessageKind::Text => {
                Utf8Bytes::try_from(data).map_or_else(|_| Self::Binary(Bytes::new()), Self::Text)
            }
            MessageKind::Binary => Self::Binary(data),
        }
    }
}

impl Outgoing {
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
    /// The client sent text that is not UTF-8.
    #[error("invalid UTF-8 in a text message: {0}")]
    InvalidUtf8(String),
    /// The client took no bytes for the whole write deadline.
    #[error("no write progress within the write deadline")]
    WriteTimeout,
    /// The socket failed.
    #[error(transparent)]
    Io(io::Error),
}

impl From<io::Error> for Failure {
    fn from(e: io::Error) -> Self {
        match e.kind() {
            io::ErrorKind::TimedOut => Self::WriteTimeout,
            io::ErrorKind::InvalidData => Self::InvalidUtf8(e.to_string()),
            _ => Self::Io(e),
        }
    }
}

impl Failure {
    /// How a connection ends when its reader fails like this.
    pub fn ending(&self) -> Ending {
        match self {
            Self::TooLarge => Ending::TooLarge,
            Self::Protocol(_) => Ending::ProtocolError,
            Self::InvalidUtf8(_) => Ending::InvalidData,
            Self::Closed | Self::WriteTimeout | Self::Io(_) => Ending::Drop,
        }
    }
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
    /// The client broke the protocol (WebSocket 1002; TCP just closed).
    ProtocolError,
    /// The client sent text that is not UTF-8 (WebSocket 1007).
    InvalidData,
    /// The client sent faster than `max_messages_per_second` with `throttle = "close"`
    /// (WebSocket 1008; TCP just closed).
    PolicyViolation,
    /// The client closed first; answer its close if the protocol has one.
    PeerClosed,
    /// Dropped at once: forced, too slow, silent or broken.
    Drop,
}

impl Ending {
    /// Whether the reader ended the connection for a broken rule that the client is told
    /// about (so what was queued for it before is worth writing first).
    pub fn is_broken_rule(self) -> bool {
        matches!(
            self,
            Self::TooLarge | Self::ProtocolError | Self::InvalidData | Self::PolicyViolation
        )
    }
}

/// A connection's socket, with its protocol's framing, as two independent halves.
pub trait Transport: Send {
    /// The half that reads.
    type Reader<'a>: ReadHalf
    where
        Self: 'a;
    /// The half that writes.
    type Writer<'a>: WriteHalf
    where
        Self: 'a;
    /// The two halves; both can wait at the same time.
    fn split(&mut self) -> (Self::Reader<'_>, Self::Writer<'_>);
    /// Ends the connection as `how` says, within a bounded time.
    fn end(self, how: Ending) -> impl Future<Output = ()> + Send;
}

/// Reading from a client.
pub trait ReadHalf: Send {
    /// Waits for something from the client.
    fn read(&mut self) -> impl Future<Output = Result<Incoming, Failure>> + Send;
}

/// Writing to a client, under the write deadline.
pub trait WriteHalf: Send {
    /// Buffers one message (never [`Outgoing::Close`]) for the next flush.
    fn feed(&mut self, out: Outgoing) -> impl Future<Output = Result<(), Failure>> + Send;
    /// Writes everything buffered.
    fn flush(&mut self) -> impl Future<Output = Result<(), Failure>> + Send;
}

/// A WebSocket client's socket as tungstenite sees it: writes fail with `TimedOut` once they
/// make no progress for `timeout`, and reads fail with `InvalidData` as soon as a text
/// message is known not to be UTF-8 (see [`Utf8Scan`]), even in the middle of a frame.
///
/// It also reads ahead for tungstenite: tungstenite keeps its read buffer for the whole life
/// of a connection, so that buffer is kept small (`WS_READ_BUFFER` in the listener), and the
/// socket is still read [`READ_CHUNK`] bytes at a time: into a buffer on the stack, from
/// which what tungstenite has no room for goes to a heap buffer that exists only until
/// tungstenite has taken it. An idle connection holds neither.
///
/// The timer exists only while a write waits, so an idle connection carries none.
pub struct Guarded<S> {
    inner: S,
    timeout: Duration,
    timer: Option<Pin<Box<Sleep>>>,
    scan: Utf8Scan,
    /// Invalid text was read: the next read says so (the bytes before it went through).
    invalid: bool,
    /// Bytes read from the socket that tungstenite had no room for yet, from `ahead_at` on;
    /// empty and without an allocation whenever it has taken them all.
    ahead: Vec<u8>,
    /// How much of `ahead` tungstenite has taken.
    ahead_at: usize,
}

impl<S> Guarded<S> {
    /// Wraps `inner`.
    pub fn new(inner: S, timeout: Duration) -> Self {
        Self {
            inner,
            timeout,
            timer: None,
            scan: Utf8Scan::default(),
            invalid: false,
            ahead: Vec::new(),
            ahead_at: 0,
        }
    }

    /// Looks at bytes the client sent before they go to tungstenite.
    pub fn scan(&mut self, bytes: &[u8]) {
        Self::scan_passing(&mut self.scan, &mut self.invalid, bytes);
    }

    /// Looks at `bytes` on their way to tungstenite (each byte once, in order).
    fn scan_passing(scan: &mut Utf8Scan, invalid: &mut bool, bytes: &[u8]) {
        if scan.feed(bytes).is_err() {
            *invalid = true;
        }
    }

    /// Called when a write cannot go on: `Ready` with an error once the deadline passed.
    fn stalled(&mut self, cx: &mut Context<'_>) -> Poll<io::Error> {
        let timeout = self.timeout;
        let timer = self
            .timer
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
        ready!(timer.as_mut().poll(cx));
        self.timer = None;
        Poll::Ready(io::Error::new(
            io::ErrorKind::TimedOut,
            "no write progress within the write deadline",
        ))
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Guarded<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if std::mem::take(&mut self.invalid) {
            return Poll::Ready(Err(io::Error::new(io::ErrorKind::InvalidData, InvalidUtf8)));
        }
        let this = &mut *self;
        if this.ahead_at < this.ahead.len() {
            let rest = &this.ahead[this.ahead_at..];
            let now = &rest[..rest.len().min(buf.remaining())];
            buf.put_slice(now);
            Self::scan_passing(&mut this.scan, &mut this.invalid, now);
            this.ahead_at += now.len();
            if this.ahead_at == this.ahead.len() {
                // Freed once taken: an idle connection holds no read-ahead.
                this.ahead = Vec::new();
                this.ahead_at = 0;
            }
            return Poll::Ready(Ok(()));
        }
        if buf.remaining() >= READ_CHUNK {
            // Room for a whole chunk: straight into tungstenite's buffer.
            let before = buf.filled().len();
            ready!(Pin::new(&mut this.inner).poll_read(cx, buf))?;
            Self::scan_passing(&mut this.scan, &mut this.invalid, &buf.filled()[before..]);
            return Poll::Ready(Ok(()));
        }
        // A chunk on the stack; what tungstenite has no room for now waits in `ahead`.
        let mut chunk = [std::mem::MaybeUninit::<u8>::uninit(); READ_CHUNK];
        let mut read = ReadBuf::uninit(&mut chunk);
        ready!(Pin::new(&mut this.inner).poll_read(cx, &mut read))?;
        let read = read.filled();
        let now = read.len().min(buf.remaining());
        buf.put_slice(&read[..now]);
        Self::scan_passing(&mut this.scan, &mut this.invalid, &read[..now]);
        if now < read.len() {
            this.ahead.extend_from_slice(&read[now..]);
        }
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Guarded<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match Pin::new(&mut self.inner).poll_write(cx, buf) {
            Poll::Ready(r) => {
                self.timer = None;
                Poll::Ready(r)
            }
            Poll::Pending => self.stalled(cx).map(Err),
        }
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match Pin::new(&mut self.inner).poll_flush(cx) {
            Poll::Ready(r) => {
                self.timer = None;
                Poll::Ready(r)
            }
            Poll::Pending => self.stalled(cx).map(Err),
        }
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// The WebSocket stream of a connection.
pub type WsStream = WebSocketStream<Guarded<Stream>>;

/// A WebSocket connection after its handshake, split so reads and writes interleave.
pub struct WsTransport {
    rx: SplitStream<WsStream>,
    tx: SplitSink<WsStream, WsMessage>,
}

impl WsTransport {
    /// Wraps an upgraded connection.
    pub fn new(ws: WsStream) -> Self {
        let (tx, rx) = ws.split();
        Self { rx, tx }
    }
}

fn ws_failure(e: tungstenite::Error) -> Failure {
    match e {
        tungstenite::Error::Capacity(_) => Failure::TooLarge,
        tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed => Failure::Closed,
        tungstenite::Error::Io(e) => e.into(),
        tungstenite::Error::Utf8(e) => Failure::InvalidUtf8(e),
        other => Failure::Protocol(other.to_string()),
    }
}

/// The read half of a WebSocket connection.
pub struct WsReader<'a>(&'a mut SplitStream<WsStream>);

/// The write half of a WebSocket connection.
pub struct WsWriter<'a>(&'a mut SplitSink<WsStream, WsMessage>);

impl ReadHalf for WsReader<'_> {
    async fn read(&mut self) -> Result<Incoming, Failure> {
        match self.0.next().await {
            None => Ok(Incoming::Closed),
            Some(Err(e)) => Err(ws_failure(e)),
            Some(Ok(WsMessage::Text(text))) => {
                Ok(Message::text_from_utf8(text.into())
                    .map_or(Incoming::Activity, Incoming::Message))
            }
            Some(Ok(WsMessage::Binary(data))) => Ok(Incoming::Message(Message::binary(data))),
            Some(Ok(WsMessage::Close(_))) => Ok(Incoming::Closed),
            // Pings are answered by tungstenite itself (its reads write the pong, through
            // the shared socket); pongs and raw frames only show life.
            Some(Ok(WsMessage::Ping(_) | WsMessage::Pong(_) | WsMessage::Frame(_))) => {
                Ok(Incoming::Activity)
            }
        }
    }
}

impl WriteHalf for WsWriter<'_> {
    async fn feed(&mut self, out: Outgoing) -> Result<(), Failure> {
        let message = match out {
            Outgoing::Text(text) => WsMessage::Text(text),
            Outgoing::Binary(data) => WsMessage::Binary(data),
            Outgoing::Ping => WsMessage::Ping(Bytes::new()),
            Outgoing::Close => return Ok(()),
        };
        self.0.feed(message).await.map_err(ws_failure)
    }

    async fn flush(&mut self) -> Result<(), Failure> {
        self.0.flush().await.map_err(ws_failure)
    }
}

impl Transport for WsTransport {
    type Reader<'a> = WsReader<'a>;
    type Writer<'a> = WsWriter<'a>;

    fn split(&mut self) -> (WsReader<'_>, WsWriter<'_>) {
        (WsReader(&mut self.rx), WsWriter(&mut self.tx))
    }

    async fn end(self, how: Ending) {
        let code = match how {
            Ending::Drop => return,
            Ending::PeerClosed => None,
            Ending::Normal => Some((CloseCode::Normal, "")),
            Ending::GoingAway => Some((CloseCode::Away, "server shutting down")),
            Ending::TooLarge => Some((CloseCode::Size, "message too large")),
            Ending::ProtocolError => Some((CloseCode::Protocol, "protocol error")),
            Ending::InvalidData => Some((CloseCode::Invalid, "invalid UTF-8")),
            Ending::PolicyViolation => Some((CloseCode::Policy, "message rate limit")),
        };
        // The halves are always a pair: they were split from one stream here.
        let Ok(mut ws) = self.rx.reunite(self.tx) else {
            return;
        };
        let goodbye = async {
            match code {
                Some((code, reason)) => {
                    let frame = CloseFrame {
                        code,
                        reason: reason.into(),
                    };
                    if ws.close(Some(frame)).await.is_err() {
                        return;
                    }
                }
                // tungstenite queued the reply to the peer's close; writing it is enough.
                None => {
                    if ws.flush().await.is_err() {
                        return;
                    }
                }
            }
            // Read until the peer's close or an error, so the TCP close that follows is clean.
            while let Some(Ok(_)) = ws.next().await {}
        };
        // A peer that never answers does not hold the task.
        let _ = tokio::time::timeout(LINGER, goodbye).await;
    }
}

/// A framing for raw TCP: a codec and how its messages are delivered.
pub trait TcpFraming:
    Decoder<Item = Bytes, Error = CodecError> + Encoder<Bytes, Error = CodecError> + Copy + Send + Sync
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
    write_timeout: Duration,
}

impl<C: TcpFraming> TcpTransport<C> {
    /// Wraps an accepted socket; a write that makes no progress for `write_timeout` fails.
    pub fn new(stream: TcpStream, codec: C, write_timeout: Duration) -> Self {
        Self {
            stream,
            codec,
            read_buf: BytesMut::new(),
            write_buf: BytesMut::new(),
            write_timeout,
        }
    }
}

/// The read half of a raw TCP connection.
pub struct TcpReader<'a, C> {
    stream: &'a TcpStream,
    codec: &'a mut C,
    buf: &'a mut BytesMut,
}

/// The write half of a raw TCP connection.
pub struct TcpWriter<'a, C> {
    stream: &'a TcpStream,
    codec: C,
    buf: &'a mut BytesMut,
    timeout: Duration,
    /// Messages not sent because the framing cannot express them.
    unframable: u64,
}

/// The next complete message in `buf`, if there is one.
pub(super) fn decode<C: TcpFraming>(
    codec: &mut C,
    buf: &mut BytesMut,
) -> Result<Option<Message>, Failure> {
    match codec.decode(buf) {
        Ok(frame) => Ok(frame.map(C::deliver)),
        Err(CodecError::TooLarge { .. }) => Err(Failure::TooLarge),
        Err(CodecError::Io(e)) => Err(Failure::Io(e)),
        Err(e @ CodecError::Unframable(_)) => Err(Failure::Protocol(e.to_string())),
    }
}

/// Frames one outgoing message into `buf` with `codec`, for plain TCP and TLS alike. A message
/// the framing cannot express (a newline on a text connection) is not sent: the client did
/// nothing wrong and stays; `unframable` counts them, and the first one is logged.
pub(super) fn encode<C: TcpFraming>(
    mut codec: C,
    out: Outgoing,
    buf: &mut BytesMut,
    unframable: &mut u64,
) -> Result<(), Failure> {
    let data = match out {
        Outgoing::Text(text) => text.into(),
        Outgoing::Binary(data) => data,
        // Raw TCP has no control frames; the listener never queues a ping for it.
        Outgoing::Ping | Outgoing::Close => return Ok(()),
    };
    match codec.encode(data, buf) {
        Err(CodecError::Unframable(len)) => {
            *unframable += 1;
            if *unframable == 1 {
                tracing::warn!(
                    bytes = len,
                    "a message this framing cannot express (a newline on a text \
                     connection) was not sent; the client stays connected"
                );
            }
            Ok(())
        }
        other => other.map_err(|e| Failure::Protocol(e.to_string())),
    }
}

impl<C: TcpFraming> TcpReader<'_, C> {
    fn decode(&mut self) -> Result<Option<Message>, Failure> {
        decode(self.codec, self.buf)
    }
}

impl<C: TcpFraming> ReadHalf for TcpReader<'_, C> {
    async fn read(&mut self) -> Result<Incoming, Failure> {
        if let Some(message) = self.decode()? {
            return Ok(Incoming::Message(message));
        }
        loop {
            if self.buf.is_empty() {
                *self.buf = BytesMut::new();
            }
            // Waiting for readiness before reserving keeps idle connections buffer-free.
            self.stream.readable().await.map_err(Failure::Io)?;
            self.buf.reserve(READ_CHUNK);
            match self.stream.try_read_buf(self.buf) {
                Ok(0) => return Ok(Incoming::Closed),
                Ok(_) => {
                    return Ok(match self.decode()? {
                        Some(message) => Incoming::Message(message),
                        None => Incoming::Activity,
                    });
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) => return Err(Failure::Io(e)),
            }
        }
    }
}

impl<C: TcpFraming> WriteHalf for TcpWriter<'_, C> {
    async fn feed(&mut self, out: Outgoing) -> Result<(), Failure> {
        encode(self.codec, out, self.buf, &mut self.unframable)
    }

    async fn flush(&mut self) -> Result<(), Failure> {
        while !self.buf.is_empty() {
            // Each wait for room is bounded: the deadline counts time without progress.
            tokio::time::timeout(self.timeout, self.stream.writable())
                .await
                .map_err(|_| Failure::WriteTimeout)?
                .map_err(Failure::Io)?;
            match self.stream.try_write(self.buf) {
                Ok(n) => self.buf.advance(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(Failure::Io(e)),
            }
        }
        *self.buf = BytesMut::new();
        Ok(())
    }
}

impl<C: TcpFraming> Transport for TcpTransport<C> {
    type Reader<'a>
        = TcpReader<'a, C>
    where
        C: 'a;
    type Writer<'a>
        = TcpWriter<'a, C>
    where
        C: 'a;

    fn split(&mut self) -> (TcpReader<'_, C>, TcpWriter<'_, C>) {
        let codec = self.codec;
        let reader = TcpReader {
            stream: &self.stream,
            codec: &mut self.codec,
            buf: &mut self.read_buf,
        };
        let writer = TcpWriter {
            stream: &self.stream,
            codec,
            buf: &mut self.write_buf,
            timeout: self.write_timeout,
            unframable: 0,
        };
        (reader, writer)
    }

    async fn end(mut self, how: Ending) {
        match how {
            // A broken or oversized message is not answered: the client is simply cut off.
            Ending::Drop
            | Ending::TooLarge
            | Ending::ProtocolError
            | Ending::InvalidData
            | Ending::PolicyViolation => {}
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

#[cfg(test)]
mod tests {
    use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};

    use super::*;

    /// A server stream over `Guarded` with a tungstenite read buffer far smaller than the
    /// messages, and a client to talk to it.
    async fn pair() -> (
        WebSocketStream<Guarded<tokio::io::DuplexStream>>,
        WebSocketStream<tokio::io::DuplexStream>,
    ) {
        let (server, client) = tokio::io::duplex(256 * 1024);
        let config = WebSocketConfig::default().read_buffer_size(64);
        let server = WebSocketStream::from_raw_socket(
            Guarded::new(server, Duration::from_secs(10)),
            Role::Server,
            Some(config),
        )
        .await;
        let client = WebSocketStream::from_raw_socket(client, Role::Client, None).await;
        (server, client)
    }

    #[tokio::test]
    async fn read_ahead_is_freed_once_taken() {
        let (mut server, mut client) = pair().await;
        let big: String = (0..50_000)
            .map(|i| char::from(b'a' + (i % 26) as u8))
            .collect();
        let sent = ["hello".to_owned(), big, "é".repeat(3000), "bye".to_owned()];
        for text in &sent {
            client
                .feed(WsMessage::text(text.clone()))
                .await
                .expect("fed");
        }
        client.flush().await.expect("sent");
        for text in &sent {
            match server.next().await {
                Some(Ok(WsMessage::Text(got))) => assert_eq!(got.as_str(), text),
                other => panic!("expected {} bytes of text, got {other:?}", text.len()),
            }
        }
        // Everything was taken: an idle connection holds no read-ahead.
        assert_eq!(server.get_ref().ahead.capacity(), 0);
    }

    #[tokio::test]
    async fn invalid_utf8_read_ahead_still_fails_the_read() {
        use tokio_tungstenite::tungstenite::protocol::frame::Frame;
        use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
        let (mut server, mut client) = pair().await;
        // Invalid in the middle of a text message far larger than tungstenite's buffer, so
        // the bad byte sits in the read-ahead when it is scanned.
        let mut payload = vec![b'a'; 10_000];
        payload[5_000] = 0xff;
        let frame = Frame::message(payload, OpCode::Data(Data::Text), true);
        client.send(WsMessage::Frame(frame)).await.expect("sent");
        match server.next().await {
            Some(Err(e)) => assert!(
                matches!(ws_failure(e), Failure::InvalidUtf8(_)),
                "not a UTF-8 failure"
            ),
            other => panic!("expected a UTF-8 failure, got {other:?}"),
        }
    }
}
