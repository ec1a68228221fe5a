//! The `ledgerlink` binary; everything lives in the library.

fn main() -> std::process::ExitCode {
    ledgerlink_server::cli::main()
}
