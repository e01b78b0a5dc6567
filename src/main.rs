//! The `decnet` executable: hands argv to the CLI and turns the outcome into an exit code.
use std::process::ExitCode;

mod allocator;

fn main() -> ExitCode {
    allocator::configure();
    match decnet::cli::run(std::env::args_os().collect()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => ExitCode::from(decnet::cli::report(&err)),
    }
}
