//! Outbound HTTP (`wasi:http/outgoing-handler`): every request is checked against the app's
//! `allowed_outbound_hosts` before a connection is opened, and bounded by its
//! `outbound_timeout_ms`. A denied request fails with `http-request-denied` and a log line.
//!
//! The guest waits for the response in a host call (a `wasi:io` poll), so the wait does not
//! count against `event_deadline_ms`, which counts epoch ticks of running guest code only;
//! the event's wall-time limit is raised by the timeout of each request sent (see
//! [`WallBudget`]), so a slow endpoint fails the request, never the instance.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use http_body_util::BodyExt;
use wasmtime_wasi_http::{Error, RequestOptions, WasiBody, WasiHttpHooks};

use super::super::log_budget::LogBudget;
use crate::bus::AppName;
use crate::config::OutboundPolicy;

/// What one app's plugin may call, and for how long.
#[derive(Clone, Debug, PartialEq)]
pub struct Outbound {
    /// The destinations allowed.
    pub policy: OutboundPolicy,
    /// The most one request may take: connecting, then each wait for data.
    pub timeout: Duration,
}

impl std::fmt::Display for Outbound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "allowed_outbound_hosts {}, outbound_timeout_ms {}",
            self.policy,
            self.timeout.as_millis()
        )
    }
}

impl Default for Outbound {
    fn default() -> Self {
        Self {
            policy: OutboundPolicy::default(),
            timeout: Duration::from_secs(10),
        }
    }
}

/// Extra wall time the running event has earned by waiting on the network, in ms: the
/// instance's wall-time limit (which catches a call stuck for good) grows by it.
#[derive(Clone, Debug, Default)]
pub struct WallBudget(Arc<AtomicU64>);

impl WallBudget {
    /// Extra time earned so far by the running call.
    pub fn extra(&self) -> Duration {
        Duration::from_millis(self.0.load(Ordering::Relaxed))
    }

    /// Starts a new call with no extra time.
    pub fn reset(&self) {
        self.0.store(0, Ordering::Relaxed);
    }

    /// Adds `time` to what the running call may take.
    pub fn grant(&self, time: Duration) {
        let ms = u64::try_from(time.as_millis()).unwrap_or(u64::MAX);
        self.0.fetch_add(ms, Ordering::Relaxed);
    }
}

/// The `wasi:http` hooks of one instance: the allow-list check and the timeouts.
pub struct OutboundHooks {
    app: AppName,
    outbound: Arc<Outbound>,
    wall: WallBudget,
    /// The instance's log budget: a plugin that calls a denied host in a loop must not
    /// drown the log in denials.
    log: LogBudget,
}

impl OutboundHooks {
    /// Hooks for an instance of `app`; sent requests raise `wall`, lines take from `log`.
    pub fn new(app: AppName, outbound: Arc<Outbound>, wall: WallBudget, log: LogBudget) -> Self {
        Self {
            app,
            outbound,
            wall,
            log,
        }
    }
}

/// The guest's timeouts, none of them above `limit`.
fn clamp(options: Option<RequestOptions>, limit: Duration) -> RequestOptions {
    let options = options.unwrap_or_default();
    let bound = |t: Option<Duration>| Some(t.map_or(limit, |t| t.min(limit)));
    RequestOptions {
        connect_timeout: bound(options.connect_timeout),
        first_byte_timeout: bound(options.first_byte_timeout),
        between_bytes_timeout: bound(options.between_bytes_timeout),
    }
}

type SendResult = wasmtime_wasi_http::Result<(
    http::Response<WasiBody>,
    Box<dyn Future<Output = Result<(), Error>> + Send>,
)>;

impl WasiHttpHooks for OutboundHooks {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        fut: Box<dyn Future<Output = Result<(), Error>> + Send>,
    ) -> Box<dyn Future<Output = SendResult> + Send> {
        drop(fut);
        let uri = request.uri();
        let scheme = uri.scheme_str().unwrap_or("https").to_owned();
        let host = uri.host().unwrap_or_default().to_owned();
        let port = uri
            .port_u16()
            .unwrap_or(if scheme == "http" { 80 } else { 443 });
        if !self.outbound.policy.allows(&scheme, &host, port) {
            if let Some(dropped) = self.log.admit() {
                tracing::warn!(
                    app = &*self.app,
                    dropped,
                    "outbound HTTP request to {scheme}://{host}:{port} denied: not in apps.{}.allowed_outbound_hosts",
                    self.app
                );
            }
            return Box::new(async { Err(Error::HttpRequestDenied) });
        }
        let limit = self.outbound.timeout;
        // Connecting, then the first byte, may each take the whole timeout; the body is
        // read later, in calls of its own, each bounded by `between_bytes_timeout`.
        self.wall.grant(limit * 2);
        let options = clamp(options, limit);
        let (app, log) = (self.app.clone(), self.log.clone());
        Box::new(async move {
            let sent = wasmtime_wasi_http::default_send_request(request, Some(options)).await;
            match sent {
                Ok((response, io)) => Ok((
                    response.map(BodyExt::boxed_unsync),
                    Box::new(io) as Box<dyn Future<Output = _> + Send>,
                )),
                Err(e) => {
                    if let Some(dropped) = log.admit() {
                        tracing::info!(
                            app = &*app,
                            dropped,
                            "outbound HTTP request to {scheme}://{host}:{port} failed: {e}"
                        );
                    }
                    Err(e)
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_guests_timeouts_never_exceed_the_apps() {
        let limit = Duration::from_millis(500);
        let none = clamp(None, limit);
        assert_eq!(none.connect_timeout, Some(limit));
        assert_eq!(none.first_byte_timeout, Some(limit));
        assert_eq!(none.between_bytes_timeout, Some(limit));
        let guest = RequestOptions {
            connect_timeout: Some(Duration::from_secs(60)),
            first_byte_timeout: Some(Duration::from_millis(100)),
            between_bytes_timeout: None,
        };
        let clamped = clamp(Some(guest), limit);
        assert_eq!(clamped.connect_timeout, Some(limit));
        assert_eq!(clamped.first_byte_timeout, Some(Duration::from_millis(100)));
        assert_eq!(clamped.between_bytes_timeout, Some(limit));
    }

    #[test]
    fn the_wall_budget_grows_with_each_grant_and_resets() {
        let wall = WallBudget::default();
        wall.grant(Duration::from_millis(300));
        wall.grant(Duration::from_millis(200));
        assert_eq!(wall.extra(), Duration::from_millis(500));
        wall.reset();
        assert_eq!(wall.extra(), Duration::ZERO);
    }
}
