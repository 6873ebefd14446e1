//! Plugin stdout and stderr, turned into log lines tagged with the app and version.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;

use super::log_budget::{LogBudget, report_dropped};
use tokio::io::AsyncWrite;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};

/// Longest line kept, from any of a plugin's outputs; the rest of a longer line is cut so a
/// plugin cannot grow host memory or flood the log file.
pub const MAX_LINE: usize = 8 * 1024;

/// Which of the plugin's output streams.
#[derive(Clone, Copy, Debug)]
pub enum Stream {
    /// Standard output: logged at info.
    Stdout,
    /// Standard error: logged at warn.
    Stderr,
}

/// A WASI output stream whose lines go to the log, within the instance's log budget.
#[derive(Clone)]
pub struct LogStream {
    app: Arc<str>,
    version: Arc<str>,
    stream: Stream,
    budget: LogBudget,
}

impl LogStream {
    /// A stream tagged with the plugin's app name and version.
    pub fn new(app: Arc<str>, version: Arc<str>, stream: Stream, budget: LogBudget) -> Self {
        Self {
            app,
            version,
            stream,
            budget,
        }
    }

    fn writer(&self) -> LineWriter {
        LineWriter {
            tag: self.clone(),
            line: Vec::new(),
        }
    }
}

impl IsTerminal for LogStream {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for LogStream {
    fn async_stream(&self) -> Box<dyn AsyncWrite + Send + Sync> {
        Box::new(self.writer())
    }

    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.writer())
    }
}

/// Collects bytes into lines and logs each complete one.
struct LineWriter {
    tag: LogStream,
    line: Vec<u8>,
}

impl LineWriter {
    fn push(&mut self, mut bytes: &[u8]) {
        while let Some(end) = bytes.iter().position(|&b| b == b'\n') {
            self.keep(&bytes[..end]);
            self.emit();
            bytes = &bytes[end + 1..];
        }
        self.keep(bytes);
    }

    fn keep(&mut self, bytes: &[u8]) {
        let room = MAX_LINE.saturating_sub(self.line.len());
        self.line.extend_from_slice(&bytes[..bytes.len().min(room)]);
    }

    fn emit(&mut self) {
        let (app, version) = (&*self.tag.app, &*self.tag.version);
        let Some(dropped) = self.tag.budget.admit() else {
            self.line.clear();
            return;
        };
        report_dropped(app, version, dropped);
        let text = String::from_utf8_lossy(&self.line);
        match self.tag.stream {
            Stream::Stdout => tracing::info!(app, version, stream = "stdout", "{text}"),
            Stream::Stderr => tracing::warn!(app, version, stream = "stderr", "{text}"),
        }
        self.line.clear();
    }
}

impl Drop for LineWriter {
    fn drop(&mut self) {
        if !self.line.is_empty() {
            self.emit();
        }
    }
}

#[async_trait::async_trait]
impl Pollable for LineWriter {
    async fn ready(&mut self) {}
}

impl OutputStream for LineWriter {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        self.push(&bytes);
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(64 * 1024)
    }
}

impl AsyncWrite for LineWriter {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.get_mut().push(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}
