//! What travels on NATS, and on which subjects. Payloads are encoded with [`codec`], so a
//! peer of another wire version is refused, never misread.
//!
//! Subjects carry only ids (hex) and the configured prefix: uids, group names and messages
//! are always in the payload.
//!
//! [`codec`]: crate::bus::codec

use serde::{Deserialize, Serialize};

use crate::bus::{AppName, Command, Event, GatewayId, Handshake, Query, Reply};

/// Worker → gateway, on `<prefix>.gw.<G>.cmd` or `.q`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum ToGateway {
    /// A command of `app`, applied in the order its publisher sent it.
    Command {
        /// The app whose clients it concerns.
        app: AppName,
        /// What to do.
        command: Command,
    },
    /// A query of `app`; the answer is a [`Answer`] on the message's reply subject.
    Query {
        /// The app whose clients it concerns.
        app: AppName,
        /// The question.
        query: Query,
    },
}

/// A gateway's verdict on a command sent with a reply subject (`update-session`, whose
/// merged session may exceed the limit): `None` if applied, else the size it would have had.
pub type Verdict = Option<u64>;

/// A gateway's answer to one [`ToGateway::Query`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Answer {
    /// Who answers: a gather counts each gateway once.
    pub gateway: GatewayId,
    /// The gateway's own answer.
    pub reply: Reply,
}

/// Gateway → worker, on `<prefix>.ev.<W>`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum ToWorker {
    /// A client's event.
    Event(Event),
    /// A WebSocket handshake; the verdict, `Result<(), Rejection>`, goes to the reply subject.
    Handshake(Handshake),
}

/// Which side of the bus a process is on, for heartbeats.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Side {
    /// Holds clients.
    Gateway,
    /// Runs plugins.
    Worker,
}

/// A liveness beat, every second on `<prefix>.hb.gw.<G>` or `<prefix>.hb.wk.<W>`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Heartbeat {
    /// Gateway or worker.
    pub side: Side,
    /// The process's id on that side.
    pub node: u32,
    /// When it booted (ms since the Unix epoch): a restarted node is a new one.
    pub epoch: u64,
    /// The apps a worker serves now; empty for a gateway.
    pub apps: Vec<AppName>,
    /// Every app a worker has loaded, with the version it runs (12 hex digits).
    pub versions: Vec<(AppName, String)>,
    /// Sent once on a graceful stop: forget this node now, do not wait for expiry.
    pub goodbye: bool,
}

/// The subjects of one cluster (one prefix).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Subjects {
    prefix: String,
}

impl Subjects {
    /// The subjects under `prefix`, a validated subject token.
    pub fn new(prefix: &str) -> Self {
        Self {
            prefix: prefix.to_owned(),
        }
    }

    /// Where commands for gateway `g` go.
    pub fn gateway_command(&self, g: GatewayId) -> String {
        format!("{}.gw.{g}.cmd", self.prefix)
    }

    /// Where queries for gateway `g` go.
    pub fn gateway_query(&self, g: GatewayId) -> String {
        format!("{}.gw.{g}.q", self.prefix)
    }

    /// Everything for gateway `g`: one subscription, so one order.
    pub fn gateway_all(&self, g: GatewayId) -> String {
        format!("{}.gw.{g}.>", self.prefix)
    }

    /// Events and handshakes for worker `w`.
    pub fn worker_events(&self, w: u32) -> String {
        format!("{}.ev.{w:08x}", self.prefix)
    }

    /// The heartbeats of node `node` on `side`.
    pub fn heartbeat(&self, side: Side, node: u32) -> String {
        let side = match side {
            Side::Gateway => "gw",
            Side::Worker => "wk",
        };
        format!("{}.hb.{side}.{node:08x}", self.prefix)
    }

    /// Where workers report what they did with a release.
    pub fn deploy_reports(&self) -> String {
        format!("{}.deploy.report", self.prefix)
    }

    /// Every heartbeat of the cluster.
    pub fn heartbeats(&self) -> String {
        format!("{}.hb.>", self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bus::codec::{decode, encode};

    #[test]
    fn subjects_hold_ids_only() {
        let s = Subjects::new("sb");
        let g = GatewayId::new(0xab).expect("non-zero");
        assert_eq!(s.gateway_command(g), "sb.gw.000000ab.cmd");
        assert_eq!(s.gateway_query(g), "sb.gw.000000ab.q");
        assert_eq!(s.gateway_all(g), "sb.gw.000000ab.>");
        assert_eq!(s.worker_events(0x1f), "sb.ev.0000001f");
        assert_eq!(s.heartbeat(Side::Worker, 1), "sb.hb.wk.00000001");
        assert_eq!(s.heartbeat(Side::Gateway, 2), "sb.hb.gw.00000002");
        assert_eq!(s.heartbeats(), "sb.hb.>");
        assert_eq!(s.deploy_reports(), "sb.deploy.report");
    }

    #[test]
    fn envelopes_round_trip() {
        let hb = Heartbeat {
            side: Side::Worker,
            node: 7,
            epoch: 99,
            apps: vec!["chat".into()],
            versions: vec![("chat".into(), "0123456789ab".into())],
            goodbye: false,
        };
        assert_eq!(decode::<Heartbeat>(&encode(&hb)).expect("decodes"), hb);
        let q = ToGateway::Query {
            app: "chat".into(),
            query: Query::GroupList { unique: true },
        };
        assert_eq!(decode::<ToGateway>(&encode(&q)).expect("decodes"), q);
    }
}
