//! The `switchboard` command.

fn main() -> std::process::ExitCode {
    // `new`, `build`, `check` and `dev` are the plugin tools; everything else is the server's.
    if let Some(code) = switchboard::tools::cli::main_if_tool() {
        return code;
    }
    switchboard::control::main()
}
