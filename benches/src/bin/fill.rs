//! The floor under every "new output" row of `compare/convert.sh`: MiB bytes written
//! into a new file through the page cache by a program that reads nothing and computes
//! nothing, so what it takes is what this machine's kernel and memory take.
//!
//! ```text
//! fill write PATH MIB THREADS [CHUNK_KIB]   pwrite(2) from one reused buffer per thread
//! fill mmap  PATH MIB THREADS [CHUNK_KIB]   copies into a shared mapping of the file
//! ```
//! THREADS each fill an equal share. ext4 takes the inode lock for every buffered
//! write, so writers share one lock; faults into a shared mapping do not take it. The
//! bytes are not zeros, so nothing can skip them.

use std::fs::OpenOptions;
use std::os::unix::fs::FileExt;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let parsed = (|| -> Option<(String, String, u64, u64, usize)> {
        let chunk_kib = args.get(5).map_or(Some(8192), |c| c.parse().ok())?;
        Some((
            args.get(1)?.clone(),
            args.get(2)?.clone(),
            args.get(3)?.parse().ok()?,
            args.get(4)?.parse().ok()?,
            chunk_kib * 1024,
        ))
    })();
    let Some((mode, path, mib, threads, chunk)) = parsed else {
        eprintln!("usage: fill write|mmap PATH MIB THREADS [CHUNK_KIB]");
        return ExitCode::from(2);
    };
    match fill(&mode, &path, mib << 20, threads.max(1), chunk.max(4096)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("fill: {path}: {e}");
            ExitCode::from(2)
        }
    }
}

fn fill(mode: &str, path: &str, total: u64, threads: u64, chunk: usize) -> std::io::Result<()> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)?;
    let pattern: Vec<u8> = (0..chunk).map(|i| (i * 7 + 1) as u8).collect();
    let share = total.div_ceil(threads).div_ceil(chunk as u64) * chunk as u64;
    let map = match mode {
        "write" => None,
        "mmap" => {
            file.set_len(total)?;
            // SAFETY: the file is ours, created above, and nothing else maps or resizes it.
            Some(unsafe {
                memmap2::MmapOptions::new()
                    .len(total as usize)
                    .map_mut(&file)?
            })
        }
        _ => return Err(std::io::Error::other("mode is write or mmap")),
    };
    let base = map.as_ref().map(|m| m.as_ptr() as usize);
    std::thread::scope(|s| {
        let mut handles = Vec::new();
        for t in 0..threads {
            let (start, end) = ((t * share).min(total), ((t + 1) * share).min(total));
            let (file, pattern) = (&file, &pattern);
            handles.push(s.spawn(move || -> std::io::Result<()> {
                let mut at = start;
                while at < end {
                    let n = (end - at).min(chunk as u64) as usize;
                    match base {
                        None => file.write_all_at(&pattern[..n], at)?,
                        // SAFETY: each thread writes its own disjoint share of the mapping,
                        // which outlives the scope.
                        Some(b) => unsafe {
                            std::ptr::copy_nonoverlapping(
                                pattern.as_ptr(),
                                (b + at as usize) as *mut u8,
                                n,
                            )
                        },
                    }
                    at += n as u64;
                }
                Ok(())
            }));
        }
        handles
            .into_iter()
            .try_for_each(|h| h.join().expect("a filling thread panicked"))
    })?;
    drop(map);
    Ok(())
}
