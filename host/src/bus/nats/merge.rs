//! Queries across gateways, as plain functions: which gateways to ask, what to ask them, and
//! how their answers make the one answer the embedded process would give.

use std::collections::BTreeSet;

use crate::bus::{BusError, ClientId, GatewayId, Query, Reply, Session};

/// Who answers a query.
#[derive(Clone, Debug, PartialEq)]
pub enum Plan {
    /// Only the client's own gateway knows: its answer is the answer.
    One(GatewayId),
    /// Every live gateway is asked `ask`, and the answers are merged with [`merge`].
    All(Query),
}

/// Which gateways to ask, and what.
pub fn plan(query: &Query) -> Plan {
    match query {
        Query::IsOnline(client) | Query::Session(client) => Plan::One(client.gateway()),
        Query::ClientInfo { client, .. } => Plan::One(client.gateway()),
        // A uid on two gateways counts once: ask for the names and count their union.
        Query::UidCount { group, exact: true } => Plan::All(Query::UidList {
            group: group.clone(),
            unique: true,
        }),
        other => Plan::All(other.clone()),
    }
}

/// Merges every asked gateway's reply (in any order) into the answer to `query`.
pub fn merge(query: &Query, replies: Vec<Reply>) -> Result<Reply, BusError> {
    let unexpected = |reply: &Reply| BusError::UnexpectedReply {
        query: format!("{query:?}"),
        reply: format!("{reply:?}"),
    };
    Ok(match query {
        Query::IsOnline(_) | Query::IsUidOnline(_) => {
            let mut any = false;
            for reply in &replies {
                match reply {
                    Reply::Bool(b) => any |= b,
                    other => return Err(unexpected(other)),
                }
            }
            Reply::Bool(any)
        }
        Query::ClientCount(_) | Query::UidCount { exact: false, .. } => {
            let mut sum = 0u64;
            for reply in &replies {
                match reply {
                    Reply::Count(n) => sum = sum.saturating_add(*n),
                    other => return Err(unexpected(other)),
                }
            }
            Reply::Count(sum)
        }
        Query::UidCount { exact: true, .. } => {
            let mut union = BTreeSet::new();
            for reply in replies {
                match reply {
                    Reply::Uids(uids) => union.extend(uids),
                    other => return Err(unexpected(&other)),
                }
            }
            Reply::Count(union.len() as u64)
        }
        Query::ClientList { limit, .. } => {
            let mut pages = Vec::with_capacity(replies.len());
            for reply in replies {
                match reply {
                    Reply::Clients(page) => pages.push(page),
                    other => return Err(unexpected(&other)),
                }
            }
            Reply::Clients(first_of_sorted(pages, *limit as usize))
        }
        Query::UidList { unique, .. } => {
            let mut lists = Vec::with_capacity(replies.len());
            for reply in replies {
                match reply {
                    Reply::Uids(list) => lists.push(list),
                    other => return Err(unexpected(&other)),
                }
            }
            Reply::Uids(names(lists, *unique))
        }
        Query::GroupList { unique } => {
            let mut lists = Vec::with_capacity(replies.len());
            for reply in replies {
                match reply {
                    Reply::Groups(list) => lists.push(list),
                    other => return Err(unexpected(&other)),
                }
            }
            Reply::Groups(names(lists, *unique))
        }
        Query::UidPage { limit, .. } => {
            let mut lists = Vec::with_capacity(replies.len());
            for reply in replies {
                match reply {
                    Reply::Uids(list) => lists.push(list),
                    other => return Err(unexpected(&other)),
                }
            }
            Reply::Uids(first_names(lists, *limit))
        }
        Query::GroupPage { limit, .. } => {
            let mut lists = Vec::with_capacity(replies.len());
            for reply in replies {
                match reply {
                    Reply::Groups(list) => lists.push(list),
                    other => return Err(unexpected(&other)),
                }
            }
            Reply::Groups(first_names(lists, *limit))
        }
        Query::Sessions { limit, .. } => {
            let mut pages = Vec::with_capacity(replies.len());
            // A gateway that cut its page short may hold more right after its last id:
            // the merged page must stop there, or the next cursor would skip them.
            let mut stop: Option<ClientId> = None;
            for reply in replies {
                match reply {
                    Reply::Sessions { page, cut } => {
                        if cut && let Some(&(last, _)) = page.last() {
                            stop = Some(stop.map_or(last, |s| s.min(last)));
                        }
                        pages.push(page);
                    }
                    other => return Err(unexpected(&other)),
                }
            }
            let mut page = first_sessions(pages, *limit as usize);
            let cut = stop.is_some_and(|s| page.iter().any(|(id, _)| *id > s));
            if let Some(s) = stop {
                page.retain(|(id, _)| *id <= s);
            }
            Reply::Sessions { page, cut }
        }
        Query::GroupCounts(groups) => {
            let mut sums = vec![0u64; groups.len()];
            for reply in &replies {
                match reply {
                    Reply::Counts(counts) if counts.len() == sums.len() => {
                        for (sum, n) in sums.iter_mut().zip(counts) {
                            *sum = sum.saturating_add(*n);
                        }
                    }
                    other => return Err(unexpected(other)),
                }
            }
            Reply::Counts(sums)
        }
        Query::ClientsOfUids(uids) => {
            let mut merged: Vec<Vec<ClientId>> = vec![Vec::new(); uids.len()];
            for reply in replies {
                match reply {
                    Reply::ClientsOfUids(lists) if lists.len() == merged.len() => {
                        for (all, ids) in merged.iter_mut().zip(lists) {
                            all.extend(ids);
                        }
                    }
                    other => return Err(unexpected(&other)),
                }
            }
            for ids in &mut merged {
                ids.sort_unstable();
                ids.dedup();
            }
            Reply::ClientsOfUids(merged)
        }
        // Asked of one gateway only: its answer is the answer.
        Query::ClientInfo { .. } | Query::Session(_) => {
            let mut replies = replies.into_iter();
            match (replies.next(), replies.next()) {
                (Some(reply), None) => reply,
                (None, _) => Reply::nobody(query),
                (Some(_), Some(extra)) => return Err(unexpected(&extra)),
            }
        }
    })
}

/// The first `limit` ids of sorted pages, in order. Each gateway answered with its own first
/// `limit` ids after the cursor, so the merged page is exactly the embedded one and its last
/// id is a valid cursor for the next page.
pub fn first_of_sorted(pages: Vec<Vec<ClientId>>, limit: usize) -> Vec<ClientId> {
    let mut heads: Vec<std::iter::Peekable<std::vec::IntoIter<ClientId>>> = pages
        .into_iter()
        .map(|p| p.into_iter().peekable())
        .collect();
    let mut out = Vec::with_capacity(limit.min(1024));
    while out.len() < limit {
        let next = heads
            .iter_mut()
            .enumerate()
            .filter_map(|(i, h)| h.peek().map(|&id| (id, i)))
            .min();
        let Some((id, i)) = next else { break };
        heads[i].next();
        // Ids are unique per gateway and carry the gateway: a repeat is the same client
        // answered twice, which counts once.
        if out.last() != Some(&id) {
            out.push(id);
        }
    }
    out
}

/// The first `limit` names of the union of sorted pages: each gateway answered with its own
/// first `limit` names after the cursor, so these are the cluster's.
fn first_names<T: Ord>(lists: Vec<Vec<T>>, limit: u32) -> Vec<T> {
    let union: BTreeSet<T> = lists.into_iter().flatten().collect();
    union
        .into_iter()
        .take(usize::try_from(limit).unwrap_or(usize::MAX))
        .collect()
}

/// The first `limit` (client, session) pairs of pages sorted by client id, as
/// [`first_of_sorted`] merges client ids.
fn first_sessions(pages: Vec<Vec<(ClientId, Session)>>, limit: usize) -> Vec<(ClientId, Session)> {
    let mut all: Vec<(ClientId, Session)> = pages.into_iter().flatten().collect();
    all.sort_by_key(|(id, _)| *id);
    all.dedup_by_key(|(id, _)| *id);
    all.truncate(limit);
    all
}

/// Sorted names merged once each if `unique`, else each gateway's list concatenated (as
/// documented: cheaper, may repeat).
fn names<T: Ord>(lists: Vec<Vec<T>>, unique: bool) -> Vec<T> {
    if unique {
        lists
            .into_iter()
            .flatten()
            .collect::<BTreeSet<T>>()
            .into_iter()
            .collect()
    } else {
        lists.into_iter().flatten().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bus::{ClientFilter, Group, InfoFields, Uid};

    fn id(gw: u32, seq: u64) -> ClientId {
        ClientId::new(GatewayId::new(gw).expect("non-zero"), seq).expect("valid")
    }
    fn uid(s: &str) -> Uid {
        Uid::new(s).expect("uid")
    }

    #[test]
    fn client_queries_go_to_their_gateway_only() {
        let c = id(9, 1);
        assert_eq!(plan(&Query::IsOnline(c)), Plan::One(c.gateway()));
        assert_eq!(plan(&Query::Session(c)), Plan::One(c.gateway()));
        let info = Query::ClientInfo {
            client: c,
            fields: InfoFields::default(),
        };
        assert_eq!(plan(&info), Plan::One(c.gateway()));
        assert_eq!(
            merge(&info, vec![]).expect("merges"),
            Reply::Info(None),
            "a gateway that is gone knows nobody"
        );
    }

    #[test]
    fn counts_are_summed_and_presence_is_any() {
        let q = Query::ClientCount(ClientFilter::All);
        assert_eq!(
            merge(&q, vec![Reply::Count(2), Reply::Count(3)]).expect("merges"),
            Reply::Count(5)
        );
        let q = Query::IsUidOnline(uid("a"));
        assert_eq!(
            merge(&q, vec![Reply::Bool(false), Reply::Bool(true)]).expect("merges"),
            Reply::Bool(true)
        );
        assert_eq!(merge(&q, vec![]).expect("merges"), Reply::Bool(false));
        let err = merge(&q, vec![Reply::Count(1)]).expect_err("wrong shape");
        assert!(matches!(err, BusError::UnexpectedReply { .. }));
    }

    #[test]
    fn exact_uid_count_counts_the_union() {
        let q = Query::UidCount {
            group: Some(Group::new("g").expect("group")),
            exact: true,
        };
        let Plan::All(ask) = plan(&q) else {
            panic!("asks all")
        };
        assert!(matches!(ask, Query::UidList { unique: true, .. }));
        let replies = vec![
            Reply::Uids(vec![uid("a"), uid("b")]),
            Reply::Uids(vec![uid("b"), uid("c")]),
        ];
        assert_eq!(merge(&q, replies).expect("merges"), Reply::Count(3));
        let sum = Query::UidCount {
            group: None,
            exact: false,
        };
        assert_eq!(plan(&sum), Plan::All(sum.clone()));
        assert_eq!(
            merge(&sum, vec![Reply::Count(2), Reply::Count(2)]).expect("merges"),
            Reply::Count(4)
        );
    }

    #[test]
    fn paged_lists_merge_into_the_embedded_pages() {
        // Two gateways' clients, paged 3 at a time: the pages walk every client once, in
        // order, exactly as one gateway holding them all would.
        let a: Vec<ClientId> = (1..=5).map(|s| id(1, s)).collect();
        let b: Vec<ClientId> = (1..=4).map(|s| id(2, s)).collect();
        let mut all: Vec<ClientId> = a.iter().chain(&b).copied().collect();
        all.sort();
        let page_of = |list: &[ClientId], after: Option<ClientId>, limit: usize| -> Vec<ClientId> {
            list.iter()
                .filter(|&&c| after.is_none_or(|a| c > a))
                .take(limit)
                .copied()
                .collect()
        };
        let mut walked = Vec::new();
        let mut after = None;
        loop {
            let q = Query::ClientList {
                filter: ClientFilter::All,
                after,
                limit: 3,
            };
            let replies = vec![
                Reply::Clients(page_of(&a, after, 3)),
                Reply::Clients(page_of(&b, after, 3)),
            ];
            let Reply::Clients(page) = merge(&q, replies).expect("merges") else {
                panic!("clients")
            };
            assert_eq!(page, page_of(&all, after, 3));
            let Some(&last) = page.last() else { break };
            walked.extend(page);
            after = Some(last);
        }
        assert_eq!(walked, all);
    }

    #[test]
    fn paged_names_and_sessions_merge_into_the_embedded_pages() {
        let q = Query::UidPage {
            group: None,
            after: None,
            limit: 3,
        };
        // Each gateway's own first 3: the union's first 3 are the cluster's.
        let replies = vec![
            Reply::Uids(vec![uid("a"), uid("c"), uid("e")]),
            Reply::Uids(vec![uid("a"), uid("b"), uid("f")]),
        ];
        assert_eq!(
            merge(&q, replies).expect("merges"),
            Reply::Uids(vec![uid("a"), uid("b"), uid("c")])
        );
        let q = Query::Sessions {
            group: None,
            after: None,
            limit: 2,
        };
        let s = |v: &str| crate::bus::Session::new([("k".into(), v.into())]).expect("fits");
        let page = |page, cut| Reply::Sessions { page, cut };
        let replies = vec![
            page(vec![(id(2, 1), s("x")), (id(2, 2), s("y"))], false),
            page(vec![(id(1, 5), s("z"))], false),
        ];
        assert_eq!(
            merge(&q, replies).expect("merges"),
            page(vec![(id(1, 5), s("z")), (id(2, 1), s("x"))], false)
        );
        // Gateway 1 cut its page at its budget after 1/1: it may hold 1/2 next, so the
        // merged page ends at 1/1 rather than running on into gateway 2's clients.
        let replies = vec![
            page(vec![(id(2, 1), s("x")), (id(2, 2), s("y"))], false),
            page(vec![(id(1, 1), s("big"))], true),
        ];
        assert_eq!(
            merge(&q, replies).expect("merges"),
            page(vec![(id(1, 1), s("big"))], true)
        );
    }

    #[test]
    fn counts_and_clients_by_name_merge_per_name() {
        let g = |s: &str| Group::new(s).expect("group");
        let q = Query::GroupCounts(vec![g("a"), g("b")]);
        assert_eq!(
            merge(
                &q,
                vec![Reply::Counts(vec![1, 0]), Reply::Counts(vec![2, 3])]
            )
            .expect("merges"),
            Reply::Counts(vec![3, 3])
        );
        assert_eq!(
            merge(&q, vec![]).expect("merges"),
            Reply::Counts(vec![0, 0])
        );
        let short = merge(&q, vec![Reply::Counts(vec![1])]).expect_err("one count short");
        assert!(matches!(short, BusError::UnexpectedReply { .. }));
        let q = Query::ClientsOfUids(vec![uid("u")]);
        let replies = vec![
            Reply::ClientsOfUids(vec![vec![id(2, 1)]]),
            Reply::ClientsOfUids(vec![vec![id(1, 1), id(1, 4)]]),
        ];
        assert_eq!(
            merge(&q, replies).expect("merges"),
            Reply::ClientsOfUids(vec![vec![id(1, 1), id(1, 4), id(2, 1)]])
        );
    }

    #[test]
    fn name_lists_are_unioned_or_concatenated() {
        let lists = || {
            vec![
                Reply::Groups(vec![
                    Group::new("a").expect("g"),
                    Group::new("c").expect("g"),
                ]),
                Reply::Groups(vec![
                    Group::new("a").expect("g"),
                    Group::new("b").expect("g"),
                ]),
            ]
        };
        let Reply::Groups(unique) =
            merge(&Query::GroupList { unique: true }, lists()).expect("merges")
        else {
            panic!("groups")
        };
        let unique: Vec<&str> = unique.iter().map(Group::as_str).collect();
        assert_eq!(unique, ["a", "b", "c"]);
        let Reply::Groups(all) =
            merge(&Query::GroupList { unique: false }, lists()).expect("merges")
        else {
            panic!("groups")
        };
        assert_eq!(all.len(), 4);
        let q = Query::UidList {
            group: None,
            unique: true,
        };
        let replies = vec![Reply::Uids(vec![uid("x")]), Reply::Uids(vec![uid("x")])];
        assert_eq!(
            merge(&q, replies).expect("merges"),
            Reply::Uids(vec![uid("x")])
        );
    }
}
