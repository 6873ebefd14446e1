//! Which worker handles a client: sticky bindings chosen by rendezvous hashing, as plain
//! data. A client keeps its worker while that worker lives, so its events stay in order on
//! one subject; a client whose worker is gone is rebound among the live ones.

use std::collections::HashMap;

use crate::bus::ClientId;

/// The worker with the highest score for `client` among `workers`: every gateway computes
/// the same choice, and adding or removing a worker moves only its share of clients.
pub fn rendezvous(client: ClientId, workers: &[u32]) -> Option<u32> {
    let key = (u64::from(client.gateway().get()) << 32) ^ client.seq();
    workers
        .iter()
        .copied()
        .max_by_key(|&w| (mix(key ^ mix(u64::from(w))), w))
}

/// SplitMix64's finaliser: a fixed, well-spread hash (the std hasher may change between
/// releases, and every process must agree).
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// The worker each client of this gateway is bound to.
#[derive(Debug, Default)]
pub struct Bindings {
    bound: HashMap<ClientId, u32>,
}

impl Bindings {
    /// The worker for `client`: its bound one if still among `candidates`, else a new
    /// binding chosen among them; `None` if there is no candidate.
    pub fn route(&mut self, client: ClientId, candidates: &[u32]) -> Option<u32> {
        if let Some(&w) = self.bound.get(&client)
            && candidates.contains(&w)
        {
            return Some(w);
        }
        let w = rendezvous(client, candidates)?;
        self.bound.insert(client, w);
        Some(w)
    }

    /// Forgets a client that closed.
    pub fn unbind(&mut self, client: ClientId) {
        self.bound.remove(&client);
    }

    /// How many clients are bound to each worker.
    pub fn per_worker(&self) -> HashMap<u32, usize> {
        let mut counts = HashMap::new();
        for &w in self.bound.values() {
            *counts.entry(w).or_default() += 1;
        }
        counts
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bus::GatewayId;

    fn client(seq: u64) -> ClientId {
        ClientId::new(GatewayId::new(5).expect("non-zero"), seq).expect("valid")
    }

    #[test]
    fn rendezvous_spreads_and_moves_only_the_removed_share() {
        let workers = [11, 22, 33];
        let before: Vec<u32> = (1..=3000)
            .map(|s| rendezvous(client(s), &workers).expect("some"))
            .collect();
        for w in workers {
            let n = before.iter().filter(|&&b| b == w).count();
            assert!((700..=1300).contains(&n), "worker {w} got {n} of 3000");
        }
        let after: Vec<u32> = (1..=3000)
            .map(|s| rendezvous(client(s), &[11, 33]).expect("some"))
            .collect();
        for (b, a) in before.iter().zip(&after) {
            if *b != 22 {
                assert_eq!(a, b, "a client of a surviving worker moved");
            }
        }
        assert_eq!(rendezvous(client(1), &[]), None);
    }

    #[test]
    fn a_client_stays_on_its_worker_while_it_lives() {
        let mut b = Bindings::default();
        let first = b.route(client(1), &[1]).expect("bound");
        assert_eq!(first, 1);
        // A new worker joins: the client does not move, so its events stay in order.
        assert_eq!(b.route(client(1), &[1, 2, 3, 4]), Some(1));
        // Its worker is gone: rebound among the live ones, and stays there.
        let next = b.route(client(1), &[2, 3, 4]).expect("rebound");
        assert_ne!(next, 1);
        assert_eq!(b.route(client(1), &[1, 2, 3, 4]), Some(next));
        assert_eq!(b.per_worker().get(&next), Some(&1));
        b.unbind(client(1));
        assert!(b.per_worker().is_empty());
        assert_eq!(b.route(client(1), &[]), None);
    }
}

/// Where a worker's command goes: `Some(g)` to the one gateway holding its client, `None` to
/// every live gateway (sends to a uid, a group or all, and `ungroup`).
pub fn command_gateway(command: &crate::bus::Command) -> Option<crate::bus::GatewayId> {
    use crate::bus::{Command, Target};
    match command {
        Command::Send {
            to: Target::Client(client),
            ..
        }
        | Command::Close { client, .. }
        | Command::BindUid { client, .. }
        | Command::UnbindUid { client }
        | Command::JoinGroup { client, .. }
        | Command::LeaveGroup { client, .. }
        | Command::SetSession { client, .. }
        | Command::UpdateSession { client, .. } => Some(client.gateway()),
        Command::Send { .. } | Command::Ungroup { .. } => None,
    }
}

/// A send to listed clients split into one send per gateway holding some of them (client ids
/// name their gateway), so a list costs one bus message per gateway, not one per client;
/// `None` for every other command.
pub fn split_by_gateway(
    command: &crate::bus::Command,
) -> Option<Vec<(crate::bus::GatewayId, crate::bus::Command)>> {
    use crate::bus::{Command, Target};
    let Command::Send {
        to: Target::Clients(ids),
        message,
        without,
    } = command
    else {
        return None;
    };
    let mut per_gateway: std::collections::BTreeMap<_, Vec<ClientId>> = Default::default();
    for &id in ids {
        per_gateway.entry(id.gateway()).or_default().push(id);
    }
    Some(
        per_gateway
            .into_iter()
            .map(|(g, ids)| {
                let part = Command::Send {
                    to: Target::Clients(ids),
                    message: message.clone(),
                    without: without.clone(),
                };
                (g, part)
            })
            .collect(),
    )
}

#[cfg(test)]
mod command_tests {
    use super::*;
    use crate::bus::{Command, GatewayId, Group, Message, Target};

    #[test]
    fn client_commands_go_to_its_gateway_and_the_rest_to_all() {
        let c = ClientId::new(GatewayId::new(4).expect("non-zero"), 1).expect("valid");
        let g = Group::new("room").expect("group");
        let send = |to| Command::Send {
            to,
            message: Message::text("x"),
            without: vec![c],
        };
        assert_eq!(command_gateway(&send(Target::Client(c))), Some(c.gateway()));
        assert_eq!(
            command_gateway(&Command::JoinGroup {
                client: c,
                group: g.clone()
            }),
            Some(c.gateway())
        );
        assert_eq!(command_gateway(&send(Target::Group(g.clone()))), None);
        assert_eq!(command_gateway(&send(Target::All)), None);
        assert_eq!(command_gateway(&Command::Ungroup { group: g }), None);
        assert_eq!(split_by_gateway(&send(Target::All)), None);
    }

    #[test]
    fn a_client_list_send_is_one_message_per_gateway() {
        let on = |gw: u32, seq: u64| {
            ClientId::new(GatewayId::new(gw).expect("non-zero"), seq).expect("valid")
        };
        let list: Vec<ClientId> = (1..=500).map(|s| on(1 + (s % 2) as u32, s)).collect();
        let send = Command::Send {
            to: Target::Clients(list),
            message: Message::text("x"),
            without: vec![],
        };
        let parts = split_by_gateway(&send).expect("a list send");
        assert_eq!(parts.len(), 2);
        for (g, part) in parts {
            let Command::Send {
                to: Target::Clients(ids),
                ..
            } = part
            else {
                panic!("a list send")
            };
            assert_eq!(ids.len(), 250);
            assert!(ids.iter().all(|id| id.gateway() == g));
        }
        // Uid and group lists go to every live gateway once each, like a single name.
        let uids = Command::Send {
            to: Target::Uids(vec![crate::bus::Uid::new("a").expect("uid")]),
            message: Message::text("x"),
            without: vec![],
        };
        assert_eq!(command_gateway(&uids), None);
        assert_eq!(split_by_gateway(&uids), None);
    }
}
