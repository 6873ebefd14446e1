//! The WebSocket opening handshake, with the app's verdict in the middle.
//!
//! tungstenite's own accept takes a synchronous callback, but the verdict is an async call
//! into a worker. So the request head is read here, checked and answered with tungstenite's
//! own parser and response builder, and the upgraded socket is handed to tokio-tungstenite
//! with whatever the client sent after the head. This is also the one place that maps a
//! refused handshake to an HTTP response.

use std::io;
use std::time::Duration;

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio_tungstenite::tungstenite::handshake::machine::TryParse;
use tokio_tungstenite::tungstenite::handshake::server::{Request, create_response, write_response};
use tokio_tungstenite::tungstenite::http::StatusCode;

use crate::bus::HttpRequest;

/// Longest request head accepted.
const MAX_HEAD: usize = 8 * 1024;

/// How long a refused client is given to read its answer.
const REFUSAL_LINGER: Duration = Duration::from_secs(1);

/// A valid upgrade request, ready to be accepted or refused.
#[derive(Debug)]
pub struct Upgrade {
    /// What the app sees.
    pub request: HttpRequest,
    /// The `101 Switching Protocols` response to send if the app accepts.
    pub response: Vec<u8>,
    /// Bytes the client sent after the head (the start of its first frames).
    pub leftover: Vec<u8>,
}

/// Why a request head is not a WebSocket upgrade.
#[derive(Debug, thiserror::Error)]
pub enum BadRequest {
    /// The head is longer than [`MAX_HEAD`].
    #[error("request head above {MAX_HEAD} bytes")]
    TooLarge,
    /// Malformed HTTP, or a broken WebSocket upgrade.
    #[error("{0}")]
    Invalid(String),
    /// A well-formed GET without `Upgrade`: a listener with `static_dir` answers it with a file.
    #[error("{reason}")]
    NotUpgrade {
        /// The request path, without the query.
        path: String,
        /// Why it is no upgrade, for the 400 answer of a listener without files.
        reason: String,
    },
}

impl BadRequest {
    /// The HTTP response that tells the client.
    pub fn response(&self) -> Vec<u8> {
        match self {
            Self::TooLarge => http_response(431, "request head too large"),
            Self::Invalid(reason) | Self::NotUpgrade { reason, .. } => http_response(400, reason),
        }
    }
}

/// Parses a request head: `Ok(None)` while it is incomplete.
pub fn parse(buf: &[u8]) -> Result<Option<Upgrade>, BadRequest> {
    let invalid = |e: &dyn std::fmt::Display| BadRequest::Invalid(e.to_string());
    let Some((size, request)) = Request::try_parse(buf).map_err(|e| invalid(&e))? else {
        return match buf.len() {
            n if n >= MAX_HEAD => Err(BadRequest::TooLarge),
            _ => Ok(None),
        };
    };
    if size > MAX_HEAD {
        return Err(BadRequest::TooLarge);
    }
    let upgrading = request.headers().get_all("upgrade").iter().any(|v| {
        v.to_str()
            .is_ok_and(|v| v.to_ascii_lowercase().contains("websocket"))
    });
    let response = create_response(&request).map_err(|e| match upgrading {
        true => invalid(&e),
        false => BadRequest::NotUpgrade {
            path: request.uri().path().to_owned(),
            reason: e.to_string(),
        },
    })?;
    let mut response_bytes = Vec::with_capacity(160);
    write_response(&mut response_bytes, &response).map_err(|e| invalid(&e))?;
    Ok(Some(Upgrade {
        request: HttpRequest {
            path: request.uri().path().to_owned(),
            query: request.uri().query().unwrap_or_default().to_owned(),
            headers: headers_in_order(&buf[..size]),
        },
        response: response_bytes,
        leftover: buf[size..].to_vec(),
    }))
}

/// The header lines of an already validated head, names lowercased, in the order received
/// (an `http::HeaderMap` would group them by name).
fn headers_in_order(head: &[u8]) -> Vec<(String, String)> {
    String::from_utf8_lossy(head)
        .split("\r\n")
        .skip(1)
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_owned()))
        .collect()
}

/// A complete HTTP response that ends the connection: `status` with `body` as plain text.
pub fn http_response(status: u16, body: &str) -> Vec<u8> {
    let phrase = StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("Error");
    format!(
        "HTTP/1.1 {status} {phrase}\r\nContent-Type: text/plain; charset=utf-8\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// The response to an app's rejection; a status outside 400..=599 becomes 403.
pub fn rejection_response(status: u16, reason: &str) -> Vec<u8> {
    let status = if (400..=599).contains(&status) {
        status
    } else {
        403
    };
    // The reason goes into a header-delimited body; keep it on one line and short.
    let reason: String = reason
        .chars()
        .filter(|c| !c.is_control())
        .take(1024)
        .collect();
    http_response(status, &reason)
}

/// Why reading a head failed.
#[derive(Debug, thiserror::Error)]
pub enum HeadError {
    /// The client sent something that is not an upgrade; it deserves an answer.
    #[error(transparent)]
    Bad(#[from] BadRequest),
    /// The client went away or the socket failed.
    #[error(transparent)]
    Io(#[from] io::Error),
}

/// Reads and parses the request head (the caller bounds the time).
pub async fn read_upgrade(stream: &mut (impl AsyncRead + Unpin)) -> Result<Upgrade, HeadError> {
    let mut buf = BytesMut::with_capacity(1024);
    loop {
        buf.reserve(1024);
        if stream.read_buf(&mut buf).await? == 0 {
            return Err(io::Error::from(io::ErrorKind::UnexpectedEof).into());
        }
        if let Some(upgrade) = parse(&buf)? {
            return Ok(upgrade);
        }
    }
}

/// Sends a final response and closes, giving the client a moment to read it.
pub async fn refuse(stream: &mut (impl AsyncRead + AsyncWrite + Unpin), response: &[u8]) {
    let goodbye = async {
        stream.write_all(response).await?;
        stream.shutdown().await?;
        // Read what the client still sends: closing with unread input would reset the
        // connection and could destroy the response before the client reads it.
        let mut sink = [0u8; 256];
        while stream.read(&mut sink).await? > 0 {}
        io::Result::Ok(())
    };
    let _ = tokio::time::timeout(REFUSAL_LINGER, goodbye).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "GET /chat?room=1&x=%20 HTTP/1.1\r\nHost: example\r\nUpgrade: websocket\r\n\
        Connection: Upgrade\r\nX-B: 1\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
        X-A: 2\r\nx-b:  3 \r\nSec-WebSocket-Version: 13\r\n\r\n";

    #[test]
    fn a_valid_upgrade_is_parsed_with_headers_in_order() {
        let mut bytes = GOOD.as_bytes().to_vec();
        bytes.extend_from_slice(b"\x81\x00");
        let up = parse(&bytes).expect("valid").expect("complete");
        assert_eq!(up.request.path, "/chat");
        assert_eq!(up.request.query, "room=1&x=%20");
        let names: Vec<&str> = up.request.headers.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "host",
                "upgrade",
                "connection",
                "x-b",
                "sec-websocket-key",
                "x-a",
                "x-b",
                "sec-websocket-version"
            ]
        );
        assert_eq!(up.request.headers[6], ("x-b".to_owned(), "3".to_owned()));
        assert_eq!(up.leftover, b"\x81\x00");
        let response = String::from_utf8(up.response).expect("ascii");
        assert!(response.starts_with("HTTP/1.1 101"), "{response}");
        // The RFC 6455 example key and its accept value.
        assert!(
            response.contains("s3pPLMBiTxaQ9kYGzzhZRbK+xOo="),
            "{response}"
        );
    }

    #[test]
    fn an_incomplete_head_waits() {
        assert!(
            parse(&GOOD.as_bytes()[..40])
                .expect("so far valid")
                .is_none()
        );
    }

    #[test]
    fn a_path_without_query_has_an_empty_query() {
        let head = GOOD.replace("/chat?room=1&x=%20", "/");
        let up = parse(head.as_bytes()).expect("valid").expect("complete");
        assert_eq!(
            (up.request.path.as_str(), up.request.query.as_str()),
            ("/", "")
        );
    }

    #[test]
    fn non_upgrades_are_bad_requests() {
        for head in [
            GOOD.replace("GET", "POST"),
            GOOD.replace("Upgrade: websocket\r\n", ""),
            GOOD.replace("Version: 13", "Version: 8"),
            GOOD.replace("dGhlIHNhbXBsZSBub25jZQ==", "short"),
            "garbage\r\n\r\n".to_owned(),
        ] {
            let err = parse(head.as_bytes()).expect_err("refused");
            let response = String::from_utf8(err.response()).expect("ascii");
            assert!(
                response.starts_with("HTTP/1.1 400 Bad Request\r\n"),
                "{head}: {response}"
            );
        }
    }

    #[test]
    fn a_plain_get_is_told_apart_from_a_broken_upgrade() {
        let plain = "GET /app.js?v=2 HTTP/1.1\r\nHost: x\r\n\r\n";
        match parse(plain.as_bytes()) {
            Err(BadRequest::NotUpgrade { path, .. }) => assert_eq!(path, "/app.js"),
            other => panic!("{other:?}"),
        }
        let broken = GOOD.replace("Version: 13", "Version: 8");
        assert!(matches!(
            parse(broken.as_bytes()),
            Err(BadRequest::Invalid(_))
        ));
    }

    #[test]
    fn an_endless_head_is_refused() {
        let head = format!("GET / HTTP/1.1\r\nX: {}", "a".repeat(MAX_HEAD));
        assert!(matches!(parse(head.as_bytes()), Err(BadRequest::TooLarge)));
    }

    #[test]
    fn rejections_carry_status_and_reason() {
        let r = String::from_utf8(rejection_response(401, "who are you?")).expect("ascii");
        assert!(r.starts_with("HTTP/1.1 401 Unauthorized\r\n"), "{r}");
        assert!(r.ends_with("\r\n\r\nwho are you?"), "{r}");
        assert!(r.contains("Content-Length: 12\r\n"), "{r}");
        for odd in [0, 200, 302, 600, 999] {
            let r = String::from_utf8(rejection_response(odd, "")).expect("ascii");
            assert!(r.starts_with("HTTP/1.1 403 Forbidden\r\n"), "{odd}: {r}");
        }
        let r = String::from_utf8(rejection_response(499, "a\r\nb")).expect("ascii");
        assert!(
            r.starts_with("HTTP/1.1 499 Error\r\n") && r.ends_with("\r\n\r\nab"),
            "{r}"
        );
    }
}
