import path from 'node:path';
import { z } from 'zod';
import { ModelprintError } from '../errors.js';
import { type CsvTable, parseCsv, readCsvFile, readTextFile, requireColumns } from '../util/csv.js';

/**
 * Loading and validating the analysis inputs: base-vs-derived CSVs (METHODS §1.7), hub
 * metadata CSVs, similarity matrices (CSV of `modelprint matrix`, or the experiment runner's
 * JSON) and model info (JSON or CSV). Every problem is an E_INPUT / E_NOT_FOUND naming the
 * file, the line and the column, with a hint.
 */

// ---------------------------------------------------------------------------------------
// zod field parsers for CSV cells (strings)

/** A number; '' / 'nan' / 'null' / 'none' read as missing (null). */
const optionalNumber = z.string().transform((raw, ctx) => {
  const s = raw.trim();
  if (s === '' || /^(nan|null|none|na|n\/a)$/i.test(s)) return null;
  const v = Number(s);
  if (!Number.isFinite(v)) {
    ctx.addIssue({ code: 'custom', message: `not a number: "${raw}"`, input: raw });
    return z.NEVER;
  }
  return v;
});

/** A download count: a non-negative number, or missing (null = unknown). */
const optionalCount = optionalNumber.refine((v) => v === null || v >= 0, { message: 'must not be negative' });

const nonEmpty = z.string().trim().min(1, { message: 'must not be empty' });

type Issue = { path: PropertyKey[]; message: string };

function rowError(table: CsvTable, index: number, issues: readonly Issue[], hint: string): ModelprintError {
  const issue = issues[0];
  const column = String(issue.path[0] ?? '');
  return new ModelprintError(
    'E_INPUT',
    `${table.source}: line ${table.lines[index]}, column "${column}": ${issue.message}`,
    { subject: `${table.source}:${column}`, hint },
  );
}

// ---------------------------------------------------------------------------------------
// base-vs-derived rows

export interface ScoreRow {
  /** The model the row is about (derived model). */
  model: string;
  /** The reference model, when the file has `base_model_name`. */
  base: string | null;
  /** The score; null when empty / NaN. */
  score: number | null;
  /** score ≥ 0 (failures are written as -1). */
  valid: boolean;
  /** Downloads; null when unknown (or not asked for). */
  downloads: number | null;
  /** 1-based line in the file. */
  line: number;
  /** The error code of a failed row (`error_code` column of modelprint's result files), or null. */
  error_code: string | null;
}

export interface LoadScoresOptions {
  scoreColumn?: string;
  modelColumn?: string;
  /** When set, the downloads column to read (see `hub`). */
  downloadsColumn?: string;
  /** Hub metadata joined on the model id for rows without downloads. */
  hub?: Map<string, HubRecord>;
}

export const DEFAULT_SCORE_COLUMN = 'avg_overlap_ratio';
export const DEFAULT_MODEL_COLUMN = 'derived_model_name';

/**
 * Score columns of the result CSVs modelprint writes, in the order they are looked for:
 * lineage bottom-k (avg_overlap_ratio), lineage text (avg_score), nearest relatives and
 * `analyze neighbours` (score).
 */
export const KNOWN_SCORE_COLUMNS = ['avg_overlap_ratio', 'avg_score', 'score'] as const;
/** Model columns of those files (lineage results; nearest relatives / neighbours). */
export const KNOWN_MODEL_COLUMNS = ['derived_model_name', 'model_id', 'model'] as const;

/** The column to use: the one asked for, else the first known one the file has. */
export function pickColumn(table: CsvTable, asked: string | undefined, known: readonly string[], what: string, flag: string): string {
  if (asked !== undefined) return asked;
  const found = known.find((k) => table.header.includes(k));
  if (found) return found;
  throw new ModelprintError('E_INPUT', `${table.source}: no ${what} column (looked for ${known.join(', ')})`, {
    subject: table.source,
    hint: `name it with ${flag} (columns: ${table.header.join(', ')})`,
  });
}
export const DEFAULT_DOWNLOADS_COLUMN = 'derived_model_downloads';

/** Reads a base-vs-derived CSV (METHODS §1.7) into score rows. */
export function loadScores(file: string, opts: LoadScoresOptions = {}): LoadedScores {
  return scoresFromTable(readCsvFile(file, 'scores CSV'), opts);
}

export interface LoadedScores {
  rows: ScoreRow[];
  table: CsvTable;
  /** The columns read (given, or detected). */
  score_column: string;
  model_column: string;
}

export function scoresFromTable(table: CsvTable, opts: LoadScoresOptions = {}): LoadedScores {
  const scoreColumn = pickColumn(table, opts.scoreColumn, KNOWN_SCORE_COLUMNS, 'score', '--score-column');
  const modelColumn = pickColumn(table, opts.modelColumn, KNOWN_MODEL_COLUMNS, 'model', '--model-column');
  requireColumns(table, [modelColumn], `name the model column with --model-column (columns: ${table.header.join(', ')})`);
  requireColumns(
    table,
    [scoreColumn],
    `name the score column with --score-column; result CSVs written by modelprint have one of ${KNOWN_SCORE_COLUMNS.join(', ')}`,
  );
  let downloadsColumn: string | null = null;
  if (opts.downloadsColumn !== undefined) {
    if (table.header.includes(opts.downloadsColumn)) downloadsColumn = opts.downloadsColumn;
    else if (opts.downloadsColumn === DEFAULT_DOWNLOADS_COLUMN && table.header.includes('downloads')) {
      downloadsColumn = 'downloads';
    } else if (!opts.hub) {
      requireColumns(
        table,
        [opts.downloadsColumn],
        'name the downloads column with --downloads-column, or join downloads from hub metadata with --hub-metadata <csv>',
      );
    }
  }
  const schema = z.object({
    [modelColumn]: nonEmpty,
    [scoreColumn]: optionalNumber,
    ...(downloadsColumn ? { [downloadsColumn]: optionalCount } : {}),
  });
  const hint = `fix the value, or point --score-column / --downloads-column at the right column`;
  const rows: ScoreRow[] = table.rows.map((raw, i) => {
    const parsed = schema.safeParse(raw);
    if (!parsed.success) throw rowError(table, i, parsed.error.issues, hint);
    const data = parsed.data as Record<string, unknown>;
    const model = String(data[modelColumn]);
    const score = data[scoreColumn] as number | null;
    let downloads = downloadsColumn ? (data[downloadsColumn] as number | null) : null;
    if (downloads === null && opts.hub) downloads = opts.hub.get(model)?.downloads ?? null;
    return {
      model,
      base: raw.base_model_name?.trim() || null,
      score,
      valid: score !== null && score >= 0,
      downloads,
      line: table.lines[i],
      error_code: raw.error_code?.trim() || null,
    };
  });
  return { rows, table, score_column: scoreColumn, model_column: modelColumn };
}

// ---------------------------------------------------------------------------------------
// hub metadata

export interface HubRecord {
  modelId: string;
  baseModel: string | null;
  downloads: number | null;
  likes: number | null;
}

/** Reads a hub metadata CSV (base_model, model_id, downloads, likes, …) keyed by model id. */
export function loadHubMetadata(file: string): Map<string, HubRecord> {
  const table = readCsvFile(file, 'hub metadata CSV');
  requireColumns(
    table,
    ['model_id', 'downloads'],
    'a hub metadata CSV has the columns base_model, model_id, downloads, likes, …',
  );
  const schema = z.object({ model_id: nonEmpty, downloads: optionalCount });
  const out = new Map<string, HubRecord>();
  table.rows.forEach((raw, i) => {
    const parsed = schema.safeParse(raw);
    if (!parsed.success) throw rowError(table, i, parsed.error.issues, 'fix the value in the hub metadata file');
    const likes = raw.likes !== undefined ? Number(raw.likes) : NaN;
    out.set(parsed.data.model_id, {
      modelId: parsed.data.model_id,
      baseModel: raw.base_model?.trim() || null,
      downloads: parsed.data.downloads,
      likes: Number.isFinite(likes) && raw.likes.trim() !== '' ? likes : null,
    });
  });
  return out;
}

// ---------------------------------------------------------------------------------------
// similarity matrices

export interface SimilarityMatrix {
  models: string[];
  /** values[i][j]; NaN where missing. A failed model is -1 in its row and column. */
  values: number[][];
  /** What was read: file, and method / metric for runner JSON. */
  source: { file: string; method?: string; metric?: string; methods?: string[]; metrics?: string[] };
}

const cellNumber = z.union([z.number(), z.null()]);
const bareMatrixSchema = z.object({ models: z.array(z.string()), matrix: z.array(z.array(cellNumber)) });
const runnerSchema = z.object({
  similarity_matrices: z.record(z.string(), z.record(z.string(), bareMatrixSchema)),
});

/**
 * Reads a similarity matrix: the CSV of `modelprint matrix` (model ids as header row and
 * first column), the experiment runner's JSON
 * `{"similarity_matrices": {method: {metric: {"matrix": [[…]], "models": […]}}}}`
 * (`method` / `metric` choose; default the first of each), or `{models, matrix}` JSON.
 */
export function loadMatrix(file: string, opts: { method?: string; metric?: string } = {}): SimilarityMatrix {
  const text = readTextFile(file, 'matrix file');
  const isJson = path.extname(file).toLowerCase() === '.json' || /^\s*[[{]/.test(text);
  if (!isJson) {
    if (opts.method || opts.metric) {
      throw new ModelprintError('E_USAGE', '--method and --metric apply only to a JSON matrix file', {
        subject: file,
        hint: 'drop --method / --metric for a CSV matrix',
      });
    }
    return matrixFromCsv(parseCsv(text, file));
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new ModelprintError('E_INPUT', `${file}: not valid JSON: ${(err as Error).message}`, {
      subject: file,
      hint: 'a matrix file is a CSV written by `modelprint matrix` or the experiment runner JSON',
      cause: err,
    });
  }
  const runner = runnerSchema.safeParse(json);
  if (runner.success) {
    const methods = Object.keys(runner.data.similarity_matrices);
    if (methods.length === 0) {
      throw new ModelprintError('E_INPUT', `${file}: "similarity_matrices" is empty`, { subject: file });
    }
    const method = opts.method ?? methods[0];
    const byMetric = runner.data.similarity_matrices[method];
    if (!byMetric) {
      throw new ModelprintError('E_NOT_FOUND', `${file}: no method "${method}" in similarity_matrices`, {
        subject: `${file}:${method}`,
        hint: `choose --method from: ${methods.join(', ')}`,
      });
    }
    const metrics = Object.keys(byMetric);
    const metric = opts.metric ?? metrics[0];
    const m = byMetric[metric];
    if (!m) {
      throw new ModelprintError('E_NOT_FOUND', `${file}: no metric "${metric}" for method "${method}"`, {
        subject: `${file}:${method}.${metric}`,
        hint: `choose --metric from: ${metrics.join(', ') || '(none)'}`,
      });
    }
    return checkSquare(file, m.models, m.matrix, { file, method, metric, methods, metrics });
  }
  const bare = bareMatrixSchema.safeParse(json);
  if (bare.success) return checkSquare(file, bare.data.models, bare.data.matrix, { file });
  const issue = runner.error.issues[0];
  throw new ModelprintError(
    'E_INPUT',
    `${file}: not a similarity matrix JSON (at ${issue.path.join('.') || 'top level'}: ${issue.message})`,
    {
      subject: file,
      hint: 'expected {"similarity_matrices": {method: {metric: {"matrix": [[…]], "models": […]}}}} or {"models": […], "matrix": [[…]]}',
    },
  );
}

function checkSquare(
  file: string,
  models: string[],
  matrix: (number | null)[][],
  source: SimilarityMatrix['source'],
): SimilarityMatrix {
  const n = models.length;
  if (matrix.length !== n || matrix.some((r) => r.length !== n)) {
    throw new ModelprintError('E_INPUT', `${file}: the matrix is not ${n} × ${n} (it has ${n} model ids)`, {
      subject: file,
      hint: 'the matrix needs one row and one column per model id',
    });
  }
  return { models, values: matrix.map((r) => r.map((v) => (v === null ? NaN : v))), source };
}

export function matrixFromCsv(table: CsvTable): SimilarityMatrix {
  const models = table.header.slice(1);
  const file = table.source;
  if (models.length === 0) {
    throw new ModelprintError('E_INPUT', `${file}: no model ids in the header row`, {
      subject: file,
      hint: 'a matrix CSV has the model ids as its header row and as its first column',
    });
  }
  if (table.rows.length !== models.length) {
    throw new ModelprintError(
      'E_INPUT',
      `${file}: ${table.rows.length} rows but ${models.length} model ids in the header`,
      { subject: file, hint: 'a matrix CSV is square: one row per model id in the header' },
    );
  }
  const first = table.header[0];
  const values = table.rows.map((row, i) => {
    const id = (row[first] ?? '').trim();
    if (id !== models[i]) {
      throw new ModelprintError(
        'E_INPUT',
        `${file}: line ${table.lines[i]} is for "${id}" but column ${i + 2} is "${models[i]}"`,
        { subject: `${file}:${id}`, hint: 'rows must be in the same order as the header columns' },
      );
    }
    return models.map((m) => {
      const parsed = optionalNumber.safeParse(row[m]);
      if (!parsed.success) throw rowError(table, i, [{ path: [m], message: parsed.error.issues[0].message }], 'fix the value');
      return parsed.data === null ? NaN : parsed.data;
    });
  });
  return { models, values, source: { file } };
}

// ---------------------------------------------------------------------------------------
// model info

export interface ModelInfo {
  model_id: string;
  family: string;
  model_type: string;
  display_name: string;
}

const infoObject = z.object({
  model_id: z.string().trim().min(1),
  family: z.string().trim().min(1),
  model_type: z.string().trim().optional().nullable(),
  display_name: z.string().trim().optional().nullable(),
});

function normalizeInfo(x: z.infer<typeof infoObject>): ModelInfo {
  return {
    model_id: x.model_id,
    family: x.family,
    model_type: x.model_type || 'Unknown',
    display_name: x.display_name || x.model_id,
  };
}

/**
 * Reads model info: a JSON array (or `{models: […]}`) of `{model_id, family, model_type,
 * display_name}`, or a CSV with those columns (the zoo's models.csv —
 * model_id,path,family,model_type,base_model,relation — works as is).
 */
export function loadModelInfo(file: string): ModelInfo[] {
  const text = readTextFile(file, 'model info file');
  const isJson = path.extname(file).toLowerCase() === '.json' || /^\s*[[{]/.test(text);
  if (isJson) {
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch (err) {
      throw new ModelprintError('E_INPUT', `${file}: not valid JSON: ${(err as Error).message}`, { subject: file, cause: err });
    }
    const list = Array.isArray(json) ? json : (json as { models?: unknown })?.models;
    if (!Array.isArray(list)) {
      throw new ModelprintError('E_INPUT', `${file}: expected a JSON array of models or {"models": […]}`, {
        subject: file,
        hint: 'each entry is {"model_id", "family", "model_type", "display_name"}',
      });
    }
    return list.map((item, i) => {
      const parsed = infoObject.safeParse(item);
      if (!parsed.success) {
        const issue = parsed.error.issues[0];
        const field = String(issue.path[0] ?? '');
        throw new ModelprintError('E_INPUT', `${file}: model ${i}: field "${field}": ${issue.message}`, {
          subject: `${file}:${field}`,
          hint: 'each entry needs "model_id" and "family" (and usually "model_type", "display_name")',
        });
      }
      return normalizeInfo(parsed.data);
    });
  }
  const table = parseCsv(text, file);
  if (!table.header.includes('family') && table.header.includes('model_id') && table.header.includes('base_model')) {
    return infoFromBaseModel(table.rows);
  }
  requireColumns(table, ['model_id', 'family'], 'model info CSV columns: model_id, family, model_type, display_name (or model_id, base_model: families follow the base_model links)');
  return table.rows.map((raw, i) => {
    const parsed = infoObject.safeParse({
      model_id: raw.model_id,
      family: raw.family,
      model_type: raw.model_type,
      display_name: raw.display_name,
    });
    if (!parsed.success) throw rowError(table, i, parsed.error.issues, 'every model needs a model_id and a family');
    return normalizeInfo(parsed.data);
  });
}

/** Values of a base_model cell meaning "no declared base". */
const NO_BASE = /^(|none|null|nan|n\/a|-)$/i;

/**
 * Families from declared bases: models linked by base_model (a cell may list several,
 * separated by ";" or ",", as merges do) form one family, named after its root — the
 * model of the family without a base of its own (the first by id if several). Bases that
 * are not rows of the file join the family too. model_type comes from model_type, else
 * relationship_type ("Base" for a root), display_name from display_name, else the id.
 */
export function familiesFromBaseModel(rows: readonly { model_id: string; base_model: string }[]): Map<string, string> {
  const parent = new Map<string, string>();
  const find = (x: string): string => {
    let r = x;
    while (parent.get(r)! !== r) r = parent.get(r)!;
    parent.set(x, r);
    return r;
  };
  const add = (x: string) => {
    if (!parent.has(x)) parent.set(x, x);
  };
  const bases = new Map<string, string[]>();
  for (const row of rows) {
    const id = row.model_id.trim();
    add(id);
    const bs = row.base_model.split(/[;,]/).map((b) => b.trim()).filter((b) => !NO_BASE.test(b));
    bases.set(id, bs);
    for (const b of bs) {
      add(b);
      const [ra, rb] = [find(id), find(b)];
      if (ra !== rb) parent.set(ra, rb);
    }
  }
  // Name each family after its root: a member with no base (first by id).
  const roots = new Map<string, string>();
  for (const id of [...parent.keys()].sort()) {
    const comp = find(id);
    if ((bases.get(id)?.length ?? 0) === 0 && !roots.has(comp)) roots.set(comp, id);
  }
  const out = new Map<string, string>();
  for (const id of parent.keys()) out.set(id, roots.get(find(id)) ?? find(id));
  return out;
}

function infoFromBaseModel(rows: readonly Record<string, string>[]): ModelInfo[] {
  const cleaned = rows.filter((r) => (r.model_id ?? '').trim()).map((r) => ({ model_id: r.model_id.trim(), base_model: r.base_model ?? '' }));
  const fam = familiesFromBaseModel(cleaned);
  return rows
    .filter((r) => (r.model_id ?? '').trim())
    .map((r) => {
      const id = r.model_id.trim();
      const rel = (r.relationship_type ?? '').trim();
      const isRoot = NO_BASE.test((r.base_model ?? '').trim());
      return {
        model_id: id,
        family: fam.get(id)!,
        model_type: r.model_type?.trim() || (isRoot ? 'Base' : rel && !NO_BASE.test(rel) ? rel : 'Unknown'),
        display_name: r.display_name?.trim() || id,
      };
    });
}
