//! The bit-sliced counting kernel.
//!
//! For one prompt and a stripe of up to 512 column models, a table maps every token id to a
//! 512-bit mask: bit c is set when column model c has that token. The intersection counts of
//! a row set A against all 512 columns are then `Σ_{t ∈ A} table[t]` taken lane-wise — a
//! vertical population count of |A| 512-bit vectors. It is done with carry-save adders
//! (Harley–Seal): 16 inputs are compressed into 4 bit planes (1, 2, 4, 8) by 15 full adders,
//! and each carry out of the eights ripples into 8 higher planes (16 … 2048). A full adder is
//! two `vpternlogq` on AVX-512. The cost per pair and prompt is ≈ 3·|A| / 512 vector
//! operations, independent of the vocabulary size — against vocab / 512 AND + POPCNT + ADD
//! triples for plain bitsets.
//!
//! 12 planes count up to 4095 per lane; longer sets are processed in chunks of
//! [`CHUNK`] ids. Kernels *add* their counts into `out`.

use super::super::stripes::BLOCK;

/// One 512-bit lane mask (64-byte aligned).
#[repr(C, align(64))]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Block(pub [u64; 8]);

/// Ids per kernel call (a multiple of 16 and < 4096).
pub const CHUNK: usize = 4080;
/// Inputs between a prefetch and its use.
const PREFETCH: usize = 64;
pub const HI: usize = 8;

/// The instruction set the kernels run with (runtime-detected).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Isa {
    Avx512,
    Avx2,
    Portable,
}

impl Isa {
    /// The best available here, unless `MODELPRINT_CPU_ISA` (avx512|avx2|portable) asks
    /// for a lesser one.
    pub fn detect() -> Isa {
        let best = Self::best();
        match std::env::var("MODELPRINT_CPU_ISA").ok().as_deref() {
            Some("portable") => Isa::Portable,
            Some("avx2") if best != Isa::Portable => Isa::Avx2,
            _ => best,
        }
    }

    pub fn best() -> Isa {
        #[cfg(target_arch = "x86_64")]
        {
            if std::is_x86_feature_detected!("avx512f") {
                return Isa::Avx512;
            }
            if std::is_x86_feature_detected!("avx2") {
                return Isa::Avx2;
            }
        }
        Isa::Portable
    }

    /// Every ISA usable on this machine (for tests and benchmarks).
    pub fn available() -> Vec<Isa> {
        let mut v = vec![Isa::Portable];
        let best = Self::best();
        if best != Isa::Portable {
            v.push(Isa::Avx2);
        }
        if best == Isa::Avx512 {
            v.push(Isa::Avx512);
        }
        v
    }

    /// `self` when this CPU supports it, else the best it supports.
    pub fn supported(self) -> Isa {
        let best = Self::best();
        match (self, best) {
            (Isa::Avx512, b) => b,
            (Isa::Avx2, Isa::Portable) => Isa::Portable,
            (x, _) => x,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Isa::Avx512 => "avx512",
            Isa::Avx2 => "avx2",
            Isa::Portable => "portable",
        }
    }
}

/// The bit-sliced counter of one row: planes of weight 1, 2, 4, 8 (`low`) and 16 … 2048
/// (`hi`). Counts up to 4095 per lane.
#[repr(C, align(64))]
#[derive(Clone, Copy, Debug, Default)]
pub struct State {
    pub low: [Block; 4],
    pub hi: [Block; HI],
}

/// Adds `|set ∩ column c|` to `out[c]` for the 512 columns of `table`.
///
/// Panics when an id of `set` is not below `table.len()`.
pub fn counts(isa: Isa, table: &[Block], set: &[u32], out: &mut [u32; BLOCK]) {
    if let Some(&max) = set.iter().max() {
        assert!(
            (max as usize) < table.len(),
            "id {max} outside the table of {} tokens",
            table.len()
        );
    }
    // SAFETY: every id was checked to index inside the table; the ISA is one this CPU has.
    unsafe { counts_unchecked(isa.supported(), table, set, out) }
}

/// [`counts`] without the bounds check.
///
/// # Safety
/// Every id of `set` must be below `table.len()` (the engine guarantees it: sketch
/// collections are validated against their vocabulary size and tables span it), and this
/// CPU must support `isa` (see [`Isa::supported`]).
#[inline]
pub unsafe fn counts_unchecked(isa: Isa, table: &[Block], set: &[u32], out: &mut [u32; BLOCK]) {
    for chunk in set.chunks(CHUNK) {
        let mut st = State::default();
        add_inputs(isa, table.as_ptr(), chunk, &mut st);
        extract(isa, &st, out);
    }
}

/// Adds the table rows of `ids` into the counter `st`.
///
/// # Safety
/// As [`counts_unchecked`]; the counter must not exceed 4095 in any lane.
#[inline]
pub unsafe fn add_inputs(isa: Isa, table: *const Block, ids: &[u32], st: &mut State) {
    match isa {
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 => x86::add_avx512(table, ids, st),
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => x86::add_avx2(table, ids, st),
        _ => add_generic(table, ids, st),
    }
}

/// Adds the counter's lane values to `out`.
///
/// # Safety
/// This CPU must support `isa`.
#[inline]
pub unsafe fn extract(isa: Isa, st: &State, out: &mut [u32; BLOCK]) {
    match isa {
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 => x86::extract_avx512(st, out),
        _ => extract_generic(st, out),
    }
}

#[inline(always)]
fn xor3(a: &Block, b: &Block, c: &Block) -> Block {
    let mut o = Block::default();
    for i in 0..8 {
        o.0[i] = a.0[i] ^ b.0[i] ^ c.0[i];
    }
    o
}

#[inline(always)]
fn maj(a: &Block, b: &Block, c: &Block) -> Block {
    let mut o = Block::default();
    for i in 0..8 {
        o.0[i] = (a.0[i] & b.0[i]) | (c.0[i] & (a.0[i] | b.0[i]));
    }
    o
}

/// Full adder: (carry, sum).
#[inline(always)]
fn csa(a: &Block, b: &Block, c: &Block) -> (Block, Block) {
    (maj(a, b, c), xor3(a, b, c))
}

/// Adds `x` (weight 1 relative to `planes[0]`) into the bit-sliced counter `planes`;
/// returns the carry out.
#[inline(always)]
fn ripple<const N: usize>(planes: &mut [Block; N], mut x: Block) -> Block {
    for p in planes.iter_mut() {
        let mut c = Block::default();
        for i in 0..8 {
            c.0[i] = p.0[i] & x.0[i];
            p.0[i] ^= x.0[i];
        }
        x = c;
    }
    x
}

/// The portable kernel (compiled for the baseline, and for AVX2 through `add_avx2`).
///
/// # Safety
/// Every id indexes inside the table at `table`.
#[inline(always)]
pub(crate) unsafe fn add_generic(table: *const Block, ids: &[u32], st: &mut State) {
    let ld = |t: u32| -> Block { *table.add(t as usize) };
    let mut low = st.low;
    let mut hi = st.hi;
    let mut groups = ids.chunks_exact(16);
    for g in &mut groups {
        let (ones, twos, fours, eights) = (low[0], low[1], low[2], low[3]);
        let (ta, o) = csa(&ones, &ld(g[0]), &ld(g[1]));
        let (tb, o) = csa(&o, &ld(g[2]), &ld(g[3]));
        let (fa, t) = csa(&twos, &ta, &tb);
        let (ta, o) = csa(&o, &ld(g[4]), &ld(g[5]));
        let (tb, o) = csa(&o, &ld(g[6]), &ld(g[7]));
        let (fb, t) = csa(&t, &ta, &tb);
        let (ea, f) = csa(&fours, &fa, &fb);
        let (ta, o) = csa(&o, &ld(g[8]), &ld(g[9]));
        let (tb, o) = csa(&o, &ld(g[10]), &ld(g[11]));
        let (fa, t) = csa(&t, &ta, &tb);
        let (ta, o) = csa(&o, &ld(g[12]), &ld(g[13]));
        let (tb, o) = csa(&o, &ld(g[14]), &ld(g[15]));
        let (fb, t) = csa(&t, &ta, &tb);
        let (eb, f) = csa(&f, &fa, &fb);
        let (sixteens, e) = csa(&eights, &ea, &eb);
        low = [o, t, f, e];
        ripple(&mut hi, sixteens);
    }
    for &t in groups.remainder() {
        let c = ripple(&mut low, ld(t));
        ripple(&mut hi, c);
    }
    st.low = low;
    st.hi = hi;
}

fn extract_generic(st: &State, out: &mut [u32; BLOCK]) {
    for (b, plane) in st.low.iter().chain(st.hi.iter()).enumerate() {
        for (wi, &word) in plane.0.iter().enumerate() {
            if word == 0 {
                continue;
            }
            let o = &mut out[wi * 64..wi * 64 + 64];
            for (l, v) in o.iter_mut().enumerate() {
                *v += (((word >> l) & 1) as u32) << b;
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::{add_generic, Block, State, BLOCK, HI, PREFETCH};
    use std::arch::x86_64::*;

    /// # Safety
    /// The CPU supports AVX2; see [`add_generic`].
    #[target_feature(enable = "avx2")]
    pub unsafe fn add_avx2(table: *const Block, ids: &[u32], st: &mut State) {
        add_generic(table, ids, st)
    }

    #[inline(always)]
    unsafe fn csa(a: __m512i, b: __m512i, c: __m512i) -> (__m512i, __m512i) {
        (
            _mm512_ternarylogic_epi64::<0xE8>(a, b, c), // majority = carry
            _mm512_ternarylogic_epi64::<0x96>(a, b, c), // a ^ b ^ c = sum
        )
    }

    #[inline(always)]
    unsafe fn add_bit(p: &mut __m512i, x: __m512i) -> __m512i {
        let c = _mm512_and_si512(*p, x);
        *p = _mm512_xor_si512(*p, x);
        c
    }

    /// # Safety
    /// The CPU supports AVX-512F; every id indexes inside the table.
    #[target_feature(enable = "avx512f")]
    pub unsafe fn add_avx512(table: *const Block, ids: &[u32], st: &mut State) {
        let sp = st as *mut State as *mut __m512i;
        let mut ones = _mm512_load_si512(sp);
        let mut twos = _mm512_load_si512(sp.add(1));
        let mut fours = _mm512_load_si512(sp.add(2));
        let mut eights = _mm512_load_si512(sp.add(3));
        let mut hi: [__m512i; HI] = std::array::from_fn(|i| _mm512_load_si512(sp.add(4 + i)));
        let tp = table as *const __m512i;
        let mut groups = ids.chunks_exact(16);
        let mut next = PREFETCH;
        for g in &mut groups {
            // Prefetch the table rows PREFETCH inputs ahead: the ids are known in advance
            // and the rows are scattered over a table larger than L1.
            if next + 16 <= ids.len() {
                for i in 0..16 {
                    _mm_prefetch::<_MM_HINT_T0>(
                        tp.add(*ids.get_unchecked(next + i) as usize) as *const i8
                    );
                }
            }
            next += 16;
            let ld = |i: usize| _mm512_load_si512(tp.add(*g.get_unchecked(i) as usize));
            let (ta, o) = csa(ones, ld(0), ld(1));
            let (tb, o) = csa(o, ld(2), ld(3));
            let (fa, t) = csa(twos, ta, tb);
            let (ta, o) = csa(o, ld(4), ld(5));
            let (tb, o) = csa(o, ld(6), ld(7));
            let (fb, t) = csa(t, ta, tb);
            let (ea, f) = csa(fours, fa, fb);
            let (ta, o) = csa(o, ld(8), ld(9));
            let (tb, o) = csa(o, ld(10), ld(11));
            let (fa, t) = csa(t, ta, tb);
            let (ta, o) = csa(o, ld(12), ld(13));
            let (tb, o) = csa(o, ld(14), ld(15));
            let (fb, t) = csa(t, ta, tb);
            let (eb, f) = csa(f, fa, fb);
            let (sixteens, e) = csa(eights, ea, eb);
            ones = o;
            twos = t;
            fours = f;
            eights = e;
            let mut x = sixteens;
            for h in hi.iter_mut() {
                x = add_bit(h, x);
            }
        }
        for &t in groups.remainder() {
            let mut x = _mm512_load_si512(tp.add(t as usize));
            x = add_bit(&mut ones, x);
            x = add_bit(&mut twos, x);
            x = add_bit(&mut fours, x);
            x = add_bit(&mut eights, x);
            for h in hi.iter_mut() {
                x = add_bit(h, x);
            }
        }
        _mm512_store_si512(sp, ones);
        _mm512_store_si512(sp.add(1), twos);
        _mm512_store_si512(sp.add(2), fours);
        _mm512_store_si512(sp.add(3), eights);
        for (i, h) in hi.iter().enumerate() {
            _mm512_store_si512(sp.add(4 + i), *h);
        }
    }

    /// Planes → 512 u32 counters: 32 vectors of 16 lanes, one masked add per plane.
    ///
    /// # Safety
    /// The CPU supports AVX-512F.
    #[target_feature(enable = "avx512f")]
    pub unsafe fn extract_avx512(st: &State, out: &mut [u32; BLOCK]) {
        let op = out.as_mut_ptr() as *mut __m512i;
        let mut acc: [__m512i; 32] = std::array::from_fn(|q| _mm512_loadu_si512(op.add(q)));
        for (b, pl) in st.low.iter().chain(st.hi.iter()).enumerate() {
            if pl.0.iter().all(|&w| w == 0) {
                continue;
            }
            // Lane l of the plane is bit l % 16 of 16-bit word l / 16.
            let bits: [u16; 32] = std::mem::transmute(pl.0);
            let w = _mm512_set1_epi32(1 << b);
            for (q, a) in acc.iter_mut().enumerate() {
                *a = _mm512_mask_add_epi32(*a, bits[q], *a, w);
            }
        }
        for (q, a) in acc.iter().enumerate() {
            _mm512_storeu_si512(op.add(q), *a);
        }
    }
}

/// Builds the token → column-mask table of columns `sets[c]` (c < 512) into `table`,
/// which must be zeroed and long enough for every id.
pub fn fill_table(table: &mut [Block], t0: usize, sets: &[&[u32]]) {
    let t1 = t0 + table.len();
    for (c, s) in sets.iter().enumerate() {
        let lo = s.partition_point(|&t| (t as usize) < t0);
        let hi = s.partition_point(|&t| (t as usize) < t1);
        let (word, bit) = (c / 64, 1u64 << (c % 64));
        for &t in &s[lo..hi] {
            table[t as usize - t0].0[word] |= bit;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rng(seed: &mut u64) -> u64 {
        *seed ^= *seed << 13;
        *seed ^= *seed >> 7;
        *seed ^= *seed << 17;
        *seed
    }

    fn random_set(seed: &mut u64, vocab: u32, len: usize) -> Vec<u32> {
        let mut v: Vec<u32> = (0..len)
            .map(|_| (rng(seed) % vocab as u64) as u32)
            .collect();
        v.sort_unstable();
        v.dedup();
        v
    }

    #[test]
    fn every_isa_counts_like_a_merge() {
        let mut seed = 0x1234_5678_9abc_def1u64;
        for &(vocab, len, cols) in &[
            (100u32, 50usize, 512usize),
            (5000, 2000, 300),
            (9000, 8200, 17),
            (70, 70, 1),
            (64, 0, 5),
        ] {
            let sets: Vec<Vec<u32>> = (0..cols)
                .map(|_| random_set(&mut seed, vocab, len))
                .collect();
            let refs: Vec<&[u32]> = sets.iter().map(|s| s.as_slice()).collect();
            let mut table = vec![Block::default(); vocab as usize];
            fill_table(&mut table, 0, &refs);
            for row in [
                random_set(&mut seed, vocab, len),
                sets[0].clone(),
                Vec::new(),
            ] {
                let want: Vec<u32> = (0..BLOCK)
                    .map(|c| {
                        if c < cols {
                            crate::overlap::intersection_count_sorted(&row, &sets[c]) as u32
                        } else {
                            0
                        }
                    })
                    .collect();
                for isa in Isa::available() {
                    let mut out = [0u32; BLOCK];
                    counts(isa, &table, &row, &mut out);
                    assert_eq!(out.to_vec(), want, "isa {isa:?} vocab {vocab} len {len}");
                }
            }
        }
    }

    #[test]
    fn table_fill_by_ranges_matches_whole() {
        let mut seed = 77u64;
        let sets: Vec<Vec<u32>> = (0..40).map(|_| random_set(&mut seed, 1000, 300)).collect();
        let refs: Vec<&[u32]> = sets.iter().map(|s| s.as_slice()).collect();
        let mut whole = vec![Block::default(); 1000];
        fill_table(&mut whole, 0, &refs);
        let mut parts = vec![Block::default(); 1000];
        for (i, ch) in parts.chunks_mut(128).enumerate() {
            fill_table(ch, i * 128, &refs);
        }
        assert_eq!(whole, parts);
    }
}
