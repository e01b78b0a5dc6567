//! The `decnet` executable: hands argv to the CLI and turns the outcome into an exit code.
use std::process::ExitCode;

/// musl's allocator serialises the static binary's threads on one lock (a third of the log
/// pipeline's throughput); mimalloc, built without transparent huge pages, which would
/// round every small process's heap up to 2 MiB pages.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    match decnet::cli::run(std::env::args_os().collect()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => ExitCode::from(decnet::cli::report(&err)),
    }
}
