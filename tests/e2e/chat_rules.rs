//! Rules every chat example keeps alike (plugins/chat/README.md, issue 16): a command is
//! split on ASCII whitespace only (space, tab, LF, VT, FF, CR), and a line is trimmed of it
//! only, so a no-break space or an em space is part of a word.

use crate::support::Setup;
use crate::support::clients::Ws;

/// The help text every chat appends to an unknown command.
const HELP: &str =
    "commands: /nick NAME, /join ROOM, /leave [ROOM], /who, /msg NICK TEXT, /history, /help";

/// The whitespace rules against the chat of `setup`'s first listener.
pub async fn commands_split_on_ascii_whitespace_only(setup: Setup) {
    let server = setup.start();
    let mut ann = Ws::connect(&server.url()).await;

    // Tab, vertical tab and form feed separate like a space; CR and LF are trimmed.
    ann.send_text("/nick\tann").await;
    assert_eq!(ann.recv_text().await, "* you are now known as ann");
    ann.send_text("/join\u{b}lobby\u{c}").await;
    assert_eq!(ann.recv_text().await, "* ann joined lobby");
    ann.send_text("\r\n hello\t\r\n").await;
    assert_eq!(ann.recv_text().await, "ann: hello");

    // A no-break space does not separate: "/nick\u{a0}bob" is one unknown command…
    ann.send_text("/nick\u{a0}bob").await;
    assert_eq!(
        ann.recv_text().await,
        format!("error: unknown command /nick\u{a0}bob; {HELP}")
    );
    // …and an em space after a nick makes it part of the nick, leaving no text.
    ann.send_text("/msg ann\u{2003}hi").await;
    assert_eq!(ann.recv_text().await, "error: usage: /msg NICK TEXT");
    // Nor is one trimmed: it is the message.
    ann.send_text("\u{a0}").await;
    assert_eq!(ann.recv_text().await, "ann: \u{a0}");
}

#[tokio::test]
async fn the_go_chat_splits_commands_on_ascii_whitespace_only() {
    commands_split_on_ascii_whitespace_only(crate::go_sdk::cached(Setup::one(
        "websocket",
        "chat-go",
    )))
    .await;
}
