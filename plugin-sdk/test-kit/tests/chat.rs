//! The chat example (plugins/chat) driven through the test kit: join, talk, leave, with the
//! uids, groups and sessions the plugin keeps on the (simulated) gateway inspected.

use std::path::PathBuf;

use switchboard_test::TestKit;

/// The chat component, built by `cargo xtask plugins chat` unless `cargo xtask test` built
/// every plugin already.
fn chat_wasm() -> PathBuf {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    if std::env::var_os("SWITCHBOARD_PLUGINS_BUILT").is_none() {
        let status = std::process::Command::new(env!("CARGO"))
            .args(["xtask", "plugins", "chat"])
            .current_dir(&root)
            .status()
            .expect("cargo runs");
        assert!(status.success(), "cargo xtask plugins chat failed");
    }
    root.join("target/plugins/chat.wasm")
}

#[tokio::test]
async fn the_chat_example_joins_talks_and_leaves() {
    let kit = TestKit::load(chat_wasm()).await.expect("chat loads");
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
