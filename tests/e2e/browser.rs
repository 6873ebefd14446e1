//! The chat page in a real browser: headless Chromium, driven over the DevTools protocol,
//! loads the page from the host, and two users talk; a backend's HTTP API call reaches both.
//!
//! Without Chromium the test is skipped with a loud message, except in CI (`CI` set), where
//! a missing browser is a failure: `.ci/run` installs it.

use serde_json::{Value, json};

use crate::http_api::{TOKEN, api_addr, api_table};
use crate::support::cdp::{Browser, Tab, find_chromium};
use crate::support::http::api_call;
use crate::support::{Listener, Setup, root};

/// A JavaScript string literal.
fn js(text: &str) -> String {
    Value::String(text.to_owned()).to_string()
}

/// Types a line into the chat page and sends it, as a user would.
async fn say(tab: &mut Tab, line: &str) {
    let script = format!(
        "(() => {{ const t = document.getElementById('text'); t.value = {}; \
         document.getElementById('form').requestSubmit(); return true; }})()",
        js(line)
    );
    assert_eq!(tab.eval(&script).await, json!(true));
}

/// Waits until the page's chat log shows `text`.
async fn shows(tab: &mut Tab, text: &str) {
    // The log may not exist yet while the page loads.
    tab.wait_for(&format!(
        "(document.getElementById('log')?.innerText ?? '').includes({})",
        js(text)
    ))
    .await;
}

#[tokio::test]
async fn two_browser_pages_chat_and_see_a_backend_notice() {
    let Some(chromium) = find_chromium() else {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI is set but Chromium is missing: .ci/run installs it (apt-get install chromium)"
        );
        eprintln!(
            "\n!!!!!!!!\n!!! SKIPPED two_browser_pages_chat_and_see_a_backend_notice: no Chromium \
             (install it: apt-get install chromium, or set CHROMIUM=/path/to/chrome)\n!!!!!!!!\n"
        );
        return;
    };
    let web = root().join("plugins/chat/web");
    let listener = Listener::new("websocket", "chat")
        .with(&format!("static_dir = {:?}", web.display().to_string()));
    let server =
        crate::support::Server::start(&(Setup::default().listener(listener).toml() + &api_table()));
    let api = api_addr(&server);
    let page = format!("http://{}/", server.addr());

    let browser = Browser::start(&chromium);
    let mut ann = browser.open(&page).await;
    let mut bob = browser.open(&page).await;
    for tab in [&mut ann, &mut bob] {
        // The page connects to its own origin by itself.
        shows(tab, "connected to ws://").await;
    }

    say(&mut ann, "/nick ann").await;
    shows(&mut ann, "* you are now known as ann").await;
    say(&mut bob, "/nick bob").await;
    shows(&mut bob, "* you are now known as bob").await;
    say(&mut ann, "/join lobby").await;
    shows(&mut ann, "* ann joined lobby").await;
    say(&mut bob, "/join lobby").await;
    shows(&mut ann, "* bob joined lobby").await;

    say(&mut ann, "hello bob").await;
    shows(&mut bob, "ann: hello bob").await;
    say(&mut bob, "hi ann").await;
    shows(&mut ann, "bob: hi ann").await;

    // A backend posts to the room through the HTTP API: both pages show it.
    let notice = "* server: maintenance at 22:00";
    let response = api_call(
        &api,
        TOKEN,
        "chat",
        "send-to-group",
        &json!({"group": "lobby", "message": {"text": notice}}),
    )
    .await;
    assert_eq!(response.status, 200, "{}", response.body);
    shows(&mut ann, notice).await;
    shows(&mut bob, notice).await;

    say(&mut bob, "/leave").await;
    shows(&mut ann, "* bob left lobby").await;

    let png = ann.screenshot().await;
    assert!(png.starts_with(b"\x89PNG"), "a PNG");
    let path = root().join("target/browser-chat.png");
    std::fs::write(&path, png).expect("screenshot written");
    eprintln!("screenshot: {}", path.display());
}
