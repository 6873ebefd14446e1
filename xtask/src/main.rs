//! `cargo xtask …`: build the plugins, run the demo, run the tests.
//!
//! The alias in `.cargo/config.toml` builds this crate in `target/xtask`, so running it from
//! inside a `cargo test` never waits for the lock of `target/`. Plugins are built in
//! `target/wasm` for the same reason.

use std::env;
use std::ffi::OsString;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use anyhow::{Context as _, Result, bail};

/// The Rust target plugins are built for.
const WASM_TARGET: &str = "wasm32-wasip2";
/// The Cargo profile plugins are built with (see the root Cargo.toml).
const PLUGIN_PROFILE: &str = "plugin";
/// The package name of the plugin in `plugins/<dir>` is this prefix followed by `<dir>`.
const PACKAGE_PREFIX: &str = "switchboard-plugin-";

const USAGE: &str = "\
usage: cargo xtask <command>

commands:
  plugins [NAME...]   build the plugins (all of plugins/*, or the named ones) for wasm32-wasip2
                      and copy them to target/plugins/NAME.wasm
  demo                build the plugins, then run the host serving the chat demo on 127.0.0.1:8080
  test [ARGS...]      build the plugins, then run `cargo test ARGS...`
  help                print this";

fn main() -> ExitCode {
    match run() {
        Ok(code) => code,
        Err(e) => {
            eprintln!("xtask: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<ExitCode> {
    let mut args = env::args_os().skip(1);
    let Some(command) = args.next() else {
        eprintln!("{USAGE}");
        return Ok(ExitCode::FAILURE);
    };
    let rest: Vec<OsString> = args.collect();
    let root = workspace_root()?;
    match command.to_str() {
        Some("plugins") => {
            let names = rest
                .iter()
                .map(|a| {
                    a.to_str()
                        .map(str::to_owned)
                        .with_context(|| format!("plugin name {a:?} is not UTF-8"))
                })
                .collect::<Result<Vec<_>>>()?;
            build_plugins(&root, &names)?;
            Ok(ExitCode::SUCCESS)
        }
        Some("demo") => {
            build_plugins(&root, &[])?;
            println!();
            println!("Starting the host: the chat demo will listen on ws://127.0.0.1:8080");
            println!(
                "Connect by opening {} in a browser,",
                root.join("plugins/chat/web/index.html").display()
            );
            println!("or with any WebSocket client (e.g. `websocat ws://127.0.0.1:8080`),");
            println!("then type `/nick NAME`, `/join lobby` and chat. Ctrl-C stops the host.");
            println!();
            let mut cmd = cargo();
            cmd.current_dir(&root)
                .args(["run", "--release", "-p", "switchboard", "--", "start"]);
            status_of(&mut cmd)
        }
        Some("test") => {
            build_plugins(&root, &[])?;
            let mut cmd = cargo();
            cmd.current_dir(&root).arg("test").args(&rest);
            status_of(&mut cmd)
        }
        Some("help" | "-h" | "--help") => {
            println!("{USAGE}");
            Ok(ExitCode::SUCCESS)
        }
        _ => {
            eprintln!("xtask: unknown command {command:?}\n\n{USAGE}");
            Ok(ExitCode::FAILURE)
        }
    }
}

/// The workspace root: the parent of this crate's directory.
fn workspace_root() -> Result<PathBuf> {
    // Compile-time, so the answer does not depend on the environment xtask is run from
    // (a `cargo test` of another crate sets its own CARGO_MANIFEST_DIR).
    let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let root = manifest_dir
        .parent()
        .context("xtask's CARGO_MANIFEST_DIR has no parent")?
        .to_path_buf();
    if !root.join("Cargo.toml").is_file() {
        bail!("no Cargo.toml in the workspace root {}", root.display());
    }
    Ok(root)
}

/// A `cargo` command: the one running us if known, else `cargo` from `PATH`.
fn cargo() -> Command {
    Command::new(env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
}

/// Runs `cmd` to its end and returns its exit status as ours.
fn status_of(cmd: &mut Command) -> Result<ExitCode> {
    let status = cmd
        .status()
        .with_context(|| format!("cannot run {cmd:?}"))?;
    Ok(match status.code() {
        Some(0) => ExitCode::SUCCESS,
        Some(code) => ExitCode::from(u8::try_from(code).unwrap_or(1)),
        None => ExitCode::FAILURE,
    })
}

/// The plugin folders: every `plugins/<dir>` holding a `Cargo.toml`, sorted.
fn discover_plugins(root: &Path) -> Result<Vec<String>> {
    let dir = root.join("plugins");
    let mut names = Vec::new();
    for entry in fs::read_dir(&dir).with_context(|| format!("reading {}", dir.display()))? {
        let entry = entry?;
        if entry.path().join("Cargo.toml").is_file() {
            match entry.file_name().into_string() {
                Ok(name) => names.push(name),
                Err(name) => bail!("plugin folder name {name:?} is not UTF-8"),
            }
        }
    }
    names.sort();
    Ok(names)
}

/// Makes sure the standard library for wasm32-wasip2 is installed, with rustup if needed.
fn ensure_wasm_target(root: &Path) -> Result<()> {
    // Fast path, and the only way without rustup: the target's libraries in the sysroot.
    if let Ok(out) = Command::new(env::var_os("RUSTC").unwrap_or_else(|| "rustc".into()))
        .current_dir(root)
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
        .current_dir(root)
        .args(["target", "list", "--installed"])
        .output()
    {
        Ok(out) if out.status.success() => out,
        Ok(out) => bail!(
            "`rustup target list --installed` failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ),
        Err(e) => bail!(
            "the {WASM_TARGET} target is not installed and rustup cannot be run ({e}); \
             install rustup (https://rustup.rs) or the {WASM_TARGET} standard library \
             for your toolchain"
        ),
    };
    if String::from_utf8_lossy(&installed.stdout)
        .lines()
        .any(|l| l.trim() == WASM_TARGET)
    {
        return Ok(());
    }
    println!("installing the {WASM_TARGET} target: rustup target add {WASM_TARGET}");
    let status = Command::new("rustup")
        .current_dir(root)
        .args(["target", "add", WASM_TARGET])
        .status()
        .context("running rustup target add")?;
    if !status.success() {
        bail!("`rustup target add {WASM_TARGET}` failed ({status})");
    }
    Ok(())
}

/// Builds the named plugins (all when `only` is empty) and copies them to `target/plugins`.
fn build_plugins(root: &Path, only: &[String]) -> Result<()> {
    let all = discover_plugins(root)?;
    let selected: Vec<String> = if only.is_empty() {
        all
    } else {
        for name in only {
            if !all.contains(name) {
                bail!(
                    "no plugin {name:?} (there is no plugins/{name}/Cargo.toml); known: {}",
                    all.join(", ")
                );
            }
        }
        only.to_vec()
    };
    if selected.is_empty() {
        bail!("no plugin found under {}", root.join("plugins").display());
    }
    ensure_wasm_target(root)?;

    let wasm_dir = root.join("target/wasm");
    let mut cmd = cargo();
    cmd.current_dir(root).args([
        "build",
        "--profile",
        PLUGIN_PROFILE,
        "--target",
        WASM_TARGET,
        "--target-dir",
    ]);
    cmd.arg(&wasm_dir);
    for name in &selected {
        cmd.arg("-p").arg(format!("{PACKAGE_PREFIX}{name}"));
    }
    let status = cmd
        .status()
        .with_context(|| format!("cannot run {cmd:?}"))?;
    if !status.success() {
        bail!("building the plugins failed ({status})");
    }

    let built = wasm_dir.join(WASM_TARGET).join(PLUGIN_PROFILE);
    let out_dir = root.join("target/plugins");
    fs::create_dir_all(&out_dir).with_context(|| format!("creating {}", out_dir.display()))?;
    for name in &selected {
        // Cargo names the artifact after the lib name, with `-` turned into `_`.
        let candidates = [
            built.join(format!("{name}.wasm")),
            built.join(format!("{}.wasm", name.replace('-', "_"))),
        ];
        let Some(src) = candidates.iter().find(|p| p.is_file()) else {
            bail!(
                "plugin {name} built, but {} is missing (is its lib name `{name}`?)",
                candidates[0].display()
            );
        };
        let dest = out_dir.join(format!("{name}.wasm"));
        // Copy to a temporary name, then rename: a watching host never sees a partial file.
        let tmp = out_dir.join(format!(".{name}.wasm.tmp"));
        fs::copy(src, &tmp)
            .with_context(|| format!("copying {} to {}", src.display(), tmp.display()))?;
        fs::rename(&tmp, &dest)
            .with_context(|| format!("renaming {} to {}", tmp.display(), dest.display()))?;
        let size = fs::metadata(&dest)?.len();
        println!(
            "{name:<10} {:>9.1} KiB  {}",
            size as f64 / 1024.0,
            dest.strip_prefix(root).unwrap_or(&dest).display()
        );
    }
    Ok(())
}
