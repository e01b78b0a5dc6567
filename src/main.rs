//! The `decnet` executable: hands argv to the CLI and turns the outcome into an exit code.
use std::process::ExitCode;

/// musl's allocator serialises every thread on one lock and the store's writer, the
/// listener and the forwarder allocate per line: mimalloc keeps the static binary as fast
/// as a glibc build while returning freed pages to the system promptly.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    match decnet::cli::run(std::env::args_os().collect()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => ExitCode::from(decnet::cli::report(&err)),
    }
}
