//! The command line and the process around gateways and workers.

mod serve;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::config::{Config, ConfigError};

/// Exit code for a problem the user must fix: bad config, port in use, missing plugin.
const EXIT_USAGE: u8 = 2;

/// Switchboard: a long-connection server whose logic runs as WebAssembly components.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the server in the foreground until Ctrl-C or SIGTERM.
    Start {
        /// The config file; default: ./switchboard.toml, or the built-in chat demo if absent.
        #[arg(short, long, value_name = "FILE")]
        config: Option<PathBuf>,
    },
}

/// Runs the command line; the exit code says how it went.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging();
    match cli.command {
        Command::Start { config } => {
            let config = match load_config(config) {
                Ok(config) => config,
                Err(e) => return usage_error(e),
            };
            let runtime = match tokio::runtime::Runtime::new() {
                Ok(runtime) => runtime,
                Err(e) => {
                    eprintln!("switchboard: cannot start the async runtime: {e}");
                    return ExitCode::FAILURE;
                }
            };
            match runtime.block_on(serve::run(config)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(serve::ServeError::Start(e)) => usage_error(e),
                Err(e) => {
                    eprintln!("switchboard: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

fn usage_error(e: impl std::fmt::Display) -> ExitCode {
    eprintln!("switchboard: {e}");
    ExitCode::from(EXIT_USAGE)
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
                tracing::info!("no switchboard.toml here: serving the chat demo");
                Ok(Config::demo())
            }
        }
    }
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
}
