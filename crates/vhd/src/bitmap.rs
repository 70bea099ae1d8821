//! The sector bitmap that precedes each data block of a sparse disk.
//!
//! One bit a sector, most significant bit first. In a differencing disk a set
//! bit means "this layer holds the sector", a clear bit "ask the parent"; in a
//! dynamic disk a clear bit means the sector was never written (zeros).

/// The bitmap of one block, covering `sectors` sectors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bitmap {
    bits: Box<[u8]>,
    sectors: u32,
}

impl Bitmap {
    /// Wraps raw bitmap bytes for a block of `sectors` sectors. Bytes beyond what
    /// the sectors need (the padding to 512) are ignored; missing bytes read as clear.
    pub fn from_bytes(bytes: &[u8], sectors: u32) -> Bitmap {
        let need = (sectors as usize).div_ceil(8);
        let mut bits = vec![0u8; need];
        let n = need.min(bytes.len());
        bits[..n].copy_from_slice(&bytes[..n]);
        Bitmap {
            bits: bits.into_boxed_slice(),
            sectors,
        }
    }

    /// A bitmap with every sector set or every sector clear.
    pub fn filled(sectors: u32, set: bool) -> Bitmap {
        let need = (sectors as usize).div_ceil(8);
        Bitmap {
            bits: vec![if set { 0xff } else { 0 }; need].into_boxed_slice(),
            sectors,
        }
    }

    /// Sectors the bitmap covers.
    pub fn sectors(&self) -> u32 {
        self.sectors
    }

    /// The bitmap bytes (without the sector padding).
    pub fn as_bytes(&self) -> &[u8] {
        &self.bits
    }

    /// Whether `sector` (relative to the block) is set; out of range reads as clear.
    pub fn is_set(&self, sector: u32) -> bool {
        if sector >= self.sectors {
            return false;
        }
        self.bits[(sector / 8) as usize] & (0x80 >> (sector % 8)) != 0
    }

    /// Sets or clears `sector`; out of range is ignored.
    pub fn set(&mut self, sector: u32, value: bool) {
        if sector >= self.sectors {
            return;
        }
        let mask = 0x80 >> (sector % 8);
        let byte = &mut self.bits[(sector / 8) as usize];
        if value {
            *byte |= mask;
        } else {
            *byte &= !mask;
        }
    }

    /// The end of the run of sectors starting at `start` that all share
    /// `start`'s bit, capped at `end` (and at the bitmap's size). Whole bytes of
    /// 0x00 or 0xff are skipped at once, so full and empty blocks cost a byte scan.
    pub fn run_end(&self, start: u32, end: u32) -> u32 {
        let end = end.min(self.sectors);
        if start >= end {
            return end;
        }
        let value = self.is_set(start);
        let full = if value { 0xffu8 } else { 0 };
        let mut s = start;
        while s < end {
            if s % 8 == 0 && s + 8 <= end {
                // Skip whole bytes equal to `full` in one scan (vectorises).
                let bytes = &self.bits[(s / 8) as usize..(end / 8) as usize];
                let same = bytes.iter().position(|&b| b != full).unwrap_or(bytes.len());
                s += same as u32 * 8;
                if s >= end {
                    break;
                }
                // Stopped at a mixed byte or the tail: go bit by bit.
            }
            if self.is_set(s) != value {
                return s;
            }
            s += 1;
        }
        end
    }

    /// Number of set sectors.
    pub fn count_set(&self) -> u32 {
        let whole = self.sectors / 8;
        let mut n: u32 = self.bits[..whole as usize]
            .iter()
            .map(|b| b.count_ones())
            .sum();
        for s in whole * 8..self.sectors {
            n += u32::from(self.is_set(s));
        }
        n
    }

    /// True when no sector is set.
    pub fn is_empty(&self) -> bool {
        self.count_set() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn msb_first_and_runs() {
        // 0b1110_0000: sectors 0..3 set (a Hyper-V child owning 3 sectors).
        let b = Bitmap::from_bytes(&[0xe0, 0, 0, 0x01], 32);
        assert!(b.is_set(0) && b.is_set(2) && !b.is_set(3));
        assert_eq!(b.run_end(0, 32), 3);
        assert_eq!(b.run_end(3, 32), 31);
        assert_eq!(b.run_end(31, 32), 32);
        assert_eq!(b.run_end(5, 10), 10);
        assert_eq!(b.count_set(), 4);
        assert!(!b.is_set(40));
    }

    #[test]
    fn runs_across_whole_bytes() {
        let mut b = Bitmap::filled(4096, true);
        b.set(3000, false);
        assert_eq!(b.run_end(0, 4096), 3000);
        assert_eq!(b.run_end(3000, 4096), 3001);
        assert_eq!(b.run_end(3001, 4096), 4096);
        assert_eq!(b.run_end(8, 2999), 2999);
        let e = Bitmap::filled(4096, false);
        assert_eq!(e.run_end(0, 4096), 4096);
        assert_eq!(e.run_end(5, 4093), 4093);
    }

    #[test]
    fn padding_and_short_input() {
        let b = Bitmap::from_bytes(&[0xff], 4);
        assert_eq!(b.count_set(), 4);
        let c = Bitmap::from_bytes(&[], 16);
        assert!(c.is_empty());
        let mut d = Bitmap::filled(16, false);
        d.set(9, true);
        assert_eq!(d.as_bytes(), &[0, 0x40]);
    }
}
