import fs from 'node:fs';
import path from 'node:path';
import { ModelprintError, messageOf } from '../errors.js';
import { writeFileAtomic } from '../util/atomic.js';
import { analyzeFamilies, familyTextReport, type FamilyReport } from '../analysis/families.js';
import type { ModelInfo, SimilarityMatrix } from '../analysis/input.js';
import { familiesDashboard } from './dashboards.js';
import { type DashboardSpec, renderDashboard } from './html.js';
import { heatmapSvg } from './svg.js';
import type { LineageReport } from '../analysis/lineage.js';
import { stringifyCsv } from '../util/csv.js';

export { renderDashboard } from './html.js';
export type { DashboardSpec, Section, Item, HeatmapData } from './html.js';
export { summaryDashboard, downloadsDashboard, rocDashboard, familiesDashboard, lineageDashboard } from './dashboards.js';

export interface WrittenReport {
  dir: string;
  /** dashboard.html */
  html: string;
  /** report.json */
  json: string;
  /** One static SVG per chart (and heatmap.svg). */
  svgs: string[];
  /** Every file written, absolute paths. */
  files: string[];
}

/**
 * Writes `dashboard.html` (self-contained), one static SVG per chart (`<chart id>.svg`,
 * heatmaps included), `report.json` and any extra files into `outDir`.
 */
export function writeDashboard(outDir: string, spec: DashboardSpec, report: unknown, extra: Record<string, string> = {}): WrittenReport {
  const dir = path.resolve(outDir);
  try {
    fs.mkdirSync(dir, { recursive: true });
  } catch (err) {
    throw new ModelprintError('E_IO', `cannot create the output folder ${dir}: ${messageOf(err)}`, {
      subject: dir,
      hint: 'choose a writable --output-dir',
      cause: err,
    });
  }
  const files: string[] = [];
  const svgs: string[] = [];
  const write = (name: string, data: string) => {
    const file = path.join(dir, name);
    writeFileAtomic(file, data);
    files.push(file);
    return file;
  };
  for (const section of spec.sections) {
    for (const item of section.items) {
      if (item.kind === 'chart') svgs.push(write(`${item.id}.svg`, `${item.svg}\n`));
      if (item.kind === 'heatmap') {
        const { info, models, values } = item.data;
        // For papers: models grouped by family (stable; models without info last).
        let order = models.map((_, i) => i);
        const mode = item.data.defaultOrder ?? (info ? 'family' : item.data.order ? 'clustered' : 'input');
        if (mode === 'clustered' && item.data.order && item.data.order.length === models.length) {
          order = [...item.data.order];
        } else if (mode === 'family' && info) {
          const fam = (i: number) => info[i]?.family ?? '\uffff';
          order.sort((a, b) => (fam(a) < fam(b) ? -1 : fam(a) > fam(b) ? 1 : a - b));
        }
        svgs.push(
          write(
            `${item.id}.svg`,
            `${heatmapSvg({
              title: item.data.title,
              models: order.map((i) => models[i]),
              values: order.map((i) => order.map((j) => values[i][j])),
              families: info ? order.map((i) => info[i]?.family ?? null) : undefined,
              labels: info ? order.map((i) => info[i]?.display_name ?? models[i]) : undefined,
            })}\n`,
          ),
        );
      }
    }
  }
  const json = write('report.json', `${reportJson(report)}\n`);
  for (const [name, text] of Object.entries(extra)) write(name, text);
  const html = write('dashboard.html', renderDashboard(spec));
  return { dir, html, json, svgs, files };
}

/** Model info for writeMatrixDashboard: a list, or a map keyed by model id. */
export type MatrixInfo =
  | readonly { model_id: string; family?: string | null; model_type?: string | null; display_name?: string | null }[]
  | Record<string, { family?: string | null; model_type?: string | null; display_name?: string | null }>
  | Map<string, { family?: string | null; model_type?: string | null; display_name?: string | null }>;

function normalizeInfo(info: MatrixInfo | undefined): ModelInfo[] | undefined {
  if (!info) return undefined;
  const entries: [string, { family?: string | null; model_type?: string | null; display_name?: string | null }][] = Array.isArray(info)
    ? (info as readonly ModelInfo[]).map((x) => [x.model_id, x])
    : info instanceof Map
      ? [...info.entries()]
      : Object.entries(info);
  // A model with no family has no info (it is left out of the family analysis).
  return entries
    .filter(([, x]) => x && typeof x.family === 'string' && x.family.trim() !== '')
    .map(([model_id, x]) => ({
      model_id,
      family: String(x.family),
      model_type: x.model_type || 'Unknown',
      display_name: x.display_name || model_id,
    }));
}

/** A square matrix as rows: accepts rows (number[][]) or a flat row-major n × n array. */
export function matrixRows(matrix: ArrayLike<number> | readonly ArrayLike<number>[], n: number): number[][] {
  const first = (matrix as ArrayLike<unknown>)[0];
  if (n > 0 && typeof first === 'object' && first !== null) {
    const rows = matrix as readonly ArrayLike<number>[];
    if (rows.length !== n || rows.some((r) => r.length !== n)) {
      throw new ModelprintError('E_INPUT', `the matrix is not ${n} × ${n}`, { hint: 'pass one row and one column per model id' });
    }
    return rows.map((r) => Array.from(r, (v) => (v === null || v === undefined ? NaN : Number(v))));
  }
  const flat = matrix as ArrayLike<number>;
  if (flat.length !== n * n) {
    throw new ModelprintError('E_INPUT', `the flat matrix has ${flat.length} values, expected ${n} × ${n} = ${n * n}`, {
      hint: 'pass rows, or a flat row-major array of n × n values',
    });
  }
  const out: number[][] = [];
  for (let i = 0; i < n; i++) out.push(Array.from({ length: n }, (_, j) => Number(flat[i * n + j])));
  return out;
}

export interface MatrixDashboardOptions {
  models: string[];
  /** Rows (`matrix[i][j]`), or a flat row-major Float32Array / number[] of n × n values. */
  matrix: ArrayLike<number> | readonly ArrayLike<number>[];
  info?: MatrixInfo;
  title?: string;
  /** What the values are, for axis labels (default "score"). */
  label?: string;
  /** Heatmap order shown first: by family (default with info) or clustered. */
  order?: 'family' | 'clustered';
}

/**
 * Writes the interactive dashboard of a similarity matrix (canvas heatmap, and with model
 * info the family analysis of METHODS §4: box plots, quartile bars, tables) plus static
 * SVGs, `report.json` and the family text reports into `outDir`. Returns the files written
 * (`.html` is the path of dashboard.html) and the family report (null without info).
 *
 *   writeMatrixDashboard('out/report', { models: ['a', 'b'], matrix: [[1, 0.3], [0.3, 1]],
 *     info: [{ model_id: 'a', family: 'A', model_type: 'Base', display_name: 'a' }, …] })
 *
 * `matrix[i][j]` (or flat `matrix[i * n + j]`) is model i's score against model j; -1
 * marks a failed model.
 */
export function writeMatrixDashboard(outDir: string, opts: MatrixDashboardOptions): WrittenReport & { report: FamilyReport | null } {
  const matrix: SimilarityMatrix = {
    models: opts.models,
    values: matrixRows(opts.matrix, opts.models.length),
    source: { file: opts.title ?? 'similarity matrix' },
  };
  const info = normalizeInfo(opts.info);
  const report = info ? analyzeFamilies(matrix, info) : null;
  const spec = familiesDashboard(report, matrix, info, opts.label ?? 'score', { order: opts.order });
  if (opts.title) spec.title = opts.title;
  const extra = report ? familyTextFiles(report) : {};
  const written = writeDashboard(outDir, spec, report ?? { models: matrix.models, matrix: matrix.values }, extra);
  return { ...written, report };
}

/** The three text reports of the family analysis. */
export function familyTextFiles(report: FamilyReport): Record<string, string> {
  return {
    'intrafamily.txt': familyTextReport('Intrafamily pairs (by group mean, pairs by score)', report.intrafamily),
    'interfamily.txt': familyTextReport('Interfamily pairs (by group mean, pairs by score)', report.interfamily),
    'type_pairs.txt': familyTextReport('Type pairs inside families (by group mean, pairs by score)', report.type_pairs),
  };
}

/** JSON of a report: indented unless it is large (then compact, to keep the file small). */
export function reportJson(report: unknown): string {
  const pairs = (report as { pairs?: unknown } | null)?.pairs;
  return typeof pairs === 'number' && pairs > 20_000 ? JSON.stringify(report) : JSON.stringify(report, null, 2);
}

/** parents.csv (model,parent,confidence,family,reason + evidence), families.csv and findings.csv. */
export function lineageFiles(report: LineageReport): Record<string, string> {
  return {
    'parents.csv': stringifyCsv(
      ['model', 'parent', 'confidence', 'family', 'reason', 'score', 'rank', 'role', 'metadata_used'],
      report.parents.map((p) => [p.model, p.parent ?? '', p.confidence, p.family, p.reason, p.score ?? '', p.rank ?? '', p.role, p.metadata_used.join(';')]),
    ),
    'families.csv': stringifyCsv(
      ['family', 'root', 'model', 'confidence', 'depth'],
      report.families.flatMap((f) => f.members.map((m) => [f.family, f.root, m.model, m.confidence, m.depth])),
    ),
    'findings.csv': stringifyCsv(
      ['kind', 'model', 'other', 'score', 'detail'],
      report.findings.map((x) => [x.kind, x.model, x.other, x.score ?? '', x.detail]),
    ),
  };
}
