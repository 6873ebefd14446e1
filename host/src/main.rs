//! The `switchboard` command.

fn main() -> std::process::ExitCode {
    switchboard::control::main()
}
