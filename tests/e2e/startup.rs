//! Start-up: a listener refuses clients at once until its app is loaded, `/health` says
//! `starting` until every listener serves, and folders others may write are refused.

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

/// The run folder (pid file, control socket) and the compile cache (native code the host
/// maps) must be this user's alone: a folder others may write is refused with what to do.
#[test]
fn a_run_folder_or_cache_others_may_write_refuses_to_start() {
    use std::os::unix::fs::PermissionsExt;
    let open_to_all = |dir: &std::path::Path| {
        std::fs::create_dir_all(dir).expect("folder");
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o777)).expect("chmod");
    };
    let start = |setup: Setup, dir: &std::path::Path| {
        let path = dir.join("switchboard.toml");
        std::fs::write(&path, setup.toml()).expect("config");
        crate::support::run_to_exit(&["start", "-c", &path.display().to_string()], dir)
    };

    let dir = tempfile::tempdir().expect("temp dir");
    open_to_all(&dir.path().join("run"));
    let (code, stderr) = start(Setup::one("websocket", "echo"), dir.path());
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("run folder"), "{stderr}");
    assert!(
        stderr.contains("writable by group or others (mode 777)"),
        "{stderr}"
    );
    assert!(stderr.contains("chmod go-w"), "{stderr}");

    let dir = tempfile::tempdir().expect("temp dir");
    let cache = dir.path().join("cache");
    open_to_all(&cache);
    let setup = Setup::one("websocket", "echo")
        .worker(&format!("cache_dir = {:?}", cache.display().to_string()));
    let (code, stderr) = start(setup, dir.path());
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("cache_dir"), "{stderr}");
    assert!(
        stderr.contains("writable by group or others (mode 777)"),
        "{stderr}"
    );
    // Nothing was left running or claimed.
    assert!(!dir.path().join("run/switchboard.pid").exists());
}
