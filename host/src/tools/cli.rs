//! The command line of the plugin tools: `switchboard new|build|check|dev`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use super::ToolError;
use super::build::{Builder, Lang, default_output};
use super::new::Template;

/// The tools' subcommands, parsed apart from the server's.
pub const COMMANDS: [&str; 4] = ["new", "build", "check", "dev"];

/// Switchboard's plugin developer tools.
#[derive(Debug, Parser)]
#[command(name = "switchboard", version)]
struct Cli {
    #[command(subcommand)]
    command: Tool,
}

#[derive(Debug, Subcommand)]
enum Tool {
    /// Start a plugin project in ./NAME that builds as it is.
    New {
        /// The project's name, also the app name its component serves.
        name: String,
        /// rust, js, python or go.
        #[arg(long, default_value = "rust")]
        lang: String,
        /// echo, chat or empty.
        #[arg(long, default_value = "echo")]
        template: String,
    },
    /// Build the plugin in DIR into a component (toolchains go to ~/.cache/switchboard).
    Build {
        /// The plugin folder; default: the current one.
        #[arg(default_value = ".")]
        dir: PathBuf,
        /// The component to write; default: DIR/NAME.wasm, NAME being the folder's name.
        #[arg(short, long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
    /// Say whether a server would accept FILE (exit 0) or refuse it and why (exit 1).
    Check {
        /// The component.
        file: PathBuf,
        /// The app it is for; default: the file's name without `.wasm`.
        #[arg(long)]
        app: Option<String>,
    },
    /// Build, serve, and rebuild and hot-swap on every saved source file.
    Dev {
        /// The plugin folder; default: the current one.
        #[arg(default_value = ".")]
        dir: PathBuf,
        /// Where the WebSocket listener listens.
        #[arg(long, default_value = "127.0.0.1:8080")]
        addr: std::net::SocketAddr,
    },
}

/// Runs a tool command if the first argument names one; `None` leaves the command line to
/// the server's commands.
pub fn main_if_tool() -> Option<ExitCode> {
    let first = std::env::args().nth(1)?;
    if !COMMANDS.contains(&first.as_str()) {
        return None;
    }
    let cli = Cli::parse();
    Some(match run(cli.command) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("switchboard: {e}");
            ExitCode::from(2)
        }
    })
}

fn run(tool: Tool) -> Result<ExitCode, ToolError> {
    match tool {
        Tool::New {
            name,
            lang,
            template,
        } => {
            let lang = Lang::parse(&lang)?;
            let template = Template::parse(&template)?;
            let source = super::build::source_root()?;
            let dir =
                super::new::create(std::path::Path::new("."), &name, lang, template, &source)?;
            println!("created {} ({} plugin)\n", dir.display(), lang.name());
            println!("  cd {name}");
            println!("  switchboard dev      # serve it on ws://127.0.0.1:8080, rebuild on save");
            println!("  switchboard build    # write {name}.wasm");
            println!("  switchboard check {name}.wasm");
            Ok(ExitCode::SUCCESS)
        }
        Tool::Build { dir, out } => {
            let lang = detect(&dir)?;
            let out = match out {
                Some(out) => out,
                None => default_output(&dir)?,
            };
            let started = std::time::Instant::now();
            Builder::from_env()?.build(lang, &dir, &out)?;
            let size = std::fs::metadata(&out).map_or(0, |m| m.len());
            println!(
                "built {} ({:.1} KiB, {} plugin, {:.1} s)",
                out.display(),
                size as f64 / 1024.0,
                lang.name(),
                started.elapsed().as_secs_f64()
            );
            Ok(ExitCode::SUCCESS)
        }
        Tool::Check { file, app } => {
            let runtime = tokio::runtime::Runtime::new()
                .map_err(|e| ToolError::Failed(format!("cannot start a runtime: {e}")))?;
            match runtime.block_on(super::check::check(&file, app.as_deref())) {
                Ok(accepted) => {
                    println!(
                        "ok: {} would be accepted as app {} (version {})",
                        file.display(),
                        accepted.app,
                        accepted.version
                    );
                    Ok(ExitCode::SUCCESS)
                }
                Err(super::check::CheckError::Refused(reason)) => {
                    println!("refused: {reason}");
                    Ok(ExitCode::FAILURE)
                }
                Err(super::check::CheckError::Tool(e)) => Err(e),
            }
        }
        Tool::Dev { dir, addr } => {
            let lang = detect(&dir)?;
            super::dev::run(&dir, lang, addr)
        }
    }
}

/// The language of the plugin in `dir`, or an error saying what was looked for.
fn detect(dir: &std::path::Path) -> Result<Lang, ToolError> {
    Lang::detect(dir).ok_or_else(|| {
        ToolError::Failed(format!(
            "{} is no plugin folder: no Cargo.toml, package.json, pyproject.toml, app.py or go.mod",
            dir.display()
        ))
    })
}
