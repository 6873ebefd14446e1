//! The control socket: a Unix socket (mode 0600) next to the pid file, through which
//! `status`, `reload` and `stop` talk to a running server. One JSON line each way.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixListener;

use super::status::Status;

/// Longest request line accepted.
const MAX_REQUEST: usize = 4096;

/// How long a command waits for the server to answer.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(60);

/// A command to the running server.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "command", rename_all = "kebab-case")]
pub enum Request {
    /// Report the server's state.
    Status,
    /// Re-read the config file and re-scan the plugin folder.
    Reload,
    /// Stop gracefully.
    Stop,
}

/// The server's answer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "answer", rename_all = "kebab-case")]
pub enum Response {
    /// The state.
    Status(Box<Status>),
    /// What a reload changed, one line each.
    Reloaded {
        /// The changes.
        changes: Vec<String>,
    },
    /// The stop has begun.
    Stopping,
    /// The request failed.
    Error {
        /// Why.
        message: String,
    },
}

/// What serves the requests: the running server.
#[async_trait]
pub trait Handler: Send + Sync + 'static {
    /// Answers one request.
    async fn handle(&self, request: Request) -> Response;
}

/// Listens on `path` (replacing a stale socket file) with mode 0600.
///
/// The socket is bound inside a fresh folder only this user can enter, made private there,
/// then moved into place: at no moment can another user connect to it.
pub fn bind(path: &Path) -> std::io::Result<UnixListener> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let private = tempfile::Builder::new()
        .prefix(".control-")
        .permissions(std::fs::Permissions::from_mode(0o700))
        .tempdir_in(dir)?;
    let staged = private.path().join("socket");
    let listener = UnixListener::bind(&staged)?;
    std::fs::set_permissions(&staged, std::fs::Permissions::from_mode(0o600))?;
    let _ = std::fs::remove_file(path);
    std::fs::rename(&staged, path)?;
    Ok(listener)
}

/// Whether a peer of user id `peer` may use the control socket of a server run by `own`:
/// the same user, or root.
fn may_control(peer: u32, own: u32) -> bool {
    peer == own || peer == 0
}

/// Serves requests until the listener fails.
pub async fn serve(listener: UnixListener, handler: Arc<dyn Handler>) {
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                // Usually out of file descriptors: retrying at once would spin.
                tracing::warn!("control socket: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        // The file mode keeps other users out; the peer's credentials say so once more.
        let own = rustix::process::geteuid().as_raw();
        let refusal = match stream.peer_cred() {
            Ok(peer) if may_control(peer.uid(), own) => None,
            Ok(peer) => {
                tracing::warn!(
                    uid = peer.uid(),
                    pid = ?peer.pid(),
                    "control socket: refused a process of another user"
                );
                Some(format!(
                    "refused: this server runs as uid {own}; only that user or root may \
                     control it (you are uid {})",
                    peer.uid()
                ))
            }
            Err(e) => {
                tracing::warn!("control socket: cannot tell who connects, refused: {e}");
                Some(format!("refused: cannot tell who you are: {e}"))
            }
        };
        let handler = handler.clone();
        tokio::spawn(async move {
            let (read, mut write) = stream.into_split();
            // The request is read even from a refused peer, so it is never cut off mid-write
            // and always gets to read the answer.
            let mut line = String::new();
            let mut reader = tokio::io::BufReader::new(read).take(MAX_REQUEST as u64);
            let response = match (refusal, reader.read_line(&mut line).await) {
                (Some(message), _) => Response::Error { message },
                (None, Ok(_)) => match serde_json::from_str::<Request>(&line) {
                    Ok(request) => handler.handle(request).await,
                    Err(e) => Response::Error {
                        message: format!("bad request: {e}"),
                    },
                },
                (None, Err(e)) => Response::Error {
                    message: format!("cannot read the request: {e}"),
                },
            };
            if let Ok(mut text) = serde_json::to_string(&response) {
                text.push('\n');
                let _ = write.write_all(text.as_bytes()).await;
            }
        });
    }
}

/// Why a command could not reach the server.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// Nothing answers on the socket.
    #[error("cannot reach the server on {path}: {source}")]
    Connect {
        /// The socket.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The answer was not understood.
    #[error("bad answer from the server: {0}")]
    Answer(String),
}

/// Sends one request and waits for the answer.
pub fn call(path: &Path, request: &Request) -> Result<Response, CallError> {
    let connect = |source| CallError::Connect {
        path: path.display().to_string(),
        source,
    };
    let mut stream = UnixStream::connect(path).map_err(connect)?;
    stream
        .set_read_timeout(Some(ANSWER_TIMEOUT))
        .map_err(connect)?;
    let mut line = serde_json::to_string(request).map_err(|e| CallError::Answer(e.to_string()))?;
    line.push('\n');
    stream.write_all(line.as_bytes()).map_err(connect)?;
    let mut answer = String::new();
    BufReader::new(stream)
        .read_line(&mut answer)
        .map_err(|e| CallError::Answer(e.to_string()))?;
    serde_json::from_str(&answer).map_err(|e| CallError::Answer(format!("{e}: {answer:?}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_have_a_stable_json_form() {
        let text = serde_json::to_string(&Request::Status).expect("serialises");
        assert_eq!(text, r#"{"command":"status"}"#);
        let back: Request = serde_json::from_str(r#"{"command":"stop"}"#).expect("parses");
        assert_eq!(back, Request::Stop);
        let answer = Response::Reloaded {
            changes: vec!["x".into()],
        };
        let text = serde_json::to_string(&answer).expect("serialises");
        assert_eq!(text, r#"{"answer":"reloaded","changes":["x"]}"#);
    }

    #[test]
    fn only_the_same_user_or_root_may_control_the_server() {
        assert!(may_control(1000, 1000));
        assert!(may_control(0, 1000));
        assert!(!may_control(1001, 1000));
        assert!(may_control(0, 0));
        assert!(!may_control(1000, 0));
    }

    #[tokio::test]
    async fn a_request_round_trips_and_the_socket_is_private() {
        struct Echo;
        #[async_trait]
        impl Handler for Echo {
            async fn handle(&self, request: Request) -> Response {
                Response::Error {
                    message: format!("{request:?}"),
                }
            }
        }
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("c.sock");
        let listener = bind(&path).expect("bind");
        let mode = std::fs::metadata(&path)
            .expect("exists")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        // Bound again over a stale socket file, and nothing is left of the staging folder.
        drop(listener);
        let listener = bind(&path).expect("bind over a stale socket");
        let left: Vec<_> = std::fs::read_dir(dir.path())
            .expect("list")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(left, ["c.sock"]);
        tokio::spawn(serve(listener, Arc::new(Echo)));
        let answer = tokio::task::spawn_blocking(move || call(&path, &Request::Reload))
            .await
            .expect("task")
            .expect("answer");
        assert_eq!(
            answer,
            Response::Error {
                message: "Reload".into()
            }
        );
    }
}
