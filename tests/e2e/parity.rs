//! GatewayWorker parity (issue 15): list sends, bulk sessions, counts and ids by name, paged
//! name lists and close-with-message, through `plugins/probe` against the real binary.

use std::collections::BTreeSet;

use serde_json::{Value, json};

use crate::support::clients::{Received, Ws};
use crate::support::probe::Probe;
use crate::support::{Listener, Setup};

in_every_sdk!(
    list_sends_reach_the_right_clients_once_each_and_skip_without,
    a_thousand_uids_and_a_group_of_a_thousand_clients_page_through,
    close_client_with_delivers_the_message_before_the_close,
);

/// A server running the probe plugin `probe`, whose listener takes many clients from one
/// address.
fn server(probe: &str) -> crate::support::Server {
    Setup::default()
        .listener(Listener::new("websocket", probe).with("max_connections_per_ip = 0"))
        .start()
}

/// Walks a paged call to its end with `limit`, the cursor taken from each page's last item
/// by `cursor`; returns every item in order.
async fn walk(
    probe: &mut Probe,
    op: &str,
    args: Value,
    limit: u32,
    cursor: impl Fn(&Value) -> Value,
) -> Vec<Value> {
    let mut all = Vec::new();
    let mut after = Value::Null;
    loop {
        let mut request = args.clone();
        request["after"] = after;
        request["limit"] = json!(limit);
        let page = probe.ok(op, request).await;
        let page = page.as_array().expect("a page is an array").clone();
        assert!(page.len() <= limit as usize, "{op}: a page above its limit");
        let Some(last) = page.last() else {
            return all;
        };
        after = cursor(last);
        all.extend(page);
    }
}

async fn list_sends_reach_the_right_clients_once_each_and_skip_without(probe: &str) {
    let server = server(probe);
    let mut p = Probe::connect(&server.url()).await;
    // c[0], c[1] bound to ann; c[2] to bob; c[3] to cy; c[4] unbound. Groups: c[0], c[2] in
    // red; c[2], c[3] in blue (c[2] in both).
    let mut c = Vec::new();
    for _ in 0..5 {
        c.push(Probe::connect(&server.url()).await);
    }
    let ids: Vec<String> = c.iter().map(|c| c.id.clone()).collect();
    for (i, uid) in [(0, "ann"), (1, "ann"), (2, "bob"), (3, "cy")] {
        p.ok("bind-uid", json!({"client": ids[i], "uid": uid}))
            .await;
    }
    for (i, group) in [(0, "red"), (2, "red"), (2, "blue"), (3, "blue")] {
        p.ok("join-group", json!({"client": ids[i], "group": group}))
            .await;
    }

    // ann twice and bob: c[0] and c[2] once each, c[1] skipped by `without`.
    p.ok(
        "send-to-uids",
        json!({"uids": ["ann", "bob", "ann", "nobody"], "message": "to uids", "without": [ids[1]]}),
    )
    .await;
    // red and blue: c[2] is in both and gets it once.
    p.ok(
        "send-to-groups",
        json!({"groups": ["red", "blue"], "message": {"binary": [1, 2]}}),
    )
    .await;
    // c[4] listed twice, c[3] once, and a client that is gone.
    p.ok(
        "send-to-clients",
        json!({"clients": [ids[4], ids[3], ids[4], "ffffffff000000000001"], "message": "to clients"}),
    )
    .await;

    let expected: [&[Received]; 5] = [
        &[
            Received::Text("to uids".into()),
            Received::Binary(vec![1, 2]),
        ],
        &[],
        &[
            Received::Text("to uids".into()),
            Received::Binary(vec![1, 2]),
        ],
        &[
            Received::Binary(vec![1, 2]),
            Received::Text("to clients".into()),
        ],
        &[Received::Text("to clients".into())],
    ];
    for (client, want) in c.iter_mut().zip(expected) {
        // The sends came from `p`'s instance, so a fence from `p` arrives behind them.
        let fence = p.send_fence(&client.id).await;
        for w in want {
            assert_eq!(&client.other().await, w, "client {}", client.id);
        }
        client.nothing_before(&fence).await;
    }

    // Empty lists send nothing and are no error; bad names and ids are refused.
    p.ok("send-to-uids", json!({"uids": [], "message": "x"}))
        .await;
    assert_eq!(
        p.err(
            "send-to-groups",
            json!({"groups": ["ok", ""], "message": "x"})
        )
        .await,
        "invalid-name"
    );
    assert_eq!(
        p.err(
            "send-to-clients",
            json!({"clients": ["nope"], "message": "x"})
        )
        .await,
        "invalid-client-id"
    );
    let too_many: Vec<String> = (0..1001).map(|i| format!("u{i}")).collect();
    assert_eq!(
        p.err("send-to-uids", json!({"uids": too_many, "message": "x"}))
            .await,
        "invalid-argument"
    );
    for c in &mut c {
        c.nothing_so_far().await;
    }
}

async fn a_thousand_uids_and_a_group_of_a_thousand_clients_page_through(probe: &str) {
    const N: usize = 1000;
    let server = server(probe);
    let mut p = Probe::connect(&server.url()).await;
    // Each client binds u0000…, joins `big` and stores its nick as a JSON session value
    // before its handshake completes.
    let mut clients = Vec::with_capacity(N);
    for i in 0..N {
        let url = format!("{}/?bind=u{i:04}&join=big&nick=n{i}", server.url());
        clients.push(Ws::connect(&url).await);
    }
    let uids: Vec<String> = (0..N).map(|i| format!("u{i:04}")).collect();

    let walked = walk(&mut p, "get-uid-list-paged", json!({}), 300, Clone::clone).await;
    assert_eq!(walked, uids.iter().map(|u| json!(u)).collect::<Vec<_>>());
    let walked = walk(
        &mut p,
        "get-uid-list-by-group-paged",
        json!({"group": "big"}),
        999,
        Clone::clone,
    )
    .await;
    assert_eq!(walked.len(), N);
    assert_eq!(
        p.ok("get-group-list-paged", json!({"limit": 10})).await,
        json!(["big"])
    );
    assert_eq!(
        p.ok("get-group-list-paged", json!({"after": "big", "limit": 10}))
            .await,
        json!([])
    );

    // The group's members with their sessions, paged: every member once, sorted by id, each
    // with the nick its uid says.
    let members = walk(
        &mut p,
        "get-client-sessions-by-group",
        json!({"group": "big"}),
        256,
        |last| last[0].clone(),
    )
    .await;
    assert_eq!(members.len(), N);
    let ids: Vec<&str> = members.iter().map(|m| m[0].as_str().expect("id")).collect();
    assert!(
        ids.windows(2).all(|w| w[0] < w[1]),
        "sorted by id, each once"
    );
    let by_uids = p.ok("get-client-ids-by-uids", json!({"uids": uids})).await;
    let by_uids = by_uids.as_object().expect("an object");
    assert_eq!(by_uids.len(), N);
    for member in &members {
        let nick = member[1]["nick"].as_str().expect("a nick");
        let i = nick
            .trim_matches('"')
            .trim_start_matches('n')
            .parse::<usize>()
            .expect("n<i>");
        assert_eq!(nick, format!("\"n{i}\""), "stored as JSON");
        assert_eq!(by_uids[&uids[i]], json!([member[0]]));
    }
    // All clients' sessions include the probe's own (empty) one.
    let all = walk(&mut p, "get-client-sessions", json!({}), 1000, |last| {
        last[0].clone()
    })
    .await;
    assert_eq!(all.len(), N + 1);

    assert_eq!(
        p.ok(
            "get-client-count-by-groups",
            json!({"groups": ["big", "none", "big"]})
        )
        .await,
        json!({"big": N, "none": 0})
    );

    // One call to the 1000 uids but the first: each other client gets it once.
    p.ok(
        "send-to-uids",
        json!({"uids": uids, "message": "notice", "without": [by_uids["u0000"][0]]}),
    )
    .await;
    let first = by_uids["u0000"][0].as_str().expect("id").to_owned();
    let mut fences = Vec::new();
    for member in &members {
        let id = member[0].as_str().expect("id");
        fences.push(p.send_fence(id).await);
    }
    let mut got = BTreeSet::new();
    for (ws, uid) in clients.iter_mut().zip(&uids) {
        let id = by_uids[uid][0].as_str().expect("id");
        let fence = fences[ids.iter().position(|m| *m == id).expect("a member")].clone();
        if id != first {
            assert_eq!(ws.recv().await, Received::Text("notice".into()), "{uid}");
            got.insert(id.to_owned());
        }
        assert_eq!(ws.recv().await, Received::Text(fence), "{uid}: only once");
    }
    assert_eq!(got.len(), N - 1);

    // The paging model's bounds.
    for bad in [0, 1001] {
        assert_eq!(
            p.err("get-uid-list-paged", json!({"limit": bad})).await,
            "invalid-argument"
        );
    }
    assert_eq!(
        p.err("get-client-sessions", json!({"after": "x", "limit": 1}))
            .await,
        "invalid-client-id"
    );
    assert_eq!(
        p.err("get-uid-list-paged", json!({"after": "", "limit": 1}))
            .await,
        "invalid-name"
    );
}

async fn close_client_with_delivers_the_message_before_the_close(probe: &str) {
    let server = server(probe);
    let mut p = Probe::connect(&server.url()).await;
    let mut c = Probe::connect(&server.url()).await;
    p.ok(
        "close-client-with",
        json!({"client": c.id, "message": "bye"}),
    )
    .await;
    assert_eq!(c.other().await, Received::Text("bye".into()));
    assert_eq!(c.closed().await.map(|(code, _)| code), Some(1000));
    // A client that is gone is no error; a malformed id is.
    p.ok(
        "close-client-with",
        json!({"client": c.id, "message": "bye"}),
    )
    .await;
    assert_eq!(
        p.err(
            "close-client-with",
            json!({"client": "x", "message": "bye"})
        )
        .await,
        "invalid-client-id"
    );
}

/// The parity commands of `plugins/caps-*` (their README): a JSON session value, list sends,
/// bulk sessions, counts and ids by name, paged uids and close-with-message, through each
/// language's SDK.
async fn caps_parity(app: &str) {
    let server = Setup::one("websocket", app).start();
    let mut a = Ws::connect(&server.url()).await;
    let mut b = Ws::connect(&server.url()).await;
    for (ws, nick) in [(&mut a, "ann"), (&mut b, "bob")] {
        ws.send_text(&format!("nick {nick}")).await;
        assert_eq!(ws.recv_text().await, "ok", "{app}");
    }
    // a connected first, so its id sorts first.
    a.send_text("who ann").await;
    assert_eq!(
        a.recv_text().await,
        "2+0 ann@lobby,bob@lobby ann,bob 1",
        "{app}"
    );
    a.send_text("notice hi there").await;
    for want in ["hi there", "to me", "ok"] {
        assert_eq!(a.recv_text().await, want, "{app}");
    }
    for want in ["hi there", "to caps"] {
        assert_eq!(b.recv_text().await, want, "{app}");
    }
    a.send_text("bye later").await;
    assert_eq!(a.recv_text().await, "later", "{app}");
    assert_eq!(a.closed().await.map(|(code, _)| code), Some(1000), "{app}");
}

#[tokio::test]
async fn javascript_plugins_use_the_list_forms_and_json_sessions() {
    caps_parity("caps-js").await;
}

#[tokio::test]
async fn python_plugins_use_the_list_forms_and_json_sessions() {
    caps_parity("caps-py").await;
}

#[tokio::test]
async fn go_plugins_use_the_list_forms_and_json_sessions() {
    caps_parity("caps-go").await;
}
