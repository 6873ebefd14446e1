//! The example apps, end to end: chat between WebSocket clients, and the bench protocol.

use crate::support::Setup;
use crate::support::clients::{Lines, Ws};

#[tokio::test]
async fn two_clients_chat_in_a_room() {
    chat_scenario("chat").await;
}

#[tokio::test]
async fn chat_commands_split_on_ascii_whitespace_only() {
    chat_whitespace_scenario_with(Setup::one("websocket", "chat")).await;
}

/// A chat command is split, and a message trimmed, on ASCII whitespace (space, tab, CR, LF,
/// form feed, vertical tab) and nothing else, in every language's chat (issue 16): a Unicode
/// space such as U+00A0 or U+0085 is part of the word.
pub async fn chat_whitespace_scenario_with(setup: Setup) {
    let server = setup.start();
    let mut ann = Ws::connect(&server.url()).await;
    let help =
        "commands: /nick NAME, /join ROOM, /leave [ROOM], /who, /msg NICK TEXT, /history, /help";

    ann.send_text("\t/nick\tann\r\n").await;
    assert_eq!(ann.recv_text().await, "* you are now known as ann");
    ann.send_text("/join\x0blobby\x0c").await;
    assert_eq!(ann.recv_text().await, "* ann joined lobby");
    ann.send_text("/msg ann\x0c hi \x0b").await;
    assert_eq!(ann.recv_text().await, "[private] ann: hi");
    assert_eq!(ann.recv_text().await, "[private to ann] hi");
    for word in ["/who\u{a0}now", "/who\u{85}now", "/who\u{2003}now"] {
        ann.send_text(word).await;
        assert_eq!(
            ann.recv_text().await,
            format!("error: unknown command {word}; {help}")
        );
    }
    // An em space after a nick makes it part of the nick, leaving no text.
    ann.send_text("/msg ann\u{2003}hi").await;
    assert_eq!(ann.recv_text().await, "error: usage: /msg NICK TEXT");
    // Trimmed on ASCII whitespace only: the U+00A0 stays in the line, even alone.
    ann.send_text(" hi\u{a0}\n").await;
    assert_eq!(ann.recv_text().await, "ann: hi\u{a0}");
    ann.send_text("\u{a0}").await;
    assert_eq!(ann.recv_text().await, "ann: \u{a0}");
}

/// Two WebSocket clients chat in a room through the chat plugin `app` (the protocol of
/// plugins/chat/README.md); every language's chat plugin runs this same scenario.
pub async fn chat_scenario(app: &str) {
    chat_scenario_with(Setup::one("websocket", app)).await;
}

/// The chat scenario on a server of this setup, whose first listener is the chat app's
/// WebSocket listener.
pub async fn chat_scenario_with(setup: Setup) {
    let server = setup.start();
    let mut ann = Ws::connect(&server.url()).await;
    let mut bob = Ws::connect(&server.url()).await;

    ann.send_text("/nick ann").await;
    assert_eq!(ann.recv_text().await, "* you are now known as ann");
    bob.send_text("/nick bob").await;
    assert_eq!(bob.recv_text().await, "* you are now known as bob");
    ann.send_text("/nick bob").await;
    assert_eq!(ann.recv_text().await, "error: nick bob is taken");

    ann.send_text("/join lobby").await;
    assert_eq!(ann.recv_text().await, "* ann joined lobby");
    bob.send_text("/join lobby").await;
    assert_eq!(bob.recv_text().await, "* bob joined lobby");
    assert_eq!(ann.recv_text().await, "* bob joined lobby");
    // Answered after bob's join has ended (a client's events run in order): the join's look
    // at the room's history cannot meet ann's line below, which may run on another instance.
    bob.send_text("/who").await;
    assert_eq!(bob.recv_text().await, "* in lobby (2): ann, bob");

    ann.send_text("hello bob").await;
    assert_eq!(ann.recv_text().await, "ann: hello bob");
    assert_eq!(bob.recv_text().await, "ann: hello bob");

    bob.send_text("/msg ann psst").await;
    assert_eq!(bob.recv_text().await, "[private to ann] psst");
    assert_eq!(ann.recv_text().await, "[private] bob: psst");
    bob.send_text("/msg nobody hi").await;
    assert_eq!(bob.recv_text().await, "error: no such nick nobody");

    drop(bob);
    assert_eq!(ann.recv_text().await, "* bob left lobby (disconnected)");
    ann.send_text("/leave").await;
    assert_eq!(ann.recv_text().await, "* ann left lobby");
    ann.send_text("anyone?").await;
    assert_eq!(
        ann.recv_text().await,
        "error: you are not in a room; /join ROOM first"
    );
}

#[tokio::test]
async fn bench_protocol() {
    let server = Setup::default()
        .listener(crate::support::Listener::new("websocket", "bench"))
        .listener(crate::support::Listener::new("text", "bench"))
        .start();
    let url = format!("ws://{}/", server.addrs[0]);
    let mut a = Ws::connect(&url).await;
    let mut b = Ws::connect(&url).await;
    let mut t = Lines::connect(server.addrs[1]).await;

    a.send_text("echo:hi there").await;
    assert_eq!(a.recv_text().await, "echo:hi there");

    // One app, two listeners: `all` reaches clients of both. (Sent after the echo by the
    // same client, it would reach b after the echo had the echo gone to b too.)
    a.send_text("all:everyone").await;
    assert_eq!(a.recv_text().await, "everyone");
    assert_eq!(b.recv_text().await, "everyone");
    assert_eq!(t.recv_text().await, "everyone");

    b.send_text("join:g1").await;
    t.send(b"join:g1").await;
    // join has no reply; an echo after it proves it was handled (one client, in order).
    t.send(b"echo:x").await;
    assert_eq!(t.recv_text().await, "echo:x");
    b.send_text("echo:y").await;
    assert_eq!(b.recv_text().await, "echo:y");
    a.send_text("group:g1:a:b:c").await;
    assert_eq!(b.recv_text().await, "a:b:c");
    assert_eq!(t.recv_text().await, "a:b:c");
    // a is not in g1: its next message is the echo it asks for after the group send.
    a.send_text("echo:fence").await;
    assert_eq!(a.recv_text().await, "echo:fence");
}
