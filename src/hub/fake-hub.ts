/**
 * A local Hugging Face Hub for tests and benchmarks (127.0.0.1, random port). It speaks the
 * parts of the Hub API that @huggingface/hub and the downloader use:
 *
 * - `GET /api/models?filter=…&limit=…&expand=…` — model search; every `filter` must be one of
 *   the repo's tags; pages of `pageSize` linked by `Link: <…>; rel="next"` as the Hub does;
 * - `GET /api/models/ORG/NAME[/revision/REV]` — model info with `sha`, `gated` and siblings;
 * - `GET /api/models/ORG/NAME/tree/REV?recursive=…` — files with `oid`, `size`, `lfs {oid, size}`;
 * - `GET|HEAD /ORG/NAME/resolve/REV/PATH` — regular files served directly (ETag = git blob id),
 *   LFS files by a 302 to `/cdn/…` (X-Linked-Etag = sha256, X-Linked-Size, X-Repo-Commit);
 *   Range requests answer 206 with Content-Range.
 *
 * Faults per repo: 429 with Retry-After, 500 (a number of times, or always), a connection
 * reset half-way through a file, a wrong sha256 in the listing, gated (401 without a token,
 * 403 with one), private (401), deleted after listing (404), a malformed blob id, a declared
 * size larger than any budget, and hostile paths in the tree.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import { ensureZoo } from '../zoo/index.js';
import { readCsvFile } from '../util/csv.js';

export interface FakeFile {
  path: string;
  data: Buffer;
  lfs: boolean;
  /** Listing overrides (faults). */
  declaredSha256?: string;
  declaredSize?: number;
  declaredOid?: string;
  /** This file gets the repo's transfer faults. */
  faulty?: boolean;
}

export interface RepoFaults {
  /** 429 with Retry-After: retryAfter for the first n requests of each faulty file. */
  rateLimit?: number;
  retryAfter?: number;
  /** 500 for the first n requests of each faulty file; Infinity for always. */
  serverError?: number;
  /** Connection reset half-way through the body for the first n requests. */
  reset?: number;
}

export interface FakeRepo {
  id: string;
  sha: string;
  files: FakeFile[];
  downloads: number;
  likes: number;
  createdAt: string;
  lastModified: string;
  pipelineTag: string;
  library: string;
  tags: string[];
  gated: false | 'auto' | 'manual';
  /** 401 for everything but search (a private repo the token cannot see). */
  private?: boolean;
  /** Listed by search, gone for everything else. */
  deleted?: boolean;
  faults?: RepoFaults;
  /** Extra tree entries that are never served (hostile paths). */
  extraTree?: Array<{ path: string; size: number }>;
}

const gitOid = (data: Buffer) => crypto.createHash('sha1').update(`blob ${data.length}\0`).update(data).digest('hex');
const sha256 = (data: Buffer) => crypto.createHash('sha256').update(data).digest('hex');
const lfsPointer = (data: Buffer) => Buffer.from(`version https://git-lfs.github.com/spec/v1\noid sha256:${sha256(data)}\nsize ${data.length}\n`);

export class FakeHub {
  readonly repos = new Map<string, FakeRepo>();
  /** Requests per `METHOD path` (for tests). */
  readonly log: string[] = [];
  pageSize = 10;
  /** 429 for the first n search requests. */
  searchRateLimit = 0;
  /** Bearer token the server accepts (any token when null). */
  token: string | null = null;
  private counters = new Map<string, number>();
  private server: http.Server | null = null;
  url = '';

  add(repo: FakeRepo): void {
    this.repos.set(repo.id, repo);
  }

  async start(port = 0): Promise<string> {
    this.server = http.createServer((req, res) => {
      this.handle(req, res).catch((e: unknown) => {
        if (!res.headersSent) this.json(res, 500, { error: String(e) });
        else res.destroy();
      });
    });
    await new Promise<void>((resolve, reject) => {
      this.server!.once('error', reject);
      this.server!.listen(port, '127.0.0.1', resolve);
    });
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    return this.url;
  }

  async close(): Promise<void> {
    if (!this.server) return;
    this.server.closeAllConnections();
    await new Promise<void>((r) => this.server!.close(() => r()));
    this.server = null;
  }

  /** How many times a request line was seen (`GET /path` prefix match). */
  count(prefix: string): number {
    return this.log.filter((l) => l.startsWith(prefix)).length;
  }

  private bump(key: string): number {
    const n = (this.counters.get(key) ?? 0) + 1;
    this.counters.set(key, n);
    return n;
  }

  private json(res: http.ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
    const data = Buffer.from(JSON.stringify(body));
    res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': String(data.length), ...headers });
    res.end(data);
  }

  private fail(res: http.ServerResponse, status: number, code: string, message: string): void {
    this.json(res, status, { error: message }, { 'x-error-code': code, 'x-error-message': message });
  }

  private authorized(req: http.IncomingMessage): boolean {
    const h = req.headers.authorization;
    if (!h?.startsWith('Bearer ')) return false;
    return this.token === null || h.slice(7) === this.token;
  }

  /** Access check shared by info, tree and resolve; true when the request may go on. */
  private access(req: http.IncomingMessage, res: http.ServerResponse, repo: FakeRepo | undefined, files: boolean): repo is FakeRepo {
    if (!repo || repo.deleted) {
      this.fail(res, 404, 'RepoNotFound', 'Repository not found');
      return false;
    }
    if (repo.private) {
      this.fail(res, 401, 'RepoNotFound', 'Invalid credentials in Authorization header');
      return false;
    }
    if (files && repo.gated) {
      if (this.authorized(req)) this.fail(res, 403, 'GatedRepo', `Access to model ${repo.id} is restricted and you are not in the authorized list.`);
      else this.fail(res, 401, 'GatedRepo', `Access to model ${repo.id} is restricted. You must have access to it and be authenticated to access it.`);
      return false;
    }
    return true;
  }

  private summary(r: FakeRepo): Record<string, unknown> {
    return {
      _id: r.sha.slice(0, 24),
      id: r.id,
      modelId: r.id,
      author: r.id.split('/')[0],
      sha: r.sha,
      private: !!r.private,
      gated: r.gated,
      disabled: false,
      downloads: r.downloads,
      likes: r.likes,
      createdAt: r.createdAt,
      lastModified: r.lastModified,
      pipeline_tag: r.pipelineTag,
      library_name: r.library,
      tags: r.tags,
      siblings: r.files.map((f) => ({ rfilename: f.path })),
    };
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const u = new URL(req.url ?? '/', this.url);
    const p = decodeURIComponent(u.pathname);
    this.log.push(`${req.method} ${u.pathname}${u.search}${req.headers.range ? ` range=${req.headers.range}` : ''}`);
    if (p === '/api/models') return this.search(u, res);
    let m = /^\/api\/models\/([^/]+\/[^/]+)\/tree\/([^/]+)(?:\/(.*))?$/.exec(p);
    if (m) {
      const repo = this.repos.get(m[1]);
      if (!this.access(req, res, repo, false)) return;
      if (m[2] !== repo.sha && m[2] !== 'main') return this.fail(res, 404, 'RevisionNotFound', `Invalid rev id: ${m[2]}`);
      const prefix = m[3] ? `${m[3]}/` : '';
      const recursive = u.searchParams.get('recursive') === 'true';
      const entries: Record<string, unknown>[] = [];
      const dirs = new Set<string>();
      for (const f of repo.files) {
        if (!f.path.startsWith(prefix)) continue;
        const rest = f.path.slice(prefix.length);
        if (!recursive && rest.includes('/')) {
          dirs.add(prefix + rest.split('/')[0]);
          continue;
        }
        for (let i = rest.indexOf('/'); i >= 0; i = rest.indexOf('/', i + 1)) dirs.add(prefix + rest.slice(0, i));
        const size = f.declaredSize ?? f.data.length;
        entries.push(
          f.lfs
            ? { type: 'file', oid: f.declaredOid ?? gitOid(lfsPointer(f.data)), size, path: f.path, lfs: { oid: f.declaredOid ?? f.declaredSha256 ?? sha256(f.data), size, pointerSize: lfsPointer(f.data).length } }
            : { type: 'file', oid: f.declaredOid ?? gitOid(f.data), size, path: f.path },
        );
      }
      for (const x of repo.extraTree ?? []) entries.push({ type: 'file', oid: gitOid(Buffer.from(x.path)), size: x.size, path: x.path });
      for (const d of dirs) entries.unshift({ type: 'directory', oid: gitOid(Buffer.from(d)), size: 0, path: d });
      return this.json(res, 200, entries);
    }
    m = /^\/api\/models\/([^/]+\/[^/]+)(?:\/revision\/([^/]+))?$/.exec(p);
    if (m) {
      const repo = this.repos.get(m[1]);
      if (!this.access(req, res, repo, false)) return;
      const rev = m[2] ?? 'HEAD';
      if (rev !== repo.sha && rev !== 'main' && rev !== 'HEAD') return this.fail(res, 404, 'RevisionNotFound', `Invalid rev id: ${rev}`);
      const info = this.summary(repo);
      // ?blobs=true: siblings with their blob id, size and LFS sha256, as the Hub gives them.
      if (u.searchParams.get('blobs') === 'true') {
        info.siblings = repo.files.map((f) => ({
          rfilename: f.path,
          blobId: f.lfs ? gitOid(lfsPointer(f.data)) : gitOid(f.data),
          size: f.declaredSize ?? f.data.length,
          ...(f.lfs ? { lfs: { sha256: f.declaredSha256 ?? sha256(f.data), size: f.declaredSize ?? f.data.length, pointerSize: lfsPointer(f.data).length } } : {}),
        }));
      }
      return this.json(res, 200, info);
    }
    m = /^\/([^/]+\/[^/]+)\/resolve\/([^/]+)\/(.+)$/.exec(p);
    if (m) return this.resolve(req, res, m[1], m[2], m[3]);
    m = /^\/cdn\/([^/]+\/[^/]+)\/([0-9a-f]{40})\/(.+)$/.exec(p);
    if (m) {
      const repo = this.repos.get(m[1]);
      const f = repo?.files.find((x) => x.path === m![3]);
      if (!repo || repo.deleted || !f) return this.fail(res, 404, 'EntryNotFound', 'not found');
      return this.serve(req, res, repo, f, { etag: `"${sha256(f.data)}"` });
    }
    this.fail(res, 404, 'NotFound', `no route ${p}`);
  }

  private search(u: URL, res: http.ServerResponse): void {
    if (this.searchRateLimit > 0 && this.bump('search') <= this.searchRateLimit) {
      res.writeHead(429, { 'retry-after': '1', 'content-type': 'text/plain' });
      res.end('Too Many Requests');
      return;
    }
    const filters = u.searchParams.getAll('filter');
    const limit = Math.max(1, Math.min(Number(u.searchParams.get('limit') ?? '1000') || 1000, 1000));
    const cursor = Number(u.searchParams.get('cursor') ?? '0') || 0;
    const hits = [...this.repos.values()].filter((r) => filters.every((f) => r.tags.includes(f)));
    const size = Math.min(limit, this.pageSize);
    const page = hits.slice(cursor, cursor + size);
    const headers: Record<string, string> = {};
    if (cursor + size < hits.length) {
      const next = new URL(u.href);
      next.searchParams.set('cursor', String(cursor + size));
      headers.link = `<${next.href}>; rel="next"`;
    }
    this.json(res, 200, page.map((r) => this.summary(r)), headers);
  }

  private resolve(req: http.IncomingMessage, res: http.ServerResponse, id: string, rev: string, file: string): void {
    const repo = this.repos.get(id);
    if (!this.access(req, res, repo, true)) return;
    if (rev !== repo.sha && rev !== 'main') return this.fail(res, 404, 'RevisionNotFound', `Invalid rev id: ${rev}`);
    const f = repo.files.find((x) => x.path === file);
    if (!f) return this.fail(res, 404, 'EntryNotFound', `${file} does not exist on "${rev}"`);
    const common = { 'x-repo-commit': repo.sha, 'access-control-expose-headers': 'X-Repo-Commit,X-Linked-Size,X-Linked-ETag,ETag,Content-Range' };
    if (f.lfs) {
      const loc = `${this.url}/cdn/${repo.id}/${repo.sha}/${f.path.split('/').map(encodeURIComponent).join('/')}`;
      res.writeHead(302, { ...common, location: loc, etag: `"${gitOid(lfsPointer(f.data))}"`, 'x-linked-etag': `"${sha256(f.data)}"`, 'x-linked-size': String(f.data.length), 'content-length': '0' });
      res.end();
      return;
    }
    this.serve(req, res, repo, f, { ...common, etag: `"${gitOid(f.data)}"` });
  }

  private serve(req: http.IncomingMessage, res: http.ServerResponse, repo: FakeRepo, f: FakeFile, headers: Record<string, string>): void {
    const faults = f.faulty ? (repo.faults ?? {}) : {};
    const key = `${repo.id}/${f.path}`;
    if (req.method === 'GET' && (faults.rateLimit || faults.serverError || faults.reset)) {
      const n = this.bump(key);
      if (faults.rateLimit && n <= faults.rateLimit) {
        res.writeHead(429, { 'retry-after': String(faults.retryAfter ?? 1), 'content-type': 'text/plain' });
        res.end('Too Many Requests');
        return;
      }
      const after429 = n - (faults.rateLimit ?? 0);
      if (faults.serverError && after429 <= faults.serverError) {
        res.writeHead(500, { 'content-type': 'text/plain' });
        res.end('Internal Server Error');
        return;
      }
      const after500 = after429 - (faults.serverError ?? 0);
      if (faults.reset && after500 <= faults.reset) return this.send(req, res, f.data, headers, true);
    }
    this.send(req, res, f.data, headers, false);
  }

  private send(req: http.IncomingMessage, res: http.ServerResponse, data: Buffer, headers: Record<string, string>, reset: boolean): void {
    let start = 0;
    let end = data.length - 1;
    let status = 200;
    const range = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? '');
    if (range) {
      start = Number(range[1]);
      end = range[2] ? Math.min(Number(range[2]), data.length - 1) : data.length - 1;
      if (start >= data.length) {
        res.writeHead(416, { 'content-range': `bytes */${data.length}` });
        res.end();
        return;
      }
      status = 206;
    }
    const body = data.subarray(start, end + 1);
    res.writeHead(status, {
      ...headers,
      'accept-ranges': 'bytes',
      'content-type': 'application/octet-stream',
      'content-length': String(body.length),
      ...(status === 206 ? { 'content-range': `bytes ${start}-${end}/${data.length}` } : {}),
    });
    if (req.method === 'HEAD') return void res.end();
    if (reset) {
      res.write(body.subarray(0, Math.floor(body.length / 2)), () => setTimeout(() => res.socket?.destroy(), 20));
      return;
    }
    res.end(body);
  }
}

// ---------------------------------------------------------------------------------------
// the population: a zoo base and its derivatives in every format, with faults

const REL: Record<string, string> = {
  'finetune-light': 'finetune',
  'finetune-heavy': 'finetune',
  prune: 'finetune',
  'vocab-extension': 'finetune',
  reupload: 'finetune',
  'finetune-chain': 'finetune',
  lora: 'adapter',
  'quantize-int8': 'quantized',
  'quantize-int4': 'quantized',
  merge: 'merge',
};

function filesOf(dir: string): FakeFile[] {
  const out: FakeFile[] = [];
  for (const e of fs.readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (!e.isFile()) continue;
    const abs = path.join(e.parentPath, e.name);
    const rel = path.relative(dir, abs).split(path.sep).join('/');
    if (rel === 'README.md') continue;
    const data = fs.readFileSync(abs);
    const weights = /\.(onnx|onnx_data|safetensors|gguf)$/.test(rel);
    out.push({ path: rel, data, lfs: weights || data.length > 10_000, faulty: weights });
  }
  return out.sort((a, b) => a.path.localeCompare(b.path));
}

function repoSha(id: string, files: FakeFile[]): string {
  const h = crypto.createHash('sha1').update(id);
  for (const f of files) h.update(f.path).update(sha256(f.data));
  return h.digest('hex');
}

function mkRepo(id: string, files: FakeFile[], parent: { id: string; relation: string } | null, i: number, extra: Partial<FakeRepo> = {}): FakeRepo {
  const fmt = files.some((f) => f.path.endsWith('.onnx')) ? ['onnx', 'transformers.js'] : files.some((f) => f.path.endsWith('.gguf')) ? ['gguf'] : ['safetensors', 'transformers'];
  // Downloads: a deterministic heavy-tailed spread (0 … ~50 000).
  const h = crypto.createHash('sha1').update(id).digest();
  const downloads = i === 0 ? 0 : Math.floor(Math.exp((h[0] / 255) * 11)) - 1;
  const day = new Date(Date.UTC(2025, 0, 1) + (h[1] % 200) * 86_400_000);
  return {
    id,
    sha: repoSha(id, files),
    files,
    downloads,
    likes: h[2] % 40,
    createdAt: day.toISOString(),
    lastModified: new Date(day.getTime() + (h[3] % 30) * 86_400_000).toISOString(),
    pipelineTag: 'text-generation',
    library: fmt.includes('onnx') ? 'transformers.js' : fmt.includes('gguf') ? 'gguf' : 'transformers',
    tags: [...fmt, 'text-generation', ...(parent ? [`base_model:${parent.id}`, `base_model:${parent.relation}:${parent.id}`] : [])],
    gated: false,
    ...extra,
  };
}

export interface Population {
  base: string;
  /** Every derivative with its declared parent and relation, and what an audit should end with. */
  derivatives: Array<{ id: string; parent: string; relation: string; depth: number; expect: 'scored' | string }>;
  zooDir: string;
}

/**
 * A base (`zoo/alpha-base`, ONNX) and 65 derivatives: the zoo's alpha derivatives (chains
 * nested to depth 3), the beta / gamma / delta families all declared as alpha derivatives
 * (mislabels), a GGUF quant at depth 2, transformers safetensors checkpoints and a LoRA
 * adapter from the hf fixtures (when `hfFixtures` is given), and one repo per fault (unless
 * `faults: false`).
 */
export async function buildPopulation(hub: FakeHub, workDir: string, opts: { hfFixtures?: string; seed?: number; faults?: boolean } = {}): Promise<Population> {
  const zooDir = path.join(workDir, 'zoo');
  await ensureZoo(zooDir, { size: 'tiny', seed: opts.seed ?? 42 });
  const rows = readCsvFile(path.join(zooDir, 'models.csv')).rows;
  const base = 'zoo/alpha-base';
  const derivatives: Population['derivatives'] = [];
  const depthOf = new Map<string, number>([[base, 0]]);
  let i = 0;
  hub.add(mkRepo(base, filesOf(path.join(zooDir, 'alpha-base')), null, i++));
  const add = (id: string, files: FakeFile[], parent: string, relation: string, expect: string, extra: Partial<FakeRepo> = {}) => {
    const depth = (depthOf.get(parent) ?? 0) + 1;
    depthOf.set(id, depth);
    hub.add(mkRepo(id, files, { id: parent, relation }, i++, extra));
    derivatives.push({ id, parent, relation, depth, expect });
  };
  for (const r of rows) {
    if (r.model_id === 'alpha-base') continue;
    const chainParent = /^(\w+)-chain-(\d)$/.exec(r.model_id);
    const parent = chainParent && chainParent[2] !== '1' ? `zoo/${chainParent[1]}-chain-${Number(chainParent[2]) - 1}` : base;
    add(`zoo/${r.model_id}`, filesOf(path.join(zooDir, r.path)), parent, REL[r.relation] ?? 'finetune', 'scored');
  }
  // A GGUF-only quant of a fine-tune (depth 2) whose files are truncated after the magic:
  // downloaded (one quant by preference), then refused by the GGUF parser with a code.
  const cfg = fs.readFileSync(path.join(zooDir, 'alpha-ft-light', 'config.json'));
  add(
    'zoo/alpha-ft-light-GGUF',
    [
      { path: 'config.json', data: cfg, lfs: false },
      { path: 'alpha-ft-light.Q4_K_M.gguf', data: Buffer.concat([Buffer.from('GGUF'), Buffer.alloc(2000, 1)]), lfs: true },
      { path: 'alpha-ft-light.Q8_0.gguf', data: Buffer.concat([Buffer.from('GGUF'), Buffer.alloc(3000, 2)]), lfs: true },
    ],
    'zoo/alpha-ft-light',
    'quantized',
    'bad_gguf',
  );
  if (opts.hfFixtures) {
    const hf = opts.hfFixtures;
    add('hf-fixtures/llama', filesOf(path.join(hf, 'llama')), base, 'finetune', 'scored');
    add('hf-fixtures/qwen2-sharded', filesOf(path.join(hf, 'qwen2-sharded')), base, 'finetune', 'scored');
    // A PEFT adapter whose base checkpoint is nowhere: missing_base_model, deterministically.
    const lora = filesOf(path.join(hf, 'llama-lora')).map((f) =>
      f.path === 'adapter_config.json' ? { ...f, data: Buffer.from(f.data.toString('utf8').replace('"../llama"', '"hf-fixtures/llama-unpublished"')) } : f,
    );
    add('hf-fixtures/llama-lora', lora, base, 'adapter', 'missing_base_model');
  }
  if (opts.faults === false) return { base, derivatives, zooDir };
  const src = filesOf(path.join(zooDir, 'alpha-ft-light'));
  const fault = (name: string, expect: string, extra: Partial<FakeRepo>, files: FakeFile[] = src) => add(`faults/${name}`, files, base, 'finetune', expect, extra);
  fault('rate-limited', 'scored', { faults: { rateLimit: 2, retryAfter: 1 } });
  fault('flaky-500', 'scored', { faults: { serverError: 2 } });
  fault('always-500', 'download_failed', { faults: { serverError: Infinity } });
  fault('reset-mid-file', 'scored', { faults: { reset: 2 } });
  fault('bad-sha', 'checksum_mismatch', {}, src.map((f) => (f.path.endsWith('.onnx') ? { ...f, declaredSha256: sha256(Buffer.from('not the file')) } : f)));
  fault('gated', 'gated', { gated: 'manual' });
  fault('private', 'unauthorized', { private: true });
  fault('deleted', 'not_found', { deleted: true });
  fault('hostile-etag', 'unsafe_path', {}, src.map((f) => (f.path.endsWith('.onnx') ? { ...f, declaredOid: '../../../../../tmp/modelprint-pwned' } : f)));
  fault('huge', 'disk_budget', {}, src.map((f) => (f.path.endsWith('.onnx') ? { ...f, declaredSize: 50 * 1024 ** 3 } : f)));
  fault('hostile-path', 'scored', {
    extraTree: [
      { path: '../../../escape.json', size: 10 },
      { path: 'onnx/../../../../model.onnx', size: 10 },
      { path: '/etc/passwd', size: 10 },
    ],
  });
  return { base, derivatives, zooDir };
}
