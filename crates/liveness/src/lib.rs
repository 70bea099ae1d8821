//! Whether a process still runs, told apart from a later one given the same pid: what is
//! needed to remove what a killed process left behind (local store temporaries, store
//! lock entries, a download's `.part`, an unpack's member files) and never what a live
//! one is writing. A pid alone is not enough: after a reboot, or once pids wrap, a dead
//! writer's pid can name a live process, and its leftovers would stay for ever.
//!
//! A process is named by its boot (`/proc/sys/kernel/random/boot_id`), its pid and the
//! pid's start time (clock ticks after boot, field 22 of `/proc/<pid>/stat`); the three
//! together name one process ever.

use std::sync::OnceLock;

/// This boot's id, empty when unknown.
pub fn boot_id() -> String {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

/// The start time of process `pid`, `None` when it does not run.
pub fn pid_start(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may hold spaces and parentheses).
    let rest = &stat[stat.rfind(')')? + 2..];
    // Field 22 overall is the 20th after the name's.
    rest.split_whitespace().nth(19)?.parse().ok()
}

/// This process as `<boot id, 8 hex>-<pid>-<start>` (no `.` or `/`), for the names of
/// files it may leave behind.
pub fn tag() -> &'static str {
    static TAG: OnceLock<String> = OnceLock::new();
    TAG.get_or_init(|| {
        let pid = std::process::id();
        let boot: String = boot_id().chars().filter(|c| *c != '-').take(8).collect();
        format!("{boot}-{pid}-{}", pid_start(pid).unwrap_or(0))
    })
}

/// True when the process a [`tag`] names surely no longer runs: it ran before this boot,
/// or its pid is gone or now another process's. False when it may run, or `tag` is not a
/// tag (a name of another program, or of an older version: left alone).
pub fn tag_is_gone(tag: &str) -> bool {
    let mut f = tag.splitn(3, '-');
    let (Some(boot), Some(pid), Some(start)) = (f.next(), f.next(), f.next()) else {
        return false;
    };
    let (Ok(pid), Ok(start)) = (pid.parse::<u32>(), start.parse::<u64>()) else {
        return false;
    };
    let mine = self::tag().split('-').next().unwrap_or_default();
    if boot.len() != 8 || mine.len() != 8 || start == 0 {
        return false;
    }
    boot != mine || pid_start(pid) != Some(start)
}

/// Removes the files of `dir` that a writer left which no longer runs: `writer_of` gives
/// the [`tag`] a file name carries (None: not such a file). Returns what it removed. Best
/// effort: what cannot be read or removed is left, since it only takes space and is never
/// served.
pub fn remove_left_by_dead(
    dir: &std::path::Path,
    writer_of: impl Fn(&str) -> Option<&str>,
) -> Vec<std::path::PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut removed = Vec::new();
    for e in entries.flatten() {
        let name = e.file_name();
        if name.to_str().and_then(&writer_of).is_some_and(tag_is_gone)
            && std::fs::remove_file(e.path()).is_ok()
        {
            removed.push(e.path());
        }
    }
    removed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_runs_an_exited_child_does_not() {
        assert!(!tag_is_gone(tag()));
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        let start = pid_start(pid).unwrap_or(1);
        child.wait().unwrap();
        let boot = tag().split('-').next().unwrap();
        assert!(tag_is_gone(&format!("{boot}-{pid}-{start}")));
        // Another boot; not a tag.
        let me = std::process::id();
        let start = pid_start(me).unwrap();
        assert!(tag_is_gone(&format!("00000000-{me}-{start}")) || boot == "00000000");
        for t in ["", "123", "abc-def-ghi", "1234567-1-1"] {
            assert!(!tag_is_gone(t), "{t}");
        }
    }

    #[test]
    fn only_a_dead_writers_files_are_removed() {
        let dir = std::env::temp_dir().join(format!("liveness-{}", tag()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let (pid, start) = (child.id(), pid_start(child.id()).unwrap_or(1));
        child.wait().unwrap();
        let boot = tag().split('-').next().unwrap();
        let dead = format!("out.part-{boot}-{pid}-{start}");
        let live = format!("out.part-{}", tag());
        for n in [&dead, &live, "out.part-123", "other"] {
            std::fs::write(dir.join(n), b"x").unwrap();
        }
        remove_left_by_dead(&dir, |n| n.strip_prefix("out.part-"));
        let mut left: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        left.sort();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(left, ["other", "out.part-123", live.as_str()]);
    }
}
