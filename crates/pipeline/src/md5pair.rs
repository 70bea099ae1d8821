//! Two MD5s of one byte stream in one pass: the whole object's and the current segment's.
//!
//! An upload must report the MD5 of the whole object and check the MD5 of every segment,
//! i.e. hash every byte twice with MD5, the slowest digest it computes (~620 MB/s on one
//! core). MD5 is a chain of dependent 32-bit steps, so one stream leaves most of a core's
//! execution units idle. While both hashes are at the same offset within a 64-byte block
//! they consume the same message words and differ only in their state; on CPUs with
//! AVX-512VL the two states are kept in two lanes of one XMM register and advanced by the
//! same instructions (`vpternlogd` computes each round function in one step, `vprold`
//! rotates), so both digests cost about as much as one. Elsewhere, or when a segment
//! boundary is not a multiple of 64 bytes into the stream, each state is advanced on its own
//! by the assembly MD5 of `md5-asm`.

/// MD5 of a whole stream and of its current segment.
#[derive(Clone)]
pub struct SegmentedMd5 {
    whole: Lane,
    seg: Lane,
    simd: bool,
}

#[derive(Clone)]
struct Lane {
    state: [u32; 4],
    len: u64,
    buf: [u8; 64],
    blen: usize,
}

const INIT: [u32; 4] = [0x6745_2301, 0xefcd_ab89, 0x98ba_dcfe, 0x1032_5476];

impl Lane {
    fn new() -> Self {
        Lane {
            state: INIT,
            len: 0,
            buf: [0; 64],
            blen: 0,
        }
    }

    fn update(&mut self, mut data: &[u8]) {
        self.len += data.len() as u64;
        if self.blen > 0 {
            let take = (64 - self.blen).min(data.len());
            self.buf[self.blen..self.blen + take].copy_from_slice(&data[..take]);
            self.blen += take;
            data = &data[take..];
            if self.blen < 64 {
                return;
            }
            compress1(&mut self.state, &self.buf);
            self.blen = 0;
        }
        let full = data.len() / 64 * 64;
        compress1(&mut self.state, &data[..full]);
        let rest = &data[full..];
        self.buf[..rest.len()].copy_from_slice(rest);
        self.blen = rest.len();
    }

    fn finish(&self) -> String {
        let mut state = self.state;
        let mut block = [0u8; 128];
        block[..self.blen].copy_from_slice(&self.buf[..self.blen]);
        block[self.blen] = 0x80;
        let n = if self.blen < 56 { 64 } else { 128 };
        block[n - 8..n].copy_from_slice(&(self.len.wrapping_mul(8)).to_le_bytes());
        compress1(&mut state, &block[..n]);
        let mut out = [0u8; 16];
        for (o, w) in out.chunks_exact_mut(4).zip(state) {
            o.copy_from_slice(&w.to_le_bytes());
        }
        hex::encode(out)
    }
}

/// Advances `state` over `blocks` (a multiple of 64 bytes) with the assembly MD5.
fn compress1(state: &mut [u32; 4], blocks: &[u8]) {
    debug_assert_eq!(blocks.len() % 64, 0);
    let n = blocks.len() / 64;
    // SAFETY: `[u8; 64]` has alignment 1 and size 64, and `n * 64 <= blocks.len()`, so the
    // first `n * 64` bytes are exactly `n` such arrays.
    let whole: &[[u8; 64]] = unsafe { std::slice::from_raw_parts(blocks.as_ptr().cast(), n) };
    md5_asm::compress(state, whole);
}

impl Default for SegmentedMd5 {
    fn default() -> Self {
        Self::new()
    }
}

impl SegmentedMd5 {
    /// Fresh hashes, using the two-lane path when the CPU has it.
    pub fn new() -> Self {
        SegmentedMd5 {
            whole: Lane::new(),
            seg: Lane::new(),
            simd: simd::available(),
        }
    }

    /// The same, never using the two-lane path (for tests and comparisons).
    pub fn new_scalar() -> Self {
        SegmentedMd5 {
            simd: false,
            ..Self::new()
        }
    }

    /// Feeds bytes to both hashes.
    pub fn update(&mut self, mut data: &[u8]) {
        if !self.simd || self.whole.blen != self.seg.blen {
            self.whole.update(data);
            self.seg.update(data);
            return;
        }
        // Both lanes hold the same partial block (the same last `blen` bytes of the stream).
        self.whole.len += data.len() as u64;
        self.seg.len += data.len() as u64;
        if self.whole.blen > 0 {
            let b = self.whole.blen;
            let take = (64 - b).min(data.len());
            self.whole.buf[b..b + take].copy_from_slice(&data[..take]);
            self.seg.buf[b..b + take].copy_from_slice(&data[..take]);
            self.whole.blen += take;
            self.seg.blen += take;
            data = &data[take..];
            if self.whole.blen < 64 {
                return;
            }
            let block = self.whole.buf;
            simd::compress2(&mut self.whole.state, &mut self.seg.state, &block);
            self.whole.blen = 0;
            self.seg.blen = 0;
        }
        let full = data.len() / 64 * 64;
        if full > 0 {
            simd::compress2(&mut self.whole.state, &mut self.seg.state, &data[..full]);
        }
        let rest = &data[full..];
        self.whole.buf[..rest.len()].copy_from_slice(rest);
        self.seg.buf[..rest.len()].copy_from_slice(rest);
        self.whole.blen = rest.len();
        self.seg.blen = rest.len();
    }

    /// Hex MD5 of the bytes since the previous segment end (or the start); the next
    /// segment starts here.
    pub fn end_segment(&mut self) -> String {
        let hex = self.seg.finish();
        self.seg = Lane::new();
        // The lanes stay in step only when the new segment starts on a block boundary.
        self.seg.blen = 0;
        hex
    }

    /// Hex MD5 of everything fed.
    pub fn finish(self) -> String {
        self.whole.finish()
    }

    /// Bytes fed so far.
    pub fn len(&self) -> u64 {
        self.whole.len
    }

    /// True when nothing was fed.
    pub fn is_empty(&self) -> bool {
        self.whole.len == 0
    }
}

/// Hex MD5s of two byte strings; where the CPU has the two-lane path, in one pass over
/// both (their common whole blocks side by side), so both cost about as much as one.
pub fn md5_hex_pair(a: &[u8], b: &[u8]) -> (String, String) {
    let (mut la, mut lb) = (Lane::new(), Lane::new());
    let n = if simd::available() {
        a.len().min(b.len()) / 64 * 64
    } else {
        0
    };
    if n > 0 {
        simd::compress2x(&mut la.state, &mut lb.state, &a[..n], &b[..n]);
        la.len = n as u64;
        lb.len = n as u64;
    }
    la.update(&a[n..]);
    lb.update(&b[n..]);
    (la.finish(), lb.finish())
}

#[cfg(target_arch = "x86_64")]
mod simd {
    //! The two-lane step function: lane 0 holds one state, lane 1 the other, both fed the
    //! same message word. Each step is `a = b + rotl(a + f(b, c, d) + k + m, s)`; the round
    //! function `f` is one `vpternlogd` whose immediate is the function's truth table.
    use core::arch::asm;
    use core::arch::x86_64::{
        __m128i, _mm_add_epi32, _mm_cvtsi128_si32, _mm_loadu_si128, _mm_set1_epi32, _mm_set_epi32,
        _mm_setzero_si128, _mm_shuffle_epi32, _mm_srli_si128, _mm_unpackhi_epi32,
        _mm_unpacklo_epi32,
    };

    pub(super) fn available() -> bool {
        std::arch::is_x86_feature_detected!("avx512f")
            && std::arch::is_x86_feature_detected!("avx512vl")
    }

    const K: [u32; 64] = [
        0xd76aa478, 0xe8c7b756, 0x242070db, 0xc1bdceee, 0xf57c0faf, 0x4787c62a, 0xa8304613,
        0xfd469501, 0x698098d8, 0x8b44f7af, 0xffff5bb1, 0x895cd7be, 0x6b901122, 0xfd987193,
        0xa679438e, 0x49b40821, 0xf61e2562, 0xc040b340, 0x265e5a51, 0xe9b6c7aa, 0xd62f105d,
        0x02441453, 0xd8a1e681, 0xe7d3fbc8, 0x21e1cde6, 0xc33707d6, 0xf4d50d87, 0x455a14ed,
        0xa9e3e905, 0xfcefa3f8, 0x676f02d9, 0x8d2a4c8a, 0xfffa3942, 0x8771f681, 0x6d9d6122,
        0xfde5380c, 0xa4beea44, 0x4bdecfa9, 0xf6bb4b60, 0xbebfbc70, 0x289b7ec6, 0xeaa127fa,
        0xd4ef3085, 0x04881d05, 0xd9d4d039, 0xe6db99e5, 0x1fa27cf8, 0xc4ac5665, 0xf4292244,
        0x432aff97, 0xab9423a7, 0xfc93a039, 0x655b59c3, 0x8f0ccc92, 0xffeff47d, 0x85845dd1,
        0x6fa87e4f, 0xfe2ce6e0, 0xa3014314, 0x4e0811a1, 0xf7537e82, 0xbd3af235, 0x2ad7d2bb,
        0xeb86d391,
    ];

    macro_rules! step {
        ($a:ident, $b:ident, $c:ident, $d:ident, $mk:ident,
         $j:literal, $i:literal, $f:literal, $s:literal) => {
            let mk = $mk($j, $i);
            {
                asm!(
                    "vpaddd {a}, {a}, {mk}",
                    "vmovdqa {t}, {b}",
                    "vpternlogd {t}, {c}, {d}, {f}",
                    "vpaddd {a}, {a}, {t}",
                    "vprold {a}, {a}, {s}",
                    "vpaddd {a}, {a}, {b}",
                    a = inout(xmm_reg) $a,
                    b = in(xmm_reg) $b,
                    c = in(xmm_reg) $c,
                    d = in(xmm_reg) $d,
                    mk = in(xmm_reg) mk,
                    t = out(xmm_reg) _,
                    f = const $f,
                    s = const $s,
                    options(pure, nomem, nostack, preserves_flags),
                );
            }
        };
    }

    /// The 64 steps of one block; `$mk(j, i)` is the vector of message word `j` plus `K[i]`
    /// in each lane.
    macro_rules! rounds {
        ($a:ident, $b:ident, $c:ident, $d:ident, $mk:ident) => {
            step!($a, $b, $c, $d, $mk, 0, 0, 0xCA, 7);
            step!($d, $a, $b, $c, $mk, 1, 1, 0xCA, 12);
            step!($c, $d, $a, $b, $mk, 2, 2, 0xCA, 17);
            step!($b, $c, $d, $a, $mk, 3, 3, 0xCA, 22);
            step!($a, $b, $c, $d, $mk, 4, 4, 0xCA, 7);
            step!($d, $a, $b, $c, $mk, 5, 5, 0xCA, 12);
            step!($c, $d, $a, $b, $mk, 6, 6, 0xCA, 17);
            step!($b, $c, $d, $a, $mk, 7, 7, 0xCA, 22);
            step!($a, $b, $c, $d, $mk, 8, 8, 0xCA, 7);
            step!($d, $a, $b, $c, $mk, 9, 9, 0xCA, 12);
            step!($c, $d, $a, $b, $mk, 10, 10, 0xCA, 17);
            step!($b, $c, $d, $a, $mk, 11, 11, 0xCA, 22);
            step!($a, $b, $c, $d, $mk, 12, 12, 0xCA, 7);
            step!($d, $a, $b, $c, $mk, 13, 13, 0xCA, 12);
            step!($c, $d, $a, $b, $mk, 14, 14, 0xCA, 17);
            step!($b, $c, $d, $a, $mk, 15, 15, 0xCA, 22);

            step!($a, $b, $c, $d, $mk, 1, 16, 0xE4, 5);
            step!($d, $a, $b, $c, $mk, 6, 17, 0xE4, 9);
            step!($c, $d, $a, $b, $mk, 11, 18, 0xE4, 14);
            step!($b, $c, $d, $a, $mk, 0, 19, 0xE4, 20);
            step!($a, $b, $c, $d, $mk, 5, 20, 0xE4, 5);
            step!($d, $a, $b, $c, $mk, 10, 21, 0xE4, 9);
            step!($c, $d, $a, $b, $mk, 15, 22, 0xE4, 14);
            step!($b, $c, $d, $a, $mk, 4, 23, 0xE4, 20);
            step!($a, $b, $c, $d, $mk, 9, 24, 0xE4, 5);
            step!($d, $a, $b, $c, $mk, 14, 25, 0xE4, 9);
            step!($c, $d, $a, $b, $mk, 3, 26, 0xE4, 14);
            step!($b, $c, $d, $a, $mk, 8, 27, 0xE4, 20);
            step!($a, $b, $c, $d, $mk, 13, 28, 0xE4, 5);
            step!($d, $a, $b, $c, $mk, 2, 29, 0xE4, 9);
            step!($c, $d, $a, $b, $mk, 7, 30, 0xE4, 14);
            step!($b, $c, $d, $a, $mk, 12, 31, 0xE4, 20);

            step!($a, $b, $c, $d, $mk, 5, 32, 0x96, 4);
            step!($d, $a, $b, $c, $mk, 8, 33, 0x96, 11);
            step!($c, $d, $a, $b, $mk, 11, 34, 0x96, 16);
            step!($b, $c, $d, $a, $mk, 14, 35, 0x96, 23);
            step!($a, $b, $c, $d, $mk, 1, 36, 0x96, 4);
            step!($d, $a, $b, $c, $mk, 4, 37, 0x96, 11);
            step!($c, $d, $a, $b, $mk, 7, 38, 0x96, 16);
            step!($b, $c, $d, $a, $mk, 10, 39, 0x96, 23);
            step!($a, $b, $c, $d, $mk, 13, 40, 0x96, 4);
            step!($d, $a, $b, $c, $mk, 0, 41, 0x96, 11);
            step!($c, $d, $a, $b, $mk, 3, 42, 0x96, 16);
            step!($b, $c, $d, $a, $mk, 6, 43, 0x96, 23);
            step!($a, $b, $c, $d, $mk, 9, 44, 0x96, 4);
            step!($d, $a, $b, $c, $mk, 12, 45, 0x96, 11);
            step!($c, $d, $a, $b, $mk, 15, 46, 0x96, 16);
            step!($b, $c, $d, $a, $mk, 2, 47, 0x96, 23);

            step!($a, $b, $c, $d, $mk, 0, 48, 0x39, 6);
            step!($d, $a, $b, $c, $mk, 7, 49, 0x39, 10);
            step!($c, $d, $a, $b, $mk, 14, 50, 0x39, 15);
            step!($b, $c, $d, $a, $mk, 5, 51, 0x39, 21);
            step!($a, $b, $c, $d, $mk, 12, 52, 0x39, 6);
            step!($d, $a, $b, $c, $mk, 3, 53, 0x39, 10);
            step!($c, $d, $a, $b, $mk, 10, 54, 0x39, 15);
            step!($b, $c, $d, $a, $mk, 1, 55, 0x39, 21);
            step!($a, $b, $c, $d, $mk, 8, 56, 0x39, 6);
            step!($d, $a, $b, $c, $mk, 15, 57, 0x39, 10);
            step!($c, $d, $a, $b, $mk, 6, 58, 0x39, 15);
            step!($b, $c, $d, $a, $mk, 13, 59, 0x39, 21);
            step!($a, $b, $c, $d, $mk, 4, 60, 0x39, 6);
            step!($d, $a, $b, $c, $mk, 11, 61, 0x39, 10);
            step!($c, $d, $a, $b, $mk, 2, 62, 0x39, 15);
            step!($b, $c, $d, $a, $mk, 9, 63, 0x39, 21);
        };
    }

    // Truth tables of the round functions over (b, c, d) as vpternlogd immediates.
    // F = (b & c) | (!b & d); G = (b & d) | (c & !d); H = b ^ c ^ d; I = c ^ (b | !d).

    /// Advances `x` and `y` over the same `blocks` (a multiple of 64 bytes).
    pub(super) fn compress2(x: &mut [u32; 4], y: &mut [u32; 4], blocks: &[u8]) {
        // SAFETY: SSE2 is part of x86_64; the asm steps are register-only AVX-512F/VL
        // instructions, and `SegmentedMd5` takes this path only after `available()`.
        unsafe { compress2_inner(x, y, blocks) }
    }

    unsafe fn compress2_inner(x: &mut [u32; 4], y: &mut [u32; 4], blocks: &[u8]) {
        let lanes = |i: usize| _mm_set_epi32(0, 0, y[i] as i32, x[i] as i32);
        let (mut a, mut b, mut c, mut d): (__m128i, __m128i, __m128i, __m128i) =
            (lanes(0), lanes(1), lanes(2), lanes(3));
        for block in blocks.chunks_exact(64) {
            let mut m = [0u32; 16];
            for (w, bytes) in m.iter_mut().zip(block.chunks_exact(4)) {
                *w = u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
            }
            let mk = |j: usize, i: usize| _mm_set1_epi32(m[j].wrapping_add(K[i]) as i32);
            let (aa, bb, cc, dd) = (a, b, c, d);
            rounds!(a, b, c, d, mk);

            a = _mm_add_epi32(a, aa);
            b = _mm_add_epi32(b, bb);
            c = _mm_add_epi32(c, cc);
            d = _mm_add_epi32(d, dd);
        }
        store(x, y, [a, b, c, d]);
    }

    /// Lane 0 of each register into `x`, lane 1 into `y`.
    fn store(x: &mut [u32; 4], y: &mut [u32; 4], regs: [__m128i; 4]) {
        for (i, v) in regs.into_iter().enumerate() {
            // SAFETY: SSE2 is part of x86_64.
            unsafe {
                x[i] = _mm_cvtsi128_si32(v) as u32;
                y[i] = _mm_cvtsi128_si32(_mm_shuffle_epi32::<0b01>(v)) as u32;
            }
        }
    }

    /// Advances `x` over `xb` and `y` over `yb` (the same length, a multiple of 64 bytes):
    /// two streams, each lane fed its own message words.
    pub(super) fn compress2x(x: &mut [u32; 4], y: &mut [u32; 4], xb: &[u8], yb: &[u8]) {
        assert_eq!(xb.len(), yb.len(), "two-stream MD5 over unequal lengths");
        // SAFETY: as `compress2`; the loads read 16 bytes inside each 64-byte block.
        unsafe { compress2x_inner(x, y, xb, yb) }
    }

    unsafe fn compress2x_inner(x: &mut [u32; 4], y: &mut [u32; 4], xb: &[u8], yb: &[u8]) {
        let lanes = |i: usize| _mm_set_epi32(0, 0, y[i] as i32, x[i] as i32);
        let (mut a, mut b, mut c, mut d): (__m128i, __m128i, __m128i, __m128i) =
            (lanes(0), lanes(1), lanes(2), lanes(3));
        for (bx, by) in xb.chunks_exact(64).zip(yb.chunks_exact(64)) {
            // Word j of both blocks side by side in lanes 0 and 1 (the upper lanes are
            // don't-cares: they are never read back).
            let mut w = [_mm_setzero_si128(); 16];
            for q in 0..4 {
                let vx = _mm_loadu_si128(bx.as_ptr().add(16 * q).cast());
                let vy = _mm_loadu_si128(by.as_ptr().add(16 * q).cast());
                let lo = _mm_unpacklo_epi32(vx, vy);
                let hi = _mm_unpackhi_epi32(vx, vy);
                w[4 * q] = lo;
                w[4 * q + 1] = _mm_srli_si128::<8>(lo);
                w[4 * q + 2] = hi;
                w[4 * q + 3] = _mm_srli_si128::<8>(hi);
            }
            let mk = |j: usize, i: usize| _mm_add_epi32(w[j], _mm_set1_epi32(K[i] as i32));
            let (aa, bb, cc, dd) = (a, b, c, d);
            rounds!(a, b, c, d, mk);
            a = _mm_add_epi32(a, aa);
            b = _mm_add_epi32(b, bb);
            c = _mm_add_epi32(c, cc);
            d = _mm_add_epi32(d, dd);
        }
        store(x, y, [a, b, c, d]);
    }
}

#[cfg(not(target_arch = "x86_64"))]
mod simd {
    pub(super) fn compress2x(x: &mut [u32; 4], y: &mut [u32; 4], xb: &[u8], yb: &[u8]) {
        super::compress1(x, xb);
        super::compress1(y, yb);
    }
    pub(super) fn available() -> bool {
        false
    }
    pub(super) fn compress2(x: &mut [u32; 4], y: &mut [u32; 4], blocks: &[u8]) {
        super::compress1(x, blocks);
        super::compress1(y, blocks);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use md5::{Digest, Md5};

    fn reference(d: &[u8]) -> String {
        hex::encode(Md5::digest(d))
    }

    fn data(len: usize) -> Vec<u8> {
        (0..len as u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect()
    }

    /// Feeds `d` in `chunk`-byte pieces, ending segments every `seg` bytes; checks every
    /// segment MD5 and the whole MD5 against the md-5 crate.
    fn check(mut h: SegmentedMd5, d: &[u8], seg: usize, chunk: usize) {
        let mut pos = 0;
        for s in d.chunks(seg) {
            for c in s.chunks(chunk) {
                h.update(c);
            }
            assert_eq!(h.end_segment(), reference(s), "segment at {pos}");
            pos += s.len();
        }
        assert_eq!(h.len(), d.len() as u64);
        assert_eq!(h.finish(), reference(d));
    }

    #[test]
    fn matches_md5_crate_for_aligned_and_odd_segments() {
        let d = data(300_007);
        for (seg, chunk) in [
            (64 * 1024, 4096),
            (64 * 1024, 1000),
            (1000, 7),
            (64, 64),
            (100_003, 65_536),
            (300_007, 300_007),
        ] {
            check(SegmentedMd5::new(), &d, seg, chunk);
            check(SegmentedMd5::new_scalar(), &d, seg, chunk);
        }
    }

    #[test]
    fn pairs_match_md5_crate() {
        let d = data(200_000);
        let e: Vec<u8> = data(200_003).iter().map(|b| b ^ 0x5c).collect();
        for (m, n) in [
            (0, 0),
            (0, 100),
            (1, 64),
            (64, 64),
            (100, 65),
            (55, 56),
            (4096, 4096),
            (200_000, 131_072),
            (131_136, 200_003),
        ] {
            let (x, y) = md5_hex_pair(&d[..m], &e[..n]);
            assert_eq!(x, reference(&d[..m]), "{m} {n}");
            assert_eq!(y, reference(&e[..n]), "{m} {n}");
        }
        // Both lanes over the same bytes, as the one-stream path.
        assert_eq!(md5_hex_pair(&d, &d), (reference(&d), reference(&d)));
    }

    #[test]
    fn empty_and_short() {
        assert_eq!(SegmentedMd5::new().finish(), reference(b""));
        for n in [1, 55, 56, 63, 64, 65, 119, 120, 128] {
            let d = data(n);
            check(SegmentedMd5::new(), &d, n, n);
        }
    }
}
