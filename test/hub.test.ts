import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT, spawnCli, tmpDir, type CliResult } from './helpers/cli.js';
import { ADMIN_PASSWORD, ADMIN_USER, READER_PASSWORD, READER_USER, startPostgres, type PgServer } from './helpers/pg.js';
import { FakeHub, buildPopulation, type Population } from '../src/hub/fake-hub.js';
import { confined, folderBytes, isSafeRepoPath, selectFiles } from '../src/hub/download.js';
import { parseRetryAfter } from '../src/hub/client.js';
import { parseSize } from '../src/hub/audit.js';
import { downloadFile, fileDownloadInfo, listFiles, modelInfo } from '@huggingface/hub';
import { resolveModel } from '../src/inference/resolve.js';
import { readCsvFile } from '../src/util/csv.js';

/**
 * Hub discovery, download and audit against a local Hub (src/hub/fake-hub.ts) on 127.0.0.1:
 * a zoo base with 66 declared derivatives in ONNX, safetensors, LoRA-adapter and GGUF form,
 * nested to depth 3, with faults (429 + Retry-After, 500 transient and permanent, a connection
 * reset mid-file, a wrong sha256, gated, private, deleted after listing, a malformed blob id,
 * a size over the budget, hostile paths). The CLI runs as a child process (async: the server
 * lives in this process).
 */

const FAST = ['--num-prompts', '2', '--total-len', '16', '--k', '200', '--threads', '1', '--progress', 'jsonl'];
const BUDGET = '8M';

let hub: FakeHub;
let pop: Population;
let work: string;

function cli(args: string[], env: Record<string, string>): Promise<CliResult> {
  return new Promise((resolve) => {
    const child = spawnCli(args, { env });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}

function envFor(name: string, extra: Record<string, string> = {}): Record<string, string> {
  const dir = path.join(work, name);
  fs.mkdirSync(path.join(dir, 'cache'), { recursive: true });
  return {
    HF_HUB_CACHE: path.join(dir, 'cache'),
    MODELPRINT_REGISTRY: path.join(dir, 'registry.db'),
    MODELPRINT_CACHE_DIR: path.join(dir, 'mpcache'),
    MODELPRINT_HUB_BACKOFF_MS: '10',
    HF_ENDPOINT: hub.url,
    HF_TOKEN: '',
    ...extra,
  };
}

const sha256 = (file: string) => crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex');

beforeAll(async () => {
  work = tmpDir('modelprint-hub-');
  hub = new FakeHub();
  pop = await buildPopulation(hub, work, { hfFixtures: path.join(ROOT, 'test', 'fixtures', 'hf') });
  await hub.start();
}, 120_000);

afterAll(async () => {
  await hub?.close();
});

describe('hub helpers', () => {
  it('confines server paths to the snapshot folder', () => {
    for (const bad of ['../x', 'a/../../x', '/etc/passwd', 'a\\..\\x', 'a//b', './a', '', 'a/./b', 'x\0y']) expect(isSafeRepoPath(bad), bad).toBe(false);
    for (const ok of ['config.json', 'onnx/model.onnx', 'a/b/c.txt', '..a', 'a..b']) expect(isSafeRepoPath(ok), ok).toBe(true);
    expect(() => confined('o/n', '/tmp/snap', '../../evil')).toThrow(/leaves the snapshot/);
    expect(confined('o/n', '/tmp/snap', 'onnx/model.onnx')).toBe('/tmp/snap/onnx/model.onnx');
  });

  it('selects only what fingerprinting needs, in the preferred format', () => {
    const onnx = selectFiles(['README.md', 'config.json', 'tokenizer.json', 'onnx/model.onnx', 'onnx/model_q4.onnx', 'onnx/model.onnx_data', 'model.safetensors', 'x.gguf']);
    expect(onnx).toEqual({ files: ['config.json', 'tokenizer.json', 'onnx/model.onnx', 'onnx/model.onnx_data'], format: 'onnx' });
    expect(selectFiles(['config.json', 'onnx/model_fp16.onnx', 'onnx/model_q4.onnx']).files).toEqual(['config.json', 'onnx/model_fp16.onnx']);
    expect(selectFiles(['config.json', 'model.safetensors.index.json', 'model-00001-of-00002.safetensors', 'model-00002-of-00002.safetensors', 'pytorch_model.bin']).files).toEqual([
      'config.json',
      'model.safetensors.index.json',
      'model-00001-of-00002.safetensors',
      'model-00002-of-00002.safetensors',
    ]);
    expect(selectFiles(['adapter_config.json', 'adapter_model.safetensors']).format).toBe('adapter');
    expect(selectFiles(['m.Q4_K_M.gguf', 'm.Q8_0.gguf', 'm.Q2_K.gguf']).files).toEqual(['m.Q8_0.gguf']);
    expect(selectFiles(['../../config.json', 'onnx/../../model.onnx']).format).toBe('none');
  });

  it('parses Retry-After and sizes', () => {
    expect(parseRetryAfter('3')).toBe(3000);
    expect(parseRetryAfter(new Date(Date.now() + 5000).toUTCString())).toBeGreaterThan(3000);
    expect(parseRetryAfter(null)).toBeNull();
    expect(parseSize('20G')).toBe(20 * 1024 ** 3);
    expect(parseSize('1.5M')).toBe(Math.floor(1.5 * 1024 ** 2));
    expect(() => parseSize('lots')).toThrow(/not a size/);
  });
});

describe('the local Hub', () => {
  it('answers the official client as the Hub does (info, tree, file info, download, Range)', async () => {
    const repo = hub.repos.get(pop.base)!;
    const weights = repo.files.find((f) => f.path === 'onnx/model.onnx')!;
    const info = await modelInfo({ name: pop.base, hubUrl: hub.url, additionalFields: ['sha', 'filePaths'] });
    expect(info).toMatchObject({ name: pop.base, sha: repo.sha, gated: false });
    expect(info.filePaths).toContain('onnx/model.onnx');
    const tree = [];
    for await (const e of listFiles({ repo: pop.base, hubUrl: hub.url, recursive: true })) tree.push(e);
    expect(tree.find((e) => e.path === 'onnx/model.onnx')?.lfs?.oid).toBe(crypto.createHash('sha256').update(weights.data).digest('hex'));
    const fi = await fileDownloadInfo({ repo: pop.base, path: 'onnx/model.onnx', hubUrl: hub.url });
    expect(fi).toMatchObject({ size: weights.data.length });
    expect(fi?.etag).toContain(crypto.createHash('sha256').update(weights.data).digest('hex'));
    const blob = await downloadFile({ repo: pop.base, path: 'config.json', hubUrl: hub.url });
    expect(Buffer.from(await blob!.arrayBuffer()).equals(repo.files.find((f) => f.path === 'config.json')!.data)).toBe(true);
    const part = await fetch(`${hub.url}/${pop.base}/resolve/main/onnx/model.onnx`, { headers: { range: 'bytes=10-19' } });
    expect(part.status).toBe(206);
    expect(part.headers.get('content-range')).toBe(`bytes 10-19/${weights.data.length}`);
    expect(Buffer.from(await part.arrayBuffer()).equals(weights.data.subarray(10, 20))).toBe(true);
    const gated = await fetch(`${hub.url}/faults/gated/resolve/main/config.json`);
    expect([gated.status, gated.headers.get('x-error-code')]).toEqual([401, 'GatedRepo']);
  });
});

describe('hub derivatives', () => {
  it('follows base_model tags to depth 3 through paginated search, retries 429, caches in the registry', async () => {
    const env = envFor('discover');
    const out = path.join(work, 'discover', 'derivatives.csv');
    hub.searchRateLimit = 2;
    const before = hub.count('GET /api/models?');
    const r = await cli(['hub', 'derivatives', pop.base, '--depth', '3', '--output', out, '--json'], env);
    hub.searchRateLimit = 0;
    expect(r.code, r.stderr).toBe(0);
    const j = JSON.parse(r.stdout) as { count: number; cached: boolean; rows: Array<{ model_id: string; depth: number; relation: string; base_model: string }> };
    expect(j.cached).toBe(false);
    expect(j.count).toBe(pop.derivatives.length);
    const byId = new Map(j.rows.map((x) => [x.model_id, x]));
    expect(byId.size).toBe(pop.derivatives.length);
    for (const d of pop.derivatives) {
      expect(byId.get(d.id), d.id).toMatchObject({ base_model: d.parent, relation: d.relation, depth: d.depth });
    }
    expect(Math.max(...j.rows.map((x) => x.depth))).toBe(3);
    // 66 derivatives at 10 per page: the client followed Link headers (cursor=…).
    expect(hub.log.some((l) => l.includes('cursor='))).toBe(true);
    const csv = readCsvFile(out);
    expect(csv.header).toEqual(expect.arrayContaining(['model_id', 'base_model', 'relation', 'depth', 'downloads', 'likes', 'created_at', 'last_modified', 'pipeline_tag', 'library', 'gated', 'formats', 'tags']));
    expect(csv.rows.find((x) => x.model_id === 'hf-fixtures/llama-lora')?.formats).toBe('adapter');
    expect(csv.rows.find((x) => x.model_id === 'zoo/alpha-ft-light-GGUF')?.formats).toBe('gguf');
    expect(csv.rows.find((x) => x.model_id === 'faults/gated')?.gated).toBe('manual');
    const searches = hub.count('GET /api/models?') - before;

    // Depth 1 only gets the direct children.
    const d1 = await cli(['hub', 'derivatives', pop.base, '--depth', '1', '--relation', 'quantized', '--output', path.join(work, 'discover', 'q.csv'), '--json'], env);
    const q = JSON.parse(d1.stdout) as { rows: Array<{ depth: number; relation: string }> };
    expect(q.rows.length).toBe(pop.derivatives.filter((d) => d.depth === 1 && d.relation === 'quantized').length);

    // A rerun inside the TTL does not ask the Hub.
    const n = hub.count('GET /api/models?');
    const again = await cli(['hub', 'derivatives', pop.base, '--depth', '3', '--output', out, '--json'], env);
    expect((JSON.parse(again.stdout) as { cached: boolean; count: number }).cached).toBe(true);
    expect(hub.count('GET /api/models?')).toBe(n);
    expect(searches).toBeGreaterThan(4);
    // --ttl 0 never uses the cache; --limit stops early.
    const fresh = await cli(['hub', 'derivatives', pop.base, '--depth', '3', '--ttl', '0', '--limit', '12', '--output', path.join(work, 'discover', 'l.csv'), '--json'], env);
    expect(JSON.parse(fresh.stdout)).toMatchObject({ cached: false, count: 12 });
    expect(hub.count('GET /api/models?')).toBeGreaterThan(n);
  }, 120_000);
});

describe('hub download', () => {
  it('fills the Hugging Face cache layout, resumes partial files, and codes every failure', async () => {
    const env = envFor('download');
    const cache = env.HF_HUB_CACHE;
    // A partial blob from an earlier, interrupted download of the base's weights.
    const baseRepo = hub.repos.get(pop.base)!;
    const weights = baseRepo.files.find((f) => f.path === 'onnx/model.onnx')!;
    const blobSha = crypto.createHash('sha256').update(weights.data).digest('hex');
    const blobDir = path.join(cache, 'models--zoo--alpha-base', 'blobs');
    fs.mkdirSync(blobDir, { recursive: true });
    fs.writeFileSync(path.join(blobDir, `${blobSha}.incomplete`), weights.data.subarray(0, 1000));

    const ids = [pop.base, 'faults/rate-limited', 'faults/flaky-500', 'faults/reset-mid-file', 'faults/bad-sha', 'faults/gated', 'faults/private', 'faults/deleted', 'faults/hostile-etag', 'faults/always-500', 'faults/hostile-path', 'hf-fixtures/qwen2-sharded', 'zoo/alpha-ft-light-GGUF'];
    const r = await cli(['hub', 'download', ...ids, '--json', '--concurrency', '3'], env);
    expect(r.code, r.stderr).toBe(3);
    const j = JSON.parse(r.stdout) as { models: Array<{ model_id: string; status: string; error_code: string | null; snapshot: string | null; format: string | null }> };
    const by = new Map(j.models.map((m) => [m.model_id, m]));
    const expected: Record<string, string> = {
      'faults/bad-sha': 'checksum_mismatch',
      'faults/gated': 'gated',
      'faults/private': 'unauthorized',
      'faults/deleted': 'not_found',
      'faults/hostile-etag': 'unsafe_path',
      'faults/always-500': 'download_failed',
    };
    for (const id of ids) {
      const m = by.get(id)!;
      if (expected[id]) expect([m.status, m.error_code], id).toEqual(['failed', expected[id]]);
      else expect([m.status, m.error_code], id).toEqual(['ok', null]);
    }
    expect(by.get('zoo/alpha-ft-light-GGUF')!.format).toBe('gguf');
    // Resume: the base's weights were asked from byte 1000 on.
    expect(hub.log.some((l) => l.includes('/cdn/zoo/alpha-base/') && l.includes('range=bytes=1000-'))).toBe(true);
    // The reset file was resumed with a Range request too.
    expect(hub.log.some((l) => l.includes('/cdn/faults/reset-mid-file/') && /range=bytes=[1-9]\d*-/.test(l))).toBe(true);

    // Layout: refs/main → commit; snapshot files are relative links into blobs/ named by sha256 (LFS) or git oid.
    const repo = path.join(cache, 'models--zoo--alpha-base');
    expect(fs.readFileSync(path.join(repo, 'refs', 'main'), 'utf8')).toBe(baseRepo.sha);
    const link = path.join(repo, 'snapshots', baseRepo.sha, 'onnx', 'model.onnx');
    expect(fs.lstatSync(link).isSymbolicLink()).toBe(true);
    expect(fs.readlinkSync(link)).toBe(path.join('..', '..', '..', 'blobs', blobSha));
    expect(sha256(link)).toBe(blobSha);
    expect(fs.existsSync(path.join(blobDir, `${blobSha}.incomplete`))).toBe(false);
    // Only what fingerprinting needs: no README, one GGUF quant.
    expect(fs.readdirSync(path.join(cache, 'models--zoo--alpha-ft-light-GGUF', 'snapshots', hub.repos.get('zoo/alpha-ft-light-GGUF')!.sha)).sort()).toEqual(['alpha-ft-light.Q8_0.gguf', 'config.json']);
    // Failed checksums leave nothing behind; hostile names wrote nothing outside the cache.
    const bad = path.join(cache, 'models--faults--bad-sha', 'blobs');
    const badOnnx = hub.repos.get('faults/bad-sha')!.files.find((f) => f.path.endsWith('.onnx'))!;
    expect(fs.readdirSync(bad).filter((f) => f.endsWith('.incomplete') || f === badOnnx.declaredSha256 || f === crypto.createHash('sha256').update(badOnnx.data).digest('hex'))).toEqual([]);
    expect(fs.existsSync('/tmp/modelprint-pwned')).toBe(false);
    const hostile = path.join(cache, 'models--faults--hostile-path');
    expect(fs.readdirSync(path.join(hostile, 'snapshots', hub.repos.get('faults/hostile-path')!.sha)).sort()).toEqual(['config.json', 'generation_config.json', 'onnx', 'special_tokens_map.json', 'tokenizer.json', 'tokenizer_config.json']);
    expect(fs.readdirSync(path.dirname(cache)).sort()).toEqual(['cache']);
    // A second download of the same models fetches nothing.
    const again = await cli(['hub', 'download', pop.base, 'faults/reset-mid-file', '--json'], env);
    expect(again.code, again.stderr).toBe(0);
    expect((JSON.parse(again.stdout) as { models: Array<{ fetched_bytes: number }> }).models.map((m) => m.fetched_bytes)).toEqual([0, 0]);
    // Model info with ?blobs=true carries the LFS sha256 the downloads were checked against.
    const info = (await (await fetch(`${hub.url}/api/models/${pop.base}?blobs=true`)).json()) as { siblings: Array<{ rfilename: string; lfs?: { sha256: string } }> };
    expect(info.siblings.find((x) => x.rfilename === 'onnx/model.onnx')?.lfs?.sha256).toBe(blobSha);
    // resolve.ts finds the downloads by id (the cache is standard).
    const prev = process.env.HF_HUB_CACHE;
    process.env.HF_HUB_CACHE = cache;
    try {
      expect(resolveModel(pop.base).format).toBe('onnx');
      expect(resolveModel('faults/reset-mid-file').onnxPath).toMatch(/model\.onnx$/);
    } finally {
      process.env.HF_HUB_CACHE = prev;
    }
  }, 120_000);
});

describe('modelprint audit', () => {
  /** Largest number of bytes under the cache (files only, links not followed) outside `keep`, sampled every 20 ms. */
  function watchDisk(cache: string, keep: string[]): { stop: () => number } {
    let peak = 0;
    const sample = () => {
      let n = 0;
      try {
        for (const e of fs.readdirSync(cache)) if (!keep.includes(e)) n += folderBytes(path.join(cache, e));
      } catch {
        /* a folder removed while listing */
      }
      peak = Math.max(peak, n);
    };
    const t = setInterval(sample, 20);
    return {
      stop: () => {
        clearInterval(t);
        sample();
        return peak;
      },
    };
  }

  async function preCached(env: Record<string, string>): Promise<string> {
    // A model already in the cache before the audit: it must survive.
    const r = await cli(['hub', 'download', 'zoo/alpha-ft-light'], env);
    expect(r.code, r.stderr).toBe(0);
    return 'models--zoo--alpha-ft-light';
  }

  it('--keep keeps the downloads, within the budget in total', async () => {
    const env = envFor('audit-keep');
    const out = path.join(work, 'audit-keep', 'out');
    const r = await cli(['audit', pop.base, '--relation', 'quantized', '--max-disk', '5M', '--keep', '--output-dir', out, '--json', ...FAST], env);
    expect(r.code, r.stderr.slice(-2000)).toBe(3);
    const rows = readCsvFile(path.join(out, 'audit.csv')).rows;
    const scored = rows.filter((x) => x.error_code === '').map((x) => x.derived_model_name);
    const over = rows.filter((x) => x.error_code === 'disk_budget').map((x) => x.derived_model_name);
    expect(scored.length).toBeGreaterThan(0);
    expect(over.length).toBeGreaterThan(0);
    expect(scored.length + over.length).toBe(rows.length);
    const cached = fs.readdirSync(env.HF_HUB_CACHE).sort();
    expect(cached).toEqual(['models--zoo--alpha-base', ...scored.map((id) => `models--${id.replace('/', '--')}`)].sort());
    expect(folderBytes(env.HF_HUB_CACHE)).toBeLessThanOrEqual(5 * 1024 * 1024);
  }, 120_000);

  it('scores or codes every derivative within the disk budget, and resumes after SIGTERM and kill -9 to the same CSV', async () => {
    const budget = 8 * 1024 * 1024;
    // Uninterrupted run.
    const envA = envFor('audit-a', { HF_TOKEN: 'hf_test' });
    const keepA = await preCached(envA);
    const outA = path.join(work, 'audit-a', 'out');
    const diskA = watchDisk(envA.HF_HUB_CACHE, [keepA]);
    const a = await cli(['audit', pop.base, '--depth', '3', '--max-disk', BUDGET, '--output-dir', outA, '--json', ...FAST], envA);
    const peakA = diskA.stop();
    expect(a.code, a.stderr.slice(-3000)).toBe(3);
    const sa = JSON.parse(a.stdout) as { models: number; scored: number; failed: number; peak_disk_bytes: number; seconds: Record<string, number>; files: { dashboard: string } };
    expect(sa.models).toBe(pop.derivatives.length);
    expect(peakA).toBeGreaterThan(1024 * 1024);
    expect(peakA).toBeLessThanOrEqual(budget);
    expect(sa.peak_disk_bytes).toBeLessThanOrEqual(budget);

    const rows = readCsvFile(path.join(outA, 'audit.csv')).rows;
    const ids = rows.map((r) => r.derived_model_name);
    expect(new Set(ids).size).toBe(ids.length); // none doubled
    expect([...ids].sort()).toEqual(pop.derivatives.map((d) => d.id).sort()); // none lost
    for (const d of pop.derivatives) {
      const row = rows.find((r) => r.derived_model_name === d.id)!;
      if (d.expect === 'scored') {
        expect(row.error_code, `${d.id}: ${row.error_message}`).toBe('');
        expect(Number(row.avg_overlap_ratio)).toBeGreaterThanOrEqual(0);
      } else {
        expect(row.error_code, d.id).toBe(d.expect);
        expect(row.avg_overlap_ratio).toBe('-1.0');
      }
    }
    // Joined with the Hub metadata; lineage is visible in the scores.
    const row = (id: string) => rows.find((r) => r.derived_model_name === id)!;
    expect(row('zoo/alpha-int8')).toMatchObject({ relation: 'quantized', depth: '1', declared_base_model: pop.base, downloads: String(hub.repos.get('zoo/alpha-int8')!.downloads) });
    expect(Number(row('zoo/alpha-int8').avg_overlap_ratio)).toBeGreaterThan(0.8);
    expect(Number(row('zoo/beta-base').avg_overlap_ratio)).toBeLessThan(0.2);
    // Findings: the other families are flagged as possible mislabels; failures grouped by code.
    const findings = JSON.parse(fs.readFileSync(path.join(outA, 'findings.json'), 'utf8')) as { possible_mislabels: Array<{ model: string }>; failures_by_code: Record<string, string[]> };
    const flagged = new Set(findings.possible_mislabels.map((m) => m.model));
    expect(flagged.has('zoo/gamma-int8')).toBe(true);
    expect(flagged.has('zoo/alpha-ft-light')).toBe(false);
    expect(findings.failures_by_code.gated).toEqual(['faults/gated']);
    expect(fs.existsSync(sa.files.dashboard)).toBe(true);
    expect(JSON.parse(fs.readFileSync(path.join(outA, 'report', 'report.json'), 'utf8')).same.valid).toBe(sa.scored);
    // Everything the audit downloaded is gone; what was cached before is not.
    expect(fs.readdirSync(envA.HF_HUB_CACHE)).toEqual([keepA]);
    expect(fs.readFileSync(path.join(envA.HF_HUB_CACHE, keepA, 'refs', 'main'), 'utf8')).toBe(hub.repos.get('zoo/alpha-ft-light')!.sha);

    // The same audit, stopped by SIGTERM, then killed with SIGKILL mid-run, then resumed: same cache (as run A left it), its own registry and out-dir.
    const envB = { ...envFor('audit-b', { HF_TOKEN: 'hf_test' }), HF_HUB_CACHE: envA.HF_HUB_CACHE };
    const keepB = keepA;
    const outB = path.join(work, 'audit-b', 'out');
    const args = ['audit', pop.base, '--depth', '3', '--max-disk', BUDGET, '--output-dir', outB, '--json', ...FAST];
    const diskB = watchDisk(envB.HF_HUB_CACHE, [keepB]);
    const lineage = path.join(outB, 'lineage.csv');
    const rowsDone = () => (fs.existsSync(lineage) ? fs.readFileSync(lineage, 'utf8').split('\n').length - 2 : 0);
    /** Starts the audit and sends `signal` once lineage.csv has `rows` rows; resolves with the exit code and the rows then. */
    const interrupt = (rows: number, signal: NodeJS.Signals) =>
      new Promise<{ code: number | null; at: number }>((resolve, reject) => {
        const child = spawnCli(args, { env: envB });
        child.stdout.resume();
        child.stderr.resume();
        let at = -1;
        const t = setInterval(() => {
          if (at < 0 && rowsDone() >= rows) {
            at = rowsDone();
            child.kill(signal);
          }
        }, 10);
        child.on('close', (code) => {
          clearInterval(t);
          if (at < 0) reject(new Error('the audit finished before it could be interrupted'));
          else resolve({ code, at });
        });
      });
    // SIGTERM: finishes the row it is writing, exits 143.
    const term = await interrupt(10, 'SIGTERM');
    expect(term.code).toBe(143);
    // SIGKILL: no chance to clean up.
    const kill = await interrupt(term.at + 15, 'SIGKILL');
    expect(kill.code).toBeNull();
    expect(kill.at).toBeLessThan(pop.derivatives.length);
    // It left downloads behind (the base and the chunk in flight): the resume must clean them up.
    expect(fs.readdirSync(envB.HF_HUB_CACHE).length).toBeGreaterThan(2);
    const b = await cli(args, envB);
    const peakB = diskB.stop();
    expect(b.code, b.stderr.slice(-3000)).toBe(3);
    const sb = JSON.parse(b.stdout) as { skipped: number; models: number };
    expect(sb.skipped).toBeGreaterThanOrEqual(kill.at);
    expect(peakB).toBeLessThanOrEqual(budget);
    expect(fs.readFileSync(path.join(outB, 'audit.csv'), 'utf8')).toBe(fs.readFileSync(path.join(outA, 'audit.csv'), 'utf8'));
    expect(fs.readdirSync(envB.HF_HUB_CACHE)).toEqual([keepB]);
  }, 300_000);
});

describe('hub derivatives with a PostgreSQL registry', () => {
  let pgs: PgServer | null = null;
  afterAll(async () => {
    await pgs?.stop();
  });

  it('caches the discovery in the runs table; readers (who may append runs) use and refresh it', async () => {
    pgs = await startPostgres();
    const db = await pgs.createDatabase({ migrate: true });
    const out = path.join(work, 'pg-derivatives.csv');
    const admin = { ...envFor('pg'), MODELPRINT_REGISTRY: pgs.url(ADMIN_USER, ADMIN_PASSWORD, db) };
    const reader = { ...envFor('pg'), MODELPRINT_REGISTRY: pgs.url(READER_USER, READER_PASSWORD, db) };
    const args = ['hub', 'derivatives', pop.base, '--relation', 'adapter,merge', '--depth', '2', '--output', out, '--json'];
    const first = await cli(args, admin);
    expect(first.code, first.stderr).toBe(0);
    expect(JSON.parse(first.stdout)).toMatchObject({ cached: false });
    const n = hub.count('GET /api/models?');
    const second = await cli(args, reader);
    expect(second.code, second.stderr).toBe(0);
    expect(JSON.parse(second.stdout)).toMatchObject({ cached: true, count: (JSON.parse(first.stdout) as { count: number }).count });
    expect(hub.count('GET /api/models?')).toBe(n);
    const fresh = await cli([...args, '--refresh'], reader);
    expect(fresh.code, fresh.stderr).toBe(0);
    expect(JSON.parse(fresh.stdout)).toMatchObject({ cached: false });
    expect(hub.count('GET /api/models?')).toBeGreaterThan(n);
    const cachedAt = (JSON.parse((await cli(args, admin)).stdout) as { cached: boolean; cached_at: string }).cached_at;
    expect(Date.parse(cachedAt)).toBeGreaterThan(Date.parse((JSON.parse(second.stdout) as { cached_at: string }).cached_at));
  }, 120_000);
});
