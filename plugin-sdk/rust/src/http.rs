//! Outbound HTTP requests, through `wasi:http/outgoing-handler`.
//!
//! The host sends a request only if the destination's scheme, host and port are in the app's
//! `allowed_outbound_hosts`; any other fails with [`HttpError::Denied`]. Each request is
//! bounded by the app's `outbound_timeout_ms` (and by [`Request::timeout`] if shorter); a
//! request that takes too long fails with [`HttpError::Timeout`], and the plugin carries on.
//! Time spent waiting for the network does not count against the event's CPU deadline.
//!
//! ```ignore
//! use switchboard_sdk::http;
//!
//! let response = http::get("http://127.0.0.1:8000/check?token=abc")?;
//! if response.status() == 200 {
//!     let uid = response.text();
//! }
//! let created = http::Request::post("https://api.example.com/items")
//!     .header("content-type", "application/json")
//!     .body(r#"{"name":"x"}"#)
//!     .send()?;
//! ```

use std::fmt;
use std::time::Duration;

use wasip2::http::outgoing_handler;
use wasip2::http::types::{
    ErrorCode, Fields, IncomingBody, Method, OutgoingBody, OutgoingRequest, RequestOptions, Scheme,
};
use wasip2::io::streams::StreamError;

/// Bytes written to the request body per call (the stream's limit for one blocking write).
const WRITE_CHUNK: usize = 4096;

/// Bytes read from the response body per call.
const READ_CHUNK: u64 = 64 * 1024;

/// Why a request failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HttpError {
    /// The URL is not `http://` or `https://` followed by a host.
    InvalidUrl(String),
    /// A header name or value is not valid HTTP, or is one the host sets itself.
    InvalidHeader(String),
    /// The destination is not in the app's `allowed_outbound_hosts`.
    Denied(String),
    /// The request took longer than the app's `outbound_timeout_ms` (or [`Request::timeout`]).
    Timeout(String),
    /// Anything else: refused connection, DNS failure, TLS or protocol error.
    Failed(String),
}

impl HttpError {
    fn from_code(code: ErrorCode) -> HttpError {
        match code {
            ErrorCode::HttpRequestDenied => HttpError::Denied(
                "the destination is not in this app's allowed_outbound_hosts".into(),
            ),
            ErrorCode::ConnectionTimeout
            | ErrorCode::ConnectionReadTimeout
            | ErrorCode::ConnectionWriteTimeout
            | ErrorCode::DnsTimeout => HttpError::Timeout(format!("{code:?}")),
            other => HttpError::Failed(format!("{other:?}")),
        }
    }

    /// Whether the host refused the destination.
    pub fn is_denied(&self) -> bool {
        matches!(self, HttpError::Denied(_))
    }

    /// Whether the request timed out.
    pub fn is_timeout(&self) -> bool {
        matches!(self, HttpError::Timeout(_))
    }
}

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HttpError::InvalidUrl(d) => write!(f, "invalid URL: {d}"),
            HttpError::InvalidHeader(d) => write!(f, "invalid header: {d}"),
            HttpError::Denied(d) => write!(f, "denied: {d}"),
            HttpError::Timeout(d) => write!(f, "timeout: {d}"),
            HttpError::Failed(d) => write!(f, "request failed: {d}"),
        }
    }
}

impl std::error::Error for HttpError {}

/// A response: its status, headers and whole body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    status: u16,
    headers: Vec<(String, Vec<u8>)>,
    body: Vec<u8>,
}

impl Response {
    /// The status code.
    pub fn status(&self) -> u16 {
        self.status
    }

    /// Whether the status is 2xx.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The first value of header `name` (any case), if it is valid UTF-8.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .and_then(|(_, v)| std::str::from_utf8(v).ok())
    }

    /// Every header, names in lowercase, in the order received.
    pub fn headers(&self) -> &[(String, Vec<u8>)] {
        &self.headers
    }

    /// The body.
    pub fn body(&self) -> &[u8] {
        &self.body
    }

    /// The body as text (invalid UTF-8 replaced).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body, owned.
    pub fn into_body(self) -> Vec<u8> {
        self.body
    }
}

/// A request being built; [`Request::send`] sends it and waits for the whole response.
#[derive(Debug, Clone)]
pub struct Request {
    method: Method,
    url: String,
    headers: Vec<(String, Vec<u8>)>,
    body: Vec<u8>,
    timeout: Option<Duration>,
}

impl Request {
    /// A request with any method, such as `"PATCH"`.
    pub fn new(method: &str, url: impl Into<String>) -> Request {
        let method = match method.to_ascii_uppercase().as_str() {
            "GET" => Method::Get,
            "HEAD" => Method::Head,
            "POST" => Method::Post,
            "PUT" => Method::Put,
            "DELETE" => Method::Delete,
            "OPTIONS" => Method::Options,
            "PATCH" => Method::Patch,
            other => Method::Other(other.to_owned()),
        };
        Request {
            method,
            url: url.into(),
            headers: Vec::new(),
            body: Vec::new(),
            timeout: None,
        }
    }

    /// A `GET` request.
    pub fn get(url: impl Into<String>) -> Request {
        Request::new("GET", url)
    }

    /// A `POST` request.
    pub fn post(url: impl Into<String>) -> Request {
        Request::new("POST", url)
    }

    /// A `PUT` request.
    pub fn put(url: impl Into<String>) -> Request {
        Request::new("PUT", url)
    }

    /// A `DELETE` request.
    pub fn delete(url: impl Into<String>) -> Request {
        Request::new("DELETE", url)
    }

    /// Adds a header.
    pub fn header(mut self, name: &str, value: impl AsRef<[u8]>) -> Request {
        self.headers
            .push((name.to_ascii_lowercase(), value.as_ref().to_vec()));
        self
    }

    /// Sets the body.
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Request {
        self.body = body.into();
        self
    }

    /// Gives up sooner than the app's `outbound_timeout_ms` (never later).
    pub fn timeout(mut self, timeout: Duration) -> Request {
        self.timeout = Some(timeout);
        self
    }

    /// Sends the request and reads the whole response.
    pub fn send(self) -> Result<Response, HttpError> {
        let (scheme, authority, path) = split_url(&self.url)?;
        let headers = Fields::from_list(&self.headers)
            .map_err(|e| HttpError::InvalidHeader(format!("{e:?}")))?;
        let request = OutgoingRequest::new(headers);
        let invalid = |what: &str| HttpError::InvalidUrl(format!("{what} refused: {}", self.url));
        request
            .set_method(&self.method)
            .map_err(|()| invalid("method"))?;
        request
            .set_scheme(Some(&scheme))
            .map_err(|()| invalid("scheme"))?;
        request
            .set_authority(Some(authority))
            .map_err(|()| invalid("host"))?;
        request
            .set_path_with_query(Some(path))
            .map_err(|()| invalid("path"))?;
        let options = self.timeout.map(|t| {
            let ns = u64::try_from(t.as_nanos()).unwrap_or(u64::MAX);
            let options = RequestOptions::new();
            // Refusals only mean the host does not support a setting; its own bound holds.
            let _ = options.set_connect_timeout(Some(ns));
            let _ = options.set_first_byte_timeout(Some(ns));
            let _ = options.set_between_bytes_timeout(Some(ns));
            options
        });
        let body = request
            .body()
            .map_err(|()| HttpError::Failed("the request body was taken".into()))?;
        // The request goes first and the body after: the host buffers little of a body.
        let pending = outgoing_handler::handle(request, options).map_err(HttpError::from_code)?;
        write_body(body, &self.body)?;
        pending.subscribe().block();
        let response = match pending.get() {
            Some(Ok(Ok(response))) => response,
            Some(Ok(Err(code))) => return Err(HttpError::from_code(code)),
            Some(Err(())) | None => {
                return Err(HttpError::Failed("the response was not ready".into()));
            }
        };
        let status = response.status();
        let headers = response.headers().entries();
        let incoming = response
            .consume()
            .map_err(|()| HttpError::Failed("the response body was taken".into()))?;
        let body = read_body(&incoming)?;
        drop(IncomingBody::finish(incoming));
        Ok(Response {
            status,
            headers,
            body,
        })
    }
}

fn write_body(body: OutgoingBody, bytes: &[u8]) -> Result<(), HttpError> {
    {
        let stream = body
            .write()
            .map_err(|()| HttpError::Failed("the request body stream was taken".into()))?;
        for chunk in bytes.chunks(WRITE_CHUNK) {
            stream
                .blocking_write_and_flush(chunk)
                .map_err(stream_error)?;
        }
    }
    OutgoingBody::finish(body, None).map_err(HttpError::from_code)
}

fn read_body(incoming: &IncomingBody) -> Result<Vec<u8>, HttpError> {
    let stream = incoming
        .stream()
        .map_err(|()| HttpError::Failed("the response body stream was taken".into()))?;
    let mut body = Vec::new();
    loop {
        match stream.blocking_read(READ_CHUNK) {
            Ok(chunk) => body.extend_from_slice(&chunk),
            Err(StreamError::Closed) => return Ok(body),
            Err(e) => return Err(stream_error(e)),
        }
    }
}

fn stream_error(e: StreamError) -> HttpError {
    match e {
        StreamError::Closed => HttpError::Failed("the connection closed early".into()),
        StreamError::LastOperationFailed(e) => match wasip2::http::types::http_error_code(&e) {
            Some(code) => HttpError::from_code(code),
            None => HttpError::Failed(e.to_debug_string()),
        },
    }
}

/// `scheme://authority/path?query` → its parts; the path defaults to `/`.
fn split_url(url: &str) -> Result<(Scheme, &str, &str), HttpError> {
    let invalid = || HttpError::InvalidUrl(format!("{url:?} is not http(s)://host[:port][/path]"));
    let (scheme, rest) = url.split_once("://").ok_or_else(invalid)?;
    let scheme = match scheme.to_ascii_lowercase().as_str() {
        "http" => Scheme::Http,
        "https" => Scheme::Https,
        _ => return Err(invalid()),
    };
    let split = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(split);
    if authority.is_empty() {
        return Err(invalid());
    }
    let path = if path.is_empty() { "/" } else { path };
    Ok((scheme, authority, path))
}

/// `GET url`.
pub fn get(url: &str) -> Result<Response, HttpError> {
    Request::get(url).send()
}

/// `POST url` with `body`.
pub fn post(url: &str, body: impl Into<Vec<u8>>) -> Result<Response, HttpError> {
    Request::post(url).body(body).send()
}
