//! Every API function's semantics (API.md), exercised through the probe protocol
//! (`plugins/probe/README.md`) as each SDK implements it.

use std::time::Duration;

use serde_json::{Value, json};

use crate::support::clients::Received;
use crate::support::probe::Probe;
use crate::support::{Setup, eventually};

/// A well-formed id that no client has.
const NOBODY: &str = "ffffffff000000000001";

in_every_sdk!(
    client_ids_presence_and_counts,
    uids_bind_move_unbind_and_count,
    groups_membership_counts_sends_and_ungroup,
    client_lists_page_in_id_order,
    sessions_set_merge_delete_and_snapshot,
    client_info_fills_only_the_asked_fields,
    send_to_all_keeps_frame_types_and_skips_without,
    close_client_flushes_first_and_reports_what_was_bound,
    timers_fire_repeat_and_clear,
    websocket_handshake_can_be_rejected_by_the_app,
    log_goes_to_the_host_log_tagged_with_the_app,
    an_unhandled_api_error_is_logged_and_the_instance_keeps_its_state,
    keys_named_like_language_builtins_are_plain_data,
    a_request_with_bad_arguments_is_refused_naming_the_first,
    an_api_error_escaping_the_handshake_handler_refuses_it_with_500,
);

mod stdout_and_stderr_go_to_the_host_log_tagged_with_the_app {
    #[tokio::test]
    async fn rust() {
        super::stdout_and_stderr_go_to_the_host_log_tagged_with_the_app("probe").await
    }

    #[tokio::test]
    async fn python() {
        super::stdout_and_stderr_go_to_the_host_log_tagged_with_the_app("probe-py").await
    }
}

/// Starts a server running the probe plugin `probe` (its app has the same name), with the
/// compile cache the language tests share: the JS and Python probes take seconds to compile,
/// milliseconds to load from it.
fn server(probe: &str) -> crate::support::Server {
    crate::support::cached(Setup::one("websocket", probe)).start()
}

async fn client_ids_presence_and_counts(probe: &str) {
    let server = server(probe);
    let mut a = Probe::connect(&server.url()).await;
    let b = Probe::connect(&server.url()).await;

    for id in [&a.id, &b.id] {
        assert_eq!(id.len(), 20);
        assert!(
            id.bytes()
                .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c))
        );
    }
    assert_eq!(a.id[..8], b.id[..8], "one gateway, one gateway id prefix");
    assert_ne!(a.id, b.id);
    let me = a.ok("whoami", json!({})).await;
    assert_eq!(
        me["gateway_id"].as_u64(),
        u64::from_str_radix(&a.id[..8], 16).ok()
    );

    assert_eq!(
        a.ok("is-online", json!({"client": b.id})).await,
        json!(true)
    );
    assert_eq!(
        a.ok("is-online", json!({"client": NOBODY})).await,
        json!(false)
    );
    for bad in ["nope", "", "FFFFFFFF000000000001", "ffffffff0000000000012"] {
        assert_eq!(
            a.err("is-online", json!({"client": bad})).await,
            "invalid-client-id"
        );
    }
    assert_eq!(a.ok("get-client-count", json!({})).await, json!(2));

    let b_id = b.id.clone();
    drop(b);
    eventually("b is offline", async || {
        a.ok("is-online", json!({"client": b_id})).await == json!(false)
    })
    .await;
    assert_eq!(a.ok("get-client-count", json!({})).await, json!(1));
    // Sending to a client that is gone is not an error.
    assert_eq!(
        a.ok("send-to-client", json!({"client": b_id, "message": "x"}))
            .await,
        Value::Null
    );
}

async fn uids_bind_move_unbind_and_count(probe: &str) {
    let server = server(probe);
    let mut a = Probe::connect(&server.url()).await;
    let mut b = Probe::connect(&server.url()).await;
    let c = Probe::connect(&server.url()).await;
    let (ia, ib, ic) = (a.id.clone(), b.id.clone(), c.id.clone());

    a.ok("bind-uid", json!({"client": ia, "uid": "alice"}))
        .await;
    a.ok("bind-uid", json!({"client": ib, "uid": "alice"}))
        .await;
    a.ok("bind-uid", json!({"client": ic, "uid": "bob"})).await;
    assert_eq!(
        a.ok("is-uid-online", json!({"uid": "alice"})).await,
        json!(true)
    );
    assert_eq!(
        a.ok("is-uid-online", json!({"uid": "carol"})).await,
        json!(false)
    );
    assert_eq!(a.ok("get-uid-count", json!({})).await, json!(2));
    assert_eq!(
        a.ok("get-uid-count", json!({"unique_percent": 0.5})).await,
        json!(1)
    );
    assert_eq!(
        a.ok("get-uid-list", json!({"unique": true})).await,
        json!(["alice", "bob"])
    );
    let mut alice = vec![ia.clone(), ib.clone()];
    alice.sort();
    assert_eq!(
        a.ok(
            "get-client-list-by-uid",
            json!({"uid": "alice", "limit": 10})
        )
        .await,
        json!(alice)
    );
    assert_eq!(a.ok("whoami", json!({})).await["uid"], json!("alice"));

    // send-to-uid reaches every client of the uid except those left out.
    a.ok(
        "send-to-uid",
        json!({"uid": "alice", "message": "to alice", "without": [ia]}),
    )
    .await;
    assert_eq!(b.other_text().await, "to alice");
    a.nothing_so_far().await;

    // Binding to another uid moves the client.
    a.ok("bind-uid", json!({"client": ib, "uid": "bob"})).await;
    assert_eq!(
        a.ok(
            "get-client-list-by-uid",
            json!({"uid": "alice", "limit": 10})
        )
        .await,
        json!([ia])
    );
    a.ok("unbind-uid", json!({"client": ia})).await;
    a.ok("unbind-uid", json!({"client": ia})).await;
    assert_eq!(
        a.ok("is-uid-online", json!({"uid": "alice"})).await,
        json!(false)
    );
    assert_eq!(
        a.ok("get-uid-list", json!({"unique": false})).await,
        json!(["bob"])
    );
    assert_eq!(a.ok("whoami", json!({})).await["uid"], Value::Null);

    for bad in [String::new(), "x".repeat(257)] {
        assert_eq!(
            a.err("bind-uid", json!({"client": ia, "uid": bad})).await,
            "invalid-name"
        );
    }
    assert_eq!(
        a.err("bind-uid", json!({"client": "zz", "uid": "ok"}))
            .await,
        "invalid-client-id"
    );
    // A 256-byte uid of multi-byte characters is fine.
    let long = "é".repeat(128);
    a.ok("bind-uid", json!({"client": ic, "uid": long})).await;
    assert_eq!(
        a.ok("is-uid-online", json!({"uid": long})).await,
        json!(true)
    );
    drop(c);
}

async fn groups_membership_counts_sends_and_ungroup(probe: &str) {
    let server = server(probe);
    let mut a = Probe::connect(&server.url()).await;
    let mut b = Probe::connect(&server.url()).await;
    let mut c = Probe::connect(&server.url()).await;
    let (ia, ib, ic) = (a.id.clone(), b.id.clone(), c.id.clone());

    a.ok("join-group", json!({"client": ia, "group": "room"}))
        .await;
    a.ok("join-group", json!({"client": ib, "group": "room"}))
        .await;
    a.ok("join-group", json!({"client": ic, "group": "other"}))
        .await;
    a.ok("join-group", json!({"client": ia, "group": "room"}))
        .await;
    a.ok("bind-uid", json!({"client": ia, "uid": "u1"})).await;
    a.ok("bind-uid", json!({"client": ib, "uid": "u1"})).await;

    assert_eq!(
        a.ok("get-client-count-by-group", json!({"group": "room"}))
            .await,
        json!(2)
    );
    assert_eq!(
        a.ok("get-client-count-by-group", json!({"group": "none"}))
            .await,
        json!(0)
    );
    assert_eq!(
        a.ok("get-uid-count-by-group", json!({"group": "room"}))
            .await,
        json!(1)
    );
    assert_eq!(
        a.ok("get-uid-count-by-group", json!({"group": "other"}))
            .await,
        json!(0)
    );
    assert_eq!(
        a.ok("get-group-list", json!({"unique": true})).await,
        json!(["other", "room"])
    );
    assert_eq!(
        a.ok(
            "get-uid-list-by-group",
            json!({"group": "room", "unique": true})
        )
        .await,
        json!(["u1"])
    );
    let info = a
        .ok(
            "get-client-info",
            json!({"client": ia, "fields": ["groups"]}),
        )
        .await;
    assert_eq!(info["groups"], json!(["room"]));

    a.ok(
        "send-to-group",
        json!({"group": "room", "message": {"binary": [1, 2, 3]}, "without": [ia]}),
    )
    .await;
    assert_eq!(b.other().await, Received::Binary(vec![1, 2, 3]));
    let fence = a.send_fence(&ic).await;
    c.nothing_before(&fence).await;
    a.nothing_so_far().await;

    a.ok("leave-group", json!({"client": ib, "group": "room"}))
        .await;
    assert_eq!(
        a.ok(
            "get-client-list-by-group",
            json!({"group": "room", "limit": 5})
        )
        .await,
        json!([ia])
    );

    a.ok("ungroup", json!({"group": "room"})).await;
    assert_eq!(
        a.ok("get-client-count-by-group", json!({"group": "room"}))
            .await,
        json!(0)
    );
    assert_eq!(
        a.ok("get-group-list", json!({"unique": false})).await,
        json!(["other"])
    );
    assert_eq!(
        a.ok("get-client-count", json!({})).await,
        json!(3),
        "clients stay"
    );

    assert_eq!(
        a.err("join-group", json!({"client": ia, "group": ""}))
            .await,
        "invalid-name"
    );
    assert_eq!(
        a.err(
            "send-to-group",
            json!({"group": "room", "message": "x", "without": ["bad"]})
        )
        .await,
        "invalid-client-id"
    );
    drop((b, c));
}

async fn client_lists_page_in_id_order(probe: &str) {
    let server = server(probe);
    let mut a = Probe::connect(&server.url()).await;
    let mut others = Vec::new();
    for _ in 0..6 {
        others.push(Probe::connect(&server.url()).await);
    }
    let mut all: Vec<String> = others.iter().map(|p| p.id.clone()).collect();
    all.push(a.id.clone());
    all.sort();

    let mut seen = Vec::new();
    let mut after = Value::Null;
    loop {
        let page = a
            .ok("get-client-list", json!({"after": after, "limit": 3}))
            .await;
        let page: Vec<String> = serde_json::from_value(page).expect("ids");
        assert!(page.len() <= 3);
        if page.is_empty() {
            break;
        }
        after = json!(page.last());
        seen.extend(page);
    }
    assert_eq!(seen, all);
    // The cursor need not be a connected client: the page starts strictly after it.
    let page = a
        .ok("get-client-list", json!({"after": all[2], "limit": 1000}))
        .await;
    assert_eq!(page, json!(all[3..]));

    for limit in [0, 1001] {
        assert_eq!(
            a.err("get-client-list", json!({"limit": limit})).await,
            "invalid-argument"
        );
    }
    assert_eq!(
        a.err("get-client-list", json!({"after": "x", "limit": 1}))
            .await,
        "invalid-client-id"
    );
}

async fn sessions_set_merge_delete_and_snapshot(probe: &str) {
    let server = server(probe);
    let mut a = Probe::connect(&server.url()).await;
    let b = Probe::connect(&server.url()).await;
    let ib = b.id.clone();

    assert_eq!(a.ok("get-session", json!({"client": ib})).await, json!({}));
    assert_eq!(
        a.ok("get-session", json!({"client": NOBODY})).await,
        Value::Null
    );
    a.ok(
        "set-session",
        json!({"client": ib, "session": {"a": "1", "b": "2"}}),
    )
    .await;
    a.ok(
        "update-session",
        json!({"client": ib, "session": {"b": "3", "c": "{\"json\":true}"}}),
    )
    .await;
    assert_eq!(
        a.ok("get-session", json!({"client": ib})).await,
        json!({"a": "1", "b": "3", "c": "{\"json\":true}"})
    );
    a.ok("set-session", json!({"client": ib, "session": {"z": "9"}}))
        .await;
    assert_eq!(
        a.ok("get-session", json!({"client": ib})).await,
        json!({"z": "9"})
    );
    a.ok("delete-session", json!({"client": ib})).await;
    assert_eq!(a.ok("get-session", json!({"client": ib})).await, json!({}));

    // The event context carries a snapshot of the sender's session.
    let ia = a.id.clone();
    a.ok("set-session", json!({"client": ia, "session": {"k": "v"}}))
        .await;
    assert_eq!(
        a.ok("whoami", json!({})).await["session"],
        json!({"k": "v"})
    );

    let big = "x".repeat(70 * 1024);
    assert_eq!(
        a.err(
            "set-session",
            json!({"client": ib, "session": {"big": big}})
        )
        .await,
        "too-large"
    );
    let half = "y".repeat(40 * 1024);
    a.ok(
        "update-session",
        json!({"client": ib, "session": {"h1": half}}),
    )
    .await;
    assert_eq!(
        a.err(
            "update-session",
            json!({"client": ib, "session": {"h2": half}})
        )
        .await,
        "too-large"
    );
    let session = a.ok("get-session", json!({"client": ib})).await;
    assert!(session.get("h1").is_some() && session.get("h2").is_none());
    // Unknown clients: no error, nothing happens.
    a.ok(
        "set-session",
        json!({"client": NOBODY, "session": {"a": "1"}}),
    )
    .await;
    assert_eq!(
        a.ok("get-session", json!({"client": NOBODY})).await,
        Value::Null
    );
}

async fn client_info_fills_only_the_asked_fields(probe: &str) {
    let server = server(probe);
    let mut a = Probe::connect(&server.url()).await;
    let ia = a.id.clone();
    a.ok("bind-uid", json!({"client": ia, "uid": "me"})).await;
    a.ok("join-group", json!({"client": ia, "group": "g2"}))
        .await;
    a.ok("join-group", json!({"client": ia, "group": "g1"}))
        .await;
    a.ok("set-session", json!({"client": ia, "session": {"k": "v"}}))
        .await;

    let info = a
        .ok("get-client-info", json!({"client": ia, "fields": ["uid"]}))
        .await;
    assert_eq!(info, json!({"client": ia, "uid": "me"}));

    let info = a
        .ok("get-client-info", json!({"client": ia, "fields": "all"}))
        .await;
    assert_eq!(info["remote_ip"], json!("127.0.0.1"));
    assert!(info["remote_port"].as_u64().is_some_and(|p| p > 0));
    assert_eq!(info["session"], json!({"k": "v"}));
    assert_eq!(info["groups"], json!(["g1", "g2"]));
    let system = &info["system"];
    assert_eq!(system["protocol"], json!("websocket"));
    assert!(system["bytes_in"].as_u64().is_some_and(|n| n > 0));
    // The answers to the requests above were counted (each well before the next request).
    assert!(system["bytes_out"].as_u64().is_some_and(|n| n > 0));
    assert!(system["connected_at_ms"].as_u64() <= system["last_active_ms"].as_u64());
    assert_eq!(
        system["gateway_id"].as_u64(),
        u64::from_str_radix(&ia[..8], 16).ok()
    );
    let whoami = a.ok("whoami", json!({})).await;
    assert_eq!(
        whoami["remote_addr"],
        json!(format!("127.0.0.1:{}", info["remote_port"]))
    );

    assert_eq!(
        a.ok("get-client-info", json!({"client": NOBODY})).await,
        Value::Null
    );
}

async fn send_to_all_keeps_frame_types_and_skips_without(probe: &str) {
    let server = server(probe);
    let mut a = Probe::connect(&server.url()).await;
    let mut b = Probe::connect(&server.url()).await;
    let mut c = Probe::connect(&server.url()).await;
    let ib = b.id.clone();

    a.ok(
        "send-to-all",
        json!({"message": {"text": "hello all"}, "without": [ib]}),
    )
    .await;
    assert_eq!(a.other().await, Received::Text("hello all".into()));
    assert_eq!(c.other().await, Received::Text("hello all".into()));
    let fence = a.send_fence(&ib).await;
    b.nothing_before(&fence).await;

    a.ok("send-to-all", json!({"message": {"binary": [0, 255]}}))
        .await;
    for p in [&mut a, &mut b, &mut c] {
        assert_eq!(p.other().await, Received::Binary(vec![0, 255]));
    }
}

async fn close_client_flushes_first_and_reports_what_was_bound(probe: &str) {
    let server = server(probe);
    let mut observer = Probe::connect(&server.url()).await;
    let io = observer.id.clone();
    observer
        .ok("join-group", json!({"client": io, "group": "observers"}))
        .await;
    let mut b = Probe::connect(&server.url()).await;
    let ib = b.id.clone();
    observer
        .ok("bind-uid", json!({"client": ib, "uid": "bee"}))
        .await;
    observer
        .ok("join-group", json!({"client": ib, "group": "zz"}))
        .await;
    observer
        .ok("join-group", json!({"client": ib, "group": "aa"}))
        .await;
    observer
        .ok("set-session", json!({"client": ib, "session": {"n": "1"}}))
        .await;

    // Messages queued before a graceful close arrive before the close frame.
    for i in 0..50 {
        observer
            .ok(
                "send-to-client",
                json!({"client": ib, "message": format!("m{i}")}),
            )
            .await;
    }
    observer
        .ok("close-client", json!({"client": ib, "force": false}))
        .await;
    for i in 0..50 {
        assert_eq!(b.other_text().await, format!("m{i}"));
    }
    assert_eq!(b.closed().await.map(|(code, _)| code), Some(1000));

    let notice = observer.notice().await;
    assert_eq!(notice["event"], json!("close"));
    assert_eq!(notice["client"], json!(ib));
    assert_eq!(notice["uid"], json!("bee"));
    assert_eq!(notice["groups"], json!(["aa", "zz"]));
    assert_eq!(notice["session"], json!({"n": "1"}));
    assert_eq!(
        observer.ok("is-online", json!({"client": ib})).await,
        json!(false)
    );
    assert_eq!(
        observer.ok("is-uid-online", json!({"uid": "bee"})).await,
        json!(false)
    );
    assert_eq!(
        observer.ok("get-group-list", json!({"unique": true})).await,
        json!(["observers"])
    );

    // A forced close drops the client at once; on-close follows exactly once.
    let mut c = Probe::connect(&server.url()).await;
    let ic = c.id.clone();
    observer
        .ok("close-client", json!({"client": ic, "force": true}))
        .await;
    // Dropped, not closed cleanly: no close frame (a graceful close sends 1000).
    assert_eq!(
        c.closed().await,
        None,
        "a forced close sends no close frame"
    );
    let notice = observer.notice().await;
    assert_eq!(notice["client"], json!(ic));
    // A second on-close would come from c's instance, which need not be the observer's, so
    // no order rules it out: a quiet spell is the check.
    assert!(
        observer.quiet_for(Duration::from_millis(300)).await,
        "one on-close only"
    );
    // Closing a client that is gone is not an error.
    observer
        .ok("close-client", json!({"client": ic, "force": false}))
        .await;
}

async fn timers_fire_repeat_and_clear(probe: &str) {
    let server = server(probe);
    let mut a = Probe::connect(&server.url()).await;
    let ia = a.id.clone();
    a.ok("join-group", json!({"client": ia, "group": "observers"}))
        .await;

    let once = a.ok("set-timer", json!({"after_ms": 30})).await;
    assert_eq!(a.notice().await, json!({"event": "timer", "timer": once}));

    let every = a
        .ok("set-timer", json!({"after_ms": 20, "repeat": true}))
        .await;
    for _ in 0..3 {
        assert_eq!(a.notice().await, json!({"event": "timer", "timer": every}));
    }
    a.ok("clear-timer", json!({"timer": every})).await;
    // Firings sent before the clear arrive before a fence sent after it…
    let fence = a.send_fence(&ia).await;
    loop {
        match a.other().await {
            Received::Text(text) if text == fence => break,
            Received::Text(text) => assert_eq!(
                serde_json::from_str::<Value>(&text).ok(),
                Some(json!({"event": "timer", "timer": every})),
                "only firings of the cleared timer"
            ),
            other => panic!("expected a firing or the fence, got {other:?}"),
        }
    }
    // …and none after: fifteen periods of silence.
    assert!(a.quiet_for(Duration::from_millis(300)).await);

    assert_eq!(
        a.err("set-timer", json!({"after_ms": 0})).await,
        "invalid-argument"
    );
    a.ok("clear-timer", json!({"timer": 999_999})).await;
}

async fn websocket_handshake_can_be_rejected_by_the_app(probe: &str) {
    let server = server(probe);
    let url = format!("{}?reject=401", server.url());
    let err = tokio_tungstenite::connect_async(&url)
        .await
        .expect_err("rejected");
    match err {
        tokio_tungstenite::tungstenite::Error::Http(response) => {
            assert_eq!(response.status().as_u16(), 401);
            let body = response.body().as_deref().unwrap_or_default();
            assert_eq!(String::from_utf8_lossy(body), "rejected by probe");
        }
        other => panic!("expected an HTTP rejection, got {other}"),
    }
    // A rejected handshake never became a client.
    let mut a = Probe::connect(&server.url()).await;
    assert_eq!(a.ok("get-client-count", json!({})).await, json!(1));
    let me = a.ok("whoami", json!({})).await;
    assert!(
        me["remote_addr"]
            .as_str()
            .is_some_and(|s| s.starts_with("127.0.0.1:"))
    );
}

async fn log_goes_to_the_host_log_tagged_with_the_app(probe: &str) {
    let server = server(probe);
    let mut a = Probe::connect(&server.url()).await;
    let mark = server.mark();
    a.ok(
        "log",
        json!({"level": "warn", "message": "hello from the probe"}),
    )
    .await;
    let line = server
        .wait_for_log_since(mark, "hello from the probe")
        .await
        .text;
    assert!(
        line.contains("WARN") && line.contains(&format!("app=\"{probe}\"")),
        "{line}"
    );
}

/// Plain stdout and stderr of the plugin land in the log too, tagged like `log` lines. Not in
/// every SDK: the QuickJS engine (probe-js) has no WASI stdio, only the SDK's `console`, which
/// writes through `log`.
async fn stdout_and_stderr_go_to_the_host_log_tagged_with_the_app(probe: &str) {
    let server = server(probe);
    let mut a = Probe::connect(&server.url()).await;
    let mark = server.mark();
    a.ok("print", json!({"message": "printed by the probe"}))
        .await;
    let stderr = server
        .wait_for_log_since(mark, "printed by the probe (stderr)")
        .await
        .text;
    assert!(
        stderr.contains("WARN") && stderr.contains(&format!("app=\"{probe}\"")),
        "{stderr}"
    );
    let stdout = server
        .wait_for_line_since(mark, "the probe's stdout", |l| {
            l.contains("printed by the probe") && l.contains("stdout")
        })
        .await
        .text;
    assert!(
        stdout.contains("INFO") && stdout.contains(&format!("app=\"{probe}\"")),
        "{stdout}"
    );
}

/// The SDKs' error policy (issue 16): an API error a handler lets escape is logged at warn
/// with the app, the handler and the error, and the event ends normally: the instance keeps
/// its in-memory state (the probe's `counter`).
async fn an_unhandled_api_error_is_logged_and_the_instance_keeps_its_state(probe: &str) {
    let server = server(probe);
    let mut a = Probe::connect(&server.url()).await;
    let mark = server.mark();
    a.ws()
        .send_text(&json!({"id": 1, "op": "unhandled", "client": "nope"}).to_string())
        .await;
    let line = server
        .wait_for_log_since(mark, "unhandled error in on-message: invalid-client-id: ")
        .await
        .text;
    assert!(
        line.contains("WARN") && line.contains(&format!("app=\"{probe}\"")),
        "{line}"
    );
    assert_eq!(a.ok("counter", json!({})).await, json!(1), "{probe}");
    assert!(
        !server.log_since(mark).contains("instance replaced"),
        "{probe}: the instance must not be replaced"
    );
}

/// Session keys, groups and uids such as `__proto__` or `constructor` are data like any other
/// in every SDK (issue 16: the JS SDK lost a `__proto__` session key).
async fn keys_named_like_language_builtins_are_plain_data(probe: &str) {
    let server = server(probe);
    let mut a = Probe::connect(&server.url()).await;
    let me = a.id.clone();
    let session = json!({"__proto__": "p", "constructor": "c", "toString": "t", "a": "1"});
    a.ok("set-session", json!({"client": me, "session": session}))
        .await;
    assert_eq!(
        a.ok("get-session", json!({"client": me})).await,
        session,
        "{probe}"
    );
    assert_eq!(
        a.ok("whoami", json!({})).await["session"],
        session,
        "{probe}"
    );
    let info = a
        .ok(
            "get-client-info",
            json!({"client": me, "fields": ["session"]}),
        )
        .await;
    assert_eq!(info["session"], session, "{probe}");
    a.ok("join-group", json!({"client": me, "group": "__proto__"}))
        .await;
    a.ok("bind-uid", json!({"client": me, "uid": "constructor"}))
        .await;
    assert_eq!(
        a.ok(
            "get-client-count-by-groups",
            json!({"groups": ["__proto__", "toString"]})
        )
        .await,
        json!({"__proto__": 1, "toString": 0}),
        "{probe}"
    );
    assert_eq!(
        a.ok("get-client-ids-by-uids", json!({"uids": ["constructor"]}))
            .await,
        json!({"constructor": [me]}),
        "{probe}"
    );
}

/// The error policy in `on-websocket-connect`: an API error that escapes refuses the handshake
/// with 500 (a check that failed must not let a client in) and is logged like any other.
async fn an_api_error_escaping_the_handshake_handler_refuses_it_with_500(probe: &str) {
    let server = server(probe);
    let mark = server.mark();
    let url = format!("{}?fail=1&bind=ann", server.url());
    match tokio_tungstenite::connect_async(&url).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status().as_u16(), 500, "{probe}");
        }
        other => panic!("{probe}: expected an HTTP 500, got {other:?}"),
    }
    let line = server
        .wait_for_log_since(
            mark,
            "unhandled error in on-websocket-connect: invalid-client-id: ",
        )
        .await
        .text;
    assert!(line.contains("WARN"), "{line}");
    // The refused client never became one, and what its handler did was undone.
    let mut a = Probe::connect(&server.url()).await;
    assert_eq!(a.ok("get-client-count", json!({})).await, json!(1));
    assert_eq!(
        a.ok("is-uid-online", json!({"uid": "ann"})).await,
        json!(false)
    );
}

/// The probe protocol's own rule, which every API test above leans on: a request whose
/// arguments are wrong is answered `bad-request` naming the first wrong one, and the API is
/// not called.
async fn a_request_with_bad_arguments_is_refused_naming_the_first(probe: &str) {
    let server = server(probe);
    let mut a = Probe::connect(&server.url()).await;
    let me = a.ok("whoami", json!({})).await["client"].clone();
    let refused = [
        (json!({}), "`client` is missing"),
        (
            json!({"client": 5, "force": "yes"}),
            "`client` must be a string",
        ),
        (
            json!({"client": me, "force": "yes"}),
            "`force` must be a boolean",
        ),
    ];
    for (args, named) in refused {
        let err = a.call("close-client", args.clone()).await;
        assert_eq!(
            err,
            Err(("bad-request".to_owned(), named.to_owned())),
            "close-client {args}"
        );
    }
    // Not closed: the wrong `force` stopped the call.
    assert_eq!(a.ok("is-online", json!({"client": me})).await, json!(true));
}
