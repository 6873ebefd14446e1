//! The admin HTTP listener (axum): `/metrics` in the Prometheus text format (encoded by
//! prometheus-client) and `/health`.

use std::fmt;
use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::prometheus_text::{self, CONTENT_TYPE};
use prometheus_client::encoding::{DescriptorEncoder, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;

use super::status::ClusterView;
use crate::gateway::tls::WebListener;
use crate::gateway::{GatewayStats, ListenerStats};
use crate::worker::AppStatus;

/// Where the admin listener gets its figures.
#[async_trait::async_trait]
pub trait Source: Send + Sync + 'static {
    /// The gateway's and the apps' figures now.
    async fn figures(&self) -> (GatewayStats, Vec<AppStatus>);

    /// Whether every listener serves (the apps they name are loaded).
    fn ready(&self) -> bool;

    /// The cluster as this process sees it, if it is a cluster member.
    fn cluster(&self) -> Option<ClusterView> {
        None
    }
}

/// The admin routes.
pub fn router(source: Arc<dyn Source>) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/health", get(health))
        .fallback(|| async { (StatusCode::NOT_FOUND, "not found\n") })
        .with_state(source)
}

async fn metrics(State(source): State<Arc<dyn Source>>) -> Response {
    let (gateway, apps) = source.figures().await;
    match render(&gateway, &apps, source.cluster().as_ref()) {
        Ok(text) => ([(header::CONTENT_TYPE, CONTENT_TYPE)], text).into_response(),
        Err(fmt::Error) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

/// `ok` (200) once every listener serves, `starting` (503) before.
async fn health(State(source): State<Arc<dyn Source>>) -> Response {
    match source.ready() {
        true => (StatusCode::OK, "ok\n").into_response(),
        false => (StatusCode::SERVICE_UNAVAILABLE, "starting\n").into_response(),
    }
}

/// Serves the admin endpoints until the task is aborted.
pub async fn serve(listener: WebListener, source: Arc<dyn Source>) {
    if let Err(e) = axum::serve(listener, router(source)).await {
        tracing::error!(error = %e, "the admin listener stopped");
    }
}

/// The figures of one scrape, as a prometheus-client collector: they are snapshots taken
/// elsewhere, so each is encoded as a constant of this scrape.
#[derive(Debug)]
struct Snapshot {
    gateway: GatewayStats,
    apps: Vec<AppStatus>,
    cluster: Option<ClusterView>,
    resident_bytes: u64,
}

/// One value, as a counter or a gauge.
fn value(metric: MetricEncoder<'_>, ty: MetricType, v: u64) -> fmt::Result {
    let mut metric = metric;
    match ty {
        MetricType::Counter => metric.encode_counter::<NoLabelSet, _, u64>(&v, None),
        _ => metric.encode_gauge(&v),
    }
}

type PerListener = (
    &'static str,
    MetricType,
    &'static str,
    fn(&ListenerStats) -> u64,
);
type PerApp = (
    &'static str,
    MetricType,
    &'static str,
    fn(&AppStatus) -> u64,
);

impl Snapshot {
    fn encode_all(&self, encoder: &mut DescriptorEncoder<'_>) -> fmt::Result {
        use MetricType::{Counter, Gauge};
        // Counter names get their `_total` from the encoder.
        let per_listener: [PerListener; 10] = [
            ("switchboard_connections", Gauge, "Connected clients", |l| {
                l.clients
            }),
            (
                "switchboard_messages_in",
                Counter,
                "Messages received from clients",
                |l| l.messages_in,
            ),
            (
                "switchboard_messages_out",
                Counter,
                "Messages sent to clients",
                |l| l.messages_out,
            ),
            (
                "switchboard_bytes_in",
                Counter,
                "Message bytes received",
                |l| l.bytes_in,
            ),
            (
                "switchboard_bytes_out",
                Counter,
                "Message bytes sent",
                |l| l.bytes_out,
            ),
            (
                "switchboard_refused",
                Counter,
                "Connections refused by max_connections",
                |l| l.refused,
            ),
            (
                "switchboard_send_queue_drops",
                Counter,
                "Clients closed because their send queue was full",
                |l| l.send_queue_drops,
            ),
            (
                "switchboard_refused_per_ip",
                Counter,
                "Connections refused by max_connections_per_ip",
                |l| l.refused_per_ip,
            ),
            (
                "switchboard_handshake_timeouts",
                Counter,
                "Connections closed past handshake_timeout_ms",
                |l| l.handshake_timeouts,
            ),
            (
                "switchboard_throttled",
                Counter,
                "Messages over max_messages_per_second (dropped, or their client closed)",
                |l| l.throttled,
            ),
        ];
        for (name, ty, help, get) in per_listener {
            let mut family = encoder.encode_descriptor(name, help, None, ty)?;
            for l in &self.gateway.listeners {
                let labels = [
                    ("listener", l.addr.to_string()),
                    ("protocol", l.protocol.name().to_owned()),
                    ("app", l.app.clone()),
                ];
                value(family.encode_family(&labels)?, ty, get(l))?;
            }
        }
        let totals = [
            ("switchboard_uids", "Distinct bound uids", self.gateway.uids),
            (
                "switchboard_groups",
                "Groups with members",
                self.gateway.groups,
            ),
        ];
        for (name, help, v) in totals {
            value(
                encoder.encode_descriptor(name, help, None, Gauge)?,
                Gauge,
                v,
            )?;
        }
        let mut events = encoder.encode_descriptor(
            "switchboard_events",
            "Plugin events by outcome",
            None,
            Counter,
        )?;
        for a in &self.apps {
            for (outcome, v) in [
                ("ok", a.events),
                ("trap", a.failures),
                ("skipped", a.skipped),
            ] {
                let labels = [("app", a.name.as_str()), ("outcome", outcome)];
                value(events.encode_family(&labels)?, Counter, v)?;
            }
        }
        let per_app: [PerApp; 5] = [
            (
                "switchboard_traps",
                Counter,
                "Events lost to traps, deadlines or the memory cap",
                |a| a.failures,
            ),
            (
                "switchboard_swaps",
                Counter,
                "Plugin versions swapped in",
                |a| a.swaps,
            ),
            (
                "switchboard_rollbacks",
                Counter,
                "Automatic rollbacks",
                |a| a.rollbacks,
            ),
            (
                "switchboard_plugin_memory_bytes",
                Gauge,
                "Most linear memory one instance used",
                |a| a.peak_memory_bytes,
            ),
            ("switchboard_instances", Gauge, "Instances per app", |a| {
                a.instances as u64
            }),
        ];
        for (name, ty, help, get) in per_app {
            let mut family = encoder.encode_descriptor(name, help, None, ty)?;
            for a in &self.apps {
                value(
                    family.encode_family(&[("app", a.name.as_str())])?,
                    ty,
                    get(a),
                )?;
            }
        }
        let mut latency = encoder.encode_descriptor(
            "switchboard_event_duration_seconds",
            "Time events took in the plugin",
            None,
            MetricType::Histogram,
        )?;
        for a in &self.apps {
            // The snapshot's buckets are cumulative; the encoder sums them itself.
            let mut below = 0;
            let mut buckets: Vec<(f64, u64)> = a
                .latency
                .buckets
                .iter()
                .map(|&(bound, cumulative)| {
                    let n = cumulative.saturating_sub(below);
                    below = cumulative;
                    (bound, n)
                })
                .collect();
            buckets.push((f64::INFINITY, a.latency.count.saturating_sub(below)));
            latency
                .encode_family(&[("app", a.name.as_str())])?
                .encode_histogram::<NoLabelSet>(
                    a.latency.sum_seconds,
                    a.latency.count,
                    &buckets,
                    None,
                )?;
        }
        if let Some(cluster) = &self.cluster {
            encode_cluster(cluster, encoder)?;
        }
        value(
            encoder.encode_descriptor(
                "switchboard_resident_memory_bytes",
                "Resident memory of the process",
                None,
                Gauge,
            )?,
            Gauge,
            self.resident_bytes,
        )
    }
}

/// A cluster member's view: its peers, its NATS connection, and its events in doubt.
fn encode_cluster(cluster: &ClusterView, encoder: &mut DescriptorEncoder<'_>) -> fmt::Result {
    use MetricType::{Counter, Gauge};
    let mut members = encoder.encode_descriptor(
        "switchboard_cluster_members",
        "Live cluster members as this process hears them",
        None,
        Gauge,
    )?;
    for (side, list) in [("gateway", &cluster.gateways), ("worker", &cluster.workers)] {
        value(
            members.encode_family(&[("side", side)])?,
            Gauge,
            list.len() as u64,
        )?;
    }
    let mut bound = encoder.encode_descriptor(
        "switchboard_cluster_worker_clients",
        "This gateway's clients bound to each worker",
        None,
        Gauge,
    )?;
    for worker in &cluster.workers {
        if let Some(clients) = worker.clients {
            value(
                bound.encode_family(&[("worker", worker.id.as_str())])?,
                Gauge,
                clients,
            )?;
        }
    }
    let connected = u64::from(cluster.nats == "connected");
    let figures = [
        (
            "switchboard_nats_connected",
            Gauge,
            "1 while the NATS connection is up",
            connected,
        ),
        (
            "switchboard_nats_disconnects",
            Counter,
            "Times the NATS connection was lost",
            cluster.nats_disconnects,
        ),
        (
            "switchboard_nats_slow_consumers",
            Counter,
            "Times a subscription could not keep up and NATS messages were dropped",
            cluster.nats_slow_consumer,
        ),
        (
            "switchboard_cluster_events_waiting",
            Gauge,
            "Events waiting for a live worker (or for NATS)",
            cluster.events_waiting,
        ),
        (
            "switchboard_cluster_events_dropped",
            Counter,
            "Events dropped: waited too long, could not be published, or found a full app queue",
            cluster.events_dropped,
        ),
        (
            "switchboard_cluster_events_unconfirmed",
            Counter,
            "Events sent to workers that died before a heartbeat confirmed them",
            cluster.events_unconfirmed,
        ),
    ];
    for (name, ty, help, v) in figures {
        value(encoder.encode_descriptor(name, help, None, ty)?, ty, v)?;
    }
    Ok(())
}

impl Collector for Snapshot {
    fn encode(&self, mut encoder: DescriptorEncoder) -> fmt::Result {
        self.encode_all(&mut encoder)
    }
}

/// The Prometheus text exposition of the figures.
pub fn render(
    gateway: &GatewayStats,
    apps: &[AppStatus],
    cluster: Option<&ClusterView>,
) -> Result<String, fmt::Error> {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(Snapshot {
        gateway: gateway.clone(),
        apps: apps.to_vec(),
        cluster: cluster.cloned(),
        resident_bytes: super::status::rss_bytes(),
    }));
    let mut text = String::new();
    prometheus_text::encode(&mut text, &registry)?;
    Ok(text)
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
                refused_per_ip: 0,
                handshake_timeouts: 0,
                throttled: 0,
            }],
            clients: 3,
            uids: 1,
            groups: 2,
        };
        let cluster = ClusterView {
            role: "gateway".into(),
            prefix: "switchboard".into(),
            nats: "connected".into(),
            worker_id: None,
            gateways: Vec::new(),
            workers: vec![super::super::status::MemberView {
                id: "0000000b".into(),
                epoch: 1,
                clients: Some(4),
                versions: Default::default(),
            }],
            events_waiting: 0,
            events_dropped: 7,
            events_unconfirmed: 2,
            nats_disconnects: 1,
            nats_slow_consumer: 0,
        };
        let text = render(&gateway, &[], Some(&cluster)).expect("encodes");
        assert!(text.contains(
            "switchboard_connections{listener=\"127.0.0.1:1\",protocol=\"websocket\",app=\"chat\"} 3"
        ));
        // The names and types the README and dashboards rely on, as before prometheus-client.
        for line in [
            "# TYPE switchboard_messages_in_total counter",
            "switchboard_messages_in_total{listener=\"127.0.0.1:1\",protocol=\"websocket\",app=\"chat\"} 1",
            "# TYPE switchboard_send_queue_drops_total counter",
            "# TYPE switchboard_uids gauge",
            "switchboard_uids 1",
            "switchboard_groups 2",
            "# TYPE switchboard_event_duration_seconds histogram",
            "# TYPE switchboard_resident_memory_bytes gauge",
            "switchboard_cluster_members{side=\"worker\"} 1",
            "switchboard_cluster_worker_clients{worker=\"0000000b\"} 4",
            "switchboard_nats_connected 1",
            "switchboard_nats_disconnects_total 1",
            "switchboard_cluster_events_dropped_total 7",
            "switchboard_cluster_events_unconfirmed_total 2",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} in\n{text}");
        }
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
