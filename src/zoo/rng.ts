/**
 * Deterministic, fast pseudo-random numbers for the zoo: xoshiro128** seeded from a
 * sha256 of labels, normals by Box–Muller. Same labels → same stream, on any platform.
 */
import crypto from 'node:crypto';

export class Rng {
  private s0: number;
  private s1: number;
  private s2: number;
  private s3: number;

  /** A generator seeded by the labels (e.g. seed, family, model id, purpose). */
  constructor(...labels: Array<string | number>) {
    const h = crypto.createHash('sha256').update(labels.map(String).join('\u0000')).digest();
    this.s0 = h.readUInt32LE(0);
    this.s1 = h.readUInt32LE(4);
    this.s2 = h.readUInt32LE(8);
    this.s3 = h.readUInt32LE(12);
    if ((this.s0 | this.s1 | this.s2 | this.s3) === 0) this.s0 = 1;
  }

  /** A child generator, independent of how much this one has been used. */
  fork(...labels: Array<string | number>): Rng {
    return new Rng(this.s0, this.s1, this.s2, this.s3, ...labels);
  }

  /** Uniform 32-bit unsigned integer (xoshiro128**). */
  nextU32(): number {
    const result = Math.imul(rotl(Math.imul(this.s1, 5), 7), 9) >>> 0;
    const t = this.s1 << 9;
    this.s2 ^= this.s0;
    this.s3 ^= this.s1;
    this.s1 ^= this.s2;
    this.s0 ^= this.s3;
    this.s2 ^= t;
    this.s3 = rotl(this.s3, 11);
    return result;
  }

  /** Uniform in [0, 1). */
  next(): number {
    return this.nextU32() / 4294967296;
  }

  /** Uniform integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }

  /**
   * Standard normal, by inverting the normal CDF: a 2^14-segment piecewise-linear
   * quantile table (tails cut near ±4σ). One 32-bit draw per value, several times
   * faster than Box–Muller, which matters for the millions of weights in a zoo.
   */
  normal(): number {
    const u = this.nextU32();
    const i = u >>> 18;
    const t = QUANTILES ?? buildQuantiles();
    return t[i] + (t[i + 1] - t[i]) * ((u & 0x3ffff) / 0x40000);
  }

  /** Fills `out` (or a new array of length n) with N(mean, std²). */
  normals(n: number, std = 1, mean = 0, out = new Float32Array(n)): Float32Array {
    for (let i = 0; i < n; i++) out[i] = mean + std * this.normal();
    return out;
  }

  /** Picks one element. */
  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)];
  }

  /** A random subset of `k` distinct indices in [0, n), ascending. */
  sample(n: number, k: number): number[] {
    const chosen = new Set<number>();
    k = Math.min(k, n);
    while (chosen.size < k) chosen.add(this.int(n));
    return [...chosen].sort((a, b) => a - b);
  }
}

const SEGMENTS = 1 << 14;
let QUANTILES: Float64Array | null = null;

/** Normal quantiles at k / SEGMENTS (the two ends at 1/(8·SEGMENTS) from 0 and 1), by Simpson integration of the pdf. */
function buildQuantiles(): Float64Array {
  const q = new Float64Array(SEGMENTS + 1);
  const targets = (k: number) => (k === 0 ? 1 / (8 * SEGMENTS) : k / SEGMENTS);
  const pdf = (x: number) => Math.exp((-x * x) / 2) / Math.sqrt(2 * Math.PI);
  const lo = -8;
  const steps = 1 << 18;
  const h = 16 / steps;
  let cdf = 0;
  let k = 0;
  for (let i = 0; i < steps && k < SEGMENTS / 2; i++) {
    const x = lo + i * h;
    const inc = (h * (pdf(x) + 4 * pdf(x + h / 2) + pdf(x + h))) / 6;
    while (k <= SEGMENTS / 2 && cdf + inc >= targets(k)) {
      q[k] = x + (h * (targets(k) - cdf)) / inc;
      k++;
    }
    cdf += inc;
  }
  // Exact symmetry: the upper half mirrors the lower half.
  q[SEGMENTS / 2] = 0;
  for (let j = 0; j < SEGMENTS / 2; j++) q[SEGMENTS - j] = -q[j];
  QUANTILES = q;
  return q;
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}
