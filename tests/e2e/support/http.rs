//! A plain HTTP/1.1 client for the admin listener and the HTTP API: one request per
//! connection (`Connection: close`), read to the end, with a timeout.

use serde_json::Value;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::clients::TIMEOUT;

/// A response.
#[derive(Debug)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// The header lines, names lowercased.
    pub headers: Vec<(String, String)>,
    /// The body, as text.
    pub body: String,
}

impl Response {
    /// The body as JSON.
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.body))
    }

    /// The value of a header.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Sends one request over plain TCP to `addr` and reads the whole response.
pub async fn request(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Response {
    let stream = tokio::net::TcpStream::connect(addr)
        .await
        .expect("HTTP server");
    request_over(stream, addr, method, path, headers, body).await
}

/// Sends one request for `host` over an established stream (plain or TLS) and reads the
/// response.
pub async fn request_over(
    mut stream: impl AsyncRead + AsyncWrite + Unpin,
    host: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Response {
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    let exchange = async {
        stream
            .write_all(head.as_bytes())
            .await
            .expect("request head");
        stream.write_all(body).await.expect("request body");
        // Up to the end of the head, then Content-Length bytes if given, else to the end
        // (a TLS peer may end without close_notify: what was read is the response).
        let mut response = Vec::new();
        let mut chunk = [0u8; 16 * 1024];
        loop {
            if let Some(end) = response.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&response[..end]).to_ascii_lowercase();
                let length = head
                    .lines()
                    .filter_map(|l| l.strip_prefix("content-length:"))
                    .find_map(|v| v.trim().parse::<usize>().ok());
                if length.is_some_and(|n| response.len() >= end + 4 + n) {
                    return response;
                }
            }
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return response,
                Ok(n) => response.extend_from_slice(&chunk[..n]),
            }
        }
    };
    let response = tokio::time::timeout(TIMEOUT, exchange)
        .await
        .expect("a response in time");
    let response = String::from_utf8_lossy(&response).into_owned();
    let (head, body) = response
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("a response: {response:?}"));
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|line| line.split_whitespace().nth(1))
        .and_then(|code| code.parse().ok())
        .expect("a status line");
    let headers = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    Response {
        status,
        headers,
        body: body.to_owned(),
    }
}

/// `POST /api/v1/apps/{app}/{function}` with a bearer token and a JSON body.
pub async fn api_call(
    addr: &str,
    token: &str,
    app: &str,
    function: &str,
    args: &Value,
) -> Response {
    let auth = format!("Bearer {token}");
    request(
        addr,
        "POST",
        &format!("/api/v1/apps/{app}/{function}"),
        &[
            ("Authorization", &auth),
            ("Content-Type", "application/json"),
        ],
        args.to_string().as_bytes(),
    )
    .await
}
