//! `cargo xtask autobahn`: the Autobahn WebSocket testsuite against the echo app.
//!
//! Builds the binary (the dev profile the tests use: after `cargo xtask test` nothing is
//! rebuilt, and the engine's dependencies are optimised in it) and the echo plugin, starts the server on a port the OS picks,
//! runs `wstest -m fuzzingclient` (PyPI `autobahntestsuite`, which needs Python 2.7) and
//! fails on any case whose behaviour is FAILED or NON-STRICT. Compression (12.*, 13.*) is
//! not implemented by the server, and the 9.* performance cases take minutes for figures
//! that `cargo bench` measures better: both are left out.
//!
//! The suite is installed once into `target/autobahn/lib` (`pip install --target`, every
//! dependency pinned to the last release that supports Python 2.7) and run from there.

use std::collections::BTreeMap;
use std::fs;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use anyhow::{Context as _, Result, bail};

use crate::langs::Lang;

/// The suite and everything it imports, pinned: newer releases dropped Python 2.7.
const PACKAGES: &[&str] = &[
    "autobahntestsuite==0.8.2",
    "autobahn==0.10.9",
    "Twisted==20.3.0",
    "txaio==2.1.0",
    "zope.interface==5.5.2",
    "six==1.17.0",
    "attrs==21.4.0",
    "Automat==22.10.0",
    "constantly==15.1.0",
    "hyperlink==21.0.0",
    "idna==2.10",
    "incremental==22.10.0",
    "PyHamcrest==1.10.1",
    "pyOpenSSL==21.0.0",
    "cryptography==3.3.2",
    "cffi==1.15.1",
    "pycparser==2.21",
    "enum34==1.1.10",
    "ipaddress==1.0.23",
    "service_identity==21.1.0",
    "pyasn1==0.5.1",
    "pyasn1_modules==0.3.0",
    "Jinja2==2.11.3",
    "MarkupSafe==1.1.1",
    "Werkzeug==1.0.1",
    "klein==20.6.0",
    "Tubes==0.2.1",
    "typing==3.10.0.0",
    "unittest2==1.1.0",
    "argparse==1.4.0",
    "linecache2==1.0.0",
    "traceback2==1.4.0",
    "setuptools==44.1.1",
    "ujson==2.0.3",
    "wsaccel==0.6.6",
];

/// Cases left out: 9.* (performance, minutes), 12.* and 13.* (permessage-deflate).
const EXCLUDED: &[&str] = &["9.*", "12.*", "13.*"];

/// How long the server may take to start listening.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// Runs the suite; failure if any case is FAILED or NON-STRICT.
pub fn run(root: &Path) -> Result<ExitCode> {
    let dir = root.join("target/autobahn");
    let python = python27()?;
    let lib = ensure_suite(&python, &dir)?;

    // The binary the tests use: `cargo build -p switchboard` would unify features without
    // the dev-dependencies and recompile some 30 crates (2.5 minutes in CI) right after
    // `cargo xtask test` built the same binary.
    println!("building the binary (as the tests do) and the echo plugin");
    let status = crate::cargo()
        .current_dir(root)
        .args(["test", "--no-run"])
        .status()
        .context("cannot run cargo test --no-run")?;
    if !status.success() {
        bail!("cargo test --no-run failed");
    }
    crate::build_plugins_of(root, Some(Lang::Rust), &["echo".to_owned()])?;

    let plugins = dir.join("plugins");
    fs::create_dir_all(&plugins)?;
    fs::copy(
        root.join("target/plugins/echo.wasm"),
        plugins.join("echo.wasm"),
    )
    .context("copying echo.wasm")?;
    let config = dir.join("switchboard.toml");
    fs::write(
        &config,
        "[[listener]]\naddr = \"127.0.0.1:0\"\nprotocol = \"websocket\"\napp = \"echo\"\n\
         max_message_bytes = 16777216\n\n[worker]\nplugins_dir = \"plugins\"\n\
         cache_dir = \"cache\"\n\n[run]\npid_file = \"run/switchboard.pid\"\n\
         log_file = \"run/switchboard.log\"\n",
    )?;
    let mut server = Server::start(&root.join("target/debug/switchboard"), &config)?;
    println!("switchboard serves the echo app on ws://{}", server.addr);

    let reports = dir.join("reports");
    let _ = fs::remove_dir_all(&reports);
    let spec = serde_json::json!({
        "outdir": reports,
        "servers": [{"agent": "switchboard", "url": format!("ws://{}", server.addr)}],
        "cases": ["*"],
        "exclude-cases": EXCLUDED,
        "exclude-agent-cases": {},
    });
    let spec_path = dir.join("fuzzingclient.json");
    fs::write(&spec_path, serde_json::to_vec_pretty(&spec)?)?;
    // The suite's packages include namespace packages (zope), which only a site directory
    // sets up: add `lib` as one, then run wstest's entry point.
    let launcher = format!(
        "import site, sys; site.addsitedir({lib:?}); sys.argv[0] = 'wstest'; \
         from autobahntestsuite.wstest import run; run()",
        lib = lib.display().to_string()
    );
    println!("running wstest -m fuzzingclient (every case but {EXCLUDED:?})");
    let status = Command::new(&python)
        .current_dir(&dir)
        .args(["-c", &launcher, "-m", "fuzzingclient", "-s"])
        .arg(&spec_path)
        .stdout(Stdio::null())
        .status()
        .context("cannot run wstest")?;
    server.stop();
    if !status.success() {
        bail!("wstest failed ({status})");
    }
    judge(&reports.join("index.json"))
}

/// Counts the behaviours in the report, prints them, and fails on FAILED or NON-STRICT.
fn judge(index: &Path) -> Result<ExitCode> {
    let text =
        fs::read_to_string(index).with_context(|| format!("no report at {}", index.display()))?;
    let report: serde_json::Value = serde_json::from_str(&text).context("report is not JSON")?;
    let cases = report
        .get("switchboard")
        .and_then(|c| c.as_object())
        .context("no results for the agent `switchboard` in the report")?;
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    let mut bad = Vec::new();
    for (case, result) in cases {
        let behavior = result["behavior"].as_str().unwrap_or("?").to_owned();
        let close = result["behaviorClose"].as_str().unwrap_or("?");
        if matches!(behavior.as_str(), "FAILED" | "NON-STRICT") || close == "FAILED" {
            bad.push(format!("{case}: {behavior} (close: {close})"));
        }
        *counts.entry(behavior).or_default() += 1;
    }
    bad.sort_by_key(|line| case_order(line));
    let summary: Vec<String> = counts.iter().map(|(b, n)| format!("{n} {b}")).collect();
    println!("autobahn: {} cases: {}", cases.len(), summary.join(", "));
    println!("report: {}", index.with_file_name("index.html").display());
    if bad.is_empty() {
        return Ok(ExitCode::SUCCESS);
    }
    for line in &bad {
        println!("  {line}");
    }
    println!("autobahn: {} case(s) FAILED or NON-STRICT", bad.len());
    Ok(ExitCode::FAILURE)
}

/// Sorts "3.10: …" after "3.2: …".
fn case_order(line: &str) -> Vec<u32> {
    line.split(':')
        .next()
        .unwrap_or_default()
        .split('.')
        .map(|n| n.parse().unwrap_or(u32::MAX))
        .collect()
}

/// A Python 2.7: `AUTOBAHN_PYTHON`, else pyenv's, else `python2.7` on the PATH.
fn python27() -> Result<PathBuf> {
    if let Some(p) = std::env::var_os("AUTOBAHN_PYTHON") {
        return Ok(PathBuf::from(p));
    }
    let home = std::env::var_os("HOME").map(PathBuf::from);
    if let Some(versions) = home.map(|h| h.join(".pyenv/versions"))
        && let Ok(entries) = fs::read_dir(&versions)
    {
        let mut found: Vec<PathBuf> = entries
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().starts_with("2.7"))
            .map(|e| e.path().join("bin/python"))
            .filter(|p| p.is_file())
            .collect();
        found.sort();
        if let Some(p) = found.pop() {
            return Ok(p);
        }
    }
    for name in ["python2.7", "python2"] {
        if Command::new(name)
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
        {
            return Ok(PathBuf::from(name));
        }
    }
    bail!(
        "the Autobahn testsuite needs Python 2.7: install it with pyenv (`pyenv install 2.7.18`) \
         or set AUTOBAHN_PYTHON to its interpreter"
    )
}

/// The suite installed into `dir/lib`, once per set of pins.
fn ensure_suite(python: &Path, dir: &Path) -> Result<PathBuf> {
    let lib = dir.join("lib");
    let stamp = lib.join(".installed");
    let pins = PACKAGES.join("\n");
    if fs::read_to_string(&stamp).is_ok_and(|s| s == pins) {
        return Ok(lib);
    }
    println!("installing autobahntestsuite 0.8.2 into target/autobahn/lib (Python 2.7, pinned)");
    let _ = fs::remove_dir_all(&lib);
    fs::create_dir_all(&lib)?;
    let status = crate::tools::pip_install(python)
        .args(["--no-deps", "--target"])
        .arg(&lib)
        .args(PACKAGES)
        .status()
        .context("cannot run pip")?;
    if !status.success() {
        bail!("pip install of the Autobahn testsuite failed");
    }
    fs::write(&stamp, pins)?;
    Ok(lib)
}

/// The server under test, stopped when dropped.
struct Server {
    child: Child,
    addr: String,
}

impl Server {
    /// Starts the binary and waits for its "listening on ADDR" line.
    fn start(binary: &Path, config: &Path) -> Result<Self> {
        let mut child = Command::new(binary)
            .args(["start", "-c"])
            .arg(config)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("cannot start {}", binary.display()))?;
        let stderr = child.stderr.take().context("stderr is piped")?;
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if let Some(rest) = line.split("listening on ").nth(1) {
                    let addr = rest.split_whitespace().next().unwrap_or_default();
                    let _ = tx.send(addr.to_owned());
                }
            }
        });
        match rx.recv_timeout(START_TIMEOUT) {
            Ok(addr) => Ok(Self { child, addr }),
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                bail!("switchboard did not start listening within {START_TIMEOUT:?}")
            }
        }
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}
