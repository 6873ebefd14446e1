//! `cargo xtask fuzz [--seconds N | --runs N | --cmin] [TARGET...]`: runs the coverage-guided
//! fuzz targets of `fuzz/` (cargo-fuzz on nightly, both installed on first use), each on its
//! corpus in `fuzz/corpus/TARGET`, which the run grows and the repository keeps; `--cmin`
//! instead shrinks each corpus to the fewest inputs that keep its coverage.

use std::ffi::OsString;
use std::path::Path;
use std::process::{Command, ExitCode};

use anyhow::{Context as _, Result, bail};

/// Every target, in the order they run.
const TARGETS: [&str; 5] = [
    "line_codec",
    "frame_codec",
    "handshake",
    "bus_codec",
    "config",
];

/// How long each target runs without `--seconds` or `--runs`.
const DEFAULT_SECONDS: u32 = 10;

/// Runs the chosen targets (all by default), one after the other; fails on the first crash.
pub fn run(root: &Path, args: &[OsString]) -> Result<ExitCode> {
    let mut limit = format!("-max_total_time={DEFAULT_SECONDS}");
    let mut minimise = false;
    let mut targets = Vec::new();
    let mut args = args.iter().map(|a| a.to_string_lossy().into_owned());
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--seconds" => limit = format!("-max_total_time={}", number(args.next())?),
            "--runs" => limit = format!("-runs={}", number(args.next())?),
            "--cmin" => minimise = true,
            name if TARGETS.contains(&name) => targets.push(name.to_owned()),
            other => bail!("unknown fuzz target or option {other:?}; targets: {TARGETS:?}"),
        }
    }
    if targets.is_empty() {
        targets = TARGETS.map(str::to_owned).to_vec();
    }
    install()?;
    let fuzz = root.join("fuzz");
    for target in &targets {
        let mut cargo = Command::new("cargo");
        cargo.current_dir(&fuzz);
        if minimise {
            println!("fuzz: minimising the corpus of {target}");
            cargo.args(["+nightly", "fuzz", "cmin", target, "-O"]);
        } else {
            println!("fuzz: {target} ({limit})");
            cargo
                .args(["+nightly", "fuzz", "run", target, "-O", "--"])
                .arg(&limit);
        }
        let status = cargo.status().context("cannot run cargo fuzz")?;
        if !status.success() {
            eprintln!("fuzz: {target} failed; the input is in fuzz/artifacts/{target}/");
            return Ok(ExitCode::FAILURE);
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn number(arg: Option<String>) -> Result<u64> {
    arg.and_then(|a| a.parse().ok())
        .context("--seconds and --runs need a number")
}

/// The nightly toolchain and cargo-fuzz, when missing.
fn install() -> Result<()> {
    let has_nightly = Command::new("rustup")
        .args(["run", "nightly", "rustc", "--version"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !has_nightly {
        println!("fuzz: installing the nightly toolchain");
        ensure(Command::new("rustup").args([
            "toolchain",
            "install",
            "nightly",
            "--profile",
            "minimal",
        ]))?;
    }
    let has_fuzz = Command::new("cargo")
        .args(["fuzz", "--version"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !has_fuzz {
        println!("fuzz: installing cargo-fuzz");
        ensure(Command::new("cargo").args(["install", "cargo-fuzz", "--locked"]))?;
    }
    Ok(())
}

fn ensure(cmd: &mut Command) -> Result<()> {
    let status = cmd
        .status()
        .with_context(|| format!("cannot run {cmd:?}"))?;
    if !status.success() {
        bail!("{cmd:?} failed");
    }
    Ok(())
}
