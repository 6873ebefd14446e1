//! Real clients of the three protocols, with timeouts so a broken server fails a test
//! instead of hanging it.

use std::net::SocketAddr;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// How long a client waits for something that should arrive: generous, since a loaded
/// machine is slow and a passing test never waits this long.
pub const TIMEOUT: Duration = Duration::from_secs(30);

/// What a WebSocket client received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Received {
    /// A text frame.
    Text(String),
    /// A binary frame.
    Binary(Vec<u8>),
    /// A close frame (code, reason), or the connection ended without one (`None`).
    Closed(Option<(u16, String)>),
}

/// A WebSocket client.
pub struct Ws {
    stream: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

impl From<WebSocketStream<MaybeTlsStream<TcpStream>>> for Ws {
    fn from(stream: WebSocketStream<MaybeTlsStream<TcpStream>>) -> Self {
        Self { stream }
    }
}

impl Ws {
    /// Connects and completes the handshake.
    pub async fn connect(url: &str) -> Self {
        let (stream, _) = tokio::time::timeout(TIMEOUT, tokio_tungstenite::connect_async(url))
            .await
            .expect("handshake in time")
            .expect("handshake succeeds");
        Self { stream }
    }

    /// Sends a text frame.
    pub async fn send_text(&mut self, text: &str) {
        self.stream
            .send(Message::text(text))
            .await
            .expect("send text");
    }

    /// Sends a binary frame.
    pub async fn send_binary(&mut self, data: &[u8]) {
        self.stream
            .send(Message::binary(data.to_vec()))
            .await
            .expect("send binary");
    }

    /// The next text, binary or close; pings and pongs are skipped.
    pub async fn recv(&mut self) -> Received {
        tokio::time::timeout(TIMEOUT, self.next())
            .await
            .expect("a message in time")
    }

    /// The next message, which must be text.
    pub async fn recv_text(&mut self) -> String {
        match self.recv().await {
            Received::Text(text) => text,
            other => panic!("expected text, got {other:?}"),
        }
    }

    /// Whatever arrives within `wait`, or `None`.
    pub async fn try_recv(&mut self, wait: Duration) -> Option<Received> {
        tokio::time::timeout(wait, self.next()).await.ok()
    }

    async fn next(&mut self) -> Received {
        loop {
            match self.stream.next().await {
                None => return Received::Closed(None),
                Some(Err(_)) => return Received::Closed(None),
                Some(Ok(Message::Text(text))) => return Received::Text(text.to_string()),
                Some(Ok(Message::Binary(data))) => return Received::Binary(data.to_vec()),
                Some(Ok(Message::Close(frame))) => {
                    return Received::Closed(
                        frame.map(|CloseFrame { code, reason }| {
                            (u16::from(code), reason.to_string())
                        }),
                    );
                }
                Some(Ok(_)) => continue,
            }
        }
    }

    /// Reads until the connection closes; returns the close frame if there was one.
    pub async fn closed(&mut self) -> Option<(u16, String)> {
        loop {
            if let Received::Closed(frame) = self.recv().await {
                return frame;
            }
        }
    }
}

/// A client of the `text` protocol: newline-delimited messages.
pub struct Lines {
    reader: BufReader<OwnedReadHalf>,
    writer: OwnedWriteHalf,
}

impl Lines {
    /// Connects.
    pub async fn connect(addr: SocketAddr) -> Self {
        let (read, writer) = TcpStream::connect(addr)
            .await
            .expect("connect")
            .into_split();
        Self {
            reader: BufReader::new(read),
            writer,
        }
    }

    /// Sends raw bytes (add the newline yourself).
    pub async fn send_raw(&mut self, bytes: &[u8]) {
        self.writer.write_all(bytes).await.expect("write");
    }

    /// Sends one line.
    pub async fn send(&mut self, line: &[u8]) {
        let mut bytes = line.to_vec();
        bytes.push(b'\n');
        self.send_raw(&bytes).await;
    }

    /// The next line without its newline; `None` at end of stream.
    pub async fn recv(&mut self) -> Option<Vec<u8>> {
        let mut line = Vec::new();
        let n = tokio::time::timeout(TIMEOUT, self.reader.read_until(b'\n', &mut line))
            .await
            .expect("a line in time")
            .ok()?;
        if n == 0 {
            return None;
        }
        assert_eq!(line.pop(), Some(b'\n'), "a line ends with a newline");
        Some(line)
    }

    /// The next line as text.
    pub async fn recv_text(&mut self) -> String {
        String::from_utf8(self.recv().await.expect("a line")).expect("UTF-8")
    }
}

/// A client of the `frame` protocol: u32 big-endian length prefix.
pub struct Frames {
    read: OwnedReadHalf,
    write: OwnedWriteHalf,
}

impl Frames {
    /// Connects.
    pub async fn connect(addr: SocketAddr) -> Self {
        let (read, write) = TcpStream::connect(addr)
            .await
            .expect("connect")
            .into_split();
        Self { read, write }
    }

    /// Sends one frame.
    pub async fn send(&mut self, payload: &[u8]) {
        let mut bytes = (payload.len() as u32).to_be_bytes().to_vec();
        bytes.extend_from_slice(payload);
        self.write.write_all(&bytes).await.expect("write");
    }

    /// Sends raw bytes.
    pub async fn send_raw(&mut self, bytes: &[u8]) {
        self.write.write_all(bytes).await.expect("write");
    }

    /// The next frame's payload; `None` at end of stream.
    pub async fn recv(&mut self) -> Option<Vec<u8>> {
        tokio::time::timeout(TIMEOUT, async {
            let mut len = [0u8; 4];
            self.read.read_exact(&mut len).await.ok()?;
            let mut payload = vec![0; u32::from_be_bytes(len) as usize];
            self.read.read_exact(&mut payload).await.ok()?;
            Some(payload)
        })
        .await
        .expect("a frame in time")
    }
}
