//! The echo and chat plugins written in JavaScript, Python and Go pass the same end-to-end
//! scenarios as their Rust twins: echo keeps text and binary byte-exact and one client's
//! order, chat runs the scenario of `apps::two_clients_chat_in_a_room` unchanged.

use crate::apps::{chat_scenario_with, chat_whitespace_scenario_with};
use crate::support::clients::{Frames, Received, Ws};
use crate::support::{Setup, cached};

/// Text and binary WebSocket messages, an empty one, bytes that are not UTF-8 on the frame
/// protocol, and 8 clients × 200 numbered messages coming back in order.
async fn echo_scenario(app: &str) {
    let server =
        cached(Setup::one("websocket", app).listener(crate::support::Listener::new("frame", app)))
            .start();
    let url = format!("ws://{}/", server.addrs[0]);
    let mut ws = Ws::connect(&url).await;
    ws.send_text("héllo  \r").await;
    assert_eq!(ws.recv().await, Received::Text("héllo  \r".into()), "{app}");
    ws.send_binary(&[0, 159, 255, 10]).await;
    assert_eq!(
        ws.recv().await,
        Received::Binary(vec![0, 159, 255, 10]),
        "{app}"
    );
    ws.send_text("").await;
    assert_eq!(ws.recv().await, Received::Text(String::new()), "{app}");

    let mut frames = Frames::connect(server.addrs[1]).await;
    frames.send(b"\xff\x00abc").await;
    assert_eq!(frames.recv().await.expect("frame"), b"\xff\x00abc", "{app}");
    let big: Vec<u8> = (0..64 * 1024).map(|i| (i % 251) as u8).collect();
    frames.send(&big).await;
    assert_eq!(frames.recv().await.expect("frame"), big, "{app}");

    let mut clients = Vec::new();
    for _ in 0..8 {
        clients.push(Ws::connect(&url).await);
    }
    for c in &mut clients {
        for i in 0..200 {
            c.send_text(&i.to_string()).await;
        }
    }
    for c in &mut clients {
        for i in 0..200 {
            assert_eq!(c.recv_text().await, i.to_string(), "{app}");
        }
    }
}

#[tokio::test]
async fn echo_js() {
    echo_scenario("echo-js").await;
}

#[tokio::test]
async fn chat_js() {
    chat_scenario_with(cached(Setup::one("websocket", "chat-js"))).await;
}

#[tokio::test]
async fn chat_js_commands_split_on_ascii_whitespace_only() {
    chat_whitespace_scenario_with(cached(Setup::one("websocket", "chat-js"))).await;
}

#[tokio::test]
async fn chat_py_commands_split_on_ascii_whitespace_only() {
    chat_whitespace_scenario_with(cached(Setup::one("websocket", "chat-py"))).await;
}

#[tokio::test]
async fn chat_go_commands_split_on_ascii_whitespace_only() {
    chat_whitespace_scenario_with(cached(Setup::one("websocket", "chat-go"))).await;
}

#[tokio::test]
async fn echo_py() {
    echo_scenario("echo-py").await;
}

#[tokio::test]
async fn chat_py() {
    chat_scenario_with(cached(Setup::one("websocket", "chat-py"))).await;
}

#[tokio::test]
async fn echo_go() {
    echo_scenario("echo-go").await;
}

#[tokio::test]
async fn chat_go() {
    chat_scenario_with(cached(Setup::one("websocket", "chat-go"))).await;
}

#[tokio::test]
async fn an_async_handler_under_quickjs_is_refused_with_a_clear_message() {
    let plugins = tempfile::tempdir().expect("temp dir");
    std::fs::write(
        plugins.path().join("async-js.wasm"),
        crate::support::fixture_bytes("async-js"),
    )
    .expect("written");
    let mut setup = cached(Setup::one("websocket", "async-js"));
    setup.plugins_dir = Some(plugins.path().to_owned());
    let server = crate::support::Server::start(&setup.toml());
    let mut ws = Ws::connect(&server.url()).await;

    ws.send_text("fetch").await;
    let answer = ws.recv_text().await;
    assert!(
        answer.contains("fetch needs the StarlingMonkey engine"),
        "{answer}"
    );

    let mark = server.mark();
    ws.send_text("async").await;
    server
        .wait_for_log_since(
            mark,
            "onMessage returned a Promise, which the QuickJS engine cannot wait for",
        )
        .await;
    server.wait_for_log_since(mark, "instance replaced").await;
    // Nothing of the handler ran after its first await; the client stays connected.
    ws.send_text("fetch").await;
    assert!(ws.recv_text().await.contains("StarlingMonkey"));
}

#[tokio::test]
async fn an_async_handler_in_python_is_refused_at_its_first_call_with_a_clear_message() {
    let plugins = tempfile::tempdir().expect("temp dir");
    std::fs::write(
        plugins.path().join("async-py.wasm"),
        crate::support::fixture_bytes("async-py"),
    )
    .expect("written");
    let mut setup = cached(Setup::one("websocket", "async-py"));
    setup.plugins_dir = Some(plugins.path().to_owned());
    let server = crate::support::Server::start(&setup.toml());
    let mut ws = Ws::connect(&server.url()).await;
    assert_eq!(ws.recv_text().await, "connected");

    let mark = server.mark();
    ws.send_text("hello").await;
    server
        .wait_for_log_since(
            mark,
            "on_message is a coroutine function (async def), which a Switchboard handler cannot be",
        )
        .await;
    server.wait_for_log_since(mark, "instance replaced").await;
    // None of the handler ran, and the client stays connected: the next event is refused too.
    let mark = server.mark();
    ws.send_text("again").await;
    server
        .wait_for_log_since(mark, "on_message is a coroutine function")
        .await;
    assert_eq!(
        ws.try_recv(std::time::Duration::from_millis(200)).await,
        None,
        "the async handler must not have run"
    );
}

#[tokio::test]
async fn python_log_with_an_unknown_level_raises_a_value_error_naming_the_valid_ones() {
    let server = cached(Setup::one("websocket", "probe-py")).start();
    let mut probe = crate::support::probe::Probe::connect(&server.url()).await;
    // probe-py hands the level to `switchboard.log` unchecked and answers its ValueError.
    let (kind, detail) = probe
        .call("log", serde_json::json!({"level": "loud", "message": "x"}))
        .await
        .expect_err("an unknown level is refused");
    assert_eq!(kind, "bad-request");
    assert_eq!(
        detail,
        "unknown log level 'loud'; valid: trace, debug, info, warn, error"
    );
}

/// The `skipped` count of `app` in the server's status.
fn skipped(server: &crate::support::Server, app: &str) -> u64 {
    let status = server.status_json();
    let apps = status["apps"].as_array().expect("apps");
    let app = apps.iter().find(|a| a["name"] == app).expect("app listed");
    app["skipped"].as_u64().expect("skipped")
}

/// Every SDK's default client-event handlers tell the host they do nothing, and the host stops
/// calling them: the echo apps implement `on-message` only, so once the first client has met
/// the defaults, a client's connect, handshake and close never reach the plugin, while its
/// messages still do.
#[tokio::test]
async fn handlers_left_to_the_sdk_are_called_once_then_skipped() {
    for app in ["echo", "echo-go", "echo-js", "echo-py"] {
        let server = Setup::one("websocket", app).worker("instances = 1").start();
        for round in 0..3 {
            let mut ws = Ws::connect(&server.url()).await;
            ws.send_text("ping").await;
            assert_eq!(ws.recv_text().await, "ping", "{app}, client {round}");
        }
        for handler in ["on-connect", "on-websocket-connect", "on-close"] {
            let line = format!("{handler} is left to the SDK's default");
            server.wait_for_count(&line, 1).await;
        }
        // The first client's three events reported the defaults; the next two clients' are
        // skipped, three each, even those queued before the report.
        crate::support::eventually(&format!("{app}: 6 events skipped"), async || {
            skipped(&server, app) == 6
        })
        .await;
        let log = server.log();
        assert!(!log.contains("on-message is left"), "{app}: {log}");
        for handler in ["on-connect", "on-websocket-connect", "on-close"] {
            let line = format!("{handler} is left to the SDK's default");
            assert_eq!(log.matches(&line).count(), 1, "{app}: once per version");
        }
    }
}

/// What a version left to the defaults is its own: a new version of the app is asked again.
/// `probe` implements `on-websocket-connect`, which echo leaves out; swapped in after echo, its
/// verdict runs for every handshake (it greets the client before the 101).
#[tokio::test]
async fn a_new_version_is_asked_afresh_which_handlers_it_leaves_out() {
    let plugins = tempfile::tempdir().expect("temp dir");
    let file = plugins.path().join("swapped.wasm");
    std::fs::write(&file, crate::support::plugin_bytes("echo")).expect("echo");
    let mut setup = Setup::one("websocket", "swapped").worker("instances = 1");
    setup.plugins_dir = Some(plugins.path().to_owned());
    let server = setup.start();
    for _ in 0..2 {
        let mut ws = Ws::connect(&server.url()).await;
        ws.send_text("ping").await;
        assert_eq!(ws.recv_text().await, "ping");
    }
    server
        .wait_for_count("on-websocket-connect is left to the SDK's default", 1)
        .await;

    let mark = server.mark();
    crate::support::deploy_by_rename(
        plugins.path(),
        "swapped.wasm",
        &crate::support::plugin_bytes("probe"),
    );
    server
        .wait_for_log_since(mark, "swapping in a new version")
        .await;
    let greeted = format!("{}?greet=hello", server.url());
    // The swap is logged as it starts: until it is done, echo answers without a greeting.
    crate::support::eventually("probe's verdict greets", async || {
        let mut ws = Ws::connect(&greeted).await;
        let first = ws.try_recv(std::time::Duration::from_millis(300)).await;
        first == Some(Received::Text("hello".into()))
    })
    .await;
    for _ in 0..3 {
        let mut ws = Ws::connect(&greeted).await;
        assert_eq!(ws.recv_text().await, "hello");
    }
    let since = server.log_since(mark);
    assert!(!since.contains("on-websocket-connect is left"), "{since}");
}
