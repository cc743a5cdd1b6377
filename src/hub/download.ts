/**
 * Downloads into the standard Hugging Face cache layout, so resolve.ts and Python tools reuse
 * what is fetched: `<cache>/models--org--name/{blobs/<etag>, snapshots/<commit>/<path> →
 * ../../blobs/<etag>, refs/main}`. Only what fingerprinting needs is fetched: config and
 * tokenizer files, and the weights of one format (ONNX, else safetensors / a LoRA adapter,
 * else one GGUF quant by a preference list).
 *
 * Every file is written to `blobs/<etag>.incomplete` first and resumed from its length with a
 * Range request after a dropped connection or a restart; LFS files are checked against their
 * sha256, regular files against their git blob id, before the rename. Names from the server
 * are hostile input: repo ids, revisions and etags must have their plain shapes, and every file
 * path must stay inside the snapshot folder.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { listFiles, modelInfo } from '@huggingface/hub';
import { ModelError } from '../inference/errors.js';
import { ONNX_VARIANTS } from '../inference/format.js';
import { parseHubId } from '../inference/hub.js';
import { messageOf } from '../errors.js';
import { HttpStatusError, clientParams, hubModelError, retryingFetch, type HubOptions } from './client.js';

export interface PlanFile {
  /** Path in the repo (forward slashes). */
  path: string;
  size: number;
  /** Blob name in the cache: the LFS sha256, else the git blob id. */
  etag: string;
  /** Expected sha256 (LFS files). */
  sha256: string | null;
  /** Expected git blob sha1 (regular files). */
  gitOid: string | null;
}

export interface RepoPlan {
  id: string;
  /** Commit the snapshot is named after. */
  revision: string;
  gated: boolean;
  /** The weight format chosen: onnx, safetensors, adapter, gguf, or none (config files only). */
  format: 'onnx' | 'safetensors' | 'adapter' | 'gguf' | 'none';
  files: PlanFile[];
  bytes: number;
}

export const CONFIG_FILES = [
  'config.json',
  'generation_config.json',
  'tokenizer.json',
  'tokenizer_config.json',
  'special_tokens_map.json',
  'added_tokens.json',
  'tokenizer.model',
  'vocab.json',
  'merges.txt',
  'adapter_config.json',
];

/** GGUF quants by preference (closest to the original weights first); else the first by name. */
export const GGUF_PREFERENCE = ['F32', 'BF16', 'F16', 'Q8_0', 'Q6_K', 'Q5_K_M', 'Q5_0', 'Q4_K_M', 'Q4_0'];

const ETAG = /^(?:[0-9a-f]{40}|[0-9a-f]{64})$/;
const COMMIT = /^[0-9a-f]{40}$/;

/** A repo-relative path that stays inside its folder: no absolute, backslash, empty, `.` or `..` parts. */
export function isSafeRepoPath(p: string): boolean {
  if (!p || p.length > 1000 || p.includes('\\') || p.includes('\0') || p.startsWith('/')) return false;
  return p.split('/').every((s) => s !== '' && s !== '.' && s !== '..');
}

/** Joins a repo path below dir, or throws unsafe_path when it would leave it. */
export function confined(id: string, dir: string, p: string): string {
  const abs = path.resolve(dir, p);
  if (!isSafeRepoPath(p) || !abs.startsWith(path.resolve(dir) + path.sep)) {
    throw new ModelError('unsafe_path', id, `the Hub listed a file path that leaves the snapshot folder: ${JSON.stringify(p)}`, 'the server is misbehaving; nothing was written outside the cache');
  }
  return abs;
}

/** The files to fetch from a repo listing (only the weights of the preferred format). */
export function selectFiles(all: string[]): { files: string[]; format: RepoPlan['format'] } {
  const set = new Set(all.filter(isSafeRepoPath));
  const files = CONFIG_FILES.filter((f) => set.has(f));
  const bases = ['onnx/model', 'onnx/decoder_model_merged', 'model', 'decoder_model_merged'];
  for (const v of ONNX_VARIANTS) {
    for (const b of bases) {
      const f = `${b}${v.suffix}.onnx`;
      if (!set.has(f)) continue;
      // External data: model.onnx_data, model.onnx.data, model.onnx_data_1 …
      const data = [...set].filter((x) => x !== f && (x.startsWith(`${f}_data`) || x.startsWith(`${f}.data`))).sort();
      return { files: [...files, f, ...data], format: 'onnx' };
    }
  }
  if (set.has('model.safetensors.index.json')) {
    const shards = [...set].filter((x) => /^model-\d+-of-\d+\.safetensors$/.test(x)).sort();
    return { files: [...files, 'model.safetensors.index.json', ...shards], format: 'safetensors' };
  }
  if (set.has('model.safetensors')) return { files: [...files, 'model.safetensors'], format: 'safetensors' };
  if (set.has('adapter_model.safetensors') && set.has('adapter_config.json')) return { files: [...files, 'adapter_model.safetensors'], format: 'adapter' };
  const ggufs = [...set].filter((x) => x.endsWith('.gguf') && !x.includes('/')).sort();
  if (ggufs.length > 0) {
    const pick = GGUF_PREFERENCE.map((q) => ggufs.find((g) => g.toUpperCase().includes(q))).find(Boolean) ?? ggufs[0];
    return { files: [...files, pick], format: 'gguf' };
  }
  return { files, format: 'none' };
}

/** Model info (commit, gated) and the file tree at that commit → what to fetch. */
export async function planRepo(id: string, hub: HubOptions): Promise<RepoPlan> {
  if (!parseHubId(id) || id.includes('@')) throw new ModelError('not_found', id, 'not a Hub model id (org/name)', 'check the id');
  const params = clientParams(hub);
  let gated = false;
  try {
    const info = await modelInfo({ ...params, name: id, additionalFields: ['sha'] });
    gated = info.gated !== false && info.gated !== undefined;
    const revision = info.sha;
    if (typeof revision !== 'string' || !COMMIT.test(revision)) throw new ModelError('download_failed', id, `the Hub gave no usable commit for the repo (${JSON.stringify(revision)})`);
    const entries: PlanFile[] = [];
    for await (const e of listFiles({ ...params, repo: id, revision, recursive: true })) {
      if (e.type !== 'file') continue;
      const lfs = e.lfs ? e.lfs.oid : null;
      const oid = String(e.oid ?? '');
      entries.push({ path: e.path, size: e.lfs ? e.lfs.size : e.size, etag: lfs ?? oid, sha256: lfs, gitOid: lfs ? null : oid });
    }
    const { files, format } = selectFiles(entries.map((e) => e.path));
    const chosen = files.map((f) => entries.find((e) => e.path === f)!);
    for (const f of chosen) {
      if (!ETAG.test(f.etag)) throw new ModelError('unsafe_path', id, `the Hub gave a malformed blob id for ${f.path}: ${JSON.stringify(f.etag)}`, 'the server is misbehaving');
      if (!Number.isSafeInteger(f.size) || f.size < 0) throw new ModelError('download_failed', id, `the Hub gave a bad size for ${f.path}`);
    }
    return { id, revision, gated, format, files: chosen, bytes: chosen.reduce((s, f) => s + f.size, 0) };
  } catch (e) {
    throw hubModelError(id, e, { gated, token: !!hub.token });
  }
}

export function repoFolder(cacheDir: string, id: string): string {
  return path.join(cacheDir, `models--${id.split('/').join('--')}`);
}

/** What downloading a plan would create that is not there yet (for the audit's ledger). */
export function newPaths(plan: RepoPlan, cacheDir: string): { repoDir: string; repoExisted: boolean; blobs: string[]; links: string[] } {
  const repoDir = repoFolder(cacheDir, plan.id);
  const snap = path.join(repoDir, 'snapshots', plan.revision);
  const blobs = [...new Set(plan.files.map((f) => path.join(repoDir, 'blobs', f.etag)))].filter((b) => !fs.existsSync(b));
  const links = plan.files.map((f) => confined(plan.id, snap, f.path)).filter((l) => !exists(l));
  return { repoDir, repoExisted: fs.existsSync(repoDir), blobs, links };
}

function exists(p: string): boolean {
  try {
    fs.lstatSync(p);
    return true;
  } catch {
    return false;
  }
}

/** A counting semaphore: at most n tasks at once. */
export class Limiter {
  private active = 0;
  private queue: Array<() => void> = [];
  constructor(private readonly n: number) {}
  async run<T>(f: () => Promise<T>): Promise<T> {
    if (this.active >= this.n) await new Promise<void>((r) => this.queue.push(r));
    this.active++;
    try {
      return await f();
    } finally {
      this.active--;
      this.queue.shift()?.();
    }
  }
}

export interface DownloadResult {
  id: string;
  revision: string;
  format: RepoPlan['format'];
  snapshotDir: string;
  files: number;
  /** Bytes transferred in this call (resumed files count only what was fetched now). */
  fetchedBytes: number;
  /** Bytes of the selected files. */
  bytes: number;
}

/** Downloads a planned repo into the cache; files go through the shared limiter. */
export async function downloadRepo(
  plan: RepoPlan,
  hub: HubOptions,
  cacheDir: string,
  limiter: Limiter,
  opts: { onBytes?: (n: number) => void; signal?: AbortSignal } = {},
): Promise<DownloadResult> {
  const repoDir = repoFolder(cacheDir, plan.id);
  const snap = path.join(repoDir, 'snapshots', plan.revision);
  let fetched = 0;
  const count = (n: number) => {
    fetched += n;
    opts.onBytes?.(n);
  };
  try {
    await Promise.all(
      plan.files.map((f) =>
        limiter.run(async () => {
          const link = confined(plan.id, snap, f.path);
          const blob = path.join(repoDir, 'blobs', f.etag);
          opts.signal?.throwIfAborted();
          if (!fs.existsSync(blob)) await fetchBlob(plan, f, blob, hub, count, opts.signal);
          fs.mkdirSync(path.dirname(link), { recursive: true });
          if (exists(link)) fs.rmSync(link);
          fs.symlinkSync(path.relative(path.dirname(link), blob), link);
        }),
      ),
    );
    fs.mkdirSync(path.join(repoDir, 'refs'), { recursive: true });
    fs.writeFileSync(path.join(repoDir, 'refs', 'main'), plan.revision);
  } catch (e) {
    throw hubModelError(plan.id, e, { gated: plan.gated, token: !!hub.token });
  }
  return { id: plan.id, revision: plan.revision, format: plan.format, snapshotDir: snap, files: plan.files.length, fetchedBytes: fetched, bytes: plan.bytes };
}

async function hashFile(file: string, algo: 'sha256' | 'sha1', gitSize?: number): Promise<string> {
  const h = crypto.createHash(algo);
  if (gitSize !== undefined) h.update(`blob ${gitSize}\0`);
  await pipeline(fs.createReadStream(file), h);
  return h.digest('hex');
}

/**
 * One file into blobs/<etag>: resumes `<blob>.incomplete` with a Range request, retries a
 * dropped connection (resuming again) up to hub.retries times, never writes more than the
 * declared size, checks the hash, then renames.
 */
async function fetchBlob(plan: RepoPlan, f: PlanFile, blob: string, hub: HubOptions, count: (n: number) => void, signal?: AbortSignal): Promise<void> {
  fs.mkdirSync(path.dirname(blob), { recursive: true });
  const tmp = `${blob}.incomplete`;
  const url = `${hub.endpoint}/${plan.id}/resolve/${plan.revision}/${f.path.split('/').map(encodeURIComponent).join('/')}`;
  const doFetch = retryingFetch(hub);
  for (let attempt = 0; ; attempt++) {
    let have = fs.existsSync(tmp) ? fs.statSync(tmp).size : 0;
    if (have > f.size) {
      fs.rmSync(tmp);
      have = 0;
    }
    try {
      if (have < f.size || f.size === 0) {
        const res = await doFetch(url, { signal, headers: { ...(hub.token ? { authorization: `Bearer ${hub.token}` } : {}), ...(have > 0 ? { range: `bytes=${have}-` } : {}) } });
        if (res.status === 416) {
          await res.body?.cancel();
          fs.rmSync(tmp, { force: true });
          throw new Error('the server refused the resume range (416); starting over');
        }
        if (!res.ok) {
          await res.body?.cancel().catch(() => undefined);
          throw new HttpStatusError(res.status, url, res.headers.get('x-error-code'));
        }
        const commit = res.headers.get('x-repo-commit');
        if (commit && commit !== plan.revision) {
          await res.body?.cancel();
          throw new ModelError('download_failed', plan.id, `${f.path}: the server sent commit ${commit}, not ${plan.revision} (the repo changed during the download)`, 'run again to fetch the new commit');
        }
        const append = res.status === 206 && have > 0;
        let written = append ? have : 0;
        const guard = new Transform({
          transform(chunk: Buffer, _enc, cb) {
            written += chunk.length;
            if (written > f.size) return cb(new ModelError('download_failed', plan.id, `${f.path}: the server sent more than the ${f.size} bytes it declared`));
            count(chunk.length);
            cb(null, chunk);
          },
        });
        if (!res.body) throw new Error('empty response body');
        await pipeline(Readable.fromWeb(res.body as import('node:stream/web').ReadableStream), guard, fs.createWriteStream(tmp, { flags: append ? 'a' : 'w' }), { signal });
      }
      const size = fs.statSync(tmp).size;
      if (size !== f.size) throw new Error(`${f.path}: got ${size} of ${f.size} bytes`);
      const got = f.sha256 ? await hashFile(tmp, 'sha256') : f.gitOid ? await hashFile(tmp, 'sha1', size) : null;
      const want = f.sha256 ?? f.gitOid;
      if (got !== null && got !== want) {
        fs.rmSync(tmp, { force: true });
        throw new ModelError('checksum_mismatch', plan.id, `${f.path}: ${f.sha256 ? 'sha256' : 'git blob id'} ${got} ≠ ${want} declared by the Hub`, 'the file was corrupted on the way or the Hub listing is wrong; the partial file was removed');
      }
      fs.renameSync(tmp, blob);
      return;
    } catch (e) {
      // Stopped (Ctrl-C / SIGTERM): what is on disk stays for the resume.
      if (signal?.aborted) throw e;
      if (e instanceof ModelError || e instanceof HttpStatusError || attempt >= hub.retries) throw e instanceof Error && !(e instanceof ModelError) && !(e instanceof HttpStatusError) ? new ModelError('download_failed', plan.id, `${f.path}: ${messageOf(e)}`, 'run again: the download resumes where it stopped') : e;
      // A dropped connection: back off, then resume from what is on disk.
      await new Promise((r) => setTimeout(r, Math.min(hub.maxWaitMs, hub.backoffMs * 2 ** attempt)));
    }
  }
}

/** Sizes on disk of files below a folder (links not followed). */
export function folderBytes(dir: string): number {
  let n = 0;
  if (!fs.existsSync(dir)) return 0;
  for (const e of fs.readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (e.isFile()) n += fs.statSync(path.join(e.parentPath, e.name)).size;
  }
  return n;
}
