//! The command line: bad input gets one clear line and exit code 2; a stop is clean.

use std::time::Duration;

use serde_json::json;

use crate::support::probe::Probe;
use crate::support::{Setup, plugins_dir, run_to_exit};

fn start_with(config: &str) -> (Option<i32>, String) {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("switchboard.toml"), config).expect("write");
    run_to_exit(&["start"], dir.path())
}

fn listener(addr: &str, app: &str) -> String {
    format!(
        "[[listener]]\naddr = \"{addr}\"\nprotocol = \"websocket\"\napp = \"{app}\"\n\
         [worker]\nplugins_dir = {:?}\n",
        plugins_dir().display().to_string()
    )
}

#[test]
fn bad_config_names_the_key_and_exits_2() {
    let (code, err) = start_with(&format!("{}colour = 1\n", listener("127.0.0.1:0", "echo")));
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("colour"), "{err}");

    let (code, err) = start_with(&listener("127.0.0.1:0", "echo").replace("websocket", "smoke"));
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("smoke"), "{err}");

    let (code, err) = start_with("[[listener]]\naddr = 5\n");
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("addr"), "{err}");

    let (code, err) = run_to_exit(
        &["start", "-c", "/nonexistent/x.toml"],
        &std::env::temp_dir(),
    );
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("/nonexistent/x.toml"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn a_missing_plugin_or_a_port_in_use_exits_2() {
    let (code, err) = start_with(&listener("127.0.0.1:0", "nosuchapp"));
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("nosuchapp.wasm"), "{err}");

    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = taken.local_addr().expect("addr").to_string();
    let (code, err) = start_with(&listener(&addr, "echo"));
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains(&addr), "{err}");
}

#[test]
fn a_plugin_folder_with_garbage_is_refused_with_the_file_named() {
    let plugins = tempfile::tempdir().expect("temp dir");
    std::fs::copy(
        plugins_dir().join("echo.wasm"),
        plugins.path().join("echo.wasm"),
    )
    .expect("copy");
    std::fs::write(plugins.path().join("junk.wasm"), b"not wasm at all").expect("write");
    let config = listener("127.0.0.1:0", "echo").replace(
        &format!("{:?}", plugins_dir().display().to_string()),
        &format!("{:?}", plugins.path().display().to_string()),
    );
    let (code, err) = start_with(&config);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("junk.wasm"), "{err}");
}

#[tokio::test]
async fn sigterm_closes_clients_cleanly_and_stops_instances() {
    let mut server = Setup::one("websocket", "probe").start();
    let mut a = Probe::connect(&server.url()).await;
    let mut b = Probe::connect(&server.url()).await;
    a.ok("whoami", json!({})).await;
    b.ok("whoami", json!({})).await;
    // Only the canary, which tried the version before it went live, has stopped so far.
    assert_eq!(server.log().matches("stopping").count(), 1);
    let waiting = tokio::spawn(async move { (a.closed().await, b.closed().await) });
    let (status, server) = tokio::task::spawn_blocking(move || (server.terminate(), server))
        .await
        .expect("task");
    let (a, b) = tokio::time::timeout(Duration::from_secs(20), waiting)
        .await
        .expect("clients closed in time")
        .expect("task");
    assert!(status.success(), "{status:?}");
    assert_eq!(a.map(|(code, _)| code), Some(1001));
    assert_eq!(b.map(|(code, _)| code), Some(1001));
    let log = server.log();
    assert_eq!(log.matches("probe: worker 0 stopping").count(), 2, "{log}");
    assert_eq!(log.matches("probe: worker 1 stopping").count(), 1, "{log}");
}
