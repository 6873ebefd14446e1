//! The server process as other commands see it: its pid file, whether it is alive, and
//! starting it as a daemon.

use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use rustix::process::{Pid, Signal};

use super::socket::{self, Request, Response};
use crate::config::{Role, RunConfig};
use crate::private_dir::{self, PrivateDirError};

/// Why a process-level command failed.
#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    /// A server is already running.
    #[error("switchboard is already running (pid {pid}, pid file {path})")]
    AlreadyRunning {
        /// Its pid.
        pid: u32,
        /// Its pid file.
        path: PathBuf,
    },
    /// No server is running.
    #[error("switchboard is not running (no live process in {0})")]
    NotRunning(PathBuf),
    /// A file or folder of the run directory could not be used.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The run folder is not this user's alone.
    #[error("run folder: {0}")]
    RunFolder(#[from] PrivateDirError),
    /// The daemon did not come up.
    #[error("the daemon did not start: {0}")]
    Daemon(String),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> ProcessError + '_ {
    move |source| ProcessError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Whether a process with this pid still runs any thread.
///
/// A killed multi-threaded process can show its main thread as a zombie while other threads
/// are still exiting and holding its sockets, so every thread is checked: only when all are
/// gone or zombies are its listening ports free again.
pub fn alive(pid: u32) -> bool {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return false;
    };
    tasks.flatten().any(|task| {
        std::fs::read_to_string(task.path().join("stat")).is_ok_and(|stat| running_state(&stat))
    })
}

/// Whether a `/proc/…/stat` line describes a thread that has not exited.
fn running_state(stat: &str) -> bool {
    // The state follows the parenthesised command name.
    stat.rsplit_once(')')
        .and_then(|(_, rest)| rest.trim_start().chars().next())
        .is_some_and(|state| !matches!(state, 'Z' | 'X' | 'x'))
}

/// The pid of the running server, if any. A pid file left by a process that is gone is
/// stale: it and the socket beside it are removed.
pub fn running(run: &RunConfig) -> Option<u32> {
    let text = std::fs::read_to_string(&run.pid_file).ok()?;
    match text.trim().parse::<u32>() {
        Ok(pid) if alive(pid) => Some(pid),
        _ => {
            // Said on stderr: `stop` and `status` run without a log.
            eprintln!(
                "switchboard: removed a stale pid file {} (its process is gone)",
                run.pid_file.display()
            );
            let _ = std::fs::remove_file(&run.pid_file);
            let _ = std::fs::remove_file(run.socket());
            None
        }
    }
}

/// The pid file of this process; removed (with the control socket) when dropped.
pub struct PidFile {
    run: RunConfig,
}

impl PidFile {
    /// Claims the run directory for this process: fails if another server runs.
    pub fn claim(run: &RunConfig) -> Result<Self, ProcessError> {
        if let Some(pid) = running(run) {
            return Err(ProcessError::AlreadyRunning {
                pid,
                path: run.pid_file.clone(),
            });
        }
        if let Some(dir) = run.pid_file.parent()
            && !dir.as_os_str().is_empty()
        {
            // Whoever can write here can replace the control socket.
            private_dir::create(dir)?;
        }
        // create_new: of two servers starting at once, only one gets the file.
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o644)
            .open(&run.pid_file)
            .map_err(|source| match source.kind() {
                std::io::ErrorKind::AlreadyExists => ProcessError::AlreadyRunning {
                    pid: running(run).unwrap_or(0),
                    path: run.pid_file.clone(),
                },
                _ => io(&run.pid_file)(source),
            })?;
        writeln!(file, "{}", std::process::id()).map_err(io(&run.pid_file))?;
        Ok(Self { run: run.clone() })
    }
}

impl Drop for PidFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(self.run.socket());
        let _ = std::fs::remove_file(&self.run.pid_file);
    }
}

/// Starts the server as a daemon (this binary again, in a session of its own, logging to
/// the log file) and returns once it answers on its control socket.
pub fn spawn_daemon(
    config_path: Option<&Path>,
    role: Option<Role>,
    run: &RunConfig,
) -> Result<u32, ProcessError> {
    if let Some(pid) = running(run) {
        return Err(ProcessError::AlreadyRunning {
            pid,
            path: run.pid_file.clone(),
        });
    }
    if let Some(dir) = run.log_file.parent()
        && !dir.as_os_str().is_empty()
    {
        // Usually the run folder, which the daemon then checks is private.
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(io(dir))?;
    }
    let log = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(&run.log_file)
        .map_err(io(&run.log_file))?;
    let log_offset = log.metadata().map(|m| m.len()).unwrap_or(0);
    let err_log = log.try_clone().map_err(io(&run.log_file))?;
    let exe = std::env::current_exe().map_err(|e| ProcessError::Daemon(e.to_string()))?;
    let mut command = Command::new(exe);
    command.args(["start", "--daemon-child"]);
    if let Some(path) = config_path {
        command.arg("-c").arg(path);
    }
    if let Some(role) = role {
        command.args(["--role", role.name()]);
    }
    let mut child = command
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(err_log)
        .spawn()
        .map_err(|e| ProcessError::Daemon(e.to_string()))?;
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            let tail = log_tail(&run.log_file, log_offset);
            return Err(ProcessError::Daemon(format!(
                "it exited ({status}):\n{tail}"
            )));
        }
        if let Ok(Response::Status(_)) = socket::call(&run.socket(), &Request::Status) {
            return Ok(child.id());
        }
        if Instant::now() > deadline {
            return Err(ProcessError::Daemon(format!(
                "no answer on {} after 120 s; see {}",
                run.socket().display(),
                run.log_file.display()
            )));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// What the daemon wrote to its log since `offset`.
fn log_tail(path: &Path, offset: u64) -> String {
    let text = std::fs::read(path).unwrap_or_default();
    let start = (offset as usize).min(text.len());
    String::from_utf8_lossy(&text[start..])
        .trim_end()
        .to_owned()
}

/// Ends a process at once.
pub fn kill(pid: u32) -> std::io::Result<()> {
    let pid = i32::try_from(pid)
        .ok()
        .and_then(Pid::from_raw)
        .ok_or_else(|| std::io::Error::other("not a valid pid"))?;
    rustix::process::kill_process(pid, Signal::KILL)?;
    Ok(())
}

/// Waits until a process is gone; false if it is still there after `limit`.
pub fn wait_gone(pid: u32, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    while alive(pid) {
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    true
}

/// Detaches the daemon child from its parent's session and terminal.
pub fn detach() {
    if let Err(e) = rustix::process::setsid() {
        tracing::warn!("cannot start a new session: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run_in(dir: &Path) -> RunConfig {
        RunConfig {
            pid_file: dir.join("run/sb.pid"),
            log_file: dir.join("run/sb.log"),
            stop_timeout_ms: 1000,
            ..RunConfig::default()
        }
    }

    #[test]
    fn a_claimed_pid_file_names_this_process_and_blocks_a_second_claim() {
        let dir = tempfile::tempdir().expect("temp dir");
        let run = run_in(dir.path());
        let claim = PidFile::claim(&run).expect("first claim");
        assert_eq!(running(&run), Some(std::process::id()));
        assert!(matches!(
            PidFile::claim(&run),
            Err(ProcessError::AlreadyRunning { .. })
        ));
        drop(claim);
        assert!(!run.pid_file.exists());
    }

    #[test]
    fn a_stale_pid_file_is_removed() {
        let dir = tempfile::tempdir().expect("temp dir");
        let run = run_in(dir.path());
        std::fs::create_dir_all(dir.path().join("run")).expect("dir");
        // Pid numbers above the kernel's maximum are never alive.
        std::fs::write(&run.pid_file, "4194305\n").expect("write");
        assert_eq!(running(&run), None);
        assert!(!run.pid_file.exists());
        std::fs::write(&run.pid_file, "garbage").expect("write");
        assert_eq!(running(&run), None);
    }

    #[test]
    fn a_process_is_alive_until_every_thread_has_exited() {
        assert!(alive(std::process::id()));
        assert!(running_state("42 (tokio (rt)) S 1 2 3"));
        assert!(!running_state("42 (switchboard) Z 1 2 3"));
        assert!(!running_state("42 (switchboard) X 1 2 3"));
        assert!(!running_state("garbage"));
    }
}
