//! The Go SDK's own guarantees (plugin-sdk/go, docs/plugins-go.md): a plugin that registered
//! no handler is refused at start, the argument arena holds any amount of import results in
//! one event with memory flat across events, and `hostlog` carries slog records. The API and
//! the error policy are proven by tests/e2e/api.rs against `probe-go` as against every SDK.

use std::process::{Command, Stdio};

use serde_json::json;

use crate::support::probe::Probe;
use crate::support::{Setup, cached, fixture_bytes, http_get};

#[test]
fn a_go_plugin_that_registers_no_handler_is_refused_at_start_saying_why() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("noreg-go.wasm");
    std::fs::write(&path, fixture_bytes("noreg-go")).expect("write");
    let out = Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .arg("check")
        .arg(&path)
        .stdin(Stdio::null())
        .output()
        .expect("switchboard runs");
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("failed its start check"), "{text}");
    // The trap's backtrace names the reason (a Go function named after it).
    assert!(
        text.contains("noHandlerRegistered_CallSbRegisterInInit"),
        "{text}"
    );
}

/// The plugin memory figure of `app` in the admin's /metrics: the most linear memory one
/// of its instances used.
async fn peak_memory(admin: &str, app: &str) -> u64 {
    let (code, text) = http_get(admin, "/metrics").await;
    assert_eq!(code, 200, "{text}");
    let prefix = format!("switchboard_plugin_memory_bytes{{app=\"{app}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {prefix} in {text}"))
}

#[tokio::test]
async fn go_import_results_beyond_the_arena_in_one_event_do_not_trap_and_memory_stays_flat() {
    const CLIENTS: usize = 80;
    const VALUE: usize = 60 * 1024;
    let setup = cached(Setup::one("websocket", "probe-go")).worker("instances = 1");
    let server =
        crate::support::Server::start(&(setup.toml() + "\n[admin]\naddr = \"127.0.0.1:0\"\n"));
    let admin = server
        .log()
        .split("admin endpoints on http://")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .expect("admin endpoints logged")
        .to_owned();

    let mut a = Probe::connect(&server.url()).await;
    let mut others = Vec::new();
    for i in 0..CLIENTS {
        let other = Probe::connect(&server.url()).await;
        let value = char::from(b'a' + (i % 26) as u8).to_string().repeat(VALUE);
        a.ok(
            "set-session",
            json!({"client": other.id, "session": {"v": value}}),
        )
        .await;
        others.push(other);
    }
    // One event reads every session, a page at a time: 80 × 60 KiB, beyond the 4 MiB arena.
    let expected = json!({"clients": CLIENTS + 1, "bytes": CLIENTS * (1 + VALUE)});
    assert_eq!(a.ok("session-bytes", json!({})).await, expected);
    for _ in 0..3 {
        assert_eq!(a.ok("session-bytes", json!({})).await, expected);
    }
    let settled = peak_memory(&admin, "probe-go").await;
    for _ in 0..20 {
        assert_eq!(a.ok("session-bytes", json!({})).await, expected);
    }
    let after = peak_memory(&admin, "probe-go").await;
    // Flat: whatever Go's collector does with its heap (a page or two either way), 20 more
    // events grow the memory by less than what one of them reads. The arena as it was (the
    // results of an event kept until it returned, the overflow in Go memory) traps instead.
    let one_event = (CLIENTS * VALUE) as u64;
    assert!(
        after < settled + one_event,
        "the instance's memory grew from {settled} to {after} bytes over 20 more events"
    );
    assert!(!server.log().contains("instance replaced"));
    drop(others);
}

#[tokio::test]
async fn go_slog_records_go_to_the_host_log_with_their_attributes() {
    let server = cached(Setup::one("websocket", "probe-go")).start();
    let mut a = Probe::connect(&server.url()).await;
    let mark = server.mark();
    a.ok("slog", json!({"message": "hello from slog"})).await;
    let line = server
        .wait_for_log_since(mark, "hello from slog")
        .await
        .text;
    let expected = format!("hello from slog client={} req.n=1 req.g.x=\"a b\"", a.id);
    assert!(line.contains(&expected), "{line}");
    assert!(
        line.contains("WARN") && line.contains("app=\"probe-go\""),
        "{line}"
    );
    // Records below the handler's level (Info by default) are dropped: a fence shows it.
    a.ok(
        "log",
        json!({"level": "warn", "message": "fence after slog"}),
    )
    .await;
    server.wait_for_log_since(mark, "fence after slog").await;
    assert!(!server.log_since(mark).contains("below the default level"));
}
