//! Cylinder/head/sector geometry as the VHD specification's appendix computes it.
//! qemu and vhd-util use the same algorithm, so matching it bit for bit keeps
//! every reader agreeing on the CHS-derived size.

use serde::Serialize;

/// The geometry field of the footer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Geometry {
    pub cylinders: u16,
    pub heads: u8,
    pub sectors_per_track: u8,
}

/// qemu's `force_size` marker: this geometry means "use the current size".
pub const FORCE_SIZE: Geometry = Geometry {
    cylinders: 65535,
    heads: 16,
    sectors_per_track: 255,
};

impl Geometry {
    /// The spec's geometry for a disk of `size` bytes (rounded down to sectors).
    pub fn for_size(size: u64) -> Geometry {
        let mut total = size / 512;
        if total > 65535 * 16 * 255 {
            total = 65535 * 16 * 255;
        }
        let (spt, heads, cth);
        if total >= 65535 * 16 * 63 {
            spt = 255u64;
            heads = 16u64;
            cth = total / spt;
        } else {
            let mut s = 17u64;
            let mut c = total / s;
            let mut h = c.div_ceil(1024).max(4);
            if c >= h * 1024 || h > 16 {
                s = 31;
                h = 16;
                c = total / s;
            }
            if c >= h * 1024 {
                s = 63;
                h = 16;
                c = total / s;
            }
            spt = s;
            heads = h;
            cth = c;
        }
        Geometry {
            cylinders: (cth / heads).min(65535) as u16,
            heads: heads as u8,
            sectors_per_track: spt as u8,
        }
    }

    /// Bytes addressed by this geometry (C x H x S x 512).
    pub fn chs_size(&self) -> u64 {
        u64::from(self.cylinders) * u64::from(self.heads) * u64::from(self.sectors_per_track) * 512
    }

    pub(crate) fn parse(b: &[u8]) -> Geometry {
        Geometry {
            cylinders: super::be_u16(b, 0),
            heads: b[2],
            sectors_per_track: b[3],
        }
    }

    pub(crate) fn to_bytes(self) -> [u8; 4] {
        let c = self.cylinders.to_be_bytes();
        [c[0], c[1], self.heads, self.sectors_per_track]
    }
}

impl std::fmt::Display for Geometry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}/{}/{}",
            self.cylinders, self.heads, self.sectors_per_track
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn g(c: u16, h: u8, s: u8) -> Geometry {
        Geometry {
            cylinders: c,
            heads: h,
            sectors_per_track: s,
        }
    }

    #[test]
    fn matches_known_tools() {
        // Values read off files made by qemu, VirtualBox and Hyper-V (shared/interop).
        assert_eq!(Geometry::for_size(10 << 20), g(301, 4, 17));
        assert_eq!(Geometry::for_size(41_943_040), g(963, 5, 17));
        assert_eq!(Geometry::for_size(1 << 30), g(2080, 16, 63));
        assert_eq!(Geometry::for_size(136_365_211_648), g(65278, 16, 255));
        // CHS rounds down: 10 MiB is 6,144 bytes short.
        assert_eq!((10u64 << 20) - g(301, 4, 17).chs_size(), 6144);
    }

    #[test]
    fn caps_at_the_largest_geometry() {
        assert_eq!(Geometry::for_size(u64::MAX / 2), g(65535, 16, 255));
        assert_eq!(Geometry::for_size(0), g(0, 4, 17));
    }
}
