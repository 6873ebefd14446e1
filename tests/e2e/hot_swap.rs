//! Hot swap: a new `.wasm` in the plugin folder takes over live; nothing is dropped, lost,
//! duplicated or reordered, and a bad file never takes over.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::support::clients::{Received, Ws};
use crate::support::load::{Load, until_echo_answers};
use crate::support::probe::Probe;
use crate::support::{Setup, WAIT, deploy_by_rename, fixture_bytes, plugin_bytes, plugin_folder};

async fn swap_under_load(in_place: bool) {
    let plugins = plugin_folder(&["bench"]);
    let mut setup = Setup::one("websocket", "bench");
    setup.plugins_dir = Some(plugins.path().to_owned());
    let server = setup.start();
    let load = Load::start(&server.url(), 100).await;
    let mut checker = Ws::connect(&server.url()).await;
    // Every client has traffic in flight on the old version when the file lands.
    load.advanced_since(&vec![0; 100]).await;

    let mark = server.mark();
    let echo = plugin_bytes("echo");
    if in_place {
        std::fs::write(plugins.path().join("bench.wasm"), &echo).expect("copy in place");
    } else {
        deploy_by_rename(plugins.path(), "bench.wasm", &echo);
    }
    until_echo_answers(&mut checker).await;
    // Every client keeps being served by the new version.
    load.advanced_since(&load.progress()).await;
    load.finish().await;

    let since = server.log_since(mark);
    assert_eq!(
        since.matches("swapping in a new version").count(),
        1,
        "one swap: {since}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn swap_by_rename_under_load_loses_nothing() {
    swap_under_load(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn swap_by_in_place_copy_under_load_loses_nothing() {
    swap_under_load(true).await;
}

#[tokio::test]
async fn bad_files_never_take_over() {
    let plugins = plugin_folder(&["probe"]);
    let mut setup = Setup::one("websocket", "probe");
    setup.plugins_dir = Some(plugins.path().to_owned());
    let server = setup.start();
    let mut client = Probe::connect(&server.url()).await;
    let id = client.id.clone();

    let probe = plugin_bytes("probe");
    let empty_component = b"\0asm\x0d\0\x01\0".to_vec();
    let core_module = b"\0asm\x01\0\0\0".to_vec();
    let truncated = probe[..probe.len() / 2].to_vec();
    let cases: [(&str, Vec<u8>, &str); 4] = [
        (
            "garbage",
            b"this is not wasm".to_vec(),
            "not a valid WebAssembly component",
        ),
        ("truncated", truncated, "not a valid WebAssembly component"),
        (
            "core module",
            core_module,
            "not a valid WebAssembly component",
        ),
        (
            "another world",
            empty_component,
            "does not match the switchboard:plugin world",
        ),
    ];
    for (what, bytes, reason) in cases {
        // Three cases log the same reason: each must find its own line, or the next file
        // would land before the watcher saw this one.
        let mark = server.mark();
        deploy_by_rename(plugins.path(), "probe.wasm", &bytes);
        let line = server.wait_for_log_since(mark, reason).await;
        assert!(!line.text.contains("swapping in"), "{what}: {}", line.text);
        assert_eq!(
            client.ok("is-online", json!({"client": id})).await,
            json!(true),
            "after {what}"
        );
    }

    // A version whose on-worker-start traps fails its canary, and what that start asked for
    // (a greeting to every client) never reached a client: the canary runs on a stage.
    let mark = server.mark();
    deploy_by_rename(plugins.path(), "probe.wasm", &fixture_bytes("faulty"));
    server
        .wait_for_log_since(mark, "failed its start check")
        .await;
    assert_eq!(client.ok("get-client-count", json!({})).await, json!(1));
    assert!(!server.log().contains("swapping in"), "{}", server.log());
    // The greeting would have been queued before the refusal was logged, so before a fence.
    client.nothing_so_far().await;
}

#[tokio::test]
async fn a_failing_version_is_rolled_back_automatically() {
    let plugins = plugin_folder(&["echo"]);
    let mut setup = Setup::one("websocket", "app").worker("rollback_window = 20");
    setup.plugins_dir = Some(plugins.path().to_owned());
    std::fs::rename(
        plugins.path().join("echo.wasm"),
        plugins.path().join("app.wasm"),
    )
    .expect("rename");
    let server = setup.start();
    let mut ws = Ws::connect(&server.url()).await;
    let trap = json!({"op": "trap"}).to_string();
    ws.send_text(&trap).await;
    assert_eq!(ws.recv_text().await, trap, "echo runs first");

    // The probe traps on every `trap` request: more than half of its first 20 events fail.
    let mark = server.mark();
    deploy_by_rename(plugins.path(), "app.wasm", &plugin_bytes("probe"));
    server
        .wait_for_log_since(mark, "swapping in a new version")
        .await;
    // Rounds of three traps and a fence, a request that both versions answer, differently:
    // the probe with a JSON reply, echo with the request itself. One client's messages are
    // handled in order, so the fence's answer says who handled everything before it, with no
    // timing involved.
    let mut rounds = 0;
    loop {
        rounds += 1;
        assert!(rounds <= 100, "never rolled back:\n{}", server.log());
        for _ in 0..3 {
            ws.send_text(&trap).await;
        }
        let fence = json!({"id": format!("fence {rounds}"), "op": "whoami"}).to_string();
        ws.send_text(&fence).await;
        let echoed = loop {
            match ws.recv().await {
                // Echo answering the traps that reached it after the rollback.
                Received::Text(text) if text == trap => {}
                Received::Text(text) if text == fence => break true,
                Received::Text(text) if text.contains(&format!("\"fence {rounds}\"")) => {
                    break false;
                }
                other => panic!("expected the answer to {fence}, got {other:?}"),
            }
        };
        if echoed {
            break;
        }
    }
    // Logged before echo answered, but read from the server's stderr on another thread.
    server.wait_for_log_since(mark, "ROLLBACK").await;
    // Nothing else is on its way, and the client is still connected.
    ws.send_text("still connected").await;
    assert_eq!(ws.recv_text().await, "still connected");
}

#[tokio::test]
async fn a_new_app_file_serves_its_listener_without_restart() {
    let plugins = plugin_folder(&["echo"]);
    let mut setup = Setup::one("websocket", "late").worker("require_plugins = false");
    setup.plugins_dir = Some(plugins.path().to_owned());
    let server = setup.start();
    let refused = tokio_tungstenite::connect_async(server.url()).await;
    assert!(refused.is_err(), "no app yet");

    deploy_by_rename(plugins.path(), "late.wasm", &plugin_bytes("echo"));
    let started = Instant::now();
    let mut ws = loop {
        if let Ok((stream, _)) = tokio_tungstenite::connect_async(server.url()).await {
            break Ws::from(stream);
        }
        assert!(started.elapsed() < WAIT, "never served");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    ws.send_text("hi").await;
    assert_eq!(ws.recv_text().await, "hi");

    // Removing the file leaves the app running.
    let mark = server.mark();
    std::fs::remove_file(plugins.path().join("late.wasm")).expect("remove");
    server.wait_for_log_since(mark, "plugin file removed").await;
    ws.send_text("still").await;
    assert_eq!(ws.recv_text().await, "still");
}

#[tokio::test]
async fn a_restart_loads_compiled_plugins_from_the_cache() {
    let cache = tempfile::tempdir().expect("temp dir");
    let setup = Setup::one("websocket", "echo").worker(&format!(
        "cache_dir = {:?}",
        cache.path().display().to_string()
    ));
    let mut first = setup.start();
    assert!(first.log().contains("cached=false"), "{}", first.log());
    first.terminate();
    let second = setup.start();
    let log = second.log();
    assert!(
        log.contains("cached=true") && !log.contains("cached=false"),
        "{log}"
    );
    let mut ws = Ws::connect(&second.url()).await;
    ws.send_text("x").await;
    assert_eq!(ws.recv_text().await, "x");
}
