//! Start-up: a listener refuses clients at once until its app is loaded, and `/health`
//! says `starting` until every listener serves.

use std::time::Duration;

use tokio_tungstenite::tungstenite;

use crate::support::clients::Ws;
use crate::support::{Server, Setup, deploy_by_rename, http_get, plugin_bytes, plugin_folder};

/// The admin address the server logged.
fn admin_addr(server: &Server) -> String {
    let log = server.log();
    let rest = log
        .split("admin endpoints on http://")
        .nth(1)
        .expect("admin endpoints logged");
    rest.split('/').next().expect("an address").to_owned()
}

#[tokio::test]
async fn a_listener_refuses_clients_at_once_until_its_app_is_loaded() {
    let plugins = plugin_folder(&[]);
    let mut setup = Setup::one("websocket", "echo").worker("require_plugins = false");
    setup.plugins_dir = Some(plugins.path().to_owned());
    let server = Server::start(&(setup.toml() + "\n[admin]\naddr = \"127.0.0.1:0\"\n"));
    let admin = admin_addr(&server);
    let started = server.mark();

    // No plugin yet: refused at once with a 503, not left waiting.
    let refused = tokio::time::timeout(
        Duration::from_secs(5),
        tokio_tungstenite::connect_async(server.url()),
    )
    .await
    .expect("an answer at once");
    match refused {
        Err(tungstenite::Error::Http(response)) => assert_eq!(response.status(), 503),
        other => panic!("expected a 503, got {other:?}"),
    }
    assert_eq!(
        http_get(&admin, "/health").await,
        (503, "starting\n".to_owned())
    );
    server
        .wait_for_log_since(started, "app not loaded (yet): refusing clients")
        .await;

    // The plugin lands: the listener serves, and the server is healthy.
    let landing = server.mark();
    deploy_by_rename(plugins.path(), "echo.wasm", &plugin_bytes("echo"));
    server.wait_for_log_since(landing, "plugin loaded").await;
    let mut client = Ws::connect(&server.url()).await;
    client.send_text("hello").await;
    assert_eq!(client.recv_text().await, "hello");
    assert_eq!(http_get(&admin, "/health").await, (200, "ok\n".to_owned()));
}
