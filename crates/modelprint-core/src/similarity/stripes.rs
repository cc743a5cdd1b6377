//! Work decomposition: stripes (≤ 512 columns × a row range) and shards of the upper triangle.

use super::SimilarityError;
use crate::error::Error;

/// Column block width (one 512-bit mask per token in the CPU kernel) and shard tile size.
pub const BLOCK: usize = 512;
/// Rows per stripe at most (bounds the per-stripe accumulators: rows × 512 × 16 bytes).
pub const ROW_CHUNK: usize = if cfg!(test) { 2 * BLOCK } else { 16 * BLOCK };

/// Columns `c0..c1` (at most [`BLOCK`]) against rows `r0..r1`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stripe {
    pub c0: usize,
    pub c1: usize,
    pub r0: usize,
    pub r1: usize,
}

fn push_rows(out: &mut Vec<Stripe>, c0: usize, c1: usize, r0: usize, r1: usize) {
    let mut r = r0;
    while r < r1 {
        let e = (r + ROW_CHUNK).min(r1);
        out.push(Stripe {
            c0,
            c1,
            r0: r,
            r1: e,
        });
        r = e;
    }
}

/// Blocks of [`BLOCK`] of `cols` columns, each against rows `0..rows_end(c1)` (c1 the end of
/// the block).
fn plan_blocks(cols: usize, rows_end: impl Fn(usize) -> usize) -> Vec<Stripe> {
    let mut out = Vec::new();
    let mut c0 = 0;
    while c0 < cols {
        let c1 = (c0 + BLOCK).min(cols);
        push_rows(&mut out, c0, c1, 0, rows_end(c1));
        c0 = c1;
    }
    out
}

/// Upper triangle (with the diagonal blocks) of an n × n matrix.
pub fn plan_full(n: usize) -> Vec<Stripe> {
    plan_blocks(n, |c1| c1)
}

/// Every query row against every reference column.
pub fn plan_rect(nq: usize, nr: usize) -> Vec<Stripe> {
    plan_blocks(nr, |_| nq)
}

/// Shard `index` (0-based) of `count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShardSpec {
    pub index: usize,
    pub count: usize,
}

impl ShardSpec {
    pub fn new(index: usize, count: usize) -> Result<Self, SimilarityError> {
        if count == 0 || index >= count {
            return Err(Error::usage(format!(
                "shard {index}/{count}: the index must be in 0..{count} (0-based) and the count at least 1"
            )));
        }
        Ok(ShardSpec { index, count })
    }
}

impl std::str::FromStr for ShardSpec {
    type Err = SimilarityError;
    /// `"i/n"`, 0-based (`0/4` … `3/4`).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || {
            Error::usage(format!(
                "shard must look like i/n (0-based, e.g. 0/4), got {s:?}"
            ))
        };
        let (a, b) = s.split_once('/').ok_or_else(bad)?;
        let i = a.trim().parse().map_err(|_| bad())?;
        let n = b.trim().parse().map_err(|_| bad())?;
        ShardSpec::new(i, n)
    }
}

/// The tiles `(bi, bj)`, `bi ≤ bj`, of blocks of [`BLOCK`] models, in shard order
/// (by column block, then row block), with their costs (rows × columns).
pub fn upper_tiles(n: usize) -> Vec<(u32, u32, u64)> {
    let nb = n.div_ceil(BLOCK);
    let size = |b: usize| ((b + 1) * BLOCK).min(n) - b * BLOCK;
    let mut out = Vec::with_capacity(nb * (nb + 1) / 2);
    for bj in 0..nb {
        for bi in 0..=bj {
            out.push((bi as u32, bj as u32, (size(bi) * size(bj)) as u64));
        }
    }
    out
}

pub struct ShardPlan {
    pub tiles: Vec<(u32, u32)>,
    pub stripes: Vec<Stripe>,
}

/// The tiles of one shard: a contiguous run of [`upper_tiles`] holding about 1/count of the
/// total cost (a tile goes to the shard its cost midpoint falls in).
pub fn shard_tiles(n: usize, spec: ShardSpec) -> Vec<(u32, u32)> {
    let tiles = upper_tiles(n);
    let total: u64 = tiles.iter().map(|t| t.2).sum();
    let mut acc = 0u64;
    let mut out = Vec::new();
    for (bi, bj, cost) in tiles {
        let mid2 = 2 * acc + cost; // 2 × midpoint, to stay in integers
        let owner = ((mid2 as u128 * spec.count as u128) / (2 * total as u128).max(1)) as usize;
        if owner.min(spec.count - 1) == spec.index {
            out.push((bi, bj));
        }
        acc += cost;
    }
    out
}

pub fn plan_shard(n: usize, spec: ShardSpec) -> Result<ShardPlan, SimilarityError> {
    let tiles = shard_tiles(n, spec);
    let mut stripes = Vec::new();
    let mut i = 0;
    while i < tiles.len() {
        let bj = tiles[i].1;
        let mut e = i;
        while e + 1 < tiles.len() && tiles[e + 1].1 == bj && tiles[e + 1].0 == tiles[e].0 + 1 {
            e += 1;
        }
        let c0 = bj as usize * BLOCK;
        let c1 = (c0 + BLOCK).min(n);
        let r0 = tiles[i].0 as usize * BLOCK;
        let r1 = ((tiles[e].0 as usize + 1) * BLOCK).min(n);
        push_rows(&mut stripes, c0, c1, r0, r1);
        i = e + 1;
    }
    Ok(ShardPlan { tiles, stripes })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_cover_every_tile_once_and_balance() {
        for n in [1usize, 511, 512, 513, 3000, 10_000] {
            let all: Vec<(u32, u32)> = upper_tiles(n).iter().map(|t| (t.0, t.1)).collect();
            for count in [1usize, 2, 3, 7, 64] {
                let mut got = Vec::new();
                let mut costs = Vec::new();
                for index in 0..count {
                    let t = shard_tiles(n, ShardSpec::new(index, count).unwrap());
                    costs.push(t.len());
                    got.extend(t);
                }
                got.sort();
                let mut want = all.clone();
                want.sort();
                assert_eq!(got, want, "n={n} count={count}");
                if all.len() >= 4 * count {
                    let max = *costs.iter().max().unwrap() as f64;
                    let mean = all.len() as f64 / count as f64;
                    assert!(max <= mean * 1.6 + 1.0, "unbalanced {costs:?}");
                }
            }
        }
    }

    #[test]
    fn parses_shard_specs() {
        assert_eq!(
            "1/4".parse::<ShardSpec>().unwrap(),
            ShardSpec { index: 1, count: 4 }
        );
        assert!("4/4".parse::<ShardSpec>().is_err());
        assert!("x".parse::<ShardSpec>().is_err());
        assert!("0/0".parse::<ShardSpec>().is_err());
    }

    #[test]
    fn full_plan_covers_upper_triangle() {
        let n = 1300;
        let mut seen = vec![false; n * n];
        for s in plan_full(n) {
            for r in s.r0..s.r1 {
                for c in s.c0..s.c1 {
                    seen[r * n + c] = true;
                }
            }
        }
        for i in 0..n {
            for j in i..n {
                assert!(seen[i * n + j]);
            }
        }
    }
}
