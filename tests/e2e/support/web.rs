//! A small HTTP/1.1 server for plugins to call: each request's path (with its query) is
//! answered by a route the test chooses, so tests can offer a quick answer, one held until
//! the test opens a gate, or none at all.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::watch;

/// How the server answers one request.
#[derive(Clone, Debug)]
pub enum Answer {
    /// At once, with this status and body.
    Now(u16, String),
    /// With this status and body once the gate opens ([`Web::open_gate`]).
    AfterGate(u16, String),
    /// Never: the connection is held open.
    Never,
}

/// A running server; it stops when dropped.
pub struct Web {
    /// Where it listens.
    pub addr: SocketAddr,
    requests: Arc<Mutex<Vec<String>>>,
    gate: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Web {
    /// Starts a server on a free loopback port; `route` answers each request target.
    pub async fn start(route: impl Fn(&str) -> Answer + Send + Sync + 'static) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let requests = Arc::new(Mutex::new(Vec::new()));
        let (gate, _) = watch::channel(false);
        let route = Arc::new(route);
        let (seen, opened) = (requests.clone(), gate.clone());
        let task = tokio::spawn(async move {
            loop {
                let Ok((mut stream, _)) = listener.accept().await else {
                    return;
                };
                let (route, seen, mut opened) = (route.clone(), seen.clone(), opened.subscribe());
                tokio::spawn(async move {
                    let mut head = Vec::new();
                    let mut buf = [0u8; 1024];
                    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                        match stream.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => head.extend_from_slice(&buf[..n]),
                        }
                    }
                    let head = String::from_utf8_lossy(&head).into_owned();
                    let target = head.split_whitespace().nth(1).unwrap_or("/").to_owned();
                    seen.lock().expect("lock").push(target.clone());
                    let (status, body) = match route(&target) {
                        Answer::Now(status, body) => (status, body),
                        Answer::AfterGate(status, body) => {
                            let _ = opened.wait_for(|open| *open).await;
                            (status, body)
                        }
                        Answer::Never => {
                            // Hold the connection until the server is dropped.
                            std::future::pending::<()>().await;
                            return;
                        }
                    };
                    let response = format!(
                        "HTTP/1.1 {status} X\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = stream.write_all(response.as_bytes()).await;
                });
            }
        });
        Self {
            addr,
            requests,
            gate,
            task,
        }
    }

    /// `http://ADDR`.
    pub fn origin(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The request targets received so far, in order.
    pub fn requests(&self) -> Vec<String> {
        self.requests.lock().expect("lock").clone()
    }

    /// Lets the requests held by [`Answer::AfterGate`] be answered.
    pub fn open_gate(&self) {
        self.gate.send_replace(true);
    }
}

impl Drop for Web {
    fn drop(&mut self) {
        self.task.abort();
    }
}
