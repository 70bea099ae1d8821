//! The allocator's arena limit, set once at start.
//!
//! glibc gives a thread that meets contention an arena of its own (up to eight per core)
//! and keeps what is freed there for that arena's later use. Export and import pass
//! 1-8 MiB buffers between a dozen threads (segment jobs, read-ahead, write-behind,
//! gzip workers), so freed buffers piled up in arenas that never reused them: a 1 GiB
//! export into the local Swift peaked at 192 MiB RSS with the default and at 86 MiB with
//! two arenas, in the same time (measured with `MALLOC_ARENA_MAX=2`). A worker that links
//! the libraries instead of running this binary wants the same setting.

/// Limits glibc to two malloc arenas unless `MALLOC_ARENA_MAX` says otherwise.
pub fn limit_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        // SAFETY: mallopt only adjusts allocator parameters; it is called before any
        // thread is started.
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, 2);
        }
    }
}
