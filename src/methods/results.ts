/**
 * Base-vs-derived result files (METHODS §1.7): CSV compatible with the published
 * experiments, one row appended and flushed per model, resumable.
 */
import fs from 'node:fs';
import path from 'node:path';
import { ModelprintError } from '../errors.js';
import { writeFileAtomic } from '../util/atomic.js';

export const LINEAGE_COLUMNS = [
  'base_model_name',
  'derived_model_name',
  'num_pairs',
  'avg_overlap_ratio',
  'bottom_k_vocab_size',
  'pair_scores_json',
  'error_code',
  'error_message',
] as const;

export const TEXT_COLUMNS = [
  'base_model_name',
  'derived_model_name',
  'num_pairs',
  'avg_pal_k',
  'avg_lev_sim',
  'avg_lcs_ratio',
  'avg_score',
  'pair_metrics_json',
  'error_code',
  'error_message',
] as const;

export function csvField(v: unknown): string {
  if (v === null || v === undefined) return '';
  const s = typeof v === 'number' ? String(v) : String(v);
  return /[",\n\r]/.test(s) ? `"${s.replaceAll('"', '""')}"` : s;
}

export function csvLine(values: unknown[]): string {
  return `${values.map(csvField).join(',')}\n`;
}

/** Parses RFC 4180 CSV text into rows of fields. */
export function parseCsvRows(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let field = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (quoted) {
      if (ch === '"') {
        if (text[i + 1] === '"') {
          field += '"';
          i++;
        } else quoted = false;
      } else field += ch;
    } else if (ch === '"') quoted = true;
    else if (ch === ',') {
      row.push(field);
      field = '';
    } else if (ch === '\n' || ch === '\r') {
      if (ch === '\r' && text[i + 1] === '\n') i++;
      row.push(field);
      rows.push(row);
      row = [];
      field = '';
    } else field += ch;
  }
  if (field !== '' || row.length > 0) {
    row.push(field);
    rows.push(row);
  }
  return rows;
}

/** Python-style list repr with 4 decimals, as the published files have: "[0.236, 0.2485]". */
export function scoresJson(scores: number[], digits = 4): string {
  return `[${scores.map((s) => pyFloat(s, digits)).join(', ')}]`;
}

/** A float as Python prints it after round(x, digits): 1.0, 0.25, 0.318. */
export function pyFloat(x: number, digits: number): string {
  const s = String(Number(x.toFixed(digits)));
  return /[.eE]/.test(s) || !Number.isFinite(x) ? s : `${s}.0`;
}

export const formatScore = (x: number, digits = 6): string => (x < 0 ? '-1.0' : pyFloat(x, digits));

/**
 * An append-only result CSV. Opening it cuts a trailing partial line (a run killed
 * mid-write) and reads the rows already done, so a re-run resumes.
 */
export class ResultCsv {
  readonly header: string[];
  readonly done = new Map<string, Record<string, string>>();

  constructor(
    readonly file: string,
    columns: readonly string[],
    readonly keyColumn: string,
  ) {
    this.header = [...columns];
    if (fs.existsSync(file)) {
      let text = fs.readFileSync(file, 'utf8');
      if (text.length > 0 && !text.endsWith('\n')) {
        text = text.slice(0, text.lastIndexOf('\n') + 1);
        writeFileAtomic(file, text);
      }
      const rows = parseCsvRows(text);
      if (rows.length > 0) {
        const head = rows[0];
        const missing = columns.filter((c) => !head.includes(c));
        if (missing.length > 0) {
          throw new ModelprintError('E_INPUT', `${file} exists but is not a result file of this kind (missing columns ${missing.join(', ')})`, {
            subject: file,
            hint: 'pass another --out, or move the old file away',
          });
        }
        this.header = head;
        for (const r of rows.slice(1)) {
          if (r.length !== head.length) continue;
          const rec = Object.fromEntries(head.map((h, i) => [h, r[i]]));
          this.done.set(rec[keyColumn], rec);
        }
      }
    }
    if (!fs.existsSync(file) || fs.statSync(file).size === 0) {
      fs.mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
      writeFileAtomic(file, csvLine(this.header));
    }
  }

  /** Adds columns (metadata) to the header of a new, still empty file. */
  extendHeader(extra: string[]): void {
    const add = extra.filter((c) => !this.header.includes(c));
    if (add.length === 0) return;
    if (this.done.size > 0) return; // an existing file keeps its columns
    this.header.push(...add);
    writeFileAtomic(this.file, csvLine(this.header));
  }

  /** Appends one row with a single write + fsync. */
  append(rec: Record<string, unknown>): void {
    const line = csvLine(this.header.map((h) => rec[h]));
    const fd = fs.openSync(this.file, 'a');
    try {
      fs.writeSync(fd, line);
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    this.done.set(String(rec[this.keyColumn]), Object.fromEntries(this.header.map((h) => [h, String(rec[h] ?? '')])));
  }
}
