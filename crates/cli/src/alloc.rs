//! The allocator: mimalloc (feature `mimalloc`, on by default), or glibc's malloc with
//! its arena limit set once at start.
//!
//! Why mimalloc: `cloudimg serve` allocates and frees many small strings per request
//! (a page of 25 images is some 600 allocations) on every tokio worker thread, and glibc's
//! malloc/free and arena locks were 23 % of the server's CPU under load. With mimalloc's
//! per-thread heaps the server's CPU per page fell from 0.13-0.14 to 0.10 ms (SQLite) and
//! from 0.17-0.20 to 0.13 ms (PostgreSQL), same build otherwise, A/B in turn
//! (`/tmp`-style run recorded in BENCHMARKS.md, 2026-12-06 16:10 UTC). The price is
//! peak RSS in the toolkit: mimalloc keeps freed memory for 10 ms before it gives it
//! back, and the 1-8 MiB buffers that pass between threads piled up meanwhile (a 1 GiB
//! import into Swift: 174 MiB with glibc, 268 MiB). With a 5 ms delay (set here; the
//! environment's `MIMALLOC_PURGE_DELAY` wins) it peaked at 183 MiB for 0.3 s more
//! system time, and the server kept its gain (0.09-0.10 / 0.12-0.13 ms per page). A
//! 1 GiB Swift upload peaks at 49-51 MiB (glibc 42), `pack` at 43-47 (glibc 21-22).
//! The A/B: `benches/compare/api_ab.sh OLD NEW`.
//!
//! glibc (`--no-default-features --features isal`):
//! glibc gives a thread that meets contention an arena of its own (up to eight per core)
//! and keeps what is freed there for that arena's later use. Export and import pass
//! 1-8 MiB buffers between a dozen threads (segment jobs, read-ahead, write-behind,
//! gzip workers), so freed buffers piled up in arenas that never reused them: a 1 GiB
//! export into the local Swift peaked at 192 MiB RSS with the default and at 86 MiB with
//! two arenas, in the same time (measured with `MALLOC_ARENA_MAX=2`). A worker that links
//! the libraries instead of running this binary wants the same setting.

/// mimalloc's `mi_option_purge_delay` (its position in `mi_option_t`, mimalloc.h v2).
#[cfg(feature = "mimalloc")]
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Sets the allocator up: mimalloc's purge delay, or glibc's arena limit.
pub fn init() {
    #[cfg(feature = "mimalloc")]
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        // SAFETY: setting an option is a plain store mimalloc reads when it purges.
        unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, 5) };
    }
    #[cfg(not(feature = "mimalloc"))]
    limit_arenas();
}

/// Limits glibc to two malloc arenas unless `MALLOC_ARENA_MAX` says otherwise.
#[cfg(not(feature = "mimalloc"))]
fn limit_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        // SAFETY: mallopt only adjusts allocator parameters; it is called before any
        // thread is started.
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, 2);
        }
    }
}

#[cfg(feature = "mimalloc")]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
