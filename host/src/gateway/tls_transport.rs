//! The text and frame protocols over TLS: the same framings as [`TcpTransport`], on a TLS
//! stream split into halves that read and write independently.
//!
//! A plain TCP client waits for readiness before it takes a buffer, so an idle one costs only
//! its socket; a TLS session holds buffers of its own anyway, so this one simply reads.
//!
//! [`TcpTransport`]: super::transport::TcpTransport

use std::time::Duration;

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt, ReadHalf as IoRead, WriteHalf as IoWrite};

use super::tls::Stream;
use super::transport::{
    Ending, Failure, Incoming, LINGER, Outgoing, READ_CHUNK, ReadHalf, TcpFraming, Transport,
    WriteHalf, decode, encode,
};

/// A TLS connection with a framing.
pub struct TlsTcpTransport<C> {
    reader: IoRead<Stream>,
    writer: IoWrite<Stream>,
    codec: C,
    read_buf: BytesMut,
    write_buf: BytesMut,
    write_timeout: Duration,
}

impl<C: TcpFraming> TlsTcpTransport<C> {
    /// Wraps an accepted TLS stream; a write that makes no progress for `write_timeout` fails.
    pub fn new(stream: Stream, codec: C, write_timeout: Duration) -> Self {
        let (reader, writer) = tokio::io::split(stream);
        Self {
            reader,
            writer,
            codec,
            read_buf: BytesMut::new(),
            write_buf: BytesMut::new(),
            write_timeout,
        }
    }
}

/// The read half.
pub struct TlsReader<'a, C> {
    io: &'a mut IoRead<Stream>,
    codec: &'a mut C,
    buf: &'a mut BytesMut,
}

/// The write half.
pub struct TlsWriter<'a, C> {
    io: &'a mut IoWrite<Stream>,
    codec: C,
    buf: &'a mut BytesMut,
    timeout: Duration,
    /// Messages not sent because the framing cannot express them.
    unframable: u64,
}

impl<C: TcpFraming> ReadHalf for TlsReader<'_, C> {
    async fn read(&mut self) -> Result<Incoming, Failure> {
        if let Some(message) = decode(self.codec, self.buf)? {
            return Ok(Incoming::Message(message));
        }
        self.buf.reserve(READ_CHUNK);
        match self.io.read_buf(self.buf).await {
            Ok(0) => Ok(Incoming::Closed),
            Ok(_) => Ok(match decode(self.codec, self.buf)? {
                Some(message) => Incoming::Message(message),
                None => Incoming::Activity,
            }),
            Err(e) => Err(Failure::Io(e)),
        }
    }
}

impl<C: TcpFraming> WriteHalf for TlsWriter<'_, C> {
    async fn feed(&mut self, out: Outgoing) -> Result<(), Failure> {
        encode(self.codec, out, self.buf, &mut self.unframable)
    }

    async fn flush(&mut self) -> Result<(), Failure> {
        // Each write is bounded: the deadline counts time without progress.
        while !self.buf.is_empty() {
            let written = tokio::time::timeout(self.timeout, self.io.write(self.buf))
                .await
                .map_err(|_| Failure::WriteTimeout)?
                .map_err(Failure::Io)?;
            if written == 0 {
                return Err(Failure::Closed);
            }
            self.buf.advance(written);
        }
        tokio::time::timeout(self.timeout, self.io.flush())
            .await
            .map_err(|_| Failure::WriteTimeout)?
            .map_err(Failure::Io)?;
        *self.buf = BytesMut::new();
        Ok(())
    }
}

impl<C: TcpFraming> Transport for TlsTcpTransport<C> {
    type Reader<'a>
        = TlsReader<'a, C>
    where
        C: 'a;
    type Writer<'a>
        = TlsWriter<'a, C>
    where
        C: 'a;

    fn split(&mut self) -> (TlsReader<'_, C>, TlsWriter<'_, C>) {
        let codec = self.codec;
        let reader = TlsReader {
            io: &mut self.reader,
            codec: &mut self.codec,
            buf: &mut self.read_buf,
        };
        let writer = TlsWriter {
            io: &mut self.writer,
            codec,
            buf: &mut self.write_buf,
            timeout: self.write_timeout,
            unframable: 0,
        };
        (reader, writer)
    }

    async fn end(self, how: Ending) {
        let mut stream = self.reader.unsplit(self.writer);
        match how {
            // A broken or oversized message is not answered: the client is simply cut off.
            Ending::Drop
            | Ending::TooLarge
            | Ending::ProtocolError
            | Ending::InvalidData
            | Ending::PolicyViolation => {}
            Ending::PeerClosed => {
                let _ = tokio::time::timeout(LINGER, stream.shutdown()).await;
            }
            Ending::Normal | Ending::GoingAway => {
                // close_notify and FIN, then read until the client's: closing with unread
                // input would reset the connection and could destroy data still in flight.
                let goodbye = async {
                    if stream.shutdown().await.is_err() {
                        return;
                    }
                    let mut sink = BytesMut::new();
                    loop {
                        sink.clear();
                        sink.reserve(READ_CHUNK);
                        match stream.read_buf(&mut sink).await {
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
