//! A minimal client of the Chrome DevTools Protocol for browser tests: it starts the system
//! Chromium headless and drives its tabs over their DevTools WebSockets (`Runtime.evaluate`,
//! `Page.captureScreenshot`). A few JSON messages are all the tests need, so this is a
//! hundred lines over tokio-tungstenite instead of a large CDP crate to build.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use super::WAIT;
use super::clients::TIMEOUT;
use super::http;

/// The Chromium binary: `$CHROMIUM`, else `chromium` or `chromium-browser` on `PATH`.
pub fn find_chromium() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("CHROMIUM") {
        return Some(PathBuf::from(path));
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .flat_map(|dir| ["chromium", "chromium-browser"].map(|name| dir.join(name)))
        .find(|candidate| candidate.is_file())
}

/// A headless Chromium, killed when dropped.
pub struct Browser {
    child: Child,
    /// `127.0.0.1:PORT` of its DevTools endpoint.
    devtools: String,
    _profile: tempfile::TempDir,
}

impl Browser {
    /// Starts `binary` headless with a fresh profile and a DevTools port from the OS.
    pub fn start(binary: &Path) -> Self {
        let profile = tempfile::tempdir().expect("profile dir");
        let child = Command::new(binary)
            .args([
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--no-first-run",
                "--remote-debugging-port=0",
                "--window-size=900,700",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", binary.display()));
        // Chromium writes the port it took into the profile once it listens.
        let port_file = profile.path().join("DevToolsActivePort");
        let deadline = Instant::now() + WAIT;
        let port = loop {
            if let Some(port) = std::fs::read_to_string(&port_file)
                .ok()
                .and_then(|text| text.lines().next().map(str::to_owned))
                .filter(|line| !line.is_empty())
            {
                break port;
            }
            assert!(Instant::now() < deadline, "Chromium never opened DevTools");
            std::thread::sleep(Duration::from_millis(50));
        };
        Self {
            child,
            devtools: format!("127.0.0.1:{port}"),
            _profile: profile,
        }
    }

    /// Opens a new tab at `url`.
    pub async fn open(&self, url: &str) -> Tab {
        let response =
            http::request(&self.devtools, "PUT", &format!("/json/new?{url}"), &[], b"").await;
        assert_eq!(response.status, 200, "{}", response.body);
        let target = response.json();
        let ws_url = target["webSocketDebuggerUrl"]
            .as_str()
            .expect("a DevTools WebSocket URL");
        let (ws, _) = tokio_tungstenite::connect_async(ws_url)
            .await
            .expect("the tab's DevTools WebSocket");
        Tab { ws, next_id: 1 }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One tab, driven over its DevTools WebSocket.
pub struct Tab {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    next_id: u64,
}

impl Tab {
    /// Calls a DevTools method and returns its `result`; events in between are skipped.
    pub async fn call(&mut self, method: &str, params: Value) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        let request = json!({"id": id, "method": method, "params": params});
        self.ws
            .send(Message::text(request.to_string()))
            .await
            .expect("send to DevTools");
        loop {
            let message = tokio::time::timeout(TIMEOUT, self.ws.next())
                .await
                .unwrap_or_else(|_| panic!("no answer to {method} in time"))
                .expect("DevTools open")
                .expect("a DevTools message");
            let Message::Text(text) = message else {
                continue;
            };
            let reply: Value = serde_json::from_str(&text).expect("DevTools JSON");
            if reply["id"] != json!(id) {
                continue;
            }
            assert!(reply.get("error").is_none(), "{method}: {reply}");
            return reply["result"].clone();
        }
    }

    /// Evaluates JavaScript in the page and returns its value; a thrown exception fails.
    pub async fn eval(&mut self, expression: &str) -> Value {
        let result = self
            .call(
                "Runtime.evaluate",
                json!({"expression": expression, "returnByValue": true, "awaitPromise": true}),
            )
            .await;
        assert!(
            result.get("exceptionDetails").is_none(),
            "{expression}: {result}"
        );
        result["result"]["value"].clone()
    }

    /// Waits until `condition` (a JavaScript expression) is true in the page.
    pub async fn wait_for(&mut self, condition: &str) {
        let deadline = Instant::now() + WAIT;
        while self.eval(condition).await != json!(true) {
            assert!(
                Instant::now() < deadline,
                "never true in the page: {condition}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// A PNG screenshot of the page.
    pub async fn screenshot(&mut self) -> Vec<u8> {
        use base64::Engine as _;
        let result = self
            .call("Page.captureScreenshot", json!({"format": "png"}))
            .await;
        let data = result["data"].as_str().expect("screenshot data");
        base64::engine::general_purpose::STANDARD
            .decode(data)
            .expect("base64 PNG")
    }
}
