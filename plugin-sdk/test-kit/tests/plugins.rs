//! The repository's plugins driven through the test kit: the chat example through join, talk
//! and leave, with the uids, groups and sessions it keeps on the (simulated) gateway inspected;
//! the probe (plugins/probe) for timers on the kit's clock, binary messages and handshakes.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use switchboard_test::{Received, TestKit, Upgrade};

/// The component of `plugins/NAME`, built by `cargo xtask plugins NAME` (once per run, one
/// build at a time) unless `cargo xtask test` built every plugin already.
fn built(name: &str) -> PathBuf {
    static BUILT: Mutex<BTreeSet<String>> = Mutex::new(BTreeSet::new());
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut built = BUILT.lock().unwrap_or_else(PoisonError::into_inner);
    if std::env::var_os("SWITCHBOARD_PLUGINS_BUILT").is_none() && built.insert(name.to_owned()) {
        let status = std::process::Command::new(env!("CARGO"))
            .args(["xtask", "plugins", name])
            .current_dir(&root)
            .status()
            .expect("cargo runs");
        assert!(status.success(), "cargo xtask plugins {name} failed");
    }
    root.join(format!("target/plugins/{name}.wasm"))
}

#[tokio::test]
async fn the_chat_example_joins_talks_and_leaves() {
    let kit = TestKit::load(built("chat")).await.expect("chat loads");
    let ann = kit.connect().await;
    let bob = kit.connect().await;
    assert_eq!(kit.client_count(), 2);

    ann.send("/nick ann").await;
    assert_eq!(
        ann.recv().await.as_deref(),
        Some("* you are now known as ann")
    );
    bob.send("/nick bob").await;
    assert_eq!(
        bob.recv().await.as_deref(),
        Some("* you are now known as bob")
    );

    ann.send("/join lobby").await;
    assert_eq!(ann.recv().await.as_deref(), Some("* ann joined lobby"));
    bob.send("/join lobby").await;
    assert_eq!(bob.recv().await.as_deref(), Some("* bob joined lobby"));
    assert_eq!(ann.recv().await.as_deref(), Some("* bob joined lobby"));
    // ann's /nick ran before its /join, and ann got bob's message to the group: both done.
    assert_eq!(kit.uid(&ann).as_deref(), Some("ann"));
    assert_eq!(
        kit.session(&ann).get("nick").map(String::as_str),
        Some("ann")
    );
    assert_eq!(kit.groups(&ann), ["lobby"]);

    ann.send("hello bob").await;
    assert_eq!(ann.recv().await.as_deref(), Some("ann: hello bob"));
    assert_eq!(bob.recv().await.as_deref(), Some("ann: hello bob"));

    bob.close().await;
    assert_eq!(
        ann.recv().await.as_deref(),
        Some("* bob left lobby (disconnected)")
    );
    assert_eq!(kit.client_count(), 1);
    ann.send("/leave").await;
    assert_eq!(ann.recv().await.as_deref(), Some("* ann left lobby"));
    // The plugin may still be applying what it did after that send (leaving the group); the
    // reply to ann's next message comes after all of it, since one client's events run in order.
    ann.send("anyone?").await;
    assert_eq!(
        ann.recv().await.as_deref(),
        Some("error: you are not in a room; /join ROOM first")
    );
    assert!(kit.groups(&ann).is_empty());
    assert!(ann.drain().is_empty(), "nothing else was sent");
    kit.shutdown().await;
}

#[tokio::test]
async fn a_file_the_server_would_refuse_is_refused_with_its_reason() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("broken.wasm");
    std::fs::write(&path, b"not wasm").expect("write");
    let Err(e) = TestKit::load(&path).await else {
        panic!("garbage loaded");
    };
    assert!(
        e.to_string()
            .contains("is not a valid WebAssembly component"),
        "{e}"
    );
}

#[tokio::test]
async fn timers_fire_when_the_kit_advances_its_clock() {
    let kit = TestKit::load(built("probe")).await.expect("probe loads");
    let watcher = kit.connect().await;
    // The probe reports each on-timer to the group `observers`.
    let join = format!(
        r#"{{"op": "join-group", "client": "{}", "group": "observers"}}"#,
        watcher.id()
    );
    watcher.send(&join).await;
    assert_eq!(
        watcher.recv().await.as_deref(),
        Some(r#"{"id":null,"ok":null}"#)
    );
    watcher
        .send(r#"{"op": "set-timer", "after_ms": 3600000, "repeat": true}"#)
        .await;
    let reply = watcher.recv().await.expect("the timer's id");
    let timer = reply
        .trim_start_matches(r#"{"id":null,"ok":"#)
        .trim_end_matches('}')
        .to_owned();
    let fired = format!(r#"{{"event":"timer","timer":{timer}}}"#);

    // An hour of a test's time costs nothing: nothing is due a millisecond early…
    assert_eq!(kit.advance(Duration::from_millis(3_599_999)), 0);
    // …and the timer fires on the hour, and on the next.
    assert_eq!(kit.advance(Duration::from_millis(1)), 1);
    assert_eq!(watcher.recv().await, Some(fired.clone()));
    assert_eq!(kit.advance(Duration::from_secs(3600)), 1);
    assert_eq!(watcher.recv().await, Some(fired));

    let clear = format!(r#"{{"op": "clear-timer", "timer": {timer}}}"#);
    watcher.send(&clear).await;
    assert_eq!(
        watcher.recv().await.as_deref(),
        Some(r#"{"id":null,"ok":null}"#)
    );
    assert_eq!(kit.advance(Duration::from_secs(86_400)), 0, "cleared");
    assert!(watcher.drain().is_empty());
    kit.shutdown().await;
}

#[tokio::test]
async fn binary_messages_keep_their_kind() {
    let kit = TestKit::load(built("probe")).await.expect("probe loads");
    let client = kit.connect().await;
    // The probe echoes what is not a request, binary as binary.
    client.send_binary(&[0, 159, 146, 150, 255]).await;
    assert_eq!(
        client.recv_message().await,
        Some(Received::Binary(vec![0, 159, 146, 150, 255]))
    );
    client.send("plain").await;
    assert_eq!(
        client.recv_message().await,
        Some(Received::Text("plain".into()))
    );
    kit.shutdown().await;
}

#[tokio::test]
async fn a_handshake_the_plugin_rejects_leaves_no_client() {
    let kit = TestKit::load(built("probe")).await.expect("probe loads");
    let refused = kit
        .connect_with(Upgrade::new("/chat?reject=401").header("Origin", "https://example.com"))
        .await
        .err()
        .expect("the probe rejects ?reject=401");
    assert_eq!(refused.status, 401);
    assert_eq!(refused.reason, "rejected by probe");
    assert_eq!(kit.client_count(), 0, "a refused client is taken back");
    let accepted = kit.connect_with(Upgrade::new("/chat?room=1")).await;
    assert!(accepted.is_ok());
    assert_eq!(kit.client_count(), 1);
    kit.shutdown().await;
}
