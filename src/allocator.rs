//! The process allocator: mimalloc for Rust *and* for SQLite.
//!
//! Not part of the library (which forbids `unsafe`): the executable and the benchmarks
//! that measure what it does include this file, so they allocate the same way.
//!
//! musl's allocator serialises the static binary's threads on one lock (a third of the log
//! pipeline's throughput), and SQLite, left alone, calls the C library's `malloc` for every
//! page, cursor and prepared statement: a quarter of the ingester's time went to glibc's
//! `malloc`/`free` and to SQLite's memory-statistics mutex. So both go to mimalloc, built
//! without transparent huge pages, which would round every small process's heap up to
//! 2 MiB pages.
use std::ffi::{c_int, c_void};

use rusqlite::ffi;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `mi_option_purge_delay` in mimalloc v3's `mi_option_t` (include/mimalloc.h).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

unsafe extern "C" fn sqlite_malloc(n: c_int) -> *mut c_void {
    // SAFETY: any size is valid for mi_malloc; SQLite never asks for a negative one.
    unsafe { libmimalloc_sys::mi_malloc(usize::try_from(n).unwrap_or(0)) }
}

unsafe extern "C" fn sqlite_free(p: *mut c_void) {
    // SAFETY: SQLite frees only what `sqlite_malloc`/`sqlite_realloc` returned.
    unsafe { libmimalloc_sys::mi_free(p) }
}

unsafe extern "C" fn sqlite_realloc(p: *mut c_void, n: c_int) -> *mut c_void {
    // SAFETY: `p` came from this allocator (SQLite's contract for xRealloc).
    unsafe { libmimalloc_sys::mi_realloc(p, usize::try_from(n).unwrap_or(0)) }
}

unsafe extern "C" fn sqlite_size(p: *mut c_void) -> c_int {
    // SAFETY: `p` came from this allocator (SQLite's contract for xSize).
    let n = unsafe { libmimalloc_sys::mi_usable_size(p) };
    c_int::try_from(n).unwrap_or(c_int::MAX)
}

unsafe extern "C" fn sqlite_roundup(n: c_int) -> c_int {
    // SAFETY: mi_good_size only computes a size class.
    let n = unsafe { libmimalloc_sys::mi_good_size(usize::try_from(n).unwrap_or(0)) };
    c_int::try_from(n).unwrap_or(c_int::MAX)
}

unsafe extern "C" fn sqlite_init(_: *mut c_void) -> c_int {
    ffi::SQLITE_OK
}

unsafe extern "C" fn sqlite_shutdown(_: *mut c_void) {}

/// Sets the allocators up; call first thing in `main`, before any SQLite connection.
/// Returns whether SQLite took them (it refuses once initialised).
pub fn configure() -> bool {
    // Freed pages go back to the system at once instead of after 10 ms: the listener's
    // batches otherwise keep its peak at twice what it holds (measured 63 → 31 MiB).
    // SAFETY: sets a process-wide integer option; mimalloc reads options atomically.
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, 0) };
    let methods = ffi::sqlite3_mem_methods {
        xMalloc: Some(sqlite_malloc),
        xFree: Some(sqlite_free),
        xRealloc: Some(sqlite_realloc),
        xSize: Some(sqlite_size),
        xRoundup: Some(sqlite_roundup),
        xInit: Some(sqlite_init),
        xShutdown: Some(sqlite_shutdown),
        pAppData: std::ptr::null_mut(),
    };
    // SAFETY: sqlite3_config is called before sqlite3_initialize (the caller's contract;
    // SQLite answers SQLITE_MISUSE otherwise and keeps its defaults). SQLite copies the
    // methods struct (so a local will do), whose functions are valid for the whole process. Memory statistics
    // off: nothing reads them, and they take a global mutex on every allocation.
    unsafe {
        let memstatus = ffi::sqlite3_config(ffi::SQLITE_CONFIG_MEMSTATUS, 0 as c_int);
        let malloc = ffi::sqlite3_config(ffi::SQLITE_CONFIG_MALLOC, &raw const methods);
        memstatus == ffi::SQLITE_OK && malloc == ffi::SQLITE_OK
    }
}
