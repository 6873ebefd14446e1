//! A client of `plugins/probe`, which exposes the whole plugin API as JSON requests.

use std::collections::VecDeque;
use std::time::Duration;

use serde_json::{Value, json};

use super::clients::{Received, Ws};

/// An API error as the probe reports it: (kind, detail).
pub type ApiError = (String, String);

/// A WebSocket client of the probe app.
pub struct Probe {
    ws: Ws,
    next_id: u64,
    /// Messages that were not replies, in arrival order.
    others: VecDeque<Received>,
    /// This client's id.
    pub id: String,
}

impl Probe {
    /// Connects and learns its client id.
    pub async fn connect(url: &str) -> Self {
        let mut probe = Self {
            ws: Ws::connect(url).await,
            next_id: 1,
            others: VecDeque::new(),
            id: String::new(),
        };
        let me = probe.ok("whoami", json!({})).await;
        probe.id = me["client"]
            .as_str()
            .expect("whoami has a client")
            .to_owned();
        probe
    }

    /// Calls an API function; `args` is a JSON object of its arguments.
    pub async fn call(&mut self, op: &str, args: Value) -> Result<Value, ApiError> {
        let id = self.next_id;
        self.next_id += 1;
        let mut request = args;
        request["id"] = json!(id);
        request["op"] = json!(op);
        self.ws.send_text(&request.to_string()).await;
        loop {
            let received = self.ws.recv().await;
            if let Received::Text(text) = &received
                && let Ok(reply) = serde_json::from_str::<Value>(text)
                && reply.get("id") == Some(&json!(id))
            {
                if let Some(err) = reply.get("err") {
                    let field = |k: &str| err[k].as_str().unwrap_or_default().to_owned();
                    return Err((field("kind"), field("detail")));
                }
                return Ok(reply["ok"].clone());
            }
            if let Received::Closed(frame) = received {
                panic!("connection closed while waiting for reply to {op}: {frame:?}");
            }
            self.others.push_back(received);
        }
    }

    /// Calls and expects success.
    pub async fn ok(&mut self, op: &str, args: Value) -> Value {
        match self.call(op, args.clone()).await {
            Ok(value) => value,
            Err(e) => panic!("{op} {args} failed: {e:?}"),
        }
    }

    /// Calls and expects an error; returns its kind.
    pub async fn err(&mut self, op: &str, args: Value) -> String {
        match self.call(op, args.clone()).await {
            Ok(value) => panic!("{op} {args} succeeded with {value}, expected an error"),
            Err((kind, _)) => kind,
        }
    }

    /// The next message that is not a reply.
    pub async fn other(&mut self) -> Received {
        match self.others.pop_front() {
            Some(received) => received,
            None => self.ws.recv().await,
        }
    }

    /// The next non-reply message, which must be text.
    pub async fn other_text(&mut self) -> String {
        match self.other().await {
            Received::Text(text) => text,
            other => panic!("expected text, got {other:?}"),
        }
    }

    /// The next non-reply message as JSON.
    pub async fn notice(&mut self) -> Value {
        let text = self.other_text().await;
        serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}"))
    }

    /// Whether nothing but replies arrives within `wait`. Only for what has no order to
    /// lean on (events of other instances); prefer [`Probe::nothing_before`].
    pub async fn quiet_for(&mut self, wait: Duration) -> bool {
        self.others.is_empty() && self.ws.try_recv(wait).await.is_none()
    }

    /// The messages that were not replies, received and not yet read.
    pub fn unread(&self) -> Vec<Received> {
        self.others.iter().cloned().collect()
    }

    /// Sends `client` a marker message through the app, after everything this client's
    /// earlier requests sent: the commands of one instance about one client are applied in
    /// order (API.md), so whatever those requests sent `client` arrives before the marker.
    pub async fn send_fence(&mut self, client: &str) -> String {
        let fence = format!("fence {} from {}", self.next_id, self.id);
        self.ok(
            "send-to-client",
            json!({"client": client, "message": fence}),
        )
        .await;
        fence
    }

    /// Checks that the next message that is not a reply is `fence`: nothing else reached
    /// this client before it.
    pub async fn nothing_before(&mut self, fence: &str) {
        assert_eq!(
            self.other().await,
            Received::Text(fence.to_owned()),
            "client {} got something before the fence",
            self.id
        );
    }

    /// Checks that nothing but replies reached this client from its own requests so far.
    pub async fn nothing_so_far(&mut self) {
        let me = self.id.clone();
        let fence = self.send_fence(&me).await;
        self.nothing_before(&fence).await;
    }

    /// The raw client, for sending non-JSON messages.
    pub fn ws(&mut self) -> &mut Ws {
        &mut self.ws
    }

    /// Reads until the connection closes.
    pub async fn closed(&mut self) -> Option<(u16, String)> {
        while let Some(received) = self.others.pop_front() {
            if let Received::Closed(frame) = received {
                return frame;
            }
        }
        self.ws.closed().await
    }
}
