//! What `switchboard status` shows: one model, rendered as aligned text or stable JSON.

use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::gateway::GatewayStats;
use crate::worker::AppStatus;

/// The state of a running server. Field names are the stable JSON of `status --json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Status {
    /// The switchboard release.
    pub version: String,
    /// Process id.
    pub pid: u32,
    /// Seconds since start.
    pub uptime_secs: u64,
    /// The gateway id, 8 hex digits.
    pub gateway_id: String,
    /// Resident memory of the process, bytes.
    pub rss_bytes: u64,
    /// Connected clients.
    pub clients: u64,
    /// Distinct bound uids.
    pub uids: u64,
    /// Groups with members.
    pub groups: u64,
    /// The admin listener's bound address (`/metrics`, `/health`), if it is on.
    pub admin_addr: Option<String>,
    /// Per listener.
    pub listeners: Vec<ListenerView>,
    /// Per app.
    pub apps: Vec<AppView>,
    /// This process as a cluster member; absent for the embedded single process.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<ClusterView>,
}

/// A cluster member's view of the cluster, in [`Status`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClusterView {
    /// gateway, worker or all.
    pub role: String,
    /// The subject prefix.
    pub prefix: String,
    /// The NATS connection: pending, connected or disconnected.
    pub nats: String,
    /// This process's worker id, if it runs plugins.
    pub worker_id: Option<String>,
    /// Live gateways as this process hears them.
    pub gateways: Vec<MemberView>,
    /// Live workers as this process hears them.
    pub workers: Vec<MemberView>,
    /// Events waiting for a live worker (gateways).
    pub events_waiting: u64,
    /// Events dropped: they waited too long for a live worker, could not be published, or
    /// (on a worker) found their app's queue full.
    pub events_dropped: u64,
    /// Events sent to workers that died before a heartbeat confirmed them: at most this
    /// many were lost with those workers.
    #[serde(default)]
    pub events_unconfirmed: u64,
    /// Times the NATS connection was lost.
    pub nats_disconnects: u64,
    /// Times a subscription could not keep up, so NATS messages were dropped.
    pub nats_slow_consumer: u64,
}

/// Another cluster member, in [`ClusterView`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MemberView {
    /// Its id, 8 hex digits.
    pub id: String,
    /// When it booted, ms since the Unix epoch.
    pub epoch: u64,
    /// For a worker seen by a gateway: this gateway's clients bound to it.
    pub clients: Option<u64>,
    /// For a worker: the version (12 hex digits) of each app it has loaded.
    #[serde(default)]
    pub versions: std::collections::BTreeMap<String, String>,
}

/// One listener in [`Status`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ListenerView {
    /// Bound address.
    pub addr: String,
    /// websocket, text or frame.
    pub protocol: String,
    /// The app serving it.
    pub app: String,
    /// Connected clients.
    pub clients: u64,
    /// Message bytes received.
    pub bytes_in: u64,
    /// Message bytes sent.
    pub bytes_out: u64,
    /// Messages received.
    pub messages_in: u64,
    /// Messages sent.
    pub messages_out: u64,
    /// Connections refused by `max_connections`.
    pub refused: u64,
    /// Clients closed because they could not keep up.
    pub send_queue_drops: u64,
}

/// One app in [`Status`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AppView {
    /// The app.
    pub name: String,
    /// The running version (content hash prefix).
    pub version: String,
    /// Its plugin file.
    pub path: String,
    /// When it was loaded, seconds since the Unix epoch.
    pub loaded_at: u64,
    /// Instances in the pool.
    pub instances: usize,
    /// Events handled.
    pub events: u64,
    /// Events lost to traps, deadlines or the memory cap.
    pub traps: u64,
    /// Events left to the SDK's default handler, not delivered (absent from older nodes).
    #[serde(default)]
    pub skipped: u64,
    /// Versions swapped in.
    pub swaps: u64,
    /// Automatic rollbacks.
    pub rollbacks: u64,
    /// Healthy instances replaced by the recycling policy.
    pub recycles: u64,
    /// The most memory one instance used, bytes.
    pub peak_memory_bytes: u64,
    /// The last refused file and why, if any.
    pub last_rejected: Option<RejectedView>,
}

/// A refused plugin file in [`AppView`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RejectedView {
    /// The file.
    pub path: String,
    /// Why.
    pub reason: String,
    /// When, seconds since the Unix epoch.
    pub at: u64,
}

impl ClusterView {
    /// The cluster section of `status`.
    fn render(&self) -> String {
        let mut out = format!(
            "\n\ncluster: role {}  prefix {}  NATS {} ({} disconnects, {} slow-consumer drops)  \
             events waiting {}  dropped {}  unconfirmed {}\n",
            self.role,
            self.prefix,
            self.nats,
            self.nats_disconnects,
            self.nats_slow_consumer,
            self.events_waiting,
            self.events_dropped,
            self.events_unconfirmed
        );
        let mut members = vec![row(["MEMBER", "ID", "BOOTED", "CLIENTS", "VERSIONS"])];
        let sides = [("gateway", &self.gateways), ("worker", &self.workers)];
        for (side, list) in sides {
            for m in list {
                let clients = m.clients.map_or_else(|| "-".to_owned(), |n| n.to_string());
                let booted = unix_secs(SystemTime::now()).saturating_sub(m.epoch / 1000);
                let versions: Vec<String> = m
                    .versions
                    .iter()
                    .map(|(app, version)| format!("{app} {version}"))
                    .collect();
                members.push(row([
                    side,
                    &m.id,
                    &format!("{} ago", duration(booted)),
                    &clients,
                    &versions.join(", "),
                ]));
            }
        }
        out.push_str(&table(&members));
        out
    }
}

fn unix_secs(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

impl Status {
    /// Gathers the model from the gateway and worker figures.
    pub fn gather(
        uptime_secs: u64,
        gateway: &GatewayStats,
        apps: &[AppStatus],
        admin_addr: Option<std::net::SocketAddr>,
    ) -> Self {
        Self {
            version: env!("CARGO_PKG_VERSION").to_owned(),
            pid: std::process::id(),
            uptime_secs,
            gateway_id: gateway.gateway.to_string(),
            rss_bytes: rss_bytes(),
            clients: gateway.clients,
            uids: gateway.uids,
            groups: gateway.groups,
            admin_addr: admin_addr.map(|a| a.to_string()),
            cluster: None,
            listeners: gateway
                .listeners
                .iter()
                .map(|l| ListenerView {
                    addr: l.addr.to_string(),
                    protocol: l.protocol.name().to_owned(),
                    app: l.app.clone(),
                    clients: l.clients,
                    bytes_in: l.bytes_in,
                    bytes_out: l.bytes_out,
                    messages_in: l.messages_in,
                    messages_out: l.messages_out,
                    refused: l.refused,
                    send_queue_drops: l.send_queue_drops,
                })
                .collect(),
            apps: apps
                .iter()
                .map(|a| AppView {
                    name: a.name.clone(),
                    version: a.version.clone(),
                    path: a.path.display().to_string(),
                    loaded_at: unix_secs(a.loaded_at),
                    instances: a.instances,
                    events: a.events,
                    traps: a.failures,
                    skipped: a.skipped,
                    swaps: a.swaps,
                    rollbacks: a.rollbacks,
                    recycles: a.recycles,
                    peak_memory_bytes: a.peak_memory_bytes,
                    last_rejected: a.last_rejected.as_ref().map(|r| RejectedView {
                        path: r.path.display().to_string(),
                        reason: r.reason.clone(),
                        at: unix_secs(r.at),
                    }),
                })
                .collect(),
        }
    }

    /// The human form: a summary, then aligned tables of listeners and apps.
    pub fn render(&self) -> String {
        let mut out = format!(
            "switchboard {}  pid {}  up {}  gateway {}  memory {}\n\
             clients {}  uids {}  groups {}\n\n",
            self.version,
            self.pid,
            duration(self.uptime_secs),
            self.gateway_id,
            bytes(self.rss_bytes),
            self.clients,
            self.uids,
            self.groups
        );
        let mut listeners = vec![row(["LISTENER", "PROTOCOL", "APP", "CLIENTS", "IN", "OUT"])];
        for l in &self.listeners {
            listeners.push(row([
                &l.addr,
                &l.protocol,
                &l.app,
                &l.clients.to_string(),
                &bytes(l.bytes_in),
                &bytes(l.bytes_out),
            ]));
        }
        out.push_str(&table(&listeners));
        out.push('\n');
        let mut apps = vec![row([
            "APP",
            "VERSION",
            "INSTANCES",
            "EVENTS",
            "TRAPS",
            "SWAPS",
            "ROLLBACKS",
            "MEMORY",
        ])];
        for a in &self.apps {
            apps.push(row([
                &a.name,
                &a.version,
                &a.instances.to_string(),
                &a.events.to_string(),
                &a.traps.to_string(),
                &a.swaps.to_string(),
                &a.rollbacks.to_string(),
                &bytes(a.peak_memory_bytes),
            ]));
        }
        out.push_str(&table(&apps));
        for a in &self.apps {
            if let Some(r) = &a.last_rejected {
                out.push_str(&format!(
                    "\n{}: last rejected {} ({} s ago): {}",
                    a.name,
                    r.path,
                    unix_secs(SystemTime::now()).saturating_sub(r.at),
                    r.reason
                ));
            }
        }
        if let Some(c) = &self.cluster {
            out.push_str(&c.render());
        }
        out
    }
}

fn row<const N: usize>(cells: [&str; N]) -> Vec<String> {
    cells.iter().map(|c| c.to_string()).collect()
}

/// Columns padded to their widest cell; the first column left-aligned, numbers right.
fn table(rows: &[Vec<String>]) -> String {
    let columns = rows.first().map_or(0, Vec::len);
    let widths: Vec<usize> = (0..columns)
        .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for r in rows {
        let cells: Vec<String> = r
            .iter()
            .zip(&widths)
            .enumerate()
            .map(|(i, (cell, &w))| {
                if i == 0 {
                    format!("{cell:<w$}")
                } else {
                    format!("{cell:>w$}")
                }
            })
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out
}

fn duration(secs: u64) -> String {
    match secs {
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m{}s", s / 60, s % 60),
        s if s < 86400 => format!("{}h{}m", s / 3600, s % 3600 / 60),
        s => format!("{}d{}h", s / 86400, s % 86400 / 3600),
    }
}

fn bytes(n: u64) -> String {
    match n {
        n if n < 1024 => format!("{n} B"),
        n if n < 1 << 20 => format!("{:.1} KiB", n as f64 / 1024.0),
        n if n < 1 << 30 => format!("{:.1} MiB", n as f64 / f64::from(1 << 20)),
        n => format!("{:.1} GiB", n as f64 / f64::from(1 << 30)),
    }
}

/// This process's resident memory, from `/proc/self/status` (0 where there is none).
pub fn rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .map_or(0, |kib| kib * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align_columns() {
        let t = table(&[
            row(["APP", "EVENTS"]),
            row(["chat", "7"]),
            row(["echo-long", "12345"]),
        ]);
        assert_eq!(
            t,
            "APP        EVENTS\nchat            7\necho-long   12345\n"
        );
    }

    #[test]
    fn sizes_and_durations_read_well() {
        assert_eq!(bytes(512), "512 B");
        assert_eq!(bytes(3 << 20), "3.0 MiB");
        assert_eq!(duration(59), "59s");
        assert_eq!(duration(3661), "1h1m");
        assert_eq!(duration(90061), "1d1h");
    }

    #[test]
    fn the_cluster_section_lists_members_with_their_clients() {
        let booted = unix_secs(SystemTime::now()) * 1000;
        let member = |id: &str, clients| MemberView {
            id: id.into(),
            epoch: booted,
            clients,
            versions: [("chat".to_owned(), "0123456789ab".to_owned())].into(),
        };
        let view = ClusterView {
            role: "gateway".into(),
            prefix: "switchboard".into(),
            nats: "connected".into(),
            worker_id: None,
            gateways: vec![member("0000000a", None)],
            workers: vec![member("0000000b", Some(3))],
            events_waiting: 1,
            events_dropped: 2,
            events_unconfirmed: 0,
            nats_disconnects: 0,
            nats_slow_consumer: 0,
        };
        let text = view.render();
        assert!(
            text.contains(
                "NATS connected (0 disconnects, 0 slow-consumer drops)  events waiting 1  dropped 2  unconfirmed 0"
            ),
            "{text}"
        );
        assert!(text.contains("gateway  0000000a"), "{text}");
        assert!(text.contains("worker   0000000b"), "{text}");
        assert!(
            text.lines()
                .last()
                .is_some_and(|l| l.ends_with("3  chat 0123456789ab")),
            "{text}"
        );
    }
}
