//! TLS (`tls_cert`, `tls_key`): `wss://` on a WebSocket listener, HTTPS on `[api]` and
//! `[admin]`, certificates renewed by `switchboard reload` without dropping clients, and
//! unusable files refused at start (exit code 2). Certificates are made here with rcgen.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};
use tokio_rustls::rustls::{ClientConfig, RootCertStore};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;

use crate::http_api::{TOKEN, api_table};
use crate::support::clients::TIMEOUT;
use crate::support::http::request_over;
use crate::support::{Listener, Server, Setup, run_to_exit};

/// A self-signed certificate for `localhost`, written as PEM files into `dir`.
struct TestCert {
    der: CertificateDer<'static>,
    cert: PathBuf,
    key: PathBuf,
}

impl TestCert {
    fn write(dir: &Path) -> Self {
        let made =
            rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).expect("certificate");
        let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
        // Written beside, then renamed: a reload never reads a half-written file.
        for (path, pem) in [
            (&cert, made.cert.pem()),
            (&key, made.signing_key.serialize_pem()),
        ] {
            let tmp = path.with_extension("tmp");
            std::fs::write(&tmp, pem).expect("write PEM");
            std::fs::rename(&tmp, path).expect("rename PEM");
        }
        Self {
            der: made.cert.der().clone(),
            cert,
            key,
        }
    }

    /// `tls_cert = …` and `tls_key = …` lines.
    fn keys(&self) -> String {
        format!(
            "tls_cert = {:?}\ntls_key = {:?}\n",
            self.cert.display().to_string(),
            self.key.display().to_string()
        )
    }
}

/// A TLS connection to `addr` that trusts only `trusted`.
async fn tls_connect(addr: &str, trusted: &CertificateDer<'static>) -> TlsStream<TcpStream> {
    let mut roots = RootCertStore::empty();
    roots.add(trusted.clone()).expect("a trust anchor");
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    let tcp = TcpStream::connect(addr).await.expect("TCP connect");
    let name = ServerName::try_from("localhost").expect("a name");
    tokio::time::timeout(
        TIMEOUT,
        TlsConnector::from(Arc::new(config)).connect(name, tcp),
    )
    .await
    .expect("a TLS handshake in time")
    .expect("a TLS handshake")
}

type Wss = WebSocketStream<TlsStream<TcpStream>>;

/// A `wss://` client of the listener at `addr`.
async fn wss(addr: &str, trusted: &CertificateDer<'static>) -> Wss {
    let tls = tls_connect(addr, trusted).await;
    let (ws, _) = tokio_tungstenite::client_async("wss://localhost/", tls)
        .await
        .expect("WebSocket handshake over TLS");
    ws
}

/// Sends `text` and expects it back.
async fn echo(ws: &mut Wss, text: &str) {
    ws.send(Message::text(text)).await.expect("send");
    loop {
        let received = tokio::time::timeout(TIMEOUT, ws.next())
            .await
            .expect("an answer in time")
            .expect("open")
            .expect("a frame");
        match received {
            Message::Text(t) => return assert_eq!(t.as_str(), text),
            Message::Ping(_) | Message::Pong(_) => continue,
            other => panic!("expected the echo, got {other:?}"),
        }
    }
}

/// The certificate a TLS connection's server presented.
fn presented(tls: &TlsStream<TcpStream>) -> CertificateDer<'static> {
    tls.get_ref().1.peer_certificates().expect("certificates")[0].clone()
}

fn tls_echo_server(cert: &TestCert) -> Server {
    let listener = Listener::new("websocket", "echo").with(cert.keys().trim_end());
    Setup::default().listener(listener).start()
}

#[tokio::test]
async fn a_wss_client_echoes_and_a_plain_client_on_the_tls_port_is_refused_cleanly() {
    let dir = tempfile::tempdir().expect("dir");
    let cert = TestCert::write(dir.path());
    let server = tls_echo_server(&cert);
    let addr = server.addr().to_string();

    let mut client = wss(&addr, &cert.der).await;
    echo(&mut client, "over TLS").await;

    // A plain ws:// client gets an error at once, not a hang, and no one else is affected.
    let plain = tokio::time::timeout(
        TIMEOUT,
        tokio_tungstenite::connect_async(format!("ws://{addr}/")),
    )
    .await
    .expect("an answer in time");
    assert!(plain.is_err(), "a plain client must not get a WebSocket");
    echo(&mut client, "still here").await;
    let mut again = wss(&addr, &cert.der).await;
    echo(&mut again, "new client").await;
}

#[tokio::test]
async fn a_renewed_certificate_is_served_after_reload_while_old_clients_stay_connected() {
    let dir = tempfile::tempdir().expect("dir");
    let old = TestCert::write(dir.path());
    let server = tls_echo_server(&old);
    let addr = server.addr().to_string();
    let mut kept = wss(&addr, &old.der).await;
    echo(&mut kept, "before").await;

    let renewed = TestCert::write(dir.path());
    assert_ne!(renewed.der, old.der);
    let config = server.config_path().display().to_string();
    let out = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_switchboard"))
            .args(["reload", "-c", &config])
            .output()
            .expect("switchboard reload runs")
    })
    .await
    .expect("reload");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(stdout.contains("certificate reloaded"), "{stdout}");

    let fresh = tls_connect(&addr, &renewed.der).await;
    assert_eq!(
        presented(&fresh),
        renewed.der,
        "new handshakes get the renewal"
    );
    echo(&mut kept, "after").await;
}

#[tokio::test]
async fn text_and_frame_listeners_serve_tls_too() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let dir = tempfile::tempdir().expect("dir");
    let cert = TestCert::write(dir.path());
    let server = Setup::default()
        .listener(Listener::new("text", "echo").with(cert.keys().trim_end()))
        .listener(Listener::new("frame", "echo").with(cert.keys().trim_end()))
        .start();
    let frame = |payload: &[u8]| {
        let mut bytes = (payload.len() as u32).to_be_bytes().to_vec();
        bytes.extend_from_slice(payload);
        bytes
    };
    let cases = [
        (server.addrs[0], b"a line over TLS\n".to_vec()),
        (server.addrs[1], frame(b"a frame over TLS")),
    ];
    for (addr, sent) in cases {
        let mut tls = tls_connect(&addr.to_string(), &cert.der).await;
        tls.write_all(&sent).await.expect("send");
        tls.flush().await.expect("flush");
        let mut back = vec![0u8; sent.len()];
        tokio::time::timeout(TIMEOUT, tls.read_exact(&mut back))
            .await
            .expect("an echo in time")
            .expect("the echo");
        assert_eq!(back, sent);
    }
}

#[test]
fn missing_or_unreadable_tls_files_are_a_start_error() {
    let dir = tempfile::tempdir().expect("dir");
    let cert = TestCert::write(dir.path());
    let garbage = dir.path().join("garbage.pem");
    std::fs::write(&garbage, "not a key").expect("write");
    let listener =
        "[[listener]]\naddr = \"127.0.0.1:0\"\nprotocol = \"websocket\"\napp = \"echo\"\n";
    let missing = dir.path().join("missing.pem").display().to_string();
    let cert_path = cert.cert.display().to_string();
    let garbage = garbage.display().to_string();
    let cases = [
        (
            format!("{listener}tls_cert = {missing:?}\ntls_key = {missing:?}\n"),
            "missing.pem",
        ),
        (
            format!("{listener}tls_cert = {cert_path:?}\ntls_key = {garbage:?}\n"),
            "garbage.pem",
        ),
        (
            format!(
                "{listener}[admin]\naddr = \"127.0.0.1:0\"\ntls_cert = {missing:?}\ntls_key = {missing:?}\n"
            ),
            "admin address",
        ),
        (
            format!(
                "{listener}{}tls_cert = {missing:?}\ntls_key = {missing:?}\n",
                api_table()
            ),
            "api address",
        ),
    ];
    for (config, needle) in cases {
        let path = dir.path().join("switchboard.toml");
        std::fs::write(&path, &config).expect("config");
        let path = path.display().to_string();
        let (code, stderr) = run_to_exit(&["start", "-c", &path], dir.path());
        assert_eq!(code, Some(2), "{config}: {stderr}");
        assert!(stderr.contains(needle), "{config}: {stderr}");
    }
}

#[tokio::test]
async fn the_api_and_the_admin_listener_serve_https() {
    let dir = tempfile::tempdir().expect("dir");
    let cert = TestCert::write(dir.path());
    let config = Setup::one("websocket", "echo").toml()
        + &api_table()
        + &cert.keys()
        + "\n[admin]\naddr = \"127.0.0.1:0\"\n"
        + &cert.keys();
    let server = Server::start(&config);
    let log = server.log();
    let url = |prefix: &str| -> String {
        let rest = log.split(prefix).nth(1).expect(prefix);
        rest.split('/').next().expect("an address").to_owned()
    };
    let (api, admin) = (
        url("HTTP API on https://"),
        url("admin endpoints on https://"),
    );

    let auth = format!("Bearer {TOKEN}");
    let response = request_over(
        tls_connect(&api, &cert.der).await,
        "localhost",
        "POST",
        "/api/v1/apps/echo/get-client-count",
        &[("Authorization", &auth)],
        b"{}",
    )
    .await;
    assert_eq!(response.status, 200, "{}", response.body);
    assert_eq!(response.json(), json!({"ok": 0}));
    let health = request_over(
        tls_connect(&admin, &cert.der).await,
        "localhost",
        "GET",
        "/health",
        &[],
        b"",
    )
    .await;
    assert_eq!((health.status, health.body.as_str()), (200, "ok\n"));
}

/// The text framing's newline rule holds over TLS too: a message holding a newline is not
/// sent (it would reach the client as several lines), and the client stays connected.
#[tokio::test]
async fn a_message_with_a_newline_never_reaches_a_tls_text_client_as_several_lines() {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    async fn next_line(tls: &mut BufReader<TlsStream<TcpStream>>) -> String {
        let mut line = String::new();
        tokio::time::timeout(TIMEOUT, tls.read_line(&mut line))
            .await
            .expect("a line in time")
            .expect("a line");
        line
    }
    let dir = tempfile::tempdir().expect("dir");
    let cert = TestCert::write(dir.path());
    let server = Setup::one("websocket", "probe")
        .listener(Listener::new("text", "probe").with(cert.keys().trim_end()))
        .start();
    let mut tls = BufReader::new(tls_connect(&server.addrs[1].to_string(), &cert.der).await);
    tls.get_mut()
        .write_all(b"{\"id\":1,\"op\":\"whoami\"}\n")
        .await
        .expect("send");
    let me: serde_json::Value = serde_json::from_str(&next_line(&mut tls).await).expect("JSON");
    let client = me["ok"]["client"].as_str().expect("an id").to_owned();

    let mark = server.mark();
    let mut probe = crate::support::probe::Probe::connect(&server.url()).await;
    let forged = "hello\n{\"forged\":true}";
    // Refused to the plugin when sent by id; dropped by the gateway when sent to a group.
    let to_client = serde_json::json!({"client": client, "message": forged});
    assert_eq!(
        probe.err("send-to-client", to_client).await,
        "invalid-argument"
    );
    let join = serde_json::json!({"client": client, "group": "g"});
    probe.ok("join-group", join).await;
    let to_group = serde_json::json!({"group": "g", "message": forged});
    probe.ok("send-to-group", to_group).await;
    let after = serde_json::json!({"client": client, "message": "after"});
    probe.ok("send-to-client", after).await;
    assert_eq!(
        next_line(&mut tls).await,
        "after\n",
        "the injected line was sent"
    );
    server
        .wait_for_log_since(
            mark,
            "a message this framing cannot express (a newline on a text connection)",
        )
        .await;
}
