//! Who is alive: the gateways or workers heard from, as plain data fed with heartbeats and
//! the time, so expiry is tested without a clock or a network.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use super::wire::Heartbeat;
use crate::bus::AppName;

/// How often every node beats.
pub const PERIOD: Duration = Duration::from_secs(1);

/// Beats a node may miss before it counts as gone.
pub const MISSED: u32 = 3;

/// What a heartbeat changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Heard {
    /// A node not known before (or one that was forgotten).
    New,
    /// A known node with a newer boot epoch: it restarted.
    Restarted,
    /// A known node, still alive, serving other apps than before.
    AppsChanged,
    /// A known node, still alive.
    Alive,
    /// A goodbye: the node was forgotten.
    Gone,
    /// A beat of an older boot, or a goodbye of a node not known: ignored.
    Stale,
}

#[derive(Clone, Debug)]
struct Peer {
    epoch: u64,
    apps: Vec<AppName>,
    versions: Vec<(AppName, String)>,
    last: Instant,
    /// Messages sent to it since its last heartbeat: if it is gone, they may be lost.
    unconfirmed: u64,
}

/// The live nodes of one side of the bus.
#[derive(Clone, Debug, Default)]
pub struct Peers {
    peers: BTreeMap<u32, Peer>,
}

impl Peers {
    /// Takes a heartbeat heard at `now` into account.
    pub fn heard(&mut self, beat: &Heartbeat, now: Instant) -> Heard {
        let known = self.peers.get(&beat.node).map(|p| p.epoch);
        let same_apps = self
            .peers
            .get(&beat.node)
            .is_some_and(|p| p.apps == beat.apps);
        if known.is_some_and(|epoch| beat.epoch < epoch) {
            return Heard::Stale;
        }
        if beat.goodbye {
            return match known {
                Some(_) => {
                    self.peers.remove(&beat.node);
                    Heard::Gone
                }
                None => Heard::Stale,
            };
        }
        let peer = Peer {
            epoch: beat.epoch,
            apps: beat.apps.clone(),
            versions: beat.versions.clone(),
            last: now,
            unconfirmed: 0,
        };
        self.peers.insert(beat.node, peer);
        match known {
            None => Heard::New,
            Some(epoch) if epoch < beat.epoch => Heard::Restarted,
            Some(_) if !same_apps => Heard::AppsChanged,
            Some(_) => Heard::Alive,
        }
    }

    /// Counts a message sent to `node`, unconfirmed until its next heartbeat.
    pub fn sent(&mut self, node: u32) {
        if let Some(peer) = self.peers.get_mut(&node) {
            peer.unconfirmed += 1;
        }
    }

    /// Forgets the nodes silent for more than [`MISSED`] periods; returns each with the
    /// messages sent to it since its last heartbeat (at most this many were lost).
    pub fn expire(&mut self, now: Instant) -> Vec<(u32, u64)> {
        let limit = PERIOD * MISSED;
        let gone: Vec<(u32, u64)> = self
            .peers
            .iter()
            .filter(|(_, p)| now.saturating_duration_since(p.last) > limit)
            .map(|(&id, p)| (id, p.unconfirmed))
            .collect();
        for (id, _) in &gone {
            self.peers.remove(id);
        }
        gone
    }

    /// Whether `node` is alive.
    pub fn is_live(&self, node: u32) -> bool {
        self.peers.contains_key(&node)
    }

    /// Every live node, in id order.
    pub fn live(&self) -> Vec<u32> {
        self.peers.keys().copied().collect()
    }

    /// The live nodes that serve `app`, in id order.
    pub fn serving(&self, app: &str) -> Vec<u32> {
        self.peers
            .iter()
            .filter(|(_, p)| p.apps.iter().any(|a| &**a == app))
            .map(|(&id, _)| id)
            .collect()
    }

    /// Each live node with the versions of the apps it has loaded.
    pub fn versions(&self) -> Vec<(u32, Vec<(AppName, String)>)> {
        self.peers
            .iter()
            .map(|(&id, p)| (id, p.versions.clone()))
            .collect()
    }

    /// Each live node with its boot epoch.
    pub fn epochs(&self) -> Vec<(u32, u64)> {
        self.peers.iter().map(|(&id, p)| (id, p.epoch)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bus::nats::wire::Side;

    fn beat(node: u32, epoch: u64, apps: &[&str]) -> Heartbeat {
        Heartbeat {
            side: Side::Worker,
            node,
            epoch,
            apps: apps.iter().map(|&a| a.into()).collect(),
            versions: Vec::new(),
            goodbye: false,
        }
    }

    #[test]
    fn a_node_expires_after_three_missed_heartbeats() {
        let t0 = Instant::now();
        let mut peers = Peers::default();
        assert_eq!(peers.heard(&beat(1, 10, &["chat"]), t0), Heard::New);
        assert_eq!(peers.heard(&beat(2, 10, &[]), t0), Heard::New);
        assert!(
            peers.expire(t0 + PERIOD * 3).is_empty(),
            "3 s is not yet 3 missed"
        );
        assert_eq!(
            peers.heard(&beat(2, 10, &[]), t0 + PERIOD * 2),
            Heard::Alive
        );
        assert_eq!(
            peers.expire(t0 + PERIOD * 3 + Duration::from_millis(1)),
            [(1, 0)]
        );
        assert_eq!(peers.live(), [2]);
        // Heard again after expiry: a new node as far as routing knows.
        assert_eq!(peers.heard(&beat(1, 10, &[]), t0 + PERIOD * 4), Heard::New);
    }

    #[test]
    fn messages_sent_since_the_last_heartbeat_of_an_expired_node_are_counted() {
        let t0 = Instant::now();
        let mut peers = Peers::default();
        peers.heard(&beat(1, 10, &["chat"]), t0);
        peers.sent(1);
        peers.sent(1);
        // Its heartbeat confirms it was alive after those: they are not in doubt any more.
        peers.heard(&beat(1, 10, &["chat"]), t0 + PERIOD);
        for _ in 0..3 {
            peers.sent(1);
        }
        peers.sent(7); // not a known node: nothing to count
        assert_eq!(peers.expire(t0 + PERIOD * 5), [(1, 3)]);
    }

    #[test]
    fn a_goodbye_forgets_at_once_and_old_epochs_are_ignored() {
        let t0 = Instant::now();
        let mut peers = Peers::default();
        peers.heard(&beat(1, 10, &["chat"]), t0);
        assert_eq!(peers.heard(&beat(1, 20, &["chat"]), t0), Heard::Restarted);
        // A late beat of the previous boot changes nothing.
        assert_eq!(peers.heard(&beat(1, 10, &[]), t0), Heard::Stale);
        assert_eq!(peers.serving("chat"), [1]);
        let mut bye = beat(1, 10, &[]);
        bye.goodbye = true;
        assert_eq!(
            peers.heard(&bye, t0),
            Heard::Stale,
            "goodbye of the old boot"
        );
        bye.epoch = 20;
        assert_eq!(peers.heard(&bye, t0), Heard::Gone);
        assert!(!peers.is_live(1));
        assert_eq!(peers.heard(&bye, t0), Heard::Stale);
    }

    #[test]
    fn serving_lists_the_workers_of_an_app() {
        let t0 = Instant::now();
        let mut peers = Peers::default();
        peers.heard(&beat(3, 1, &["chat", "echo"]), t0);
        assert_eq!(peers.heard(&beat(1, 1, &[]), t0), Heard::New);
        // A worker loads its plugins after it joined: its next beats say so.
        assert_eq!(peers.heard(&beat(1, 1, &["echo"]), t0), Heard::AppsChanged);
        assert_eq!(peers.heard(&beat(1, 1, &["echo"]), t0), Heard::Alive);
        assert_eq!(peers.serving("echo"), [1, 3]);
        assert_eq!(peers.serving("chat"), [3]);
        assert!(peers.serving("game").is_empty());
        assert_eq!(peers.epochs(), [(1, 1), (3, 1)]);
    }
}
