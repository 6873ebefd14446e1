//! The HTTP server API (`[api]`, docs/http-api.md): every function called over HTTP against
//! the real binary with real WebSocket clients connected, its tokens, and its errors.

use std::collections::BTreeSet;

use serde_json::{Value, json};

use crate::support::clients::Received;
use crate::support::http::{self, Response, api_call};
use crate::support::probe::Probe;
use crate::support::{Server, Setup, eventually, run_to_exit};

/// The token the test servers accept.
pub const TOKEN: &str = "test-token-0123456789";

/// The `[api]` table of a test server on a free port.
pub fn api_table() -> String {
    format!("\n[api]\naddr = \"127.0.0.1:0\"\ntokens = [\"{TOKEN}\"]\n")
}

/// The API address the server logged.
pub fn api_addr(server: &Server) -> String {
    let log = server.log();
    let rest = log
        .split("HTTP API on http://")
        .nth(1)
        .expect("the API address logged");
    rest.split('/').next().expect("an address").to_owned()
}

/// A probe server with the API on.
fn server() -> (Server, String) {
    let server = Server::start(&(Setup::one("websocket", "probe").toml() + &api_table()));
    let addr = api_addr(&server);
    (server, addr)
}

/// Calls a function of the probe app and expects `{"ok": …}`.
async fn ok(addr: &str, function: &str, args: Value) -> Value {
    let response = api_call(addr, TOKEN, "probe", function, &args).await;
    assert_eq!(response.status, 200, "{function} {args}: {}", response.body);
    response.json()["ok"].clone()
}

/// Calls and expects an error: (status, kind).
async fn err(addr: &str, function: &str, args: Value) -> (u16, String) {
    let response = api_call(addr, TOKEN, "probe", function, &args).await;
    let kind = response.json()["err"]["kind"]
        .as_str()
        .unwrap_or_else(|| panic!("{function} {args}: no error: {}", response.body))
        .to_owned();
    assert!(
        response.json()["err"]["detail"].is_string(),
        "{}",
        response.body
    );
    (response.status, kind)
}

/// Calls functions of the probe app and remembers which.
struct Recorder {
    addr: String,
    called: std::sync::Mutex<BTreeSet<String>>,
}

impl Recorder {
    fn new(addr: &str) -> Self {
        Self {
            addr: addr.to_owned(),
            called: Default::default(),
        }
    }

    async fn ok(&self, function: &str, args: Value) -> Value {
        self.called
            .lock()
            .expect("lock")
            .insert(function.to_owned());
        ok(&self.addr, function, args).await
    }
}

/// The list forms over HTTP: GatewayWorker's arrays, batch calls and paged name lists. `a` is
/// bound to u1, and both are in `room`.
async fn list_forms(c: &Recorder, a: &mut Probe, b: &mut Probe) {
    let (ida, idb) = (a.id.clone(), b.id.clone());
    assert_eq!(
        c.ok("get-uid-list-paged", json!({"limit": 1})).await,
        json!(["u1"])
    );
    assert_eq!(
        c.ok("get-uid-list-paged", json!({"after": "u1"})).await,
        json!([])
    );
    assert_eq!(
        c.ok("get-uid-list-by-group-paged", json!({"group": "room"}))
            .await,
        json!(["u1"])
    );
    assert_eq!(
        c.ok("get-group-list-paged", json!({})).await,
        json!(["room"])
    );
    assert_eq!(
        c.ok(
            "get-client-count-by-groups",
            json!({"groups": ["room", "none"]})
        )
        .await,
        json!({"none": 0, "room": 2})
    );
    assert_eq!(
        c.ok("get-client-ids-by-uids", json!({"uids": ["u1", "u2"]}))
            .await,
        json!({"u1": [ida], "u2": []})
    );
    c.ok(
        "send-to-uids",
        json!({"uids": ["u1", "nobody"], "message": {"text": "uids"}}),
    )
    .await;
    c.ok(
        "send-to-groups",
        json!({"groups": ["room", "none"], "message": {"text": "groups"}, "without": [ida]}),
    )
    .await;
    c.ok(
        "send-to-clients",
        json!({"clients": [idb, ida, idb], "message": {"binary": "AQ=="}}),
    )
    .await;
    assert_eq!(a.other().await, Received::Text("uids".into()));
    assert_eq!(a.other().await, Received::Binary(vec![1]));
    assert_eq!(b.other().await, Received::Text("groups".into()));
    assert_eq!(b.other().await, Received::Binary(vec![1]));
}

#[tokio::test]
async fn every_api_function_works_over_http_with_clients_connected() {
    // Boxed: inline, this test's future outgrows the test thread's stack.
    Box::pin(every_api_function()).await;
}

async fn every_api_function() {
    let (_server, addr) = server();
    let c = Recorder::new(&addr);
    let mut a = Probe::connect(&_server.url()).await;
    let mut b = Probe::connect(&_server.url()).await;
    let (ida, idb) = (a.id.clone(), b.id.clone());
    let mut sorted = [ida.clone(), idb.clone()];
    sorted.sort();

    // Presence and counts.
    assert_eq!(c.ok("is-online", json!({"client": ida})).await, json!(true));
    assert_eq!(c.ok("get-client-count", json!({})).await, json!(2));
    assert_eq!(
        c.ok("get-client-list", json!({"limit": 1})).await,
        json!([sorted[0]])
    );
    assert_eq!(
        c.ok("get-client-list", json!({"after": sorted[0]})).await,
        json!([sorted[1]])
    );

    // Uids and groups.
    c.ok("bind-uid", json!({"client": ida, "uid": "u1"})).await;
    assert_eq!(
        c.ok("is-uid-online", json!({"uid": "u1"})).await,
        json!(true)
    );
    assert_eq!(c.ok("get-uid-count", json!({})).await, json!(1));
    assert_eq!(
        c.ok("get-uid-count", json!({"unique_percent": 2.0})).await,
        json!(2)
    );
    assert_eq!(c.ok("get-uid-list", json!({})).await, json!(["u1"]));
    assert_eq!(
        c.ok("get-client-list-by-uid", json!({"uid": "u1"})).await,
        json!([ida])
    );
    for id in [&ida, &idb] {
        c.ok("join-group", json!({"client": id, "group": "room"}))
            .await;
    }
    assert_eq!(
        c.ok("get-client-count-by-group", json!({"group": "room"}))
            .await,
        json!(2)
    );
    assert_eq!(
        c.ok("get-uid-count-by-group", json!({"group": "room"}))
            .await,
        json!(1)
    );
    assert_eq!(
        c.ok(
            "get-client-list-by-group",
            json!({"group": "room", "limit": 10})
        )
        .await,
        json!(sorted)
    );
    assert_eq!(
        c.ok(
            "get-uid-list-by-group",
            json!({"group": "room", "unique": false})
        )
        .await,
        json!(["u1"])
    );
    assert_eq!(
        c.ok("get-group-list", json!({"unique": true})).await,
        json!(["room"])
    );

    list_forms(&c, &mut a, &mut b).await;

    // Sends reach the clients, text as text, binary (base64) as binary.
    c.ok(
        "send-to-client",
        json!({"client": ida, "message": {"text": "one"}}),
    )
    .await;
    assert_eq!(a.other().await, Received::Text("one".into()));
    c.ok(
        "send-to-uid",
        json!({"uid": "u1", "message": {"binary": "AAEC"}}),
    )
    .await;
    assert_eq!(a.other().await, Received::Binary(vec![0, 1, 2]));
    c.ok(
        "send-to-group",
        json!({"group": "room", "message": {"text": "to the room"}, "without": [ida]}),
    )
    .await;
    assert_eq!(b.other().await, Received::Text("to the room".into()));
    c.ok("send-to-all", json!({"message": {"text": "all"}}))
        .await;
    assert_eq!(b.other().await, Received::Text("all".into()));
    // The group send skipped a: its next message is the send to all.
    assert_eq!(a.other().await, Received::Text("all".into()));

    // Sessions and client facts.
    c.ok("set-session", json!({"client": ida, "session": {"k": "v"}}))
        .await;
    c.ok(
        "update-session",
        json!({"client": ida, "session": {"x": "y"}}),
    )
    .await;
    assert_eq!(
        c.ok("get-session", json!({"client": ida})).await,
        json!({"k": "v", "x": "y"})
    );
    let mut sessions = [
        json!({"client": ida, "session": {"k": "v", "x": "y"}}),
        json!({"client": idb, "session": {}}),
    ];
    sessions.sort_by_key(|s| s["client"].as_str().unwrap_or_default().to_owned());
    assert_eq!(
        c.ok("get-client-sessions", json!({})).await,
        json!(sessions)
    );
    assert_eq!(
        c.ok(
            "get-client-sessions-by-group",
            json!({"group": "room", "after": sorted[0], "limit": 5})
        )
        .await,
        json!([sessions[1]])
    );
    let info = c
        .ok(
            "get-client-info",
            json!({"client": ida, "fields": ["uid", "groups", "session"]}),
        )
        .await;
    assert_eq!(info["client"], json!(ida));
    assert_eq!(info["uid"], json!("u1"));
    assert_eq!(info["groups"], json!(["room"]));
    assert_eq!(info["session"], json!({"k": "v", "x": "y"}));
    assert_eq!(info["remote_ip"], Value::Null, "not asked");
    let all = c.ok("get-client-info", json!({"client": ida})).await;
    assert_eq!(all["remote_ip"], json!("127.0.0.1"));
    assert_eq!(all["system"]["protocol"], json!("websocket"));
    assert_eq!(
        c.ok("get-client-info", json!({"client": "ffffffff000000000001"}))
            .await,
        Value::Null
    );
    c.ok("delete-session", json!({"client": ida})).await;
    assert_eq!(c.ok("get-session", json!({"client": ida})).await, json!({}));

    // Undoing memberships.
    c.ok("leave-group", json!({"client": idb, "group": "room"}))
        .await;
    assert_eq!(
        c.ok("get-client-list-by-group", json!({"group": "room"}))
            .await,
        json!([ida])
    );
    c.ok("ungroup", json!({"group": "room"})).await;
    assert_eq!(c.ok("get-group-list", json!({})).await, json!([]));
    c.ok("unbind-uid", json!({"client": ida})).await;
    assert_eq!(
        c.ok("is-uid-online", json!({"uid": "u1"})).await,
        json!(false)
    );

    // Closing: what was queued first arrives, then a clean close.
    c.ok(
        "send-to-client",
        json!({"client": idb, "message": {"text": "bye"}}),
    )
    .await;
    c.ok("close-client", json!({"client": idb})).await;
    assert_eq!(b.other().await, Received::Text("bye".into()));
    assert_eq!(b.closed().await.map(|(code, _)| code), Some(1000));
    // The close frame goes out before the gateway has removed the client.
    eventually("b is offline", async || {
        c.ok("is-online", json!({"client": idb})).await == json!(false)
    })
    .await;
    // a is still served by its app.
    assert_eq!(a.ok("get-client-count", json!({})).await, json!(1));
    // A last message, then the close, in one call.
    let mut d = Probe::connect(&_server.url()).await;
    c.ok(
        "close-client-with",
        json!({"client": d.id, "message": {"text": "last"}}),
    )
    .await;
    assert_eq!(d.other().await, Received::Text("last".into()));
    assert_eq!(d.closed().await.map(|(code, _)| code), Some(1000));

    // Every function the API exposes was called above.
    let doc = http::request(&addr, "GET", "/api/v1/openapi.json", &[], b"").await;
    let exposed: BTreeSet<String> = doc.json()["paths"]
        .as_object()
        .expect("paths")
        .keys()
        .map(|path| path.rsplit('/').next().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(*c.called.lock().expect("lock"), exposed);
}

#[tokio::test]
async fn the_api_refuses_requests_without_a_valid_token() {
    let (_server, addr) = server();
    let path = "/api/v1/apps/probe/get-client-count";
    let no_token = http::request(&addr, "POST", path, &[], b"{}").await;
    let wrong = http::request(
        &addr,
        "POST",
        path,
        &[("Authorization", "Bearer test-token-0123456780")],
        b"{}",
    )
    .await;
    for response in [&no_token, &wrong] {
        assert_eq!(response.status, 401, "{}", response.body);
        assert_eq!(response.json()["err"]["kind"], json!("unauthorized"));
        assert_eq!(response.header("www-authenticate"), Some("Bearer"));
    }
    // Without a token nobody learns which apps exist.
    let unknown_app = http::request(&addr, "POST", "/api/v1/apps/nope/is-online", &[], b"").await;
    assert_eq!(unknown_app.status, 401);
    let right = api_call(&addr, TOKEN, "probe", "get-client-count", &json!({})).await;
    assert_eq!(right.status, 200, "{}", right.body);
}

#[tokio::test]
async fn unknown_apps_and_functions_are_404() {
    let (_server, addr) = server();
    for (app, function) in [
        ("nope", "get-client-count"),
        ("probe", "set-timer"),
        ("probe", "log"),
    ] {
        let response = api_call(&addr, TOKEN, app, function, &json!({})).await;
        assert_eq!(response.status, 404, "{app}/{function}: {}", response.body);
        assert_eq!(response.json()["err"]["kind"], json!("not-found"));
    }
}

#[tokio::test]
async fn a_malformed_body_gives_400_and_changes_nothing() {
    let (server, addr) = server();
    let a = Probe::connect(&server.url()).await;
    let bad: [(&str, Value, &str); 6] = [
        (
            "bind-uid",
            json!({"client": "nope", "uid": "u1"}),
            "invalid-client-id",
        ),
        (
            "bind-uid",
            json!({"client": a.id, "uid": ""}),
            "invalid-name",
        ),
        ("join-group", json!({"client": a.id}), "invalid-argument"),
        (
            "join-group",
            json!({"client": a.id, "group": "g", "colour": 1}),
            "invalid-argument",
        ),
        ("get-client-list", json!({"limit": 0}), "invalid-argument"),
        (
            "send-to-all",
            json!({"message": {"binary": "not base64!"}}),
            "invalid-argument",
        ),
    ];
    for (function, args, kind) in bad {
        assert_eq!(
            err(&addr, function, args.clone()).await,
            (400, kind.to_owned()),
            "{function} {args}"
        );
    }
    let auth = format!("Bearer {TOKEN}");
    let broken = http::request(
        &addr,
        "POST",
        "/api/v1/apps/probe/join-group",
        &[("Authorization", &auth)],
        b"{\"client\": ",
    )
    .await;
    assert_eq!(broken.status, 400, "{}", broken.body);
    assert_eq!(broken.json()["err"]["kind"], json!("invalid-argument"));

    // Nothing changed.
    assert_eq!(ok(&addr, "get-group-list", json!({})).await, json!([]));
    assert_eq!(ok(&addr, "get-uid-list", json!({})).await, json!([]));
    let too_big = "x".repeat(70 * 1024);
    assert_eq!(
        err(
            &addr,
            "set-session",
            json!({"client": a.id, "session": {"k": too_big}})
        )
        .await,
        (413, "too-large".to_owned())
    );
    assert_eq!(
        ok(&addr, "get-session", json!({"client": a.id})).await,
        json!({})
    );
}

#[tokio::test]
async fn the_openapi_document_lists_every_function() {
    let (_server, addr) = server();
    let response: Response = http::request(&addr, "GET", "/api/v1/openapi.json", &[], b"").await;
    assert_eq!(response.status, 200);
    assert_eq!(response.header("content-type"), Some("application/json"));
    let doc = response.json();
    assert_eq!(doc["openapi"], json!("3.1.0"));
    let paths = doc["paths"].as_object().expect("paths");
    assert_eq!(paths.len(), 38, "every WIT api function but timers and log");
    assert!(paths.contains_key("/api/v1/apps/{app}/send-to-group"));
}

#[test]
fn an_api_without_tokens_or_with_an_unreadable_token_file_is_refused_at_start() {
    let dir = tempfile::tempdir().expect("temp dir");
    let listener =
        "[[listener]]\naddr = \"127.0.0.1:0\"\nprotocol = \"websocket\"\napp = \"probe\"\n";
    let cases = [
        ("[api]\naddr = \"127.0.0.1:0\"\n", "api.tokens"),
        (
            "[api]\naddr = \"127.0.0.1:0\"\ntokens = [\"short\"]\n",
            "api.tokens",
        ),
        (
            "[api]\naddr = \"127.0.0.1:0\"\ntoken_file = \"missing.tokens\"\n",
            "missing.tokens",
        ),
    ];
    for (table, needle) in cases {
        let path = dir.path().join("switchboard.toml");
        std::fs::write(&path, format!("{listener}{table}")).expect("config");
        let path = path.display().to_string();
        let (code, stderr) = run_to_exit(&["start", "-c", &path], dir.path());
        assert_eq!(code, Some(2), "{table}: {stderr}");
        assert!(stderr.contains(needle), "{table}: {stderr}");
    }
}

#[tokio::test]
async fn tokens_can_come_from_a_token_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("api.tokens");
    std::fs::write(&file, format!("# backends\n{TOKEN}\n")).expect("token file");
    let table = format!(
        "\n[api]\naddr = \"127.0.0.1:0\"\ntoken_file = {:?}\n",
        file.display().to_string()
    );
    let server = Server::start(&(Setup::one("websocket", "probe").toml() + &table));
    let addr = api_addr(&server);
    assert_eq!(ok(&addr, "get-client-count", json!({})).await, json!(0));
}

#[tokio::test]
async fn in_a_cluster_the_api_of_a_worker_reaches_the_clients_of_every_gateway() {
    use crate::support::nats::NatsServer;
    let nats = NatsServer::start();
    let member = |role: &str, extra: &str| {
        let base = Setup::one("websocket", "probe").toml();
        Server::start(&format!(
            "{base}\n[cluster]\nnats_url = \"{}\"\nrole = \"{role}\"\n{extra}",
            nats.url
        ))
    };
    let gateways = [member("gateway", ""), member("gateway", "")];
    let marks = [gateways[0].mark(), gateways[1].mark()];
    let worker = member("worker", &api_table());
    let addr = api_addr(&worker);
    for (gateway, mark) in gateways.iter().zip(marks) {
        gateway.wait_for_log_since(mark, "serves probe").await;
    }
    let mut a = Probe::connect(&format!("ws://{}/", gateways[0].addr())).await;
    let mut b = Probe::connect(&format!("ws://{}/", gateways[1].addr())).await;
    assert_ne!(a.id[..8], b.id[..8], "two gateways");

    assert_eq!(ok(&addr, "get-client-count", json!({})).await, json!(2));
    let mut both = [a.id.clone(), b.id.clone()];
    both.sort();
    assert_eq!(ok(&addr, "get-client-list", json!({})).await, json!(both));
    ok(&addr, "bind-uid", json!({"client": b.id, "uid": "bob"})).await;
    ok(
        &addr,
        "send-to-uid",
        json!({"uid": "bob", "message": {"text": "to bob"}}),
    )
    .await;
    assert_eq!(b.other().await, Received::Text("to bob".into()));
    ok(
        &addr,
        "send-to-all",
        json!({"message": {"text": "everyone"}}),
    )
    .await;
    assert_eq!(a.other().await, Received::Text("everyone".into()));
    assert_eq!(b.other().await, Received::Text("everyone".into()));
}
