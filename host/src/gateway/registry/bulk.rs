//! The registry's answers to the list forms GatewayWorker applications rely on: sends to
//! many names at once, paged name lists, sessions by page, counts and client ids by name.
//! Kept apart from the single-name indexes they read.

use std::collections::BTreeSet;
use std::ops::Bound as Edge;

use super::{Entry, Registry};
use crate::bus::{ClientId, Group, Session, Uid};

/// The range strictly after `after`, or everything.
fn after<T>(after: Option<T>) -> (Edge<T>, Edge<T>) {
    (
        after.map_or(Edge::Unbounded, Edge::Excluded),
        Edge::Unbounded,
    )
}

/// Session bytes one page carries at most (past its first entry): a page of 1000 sessions of
/// 64 KiB each would be 64 MiB, far above a NATS message's default 1 MiB.
pub const SESSION_PAGE_BYTES: usize = 256 * 1024;

fn limit(limit: u32) -> usize {
    usize::try_from(limit).unwrap_or(usize::MAX)
}

impl<H> Registry<H> {
    /// Calls `f` once for each listed client that is connected, in id order.
    pub(super) fn each_listed(&self, ids: &[ClientId], mut f: impl FnMut(ClientId, &Entry<H>)) {
        let ids: BTreeSet<ClientId> = ids.iter().copied().collect();
        for id in ids {
            if let Some(entry) = self.clients.get(&id) {
                f(id, entry);
            }
        }
    }

    /// Calls `f` once for each client in any of the member sets, in id order: a client
    /// named twice (two of its groups, or a uid given twice) is reached once.
    pub(super) fn each_member_of_any<'a>(
        &self,
        sets: impl Iterator<Item = Option<&'a BTreeSet<ClientId>>>,
        mut f: impl FnMut(ClientId, &Entry<H>),
    ) {
        let ids: BTreeSet<ClientId> = sets.flatten().flatten().copied().collect();
        for id in ids {
            if let Some(entry) = self.clients.get(&id) {
                f(id, entry);
            }
        }
    }

    /// One page of bound uids, sorted, strictly after `after`; among a group's members if given.
    pub(super) fn uid_page(&self, group: Option<&Group>, from: Option<&Uid>, n: u32) -> Vec<Uid> {
        match group {
            None => self
                .uids
                .range::<Uid, _>(after(from))
                .take(limit(n))
                .map(|(uid, _)| uid.clone())
                .collect(),
            // A group's uids have no index of their own: collect them sorted, then cut.
            Some(_) => {
                let all = self.uid_list(group);
                let start = from.map_or(0, |a| all.partition_point(|u| u <= a));
                all.into_iter().skip(start).take(limit(n)).collect()
            }
        }
    }

    /// One page of groups with members, sorted, strictly after `after`.
    pub(super) fn group_page(&self, from: Option<&Group>, n: u32) -> Vec<Group> {
        self.groups
            .range::<Group, _>(after(from))
            .take(limit(n))
            .map(|(group, _)| group.clone())
            .collect()
    }

    /// One page of clients (all, or a group's members) with their sessions, sorted by id,
    /// and whether it was cut short at [`SESSION_PAGE_BYTES`] (then more may follow).
    pub(super) fn session_page(
        &self,
        group: Option<&Group>,
        from: Option<ClientId>,
        n: u32,
    ) -> (Vec<(ClientId, Session)>, bool) {
        let entries: Box<dyn Iterator<Item = (ClientId, &Entry<H>)>> = match group {
            None => Box::new(self.clients.range(after(from)).map(|(id, e)| (*id, e))),
            Some(group) => Box::new(
                self.groups
                    .get(group)
                    .into_iter()
                    .flat_map(move |members| members.range(after(from)))
                    .filter_map(|id| Some((*id, self.clients.get(id)?))),
            ),
        };
        let mut page = Vec::new();
        let mut bytes = 0;
        for (id, entry) in entries.take(limit(n)) {
            if !page.is_empty() && bytes + entry.session.encoded_size() > SESSION_PAGE_BYTES {
                return (page, true);
            }
            bytes += entry.session.encoded_size();
            page.push((id, entry.session.clone()));
        }
        (page, false)
    }

    /// The member count of each group, in the order given.
    pub(super) fn group_counts(&self, groups: &[Group]) -> Vec<u64> {
        groups
            .iter()
            .map(|g| self.groups.get(g).map_or(0, |m| m.len() as u64))
            .collect()
    }

    /// The sorted clients of each uid, in the order given.
    pub(super) fn clients_of_uids(&self, uids: &[Uid]) -> Vec<Vec<ClientId>> {
        uids.iter()
            .map(|u| {
                self.uids
                    .get(u)
                    .map(|ids| ids.iter().copied().collect())
                    .unwrap_or_default()
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use crate::bus::{GatewayId, Protocol, Query, Reply, Target};

    use super::super::{Entry, Registry};
    use super::*;

    fn id(seq: u64) -> ClientId {
        ClientId::new(GatewayId::new(0xabcd).expect("non-zero"), seq).expect("valid")
    }

    fn uid(name: &str) -> Uid {
        Uid::new(name).expect("valid uid")
    }

    fn group(name: &str) -> Group {
        Group::new(name).expect("valid group")
    }

    /// Clients 1..=n; client s is bound to uid `u{s % 4}` and in group `g{s % 3}`, and its
    /// session holds `n = s`.
    fn registry(n: u64) -> Registry<u64> {
        let mut r = Registry::new();
        for s in 1..=n {
            let addr = "10.0.0.7:4242".parse().expect("addr");
            assert!(r.insert(id(s), Entry::new(0, addr, Protocol::Text, 1000, s)));
            r.bind_uid(id(s), uid(&format!("u{}", s % 4)));
            r.join_group(id(s), group(&format!("g{}", s % 3)));
            let session = Session::new([("n".to_owned(), s.to_string())]).expect("fits");
            r.set_session(id(s), session);
        }
        r
    }

    fn reached(r: &Registry<u64>, to: Target, without: &[u64]) -> Vec<u64> {
        let without: Vec<ClientId> = without.iter().map(|&s| id(s)).collect();
        let mut out = Vec::new();
        r.for_each_target(&to, &without, |_, e| out.push(e.handle));
        out
    }

    fn answer(r: &Registry<u64>, query: Query) -> Reply {
        r.answer(&query, GatewayId::new(1).expect("non-zero"))
    }

    #[test]
    fn list_sends_reach_each_client_once_and_skip_without() {
        let r = registry(12);
        // u1 and u1 again, u2: clients 1,5,9 and 2,6,10, once each, 5 skipped.
        let to = Target::Uids(vec![uid("u1"), uid("u2"), uid("u1"), uid("nobody")]);
        assert_eq!(reached(&r, to, &[5]), [1, 2, 6, 9, 10]);
        let to = Target::Groups(vec![group("g0"), group("g1")]);
        assert_eq!(reached(&r, to, &[]), [1, 3, 4, 6, 7, 9, 10, 12]);
        let to = Target::Clients(vec![id(7), id(3), id(7), id(99)]);
        assert_eq!(reached(&r, to, &[]), [3, 7]);
    }

    #[test]
    fn name_pages_walk_every_name_once_in_order() {
        let r = registry(12);
        let mut walked = Vec::new();
        let mut cursor: Option<Uid> = None;
        loop {
            let query = Query::UidPage {
                group: None,
                after: cursor.clone(),
                limit: 3,
            };
            let Reply::Uids(page) = answer(&r, query) else {
                panic!("uids")
            };
            let Some(last) = page.last().cloned() else {
                break;
            };
            walked.extend(page);
            cursor = Some(last);
        }
        assert_eq!(walked, [uid("u0"), uid("u1"), uid("u2"), uid("u3")]);
        // Group g0 holds 3, 6, 9, 12: uids u3, u2, u1, u0.
        let query = Query::UidPage {
            group: Some(group("g0")),
            after: Some(uid("u1")),
            limit: 10,
        };
        assert_eq!(answer(&r, query), Reply::Uids(vec![uid("u2"), uid("u3")]));
        let query = Query::GroupPage {
            after: Some(group("g0")),
            limit: 1,
        };
        assert_eq!(answer(&r, query), Reply::Groups(vec![group("g1")]));
    }

    #[test]
    fn session_pages_follow_the_client_list() {
        let r = registry(12);
        let query = Query::Sessions {
            group: Some(group("g0")),
            after: Some(id(3)),
            limit: 2,
        };
        let Reply::Sessions { page, cut: false } = answer(&r, query) else {
            panic!("sessions")
        };
        let page: Vec<(u64, Option<String>)> = page
            .into_iter()
            .map(|(c, s)| (c.seq(), s.get("n").map(str::to_owned)))
            .collect();
        assert_eq!(page, [(6, Some("6".into())), (9, Some("9".into()))]);
        let query = Query::Sessions {
            group: None,
            after: Some(id(11)),
            limit: 1000,
        };
        let Reply::Sessions { page, cut: false } = answer(&r, query) else {
            panic!("sessions")
        };
        assert_eq!(page.len(), 1);
    }

    #[test]
    fn a_session_page_stops_at_its_byte_budget_and_says_so() {
        let mut r = registry(20);
        let big = "x".repeat(60 * 1024);
        for s in 1..=20 {
            let session = Session::new([("big".to_owned(), big.clone())]).expect("fits");
            r.set_session(id(s), session);
        }
        let query = Query::Sessions {
            group: None,
            after: None,
            limit: 1000,
        };
        let Reply::Sessions { page, cut: true } = answer(&r, query) else {
            panic!("a cut page")
        };
        let per_page = SESSION_PAGE_BYTES / (60 * 1024);
        assert_eq!(page.len(), per_page);
        // The next page starts right after it.
        let query = Query::Sessions {
            group: None,
            after: page.last().map(|(c, _)| *c),
            limit: 1000,
        };
        let Reply::Sessions { page: next, .. } = answer(&r, query) else {
            panic!("sessions")
        };
        assert_eq!(next[0].0, id(per_page as u64 + 1));
    }

    #[test]
    fn counts_and_client_ids_come_in_the_order_asked() {
        let r = registry(12);
        let query = Query::GroupCounts(vec![group("g0"), group("none"), group("g2")]);
        assert_eq!(answer(&r, query), Reply::Counts(vec![4, 0, 4]));
        let query = Query::ClientsOfUids(vec![uid("u3"), uid("none")]);
        assert_eq!(
            answer(&r, query),
            Reply::ClientsOfUids(vec![vec![id(3), id(7), id(11)], vec![]])
        );
    }
}
