//! The admin HTTP listener: `/metrics` in Prometheus text format and `/health`.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::gateway::GatewayStats;
use crate::worker::AppStatus;

/// Longest request head read.
const MAX_HEAD: usize = 8 * 1024;

/// How long a client may take to send its request head.
const HEAD_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// Where the admin listener gets its figures.
#[async_trait::async_trait]
pub trait Source: Send + Sync + 'static {
    /// The gateway's and the apps' figures now.
    async fn figures(&self) -> (GatewayStats, Vec<AppStatus>);

    /// Whether every listener serves (the apps they name are loaded).
    fn ready(&self) -> bool;
}

/// Serves the admin endpoints on a bound listener.
pub async fn serve(listener: TcpListener, source: Arc<dyn Source>) {
    loop {
        let mut stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                // Usually out of file descriptors: retrying at once would spin.
                tracing::warn!(error = %e, "admin listener: accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                continue;
            }
        };
        let source = source.clone();
        tokio::spawn(async move {
            let mut head = vec![0u8; MAX_HEAD];
            let mut len = 0;
            let read_head = async {
                while !head[..len].windows(4).any(|w| w == b"\r\n\r\n") && len < MAX_HEAD {
                    match stream.read(&mut head[len..]).await {
                        Ok(0) | Err(_) => return false,
                        Ok(n) => len += n,
                    }
                }
                true
            };
            // A client that sends nothing does not keep a task forever.
            if !matches!(
                tokio::time::timeout(HEAD_TIMEOUT, read_head).await,
                Ok(true)
            ) {
                return;
            }
            let head = String::from_utf8_lossy(&head[..len]);
            let path = head.split_whitespace().nth(1).unwrap_or("");
            let (status, kind, body) = match path {
                "/metrics" => {
                    let (gateway, apps) = source.figures().await;
                    (
                        "200 OK",
                        "text/plain; version=0.0.4",
                        render(&gateway, &apps),
                    )
                }
                "/health" if source.ready() => ("200 OK", "text/plain", "ok\n".to_owned()),
                "/health" => (
                    "503 Service Unavailable",
                    "text/plain",
                    "starting\n".to_owned(),
                ),
                _ => ("404 Not Found", "text/plain", "not found\n".to_owned()),
            };
            let response = format!(
                "HTTP/1.1 {status}\r\ncontent-type: {kind}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = stream.write_all(response.as_bytes()).await;
        });
    }
}

/// Binds the admin address.
pub async fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr).await
}

/// The Prometheus text exposition of the figures.
pub fn render(gateway: &GatewayStats, apps: &[AppStatus]) -> String {
    let mut out = String::new();
    let mut family = |name: &str, kind: &str, help: &str, samples: Vec<(String, String)>| {
        let _ = writeln!(out, "# HELP switchboard_{name} {help}");
        let _ = writeln!(out, "# TYPE switchboard_{name} {kind}");
        for (labels, value) in samples {
            let _ = writeln!(out, "switchboard_{name}{labels} {value}");
        }
    };
    let per_listener = |f: &dyn Fn(&crate::gateway::ListenerStats) -> u64| {
        gateway
            .listeners
            .iter()
            .map(|l| {
                let labels = format!(
                    "{{listener=\"{}\",protocol=\"{}\",app=\"{}\"}}",
                    l.addr,
                    l.protocol.name(),
                    escape(&l.app)
                );
                (labels, f(l).to_string())
            })
            .collect::<Vec<_>>()
    };
    family(
        "connections",
        "gauge",
        "Connected clients.",
        per_listener(&|l| l.clients),
    );
    family(
        "messages_in_total",
        "counter",
        "Messages received from clients.",
        per_listener(&|l| l.messages_in),
    );
    family(
        "messages_out_total",
        "counter",
        "Messages sent to clients.",
        per_listener(&|l| l.messages_out),
    );
    family(
        "bytes_in_total",
        "counter",
        "Message bytes received.",
        per_listener(&|l| l.bytes_in),
    );
    family(
        "bytes_out_total",
        "counter",
        "Message bytes sent.",
        per_listener(&|l| l.bytes_out),
    );
    family(
        "refused_total",
        "counter",
        "Connections refused by max_connections.",
        per_listener(&|l| l.refused),
    );
    family(
        "send_queue_drops_total",
        "counter",
        "Clients closed because their send queue was full.",
        per_listener(&|l| l.send_queue_drops),
    );
    family(
        "uids",
        "gauge",
        "Distinct bound uids.",
        vec![(String::new(), gateway.uids.to_string())],
    );
    family(
        "groups",
        "gauge",
        "Groups with members.",
        vec![(String::new(), gateway.groups.to_string())],
    );
    let per_app = |f: &dyn Fn(&AppStatus) -> String| {
        apps.iter()
            .map(|a| (format!("{{app=\"{}\"}}", escape(&a.name)), f(a)))
            .collect::<Vec<_>>()
    };
    let events = apps
        .iter()
        .flat_map(|a| {
            let app = escape(&a.name);
            [
                (
                    format!("{{app=\"{app}\",outcome=\"ok\"}}"),
                    a.events.to_string(),
                ),
                (
                    format!("{{app=\"{app}\",outcome=\"trap\"}}"),
                    a.failures.to_string(),
                ),
            ]
        })
        .collect();
    family(
        "events_total",
        "counter",
        "Plugin events by outcome.",
        events,
    );
    family(
        "traps_total",
        "counter",
        "Events lost to traps, deadlines or the memory cap.",
        per_app(&|a| a.failures.to_string()),
    );
    family(
        "swaps_total",
        "counter",
        "Plugin versions swapped in.",
        per_app(&|a| a.swaps.to_string()),
    );
    family(
        "rollbacks_total",
        "counter",
        "Automatic rollbacks.",
        per_app(&|a| a.rollbacks.to_string()),
    );
    family(
        "plugin_memory_bytes",
        "gauge",
        "Most linear memory one instance used.",
        per_app(&|a| a.peak_memory_bytes.to_string()),
    );
    family(
        "instances",
        "gauge",
        "Instances per app.",
        per_app(&|a| a.instances.to_string()),
    );
    let mut latency = Vec::new();
    for a in apps {
        let app = escape(&a.name);
        for (le, count) in &a.latency.buckets {
            latency.push((
                format!("_bucket{{app=\"{app}\",le=\"{le}\"}}"),
                count.to_string(),
            ));
        }
        latency.push((
            format!("_bucket{{app=\"{app}\",le=\"+Inf\"}}"),
            a.latency.count.to_string(),
        ));
        latency.push((
            format!("_sum{{app=\"{app}\"}}"),
            a.latency.sum_seconds.to_string(),
        ));
        latency.push((
            format!("_count{{app=\"{app}\"}}"),
            a.latency.count.to_string(),
        ));
    }
    family(
        "event_duration_seconds",
        "histogram",
        "Time events took in the plugin.",
        latency,
    );
    family(
        "resident_memory_bytes",
        "gauge",
        "Resident memory of the process.",
        vec![(String::new(), super::status::rss_bytes().to_string())],
    );
    out
}

/// A label value with Prometheus's escapes.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bus::{GatewayId, Protocol};
    use crate::gateway::ListenerStats;

    #[test]
    fn every_sample_line_has_a_declared_family() {
        let gateway = GatewayStats {
            gateway: GatewayId::new(1).expect("non-zero"),
            listeners: vec![ListenerStats {
                addr: "127.0.0.1:1".parse().expect("addr"),
                protocol: Protocol::WebSocket,
                app: "chat".into(),
                clients: 3,
                connections: 3,
                bytes_in: 10,
                bytes_out: 20,
                messages_in: 1,
                messages_out: 2,
                refused: 0,
                send_queue_drops: 0,
            }],
            clients: 3,
            uids: 1,
            groups: 2,
        };
        let text = render(&gateway, &[]);
        assert!(text.contains(
            "switchboard_connections{listener=\"127.0.0.1:1\",protocol=\"websocket\",app=\"chat\"} 3"
        ));
        let declared: Vec<&str> = text
            .lines()
            .filter_map(|l| l.strip_prefix("# TYPE "))
            .filter_map(|l| l.split_whitespace().next())
            .collect();
        for sample in text.lines().filter(|l| !l.starts_with('#')) {
            let name = sample.split(['{', ' ']).next().unwrap_or("");
            assert!(
                declared.iter().any(|d| name.starts_with(d)),
                "undeclared sample {sample}"
            );
        }
    }
}
