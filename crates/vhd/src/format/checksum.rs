//! The VHD checksum: ones' complement of the byte sum, with the checksum field
//! itself taken as zero.

/// Checksum of `bytes` as if the four bytes at `field_at` were zero.
pub fn vhd_checksum(bytes: &[u8], field_at: usize) -> u32 {
    let sum = bytes
        .iter()
        .enumerate()
        .filter(|(i, _)| !(field_at..field_at + 4).contains(i))
        .fold(0u32, |acc, (_, &b)| acc.wrapping_add(u32::from(b)));
    !sum
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ignores_the_field_and_complements() {
        let mut b = [0u8; 16];
        b[0] = 1;
        b[1] = 2;
        b[4..8].copy_from_slice(&[0xff; 4]);
        assert_eq!(vhd_checksum(&b, 4), !3u32);
    }
}
