//! Bitset kernel (for comparison): each set as a bitset over the vocabulary, the count of a
//! pair as AND + POPCOUNT over vocab / 64 words. Runtime dispatch: AVX-512 VPOPCNTDQ,
//! else scalar POPCNT, else portable bit counting.

use std::cell::RefCell;
use std::ops::Range;

use rayon::prelude::*;

use super::super::stripes::{Stripe, BLOCK};
use super::super::Job;
use super::CountKernel;
use crate::sketch::SketchCollection;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Pop {
    Avx512,
    Popcnt,
    Portable,
}

fn pop_isa() -> Pop {
    #[cfg(target_arch = "x86_64")]
    {
        if std::env::var("MODELPRINT_CPU_ISA").ok().as_deref() == Some("portable") {
            return Pop::Portable;
        }
        if std::is_x86_feature_detected!("avx512f")
            && std::is_x86_feature_detected!("avx512vpopcntdq")
        {
            return Pop::Avx512;
        }
        if std::is_x86_feature_detected!("popcnt") {
            return Pop::Popcnt;
        }
    }
    Pop::Portable
}

pub fn popcnt_isa_name() -> &'static str {
    match pop_isa() {
        Pop::Avx512 => "avx512vpopcntdq",
        Pop::Popcnt => "popcnt",
        Pop::Portable => "portable",
    }
}

/// `Σ popcount(a[i] & b[i])`; lengths equal and a multiple of 8.
#[inline]
fn and_popcount(pop: Pop, a: &[u64], b: &[u64]) -> u32 {
    debug_assert_eq!(a.len(), b.len());
    match pop {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: chosen only when the CPU has the features; lengths checked by callers.
        Pop::Avx512 => unsafe { x86::and_popcount_avx512(a, b) },
        #[cfg(target_arch = "x86_64")]
        Pop::Popcnt => unsafe { x86::and_popcount_popcnt(a, b) },
        _ => and_popcount_generic(a, b),
    }
}

#[inline(always)]
fn and_popcount_generic(a: &[u64], b: &[u64]) -> u32 {
    a.iter().zip(b).map(|(x, y)| (x & y).count_ones()).sum()
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    #[target_feature(enable = "popcnt")]
    pub unsafe fn and_popcount_popcnt(a: &[u64], b: &[u64]) -> u32 {
        super::and_popcount_generic(a, b)
    }

    #[target_feature(enable = "avx512f,avx512vpopcntdq")]
    pub unsafe fn and_popcount_avx512(a: &[u64], b: &[u64]) -> u32 {
        debug_assert!(a.len().is_multiple_of(8) && a.len() == b.len());
        let mut acc0 = _mm512_setzero_si512();
        let mut acc1 = _mm512_setzero_si512();
        let (pa, pb) = (a.as_ptr() as *const __m512i, b.as_ptr() as *const __m512i);
        let n = a.len() / 8;
        let mut i = 0;
        while i + 1 < n {
            let x0 = _mm512_and_si512(_mm512_loadu_si512(pa.add(i)), _mm512_loadu_si512(pb.add(i)));
            let x1 = _mm512_and_si512(
                _mm512_loadu_si512(pa.add(i + 1)),
                _mm512_loadu_si512(pb.add(i + 1)),
            );
            acc0 = _mm512_add_epi64(acc0, _mm512_popcnt_epi64(x0));
            acc1 = _mm512_add_epi64(acc1, _mm512_popcnt_epi64(x1));
            i += 2;
        }
        if i < n {
            let x0 = _mm512_and_si512(_mm512_loadu_si512(pa.add(i)), _mm512_loadu_si512(pb.add(i)));
            acc0 = _mm512_add_epi64(acc0, _mm512_popcnt_epi64(x0));
        }
        _mm512_reduce_add_epi64(_mm512_add_epi64(acc0, acc1)) as u32
    }
}

pub(crate) struct BitsetKernel<'a> {
    cols: &'a SketchCollection,
    words: usize,
    pop: Pop,
    c0: usize,
    c1: usize,
    col_bits: Vec<Vec<u64>>,
}

impl<'a> BitsetKernel<'a> {
    pub fn new(job: &Job<'a>) -> Self {
        let words = (job.vocab() as usize).div_ceil(512) * 8;
        BitsetKernel {
            cols: job.cols,
            words,
            pop: pop_isa(),
            c0: 0,
            c1: 0,
            col_bits: Vec::new(),
        }
    }
}

thread_local! {
    static ROW: RefCell<Vec<u64>> = const { RefCell::new(Vec::new()) };
}

fn set_bits(bits: &mut [u64], set: &[u32]) {
    for &t in set {
        bits[t as usize / 64] |= 1u64 << (t % 64);
    }
}

impl CountKernel for BitsetKernel<'_> {
    fn group(&self, prompts: usize) -> usize {
        let one = (BLOCK * self.words * 8).max(1);
        (super::TABLE_BUDGET / one).clamp(1, prompts.max(1))
    }

    fn prepare(&mut self, st: &Stripe, prompts: Range<usize>) {
        self.c0 = st.c0;
        self.c1 = st.c1;
        let (w, words, cols) = (st.c1 - st.c0, self.words, self.cols);
        self.col_bits.resize(prompts.len(), Vec::new());
        self.col_bits
            .par_iter_mut()
            .enumerate()
            .for_each(|(gi, bits)| {
                bits.clear();
                bits.resize(w * words, 0);
                for (c, b) in bits.chunks_mut(words).enumerate() {
                    set_bits(b, cols.set(st.c0 + c, prompts.start + gi));
                }
            });
    }

    fn count(&self, gi: usize, row: &[u32], out: &mut [u32; BLOCK]) {
        ROW.with(|r| {
            let mut rb = r.borrow_mut();
            rb.clear();
            rb.resize(self.words, 0);
            set_bits(&mut rb, row);
            let bits = &self.col_bits[gi];
            for (c, o) in out.iter_mut().enumerate().take(self.c1 - self.c0) {
                *o += and_popcount(self.pop, &rb, &bits[c * self.words..(c + 1) * self.words]);
            }
        });
    }
}
