import { z } from 'zod';
import { stableHash } from '../util/hash.js';

/** Parameters of the bottom-k method (METHODS §1), validated with zod. */
export const BottomKParamsSchema = z.object({
  k: z.number().int().positive().default(2000),
  numPrompts: z.number().int().positive().default(10),
  sampleK: z.number().int().positive().default(50),
  prefixLen: z.number().int().positive().default(8),
  totalLen: z.number().int().positive().default(64),
  seed: z.number().int().nonnegative().default(42),
  metric: z.enum(['overlap', 'jaccard']).default('overlap'),
});
export type BottomKParams = z.infer<typeof BottomKParamsSchema>;

/** Key of a probe set: what generated the prompts. */
export function promptParamsHash(p: BottomKParams): string {
  return stableHash({ v: 1, n: p.numPrompts, sampleK: p.sampleK, prefixLen: p.prefixLen, totalLen: p.totalLen, seed: p.seed });
}

/** Key of a sketch: k and the exact prompt texts (v2: payloads are `.mpsk` bytes). */
export function sketchConfigHash(k: number, prompts: string[]): string {
  return stableHash({ v: 2, k, prompts });
}
