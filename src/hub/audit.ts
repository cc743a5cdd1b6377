/**
 * `modelprint audit <base>`: discover the base's derivatives on the Hub, download each into the
 * Hugging Face cache, fingerprint it against the base with the lineage protocol (METHODS §1.5,
 * `runBaseVsDerived`, rows per §1.7), and delete what the audit downloaded — within a disk budget.
 *
 * Derivatives go in chunks: as many (in discovery order) as fit in the budget next to the base,
 * downloaded concurrently, fingerprinted, then deleted; the next chunk downloads (in the room the
 * current one leaves) while the current one is fingerprinted. What the audit downloads is written to a
 * ledger (`<out>/audit-downloads.json`) *before* the download starts, so a run killed at any
 * point (Ctrl-C, SIGTERM, SIGKILL) resumes: finished models are skipped (their rows are in
 * lineage.csv), partial files resume, and leftovers of finished models are deleted. Only files
 * the ledger names are ever deleted: a repo folder the audit created, else the blobs and links
 * it added — never what was in the cache before.
 *
 * The base's prompts and sketch are computed once and reused by every chunk through the registry
 * (a private one in --output-dir, audit-registry.db, when the run may not use the main one).
 *
 * Outputs in --output-dir: derivatives.csv (discovery), lineage.csv (append-only, resumable),
 * audit.csv (the §1.7 rows joined with the Hub metadata, in discovery order — the same bytes
 * after any interruption), findings.json / findings.md, and the downloads analysis (METHODS §5)
 * with its dashboard in report/.
 */
import fs from 'node:fs';
import path from 'node:path';
import { ModelprintError, messageOf } from '../errors.js';
import { ModelError } from '../inference/errors.js';
import { runBaseVsDerived } from '../methods/lineage.js';
import type { ModelEntry } from '../methods/models-input.js';
import { LINEAGE_COLUMNS, ResultCsv } from '../methods/results.js';
import type { RunContext } from '../methods/runner.js';
import { Progress, type ProgressSink } from '../ui/progress.js';
import { writeFileAtomic } from '../util/atomic.js';
import { readCsvFile, writeCsvFile } from '../util/csv.js';
import { analyzeDownloads, type DownloadsReport } from '../analysis/downloads.js';
import { DEFAULT_SCORE_BINS, parseEdges } from '../analysis/bins.js';
import { loadScores } from '../analysis/input.js';
import { downloadsDashboard, writeDashboard } from '../report/index.js';
import type { HubOptions } from './client.js';
import { DERIVATIVE_COLUMNS, derivativesWithCache, readDerivativesCsv, writeDerivativesCsv, type DerivativeRow, type DiscoverOptions } from './discover.js';
import { Limiter, downloadRepo, newPaths, planRepo, type RepoPlan } from './download.js';
import type { Registry } from '../registry/types.js';
import { openRegistry } from '../registry/index.js';

export interface AuditOptions {
  base: string;
  hub: HubOptions;
  cacheDir: string;
  outDir: string;
  /** Bytes the audit may have on disk at once (its own downloads). */
  maxDisk: number;
  keep: boolean;
  discover: DiscoverOptions;
  ttlSeconds: number;
  refresh: boolean;
  registry: Registry | null;
  /** Concurrent file downloads. */
  concurrency: number;
  /** Most derivatives per chunk. */
  chunk: number;
  /** A declared derivative scoring below this is a possible mislabel. */
  mislabelBelow: number;
}

export interface AuditFindings {
  base: string;
  models: number;
  scored: number;
  failed: number;
  possible_mislabels: Array<{ model: string; declared_base: string; relation: string; score: number; downloads: number | null }>;
  failures_by_code: Record<string, string[]>;
}

export interface AuditSummary {
  base: string;
  out_dir: string;
  models: number;
  scored: number;
  failed: number;
  skipped: number;
  discovery_cached: boolean;
  /** download: summed wall time of the chunks' downloads (overlaps fingerprinting); waiting_for_download: time fingerprinting waited for them. */
  seconds: { discovery: number; download: number; waiting_for_download: number; fingerprint: number; total: number };
  bytes_downloaded: number;
  peak_disk_bytes: number;
  files: { derivatives: string; lineage: string; audit: string; findings: string; dashboard: string | null };
  findings: AuditFindings;
}

interface LedgerEntry {
  repoDir: string;
  repoExisted: boolean;
  blobs: string[];
  links: string[];
  bytes: number;
}

/** What the audit has put in the cache and not yet deleted; written before each download. */
class Ledger {
  entries: Record<string, LedgerEntry> = {};
  constructor(readonly file: string) {
    if (fs.existsSync(file)) {
      try {
        this.entries = (JSON.parse(fs.readFileSync(file, 'utf8')) as { entries: Record<string, LedgerEntry> }).entries ?? {};
      } catch {
        this.entries = {};
      }
    }
  }
  save(): void {
    writeFileAtomic(this.file, `${JSON.stringify({ version: 1, entries: this.entries }, null, 1)}\n`);
  }
  add(id: string, e: LedgerEntry): void {
    const prev = this.entries[id];
    // A resumed download keeps the first record of what existed before the audit touched the repo.
    this.entries[id] = prev
      ? { ...prev, blobs: [...new Set([...prev.blobs, ...e.blobs])], links: [...new Set([...prev.links, ...e.links])], bytes: Math.max(prev.bytes, e.bytes) }
      : e;
    this.save();
  }
  /** Deletes what the entry names (the repo folder when the audit created it). */
  remove(id: string): void {
    const e = this.entries[id];
    if (!e) return;
    if (!e.repoExisted) fs.rmSync(e.repoDir, { recursive: true, force: true });
    else {
      for (const l of e.links) if (isLink(l)) fs.rmSync(l, { force: true });
      for (const b of e.blobs) {
        fs.rmSync(b, { force: true });
        fs.rmSync(`${b}.incomplete`, { force: true });
      }
      for (const l of e.links) pruneEmptyDirs(path.dirname(l), e.repoDir);
    }
    delete this.entries[id];
    this.save();
  }
  get bytes(): number {
    return Object.values(this.entries).reduce((s, e) => s + e.bytes, 0);
  }
}

function isLink(p: string): boolean {
  try {
    return fs.lstatSync(p).isSymbolicLink();
  } catch {
    return false;
  }
}

function pruneEmptyDirs(dir: string, stop: string): void {
  for (let d = dir; d.startsWith(stop + path.sep) && path.basename(path.dirname(d)) !== ''; d = path.dirname(d)) {
    try {
      if (fs.readdirSync(d).length > 0) return;
      fs.rmdirSync(d);
    } catch {
      return;
    }
    if (path.basename(path.dirname(d)) === 'snapshots') return;
  }
}

/** `20G`, `500M`, `1.5GB`, `800k` or bytes → bytes (powers of 1024). */
export function parseSize(v: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*([kmgt]?)(i?b)?$/i.exec(v.trim());
  if (!m) throw new ModelprintError('E_USAGE', `not a size: ${v}`, { subject: '--max-disk', hint: 'e.g. 20G, 500M, 1.5T' });
  const pow = ['', 'k', 'm', 'g', 't'].indexOf(m[2].toLowerCase());
  return Math.floor(Number(m[1]) * 1024 ** pow);
}

/** The base-vs-derived progress of one chunk, without its start/done events (the audit emits those for the whole run). */
function chunkProgress(p: Progress): Progress {
  const sink: ProgressSink = {
    emit: (e) => {
      if (e.event === 'start' || e.event === 'done') return;
      const { time: _time, ...rest } = e;
      p.emit(rest);
    },
    close: () => undefined,
  };
  return new Progress([sink]);
}

export async function runAudit(ctx: RunContext, o: AuditOptions, log: (m: string) => void): Promise<AuditSummary> {
  const t0 = Date.now();
  const secs = { discovery: 0, download: 0, waiting_for_download: 0, fingerprint: 0, total: 0 };
  fs.mkdirSync(o.outDir, { recursive: true });
  const files = {
    derivatives: path.join(o.outDir, 'derivatives.csv'),
    lineage: path.join(o.outDir, 'lineage.csv'),
    audit: path.join(o.outDir, 'audit.csv'),
    findings: path.join(o.outDir, 'findings.json'),
    dashboard: null as string | null,
  };

  // 1. Discovery (cached in the registry; a resumed audit reuses its own derivatives.csv).
  let t = Date.now();
  let rows: DerivativeRow[];
  let cached = false;
  const sidecar = path.join(o.outDir, 'audit.params.json');
  const params = { base: o.base, endpoint: o.hub.endpoint, relations: o.discover.relations, depth: o.discover.depth, limit: Number.isFinite(o.discover.limit) ? o.discover.limit : null };
  const prev = fs.existsSync(sidecar) && fs.existsSync(files.derivatives) ? (JSON.parse(fs.readFileSync(sidecar, 'utf8')) as typeof params) : null;
  if (prev && JSON.stringify(prev) === JSON.stringify(params) && !o.refresh) {
    rows = readDerivativesCsv(files.derivatives);
    cached = true;
    log(`resuming the audit in ${o.outDir}: ${rows.length} derivatives from derivatives.csv`);
  } else {
    if (prev && JSON.stringify(prev) !== JSON.stringify(params)) throw new ModelprintError('E_CONFIG', `${o.outDir} holds an audit with other parameters (${JSON.stringify(prev)})`, { subject: o.outDir, hint: 'use another --output-dir, or move the old one away' });
    const r = await derivativesWithCache(o.base, o.hub, o.discover, { registry: o.registry, ttlSeconds: o.ttlSeconds, refresh: o.refresh, warn: ctx.warn });
    rows = r.rows;
    cached = r.cached;
    writeDerivativesCsv(files.derivatives, rows);
    writeFileAtomic(sidecar, `${JSON.stringify(params, null, 2)}\n`);
    log(`discovered ${rows.length} derivatives of ${o.base}${r.cached ? ` (cached ${r.cachedAt})` : ''}`);
  }
  secs.discovery = (Date.now() - t) / 1000;

  const ledger = new Ledger(path.join(o.outDir, 'audit-downloads.json'));
  const limiter = new Limiter(o.concurrency);
  let fetched = 0;
  let peak = 0;
  const notePeak = () => (peak = Math.max(peak, ledger.bytes));

  // 2. The base: downloaded once (if not cached), kept until the end.
  t = Date.now();
  let basePlan: RepoPlan;
  try {
    basePlan = await planRepo(o.base, o.hub);
  } catch (e) {
    throw new ModelprintError('E_NOT_FOUND', `base model ${messageOf(e)}`, { subject: o.base, hint: 'check the id, --endpoint and HF_TOKEN', cause: e });
  }
  const baseNew = newPaths(basePlan, o.cacheDir);
  if (baseNew.blobs.length > 0 || baseNew.links.length > 0) {
    const bytes = basePlan.files.filter((f) => baseNew.blobs.includes(path.join(baseNew.repoDir, 'blobs', f.etag))).reduce((s, f) => s + f.size, 0);
    if (bytes > o.maxDisk) throw new ModelprintError('E_IO', `the base needs ${bytes} bytes, more than --max-disk ${o.maxDisk}`, { subject: o.base, hint: 'raise --max-disk' });
    ledger.add(o.base, { repoDir: baseNew.repoDir, repoExisted: baseNew.repoExisted, blobs: baseNew.blobs, links: baseNew.links, bytes });
    notePeak();
    try {
      fetched += (await downloadRepo(basePlan, o.hub, o.cacheDir, limiter, { signal: ctx.stop.controller.signal })).fetchedBytes;
    } catch (e) {
      ctx.stop.check(ctx.resumeHint);
      throw new ModelprintError('E_IO', `cannot download the base: ${messageOf(e)}`, { subject: o.base, hint: 'retry: the download resumes', cause: e });
    }
  }
  const baseEntry: ModelEntry = { id: o.base, path: path.join(baseNew.repoDir, 'snapshots', basePlan.revision), meta: {} };
  secs.download += (Date.now() - t) / 1000;

  // 3. Derivatives in chunks that fit the budget.
  const meta = (r: DerivativeRow): Record<string, string> => {
    const m: Record<string, string> = {};
    for (const c of DERIVATIVE_COLUMNS) if (c !== 'model_id') m[c === 'base_model' ? 'declared_base_model' : c] = String(r[c] ?? '');
    return m;
  };
  const done = new ResultCsv(files.lineage, LINEAGE_COLUMNS, 'derived_model_name').done;
  // Leftovers of finished models (a run killed before its cleanup) go first.
  if (!o.keep) for (const id of Object.keys(ledger.entries)) if (id !== o.base && done.has(id)) ledger.remove(id);
  const todo = rows.filter((r) => !done.has(r.model_id));
  const skipped = rows.length - todo.length;
  ctx.progress.emit({ event: 'start', run: `audit of ${o.base}`, models: rows.length, total_prompts: ctx.params.numPrompts * rows.length });
  for (const r of rows) {
    const d = done.get(r.model_id);
    if (!d) continue;
    if (d.error_code) ctx.progress.emit({ event: 'model_failed', model: r.model_id, code: d.error_code, message: d.error_message });
    else ctx.progress.emit({ event: 'model_done', model: r.model_id, score: Number(d.avg_overlap_ratio), reused: true, seconds: 0 });
  }
  // Every chunk scores against the base's prompts and sketch: they come from the registry after the
  // first chunk. When the run may not use the registry that way (--no-reuse, --registry-write
  // read-only / off), a private one in --output-dir keeps them (and survives a resume).
  const own = !ctx.registry || !ctx.reuse || (ctx.registryWrite ?? 'write') !== 'write' ? await openRegistry(path.join(o.outDir, 'audit-registry.db')) : null;
  const sub: RunContext = own ? { ...ctx, registry: own, reuse: true, registryWrite: 'write', progress: chunkProgress(ctx.progress) } : { ...ctx, progress: chunkProgress(ctx.progress) };
  try {

    const plans = new Map<string, Promise<RepoPlan>>();
    const plan = (id: string) => {
      let p = plans.get(id);
      if (!p) {
        p = planRepo(id, o.hub);
        p.catch(() => undefined);
        plans.set(id, p);
      }
      return p;
    };
    type Item = { row: DerivativeRow; entry: ModelEntry; plan: RepoPlan | null; need: number };
    type Chunk = { items: Item[]; bytes: number; downloaded: Promise<void> };
    // Models fingerprinted (in this run or before): with --keep their downloads stay and count as fixed.
    const processed = new Set(done.keys());
    const fixedBytes = () => Object.entries(ledger.entries).filter(([id]) => id === o.base || processed.has(id)).reduce((s, [, e]) => s + e.bytes, 0);
    let i = 0;
    /** The next models in discovery order whose downloads fit in `available` bytes (at most --chunk; failures take no room). */
    const formChunk = async (available: number): Promise<Item[]> => {
      for (const r of todo.slice(i, i + o.chunk)) void plan(r.model_id); // plan ahead, concurrently
      const items: Item[] = [];
      let bytes = 0;
      while (i < todo.length && items.length < o.chunk) {
        const row = todo[i];
        const entry: ModelEntry = { id: row.model_id, path: null, meta: meta(row) };
        let p: RepoPlan;
        try {
          p = await plan(row.model_id);
        } catch (e) {
          entry.error = e instanceof ModelError ? e : new ModelError('download_failed', row.model_id, messageOf(e));
          items.push({ row, entry, plan: null, need: 0 });
          i++;
          continue;
        }
        const np = newPaths(p, o.cacheDir);
        // What the audit has (or will have) of this repo on disk: its first record when resuming, else the files not cached yet.
        const need = ledger.entries[row.model_id]?.bytes ?? p.files.filter((f) => np.blobs.includes(path.join(np.repoDir, 'blobs', f.etag))).reduce((s, f) => s + f.size, 0);
        const alone = o.maxDisk - fixedBytes();
        if (need > alone) {
          entry.error = new ModelError('disk_budget', row.model_id, `needs ${need} bytes, more than the ${alone} bytes --max-disk ${o.maxDisk} leaves next to the base`, 'raise --max-disk');
          items.push({ row, entry, plan: null, need: 0 });
          i++;
          continue;
        }
        if (bytes + need > available) break;
        items.push({ row, entry, plan: p, need });
        bytes += need;
        i++;
      }
      return items;
    };
    /** Records the chunk in the ledger, then downloads it (concurrently, through the shared limiter). */
    const startChunk = (items: Item[]): Chunk => {
      const t1 = Date.now();
      for (const c of items) {
        if (!c.plan) continue;
        const np = newPaths(c.plan, o.cacheDir);
        ledger.add(c.row.model_id, { repoDir: np.repoDir, repoExisted: np.repoExisted, blobs: np.blobs, links: np.links, bytes: c.need });
      }
      notePeak();
      const downloaded = Promise.all(
        items.map(async (c) => {
          if (!c.plan) return;
          ctx.progress.emit({ event: 'phase', model: c.row.model_id, phase: 'download', done: 0, total: c.plan.files.length });
          try {
            const r = await downloadRepo(c.plan, o.hub, o.cacheDir, limiter, { signal: ctx.stop.controller.signal });
            fetched += r.fetchedBytes;
            c.entry.path = r.snapshotDir;
          } catch (e) {
            c.entry.error = e instanceof ModelError ? e : new ModelError('download_failed', c.row.model_id, messageOf(e));
          }
        }),
      ).then(() => {
        secs.download += (Date.now() - t1) / 1000;
      });
      return { items, bytes: items.reduce((s, c) => s + c.need, 0), downloaded };
    };

    let cur: Chunk | null = null;
    if (todo.length > 0) {
      const first = await formChunk(o.maxDisk - fixedBytes());
      // Leftovers of an interrupted run that the first chunk does not hold are deleted before downloading more.
      if (!o.keep) for (const id of Object.keys(ledger.entries)) if (id !== o.base && !first.some((c) => c.row.model_id === id)) ledger.remove(id);
      cur = startChunk(first);
    }
    while (cur && cur.items.length > 0) {
      t = Date.now();
      await cur.downloaded;
      secs.waiting_for_download += (Date.now() - t) / 1000;
      ctx.stop.check(ctx.resumeHint);
      // The next chunk downloads while this one is fingerprinted, in the room this one leaves.
      let next: Chunk | null = i < todo.length ? startChunk(await formChunk(o.maxDisk - fixedBytes() - cur.bytes)) : null;
      t = Date.now();
      await runBaseVsDerived(sub, baseEntry, cur.items.map((c) => c.entry), files.lineage, {});
      secs.fingerprint += (Date.now() - t) / 1000;
      for (const c of cur.items) {
        processed.add(c.row.model_id);
        if (!o.keep) ledger.remove(c.row.model_id);
      }
      if ((!next || next.items.length === 0) && i < todo.length) next = startChunk(await formChunk(o.maxDisk - fixedBytes()));
      cur = next;
    }
  } finally {
    await own?.close();
  }
  if (!o.keep) ledger.remove(o.base);

  // 4. Outputs: audit.csv in discovery order, findings, downloads analysis + dashboard.
  const result = readCsvFile(files.lineage).rows;
  const byId = new Map(result.map((r) => [r.derived_model_name, r]));
  const header = [...LINEAGE_COLUMNS, 'declared_base_model', ...DERIVATIVE_COLUMNS.filter((c) => c !== 'model_id' && c !== 'base_model')];
  const missing = rows.filter((r) => !byId.has(r.model_id));
  if (missing.length > 0) throw new ModelprintError('E_INTERNAL', `no result row for ${missing.map((r) => r.model_id).join(', ')}`, { hint: 'run the audit again to resume' });
  writeCsvFile(
    files.audit,
    header,
    rows.map((r) => {
      const x = byId.get(r.model_id)!;
      return header.map((h) => x[h] ?? '');
    }),
  );
  const findings = findingsOf(o.base, rows, byId, o.mislabelBelow);
  writeFileAtomic(files.findings, `${JSON.stringify(findings, null, 2)}\n`);
  writeFileAtomic(path.join(o.outDir, 'findings.md'), findingsMarkdown(findings, o.mislabelBelow));
  let report: DownloadsReport | null = null;
  const scores = loadScores(files.audit, { downloadsColumn: 'downloads' }).rows;
  if (scores.some((s) => s.valid)) {
    report = analyzeDownloads({ same: { file: files.audit, rows: scores } }, { edges: [0, 10, 100, 1000], low: 10, high: 100, scoreEdges: parseEdges(DEFAULT_SCORE_BINS, 'score-bins') });
    const w = writeDashboard(path.join(o.outDir, 'report'), downloadsDashboard(report), report);
    files.dashboard = w.html;
  }
  secs.total = (Date.now() - t0) / 1000;
  ctx.progress.emit({ event: 'done', ok: findings.scored, failed: findings.failed, skipped, seconds: secs.total });
  return {
    base: o.base,
    out_dir: o.outDir,
    models: rows.length,
    scored: findings.scored,
    failed: findings.failed,
    skipped,
    discovery_cached: cached,
    seconds: secs,
    bytes_downloaded: fetched,
    peak_disk_bytes: peak,
    files,
    findings,
  };
}

function findingsOf(base: string, rows: DerivativeRow[], byId: Map<string, Record<string, string>>, below: number): AuditFindings {
  const f: AuditFindings = { base, models: rows.length, scored: 0, failed: 0, possible_mislabels: [], failures_by_code: {} };
  for (const r of rows) {
    const x = byId.get(r.model_id)!;
    const score = Number(x.avg_overlap_ratio);
    if (x.error_code || !(score >= 0)) {
      f.failed++;
      const code = x.error_code || 'inference_failed';
      (f.failures_by_code[code] ??= []).push(r.model_id);
      continue;
    }
    f.scored++;
    if (score < below) f.possible_mislabels.push({ model: r.model_id, declared_base: r.base_model, relation: r.relation, score, downloads: r.downloads });
  }
  f.possible_mislabels.sort((a, b) => a.score - b.score || a.model.localeCompare(b.model));
  return f;
}

function findingsMarkdown(f: AuditFindings, below: number): string {
  const lines = [`# Audit of ${f.base}`, '', `${f.models} declared derivatives: ${f.scored} scored, ${f.failed} failed.`, ''];
  lines.push(`## Possible mislabels (score < ${below}): ${f.possible_mislabels.length}`, '');
  for (const m of f.possible_mislabels) lines.push(`- ${m.model} — ${m.relation} of ${m.declared_base}, score ${m.score}, downloads ${m.downloads ?? '?'}`);
  lines.push('', '## Failures by code', '');
  for (const [code, ids] of Object.entries(f.failures_by_code).sort((a, b) => b[1].length - a[1].length || a[0].localeCompare(b[0]))) {
    lines.push(`- ${code} (${ids.length}): ${ids.join(', ')}`);
  }
  return `${lines.join('\n')}\n`;
}
