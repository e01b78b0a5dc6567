//! The `decnet` executable: hands argv to the CLI and turns the outcome into an exit code.
use std::process::ExitCode;

/// musl's allocator serialises the static binary's threads on one lock (a third of the log
/// pipeline's throughput); mimalloc, built without transparent huge pages, which would
/// round every small process's heap up to 2 MiB pages.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `mi_option_purge_delay` in mimalloc v3's `mi_option_t` (include/mimalloc.h).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

fn main() -> ExitCode {
    // Freed pages go back to the system at once instead of after 10 ms: the listener's
    // batches otherwise keep its peak at twice what it holds (measured 63 → 31 MiB).
    // SAFETY: sets a process-wide integer option; mimalloc reads options atomically.
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, 0) };
    match decnet::cli::run(std::env::args_os().collect()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => ExitCode::from(decnet::cli::report(&err)),
    }
}
