//! The command line and the process around gateways and workers: `start [-d]`, `stop [-f]`,
//! `restart`, `reload`, `status [--json]`, `deploy` and the interactive console.

mod cluster;
mod console;
mod deploy;
mod log_rotation;
mod metrics;
mod process;
mod releases;
mod serve;
mod socket;
mod status;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::config::{Config, ConfigError, Role};
use socket::{Request, Response};

/// Exit code for a problem the user must fix: bad config, port in use, missing plugin,
/// already running, not running.
const EXIT_USAGE: u8 = 2;

/// Switchboard: a long-connection server whose logic runs as WebAssembly components.
/// Without a command it opens the interactive console.
#[derive(Debug, Parser)]
#[command(
    version,
    about,
    after_help = "Plugin tools (see `switchboard new --help`):\n  \
                  new NAME --lang L    start a plugin project\n  \
                  build [DIR]          build it into a component\n  \
                  check FILE.wasm      would a server accept it?\n  \
                  dev [DIR]            serve it, rebuild and hot-swap on save"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    config: ConfigArg,
}

/// Which config file; shared by every command.
#[derive(Debug, Clone, Args)]
struct ConfigArg {
    /// The config file; default: ./switchboard.toml, or the built-in chat demo if absent.
    #[arg(short, long, value_name = "FILE", global = true)]
    config: Option<PathBuf>,
}

/// A command, from the command line or typed in the console.
#[derive(Debug, Clone, Subcommand)]
enum Command {
    /// Run the server: in the foreground until Ctrl-C or SIGTERM, or as a daemon with -d.
    Start {
        /// Detach, write the pid file, log to the log file; return once clients are accepted.
        #[arg(short, long)]
        daemon: bool,
        /// Internal: this process is the daemon.
        #[arg(long, hide = true)]
        daemon_child: bool,
        /// Internal: also stop when standard input closes (the server of `switchboard dev`,
        /// which holds the other end, so the server never outlives it).
        #[arg(long, hide = true)]
        stop_on_stdin_eof: bool,
        /// What this process does in a cluster; overrides `cluster.role`.
        #[arg(long, value_enum)]
        role: Option<Role>,
    },
    /// Stop the running server: gracefully, or at once with -f.
    Stop {
        /// End it at once.
        #[arg(short, long)]
        force: bool,
    },
    /// Stop, then start.
    Restart {
        /// Start as a daemon.
        #[arg(short, long)]
        daemon: bool,
        /// What this process does in a cluster; overrides `cluster.role`.
        #[arg(long, value_enum)]
        role: Option<Role>,
    },
    /// Re-scan the plugin folder and apply the config's live settings.
    Reload,
    /// Show the running server's state.
    Status {
        /// Machine-readable JSON.
        #[arg(long)]
        json: bool,
    },
    /// Make a plugin file the running version of its app: on every worker of the cluster
    /// (through NATS JetStream), or in the plugin folder of this machine's server.
    Deploy {
        /// The plugin, a WebAssembly component.
        file: PathBuf,
        /// The app it is for; default: the file's name without `.wasm`.
        #[arg(long)]
        app: Option<String>,
    },
    /// The interactive console.
    Console,
}

/// What went wrong running a command, and the exit code it deserves.
struct Failure {
    message: String,
    code: u8,
}

impl Failure {
    fn usage(e: impl std::fmt::Display) -> Self {
        Self {
            message: e.to_string(),
            code: EXIT_USAGE,
        }
    }

    fn other(e: impl std::fmt::Display) -> Self {
        Self {
            message: e.to_string(),
            code: 1,
        }
    }
}

/// Runs the command line; the exit code says how it went.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let path = cli.config.config;
    let outcome = match cli.command {
        None | Some(Command::Console) => console::run(path),
        Some(command) => execute(&command, path.as_deref()),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("switchboard: {}", failure.message);
            ExitCode::from(failure.code)
        }
    }
}

/// Runs one command against the server of this config.
fn execute(command: &Command, path: Option<&Path>) -> Result<(), Failure> {
    let mut config = load_config(path.map(Path::to_owned)).map_err(Failure::usage)?;
    if let Command::Start {
        role: Some(role), ..
    }
    | Command::Restart {
        role: Some(role), ..
    } = *command
    {
        let file = path.unwrap_or(Path::new("switchboard.toml"));
        config.set_role(role, file).map_err(Failure::usage)?;
    }
    match *command {
        Command::Start {
            daemon: false,
            daemon_child,
            stop_on_stdin_eof,
            ..
        } => {
            if daemon_child {
                process::detach();
            }
            serve_foreground(config, path, daemon_child, stop_on_stdin_eof)
        }
        Command::Start {
            daemon: true, role, ..
        } => start_daemon(&config, path, role),
        Command::Stop { force } => stop(&config, force),
        Command::Restart { daemon, role } => {
            if process::running(&config.run).is_some() {
                stop(&config, false)?;
            }
            if daemon {
                start_daemon(&config, path, role)
            } else {
                serve_foreground(config, path, false, false)
            }
        }
        Command::Reload => match ask(&config, &Request::Reload)? {
            Response::Reloaded { changes } if changes.is_empty() => {
                println!("reloaded: nothing changed");
                Ok(())
            }
            Response::Reloaded { changes } => {
                println!("reloaded:");
                for change in changes {
                    println!("  {change}");
                }
                Ok(())
            }
            other => Err(unexpected(other)),
        },
        Command::Status { json } => match ask(&config, &Request::Status)? {
            Response::Status(status) if json => {
                let text = serde_json::to_string_pretty(&status).map_err(Failure::other)?;
                println!("{text}");
                Ok(())
            }
            Response::Status(status) => {
                print!("{}", status.render());
                Ok(())
            }
            other => Err(unexpected(other)),
        },
        Command::Deploy { ref file, ref app } => deploy::run(&config, file, app.as_deref()),
        Command::Console => console::run(path.map(Path::to_owned)),
    }
}

fn unexpected(response: Response) -> Failure {
    match response {
        Response::Error { message } => Failure::other(message),
        other => Failure::other(format!("unexpected answer: {other:?}")),
    }
}

/// Sends a request to the running server.
fn ask(config: &Config, request: &Request) -> Result<Response, Failure> {
    if process::running(&config.run).is_none() {
        return Err(Failure::usage(process::ProcessError::NotRunning(
            config.run.pid_file.clone(),
        )));
    }
    socket::call(&config.run.socket(), request).map_err(Failure::other)
}

/// Serves in this process; `daemon`: its stderr is the log file, which it rotates;
/// `stop_on_stdin_eof`: the end of standard input stops it as a signal would.
fn serve_foreground(
    config: Config,
    path: Option<&Path>,
    daemon: bool,
    stop_on_stdin_eof: bool,
) -> Result<(), Failure> {
    let run = &config.run;
    let rotating = daemon
        .then(|| log_rotation::open(&run.log_file, run.log_max_mib, run.log_keep))
        .flatten();
    let rotated = rotating.is_some();
    init_logging(&config, rotating);
    let runtime = tokio::runtime::Runtime::new()
        .map_err(|e| Failure::other(format!("cannot start the async runtime: {e}")))?;
    let path = path.map(Path::to_owned);
    let outcome = match runtime.block_on(serve::run(config, path, stop_on_stdin_eof)) {
        Ok(()) => Ok(()),
        Err(serve::ServeError::Start(e)) => Err(Failure::usage(e)),
        Err(e) => Err(Failure::other(e)),
    };
    if rotated && let Err(failure) = &outcome {
        // stderr may be a rotated-away file by now.
        tracing::error!("{}", failure.message);
    }
    outcome
}

fn start_daemon(config: &Config, path: Option<&Path>, role: Option<Role>) -> Result<(), Failure> {
    // The daemon resolves the same config file from its own working directory, which is ours.
    let pid = process::spawn_daemon(path, role, &config.run).map_err(Failure::usage)?;
    println!(
        "switchboard started (pid {pid}); log: {}",
        config.run.log_file.display()
    );
    Ok(())
}

fn stop(config: &Config, force: bool) -> Result<(), Failure> {
    let run = &config.run;
    let Some(pid) = process::running(run) else {
        return Err(Failure::usage(process::ProcessError::NotRunning(
            run.pid_file.clone(),
        )));
    };
    if force {
        process::kill(pid).map_err(Failure::other)?;
        process::wait_gone(pid, Duration::from_secs(10));
        // A killed server cannot clean up after itself.
        let _ = std::fs::remove_file(&run.pid_file);
        let _ = std::fs::remove_file(run.socket());
        println!("switchboard killed (pid {pid})");
        return Ok(());
    }
    match socket::call(&run.socket(), &Request::Stop) {
        Ok(Response::Stopping) => {}
        Ok(other) => return Err(unexpected(other)),
        Err(e) => return Err(Failure::other(e)),
    }
    let limit = Duration::from_millis(run.stop_timeout_ms) + Duration::from_secs(10);
    if process::wait_gone(pid, limit) {
        println!("switchboard stopped (pid {pid})");
        Ok(())
    } else {
        Err(Failure::other(format!(
            "pid {pid} is still running after {} s; `switchboard stop -f` ends it",
            limit.as_secs()
        )))
    }
}

/// The given file, else `./switchboard.toml`, else the demo.
fn load_config(path: Option<PathBuf>) -> Result<Config, ConfigError> {
    match path {
        Some(path) => Config::load(&path),
        None => {
            let default = PathBuf::from("switchboard.toml");
            if default.exists() {
                Config::load(&default)
            } else {
                Ok(Config::demo())
            }
        }
    }
}

/// Logs to stderr (the log file, for a daemon) at the config's level; `RUST_LOG` wins.
fn init_logging(config: &Config, file: Option<log_rotation::RotatingLog>) {
    let level = config.log.level.as_deref().unwrap_or("info");
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .or_else(|_| tracing_subscriber::EnvFilter::try_new(level))
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let logs = tracing_subscriber::fmt().with_env_filter(filter);
    let _ = match file {
        Some(file) => {
            log_rotation::log_panics();
            logs.with_writer(file).with_ansi(false).try_init()
        }
        None => logs
            .with_writer(std::io::stderr)
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .try_init(),
    };
}
