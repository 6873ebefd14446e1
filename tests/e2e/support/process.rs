//! What `/proc` says about a server process (its memory and CPU time), the file limit many
//! clients need, and the CPUs servers and clients run on: for the benchmarks.

use std::process::Command;

/// Resident memory of a process, KiB.
pub fn rss_kib(pid: u32) -> u64 {
    status_kib(pid, "VmRSS")
}

/// Memory a process has reserved for data (heap and private mappings, touched or not), KiB.
pub fn data_kib(pid: u32) -> u64 {
    status_kib(pid, "VmData")
}

/// A KiB figure of `/proc/PID/status`.
fn status_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("{field} in /proc/{pid}/status"))
}

/// CPU time (user + system) a process has used so far, in seconds.
pub fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("proc stat");
    // The fields after the command name, which is in parentheses and may hold spaces.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .expect("a command name")
        .1
        .split_whitespace()
        .collect();
    let ticks: u64 =
        fields[11].parse::<u64>().expect("utime") + fields[12].parse::<u64>().expect("stime");
    ticks as f64 / clock_ticks() as f64
}

/// The kernel's clock ticks per second (`getconf CLK_TCK`).
fn clock_ticks() -> u64 {
    let out = Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .expect("getconf runs");
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .expect("a number")
}

/// Raises this process's soft limit of open files to the hard limit (the servers started
/// from here inherit it): every client needs a socket on each side.
pub fn raise_file_limit() {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let mut limit = getrlimit(Resource::Nofile);
    if limit.current < limit.maximum {
        limit.current = limit.maximum;
        if let Err(e) = setrlimit(Resource::Nofile, limit) {
            eprintln!("cannot raise the open-file limit: {e}");
        }
    }
}

/// `SWITCHBOARD_BENCH_CPUS`, `SERVERS:CLIENTS` in taskset's list syntax (`0:1`, `0-3:4-7`):
/// a benchmark run with it keeps the servers it starts on the first CPUs and its own load
/// generator on the second, so that the two do not take each other's cores.
pub fn bench_cpus() -> Option<(String, String)> {
    let spec = std::env::var("SWITCHBOARD_BENCH_CPUS").ok()?;
    let (servers, clients) = spec
        .split_once(':')
        .filter(|(s, c)| !s.is_empty() && !c.is_empty())
        .unwrap_or_else(|| {
            panic!("SWITCHBOARD_BENCH_CPUS={spec:?}: expected SERVERS:CLIENTS, such as 0:1")
        });
    Some((servers.to_owned(), clients.to_owned()))
}

/// Moves every thread of `pid` to `cpus` (taskset's list syntax); threads it starts later
/// inherit the set from the thread that starts them.
pub fn pin(pid: u32, cpus: &str) {
    let status = Command::new("taskset")
        .args(["--all-tasks", "--pid", "--cpu-list", cpus, &pid.to_string()])
        .stdout(std::process::Stdio::null())
        .status()
        .expect("taskset runs");
    assert!(
        status.success(),
        "taskset could not pin {pid} to CPUs {cpus}"
    );
}

/// A command that runs `program` on the servers' CPUs of `SWITCHBOARD_BENCH_CPUS` if it is
/// set (through `taskset`, which execs it: the process id is the server's), else as it is.
/// Set from the start, so that the server sizes its thread pools to those CPUs.
pub fn server_command(program: impl AsRef<std::ffi::OsStr>) -> Command {
    match bench_cpus() {
        Some((servers, _)) => {
            let mut taskset = Command::new("taskset");
            taskset.args(["--cpu-list", &servers]).arg(program);
            taskset
        }
        None => Command::new(program),
    }
}
