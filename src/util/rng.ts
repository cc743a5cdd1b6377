/**
 * The project's one seeded PRNG: xoshiro128** (32-bit). Deterministic across platforms
 * and Node versions, so a recorded seed repeats a run exactly.
 *
 * Two ways to seed it: `new Rng(seed)` expands a 32-bit seed with splitmix32 (probe
 * prompts, METHODS §1.2: the seed is recorded with the prompts); `Rng.fromLabels(...)`
 * hashes labels with sha256 (the zoo: seed, family, model id, purpose), and `fork` derives
 * an independent child stream the same way.
 */
import crypto from 'node:crypto';

export class Rng {
  private s0 = 0;
  private s1 = 0;
  private s2 = 0;
  private s3 = 0;

  /** A generator whose state is expanded from a 32-bit seed by splitmix32. */
  constructor(seed: number) {
    let x = seed >>> 0;
    const next = (): number => {
      x = (x + 0x9e3779b9) >>> 0;
      let z = x;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
      return (z ^ (z >>> 16)) >>> 0;
    };
    this.setState(next(), next(), next(), next());
  }

  /** A generator seeded by the sha256 of the labels (e.g. seed, family, model id, purpose). */
  static fromLabels(...labels: Array<string | number>): Rng {
    const h = crypto.createHash('sha256').update(labels.map(String).join('\u0000')).digest();
    const rng = new Rng(0);
    rng.setState(h.readUInt32LE(0), h.readUInt32LE(4), h.readUInt32LE(8), h.readUInt32LE(12));
    return rng;
  }

  private setState(s0: number, s1: number, s2: number, s3: number): void {
    this.s0 = s0;
    this.s1 = s1;
    this.s2 = s2;
    this.s3 = s3;
    if ((s0 | s1 | s2 | s3) === 0) this.s0 = 1;
  }

  /** A child generator, independent of how much this one is used afterwards. */
  fork(...labels: Array<string | number>): Rng {
    return Rng.fromLabels(this.s0, this.s1, this.s2, this.s3, ...labels);
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

  /** Uniform integer in [0, n) without modulo bias (rejection sampling). */
  int(n: number): number {
    if (!(n > 0) || n > 2 ** 32) throw new RangeError(`Rng.int: bad range ${n}`);
    const limit = 4294967296 - (4294967296 % n);
    let x: number;
    do x = this.nextU32();
    while (x >= limit);
    return x % n;
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
