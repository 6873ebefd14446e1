//! What an `[apps.NAME]` table grants a plugin beyond the API, and nothing more: variables,
//! a key-value store of the app's own, outbound HTTP to allowed hosts only. WASI stays
//! closed otherwise.

use serde_json::{Value, json};

use switchboard::worker::capabilities::kv::{Entry, KvBackend, now_ms};

use crate::support::clients::Ws;
use crate::support::nats::NatsServer;
use crate::support::probe::Probe;
use crate::support::web::{Answer, Web};
use crate::support::{
    Listener, Server, Setup, deploy_by_rename, plugin_bytes, plugin_folder, retagged,
};

/// A setup's TOML followed by `extra` (`[apps.…]` tables).
fn config(setup: &Setup, extra: &str) -> String {
    format!("{}\n{extra}\n", setup.toml())
}

/// `data_dir` pointing at `dir`, as a `[worker]` line.
fn data_dir(dir: &std::path::Path) -> String {
    format!("data_dir = {:?}", dir.display().to_string())
}

#[tokio::test]
async fn an_allowed_http_call_succeeds_and_a_denied_one_fails_with_a_log_line() {
    let allowed = Web::start(|_| Answer::Now(200, "hello from the allowed host".into())).await;
    let other = Web::start(|_| Answer::Now(200, "should never be asked".into())).await;
    let setup = Setup::one("websocket", "probe");
    let text = config(
        &setup,
        &format!(
            "[apps.probe]\nallowed_outbound_hosts = [\"{}\"]",
            allowed.origin()
        ),
    );
    let server = Server::start(&text);
    let mut probe = Probe::connect(&server.url()).await;

    let url = format!("{}/greeting?x=1", allowed.origin());
    let reply = probe.ok("http", json!({ "url": url })).await;
    assert_eq!(reply["status"], json!(200));
    assert_eq!(reply["body"], json!("hello from the allowed host"));
    assert_eq!(allowed.requests(), ["/greeting?x=1"]);

    // Same host, another port: denied before any connection is made.
    let mark = server.mark();
    let url = format!("{}/secret", other.origin());
    let (kind, detail) = probe
        .call("http", json!({ "url": url }))
        .await
        .expect_err("denied");
    assert_eq!(kind, "denied", "{detail}");
    assert!(detail.contains("allowed_outbound_hosts"), "{detail}");
    let line = server
        .wait_for_log_since(mark, "outbound HTTP request to")
        .await;
    assert!(line.text.contains("denied"), "{}", line.text);
    assert!(line.text.contains(&other.addr.to_string()), "{}", line.text);
    // https to the allowed host's port is another scheme: denied too.
    let url = format!("https://{}/", allowed.addr);
    assert_eq!(probe.err("http", json!({ "url": url })).await, "denied");
    assert!(other.requests().is_empty());
    assert_eq!(allowed.requests().len(), 1);
}

#[tokio::test]
async fn without_allowed_hosts_every_http_call_is_denied() {
    let web = Web::start(|_| Answer::Now(200, "no".into())).await;
    let server = Setup::one("websocket", "probe").start();
    let mut probe = Probe::connect(&server.url()).await;
    let url = format!("{}/", web.origin());
    assert_eq!(probe.err("http", json!({ "url": url })).await, "denied");
    assert!(web.requests().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiting_on_the_network_delays_no_other_app_and_counts_not_against_the_deadline() {
    let web = Web::start(|target| match target {
        "/gate" => Answer::AfterGate(200, "opened".into()),
        _ => Answer::Never,
    })
    .await;
    // A deadline far below the time the calls wait: waiting must not count against it.
    let setup = Setup::default()
        .listener(Listener::new("websocket", "probe"))
        .listener(Listener::new("websocket", "echo"))
        .worker("instances = 1")
        .worker("event_deadline_ms = 100");
    let text = config(
        &setup,
        &format!(
            "[apps.probe]\nallowed_outbound_hosts = [\"{}\"]\noutbound_timeout_ms = 700",
            web.origin()
        ),
    );
    let server = Server::start(&text);
    let echo_url = format!("ws://{}/", server.addrs[1]);
    let mut probe = Probe::connect(&server.url()).await;

    // The only probe instance waits on the gate; meanwhile the echo app serves at once.
    let gate = format!("{}/gate", web.origin());
    probe
        .ws()
        .send_text(&json!({"id": "gated", "op": "http", "url": gate}).to_string())
        .await;
    crate::support::eventually("the gated request arrives", async || {
        web.requests().iter().any(|r| r == "/gate")
    })
    .await;
    let mut echo = Ws::connect(&echo_url).await;
    for n in 0..5 {
        echo.send_text(&format!("ping {n}")).await;
        assert_eq!(echo.recv_text().await, format!("ping {n}"));
    }
    web.open_gate();
    let reply: Value = serde_json::from_str(&probe.ws().recv_text().await).expect("JSON");
    assert_eq!(reply["id"], json!("gated"));
    assert_eq!(reply["ok"]["body"], json!("opened"), "{reply}");

    // A request that never gets an answer fails by the app's timeout (700 ms, seven
    // deadlines), and the instance lives on.
    let mark = server.mark();
    let never = format!("{}/never", web.origin());
    assert_eq!(probe.err("http", json!({ "url": never })).await, "timeout");
    assert_eq!(probe.ok("worker", json!({})).await, json!(0));
    let since = server.log_since(mark);
    assert!(!since.contains("instance replaced"), "{since}");
    assert!(!since.contains("deadline"), "{since}");
}

#[tokio::test]
async fn values_survive_a_restart_and_a_hot_swap() {
    let data = tempfile::tempdir().expect("temp dir");
    let plugins = plugin_folder(&["probe"]);
    let mut setup = Setup::one("websocket", "probe").worker(&data_dir(data.path()));
    setup.plugins_dir = Some(plugins.path().to_owned());
    let text = setup.toml();

    let mut server = Server::start(&text);
    let mut probe = Probe::connect(&server.url()).await;
    probe
        .ok("kv-set", json!({"key": "greeting", "value": "hello"}))
        .await;
    assert_eq!(probe.ok("kv-incr", json!({"key": "n"})).await, json!(1));

    let mark = server.mark();
    let swapped = retagged(plugin_bytes("probe"), "kv");
    deploy_by_rename(plugins.path(), "probe.wasm", &swapped);
    server
        .wait_for_log_since(mark, "swapping in a new version")
        .await;
    // The next event runs the new version (each instance moves between two events).
    assert_eq!(
        probe.ok("kv-get", json!({"key": "greeting"})).await,
        json!("hello")
    );
    assert_eq!(probe.ok("kv-incr", json!({"key": "n"})).await, json!(2));
    drop(probe);
    assert!(server.terminate().success());

    let server = Server::start(&text);
    let mut probe = Probe::connect(&server.url()).await;
    assert_eq!(
        probe.ok("kv-get", json!({"key": "greeting"})).await,
        json!("hello")
    );
    assert_eq!(probe.ok("kv-incr", json!({"key": "n"})).await, json!(3));
    assert_eq!(
        probe.ok("kv-keys", json!({"prefix": ""})).await,
        json!(["greeting", "n"])
    );
}

#[tokio::test]
async fn two_apps_cannot_read_each_others_keys() {
    let plugins = plugin_folder(&["probe"]);
    std::fs::write(plugins.path().join("other.wasm"), plugin_bytes("probe")).expect("copy");
    let mut setup = Setup::default()
        .listener(Listener::new("websocket", "probe"))
        .listener(Listener::new("websocket", "other"));
    setup.plugins_dir = Some(plugins.path().to_owned());
    let server = setup.start();
    let mut mine = Probe::connect(&server.url()).await;
    let mut theirs = Probe::connect(&format!("ws://{}/", server.addrs[1])).await;

    mine.ok("kv-set", json!({"key": "secret", "value": "mine"}))
        .await;
    assert_eq!(
        theirs.ok("kv-get", json!({"key": "secret"})).await,
        Value::Null
    );
    assert_eq!(theirs.ok("kv-keys", json!({"prefix": ""})).await, json!([]));
    theirs
        .ok("kv-set", json!({"key": "secret", "value": "theirs"}))
        .await;
    theirs.ok("kv-delete", json!({"key": "secret"})).await;
    assert_eq!(
        mine.ok("kv-get", json!({"key": "secret"})).await,
        json!("mine")
    );
}

#[tokio::test]
async fn store_limits_and_misuse_give_clear_errors() {
    let server = Setup::one("websocket", "probe").start();
    let mut probe = Probe::connect(&server.url()).await;
    let too_big = json!({"key": "big", "len": 1_000_001});
    assert_eq!(probe.err("kv-set-bytes", too_big).await, "too-large");
    probe
        .ok("kv-set-bytes", json!({"key": "big", "len": 1_000_000}))
        .await;
    let long_key = "k".repeat(1025);
    assert_eq!(
        probe
            .err("kv-set", json!({"key": long_key, "value": "x"}))
            .await,
        "invalid-key"
    );
    assert_eq!(probe.err("kv-get", json!({"key": ""})).await, "invalid-key");
    probe
        .ok("kv-set", json!({"key": "word", "value": "hello"}))
        .await;
    assert_eq!(
        probe.err("kv-incr", json!({"key": "word"})).await,
        "not-a-number"
    );
    assert_eq!(
        probe
            .err("kv-set", json!({"key": "t", "value": "x", "ttl_ms": 0}))
            .await,
        "invalid-argument"
    );
}

#[tokio::test]
async fn a_value_set_with_a_time_to_live_disappears() {
    let server = Setup::one("websocket", "probe").start();
    let mut probe = Probe::connect(&server.url()).await;
    probe
        .ok(
            "kv-set",
            json!({"key": "brief", "value": "x", "ttl_ms": 200}),
        )
        .await;
    probe
        .ok("kv-set", json!({"key": "lasting", "value": "y"}))
        .await;
    crate::support::eventually("the brief value expires", async || {
        probe.ok("kv-get", json!({"key": "brief"})).await == Value::Null
    })
    .await;
    assert_eq!(
        probe.ok("kv-keys", json!({"prefix": ""})).await,
        json!(["lasting"])
    );
}

#[tokio::test]
async fn variables_come_from_the_file_and_the_environment() {
    let setup = Setup::one("websocket", "probe");
    let text = config(
        &setup,
        "[apps.probe.variables]\ngreeting = \"hello\"\ntoken = { env = \"SWITCHBOARD_TEST_TOKEN\" }",
    );
    let server = Server::start_with_env(&text, &[], &[("SWITCHBOARD_TEST_TOKEN", "s3cret")]);
    let mut probe = Probe::connect(&server.url()).await;
    assert_eq!(
        probe.ok("var", json!({"name": "greeting"})).await,
        json!("hello")
    );
    assert_eq!(
        probe.ok("var", json!({"name": "token"})).await,
        json!("s3cret")
    );
    assert_eq!(
        probe.ok("var", json!({"name": "missing"})).await,
        Value::Null
    );
    // The rest of the environment stays the host's.
    assert_eq!(probe.ok("env", json!({})).await, json!([]));
}

#[test]
fn a_variable_from_an_unset_environment_variable_refuses_to_start() {
    let dir = tempfile::tempdir().expect("temp dir");
    let text = config(
        &Setup::one("websocket", "probe"),
        "[apps.probe.variables]\ntoken = { env = \"SWITCHBOARD_SURELY_UNSET\" }",
    );
    let path = dir.path().join("switchboard.toml");
    std::fs::write(&path, text).expect("config");
    let path = path.display().to_string();
    let (code, stderr) = crate::support::run_to_exit(&["start", "-c", &path], dir.path());
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("apps.probe.variables.token"), "{stderr}");
    assert!(stderr.contains("SWITCHBOARD_SURELY_UNSET"), "{stderr}");
}

#[tokio::test]
async fn a_plugin_cannot_open_a_socket_or_read_a_file() {
    let web = Web::start(|_| Answer::Now(200, "reachable".into())).await;
    let server = Setup::one("websocket", "probe").start();
    let mut probe = Probe::connect(&server.url()).await;
    let addr = web.addr.to_string();
    assert_eq!(probe.err("connect", json!({ "addr": addr })).await, "wasi");
    let config = server.config_path().display().to_string();
    for path in ["/etc/passwd", config.as_str(), "."] {
        assert_eq!(
            probe.err("read-file", json!({ "path": path })).await,
            "wasi"
        );
    }
    assert_eq!(probe.ok("env", json!({})).await, json!([]));
    assert!(web.requests().is_empty());
}

#[tokio::test]
async fn chat_history_survives_a_restart_and_a_hot_swap() {
    history_scenario("chat").await;
}

#[tokio::test]
async fn the_javascript_python_and_go_chats_keep_the_same_history() {
    for app in ["chat-js", "chat-py", "chat-go"] {
        history_scenario(app).await;
    }
}

/// 52 lines in a room, `/history` showing the last 50 before and after a hot swap, and to a
/// client who joins after a restart.
async fn history_scenario(app: &str) {
    let data = tempfile::tempdir().expect("temp dir");
    let plugins = plugin_folder(&[app]);
    let cache = crate::support::plugins_dir().join(".e2e/cache");
    let mut setup = Setup::one("websocket", app).worker(&format!(
        "{}\ncache_dir = {:?}",
        data_dir(data.path()),
        cache.display().to_string()
    ));
    setup.plugins_dir = Some(plugins.path().to_owned());
    let text = setup.toml();
    let mut server = Server::start(&text);
    let mut ann = Ws::connect(&server.url()).await;
    ann.send_text("/nick ann").await;
    assert_eq!(ann.recv_text().await, "* you are now known as ann");
    ann.send_text("/join lobby").await;
    assert_eq!(ann.recv_text().await, "* ann joined lobby");
    // 52 messages: the history keeps the last 50.
    for n in 0..52 {
        ann.send_text(&format!("line {n}")).await;
        assert_eq!(ann.recv_text().await, format!("ann: line {n}"));
    }
    let expected: Vec<String> = (2..52)
        .map(|n| format!("[history] ann: line {n}"))
        .collect();
    ann.send_text("/history").await;
    assert_eq!(ann.recv_text().await, "* last 50 messages in lobby:");
    for line in &expected {
        assert_eq!(&ann.recv_text().await, line);
    }

    let mark = server.mark();
    deploy_by_rename(
        plugins.path(),
        &format!("{app}.wasm"),
        &retagged(plugin_bytes(app), "history"),
    );
    server
        .wait_for_log_since(mark, "swapping in a new version")
        .await;
    ann.send_text("/history").await;
    assert_eq!(ann.recv_text().await, "* last 50 messages in lobby:");
    for line in &expected {
        assert_eq!(&ann.recv_text().await, line);
    }
    drop(ann);
    assert!(server.terminate().success());

    let server = Server::start(&text);
    let mut bob = Ws::connect(&server.url()).await;
    bob.send_text("/nick bob").await;
    assert_eq!(bob.recv_text().await, "* you are now known as bob");
    bob.send_text("/join lobby").await;
    assert_eq!(bob.recv_text().await, "* bob joined lobby");
    assert_eq!(bob.recv_text().await, "* last 50 messages in lobby:");
    for line in &expected {
        assert_eq!(&bob.recv_text().await, line);
    }
    bob.send_text("/join empty").await;
    assert_eq!(bob.recv_text().await, "* bob left lobby");
    assert_eq!(bob.recv_text().await, "* bob joined empty");
    bob.send_text("/history").await;
    assert_eq!(bob.recv_text().await, "* last 0 messages in empty:");
}

#[tokio::test]
async fn the_auth_example_accepts_a_good_token_and_rejects_others() {
    let web = Web::start(|target| match target {
        "/check?token=good%20one" => Answer::Now(200, "alice\n".into()),
        _ => Answer::Now(403, "no".into()),
    })
    .await;
    let setup = Setup::one("websocket", "auth");
    let text = config(
        &setup,
        &format!(
            "[apps.auth]\nallowed_outbound_hosts = [\"{origin}\"]\n\
             [apps.auth.variables]\nauth_url = \"{origin}/check\"",
            origin = web.origin()
        ),
    );
    let server = Server::start(&text);

    let mut alice = Ws::connect(&format!("{}?token=good%20one", server.url())).await;
    alice.send_text("hi").await;
    assert_eq!(alice.recv_text().await, "alice: hi");

    for (query, reason) in [
        ("?token=bad", "invalid token"),
        ("", "missing token"),
        ("?token=", "missing token"),
    ] {
        let url = format!("{}{query}", server.url());
        let err = tokio_tungstenite::connect_async(&url)
            .await
            .expect_err("rejected");
        match err {
            tokio_tungstenite::tungstenite::Error::Http(response) => {
                assert_eq!(response.status().as_u16(), 401, "{query}");
                let body = response.body().as_deref().unwrap_or_default();
                assert_eq!(String::from_utf8_lossy(body), reason, "{query}");
            }
            other => panic!("{query}: expected an HTTP rejection, got {other}"),
        }
    }
    assert_eq!(
        web.requests(),
        ["/check?token=good%20one", "/check?token=bad"]
    );
}

#[tokio::test]
async fn the_jetstream_store_is_shared_by_workers_keeps_apps_apart_and_survives_a_restart() {
    // The harness's servers have JetStream on, their store kept across a restart.
    let nats = NatsServer::start();
    let worker = |url: String| async move {
        let client = async_nats::connect(&url).await.expect("NATS");
        KvBackend::jetstream(client, "sb.test")
    };
    let (one, two) = (
        worker(nats.url.clone()).await,
        worker(nats.url.clone()).await,
    );
    let (one, two) = (one.store().clone(), two.store().clone());
    let entry = |v: &str| Entry::new(v.as_bytes().to_vec(), None, now_ms());

    one.set("chat", "greeting", entry("hello"))
        .await
        .expect("set");
    assert_eq!(
        two.get("chat", "greeting").await,
        Ok(Some(b"hello".to_vec()))
    );
    assert_eq!(two.get("other", "greeting").await, Ok(None));

    // Increments from both workers at once: none is lost.
    let mut tasks = Vec::new();
    for store in [one.clone(), two.clone()] {
        for _ in 0..10 {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                store.increment("chat", "n", 1).await
            }));
        }
    }
    for task in tasks {
        task.await.expect("task").expect("increment");
    }
    assert_eq!(one.get("chat", "n").await, Ok(Some(b"20".to_vec())));

    let expired = Entry {
        expires_at_ms: Some(1),
        value: b"old".to_vec(),
    };
    one.set("chat", "gone", expired).await.expect("set");
    assert_eq!(two.get("chat", "gone").await, Ok(None));
    one.set("chat", "room:b", entry("b")).await.expect("set");
    one.set("chat", "room:a", entry("a")).await.expect("set");
    assert_eq!(
        two.list_keys("chat", "room:", None, 10).await,
        Ok(vec!["room:a".to_owned(), "room:b".to_owned()])
    );
    assert_eq!(
        two.list_keys("chat", "", Some("n"), 1).await,
        Ok(vec!["room:a".to_owned()])
    );
    two.delete("chat", "room:a").await.expect("delete");
    assert_eq!(one.get("chat", "room:a").await, Ok(None));
    drop((one, two));

    let nats = nats.restart(std::time::Duration::ZERO);
    let three = worker(nats.url.clone()).await;
    assert_eq!(
        three.store().get("chat", "greeting").await,
        Ok(Some(b"hello".to_vec()))
    );
}

/// The capabilities protocol of `plugins/caps-*` (one per language): variables from the file
/// and the environment, and the key-value store with its errors, apart from another app's.
async fn language_scenario(app: &str) {
    let cache = crate::support::plugins_dir().join(".e2e/cache");
    let setup = Setup::one("websocket", app)
        .listener(Listener::new("websocket", "probe"))
        .worker(&format!("cache_dir = {:?}", cache.display().to_string()));
    let text = config(
        &setup,
        &format!(
            "[apps.{app}.variables]\ngreeting = \"hello\"\ntoken = {{ env = \"CAPS_TOKEN\" }}"
        ),
    );
    let server = Server::start_with_env(&text, &[], &[("CAPS_TOKEN", "s3cret")]);
    let mut ws = Ws::connect(&server.url()).await;
    let mut ask = async |line: &str| {
        ws.send_text(line).await;
        ws.recv_text().await
    };
    assert_eq!(ask("var greeting").await, "hello", "{app}");
    assert_eq!(ask("var token").await, "s3cret", "{app}");
    assert_eq!(ask("var missing").await, "(none)", "{app}");
    assert_eq!(ask("get k").await, "(none)", "{app}");
    assert_eq!(ask("set k héllo wörld").await, "ok", "{app}");
    assert_eq!(ask("get k").await, "héllo wörld", "{app}");
    assert_eq!(ask("incr n").await, "1", "{app}");
    assert_eq!(ask("incr n 41").await, "42", "{app}");
    assert_eq!(ask("incr k").await, "error not-a-number", "{app}");
    assert_eq!(ask("set room:b x").await, "ok", "{app}");
    assert_eq!(ask("set room:a x").await, "ok", "{app}");
    assert_eq!(ask("keys room:").await, "room:a,room:b", "{app}");
    assert_eq!(ask("del room:a").await, "ok", "{app}");
    assert_eq!(ask("keys room:").await, "room:b", "{app}");
    assert_eq!(
        ask("setttl brief 0 x").await,
        "error invalid-argument",
        "{app}"
    );
    assert_eq!(ask("get ").await, "error invalid-key", "{app}");
    // Another app's plugin does not see these keys.
    let mut probe = Probe::connect(&format!("ws://{}/", server.addrs[1])).await;
    assert_eq!(probe.ok("kv-get", json!({"key": "k"})).await, Value::Null);
}

#[tokio::test]
async fn javascript_plugins_read_variables_and_use_the_store() {
    language_scenario("caps-js").await;
}

#[tokio::test]
async fn python_plugins_read_variables_and_use_the_store() {
    language_scenario("caps-py").await;
}

#[tokio::test]
async fn go_plugins_read_variables_and_use_the_store() {
    language_scenario("caps-go").await;
}

#[tokio::test]
async fn a_reload_applies_changed_variables_and_outbound_hosts() {
    let web = Web::start(|_| Answer::Now(200, "reached".into())).await;
    let setup = Setup::one("websocket", "probe");
    let server = Server::start(&config(
        &setup,
        "[apps.probe.variables]\ngreeting = \"hello\"",
    ));
    let mut probe = Probe::connect(&server.url()).await;
    assert_eq!(
        probe.ok("var", json!({"name": "greeting"})).await,
        json!("hello")
    );
    let url = format!("{}/", web.origin());
    assert_eq!(probe.err("http", json!({ "url": url })).await, "denied");

    let changed = config(
        &setup,
        &format!(
            "[apps.probe]\nallowed_outbound_hosts = [\"{}\"]\n[apps.probe.variables]\ngreeting = \"bonjour\"",
            web.origin()
        ),
    );
    let path = server.config_path();
    std::fs::write(&path, changed).expect("config");
    let dir = path.parent().expect("a folder").to_owned();
    let path = path.display().to_string();
    let (code, stderr) = crate::support::run_to_exit(&["reload", "-c", &path], &dir);
    assert_eq!(code, Some(0), "{stderr}");
    // The client stayed connected; the app's new instances have the new grants.
    assert_eq!(
        probe.ok("var", json!({"name": "greeting"})).await,
        json!("bonjour")
    );
    let reply = probe.ok("http", json!({ "url": url })).await;
    assert_eq!(reply["body"], json!("reached"));
}

/// `http URL` of the caps protocol: an allowed request answers, a denied one never leaves
/// (and `app` answers `denied_reply`).
async fn http_scenario(app: &str, denied_reply: &str) {
    let web = Web::start(|_| Answer::Now(200, "from the plugin".into())).await;
    let cache = crate::support::plugins_dir().join(".e2e/cache");
    let setup = Setup::one("websocket", app)
        .worker(&format!("cache_dir = {:?}", cache.display().to_string()));
    let text = config(
        &setup,
        &format!(
            "[apps.{app}]\nallowed_outbound_hosts = [\"{}\"]",
            web.origin()
        ),
    );
    let server = Server::start(&text);
    let mut ws = Ws::connect(&server.url()).await;
    ws.send_text(&format!("http {}/x?y=1", web.origin())).await;
    assert_eq!(ws.recv_text().await, "200 from the plugin", "{app}");
    let mark = server.mark();
    ws.send_text("http http://127.0.0.1:9/").await;
    assert_eq!(ws.recv_text().await, denied_reply, "{app}");
    server
        .wait_for_log_since(mark, "outbound HTTP request to http://127.0.0.1:9 denied")
        .await;
    assert_eq!(web.requests(), ["/x?y=1"], "{app}");
}

#[tokio::test]
async fn javascript_plugins_fetch_from_allowed_hosts_only() {
    // fetch gives a TypeError whatever the reason; the host's log line names it.
    http_scenario("caps-js", "error network").await;
}

#[tokio::test]
async fn python_plugins_make_allowed_http_requests_only() {
    http_scenario("caps-py", "error denied").await;
}

#[tokio::test]
async fn go_plugins_make_allowed_http_requests_only() {
    http_scenario("caps-go", "error denied").await;
}
