//! A WebSocket listener with `static_dir` answers plain HTTP GETs with the folder's files, on
//! the same port as its WebSocket clients.

use crate::support::clients::Ws;
use crate::support::http;
use crate::support::{Listener, Setup, root};

#[tokio::test]
async fn a_websocket_listener_serves_its_static_dir_beside_websocket_clients() {
    let base = tempfile::tempdir().expect("dir");
    std::fs::write(base.path().join("secret.txt"), "secret").expect("write");
    let web = base.path().join("web");
    std::fs::create_dir_all(web.join("docs")).expect("mkdir");
    std::fs::write(web.join("index.html"), "<h1>hi</h1>").expect("write");
    std::fs::write(web.join("app.js"), "let x = 1;").expect("write");
    std::fs::write(web.join("docs/index.html"), "docs").expect("write");
    let listener = Listener::new("websocket", "echo")
        .with(&format!("static_dir = {:?}", web.display().to_string()));
    let server = Setup::default()
        .listener(listener)
        .listener(Listener::new("websocket", "echo"))
        .start();
    let addr = server.addrs[0].to_string();

    let index = http::request(&addr, "GET", "/", &[], b"").await;
    assert_eq!((index.status, index.body.as_str()), (200, "<h1>hi</h1>"));
    assert_eq!(
        index.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    let js = http::request(&addr, "GET", "/app.js?v=3", &[], b"").await;
    assert_eq!((js.status, js.body.as_str()), (200, "let x = 1;"));
    assert_eq!(
        js.header("content-type"),
        Some("text/javascript; charset=utf-8")
    );
    let docs = http::request(&addr, "GET", "/docs/", &[], b"").await;
    assert_eq!((docs.status, docs.body.as_str()), (200, "docs"));
    for outside in ["/../secret.txt", "/%2e%2e/secret.txt", "/missing.html"] {
        let response = http::request(&addr, "GET", outside, &[], b"").await;
        assert_eq!(response.status, 404, "{outside}: {}", response.body);
    }

    // The same port still speaks WebSocket.
    let mut client = Ws::connect(&server.url()).await;
    client.send_text("still echoing").await;
    assert_eq!(client.recv_text().await, "still echoing");

    // A listener without static_dir still refuses a plain GET as a bad handshake.
    let plain = http::request(&server.addrs[1].to_string(), "GET", "/", &[], b"").await;
    assert_eq!(plain.status, 400);
}

#[tokio::test]
async fn the_chat_page_is_served_and_connects_to_its_own_origin() {
    let dir = root().join("plugins/chat/web");
    let listener = Listener::new("websocket", "chat")
        .with(&format!("static_dir = {:?}", dir.display().to_string()));
    let server = Setup::default().listener(listener).start();
    let page = http::request(&server.addr().to_string(), "GET", "/", &[], b"").await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("location.host"), "{}", page.body);
}
