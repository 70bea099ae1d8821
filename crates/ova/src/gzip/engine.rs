//! Which deflate engine compresses, and how gzip levels 1-9 map onto it.
//!
//! With the `isal` feature (x86_64), levels 1-7 go to Intel's ISA-L (igzip),
//! which has four levels of its own (0-3) and compresses several times faster
//! than zlib; 8 and 9 keep the slower engines (zlib-rs for the pigz-style
//! stream, libdeflate for indexed members), at zlib's levels 6 and 9, so
//! every level still means something. ISA-L's level 0 is left out: it codes
//! with fixed Huffman tables and grows data that does not compress (igzip -0
//! turned 512 MiB of half random bytes into 520 MB).
//!
//! ISA-L matches zlib -6's size on text-like data but not on machine code:
//! on 100 MB of /usr/lib, igzip -3 wrote 11 % more than gzip -6. Level 8
//! (zlib's 6, what every level was before ISA-L) is the choice when size
//! matters more than CPU. Figures per level: BENCHMARKS.md.
//!
//! | gzip level | engine |
//! |---|---|
//! | 1-3 | ISA-L 1 |
//! | 4-6 (default 6) | ISA-L 2 |
//! | 7 | ISA-L 3 |
//! | 8 | zlib-rs / libdeflate at 6 |
//! | 9 | zlib-rs / libdeflate at 9 |

/// The engine compiled in, as `cloudimg --version` reports it.
#[cfg(all(feature = "isal", target_arch = "x86_64"))]
pub const ENGINE: &str = "deflate: ISA-L (levels 1-7), zlib-rs / libdeflate (levels 8-9)";
/// The engine compiled in, as `cloudimg --version` reports it.
#[cfg(not(all(feature = "isal", target_arch = "x86_64")))]
pub const ENGINE: &str = "deflate: zlib-rs (stream), libdeflate (indexed members); no ISA-L";

const ISAL: bool = cfg!(all(feature = "isal", target_arch = "x86_64"));

/// The ISA-L level that gzip `level` maps to, or `None` when the level goes
/// to zlib-rs / libdeflate (8-9, or a build without ISA-L).
#[cfg_attr(not(all(feature = "isal", target_arch = "x86_64")), allow(dead_code))]
pub(crate) fn isal_level(level: u32) -> Option<u32> {
    if !ISAL {
        return None;
    }
    match level {
        1..=3 => Some(1),
        4..=6 => Some(2),
        7 => Some(3),
        _ => None,
    }
}

/// The zlib-rs / libdeflate level for gzip `level` when ISA-L does not take
/// it: with ISA-L built in, 8 is zlib's 6; otherwise the level itself.
pub(crate) fn fallback_level(level: u32) -> u32 {
    if ISAL && level == 8 {
        6
    } else {
        level
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_level_has_one_engine() {
        for level in 1..=9 {
            let isal = isal_level(level);
            if ISAL {
                assert_eq!(isal.is_some(), level <= 7, "level {level}");
                assert!(isal.is_none_or(|l| (1..=3).contains(&l)));
            } else {
                assert_eq!(isal, None);
                assert_eq!(fallback_level(level), level);
            }
        }
        assert_eq!(isal_level(6), ISAL.then_some(2));
    }
}
