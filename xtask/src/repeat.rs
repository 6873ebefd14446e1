//! `cargo xtask test --repeat N`: the whole suite N times from one build, and a report of every
//! test that failed in any run, with its output. A flaky test shows up as failing in some runs.
//!
//! The parsing of `cargo test` output is plain code over text, tested below without running
//! anything.

use std::collections::BTreeMap;
use std::fs;
use std::io::Read as _;
use std::path::Path;
use std::process::Command;
use std::time::Instant;

use anyhow::{Context as _, Result, bail};

/// What one `cargo test` run reported.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct RunReport {
    /// Tests that passed, over every test binary.
    pub passed: u64,
    /// Failed tests as `binary: name`, in order, with their captured output.
    pub failed: Vec<(String, String)>,
    /// Test binaries cargo reported as failed (`--test e2e`, …): one that crashed or hung
    /// shows up here without a failed test.
    pub failed_targets: Vec<String>,
}

/// Reads the merged stdout and stderr of `cargo test --no-fail-fast`.
pub fn parse(output: &str) -> RunReport {
    let mut report = RunReport::default();
    let mut binary = String::new();
    let mut outputs: BTreeMap<String, String> = BTreeMap::new();
    // The test whose captured output is being read, if any.
    let mut capturing: Option<String> = None;
    let mut in_failed_targets = false;
    for line in output.lines() {
        let trimmed = line.trim();
        if let Some(rest) = trimmed.strip_prefix("Running ") {
            // "Running unittests src/lib.rs (target/debug/deps/…)" or "Running tests/e2e/main.rs (…)"
            let what = rest.split(" (").next().unwrap_or(rest);
            binary = what.trim_start_matches("unittests ").to_owned();
            capturing = None;
            continue;
        }
        if let Some(rest) = trimmed.strip_prefix("Doc-tests ") {
            binary = format!("doctests {rest}");
            capturing = None;
            continue;
        }
        if let Some(name) = line
            .strip_prefix("---- ")
            .and_then(|l| l.strip_suffix(" stdout ----"))
        {
            let key = format!("{binary}: {name}");
            outputs.entry(key.clone()).or_default();
            capturing = Some(key);
            continue;
        }
        if trimmed == "failures:" || trimmed.starts_with("test result:") {
            capturing = None;
        }
        if let Some(key) = &capturing {
            let text = outputs.entry(key.clone()).or_default();
            text.push_str(line);
            text.push('\n');
            continue;
        }
        if let Some(rest) = line.strip_prefix("test ")
            && let Some(name) = rest.strip_suffix(" ... FAILED")
        {
            report
                .failed
                .push((format!("{binary}: {name}"), String::new()));
            continue;
        }
        if let Some(rest) = trimmed.strip_prefix("test result: ") {
            report.passed += count_before(rest, " passed");
            continue;
        }
        if trimmed.starts_with("error: ") && trimmed.ends_with("targets failed:") {
            in_failed_targets = true;
            continue;
        }
        if let Some(target) = trimmed
            .strip_prefix("error: test failed, to rerun pass `")
            .and_then(|t| t.strip_suffix('`'))
        {
            report.failed_targets.push(target.to_owned());
            continue;
        }
        if in_failed_targets {
            match trimmed.strip_prefix('`').and_then(|t| t.strip_suffix('`')) {
                Some(target) => report.failed_targets.push(target.to_owned()),
                None => in_failed_targets = false,
            }
        }
    }
    for (name, text) in &mut report.failed {
        if let Some(captured) = outputs.remove(name.as_str()) {
            *text = captured.trim_end().to_owned();
        }
    }
    report.failed_targets.dedup();
    report
}

/// The number just before `suffix` in "N passed; M failed; …".
fn count_before(text: &str, suffix: &str) -> u64 {
    text.split(';')
        .find_map(|part| part.trim().trim_start_matches("ok. ").strip_suffix(suffix))
        .and_then(|n| n.trim().rsplit(' ').next()?.parse().ok())
        .unwrap_or(0)
}

/// Runs `cargo test ARGS` `times` times after one build; prints a line per run, then every
/// failed test with its output and a summary line. Returns whether every run passed.
pub fn run(root: &Path, cargo: impl Fn() -> Command, args: &[String], times: u32) -> Result<bool> {
    // Cargo's own options go before `--`, the test binaries' after it.
    let split = args.iter().position(|a| a == "--").unwrap_or(args.len());
    let (cargo_args, test_args) = args.split_at(split);

    let status = cargo()
        .current_dir(root)
        .args(["test", "--no-run"])
        .args(cargo_args)
        .status()
        .context("building the tests")?;
    if !status.success() {
        bail!("building the tests failed ({status})");
    }

    let logs = root.join("target/test-repeat");
    fs::create_dir_all(&logs).with_context(|| format!("creating {}", logs.display()))?;
    let mut runs: Vec<RunReport> = Vec::new();
    for n in 1..=times {
        let started = Instant::now();
        let (code, output) = run_once(root, &cargo, cargo_args, test_args)?;
        let log = logs.join(format!("run-{n}.log"));
        fs::write(&log, &output).with_context(|| format!("writing {}", log.display()))?;
        let mut report = parse(&output);
        if code != Some(0) && report.failed.is_empty() && report.failed_targets.is_empty() {
            report
                .failed_targets
                .push(format!("cargo test itself (exit {code:?})"));
        }
        let verdict = if report.failed.is_empty() && report.failed_targets.is_empty() {
            "ok".to_owned()
        } else {
            format!(
                "FAILED ({} failed test(s), target(s) {})",
                report.failed.len(),
                report.failed_targets.join(", ")
            )
        };
        println!(
            "run {n}/{times}: {verdict}; {} passed in {:.0} s; log: {}",
            report.passed,
            started.elapsed().as_secs_f64(),
            log.strip_prefix(root).unwrap_or(&log).display()
        );
        runs.push(report);
    }

    // Each failing test once, with the runs it failed in and each run's output.
    let mut by_test: BTreeMap<&str, Vec<(usize, &str)>> = BTreeMap::new();
    for (i, report) in runs.iter().enumerate() {
        for (name, text) in &report.failed {
            by_test.entry(name).or_default().push((i + 1, text));
        }
    }
    for (name, failures) in &by_test {
        let which: Vec<String> = failures.iter().map(|(n, _)| n.to_string()).collect();
        println!(
            "\n==== {name}: failed in run(s) {} of {times} ====",
            which.join(", ")
        );
        for (n, text) in failures {
            println!("---- run {n} ----\n{text}");
        }
    }
    let failed_runs = runs
        .iter()
        .filter(|r| !r.failed.is_empty() || !r.failed_targets.is_empty())
        .count();
    let names: Vec<String> = by_test
        .iter()
        .map(|(name, f)| format!("{name} ({}/{times})", f.len()))
        .collect();
    println!(
        "\ncargo xtask test --repeat {times}: {} of {times} runs passed; {}",
        times as usize - failed_runs,
        if names.is_empty() {
            "no test failed".to_owned()
        } else {
            format!("failed: {}", names.join(", "))
        }
    );
    Ok(failed_runs == 0)
}

/// One `cargo test --no-fail-fast`, its stdout and stderr merged in order.
fn run_once(
    root: &Path,
    cargo: &impl Fn() -> Command,
    cargo_args: &[String],
    test_args: &[String],
) -> Result<(Option<i32>, String)> {
    let (mut reader, writer) = std::io::pipe().context("creating a pipe")?;
    let mut cmd = cargo();
    cmd.current_dir(root)
        .args(["test", "--no-fail-fast"])
        .args(cargo_args)
        .args(test_args)
        .stdout(writer.try_clone().context("cloning a pipe")?)
        .stderr(writer);
    let mut child = cmd.spawn().with_context(|| format!("cannot run {cmd:?}"))?;
    // The command holds the pipe's write ends; drop them so the read ends with the child.
    drop(cmd);
    let mut bytes = Vec::new();
    reader
        .read_to_end(&mut bytes)
        .context("reading cargo test's output")?;
    let status = child.wait().context("waiting for cargo test")?;
    Ok((status.code(), String::from_utf8_lossy(&bytes).into_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const OUTPUT: &str = "\
   Compiling switchboard v0.1.0
    Finished `test` profile [unoptimized + debuginfo] target(s) in 0.31s
     Running unittests src/lib.rs (target/debug/deps/switchboard-0f)

running 2 tests
test gateway::a ... ok
test gateway::b ... ok

test result: ok. 2 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.01s

     Running tests/e2e/main.rs (target/debug/deps/e2e-1a)

running 3 tests
test ops::x ... ok
test ops::forced_stop ... FAILED
test sandbox::y ... FAILED

failures:

---- ops::forced_stop stdout ----
thread 'ops::forced_stop' panicked at tests/e2e/ops.rs:1:1:
address in use
---- sandbox::y stdout ----
boom

failures:
    ops::forced_stop
    sandbox::y

test result: FAILED. 1 passed; 2 failed; 0 ignored; 0 measured; 0 filtered out; finished in 3.20s

error: test failed, to rerun pass `-p switchboard --test e2e`
   Doc-tests switchboard

running 1 test
test src/lib.rs - x (line 3) ... ok

test result: ok. 1 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.5s

error: 1 target failed:
    `-p switchboard --test e2e`
";

    #[test]
    fn failed_tests_come_with_their_binary_and_output() {
        let report = parse(OUTPUT);
        assert_eq!(report.passed, 4);
        assert_eq!(
            report.failed,
            [
                (
                    "tests/e2e/main.rs: ops::forced_stop".to_owned(),
                    "thread 'ops::forced_stop' panicked at tests/e2e/ops.rs:1:1:\naddress in use"
                        .to_owned()
                ),
                (
                    "tests/e2e/main.rs: sandbox::y".to_owned(),
                    "boom".to_owned()
                ),
            ]
        );
        assert_eq!(report.failed_targets, ["-p switchboard --test e2e"]);
    }

    #[test]
    fn a_clean_run_reports_nothing_failed() {
        let clean: String = OUTPUT
            .lines()
            .filter(|l| !l.contains("FAILED") && !l.contains("error:"))
            .map(|l| format!("{l}\n"))
            .collect();
        let report = parse(&clean);
        assert!(report.failed.is_empty(), "{report:?}");
        assert!(report.failed_targets.is_empty(), "{report:?}");
    }

    #[test]
    fn a_crashed_binary_is_a_failed_target() {
        let crashed = "     Running tests/e2e/main.rs (target/debug/deps/e2e-1a)\n\n\
                       running 3 tests\n\
                       error: test failed, to rerun pass `--test e2e`\n\n\
                       Caused by:\n  process didn't exit successfully (signal: 9, SIGKILL)\n";
        let report = parse(crashed);
        assert!(report.failed.is_empty());
        assert_eq!(report.failed_targets, ["--test e2e"]);
    }
}
