import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { ModelError } from '../inference/errors.js';

/** sha256 hex of a JSON-serialisable value with sorted keys (stable config hashes). */
export function stableHash(value: unknown): string {
  return crypto.createHash('sha256').update(stableStringify(value)).digest('hex');
}

export function stableStringify(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value);
  if (Array.isArray(value)) return `[${value.map(stableStringify).join(',')}]`;
  const obj = value as Record<string, unknown>;
  return `{${Object.keys(obj)
    .filter((k) => obj[k] !== undefined)
    .sort()
    .map((k) => `${JSON.stringify(k)}:${stableStringify(obj[k])}`)
    .join(',')}}`;
}

/** Every regular file below dir (relative paths, sorted), following no symlinked dirs. */
export function listFiles(dir: string): string[] {
  const out: string[] = [];
  const walk = (rel: string) => {
    for (const ent of fs.readdirSync(path.join(dir, rel), { withFileTypes: true })) {
      const r = rel ? path.join(rel, ent.name) : ent.name;
      if (ent.name.startsWith('.')) continue;
      const full = path.join(dir, r);
      let st: fs.Stats;
      try {
        st = fs.statSync(full);
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        // A broken link (an incomplete download) or a link loop: a coded per-model error, not a crash.
        if (code === 'ELOOP') throw new ModelError('unsafe_path', dir, `${r} is a symbolic link loop`, 'remove the link, or download the model again');
        if (code === 'ENOENT') throw new ModelError('not_found', dir, `${r} is a dangling symbolic link (${fs.readlinkSync(full)} does not exist)`, 'the download is incomplete: fetch the model again');
        throw new ModelError('load_failed', dir, `cannot read ${r}: ${(e as Error).message}`);
      }
      if (st.isDirectory()) walk(r);
      else if (st.isFile()) out.push(r);
    }
  };
  walk('');
  return out.sort();
}

/**
 * Content hash of a model: sha256 over (relative path, size, bytes) of its files.
 * Two uploads with identical files get the same hash wherever they live.
 */
export async function contentHash(target: string): Promise<string> {
  const st = fs.statSync(target);
  const files = st.isDirectory() ? listFiles(target) : [path.basename(target)];
  const root = st.isDirectory() ? target : path.dirname(target);
  const h = crypto.createHash('sha256');
  for (const rel of files) {
    const full = path.join(root, rel);
    h.update(`${rel.split(path.sep).join('/')}\0${fs.statSync(full).size}\0`);
    await new Promise<void>((resolve, reject) => {
      fs.createReadStream(full, { highWaterMark: 1 << 20 })
        .on('data', (chunk) => h.update(chunk))
        .on('end', () => resolve())
        .on('error', reject);
    });
  }
  return h.digest('hex');
}
