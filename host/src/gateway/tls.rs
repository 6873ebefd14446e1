//! TLS (rustls with the ring provider) for listeners, the HTTP API and the admin listener:
//! certificates from PEM files, swapped in place on reload so connected clients keep their
//! sessions and new ones get the renewed certificate.

use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use arc_swap::ArcSwap;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::server::TlsStream;

use crate::config::TlsFiles;

/// How long a client may take to finish its TLS handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a certificate and key cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("TLS files {cert} and {key}: {message}")]
pub struct TlsError {
    /// The certificate file.
    pub cert: String,
    /// The key file.
    pub key: String,
    /// What is wrong.
    pub message: String,
}

/// A server certificate that can be replaced while connections are open.
pub struct Tls {
    cert: PathBuf,
    key: PathBuf,
    acceptor: ArcSwap<TlsAcceptor>,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tls")
            .field("cert", &self.cert)
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

impl Tls {
    /// Reads the certificate chain and key; `alpn` are the application protocols offered.
    pub fn load(cert: &Path, key: &Path, alpn: &[&[u8]]) -> Result<Arc<Self>, TlsError> {
        let acceptor = acceptor(cert, key, alpn)?;
        Ok(Arc::new(Self {
            cert: cert.to_owned(),
            key: key.to_owned(),
            acceptor: ArcSwap::from_pointee(acceptor),
        }))
    }

    /// Reads the files again (same paths, or new ones); on error the old certificate stays.
    /// Handshakes from now on use the new one; established sessions are untouched.
    pub fn reload(&self, cert: &Path, key: &Path, alpn: &[&[u8]]) -> Result<(), TlsError> {
        self.acceptor.store(Arc::new(acceptor(cert, key, alpn)?));
        Ok(())
    }

    /// Runs the server side of a handshake, bounded by [`HANDSHAKE_TIMEOUT`].
    pub async fn accept(&self, tcp: TcpStream) -> io::Result<Stream> {
        let acceptor = self.acceptor.load_full();
        match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
            Ok(Ok(tls)) => Ok(Stream::Tls(Box::new(tls))),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(io::ErrorKind::TimedOut.into()),
        }
    }
}

/// Renews the certificate of `what` (such as `admin`) from the reloaded config's files, in
/// a line for `switchboard reload`; on error the old certificate stays.
pub fn renew(what: &str, tls: &Tls, files: &TlsFiles, alpn: &[&[u8]]) -> String {
    match files.paths() {
        Some((cert, key)) => match tls.reload(cert, key, alpn) {
            Ok(()) => format!("{what}: certificate reloaded"),
            Err(e) => format!("{what}: certificate NOT reloaded, the old one stays: {e}"),
        },
        None => format!("{what}: turning TLS off needs a restart (still serving TLS)"),
    }
}

/// The application protocol the HTTP listeners speak.
pub const HTTP1: &[&[u8]] = &[b"http/1.1"];

fn acceptor(cert: &Path, key: &Path, alpn: &[&[u8]]) -> Result<TlsAcceptor, TlsError> {
    let error = |message: String| TlsError {
        cert: cert.display().to_string(),
        key: key.display().to_string(),
        message,
    };
    let chain = CertificateDer::pem_file_iter(cert)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| error(format!("cannot read the certificate chain: {e}")))?;
    if chain.is_empty() {
        return Err(error("no certificate in the certificate file".into()));
    }
    let key = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| error(format!("cannot read the private key: {e}")))?;
    // The provider is named, not taken from a process default, so which crates enable
    // which rustls features cannot change it.
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| error(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| error(format!("the key does not fit the certificate: {e}")))?;
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// An accepted connection, in the clear or under TLS.
#[derive(Debug)]
pub enum Stream {
    /// Plain TCP.
    Plain(TcpStream),
    /// TLS over TCP (boxed: its state is large, and most connections of a plain listener
    /// should not pay for it).
    Tls(Box<TlsStream<TcpStream>>),
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Self::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Self::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_flush(cx),
            Self::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Self::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

/// Why an HTTP listener (API, admin) could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum BindError {
    /// The address could not be bound.
    #[error("cannot listen: {0}")]
    Listen(#[from] io::Error),
    /// The certificate or key cannot be used.
    #[error(transparent)]
    Tls(#[from] TlsError),
}

/// Binds an HTTP listener at `addr`, serving HTTPS if `files` names a certificate and key.
pub async fn bind_web(addr: SocketAddr, files: &TlsFiles) -> Result<WebListener, BindError> {
    let tls = match files.paths() {
        Some((cert, key)) => Some(Tls::load(cert, key, HTTP1)?),
        None => None,
    };
    let tcp = TcpListener::bind(addr).await?;
    Ok(WebListener::new(tcp, tls)?)
}

/// An HTTP listener for axum, plain or TLS: handshakes run in tasks of their own, so a
/// slow client never holds up the accept loop.
#[derive(Debug)]
pub struct WebListener {
    accepted: mpsc::Receiver<(Stream, SocketAddr)>,
    local_addr: SocketAddr,
    tls: Option<Arc<Tls>>,
}

impl WebListener {
    /// The address bound.
    pub fn addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// `https://ADDR` or `http://ADDR`.
    pub fn base_url(&self) -> String {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        format!("{scheme}://{}", self.local_addr)
    }

    /// Its certificate, if it serves HTTPS.
    pub fn tls(&self) -> Option<Arc<Tls>> {
        self.tls.clone()
    }

    /// Accepts on `tcp` until the listener is dropped; with `tls`, serves HTTPS.
    pub fn new(tcp: TcpListener, tls: Option<Arc<Tls>>) -> io::Result<Self> {
        let local_addr = tcp.local_addr()?;
        let (tx, accepted) = mpsc::channel(64);
        let listener_tls = tls.clone();
        tokio::spawn(async move {
            loop {
                let (socket, remote) = tokio::select! {
                    () = tx.closed() => return,
                    accepted = tcp.accept() => match accepted {
                        Ok(pair) => pair,
                        Err(e) => {
                            // Usually out of file descriptors: retrying at once would spin.
                            tracing::warn!(listener = %local_addr, error = %e, "accept failed");
                            tokio::time::sleep(Duration::from_millis(100)).await;
                            continue;
                        }
                    },
                };
                let tx = tx.clone();
                let tls = tls.clone();
                tokio::spawn(async move {
                    let stream = match tls {
                        None => Stream::Plain(socket),
                        Some(tls) => match tls.accept(socket).await {
                            Ok(stream) => stream,
                            Err(e) => {
                                tracing::debug!(%remote, error = %e, "TLS handshake failed");
                                return;
                            }
                        },
                    };
                    let _ = tx.send((stream, remote)).await;
                });
            }
        });
        Ok(Self {
            accepted,
            local_addr,
            tls: listener_tls,
        })
    }
}

impl axum::serve::Listener for WebListener {
    type Io = Stream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Stream, SocketAddr) {
        match self.accepted.recv().await {
            Some(pair) => pair,
            // The accept task only ends when this listener is dropped.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.local_addr)
    }
}
