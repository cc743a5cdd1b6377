/**
 * The model zoo: small synthetic Llama-style models with known lineage, in the
 * Hugging Face / Optimum ONNX layout (see `modelprint zoo create`).
 */
import { createZoo, type CreateZooOptions, type ZooResult } from './create.js';
import type { ZooSize } from './spec.js';

export { createZoo, familyBaseWeights, modelsCsv, readZooManifest, zooTokenizer, MODEL_FILES } from './create.js';
export type { CreateZooOptions, ZooManifest, ZooModel, ZooResult } from './create.js';
export { DEFAULT_SEED, ZOO_FORMAT, ZOO_SIZES, modelIds, zooSpec } from './spec.js';
export type { Relation, ZooSize, ZooSpec } from './spec.js';

/**
 * A complete zoo of (size, seed) in `dir`: reused when one is there, built otherwise.
 * Defaults: size 'default', seed 42.
 */
export async function ensureZoo(
  dir: string,
  opts: { size?: ZooSize; seed?: number; log?: CreateZooOptions['log'] } = {},
): Promise<ZooResult> {
  return createZoo(dir, { size: opts.size, seed: opts.seed, log: opts.log });
}
