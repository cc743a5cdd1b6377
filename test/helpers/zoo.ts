import fs from 'node:fs';
import path from 'node:path';
import { ensureZoo } from '../../src/zoo/index.js';
import { readCsvFile } from '../../src/util/csv.js';
import { tmpDir } from './cli.js';

export interface ZooModel {
  model_id: string;
  path: string;
  family: string;
  model_type: string;
  base_model: string;
  relation: string;
}

/** Builds a tiny zoo in a fresh temp folder and returns its models (absolute paths). */
export async function tinyZoo(seed = 42): Promise<{ dir: string; models: ZooModel[] }> {
  const dir = path.join(tmpDir('modelprint-zoo-'), 'zoo');
  await ensureZoo(dir, { size: 'tiny', seed });
  const models = readCsvFile(path.join(dir, 'models.csv')).rows.map((r) => {
    const o = { ...r } as unknown as ZooModel;
    o.path = path.resolve(dir, o.path);
    return o;
  });
  return { dir, models };
}

/** Copies a model folder (for making broken variants). */
export function copyModel(src: string, dest: string): string {
  fs.cpSync(src, dest, { recursive: true });
  return dest;
}
