use super::*;

fn gw() -> GatewayId {
    GatewayId::new(0xabcd).expect("non-zero")
}

fn id(seq: u64) -> ClientId {
    ClientId::new(gw(), seq).expect("valid")
}

fn uid(name: &str) -> Uid {
    Uid::new(name).expect("valid uid")
}

fn group(name: &str) -> Group {
    Group::new(name).expect("valid group")
}

fn session(pairs: &[(&str, &str)]) -> Session {
    Session::new(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string()))).expect("fits")
}

fn addr() -> SocketAddr {
    "10.0.0.7:4242".parse().expect("addr")
}

/// A registry holding clients `seqs`, handles equal to their sequence.
fn with(seqs: &[u64]) -> Registry<u64> {
    let mut r = Registry::new();
    for &seq in seqs {
        assert!(r.insert(id(seq), Entry::new(0, addr(), Protocol::Text, 1000, seq)));
    }
    r
}

fn clients(r: &Registry<u64>, filter: ClientFilter, after: Option<u64>, limit: u32) -> Vec<u64> {
    let query = Query::ClientList {
        filter,
        after: after.map(id),
        limit,
    };
    match r.answer(&query, gw()) {
        Reply::Clients(ids) => ids.into_iter().map(ClientId::seq).collect(),
        other => panic!("unexpected {other:?}"),
    }
}

fn count(r: &Registry<u64>, query: Query) -> u64 {
    match r.answer(&query, gw()) {
        Reply::Count(n) => n,
        other => panic!("unexpected {other:?}"),
    }
}

fn yes(r: &Registry<u64>, query: Query) -> bool {
    match r.answer(&query, gw()) {
        Reply::Bool(b) => b,
        other => panic!("unexpected {other:?}"),
    }
}

fn uids(r: &Registry<u64>, group: Option<&str>) -> Vec<String> {
    match r.answer(
        &Query::UidList {
            group: group.map(self::group),
            unique: true,
        },
        gw(),
    ) {
        Reply::Uids(uids) => uids.iter().map(|u| u.to_string()).collect(),
        other => panic!("unexpected {other:?}"),
    }
}

fn groups(r: &Registry<u64>) -> Vec<String> {
    match r.answer(&Query::GroupList { unique: false }, gw()) {
        Reply::Groups(groups) => groups.iter().map(|g| g.to_string()).collect(),
        other => panic!("unexpected {other:?}"),
    }
}

fn targets(r: &Registry<u64>, to: Target, without: &[u64]) -> Vec<u64> {
    let without: Vec<ClientId> = without.iter().copied().map(id).collect();
    let mut seen = Vec::new();
    r.for_each_target(&to, &without, |_, e| seen.push(e.handle));
    seen
}

#[test]
fn insert_and_online() {
    let mut r = with(&[1, 2]);
    assert_eq!(r.len(), 2);
    assert!(yes(&r, Query::IsOnline(id(1))));
    assert!(!yes(&r, Query::IsOnline(id(3))));
    assert!(!r.insert(id(1), Entry::new(0, addr(), Protocol::Text, 0, 99)));
    assert_eq!(
        r.get(id(1)).map(|e| e.handle),
        Some(1),
        "a duplicate leaves the first"
    );
    assert_eq!(count(&r, Query::ClientCount(ClientFilter::All)), 2);
}

#[test]
fn client_list_pages_with_a_stable_cursor() {
    let mut r = with(&[5, 1, 9, 3, 7]);
    assert_eq!(clients(&r, ClientFilter::All, None, 2), [1, 3]);
    assert_eq!(clients(&r, ClientFilter::All, Some(3), 2), [5, 7]);
    // A client leaving or arriving between pages does not disturb the cursor.
    r.remove(id(7));
    r.insert(id(4), Entry::new(0, addr(), Protocol::Text, 0, 4));
    assert_eq!(clients(&r, ClientFilter::All, Some(7), 2), [9]);
    assert_eq!(
        clients(&r, ClientFilter::All, Some(9), 2),
        Vec::<u64>::new()
    );
    // A cursor that is not itself a client still works: strictly after it.
    assert_eq!(clients(&r, ClientFilter::All, Some(2), 1000), [3, 4, 5, 9]);
    assert_eq!(clients(&r, ClientFilter::All, None, 0), Vec::<u64>::new());
    assert_eq!(
        clients(&r, ClientFilter::All, None, u32::MAX),
        [1, 3, 4, 5, 9]
    );
}

#[test]
fn group_and_uid_lists_page_too() {
    let mut r = with(&[1, 2, 3, 4, 5]);
    for seq in [5, 2, 4] {
        r.join_group(id(seq), group("g"));
        r.bind_uid(id(seq), uid("u"));
    }
    for filter in [ClientFilter::Group(group("g")), ClientFilter::Uid(uid("u"))] {
        assert_eq!(clients(&r, filter.clone(), None, 2), [2, 4]);
        assert_eq!(clients(&r, filter.clone(), Some(4), 2), [5]);
        assert_eq!(clients(&r, filter.clone(), Some(5), 2), Vec::<u64>::new());
        assert_eq!(count(&r, Query::ClientCount(filter)), 3);
    }
    let nobody = ClientFilter::Group(group("none"));
    assert_eq!(clients(&r, nobody.clone(), None, 10), Vec::<u64>::new());
    assert_eq!(count(&r, Query::ClientCount(nobody)), 0);
    assert_eq!(
        count(&r, Query::ClientCount(ClientFilter::Uid(uid("x")))),
        0
    );
}

#[test]
fn binding_moves_a_client_between_uids() {
    let mut r = with(&[1, 2]);
    assert!(r.bind_uid(id(1), uid("alice")));
    assert!(r.bind_uid(id(2), uid("alice")));
    assert!(yes(&r, Query::IsUidOnline(uid("alice"))));
    assert_eq!(
        count(
            &r,
            Query::UidCount {
                group: None,
                exact: true
            }
        ),
        1
    );

    assert!(r.bind_uid(id(1), uid("bob")));
    assert_eq!(uids(&r, None), ["alice", "bob"]);
    assert_eq!(clients(&r, ClientFilter::Uid(uid("alice")), None, 10), [2]);
    assert_eq!(r.get(id(1)).and_then(|e| e.uid.clone()), Some(uid("bob")));

    // Moving the last client off a uid deletes the uid.
    assert!(r.bind_uid(id(2), uid("bob")));
    assert!(!yes(&r, Query::IsUidOnline(uid("alice"))));
    assert_eq!(uids(&r, None), ["bob"]);
    assert_eq!(r.uid_count(), 1);

    // Binding to the uid it already has changes nothing.
    assert!(r.bind_uid(id(2), uid("bob")));
    assert_eq!(clients(&r, ClientFilter::Uid(uid("bob")), None, 10), [1, 2]);
}

#[test]
fn unbinding_clears_and_deletes_empty_uids() {
    let mut r = with(&[1, 2]);
    r.bind_uid(id(1), uid("alice"));
    assert!(r.unbind_uid(id(1)));
    assert!(
        r.unbind_uid(id(1)),
        "no uid: a no-op, the client is still known"
    );
    assert!(r.unbind_uid(id(2)));
    assert!(!yes(&r, Query::IsUidOnline(uid("alice"))));
    assert_eq!(
        count(
            &r,
            Query::UidCount {
                group: None,
                exact: true
            }
        ),
        0
    );
    assert!(!r.unbind_uid(id(3)));
    assert!(!r.bind_uid(id(3), uid("ghost")));
    assert_eq!(uids(&r, None), Vec::<String>::new());
}

#[test]
fn groups_exist_while_they_have_members() {
    let mut r = with(&[1, 2]);
    assert!(r.join_group(id(1), group("b")));
    assert!(r.join_group(id(1), group("a")));
    assert!(r.join_group(id(1), group("a")), "joining twice is harmless");
    assert!(r.join_group(id(2), group("a")));
    assert_eq!(groups(&r), ["a", "b"]);
    assert_eq!(
        count(&r, Query::ClientCount(ClientFilter::Group(group("a")))),
        2
    );

    assert!(r.leave_group(id(1), &group("b")));
    assert_eq!(groups(&r), ["a"], "the last member left b");
    assert!(
        r.leave_group(id(1), &group("b")),
        "leaving a group one is not in: no-op"
    );
    assert!(!r.join_group(id(9), group("c")));
    assert!(!r.leave_group(id(9), &group("a")));
    assert_eq!(r.group_count(), 1);
}

#[test]
fn ungroup_removes_every_membership_but_keeps_clients() {
    let mut r = with(&[1, 2, 3]);
    for seq in [1, 2] {
        r.join_group(id(seq), group("room"));
        r.join_group(id(seq), group("lobby"));
    }
    r.ungroup(&group("room"));
    r.ungroup(&group("never-existed"));
    assert_eq!(groups(&r), ["lobby"]);
    assert_eq!(r.len(), 3);
    for seq in [1, 2] {
        let groups: Vec<_> = r
            .get(id(seq))
            .map(|e| e.groups.iter().cloned().collect())
            .unwrap_or_default();
        assert_eq!(groups, [group("lobby")]);
    }
    assert_eq!(
        targets(&r, Target::Group(group("room")), &[]),
        Vec::<u64>::new()
    );
}

#[test]
fn remove_reports_what_it_was_bound_to_and_cleans_every_index() {
    let mut r = with(&[1, 2]);
    r.bind_uid(id(1), uid("alice"));
    r.join_group(id(1), group("z"));
    r.join_group(id(1), group("a"));
    r.join_group(id(2), group("a"));
    r.set_session(id(1), session(&[("k", "v")]));

    let removed = r.remove(id(1)).expect("known");
    assert_eq!(removed.bound.uid, Some(uid("alice")));
    assert_eq!(removed.bound.groups, [group("a"), group("z")], "sorted");
    assert_eq!(removed.handle, 1);
    assert_eq!(removed.ctx.client, id(1));
    assert_eq!(removed.ctx.uid, Some(uid("alice")));
    assert_eq!(removed.ctx.session, session(&[("k", "v")]));

    assert!(!yes(&r, Query::IsOnline(id(1))));
    assert!(!yes(&r, Query::IsUidOnline(uid("alice"))));
    assert_eq!(groups(&r), ["a"]);
    assert_eq!(clients(&r, ClientFilter::Group(group("a")), None, 10), [2]);
    assert_eq!(clients(&r, ClientFilter::All, None, 10), [2]);
    assert!(r.remove(id(1)).is_none());

    let removed = r.remove(id(2)).expect("known");
    assert_eq!(
        removed.bound,
        Bound {
            uid: None,
            groups: vec![group("a")]
        }
    );
    assert!(r.is_empty());
    assert_eq!((r.uid_count(), r.group_count()), (0, 0));
}

#[test]
fn uid_counts_and_lists_by_group_are_distinct() {
    let mut r = with(&[1, 2, 3, 4, 5]);
    r.bind_uid(id(1), uid("bob"));
    r.bind_uid(id(2), uid("alice"));
    r.bind_uid(id(3), uid("bob"));
    r.bind_uid(id(4), uid("carol"));
    for seq in [1, 2, 3, 5] {
        r.join_group(id(seq), group("g"));
    }
    assert_eq!(
        count(
            &r,
            Query::UidCount {
                group: None,
                exact: true
            }
        ),
        3
    );
    assert_eq!(
        count(
            &r,
            Query::UidCount {
                group: Some(group("g")),
                exact: false
            }
        ),
        2,
        "client 5 has no uid"
    );
    assert_eq!(
        count(
            &r,
            Query::UidCount {
                group: Some(group("none")),
                exact: false
            }
        ),
        0
    );
    assert_eq!(uids(&r, None), ["alice", "bob", "carol"]);
    assert_eq!(uids(&r, Some("g")), ["alice", "bob"]);
    assert_eq!(uids(&r, Some("none")), Vec::<String>::new());
}

#[test]
fn sessions_set_update_delete() {
    let mut r = with(&[1]);
    let get = |r: &Registry<u64>, seq| match r.answer(&Query::Session(id(seq)), gw()) {
        Reply::Session(s) => s,
        other => panic!("unexpected {other:?}"),
    };
    assert_eq!(get(&r, 1), Some(Session::default()), "empty, not none");
    assert_eq!(get(&r, 2), None, "unknown client");

    assert!(r.set_session(id(1), session(&[("a", "1"), ("b", "2")])));
    assert_eq!(
        r.update_session(id(1), &session(&[("b", "3"), ("c", "4")])),
        Ok(true)
    );
    assert_eq!(
        get(&r, 1),
        Some(session(&[("a", "1"), ("b", "3"), ("c", "4")]))
    );

    let half = "x".repeat(crate::bus::MAX_SESSION_BYTES / 2);
    assert_eq!(
        r.update_session(id(1), &session(&[("big1", &half)])),
        Ok(true)
    );
    assert!(
        r.update_session(id(1), &session(&[("big2", &half)]))
            .is_err()
    );
    assert_eq!(
        get(&r, 1).and_then(|s| s.get("big2").map(str::to_owned)),
        None,
        "unchanged"
    );

    assert!(r.delete_session(id(1)));
    assert_eq!(get(&r, 1), Some(Session::default()));
    assert!(!r.set_session(id(2), Session::default()));
    assert_eq!(r.update_session(id(2), &session(&[("a", "1")])), Ok(false));
    assert!(!r.delete_session(id(2)));
}

#[test]
fn context_snapshots_do_not_follow_later_changes() {
    let mut r = with(&[1]);
    r.set_session(id(1), session(&[("a", "1")]));
    r.bind_uid(id(1), uid("u"));
    let ctx = r.context(id(1)).expect("known");
    r.set_session(id(1), session(&[("a", "2")]));
    assert_eq!(ctx.session, session(&[("a", "1")]));
    assert_eq!(ctx.uid, Some(uid("u")));
    assert_eq!(ctx.remote_addr, addr());
    assert!(r.context(id(2)).is_none());
}

#[test]
fn client_info_fills_only_the_asked_fields() {
    let mut r = with(&[1]);
    r.bind_uid(id(1), uid("u"));
    r.join_group(id(1), group("g"));
    if let Some(e) = r.get(id(1)) {
        e.traffic.received(10, 1500);
        e.traffic.sent(20);
    }
    let info = |fields: InfoFields, seq| match r.answer(
        &Query::ClientInfo {
            client: id(seq),
            fields,
        },
        gw(),
    ) {
        Reply::Info(info) => info.map(|b| *b),
        other => panic!("unexpected {other:?}"),
    };

    let none = info(InfoFields::default(), 1).expect("known");
    assert_eq!(none.client, id(1));
    assert_eq!(
        (
            none.remote_ip,
            none.remote_port,
            none.uid,
            none.session,
            none.groups,
            none.system
        ),
        (None, None, None, None, None, None)
    );

    let some = info(
        InfoFields {
            remote_port: true,
            groups: true,
            ..Default::default()
        },
        1,
    )
    .expect("known");
    assert_eq!(some.remote_port, Some(4242));
    assert_eq!(some.groups, Some(vec![group("g")]));
    assert_eq!(
        (some.remote_ip, some.uid.clone(), some.session.clone()),
        (None, None, None)
    );
    assert!(some.system.is_none());

    let all = InfoFields {
        remote_ip: true,
        remote_port: true,
        uid: true,
        session: true,
        groups: true,
        system: true,
    };
    let full = info(all, 1).expect("known");
    assert_eq!(full.remote_ip, Some(addr().ip()));
    assert_eq!(full.uid, Some(uid("u")));
    assert_eq!(full.session, Some(Session::default()));
    assert_eq!(
        full.system,
        Some(SystemInfo {
            protocol: Protocol::Text,
            connected_at_ms: 1000,
            last_active_ms: 1500,
            bytes_in: 10,
            bytes_out: 20,
            gateway: gw(),
        })
    );
    assert_eq!(info(all, 2), None, "unknown client");
}

#[test]
fn send_targets_are_sorted_and_skip_without() {
    let mut r = with(&[4, 2, 3, 1]);
    r.bind_uid(id(3), uid("u"));
    r.bind_uid(id(1), uid("u"));
    r.join_group(id(4), group("g"));
    r.join_group(id(2), group("g"));
    assert_eq!(targets(&r, Target::All, &[]), [1, 2, 3, 4]);
    assert_eq!(targets(&r, Target::All, &[2, 9, 4]), [1, 3]);
    assert_eq!(targets(&r, Target::Uid(uid("u")), &[]), [1, 3]);
    assert_eq!(targets(&r, Target::Uid(uid("u")), &[1]), [3]);
    assert_eq!(targets(&r, Target::Group(group("g")), &[]), [2, 4]);
    assert_eq!(targets(&r, Target::Client(id(2)), &[]), [2]);
    assert_eq!(targets(&r, Target::Client(id(2)), &[2]), Vec::<u64>::new());
    assert_eq!(targets(&r, Target::Client(id(7)), &[]), Vec::<u64>::new());
    assert_eq!(
        targets(&r, Target::Uid(uid("nobody")), &[]),
        Vec::<u64>::new()
    );
}

#[test]
fn pre_bound_entries_are_indexed() {
    let mut r: Registry<u64> = Registry::new();
    let mut entry = Entry::new(0, addr(), Protocol::Frame, 0, 1);
    entry.uid = Some(uid("u"));
    entry.groups.insert(group("g"));
    r.insert(id(1), entry);
    assert!(yes(&r, Query::IsUidOnline(uid("u"))));
    assert_eq!(groups(&r), ["g"]);
}
