//! The interactive console: SwooleWorker's command panel, with history and line editing.

use std::path::PathBuf;

use clap::Parser;
use rustyline::DefaultEditor;
use rustyline::error::ReadlineError;

use super::{Command, Failure, execute};

const HELP: &str = "\
commands:
  start [-d]      start the server in the background (the console stays)
  restart [-d]    stop, then start in the background
  reload          re-scan the plugin folder and apply the config's live settings
  stop [-f]       stop gracefully, or at once with -f
  status [--json] show the running server's state
  clear           clear the screen
  help            this list
  exit            leave the console (the server keeps running)";

/// One line typed at the prompt, parsed as a command.
#[derive(Debug, Parser)]
#[command(
    no_binary_name = true,
    disable_help_flag = true,
    disable_version_flag = true
)]
struct Line {
    #[command(subcommand)]
    command: Command,
}

/// What the console does with a line.
#[derive(Debug, PartialEq)]
enum Action {
    Nothing,
    Help,
    Clear,
    Exit,
    Run(String),
    Unknown(String),
}

fn classify(line: &str) -> Action {
    let words: Vec<&str> = line.split_whitespace().collect();
    match words.first().copied() {
        None => Action::Nothing,
        Some("help" | "?") => Action::Help,
        Some("clear") => Action::Clear,
        Some("exit" | "quit") => Action::Exit,
        Some("start" | "restart" | "reload" | "stop" | "status") => Action::Run(line.to_owned()),
        Some(other) => Action::Unknown(other.to_owned()),
    }
}

/// Runs the console until `exit` or end of input.
pub fn run(config: Option<PathBuf>) -> Result<(), Failure> {
    let mut editor = DefaultEditor::new().map_err(Failure::other)?;
    println!(
        "Switchboard {} console. Type `help` for the commands, `exit` to leave.",
        env!("CARGO_PKG_VERSION")
    );
    loop {
        let line = match editor.readline("switchboard> ") {
            Ok(line) => line,
            Err(ReadlineError::Interrupted) => continue,
            Err(ReadlineError::Eof) => return Ok(()),
            Err(e) => return Err(Failure::other(e)),
        };
        let _ = editor.add_history_entry(line.as_str());
        match classify(&line) {
            Action::Nothing => {}
            Action::Help => println!("{HELP}"),
            Action::Clear => {
                let _ = editor.clear_screen();
            }
            Action::Exit => return Ok(()),
            Action::Unknown(word) => {
                println!("unknown command `{word}`; type `help` for the list");
            }
            Action::Run(line) => run_line(&line, config.as_deref()),
        }
    }
}

fn run_line(line: &str, config: Option<&std::path::Path>) {
    let command = match Line::try_parse_from(line.split_whitespace()) {
        Ok(Line { command }) => command,
        Err(e) => {
            println!("{}", e.to_string().trim_end());
            return;
        }
    };
    // A foreground server would take over the console: the console starts daemons.
    let command = match command {
        Command::Start { role, .. } => Command::Start {
            daemon: true,
            daemon_child: false,
            stop_on_stdin_eof: false,
            role,
        },
        Command::Restart { role, .. } => Command::Restart { daemon: true, role },
        other => other,
    };
    if let Err(failure) = execute(&command, config) {
        println!("error: {}", failure.message);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_classified() {
        assert_eq!(classify("   "), Action::Nothing);
        assert_eq!(classify("help"), Action::Help);
        assert_eq!(classify("exit"), Action::Exit);
        assert_eq!(classify("stop -f"), Action::Run("stop -f".into()));
        assert_eq!(classify("sttaus"), Action::Unknown("sttaus".into()));
    }

    #[test]
    fn typed_commands_parse_like_the_command_line() {
        let Line { command } = Line::try_parse_from(["stop", "-f"]).expect("parses");
        assert!(matches!(command, Command::Stop { force: true }));
        let Line { command } = Line::try_parse_from(["status", "--json"]).expect("parses");
        assert!(matches!(command, Command::Status { json: true }));
        assert!(Line::try_parse_from(["stop", "--now"]).is_err());
    }
}
