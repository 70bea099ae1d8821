//! Little helpers over slices that may be short: `None` past the end. Every
//! recogniser of [`super::detect`] reads headers through them, so they sit
//! below the recognisers (`disk`, `archive`) and the module that calls them.

pub fn at<const N: usize>(b: &[u8], at: usize) -> Option<[u8; N]> {
    b.get(at..at.checked_add(N)?)?.try_into().ok()
}
pub fn be_u32(b: &[u8], off: usize) -> Option<u32> {
    at(b, off).map(u32::from_be_bytes)
}
pub fn be_u64(b: &[u8], off: usize) -> Option<u64> {
    at(b, off).map(u64::from_be_bytes)
}
pub fn le_u16(b: &[u8], off: usize) -> Option<u16> {
    at(b, off).map(u16::from_le_bytes)
}
pub fn le_u32(b: &[u8], off: usize) -> Option<u32> {
    at(b, off).map(u32::from_le_bytes)
}
pub fn le_u64(b: &[u8], off: usize) -> Option<u64> {
    at(b, off).map(u64::from_le_bytes)
}
/// `len` bytes at `off` (a u64 from a header), when they lie within `b`.
pub fn range(b: &[u8], off: u64, len: u64) -> Option<&[u8]> {
    let start = usize::try_from(off).ok()?;
    let end = start.checked_add(usize::try_from(len).ok()?)?;
    b.get(start..end)
}
/// The bytes up to the first NUL, as text when they decode.
pub fn cstr(b: &[u8]) -> Option<&str> {
    let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    std::str::from_utf8(&b[..end]).ok()
}
