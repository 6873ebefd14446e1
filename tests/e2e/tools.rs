//! The plugin developer tools against the real binary: `switchboard new` and `build` in a
//! folder outside the repository for every language, the result answering through a real
//! server; `check` with the server's own reasons; `dev` rebuilding, swapping, surviving a
//! syntax error, and never leaving its server behind.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::support::clients::Ws;
use crate::support::{Server, Setup, WAIT, fixture_bytes, plugins_dir, root};

/// `switchboard ARGS…` in `dir`, to its end; panics with its output unless it succeeds.
fn switchboard(dir: &Path, args: &[&str]) -> String {
    let out = tool(dir, args);
    assert!(
        out.status.success(),
        "switchboard {args:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn tool(dir: &Path, args: &[&str]) -> std::process::Output {
    tool_command(dir, args)
        .stdin(Stdio::null())
        .output()
        .expect("switchboard runs")
}

/// The command, with the Rust builds of these tests sharing one target folder (kept between
/// runs, so the SDK compiles once), and the toolchains in the user's cache as for anyone.
fn tool_command(dir: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_switchboard"));
    cmd.args(args)
        .current_dir(dir)
        .env("CARGO_TARGET_DIR", root().join("target/tools-e2e"));
    cmd
}

/// `new NAME --lang LANG` then `build` in a fresh folder outside the repository; returns the
/// folder (kept alive by the caller) and the component.
fn new_and_build(lang: &str, name: &str, template: &str) -> (tempfile::TempDir, PathBuf) {
    let outside = tempfile::tempdir().expect("temp dir");
    assert!(
        !outside.path().starts_with(root()),
        "the folder is outside the repository"
    );
    switchboard(
        outside.path(),
        &["new", name, "--lang", lang, "--template", template],
    );
    let project = outside.path().join(name);
    for file in ["README.md", ".gitignore"] {
        assert!(project.join(file).is_file(), "{lang}: no {file}");
    }
    switchboard(&project, &["build"]);
    let wasm = project.join(format!("{name}.wasm"));
    assert!(wasm.is_file(), "{lang}: no {}", wasm.display());
    (outside, wasm)
}

/// A server serving the component as app `app` on a WebSocket listener.
fn serve(wasm: &Path, app: &str) -> (tempfile::TempDir, Server) {
    let plugins = tempfile::tempdir().expect("temp dir");
    std::fs::copy(wasm, plugins.path().join(format!("{app}.wasm"))).expect("copy");
    let mut setup = Setup::one("websocket", app);
    setup.plugins_dir = Some(plugins.path().to_owned());
    let server = setup.start();
    (plugins, server)
}

async fn new_project_echoes(lang: &str) {
    let name = format!("hello-{lang}");
    let (_folder, wasm) = new_and_build(lang, &name, "echo");
    let (_plugins, server) = serve(&wasm, &name);
    let mut ws = Ws::connect(&server.url()).await;
    ws.send_text("hi from a new project").await;
    assert_eq!(ws.recv_text().await, "hi from a new project", "{lang}");
}

#[tokio::test]
async fn new_and_build_rust_outside_the_repository_answers_through_a_server() {
    new_project_echoes("rust").await;
}

#[tokio::test]
async fn new_and_build_js_outside_the_repository_answers_through_a_server() {
    new_project_echoes("js").await;
}

#[tokio::test]
async fn new_and_build_python_outside_the_repository_answers_through_a_server() {
    new_project_echoes("python").await;
}

#[tokio::test]
async fn new_and_build_go_outside_the_repository_answers_through_a_server() {
    new_project_echoes("go").await;
}

#[test]
fn new_refuses_an_existing_folder_and_an_unknown_language() {
    let outside = tempfile::tempdir().expect("temp dir");
    std::fs::create_dir(outside.path().join("taken")).expect("mkdir");
    let out = tool(outside.path(), &["new", "taken"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("exists already"));
    let out = tool(outside.path(), &["new", "x", "--lang", "cobol"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cobol"));
}

/// `check FILE`: the exit code and everything it printed.
fn check(file: &Path, extra: &[&str]) -> (Option<i32>, String) {
    let mut args = vec!["check", file.to_str().expect("utf-8 path")];
    args.extend_from_slice(extra);
    let out = tool(Path::new("."), &args);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code(), text)
}

#[test]
fn check_accepts_a_good_file_and_refuses_garbage_a_core_module_and_a_trapping_start() {
    let (code, text) = check(&plugins_dir().join("echo.wasm"), &[]);
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("would be accepted as app echo"), "{text}");

    let dir = tempfile::tempdir().expect("temp dir");
    let write = |name: &str, bytes: &[u8]| {
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).expect("write");
        path
    };
    // The reasons are the server's own (host/src/worker/plugin.rs, canary.rs).
    let garbage = write("garbage.wasm", b"this is not WebAssembly");
    let (code, text) = check(&garbage, &[]);
    assert_eq!(code, Some(1), "{text}");
    assert!(
        text.contains("is not a valid WebAssembly component"),
        "{text}"
    );

    // The smallest core module: a module, not a component.
    let core = write("core.wasm", b"\0asm\x01\0\0\0");
    let (code, text) = check(&core, &[]);
    assert_eq!(code, Some(1), "{text}");
    assert!(
        text.contains("is not a valid WebAssembly component"),
        "{text}"
    );
    assert!(
        text.contains("core.wasm"),
        "the user's file is named: {text}"
    );

    let faulty = write("faulty.wasm", &fixture_bytes("faulty"));
    let (code, text) = check(&faulty, &["--app", "chat"]);
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("failed its start check"), "{text}");
}

/// Waits until a new client of `server` gets `want` back for `send`.
async fn answers(server: &Server, send: &str, want: &str) {
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let mut ws = Ws::connect(&server.url()).await;
        ws.send_text(send).await;
        let got = ws.recv_text().await;
        if got == want {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "never answered {want:?} (last {got:?}); log:\n{}",
            server.log()
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn dev_rebuilds_and_swaps_after_a_change_and_survives_a_syntax_error() {
    let outside = tempfile::tempdir().expect("temp dir");
    switchboard(outside.path(), &["new", "devloop", "--lang", "rust"]);
    let project = outside.path().join("devloop");
    let lib = project.join("src/lib.rs");
    let source = std::fs::read_to_string(&lib).expect("lib.rs");

    let mut cmd = tool_command(&project, &["dev", "--addr", "127.0.0.1:0"]);
    cmd.env("RUST_LOG", "info");
    let mut server = Server::spawn(cmd, tempfile::tempdir().expect("temp dir"));
    answers(&server, "one", "one").await;

    // A change: the reply gets a prefix. Written whole (temp + rename), as editors do.
    let changed = source.replace(
        "ctx.client().send(message)",
        "ctx.client().send(format!(\"v2:{}\", message.as_text().unwrap_or_default()))",
    );
    assert_ne!(changed, source, "the template has the line this test edits");
    let mark = server.mark();
    save(&lib, &changed);
    server
        .wait_for_log_since(mark, "swapping in a new version")
        .await;
    answers(&server, "two", "v2:two").await;

    // A syntax error: the build fails, says so, and the running version keeps serving.
    let mark = server.mark();
    save(&lib, &format!("{changed}\nfn broken( {{\n"));
    server.wait_for_log_since(mark, "dev: build failed").await;
    answers(&server, "three", "v2:three").await;

    // SIGTERM stops dev and the server it started: nothing keeps listening.
    let addr = server.addrs[0];
    assert!(server.terminate().success(), "{}", server.log());
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "the dev server outlived dev"
    );
}

#[tokio::test]
async fn a_dev_loop_killed_outright_takes_its_server_with_it() {
    let outside = tempfile::tempdir().expect("temp dir");
    switchboard(outside.path(), &["new", "orphan", "--lang", "rust"]);
    let project = outside.path().join("orphan");
    let mut cmd = tool_command(&project, &["dev", "--addr", "127.0.0.1:0"]);
    cmd.env("RUST_LOG", "info");
    let server = Server::spawn(cmd, tempfile::tempdir().expect("temp dir"));
    answers(&server, "one", "one").await;

    // SIGKILL leaves dev no chance to stop its server: the server sees its standard input
    // (a pipe only dev held) close, and stops by itself.
    let addr = server.addrs[0];
    let killed = Command::new("kill")
        .args(["-KILL", &server.pid().to_string()])
        .status()
        .expect("kill runs");
    assert!(killed.success());
    crate::support::eventually("the orphaned dev server stops listening", async || {
        tokio::net::TcpStream::connect(addr).await.is_err()
    })
    .await;
}

fn save(path: &Path, text: &str) {
    let tmp = path.with_extension("rs.new");
    std::fs::write(&tmp, text).expect("write");
    std::fs::rename(&tmp, path).expect("rename");
}

#[test]
fn help_lists_the_plugin_tools() {
    let out = tool(Path::new("."), &["--help"]);
    let text = String::from_utf8_lossy(&out.stdout);
    for command in ["new NAME", "build [DIR]", "check FILE.wasm", "dev [DIR]"] {
        assert!(text.contains(command), "{command} missing from:\n{text}");
    }
}
